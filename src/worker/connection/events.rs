//! A live-reload event stream: what a connection does after a handler
//! answered it with [`Body::Events`](crate::http::Body::Events).
//!
//! The response head goes out like any other; then the connection stays
//! open, serves no further request, and tells its client of every change
//! the worker's [`ChangeFeed`](crate::changes::ChangeFeed) publishes, one Server-Sent Event each. It is
//! a long-lived idle connection, so it never waits on a pool thread: the
//! event loop drives it on its own thread, in every mode ([`Next::Events`]),
//! when the feed wakes the loop, when its ping is due, or when the client
//! sends something (which is read and thrown away: an event stream has no
//! requests).
//!
//! A comment line goes out every [`PING_EVERY`] without news, so a client
//! that vanished without a word is found out by a failed write, not kept
//! forever. A draining worker closes its streams (its clients reconnect
//! to another worker, and are told only what they have not seen).
//!
//! A stream never times out, so a loop holds at most [`MOST_STREAMS`] of
//! them: without a cap, a peer that may fetch the files (any peer, when the
//! server listens on a public address) could fill every connection slot
//! with streams. Past it, a request for one gets 503 with `Retry-After`
//! (the page's script tries again a second later).

use std::io::{self, Read};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Connection, Next, ServeCtx};
use crate::changes::write_event;

/// How long a stream may go without a byte: then it gets a comment line.
pub(super) const PING_EVERY: Duration = Duration::from_secs(30);
/// Event streams one loop holds at most (a quarter of the default
/// `max_connections`: a developer's tabs need a handful).
pub(super) const MOST_STREAMS: u32 = 256;
/// Reads of discarded input per drive (each of a read buffer's size): a
/// client that floods its stream can't hold the loop.
const DISCARD_READS: usize = 4;

/// What a stream remembers between drives.
#[derive(Debug)]
pub(super) struct EventStream {
    /// The last generation of the feed its client was told about.
    seen: u64,
    /// When it wrote last (or started): the ping is due [`PING_EVERY`] later.
    quiet_since: Instant,
}

impl EventStream {
    pub(super) fn new(since: u64, now: Instant) -> EventStream {
        EventStream {
            seen: since,
            quiet_since: now,
        }
    }

    /// When its next ping is due.
    pub(super) fn ping_due(&self) -> Instant {
        self.quiet_since + PING_EVERY
    }
}

impl Connection {
    /// Takes one of the loop's [`MOST_STREAMS`] places for this connection
    /// (its accepting loop's count, wherever it is driven); false when
    /// they are taken. Given back when the connection is dropped.
    pub(super) fn reserve_stream(&self) -> bool {
        self.counters
            .streams
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < MOST_STREAMS).then_some(n + 1)
            })
            .is_ok()
    }

    /// Whether it is an event stream (driven on the loop's thread).
    pub(crate) fn is_streaming(&self) -> bool {
        self.events.is_some()
    }

    /// One drive of an event stream: queue the news (or a ping, if due),
    /// write, and throw away whatever the client sent.
    pub(super) fn stream_events(&mut self, ctx: &ServeCtx) -> Next {
        if ctx.is_draining() {
            return Next::Close;
        }
        let Some(stream) = &mut self.events else {
            return Next::Close;
        };
        let now = Instant::now();
        let news = ctx.changes.and_then(|feed| feed.news_since(stream.seen));
        if let Some((change, generation)) = news {
            write_event(self.output.buffer(), change, generation);
            stream.seen = generation;
            stream.quiet_since = now;
        } else if now >= stream.ping_due() {
            self.output.buffer().extend_from_slice(b": ping\n\n");
            stream.quiet_since = now;
        }
        if self.output.has_output() {
            match self.output.flush(&mut self.stream) {
                Ok(true) => {}
                Ok(false) => return Next::Write,
                Err(err) => {
                    log::debug!("event stream write failed: {err}");
                    return Next::Close;
                }
            }
        }
        for _ in 0..DISCARD_READS {
            match self.stream.read(self.input.scratch()) {
                Ok(0) => return Next::Close, // the client is gone
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Next::Events,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    log::debug!("event stream read failed: {err}");
                    return Next::Close;
                }
            }
        }
        // More input than a drive discards: read on at the next turn
        // (edge-triggered, it would raise no new event).
        Next::Yield
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Body, Handler, Request, Response};
    use crate::worker::connection::tests::{accepted, exchange};

    /// Answers every request with an event stream.
    struct Streams;

    impl Handler for Streams {
        fn handle(&self, _req: &Request) -> Response {
            Response::new(200, Body::Events { since: 0 })
        }
    }

    const ASK: &[u8] = b"GET /-/livereload HTTP/1.1\r\nHost: x\r\n\r\n";

    #[test]
    fn a_loop_holds_at_most_its_share_of_streams() {
        let (conn, ctx, client) = accepted(Streams);
        let row = ctx.slot.own_row();
        row.streams.store(MOST_STREAMS, Ordering::Relaxed);
        let (_, answer) = exchange(conn, &ctx, client, ASK);
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        assert!(answer.contains("\r\nRetry-After: 1\r\n"), "{answer}");
        assert_eq!(row.streams.load(Ordering::Relaxed), MOST_STREAMS);
        // With a place free, the stream opens, and gives it back when it
        // ends.
        let (mut conn, ctx, mut client) = accepted(Streams);
        let row = ctx.slot.own_row();
        row.streams.store(MOST_STREAMS - 1, Ordering::Relaxed);
        std::io::Write::write_all(&mut client, ASK).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while conn.drive(&ctx) != Next::Events {
            assert!(Instant::now() < deadline, "never became a stream");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(row.streams.load(Ordering::Relaxed), MOST_STREAMS);
        drop(conn);
        assert_eq!(row.streams.load(Ordering::Relaxed), MOST_STREAMS - 1);
    }
}
