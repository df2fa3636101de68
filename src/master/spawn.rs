//! Forking one worker.
//!
//! The only `fork` in forkpool. The child never returns into the master's
//! code: it forgets the master's signal handlers, runs the worker with the
//! application it serves (the [`Router`], built in the child: it opens the
//! root) and exits with the worker's code.

use nix::unistd::{ForkResult, Pid, fork};

use crate::handlers::Router;
use crate::signals::{self, SignalSet};
use crate::worker::{self, WorkerSpec};

/// Forks a child that runs `spec` as a worker; returns its pid.
pub(crate) fn fork_worker(
    mut spec: WorkerSpec<'_>,
    master_signals: &SignalSet,
) -> std::io::Result<Pid> {
    // Signals stay blocked across the fork until the child has its own
    // handlers (see `signals::block_all`).
    let mask = signals::block_all()?;
    spec.signal_mask = mask;
    // SAFETY: the master is single-threaded (it never starts a thread: its
    // signal handling is signal-hook's flag + self-pipe, and env_logger
    // writes synchronously), so the child's copy of the heap is consistent
    // and no lock can be held by a thread that doesn't exist in the child.
    let forked = unsafe { fork() };
    if !matches!(forked, Ok(ForkResult::Child)) {
        signals::restore_mask(&mask)?;
    }
    match forked? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            // First, before anything can deliver a signal to the wrong
            // handler: drop the master's signal actions.
            master_signals.forget();
            let code = worker::run(spec, Router::new);
            std::process::exit(code);
        }
    }
}
