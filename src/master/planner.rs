//! The master's decisions, without its effects.
//!
//! [`Planner`] holds the supervisor's state (the workers with their
//! positions, pids and spawn times, whether each is being retired or
//! killed, the crash-loop [`Backoff`] per position, the target count, the
//! [`Stopping`] in progress) and turns each event into a list of
//! [`Action`]s: a worker died, a signal asked for something ([`Command`]),
//! the clock ticked with fresh health verdicts. It never forks, signals,
//! logs, reads a clock or touches the scoreboard: the time is an argument;
//! the master (`mod.rs`) reads the world, asks, and carries the actions out
//! in the order given. So every policy is unit-tested without a process:
//! - a worker that dies unasked is respawned, after its position's backoff;
//! - replace before drain: a worker due for replacement (recycling, a hung
//!   request, a reload) keeps serving until the replacement at its position
//!   is ready, then gets SIGTERM, and SIGKILL if it outlasts
//!   `graceful_timeout` + [`DRAIN_MARGIN`]; one above the target after
//!   SIGTTOU has no replacement and drains at once;
//! - a hung worker gets SIGABRT, then SIGKILL every [`ABORT_GRACE`];
//! - never fewer than one worker, nor more than `MAX_WORKERS`;
//! - SIGTERM / SIGINT stop gracefully, a second one fast, as SIGQUIT does;
//!   a worker that fails to boot stops the master with an error.

use std::time::{Duration, Instant};

use log::Level;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::IDLE_WAKE;
use super::backoff::Backoff;
use super::health::Verdict;
use super::stop::Stopping;
use crate::config::MAX_WORKERS;
use crate::death::Death;
use crate::worker::EXIT_BOOT_FAILURE;

/// A worker killed by the watchdog gets SIGABRT, then SIGKILL after this.
const ABORT_GRACE: Duration = Duration::from_secs(1);
/// A draining worker exits by itself at `graceful_timeout`, cutting what is
/// left; the master's SIGKILL comes this much later, for a worker that can't.
/// Without the margin the two race and the log can say either.
const DRAIN_MARGIN: Duration = Duration::from_secs(1);

/// What a signal to the master asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    /// SIGQUIT.
    StopFast,
    /// SIGTERM or SIGINT: drain and exit; a second one stops fast.
    Stop,
    /// SIGHUP: re-read the config file and replace every worker.
    Reload,
    /// SIGTTIN.
    AddWorker,
    /// SIGTTOU.
    RemoveWorker,
}

/// One step for the master to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Fork a worker for this position, then report back with
    /// [`Planner::worker_spawned`] or [`Planner::spawn_failed`].
    Spawn {
        position: usize,
    },
    /// Send a signal to a worker (one that already exited is no error).
    Signal {
        pid: Pid,
        signal: Signal,
    },
    /// Free a dead worker's slot, keep its death record, log it.
    RecordDeath(DeadWorker),
    /// Re-read the config file; on success report with
    /// [`Planner::config_reloaded`], else keep running as before.
    Reload,
    Log(Level, String),
    /// Every worker is gone after a stop: the master returns this.
    Exit(Result<(), String>),
}

/// A worker the planner has forgotten, for its death record and log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeadWorker {
    pub(crate) position: usize,
    pub(crate) slot: usize,
    pub(crate) pid: Pid,
    pub(crate) death: Death,
    pub(crate) uptime: Duration,
    /// It was told to go (a stop, a retirement): a clean exit is no news.
    pub(crate) expected: bool,
}

/// A live worker process.
#[derive(Debug)]
pub(crate) struct Worker {
    /// Its position (0..target): respawns keep the position.
    pub(crate) position: usize,
    /// Its scoreboard slot.
    pub(crate) slot: usize,
    pub(crate) pid: Pid,
    spawned: Instant,
    /// Its `max_requests` with jitter (0 = none), for the health check.
    pub(crate) request_limit: u64,
    /// Set once it is on its way out; see [`Retire`].
    retire: Option<Retire>,
    /// Set when SIGABRT or SIGKILL was sent: SIGKILL (again) at this time.
    kill_at: Option<Instant>,
}

/// A worker being replaced: it keeps serving until its replacement is
/// ready (or, above the target after SIGTTOU, at once), then drains.
#[derive(Debug)]
struct Retire {
    why: String,
    /// When it got SIGTERM; SIGKILL follows `graceful_timeout` + [`DRAIN_MARGIN`] later.
    signalled: Option<Instant>,
    /// Whether a replacement takes its position (not after SIGTTOU).
    replaced: bool,
}

/// The supervisor's state and policy; see the module docs.
pub(crate) struct Planner {
    /// How many workers should be running.
    target: usize,
    graceful_timeout: Duration,
    workers: Vec<Worker>,
    /// Per position.
    backoff: Vec<Backoff>,
    stopping: Option<Stopping>,
    /// Set when a worker failed to boot: stop, then report this.
    failed: Option<String>,
    /// What the current event asks for, handed out when it is planned.
    actions: Vec<Action>,
}

impl Planner {
    pub(crate) fn new(target: usize, graceful_timeout: Duration) -> Planner {
        Planner {
            target,
            graceful_timeout,
            workers: Vec::new(),
            backoff: Vec::new(),
            stopping: None,
            failed: None,
            actions: Vec::new(),
        }
    }

    pub(crate) fn workers(&self) -> &[Worker] {
        &self.workers
    }

    /// The positions whose worker accepts connections: below the target,
    /// not draining, not being killed. Sorted, each once.
    pub(crate) fn serving_positions(&self) -> Vec<usize> {
        let mut positions: Vec<usize> = self
            .workers
            .iter()
            .filter(|w| w.position < self.target && w.kill_at.is_none())
            .filter(|w| w.retire.as_ref().is_none_or(|r| r.signalled.is_none()))
            .map(|w| w.position)
            .collect();
        positions.sort_unstable();
        positions.dedup();
        positions
    }

    pub(crate) fn worker(&self, pid: Pid) -> Option<&Worker> {
        self.workers.iter().find(|w| w.pid == pid)
    }

    /// The workers whose health [`tick`](Self::tick) wants judged: none
    /// while stopping, none already being killed.
    pub(crate) fn due_for_check(&self) -> impl Iterator<Item = &Worker> {
        let watching = self.stopping.is_none();
        self.workers
            .iter()
            .filter(move |w| watching && w.kill_at.is_none())
    }

    /// A child ended; `booted` says whether it had got past starting.
    pub(crate) fn worker_died(
        &mut self,
        pid: Pid,
        death: Death,
        booted: bool,
        now: Instant,
    ) -> Vec<Action> {
        let Some(at) = self.workers.iter().position(|w| w.pid == pid) else {
            self.log(Level::Debug, format!("reaped unknown child {pid}: {death}"));
            return self.planned();
        };
        let worker = self.workers.swap_remove(at);
        let uptime = now.duration_since(worker.spawned);
        let expected = self.stopping.is_some() || worker.retire.is_some();
        self.actions.push(Action::RecordDeath(DeadWorker {
            position: worker.position,
            slot: worker.slot,
            pid,
            death,
            uptime,
            expected,
        }));
        if death == Death::Exited(EXIT_BOOT_FAILURE) && !booted {
            let why = format!(
                "worker {} failed to start (exit code {EXIT_BOOT_FAILURE}); see the log above",
                worker.position
            );
            self.fail(now, why);
        } else if !expected {
            self.schedule_respawn(worker.position, uptime, now);
        }
        self.planned()
    }

    pub(crate) fn command(&mut self, command: Command, now: Instant) -> Vec<Action> {
        match command {
            Command::StopFast => self.stop_fast(now),
            Command::Stop => match self.stopping {
                None => self.stop_gracefully(now),
                // Ctrl+C twice: don't make the user wait out the drain.
                Some(stopping) if stopping.is_graceful() => self.stop_fast(now),
                Some(_) => {}
            },
            // It would start workers the stop must end.
            Command::Reload if self.stopping.is_some() => {
                self.log(Level::Info, "ignoring SIGHUP: stopping".into());
            }
            Command::Reload => self.actions.push(Action::Reload),
            Command::AddWorker => self.resize(self.target + 1),
            Command::RemoveWorker => self.resize(self.target.saturating_sub(1)),
        }
        self.planned()
    }

    /// The config file was re-read after [`Action::Reload`]: retire every
    /// worker in favour of one started with the new config.
    pub(crate) fn config_reloaded(
        &mut self,
        workers: usize,
        graceful_timeout: Duration,
        now: Instant,
    ) -> Vec<Action> {
        self.target = workers.clamp(1, MAX_WORKERS);
        self.graceful_timeout = graceful_timeout;
        self.backoff.fill(Backoff::default());
        for i in 0..self.workers.len() {
            self.retire(i, "configuration reloaded (SIGHUP)".into());
        }
        self.spawn_missing(now);
        self.planned()
    }

    /// The clock's turn, after the deaths and the signals: end a finished
    /// stop or escalate one in progress; otherwise act on the health
    /// `verdicts` (a worker missing from them is healthy), spawn the
    /// positions that need a worker, and drain the retiring workers whose
    /// replacement is among the `ready`.
    pub(crate) fn tick(
        &mut self,
        now: Instant,
        verdicts: &[(Pid, Verdict)],
        ready: &[Pid],
    ) -> Vec<Action> {
        match self.stopping {
            Some(_) if self.workers.is_empty() => {
                let result = self.failed.take().map_or(Ok(()), Err);
                self.actions.push(Action::Exit(result));
            }
            Some(_) => self.escalate_stop(now),
            None => {
                self.supervise(now, verdicts);
                self.spawn_missing(now);
                self.retire_replaced(now, ready);
            }
        }
        self.planned()
    }

    pub(crate) fn worker_spawned(
        &mut self,
        position: usize,
        pid: Pid,
        slot: usize,
        request_limit: u64,
        now: Instant,
    ) {
        self.workers.push(Worker {
            position,
            slot,
            pid,
            spawned: now,
            request_limit,
            retire: None,
            kill_at: None,
        });
    }

    /// The fork failed: try that position again a little later.
    pub(crate) fn spawn_failed(&mut self, position: usize, now: Instant) {
        if let Some(backoff) = self.backoff.get_mut(position) {
            backoff.after_fork_failure(now);
        }
    }

    /// When the next tick is due at the latest: the idle wake-up, or a
    /// respawn delay or stop deadline that comes sooner.
    pub(crate) fn next_wake(&self, now: Instant) -> Instant {
        let respawns = self.backoff.iter().filter_map(Backoff::respawn_at);
        let stop = self.stopping.map(|stopping| stopping.next_check());
        respawns.chain(stop).fold(now + IDLE_WAKE, Instant::min)
    }

    fn planned(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    fn log(&mut self, level: Level, line: String) {
        self.actions.push(Action::Log(level, line));
    }

    fn signal(&mut self, pid: Pid, signal: Signal) {
        self.actions.push(Action::Signal { pid, signal });
    }

    fn signal_all(&mut self, signal: Signal) {
        let signals = self
            .workers
            .iter()
            .map(|w| Action::Signal { pid: w.pid, signal });
        self.actions.extend(signals);
    }

    /// Crash-loop guard: a worker that died young delays the next spawn of
    /// its position; see [`Backoff`].
    fn schedule_respawn(&mut self, position: usize, uptime: Duration, now: Instant) {
        let Some(backoff) = self.backoff.get_mut(position) else {
            return;
        };
        if let Some(delay) = backoff.after_death(uptime, now) {
            let line = format!(
                "worker {position} died {:.1}s after its spawn: crash loop? respawning in {delay:?}",
                uptime.as_secs_f64(),
            );
            self.log(Level::Error, line);
        }
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
            if !staffed && self.backoff[position].is_due(now) {
                self.backoff[position].clear();
                self.actions.push(Action::Spawn { position });
            }
        }
    }

    /// SIGTTIN / SIGTTOU: change the number of workers, never below one.
    fn resize(&mut self, target: usize) {
        if self.stopping.is_some() {
            return;
        }
        let target = target.clamp(1, MAX_WORKERS);
        self.log(Level::Info, format!("workers: {} -> {target}", self.target));
        self.target = target;
        for i in 0..self.workers.len() {
            if self.workers[i].position >= target {
                self.retire(i, "fewer workers wanted (SIGTTOU)".into());
            }
        }
    }

    /// The watchdog and the recycling verdicts, once per tick.
    fn supervise(&mut self, now: Instant, verdicts: &[(Pid, Verdict)]) {
        for i in 0..self.workers.len() {
            let worker = &mut self.workers[i];
            let pid = worker.pid;
            if let Some(kill_at) = worker.kill_at {
                if now >= kill_at {
                    worker.kill_at = Some(now + ABORT_GRACE);
                    self.signal(pid, Signal::SIGKILL);
                }
                continue;
            }
            match verdicts.iter().find(|(p, _)| *p == pid).map(|(_, v)| v) {
                None | Some(Verdict::Healthy) => {}
                Some(Verdict::Hung(silent)) => {
                    worker.kill_at = Some(now + ABORT_GRACE);
                    let line = format!(
                        "worker {} (pid {pid}) sent no heartbeat for {:.1}s: killing it (SIGABRT)",
                        worker.position,
                        silent.as_secs_f64()
                    );
                    self.log(Level::Error, line);
                    self.signal(pid, Signal::SIGABRT);
                }
                Some(Verdict::Replace(why)) => self.retire(i, why.clone()),
            }
        }
    }

    /// Marks worker `i` for replacement; see [`Retire`].
    fn retire(&mut self, i: usize, why: String) {
        let worker = &mut self.workers[i];
        if worker.retire.is_some() {
            return;
        }
        let line = format!(
            "retiring worker {} (pid {}): {why}",
            worker.position, worker.pid
        );
        worker.retire = Some(Retire {
            why,
            signalled: None,
            replaced: worker.position < self.target,
        });
        self.log(Level::Info, line);
    }

    /// Drains retiring workers whose replacement is ready, and kills those
    /// that outstay `graceful_timeout`.
    fn retire_replaced(&mut self, now: Instant, ready: &[Pid]) {
        let ready: Vec<usize> = self
            .workers
            .iter()
            .filter(|w| w.retire.is_none() && ready.contains(&w.pid))
            .map(|w| w.position)
            .collect();
        let graceful = self.graceful_timeout;
        let kill_after = graceful + DRAIN_MARGIN;
        for i in 0..self.workers.len() {
            let worker = &mut self.workers[i];
            let (position, pid) = (worker.position, worker.pid);
            let Some(retire) = &mut worker.retire else {
                continue;
            };
            match retire.signalled {
                None if !retire.replaced || ready.contains(&position) => {
                    retire.signalled = Some(now);
                    let line = format!("draining worker {position} (pid {pid}): {}", retire.why);
                    self.log(Level::Debug, line);
                    self.signal(pid, Signal::SIGTERM);
                }
                Some(at) if now >= at + kill_after && worker.kill_at.is_none() => {
                    worker.kill_at = Some(now + ABORT_GRACE);
                    let line = format!(
                        "worker {position} (pid {pid}) did not drain within {graceful:?}: killing it"
                    );
                    self.log(Level::Warn, line);
                    self.signal(pid, Signal::SIGKILL);
                }
                _ => {}
            }
        }
    }

    fn stop_gracefully(&mut self, now: Instant) {
        let line = format!(
            "stopping gracefully: draining {} worker(s), at most {:?}",
            self.workers.len(),
            self.graceful_timeout
        );
        self.log(Level::Info, line);
        self.signal_all(Signal::SIGTERM);
        let kill_at = now + self.graceful_timeout + DRAIN_MARGIN;
        self.stopping = Some(Stopping::graceful(kill_at));
    }

    fn stop_fast(&mut self, now: Instant) {
        self.log(Level::Info, "stopping fast".into());
        self.signal_all(Signal::SIGQUIT);
        self.stopping = Some(Stopping::fast(now));
    }

    /// A worker failed to boot: respawning would fail the same way.
    fn fail(&mut self, now: Instant, why: String) {
        self.log(Level::Error, format!("{why}; stopping"));
        if self.failed.is_none() {
            self.failed = Some(why);
        }
        if self.stopping.is_none() {
            self.stop_fast(now);
        }
    }

    /// Past a stop's deadline, SIGKILL whoever is left.
    fn escalate_stop(&mut self, now: Instant) {
        let Some(stopping) = &mut self.stopping else {
            return;
        };
        if !stopping.escalate(now) {
            return;
        }
        if stopping.is_graceful() {
            let line = format!(
                "graceful stop timed out; killing {} worker(s)",
                self.workers.len()
            );
            self.log(Level::Warn, line);
        }
        self.signal_all(Signal::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACEFUL: Duration = Duration::from_secs(30);

    fn pid(n: i32) -> Pid {
        Pid::from_raw(n)
    }

    fn killed() -> Death {
        Death::Signaled {
            signal: 9,
            core_dumped: false,
        }
    }

    /// A planner and a fake process table: every spawn it asks for
    /// "succeeds" with the next pid from 100 up, as the master would report.
    struct Harness {
        planner: Planner,
        next_pid: i32,
        t0: Instant,
    }

    impl Harness {
        /// `target` workers, spawned at t0.
        fn new(target: usize) -> Harness {
            let mut harness = Harness {
                planner: Planner::new(target, GRACEFUL),
                next_pid: 100,
                t0: Instant::now(),
            };
            let spawned = harness.tick(0);
            assert_eq!(spawned.len(), target);
            harness
        }

        fn at(&self, ms: u64) -> Instant {
            self.t0 + Duration::from_millis(ms)
        }

        /// Carries out the spawns in `actions` at `ms`; returns the rest,
        /// without the log lines.
        fn settle(&mut self, actions: Vec<Action>, ms: u64) -> Vec<Action> {
            let mut rest = Vec::new();
            for action in actions {
                match action {
                    Action::Spawn { position } => {
                        let pid = pid(self.next_pid);
                        self.next_pid += 1;
                        let now = self.at(ms);
                        self.planner.worker_spawned(position, pid, 0, 0, now);
                        rest.push(action);
                    }
                    Action::Log(..) => {}
                    other => rest.push(other),
                }
            }
            rest
        }

        fn tick_with(
            &mut self,
            ms: u64,
            verdicts: &[(Pid, Verdict)],
            ready: &[Pid],
        ) -> Vec<Action> {
            let actions = self.planner.tick(self.at(ms), verdicts, ready);
            self.settle(actions, ms)
        }

        fn tick(&mut self, ms: u64) -> Vec<Action> {
            self.tick_with(ms, &[], &[])
        }

        fn command(&mut self, command: Command, ms: u64) -> Vec<Action> {
            let actions = self.planner.command(command, self.at(ms));
            self.settle(actions, ms)
        }

        fn die(&mut self, pid: Pid, death: Death, ms: u64) -> Vec<Action> {
            let actions = self.planner.worker_died(pid, death, true, self.at(ms));
            self.settle(actions, ms)
        }

        fn pid_at(&self, position: usize) -> Pid {
            let worker = self
                .planner
                .workers
                .iter()
                .rev()
                .find(|w| w.position == position);
            worker.expect("a worker at that position").pid
        }

        fn pids(&self) -> Vec<Pid> {
            self.planner.workers.iter().map(|w| w.pid).collect()
        }
    }

    fn spawns(actions: &[Action]) -> Vec<usize> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Spawn { position } => Some(*position),
                _ => None,
            })
            .collect()
    }

    fn signals(actions: &[Action]) -> Vec<(Pid, Signal)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Signal { pid, signal } => Some((*pid, *signal)),
                _ => None,
            })
            .collect()
    }

    fn logs(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Log(_, line) => Some(line.clone()),
                _ => None,
            })
            .collect()
    }

    /// Kills the worker at `position` at `ms`; returns when (in ms) its
    /// position was respawned, ticking every millisecond.
    fn respawn_delay(h: &mut Harness, position: usize, ms: u64) -> u64 {
        let died = h.die(h.pid_at(position), killed(), ms);
        assert!(matches!(&died[..], [Action::RecordDeath(dead)] if !dead.expected));
        for later in ms.. {
            if spawns(&h.tick(later)) == [position] {
                return later - ms;
            }
        }
        unreachable!()
    }

    #[test]
    fn the_first_tick_spawns_every_position() {
        let mut planner = Planner::new(3, GRACEFUL);
        let actions = planner.tick(Instant::now(), &[], &[]);
        assert_eq!(spawns(&actions), [0, 1, 2]);
    }

    #[test]
    fn a_worker_dying_young_delays_its_respawn_doubling_up_to_10s() {
        let mut h = Harness::new(2);
        let mut now = 1000;
        let mut delays = Vec::new();
        for _ in 0..9 {
            let delay = respawn_delay(&mut h, 0, now);
            delays.push(delay);
            now += delay + 1000; // each one lives 1 s: still young
        }
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
        );
        // The other position never waited.
        assert_eq!(respawn_delay(&mut h, 1, now), 0);
    }

    #[test]
    fn a_worker_that_lived_5s_resets_the_backoff() {
        let mut h = Harness::new(1);
        assert_eq!(respawn_delay(&mut h, 0, 1000), 100);
        assert_eq!(respawn_delay(&mut h, 0, 2000), 200);
        // Spawned at 2200, dies at 7200: stable.
        assert_eq!(respawn_delay(&mut h, 0, 7200), 0);
        assert_eq!(respawn_delay(&mut h, 0, 8000), 100);
    }

    #[test]
    fn a_crash_loop_is_logged_and_wakes_the_master_in_time() {
        let mut h = Harness::new(1);
        let dead = h.pid_at(0);
        let actions = h.planner.worker_died(dead, killed(), true, h.at(1000));
        assert!(
            logs(&actions)[0].contains("crash loop? respawning in 100ms"),
            "{actions:?}"
        );
        assert_eq!(h.planner.next_wake(h.at(1050)), h.at(1100));
    }

    #[test]
    fn a_failed_fork_is_retried_after_100ms() {
        let mut planner = Planner::new(1, GRACEFUL);
        let t0 = Instant::now();
        assert_eq!(spawns(&planner.tick(t0, &[], &[])), [0]);
        planner.spawn_failed(0, t0);
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(spawns(&planner.tick(at(99), &[], &[])), [] as [usize; 0]);
        assert_eq!(spawns(&planner.tick(at(100), &[], &[])), [0]);
    }

    #[test]
    fn a_recycled_worker_drains_only_once_its_replacement_is_ready() {
        let mut h = Harness::new(2);
        let old = h.pid_at(1);
        let verdict = [(old, Verdict::Replace("served 10 requests".into()))];
        // The replacement starts at once; the old one keeps serving.
        assert_eq!(
            h.tick_with(1000, &verdict, &[]),
            [Action::Spawn { position: 1 }]
        );
        let new = h.pid_at(1);
        assert_ne!(new, old);
        // The old one is retired once: the same verdict again changes nothing.
        assert_eq!(h.tick_with(1250, &verdict, &[old]), []);
        // Ready: now the old one drains.
        let drained = h.tick_with(1500, &[], &[old, new]);
        assert_eq!(signals(&drained), [(old, Signal::SIGTERM)]);
        // SIGKILL only past graceful_timeout + DRAIN_MARGIN, and once.
        let deadline = 1500 + (GRACEFUL + DRAIN_MARGIN).as_millis() as u64;
        assert_eq!(h.tick_with(deadline - 1, &[], &[new]), []);
        assert_eq!(
            signals(&h.tick_with(deadline, &[], &[new])),
            [(old, Signal::SIGKILL)]
        );
        // Its death was expected: no respawn, no backoff.
        let died = h.die(old, killed(), deadline + 10);
        assert!(matches!(&died[..], [Action::RecordDeath(dead)] if dead.expected));
        assert_eq!(h.tick(deadline + 20), []);
    }

    #[test]
    fn a_hung_request_replaces_the_worker_the_same_way() {
        let mut h = Harness::new(1);
        let old = h.pid_at(0);
        let why = "a request has been running for 31.0s (hung thread?)";
        let actions = h
            .planner
            .tick(h.at(1000), &[(old, Verdict::Replace(why.into()))], &[old]);
        assert!(logs(&actions)[0].contains("hung thread"), "{actions:?}");
        // Never a SIGTERM before the replacement is ready.
        assert_eq!(signals(&actions), []);
        let actions = h.settle(actions, 1000);
        assert_eq!(spawns(&actions), [0]);
        let new = h.pid_at(0);
        assert_eq!(
            signals(&h.tick_with(1100, &[], &[new])),
            [(old, Signal::SIGTERM)]
        );
    }

    #[test]
    fn a_hung_worker_gets_sigabrt_then_sigkill() {
        let mut h = Harness::new(1);
        let hung = h.pid_at(0);
        let verdict = [(hung, Verdict::Hung(Duration::from_secs(31)))];
        assert_eq!(
            signals(&h.tick_with(1000, &verdict, &[])),
            [(hung, Signal::SIGABRT)]
        );
        // Not judged again while it is being killed.
        assert!(h.planner.due_for_check().next().is_none());
        assert_eq!(h.tick_with(1999, &verdict, &[]), []);
        assert_eq!(signals(&h.tick(2000)), [(hung, Signal::SIGKILL)]);
        assert_eq!(signals(&h.tick(3000)), [(hung, Signal::SIGKILL)]);
        // Its death was not asked for: respawned.
        let died = h.die(hung, killed(), 3010);
        assert!(matches!(&died[..], [Action::RecordDeath(dead)] if !dead.expected));
    }

    #[test]
    fn ttin_adds_a_position_and_ttou_never_goes_below_one() {
        let mut h = Harness::new(1);
        let actions = h.planner.command(Command::AddWorker, h.at(1000));
        assert_eq!(logs(&actions), ["workers: 1 -> 2"]);
        assert_eq!(spawns(&h.tick(1000)), [1]);
        // The surplus worker drains at once: nobody replaces it.
        let surplus = h.pid_at(1);
        let actions = h.planner.command(Command::RemoveWorker, h.at(2000));
        assert_eq!(logs(&actions)[0], "workers: 2 -> 1");
        assert_eq!(signals(&h.tick(2000)), [(surplus, Signal::SIGTERM)]);
        h.die(surplus, Death::Exited(0), 2100);
        assert_eq!(h.tick(2200), []);
        // The floor.
        let actions = h.planner.command(Command::RemoveWorker, h.at(3000));
        assert_eq!(logs(&actions), ["workers: 1 -> 1"]);
        assert_eq!(h.tick(3000), []);
        assert_eq!(h.planner.workers().len(), 1);
    }

    #[test]
    fn fast_stop_rechecks_at_50ms_doubling_and_kills_past_1s() {
        let mut h = Harness::new(2);
        let pids = h.pids();
        let quit = h.command(Command::StopFast, 0);
        assert_eq!(
            signals(&quit),
            pids.iter()
                .map(|&p| (p, Signal::SIGQUIT))
                .collect::<Vec<_>>()
        );
        // Tick whenever the master would wake; note the checks and kills.
        let mut now = h.t0;
        let mut wakes = Vec::new();
        let mut first_kill = None;
        while now < h.at(2000) {
            now = h.planner.next_wake(now);
            let ms = now.duration_since(h.t0).as_millis() as u64;
            wakes.push(ms);
            let killed = signals(&h.tick(ms));
            if !killed.is_empty() && first_kill.is_none() {
                assert!(killed.iter().all(|&(_, s)| s == Signal::SIGKILL));
                first_kill = Some(ms);
            }
        }
        // Checks at 50, 150, 350, 750, 1550; the rest are idle wake-ups.
        assert_eq!(wakes[..9], [50, 150, 350, 600, 750, 1000, 1250, 1500, 1550]);
        assert_eq!(
            first_kill,
            Some(1550),
            "SIGKILL at the first check past 1 s"
        );
        // Once everyone is gone, the master exits cleanly.
        for pid in pids {
            h.die(pid, killed(), 2000);
        }
        assert_eq!(h.tick(2001), [Action::Exit(Ok(()))]);
    }

    #[test]
    fn graceful_stop_drains_then_kills_and_a_second_request_stops_fast() {
        let mut h = Harness::new(2);
        let pids = h.pids();
        let term = h.command(Command::Stop, 0);
        assert!(signals(&term).iter().all(|&(_, s)| s == Signal::SIGTERM));
        assert_eq!(signals(&term).len(), 2);
        // Deaths while stopping are expected and not respawned.
        let died = h.die(pids[0], Death::Exited(0), 500);
        assert!(matches!(&died[..], [Action::RecordDeath(dead)] if dead.expected));
        assert_eq!(h.tick(500), []);
        // Past graceful_timeout + DRAIN_MARGIN: SIGKILL, again every IDLE_WAKE.
        let deadline = (GRACEFUL + DRAIN_MARGIN).as_millis() as u64;
        assert_eq!(h.tick(deadline - 1), []);
        assert_eq!(signals(&h.tick(deadline)), [(pids[1], Signal::SIGKILL)]);
        assert_eq!(h.planner.next_wake(h.at(deadline)), h.at(deadline + 250));
        // Ctrl+C twice: fast; a third changes nothing.
        let mut h = Harness::new(1);
        let only = h.pid_at(0);
        h.command(Command::Stop, 0);
        assert_eq!(
            signals(&h.command(Command::Stop, 10)),
            [(only, Signal::SIGQUIT)]
        );
        assert_eq!(h.command(Command::Stop, 20), []);
        h.die(only, Death::Exited(0), 30);
        assert_eq!(h.tick(30), [Action::Exit(Ok(()))]);
    }

    #[test]
    fn a_worker_that_cannot_boot_stops_the_master_with_an_error() {
        let mut h = Harness::new(2);
        let [first, second] = h.pids()[..] else {
            unreachable!()
        };
        let actions =
            h.planner
                .worker_died(first, Death::Exited(EXIT_BOOT_FAILURE), false, h.at(50));
        assert!(
            logs(&actions)[0].contains("worker 0 failed to start (exit code 3)"),
            "{actions:?}"
        );
        // Fast stop for the rest, and no respawn.
        assert_eq!(signals(&actions), [(second, Signal::SIGQUIT)]);
        assert_eq!(spawns(&h.tick(50)), [] as [usize; 0]);
        h.die(second, Death::Exited(0), 60);
        let exit = h.tick(60);
        assert!(
            matches!(&exit[..], [Action::Exit(Err(why))] if why.contains("failed to start")),
            "{exit:?}"
        );
    }

    #[test]
    fn exit_code_3_after_booting_is_an_ordinary_crash() {
        let mut h = Harness::new(1);
        let died = h.die(h.pid_at(0), Death::Exited(EXIT_BOOT_FAILURE), 10_000);
        assert!(matches!(&died[..], [Action::RecordDeath(_)]));
        assert_eq!(spawns(&h.tick(10_000)), [0]);
    }

    #[test]
    fn reload_starts_a_new_generation_and_drains_the_old_once_ready() {
        let mut h = Harness::new(2);
        let old = h.pids();
        assert_eq!(h.command(Command::Reload, 1000), [Action::Reload]);
        // The new config asks for 3: every old worker is retired, every
        // position gets a new one at once.
        let actions = h.planner.config_reloaded(3, GRACEFUL, h.at(1000));
        assert_eq!(logs(&actions).len(), 2, "{actions:?}");
        assert_eq!(spawns(&h.settle(actions, 1000)), [0, 1, 2]);
        let new = |h: &Harness| (0..3).map(|p| h.pid_at(p)).collect::<Vec<_>>();
        let new = new(&h);
        assert!(new.iter().all(|p| !old.contains(p)));
        // Nobody ready yet: the old generation keeps serving.
        assert_eq!(h.tick_with(1250, &[], &old), []);
        // Position 0's replacement is ready: only its predecessor drains.
        assert_eq!(
            signals(&h.tick_with(1500, &[], &[new[0]])),
            [(old[0], Signal::SIGTERM)]
        );
        assert_eq!(
            signals(&h.tick_with(1750, &[], &[new[0], new[1]])),
            [(old[1], Signal::SIGTERM)]
        );
    }

    #[test]
    fn reload_resets_the_backoff() {
        let mut h = Harness::new(1);
        assert_eq!(respawn_delay(&mut h, 0, 1000), 100);
        h.die(h.pid_at(0), killed(), 2000);
        assert_eq!(spawns(&h.tick(2000)), [] as [usize; 0]);
        let actions = h.planner.config_reloaded(1, GRACEFUL, h.at(2010));
        assert_eq!(spawns(&actions), [0]);
    }

    #[test]
    fn sighup_while_stopping_is_ignored() {
        let mut h = Harness::new(1);
        h.command(Command::Stop, 0);
        let actions = h.planner.command(Command::Reload, h.at(10));
        assert_eq!(
            actions,
            [Action::Log(Level::Info, "ignoring SIGHUP: stopping".into())]
        );
        // Resizing is ignored too, silently.
        assert_eq!(h.planner.command(Command::AddWorker, h.at(20)), []);
    }

    #[test]
    fn an_unknown_child_is_only_logged() {
        let mut planner = Planner::new(1, GRACEFUL);
        let actions = planner.worker_died(pid(7), killed(), true, Instant::now());
        assert!(matches!(&actions[..], [Action::Log(Level::Debug, _)]));
    }
}
