//! The TOML file layer: reads the `--config` file and applies the keys it
//! sets onto a [`Config`], leaving every other field as it was.
//!
//! Each table's keys are checked against the ones this module knows before
//! any of its values is read: an unknown key is an error naming its full dotted
//! key, with a "did you mean" when a known key is close (`strsim`), else
//! the list of known keys. Each value is then deserialized into its typed
//! value (see `values`) and an error names the key it came from. A TOML
//! syntax error is one line: the file, the line and column, what is wrong.
//!
//! This module does not check what needs every layer in (the root, faults
//! on a public address): that is `finish`, in the parent module.

use std::io;
use std::ops::RangeInclusive;
use std::path::Path;

use serde::de::DeserializeOwned;
use toml::{Table, Value};

use super::values::{
    Boolean, ByteSize, Directory, Integer, Listen, ServerNames, Timeout, Workers, check_header,
    closest, in_range, shown,
};
use super::{
    BACKLOG, Config, ConfigError, FaultsConfig, LabConfig, MAX_CONNECTIONS, MAX_HEADER_BYTES,
    SupervisorConfig, THREADS,
};

/// The top-level keys, in the order `config/forkpool.toml` lists them (and
/// an unknown key's error does).
const TOP_KEYS: &[&str] = &[
    "listen",
    "root",
    "workers",
    "mode",
    "threads",
    "accept",
    "backlog",
    "max_connections",
    "keepalive_timeout",
    "header_timeout",
    "send_timeout",
    "max_header_bytes",
    "max_body_bytes",
    "access_log",
    "access_log_format",
    "server_names",
    "show_hidden",
    "compress",
    "spa",
    "live_reload",
    "cors",
    "supervisor",
    "lab",
    "faults",
    "headers",
];

/// The keys of `[supervisor]`.
const SUPERVISOR_KEYS: &[&str] = &[
    "timeout",
    "graceful_timeout",
    "max_requests",
    "max_requests_jitter",
    "max_rss",
];

/// The keys of `[lab]`.
const LAB_KEYS: &[&str] = &["allow_remote", "allow_remote_work"];

/// The keys of `[faults]`.
const FAULTS_KEYS: &[&str] = &["enabled", "allow_remote"];

/// Applies the file at `path` onto `config` and records its canonical path
/// in `config.config_file`, for SIGHUP.
pub(super) fn apply_file(config: &mut Config, path: &Path) -> Result<(), ConfigError> {
    let unreadable = |err: io::Error| {
        ConfigError::new("--config", format!("cannot read {}: {err}", path.display()))
    };
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    let table: Table = toml::from_str(&text).map_err(|err| syntax_error(path, &text, &err))?;
    apply_top(config, Section::new(table, String::new(), TOP_KEYS)?)?;
    config.config_file = Some(std::fs::canonicalize(path).map_err(unreadable)?);
    Ok(())
}

fn apply_top(c: &mut Config, mut top: Section) -> Result<(), ConfigError> {
    if let Some(Listen { addr, localhost }) = top.take("listen")? {
        (c.listen, c.listen_localhost) = (addr, localhost);
    }
    if let Some(Directory(root)) = top.take("root")? {
        c.root = root;
    }
    if let Some(Workers(workers)) = top.take("workers")? {
        c.workers = workers;
    }
    if let Some(mode) = top.take("mode")? {
        c.mode = mode;
    }
    if let Some(threads) = top.take_int("threads", &THREADS)? {
        c.threads = threads as usize;
    }
    if let Some(accept) = top.take("accept")? {
        c.accept = accept;
    }
    if let Some(backlog) = top.take_int("backlog", &BACKLOG)? {
        c.backlog = backlog as i32;
    }
    if let Some(max) = top.take_int("max_connections", &MAX_CONNECTIONS)? {
        c.max_connections = max as usize;
    }
    if let Some(Timeout(timeout)) = top.take("keepalive_timeout")? {
        c.keepalive_timeout = timeout;
    }
    if let Some(Timeout(timeout)) = top.take("header_timeout")? {
        c.header_timeout = timeout;
    }
    if let Some(Timeout(timeout)) = top.take("send_timeout")? {
        c.send_timeout = timeout;
    }
    if let Some(ByteSize(max)) = top.take("max_header_bytes")? {
        if !MAX_HEADER_BYTES.contains(&max) {
            let reason = format!(
                "must be between 1KiB and 1MiB ({} to {} bytes), found {max} bytes",
                MAX_HEADER_BYTES.start(),
                MAX_HEADER_BYTES.end()
            );
            return Err(top.error("max_header_bytes", reason));
        }
        c.max_header_bytes = max as usize;
    }
    if let Some(ByteSize(max)) = top.take("max_body_bytes")? {
        c.max_body_bytes = max;
    }
    if let Some(Boolean(on)) = top.take("access_log")? {
        c.access_log = on;
    }
    if let Some(format) = top.take("access_log_format")? {
        c.access_log_format = format;
    }
    if let Some(ServerNames(names)) = top.take("server_names")? {
        c.server_names = names;
    }
    if let Some(Boolean(on)) = top.take("show_hidden")? {
        c.show_hidden = on;
    }
    if let Some(Boolean(on)) = top.take("compress")? {
        c.compress = on;
    }
    if let Some(Boolean(on)) = top.take("spa")? {
        c.spa = on;
    }
    if let Some(Boolean(on)) = top.take("live_reload")? {
        c.live_reload = on;
    }
    if let Some(Boolean(on)) = top.take("cors")? {
        c.cors = on;
    }
    if let Some(supervisor) = top.take_table("supervisor", SUPERVISOR_KEYS)? {
        apply_supervisor(&mut c.supervisor, supervisor)?;
    }
    if let Some(lab) = top.take_table("lab", LAB_KEYS)? {
        apply_lab(&mut c.lab, lab)?;
    }
    if let Some(faults) = top.take_table("faults", FAULTS_KEYS)? {
        apply_faults(&mut c.faults, faults)?;
    }
    if let Some(headers) = top.take::<Value>("headers")? {
        c.headers = headers_table(headers)?;
    }
    top.done();
    Ok(())
}

fn apply_supervisor(s: &mut SupervisorConfig, mut file: Section) -> Result<(), ConfigError> {
    const COUNT: RangeInclusive<i64> = 0..=i64::MAX;
    if let Some(Timeout(timeout)) = file.take("timeout")? {
        s.timeout = timeout;
    }
    if let Some(Timeout(timeout)) = file.take("graceful_timeout")? {
        s.graceful_timeout = timeout;
    }
    if let Some(requests) = file.take_int("max_requests", &COUNT)? {
        s.max_requests = requests as u64;
    }
    if let Some(jitter) = file.take_int("max_requests_jitter", &COUNT)? {
        s.max_requests_jitter = jitter as u64;
    }
    if let Some(ByteSize(max)) = file.take("max_rss")? {
        s.max_rss = max;
    }
    file.done();
    Ok(())
}

fn apply_lab(l: &mut LabConfig, mut file: Section) -> Result<(), ConfigError> {
    if let Some(Boolean(on)) = file.take("allow_remote")? {
        l.allow_remote = on;
    }
    if let Some(Boolean(on)) = file.take("allow_remote_work")? {
        l.allow_remote_work = on;
    }
    file.done();
    Ok(())
}

fn apply_faults(f: &mut FaultsConfig, mut file: Section) -> Result<(), ConfigError> {
    if let Some(Boolean(on)) = file.take("enabled")? {
        f.enabled = on;
    }
    if let Some(Boolean(on)) = file.take("allow_remote")? {
        f.allow_remote = on;
    }
    file.done();
    Ok(())
}

/// `[headers]`: any name, each checked as `--header` is; a value is a
/// string (or a number, written as is). Errors name `headers.NAME`.
fn headers_table(value: Value) -> Result<Vec<(String, String)>, ConfigError> {
    let Value::Table(table) = value else {
        return Err(ConfigError::new(
            "headers",
            format!(
                "expected a table ([headers], one Name = \"value\" per line), found {}",
                shown(&value)
            ),
        ));
    };
    let mut headers: Vec<(String, String)> = Vec::with_capacity(table.len());
    for (name, value) in table {
        let bad = |reason: String| ConfigError::new(format!("headers.{name}"), reason);
        let text = match &value {
            Value::String(text) => text.clone(),
            Value::Integer(n) => n.to_string(),
            other => {
                return Err(bad(format!(
                    "expected a string such as \"same-origin\", found {}",
                    shown(other)
                )));
            }
        };
        let header = check_header(&name, &text).map_err(bad)?;
        if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            return Err(bad("set twice (header names ignore case)".to_owned()));
        }
        headers.push(header);
    }
    Ok(headers)
}

/// One table of the file, its keys already checked: the values are taken
/// out one at a time, each converted to its type, and an error names the
/// full dotted key (`prefix` is "" at the top, "supervisor." below it).
struct Section {
    prefix: String,
    table: Table,
}

impl Section {
    /// Refuses the first key of `table` (in the table's order) that is not
    /// in `known`.
    fn new(table: Table, prefix: String, known: &[&str]) -> Result<Section, ConfigError> {
        if let Some(key) = table.keys().find(|key| !known.contains(&key.as_str())) {
            return Err(unknown_key(&prefix, key, known));
        }
        Ok(Section { prefix, table })
    }

    fn error(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::new(format!("{}{key}", self.prefix), reason)
    }

    /// The value of `key` as a `T`, if the file sets it.
    fn take<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>, ConfigError> {
        let Some(value) = self.table.remove(key) else {
            return Ok(None);
        };
        // The typed values deserialize through `toml::Value` and report
        // their own message, which is the whole reason.
        value
            .try_into()
            .map(Some)
            .map_err(|err: toml::de::Error| self.error(key, err.message()))
    }

    /// The value of `key`, an integer within `range`, if the file sets it.
    fn take_int(
        &mut self,
        key: &str,
        range: &RangeInclusive<i64>,
    ) -> Result<Option<i64>, ConfigError> {
        let Some(Integer(n)) = self.take(key)? else {
            return Ok(None);
        };
        in_range(n, range)
            .map(Some)
            .map_err(|reason| self.error(key, reason))
    }

    /// The table `[key]`, its keys checked against `known`, if the file has it.
    fn take_table(&mut self, key: &str, known: &[&str]) -> Result<Option<Section>, ConfigError> {
        // Read through serde like every other value, so that a wrong value
        // is shown the same way (a datetime, for one, comes out as a string).
        let full_key = format!("{}{key}", self.prefix);
        match self.take::<Value>(key)? {
            None => Ok(None),
            Some(Value::Table(table)) => {
                Section::new(table, format!("{full_key}."), known).map(Some)
            }
            Some(other) => Err(ConfigError::new(
                &full_key,
                format!("expected a table ([{full_key}]), found {}", shown(&other)),
            )),
        }
    }

    /// Every known key must have been taken: a key in the list that nothing
    /// applies would be silently ignored.
    fn done(self) {
        debug_assert!(
            self.table.is_empty(),
            "config keys known but not applied: {:?}",
            self.table.keys().collect::<Vec<_>>()
        );
    }
}

/// `prefix` + `key` is not a key: suggest the nearest known one, or list
/// them all when none is close.
fn unknown_key(prefix: &str, key: &str, known: &[&str]) -> ConfigError {
    let reason = match closest(key, known) {
        Some(guess) => format!("unknown key, did you mean \"{prefix}{guess}\"?"),
        None => format!("unknown key, expected one of: {}", known.join(", ")),
    };
    ConfigError::new(format!("{prefix}{key}"), reason)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{Temp, load_args, load_text, refused};
    use crate::config::{AccessLogFormat, FaultsConfig, LabConfig, Mode};
    use std::time::Duration;

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
            access_log_format = "Combined"
            server_names = ["Dev.Example", ".test.example"]
            show_hidden = true
            compress = false
            spa = true
            live_reload = true
            cors = true
            [supervisor]
            timeout = "1m"
            graceful_timeout = "1.5s"
            max_requests = 1000
            max_requests_jitter = 50
            max_rss = "64MiB"
            [lab]
            allow_remote = true
            allow_remote_work = true
            [faults]
            enabled = true
            allow_remote = true
            [headers]
            Cross-Origin-Opener-Policy = "same-origin"
            "X-Max" = 600
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
        assert_eq!(c.access_log_format, AccessLogFormat::Combined);
        assert_eq!(c.server_names, ["dev.example", ".test.example"]);
        assert!(c.show_hidden);
        assert!(!c.compress);
        assert!(c.spa && c.cors && c.live_reload);
        let header = |n: &str, v: &str| (n.to_owned(), v.to_owned());
        assert_eq!(
            c.headers,
            [
                header("Cross-Origin-Opener-Policy", "same-origin"),
                header("X-Max", "600")
            ]
        );
        assert_eq!(c.supervisor.timeout, Duration::from_secs(60));
        assert_eq!(c.supervisor.graceful_timeout, Duration::from_millis(1500));
        assert_eq!(c.supervisor.max_requests, 1000);
        assert_eq!(c.supervisor.max_requests_jitter, 50);
        assert_eq!(c.supervisor.max_rss, 64 << 20);
        assert_eq!(
            c.lab,
            LabConfig {
                allow_remote: true,
                allow_remote_work: true
            }
        );
        assert_eq!(
            c.faults,
            FaultsConfig {
                enabled: true,
                allow_remote: true
            }
        );
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
        let err = refused("[lab]\nallow_remotes = true\n", "lab.allow_remotes");
        assert!(err.reason.contains("\"lab.allow_remote\""), "{err}");
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
            ("access_log_format = \"apache\"\n", "access_log_format"),
            ("access_log_format = true\n", "access_log_format"),
            ("[faults]\nallow_remote = 1\n", "faults.allow_remote"),
            ("[lab]\nallow_remote = \"yes\"\n", "lab.allow_remote"),
            ("[lab]\nallow_remote_work = 0\n", "lab.allow_remote_work"),
            ("server_names = \"a.example\"\n", "server_names"),
            ("server_names = [\"*.example\"]\n", "server_names"),
            ("server_names = [\"a.example:80\"]\n", "server_names"),
            ("show_hidden = \"no\"\n", "show_hidden"),
            ("compress = \"gzip\"\n", "compress"),
            ("spa = 1\n", "spa"),
            ("live_reload = \"on\"\n", "live_reload"),
            ("cors = \"yes\"\n", "cors"),
            ("headers = 5\n", "headers"),
            ("headers = [\"X-A: 1\"]\n", "headers"),
            ("[headers]\n\"Bad Name\" = \"x\"\n", "headers.Bad Name"),
            ("[headers]\nX-A = true\n", "headers.X-A"),
            ("[headers]\nX-A = \"a\\nb\"\n", "headers.X-A"),
            ("[headers]\nServer = \"mine\"\n", "headers.Server"),
            (
                "[headers]\nContent-Encoding = \"br\"\n",
                "headers.Content-Encoding",
            ),
            ("[headers]\nX-A = \"1\"\nx-a = \"2\"\n", "headers.x-a"),
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
    fn edit_distance_and_guesses() {
        // The metric `closest`'s threshold is tuned for: Levenshtein, in chars.
        assert_eq!(strsim::levenshtein("workerz", "workers"), 1);
        assert_eq!(strsim::levenshtein("", "abc"), 3);
        assert_eq!(strsim::levenshtein("timeot", "timeout"), 1);
        assert_eq!(closest("colour", &["listen", "root"]), None);
    }

    #[test]
    fn known_keys_are_the_shipped_files_keys() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/forkpool.toml");
        let shipped: Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let keys = |table: &Table| table.keys().cloned().collect::<Vec<_>>();
        let sorted = |known: &[&str]| {
            let mut known: Vec<String> = known.iter().map(|k| k.to_string()).collect();
            known.sort();
            known
        };
        assert_eq!(keys(&shipped), sorted(TOP_KEYS));
        let table = |key: &str| shipped[key].as_table().unwrap().clone();
        assert_eq!(keys(&table("supervisor")), sorted(SUPERVISOR_KEYS));
        assert_eq!(keys(&table("lab")), sorted(LAB_KEYS));
        assert_eq!(keys(&table("faults")), sorted(FAULTS_KEYS));
    }

    #[test]
    fn keys_are_checked_before_values() {
        // The first unknown key in the table's (sorted) order is the one named.
        refused("zzz = 1\nworkerz = 2\n", "workerz");
        refused("workers = 0\nbogus = 1\n", "bogus");
        // A table's keys are checked when the table is reached.
        refused("workers = 0\n[supervisor]\nbogus = 1\n", "workers");
        refused(
            "access_log = true\n[supervisor]\nbogus = 1\n",
            "supervisor.bogus",
        );
    }

    #[test]
    fn a_value_where_a_table_belongs() {
        let err = refused("supervisor = 5\n", "supervisor");
        assert_eq!(err.reason, "expected a table ([supervisor]), found 5");
        let err = refused("faults = [1]\n", "faults");
        assert_eq!(err.reason, "expected a table ([faults]), found a array");
    }

    #[test]
    fn guesses_are_plausible_typos_only() {
        assert_eq!(
            closest("max_request", SUPERVISOR_KEYS),
            Some("max_requests")
        );
        assert_eq!(closest("header_timeot", TOP_KEYS), Some("header_timeout"));
        // Long keys allow a quarter of their length (4 edits for these 16
        // letters); this typo is 3 edits away.
        assert_eq!(
            closest("gracefull_timeuot", SUPERVISOR_KEYS),
            Some("graceful_timeout")
        );
        assert_eq!(
            closest("timeout", &["timeouts", "timeoutz"]),
            Some("timeouts")
        );
        assert_eq!(closest("bogus", TOP_KEYS), None);
        let err = unknown_key("faults.", "allow", FAULTS_KEYS);
        assert_eq!(err.key, "faults.allow");
        assert_eq!(
            err.reason,
            "unknown key, expected one of: enabled, allow_remote"
        );
    }

    #[test]
    fn positions_are_one_based_in_characters() {
        let text = "a = 1\nb = \"é\" x\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // "é" is two bytes, one column.
        assert_eq!(line_column(text, text.find('x').unwrap()), (2, 9));
        // Past the end (or inside a character): the end of the text.
        assert_eq!(line_column(text, 100), (3, 1));
    }
}
