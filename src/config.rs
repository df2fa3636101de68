//! Configuration: one typed, validated [`Config`], built once from the
//! built-in defaults, an optional TOML file and the command-line flags
//! (flags win). Unknown keys and bad values are a [`ConfigError`] that names
//! the key; the binary prints it and exits with code 2.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The architecture of every worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One thread per worker running a mio event loop (nginx).
    Process,
    /// The worker's main thread runs the loop; a pool of threads serves requests (gunicorn gthread).
    Thread,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    /// Absolute, canonical path of the directory served.
    pub root: PathBuf,
    /// Number of workers ("auto" already resolved to the available CPUs).
    pub workers: usize,
    pub mode: Mode,
    /// Pool threads per worker in thread mode.
    pub threads: usize,
    pub backlog: i32,
    pub max_connections: usize,
    pub keepalive_timeout: Duration,
    pub header_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
    pub access_log: bool,
    pub supervisor: SupervisorConfig,
    pub faults: FaultsConfig,
    /// The file this config was read from, re-read on SIGHUP.
    pub config_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SupervisorConfig {
    /// Watchdog: a worker (or request) silent this long is killed.
    pub timeout: Duration,
    /// How long a graceful stop may take before SIGKILL.
    pub graceful_timeout: Duration,
    /// Recycle a worker after this many requests (0 = never).
    pub max_requests: u64,
    /// Random 0..=jitter added to max_requests per worker.
    pub max_requests_jitter: u64,
    /// Recycle a worker whose RSS exceeds this many bytes (0 = never).
    pub max_rss: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FaultsConfig {
    pub enabled: bool,
    pub allow_remote: bool,
}
