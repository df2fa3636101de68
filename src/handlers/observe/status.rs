//! The status model: everything `/-/status` reports (and `/-/metrics`
//! writes out), collected from the shared scoreboard and `/proc`, and its
//! JSON through serde.
//!
//! Collected fresh on each request from any worker; nothing here takes a
//! lock of forkpool's. Field names are a contract with the dashboard,
//! scripts and tests: a worker's position is `index` here.

use std::sync::atomic::Ordering;

use serde::Serialize;

use super::ConfigView;
use super::proc::OsStats;
use crate::scoreboard::{DeathRecord, Scoreboard, Slot, SlotState, mono_ms, now_ms};

/// Everything `/-/status` reports, as of `now_ms`.
#[derive(Debug, Serialize)]
pub(crate) struct Status {
    pub(crate) server: &'static str,
    pub(crate) mode: &'static str,
    pub(crate) now_ms: u64,
    pub(crate) served_by: u32,
    pub(crate) config: ConfigView,
    pub(crate) master: MasterStatus,
    pub(crate) workers: Vec<WorkerStatus>,
    pub(crate) totals: Totals,
    pub(crate) deaths_total: u64,
    pub(crate) deaths: Vec<DeathStatus>,
}

/// The master process.
#[derive(Debug, Serialize)]
pub(crate) struct MasterStatus {
    pub(crate) pid: i32,
    pub(crate) started_ms: u64,
    pub(crate) uptime_ms: u64,
    pub(crate) os: Option<OsStats>,
}

/// One live worker (a slot that is not free).
#[derive(Debug, Serialize)]
pub(crate) struct WorkerStatus {
    /// The worker's position; a replacement takes the same one.
    pub(crate) index: u32,
    pub(crate) slot: usize,
    pub(crate) pid: i32,
    pub(crate) generation: u64,
    pub(crate) state: &'static str,
    pub(crate) started_ms: u64,
    pub(crate) uptime_ms: u64,
    pub(crate) heartbeat_age_ms: u64,
    pub(crate) requests: u64,
    pub(crate) bytes: u64,
    /// Connections it accepted since it started.
    pub(crate) accepted: u64,
    pub(crate) connections_active: u32,
    pub(crate) connections_idle: u32,
    pub(crate) threads_busy: usize,
    pub(crate) threads_total: usize,
    /// Age of the oldest request in progress; 0 if none.
    pub(crate) oldest_request_ms: u64,
    /// Thread-loops mode: one entry per loop thread (empty otherwise).
    pub(crate) loops: Vec<LoopStatus>,
    /// Thread-loops mode: Jain's index over its loops' `accepted` (1.0 is
    /// perfectly even); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fairness: Option<f64>,
    pub(crate) os: Option<OsStats>,
}

/// One event loop of a thread-loops worker.
#[derive(Debug, Serialize)]
pub(crate) struct LoopStatus {
    pub(crate) accepted: u64,
    pub(crate) requests: u64,
    pub(crate) connections: u32,
    pub(crate) busy: bool,
    pub(crate) heartbeat_age_ms: u64,
}

/// Sums over the live workers.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Totals {
    pub(crate) workers: usize,
    pub(crate) requests: u64,
    pub(crate) bytes: u64,
    pub(crate) accepted: u64,
    /// Jain's index over the ready workers' `accepted`: 1.0 when every
    /// worker accepted as many connections, 1/n when one took them all.
    /// How even the accept strategy is (1.0 with no connections yet).
    pub(crate) fairness: f64,
    pub(crate) connections_active: u64,
    pub(crate) connections_idle: u64,
    pub(crate) threads_busy: usize,
    pub(crate) threads_total: usize,
    /// [`OsStats`] summed over the workers (not the master).
    #[serde(flatten)]
    pub(crate) os: OsStats,
}

/// One recent worker death, as the master recorded it.
#[derive(Debug, Serialize)]
pub(crate) struct DeathStatus {
    pub(crate) index: u32,
    pub(crate) pid: i32,
    pub(crate) at_ms: u64,
    pub(crate) uptime_ms: u64,
    pub(crate) requests: u64,
    /// As the master's log says it: "exited with code 0", "killed by SIGABRT".
    pub(crate) reason: String,
    pub(crate) signal: Option<String>,
    pub(crate) code: Option<i32>,
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
        let connections = slot.connections() as u32;
        let idle = (slot.idle_connections() as u32).min(connections);
        let age = |since: u64| now_mono.saturating_sub(since);
        let loops: Vec<LoopStatus> = if slot.loops_heartbeat.load(Ordering::Acquire) {
            slot.serving_rows()
                .iter()
                .map(|row| LoopStatus {
                    accepted: row.accepted.load(Ordering::Relaxed),
                    requests: row.requests.load(Ordering::Relaxed),
                    connections: row.connections.load(Ordering::Relaxed),
                    busy: row.busy_since_mono_ms.load(Ordering::Relaxed) != 0,
                    heartbeat_age_ms: age(row.heartbeat_mono_ms.load(Ordering::Relaxed)),
                })
                .collect()
        } else {
            Vec::new()
        };
        let fairness = (!loops.is_empty()).then(|| jain_index(loops.iter().map(|l| l.accepted)));
        WorkerStatus {
            index: slot.position.load(Ordering::Relaxed),
            slot: slot_index,
            pid,
            generation: slot.generation.load(Ordering::Relaxed),
            state: slot.state().name(),
            started_ms,
            uptime_ms: now.saturating_sub(started_ms),
            heartbeat_age_ms: age(slot.heartbeat_mono_ms.load(Ordering::Relaxed)),
            requests: slot.requests(),
            bytes: slot.bytes_sent(),
            accepted: slot.accepted(),
            connections_active: connections - idle,
            connections_idle: idle,
            threads_busy: slot.busy_threads(),
            threads_total: slot.serving_threads(),
            oldest_request_ms: slot.oldest_busy_mono_ms().map_or(0, age),
            loops,
            fairness,
            os: (pid > 0).then(|| OsStats::read(pid)).flatten(),
        }
    }
}

impl Status {
    /// Everything `/-/status` reports, read now.
    pub(crate) fn collect(board: &Scoreboard, config: &ConfigView) -> Status {
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
            totals.accepted += worker.accepted;
            totals.connections_active += u64::from(worker.connections_active);
            totals.connections_idle += u64::from(worker.connections_idle);
            totals.threads_busy += worker.threads_busy;
            totals.threads_total += worker.threads_total;
            if let Some(os) = &worker.os {
                totals.os.add(os);
            }
        }
        totals.fairness = jain_index(
            workers
                .iter()
                .filter(|w| w.state == SlotState::Ready.name())
                .map(|w| w.accepted),
        );
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

    /// The JSON `/-/status` answers.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

/// Jain's fairness index of `counts`: (Σx)² / (n·Σx²), from 1/n (one
/// took everything) to 1.0 (all equal). 1.0 when there is nothing to share.
pub(crate) fn jain_index(counts: impl Iterator<Item = u64>) -> f64 {
    let (mut n, mut sum, mut sum_of_squares) = (0.0, 0.0, 0.0);
    for count in counts {
        let x = count as f64;
        n += 1.0;
        sum += x;
        sum_of_squares += x * x;
    }
    if sum_of_squares == 0.0 {
        1.0
    } else {
        sum * sum / (n * sum_of_squares)
    }
}

/// A scoreboard with one ready worker (position 1, in slot 2, this
/// process's pid, one request of 100 bytes, 3 connections of which 2 idle)
/// and one death (position 1, SIGSEGV), as a status.
#[cfg(test)]
pub(crate) fn sample() -> Status {
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
    slot.rows[0].connections.store(3, Ordering::Relaxed);
    slot.rows[0].idle_connections.store(2, Ordering::Relaxed);
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
    Status::collect(&board, &config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_describes_the_scoreboard() {
        let status = sample();
        assert_eq!(status.workers.len(), 1);
        let worker = &status.workers[0];
        assert_eq!((worker.index, worker.slot, worker.state), (1, 2, "ready"));
        assert_eq!((worker.connections_active, worker.connections_idle), (1, 2));
        assert_eq!((status.totals.requests, status.totals.bytes), (1, 100));
        assert_eq!(status.deaths[0].reason, "killed by SIGSEGV (core dumped)");
        assert_eq!(status.deaths[0].signal.as_deref(), Some("SIGSEGV"));
    }

    #[test]
    fn jain_index_runs_from_one_over_n_to_one() {
        assert_eq!(jain_index([5, 5, 5, 5].into_iter()), 1.0);
        assert_eq!(jain_index([8, 0, 0, 0].into_iter()), 0.25);
        assert_eq!(jain_index(std::iter::empty()), 1.0);
        assert_eq!(jain_index([0, 0].into_iter()), 1.0);
        // [15, 34, 1, 15]: the shared socket's spread the issue measured.
        let uneven = jain_index([15, 34, 1, 15].into_iter());
        assert!((uneven - 0.657).abs() < 0.001, "{uneven}");
    }

    #[test]
    fn the_json_keeps_the_field_names_and_flattens_totals() {
        let status = sample();
        let json: serde_json::Value = serde_json::from_slice(&status.to_json()).unwrap();
        assert_eq!(json["mode"], "process");
        assert_eq!(json["workers"][0]["index"], 1);
        assert_eq!(json["workers"][0]["slot"], 2);
        assert_eq!(json["workers"][0]["pid"], std::process::id());
        assert!(json["workers"][0]["os"]["rss_kib"].as_u64().unwrap() > 0);
        // The OS figures of the totals sit beside the others, not nested.
        assert_eq!(json["totals"]["requests"], 1);
        assert!(json["totals"]["threads"].as_u64().unwrap() >= 1);
        assert!(json["totals"].get("os").is_none());
        assert_eq!(json["deaths_total"], 1);
        assert_eq!(json["deaths"][0]["index"], 1);
        assert_eq!(json["deaths"][0]["code"], serde_json::Value::Null);
        assert_eq!(json["config"]["faults"], false);
    }
}
