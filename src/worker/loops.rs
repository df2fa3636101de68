//! Thread-loops mode: one worker, `threads` event loops, one per thread.
//!
//! Each loop thread runs the very [`EventLoop`] a process-mode worker runs
//! (accept, parse, handle, write, no hand-off), so `--mode process -w K`
//! and `--mode thread-loops -w 1 --threads K` differ only in sharing one
//! address space: the controlled pair of the lab.
//!
//! The worker's main thread serves nothing. It owns the worker's
//! [`Lifecycle`] (signals, the master watch, the drain deadline, the
//! worker's heartbeat) and passes its word to the loops through a
//! [`LoopControl`], waking each with its own [`Waker`]. Each loop
//! heartbeats in its own scoreboard row, so the master can tell one stuck
//! loop in a worker whose other loops are fine. A loop that dies (a panic
//! outside the connection code, which the connection's own catch doesn't
//! cover) takes the worker with it, as it would take a process-mode worker:
//! the worker exits with code 1 and the master respawns it.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::Instant;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use super::connection::ServeCtx;
use super::event_loop::{EventLoop, LoopControl};
use super::{Control, Lifecycle, TICK};
use crate::scoreboard::{Slot, set_serving_thread};
use std::os::fd::AsRawFd;

const SIGNALS: Token = Token(0);
const LOOP_ENDED: Token = Token(1);

/// A thread-loops worker, booted: its loops, built but not yet running.
pub(crate) struct LoopGroup {
    life: Lifecycle,
    control: Arc<LoopControl>,
    loops: Vec<EventLoop>,
    /// What the loops share; the main thread flushes its access log.
    ctx: Arc<ServeCtx>,
    slot: &'static Slot,
    position: usize,
}

impl LoopGroup {
    pub(crate) fn new(
        life: Lifecycle,
        control: Arc<LoopControl>,
        loops: Vec<EventLoop>,
        ctx: Arc<ServeCtx>,
        slot: &'static Slot,
        position: usize,
    ) -> LoopGroup {
        LoopGroup {
            life,
            control,
            loops,
            ctx,
            slot,
            position,
        }
    }

    /// Starts a thread per loop, then supervises them; returns the worker's
    /// exit code.
    pub(crate) fn run(mut self) -> io::Result<i32> {
        let ended = self.supervise();
        // Loops that ended flushed as they did; this catches the lines of
        // loops still running when the worker exits without them (SIGQUIT,
        // a drain past its deadline, a loop that died).
        self.ctx.flush_access_log();
        ended
    }

    fn supervise(&mut self) -> io::Result<i32> {
        let mut poll = Poll::new()?;
        let signal_fd = self.life.signals.as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&signal_fd), SIGNALS, Interest::READABLE)?;
        let ended_waker = Arc::new(Waker::new(poll.registry(), LOOP_ENDED)?);
        let (ended_tx, ended_rx) = mpsc::channel();
        // The rows were set up while booting; now the watchdog judges each
        // loop by its own.
        self.slot.loops_heartbeat.store(true, Ordering::Release);
        let mut running = 0;
        for (row, event_loop) in std::mem::take(&mut self.loops).into_iter().enumerate() {
            let ended_tx = ended_tx.clone();
            let ended_waker = Arc::clone(&ended_waker);
            std::thread::Builder::new()
                .name(format!("forkpool-w{}l{row}", self.position))
                .spawn(move || {
                    set_serving_thread(row);
                    let outcome =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| event_loop.run()));
                    let _ = ended_tx.send((row, outcome.map_err(|_| ())));
                    let _ = ended_waker.wake();
                })?;
            running += 1;
        }
        self.life.ready();
        let mut events = Events::with_capacity(8);
        loop {
            match poll.poll(&mut events, Some(TICK)) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
                Ok(()) => {}
            }
            // The access log's timer for every loop (see the event loop's
            // sweep): the lines they buffered go out at least every TICK.
            self.ctx.flush_access_log();
            match self.life.check(Instant::now()) {
                Control::Run => {}
                Control::Drain => self.control.drain(),
                Control::Exit(code) => return Ok(code),
            }
            while let Ok((row, outcome)) = ended_rx.try_recv() {
                running -= 1;
                let why = match outcome {
                    Ok(Ok(_)) if self.control.check() == Control::Drain => continue,
                    Ok(Ok(_)) => "stopped without being asked".to_string(),
                    Ok(Err(err)) => format!("failed: {err}"),
                    Err(()) => "panicked".to_string(),
                };
                log::error!(
                    "loop {row} of worker {} {why}; the worker exits with it",
                    self.position
                );
                return Ok(1);
            }
            if running == 0 {
                return Ok(0);
            }
        }
    }
}
