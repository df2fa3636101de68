//! What the lab endpoints (`/-/work/`, `/-/fault/`) share: who is serving
//! ([`Identity`]), the worker's [`SharedCache`], bounded query parameters
//! ([`param`]) and the JSON answer they give ([`report`]).
//!
//! Plumbing only: the workloads live in `work`, the faults in `faults`.
//! Nothing here can panic on input: a bad parameter is a 400 that names it.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use serde::{Serialize, Serializer};

use crate::config::Mode;
use crate::http::{Body, Request, Response};

/// Entries in the shared cache.
const CACHE_SLOTS: usize = 4096;

/// Who is serving: the fields every lab answer reports.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) pid: u32,
    /// The worker's position (the JSON field `worker`, a contract with
    /// scripts and tests).
    pub(crate) position: usize,
    pub(crate) mode: Mode,
}

/// The worker's shared in-memory cache. One per worker: in thread mode all
/// pool threads contend for its lock, in process mode one thread owns it.
pub(crate) struct SharedCache {
    slots: Mutex<Vec<u64>>,
}

impl Default for SharedCache {
    fn default() -> Self {
        SharedCache {
            slots: Mutex::new(vec![0; CACHE_SLOTS]),
        }
    }
}

impl SharedCache {
    /// Locks the cache. A lock poisoned by a panicking holder (the `poison`
    /// fault) is recovered, not propagated: the data is plain counters, so
    /// a half-done update is harmless, and refusing every later request
    /// would turn one fault into a dead endpoint.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Vec<u64>> {
        self.slots.lock().unwrap_or_else(|poisoned| {
            log::warn!("shared cache lock was poisoned by a panic; recovering it");
            self.slots.clear_poison();
            poisoned.into_inner()
        })
    }

    /// The lock itself, for the `poison` fault.
    pub(crate) fn raw(&self) -> &Mutex<Vec<u64>> {
        &self.slots
    }
}

/// A bounded integer query parameter, or the 400 that names it.
pub(crate) fn param(req: &Request, name: &str, max: u64) -> Result<u64, Response> {
    let Some(text) = req.query_param(name) else {
        return Err(Response::text(
            400,
            format!("missing parameter {name} (0..={max})"),
        ));
    };
    match text.parse::<u64>() {
        Ok(value) if value <= max => Ok(value),
        Ok(_) => Err(Response::text(
            400,
            format!("parameter {name}={text} is over {max}"),
        )),
        Err(_) => Err(Response::text(
            400,
            format!("parameter {name}={text:?} is not a whole number (0..={max})"),
        )),
    }
}

/// The JSON answer every workload (and a survivable fault) gives: who
/// served it, how long it took, then `figures` (the workload's own
/// numbers, in the order given).
pub(crate) fn report(
    who: &Identity,
    work: &str,
    started: Instant,
    figures: &[(&str, u64)],
) -> Response {
    let thread = std::thread::current();
    let answer = Report {
        work,
        pid: who.pid,
        worker: who.position,
        thread: thread.name().unwrap_or("main"),
        mode: who.mode.name(),
        // Microsecond resolution is all a load test can use.
        elapsed_ms: (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        figures: Figures(figures),
    };
    let mut body = serde_json::to_vec(&answer).expect("a report has only string keys");
    body.push(b'\n');
    Response::new(200, Body::Bytes(body)).header("Content-Type", "application/json")
}

/// The body [`report`] writes.
#[derive(Serialize)]
struct Report<'a> {
    work: &'a str,
    pid: u32,
    worker: usize,
    thread: &'a str,
    mode: &'static str,
    elapsed_ms: f64,
    #[serde(flatten)]
    figures: Figures<'a>,
}

/// A workload's named figures, written as fields of the report itself.
struct Figures<'a>(&'a [(&'a str, u64)]);

impl Serialize for Figures<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().copied())
    }
}

/// Requests, identities and bodies for the lab endpoints' unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use std::sync::Arc;

    use super::{Identity, SharedCache};
    use crate::config::Mode;
    use crate::http::request::parse_head;
    use crate::http::{Body, Request, Response};

    pub(crate) fn request(target: &str) -> Request {
        let mut req = Request::default();
        let head = format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n");
        parse_head(head.as_bytes(), 16384, &mut req).unwrap();
        req
    }

    pub(crate) fn who(mode: Mode) -> Identity {
        Identity {
            pid: 1,
            position: 0,
            mode,
        }
    }

    /// A cache whose lock a panicking thread held.
    pub(crate) fn poisoned_cache() -> Arc<SharedCache> {
        let cache = Arc::new(SharedCache::default());
        let poisoner = Arc::clone(&cache);
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.raw().lock().unwrap();
            panic!("poison");
        })
        .join();
        cache
    }

    pub(crate) fn body(response: &Response) -> String {
        match &response.body {
            Body::Bytes(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            other => panic!("unexpected body {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{body, poisoned_cache, request, who};
    use super::*;

    #[test]
    fn param_is_bounded_and_a_400_names_it() {
        assert_eq!(param(&request("/x?ms=0"), "ms", 10).ok(), Some(0));
        assert_eq!(param(&request("/x?a=1&ms=10"), "ms", 10).ok(), Some(10));
        for (target, says) in [
            ("/x", "missing parameter ms (0..=10)"),
            ("/x?ms=", "parameter ms=\"\" is not a whole number (0..=10)"),
            ("/x?ms=11", "parameter ms=11 is over 10"),
            ("/x?ms=-1", "parameter ms=\"-1\" is not a whole number"),
            ("/x?ms=1.5", "parameter ms=\"1.5\" is not a whole number"),
        ] {
            let error = param(&request(target), "ms", 10).unwrap_err();
            assert_eq!(error.status, 400, "{target}");
            assert!(body(&error).contains(says), "{target}: {}", body(&error));
        }
    }

    #[test]
    fn a_report_is_one_line_of_json_with_who_served_it() {
        let started = Instant::now();
        let response = report(
            &who(Mode::Thread),
            "mem",
            started,
            &[("kb", 64), ("checksum", 120)],
        );
        assert_eq!(response.status, 200);
        assert!(
            response
                .headers
                .iter()
                .any(|(name, value)| *name == "Content-Type" && value == "application/json")
        );
        let text = body(&response);
        assert!(text.ends_with("}\n") && text.lines().count() == 1, "{text}");
        // tests/common's pid_of reads the first `"pid":` literally.
        assert!(text.starts_with("{\"work\":\"mem\",\"pid\":1,"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["worker"], 0);
        assert_eq!(json["mode"], "thread");
        assert_eq!(json["kb"], 64);
        assert_eq!(json["checksum"], 120);
        assert!(json["thread"].is_string());
        assert!(json["elapsed_ms"].as_f64().unwrap() >= 0.0);
        let bare = report(&who(Mode::Process), "leak", started, &[]);
        let json: serde_json::Value = serde_json::from_str(&body(&bare)).unwrap();
        assert_eq!(json.as_object().unwrap().len(), 6, "{json}");
    }

    #[test]
    fn a_poisoned_lock_is_recovered() {
        let cache = poisoned_cache();
        assert!(cache.raw().is_poisoned());
        assert_eq!(cache.lock().len(), CACHE_SLOTS);
        assert!(!cache.raw().is_poisoned());
    }
}
