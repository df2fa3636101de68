//! Configuration: one typed, validated [`Config`], built once from the
//! built-in defaults, an optional TOML file and the command-line flags
//! (flags win). Unknown keys and bad values are a [`ConfigError`] that names
//! the key; the binary prints it and exits with code 2.
//!
//! The layers, each optional, later ones winning:
//! 1. built-in defaults (the anchors' values listed in design.md);
//! 2. the TOML file given with `--config` (see `config/forkpool.toml`, which
//!    lists every key with its default);
//! 3. the flags: `ROOT`, `--listen`, `--workers`, `--mode`, `--threads`,
//!    `--accept`, `--access-log-format`, `--faults`, `--hidden`,
//!    `--server-name`, and the dev server's `--spa`, `--live-reload`,
//!    `--cors`, `--header` (`--open` is the master's business, not
//!    configuration).
//!
//! [`load`] builds a [`Config`] at start-up; `reload` builds a fresh one
//! for SIGHUP from the same file and flags. Neither touches the network or
//! the process: the only I/O is reading the file and checking the root.
//!
//! This module holds the model, the limits and defaults, the layering, the
//! flags layer and the checks that need every layer in. The file layer is
//! in `file` (known keys, "did you mean", syntax errors); the parsers for
//! one value (durations, sizes, worker counts, modes, listen addresses) and
//! the typed TOML values built on them are in `values`.

mod file;
#[cfg(test)]
mod testing;
mod values;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::Cli;
use values::{
    auto_workers, in_range, parse_accept, parse_access_log_format, parse_header_line, parse_listen,
    parse_mode, parse_server_name, parse_workers,
};

/// The architecture of every worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// One thread per worker running a mio event loop (nginx).
    Process,
    /// The worker's main thread runs the loop; a pool of threads serves requests (gunicorn gthread).
    Thread,
    /// `threads` threads per worker, each running its own event loop end to
    /// end, as a process-mode worker does (nginx/h2o worker threads).
    ThreadLoops,
}

impl Mode {
    /// "process", "thread" or "thread-loops", as in the config file.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Process => "process",
            Mode::Thread => "thread",
            Mode::ThreadLoops => "thread-loops",
        }
    }

    /// Event loops in one worker: one, or one per thread in thread-loops.
    pub(crate) fn loops(self, threads: usize) -> usize {
        match self {
            Mode::ThreadLoops => threads,
            Mode::Process | Mode::Thread => 1,
        }
    }
}

/// How workers get their connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// One listening socket for all: whichever loop wakes first accepts.
    Shared,
    /// One `SO_REUSEPORT` socket per event loop, kept by the master: the
    /// kernel spreads connections by hash (nginx `listen ... reuseport`).
    Reuseport,
}

impl Accept {
    /// "shared" or "reuseport", as in the config file.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Accept::Shared => "shared",
            Accept::Reuseport => "reuseport",
        }
    }
}

/// The shape of an access-log line (`access_log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccessLogFormat {
    /// forkpool's own line, as it has always been: a timestamp, the level
    /// and the pid, then `METHOD TARGET STATUS BYTES TIMEus pid=PID`.
    Forkpool,
    /// NCSA Common Log Format: `host ident authuser [date] "request" status bytes`.
    Common,
    /// Common, then `"Referer" "User-Agent"` (Apache's and nginx's `combined`).
    Combined,
}

impl AccessLogFormat {
    /// "forkpool", "common" or "combined", as in the config file.
    pub(crate) fn name(self) -> &'static str {
        match self {
            AccessLogFormat::Forkpool => "forkpool",
            AccessLogFormat::Common => "common",
            AccessLogFormat::Combined => "combined",
        }
    }
}

/// Everything the master and the workers are told, typed and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The address to bind; `localhost:PORT` is `127.0.0.1:PORT` here, with
    /// `listen_localhost` set.
    pub(crate) listen: SocketAddr,
    /// `listen` was written `localhost:PORT`: bind `[::1]:PORT` as well
    /// (browsers try `::1` first), on the same port.
    pub(crate) listen_localhost: bool,
    /// Absolute, canonical path of the directory served.
    pub(crate) root: PathBuf,
    /// Number of workers ("auto" already resolved to the available CPUs).
    pub(crate) workers: usize,
    pub(crate) mode: Mode,
    /// Pool threads (thread mode) or loop threads (thread-loops) per worker.
    pub(crate) threads: usize,
    pub(crate) accept: Accept,
    pub(crate) backlog: i32,
    pub(crate) max_connections: usize,
    pub(crate) keepalive_timeout: Duration,
    pub(crate) header_timeout: Duration,
    /// A response that makes no write progress for this long is dropped
    /// (nginx `send_timeout`).
    pub(crate) send_timeout: Duration,
    pub(crate) max_header_bytes: usize,
    pub(crate) max_body_bytes: u64,
    pub(crate) access_log: bool,
    pub(crate) access_log_format: AccessLogFormat,
    /// Host names (lower case, no trailing dot) requests may carry besides
    /// IP literals and `localhost`; `.example.com` also allows its
    /// subdomains. Anything else gets 421 (DNS rebinding).
    pub(crate) server_names: Vec<String>,
    /// Serve dotfiles and dot-directories (hidden, and 404, by default).
    pub(crate) show_hidden: bool,
    /// Compress compressible files on the fly for clients that accept it
    /// (precompressed `.br`/`.zst`/`.gz` siblings are served either way).
    pub(crate) compress: bool,
    /// Single-page apps: a GET for a path without an extension, from a
    /// client that accepts HTML, that matches no file gets `index.html`.
    pub(crate) spa: bool,
    /// Live reload: the master watches the root, and HTML responses get a
    /// script that reloads the page (or swaps its stylesheets) on a change.
    pub(crate) live_reload: bool,
    /// `Access-Control-Allow-Origin: *` on static responses, and answers
    /// to CORS preflights outside `/-/`.
    pub(crate) cors: bool,
    /// Headers added to every static response (names unique regardless of
    /// case; a later one replaces an earlier one), checked at start-up.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) supervisor: SupervisorConfig,
    pub(crate) lab: LabConfig,
    pub(crate) faults: FaultsConfig,
    /// The file this config was read from, re-read on SIGHUP.
    pub(crate) config_file: Option<PathBuf>,
}

/// `[supervisor]`: when the master kills, replaces or recycles a worker.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SupervisorConfig {
    /// Watchdog: a worker (or request) silent this long is killed.
    pub(crate) timeout: Duration,
    /// How long a graceful stop may take before SIGKILL.
    pub(crate) graceful_timeout: Duration,
    /// Recycle a worker after this many requests (0 = never).
    pub(crate) max_requests: u64,
    /// Random 0..=jitter added to max_requests per worker.
    pub(crate) max_requests_jitter: u64,
    /// Recycle a worker whose RSS exceeds this many bytes (0 = never).
    pub(crate) max_rss: u64,
}

/// `[lab]`: which of the endpoints under `/-/` answer peers that are not
/// on this machine (loopback peers always get them).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LabConfig {
    /// The read-only views: the dashboard, `/-/status`, `/-/metrics`.
    pub(crate) allow_remote: bool,
    /// The workloads, `/-/work/*`: each request may burn seconds of CPU.
    pub(crate) allow_remote_work: bool,
}

/// `[faults]`: the fault-injection endpoints under `/-/fault/`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FaultsConfig {
    pub(crate) enabled: bool,
    /// Answer peers that are not on this machine, and allow a non-loopback
    /// listen address with faults on.
    pub(crate) allow_remote: bool,
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// A bad key or value: `key` is what the user wrote (`workers`,
/// `supervisor.timeout`, `--workers`, `root`, or the config file itself
/// for TOML syntax errors), `reason` says what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub(crate) key: String,
    pub(crate) reason: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.key, self.reason)
    }
}

impl std::error::Error for ConfigError {}

// ---------------------------------------------------------------------------
// Limits and defaults (the defaults are the anchors' values: see design.md)
// ---------------------------------------------------------------------------

/// Most worker processes; the master sizes the scoreboard from it.
pub(crate) const MAX_WORKERS: usize = 512;
/// Most serving threads per worker; the scoreboard has a row for each.
pub(crate) const MAX_THREADS: usize = 1024;
const WORKERS: RangeInclusive<i64> = 1..=MAX_WORKERS as i64;
const THREADS: RangeInclusive<i64> = 1..=MAX_THREADS as i64;
const BACKLOG: RangeInclusive<i64> = 1..=65535;
const MAX_CONNECTIONS: RangeInclusive<i64> = 1..=1_000_000;
const MAX_HEADER_BYTES: RangeInclusive<u64> = 1024..=1024 * 1024;

/// The built-in configuration, before the file and the flags. `root` is
/// still the unresolved "."; [`finish`] canonicalizes whatever root wins.
pub(crate) fn defaults() -> Config {
    Config {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
        listen_localhost: false,
        root: PathBuf::from("."),
        workers: auto_workers(),
        mode: Mode::Process,
        threads: 8,
        accept: Accept::Shared,
        backlog: 1024,
        max_connections: 1024,
        keepalive_timeout: Duration::from_secs(5),
        header_timeout: Duration::from_secs(10),
        send_timeout: Duration::from_secs(30),
        max_header_bytes: 16 * 1024,
        max_body_bytes: 1024 * 1024,
        access_log: true,
        access_log_format: AccessLogFormat::Forkpool,
        server_names: Vec::new(),
        show_hidden: false,
        compress: true,
        spa: false,
        live_reload: false,
        cors: false,
        headers: Vec::new(),
        supervisor: SupervisorConfig {
            timeout: Duration::from_secs(30),
            graceful_timeout: Duration::from_secs(30),
            max_requests: 0,
            max_requests_jitter: 0,
            max_rss: 0,
        },
        lab: LabConfig {
            allow_remote: false,
            allow_remote_work: false,
        },
        faults: FaultsConfig {
            enabled: false,
            allow_remote: false,
        },
        config_file: None,
    }
}

// ---------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------

/// Builds the configuration: built-in defaults, then the `--config` file
/// (if any), then the flags in `cli`. Reads the file and checks that the
/// root directory exists; no other I/O.
pub fn load(cli: &Cli) -> Result<Config, ConfigError> {
    build(cli, cli.config.as_deref())
}

/// What a SIGHUP reload gives: the new config, and the listen address and
/// backlog it asked for when they differ from the ones in force.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reloaded {
    /// The config to run with. Its `listen` and `backlog` are the ones in
    /// force (a new socket needs a restart), and it was checked with them.
    pub(crate) config: Config,
    /// What the file and flags asked for instead, if they differ.
    pub(crate) not_applied: Option<(SocketAddr, i32)>,
    /// The accept strategy asked for, if it differs from the one in force:
    /// the sockets were laid out for that one when the master started.
    pub(crate) accept_not_applied: Option<Accept>,
}

/// For SIGHUP: re-reads `current.config_file` (the canonical path `load`
/// recorded) and applies the same flags on top, so a flag given at start-up
/// keeps winning over the file. `listen` and `backlog` stay as in `current`
/// (the socket is kept), and the checks run against the address actually in
/// force: faults can't be switched on for a public socket by a file that
/// names a loopback one. `current` is left untouched, so on error the
/// caller keeps running with it.
pub(crate) fn reload(current: &Config, cli: &Cli) -> Result<Reloaded, ConfigError> {
    let mut config = layered(cli, current.config_file.as_deref())?;
    let asked = (config.listen, config.listen_localhost, config.backlog);
    let kept = (current.listen, current.listen_localhost, current.backlog);
    (config.listen, config.listen_localhost, config.backlog) = kept;
    let asked_accept = std::mem::replace(&mut config.accept, current.accept);
    Ok(Reloaded {
        config: finish(config)?,
        not_applied: (asked != kept).then_some((asked.0, asked.2)),
        accept_not_applied: (asked_accept != current.accept).then_some(asked_accept),
    })
}

fn build(cli: &Cli, file: Option<&Path>) -> Result<Config, ConfigError> {
    finish(layered(cli, file)?)
}

/// The defaults, the file and the flags, before the checks that need them all.
fn layered(cli: &Cli, file: Option<&Path>) -> Result<Config, ConfigError> {
    let mut config = defaults();
    if let Some(path) = file {
        file::apply_file(&mut config, path)?;
    }
    apply_flags(&mut config, cli)?;
    Ok(config)
}

/// Resolves the root that won and checks what only makes sense once every
/// layer is in.
fn finish(mut config: Config) -> Result<Config, ConfigError> {
    config.root = resolve_root(&config.root)?;
    check_faults(&config)?;
    check_accept(&config)?;
    Ok(config)
}

/// `localhost` is two sockets (127.0.0.1 and ::1), and reuseport gives
/// each event loop one socket of one address: a loop can't have both, and
/// a group per address would split the lab's fairness figures in two.
/// Refused rather than guessed: the dev server wants `localhost`, the lab
/// wants one address.
fn check_accept(config: &Config) -> Result<(), ConfigError> {
    if config.accept == Accept::Reuseport && config.listen_localhost {
        return Err(ConfigError::new(
            "accept",
            format!(
                "\"reuseport\" spreads connections over the sockets of one address, and \
                 localhost:{port} is two (127.0.0.1 and [::1]); listen on 127.0.0.1:{port} \
                 or [::1]:{port} to use reuseport, or keep accept = \"shared\"",
                port = config.listen.port()
            ),
        ));
    }
    Ok(())
}

/// Fault endpoints kill and hang workers: refuse to expose them beyond
/// this machine unless the user says so twice.
fn check_faults(config: &Config) -> Result<(), ConfigError> {
    let faults = &config.faults;
    if faults.enabled && !faults.allow_remote && !is_loopback(config.listen.ip()) {
        return Err(ConfigError::new(
            "faults.enabled",
            format!(
                "fault endpoints (/-/fault/*) crash, hang and kill worker processes, and {} \
                 is not a loopback address; listen on 127.0.0.1 or [::1], or set \
                 faults.allow_remote = true in the config file to really expose them",
                config.listen
            ),
        ));
    }
    Ok(())
}

/// Whether `ip` is this machine's loopback: 127.0.0.0/8, `::1`, or
/// 127.0.0.0/8 mapped into IPv6 (`::ffff:127.0.0.1`, what a dual-stack
/// socket reports for an IPv4 peer). `0.0.0.0` and `::` are not: they
/// listen on every interface.
pub(crate) fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// `root` is relative to the current directory; stored canonical so that
/// later `chdir`s and symlink games don't change what is served.
fn resolve_root(root: &Path) -> Result<PathBuf, ConfigError> {
    let bad = |reason: String| ConfigError::new("root", reason);
    let canonical = std::fs::canonicalize(root).map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => bad(format!("no such directory: {}", root.display())),
        _ => bad(format!("cannot open {}: {err}", root.display())),
    })?;
    if !canonical.is_dir() {
        return Err(bad(format!("not a directory: {}", root.display())));
    }
    Ok(canonical)
}

// ---------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------

/// Flags win over the file. Errors name the flag's long form.
fn apply_flags(config: &mut Config, cli: &Cli) -> Result<(), ConfigError> {
    if let Some(root) = &cli.root {
        config.root = root.clone();
    }
    if let Some(listen) = &cli.listen {
        let listen = parse_listen(listen).map_err(|r| ConfigError::new("--listen", r))?;
        (config.listen, config.listen_localhost) = (listen.addr, listen.localhost);
    }
    if let Some(workers) = &cli.workers {
        config.workers = parse_workers(workers).map_err(|r| ConfigError::new("--workers", r))?;
    }
    if let Some(mode) = &cli.mode {
        config.mode = parse_mode(mode).map_err(|r| ConfigError::new("--mode", r))?;
    }
    if let Some(accept) = &cli.accept {
        config.accept = parse_accept(accept).map_err(|r| ConfigError::new("--accept", r))?;
    }
    if let Some(format) = &cli.access_log_format {
        config.access_log_format = parse_access_log_format(format)
            .map_err(|r| ConfigError::new("--access-log-format", r))?;
    }
    if let Some(threads) = cli.threads {
        let threads = i64::try_from(threads).unwrap_or(i64::MAX);
        config.threads =
            in_range(threads, &THREADS).map_err(|r| ConfigError::new("--threads", r))? as usize;
    }
    if cli.faults {
        config.faults.enabled = true;
    }
    if cli.hidden {
        config.show_hidden = true;
    }
    // Added to the file's names: the flag names one more for this run.
    for name in &cli.server_names {
        let name = parse_server_name(name).map_err(|r| ConfigError::new("--server-name", r))?;
        if !config.server_names.contains(&name) {
            config.server_names.push(name);
        }
    }
    if cli.spa {
        config.spa = true;
    }
    if cli.live_reload {
        config.live_reload = true;
    }
    if cli.cors {
        config.cors = true;
    }
    // Added to the file's headers; one the file names too is replaced.
    for line in &cli.headers {
        let (name, value) = parse_header_line(line).map_err(|r| ConfigError::new("--header", r))?;
        set_header(&mut config.headers, name, value);
    }
    Ok(())
}

/// Adds a header, replacing one of the same name (names ignore case).
fn set_header(headers: &mut Vec<(String, String)>, name: String, value: String) {
    headers.retain(|(old, _)| !old.eq_ignore_ascii_case(&name));
    headers.push((name, value));
}

#[cfg(test)]
mod tests {
    use super::testing::{Temp, cli, load_args, load_text, refused};
    use super::*;

    #[test]
    fn defaults() {
        let c = load_args(&[]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.root, std::fs::canonicalize(".").unwrap());
        assert_eq!(c.workers, auto_workers());
        assert_eq!(c.mode, Mode::Process);
        assert_eq!(c.threads, 8);
        assert_eq!(c.backlog, 1024);
        assert_eq!(c.max_connections, 1024);
        assert_eq!(c.keepalive_timeout, Duration::from_secs(5));
        assert_eq!(c.header_timeout, Duration::from_secs(10));
        assert_eq!(c.max_header_bytes, 16 * 1024);
        assert_eq!(c.max_body_bytes, 1024 * 1024);
        assert!(c.access_log);
        assert_eq!(c.access_log_format, AccessLogFormat::Forkpool);
        assert!(c.server_names.is_empty());
        assert!(!c.show_hidden);
        assert!(c.compress);
        assert_eq!(c.supervisor.timeout, Duration::from_secs(30));
        assert_eq!(c.supervisor.graceful_timeout, Duration::from_secs(30));
        assert_eq!(c.supervisor.max_requests, 0);
        assert_eq!(c.supervisor.max_requests_jitter, 0);
        assert_eq!(c.supervisor.max_rss, 0);
        assert_eq!(
            c.lab,
            LabConfig {
                allow_remote: false,
                allow_remote_work: false
            }
        );
        assert_eq!(
            c.faults,
            FaultsConfig {
                enabled: false,
                allow_remote: false
            }
        );
        assert_eq!(c.config_file, None);
    }

    #[test]
    fn auto_workers_is_the_cpu_count() {
        let cpus = std::thread::available_parallelism().unwrap().get().min(512);
        assert_eq!(load_text("workers = \"auto\"\n").unwrap().workers, cpus);
        assert_eq!(load_args(&["--workers", "auto"]).unwrap().workers, cpus);
        assert_eq!(load_args(&["-w", "AUTO"]).unwrap().workers, cpus);
    }

    #[test]
    fn each_flag_overrides_the_file() {
        let root = Temp::dir();
        let file =
            Temp::file("listen = \"127.0.0.1:1\"\nworkers = 2\nmode = \"process\"\nthreads = 2\n");
        let c = load_args(&[
            root.str(),
            "--config",
            file.str(),
            "--listen",
            "localhost:0",
            "--workers",
            "5",
            "--mode",
            "thread",
            "--threads",
            "16",
            "--faults",
        ])
        .unwrap();
        assert_eq!(c.root, std::fs::canonicalize(&root.0).unwrap());
        assert_eq!(c.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!((c.workers, c.mode, c.threads), (5, Mode::Thread, 16));
        assert!(c.faults.enabled);
        // Short forms.
        let c = load_args(&["-l", "9000", "-w", "7"]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(c.workers, 7);
    }

    #[test]
    fn bad_flags_name_the_flag() {
        for (args, key) in [
            (&["--workers", "0"][..], "--workers"),
            (&["--workers", "lots"][..], "--workers"),
            (&["--workers", "513"][..], "--workers"),
            (&["--mode", "fiber"][..], "--mode"),
            (
                &["--access-log-format", "apache"][..],
                "--access-log-format",
            ),
            (&["--threads", "0"][..], "--threads"),
            (&["--threads", "1025"][..], "--threads"),
            (&["--listen", "nowhere"][..], "--listen"),
            (&["--listen", "127.0.0.1:99999"][..], "--listen"),
            (&["/definitely/not/a/dir"][..], "root"),
        ] {
            let err = load_args(args).expect_err(&format!("{args:?}"));
            assert_eq!(err.key, key, "{args:?}: {err}");
        }
        let err = load_args(&["--config", "/definitely/not/here.toml"]).unwrap_err();
        assert_eq!(err.key, "--config");
        assert!(err.reason.contains("/definitely/not/here.toml"), "{err}");
    }

    #[test]
    fn root_errors_say_why() {
        let err = load_args(&["/definitely/not/a/dir"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid root: no such directory: /definitely/not/a/dir"
        );
        let file = Temp::file("");
        let err = load_args(&[file.str()]).unwrap_err();
        assert!(err.reason.starts_with("not a directory: "), "{err}");
    }

    #[test]
    fn faults_stay_on_loopback_unless_allowed() {
        let err = load_args(&["--faults", "--listen", "0.0.0.0:8080"]).unwrap_err();
        assert_eq!(err.key, "faults.enabled");
        assert!(err.reason.contains("faults.allow_remote = true"), "{err}");
        refused(
            "listen = \"0.0.0.0:0\"\n[faults]\nenabled = true\n",
            "faults.enabled",
        );
        let allowed = "listen = \"0.0.0.0:0\"\n[faults]\nenabled = true\nallow_remote = true\n";
        assert!(load_text(allowed).unwrap().faults.enabled);
        for listen in ["127.0.0.1:0", "[::1]:0", "localhost:0"] {
            assert!(
                load_args(&["--faults", "-l", listen])
                    .unwrap()
                    .faults
                    .enabled,
                "{listen}"
            );
        }
        // Off by default, so a public address alone is fine.
        assert!(!load_args(&["-l", "0.0.0.0:0"]).unwrap().faults.enabled);
    }

    #[test]
    fn reload_keeps_the_accept_strategy_the_sockets_were_made_for() {
        let file = Temp::file("accept = \"shared\"\n");
        let flags = cli(&["--config", file.str()]);
        let first = load(&flags).unwrap();
        std::fs::write(&file.0, "accept = \"reuseport\"\nworkers = 3\n").unwrap();
        let reloaded = reload(&first, &flags).unwrap();
        assert_eq!(reloaded.accept_not_applied, Some(Accept::Reuseport));
        assert_eq!(reloaded.config.accept, Accept::Shared);
        assert_eq!(reloaded.config.workers, 3, "the rest is applied");
    }

    #[test]
    fn reload_rereads_the_file_and_keeps_the_flags() {
        let file = Temp::file("workers = 2\nthreads = 2\n");
        let flags = cli(&["--config", file.str(), "--threads", "6"]);
        let first = load(&flags).unwrap();
        assert_eq!((first.workers, first.threads), (2, 6));
        std::fs::write(&file.0, "workers = 3\nthreads = 3\n").unwrap();
        let second = reload(&first, &flags).unwrap();
        assert_eq!(second.not_applied, None);
        assert_eq!(second.accept_not_applied, None);
        let second = second.config;
        assert_eq!((second.workers, second.threads), (3, 6));
        assert_eq!(second.config_file, first.config_file);
        // A broken edit is an error; the caller keeps `second`.
        std::fs::write(&file.0, "workers = 0\n").unwrap();
        assert_eq!(reload(&second, &flags).unwrap_err().key, "workers");
        // Without a file, reload is just the flags again.
        let plain = load_args(&["-w", "4"]).unwrap();
        assert_eq!(reload(&plain, &cli(&["-w", "4"])).unwrap().config, plain);
    }

    #[test]
    fn reload_keeps_the_socket_and_checks_faults_against_it() {
        let file = Temp::file("listen = \"0.0.0.0:8080\"\n");
        let flags = cli(&["--config", file.str()]);
        let public = load(&flags).unwrap();
        // A new address and backlog are reported, not applied.
        std::fs::write(&file.0, "listen = \"127.0.0.1:9\"\nbacklog = 7\n").unwrap();
        let reloaded = reload(&public, &flags).unwrap();
        assert_eq!(reloaded.config.listen, public.listen);
        assert_eq!(reloaded.config.backlog, public.backlog);
        assert_eq!(
            reloaded.not_applied,
            Some(("127.0.0.1:9".parse().unwrap(), 7))
        );
        // Faults with a loopback address in the file, while the socket in
        // force is public: refused, naming the address in force.
        std::fs::write(
            &file.0,
            "listen = \"127.0.0.1:9\"\n[faults]\nenabled = true\n",
        )
        .unwrap();
        let err = reload(&public, &flags).unwrap_err();
        assert_eq!(err.key, "faults.enabled");
        assert!(err.reason.contains("0.0.0.0:8080"), "{err}");
        // The same file is fine for a server whose socket is on loopback.
        let local = load_args(&["--config", file.str()]).unwrap();
        std::fs::write(&file.0, "[faults]\nenabled = true\n").unwrap();
        assert!(reload(&local, &flags).unwrap().config.faults.enabled);
    }

    #[test]
    fn loopback_addresses() {
        for ip in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "0.0.0.0",
            "::",
            "10.0.0.1",
            "192.0.2.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "fe80::1",
        ] {
            assert!(!is_loopback(ip.parse().unwrap()), "{ip}");
        }
        // The faults check uses it: a mapped loopback address is loopback.
        assert!(
            load_args(&["--faults", "-l", "[::ffff:127.0.0.1]:0"])
                .unwrap()
                .faults
                .enabled
        );
    }

    #[test]
    fn localhost_means_both_stacks() {
        let c = load_args(&["-l", "localhost:0"]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:0".parse().unwrap());
        assert!(c.listen_localhost);
        for listen in ["127.0.0.1:0", "0", "[::1]:0"] {
            assert!(!load_args(&["-l", listen]).unwrap().listen_localhost);
        }
        assert!(
            load_text("listen = \"localhost:9\"\n")
                .unwrap()
                .listen_localhost
        );
        // The flag wins over the file both ways.
        let file = Temp::file("listen = \"localhost:9\"\n");
        let c = load_args(&["--config", file.str(), "-l", "127.0.0.1:9"]).unwrap();
        assert!(!c.listen_localhost);
        // A reload keeps the sockets in force, localhost or not.
        let flags = cli(&["--config", file.str()]);
        let first = load(&flags).unwrap();
        std::fs::write(&file.0, "listen = \"127.0.0.1:9\"\n").unwrap();
        let reloaded = reload(&first, &flags).unwrap();
        assert!(reloaded.config.listen_localhost);
        assert!(reloaded.not_applied.is_some());
    }

    #[test]
    fn reuseport_on_localhost_is_refused() {
        let err = load_args(&["-l", "localhost:0", "--accept", "reuseport"]).unwrap_err();
        assert_eq!(err.key, "accept");
        assert!(err.reason.contains("127.0.0.1:0"), "{err}");
        refused(
            "listen = \"localhost:0\"\naccept = \"reuseport\"\n",
            "accept",
        );
        assert!(load_args(&["-l", "127.0.0.1:0", "--accept", "reuseport"]).is_ok());
        assert!(load_args(&["-l", "localhost:0", "--accept", "shared"]).is_ok());
    }

    #[test]
    fn dev_server_flags() {
        let c = load_args(&[]).unwrap();
        assert!(!c.spa && !c.cors && !c.live_reload && c.headers.is_empty());
        let file = Temp::file("spa = false\n[headers]\nX-A = \"file\"\nX-B = \"file\"\n");
        let c = load_args(&[
            "--config",
            file.str(),
            "--spa",
            "--live-reload",
            "--cors",
            "--header",
            "x-a: flag",
            "--header",
            "X-C:flag",
        ])
        .unwrap();
        assert!(c.spa && c.cors && c.live_reload);
        let pairs: Vec<(&str, &str)> = c
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        // The flag replaces the file's header of the same name, in any case.
        assert_eq!(pairs, [("X-B", "file"), ("x-a", "flag"), ("X-C", "flag")]);
        for bad in ["X-A", "Bad Name: 1", "X-A: a\rb", "Date: now"] {
            let err = load_args(&["--header", bad]).unwrap_err();
            assert_eq!(err.key, "--header", "{bad:?}: {err}");
            assert!(err.to_string().starts_with("invalid --header: "), "{err}");
        }
    }

    #[test]
    fn hidden_and_server_name_flags() {
        let file = Temp::file("server_names = [\"a.example\"]\n");
        let c = load_args(&[
            "--config",
            file.str(),
            "--hidden",
            "--server-name",
            "B.Example",
            "--server-name",
            "a.example",
        ])
        .unwrap();
        assert!(c.show_hidden);
        // The flags add to the file's names.
        assert_eq!(c.server_names, ["a.example", "b.example"]);
        let err = load_args(&["--server-name", "x.example:80"]).unwrap_err();
        assert_eq!(err.key, "--server-name");
    }
}
