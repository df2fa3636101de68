//! Lingering close (nginx `lingering_close`): read and discard what the
//! client still sends after our last answer, so closing doesn't reset it.
//!
//! Closing a socket with unread input makes the kernel send a reset, which
//! can destroy a response the client has not read yet (typically a 413 or
//! 400 sent while it is still sending). So once its answers are written
//! and its write side is shut down, the connection discards input until
//! the client closes, for at most [`LINGER_BYTES`] in all; the deadline
//! ([`LINGER_TIMEOUT`], set once by `timers`) bounds the time.
//!
//! This module counts and discards; shutting the socket down and deciding
//! whether a close must linger are the connection's.

use std::io::{self, Read};
use std::time::Duration;

use super::Next;

/// A lingering close gives up after this long...
pub(super) const LINGER_TIMEOUT: Duration = Duration::from_secs(2);
/// ...or after discarding this many bytes.
pub(super) const LINGER_BYTES: usize = 64 * 1024;

/// A lingering close in progress: how many more bytes it may discard.
#[derive(Debug)]
pub(super) struct Linger {
    left: usize,
}

impl Linger {
    pub(super) fn new() -> Linger {
        Linger { left: LINGER_BYTES }
    }

    /// Reads `src` into `scratch` and forgets it, until it would block
    /// ([`Next::Linger`]: wait for more), or until the client closes, an
    /// error, or the byte budget is spent ([`Next::Close`]).
    pub(super) fn discard(&mut self, src: &mut impl Read, scratch: &mut [u8]) -> Next {
        loop {
            let want = self.left.min(scratch.len());
            match src.read(&mut scratch[..want]) {
                Ok(0) => return Next::Close,
                Ok(n) => {
                    self.left -= n;
                    if self.left == 0 {
                        return Next::Close;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Next::Linger,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Close,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client that keeps sending: `bursts` reads' worth of bytes (each as
    /// much as asked for), then would block; it records what it was asked.
    struct Sender {
        bursts: usize,
        asked: Vec<usize>,
        then: Option<io::ErrorKind>,
    }

    impl Sender {
        fn new(bursts: usize, then: Option<io::ErrorKind>) -> Sender {
            Sender {
                bursts,
                asked: Vec::new(),
                then,
            }
        }
    }

    impl Read for Sender {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.asked.push(out.len());
            if self.bursts > 0 {
                self.bursts -= 1;
                return Ok(out.len());
            }
            match self.then.take() {
                Some(kind) => Err(kind.into()),
                None => Ok(0),
            }
        }
    }

    #[test]
    fn waits_while_the_client_has_nothing_more_and_closes_when_it_does() {
        let mut scratch = [0; 1024];
        let mut linger = Linger::new();
        let mut client = Sender::new(3, Some(io::ErrorKind::WouldBlock));
        assert_eq!(linger.discard(&mut client, &mut scratch), Next::Linger);
        assert_eq!(linger.left, LINGER_BYTES - 3 * 1024);
        // Then the client closes.
        assert_eq!(linger.discard(&mut client, &mut scratch), Next::Close);
    }

    #[test]
    fn stops_at_its_byte_budget_across_drives() {
        let mut scratch = vec![0; 10_000];
        let mut linger = Linger::new();
        let mut discarded = 0;
        let mut drives = 0;
        loop {
            // Two bursts per readiness event, forever.
            let mut client = Sender::new(2, Some(io::ErrorKind::WouldBlock));
            let next = linger.discard(&mut client, &mut scratch);
            discarded += client
                .asked
                .iter()
                .take(client.asked.len().min(2))
                .sum::<usize>();
            drives += 1;
            if next == Next::Close {
                break;
            }
            assert_eq!(next, Next::Linger);
            assert!(drives < 100, "never stopped");
        }
        assert_eq!(discarded, LINGER_BYTES, "exactly the budget, never more");
    }

    #[test]
    fn never_reads_more_than_the_budget_left() {
        let mut scratch = vec![0; 2 * LINGER_BYTES];
        let mut linger = Linger::new();
        let mut client = Sender::new(usize::MAX, None);
        assert_eq!(linger.discard(&mut client, &mut scratch), Next::Close);
        assert_eq!(client.asked, [LINGER_BYTES]);
    }

    #[test]
    fn interruptions_are_retried_and_errors_close() {
        let mut scratch = [0; 16];
        let mut client = Sender::new(0, Some(io::ErrorKind::Interrupted));
        // Interrupted, retried, then end of stream.
        assert_eq!(
            Linger::new().discard(&mut client, &mut scratch),
            Next::Close
        );
        assert_eq!(client.asked.len(), 2);
        let mut client = Sender::new(1, Some(io::ErrorKind::ConnectionReset));
        assert_eq!(
            Linger::new().discard(&mut client, &mut scratch),
            Next::Close
        );
    }
}
