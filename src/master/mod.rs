//! The master process: bind, fork, supervise. It never serves a request.
//!
//! [`run`] binds the socket, prints the readiness line, maps the scoreboard,
//! forks the workers and then loops: sleep until a signal or a timer, then
//! act in a fixed order (reap the dead, stop if asked, resize, respawn).
//! That cycle is nginx's `ngx_master_process_cycle`, written to read like
//! gunicorn's arbiter.
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

mod health;
mod listen;
mod reap;
mod spawn;

use std::io::Write;
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, getpid};

use crate::cli::Cli;
use crate::config::{Config, MAX_WORKERS};
use crate::death::Death;
use crate::scoreboard::{DeathRecord, Scoreboard, SlotState};
use crate::signals::{SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTTIN, SIGTTOU, SignalSet};
use crate::worker::{EXIT_BOOT_FAILURE, WorkerSpec};

/// A worker that dies sooner than this after its spawn counts as crash-looping.
const STABLE_UPTIME: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Fast stop: recheck at 50 ms, doubling, SIGKILL past 1 s (nginx).
const FAST_STOP_FIRST_CHECK: Duration = Duration::from_millis(50);
const FAST_STOP_KILL_AFTER: Duration = Duration::from_secs(1);
/// The master wakes at least this often, to run the watchdog.
const IDLE_WAKE: Duration = Duration::from_millis(250);
/// A worker killed by the watchdog gets SIGABRT, then SIGKILL after this.
const ABORT_GRACE: Duration = Duration::from_secs(1);
/// A draining worker exits by itself at `graceful_timeout`, cutting what is
/// left; the master's SIGKILL comes this much later, for a worker that can't.
/// Without the margin the two race and the log can say either.
const DRAIN_MARGIN: Duration = Duration::from_secs(1);

pub type MasterError = Box<dyn std::error::Error>;

/// Runs the server until it is stopped. `Ok` means a requested stop.
pub fn run(config: Config, cli: Cli) -> Result<(), MasterError> {
    let listener = listen::bind(config.listen, config.backlog)
        .map_err(|err| format!("cannot listen on {}: {err}", config.listen))?;
    let signals =
        SignalSet::register(&[SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGTTIN, SIGTTOU])?;
    let scoreboard = Scoreboard::new(MAX_WORKERS * 2)?;
    // The readiness line: tests and scripts wait for exactly this, and may
    // signal us right after it, so the handlers are already in place.
    let addr = listener.local_addr()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{addr}")?;
    stdout.flush()?;
    drop(stdout);
    log::info!(
        "master pid {} serving {} with {} {} worker(s){}",
        getpid(),
        config.root.display(),
        config.workers,
        mode_name(&config),
        match config.mode {
            crate::config::Mode::Thread => format!(" of {} threads", config.threads),
            crate::config::Mode::Process => String::new(),
        }
    );
    let mut master = Master {
        target: config.workers,
        config,
        cli,
        listener,
        scoreboard,
        signals,
        workers: Vec::new(),
        backoff: Vec::new(),
        stopping: None,
        failed: None,
    };
    master.cycle()
}

fn mode_name(config: &Config) -> &'static str {
    config.mode.name()
}

/// A live worker process.
struct Worker {
    /// Its position (0..target): respawns keep the position.
    position: usize,
    /// Its scoreboard slot.
    slot: usize,
    pid: Pid,
    spawned: Instant,
    /// Its `max_requests` with jitter (0 = none).
    request_limit: u64,
    /// Set once it is on its way out; see [`Retire`].
    retire: Option<Retire>,
    /// Set when the watchdog sent SIGABRT: SIGKILL follows at this time.
    kill_at: Option<Instant>,
}

/// A worker being replaced: it keeps serving until its replacement is
/// ready (or, above the target after SIGTTOU, at once), then drains.
struct Retire {
    why: String,
    /// When it got SIGTERM; SIGKILL follows `graceful_timeout` + [`DRAIN_MARGIN`] later.
    signalled: Option<Instant>,
    /// Whether a replacement takes its position (not after SIGTTOU).
    replaced: bool,
}

/// Crash-loop state of one position.
#[derive(Debug, Clone, Copy, Default)]
struct Backoff {
    delay: Duration,
    respawn_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
enum Stopping {
    Graceful {
        kill_at: Instant,
    },
    Fast {
        next_check: Instant,
        interval: Duration,
        kill_at: Instant,
    },
}

struct Master {
    config: Config,
    /// The flags, re-applied over the file on every reload.
    cli: Cli,
    listener: TcpListener,
    scoreboard: Scoreboard,
    signals: SignalSet,
    /// How many workers should be running.
    target: usize,
    workers: Vec<Worker>,
    /// Per position.
    backoff: Vec<Backoff>,
    stopping: Option<Stopping>,
    /// Set when a worker failed to boot: stop, then report this.
    failed: Option<String>,
}

impl Master {
    fn cycle(&mut self) -> Result<(), MasterError> {
        loop {
            let now = Instant::now();
            self.signals.drain();
            // The fixed order: the dead first, so every decision below sees
            // the real set of workers.
            self.signals.take(SIGCHLD);
            self.reap(now);
            if self.signals.take(SIGQUIT) {
                self.stop_fast(now);
            }
            if self.signals.take(SIGTERM) | self.signals.take(SIGINT) {
                match self.stopping {
                    None => self.stop_gracefully(now),
                    // Ctrl+C twice: don't make the user wait out the drain.
                    Some(Stopping::Graceful { .. }) => self.stop_fast(now),
                    Some(Stopping::Fast { .. }) => {}
                }
            }
            if self.signals.take(SIGHUP) {
                self.reload(now);
            }
            if self.signals.take(SIGTTIN) {
                self.resize(self.target + 1);
            }
            if self.signals.take(SIGTTOU) {
                self.resize(self.target.saturating_sub(1));
            }
            match self.stopping {
                Some(_) if self.workers.is_empty() => break,
                Some(_) => self.escalate_stop(now),
                None => {
                    self.supervise(now);
                    self.spawn_missing(now);
                    self.retire_replaced(now);
                }
            }
            self.wait_for_work();
        }
        match self.failed.take() {
            Some(why) => Err(why.into()),
            None => {
                log::info!("master pid {} stopped", getpid());
                Ok(())
            }
        }
    }

    /// Sleeps until a signal arrives or the next timer is due.
    fn wait_for_work(&self) {
        let now = Instant::now();
        let mut wake = now + IDLE_WAKE;
        for backoff in &self.backoff {
            if let Some(at) = backoff.respawn_at {
                wake = wake.min(at);
            }
        }
        match self.stopping {
            Some(Stopping::Graceful { kill_at }) => wake = wake.min(kill_at),
            Some(Stopping::Fast { next_check, .. }) => wake = wake.min(next_check),
            None => {}
        }
        let millis = wake
            .saturating_duration_since(now)
            .as_millis()
            .min(u16::MAX as u128) as u16;
        let mut fds = [PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
        // EINTR is the usual way a signal ends this wait: nothing to handle.
        let _ = poll(&mut fds, PollTimeout::from(millis));
    }

    fn reap(&mut self, now: Instant) {
        for (pid, death) in reap::reap_all() {
            let Some(at) = self.workers.iter().position(|w| w.pid == pid) else {
                log::debug!("reaped unknown child {pid}: {death}");
                continue;
            };
            let worker = self.workers.swap_remove(at);
            let slot = self.scoreboard.slot(worker.slot);
            let uptime = now.duration_since(worker.spawned);
            let requests = slot.requests.load(std::sync::atomic::Ordering::Relaxed);
            let booted = slot.state() != SlotState::Starting;
            slot.set_state(SlotState::Free);
            self.scoreboard.header().record_death(&DeathRecord {
                position: worker.position as u32,
                pid: pid.as_raw(),
                how: death,
                at_ms: crate::scoreboard::now_ms(),
                uptime_ms: uptime.as_millis() as u64,
                requests,
            });
            let expected = self.stopping.is_some() || worker.retire.is_some();
            let line = format!(
                "worker {} (pid {pid}) {death} after {:.1}s, {requests} request(s) served",
                worker.position,
                uptime.as_secs_f64()
            );
            if expected && death.is_clean() {
                log::info!("{line}");
            } else {
                log::warn!("{line}");
            }
            if death == Death::Exited(EXIT_BOOT_FAILURE) && !booted {
                self.fail(now, format!("worker {} failed to start (exit code {EXIT_BOOT_FAILURE}); see the log above", worker.position));
            } else if !expected {
                self.schedule_respawn(worker.position, uptime, now);
            }
        }
    }

    /// Crash-loop guard: a worker that died young delays the next spawn of
    /// its position, doubling from 100 ms to 10 s; a stable one resets it.
    fn schedule_respawn(&mut self, position: usize, uptime: Duration, now: Instant) {
        let Some(backoff) = self.backoff.get_mut(position) else {
            return;
        };
        if uptime >= STABLE_UPTIME {
            backoff.delay = Duration::ZERO;
        } else {
            backoff.delay = (backoff.delay * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF);
            log::error!(
                "worker {position} died {:.1}s after its spawn: crash loop? respawning in {:?}",
                uptime.as_secs_f64(),
                backoff.delay
            );
        }
        backoff.respawn_at = Some(now + backoff.delay);
    }

    /// Spawns every position that has no worker and whose delay has passed.
    fn spawn_missing(&mut self, now: Instant) {
        if self.backoff.len() < self.target {
            self.backoff.resize(self.target, Backoff::default());
        }
        for position in 0..self.target {
            let staffed = self
                .workers
                .iter()
                .any(|w| w.position == position && w.retire.is_none());
            let due = self.backoff[position].respawn_at.is_none_or(|at| now >= at);
            if !staffed && due {
                self.backoff[position].respawn_at = None;
                if let Err(err) = self.spawn(position, now) {
                    log::error!("cannot fork worker {position}: {err}; retrying");
                    self.backoff[position].respawn_at = Some(now + FIRST_BACKOFF);
                }
            }
        }
    }

    fn spawn(&mut self, position: usize, now: Instant) -> Result<(), MasterError> {
        let slot = self.scoreboard.claim_slot().ok_or("scoreboard is full")?;
        let slot_ref = self.scoreboard.slot(slot);
        slot_ref.reset_for_spawn(position);
        let spec = WorkerSpec {
            position,
            config: &self.config,
            listener: &self.listener,
            scoreboard: self.scoreboard,
            slot: slot_ref,
            master: getpid(),
            signal_mask: nix::sys::signal::SigSet::empty(),
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
        self.workers.push(Worker {
            position,
            slot,
            pid,
            spawned: now,
            request_limit: health::request_limit(&self.config.supervisor, pid.as_raw() as u64),
            retire: None,
            kill_at: None,
        });
        Ok(())
    }

    /// SIGTTIN / SIGTTOU: change the number of workers, never below one.
    fn resize(&mut self, target: usize) {
        if self.stopping.is_some() {
            return;
        }
        let target = target.clamp(1, MAX_WORKERS);
        log::info!("workers: {} -> {target}", self.target);
        self.target = target;
        let surplus: Vec<usize> = (0..self.workers.len())
            .filter(|&i| self.workers[i].position >= target)
            .collect();
        for i in surplus {
            self.retire(i, "fewer workers wanted (SIGTTOU)".into());
        }
    }

    /// SIGHUP: re-read the config file; on success retire every worker in
    /// favour of one started with the new config. A bad file changes nothing.
    /// Ignored while stopping (it would start workers the stop must end).
    fn reload(&mut self, now: Instant) {
        if self.stopping.is_some() {
            log::info!("ignoring SIGHUP: stopping");
            return;
        }
        let mut config = match crate::config::reload(&self.config, &self.cli) {
            Ok(config) => config,
            Err(err) => {
                log::error!("reload failed, still running on the old configuration: {err}");
                return;
            }
        };
        if (config.listen, config.backlog) != (self.config.listen, self.config.backlog) {
            log::warn!(
                "reload: the listen address and backlog need a restart; keeping {}",
                self.config.listen
            );
            config.listen = self.config.listen;
            config.backlog = self.config.backlog;
        }
        log::info!(
            "reloaded configuration: {} {} worker(s); replacing the {} running",
            config.workers,
            config.mode.name(),
            self.workers.len()
        );
        self.config = config;
        self.target = self.config.workers.clamp(1, MAX_WORKERS);
        self.backoff
            .iter_mut()
            .for_each(|b| *b = Backoff::default());
        for i in 0..self.workers.len() {
            self.retire(i, "configuration reloaded (SIGHUP)".into());
        }
        self.spawn_missing(now);
    }

    /// The watchdog and the recycling checks, once per tick.
    fn supervise(&mut self, now: Instant) {
        let now_mono_ms = crate::scoreboard::mono_ms();
        for i in 0..self.workers.len() {
            let worker = &mut self.workers[i];
            if let Some(kill_at) = worker.kill_at {
                if now >= kill_at {
                    signal(worker.pid, Signal::SIGKILL);
                    worker.kill_at = Some(now + ABORT_GRACE);
                }
                continue;
            }
            let slot = self.scoreboard.slot(worker.slot);
            match health::check(
                slot,
                worker.pid,
                worker.request_limit,
                &self.config.supervisor,
                now_mono_ms,
            ) {
                health::Verdict::Healthy => {}
                health::Verdict::Hung(silent) => {
                    log::error!(
                        "worker {} (pid {}) sent no heartbeat for {:.1}s: killing it (SIGABRT)",
                        worker.position,
                        worker.pid,
                        silent.as_secs_f64()
                    );
                    signal(worker.pid, Signal::SIGABRT);
                    worker.kill_at = Some(now + ABORT_GRACE);
                }
                health::Verdict::Replace(why) if worker.retire.is_none() => self.retire(i, why),
                health::Verdict::Replace(_) => {}
            }
        }
    }

    /// Marks worker `i` for replacement; see [`Retire`].
    fn retire(&mut self, i: usize, why: String) {
        let worker = &mut self.workers[i];
        if worker.retire.is_some() {
            return;
        }
        log::info!(
            "retiring worker {} (pid {}): {why}",
            worker.position,
            worker.pid
        );
        worker.retire = Some(Retire {
            why,
            signalled: None,
            replaced: worker.position < self.target,
        });
    }

    /// Drains retiring workers whose replacement is ready, and kills those
    /// that outstay `graceful_timeout`.
    fn retire_replaced(&mut self, now: Instant) {
        let ready: Vec<usize> = self
            .workers
            .iter()
            .filter(|w| {
                w.retire.is_none() && self.scoreboard.slot(w.slot).state() == SlotState::Ready
            })
            .map(|w| w.position)
            .collect();
        let graceful = self.config.supervisor.graceful_timeout;
        for worker in &mut self.workers {
            let Some(retire) = &mut worker.retire else {
                continue;
            };
            match retire.signalled {
                None if !retire.replaced || ready.contains(&worker.position) => {
                    log::debug!(
                        "draining worker {} (pid {}): {}",
                        worker.position,
                        worker.pid,
                        retire.why
                    );
                    signal(worker.pid, Signal::SIGTERM);
                    retire.signalled = Some(now);
                }
                Some(at) if now >= at + graceful + DRAIN_MARGIN && worker.kill_at.is_none() => {
                    log::warn!(
                        "worker {} (pid {}) did not drain within {:?}: killing it",
                        worker.position,
                        worker.pid,
                        graceful
                    );
                    signal(worker.pid, Signal::SIGKILL);
                    worker.kill_at = Some(now + ABORT_GRACE);
                }
                _ => {}
            }
        }
    }

    fn stop_gracefully(&mut self, now: Instant) {
        log::info!(
            "stopping gracefully: draining {} worker(s), at most {:?}",
            self.workers.len(),
            self.config.supervisor.graceful_timeout
        );
        self.signal_all(Signal::SIGTERM);
        self.stopping = Some(Stopping::Graceful {
            kill_at: now + self.config.supervisor.graceful_timeout + DRAIN_MARGIN,
        });
    }

    fn stop_fast(&mut self, now: Instant) {
        log::info!("stopping fast");
        self.signal_all(Signal::SIGQUIT);
        self.stopping = Some(Stopping::Fast {
            next_check: now + FAST_STOP_FIRST_CHECK,
            interval: FAST_STOP_FIRST_CHECK,
            kill_at: now + FAST_STOP_KILL_AFTER,
        });
    }

    /// A worker failed to boot: respawning would fail the same way.
    fn fail(&mut self, now: Instant, why: String) {
        log::error!("{why}; stopping");
        if self.failed.is_none() {
            self.failed = Some(why);
        }
        if self.stopping.is_none() {
            self.stop_fast(now);
        }
    }

    /// Past a stop's deadline, SIGKILL whoever is left.
    fn escalate_stop(&mut self, now: Instant) {
        match self.stopping {
            Some(Stopping::Graceful { kill_at }) if now >= kill_at => {
                log::warn!(
                    "graceful stop timed out; killing {} worker(s)",
                    self.workers.len()
                );
                self.signal_all(Signal::SIGKILL);
                self.stopping = Some(Stopping::Graceful {
                    kill_at: now + IDLE_WAKE,
                });
            }
            Some(Stopping::Fast {
                next_check,
                interval,
                kill_at,
            }) if now >= next_check => {
                if now >= kill_at {
                    self.signal_all(Signal::SIGKILL);
                }
                let interval = interval * 2;
                self.stopping = Some(Stopping::Fast {
                    next_check: now + interval,
                    interval,
                    kill_at,
                });
            }
            _ => {}
        }
    }

    fn signal_all(&self, sig: Signal) {
        for worker in &self.workers {
            signal(worker.pid, sig);
        }
    }
}

/// Sends a signal; a worker that already exited is not an error (we reap it next).
fn signal(pid: Pid, sig: Signal) {
    if let Err(err) = kill(pid, sig)
        && err != nix::errno::Errno::ESRCH
    {
        log::warn!("cannot send {sig} to {pid}: {err}");
    }
}
