//! The crash-loop guard of one worker position (granian, Apache).
//!
//! A worker that dies less than [`STABLE_UPTIME`] after its spawn delays
//! the next spawn at its position, the delay doubling from
//! [`FIRST_BACKOFF`] up to [`MAX_BACKOFF`]; one that lived longer resets
//! it, so a rare crash is respawned at once. Only the timing lives here:
//! the planner decides who died unexpectedly and asks for the spawn.

use std::time::{Duration, Instant};

/// A worker that dies sooner than this after its spawn counts as crash-looping.
const STABLE_UPTIME: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Crash-loop state of one position.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Backoff {
    delay: Duration,
    respawn_at: Option<Instant>,
}

impl Backoff {
    /// A worker of this position died unasked after `uptime`: schedules
    /// the respawn. Returns the delay when it died young (a crash loop?).
    pub(crate) fn after_death(&mut self, uptime: Duration, now: Instant) -> Option<Duration> {
        let young = uptime < STABLE_UPTIME;
        self.delay = if young {
            (self.delay * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF)
        } else {
            Duration::ZERO
        };
        self.respawn_at = Some(now + self.delay);
        young.then_some(self.delay)
    }

    /// The fork failed: try again a little later.
    pub(crate) fn after_fork_failure(&mut self, now: Instant) {
        self.respawn_at = Some(now + FIRST_BACKOFF);
    }

    /// Whether the position may be spawned at `now`.
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        self.respawn_at.is_none_or(|at| now >= at)
    }

    /// The spawn is under way: nothing left to wait for.
    pub(crate) fn clear(&mut self) {
        self.respawn_at = None;
    }

    /// When a delayed respawn is due, if one is.
    pub(crate) fn respawn_at(&self) -> Option<Instant> {
        self.respawn_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn young_deaths_double_the_delay_up_to_10s() {
        let now = Instant::now();
        let mut backoff = Backoff::default();
        assert!(backoff.is_due(now));
        let delays: Vec<_> = (0..9)
            .map(|_| backoff.after_death(ms(4999), now).unwrap().as_millis())
            .collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
        );
        assert!(!backoff.is_due(now + ms(9999)));
        assert!(backoff.is_due(now + ms(10_000)));
    }

    #[test]
    fn a_stable_worker_resets_it() {
        let now = Instant::now();
        let mut backoff = Backoff::default();
        backoff.after_death(ms(10), now);
        backoff.after_death(ms(10), now);
        assert_eq!(backoff.after_death(STABLE_UPTIME, now), None);
        assert!(backoff.is_due(now));
        assert_eq!(backoff.after_death(ms(10), now), Some(FIRST_BACKOFF));
    }

    #[test]
    fn a_fork_failure_retries_after_100ms_without_doubling() {
        let now = Instant::now();
        let mut backoff = Backoff::default();
        backoff.after_fork_failure(now);
        assert_eq!(backoff.respawn_at(), Some(now + FIRST_BACKOFF));
        backoff.clear();
        assert!(backoff.is_due(now));
        assert_eq!(backoff.after_death(ms(10), now), Some(FIRST_BACKOFF));
    }
}
