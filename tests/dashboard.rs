//! The dashboard (`/-/`) in a real browser, against the real server.
//!
//! Headless Chromium opens the page once and keeps it open; the test reads
//! what the page's own polling drew (the data- attributes of the worker
//! cards, death rows and fault buttons) through the DevTools protocol on a
//! pipe. So a respawn must show up in the *live* page, as it would for a
//! person watching it, not merely after a reload.
//!
//! Checked: one ready card per worker with the kernel's pids; after a
//! SIGKILL, the card of that index shows the replacement and the death is
//! listed; a stopped server shows as disconnected; with faults enabled the
//! buttons are there and clicking one (a same-origin POST) kills a worker
//! the page then shows replaced; a page of another origin in the same
//! browser can fire no fault, by `<img>` (a GET: 405) or by a no-cors
//! POST (its Origin: 403). Not checked: layout and the figures
//! (tests/observe.rs covers /-/status itself).
//!
//! Without Chromium the tests print "skipped" to stderr and pass, except
//! when `CI` is set: then they fail, so a CI image can't skip them silently.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use common::*;
use serde::Deserialize;
use serde_json::{Value, json};

/// How long Chromium may take to answer one DevTools command (the first
/// one waits for the browser to start).
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the page may take to show what a test waits for; it polls
/// once a second.
const PAGE_DEADLINE: Duration = Duration::from_secs(20);
/// The faults the page offers when `config.faults` is true.
const FAULTS: [&str; 8] = [
    "panic",
    "abort",
    "segv",
    "exit",
    "stack-overflow",
    "hang",
    "leak?mb=64",
    "poison",
];

/// One browser at a time: the machine may have two cores, and four
/// browsers at once make deadlines flaky.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

/// What a test reads off the live page.
#[derive(Debug, Deserialize)]
struct Page {
    /// `data-state` of the connection note: `ok`, `down` (or `init`).
    connection: String,
    /// `(index, pid, state)` of each worker card, in page order.
    cards: Vec<(u32, i32, String)>,
    /// `(index, pid)` of each row of the deaths table.
    deaths: Vec<(u32, i32)>,
    /// `data-fault` of each fault button.
    faults: Vec<String>,
    /// What the fault buttons' requests got back.
    fault_log: String,
}

/// Collects a [`Page`] in the browser (a partial page gives nulls, which
/// don't deserialize, so the read is retried).
const READ_PAGE: &str = r#"(() => {
  const all = (selector) => [...document.querySelectorAll(selector)];
  const conn = document.getElementById("conn");
  return {
    connection: conn ? conn.dataset.state : "",
    cards: all(".worker").map((c) => [Number(c.dataset.index), Number(c.dataset.pid), c.dataset.state]),
    deaths: all("tr.death").map((r) => [Number(r.dataset.index), Number(r.dataset.pid)]),
    faults: all("button[data-fault]").map((b) => b.dataset.fault),
    fault_log: (document.getElementById("fault-log") || {}).textContent || "",
  };
})()"#;

impl Page {
    /// `(index, pid)` of the cards, if the page is live and every card
    /// shows a ready worker.
    fn ready_cards(&self) -> Option<Vec<(u32, i32)>> {
        let live = self.connection == "ok";
        let ready = self.cards.iter().all(|(_, _, state)| state == "ready");
        (live && ready).then(|| self.cards.iter().map(|(i, p, _)| (*i, *p)).collect())
    }

    /// True if the page is live with ready cards 0..n for exactly `pids`.
    fn shows_workers(&self, pids: &[i32]) -> bool {
        self.ready_cards().is_some_and(|cards| {
            let mut shown: Vec<i32> = cards.iter().map(|card| card.1).collect();
            shown.sort();
            cards
                .iter()
                .enumerate()
                .all(|(n, card)| card.0 as usize == n)
                && shown == pids
        })
    }

    fn pid_at(&self, index: u32) -> i32 {
        let card = self.cards.iter().find(|card| card.0 == index);
        card.unwrap_or_else(|| panic!("no card {index}: {self:?}"))
            .1
    }
}

/// Headless Chromium with one tab, driven over `--remote-debugging-pipe`:
/// it reads commands on its fd 3 and answers on fd 4, each message a JSON
/// object ended by a NUL. Dropping it closes the browser (and, failing
/// that, kills its process group).
struct Browser {
    child: Child,
    commands: std::io::PipeWriter,
    replies: mpsc::Receiver<Value>,
    next_id: u64,
    /// The tab's DevTools session.
    session: Option<String>,
    profile: TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl Browser {
    /// Opens `url` in a fresh headless Chromium found at `path`.
    fn open(path: &Path, url: &str) -> Browser {
        let turn = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
        let profile = TempDir::new();
        let log = std::fs::File::create(profile.path().join("chromium.log")).unwrap();
        let (their_commands, commands) = std::io::pipe().unwrap();
        let (replies_out, their_replies) = std::io::pipe().unwrap();
        let (fd3, fd4) = (their_commands.as_raw_fd(), their_replies.as_raw_fd());
        let mut command = Command::new(path);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-proxy-server",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-pipe",
            ])
            .arg(format!(
                "--user-data-dir={}",
                profile.path().join("p").display()
            ))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0); // its own group, so drop can end every helper
        // SAFETY: only fcntl, dup2 and close (async-signal-safe) between fork
        // and exec. Both ends move above 4 first, so neither dup2 can
        // clobber the other; the originals are close-on-exec.
        unsafe {
            command.pre_exec(move || {
                let high3 = libc::fcntl(fd3, libc::F_DUPFD, 10);
                let high4 = libc::fcntl(fd4, libc::F_DUPFD, 10);
                if high3 < 0 || high4 < 0 || libc::dup2(high3, 3) < 0 || libc::dup2(high4, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(high3);
                libc::close(high4);
                Ok(())
            });
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", path.display()));
        drop((their_commands, their_replies));
        let (tx, replies) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(replies_out);
            let mut message = Vec::new();
            while matches!(reader.read_until(0, &mut message), Ok(n) if n > 0) {
                message.pop();
                if let Ok(value) = serde_json::from_slice(&message)
                    && tx.send(value).is_err()
                {
                    break;
                }
                message.clear();
            }
        });
        let mut browser = Browser {
            child,
            commands,
            replies,
            next_id: 0,
            session: None,
            profile,
            _turn: turn,
        };
        let target = browser.call("Target.createTarget", json!({ "url": url }));
        let target = target.unwrap_or_else(|e| panic!("{e}"));
        let attach = json!({ "targetId": target["targetId"], "flatten": true });
        let attached = browser.call("Target.attachToTarget", attach);
        let session = attached.unwrap_or_else(|e| panic!("{e}"))["sessionId"].clone();
        browser.session = Some(session.as_str().expect("a session id").to_string());
        browser
    }

    /// Sends one DevTools command (to the tab once attached) and waits for
    /// its reply, skipping events.
    fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        if let Err(e) = self.commands.write_all(&bytes) {
            panic!("chromium stopped reading ({e}); {}", self.log());
        }
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(reply) = self.replies.recv_timeout(left) else {
                panic!("no answer to {method} in {CALL_TIMEOUT:?}; {}", self.log());
            };
            if reply["id"] == id {
                return match reply.get("error") {
                    Some(error) => Err(format!("{method}: {error}")),
                    None => Ok(reply["result"].clone()),
                };
            }
        }
    }

    /// Evaluates `expression` in the page; its value (a promise's, once
    /// it settles), or why not.
    fn eval(&mut self, expression: &str) -> Result<Value, String> {
        let params =
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true });
        let result = self.call("Runtime.evaluate", params)?;
        match result.get("exceptionDetails") {
            Some(details) => Err(format!("{expression}: {details}")),
            None => Ok(result["result"]["value"].clone()),
        }
    }

    /// Reads the page until `shows` holds; returns it. Panics after
    /// [`PAGE_DEADLINE`] with the last reading.
    fn wait_for(&mut self, what: &str, shows: impl Fn(&Page) -> bool) -> Page {
        let deadline = Instant::now() + PAGE_DEADLINE;
        loop {
            let page = self
                .eval(READ_PAGE)
                .and_then(|value| serde_json::from_value::<Page>(value).map_err(|e| e.to_string()));
            let last = match page {
                Ok(page) if shows(&page) => return page,
                Ok(page) => format!("{page:?}"),
                Err(err) => err,
            };
            assert!(
                Instant::now() < deadline,
                "the dashboard never showed {what} within {PAGE_DEADLINE:?}; last: {last}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the tab shows `url`, loaded (before that, an evaluation
    /// may run in the blank page it replaces).
    fn wait_until_loaded(&mut self, url: &str) {
        let deadline = Instant::now() + PAGE_DEADLINE;
        let check = "location.href + ' ' + document.readyState";
        let want = json!(format!("{url} complete"));
        loop {
            let now = self.eval(check);
            if now.as_ref() == Ok(&want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{url} did not load within {PAGE_DEADLINE:?}: {now:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Clicks the element `selector` matches.
    fn click(&mut self, selector: &str) {
        let script = format!("document.querySelector({selector:?}).click()");
        self.eval(&script).unwrap_or_else(|e| panic!("click: {e}"));
    }

    /// The end of Chromium's own log, for failure messages.
    fn log(&self) -> String {
        let text = std::fs::read_to_string(self.profile.path().join("chromium.log"));
        let text = text.unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        format!("chromium's log ends:\n{tail}")
    }
}

impl Drop for Browser {
    /// Asks Chromium to close (so it reaps its own helpers: killed, they
    /// would be orphans nobody reaps here), waits up to 5 s for it to exit,
    /// then kills whatever is left of its process group.
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        let _ = self
            .commands
            .write_all(b"{\"id\":0,\"method\":\"Browser.close\"}\0");
        wait_until(Duration::from_secs(5), || {
            // SAFETY: waitid(2) on our own child; WNOWAIT leaves it unreaped.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
            let done = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) };
            done != 0 || unsafe { info.si_pid() } == pid
        });
        // The leader isn't reaped yet, so its group id is still ours.
        // SAFETY: kill(2) on the process group this browser was started in.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// Chromium's path; `None` with a note if it isn't installed, a panic
/// under `CI`.
fn find_chromium() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|path| {
        std::env::split_paths(&path)
            .flat_map(|dir| [dir.join("chromium"), dir.join("chromium-browser")])
            .collect::<Vec<_>>()
    });
    let found = std::iter::once(PathBuf::from("/usr/bin/chromium"))
        .chain(on_path)
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed and CI is set, so the dashboard tests may not skip: \
             apt-get install chromium"
        );
        // Straight to fd 2: eprintln! would be captured, and so never seen.
        let note = "skipped: chromium not installed (apt-get install chromium)\n";
        let _ = std::io::stderr().write_all(note.as_bytes());
    }
    found
}

fn dashboard_url(server: &Server) -> String {
    format!("http://{}/-/", server.addr)
}

every_mode!(cards_follow_the_workers_through_a_respawn, |mode| {
    let Some(chromium) = find_chromium() else {
        return;
    };
    let mut server = Server::start(mode, &[]);
    let workers = server.wait_for_workers(2);
    let mut browser = Browser::open(&chromium, &dashboard_url(&server));
    let page = browser.wait_for("a ready card per worker", |page| {
        page.shows_workers(&workers)
    });
    assert!(page.faults.is_empty(), "fault buttons without --faults");
    let (victim, survivor) = (page.pid_at(0), page.pid_at(1));

    // SAFETY: kill(2) on a worker of our own server.
    unsafe { libc::kill(victim, libc::SIGKILL) };
    let now = server.wait_for_replacement(victim, 2);
    assert!(
        now.contains(&survivor),
        "the other worker must be untouched"
    );
    let replacement = *now.iter().find(|&&pid| pid != survivor).unwrap();

    // The same page, without a reload: card 0 now shows the replacement.
    browser.wait_for("the replacement on card 0 and the death", |page| {
        page.ready_cards() == Some(vec![(0, replacement), (1, survivor)])
            && page.deaths.contains(&(0, victim))
    });

    // A server that is gone shows as disconnected; the last figures stay.
    server.signal(libc::SIGQUIT);
    server.wait_exit();
    let page = browser.wait_for("the disconnected note", |page| page.connection == "down");
    assert_eq!(page.cards.len(), 2, "{page:?}");
});

every_mode!(
    one_fault_click_kills_one_worker_and_its_card_follows,
    |mode| {
        let Some(chromium) = find_chromium() else {
            return;
        };
        let server = Server::start(mode, &["--faults"]);
        let workers = server.wait_for_workers(2);
        let mut browser = Browser::open(&chromium, &dashboard_url(&server));
        let page = browser.wait_for("the workers and the fault buttons", |page| {
            page.shows_workers(&workers) && !page.faults.is_empty()
        });
        assert_eq!(page.faults, FAULTS);

        // A fault that is answered leaves its keep-alive connection idle in
        // the browser. Were the next, fatal, fault sent on it, the browser
        // would resend it when the connection closes unanswered, to the other
        // worker: one click, two deaths.
        browser.click(r#"button[data-fault="panic"]"#);
        browser.wait_for("the panic's 500", |page| {
            page.fault_log.contains("panic: HTTP 500")
        });
        browser.click(r#"button[data-fault="abort"]"#);
        let mut now = Vec::new();
        let replaced = wait_until(DEADLINE, || {
            now = server.workers();
            now.len() == 2 && now != workers
        });
        assert!(replaced, "no worker died: {now:?}; log:\n{}", server.log());
        let dead = *workers.iter().find(|pid| !now.contains(pid)).unwrap();
        let survivor = *workers.iter().find(|&&pid| pid != dead).unwrap();
        assert!(now.contains(&survivor), "one click killed both workers");
        let replacement = *now.iter().find(|&&pid| pid != survivor).unwrap();
        let index = page.cards.iter().find(|card| card.1 == dead).unwrap().0;

        browser.wait_for("the replacement on the dead worker's card", |page| {
            page.shows_workers(&now)
                && page.pid_at(index) == replacement
                && page.deaths == [(index, dead)]
        });
        server.wait_for_log(&format!("(pid {dead}) killed by SIGABRT"));
        assert!(is_alive(survivor), "one click killed both workers");
    }
);

every_mode!(a_page_of_another_origin_cannot_fire_a_fault, |mode| {
    let Some(chromium) = find_chromium() else {
        return;
    };
    let server = Server::start(mode, &["--faults"]);
    let workers = server.wait_for_workers(2);
    let port = server.addr.port();
    // The attacker's page, in the developer's browser: another origin
    // (localhost is not 127.0.0.1), so another site too.
    let page = format!("http://localhost:{port}/hello.txt");
    let mut browser = Browser::open(&chromium, &page);
    browser.wait_until_loaded(&page);
    let fault = format!("http://127.0.0.1:{port}/-/fault/abort");
    let script = format!(
        r#"(async () => {{
  const img = await new Promise((done) => {{
    const image = new Image();
    image.onload = () => done("img loaded");
    image.onerror = () => done("img refused");
    image.src = {fault:?};
  }});
  const post = await fetch({fault:?}, {{ method: "POST", mode: "no-cors", cache: "no-store" }})
    .then(() => "post sent", (err) => "post failed: " + err);
  return img + ", " + post;
}})()"#
    );
    let outcome = browser.eval(&script).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome, "img refused, post sent", "log:\n{}", server.log());
    server.wait_for_log("GET /-/fault/abort 405");
    server.wait_for_log("refused POST /-/fault/abort from another origin");
    assert_eq!(server.workers(), workers, "log:\n{}", server.log());
});
