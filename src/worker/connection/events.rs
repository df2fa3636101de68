//! A live-reload event stream: what a connection does after a handler
//! answered it with [`Body::Events`](crate::http::Body::Events).
//!
//! The response head goes out like any other; then the connection stays
//! open, serves no further request, and tells its client of every change
//! the worker's [`ChangeFeed`] publishes, one Server-Sent Event each. It is
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

use std::io::{self, Read};
use std::time::{Duration, Instant};

use super::{Connection, Next, ServeCtx};
use crate::changes::write_event;

/// How long a stream may go without a byte: then it gets a comment line.
pub(super) const PING_EVERY: Duration = Duration::from_secs(30);
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
