//! The change feed: how the master tells every event loop of every worker
//! that files under the root changed (live reload).
//!
//! Two shared things, both made by the master before its first fork:
//! - one word in the scoreboard header, the latest change: a generation
//!   (changes published since the master started) and whether that change
//!   touched stylesheets only. One atomic store publishes both, so a
//!   reader never sees the generation of one change with the kind of
//!   another;
//! - one eventfd, inherited by every worker. Each event loop registers it
//!   edge-triggered and nobody ever reads it: every write by the master is
//!   then a new edge in every epoll instance that watches it, a wake-up
//!   for all loops in all workers at once, with no pipe per worker to
//!   keep track of across respawns. (The counter grows by one per change:
//!   2^64 of them would fill it.)
//!
//! A subscriber (a live-reload stream) remembers the last generation it
//! was told about and asks [`ChangeFeed::news_since`] whenever its loop
//! wakes; so a wake-up that came while it was busy elsewhere, or two
//! changes between two looks, lose nothing: the news is "reload" unless
//! the one change it missed was a stylesheet's.

use std::io;
use std::os::fd::{IntoRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::eventfd::{EfdFlags, EventFd};

/// What a published change asks open pages to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Only stylesheets changed: swap them, keep the page and its state.
    Stylesheets,
    /// Anything else: reload the page.
    Reload,
}

impl Change {
    /// The event's name in the stream, which the page's script listens for.
    pub(crate) fn event_name(self) -> &'static str {
        match self {
            Change::Stylesheets => "css",
            Change::Reload => "reload",
        }
    }
}

/// The feed: the shared word and the wake-up eventfd. Copied into every
/// worker; the fd is never closed (it lives as long as the process).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChangeFeed {
    wake: RawFd,
    word: &'static AtomicU64,
}

impl ChangeFeed {
    /// A feed publishing in `word` (the scoreboard header's), with a fresh
    /// eventfd.
    pub(crate) fn new(word: &'static AtomicU64) -> io::Result<ChangeFeed> {
        // Non-blocking: a write never waits, even if the counter were full.
        let fd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        Ok(ChangeFeed {
            wake: std::os::fd::OwnedFd::from(fd).into_raw_fd(),
            word,
        })
    }

    /// The fd an event loop registers (readable, edge-triggered) to be
    /// woken by every change.
    pub(crate) fn wake_fd(&self) -> RawFd {
        self.wake
    }

    /// Changes published so far.
    pub(crate) fn generation(&self) -> u64 {
        generation_in(self.word)
    }

    /// Publishes a change and wakes every loop (the master's call).
    pub(crate) fn publish(&self, change: Change) {
        let next = self.generation() + 1;
        let css_only = u64::from(change == Change::Stylesheets);
        self.word.store(next << 1 | css_only, Ordering::Release);
        // SAFETY: the fd is the eventfd made in `new`, never closed; a
        // write of one u64 is its whole protocol.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.wake) };
        if let Err(err) = nix::unistd::write(fd, &1u64.to_ne_bytes()) {
            log::warn!("live reload: cannot wake the workers: {err}");
        }
    }

    /// What a subscriber that has seen generation `seen` must be told, and
    /// the generation it has then seen; `None` when nothing is new. A
    /// subscriber from before a restart of the master (a larger `seen`)
    /// missed everything: reload.
    pub(crate) fn news_since(&self, seen: u64) -> Option<(Change, u64)> {
        let word = self.word.load(Ordering::Acquire);
        let (generation, css_only) = (word >> 1, word & 1 == 1);
        let change = match generation {
            g if g == seen => return None,
            // Exactly the one latest change was missed: its own kind.
            g if g == seen + 1 && css_only => Change::Stylesheets,
            _ => Change::Reload,
        };
        Some((change, generation))
    }
}

/// The generation in a feed's word (for a reader that has only the word:
/// a page being made notes when it was made).
pub(crate) fn generation_in(word: &AtomicU64) -> u64 {
    word.load(Ordering::Acquire) >> 1
}

/// Appends the Server-Sent Events message for `change` at `generation`:
/// `event: css` / `event: reload`, with the generation as its data (the
/// page reconnects with it, after a worker restart, say, and is told only
/// what it has not seen).
pub(crate) fn write_event(out: &mut Vec<u8>, change: Change, generation: u64) {
    let mut number = itoa::Buffer::new();
    let generation = number.format(generation);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(change.event_name().as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(generation.as_bytes());
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::BorrowedFd;

    fn feed() -> ChangeFeed {
        let word: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
        ChangeFeed::new(word).unwrap()
    }

    #[test]
    fn news_names_the_one_change_missed_or_reloads() {
        let feed = feed();
        assert_eq!(feed.news_since(0), None);
        feed.publish(Change::Stylesheets);
        assert_eq!(feed.generation(), 1);
        assert_eq!(feed.news_since(0), Some((Change::Stylesheets, 1)));
        assert_eq!(feed.news_since(1), None);
        feed.publish(Change::Stylesheets);
        // Two missed: only the last one's kind is known, so reload.
        assert_eq!(feed.news_since(0), Some((Change::Reload, 2)));
        assert_eq!(feed.news_since(1), Some((Change::Stylesheets, 2)));
        feed.publish(Change::Reload);
        assert_eq!(feed.news_since(2), Some((Change::Reload, 3)));
        // A page from before a restart (the count began again).
        assert_eq!(feed.news_since(40), Some((Change::Reload, 3)));
    }

    #[test]
    fn every_publish_wakes_every_watcher_again() {
        let feed = feed();
        // Two epoll instances, edge-triggered, as two workers' loops have.
        let polls = [mio::Poll::new().unwrap(), mio::Poll::new().unwrap()];
        for p in &polls {
            let fd = feed.wake_fd();
            p.registry()
                .register(
                    &mut mio::unix::SourceFd(&fd),
                    mio::Token(7),
                    mio::Interest::READABLE,
                )
                .unwrap();
        }
        let mut events = mio::Events::with_capacity(4);
        let woken = |p: &mut mio::Poll, events: &mut mio::Events| {
            p.poll(events, Some(std::time::Duration::ZERO)).unwrap();
            events.iter().any(|e| e.token() == mio::Token(7))
        };
        let [mut a, mut b] = polls;
        assert!(!woken(&mut a, &mut events));
        for _ in 0..3 {
            feed.publish(Change::Reload);
            assert!(woken(&mut a, &mut events), "loop a missed a change");
            assert!(woken(&mut b, &mut events), "loop b missed a change");
            // Edge-triggered, never read: once per change, no more.
            assert!(!woken(&mut a, &mut events));
        }
        // The counter is there for plain pollers too.
        // SAFETY: the feed's eventfd, open for the life of the process.
        let fd = unsafe { BorrowedFd::borrow_raw(feed.wake_fd()) };
        let mut ready = [PollFd::new(fd, PollFlags::POLLIN)];
        assert_eq!(poll(&mut ready, PollTimeout::ZERO).unwrap(), 1);
    }

    #[test]
    fn events_are_server_sent_events() {
        let mut out = Vec::new();
        write_event(&mut out, Change::Stylesheets, 12);
        write_event(&mut out, Change::Reload, 13);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "event: css\ndata: 12\n\nevent: reload\ndata: 13\n\n"
        );
    }
}
