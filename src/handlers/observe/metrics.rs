//! `/-/metrics`: a [`Status`] written as Prometheus text (exposition
//! format 0.0.4).
//!
//! Only the writing: the figures come from the status model, which reads
//! the scoreboard and `/proc`. Label names are a contract with dashboards
//! and scripts: a worker's position is the `worker` label.

use std::fmt::Write as _;

use super::proc::OsStats;
use super::status::{Status, WorkerStatus};

/// The Prometheus text exposition (format 0.0.4) of `status`.
pub(crate) fn render(status: &Status) -> String {
    let mut out = Exposition(String::with_capacity(4096));
    let labels: Vec<String> = status
        .workers
        .iter()
        .map(|w| {
            format!(
                "worker=\"{}\",pid=\"{}\",mode=\"{}\"",
                w.index, w.pid, status.mode
            )
        })
        .collect();
    let workers: Vec<(&str, &WorkerStatus)> = labels
        .iter()
        .map(String::as_str)
        .zip(&status.workers)
        .collect();
    // A process gone from /proc reads as zeros rather than a gap.
    let none = OsStats::default();
    let worker_os: Vec<(&str, &OsStats)> = workers
        .iter()
        .map(|(l, w)| (*l, w.os.as_ref().unwrap_or(&none)))
        .collect();
    let master_label = format!("pid=\"{}\"", status.master.pid);
    let master_os = [(
        master_label.as_str(),
        status.master.os.as_ref().unwrap_or(&none),
    )];

    out.family(
        "forkpool_worker_up",
        "gauge",
        "1 for each live worker (state: starting, ready or draining).",
    );
    for (labels, w) in &workers {
        out.sample(
            "forkpool_worker_up",
            &format!("{labels},state=\"{}\"", w.state),
            1,
        );
    }
    for &(name, kind, help, parts) in WORKER_FAMILIES {
        out.parts(name, kind, help, &workers, parts);
    }
    for &(name, kind, help, parts) in OS_FAMILIES {
        out.parts(
            &format!("forkpool_worker_{name}"),
            kind,
            help,
            &worker_os,
            parts,
        );
        out.parts(
            &format!("forkpool_master_{name}"),
            kind,
            help,
            &master_os,
            parts,
        );
    }
    out.family(
        "forkpool_loop_accepted_total",
        "counter",
        "Thread-loops mode: connections accepted by each loop thread (label loop).",
    );
    for (labels, w) in &workers {
        for (number, event_loop) in w.loops.iter().enumerate() {
            out.sample(
                "forkpool_loop_accepted_total",
                &format!("{labels},loop=\"{number}\""),
                event_loop.accepted,
            );
        }
    }
    out.family(
        "forkpool_accept_fairness",
        "gauge",
        "Jain's index over the ready workers' accepted connections (1 = perfectly even).",
    );
    out.0.push_str(&format!(
        "forkpool_accept_fairness {}\n",
        status.totals.fairness
    ));
    out.family(
        "forkpool_worker_deaths_total",
        "counter",
        "Workers that have ended since the master started (any cause).",
    );
    out.sample("forkpool_worker_deaths_total", "", status.deaths_total);
    out.0
}

/// The figures of one metric family: its parts (the value of a `state` or
/// `kind` label, or "" for a single figure) and how to read each off `T`.
type Parts<T> = &'static [(&'static str, fn(&T) -> u64)];

/// Per-worker families from the scoreboard: name, type, help, parts.
const WORKER_FAMILIES: &[(&str, &str, &str, Parts<WorkerStatus>)] = &[
    (
        "forkpool_worker_requests_total",
        "counter",
        "Requests answered by the worker (observability endpoints excluded).",
        &[("", |w| w.requests)],
    ),
    (
        "forkpool_worker_accepted_total",
        "counter",
        "Connections accepted by the worker.",
        &[("", |w| w.accepted)],
    ),
    (
        "forkpool_worker_sent_bytes_total",
        "counter",
        "Response body bytes sent by the worker.",
        &[("", |w| w.bytes)],
    ),
    (
        "forkpool_worker_uptime_seconds",
        "gauge",
        "Seconds since the worker was spawned.",
        &[("", |w| w.uptime_ms / 1000)],
    ),
    (
        "forkpool_worker_connections",
        "gauge",
        "Open connections: active (a request in progress) or idle (keep-alive).",
        &[
            ("state=\"active\"", |w| u64::from(w.connections_active)),
            ("state=\"idle\"", |w| u64::from(w.connections_idle)),
        ],
    ),
    (
        "forkpool_worker_threads",
        "gauge",
        "Serving threads: busy with a request, or in total.",
        &[
            ("state=\"busy\"", |w| w.threads_busy as u64),
            ("state=\"total\"", |w| w.threads_total as u64),
        ],
    ),
];

/// Families from `/proc`, for each worker (`forkpool_worker_*`) and for the
/// master (`forkpool_master_*`): name suffix, type, help, parts.
const OS_FAMILIES: &[(&str, &str, &str, Parts<OsStats>)] = &[
    (
        "context_switches_total",
        "counter",
        "Context switches summed over the process's threads.",
        &[
            ("kind=\"voluntary\"", |o| o.voluntary_ctxt_switches),
            ("kind=\"nonvoluntary\"", |o| o.nonvoluntary_ctxt_switches),
        ],
    ),
    (
        "cpu_milliseconds_total",
        "counter",
        "CPU time of the process, user and system.",
        &[
            ("kind=\"user\"", |o| o.cpu_user_ms),
            ("kind=\"sys\"", |o| o.cpu_sys_ms),
        ],
    ),
    (
        "memory_bytes",
        "gauge",
        "Memory of the process: resident, proportional and unique set size.",
        &[
            ("kind=\"rss\"", |o| o.rss_kib * 1024),
            ("kind=\"pss\"", |o| o.pss_kib * 1024),
            ("kind=\"uss\"", |o| o.uss_kib * 1024),
        ],
    ),
];

/// Prometheus text being written.
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}")
            .expect("writing to a String");
    }

    fn sample(&mut self, name: &str, labels: &str, value: u64) {
        match labels.is_empty() {
            true => writeln!(self.0, "{name} {value}"),
            false => writeln!(self.0, "{name}{{{labels}}} {value}"),
        }
        .expect("writing to a String");
    }

    /// A family with one sample per subject (its labels) and part (its
    /// extra label).
    fn parts<T>(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        subjects: &[(&str, &T)],
        parts: Parts<T>,
    ) {
        self.family(name, kind, help);
        for (labels, subject) in subjects {
            for (part, figure) in parts {
                let labels = match part.is_empty() {
                    true => labels.to_string(),
                    false => format!("{labels},{part}"),
                };
                self.sample(name, &labels, figure(subject));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_describe_the_status() {
        let metrics = render(&super::super::status::sample());
        let labels = format!(
            "worker=\"1\",pid=\"{}\",mode=\"process\"",
            std::process::id()
        );
        assert!(
            metrics.contains(&format!("forkpool_worker_requests_total{{{labels}}} 1\n")),
            "{metrics}"
        );
        assert!(metrics.contains(&format!(
            "forkpool_worker_connections{{{labels},state=\"idle\"}} 2\n"
        )));
        assert!(metrics.contains("forkpool_worker_deaths_total 1\n"));
        for line in metrics.lines().filter(|l| !l.starts_with('#')) {
            let name = &line[..line.find(['{', ' ']).unwrap()];
            assert!(
                metrics.contains(&format!("# TYPE {name} ")),
                "{name} has no TYPE"
            );
        }
    }

    #[test]
    fn a_family_has_one_sample_per_subject_and_part() {
        const RSS: Parts<OsStats> = &[("", |o| o.rss_kib), ("k=\"x\"", |o| o.rss_kib + 1)];
        let mut out = Exposition(String::new());
        let (one, two) = (
            OsStats::default(),
            OsStats {
                rss_kib: 2,
                ..OsStats::default()
            },
        );
        out.parts(
            "m",
            "gauge",
            "help text",
            &[("a=\"1\"", &one), ("a=\"2\"", &two)],
            RSS,
        );
        assert_eq!(
            out.0,
            "# HELP m help text\n# TYPE m gauge\n\
             m{a=\"1\"} 0\nm{a=\"1\",k=\"x\"} 1\n\
             m{a=\"2\"} 2\nm{a=\"2\",k=\"x\"} 3\n"
        );
        let mut bare = Exposition(String::new());
        bare.sample("n", "", 7);
        assert_eq!(bare.0, "n 7\n");
    }
}
