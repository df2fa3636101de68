//! Answering a parsed request: call the handler, hold a response that is
//! not due yet, queue the answer, and log it (into the serving thread's
//! access-log buffer: see `worker::access_log`).
//!
//! The handler runs under its own `catch_unwind`: a panicking handler
//! becomes a 500 and the connection carries on. Whether the connection
//! stays open after the answer is decided here (keep-alive, the handler's
//! wish, draining, an unread body the client was told to hold back). It
//! doesn't touch the socket: the answer goes into the write queue.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use super::events::EventStream;
use super::{Connection, ServeCtx, panic_message};
use crate::config::Config;
use crate::http::body::BodyReader;
use crate::http::date::with_http_date;
use crate::http::{Body, RequestError, Response};
use crate::worker::access_log::{AccessLog, Entry};

/// The worker's access log, if it keeps one: `access_log` is on and
/// `RUST_LOG` lets the `access` target through (`RUST_LOG=access=off`
/// silenced the log when each line went through `log`, and still does).
pub(super) fn access_log(config: &Config) -> Option<AccessLog> {
    let on = config.access_log && log::log_enabled!(target: "access", log::Level::Info);
    on.then(|| AccessLog::new(config.access_log_format, None))
}

impl ServeCtx {
    /// Writes out the lines every serving thread has buffered.
    pub(crate) fn flush_access_log(&self) {
        if let Some(log) = &self.access_log {
            log.flush();
        }
    }

    /// Whether requests must keep `Referer` and `User-Agent` for the log.
    pub(super) fn logs_referer_and_agent(&self) -> bool {
        self.access_log
            .as_ref()
            .is_some_and(AccessLog::wants_referer_and_agent)
    }
}

/// A response waiting for its `not_before` time.
pub(super) struct Delayed {
    pub(super) response: Response,
    keep_alive: bool,
    started: Instant,
}

impl Connection {
    /// Handles the parsed request, which started being served at
    /// `started`, and queues its response.
    pub(super) fn serve(&mut self, ctx: &ServeCtx, started: Instant) {
        let body = match BodyReader::new(self.req.body, ctx.max_body_bytes, ctx.max_header_bytes) {
            Ok(body) => body,
            Err(err) => return self.refuse(ctx, err, true),
        };
        // Test builds only: a bug in the connection code, outside the
        // handler's `catch_unwind` (see `drive`).
        #[cfg(test)]
        super::tests::panic_if_asked(&self.req);
        let busy = ctx.slot.busy();
        let response = catch_unwind(AssertUnwindSafe(|| ctx.handler.handle(&self.req)))
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
                self.timers.body_begun(started);
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
    pub(super) fn finish(&mut self, ctx: &ServeCtx, done: Delayed) {
        let (status, sent) = self.queue(ctx, done.response, done.keep_alive);
        if let Some(log) = &ctx.access_log {
            log.log(&Entry {
                req: &self.req,
                parsed: true,
                status,
                bytes: sent,
                started: Some(done.started),
            });
        }
    }

    /// Queues the answer to a request head that could not be parsed and
    /// closes after it (lingering: the client may still be sending).
    /// `self.req` must be reset.
    pub(super) fn queue_error(&mut self, ctx: &ServeCtx, err: RequestError) {
        self.refuse(ctx, err, false);
    }

    /// Queues the answer to an unreadable request and closes after it.
    /// `parsed`: its head was parsed into `self.req` (its body is what is
    /// refused), so the log can show its request line.
    fn refuse(&mut self, ctx: &ServeCtx, err: RequestError, parsed: bool) {
        log::debug!("rejecting request: {err}");
        let status = err.status();
        let response = Response::text(
            status,
            format!("{status} {}: {err}", crate::http::response::reason(status)),
        );
        self.unread_input = true;
        let (status, sent) = self.queue(ctx, response, false);
        if let Some(log) = &ctx.access_log {
            log.log(&Entry {
                req: &self.req,
                parsed,
                status,
                bytes: sent,
                started: None,
            });
        }
    }

    /// Serialises `response` into the write queue. Returns the status and
    /// the body bytes that will be sent.
    fn queue(&mut self, ctx: &ServeCtx, response: Response, keep_alive: bool) -> (u16, u64) {
        // An event stream (see `events`) takes one of the loop's places: a
        // loop full of streams answers 503. A HEAD streams nothing.
        let mut response = response;
        let mut stream = None;
        if let Body::Events { since } = response.body
            && !self.req.is_head()
        {
            match self.reserve_stream() {
                true => stream = Some(since),
                false => response = Response::error(503).header("Retry-After", "1").uncounted(),
            }
        }
        let status = response.status;
        let counted = response.counted;
        let out = self.output.buffer();
        with_http_date(|date| response.write_head(out, date, self.req.http10, keep_alive));
        let send_body = !self.req.is_head() && !Response::status_has_no_body(status);
        let len = if send_body { response.body.len() } else { 0 };
        // A stream's head says `Connection: close`: the HEAD of one closes.
        if stream.is_none() && (!keep_alive || matches!(response.body, Body::Events { .. })) {
            self.close_after_write = true;
        }
        if let Some(since) = stream {
            self.events = Some(EventStream::new(since, Instant::now()));
        } else if send_body && let Err(err) = self.output.push_body(response.body) {
            // The head promised `len` bytes; a short file can only end
            // the connection.
            log::warn!("file shrank while serving {}: {err}", self.req.target);
            self.close_after_write = true;
        }
        if counted {
            ctx.slot.count_request(len);
        }
        (status, len)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use crate::http::{Body, Handler, Request, Response};
    use crate::worker::connection::Next;
    use crate::worker::connection::tests::{accepted, exchange};

    /// Answers "hello", except that `/panic` panics.
    struct Fragile;

    impl Handler for Fragile {
        fn handle(&self, req: &Request) -> Response {
            if req.target == "/panic" {
                panic!("handler bug");
            }
            Response::new(200, Body::Static(b"hello"))
        }
    }

    #[test]
    fn a_panicking_handler_gets_a_500_and_the_connection_carries_on() {
        let (conn, ctx, client) = accepted(Fragile);
        let pipelined = b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n\
            GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let (next, answers) = exchange(conn, &ctx, client, pipelined);
        assert_eq!(next, Next::Close);
        let (first, second) = answers.split_once("\r\n\r\n").unwrap();
        assert!(first.starts_with("HTTP/1.1 500 "), "{answers}");
        assert!(second.contains("HTTP/1.1 200 "), "{answers}");
        assert!(second.ends_with("\r\n\r\nhello"), "{answers}");
        assert_eq!(ctx.slot.busy_threads(), 0, "the busy mark was cleared");
    }

    #[test]
    fn a_head_answer_has_the_length_but_not_the_body() {
        let (conn, ctx, client) = accepted(Fragile);
        let head = b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let (_, answer) = exchange(conn, &ctx, client, head);
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("content-length: 5\r\n"),
            "{answer}"
        );
        assert!(answer.ends_with("\r\n\r\n"), "{answer}");
        assert_eq!(ctx.slot.requests(), 1);
    }

    #[test]
    fn while_draining_an_answer_closes_its_connection() {
        let (conn, ctx, client) = accepted(Fragile);
        ctx.draining.store(true, Ordering::Relaxed);
        let keep_alive = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let (next, answer) = exchange(conn, &ctx, client, keep_alive);
        assert_eq!(next, Next::Close);
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("connection: close\r\n"),
            "{answer}"
        );
    }
}
