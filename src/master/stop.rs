//! How a stop proceeds once it has begun: when the master checks on the
//! workers still alive, and when it gives up on them and SIGKILLs them.
//!
//! Only the timing lives here; the planner sends the signals (SIGTERM or
//! SIGQUIT to begin, SIGKILL when [`Stopping::escalate`] says so) and
//! decides when one stop turns into the other.
//! - graceful: the workers drain; SIGKILL at the deadline the planner gives
//!   (`graceful_timeout` + its margin), then again every [`IDLE_WAKE`];
//! - fast (nginx): rechecked at [`FIRST_CHECK`], the interval doubling each
//!   time; SIGKILL at every check from [`KILL_AFTER`] on.

use std::time::{Duration, Instant};

use super::IDLE_WAKE;

const FIRST_CHECK: Duration = Duration::from_millis(50);
const KILL_AFTER: Duration = Duration::from_secs(1);

/// A stop in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopping {
    Graceful {
        kill_at: Instant,
    },
    Fast {
        next_check: Instant,
        interval: Duration,
        kill_at: Instant,
    },
}

impl Stopping {
    /// A graceful stop whose stragglers are killed at `kill_at`.
    pub(crate) fn graceful(kill_at: Instant) -> Stopping {
        Stopping::Graceful { kill_at }
    }

    /// A fast stop begun at `now`.
    pub(crate) fn fast(now: Instant) -> Stopping {
        Stopping::Fast {
            next_check: now + FIRST_CHECK,
            interval: FIRST_CHECK,
            kill_at: now + KILL_AFTER,
        }
    }

    pub(crate) fn is_graceful(&self) -> bool {
        matches!(self, Stopping::Graceful { .. })
    }

    /// Whether whoever is left must get SIGKILL at `now`; moves on to the
    /// next check when one is due.
    pub(crate) fn escalate(&mut self, now: Instant) -> bool {
        match *self {
            Stopping::Graceful { kill_at } if now >= kill_at => {
                *self = Stopping::Graceful {
                    kill_at: now + IDLE_WAKE,
                };
                true
            }
            Stopping::Fast {
                next_check,
                interval,
                kill_at,
            } if now >= next_check => {
                let interval = interval * 2;
                *self = Stopping::Fast {
                    next_check: now + interval,
                    interval,
                    kill_at,
                };
                now >= kill_at
            }
            _ => false,
        }
    }

    /// When [`escalate`](Self::escalate) next has something to do.
    pub(crate) fn next_check(&self) -> Instant {
        match *self {
            Stopping::Graceful { kill_at } => kill_at,
            Stopping::Fast { next_check, .. } => next_check,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn fast_checks_at_50ms_doubling_and_kills_from_1s() {
        let t0 = Instant::now();
        let mut stop = Stopping::fast(t0);
        let mut checks = Vec::new();
        while checks.len() < 7 {
            let at = stop.next_check();
            assert!(!stop.escalate(at - ms(1)), "nothing before a check");
            checks.push((at.duration_since(t0).as_millis(), stop.escalate(at)));
        }
        assert_eq!(
            checks,
            [
                (50, false),
                (150, false),
                (350, false),
                (750, false),
                (1550, true),
                (3150, true),
                (6350, true),
            ]
        );
    }

    #[test]
    fn graceful_kills_at_its_deadline_then_every_idle_wake() {
        let t0 = Instant::now();
        let mut stop = Stopping::graceful(t0 + ms(31_000));
        assert!(stop.is_graceful());
        assert!(!stop.escalate(t0 + ms(30_999)));
        assert!(stop.escalate(t0 + ms(31_000)));
        assert_eq!(stop.next_check(), t0 + ms(31_000) + IDLE_WAKE);
        assert!(!stop.escalate(t0 + ms(31_001)));
        assert!(stop.escalate(t0 + ms(31_000) + IDLE_WAKE));
        assert!(!Stopping::fast(t0).is_graceful());
    }
}
