//! Headless Chromium for the browser tests (the dashboard, live reload),
//! driven over the DevTools protocol on a pipe.
//!
//! [`find_chromium`] locates the browser: without one a test prints
//! "skipped" and passes, except when `CI` is set, where a missing browser
//! fails the test so a CI image can't skip it silently. [`Browser`] starts
//! a fresh headless Chromium with a throw-away profile and one tab, runs
//! script in that tab ([`Browser::eval`]), and closes it when dropped. One
//! browser runs at a time per test binary.
//!
//! What a test reads off its page (the dashboard's cards, a live-reloaded
//! paragraph) stays in that test's file; this module knows nothing of any
//! page.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{TempDir, wait_until};

/// How long Chromium may take to answer one DevTools command (the first
/// one waits for the browser to start).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a page may take to load, or to show what a test waits for.
pub const PAGE_DEADLINE: Duration = Duration::from_secs(20);

/// One browser at a time: the machine may have two cores, and four
/// browsers at once make deadlines flaky.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

/// Headless Chromium with one tab, driven over `--remote-debugging-pipe`:
/// it reads commands on its fd 3 and answers on fd 4, each message a JSON
/// object ended by a NUL. Dropping it closes the browser (and, failing
/// that, kills its process group).
pub struct Browser {
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
    /// Opens `url` in a fresh headless Chromium found at `path` (waiting
    /// first for any other browser of this test binary to close).
    pub fn open(path: &Path, url: &str) -> Browser {
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
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
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
    /// it settles), or why not (while the page navigates, for one).
    pub fn eval(&mut self, expression: &str) -> Result<Value, String> {
        let params =
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true });
        let result = self.call("Runtime.evaluate", params)?;
        match result.get("exceptionDetails") {
            Some(details) => Err(format!("{expression}: {details}")),
            None => Ok(result["result"]["value"].clone()),
        }
    }

    /// Waits until the tab shows `url`, loaded (before that, an evaluation
    /// may run in the blank page it replaces).
    pub fn wait_until_loaded(&mut self, url: &str) {
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
    pub fn click(&mut self, selector: &str) {
        let script = format!("document.querySelector({selector:?}).click()");
        self.eval(&script).unwrap_or_else(|e| panic!("click: {e}"));
    }

    /// The end of Chromium's own log, for failure messages.
    pub fn log(&self) -> String {
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
pub fn find_chromium() -> Option<PathBuf> {
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
            "chromium is not installed and CI is set, so the browser tests may not skip: \
             apt-get install chromium"
        );
        // Straight to fd 2: eprintln! would be captured, and so never seen.
        let note = "skipped: chromium not installed (apt-get install chromium)\n";
        let _ = std::io::stderr().write_all(note.as_bytes());
    }
    found
}
