//! Signal handling, the only module that touches signal-hook.
//!
//! A handler only sets a per-signal flag and writes a byte to a self-pipe
//! (signal-hook's `flag` and `low_level::pipe`); the owner polls the pipe's
//! read end next to its other file descriptors, drains it, and then asks
//! [`SignalSet::take`] signal by signal, in whatever fixed order it wants
//! (nginx's master cycle does the same). Nothing here runs in signal
//! context except signal-hook's async-signal-safe actions.
//!
//! After `fork` the child inherits the master's handlers; it must call
//! [`SignalSet::forget`] before registering its own, so a signal to a worker
//! never wakes the master's loop.

use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use signal_hook::SigId;

pub(crate) use signal_hook::consts::signal::{
    SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTTIN, SIGTTOU,
};

/// A set of signals delivered as flags plus a readable file descriptor.
pub(crate) struct SignalSet {
    flags: Vec<(i32, Arc<AtomicBool>)>,
    ids: Vec<SigId>,
    wake_read: UnixStream,
}

impl SignalSet {
    /// Installs flag + self-pipe handlers for `signals`.
    pub(crate) fn register(signals: &[i32]) -> io::Result<SignalSet> {
        let (wake_read, wake_write) = UnixStream::pair()?;
        wake_read.set_nonblocking(true)?;
        // A full pipe must never block a handler: the pending byte already
        // guarantees a wake-up.
        wake_write.set_nonblocking(true)?;
        let mut set = SignalSet {
            flags: Vec::with_capacity(signals.len()),
            ids: Vec::with_capacity(signals.len() * 2),
            wake_read,
        };
        for &signal in signals {
            let flag = Arc::new(AtomicBool::new(false));
            // The flag is set before the pipe is written (actions run in
            // registration order), so a woken reader always sees it.
            set.ids
                .push(signal_hook::flag::register(signal, Arc::clone(&flag))?);
            set.ids.push(signal_hook::low_level::pipe::register(
                signal,
                wake_write.try_clone()?,
            )?);
            set.flags.push((signal, flag));
        }
        Ok(set)
    }

    /// Empties the self-pipe; call when its fd polls readable.
    pub(crate) fn drain(&self) {
        let mut sink = [0u8; 64];
        loop {
            match (&self.wake_read).read(&mut sink) {
                Ok(n) if n > 0 => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                _ => break,
            }
        }
    }

    /// Whether `signal` arrived since the last call (clears the flag).
    pub(crate) fn take(&self, signal: i32) -> bool {
        self.flags
            .iter()
            .find(|(s, _)| *s == signal)
            .is_some_and(|(_, flag)| flag.swap(false, Ordering::AcqRel))
    }

    /// Removes this set's handlers (used by a freshly forked worker).
    ///
    /// signal-hook leaves its OS-level handler installed with no actions, so
    /// these signals are ignored until something registers them again: right
    /// for a worker, which gets SIGINT from the terminal's Ctrl+C along with
    /// the master and must leave the stopping to the master.
    pub(crate) fn forget(&self) {
        for &id in &self.ids {
            signal_hook::low_level::unregister(id);
        }
    }
}

impl AsFd for SignalSet {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.wake_read.as_fd()
    }
}

impl AsRawFd for SignalSet {
    fn as_raw_fd(&self) -> RawFd {
        self.wake_read.as_raw_fd()
    }
}

/// Blocks every signal in the calling thread; returns the mask to restore.
///
/// The master forks with all signals blocked, so a signal sent to a new
/// worker before it has installed its own handlers stays pending instead of
/// hitting the master's (already forgotten) ones and being lost; the worker
/// restores the mask once its handlers are in place.
pub(crate) fn block_all() -> io::Result<SigSet> {
    let mut old = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), Some(&mut old))?;
    Ok(old)
}

/// Restores a mask saved by [`block_all`]; pending signals are delivered now.
pub(crate) fn restore_mask(mask: &SigSet) -> io::Result<()> {
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(mask), None)?;
    Ok(())
}

/// "SIGSEGV" for 11, and so on, for log lines.
pub(crate) fn name(signal: i32) -> String {
    signal_hook::low_level::signal_name(signal)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("signal {signal}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raised_signal_sets_its_flag_and_wakes_the_pipe() {
        let set = SignalSet::register(&[signal_hook::consts::SIGUSR1]).unwrap();
        assert!(!set.take(signal_hook::consts::SIGUSR1));
        signal_hook::low_level::raise(signal_hook::consts::SIGUSR1).unwrap();
        let mut fds = [libc::pollfd {
            fd: set.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: one valid pollfd, bounded timeout.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 1, 5000) };
        assert_eq!(ready, 1);
        set.drain();
        assert!(set.take(signal_hook::consts::SIGUSR1));
        assert!(!set.take(signal_hook::consts::SIGUSR1));
        set.forget();
    }

    #[test]
    fn names() {
        assert_eq!(name(11), "SIGSEGV");
        assert_eq!(name(9), "SIGKILL");
    }
}
