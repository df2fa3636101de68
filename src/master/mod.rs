//! The master process: bind, fork, supervise. It never serves a request.
//!
//! [`run`] binds the socket, prints the readiness line, maps the scoreboard
//! and then cycles: sleep until a signal or a timer, then look at the world
//! in a fixed order (reap the dead, take the signals, judge each worker's
//! health), ask the [`planner`] what to do about each thing seen, and do it
//! (fork, signal, write the scoreboard, log). That cycle is nginx's
//! `ngx_master_process_cycle`, written to read like gunicorn's arbiter. The
//! policy (backoff, replace-before-drain, stop escalation) lives in the
//! planner, which decides without side effects; this file only observes and
//! carries out.
//!
//! Master signals: SIGTERM and SIGINT stop gracefully (a second one stops
//! fast), SIGQUIT stops fast, SIGHUP reloads the config file, SIGTTIN /
//! SIGTTOU add / remove a worker, SIGCHLD reaps.
//!
//! Every tick it also judges each worker ([`health`]): a hung one is killed
//! (SIGABRT, then SIGKILL); one with a hung request, one due for recycling,
//! and every worker after a reload is *retired*: its replacement starts
//! first, and only once that one is ready does the old one get SIGTERM to
//! drain, so capacity never dips.

mod backoff;
mod browser;
mod health;
mod listen;
mod planner;
mod reap;
mod reuseport;
mod socket;
mod spawn;
mod stop;
mod watch;

use std::io::Write;
use std::ops::ControlFlow;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, getpid};

use crate::changes::ChangeFeed;
use crate::cli::Cli;
use crate::config::{Config, MAX_WORKERS};
use crate::scoreboard::{DeathRecord, Scoreboard, SlotState};
use crate::signals::{SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTTIN, SIGTTOU, SignalSet};
use crate::worker::WorkerSpec;
use listen::Listeners;
use planner::{Action, Command, DeadWorker, Planner};
use watch::Watcher;

/// The master wakes at least this often, to run the watchdog.
const IDLE_WAKE: Duration = Duration::from_millis(250);

pub type MasterError = Box<dyn std::error::Error>;

/// Runs the server until it is stopped. `Ok` means a requested stop.
pub fn run(config: Config, cli: Cli) -> Result<(), MasterError> {
    let listeners = Listeners::open(&config)?;
    let signals =
        SignalSet::register(&[SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGTTIN, SIGTTOU])?;
    let scoreboard = Scoreboard::new(MAX_WORKERS * 2)?;
    // Made before the first fork, so every worker inherits it; the watcher
    // starts before the readiness line, so an edit made right after it
    // reloads.
    let changes = ChangeFeed::new(&scoreboard.header().changes)?;
    let watcher = start_watcher(&config, changes)?;
    // The readiness line: tests and scripts wait for exactly this, and may
    // signal us right after it, so the handlers are already in place. One
    // line, the first address (127.0.0.1 for `localhost`); the others go
    // to the log.
    let addrs = listeners.local_addrs()?;
    let addr = addrs[0];
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{addr}")?;
    stdout.flush()?;
    drop(stdout);
    for also in &addrs[1..] {
        log::info!("also listening on http://{also}");
    }
    log::info!(
        "master pid {} serving {} with {} {} worker(s){}",
        getpid(),
        config.root.display(),
        config.workers,
        config.mode.name(),
        match config.mode {
            crate::config::Mode::Thread => format!(" of {} threads", config.threads),
            crate::config::Mode::ThreadLoops => format!(" of {} loops", config.threads),
            crate::config::Mode::Process => String::new(),
        }
    );
    // One line, when the socket is reachable from other machines: what
    // they get.
    if let Some(note) = crate::handlers::exposure(&config, addr) {
        log::warn!("{note}");
    }
    if cli.open {
        // The socket is listening: the browser's first request waits in
        // the backlog for the workers forked next.
        browser::open(&browser::site_url(addr, config.listen_localhost));
    }
    let mut master = Master {
        planner: Planner::new(config.workers, config.supervisor.graceful_timeout),
        config,
        cli,
        listeners,
        scoreboard,
        signals,
        changes,
        watcher,
    };
    master.cycle()
}

/// The root's watcher when live reload is on.
fn start_watcher(config: &Config, changes: ChangeFeed) -> std::io::Result<Option<Watcher>> {
    if !config.live_reload {
        return Ok(None);
    }
    let watcher = Watcher::start(&config.root, changes).map_err(|err| {
        std::io::Error::new(
            err.kind(),
            format!("live reload: cannot watch {}: {err}", config.root.display()),
        )
    })?;
    Ok(Some(watcher))
}

/// Which signal asks for what, in the order they are handled.
const COMMANDS: [(&[i32], Command); 5] = [
    (&[SIGQUIT], Command::StopFast),
    (&[SIGTERM, SIGINT], Command::Stop),
    (&[SIGHUP], Command::Reload),
    (&[SIGTTIN], Command::AddWorker),
    (&[SIGTTOU], Command::RemoveWorker),
];

struct Master {
    config: Config,
    /// The flags, re-applied over the file on every reload.
    cli: Cli,
    listeners: Listeners,
    scoreboard: Scoreboard,
    signals: SignalSet,
    /// The decisions; everything else here carries them out.
    planner: Planner,
    /// Live reload: the feed every worker listens to, and the root's
    /// watcher that publishes on it (when `live_reload` is on).
    changes: ChangeFeed,
    watcher: Option<Watcher>,
}

impl Master {
    fn cycle(&mut self) -> Result<(), MasterError> {
        loop {
            if let ControlFlow::Break(result) = self.turn() {
                return result;
            }
            self.wait_for_work();
        }
    }

    /// One turn, in a fixed order: reap the dead first, so every decision
    /// below sees the real set of workers; then do what the signals ask;
    /// then the clock's turn (stop escalation, or the health checks,
    /// respawns and drains).
    fn turn(&mut self) -> ControlFlow<Result<(), MasterError>> {
        let now = Instant::now();
        self.signals.drain();
        self.signals.take(SIGCHLD);
        for (pid, death) in reap::reap_all() {
            let booted = self.has_booted(pid);
            let actions = self.planner.worker_died(pid, death, booted, now);
            self.carry_out(actions, now)?;
        }
        for (signals, command) in COMMANDS {
            // Take every flag (no short-circuit): SIGTERM and SIGINT
            // together are one request to stop, not two.
            let asked = signals
                .iter()
                .fold(false, |asked, &signal| self.signals.take(signal) | asked);
            if asked {
                let actions = self.planner.command(command, now);
                self.carry_out(actions, now)?;
            }
        }
        let verdicts = self.health_verdicts();
        let ready = self.ready_workers();
        let actions = self.planner.tick(now, &verdicts, &ready);
        let flow = self.carry_out(actions, now);
        self.steer();
        if let Some(watcher) = &mut self.watcher {
            watcher.read(now);
            watcher.publish_if_due(now);
        }
        flow
    }

    /// With `accept = "reuseport"`, new connections go only to the sockets
    /// of positions whose worker accepts (not one in crash-loop backoff,
    /// being killed, draining or removed by TTOU).
    fn steer(&mut self) {
        let loops = self.config.mode.loops(self.config.threads);
        self.listeners
            .steer(&self.planner.serving_positions(), loops);
    }

    /// Does what the planner decided, in its order.
    fn carry_out(
        &mut self,
        actions: Vec<Action>,
        now: Instant,
    ) -> ControlFlow<Result<(), MasterError>> {
        for action in actions {
            match action {
                Action::Spawn { position } => {
                    if let Err(err) = self.spawn(position, now) {
                        log::error!("cannot fork worker {position}: {err}; retrying");
                        self.planner.spawn_failed(position, now);
                    }
                }
                Action::Signal { pid, signal } => {
                    if signal == Signal::SIGTERM {
                        // A draining worker stops accepting: steer new
                        // connections away from it first.
                        self.steer();
                    }
                    send(pid, signal)
                }
                Action::RecordDeath(dead) => self.record_death(&dead),
                Action::Reload => {
                    let actions = self.reload(now);
                    self.carry_out(actions, now)?;
                }
                Action::Log(level, line) => log::log!(level, "{line}"),
                Action::Exit(Ok(())) => {
                    log::info!("master pid {} stopped", getpid());
                    return ControlFlow::Break(Ok(()));
                }
                Action::Exit(Err(why)) => return ControlFlow::Break(Err(why.into())),
            }
        }
        ControlFlow::Continue(())
    }

    /// Sleeps until a signal arrives, the next timer is due, or (live
    /// reload) a file changes or a burst of changes is due.
    fn wait_for_work(&self) {
        let now = Instant::now();
        let mut wake = self.planner.next_wake(now);
        if let Some(due) = self.watcher.as_ref().and_then(Watcher::due) {
            wake = wake.min(due);
        }
        // Rounded up: waking a millisecond early would only find the burst
        // not due yet and sleep again for 0 ms.
        let millis = wake
            .saturating_duration_since(now)
            .as_micros()
            .div_ceil(1000)
            .min(u16::MAX as u128) as u16;
        let mut fds = vec![PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
        if let Some(watcher) = &self.watcher {
            fds.push(PollFd::new(watcher.fd(), PollFlags::POLLIN));
        }
        // EINTR is the usual way a signal ends this wait: nothing to handle.
        let _ = poll(&mut fds, PollTimeout::from(millis));
    }

    /// Whether a worker got past starting (its death can't be a boot failure).
    fn has_booted(&self, pid: Pid) -> bool {
        self.planner
            .worker(pid)
            .is_some_and(|w| self.scoreboard.slot(w.slot).state() != SlotState::Starting)
    }

    /// The watchdog's and the recycling's judgement of each worker the
    /// planner watches.
    fn health_verdicts(&self) -> Vec<(Pid, health::Verdict)> {
        let now_mono_ms = crate::scoreboard::mono_ms();
        self.planner
            .due_for_check()
            .map(|worker| {
                let slot = self.scoreboard.slot(worker.slot);
                let limits = &self.config.supervisor;
                let verdict =
                    health::check(slot, worker.pid, worker.request_limit, limits, now_mono_ms);
                (worker.pid, verdict)
            })
            .collect()
    }

    /// The workers serving, which replacements wait for.
    fn ready_workers(&self) -> Vec<Pid> {
        self.planner
            .workers()
            .iter()
            .filter(|w| self.scoreboard.slot(w.slot).state() == SlotState::Ready)
            .map(|w| w.pid)
            .collect()
    }

    /// Frees a dead worker's slot, keeps its record for `/-/status`, logs it.
    fn record_death(&self, dead: &DeadWorker) {
        let slot = self.scoreboard.slot(dead.slot);
        let requests = slot.requests();
        slot.set_state(SlotState::Free);
        self.scoreboard.header().record_death(&DeathRecord {
            position: dead.position as u32,
            pid: dead.pid.as_raw(),
            how: dead.death,
            at_ms: crate::scoreboard::now_ms(),
            uptime_ms: dead.uptime.as_millis() as u64,
            requests,
        });
        let line = format!(
            "worker {} (pid {}) {} after {:.1}s, {requests} request(s) served",
            dead.position,
            dead.pid,
            dead.death,
            dead.uptime.as_secs_f64()
        );
        if dead.expected && dead.death.is_clean() {
            log::info!("{line}");
        } else {
            log::warn!("{line}");
        }
    }

    fn spawn(&mut self, position: usize, now: Instant) -> Result<(), MasterError> {
        let slot = self.scoreboard.claim_slot().ok_or("scoreboard is full")?;
        let slot_ref = self.scoreboard.slot(slot);
        slot_ref.reset_for_spawn(position);
        let loops = self.config.mode.loops(self.config.threads);
        let spec = WorkerSpec {
            position,
            config: &self.config,
            listeners: self.listeners.for_worker(position, loops)?,
            scoreboard: self.scoreboard,
            slot: slot_ref,
            master: getpid(),
            signal_mask: nix::sys::signal::SigSet::empty(),
            changes: self.changes,
        };
        let pid = match spawn::fork_worker(spec, &self.signals) {
            Ok(pid) => pid,
            Err(err) => {
                slot_ref.set_state(SlotState::Free);
                return Err(err.into());
            }
        };
        slot_ref
            .pid
            .store(pid.as_raw(), std::sync::atomic::Ordering::Relaxed);
        log::debug!("spawned worker {position} (pid {pid})");
        let request_limit = health::request_limit(&self.config.supervisor, pid.as_raw() as u64);
        self.planner
            .worker_spawned(position, pid, slot, request_limit, now);
        Ok(())
    }

    /// SIGHUP: re-read the config file; on success the planner replaces
    /// every worker with one started with the new config. A bad file
    /// changes nothing, and neither does one that would enable faults on
    /// the socket in force when it is not on loopback (the file's own
    /// `listen` needs a restart, so it can't vouch for the address).
    fn reload(&mut self, now: Instant) -> Vec<Action> {
        let reloaded = match crate::config::reload(&self.config, &self.cli) {
            Ok(reloaded) => reloaded,
            Err(err) => {
                log::error!("reload failed, still running on the old configuration: {err}");
                return Vec::new();
            }
        };
        if let Some((listen, backlog)) = reloaded.not_applied {
            log::warn!(
                "reload: the listen address and backlog need a restart; keeping {} \
                 (backlog {}) instead of {listen} (backlog {backlog})",
                self.config.listen,
                self.config.backlog
            );
        }
        if let Some(accept) = reloaded.accept_not_applied {
            log::warn!(
                "reload: the accept strategy needs a restart; keeping {} instead of {}",
                self.config.accept.name(),
                accept.name()
            );
        }
        let config = reloaded.config;
        log::info!(
            "reloaded configuration: {} {} worker(s); replacing the {} running",
            config.workers,
            config.mode.name(),
            self.planner.workers().len()
        );
        if let Ok(addr) = self.listeners.local_addr()
            && let Some(note) = crate::handlers::exposure(&config, addr)
        {
            log::warn!("{note}");
        }
        if (config.live_reload, &config.root) != (self.config.live_reload, &self.config.root) {
            // Off, on, or another root: the old watcher goes first, so
            // two never publish at once.
            self.watcher = None;
            match start_watcher(&config, self.changes) {
                Ok(watcher) => self.watcher = watcher,
                Err(err) => log::error!("{err}; pages will not reload"),
            }
        }
        self.config = config;
        let graceful_timeout = self.config.supervisor.graceful_timeout;
        self.planner
            .config_reloaded(self.config.workers, graceful_timeout, now)
    }
}

/// Sends a signal; a worker that already exited is not an error (we reap it next).
fn send(pid: Pid, sig: Signal) {
    if let Err(err) = kill(pid, sig)
        && err != nix::errno::Errno::ESRCH
    {
        log::warn!("cannot send {sig} to {pid}: {err}");
    }
}
