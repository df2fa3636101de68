//! The master's look at one worker: is it hung, or due for recycling?
//!
//! Everything here reads the scoreboard (and `/proc` for memory) and
//! returns a [`Verdict`]; the master decides what to do about it. The
//! checks, in order:
//! - a heartbeat older than `supervisor.timeout`: the worker's loop is stuck
//!   (process mode's hang, a CPU-bound handler, a worker stuck starting): kill it;
//! - a request busy longer than `timeout` while the heartbeat is fine: one
//!   pool thread is stuck (thread mode's hang, which gunicorn and Puma can't
//!   see): replace the worker, drain it, then kill it. The busy mark covers
//!   one request, and a connection's turn runs at most one slow request
//!   before its thread hands it back (and its loop heartbeats): what is
//!   judged, in every mode, is one request, never a pipeline of them;
//! - in thread-loops mode, one loop thread whose own heartbeat is older than
//!   `timeout`: replaced the same way;
//! - `max_requests` (+ jitter) reached, or RSS over `max_rss`: recycle it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use nix::unistd::Pid;

use crate::config::SupervisorConfig;
use crate::scoreboard::{Slot, SlotState};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Healthy,
    /// No heartbeat for this long: kill it.
    Hung(Duration),
    /// Start a replacement, then drain this one; the reason is for the log.
    Replace(String),
}

/// Judges one worker; `request_limit` is its `max_requests` with jitter
/// (0 = no limit), `now_mono_ms` the [`mono_ms`](crate::scoreboard::mono_ms) clock.
pub(crate) fn check(
    slot: &Slot,
    pid: Pid,
    request_limit: u64,
    limits: &SupervisorConfig,
    now_mono_ms: u64,
) -> Verdict {
    let timeout_ms = limits.timeout.as_millis() as u64;
    // The spawn sets the first heartbeat, so this also catches a worker
    // stuck in its own start-up.
    let silent_ms = now_mono_ms.saturating_sub(slot.heartbeat_mono_ms.load(Ordering::Relaxed));
    if silent_ms > timeout_ms {
        return Verdict::Hung(Duration::from_millis(silent_ms));
    }
    if matches!(slot.state(), SlotState::Starting | SlotState::Draining) {
        return Verdict::Healthy; // not serving yet, or already on its way out
    }
    if let Some(since) = slot.oldest_busy_mono_ms() {
        let busy_ms = now_mono_ms.saturating_sub(since);
        if busy_ms > timeout_ms {
            return Verdict::Replace(format!(
                "a request has been running for {:.1}s (hung thread?)",
                busy_ms as f64 / 1000.0
            ));
        }
    }
    // Thread-loops: one stuck loop (outside any request) stalls only its
    // own connections; the worker's heartbeat, kept by another thread, is
    // fine. Replace the worker like one with a hung request.
    if let Some(beat) = slot.oldest_loop_heartbeat_mono_ms() {
        let silent_ms = now_mono_ms.saturating_sub(beat);
        if silent_ms > timeout_ms {
            return Verdict::Replace(format!(
                "a loop thread has not turned for {:.1}s (stuck loop?)",
                silent_ms as f64 / 1000.0
            ));
        }
    }
    let requests = slot.requests();
    if request_limit > 0 && requests >= request_limit {
        return Verdict::Replace(format!("served {requests} requests (max_requests)"));
    }
    if limits.max_rss > 0
        && let Some(rss) = rss_bytes(pid)
        && rss > limits.max_rss
    {
        return Verdict::Replace(format!(
            "RSS {:.1} MiB is over max_rss {:.1} MiB",
            rss as f64 / 1048576.0,
            limits.max_rss as f64 / 1048576.0
        ));
    }
    Verdict::Healthy
}

/// `max_requests` plus a random 0..=jitter, so workers started together
/// don't all recycle together (gunicorn's `max_requests_jitter`).
pub(crate) fn request_limit(limits: &SupervisorConfig, seed: u64) -> u64 {
    if limits.max_requests == 0 {
        return 0;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    // splitmix64: plenty for spreading restarts, no RNG crate needed.
    let mut x = nanos ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    limits.max_requests + x % (limits.max_requests_jitter + 1)
}

/// Resident set size of `pid`, from `/proc/PID/statm`.
fn rss_bytes(pid: Pid) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

fn page_size() -> u64 {
    // SAFETY: sysconf only reads a constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 { size as u64 } else { 4096 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoreboard::{Scoreboard, mono_ms};

    fn limits(max_requests: u64, jitter: u64, max_rss: u64) -> SupervisorConfig {
        SupervisorConfig {
            timeout: Duration::from_secs(2),
            graceful_timeout: Duration::from_secs(2),
            max_requests,
            max_requests_jitter: jitter,
            max_rss,
        }
    }

    fn ready_slot() -> &'static Slot {
        let slot = Scoreboard::new(1).unwrap().slot(0);
        slot.reset_for_spawn(0);
        slot.set_state(SlotState::Ready);
        slot
    }

    #[test]
    fn a_worker_stuck_starting_is_hung_too() {
        let slot = Scoreboard::new(1).unwrap().slot(0);
        slot.reset_for_spawn(0);
        let me = nix::unistd::getpid();
        assert_eq!(
            check(slot, me, 0, &limits(0, 0, 0), mono_ms()),
            Verdict::Healthy
        );
        assert!(matches!(
            check(slot, me, 0, &limits(0, 0, 0), mono_ms() + 2500),
            Verdict::Hung(_)
        ));
    }

    #[test]
    fn a_silent_worker_is_hung() {
        let slot = ready_slot();
        let me = nix::unistd::getpid();
        assert_eq!(
            check(slot, me, 0, &limits(0, 0, 0), mono_ms()),
            Verdict::Healthy
        );
        let later = mono_ms() + 2500;
        assert!(matches!(
            check(slot, me, 0, &limits(0, 0, 0), later),
            Verdict::Hung(_)
        ));
    }

    #[test]
    fn a_busy_thread_past_the_timeout_means_replace() {
        let slot = ready_slot();
        let me = nix::unistd::getpid();
        slot.rows[0]
            .busy_since_mono_ms
            .store(mono_ms() - 3000, Ordering::Relaxed);
        let verdict = check(slot, me, 0, &limits(0, 0, 0), mono_ms());
        assert!(
            matches!(&verdict, Verdict::Replace(why) if why.contains("hung thread")),
            "{verdict:?}"
        );
    }

    #[test]
    fn one_stuck_loop_of_a_thread_loops_worker_means_replace() {
        let slot = ready_slot();
        let me = nix::unistd::getpid();
        slot.set_serving_threads(3);
        slot.loops_heartbeat.store(true, Ordering::Relaxed);
        slot.heartbeat();
        assert_eq!(
            check(slot, me, 0, &limits(0, 0, 0), mono_ms()),
            Verdict::Healthy
        );
        // Loop 1 stops turning; the worker's own heartbeat goes on.
        slot.rows[1]
            .heartbeat_mono_ms
            .store(mono_ms() - 3000, Ordering::Relaxed);
        let verdict = check(slot, me, 0, &limits(0, 0, 0), mono_ms());
        assert!(
            matches!(&verdict, Verdict::Replace(why) if why.contains("stuck loop")),
            "{verdict:?}"
        );
        // Other modes keep no loop heartbeats: the same row means nothing.
        slot.loops_heartbeat.store(false, Ordering::Relaxed);
        assert_eq!(
            check(slot, me, 0, &limits(0, 0, 0), mono_ms()),
            Verdict::Healthy
        );
    }

    #[test]
    fn recycling_limits() {
        let slot = ready_slot();
        let me = nix::unistd::getpid();
        slot.rows[0].requests.store(10, Ordering::Relaxed);
        assert!(matches!(
            check(slot, me, 10, &limits(10, 0, 0), mono_ms()),
            Verdict::Replace(_)
        ));
        assert_eq!(
            check(slot, me, 11, &limits(10, 0, 0), mono_ms()),
            Verdict::Healthy
        );
        // Our own test process is surely over 1 byte of RSS.
        assert!(matches!(
            check(slot, me, 0, &limits(0, 0, 1), mono_ms()),
            Verdict::Replace(_)
        ));
        assert!(rss_bytes(me).is_some_and(|rss| rss > 1024 * 1024));
    }

    #[test]
    fn jitter_stays_in_range() {
        assert_eq!(request_limit(&limits(0, 50, 0), 1), 0);
        for seed in 0..100 {
            let limit = request_limit(&limits(100, 50, 0), seed);
            assert!((100..=150).contains(&limit), "{limit}");
        }
    }
}
