//! The `forkpool` binary: parse flags and config, set up logging, run the master.
//!
//! Exit codes: 0 after a requested stop, 1 when the server could not run
//! (port in use, a worker that fails to boot), 2 for bad flags or config.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use forkpool::cli::Cli;
use forkpool::config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let config = match config::load(&cli) {
        Ok(config) => config,
        Err(err) => {
            // A usage error, not a log event: always shown, whatever RUST_LOG says.
            eprintln!("forkpool: {err}");
            return ExitCode::from(2);
        }
    };
    match forkpool::master::run(config, cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            log::error!("{err}");
            ExitCode::from(1)
        }
    }
}

/// Logs go to stderr, `info` and up unless `RUST_LOG` says otherwise. Each
/// line names the process, since master and workers share the terminal.
fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(|out, record| {
            writeln!(
                out,
                "{} {:<5} [{}] {}",
                out.timestamp_millis(),
                record.level(),
                std::process::id(),
                record.args()
            )
        })
        .init();
}
