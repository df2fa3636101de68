//! The server reporting on itself: `/-/status` (JSON), `/-/metrics`
//! (Prometheus text) and the figures both are made of.
//!
//! Any worker can answer: everything comes from the shared scoreboard (the
//! counters workers keep, the deaths the master records) and from `/proc`
//! (what the kernel knows of each process). Nothing here takes a lock of
//! forkpool's or touches another worker's hot path; `/proc` is read only
//! when asked (reading `smaps_rollup` briefly takes the kernel's lock on
//! that process's memory map), and these responses are not counted as
//! requests, so watching a run doesn't change its numbers.

use std::fmt::Write as _;
use std::fs;
use std::sync::atomic::Ordering;

use serde::Serialize;

use crate::config::Config;
use crate::http::{Body, Response};
use crate::scoreboard::{DeathRecord, Scoreboard, Slot, SlotState, mono_ms, now_ms};

/// What the kernel says about one process. Every field is summed over all
/// of its threads where the kernel counts per thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OsStats {
    pub voluntary_ctxt_switches: u64,
    pub nonvoluntary_ctxt_switches: u64,
    pub cpu_user_ms: u64,
    pub cpu_sys_ms: u64,
    pub rss_kib: u64,
    pub pss_kib: u64,
    /// Unique set size: the private pages, what killing it would free.
    pub uss_kib: u64,
    pub threads: u64,
}

impl OsStats {
    /// Reads `/proc/PID`; `None` if the process is gone (or not ours).
    pub fn read(pid: i32) -> Option<OsStats> {
        let mut stats = OsStats::default();
        // `/proc/PID/status` counts the main thread's switches only; the
        // process's are the sum over its tasks.
        for task in fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
            let Ok(status) = fs::read_to_string(task.path().join("status")) else {
                continue; // the thread ended while we looked
            };
            stats.threads += 1;
            stats.voluntary_ctxt_switches += field(&status, "voluntary_ctxt_switches:");
            stats.nonvoluntary_ctxt_switches += field(&status, "nonvoluntary_ctxt_switches:");
        }
        let (user_ticks, sys_ticks) =
            cpu_ticks(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
        let tick_ms = 1000 / clock_ticks_per_second();
        stats.cpu_user_ms = user_ticks * tick_ms;
        stats.cpu_sys_ms = sys_ticks * tick_ms;
        let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
        stats.rss_kib = field(&rollup, "Rss:");
        stats.pss_kib = field(&rollup, "Pss:");
        stats.uss_kib = field(&rollup, "Private_Clean:") + field(&rollup, "Private_Dirty:");
        Some(stats)
    }

    fn add(&mut self, other: &OsStats) {
        self.voluntary_ctxt_switches += other.voluntary_ctxt_switches;
        self.nonvoluntary_ctxt_switches += other.nonvoluntary_ctxt_switches;
        self.cpu_user_ms += other.cpu_user_ms;
        self.cpu_sys_ms += other.cpu_sys_ms;
        self.rss_kib += other.rss_kib;
        self.pss_kib += other.pss_kib;
        self.uss_kib += other.uss_kib;
        self.threads += other.threads;
    }
}

/// The number after `name` in a `/proc` "Name: value" file (0 if absent).
fn field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

/// utime and stime (fields 14 and 15) of `/proc/PID/stat`, in clock ticks.
/// The command name (field 2) may hold spaces and parentheses, so count
/// from the last `)`.
fn cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    let mut after_name = stat[stat.rfind(')')? + 1..].split_whitespace();
    // After the name come field 3 (state) onwards: utime is the 12th of them.
    let utime = after_name.nth(11)?.parse().ok()?;
    let stime = after_name.next()?.parse().ok()?;
    Some((utime, stime))
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

/// The config as `/-/status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigView {
    pub listen: String,
    pub root: String,
    pub workers: usize,
    pub mode: &'static str,
    pub threads: usize,
    pub max_connections: usize,
    pub keepalive_timeout_ms: u64,
    pub header_timeout_ms: u64,
    pub timeout_ms: u64,
    pub graceful_timeout_ms: u64,
    pub max_requests: u64,
    pub max_rss_bytes: u64,
    pub faults: bool,
}

impl ConfigView {
    pub fn new(config: &Config) -> ConfigView {
        ConfigView {
            listen: config.listen.to_string(),
            root: config.root.display().to_string(),
            workers: config.workers,
            mode: config.mode.name(),
            threads: config.threads,
            max_connections: config.max_connections,
            keepalive_timeout_ms: config.keepalive_timeout.as_millis() as u64,
            header_timeout_ms: config.header_timeout.as_millis() as u64,
            timeout_ms: config.supervisor.timeout.as_millis() as u64,
            graceful_timeout_ms: config.supervisor.graceful_timeout.as_millis() as u64,
            max_requests: config.supervisor.max_requests,
            max_rss_bytes: config.supervisor.max_rss,
            faults: config.faults.enabled,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub server: &'static str,
    pub mode: &'static str,
    pub now_ms: u64,
    pub served_by: u32,
    pub config: ConfigView,
    pub master: MasterStatus,
    pub workers: Vec<WorkerStatus>,
    pub totals: Totals,
    pub deaths_total: u64,
    pub deaths: Vec<DeathStatus>,
}

#[derive(Debug, Serialize)]
pub struct MasterStatus {
    pub pid: i32,
    pub started_ms: u64,
    pub uptime_ms: u64,
    pub os: Option<OsStats>,
}

#[derive(Debug, Serialize)]
pub struct WorkerStatus {
    /// The worker's position; a replacement takes the same one.
    pub index: u32,
    pub slot: usize,
    pub pid: i32,
    pub generation: u64,
    pub state: &'static str,
    pub started_ms: u64,
    pub uptime_ms: u64,
    pub heartbeat_age_ms: u64,
    pub requests: u64,
    pub bytes: u64,
    pub connections_active: u32,
    pub connections_idle: u32,
    pub threads_busy: usize,
    pub threads_total: usize,
    /// Age of the oldest request in progress; 0 if none.
    pub oldest_request_ms: u64,
    pub os: Option<OsStats>,
}

#[derive(Debug, Default, Serialize)]
pub struct Totals {
    pub workers: usize,
    pub requests: u64,
    pub bytes: u64,
    pub connections_active: u64,
    pub connections_idle: u64,
    pub threads_busy: usize,
    pub threads_total: usize,
    /// [`OsStats`] summed over the workers (not the master).
    #[serde(flatten)]
    pub os: OsStats,
}

#[derive(Debug, Serialize)]
pub struct DeathStatus {
    pub index: u32,
    pub pid: i32,
    pub at_ms: u64,
    pub uptime_ms: u64,
    pub requests: u64,
    /// As the master's log says it: "exited with code 0", "killed by SIGABRT".
    pub reason: String,
    pub signal: Option<String>,
    pub code: Option<i32>,
}

impl DeathStatus {
    fn new(death: &DeathRecord) -> DeathStatus {
        DeathStatus {
            index: death.position,
            pid: death.pid,
            at_ms: death.at_ms,
            uptime_ms: death.uptime_ms,
            requests: death.requests,
            reason: death.how.to_string(),
            signal: death.how.signal().map(crate::signals::name),
            code: death.how.code(),
        }
    }
}

impl WorkerStatus {
    fn new(slot_index: usize, slot: &Slot, now: u64, now_mono: u64) -> WorkerStatus {
        let pid = slot.pid.load(Ordering::Relaxed);
        let started_ms = slot.started_ms.load(Ordering::Relaxed);
        let connections = slot.connections.load(Ordering::Relaxed);
        let idle = slot
            .idle_connections
            .load(Ordering::Relaxed)
            .min(connections);
        let age = |since: u64| now_mono.saturating_sub(since);
        WorkerStatus {
            index: slot.position.load(Ordering::Relaxed),
            slot: slot_index,
            pid,
            generation: slot.generation.load(Ordering::Relaxed),
            state: slot.state().name(),
            started_ms,
            uptime_ms: now.saturating_sub(started_ms),
            heartbeat_age_ms: age(slot.heartbeat_mono_ms.load(Ordering::Relaxed)),
            requests: slot.requests.load(Ordering::Relaxed),
            bytes: slot.bytes_sent.load(Ordering::Relaxed),
            connections_active: connections - idle,
            connections_idle: idle,
            threads_busy: slot.busy_threads(),
            threads_total: slot.serving_threads(),
            oldest_request_ms: slot.oldest_busy_mono_ms().map_or(0, age),
            os: (pid > 0).then(|| OsStats::read(pid)).flatten(),
        }
    }
}

impl Status {
    /// Everything `/-/status` reports, read now.
    pub fn collect(board: &Scoreboard, config: &ConfigView) -> Status {
        let now = now_ms();
        let now_mono = mono_ms();
        let header = board.header();
        let mut workers: Vec<WorkerStatus> = board
            .slots()
            .enumerate()
            .filter(|(_, slot)| slot.state() != SlotState::Free)
            .map(|(i, slot)| WorkerStatus::new(i, slot, now, now_mono))
            .collect();
        workers.sort_by_key(|w| (w.index, w.slot));
        let mut totals = Totals {
            workers: workers.len(),
            ..Totals::default()
        };
        for worker in &workers {
            totals.requests += worker.requests;
            totals.bytes += worker.bytes;
            totals.connections_active += u64::from(worker.connections_active);
            totals.connections_idle += u64::from(worker.connections_idle);
            totals.threads_busy += worker.threads_busy;
            totals.threads_total += worker.threads_total;
            if let Some(os) = &worker.os {
                totals.os.add(os);
            }
        }
        let master_pid = header.master_pid.load(Ordering::Relaxed);
        let master_started = header.master_started_ms.load(Ordering::Relaxed);
        Status {
            server: crate::http::response::SERVER_NAME,
            mode: config.mode,
            now_ms: now,
            served_by: std::process::id(),
            config: config.clone(),
            master: MasterStatus {
                pid: master_pid,
                started_ms: master_started,
                uptime_ms: now.saturating_sub(master_started),
                os: OsStats::read(master_pid),
            },
            workers,
            totals,
            deaths_total: header.deaths_total(),
            deaths: header
                .recent_deaths()
                .iter()
                .map(DeathStatus::new)
                .collect(),
        }
    }

    /// The Prometheus text exposition (format 0.0.4) of this status.
    pub fn to_metrics(&self) -> String {
        let mut out = Exposition(String::with_capacity(4096));
        let labels: Vec<String> = self
            .workers
            .iter()
            .map(|w| {
                format!(
                    "worker=\"{}\",pid=\"{}\",mode=\"{}\"",
                    w.index, w.pid, self.mode
                )
            })
            .collect();
        let workers: Vec<(&str, &WorkerStatus)> = labels
            .iter()
            .map(String::as_str)
            .zip(&self.workers)
            .collect();
        // A process gone from /proc reads as zeros rather than a gap.
        let none = OsStats::default();
        let worker_os: Vec<(&str, &OsStats)> = workers
            .iter()
            .map(|(l, w)| (*l, w.os.as_ref().unwrap_or(&none)))
            .collect();
        let master_label = format!("pid=\"{}\"", self.master.pid);
        let master_os = [(
            master_label.as_str(),
            self.master.os.as_ref().unwrap_or(&none),
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
            "forkpool_worker_deaths_total",
            "counter",
            "Workers that have ended since the master started (any cause).",
        );
        out.sample("forkpool_worker_deaths_total", "", self.deaths_total);
        out.0
    }
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

/// The dashboard page, embedded so the binary needs nothing beside it.
const DASHBOARD: &str = include_str!("dashboard.html");

/// `/-/status`, `/-/metrics` and `/-/` (the dashboard), or `None` for any
/// other name under `/-/`.
pub fn handle(name: &str, board: &Scoreboard, config: &ConfigView) -> Option<Response> {
    let response = match name {
        "" => Response::new(200, Body::Static(DASHBOARD.as_bytes()))
            .header("Content-Type", "text/html; charset=utf-8")
            .header("Cache-Control", "no-cache"),
        "status" => {
            let status = Status::collect(board, config);
            let json = serde_json::to_vec_pretty(&status).unwrap_or_default();
            Response::new(200, Body::Bytes(json))
                .header("Content-Type", "application/json")
                .header("Cache-Control", "no-store")
        }
        "metrics" => {
            let text = Status::collect(board, config).to_metrics();
            Response::new(200, Body::Bytes(text.into_bytes()))
                .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                .header("Cache-Control", "no-store")
        }
        _ => return None,
    };
    Some(response.uncounted())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields_parse() {
        let status = "Name:\tx\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n";
        assert_eq!(field(status, "voluntary_ctxt_switches:"), 12);
        assert_eq!(field(status, "nonvoluntary_ctxt_switches:"), 3);
        assert_eq!(field(status, "Missing:"), 0);
        // A command name with spaces and a parenthesis can't shift the fields.
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 9 0 0 20 0 1 0";
        assert_eq!(cpu_ticks(stat), Some((7, 9)));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn this_process_has_os_stats() {
        let me = OsStats::read(std::process::id() as i32).expect("our own /proc");
        assert!(me.threads >= 1);
        assert!(me.rss_kib > 0 && me.pss_kib > 0 && me.uss_kib > 0);
        assert!(me.voluntary_ctxt_switches + me.nonvoluntary_ctxt_switches > 0);
        assert_eq!(OsStats::read(-1), None);
    }

    #[test]
    fn status_and_metrics_describe_the_scoreboard() {
        let board = Scoreboard::new(4).unwrap();
        // Slots 0 and 1 had workers that are gone: free again, not shown.
        for _ in 0..2 {
            let used = board.claim_slot().unwrap();
            board.slot(used).reset_for_spawn(0);
        }
        let slot = board.claim_slot().unwrap();
        assert_eq!(slot, 2);
        board.slot(0).set_state(SlotState::Free);
        board.slot(1).set_state(SlotState::Free);
        let slot = board.slot(slot);
        slot.reset_for_spawn(1);
        slot.pid.store(std::process::id() as i32, Ordering::Relaxed);
        slot.set_state(SlotState::Ready);
        slot.count_request(100);
        slot.connections.store(3, Ordering::Relaxed);
        slot.idle_connections.store(2, Ordering::Relaxed);
        board.header().record_death(&DeathRecord {
            position: 1,
            pid: 77,
            how: crate::death::Death::Signaled {
                signal: libc::SIGSEGV,
                core_dumped: true,
            },
            at_ms: 0,
            uptime_ms: 0,
            requests: 0,
        });
        let config = ConfigView::new(&crate::config::defaults());
        let status = Status::collect(&board, &config);
        assert_eq!(status.workers.len(), 1);
        let worker = &status.workers[0];
        assert_eq!((worker.index, worker.slot, worker.state), (1, 2, "ready"));
        assert_eq!((worker.connections_active, worker.connections_idle), (1, 2));
        assert_eq!((status.totals.requests, status.totals.bytes), (1, 100));
        assert_eq!(status.deaths[0].reason, "killed by SIGSEGV (core dumped)");
        assert_eq!(status.deaths[0].signal.as_deref(), Some("SIGSEGV"));

        let metrics = status.to_metrics();
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
}
