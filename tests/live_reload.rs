//! Live reload (issue 13) in a real browser, against the real server.
//!
//! Headless Chromium (tests/common/browser.rs) opens a page served with
//! `--live-reload`; the test waits until the injected script reports its
//! event stream open (`window.__forkpoolLiveReload === "open"`), edits a
//! file in the root as a developer would, and reads the page again every
//! 25 ms. The issue's promise is the measure: the edit shows in the open
//! page within 1 s of the write. Past that the test keeps watching a few
//! seconds more, only to say in the failure whether the change came late
//! or never.
//!
//! Checked, in every architecture: an HTML edit reloads the page, both as
//! a plain write and as an editor's save (a temp file renamed over the
//! page); a CSS edit restyles the page without reloading it (a mark left
//! in the page survives). Not checked here: the stream's bytes, debouncing
//! and idle streams (tests/live_reload_stream.rs reads the stream raw).
//!
//! Without Chromium the tests print "skipped" to stderr and pass, except
//! when `CI` is set: then they fail, so a CI image can't skip them silently.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::browser::{Browser, PAGE_DEADLINE, find_chromium};
use common::*;
use serde_json::Value;

/// The issue's promise: an edit shows in the open page within this.
const WITHIN: Duration = Duration::from_secs(1);
/// How long to keep watching past [`WITHIN`], only to tell a late change
/// from a missing one in the failure message.
const WATCH: Duration = Duration::from_secs(4);
/// How often the page is read while waiting for an edit to show.
const POLL: Duration = Duration::from_millis(25);

/// Reads what the tests look at off the page, as one JSON object.
const READ_PAGE: &str = r#"(() => {
  const v = document.getElementById("v");
  return {
    text: v ? v.textContent : null,
    color: v ? getComputedStyle(v).color : null,
    live: window.__forkpoolLiveReload ?? null,
    ready: document.readyState,
    marker: window.__marker ?? null,
    sheets: document.querySelectorAll('link[rel="stylesheet"]').length,
  };
})()"#;

/// A page whose paragraph `#v` says `text`, under `head`.
fn page(head: &str, text: &str) -> String {
    format!(
        "<!doctype html>\n<html>\n<head><title>live</title>{head}</head>\n\
         <body>\n<p id=\"v\">{text}</p>\n</body>\n</html>\n"
    )
}

/// Starts forkpool with `--live-reload` in `mode` on a root holding
/// exactly `files` (written before the watcher starts, so they make no
/// event of their own).
fn serve(mode: &str, files: &[(&str, &str)]) -> Server {
    let root = TempDir::new();
    for (name, text) in files {
        std::fs::write(root.path().join(name), text).unwrap();
    }
    Server::start_in(root, mode, &["--live-reload"])
}

/// An editor's save: the new text goes to a temp file in the same
/// directory, which is then renamed over `path`.
fn save_by_rename(path: &Path, text: &str) {
    let temp = path.with_extension("html.tmp");
    std::fs::write(&temp, text).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

/// Reads the page until `shows` holds; returns that reading. Panics after
/// [`PAGE_DEADLINE`] (loading, not the edit promise) with the last one.
fn wait_for(browser: &mut Browser, what: &str, shows: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PAGE_DEADLINE;
    loop {
        let last = match browser.eval(READ_PAGE) {
            Ok(state) if shows(&state) => return state,
            Ok(state) => state.to_string(),
            Err(err) => err,
        };
        assert!(
            Instant::now() < deadline,
            "the page never showed {what} within {PAGE_DEADLINE:?}; last: {last}; {}",
            browser.log()
        );
        std::thread::sleep(POLL);
    }
}

/// Makes `edit`, then reads the page every [`POLL`] until `shows` holds;
/// returns that reading. Panics if that took longer than [`WITHIN`] (or
/// never happened), saying which and what the page showed.
fn edit_shows(
    browser: &mut Browser,
    server: &Server,
    what: &str,
    edit: impl FnOnce(),
    shows: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    edit();
    let mut last = String::new();
    while start.elapsed() < WITHIN + WATCH {
        // While the page reloads an evaluation may fail (its context is
        // gone): that is a reading like any other.
        match browser.eval(READ_PAGE) {
            Ok(state) if shows(&state) => {
                let took = start.elapsed();
                assert!(
                    took <= WITHIN,
                    "{what} showed {took:?} after the edit; the issue allows {WITHIN:?}; \
                     server log:\n{}",
                    server.log()
                );
                eprintln!("{what}: {took:?} after the edit");
                return state;
            }
            Ok(state) => last = state.to_string(),
            Err(err) => last = err,
        }
        std::thread::sleep(POLL);
    }
    panic!(
        "{what} never showed ({:?} after the edit); the page last showed: {last}\n\
         server log:\n{}\n{}",
        WITHIN + WATCH,
        server.log(),
        browser.log()
    );
}

/// True if the page says `text`, is loaded and its stream is open.
fn live_with(state: &Value, text: &str) -> bool {
    state["text"] == text && state["ready"] == "complete" && state["live"] == "open"
}

every_mode!(an_html_edit_reloads_the_page_within_a_second, |mode| {
    let Some(chromium) = find_chromium() else {
        return;
    };
    let server = serve(mode, &[("index.html", &page("", "one"))]);
    let index = server.root.path().join("index.html");
    let url = format!("http://{}/", server.addr);
    let mut browser = Browser::open(&chromium, &url);
    browser.wait_until_loaded(&url);
    wait_for(&mut browser, "\"one\" with its stream open", |state| {
        live_with(state, "one")
    });

    // A plain write, as `echo > index.html` does.
    edit_shows(
        &mut browser,
        &server,
        "a written \"two\"",
        || std::fs::write(&index, page("", "two")).unwrap(),
        |state| state["text"] == "two",
    );
    // The reloaded page opens its own stream; then an editor's save.
    wait_for(&mut browser, "\"two\" with its stream open", |state| {
        live_with(state, "two")
    });
    edit_shows(
        &mut browser,
        &server,
        "a saved (renamed) \"three\"",
        || save_by_rename(&index, &page("", "three")),
        |state| state["text"] == "three",
    );
    wait_for(&mut browser, "\"three\" with its stream open", |state| {
        live_with(state, "three")
    });
});

every_mode!(a_css_edit_restyles_the_page_without_a_reload, |mode| {
    let Some(chromium) = find_chromium() else {
        return;
    };
    let head = r#"<link rel="stylesheet" href="style.css">"#;
    let server = serve(
        mode,
        &[
            ("index.html", &page(head, "styled")),
            ("style.css", "#v { color: rgb(255, 0, 0) }\n"),
        ],
    );
    let url = format!("http://{}/", server.addr);
    let mut browser = Browser::open(&chromium, &url);
    browser.wait_until_loaded(&url);
    wait_for(&mut browser, "red text with its stream open", |state| {
        live_with(state, "styled") && state["color"] == "rgb(255, 0, 0)"
    });
    // A reload would lose this.
    let marked = browser.eval("window.__marker = 42");
    assert_eq!(marked, Ok(Value::from(42)));

    let style = server.root.path().join("style.css");
    edit_shows(
        &mut browser,
        &server,
        "the blue stylesheet",
        || std::fs::write(&style, "#v { color: rgb(0, 0, 255) }\n").unwrap(),
        |state| state["color"] == "rgb(0, 0, 255)",
    );
    // Swapped, not piled up; and the same page, stream still open.
    let state = wait_for(&mut browser, "one stylesheet again", |state| {
        state["sheets"] == 1
    });
    assert_eq!(
        state["marker"], 42,
        "the page was reloaded, not restyled: {state}"
    );
    assert_eq!(state["live"], "open", "{state}");
});
