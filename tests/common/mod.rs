//! The one helper every integration test uses to run the real binary.
//!
//! [`Server::start`] runs `forkpool` on `127.0.0.1:0`, waits (with a
//! deadline, never a fixed sleep) for its `listening on http://…` line, and
//! stops it when dropped: SIGQUIT, then SIGKILL if it lingers. [`every_mode!`]
//! turns one test body into one test per worker architecture, as ripgrep's
//! `rgtest!` runs one body under each regex engine.
//!
//! The HTTP client here is deliberately raw (a `TcpStream` and a tiny
//! response parser) so tests can send malformed bytes and see exactly what
//! comes back.
//!
//! [`browser`] drives headless Chromium for the tests that need a real
//! page (the dashboard, live reload).

#![allow(dead_code)] // each test file uses a different part of the helper

pub mod browser;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How long anything in a test may take before it counts as a failure.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// Generates `mod $name { fn process(); fn thread(); fn thread_loops(); }`
/// running `$body` with `$mode` bound to each worker architecture.
#[macro_export]
macro_rules! every_mode {
    ($name:ident, |$mode:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn process() {
                let $mode: &str = "process";
                $body
            }
            #[test]
            fn thread() {
                let $mode: &str = "thread";
                $body
            }
            #[test]
            fn thread_loops() {
                let $mode: &str = "thread-loops";
                $body
            }
        }
    };
}

/// Runs forkpool with `args` to completion (a bad flag or config, a port
/// in use). One that starts serving instead of exiting is stopped at the
/// deadline, and the test fails on its status.
pub fn run_to_exit(args: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_forkpool"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run forkpool");
    let exited = wait_until(DEADLINE, || child.try_wait().unwrap().is_some());
    if !exited {
        // SAFETY: kill(2) on our own child; QUIT lets it take its workers along.
        unsafe { libc::kill(child.id() as i32, libc::SIGQUIT) };
    }
    child.wait_with_output().expect("forkpool output")
}

/// A running forkpool master (and its workers).
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub root: TempDir,
    stderr: Arc<Mutex<String>>,
    /// Set once the server's stderr reached its end.
    stderr_closed: Arc<AtomicBool>,
}

impl Server {
    /// Starts forkpool in `mode` with 2 workers, serving a fresh temp dir
    /// holding the standard fixtures ([`write_fixtures`]), plus `extra` args.
    pub fn start(mode: &str, extra: &[&str]) -> Server {
        let root = TempDir::new();
        write_fixtures(root.path());
        Server::start_in(root, mode, extra)
    }

    /// As [`Server::start`], serving `root` as the caller prepared it (a
    /// live-reload test writes its files before the watcher starts).
    pub fn start_in(root: TempDir, mode: &str, extra: &[&str]) -> Server {
        let mut args: Vec<String> = vec![
            root.path().display().to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--mode".into(),
            mode.into(),
        ];
        if !extra.iter().any(|a| *a == "--workers" || *a == "-w") {
            args.extend(["--workers".into(), "2".into()]);
        }
        if !extra.contains(&"--threads") {
            args.extend(["--threads".into(), "4".into()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        Server::start_with(root, &args)
    }

    /// Starts forkpool with exactly `args`; `root` is kept alive with it.
    pub fn start_with(root: TempDir, args: &[String]) -> Server {
        Server::start_limited(root, args, None)
    }

    /// As [`Server::start_with`], with `RLIMIT_NOFILE` set to `max_files`.
    pub fn start_limited(root: TempDir, args: &[String], max_files: Option<u64>) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_forkpool"));
        if let Some(limit) = max_files {
            use std::os::unix::process::CommandExt;
            let rlimit = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            // SAFETY: setrlimit is async-signal-safe; nothing else runs here.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = command
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn forkpool");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let stderr_closed = Arc::new(AtomicBool::new(false));
        let closed = Arc::clone(&stderr_closed);
        let err_pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
            // End of stream: every process holding stderr has exited.
            closed.store(true, Ordering::Release);
        });
        let out_pipe = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(out_pipe).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep reading so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(DEADLINE) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "no readiness line within {DEADLINE:?}; stderr:\n{}",
                    stderr.lock().map(|log| log.clone()).unwrap_or_default()
                );
            }
        };
        let addr = line
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first stdout line: {line:?}"))
            .parse()
            .expect("address in readiness line");
        Server {
            child: Some(child),
            addr,
            root,
            stderr,
            stderr_closed,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        // Poison only means a test thread panicked mid-push: the text is fine.
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until the log contains `needle`; panics with the log if not.
    pub fn wait_for_log(&self, needle: &str) {
        let found = wait_until(DEADLINE, || self.log().contains(needle));
        assert!(found, "log never said {needle:?}; log:\n{}", self.log());
    }

    /// Waits until the log contains one of `needles`; panics with the log
    /// if none shows up.
    pub fn wait_for_any_log(&self, needles: &[&str]) {
        let found = wait_until(DEADLINE, || {
            let log = self.log();
            needles.iter().any(|needle| log.contains(needle))
        });
        assert!(
            found,
            "log never said any of {needles:?}; log:\n{}",
            self.log()
        );
    }

    /// Pids of the master's live (non-zombie) children, sorted.
    pub fn workers(&self) -> Vec<i32> {
        children_of(self.pid())
    }

    /// Waits until exactly `n` workers are running; returns their pids.
    pub fn wait_for_workers(&self, n: usize) -> Vec<i32> {
        let mut pids = Vec::new();
        let ok = wait_until(DEADLINE, || {
            pids = self.workers();
            pids.len() == n
        });
        assert!(
            ok,
            "expected {n} workers, have {pids:?}; log:\n{}",
            self.log()
        );
        pids
    }

    /// Waits until worker `gone` has been replaced: `n` workers again, `gone`
    /// not among them. Returns their pids.
    pub fn wait_for_replacement(&self, gone: i32, n: usize) -> Vec<i32> {
        let mut pids = Vec::new();
        let ok = wait_until(DEADLINE, || {
            pids = self.workers();
            pids.len() == n && !pids.contains(&gone)
        });
        assert!(
            ok,
            "no replacement for {gone}: workers {pids:?}; log:\n{}",
            self.log()
        );
        pids
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.pid(), signal) };
    }

    /// Waits for the master to exit; returns its exit status.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                // Its last lines may still be in the pipe: wait (briefly: a
                // worker that outlives it keeps the pipe open) until the
                // reader has seen them.
                wait_until(Duration::from_secs(2), || {
                    self.stderr_closed.load(Ordering::Acquire)
                });
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "master did not exit; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Opens a keep-alive client connection.
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// One GET on a fresh connection.
    pub fn get(&self, path: &str) -> Response {
        self.connect().get(path)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if child.try_wait().ok().flatten().is_none() {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGQUIT) };
            let gone = wait_until(Duration::from_secs(3), || {
                child.try_wait().ok().flatten().is_some()
            });
            if !gone {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Polls `cond` every 10 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Live children of `pid` (zombies excluded), from /proc.
pub fn children_of(pid: i32) -> Vec<i32> {
    children_with_state(pid, |state| state != "Z")
}

/// Whether `pid` exists and is not a zombie.
pub fn is_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rfind(')').map(|i| &stat[i + 2..i + 3]) != Some("Z"),
        Err(_) => false,
    }
}

/// Zombie children of `pid`.
pub fn zombies_of(pid: i32) -> Vec<i32> {
    children_with_state(pid, |state| state == "Z")
}

/// Children of `pid` whose /proc state letter passes `keep`, sorted.
fn children_with_state(pid: i32, keep: impl Fn(&str) -> bool) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // Fields after the ")" that ends the command name: state, ppid, ...
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let mut fields = rest.split(' ');
        let state = fields.next().unwrap_or("");
        let ppid: i32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid == pid && keep(state) {
            pids.push(child);
        }
    }
    pids.sort();
    pids
}

/// The files every test server serves.
pub fn write_fixtures(root: &Path) {
    std::fs::write(root.join("hello.txt"), "hello, world\n").unwrap();
    std::fs::write(root.join("index.html"), "<h1>home</h1>\n").unwrap();
    let big: Vec<u8> = (0..(2 * 1024 * 1024u32)).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("big.bin"), big).unwrap();
    std::fs::create_dir(root.join("docs")).unwrap();
    std::fs::write(root.join("docs/a&b <c>.txt"), "escaped\n").unwrap();
    std::fs::create_dir(root.join("site")).unwrap();
    std::fs::write(root.join("site/index.html"), "<h1>site</h1>\n").unwrap();
    std::os::unix::fs::symlink("/etc", root.join("etc-link")).unwrap();
    std::os::unix::fs::symlink("hello.txt", root.join("inside-link.txt")).unwrap();
}

/// The content of `big.bin`, for comparing downloads.
pub fn big_bin() -> Vec<u8> {
    (0..(2 * 1024 * 1024u32)).map(|i| (i % 251) as u8).collect()
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub version: String,
    /// Lower-cased names.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A keep-alive connection that sends raw bytes and parses responses.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, DEADLINE).expect("connect");
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream.set_write_timeout(Some(DEADLINE)).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// GET `path` with Host and keep-alive; returns the response.
    pub fn get(&mut self, path: &str) -> Response {
        self.request(&format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n"))
    }

    pub fn request(&mut self, raw: &str) -> Response {
        self.send(raw.as_bytes());
        let head_only = raw.starts_with("HEAD ");
        self.read_response(head_only)
            .unwrap_or_else(|| panic!("no response to {raw:?}"))
    }

    /// Reads one response; `None` if the connection closed first.
    pub fn read_response(&mut self, head_only: bool) -> Option<Response> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.fill() == 0 {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap().to_string();
        let status: u16 = parts.next().unwrap().parse().expect("status code");
        let mut headers = HashMap::new();
        for line in lines.filter(|l| !l.is_empty()) {
            let (name, value) = line.split_once(':').expect("header line");
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
        self.buf.drain(..head_end);
        let len: usize = if head_only || status == 304 || status == 204 || status / 100 == 1 {
            0
        } else {
            headers
                .get("content-length")
                .map(|v| v.parse().unwrap())
                .unwrap_or(0)
        };
        while self.buf.len() < len {
            if self.fill() == 0 {
                panic!(
                    "connection closed inside a body ({} of {len} bytes)",
                    self.buf.len()
                );
            }
        }
        let body = self.buf.drain(..len).collect();
        Some(Response {
            status,
            version,
            headers,
            body,
        })
    }

    /// True if nothing arrives (no byte, no close) for `limit`: the request
    /// sent is waiting somewhere. Bytes that do arrive are kept for
    /// [`Client::read_response`].
    pub fn silent_for(&mut self, limit: Duration) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        self.stream.set_read_timeout(Some(limit)).unwrap();
        let mut chunk = [0u8; 64 * 1024];
        let silent = loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    break false;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break is_timeout(&e),
            }
        };
        self.stream.set_read_timeout(Some(DEADLINE)).unwrap();
        silent
    }

    /// True if the server closed the connection (EOF or reset) with no more bytes.
    pub fn is_closed(&mut self) -> bool {
        self.buf.is_empty() && self.fill() == 0
    }

    /// Waits (discarding whatever arrives) until the server closes the
    /// connection; false if it is still open after `limit`.
    pub fn closed_within(&mut self, limit: Duration) -> bool {
        self.buf.clear();
        let deadline = Instant::now() + limit;
        let mut chunk = [0u8; 64 * 1024];
        let closed = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break false;
            }
            self.stream
                .set_read_timeout(Some(left.min(Duration::from_millis(50))))
                .unwrap();
            match self.stream.read(&mut chunk) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e) if is_timeout(&e) || e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break true, // reset: closed too
            }
        };
        self.stream.set_read_timeout(Some(DEADLINE)).unwrap();
        closed
    }

    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return n;
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return 0,
                // A signal to the test process (a child that `ip` or a
                // browser test spawned ended) is not the server's doing.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }
}

/// Sends `raw` on a new connection and returns the first response.
pub fn send_raw(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut client = Client::connect(addr);
    client.send(raw);
    client.read_response(false).expect("a response")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Writes `text` to a fresh config file (kept until the test process
/// ends) and returns its path.
pub fn write_config(text: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("forkpool-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.toml", N.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A field of a workload's JSON answer (`"thread":"forkpool-w0l1"`).
pub fn json_field(response: &Response, name: &str) -> serde_json::Value {
    let json: serde_json::Value = serde_json::from_str(&response.text())
        .unwrap_or_else(|_| panic!("not JSON: {}", response.text()));
    json[name].clone()
}

/// Jain's fairness index of `counts`: 1.0 when all are equal, 1/n when one
/// has everything.
pub fn jain(counts: &[u64]) -> f64 {
    let sum: f64 = counts.iter().map(|&c| c as f64).sum();
    let squares: f64 = counts.iter().map(|&c| (c as f64).powi(2)).sum();
    sum * sum / (counts.len() as f64 * squares)
}

/// The pid in a workload's JSON answer (`"pid":123`).
pub fn pid_of(response: &Response) -> i32 {
    let text = response.text();
    let start = text
        .find("\"pid\":")
        .unwrap_or_else(|| panic!("no pid in {text}"))
        + 6;
    text[start..]
        .split([',', '}'])
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("forkpool-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `pattern` again and again on `stream` until the server cuts the
/// connection (a write fails) or `limit` passes. Returns the bytes written
/// before the cut, or `None` if the server was still taking bytes at `limit`.
pub fn flood(stream: &TcpStream, pattern: &[u8], limit: Duration) -> Option<u64> {
    let mut batch = Vec::with_capacity(64 * 1024 + pattern.len());
    while batch.len() < 64 * 1024 {
        batch.extend_from_slice(pattern);
    }
    stream
        .set_write_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let deadline = Instant::now() + limit;
    let mut written = 0u64;
    let mut stream = stream;
    // The batch is whole patterns: after a short write, go on from there.
    let mut pos = 0;
    while Instant::now() < deadline {
        match stream.write(&batch[pos..]) {
            Ok(0) => return Some(written),
            Ok(n) => {
                written += n as u64;
                pos = (pos + n) % batch.len();
            }
            Err(e) if is_timeout(&e) => {}
            Err(_) => return Some(written),
        }
    }
    None
}

/// A socket timeout (or a signal) rather than the peer going away.
fn is_timeout(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::Interrupted
    )
}
