//! `--open`: shows the served site in the user's browser once the master
//! is listening.
//!
//! What it does: picks the commands to try, `$BROWSER` (a `:`-separated
//! list, as `xdg-open` and Python's `webbrowser` read it; `%s` in one
//! stands for the URL, else the URL is its last argument) or else
//! `xdg-open` when it is on `PATH`, and starts the first that will start,
//! detached: in its own process group (a Ctrl+C in the terminal is for
//! forkpool, not the browser) and with stdin, stdout and stderr on
//! `/dev/null` (stdout carries the readiness line and nothing else). The
//! master reaps it like any child it doesn't know (a debug line).
//!
//! What it doesn't: wait for it, or let it fail the server. With neither
//! `$BROWSER` nor `xdg-open` (a CI machine, a container) it does nothing;
//! a browser that won't start is a warning.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The address to show: `localhost` when that is what was asked for, and
/// loopback for a wildcard address (`0.0.0.0` is not somewhere to browse).
pub(crate) fn site_url(addr: SocketAddr, localhost: bool) -> String {
    if localhost {
        return format!("http://localhost:{}/", addr.port());
    }
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/", SocketAddr::new(ip, addr.port()))
}

/// Starts a browser on `url`, if one can be found; never fails the caller.
pub(crate) fn open(url: &str) {
    let browser = std::env::var("BROWSER").ok();
    let xdg_open = on_path("xdg-open", std::env::var_os("PATH"));
    let commands = commands(browser.as_deref(), xdg_open, url);
    if commands.is_empty() {
        log::info!("--open: no browser to start ($BROWSER is empty and xdg-open is not on PATH)");
        return;
    }
    for argv in &commands {
        let started = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        match started {
            Ok(child) => {
                log::info!("opened {url} with {} (pid {})", argv[0], child.id());
                return;
            }
            Err(err) => log::warn!("--open: cannot start {}: {err}", argv[0]),
        }
    }
}

/// The commands to try, in order: each entry of `$BROWSER`, else
/// `xdg-open`. Each is split on whitespace (no shell, so no quoting).
fn commands(browser: Option<&str>, xdg_open: Option<PathBuf>, url: &str) -> Vec<Vec<String>> {
    let from_env: Vec<Vec<String>> = browser
        .unwrap_or("")
        .split(':')
        .filter_map(|entry| {
            let mut argv: Vec<String> = entry
                .split_whitespace()
                .map(|word| word.replace("%s", url))
                .collect();
            if argv.is_empty() {
                return None;
            }
            if !entry.contains("%s") {
                argv.push(url.to_owned());
            }
            Some(argv)
        })
        .collect();
    if !from_env.is_empty() {
        return from_env;
    }
    xdg_open
        .map(|path| vec![vec![path.display().to_string(), url.to_owned()]])
        .unwrap_or_default()
}

/// The first executable file called `name` in the `PATH` directories.
fn on_path(name: &str, path: Option<OsString>) -> Option<PathBuf> {
    std::env::split_paths(&path?)
        .map(|dir| dir.join(name))
        .find(|file| {
            file.metadata()
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_names_what_was_asked_for() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            site_url(at("127.0.0.1:8080"), true),
            "http://localhost:8080/"
        );
        assert_eq!(
            site_url(at("127.0.0.1:8080"), false),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(site_url(at("0.0.0.0:80"), false), "http://127.0.0.1:80/");
        assert_eq!(site_url(at("[::]:80"), false), "http://[::1]:80/");
        assert_eq!(site_url(at("[::1]:9"), false), "http://[::1]:9/");
        assert_eq!(site_url(at("192.0.2.1:9"), false), "http://192.0.2.1:9/");
    }

    #[test]
    fn browser_env_wins_then_xdg_open_then_nothing() {
        let url = "http://localhost:1/";
        let xdg = Some(PathBuf::from("/usr/bin/xdg-open"));
        let owned = |argv: &[&str]| argv.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            commands(Some("firefox"), xdg.clone(), url),
            [owned(&["firefox", url])]
        );
        assert_eq!(
            commands(Some("firefox -new-tab:chromium --app=%s"), None, url),
            [
                owned(&["firefox", "-new-tab", url]),
                owned(&["chromium", &format!("--app={url}")])
            ]
        );
        // Empty entries and an empty $BROWSER are no browser at all.
        assert_eq!(
            commands(Some("::"), xdg.clone(), url),
            [owned(&["/usr/bin/xdg-open", url])]
        );
        assert_eq!(
            commands(None, xdg, url),
            [owned(&["/usr/bin/xdg-open", url])]
        );
        assert!(commands(Some(""), None, url).is_empty());
        assert!(commands(None, None, url).is_empty());
    }

    #[test]
    fn xdg_open_is_looked_up_on_path() {
        let dir = std::env::temp_dir().join(format!("forkpool-browser-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tool = dir.join("xdg-open");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o644)).unwrap();
        let path = || Some(OsString::from(format!("/nonexistent:{}", dir.display())));
        assert_eq!(on_path("xdg-open", path()), None, "not executable");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(on_path("xdg-open", path()), Some(tool));
        assert_eq!(on_path("xdg-open", None), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
