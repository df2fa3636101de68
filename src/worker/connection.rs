//! One client connection: read, parse, handle, write, repeat.
//!
//! This is the single HTTP code path both architectures share. [`Connection::drive`]
//! works on a non-blocking socket until it would block, then says what it
//! waits for ([`Next`]); the caller (the event loop, or a pool thread) only
//! decides *where* the connection waits. Keep-alive, pipelining (responses
//! in order, small ones batched into one write), body draining, limits and
//! timeouts all live here, so the two modes can't drift apart.
//!
//! A connection's error closes that connection and nothing else: no method
//! here returns an error to the worker, and a panicking handler becomes a
//! 500 (`catch_unwind`), in both modes.
//!
//! Fairness: one `drive` serves at most [`REQUESTS_PER_DRIVE`] requests and
//! reads at most [`READ_BUDGET`] bytes, then returns [`Next::Yield`], so a
//! client that pipelines or uploads without end can't hold the event loop
//! (process mode) or a pool thread (thread mode).
//!
//! Timers (one deadline per connection, swept by the event loop):
//! - idle keep-alive: `keepalive_timeout` after the last response;
//! - request head: `header_timeout` from the first byte of the request
//!   (a leading empty line counts; at most [`MAX_LEADING_CRLF`] bytes of
//!   them are skipped, more is a 400), never restarted by more bytes, then
//!   408 (slowloris);
//! - request body: `header_timeout` from the start of the body, plus one
//!   second per [`MIN_BODY_RATE`] bytes received (Apache mod_reqtimeout's
//!   `body=20,MinRate=500`): an upload at a sane rate is never cut, a
//!   trickle is;
//! - write: [`SEND_TIMEOUT`] without progress.
//!
//! Lingering close (nginx `lingering_close`): closing a socket with unread
//! input makes the kernel send a reset, which can destroy a response the
//! client has not read yet (typically a 413 or 400 sent while the client
//! is still sending). So when input may still be coming, the connection
//! shuts down its write side and reads and discards for at most
//! [`LINGER_TIMEOUT`] or [`LINGER_BYTES`] ([`Next::Linger`]); the event loop
//! does that on its own thread in both modes, as input arrives.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use crate::config::Config;
use crate::handlers::Router;
use crate::http::body::BodyReader;
use crate::http::date::with_http_date;
use crate::http::request::{check_partial_head, find_head_end, parse_head};
use crate::http::{Body, Method, Request, RequestError, Response};
use crate::scoreboard::{Scoreboard, Slot};

/// Bodies up to this size are copied into the write buffer (one `write` for
/// head and body); larger ones go out with `sendfile`.
const SMALL_BODY: u64 = 64 * 1024;
/// Stop batching pipelined responses once this much output is queued.
const WRITE_HIGH_WATER: usize = 64 * 1024;
/// Most requests served in one `drive` call before yielding to other
/// connections (fairness against a client that pipelines without end).
const REQUESTS_PER_DRIVE: u32 = 64;
/// Most bytes read in one `drive` call before yielding (fairness against a
/// client that sends without end: an upload, a stream of tiny chunks).
pub const READ_BUDGET: usize = 256 * 1024;
/// Most CR/LF bytes skipped before a request line: two empty lines (RFC
/// 9112 section 2.2 says to ignore at least one).
pub const MAX_LEADING_CRLF: u32 = 4;
/// Bytes per second a request body must average to earn more time than
/// `header_timeout` (mod_reqtimeout's default `MinRate`).
pub const MIN_BODY_RATE: u64 = 500;
/// A lingering close gives up after this long...
pub const LINGER_TIMEOUT: Duration = Duration::from_secs(2);
/// ...or after discarding this many bytes.
pub const LINGER_BYTES: usize = 64 * 1024;
/// A write that makes no progress for this long closes the connection
/// (nginx `send_timeout` is 60 s; a dev server can give up sooner).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// While draining, an idle keep-alive connection is closed after this
/// grace, so a request already on the wire still gets its answer.
pub const DRAIN_IDLE_GRACE: Duration = Duration::from_millis(500);

/// What the worker shares with every connection it serves.
pub struct ServeCtx {
    pub router: Router,
    pub slot: &'static Slot,
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
    pub keepalive_timeout: Duration,
    pub header_timeout: Duration,
    pub access_log: bool,
    /// Set when the worker stops: every response then closes its connection.
    pub draining: AtomicBool,
    pub pid: u32,
}

impl ServeCtx {
    /// The context of worker number `worker`.
    pub fn new(
        config: &Config,
        board: Scoreboard,
        slot: &'static Slot,
        worker: usize,
    ) -> io::Result<ServeCtx> {
        Ok(ServeCtx {
            router: Router::new(config, worker, board)?,
            slot,
            max_header_bytes: config.max_header_bytes,
            max_body_bytes: config.max_body_bytes,
            keepalive_timeout: config.keepalive_timeout,
            header_timeout: config.header_timeout,
            access_log: config.access_log,
            draining: AtomicBool::new(false),
            pid: std::process::id(),
        })
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

/// What a connection waits for after [`Connection::drive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wants more input; `idle` when no request is in progress (a parked
    /// keep-alive connection), else a request head or body is half read.
    Read { idle: bool },
    /// Its answers are sent and its write side shut down; it discards input
    /// until the client closes or [`LINGER_TIMEOUT`] passes. Drive it when
    /// readable, on the event loop's thread (each drive reads at most
    /// [`LINGER_BYTES`] in all, so it never takes long).
    Linger,
    /// Output is queued and the socket is full.
    Write,
    /// Still has buffered work but gave others a turn: drive it again soon.
    Yield,
    /// A response is held until a time (`Response::not_before`): drive it
    /// again at its deadline.
    Timer,
    /// Done: drop it.
    Close,
}

/// A large file body still being sent.
struct FileSend {
    file: File,
    offset: i64,
    remaining: u64,
}

/// A response waiting for its `not_before` time.
struct Delayed {
    response: Response,
    keep_alive: bool,
    started: Instant,
}

/// What the current deadline guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Idle,
    Header,
    Body,
    Write,
    /// Not a timeout: the moment a delayed response is due.
    Due,
    /// It yielded with work pending and is on the ready list: no client
    /// timeout applies until it is driven again (within one loop turn; the
    /// deadline, [`SEND_TIMEOUT`] away, is only a backstop).
    Yielded,
    /// The end of a lingering close.
    Linger,
}

pub struct Connection {
    stream: TcpStream,
    /// Input: unconsumed bytes are `rbuf[rstart..rend]`.
    rbuf: Box<[u8]>,
    rstart: usize,
    rend: usize,
    /// How many bytes of the pending head were already searched for its end.
    scanned: usize,
    /// When the first byte of the request head being read arrived (empty
    /// lines before it included), and how many CR/LF bytes were skipped.
    head_started: Option<Instant>,
    leading_crlf: u32,
    /// Output: `wbuf[wpos..]` is still to be written, then `file`.
    wbuf: Vec<u8>,
    wpos: usize,
    file: Option<FileSend>,
    /// The request being served (reused: its strings keep their capacity).
    req: Request,
    /// A request body being read off the wire and discarded, and when it
    /// started.
    body: Option<BodyReader>,
    body_started: Instant,
    /// A response held back by a timer (process mode's non-blocking wait).
    delayed: Option<Delayed>,
    close_after_write: bool,
    /// The client may still be sending input we won't read (an error
    /// answer, an abandoned body): close with a linger.
    unread_input: bool,
    /// Bytes a lingering close may still discard; `None` when not lingering.
    linger_left: Option<usize>,
    eof: bool,
    deadline: Instant,
    timer: Timer,
    /// The worker's counters: this connection counts in `connections`
    /// from birth to drop, and in `idle_connections` while `counted_idle`
    /// (parked between requests, not being driven).
    slot: &'static Slot,
    counted_idle: bool,
}

impl Connection {
    pub fn new(stream: TcpStream, ctx: &ServeCtx, now: Instant) -> Connection {
        // Room for a maximal head plus a little, so "too large" is detectable.
        let rbuf_len = ctx.max_header_bytes + 1024;
        ctx.slot.connections.fetch_add(1, Ordering::Relaxed);
        Connection {
            stream,
            rbuf: vec![0; rbuf_len].into_boxed_slice(),
            rstart: 0,
            rend: 0,
            scanned: 0,
            head_started: None,
            leading_crlf: 0,
            wbuf: Vec::with_capacity(4096),
            wpos: 0,
            file: None,
            req: Request::default(),
            body: None,
            body_started: now,
            delayed: None,
            close_after_write: false,
            unread_input: false,
            linger_left: None,
            eof: false,
            deadline: now + ctx.header_timeout,
            timer: Timer::Header,
            slot: ctx.slot,
            counted_idle: false,
        }
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Idle: between requests, with nothing buffered in either direction.
    pub fn is_idle(&self) -> bool {
        self.rstart == self.rend
            && self.head_started.is_none()
            && self.linger_left.is_none()
            && self.body.is_none()
            && self.delayed.is_none()
            && !self.has_output()
    }

    /// Whether the deadline is a delayed response coming due (drive it
    /// then) rather than a timeout (close it then).
    pub fn deadline_is_due_work(&self) -> bool {
        self.timer == Timer::Due
    }

    /// Whether it is in a lingering close (see [`Next::Linger`]).
    pub fn is_lingering(&self) -> bool {
        self.linger_left.is_some()
    }

    /// Shortens an idle or lingering connection's deadline when the worker
    /// starts draining.
    pub fn start_draining(&mut self, now: Instant) {
        if self.is_idle() || self.is_lingering() {
            self.deadline = self.deadline.min(now + DRAIN_IDLE_GRACE);
        }
    }

    /// Serves as much as the socket allows; see [`Next`].
    pub fn drive(&mut self, ctx: &ServeCtx, now: Instant) -> Next {
        // Being driven is being busy, whatever comes of it.
        self.count_idle(false);
        let next = if self.is_lingering() {
            self.discard()
        } else {
            self.work(ctx)
        };
        self.set_deadline(ctx, next, now);
        self.count_idle(next == Next::Read { idle: true });
        next
    }

    /// Keeps the worker's idle-connection gauge: two relaxed atomic
    /// operations per drive of a parked connection, none otherwise.
    pub fn count_idle(&mut self, idle: bool) {
        if idle != self.counted_idle {
            match idle {
                true => self.slot.idle_connections.fetch_add(1, Ordering::Relaxed),
                false => self.slot.idle_connections.fetch_sub(1, Ordering::Relaxed),
            };
            self.counted_idle = idle;
        }
    }

    fn work(&mut self, ctx: &ServeCtx) -> Next {
        let mut budget = REQUESTS_PER_DRIVE;
        let mut read = 0;
        loop {
            // 0. A held response goes first, once due; until then nothing
            // behind it may be answered (responses stay in order).
            if let Some(delayed) = self.delayed.take() {
                if delayed
                    .response
                    .not_before
                    .is_some_and(|at| Instant::now() < at)
                {
                    self.delayed = Some(delayed);
                    return Next::Timer;
                }
                self.finish(ctx, delayed);
            }
            // 1. Turn buffered input into queued output, in order.
            let mut need_input = false;
            while self.file.is_none()
                && self.wbuf.len() < WRITE_HIGH_WATER
                && !self.close_after_write
                && self.delayed.is_none()
            {
                if let Some(body) = &mut self.body {
                    match body.consume(&self.rbuf[self.rstart..self.rend]) {
                        Ok(used) => self.rstart += used,
                        Err(err) => {
                            // The response is already queued: we can only close.
                            log::debug!("closing connection: {err}");
                            self.close_after_write = true;
                            self.unread_input = true;
                            break;
                        }
                    }
                    if !body.is_done() {
                        need_input = true;
                        break;
                    }
                    self.body = None;
                }
                if budget == 0 {
                    break;
                }
                match self.next_head(ctx) {
                    Ok(true) => {
                        budget -= 1;
                        self.serve(ctx);
                    }
                    Ok(false) => {
                        need_input = true;
                        break;
                    }
                    Err(err) => {
                        // The head is unusable: its answer must not follow
                        // the method or version of the previous request
                        // (after a HEAD, an error would lose its body).
                        self.req.method = Method::Get;
                        self.req.http10 = false;
                        self.queue_error(ctx, err);
                        break;
                    }
                }
            }

            // 2. Write what is queued.
            if self.has_output() {
                match self.flush() {
                    Ok(true) => {}
                    Ok(false) => return Next::Write,
                    Err(err) => {
                        log::debug!("write failed: {err}");
                        return Next::Close;
                    }
                }
            }
            if self.close_after_write {
                return self.close();
            }
            if budget == 0 {
                return Next::Yield;
            }
            if !need_input {
                continue;
            }

            // 3. Read more.
            if self.eof {
                return Next::Close;
            }
            if read >= READ_BUDGET {
                return Next::Yield;
            }
            match self.fill() {
                Ok(0) => {
                    // The client closed its side; queued answers were sent above.
                    self.eof = true;
                }
                Ok(n) => read += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    return Next::Read {
                        idle: self.is_idle(),
                    };
                }
                Err(err) => {
                    log::debug!("read failed: {err}");
                    return Next::Close;
                }
            }
        }
    }

    /// Parses the next request head if it is complete. `Ok(false)`: need more.
    fn next_head(&mut self, ctx: &ServeCtx) -> Result<bool, RequestError> {
        // RFC 9112 2.2: ignore an empty line or two before a request line
        // (some clients send a stray CRLF after a body). They start the
        // header timer like any byte of the request, so they can't be used
        // to keep a connection open.
        while self.rstart < self.rend && matches!(self.rbuf[self.rstart], b'\r' | b'\n') {
            self.head_started.get_or_insert_with(Instant::now);
            self.leading_crlf += 1;
            if self.leading_crlf > MAX_LEADING_CRLF {
                return Err(RequestError::BadRequest("empty lines before the request"));
            }
            self.rstart += 1;
        }
        let pending = &self.rbuf[self.rstart..self.rend];
        match find_head_end(pending, self.scanned) {
            Some(end) => {
                parse_head(&pending[..end], ctx.max_header_bytes, &mut self.req)?;
                self.rstart += end;
                self.scanned = 0;
                self.head_started = None;
                self.leading_crlf = 0;
                Ok(true)
            }
            None => {
                self.scanned = pending.len();
                if !pending.is_empty() {
                    self.head_started.get_or_insert_with(Instant::now);
                }
                check_partial_head(pending, ctx.max_header_bytes)?;
                Ok(false)
            }
        }
    }

    /// Handles the parsed request and queues its response.
    fn serve(&mut self, ctx: &ServeCtx) {
        let started = Instant::now();
        let body = match BodyReader::new(self.req.body, ctx.max_body_bytes, ctx.max_header_bytes) {
            Ok(body) => body,
            Err(err) => return self.queue_error(ctx, err),
        };
        let busy = ctx.slot.busy();
        let response = catch_unwind(AssertUnwindSafe(|| ctx.router.handle(&self.req)))
            .unwrap_or_else(|panic| {
                log::error!(
                    "handler panicked on {} {}: {}",
                    self.req.method_token,
                    self.req.target,
                    panic_message(&*panic)
                );
                Response::error(500)
            });
        drop(busy);
        let mut keep_alive = self.req.keep_alive && !response.close && !ctx.is_draining();
        if !body.is_done() {
            if self.req.expect_continue {
                // We answered without a 100 Continue, so the client may
                // never send the body: close instead of waiting for it.
                keep_alive = false;
                self.unread_input = true;
            } else {
                self.body = Some(body);
                self.body_started = started;
            }
        }
        let delayed = Delayed {
            response,
            keep_alive,
            started,
        };
        if delayed.response.not_before.is_some() {
            self.delayed = Some(delayed);
        } else {
            self.finish(ctx, delayed);
        }
    }

    /// Queues a handled request's response and logs it.
    fn finish(&mut self, ctx: &ServeCtx, done: Delayed) {
        let (status, sent) = self.queue(ctx, done.response, done.keep_alive);
        if ctx.access_log {
            log::info!(
                target: "access",
                "{} {} {} {} {}us pid={}",
                self.req.method_token,
                self.req.target,
                status,
                sent,
                done.started.elapsed().as_micros(),
                ctx.pid
            );
        }
    }

    /// Queues the answer to an unreadable request and closes after it
    /// (lingering: the client may still be sending). `self.req` must be
    /// the request being refused, or reset if its head did not parse.
    fn queue_error(&mut self, ctx: &ServeCtx, err: RequestError) {
        log::debug!("rejecting request: {err}");
        let status = err.status();
        let response = Response::text(
            status,
            format!("{status} {}: {err}", crate::http::response::reason(status)),
        );
        self.unread_input = true;
        self.queue(ctx, response, false);
        if ctx.access_log {
            log::info!(target: "access", "- - {status} 0 0us pid={}", ctx.pid);
        }
    }

    /// Serialises `response` into the write buffer (or sets up a file to
    /// stream). Returns the status and the body bytes that will be sent.
    fn queue(&mut self, ctx: &ServeCtx, response: Response, keep_alive: bool) -> (u16, u64) {
        let status = response.status;
        let counted = response.counted;
        with_http_date(|date| {
            response.write_head(&mut self.wbuf, date, self.req.http10, keep_alive)
        });
        if !keep_alive {
            self.close_after_write = true;
        }
        let send_body = !self.req.is_head() && !Response::status_has_no_body(status);
        let len = if send_body { response.body.len() } else { 0 };
        if send_body {
            match response.body {
                Body::Empty => {}
                Body::Static(bytes) => self.wbuf.extend_from_slice(bytes),
                Body::Bytes(bytes) => self.wbuf.extend_from_slice(&bytes),
                Body::File { file, offset, len } if len <= SMALL_BODY => {
                    if let Err(err) = read_exact_at_end(&mut self.wbuf, &file, offset, len) {
                        // The head promised `len` bytes; a short file can
                        // only end the connection.
                        log::warn!("file shrank while serving {}: {err}", self.req.target);
                        self.close_after_write = true;
                    }
                }
                Body::File { file, offset, len } => {
                    self.file = Some(FileSend {
                        file,
                        offset: offset as i64,
                        remaining: len,
                    });
                }
            }
        }
        if counted {
            ctx.slot.count_request(len);
        }
        (status, len)
    }

    fn has_output(&self) -> bool {
        self.wpos < self.wbuf.len() || self.file.is_some()
    }

    /// Writes queued output. `Ok(false)`: the socket is full.
    fn flush(&mut self) -> io::Result<bool> {
        while self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.wpos += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        self.wbuf.clear();
        self.wpos = 0;
        if self.wbuf.capacity() > 4 * WRITE_HIGH_WATER {
            // A huge listing shouldn't pin its buffer for the connection's life.
            self.wbuf.shrink_to(WRITE_HIGH_WATER);
        }
        while let Some(send) = &mut self.file {
            if send.remaining == 0 {
                self.file = None;
                break;
            }
            let chunk = send.remaining.min(1 << 30) as usize;
            match nix::sys::sendfile::sendfile(
                &self.stream,
                &send.file,
                Some(&mut send.offset),
                chunk,
            ) {
                Ok(0) => return Err(io::Error::other("file shrank while being sent")),
                Ok(n) => send.remaining -= n as u64,
                Err(nix::errno::Errno::EAGAIN) => return Ok(false),
                Err(nix::errno::Errno::EINTR) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(true)
    }

    /// Reads once into free buffer space. `Ok(0)` is end of stream.
    fn fill(&mut self) -> io::Result<usize> {
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
        } else if self.rend == self.rbuf.len() && self.rstart > 0 {
            self.rbuf.copy_within(self.rstart..self.rend, 0);
            self.rend -= self.rstart;
            self.rstart = 0;
        }
        if self.rend == self.rbuf.len() {
            // Full of one incomplete head: next_head has already refused it.
            return Err(io::Error::other("input buffer full"));
        }
        loop {
            match self.stream.read(&mut self.rbuf[self.rend..]) {
                Ok(n) => {
                    self.rend += n;
                    return Ok(n);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }

    fn set_deadline(&mut self, ctx: &ServeCtx, next: Next, now: Instant) {
        let (timer, deadline) = match next {
            Next::Read { idle: true } if ctx.is_draining() => (Timer::Idle, now + DRAIN_IDLE_GRACE),
            Next::Read { idle: true } => (Timer::Idle, now + ctx.keepalive_timeout),
            Next::Read { idle: false } => match &self.body {
                Some(body) => {
                    // From the body's start, plus what its bytes earned: a
                    // trickle can't extend it much, a steady upload always
                    // can. And never more than `header_timeout` past the
                    // last drive (the last bytes, as a drive follows an
                    // event): time earned by a fast start can't be spent
                    // sending nothing.
                    let earned_ms = body.received().saturating_mul(1000) / MIN_BODY_RATE;
                    let earned = Duration::from_millis(earned_ms);
                    let by_rate = self.body_started + ctx.header_timeout + earned;
                    (Timer::Body, by_rate.min(now + ctx.header_timeout))
                }
                None => {
                    // Fixed from the head's first byte: trickling bytes
                    // (slowloris) can't extend it.
                    let started = *self.head_started.get_or_insert(now);
                    (Timer::Header, started + ctx.header_timeout)
                }
            },
            Next::Write => (Timer::Write, now + SEND_TIMEOUT),
            Next::Timer => match self.delayed.as_ref().and_then(|d| d.response.not_before) {
                Some(at) => (Timer::Due, at),
                None => return,
            },
            // It has work and will be driven again soon: the idle, header or
            // body deadline it had must not close it meanwhile.
            Next::Yield => (Timer::Yielded, now + SEND_TIMEOUT),
            Next::Linger if self.timer != Timer::Linger => (Timer::Linger, now + LINGER_TIMEOUT),
            Next::Linger | Next::Close => return,
        };
        self.timer = timer;
        self.deadline = deadline;
    }

    /// Ends the connection after its answers are written: at once if no
    /// input can be pending, else with a lingering close.
    fn close(&mut self) -> Next {
        let may_send_more = self.unread_input || self.rstart < self.rend || self.body.is_some();
        if self.eof || !may_send_more {
            return Next::Close;
        }
        self.start_linger()
    }

    /// Shuts down the write side (the client sees the end of our answers)
    /// and starts discarding input; see [`Next::Linger`].
    fn start_linger(&mut self) -> Next {
        if self.stream.shutdown(std::net::Shutdown::Write).is_err() {
            return Next::Close;
        }
        self.rstart = 0;
        self.rend = 0;
        self.body = None;
        self.linger_left = Some(LINGER_BYTES);
        self.discard()
    }

    /// Reads and discards input until it would block (`Next::Linger`), or
    /// until the client closes, an error, or the byte limit (`Next::Close`).
    fn discard(&mut self) -> Next {
        let Some(mut left) = self.linger_left else {
            return Next::Close;
        };
        let next = loop {
            let want = left.min(self.rbuf.len());
            match self.stream.read(&mut self.rbuf[..want]) {
                Ok(0) => break Next::Close,
                Ok(n) => {
                    left -= n;
                    if left == 0 {
                        break Next::Close;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break Next::Linger,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break Next::Close,
            }
        };
        self.linger_left = Some(left);
        next
    }

    /// The deadline passed. Answers 408 to a half-sent head and lingers
    /// (returns true: keep it until its new deadline); otherwise returns
    /// false: close it now.
    pub fn on_timeout(&mut self, now: Instant) -> bool {
        log::debug!(
            "connection fd {} timed out ({:?})",
            self.stream.as_raw_fd(),
            self.timer
        );
        // Only empty lines so far: nothing to answer, just close.
        let half_sent_head = self.rstart < self.rend;
        if self.timer != Timer::Header || !half_sent_head || self.has_output() {
            return false;
        }
        let response = Response::error(408);
        let mut out = Vec::with_capacity(256);
        with_http_date(|date| response.write_head(&mut out, date, false, false));
        if let Body::Bytes(body) = &response.body {
            out.extend_from_slice(body);
        }
        // Best effort, never blocking: the client is already too slow.
        let _ = self.stream.write(&out);
        match self.start_linger() {
            Next::Linger => {
                self.timer = Timer::Linger;
                self.deadline = now + LINGER_TIMEOUT;
                true
            }
            _ => false,
        }
    }
}

/// Appends `len` bytes of `file` from `offset` to `out`.
fn read_exact_at_end(out: &mut Vec<u8>, file: &File, offset: u64, len: u64) -> io::Result<()> {
    let start = out.len();
    out.resize(start + len as usize, 0);
    let result = file.read_exact_at(&mut out[start..], offset);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// The text of a caught panic, for the log.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string panic payload)")
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.count_idle(false);
        self.slot.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_extracted() {
        let caught = catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(panic_message(&*caught), "boom 1");
        let caught = catch_unwind(|| std::panic::panic_any(5u8)).unwrap_err();
        assert_eq!(panic_message(&*caught), "(non-string panic payload)");
    }
}
