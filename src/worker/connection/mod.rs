//! One client connection: read, parse, handle, write, repeat.
//!
//! This is the single HTTP code path every architecture shares. [`Connection::drive`]
//! works on a non-blocking socket until it would block, then says what it
//! waits for ([`Next`]); the caller (the event loop, or a pool thread) only
//! decides *where* the connection waits. Keep-alive, pipelining (responses
//! in order, small ones batched into one write), body draining, limits and
//! timeouts all live here, so the modes can't drift apart. What the
//! requests are answered with is not known here: the worker's [`Handler`]
//! decides, and whoever starts the worker supplies it.
//!
//! A connection's error closes that connection and nothing else: no method
//! here returns an error to the worker, and a panicking handler becomes a
//! 500 (`catch_unwind`), in every mode. A panic in this code itself (a bug)
//! is caught by [`Connection::drive`], for both schedulers alike: the
//! connection is logged and closed, the worker lives on.
//!
//! Fairness: one `drive` is one [`turn`]: at most
//! [`REQUESTS_PER_TURN`](turn::REQUESTS_PER_TURN) requests, no further
//! request once its requests have taken
//! [`TIME_PER_TURN`](turn::TIME_PER_TURN), at most
//! [`READ_BUDGET`](turn::READ_BUDGET) bytes read. Then it writes
//! what it has answered and returns [`Next::Yield`], so a client that
//! pipelines slow requests, or pipelines or uploads without end, can't hold
//! the event loop (process and thread-loops mode) or a pool thread (thread
//! mode) for more than one slow request, and the answers it was given
//! reach it while it waits for the next turn.
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
//! - write: `send_timeout` since the last drive that wrote a byte; a
//!   client that sends but never reads can't extend it (nginx
//!   `send_timeout`).
//!
//! Lingering close (nginx `lingering_close`, in [`linger`]): closing a
//! socket with unread input makes the kernel send a reset, which can
//! destroy a response the client has not read yet (typically a 413 or 400
//! sent while the client is still sending). So when input may still be
//! coming, the connection shuts down its write side and reads and discards
//! for at most [`LINGER_TIMEOUT`](linger::LINGER_TIMEOUT) or
//! [`LINGER_BYTES`](linger::LINGER_BYTES) ([`Next::Linger`]); the event
//! loop does that on its own thread in every mode, as input arrives.
//!
//! Event streams (live reload, in [`events`]): a response whose body is
//! [`Body::Events`] turns its connection into a stream of change events
//! ([`Next::Events`]), driven on the event loop's thread in every mode,
//! like a lingering close, so an idle stream never holds a pool thread.
//!
//! The parts: [`read_buffer`] (input), [`head`] (finding and parsing the
//! next request head), [`respond`] (calling the handler, queueing its
//! answer), [`write_queue`] (output: batching, `sendfile`), [`timers`],
//! [`linger`], [`events`]; this file ties them into the request cycle.

mod events;
#[cfg(test)]
mod fuzz;
mod head;
mod linger;
mod read_buffer;
mod respond;
mod timers;
mod turn;
mod write_queue;

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::access_log::AccessLog;
use crate::changes::ChangeFeed;
use crate::config::Config;
use crate::http::body::BodyReader;
use crate::http::date::with_http_date;
use crate::http::{Body, Handler, Method, Request, Response};
use crate::scoreboard::{Slot, ThreadRow};
use events::EventStream;
use head::HeadScan;
use linger::Linger;
use read_buffer::ReadBuffer;
use respond::Delayed;
pub(crate) use timers::DRAIN_IDLE_GRACE;
use timers::{Progress, Timeouts, Timer, Timers};
use turn::Turn;
use write_queue::WriteQueue;

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
    /// `None` when off (`access_log = false`, or `RUST_LOG` silences the
    /// `access` target).
    access_log: Option<AccessLog>,
    /// Set when the worker stops: every response then closes its connection.
    pub(crate) draining: AtomicBool,
    /// Live reload's change feed, which event streams report; `None` when
    /// live reload is off (a stream then only pings).
    pub(crate) changes: Option<ChangeFeed>,
}

impl ServeCtx {
    /// The context of a worker that answers with `handler`; its event
    /// streams report `changes`.
    pub(crate) fn new(
        config: &Config,
        handler: Box<dyn Handler>,
        slot: &'static Slot,
        changes: Option<ChangeFeed>,
    ) -> ServeCtx {
        ServeCtx {
            handler,
            slot,
            max_header_bytes: config.max_header_bytes,
            max_body_bytes: config.max_body_bytes,
            keepalive_timeout: config.keepalive_timeout,
            header_timeout: config.header_timeout,
            send_timeout: config.send_timeout,
            access_log: respond::access_log(config),
            draining: AtomicBool::new(false),
            changes,
        }
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    fn timeouts(&self) -> Timeouts {
        Timeouts {
            keepalive: self.keepalive_timeout,
            header: self.header_timeout,
            send: self.send_timeout,
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
    /// An event stream, waiting for news: drive it on the loop's thread
    /// when the change feed wakes the loop, when the client sends, or at
    /// its deadline (a ping).
    Events,
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
    /// Set once it is an event stream (see [`events`]).
    events: Option<EventStream>,
    eof: bool,
    timers: Timers,
    /// The accepting loop thread's counters (its scoreboard row): this
    /// connection counts in `connections` from birth to drop, and in
    /// `idle_connections` while `counted_idle` (parked between requests,
    /// not being driven), wherever it is driven.
    counters: &'static ThreadRow,
    counted_idle: bool,
    /// When the last drive ended (read once, at its end).
    driven_at: Instant,
}

impl Connection {
    /// A connection just accepted from `peer`.
    pub(crate) fn new(
        stream: TcpStream,
        peer: Option<std::net::SocketAddr>,
        ctx: &ServeCtx,
        now: Instant,
    ) -> Connection {
        // Created on the loop thread that accepted it: its row.
        let counters = ctx.slot.own_row();
        counters.connections.fetch_add(1, Ordering::Relaxed);
        Connection {
            stream,
            // Room for a maximal head plus a little, so "too large" is detectable.
            input: ReadBuffer::new(ctx.max_header_bytes + 1024),
            head: HeadScan::default(),
            output: WriteQueue::new(),
            // Parsing never touches `peer`: it stays for every request.
            req: Request {
                peer,
                keep_referer_and_agent: ctx.logs_referer_and_agent(),
                ..Request::default()
            },
            body: None,
            delayed: None,
            close_after_write: false,
            unread_input: false,
            linger: None,
            events: None,
            eof: false,
            timers: Timers::new(now, ctx.header_timeout),
            counters,
            counted_idle: false,
            driven_at: now,
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

    /// Whether the deadline is work coming due (a delayed response, an
    /// event stream's ping: drive it then) rather than a timeout (close it
    /// then).
    pub(crate) fn deadline_is_due_work(&self) -> bool {
        matches!(self.timers.timer(), Timer::Due | Timer::Ping)
    }

    /// Whether it is in a lingering close (see [`Next::Linger`]).
    pub(crate) fn is_lingering(&self) -> bool {
        self.linger.is_some()
    }

    /// Shortens an idle, lingering or streaming connection's deadline when
    /// the worker starts draining (a stream closes when driven then).
    pub(crate) fn start_draining(&mut self, now: Instant) {
        if self.is_idle() || self.is_lingering() || self.is_streaming() {
            self.timers.shorten_to(now + DRAIN_IDLE_GRACE);
        }
    }

    /// Serves one turn, as much as the socket allows; see [`Next`]. It
    /// reads the clock once at its end ([`Connection::driven_at`]), which
    /// its new deadline is measured from.
    ///
    /// The one `catch_unwind` around the connection code, whichever
    /// scheduler calls: a panic here is a bug in this connection's
    /// handling, so it costs this connection (closed, logged) and nothing
    /// else, in every mode.
    pub(crate) fn drive(&mut self, ctx: &ServeCtx) -> Next {
        // Being driven is being busy, whatever comes of it.
        self.count_idle(false);
        let next = catch_unwind(AssertUnwindSafe(|| {
            let next = if self.linger.is_some() {
                self.discard()
            } else if self.is_streaming() {
                self.stream_events(ctx)
            } else {
                self.work(ctx)
            };
            let now = Instant::now();
            self.driven_at = now;
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
        // A stream waiting for news is as idle as a parked keep-alive.
        self.count_idle(matches!(next, Next::Read { idle: true } | Next::Events));
        next
    }

    /// When the last drive ended: a clock reading the caller may reuse (a
    /// loop heartbeats by it between connections).
    pub(crate) fn driven_at(&self) -> Instant {
        self.driven_at
    }

    /// Keeps the worker's idle-connection gauge: two relaxed atomic
    /// operations per drive of a parked connection, none otherwise.
    pub(crate) fn count_idle(&mut self, idle: bool) {
        if idle != self.counted_idle {
            match idle {
                true => self
                    .counters
                    .idle_connections
                    .fetch_add(1, Ordering::Relaxed),
                false => self
                    .counters
                    .idle_connections
                    .fetch_sub(1, Ordering::Relaxed),
            };
            self.counted_idle = idle;
        }
    }

    fn work(&mut self, ctx: &ServeCtx) -> Next {
        let mut turn = Turn::default();
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
            while self.output.has_room()
                && !self.close_after_write
                && self.delayed.is_none()
                && !self.is_streaming()
            {
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
                // Between requests: has this turn had its share?
                if !self.input.is_empty() && !turn.may_serve() {
                    break;
                }
                match self.head.next(
                    &mut self.input,
                    &mut self.timers,
                    ctx.max_header_bytes,
                    &mut self.req,
                ) {
                    Ok(true) => {
                        let started = turn.start_request();
                        self.serve(ctx, started);
                    }
                    Ok(false) => {
                        need_input = true;
                        break;
                    }
                    Err(err) => {
                        // The head is unusable: its answer follows its own
                        // method as far as it was sent (a HEAD gets no
                        // body), never the method or version of the
                        // previous request.
                        self.req.method = method_sent(self.input.pending());
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
            if self.is_streaming() {
                // It answered with an event stream: no more requests.
                return self.stream_events(ctx);
            }
            if turn.is_over() {
                return Next::Yield;
            }
            if !need_input {
                continue;
            }

            // 3. Read more.
            if self.eof {
                return Next::Close;
            }
            if !turn.may_read() {
                return Next::Yield;
            }
            match self.input.fill(&mut self.stream) {
                Ok(0) => {
                    // The client closed its side; queued answers were sent above.
                    self.eof = true;
                }
                Ok(n) => turn.count_read(n),
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
            ping: self.events.as_ref().map(EventStream::ping_due),
            wrote: self.output.take_progress(),
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
        if let Body::Bytes(body) = &response.body
            && method_sent(self.input.pending()) != Method::Head
        {
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

/// The method of a request head that could not be parsed, as far as its
/// bytes tell: HEAD if its request line starts with the HEAD token (its
/// answer then has no body, RFC 9110 section 9.3.2), else GET (any other
/// method's error answer has a body).
fn method_sent(head: &[u8]) -> Method {
    match head.starts_with(b"HEAD ") {
        true => Method::Head,
        false => Method::Get,
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
        if self.is_streaming() {
            self.counters.streams.fetch_sub(1, Ordering::Relaxed);
        }
        self.count_idle(false);
        self.counters.connections.fetch_sub(1, Ordering::Relaxed);
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
        accepted_with_window(handler, None)
    }

    /// As [`accepted`], the client's receive buffer and the server's send
    /// buffer set to `window` bytes (the client's before it connects, so
    /// its TCP window is that small from the start).
    pub(super) fn accepted_with_window(
        handler: impl Handler + 'static,
        window: Option<usize>,
    ) -> (Connection, ServeCtx, ClientStream) {
        let mut config = crate::config::defaults();
        config.access_log = false;
        let slot = Scoreboard::new(1).unwrap().slot(0);
        let ctx = ServeCtx::new(&config, Box::new(handler), slot, None);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        if let Some(window) = window {
            socket.set_recv_buffer_size(window).unwrap();
        }
        socket.connect(&addr.into()).unwrap();
        let client = ClientStream::from(socket);
        let (stream, _) = listener.accept().unwrap();
        if let Some(window) = window {
            // Fixed, or the kernel grows it as acknowledgements come in.
            socket2::SockRef::from(&stream)
                .set_send_buffer_size(window)
                .unwrap();
        }
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
            match conn.drive(ctx) {
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
        assert_eq!(conn.drive(&ctx), Next::Close);
        assert_eq!(ctx.slot.busy_threads(), 0, "the busy mark was cleared");
        drop(conn);
        let mut answer = String::new();
        client.read_to_string(&mut answer).unwrap();
        assert_eq!(answer, "", "closed without an answer");
        assert_eq!(ctx.slot.connections(), 0);
        assert_eq!(ctx.slot.idle_connections(), 0);
    }

    #[test]
    fn pipelined_requests_are_answered_in_order_and_the_connection_goes_idle() {
        let (mut conn, ctx, mut client) = accepted(Hello);
        client
            .write_all(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut ready = [PollFd::new(conn.stream.as_fd(), PollFlags::POLLIN)];
        poll(&mut ready, PollTimeout::from(10_000u16)).unwrap();
        assert_eq!(conn.drive(&ctx), Next::Read { idle: true });
        assert!(conn.is_idle());
        assert_eq!(ctx.slot.idle_connections(), 1);
        assert_eq!(ctx.slot.requests(), 2);
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

    /// Answers with its own target as the body; `/slow?ms=N` first sleeps
    /// N ms (a slow handler: the busy mark is set meanwhile); `/big` is
    /// 16 MiB, more than the socket buffers hold.
    struct Echo;

    impl Handler for Echo {
        fn handle(&self, req: &Request) -> Response {
            if let Some(ms) = req.query_param("ms").and_then(|ms| ms.parse().ok()) {
                std::thread::sleep(Duration::from_millis(ms));
            }
            if req.path() == "/big" {
                return Response::new(200, Body::Bytes(vec![b'x'; 16 << 20]));
            }
            Response::new(200, Body::Bytes(req.target.clone().into_bytes()))
        }
    }

    /// Waits (bounded) until the connection's socket has input.
    fn wait_readable(conn: &Connection) {
        let mut ready = [PollFd::new(conn.stream.as_fd(), PollFlags::POLLIN)];
        poll(&mut ready, PollTimeout::from(10_000u16)).unwrap();
    }

    /// Everything the client can read right now, without waiting.
    fn read_now(client: &mut ClientStream) -> String {
        client.set_nonblocking(true).unwrap();
        let mut got = Vec::new();
        let mut chunk = [0; 4096];
        while let Ok(n @ 1..) = client.read(&mut chunk) {
            got.extend_from_slice(&chunk[..n]);
        }
        client.set_nonblocking(false).unwrap();
        String::from_utf8_lossy(&got).into_owned()
    }

    #[test]
    fn a_turn_serves_one_slow_request_sends_its_answer_and_yields() {
        let (mut conn, ctx, mut client) = accepted(Echo);
        let slow = |n| format!("GET /slow?ms=60&n={n} HTTP/1.1\r\nHost: x\r\n\r\n");
        let pipelined = format!("{}{}{}", slow(1), slow(2), slow(3));
        client.write_all(pipelined.as_bytes()).unwrap();
        wait_readable(&conn);
        for n in 1..=3 {
            let next = conn.drive(&ctx);
            let expected = match n {
                3 => Next::Read { idle: true },
                _ => Next::Yield,
            };
            assert_eq!(next, expected, "after request {n}");
            assert_eq!(ctx.slot.requests(), n);
            // The pool thread (or loop) that drove it is free: the busy
            // mark covered one request, and the answer is already out.
            assert_eq!(ctx.slot.busy_threads(), 0);
            let answer = read_now(&mut client);
            assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
            assert!(answer.ends_with(&format!("&n={n}")), "{answer}");
        }
    }

    #[test]
    fn quick_pipelined_requests_share_one_turn() {
        let (mut conn, ctx, mut client) = accepted(Echo);
        let pipelined = "GET /quick HTTP/1.1\r\nHost: x\r\n\r\n".repeat(20);
        client.write_all(pipelined.as_bytes()).unwrap();
        wait_readable(&conn);
        assert_eq!(conn.drive(&ctx), Next::Read { idle: true });
        assert_eq!(ctx.slot.requests(), 20);
    }

    #[test]
    fn a_malformed_head_answer_follows_its_own_method() {
        // An unparsable HEAD gets its error without a body (the length of
        // the one a GET would get); an unparsable GET after a HEAD gets its
        // body.
        let bad_field = "Bad Field\r\n\r\n";
        let (conn, ctx, client) = accepted(Echo);
        let request = format!("GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\n{bad_field}");
        let (_, answers) = exchange(conn, &ctx, client, request.as_bytes());
        let (_, error) = answers.split_once("/a").unwrap();
        assert!(error.starts_with("HTTP/1.1 400 "), "{answers}");
        assert!(
            error.to_ascii_lowercase().contains("content-length: "),
            "{error}"
        );
        assert!(
            error.ends_with("\r\n\r\n"),
            "a HEAD answer has no body: {error}"
        );
        let (conn, ctx, client) = accepted(Echo);
        let request = format!("HEAD /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n{bad_field}");
        let (_, answers) = exchange(conn, &ctx, client, request.as_bytes());
        let error = &answers[answers.rfind("HTTP/1.1 ").unwrap()..];
        assert!(error.starts_with("HTTP/1.1 400 "), "{answers}");
        assert!(error.trim_end().ends_with("invalid header name"), "{error}");
        assert_eq!(method_sent(b"HEAD / HTTP/1.1\r\n"), Method::Head);
        assert_eq!(method_sent(b"HEADER / HTTP/1.1\r\n"), Method::Get);
    }

    #[test]
    fn only_written_bytes_move_the_write_deadline() {
        let (mut conn, ctx, mut client) = accepted_with_window(Echo, Some(4096));
        client
            .write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        wait_readable(&conn);
        assert_eq!(conn.drive(&ctx), Next::Write, "16 MiB fill the socket");
        // The client sends a byte now and then (each an event: the loop
        // drives it) but reads nothing. Its first ones may still open its
        // window a little (bytes go out, the deadline moves), then the
        // socket is full for good and the deadline stands.
        let mut stuck = conn.deadline();
        let mut unmoved = 0;
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(10));
            client.write_all(b"G").unwrap();
            wait_readable(&conn);
            assert_eq!(conn.drive(&ctx), Next::Write);
            unmoved = if conn.deadline() == stuck {
                unmoved + 1
            } else {
                0
            };
            if unmoved == 3 {
                break;
            }
            stuck = conn.deadline();
        }
        assert_eq!(unmoved, 3, "every drive moved the write deadline");
        // The client reads: bytes go out, the deadline moves.
        let moved = (0..100).any(|_| {
            read_now(&mut client);
            std::thread::sleep(Duration::from_millis(10));
            assert_eq!(conn.drive(&ctx), Next::Write);
            conn.deadline() > stuck
        });
        assert!(moved, "reading did not move the write deadline");
    }

    #[test]
    fn panic_messages_are_extracted() {
        let caught = catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(panic_message(&*caught), "boom 1");
        let caught = catch_unwind(|| std::panic::panic_any(5u8)).unwrap_err();
        assert_eq!(panic_message(&*caught), "(non-string panic payload)");
    }
}
