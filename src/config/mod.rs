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
//!    `--faults`.
//!
//! [`load`] builds a [`Config`] at start-up; [`reload`] builds a fresh one
//! for SIGHUP from the same file and flags. Neither touches the network or
//! the process: the only I/O is reading the file and checking the root.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::{Table, Value};

use crate::cli::Cli;

/// The architecture of every worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One thread per worker running a mio event loop (nginx).
    Process,
    /// The worker's main thread runs the loop; a pool of threads serves requests (gunicorn gthread).
    Thread,
}

impl Mode {
    /// "process" or "thread", as in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Process => "process",
            Mode::Thread => "thread",
        }
    }
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

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// A bad key or value: `key` is what the user wrote (`workers`,
/// `supervisor.timeout`, `--workers`, `root`, or the config file itself
/// for TOML syntax errors), `reason` says what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
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
pub const MAX_WORKERS: usize = 512;
/// Most serving threads per worker; the scoreboard has a row for each.
pub const MAX_THREADS: usize = 1024;
const WORKERS: RangeInclusive<i64> = 1..=MAX_WORKERS as i64;
const THREADS: RangeInclusive<i64> = 1..=MAX_THREADS as i64;
const BACKLOG: RangeInclusive<i64> = 1..=65535;
const MAX_CONNECTIONS: RangeInclusive<i64> = 1..=1_000_000;
const MAX_HEADER_BYTES: RangeInclusive<u64> = 1024..=1024 * 1024;

/// The built-in configuration, before the file and the flags. `root` is
/// still the unresolved "."; [`finish`] canonicalizes whatever root wins.
pub fn defaults() -> Config {
    Config {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
        root: PathBuf::from("."),
        workers: auto_workers(),
        mode: Mode::Process,
        threads: 8,
        backlog: 1024,
        max_connections: 1024,
        keepalive_timeout: Duration::from_secs(5),
        header_timeout: Duration::from_secs(10),
        max_header_bytes: 16 * 1024,
        max_body_bytes: 1024 * 1024,
        access_log: true,
        supervisor: SupervisorConfig {
            timeout: Duration::from_secs(30),
            graceful_timeout: Duration::from_secs(30),
            max_requests: 0,
            max_requests_jitter: 0,
            max_rss: 0,
        },
        faults: FaultsConfig {
            enabled: false,
            allow_remote: false,
        },
        config_file: None,
    }
}

/// `workers = "auto"`: one worker per CPU this process may run on.
fn auto_workers() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    cpus.min(MAX_WORKERS)
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

/// For SIGHUP: re-reads `current.config_file` (the canonical path `load`
/// recorded) and applies the same flags on top, so a flag given at start-up
/// keeps winning over the file. Returns a complete new [`Config`]; `current`
/// is left untouched, so on error the caller keeps running with it. Which
/// changes can be applied live (a new `listen` needs a new socket, for
/// instance) is the caller's business.
pub fn reload(current: &Config, cli: &Cli) -> Result<Config, ConfigError> {
    build(cli, current.config_file.as_deref())
}

fn build(cli: &Cli, file: Option<&Path>) -> Result<Config, ConfigError> {
    let mut config = defaults();
    if let Some(path) = file {
        apply_file(&mut config, path)?;
    }
    apply_flags(&mut config, cli)?;
    finish(config)
}

/// Resolves the root that won and checks what only makes sense once every
/// layer is in.
fn finish(mut config: Config) -> Result<Config, ConfigError> {
    config.root = resolve_root(&config.root)?;
    check_faults(&config)?;
    Ok(config)
}

/// Fault endpoints kill and hang workers: refuse to expose them beyond
/// this machine unless the user says so twice.
fn check_faults(config: &Config) -> Result<(), ConfigError> {
    let faults = &config.faults;
    if faults.enabled && !faults.allow_remote && !config.listen.ip().is_loopback() {
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
        config.listen = parse_listen(listen).map_err(|r| ConfigError::new("--listen", r))?;
    }
    if let Some(workers) = &cli.workers {
        config.workers = parse_workers(workers).map_err(|r| ConfigError::new("--workers", r))?;
    }
    if let Some(mode) = &cli.mode {
        config.mode = parse_mode(mode).map_err(|r| ConfigError::new("--mode", r))?;
    }
    if let Some(threads) = cli.threads {
        let threads = i64::try_from(threads).unwrap_or(i64::MAX);
        config.threads =
            in_range(threads, &THREADS).map_err(|r| ConfigError::new("--threads", r))? as usize;
    }
    if cli.faults {
        config.faults.enabled = true;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The file
// ---------------------------------------------------------------------------

// serde checks the shape (every key known, tables where tables belong);
// the values stay `toml::Value` so that each is converted below by a
// function that knows its key and can name it in the error.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTop {
    listen: Option<Value>,
    root: Option<Value>,
    workers: Option<Value>,
    mode: Option<Value>,
    threads: Option<Value>,
    backlog: Option<Value>,
    max_connections: Option<Value>,
    keepalive_timeout: Option<Value>,
    header_timeout: Option<Value>,
    max_header_bytes: Option<Value>,
    max_body_bytes: Option<Value>,
    access_log: Option<Value>,
    supervisor: Option<Value>,
    faults: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSupervisor {
    timeout: Option<Value>,
    graceful_timeout: Option<Value>,
    max_requests: Option<Value>,
    max_requests_jitter: Option<Value>,
    max_rss: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFaults {
    enabled: Option<Value>,
    allow_remote: Option<Value>,
}

fn apply_file(config: &mut Config, path: &Path) -> Result<(), ConfigError> {
    let unreadable = |err: io::Error| {
        ConfigError::new("--config", format!("cannot read {}: {err}", path.display()))
    };
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    let table: Table = toml::from_str(&text).map_err(|err| syntax_error(path, &text, &err))?;
    let file: FileTop = check_keys(table, "")?;
    apply_top(config, file)?;
    config.config_file = Some(std::fs::canonicalize(path).map_err(unreadable)?);
    Ok(())
}

fn apply_top(c: &mut Config, file: FileTop) -> Result<(), ConfigError> {
    if let Some(v) = file.listen {
        c.listen = listen_value(&v).map_err(|r| ConfigError::new("listen", r))?;
    }
    if let Some(v) = file.root {
        c.root =
            PathBuf::from(string(&v, "a directory path").map_err(|r| ConfigError::new("root", r))?);
    }
    if let Some(v) = file.workers {
        c.workers = workers_value(&v).map_err(|r| ConfigError::new("workers", r))?;
    }
    if let Some(v) = file.mode {
        let mode = string(&v, r#""process" or "thread""#).and_then(parse_mode);
        c.mode = mode.map_err(|r| ConfigError::new("mode", r))?;
    }
    if let Some(v) = file.threads {
        c.threads = int_in(&v, "threads", &THREADS)? as usize;
    }
    if let Some(v) = file.backlog {
        c.backlog = int_in(&v, "backlog", &BACKLOG)? as i32;
    }
    if let Some(v) = file.max_connections {
        c.max_connections = int_in(&v, "max_connections", &MAX_CONNECTIONS)? as usize;
    }
    if let Some(v) = file.keepalive_timeout {
        c.keepalive_timeout = timeout(&v, "keepalive_timeout")?;
    }
    if let Some(v) = file.header_timeout {
        c.header_timeout = timeout(&v, "header_timeout")?;
    }
    if let Some(v) = file.max_header_bytes {
        c.max_header_bytes = size_in(&v, "max_header_bytes", &MAX_HEADER_BYTES)? as usize;
    }
    if let Some(v) = file.max_body_bytes {
        c.max_body_bytes = size(&v, "max_body_bytes")?;
    }
    if let Some(v) = file.access_log {
        c.access_log = boolean(&v, "access_log")?;
    }
    if let Some(v) = file.supervisor {
        apply_supervisor(
            &mut c.supervisor,
            check_keys(table(v, "supervisor")?, "supervisor.")?,
        )?;
    }
    if let Some(v) = file.faults {
        apply_faults(&mut c.faults, check_keys(table(v, "faults")?, "faults.")?)?;
    }
    Ok(())
}

fn apply_supervisor(s: &mut SupervisorConfig, file: FileSupervisor) -> Result<(), ConfigError> {
    if let Some(v) = file.timeout {
        s.timeout = timeout(&v, "supervisor.timeout")?;
    }
    if let Some(v) = file.graceful_timeout {
        s.graceful_timeout = timeout(&v, "supervisor.graceful_timeout")?;
    }
    if let Some(v) = file.max_requests {
        s.max_requests = int_in(&v, "supervisor.max_requests", &(0..=i64::MAX))? as u64;
    }
    if let Some(v) = file.max_requests_jitter {
        s.max_requests_jitter =
            int_in(&v, "supervisor.max_requests_jitter", &(0..=i64::MAX))? as u64;
    }
    if let Some(v) = file.max_rss {
        s.max_rss = size(&v, "supervisor.max_rss")?;
    }
    Ok(())
}

fn apply_faults(f: &mut FaultsConfig, file: FileFaults) -> Result<(), ConfigError> {
    if let Some(v) = file.enabled {
        f.enabled = boolean(&v, "faults.enabled")?;
    }
    if let Some(v) = file.allow_remote {
        f.allow_remote = boolean(&v, "faults.allow_remote")?;
    }
    Ok(())
}

/// A TOML syntax error, on one line: which file, where, what.
fn syntax_error(path: &Path, text: &str, err: &toml::de::Error) -> ConfigError {
    let message = err.message().trim().replace('\n', "; ");
    let reason = match err.span() {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    };
    ConfigError::new(format!("config file {}", path.display()), reason)
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    (line, before[line_start..].chars().count() + 1)
}

/// Runs serde over one table (`prefix` is "" or "supervisor." …) so that an
/// unknown key comes back as the full dotted key that names it.
fn check_keys<T: DeserializeOwned>(table: Table, prefix: &str) -> Result<T, ConfigError> {
    Value::Table(table)
        .try_into()
        .map_err(|err: toml::de::Error| {
            let message = err.message().trim().to_owned();
            match unknown_field(&message) {
                Some((key, known)) => {
                    let reason = match closest(key, &known) {
                        Some(guess) => format!("unknown key, did you mean \"{prefix}{guess}\"?"),
                        None => format!("unknown key, expected one of: {}", known.join(", ")),
                    };
                    ConfigError::new(format!("{prefix}{key}"), reason)
                }
                // Not expected (every value is a `toml::Value`), but never lose it.
                None => ConfigError::new(
                    if prefix.is_empty() {
                        "config file"
                    } else {
                        prefix.trim_end_matches('.')
                    },
                    message,
                ),
            }
        })
}

/// Picks serde's "unknown field `x`, expected one of `a`, `b`" apart into
/// `x` and `[a, b]`.
fn unknown_field(message: &str) -> Option<(&str, Vec<&str>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let known = rest.split('`').skip(1).step_by(2).collect();
    Some((key, known))
}

/// The known key nearest to a misspelt one, if it is a plausible typo.
fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

// ---------------------------------------------------------------------------
// Typed values. Each returns the reason; the caller adds the key.
// ---------------------------------------------------------------------------

/// How a value is shown back in an error: as written for scalars.
fn shown(v: &Value) -> String {
    match v {
        Value::Table(_) | Value::Array(_) => format!("a {}", v.type_str()),
        _ => v.to_string(),
    }
}

fn table(v: Value, key: &str) -> Result<Table, ConfigError> {
    match v {
        Value::Table(t) => Ok(t),
        other => Err(ConfigError::new(
            key,
            format!("expected a table ([{key}]), found {}", shown(&other)),
        )),
    }
}

fn string<'v>(v: &'v Value, expected: &str) -> Result<&'v str, String> {
    v.as_str()
        .ok_or_else(|| format!("expected {expected}, found {}", shown(v)))
}

fn boolean(v: &Value, key: &str) -> Result<bool, ConfigError> {
    v.as_bool()
        .ok_or_else(|| ConfigError::new(key, format!("expected true or false, found {}", shown(v))))
}

fn int_in(v: &Value, key: &str, range: &RangeInclusive<i64>) -> Result<i64, ConfigError> {
    let n = v
        .as_integer()
        .ok_or_else(|| ConfigError::new(key, format!("expected an integer, found {}", shown(v))))?;
    in_range(n, range).map_err(|r| ConfigError::new(key, r))
}

fn in_range<T: PartialOrd + fmt::Display + Copy>(
    n: T,
    range: &RangeInclusive<T>,
) -> Result<T, String> {
    if range.contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "must be between {} and {}, found {n}",
            range.start(),
            range.end()
        ))
    }
}

/// A timeout: a duration string, or an integer number of seconds; never 0.
fn timeout(v: &Value, key: &str) -> Result<Duration, ConfigError> {
    let bad = |r: String| ConfigError::new(key, r);
    let duration = match v {
        Value::String(s) => parse_duration(s).map_err(bad)?,
        Value::Integer(n) => Duration::from_secs(u64::try_from(*n).unwrap_or(0)),
        _ => {
            return Err(bad(format!(
                "expected a duration such as \"5s\", found {}",
                shown(v)
            )));
        }
    };
    if duration.is_zero() {
        return Err(bad(format!("must be longer than 0, found {}", shown(v))));
    }
    Ok(duration)
}

/// A size: a string with a unit, or an integer number of bytes.
fn size(v: &Value, key: &str) -> Result<u64, ConfigError> {
    let bad = |r: String| ConfigError::new(key, r);
    match v {
        Value::String(s) => parse_size(s).map_err(bad),
        Value::Integer(n) => {
            u64::try_from(*n).map_err(|_| bad(format!("must not be negative, found {n}")))
        }
        _ => Err(bad(format!(
            "expected a size such as \"16KiB\", found {}",
            shown(v)
        ))),
    }
}

fn size_in(v: &Value, key: &str, range: &RangeInclusive<u64>) -> Result<u64, ConfigError> {
    let n = size(v, key)?;
    if range.contains(&n) {
        Ok(n)
    } else {
        let reason = format!(
            "must be between 1KiB and 1MiB ({} to {} bytes), found {n} bytes",
            range.start(),
            range.end()
        );
        Err(ConfigError::new(key, reason))
    }
}

fn listen_value(v: &Value) -> Result<SocketAddr, String> {
    match v {
        Value::String(s) => parse_listen(s),
        Value::Integer(n) => parse_listen(&n.to_string()),
        _ => Err(format!(
            "expected an address such as \"127.0.0.1:8080\", found {}",
            shown(v)
        )),
    }
}

fn workers_value(v: &Value) -> Result<usize, String> {
    match v {
        Value::Integer(n) => Ok(in_range(*n, &WORKERS)? as usize),
        Value::String(s) => parse_workers(s),
        _ => Err(format!(
            "expected a number of workers or \"auto\", found {}",
            shown(v)
        )),
    }
}

/// `"auto"` (one per CPU) or a count from 1 to 512.
fn parse_workers(s: &str) -> Result<usize, String> {
    if s.trim().eq_ignore_ascii_case("auto") {
        return Ok(auto_workers());
    }
    let n: i64 = s.trim().parse().map_err(|_| {
        format!("expected a number of workers (1 to {MAX_WORKERS}) or \"auto\", found \"{s}\"")
    })?;
    Ok(in_range(n, &WORKERS)? as usize)
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "process" => Ok(Mode::Process),
        "thread" => Ok(Mode::Thread),
        _ => Err(format!("expected \"process\" or \"thread\", found \"{s}\"")),
    }
}

/// A listen address: `IP:PORT` or `[IPv6]:PORT`, `localhost:PORT`
/// (127.0.0.1; no resolver is consulted), or a bare `PORT` (127.0.0.1).
/// Port 0 asks the kernel for a free port.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let port = s.strip_prefix("localhost:").unwrap_or(s);
    if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
        return match port.parse::<u16>() {
            Ok(port) => Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
            Err(_) => Err(format!("port must be between 0 and 65535, found {port}")),
        };
    }
    Err(format!(
        "expected IP:PORT, [IPv6]:PORT, localhost:PORT or a port number, found \"{s}\""
    ))
}

/// Parses a duration: a decimal number and a unit, `ms`, `s`, `m` or `h`
/// ("250ms", "5s", "1.5s", "2m", "1h"); no unit means seconds. Fractions
/// below a nanosecond are dropped.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    const NANOS: [(&str, u64); 4] = [
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60 * 1_000_000_000),
        ("h", 3600 * 1_000_000_000),
    ];
    let expected = || {
        format!("expected a duration such as \"5s\", \"250ms\", \"2m\" or \"1h\", found \"{s}\"")
    };
    let (number, unit) = split_number(s);
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" => 1_000_000_000,
        unit => {
            NANOS
                .iter()
                .find(|(u, _)| *u == unit)
                .ok_or_else(expected)?
                .1
        }
    };
    if !is_decimal(number) {
        return Err(expected());
    }
    let nanos = scale_decimal(number, scale).ok_or_else(|| format!("\"{s}\" is too long"))?;
    Ok(Duration::from_nanos(nanos))
}

/// Parses a size: a decimal number and a unit, case-insensitive: `B`,
/// `KB`/`MB`/`GB`/`TB` (powers of 1000) or `KiB`/`MiB`/`GiB`/`TiB` (powers
/// of 1024); no unit means bytes. Fractions of a byte are dropped.
pub fn parse_size(s: &str) -> Result<u64, String> {
    const UNITS: [(&str, u64); 9] = [
        ("b", 1),
        ("kb", 1000),
        ("mb", 1_000_000),
        ("gb", 1_000_000_000),
        ("tb", 1_000_000_000_000),
        ("kib", 1 << 10),
        ("mib", 1 << 20),
        ("gib", 1 << 30),
        ("tib", 1 << 40),
    ];
    let expected = || {
        format!("expected a size such as \"512B\", \"16KiB\", \"64MiB\" or \"1GB\", found \"{s}\"")
    };
    let (number, unit) = split_number(s);
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" => 1,
        unit => {
            UNITS
                .iter()
                .find(|(u, _)| *u == unit)
                .ok_or_else(expected)?
                .1
        }
    };
    if !is_decimal(number) {
        return Err(expected());
    }
    scale_decimal(number, scale).ok_or_else(|| format!("\"{s}\" is too large"))
}

/// Splits " 1.5 s " into ("1.5", "s").
fn split_number(s: &str) -> (&str, &str) {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    (&s[..end], s[end..].trim_start())
}

/// Digits with at most one decimal point, and at least one digit.
fn is_decimal(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && s.bytes().filter(|&b| b == b'.').count() <= 1
}

/// `number` (already checked by [`is_decimal`]) times `scale`, exactly,
/// rounded down; `None` if it does not fit a `u64`.
fn scale_decimal(number: &str, scale: u64) -> Option<u64> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    // Digits past the 18th are far below one unit of any scale used here.
    let fraction = &fraction[..fraction.len().min(18)];
    let numerator: u128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().ok()?
    };
    let denominator = 10u128.pow(fraction.len() as u32);
    let total = whole
        .checked_mul(u128::from(scale))?
        .checked_add(numerator * u128::from(scale) / denominator)?;
    u64::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A temp file or directory, removed on drop; unique per test.
    struct Temp(PathBuf);

    impl Temp {
        fn path(name: &str) -> Temp {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let unique = format!("forkpool-config-{}-{n}-{name}", std::process::id());
            Temp(std::env::temp_dir().join(unique))
        }

        fn file(text: &str) -> Temp {
            let temp = Temp::path("forkpool.toml");
            std::fs::write(&temp.0, text).unwrap();
            temp
        }

        fn dir() -> Temp {
            let temp = Temp::path("root");
            std::fs::create_dir(&temp.0).unwrap();
            temp
        }

        fn str(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
            let _ = std::fs::remove_dir(&self.0);
        }
    }

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("forkpool").chain(args.iter().copied())).unwrap()
    }

    fn load_args(args: &[&str]) -> Result<Config, ConfigError> {
        load(&cli(args))
    }

    fn load_text(text: &str) -> Result<Config, ConfigError> {
        let file = Temp::file(text);
        load_args(&["--config", file.str()])
    }

    /// Asserts `text` as a config file is refused, naming `key`.
    fn refused(text: &str, key: &str) -> ConfigError {
        let err = load_text(text).expect_err(text);
        assert_eq!(err.key, key, "{text:?}: {err}");
        assert!(
            err.to_string().starts_with(&format!("invalid {key}: ")),
            "{err}"
        );
        err
    }

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
        assert_eq!(c.supervisor.timeout, Duration::from_secs(30));
        assert_eq!(c.supervisor.graceful_timeout, Duration::from_secs(30));
        assert_eq!(c.supervisor.max_requests, 0);
        assert_eq!(c.supervisor.max_requests_jitter, 0);
        assert_eq!(c.supervisor.max_rss, 0);
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
    fn shipped_config_file_matches_the_defaults() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/forkpool.toml");
        let mut from_file = load_args(&["--config", path]).unwrap();
        assert_eq!(
            from_file.config_file,
            Some(std::fs::canonicalize(path).unwrap())
        );
        from_file.config_file = None;
        assert_eq!(from_file, load_args(&[]).unwrap());
    }

    #[test]
    fn auto_workers_is_the_cpu_count() {
        let cpus = std::thread::available_parallelism().unwrap().get().min(512);
        assert_eq!(load_text("workers = \"auto\"\n").unwrap().workers, cpus);
        assert_eq!(load_args(&["--workers", "auto"]).unwrap().workers, cpus);
        assert_eq!(load_args(&["-w", "AUTO"]).unwrap().workers, cpus);
    }

    #[test]
    fn every_key_in_the_file_is_applied() {
        let root = Temp::dir();
        let text = format!(
            r#"
            listen = "[::1]:0"
            root = "{}"
            workers = 3
            mode = "thread"
            threads = 4
            backlog = 64
            max_connections = 10
            keepalive_timeout = "250ms"
            header_timeout = 2
            max_header_bytes = "8KiB"
            max_body_bytes = 100
            access_log = false
            [supervisor]
            timeout = "1m"
            graceful_timeout = "1.5s"
            max_requests = 1000
            max_requests_jitter = 50
            max_rss = "64MiB"
            [faults]
            enabled = true
            allow_remote = true
            "#,
            root.str()
        );
        let c = load_text(&text).unwrap();
        assert_eq!(c.listen, "[::1]:0".parse().unwrap());
        assert_eq!(c.root, std::fs::canonicalize(&root.0).unwrap());
        assert_eq!((c.workers, c.mode, c.threads), (3, Mode::Thread, 4));
        assert_eq!((c.backlog, c.max_connections), (64, 10));
        assert_eq!(c.keepalive_timeout, Duration::from_millis(250));
        assert_eq!(c.header_timeout, Duration::from_secs(2));
        assert_eq!((c.max_header_bytes, c.max_body_bytes), (8192, 100));
        assert!(!c.access_log);
        assert_eq!(c.supervisor.timeout, Duration::from_secs(60));
        assert_eq!(c.supervisor.graceful_timeout, Duration::from_millis(1500));
        assert_eq!(c.supervisor.max_requests, 1000);
        assert_eq!(c.supervisor.max_requests_jitter, 50);
        assert_eq!(c.supervisor.max_rss, 64 << 20);
        assert_eq!(
            c.faults,
            FaultsConfig {
                enabled: true,
                allow_remote: true
            }
        );
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
    fn unknown_keys_are_named() {
        let err = refused("workerz = 2\n", "workerz");
        assert!(
            err.to_string().contains("did you mean \"workers\""),
            "{err}"
        );
        let err = refused("[supervisor]\ntimeoutt = \"1s\"\n", "supervisor.timeoutt");
        assert!(err.to_string().contains("\"supervisor.timeout\""), "{err}");
        refused("[faults]\nenable = true\n", "faults.enable");
        // Far from every key: list them instead of guessing.
        let err = refused("colour = \"blue\"\n", "colour");
        assert!(err.reason.contains("listen, root, workers"), "{err}");
        // Dotted keys reach the same tables.
        refused("supervisor.nope = 1\n", "supervisor.nope");
        // A table where a value belongs, and the reverse.
        refused("[listen]\nport = 1\n", "listen");
        refused("supervisor = 5\n", "supervisor");
    }

    #[test]
    fn toml_syntax_errors_are_one_line_with_a_position() {
        let err = load_text("workers = 2\nmode = \n").unwrap_err();
        assert!(err.key.starts_with("config file "), "{err}");
        assert!(err.reason.starts_with("line 2, column "), "{err}");
        assert!(!err.to_string().contains('\n'), "{err}");
        let err = load_text("workers = 2\nworkers = 3\n").unwrap_err();
        assert!(err.reason.starts_with("line 2"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let file = Temp::file("not a dir");
        for (text, key) in [
            ("keepalive_timeout = \"soon\"\n", "keepalive_timeout"),
            ("header_timeout = \"0s\"\n", "header_timeout"),
            ("header_timeout = 0\n", "header_timeout"),
            ("keepalive_timeout = true\n", "keepalive_timeout"),
            (
                "[supervisor]\ntimeout = \"5 fortnights\"\n",
                "supervisor.timeout",
            ),
            (
                "[supervisor]\ngraceful_timeout = -1\n",
                "supervisor.graceful_timeout",
            ),
            ("max_body_bytes = \"lots\"\n", "max_body_bytes"),
            ("max_body_bytes = -1\n", "max_body_bytes"),
            ("max_header_bytes = \"512B\"\n", "max_header_bytes"),
            ("max_header_bytes = \"2MiB\"\n", "max_header_bytes"),
            ("[supervisor]\nmax_rss = \"1XB\"\n", "supervisor.max_rss"),
            (
                "[supervisor]\nmax_requests = -5\n",
                "supervisor.max_requests",
            ),
            (
                "[supervisor]\nmax_requests_jitter = \"ten\"\n",
                "supervisor.max_requests_jitter",
            ),
            ("workers = 0\n", "workers"),
            ("workers = \"lots\"\n", "workers"),
            ("workers = 1.5\n", "workers"),
            ("mode = \"fiber\"\n", "mode"),
            ("mode = 1\n", "mode"),
            ("threads = 0\n", "threads"),
            ("threads = \"8\"\n", "threads"),
            ("backlog = 70000\n", "backlog"),
            ("max_connections = 0\n", "max_connections"),
            ("access_log = \"yes\"\n", "access_log"),
            ("[faults]\nallow_remote = 1\n", "faults.allow_remote"),
            ("listen = \"example.com:80\"\n", "listen"),
            ("listen = \"127.0.0.1:65536\"\n", "listen"),
            ("root = \"/definitely/not/a/dir\"\n", "root"),
            ("root = 5\n", "root"),
            (&format!("root = \"{}\"\n", file.str()), "root"),
        ] {
            refused(text, key);
        }
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
    fn listen_forms() {
        for (input, want) in [
            ("127.0.0.1:8080", "127.0.0.1:8080"),
            ("0.0.0.0:80", "0.0.0.0:80"),
            ("[::1]:0", "[::1]:0"),
            ("localhost:3000", "127.0.0.1:3000"),
            ("8080", "127.0.0.1:8080"),
            (" 0 ", "127.0.0.1:0"),
        ] {
            assert_eq!(parse_listen(input), Ok(want.parse().unwrap()), "{input}");
        }
        for bad in [
            "",
            "nowhere",
            "localhost",
            "localhost:",
            "1.2.3.4",
            "::1:80",
            "70000",
            "-1",
        ] {
            assert!(parse_listen(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            load_text("listen = 9000\n").unwrap().listen,
            "127.0.0.1:9000".parse().unwrap()
        );
    }

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        for (input, want) in [
            ("5s", ms(5000)),
            ("250ms", ms(250)),
            ("2m", ms(120_000)),
            ("1h", ms(3_600_000)),
            ("1.5s", ms(1500)),
            ("0.25m", ms(15_000)),
            (".5s", ms(500)),
            ("7", ms(7000)),
            ("10 S", ms(10_000)),
            ("0s", ms(0)),
            ("1.0000000001s", Duration::from_nanos(1_000_000_000)),
        ] {
            assert_eq!(parse_duration(input), Ok(want), "{input}");
        }
        for bad in [
            "",
            "s",
            "soon",
            "5x",
            "-5s",
            "1..5s",
            "1.5.s",
            "5s5",
            "5 fortnights",
            "1e3s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        // Overflow is an error, not a wrap-around.
        assert!(
            parse_duration("99999999999h")
                .unwrap_err()
                .contains("too long")
        );
        assert!(parse_duration("99999999999999999999999999999999999999999s").is_err());
    }

    #[test]
    fn sizes() {
        for (input, want) in [
            ("512B", 512),
            ("512", 512),
            ("1KB", 1000),
            ("1kb", 1000),
            ("16KiB", 16 * 1024),
            ("16kib", 16 * 1024),
            ("64MiB", 64 << 20),
            ("2MB", 2_000_000),
            ("1GiB", 1 << 30),
            ("1GB", 1_000_000_000),
            ("1TiB", 1 << 40),
            ("1.5KiB", 1536),
            ("0", 0),
            ("4 MiB", 4 << 20),
        ] {
            assert_eq!(parse_size(input), Ok(want), "{input}");
        }
        for bad in ["", "KiB", "lots", "1XB", "-1", "1..5KiB", "1 K i B"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert!(
            parse_size("17179869184GiB")
                .unwrap_err()
                .contains("too large")
        );
        assert!(parse_size("18446744073709551616").is_err());
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
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
    fn reload_rereads_the_file_and_keeps_the_flags() {
        let file = Temp::file("workers = 2\nthreads = 2\n");
        let flags = cli(&["--config", file.str(), "--threads", "6"]);
        let first = load(&flags).unwrap();
        assert_eq!((first.workers, first.threads), (2, 6));
        std::fs::write(&file.0, "workers = 3\nthreads = 3\n").unwrap();
        let second = reload(&first, &flags).unwrap();
        assert_eq!((second.workers, second.threads), (3, 6));
        assert_eq!(second.config_file, first.config_file);
        // A broken edit is an error; the caller keeps `second`.
        std::fs::write(&file.0, "workers = 0\n").unwrap();
        assert_eq!(reload(&second, &flags).unwrap_err().key, "workers");
        // Without a file, reload is just the flags again.
        let plain = load_args(&["-w", "4"]).unwrap();
        assert_eq!(reload(&plain, &cli(&["-w", "4"])).unwrap(), plain);
    }

    #[test]
    fn edit_distance_and_guesses() {
        assert_eq!(edit_distance("workerz", "workers"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("timeot", "timeout"), 1);
        assert_eq!(closest("colour", &["listen", "root"]), None);
    }
}
