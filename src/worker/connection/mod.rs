//! One client connection: read, parse, handle, write, repeat.
//!
//! This is the single HTTP code path both architectures share. [`Connection::drive`]
//! works on a non-blocking socket until it would block, then says what it
//! waits for ([`Next`]); the caller (the event loop, or a pool thread) only
//! decides *where* the connection waits. Keep-alive, pipelining (responses
//! in order, small ones batched into one write), body draining, limits and
//! timeouts all live here, so the two modes can't drift apart. What the
//! requests are answered with is not known here: the worker's [`Handler`]
//! decides, and whoever starts the worker supplies it.
//!
//! A connection's error closes that connection and nothing else: no method
//! here returns an error to the worker, and a panicking handler becomes a
//! 500 (`catch_unwind`), in both modes. A panic in this code itself (a bug)
//! is caught by [`Connection::drive`], for both schedulers alike: the
//! connection is logged and closed, the worker lives on.
//!
//! Fairness: one `drive` serves at most [`REQUESTS_PER_DRIVE`] requests and
//! reads at most [`READ_BUDGET`] bytes, then returns [`Next::Yield`], so a
//! client that pipelines or uploads without end can't hold the event loop
//! (process mode) or a pool thread (thread mode).
//!
//! Timers (one deadline per connection, swept by the event loop; computed
//! in [`timers`]):
//! - idle keep-alive: `keepalive_timeout` after the last response;
//! - request head: `header_timeout` from the first byte of the request
//!   (a leading empty line counts; at most [`MAX_LEADING_CRLF`](head::MAX_LEADING_CRLF) bytes of
//!   them are skipped, more is a 400), never restarted by more bytes, then
//!   408 (slowloris);
//! - request body: `header_timeout` from the start of the body, plus one
//!   second per [`MIN_BODY_RATE`](timers::MIN_BODY_RATE) bytes received
//!   (Apache mod_reqtimeout's `body=20,MinRate=500`): an upload at a sane
//!   rate is never cut, a trickle is;
//! - write: [`SEND_TIMEOUT`](timers::SEND_TIMEOUT) without progress.
//!
//! Lingering close (nginx `lingering_close`, in [`linger`]): closing a
//! socket with unread input makes the kernel send a reset, which can
//! destroy a response the client has not read yet (typically a 413 or 400
//! sent while the client is still sending). So when input may still be
//! coming, the connection shuts down its write side and reads and discards
//! for at most [`LINGER_TIMEOUT`](linger::LINGER_TIMEOUT) or
//! [`LINGER_BYTES`](linger::LINGER_BYTES) ([`Next::Linger`]); the event
//! loop does that on its own thread in both modes, as input arrives.
//!
//! The parts: [`read_buffer`] (input), [`head`] (finding and parsing the
//! next request head), [`respond`] (calling the handler, queueing its
//! answer), [`write_queue`] (output: batching, `sendfile`), [`timers`],
//! [`linger`]; this file ties them into the request cycle.

mod head;
mod linger;
mod read_buffer;
mod respond;
mod timers;
mod write_queue;

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use crate::config::Config;
use crate::http::body::BodyReader;
use crate::http::date::with_http_date;
use crate::http::{Body, Handler, Method, Request, Response};
use crate::scoreboard::Slot;
use head::HeadScan;
use linger::Linger;
use read_buffer::ReadBuffer;
use respond::Delayed;
pub(crate) use timers::DRAIN_IDLE_GRACE;
use timers::{Progress, Timeouts, Timer, Timers};
use write_queue::WriteQueue;

/// Most requests served in one `drive` call before yielding to other
/// connections (fairness against a client that pipelines without end).
const REQUESTS_PER_DRIVE: u32 = 64;
/// Most bytes read in one `drive` call before yielding (fairness against a
/// client that sends without end: an upload, a stream of tiny chunks).
const READ_BUDGET: usize = 256 * 1024;

/// What the worker shares with every connection it serves.
pub(crate) struct ServeCtx {
    /// The application: what every request is answered with.
    handler: Box<dyn Handler>,
    pub(crate) slot: &'static Slot,
    max_header_bytes: usize,
    max_body_bytes: u64,
    keepalive_timeout: Duration,
    header_timeout: Duration,
    /// How long a write may make no progress (`send_timeout`).
    send_timeout: Duration,
    access_log: bool,
    /// Set when the worker stops: every response then closes its connection.
    pub(crate) draining: AtomicBool,
    pid: u32,
}

impl ServeCtx {
    /// The context of a worker that answers with `handler`.
    pub(crate) fn new(config: &Config, handler: Box<dyn Handler>, slot: &'static Slot) -> ServeCtx {
        ServeCtx {
            handler,
            slot,
            max_header_bytes: config.max_header_bytes,
            max_body_bytes: config.max_body_bytes,
            keepalive_timeout: config.keepalive_timeout,
            header_timeout: config.header_timeout,
            send_timeout: config.send_timeout,
            access_log: config.access_log,
            draining: AtomicBool::new(false),
            pid: std::process::id(),
        }
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    fn timeouts(&self) -> Timeouts {
        Timeouts {
            keepalive: self.keepalive_timeout,
            header: self.header_timeout,
            draining: self.is_draining(),
        }
    }
}

/// What a connection waits for after [`Connection::drive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Wants more input; `idle` when no request is in progress (a parked
    /// keep-alive connection), else a request head or body is half read.
    Read { idle: bool },
    /// Its answers are sent and its write side shut down; it discards input
    /// until the client closes or its linger time passes. Drive it when
    /// readable, on the event loop's thread (each drive reads at most the
    /// linger's byte budget, so it never takes long).
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

pub(crate) struct Connection {
    stream: TcpStream,
    input: ReadBuffer,
    head: HeadScan,
    output: WriteQueue,
    /// The request being served (reused: its strings keep their capacity).
    req: Request,
    /// A request body being read off the wire and discarded.
    body: Option<BodyReader>,
    /// A response held back by a timer (process mode's non-blocking wait).
    delayed: Option<Delayed>,
    close_after_write: bool,
    /// The client may still be sending input we won't read (an error
    /// answer, an abandoned body): close with a linger.
    unread_input: bool,
    /// Set while in a lingering close.
    linger: Option<Linger>,
    eof: bool,
    timers: Timers,
    /// The worker's counters: this connection counts in `connections`
    /// from birth to drop, and in `idle_connections` while `counted_idle`
    /// (parked between requests, not being driven).
    slot: &'static Slot,
    counted_idle: bool,
}

impl Connection {
    /// A connection just accepted from `peer`.
    pub(crate) fn new(
        stream: TcpStream,
        peer: Option<std::net::SocketAddr>,
        ctx: &ServeCtx,
        now: Instant,
    ) -> Connection {
        ctx.slot.connections.fetch_add(1, Ordering::Relaxed);
        Connection {
            stream,
            // Room for a maximal head plus a little, so "too large" is detectable.
            input: ReadBuffer::new(ctx.max_header_bytes + 1024),
            head: HeadScan::default(),
            output: WriteQueue::new(),
            // Parsing never touches `peer`: it stays for every request.
            req: Request {
                peer,
                ..Request::default()
            },
            body: None,
            delayed: None,
            close_after_write: false,
            unread_input: false,
            linger: None,
            eof: false,
            timers: Timers::new(now, ctx.header_timeout),
            slot: ctx.slot,
            counted_idle: false,
        }
    }

    pub(crate) fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    pub(crate) fn deadline(&self) -> Instant {
        self.timers.deadline()
    }

    /// Idle: between requests, with nothing buffered in either direction.
    pub(crate) fn is_idle(&self) -> bool {
        self.input.is_empty()
            && !self.timers.reading_head()
            && self.linger.is_none()
            && self.body.is_none()
            && self.delayed.is_none()
            && !self.output.has_output()
    }

    /// Whether the deadline is a delayed response coming due (drive it
    /// then) rather than a timeout (close it then).
    pub(crate) fn deadline_is_due_work(&self) -> bool {
        self.timers.timer() == Timer::Due
    }

    /// Whether it is in a lingering close (see [`Next::Linger`]).
    pub(crate) fn is_lingering(&self) -> bool {
        self.linger.is_some()
    }

    /// Shortens an idle or lingering connection's deadline when the worker
    /// starts draining.
    pub(crate) fn start_draining(&mut self, now: Instant) {
        if self.is_idle() || self.is_lingering() {
            self.timers.shorten_to(now + DRAIN_IDLE_GRACE);
        }
    }

    /// Serves as much as the socket allows; see [`Next`].
    ///
    /// The one `catch_unwind` around the connection code, whichever
    /// scheduler calls: a panic here is a bug in this connection's
    /// handling, so it costs this connection (closed, logged) and nothing
    /// else, in both modes.
    pub(crate) fn drive(&mut self, ctx: &ServeCtx, now: Instant) -> Next {
        // Being driven is being busy, whatever comes of it.
        self.count_idle(false);
        let next = catch_unwind(AssertUnwindSafe(|| {
            let next = match self.linger {
                Some(_) => self.discard(),
                None => self.work(ctx),
            };
            self.set_deadline(ctx, next, now);
            next
        }))
        .unwrap_or_else(|panic| {
            log::error!(
                "connection code panicked, closing the connection: {}",
                panic_message(&*panic)
            );
            Next::Close
        });
        self.count_idle(next == Next::Read { idle: true });
        next
    }

    /// Keeps the worker's idle-connection gauge: two relaxed atomic
    /// operations per drive of a parked connection, none otherwise.
    pub(crate) fn count_idle(&mut self, idle: bool) {
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
            while self.output.has_room() && !self.close_after_write && self.delayed.is_none() {
                if let Some(body) = &mut self.body {
                    match body.consume(self.input.pending()) {
                        Ok(used) => self.input.consume(used),
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
                match self.head.next(
                    &mut self.input,
                    &mut self.timers,
                    ctx.max_header_bytes,
                    &mut self.req,
                ) {
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
            if self.output.has_output() {
                match self.output.flush(&mut self.stream) {
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
            match self.input.fill(&mut self.stream) {
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

    fn set_deadline(&mut self, ctx: &ServeCtx, next: Next, now: Instant) {
        let progress = Progress {
            body_received: self.body.as_ref().map(BodyReader::received),
            due: self.delayed.as_ref().and_then(|d| d.response.not_before),
        };
        self.timers.after_drive(next, progress, ctx.timeouts(), now);
    }

    /// Ends the connection after its answers are written: at once if no
    /// input can be pending, else with a lingering close.
    fn close(&mut self) -> Next {
        let may_send_more = self.unread_input || !self.input.is_empty() || self.body.is_some();
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
        self.input.clear();
        self.body = None;
        self.linger = Some(Linger::new());
        self.discard()
    }

    /// Discards input while lingering; see [`Linger::discard`].
    fn discard(&mut self) -> Next {
        match &mut self.linger {
            Some(linger) => linger.discard(&mut self.stream, self.input.scratch()),
            None => Next::Close,
        }
    }

    /// The deadline passed. Answers 408 to a half-sent head and lingers
    /// (returns true: keep it until its new deadline); otherwise returns
    /// false: close it now.
    pub(crate) fn on_timeout(&mut self, now: Instant) -> bool {
        log::debug!(
            "connection fd {} timed out ({:?})",
            self.stream.as_raw_fd(),
            self.timers.timer()
        );
        // Only empty lines so far: nothing to answer, just close.
        let half_sent_head = !self.input.is_empty();
        if self.timers.timer() != Timer::Header || !half_sent_head || self.output.has_output() {
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
                self.timers.start_linger(now);
                true
            }
            _ => false,
        }
    }
}

/// The text of a caught panic, for the log.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
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
pub(crate) mod tests {
    use std::io::Read;
    use std::net::TcpStream as ClientStream;
    use std::os::fd::AsFd;

    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

    use super::*;
    use crate::scoreboard::Scoreboard;

    /// A request for this target panics in the connection code, outside
    /// the handler's `catch_unwind` (test builds only: the binary has no
    /// such hook).
    pub(crate) const PANIC_TARGET: &str = "/test-hook/panic-in-connection";

    pub(super) fn panic_if_asked(req: &Request) {
        if req.target == PANIC_TARGET {
            panic!("test hook: a bug in the connection code");
        }
    }

    /// A connection as the worker has just accepted it (its own slot, the
    /// default config), and the client's end.
    pub(super) fn accepted(
        handler: impl Handler + 'static,
    ) -> (Connection, ServeCtx, ClientStream) {
        let mut config = crate::config::defaults();
        config.access_log = false;
        let slot = Scoreboard::new(1).unwrap().slot(0);
        let ctx = ServeCtx::new(&config, Box::new(handler), slot);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = ClientStream::connect(listener.local_addr().unwrap()).unwrap();
        let (stream, _) = listener.accept().unwrap();
        stream.set_nonblocking(true).unwrap();
        let peer = stream.peer_addr().ok();
        let conn = Connection::new(TcpStream::from_std(stream), peer, &ctx, Instant::now());
        (conn, ctx, client)
    }

    /// Sends `request` and the end of the client's stream, drives the
    /// connection (waiting for input between drives) until it stops wanting
    /// input, drops it, and returns what it last said and everything the
    /// client received.
    pub(super) fn exchange(
        mut conn: Connection,
        ctx: &ServeCtx,
        mut client: ClientStream,
        request: &[u8],
    ) -> (Next, String) {
        client.write_all(request).unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let next = loop {
            match conn.drive(ctx, Instant::now()) {
                Next::Read { .. } | Next::Yield => {}
                other => break other,
            }
            assert!(Instant::now() < deadline, "the request never completed");
            let mut ready = [PollFd::new(conn.stream.as_fd(), PollFlags::POLLIN)];
            poll(&mut ready, PollTimeout::from(100u16)).unwrap();
        };
        drop(conn);
        let mut received = Vec::new();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        client.read_to_end(&mut received).unwrap();
        (next, String::from_utf8_lossy(&received).into_owned())
    }

    struct Hello;

    impl Handler for Hello {
        fn handle(&self, _req: &Request) -> Response {
            Response::new(200, Body::Static(b"hello"))
        }
    }

    #[test]
    fn a_panic_in_the_connection_code_closes_that_connection_only() {
        let (mut conn, ctx, mut client) = accepted(Hello);
        let request = format!("GET {PANIC_TARGET} HTTP/1.1\r\nHost: x\r\n\r\n");
        client.write_all(request.as_bytes()).unwrap();
        let mut ready = [PollFd::new(conn.stream.as_fd(), PollFlags::POLLIN)];
        poll(&mut ready, PollTimeout::from(10_000u16)).unwrap();
        assert_eq!(conn.drive(&ctx, Instant::now()), Next::Close);
        assert_eq!(ctx.slot.busy_threads(), 0, "the busy mark was cleared");
        drop(conn);
        let mut answer = String::new();
        client.read_to_string(&mut answer).unwrap();
        assert_eq!(answer, "", "closed without an answer");
        assert_eq!(ctx.slot.connections.load(Ordering::Relaxed), 0);
        assert_eq!(ctx.slot.idle_connections.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn pipelined_requests_are_answered_in_order_and_the_connection_goes_idle() {
        let (mut conn, ctx, mut client) = accepted(Hello);
        client
            .write_all(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut ready = [PollFd::new(conn.stream.as_fd(), PollFlags::POLLIN)];
        poll(&mut ready, PollTimeout::from(10_000u16)).unwrap();
        assert_eq!(conn.drive(&ctx, Instant::now()), Next::Read { idle: true });
        assert!(conn.is_idle());
        assert_eq!(ctx.slot.idle_connections.load(Ordering::Relaxed), 1);
        assert_eq!(ctx.slot.requests.load(Ordering::Relaxed), 2);
        let mut answers = vec![0; 4096];
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut got = 0;
        while String::from_utf8_lossy(&answers[..got])
            .matches("hello")
            .count()
            < 2
        {
            got += client.read(&mut answers[got..]).unwrap();
        }
        let answers = String::from_utf8_lossy(&answers[..got]);
        assert_eq!(answers.matches("HTTP/1.1 200 ").count(), 2, "{answers}");
    }

    #[test]
    fn panic_messages_are_extracted() {
        let caught = catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(panic_message(&*caught), "boom 1");
        let caught = catch_unwind(|| std::panic::panic_any(5u8)).unwrap_err();
        assert_eq!(panic_message(&*caught), "(non-string panic payload)");
    }
}
