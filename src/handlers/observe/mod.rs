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
//!
//! This file is the entry point (which endpoint, which headers) and the
//! config as shown; `proc` reads `/proc`, `status` is the model and its
//! JSON, `metrics` writes it as Prometheus text. `dashboard.html` is the
//! page at `/-/`, which polls `/-/status`.

mod metrics;
mod proc;
mod status;

use serde::Serialize;

use crate::config::Config;
use crate::http::{Body, Response};
use crate::scoreboard::Scoreboard;
use status::Status;

/// The config as `/-/status` shows it; built once per worker.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConfigView {
    listen: String,
    root: String,
    workers: usize,
    mode: &'static str,
    threads: usize,
    accept: &'static str,
    max_connections: usize,
    keepalive_timeout_ms: u64,
    header_timeout_ms: u64,
    timeout_ms: u64,
    graceful_timeout_ms: u64,
    max_requests: u64,
    max_rss_bytes: u64,
    faults: bool,
}

impl ConfigView {
    pub(crate) fn new(config: &Config) -> ConfigView {
        ConfigView {
            listen: config.listen.to_string(),
            root: config.root.display().to_string(),
            workers: config.workers,
            mode: config.mode.name(),
            threads: config.threads,
            accept: config.accept.name(),
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

/// The dashboard page, embedded so the binary needs nothing beside it.
const DASHBOARD: &str = include_str!("dashboard.html");

/// `/-/status`, `/-/metrics` and `/-/` (the dashboard), or `None` for any
/// other name under `/-/`.
pub(crate) fn handle(name: &str, board: &Scoreboard, config: &ConfigView) -> Option<Response> {
    let response = match name {
        "" => Response::new(200, Body::Static(DASHBOARD.as_bytes()))
            .header("Content-Type", "text/html; charset=utf-8")
            .header("Cache-Control", "no-cache"),
        "status" => {
            let json = Status::collect(board, config).to_json();
            Response::new(200, Body::Bytes(json))
                .header("Content-Type", "application/json")
                .header("Cache-Control", "no-store")
        }
        "metrics" => {
            let text = metrics::render(&Status::collect(board, config));
            Response::new(200, Body::Bytes(text.into_bytes()))
                .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                .header("Cache-Control", "no-store")
        }
        _ => return None,
    };
    Some(response.uncounted())
}
