//! A worker process: what runs in the child after `fork`.
//!
//! [`run`] boots the worker (parent-death signal, its own signal handlers,
//! the application it serves, built by the factory its caller passes in:
//! the engine knows only the [`Handler`] interface) and then hands over to
//! the loop of the configured architecture: here the mode picks one event
//! loop (process, thread) or a loop per thread (thread-loops), and
//! `EventLoop::new` picks inline serving or the pool. A failure during boot exits with
//! [`EXIT_BOOT_FAILURE`], which tells the master that respawning would only
//! fail again.
//!
//! Signals a worker obeys: SIGTERM drains (stop accepting, finish in-flight
//! requests, close idle connections, exit 0; give up after
//! `graceful_timeout` and exit [`EXIT_DRAIN_TIMEOUT`], so the master's log
//! tells a clean drain from one that abandoned requests), SIGQUIT exits at
//! once. SIGINT is ignored: a
//! terminal's Ctrl+C reaches the whole process group, and stopping is the
//! master's call.

mod access_log;
mod connection;
mod event_loop;
mod loops;
mod pool;

use std::io;
use std::net::TcpListener as StdListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::unistd::{Pid, getppid};

use crate::changes::ChangeFeed;
use crate::config::{Accept, Config, Mode};
use crate::http::Handler;
use crate::scoreboard::{Scoreboard, Slot, SlotState};
use crate::signals::{SIGQUIT, SIGTERM, SignalSet};
use connection::ServeCtx;
use event_loop::{EventLoop, LoopControl, Supervision};
use loops::LoopGroup;

/// Exit code of a worker that could not start (gunicorn's convention).
pub(crate) const EXIT_BOOT_FAILURE: i32 = 3;
/// Exit code of a worker whose drain outlasted `graceful_timeout`: it gave
/// up on the connections it still had (a hung request, say).
pub(crate) const EXIT_DRAIN_TIMEOUT: i32 = 4;
/// How often a worker heartbeats and checks on its master, at most.
pub(crate) const TICK: Duration = Duration::from_millis(500);

/// What the master hands a freshly forked worker.
pub(crate) struct WorkerSpec<'a> {
    /// Position of this worker (0-based), for names and logs.
    pub(crate) position: usize,
    pub(crate) config: &'a Config,
    /// The sockets to accept from: shared by every loop (one, or two for
    /// `localhost`: 127.0.0.1 and `[::1]`), or (with `accept = "reuseport"`)
    /// one per loop of this worker, in loop order.
    pub(crate) listeners: Vec<&'a StdListener>,
    pub(crate) scoreboard: Scoreboard,
    pub(crate) slot: &'static Slot,
    pub(crate) master: Pid,
    /// The signal mask to restore once the worker's handlers are installed
    /// (the master forks with every signal blocked).
    pub(crate) signal_mask: nix::sys::signal::SigSet,
    /// Live reload's change feed (its streams listen to it when
    /// `live_reload` is on).
    pub(crate) changes: ChangeFeed,
}

/// Runs a worker to its end; returns the process exit code.
///
/// `make_handler` builds the application the worker serves, from the
/// worker's config (with the address really bound), position and the
/// scoreboard. It runs here, in the worker, while booting: an error (or a
/// panic) there is a boot failure.
pub(crate) fn run<H: Handler + 'static>(
    spec: WorkerSpec<'_>,
    make_handler: impl FnOnce(&Config, usize, Scoreboard) -> io::Result<H>,
) -> i32 {
    let name = format!("forkpool-w{}", spec.position);
    // The kernel truncates to 15 bytes; a failure only costs a nicer `ps`.
    let _ = nix::sys::prctl::set_name(&std::ffi::CString::new(name).unwrap_or_default());
    // A panic while booting is a boot failure too, not a crash to respawn.
    let booted =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| boot(&spec, make_handler)));
    let worker = match booted {
        Ok(Ok(worker)) => worker,
        Ok(Err(err)) => {
            log::error!("worker {} failed to start: {err}", spec.position);
            return EXIT_BOOT_FAILURE;
        }
        Err(_) => {
            log::error!("worker {} panicked while starting", spec.position);
            return EXIT_BOOT_FAILURE;
        }
    };
    let ran = match worker {
        Booted::OneLoop(event_loop) => event_loop.run(),
        Booted::Loops(group) => group.run(),
    };
    match ran {
        Ok(code) => code,
        Err(err) => {
            log::error!("worker {} stopped on an error: {err}", spec.position);
            1
        }
    }
}

/// A booted worker, ready to run: one event loop (process and thread mode)
/// or one per thread (thread-loops).
enum Booted {
    OneLoop(Box<EventLoop>),
    Loops(LoopGroup),
}

fn boot<H: Handler + 'static>(
    spec: &WorkerSpec<'_>,
    make_handler: impl FnOnce(&Config, usize, Scoreboard) -> io::Result<H>,
) -> io::Result<Booted> {
    // If the master dies, drain and exit rather than serve unsupervised.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)?;
    let signals = SignalSet::register(&[SIGTERM, SIGQUIT])?;
    // Now a SIGTERM that arrived during the fork is delivered, to us.
    crate::signals::restore_mask(&spec.signal_mask)?;
    // What `/-/status` shows is the address really bound (`:0` resolved).
    let mut config = spec.config.clone();
    let first_listener = spec
        .listeners
        .first()
        .ok_or_else(|| io::Error::other("no listening socket"))?;
    config.listen = first_listener.local_addr()?;
    let handler = make_handler(&config, spec.position, spec.scoreboard)?;
    let changes = config.live_reload.then_some(spec.changes);
    let ctx = Arc::new(ServeCtx::new(
        &config,
        Box::new(handler),
        spec.slot,
        changes,
    ));
    // One scoreboard row per serving thread, set up before any of them
    // counts: the loop (process mode), the pool's threads or the loops.
    let serving_threads = match spec.config.mode {
        Mode::Process => 1,
        Mode::Thread | Mode::ThreadLoops => spec.config.threads,
    };
    spec.slot.set_serving_threads(serving_threads);
    // Loop `n` accepts from socket `n` (reuseport), or every loop from
    // every shared socket.
    let listeners_of_loop = |n: usize| -> io::Result<Vec<mio::net::TcpListener>> {
        let sockets = match spec.config.accept {
            Accept::Reuseport => std::slice::from_ref(&spec.listeners[n % spec.listeners.len()]),
            Accept::Shared => &spec.listeners[..],
        };
        sockets
            .iter()
            .map(|socket| Ok(mio::net::TcpListener::from_std(socket.try_clone()?)))
            .collect()
    };
    let life = Lifecycle {
        signals,
        master: spec.master,
        slot: spec.slot,
        graceful_timeout: spec.config.supervisor.graceful_timeout,
        drain_deadline: None,
    };
    // The one place the architectures part: one loop (inside, a `match` on
    // the mode picks inline serving or the thread pool), or a loop per
    // thread.
    if spec.config.mode != Mode::ThreadLoops {
        let own = Supervision::Own(life);
        let event_loop =
            EventLoop::new(ctx, listeners_of_loop(0)?, own, spec.config, spec.position)?;
        return Ok(Booted::OneLoop(Box::new(event_loop)));
    }
    let control = Arc::new(LoopControl::default());
    let loops = (0..spec.config.threads)
        .map(|row| {
            let shared = Supervision::Shared {
                control: Arc::clone(&control),
                row,
            };
            let ctx = Arc::clone(&ctx);
            EventLoop::new(
                ctx,
                listeners_of_loop(row)?,
                shared,
                spec.config,
                spec.position,
            )
        })
        .collect::<io::Result<Vec<_>>>()?;
    Ok(Booted::Loops(LoopGroup::new(
        life,
        control,
        loops,
        ctx,
        spec.slot,
        spec.position,
    )))
}

/// What the worker loop should do after [`Lifecycle::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    Run,
    Drain,
    /// Exit now with this code.
    Exit(i32),
}

/// The worker's side of supervision: signals, heartbeat, master watch.
pub(crate) struct Lifecycle {
    pub(crate) signals: SignalSet,
    master: Pid,
    slot: &'static Slot,
    graceful_timeout: Duration,
    drain_deadline: Option<Instant>,
}

impl Lifecycle {
    /// The worker is serving.
    pub(crate) fn ready(&self) {
        self.slot.pid.store(
            std::process::id() as i32,
            std::sync::atomic::Ordering::Relaxed,
        );
        self.slot.heartbeat();
        self.slot.set_state(SlotState::Ready);
    }

    /// Heartbeats alone, between the checks (after a slow turn).
    pub(crate) fn heartbeat(&self) {
        self.slot.heartbeat();
    }

    /// Heartbeats and decides whether to keep running, drain, or exit.
    /// Called on every signal wake-up and at least every [`TICK`].
    pub(crate) fn check(&mut self, now: Instant) -> Control {
        self.slot.heartbeat();
        self.signals.drain();
        if self.signals.take(SIGQUIT) {
            return Control::Exit(0);
        }
        if self.signals.take(SIGTERM) {
            self.begin_drain(now, "SIGTERM");
        }
        if getppid() != self.master {
            self.begin_drain(now, "master is gone");
        }
        match self.drain_deadline {
            None => Control::Run,
            Some(deadline) if now >= deadline => {
                log::warn!(
                    "graceful stop took longer than {:?}; exiting",
                    self.graceful_timeout
                );
                Control::Exit(EXIT_DRAIN_TIMEOUT)
            }
            Some(_) => Control::Drain,
        }
    }

    fn begin_drain(&mut self, now: Instant, why: &str) {
        if self.drain_deadline.is_none() {
            log::debug!("draining ({why})");
            self.slot.set_state(SlotState::Draining);
            self.drain_deadline = Some(now + self.graceful_timeout);
        }
    }
}
