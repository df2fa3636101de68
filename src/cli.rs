//! The command line: what `forkpool --help` shows and what the flags parse
//! into. Every field is optional so that [`crate::config::load`] can tell a
//! flag that was given (it overrides the config file) from one that was not.
//!
//! Values that need checking (`--workers`, `--mode`, `--listen`,
//! `--access-log-format`, `--header`) stay strings here and are validated
//! in `config`, so a bad flag and a bad key in the file are reported the
//! same way: `invalid --workers: …`, exit code 2. Usage errors clap catches itself (an unknown flag, a missing
//! value, `--threads x`) also exit with code 2.

use std::path::PathBuf;

use clap::Parser;

const SIGNALS: &str = "\
Defaults: ROOT is the current directory (.), listen 127.0.0.1:8080, one \
worker per CPU in process mode. Flags override the config file, which \
overrides the defaults.

Signals (send them to the master):
  SIGTERM, SIGINT   graceful stop: finish requests in flight, then exit
  SIGQUIT           fast stop
  SIGHUP            reload the config file
  SIGTTIN, SIGTTOU  add / remove a worker";

/// `forkpool [ROOT] [--config FILE] [-l ADDR] [-w N|auto] [--mode M] [--threads N] [--accept A] [--access-log-format F] [--faults] [--hidden] [--server-name NAME]... [--spa] [--live-reload] [--cors] [--header 'Name: value']... [--open]`
#[derive(Debug, Clone, Default, PartialEq, Eq, Parser)]
#[command(
    name = "forkpool",
    version,
    about = "A prefork HTTP/1.1 server: one master, N workers, each a single event-loop process, an event loop feeding a thread pool, or one event loop per thread",
    after_help = SIGNALS
)]
pub struct Cli {
    /// Directory to serve [default: .]
    #[arg(value_name = "ROOT", value_hint = clap::ValueHint::DirPath)]
    pub(crate) root: Option<PathBuf>,

    /// Read settings from this TOML file (see config/forkpool.toml)
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub(crate) config: Option<PathBuf>,

    /// Address to listen on: IP:PORT, [IPv6]:PORT, localhost:PORT (127.0.0.1 and [::1]) or PORT; port 0 picks a free one [default: 127.0.0.1:8080]
    #[arg(short, long, value_name = "ADDR")]
    pub(crate) listen: Option<String>,

    /// Number of worker processes, or "auto" for one per CPU [default: auto]
    #[arg(short, long, value_name = "N|auto")]
    pub(crate) workers: Option<String>,

    /// Worker architecture: "process" (one event loop), "thread" (loop + thread pool) or "thread-loops" (one event loop per thread) [default: process]
    #[arg(long, value_name = "process|thread|thread-loops")]
    pub(crate) mode: Option<String>,

    /// Threads per worker: the pool in thread mode, the loops in thread-loops mode; 1 to 1024 [default: 8]
    #[arg(long, value_name = "N")]
    pub(crate) threads: Option<usize>,

    /// Accept strategy: "shared" (one socket, whoever wakes first) or "reuseport" (a SO_REUSEPORT socket per event loop, spread by the kernel) [default: shared]
    #[arg(long, value_name = "shared|reuseport")]
    pub(crate) accept: Option<String>,

    /// Access-log line shape: "forkpool" (timestamp, pid, METHOD TARGET STATUS BYTES TIMEus), "common" (NCSA Common Log Format) or "combined" (common + Referer and User-Agent); lines go to stderr [default: forkpool]
    #[arg(long = "access-log-format", value_name = "forkpool|common|combined")]
    pub(crate) access_log_format: Option<String>,

    /// Enable the fault-injection endpoints under /-/fault/ (POST only, loopback peers only)
    #[arg(long)]
    pub(crate) faults: bool,

    /// Serve dotfiles and dot-directories (.env, .git/), which are otherwise 404 and not listed
    #[arg(long)]
    pub(crate) hidden: bool,

    /// Also answer requests whose Host is NAME (IP addresses, localhost and *.localhost always work; others get 421); repeatable
    #[arg(long = "server-name", value_name = "NAME")]
    pub(crate) server_names: Vec<String>,

    /// Single-page app: a page request (Accept: text/html) for a path without an extension that matches no file gets /index.html
    #[arg(long)]
    pub(crate) spa: bool,

    /// Reload open pages when a file under the root changes (stylesheets are swapped in place): HTML gets a script that listens on /-/livereload
    #[arg(long = "live-reload")]
    pub(crate) live_reload: bool,

    /// Send Access-Control-Allow-Origin: * with static files and answer CORS preflights (never under /-/)
    #[arg(long)]
    pub(crate) cors: bool,

    /// Add this header to every static response, e.g. 'Cross-Origin-Opener-Policy: same-origin'; repeatable
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub(crate) headers: Vec<String>,

    /// Open the served site in a browser ($BROWSER, else xdg-open) once the server is listening
    #[arg(long)]
    pub(crate) open: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_self_check() {
        Cli::command().debug_assert();
    }

    #[test]
    fn nothing_given_is_all_none() {
        assert_eq!(Cli::try_parse_from(["forkpool"]).unwrap(), Cli::default());
    }

    #[test]
    fn every_flag_parses() {
        let cli = Cli::try_parse_from([
            "forkpool",
            "site",
            "--config",
            "f.toml",
            "-l",
            "0",
            "-w",
            "auto",
            "--mode",
            "thread",
            "--threads",
            "3",
            "--accept",
            "reuseport",
            "--access-log-format",
            "combined",
            "--faults",
            "--hidden",
            "--server-name",
            "a.example",
            "--server-name",
            "b.example",
        ])
        .unwrap();
        assert_eq!(
            cli,
            Cli {
                root: Some("site".into()),
                config: Some("f.toml".into()),
                listen: Some("0".into()),
                workers: Some("auto".into()),
                mode: Some("thread".into()),
                threads: Some(3),
                accept: Some("reuseport".into()),
                access_log_format: Some("combined".into()),
                faults: true,
                hidden: true,
                server_names: vec!["a.example".into(), "b.example".into()],
                ..Cli::default()
            }
        );
    }

    #[test]
    fn dev_server_flags_parse() {
        let cli = Cli::try_parse_from([
            "forkpool",
            "--spa",
            "--cors",
            "--header",
            "X-A: 1",
            "--header",
            "X-B: 2",
            "--open",
            "--live-reload",
        ])
        .unwrap();
        assert!(cli.spa && cli.cors && cli.open && cli.live_reload);
        assert_eq!(cli.headers, ["X-A: 1", "X-B: 2"]);
        let none = Cli::try_parse_from(["forkpool"]).unwrap();
        assert!(!none.spa && !none.cors && !none.open && !none.live_reload);
        assert!(none.headers.is_empty());
        assert_eq!(
            Cli::try_parse_from(["forkpool", "--header"])
                .unwrap_err()
                .exit_code(),
            2
        );
    }

    #[test]
    fn usage_errors_exit_2() {
        for args in [
            &["forkpool", "--bogus"][..],
            &["forkpool", "--threads", "x"],
            &["forkpool", "-w"],
        ] {
            let err = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn help_names_the_signals_and_defaults() {
        let help = Cli::command().render_help().to_string();
        for needle in [
            "SIGTERM",
            "SIGQUIT",
            "SIGHUP",
            "SIGTTIN",
            "127.0.0.1:8080",
            "--faults",
            "--hidden",
            "--access-log-format",
            "--server-name",
            "--spa",
            "--live-reload",
            "--cors",
            "--header",
            "--open",
        ] {
            assert!(help.contains(needle), "help lacks {needle}:\n{help}");
        }
    }
}
