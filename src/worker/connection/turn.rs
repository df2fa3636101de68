//! One turn of a connection: how much a single `drive` may do before it
//! gives the others a turn ([`Next::Yield`](super::Next::Yield)).
//!
//! A turn ends, whichever comes first, after [`REQUESTS_PER_TURN`]
//! requests, once its requests have taken [`TIME_PER_TURN`] (measured from
//! the start of its first request, checked before each further one), or
//! after [`READ_BUDGET`] bytes read. So a turn runs at most one request
//! that is slow (one `/-/work/cpu?ms=10000` is a whole turn), and a client
//! that pipelines or uploads without end holds the event loop (process
//! and thread-loops mode) or a pool thread (thread mode) for one turn, then
//! waits behind every other connection with work.
//!
//! The clock is read once per request: before each request after the
//! first of a turn (to see whether the turn has had its time), and that
//! reading is the request's start time; the first request of a turn reads
//! it when it starts.
//!
//! This module only counts: the connection asks it before each request
//! and after each read, and ends the turn (flushing what it answered).

use std::time::{Duration, Instant};

/// Most requests served in one turn (against a client that pipelines
/// small requests without end).
pub(super) const REQUESTS_PER_TURN: u32 = 64;
/// A turn serves no further request once its requests have taken this
/// long: short enough that a loop serving many connections stays
/// responsive, long enough that pipelined small requests still batch.
pub(super) const TIME_PER_TURN: Duration = Duration::from_millis(50);
/// Most bytes read in one turn (against a client that sends without end:
/// an upload, a stream of tiny chunks).
pub(super) const READ_BUDGET: usize = 256 * 1024;

/// What one drive has done so far.
#[derive(Debug, Default)]
pub(super) struct Turn {
    requests: u32,
    read: usize,
    /// When the turn's first request started.
    first_started: Option<Instant>,
    /// The clock as last read by [`Turn::may_serve`], for the request it let through.
    clock: Option<Instant>,
    over: bool,
}

impl Turn {
    /// Whether another request may be served in this turn. Call it only
    /// with input pending (a request to serve may be there): once it says
    /// no, the turn is over and the connection yields.
    pub(super) fn may_serve(&mut self) -> bool {
        if self.over {
            return false;
        }
        let Some(first) = self.first_started else {
            return true;
        };
        let now = Instant::now();
        self.over = self.requests >= REQUESTS_PER_TURN || now - first >= TIME_PER_TURN;
        self.clock = Some(now);
        !self.over
    }

    /// A request starts being served: returns its start time (the clock
    /// [`Turn::may_serve`] read, if it read one).
    pub(super) fn start_request(&mut self) -> Instant {
        let now = self.clock.take().unwrap_or_else(Instant::now);
        self.first_started.get_or_insert(now);
        self.requests += 1;
        now
    }

    /// Counts `n` bytes read.
    pub(super) fn count_read(&mut self, n: usize) {
        self.read += n;
    }

    /// Whether the turn may read more input; no ends the turn.
    pub(super) fn may_read(&mut self) -> bool {
        if self.read >= READ_BUDGET {
            self.over = true;
        }
        !self.over
    }

    /// Whether the turn is over (the connection has work left: yield).
    pub(super) fn is_over(&self) -> bool {
        self.over
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_request_is_always_served_and_reads_no_clock_first() {
        let mut turn = Turn::default();
        assert!(turn.may_serve());
        assert!(turn.clock.is_none(), "nothing to measure yet");
        let started = turn.start_request();
        assert_eq!(turn.first_started, Some(started));
        assert!(!turn.is_over());
    }

    #[test]
    fn a_turn_ends_after_its_request_budget() {
        let mut turn = Turn::default();
        for _ in 0..REQUESTS_PER_TURN {
            assert!(turn.may_serve());
            turn.start_request();
        }
        assert!(!turn.may_serve());
        assert!(turn.is_over());
        assert!(!turn.may_serve(), "over stays over");
    }

    #[test]
    fn a_turn_ends_once_its_requests_took_the_time_budget() {
        let mut turn = Turn::default();
        assert!(turn.may_serve());
        turn.start_request();
        // The next request: its start time is the clock the check read.
        assert!(turn.may_serve());
        let read = turn.clock.unwrap();
        assert_eq!(turn.start_request(), read);
        // The first request started a turn's time ago: no third one.
        turn.first_started = Some(Instant::now() - TIME_PER_TURN);
        assert!(!turn.may_serve());
        assert!(turn.is_over());
    }

    #[test]
    fn a_turn_ends_after_its_read_budget() {
        let mut turn = Turn::default();
        turn.count_read(READ_BUDGET - 1);
        assert!(turn.may_read());
        turn.count_read(1);
        assert!(!turn.may_read());
        assert!(turn.is_over());
        assert!(!turn.may_serve());
    }
}
