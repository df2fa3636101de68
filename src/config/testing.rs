//! Helpers for the config tests: temporary files and directories, and a
//! [`Config`] loaded from flags or from the text of a config file, the way
//! the binary loads it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Parser;

use super::{Config, ConfigError, load};
use crate::cli::Cli;

/// A temp file or directory, removed on drop; unique per test.
pub(super) struct Temp(pub(super) PathBuf);

impl Temp {
    pub(super) fn path(name: &str) -> Temp {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let unique = format!("forkpool-config-{}-{n}-{name}", std::process::id());
        Temp(std::env::temp_dir().join(unique))
    }

    pub(super) fn file(text: &str) -> Temp {
        let temp = Temp::path("forkpool.toml");
        std::fs::write(&temp.0, text).unwrap();
        temp
    }

    pub(super) fn dir() -> Temp {
        let temp = Temp::path("root");
        std::fs::create_dir(&temp.0).unwrap();
        temp
    }

    pub(super) fn str(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_dir(&self.0);
    }
}

pub(super) fn cli(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("forkpool").chain(args.iter().copied())).unwrap()
}

pub(super) fn load_args(args: &[&str]) -> Result<Config, ConfigError> {
    load(&cli(args))
}

pub(super) fn load_text(text: &str) -> Result<Config, ConfigError> {
    let file = Temp::file(text);
    load_args(&["--config", file.str()])
}

/// Asserts `text` as a config file is refused, naming `key`.
pub(super) fn refused(text: &str, key: &str) -> ConfigError {
    let err = load_text(text).expect_err(text);
    assert_eq!(err.key, key, "{text:?}: {err}");
    assert!(
        err.to_string().starts_with(&format!("invalid {key}: ")),
        "{err}"
    );
    err
}
