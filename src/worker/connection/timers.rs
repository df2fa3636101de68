//! A connection's one deadline, and which timer it belongs to.
//!
//! After every drive the connection picks its next deadline from what it
//! waits for ([`Next`]); see the timer list in the connection module's
//! docs. The event loop sweeps deadlines; it asks what a passed one meant
//! ([`Timer`]). This module only computes deadlines: it does no I/O, and
//! what happens when one passes (a 408, a close) is the connection's call.

use std::time::{Duration, Instant};

use super::Next;
use super::linger::LINGER_TIMEOUT;

/// Bytes per second a request body must average to earn more time than
/// `header_timeout` (mod_reqtimeout's default `MinRate`).
pub(super) const MIN_BODY_RATE: u64 = 500;
/// While draining, an idle keep-alive connection is closed after this
/// grace, so a request already on the wire still gets its answer.
pub(crate) const DRAIN_IDLE_GRACE: Duration = Duration::from_millis(500);

/// What the current deadline guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    Idle,
    Header,
    Body,
    Write,
    /// Not a timeout: the moment a delayed response is due.
    Due,
    /// Not a timeout either: an event stream's next ping.
    Ping,
    /// It yielded with work pending and is on the ready list: no client
    /// timeout applies until it is driven again (within one loop turn; the
    /// deadline, `send_timeout` away, is only a backstop).
    Yielded,
    /// The end of a lingering close.
    Linger,
}

/// The worker's timeouts, as they stand at this drive.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    pub(super) keepalive: Duration,
    pub(super) header: Duration,
    /// How long a write may make no progress (`send_timeout`).
    pub(super) send: Duration,
    pub(super) draining: bool,
}

/// What the connection is in the middle of, as far as its deadline cares.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Progress {
    /// Bytes of the request body received, while one is being read.
    pub(super) body_received: Option<u64>,
    /// When the response held back by a timer is due, if one is.
    pub(super) due: Option<Instant>,
    /// When an event stream's next ping is due, if it is one.
    pub(super) ping: Option<Instant>,
    /// Whether this drive wrote any byte.
    pub(super) wrote: bool,
}

/// The deadline and the start times it is measured from.
#[derive(Debug)]
pub(super) struct Timers {
    timer: Timer,
    deadline: Instant,
    /// When the first byte of the request head being read arrived (empty
    /// lines before it included); `None` between requests.
    head_started: Option<Instant>,
    /// When the request body being read started.
    body_started: Instant,
}

impl Timers {
    /// A new connection: its first request head is due within `header`.
    pub(super) fn new(now: Instant, header: Duration) -> Timers {
        Timers {
            timer: Timer::Header,
            deadline: now + header,
            head_started: None,
            body_started: now,
        }
    }

    pub(super) fn deadline(&self) -> Instant {
        self.deadline
    }

    pub(super) fn timer(&self) -> Timer {
        self.timer
    }

    /// A byte of a request head arrived: the header timer runs from the
    /// first one, and more bytes never restart it.
    pub(super) fn head_begun(&mut self) {
        self.head_started.get_or_insert_with(Instant::now);
    }

    /// The head is complete.
    pub(super) fn head_done(&mut self) {
        self.head_started = None;
    }

    /// Whether a request head is being read.
    pub(super) fn reading_head(&self) -> bool {
        self.head_started.is_some()
    }

    /// A request body starts being read; its timer runs from `at`.
    pub(super) fn body_begun(&mut self, at: Instant) {
        self.body_started = at;
    }

    /// Brings the deadline forward to `at` if it is later.
    pub(super) fn shorten_to(&mut self, at: Instant) {
        self.deadline = self.deadline.min(at);
    }

    /// A lingering close starts now, outside a drive.
    pub(super) fn start_linger(&mut self, now: Instant) {
        self.timer = Timer::Linger;
        self.deadline = now + LINGER_TIMEOUT;
    }

    /// Picks the deadline for what a drive said it waits for.
    pub(super) fn after_drive(
        &mut self,
        next: Next,
        progress: Progress,
        timeouts: Timeouts,
        now: Instant,
    ) {
        let (timer, deadline) = match next {
            Next::Read { idle: true } if timeouts.draining => (Timer::Idle, now + DRAIN_IDLE_GRACE),
            Next::Read { idle: true } => (Timer::Idle, now + timeouts.keepalive),
            Next::Read { idle: false } => match progress.body_received {
                Some(received) => {
                    // From the body's start, plus what its bytes earned: a
                    // trickle can't extend it much, a steady upload always
                    // can. And never more than `header_timeout` past the
                    // last drive (the last bytes, as a drive follows an
                    // event): time earned by a fast start can't be spent
                    // sending nothing.
                    let earned_ms = received.saturating_mul(1000) / MIN_BODY_RATE;
                    let earned = Duration::from_millis(earned_ms);
                    let by_rate = self.body_started + timeouts.header + earned;
                    (Timer::Body, by_rate.min(now + timeouts.header))
                }
                None => {
                    // Fixed from the head's first byte: trickling bytes
                    // (slowloris) can't extend it.
                    let started = *self.head_started.get_or_insert(now);
                    (Timer::Header, started + timeouts.header)
                }
            },
            // From the last drive that wrote something: a client that
            // reads nothing can't extend it by sending (any event drives
            // the connection; only written bytes are progress).
            Next::Write if progress.wrote || self.timer != Timer::Write => {
                (Timer::Write, now + timeouts.send)
            }
            Next::Write => return,
            Next::Timer => match progress.due {
                Some(at) => (Timer::Due, at),
                None => return,
            },
            Next::Events => match progress.ping {
                Some(at) => (Timer::Ping, at),
                None => return,
            },
            // It has work and will be driven again soon: the idle, header or
            // body deadline it had must not close it meanwhile.
            Next::Yield => (Timer::Yielded, now + timeouts.send),
            // Set once, when the linger starts: input that keeps coming
            // can't extend it.
            Next::Linger if self.timer != Timer::Linger => (Timer::Linger, now + LINGER_TIMEOUT),
            Next::Linger | Next::Close => return,
        };
        self.timer = timer;
        self.deadline = deadline;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);
    const TIMEOUTS: Timeouts = Timeouts {
        keepalive: Duration::from_secs(5),
        header: Duration::from_secs(10),
        send: Duration::from_secs(30),
        draining: false,
    };
    const IDLE: Next = Next::Read { idle: true };
    const BUSY: Next = Next::Read { idle: false };

    fn after(
        timers: &mut Timers,
        next: Next,
        progress: Progress,
        now: Instant,
    ) -> (Timer, Instant) {
        timers.after_drive(next, progress, TIMEOUTS, now);
        (timers.timer(), timers.deadline())
    }

    #[test]
    fn a_new_connection_owes_a_head_within_the_header_timeout() {
        let t0 = Instant::now();
        let timers = Timers::new(t0, TIMEOUTS.header);
        assert_eq!(
            (timers.timer(), timers.deadline()),
            (Timer::Header, t0 + 10 * SEC)
        );
        assert!(!timers.reading_head());
    }

    #[test]
    fn an_idle_connection_gets_the_keepalive_timeout_or_the_drain_grace() {
        let t0 = Instant::now();
        let mut timers = Timers::new(t0, TIMEOUTS.header);
        let now = t0 + 3 * SEC;
        let none = Progress::default();
        assert_eq!(
            after(&mut timers, IDLE, none, now),
            (Timer::Idle, now + 5 * SEC)
        );
        let draining = Timeouts {
            draining: true,
            ..TIMEOUTS
        };
        timers.after_drive(IDLE, none, draining, now);
        assert_eq!(timers.deadline(), now + DRAIN_IDLE_GRACE);
    }

    #[test]
    fn the_header_timer_runs_from_the_first_byte_and_more_bytes_dont_extend_it() {
        let t0 = Instant::now();
        let mut timers = Timers::new(t0, TIMEOUTS.header);
        let none = Progress::default();
        // Half a head at t0 + 1 s (the drive notes when it began).
        let first_byte = t0 + SEC;
        timers.head_started = Some(first_byte);
        assert!(timers.reading_head());
        let expected = (Timer::Header, first_byte + 10 * SEC);
        assert_eq!(after(&mut timers, BUSY, none, first_byte), expected);
        // A byte more at t0 + 9 s: same deadline (slowloris).
        assert_eq!(after(&mut timers, BUSY, none, t0 + 9 * SEC), expected);
        timers.head_done();
        assert!(!timers.reading_head());
        // Waiting without a recorded start: it starts now.
        let now = t0 + 20 * SEC;
        assert_eq!(
            after(&mut timers, BUSY, none, now),
            (Timer::Header, now + 10 * SEC)
        );
    }

    #[test]
    fn head_begun_keeps_the_first_start() {
        let mut timers = Timers::new(Instant::now(), TIMEOUTS.header);
        timers.head_begun();
        let first = timers.head_started;
        timers.head_begun();
        assert_eq!(timers.head_started, first);
    }

    #[test]
    fn a_body_earns_time_by_its_rate_but_never_more_than_the_header_timeout_ahead() {
        let t0 = Instant::now();
        let mut timers = Timers::new(t0, TIMEOUTS.header);
        timers.body_begun(t0);
        let body = |received| Progress {
            body_received: Some(received),
            ..Progress::default()
        };
        // Nothing received: the header timeout from the body's start.
        assert_eq!(
            after(&mut timers, BUSY, body(0), t0),
            (Timer::Body, t0 + 10 * SEC)
        );
        // 5000 bytes at 500 B/s earned 10 s: 20 s from the start, but the
        // cap (10 s after this drive, at t0 + 2 s) comes first.
        let (_, deadline) = after(&mut timers, BUSY, body(5000), t0 + 2 * SEC);
        assert_eq!(deadline, t0 + 12 * SEC);
        // Later on, the rate decides: at t0 + 15 s, 20 s from the start.
        let (_, deadline) = after(&mut timers, BUSY, body(5000), t0 + 15 * SEC);
        assert_eq!(deadline, t0 + 20 * SEC);
        // A trickle earns little: 100 bytes is 200 ms.
        let (_, deadline) = after(&mut timers, BUSY, body(100), t0 + 9 * SEC);
        assert_eq!(deadline, t0 + 10 * SEC + Duration::from_millis(200));
    }

    #[test]
    fn writes_and_yields_get_the_send_timeout_and_a_held_response_its_due_time() {
        let t0 = Instant::now();
        let mut timers = Timers::new(t0, TIMEOUTS.header);
        let none = Progress::default();
        let send = TIMEOUTS.send;
        assert_eq!(
            after(&mut timers, Next::Write, none, t0),
            (Timer::Write, t0 + send)
        );
        let yielded = (Timer::Yielded, t0 + send);
        assert_eq!(after(&mut timers, Next::Yield, none, t0), yielded);
        let due = Progress {
            due: Some(t0 + SEC),
            ..Progress::default()
        };
        assert_eq!(
            after(&mut timers, Next::Timer, due, t0),
            (Timer::Due, t0 + SEC)
        );
        // No due time known: the deadline stays.
        assert_eq!(
            after(&mut timers, Next::Timer, none, t0),
            (Timer::Due, t0 + SEC)
        );
        assert_eq!(
            after(&mut timers, Next::Close, none, t0),
            (Timer::Due, t0 + SEC)
        );
        // An event stream: no timeout, only its next ping, however long
        // the keep-alive and header timeouts are.
        let ping = Progress {
            ping: Some(t0 + 30 * SEC),
            ..Progress::default()
        };
        assert_eq!(
            after(&mut timers, Next::Events, ping, t0),
            (Timer::Ping, t0 + 30 * SEC)
        );
    }

    #[test]
    fn the_write_deadline_moves_only_when_bytes_were_written() {
        let t0 = Instant::now();
        let mut timers = Timers::new(t0, TIMEOUTS.header);
        let stuck = Progress::default();
        let wrote = Progress {
            wrote: true,
            ..Progress::default()
        };
        let send = TIMEOUTS.send;
        // The first drive that blocks on writing starts the timer, written
        // bytes or not.
        let first = (Timer::Write, t0 + send);
        assert_eq!(after(&mut timers, Next::Write, stuck, t0), first);
        // A client that sends a byte now and then (each one drives the
        // connection) but reads nothing: the deadline stands.
        for n in 1..=5 {
            assert_eq!(after(&mut timers, Next::Write, stuck, t0 + n * SEC), first);
        }
        // The client read some: bytes went out, the deadline moves.
        let later = t0 + 6 * SEC;
        assert_eq!(
            after(&mut timers, Next::Write, wrote, later),
            (Timer::Write, later + send)
        );
    }

    #[test]
    fn a_linger_deadline_is_set_once_and_input_does_not_extend_it() {
        let t0 = Instant::now();
        let mut timers = Timers::new(t0, TIMEOUTS.header);
        let none = Progress::default();
        let expected = (Timer::Linger, t0 + LINGER_TIMEOUT);
        assert_eq!(after(&mut timers, Next::Linger, none, t0), expected);
        assert_eq!(after(&mut timers, Next::Linger, none, t0 + SEC), expected);
        let mut timers = Timers::new(t0, TIMEOUTS.header);
        timers.start_linger(t0);
        assert_eq!(after(&mut timers, Next::Linger, none, t0 + SEC), expected);
    }

    #[test]
    fn shortening_never_lengthens() {
        let t0 = Instant::now();
        let mut timers = Timers::new(t0, TIMEOUTS.header);
        timers.shorten_to(t0 + SEC);
        assert_eq!(timers.deadline(), t0 + SEC);
        timers.shorten_to(t0 + 5 * SEC);
        assert_eq!(timers.deadline(), t0 + SEC);
    }
}
