//! Tab-like workloads under `/-/work/`: what a browser tab asks of a server
//! besides files: some CPU, some waiting, some memory, some shared state.
//!
//! Each endpoint answers a small JSON object naming who served it (pid,
//! thread, mode, worker) and how long it took, so a load test can see where
//! its requests ran. Every parameter is bounded; a missing, malformed or
//! out-of-range one is a 400 that names it. Nothing here can panic on input.
//! The plumbing the workloads share with the faults (who is serving, the
//! shared cache, parameters, the JSON answer) lives in `lab`.
//!
//! The one place the architectures are modelled differently is `io`: on the
//! event loop a wait is a timer (other connections keep flowing), on a pool
//! thread it is a blocking sleep (the thread is taken). That is the honest
//! model of each, and exactly what the comparison is about.

use std::time::{Duration, Instant};

use crate::config::Mode;
use crate::handlers::lab::{Identity, SharedCache, param, report};
use crate::http::{Request, Response};

/// Bounds on the parameters: big enough to hurt, small enough not to kill.
const MAX_MS: u64 = 10_000;
const MAX_KB: u64 = 64 * 1024;
const MAX_OPS: u64 = 1_000_000;

/// Answers `/-/work/<name>`; `None` if there is no such workload.
pub(crate) fn handle(
    name: &str,
    req: &Request,
    who: &Identity,
    cache: &SharedCache,
) -> Option<Response> {
    let started = Instant::now();
    let response = match name {
        "cpu" => param(req, "ms", MAX_MS).map(|ms| {
            burn_cpu(Duration::from_millis(ms));
            report(who, "cpu", started, &[("ms", ms)])
        }),
        "io" => param(req, "ms", MAX_MS).map(|ms| wait(who, started, ms)),
        "mem" => param(req, "kb", MAX_KB).map(|kb| {
            let checksum = touch_memory(kb as usize * 1024);
            report(who, "mem", started, &[("kb", kb), ("checksum", checksum)])
        }),
        "shared" => param(req, "ops", MAX_OPS).map(|ops| {
            let total = shared_ops(cache, ops, who.pid);
            report(who, "shared", started, &[("ops", ops), ("total", total)])
        }),
        _ => return None,
    };
    Some(response.unwrap_or_else(|error| error))
}

/// `io`: a timer on the event loop, a blocking sleep on a pool thread.
fn wait(who: &Identity, started: Instant, ms: u64) -> Response {
    let delay = Duration::from_millis(ms);
    let figures = [("ms", ms)];
    match who.mode {
        Mode::Process | Mode::ThreadLoops => {
            let mut response = report(who, "io", started, &figures);
            response.not_before = Some(started + delay);
            response
        }
        Mode::Thread => {
            std::thread::sleep(delay);
            report(who, "io", started, &figures)
        }
    }
}

/// Spins until this thread has used `amount` of CPU time (not wall time:
/// on a shared core a wall-clock loop would do less work than asked).
fn burn_cpu(amount: Duration) {
    let until = thread_cpu_time() + amount;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    while thread_cpu_time() < until {
        for _ in 0..1000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        std::hint::black_box(x);
    }
}

fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Allocates and writes every page of `bytes`, freed on return.
fn touch_memory(bytes: usize) -> u64 {
    let mut block = vec![0u8; bytes];
    for (i, byte) in block.iter_mut().enumerate().step_by(4096) {
        *byte = (i / 4096) as u8;
    }
    std::hint::black_box(&mut block);
    block.iter().step_by(4096).map(|&b| b as u64).sum()
}

/// `ops` read-modify-writes, each under the cache's lock.
fn shared_ops(cache: &SharedCache, ops: u64, seed: u32) -> u64 {
    let mut index = seed as usize;
    for _ in 0..ops {
        index = index
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut slots = cache.lock();
        let slot = index % slots.len();
        slots[slot] = slots[slot].wrapping_add(1);
    }
    cache.lock().iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::lab::test_support::{body, poisoned_cache, request, who};

    #[test]
    fn bad_parameters_are_400_naming_them() {
        let cache = SharedCache::default();
        for (target, needle) in [
            ("/-/work/cpu", "ms"),
            ("/-/work/cpu?ms=abc", "ms"),
            ("/-/work/cpu?ms=-1", "ms"),
            ("/-/work/io?ms=10001", "ms"),
            ("/-/work/mem?kb=99999999999999999999999", "kb"),
            ("/-/work/shared?ops=1000001", "ops"),
        ] {
            let name = target
                .trim_start_matches("/-/work/")
                .split('?')
                .next()
                .unwrap();
            let response = handle(name, &request(target), &who(Mode::Process), &cache).unwrap();
            assert_eq!(response.status, 400, "{target}");
            assert!(
                body(&response).contains(needle),
                "{target}: {}",
                body(&response)
            );
        }
        assert!(
            handle(
                "nope",
                &request("/-/work/nope"),
                &who(Mode::Process),
                &cache
            )
            .is_none()
        );
    }

    #[test]
    fn workloads_report_who_served_them() {
        let cache = SharedCache::default();
        let response = handle(
            "cpu",
            &request("/-/work/cpu?ms=5"),
            &who(Mode::Thread),
            &cache,
        )
        .unwrap();
        assert_eq!(response.status, 200);
        let text = body(&response);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["work"], "cpu");
        assert_eq!(json["mode"], "thread");
        assert!(json["elapsed_ms"].as_f64().unwrap() >= 5.0, "{text}");
        let shared = handle(
            "shared",
            &request("/-/work/shared?ops=100"),
            &who(Mode::Thread),
            &cache,
        )
        .unwrap();
        let json: serde_json::Value = serde_json::from_str(&body(&shared)).unwrap();
        assert_eq!(json["total"], 100);
        let mem = handle(
            "mem",
            &request("/-/work/mem?kb=64"),
            &who(Mode::Thread),
            &cache,
        )
        .unwrap();
        assert_eq!(mem.status, 200);
    }

    #[test]
    fn io_is_a_timer_on_the_event_loop_and_a_sleep_on_a_thread() {
        let cache = SharedCache::default();
        let started = Instant::now();
        let timer = handle(
            "io",
            &request("/-/work/io?ms=200"),
            &who(Mode::Process),
            &cache,
        )
        .unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "the loop must not block"
        );
        assert!(
            timer
                .not_before
                .is_some_and(|at| at >= started + Duration::from_millis(200))
        );
        let slept = handle(
            "io",
            &request("/-/work/io?ms=50"),
            &who(Mode::Thread),
            &cache,
        )
        .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(slept.not_before.is_none());
    }

    #[test]
    fn a_poisoned_cache_recovers() {
        let cache = poisoned_cache();
        assert!(cache.raw().is_poisoned());
        assert_eq!(shared_ops(&cache, 10, 7), 10);
        assert!(!cache.raw().is_poisoned());
    }
}
