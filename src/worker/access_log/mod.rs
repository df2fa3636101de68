//! The access log: one line per answer, buffered per serving thread and
//! written to stderr in whole lines, a few KiB at a time.
//!
//! Writing each line on its own (as `log::info!` through env_logger did)
//! cost a `write(2)` and a `getpid(2)` per request, about a tenth to a
//! quarter of a small static request's CPU. Here each thread that answers
//! requests (the loop in process mode, each loop in thread-loops mode,
//! each pool thread in thread mode) formats its lines into a buffer of its
//! own (a thread-local, found without a lookup) and writes it out:
//! - when it passes [`FLUSH_AT`] bytes (4 KiB: most writes carry dozens of
//!   lines);
//! - at least every `worker::TICK` (500 ms), so a line shows up within
//!   about half a second with no further traffic: the event loop flushes
//!   every thread's buffer as it sweeps (a pool thread's too, idle or
//!   not), and in thread-loops mode the worker's main thread does, for all
//!   its loops, each time it wakes;
//! - when the worker stops, whatever the way (drained, recycled by
//!   `max_requests`, SIGQUIT, a drain that timed out): the loop (or, in
//!   thread-loops mode, the worker's main thread) flushes every buffer
//!   before the process exits. A graceful stop loses no line; a crash
//!   (SIGSEGV, SIGKILL) loses at most the last half second.
//!
//! Whole lines only: every write ends at a line's end and is at most 4096
//! bytes (PIPE_BUF), so a write to a pipe is atomic and lines of different
//! workers and threads never interleave; only a single line longer than
//! that (a huge target or User-Agent) goes out in one larger write. Each
//! buffer sits behind a `Mutex` so that another thread can flush it; the
//! thread that owns it is the only one to lock it on the hot path, so the
//! lock is uncontended (two atomic operations), except for the moment a
//! periodic flush takes it.
//!
//! Lines go to stderr (fd 2), where they always went: whoever reads
//! the server's stderr sees them as before, in the same order per thread
//! (a pair of lines from different threads may now appear in either
//! order). `RUST_LOG=access=off` still turns the log off: a worker checks
//! the `access` target once, when it starts.
//!
//! How a line looks is [`format`]'s business.

mod format;

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use crate::config::AccessLogFormat;
pub(crate) use format::Entry;
use format::{Clock, line};

/// Write a thread's buffer out once it holds this many bytes: PIPE_BUF on
/// Linux, the largest write to a pipe that is atomic.
const FLUSH_AT: usize = 4096;

/// A worker's access log; see the module docs.
pub(crate) struct AccessLog {
    format: AccessLogFormat,
    /// Where lines go: stderr (`None`), or in tests a pipe.
    out: Option<File>,
    pid: u32,
    /// Tells this log's buffers from another's in the thread-locals (unit
    /// tests run many logs in one process; a worker has one).
    id: usize,
    /// Every thread's buffer, so that one thread can flush them all.
    buffers: Mutex<Vec<Arc<Mutex<Buffer>>>>,
}

/// One thread's lines, not yet written.
struct Buffer {
    bytes: Vec<u8>,
    clock: Clock,
}

thread_local! {
    /// The calling thread's buffer, and the id of the log it belongs to.
    static OWN: RefCell<Option<(usize, Arc<Mutex<Buffer>>)>> = const { RefCell::new(None) };
}

impl AccessLog {
    /// A log writing `format` lines to `out`, or to stderr if `None`.
    pub(crate) fn new(format: AccessLogFormat, out: Option<File>) -> AccessLog {
        static NEXT_ID: AtomicUsize = AtomicUsize::new(0);
        AccessLog {
            format,
            out,
            pid: std::process::id(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            buffers: Mutex::new(Vec::new()),
        }
    }

    /// Whether lines show the request's `Referer` and `User-Agent` (only
    /// then does the parser keep them).
    pub(crate) fn wants_referer_and_agent(&self) -> bool {
        self.format == AccessLogFormat::Combined
    }

    /// Adds the line for `entry` to the calling thread's buffer, writing
    /// the buffer out if it is full.
    pub(crate) fn log(&self, entry: &Entry<'_>) {
        OWN.with(|own| {
            let mut own = own.borrow_mut();
            if !matches!(&*own, Some((id, _)) if *id == self.id) {
                *own = Some((self.id, self.register()));
            }
            let Some((_, buffer)) = own.as_ref() else {
                return;
            };
            let mut buffer = lock(buffer);
            let Buffer { bytes, clock } = &mut *buffer;
            let start = bytes.len();
            line(
                bytes,
                clock,
                self.format,
                self.pid,
                entry,
                SystemTime::now(),
            );
            if bytes.len() > FLUSH_AT && start > 0 {
                // Too much with this line: write the lines before it (at
                // most FLUSH_AT bytes), keep it for the next write.
                self.write(&bytes[..start]);
                bytes.drain(..start);
            }
            if bytes.len() >= FLUSH_AT {
                self.write(bytes);
                bytes.clear();
            }
        });
    }

    /// Writes out every thread's buffered lines. Called by the loop as it
    /// sweeps, and as the worker stops.
    pub(crate) fn flush(&self) {
        for buffer in lock(&self.buffers).iter() {
            let mut buffer = lock(buffer);
            if !buffer.bytes.is_empty() {
                self.write(&buffer.bytes);
                buffer.bytes.clear();
            }
        }
    }

    /// A new buffer for the calling thread, registered for [`flush`](Self::flush).
    fn register(&self) -> Arc<Mutex<Buffer>> {
        let buffer = Arc::new(Mutex::new(Buffer {
            bytes: Vec::with_capacity(FLUSH_AT + 512),
            clock: Clock::default(),
        }));
        lock(&self.buffers).push(Arc::clone(&buffer));
        buffer
    }

    /// Writes `lines` out, retrying on EINTR and after a short write (a
    /// full disk; a pipe takes a write of up to PIPE_BUF whole). A failed
    /// write loses those lines: there is nowhere to report it but stderr.
    fn write(&self, mut lines: &[u8]) {
        while !lines.is_empty() {
            let wrote = match &self.out {
                None => io::stderr().write(lines),
                Some(file) => (&*file).write(lines),
            };
            match wrote {
                Ok(0) => return,
                Ok(n) => lines = &lines[n..],
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
}

/// A poisoned lock only means a thread panicked while holding it; the
/// bytes are whole lines all the same (a line is appended in one go).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::fd::OwnedFd;

    use super::*;
    use crate::http::Request;

    /// A log writing into a pipe, and the pipe's read end (non-blocking).
    fn piped(format: AccessLogFormat) -> (AccessLog, File) {
        let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe().unwrap();
        nix::fcntl::fcntl(
            &read,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        (
            AccessLog::new(format, Some(File::from(write))),
            File::from(read),
        )
    }

    /// Everything in the pipe now.
    fn drain(pipe: &mut File) -> String {
        let mut got = Vec::new();
        let mut chunk = [0; 65536];
        while let Ok(n @ 1..) = pipe.read(&mut chunk) {
            got.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8(got).unwrap()
    }

    fn entry(req: &Request) -> Entry<'_> {
        Entry {
            req,
            parsed: true,
            status: 200,
            bytes: 1024,
            started: None,
        }
    }

    fn request(target: &str) -> Request {
        Request {
            method_token: "GET".into(),
            target: target.into(),
            peer: Some("127.0.0.1:1".parse().unwrap()),
            ..Request::default()
        }
    }

    #[test]
    fn lines_wait_for_a_flush_then_come_out_whole() {
        let (log, mut pipe) = piped(AccessLogFormat::Common);
        let req = request("/a");
        log.log(&entry(&req));
        log.log(&entry(&req));
        assert_eq!(drain(&mut pipe), "", "buffered, not written");
        log.flush();
        let lines = drain(&mut pipe);
        assert_eq!(lines.lines().count(), 2, "{lines}");
        assert!(lines.ends_with("\"GET /a HTTP/1.1\" 200 1024\n"), "{lines}");
        log.flush();
        assert_eq!(drain(&mut pipe), "", "nothing twice");
    }

    #[test]
    fn a_full_buffer_is_written_in_whole_lines_of_at_most_4096_bytes() {
        let (log, mut pipe) = piped(AccessLogFormat::Forkpool);
        let req = request("/some/path/of/a/typical/length.html");
        let one = {
            log.log(&entry(&req));
            log.flush();
            drain(&mut pipe).len()
        };
        let lines = 3 * FLUSH_AT / one;
        let mut written = String::new();
        for n in 1..=lines {
            log.log(&entry(&req));
            let chunk = drain(&mut pipe);
            if !chunk.is_empty() {
                assert!(chunk.len() <= FLUSH_AT, "{} bytes", chunk.len());
                assert!(chunk.ends_with('\n'), "ends mid-line");
                assert!(n * one > FLUSH_AT - one, "written too early, at line {n}");
                written.push_str(&chunk);
            }
        }
        assert!(
            written.len() > FLUSH_AT,
            "two writes or more, by size alone"
        );
        log.flush();
        written.push_str(&drain(&mut pipe));
        assert_eq!(written.lines().count(), lines);
    }

    #[test]
    fn a_line_longer_than_the_buffer_goes_out_alone() {
        let (log, mut pipe) = piped(AccessLogFormat::Common);
        let short = request("/short");
        let long = request(&format!("/{}", "x".repeat(2 * FLUSH_AT)));
        log.log(&entry(&short));
        log.log(&entry(&long));
        let got = drain(&mut pipe);
        assert_eq!(got.lines().count(), 2, "both written: the long one alone");
        assert!(got.lines().nth(1).unwrap().contains("/xxxx"));
        log.flush();
        assert_eq!(drain(&mut pipe), "");
    }

    #[test]
    fn one_flush_writes_every_threads_lines() {
        let (log, mut pipe) = piped(AccessLogFormat::Common);
        let log = Arc::new(log);
        let threads: Vec<_> = (0..3)
            .map(|n| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || log.log(&entry(&request(&format!("/t{n}")))))
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(drain(&mut pipe), "");
        log.flush();
        let got = drain(&mut pipe);
        for n in 0..3 {
            assert!(got.contains(&format!("GET /t{n} ")), "{got}");
        }
    }

    #[test]
    fn two_logs_on_one_thread_keep_their_own_lines() {
        let (first, mut first_pipe) = piped(AccessLogFormat::Common);
        let (second, mut second_pipe) = piped(AccessLogFormat::Common);
        first.log(&entry(&request("/first")));
        second.log(&entry(&request("/second")));
        first.log(&entry(&request("/first-again")));
        first.flush();
        second.flush();
        let (one, two) = (drain(&mut first_pipe), drain(&mut second_pipe));
        assert!(
            one.contains("/first ") && one.contains("/first-again "),
            "{one}"
        );
        assert!(two.contains("/second ") && !two.contains("/first"), "{two}");
    }
}
