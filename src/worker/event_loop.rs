//! The worker's mio loop, run by the main thread of every worker.
//!
//! It accepts until `WouldBlock`, parks idle connections, sweeps deadlines
//! and watches its [`Lifecycle`]. What happens to a connection that has
//! input is the one thing the architectures do differently, chosen once
//! by a `match` on the mode ([`Scheduler`]):
//! - process and thread-loops mode drive it right here, on this thread (the nginx worker);
//! - thread mode moves it to a pool thread and gets it back when it would
//!   block (gunicorn `gthread`, Apache `event`).
//!
//! Connections are registered once, for read and write readiness,
//! edge-triggered, and never re-registered. A connection that stopped early
//! to let others run goes on a ready list; one that got an event while a
//! pool thread had it is marked dirty and looked at again when it returns.
//! In thread mode, a connection with work that finds the pool's queue full
//! waits in the loop's overflow queue, in its own state ([`Entry::Queued`]):
//! queued once, served in order, and never timed out while it waits.
//!
//! A lingering close ([`Next::Linger`]) and an event stream
//! ([`Next::Events`]) are always driven here, on the loop's thread, in
//! every mode: each drive only reads and discards a bounded amount, or
//! writes an event of a few bytes, and neither may take a pool thread
//! while it waits for its client or for news. When the worker's change
//! feed wakes the loop (live reload), every stream it holds is driven,
//! and every one on a pool thread is looked at again when it comes back.
//!
//! Fairness: a drive is one turn of its connection (bounded in requests,
//! time and bytes: see `connection`); one that yielded goes to the back of
//! the line (the ready list, served after the next batch of events; in
//! thread mode, behind the connections already waiting for the pool). The
//! loop heartbeats between drives ([`BEAT_EVERY`]), not only once per
//! batch: a batch may hold several slow turns, and the watchdog must see
//! the loop turning between them. After a turn that had events to act on,
//! the loop yields the core (`sched_yield`) to whoever shares it: several
//! workers (or loops) on one core then take turns by the batch, not by the
//! scheduler's slice of milliseconds.

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use nix::sched::sched_yield;
use slab::Slab;

use super::connection::{Connection, DRAIN_IDLE_GRACE, Next, ServeCtx};
use super::pool::{Done, Job, Pool};
use super::{Control, Lifecycle};
use crate::config::{Accept, Config, Mode};

const LISTENER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);
const WAKER: Token = Token(usize::MAX - 3);
const CHANGES: Token = Token(usize::MAX - 4);
/// Thread mode's overflow limit: this many waiting connections per pool
/// thread, and never fewer than [`MIN_OVERFLOW_LIMIT`] in all.
const OVERFLOW_PER_THREAD: usize = 16;
const MIN_OVERFLOW_LIMIT: usize = 64;
/// Heartbeat at most this often between drives (besides the beat of every
/// supervision check): often enough that the watchdog sees a loop running
/// slow turns one after another turning, rarely enough to cost nothing.
const BEAT_EVERY: Duration = Duration::from_millis(100);

/// What a thread-loops worker's main thread tells its loops (see
/// `loops`): drain, waking each through the waker it registered.
#[derive(Default)]
pub(crate) struct LoopControl {
    draining: AtomicBool,
    wakers: Mutex<Vec<Arc<Waker>>>,
}

impl LoopControl {
    /// A loop registers the waker the main thread wakes it with.
    pub(crate) fn add_loop(&self, waker: Arc<Waker>) {
        self.wakers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(waker);
    }

    /// A loop's turn at supervision: the worker's word. (The loop beats in
    /// its own row between drives; exiting at once is the main thread's
    /// business: it ends the process.)
    pub(crate) fn check(&self) -> Control {
        if self.draining.load(Ordering::Acquire) {
            Control::Drain
        } else {
            Control::Run
        }
    }

    /// Asks every loop to drain, once.
    pub(super) fn drain(&self) {
        if self.draining.swap(true, Ordering::AcqRel) {
            return;
        }
        let wakers = self
            .wakers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for waker in wakers.iter() {
            if let Err(err) = waker.wake() {
                log::warn!("cannot wake a loop to drain: {err}");
            }
        }
    }
}

/// Who tells this loop when to drain or exit.
pub(crate) enum Supervision {
    /// The worker's only loop: it watches the signals, its master and the
    /// drain deadline itself, and heartbeats for the worker.
    Own(Lifecycle),
    /// Loop `row` of a thread-loops worker: the worker's main thread
    /// watches and tells it through the [`LoopControl`] (waking it with a
    /// [`Waker`]); the loop heartbeats in its own scoreboard row.
    Shared {
        control: Arc<LoopControl>,
        row: usize,
    },
}

/// Where connections with work are served; see the module docs.
enum Scheduler {
    Inline,
    Pool(Pool),
}

/// A connection as the loop sees it.
enum Entry {
    /// Here, waiting for readiness or its deadline. Boxed once at accept,
    /// so each hand-off to and from the pool moves a pointer.
    Parked(Box<Connection>),
    /// On a pool thread; `dirty` if an event arrived meanwhile.
    InPool { dirty: bool },
    /// Thread mode: has work, waiting in `overflow` for room in the pool's
    /// queue. Its deadline doesn't apply (the sweep skips it); events for
    /// it need nothing more (it will be driven).
    Queued(Box<Connection>),
}

/// Whether the listener is registered, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Accepting {
    Yes,
    /// At `max_connections`, or too many connections wait for the pool:
    /// resumes when a connection closes or the overflow shrinks.
    Full,
    /// Out of file descriptors: retry after a pause instead of spinning.
    PausedUntil(Instant),
    /// Draining: never again.
    Stopped,
}

pub(crate) struct EventLoop {
    ctx: Arc<ServeCtx>,
    supervision: Supervision,
    /// `accept = "reuseport"`: this loop's listener is its own, and nobody
    /// else accepts from it; so when it drains, it first takes what is
    /// already queued there.
    own_listener: bool,
    poll: Poll,
    /// Usually one; `localhost` is two (127.0.0.1 and `[::1]`), all under
    /// the one LISTENER token: an event on it drains each in turn.
    listeners: Vec<TcpListener>,
    scheduler: Scheduler,
    accepting: Accepting,
    conns: Slab<Entry>,
    max_connections: usize,
    /// Parked connections to serve without waiting for an event: new ones,
    /// ones that yielded, ones that came back dirty.
    ready: Vec<usize>,
    /// Thread mode: connections waiting for room in the pool's queue, each
    /// once, all in the [`Entry::Queued`] state.
    overflow: VecDeque<usize>,
    /// Past this many waiting, stop accepting; resume below half of it.
    /// Not at the first one: busy keep-alive clients would keep the
    /// overflow from ever emptying, and a new client (or `/-/status`)
    /// would wait for as long as the load lasts. Below the limit a new
    /// connection queues behind the busy ones, first come first served.
    overflow_limit: usize,
    next_sweep: Instant,
    /// When the loop heartbeats next between drives.
    next_beat: Instant,
    /// Thread mode: connections on a pool thread that got an event
    /// meanwhile. While there are any, a sleeping loop asks to be woken by
    /// every connection that comes back (it has work for them at once).
    dirty_in_pool: usize,
}

impl EventLoop {
    /// Sets the loop up (and the pool, in thread mode). An error here is a
    /// boot failure.
    pub(crate) fn new(
        ctx: Arc<ServeCtx>,
        mut listeners: Vec<TcpListener>,
        supervision: Supervision,
        config: &Config,
        position: usize,
    ) -> io::Result<EventLoop> {
        let poll = Poll::new()?;
        for listener in &mut listeners {
            poll.registry()
                .register(listener, LISTENER, Interest::READABLE)?;
        }
        match &supervision {
            Supervision::Own(life) => {
                let signal_fd = life.signals.as_raw_fd();
                poll.registry()
                    .register(&mut SourceFd(&signal_fd), SIGNALS, Interest::READABLE)?;
            }
            Supervision::Shared { control, .. } => {
                control.add_loop(Arc::new(Waker::new(poll.registry(), SIGNALS)?));
            }
        }
        if let Some(feed) = &ctx.changes {
            let fd = feed.wake_fd();
            poll.registry()
                .register(&mut SourceFd(&fd), CHANGES, Interest::READABLE)?;
        }
        let scheduler = match config.mode {
            Mode::Process | Mode::ThreadLoops => Scheduler::Inline,
            Mode::Thread => {
                let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
                Scheduler::Pool(Pool::start(
                    &ctx,
                    position,
                    config.threads,
                    config.max_connections,
                    waker,
                )?)
            }
        };
        Ok(EventLoop {
            ctx,
            supervision,
            own_listener: config.accept == Accept::Reuseport,
            poll,
            listeners,
            scheduler,
            accepting: Accepting::Yes,
            conns: Slab::with_capacity(config.max_connections.min(4096)),
            max_connections: config.max_connections,
            ready: Vec::new(),
            overflow: VecDeque::new(),
            overflow_limit: (config.threads * OVERFLOW_PER_THREAD).max(MIN_OVERFLOW_LIMIT),
            next_sweep: Instant::now() + super::TICK,
            next_beat: Instant::now() + BEAT_EVERY,
            dirty_in_pool: 0,
        })
    }

    /// Serves until the worker stops; returns its exit code.
    pub(crate) fn run(mut self) -> io::Result<i32> {
        let mut events = Events::with_capacity(1024);
        if let Supervision::Own(life) = &self.supervision {
            life.ready();
        }
        let ended = loop {
            match self.turn(&mut events) {
                Ok(None) => {}
                Ok(Some(code)) => break Ok(code),
                Err(err) => break Err(err),
            }
        };
        // However the loop ends (drained, recycled, told to exit at once),
        // the lines it and its pool threads have buffered go out first.
        self.ctx.flush_access_log();
        ended
    }

    /// One turn: waits, then acts on what happened. `Some(code)`: the
    /// worker is done and exits with `code`.
    fn turn(&mut self, events: &mut Events) -> io::Result<Option<i32>> {
        self.wait(events)?;
        let now = Instant::now();
        // Fresh from the wait: a slow turn that follows starts the
        // watchdog's count from here, not from the last supervision check.
        self.beat_if_due(now);
        let mut signalled = false;
        for event in events.iter() {
            match event.token() {
                LISTENER => self.accept(now),
                SIGNALS => signalled = true,
                WAKER => {} // finished jobs are collected below
                CHANGES => self.tell_streams(),
                Token(key) => self.on_event(key),
            }
        }
        self.collect_finished(now);
        for key in std::mem::take(&mut self.ready) {
            self.schedule(key);
        }
        if signalled || now >= self.next_sweep {
            let control = match &mut self.supervision {
                Supervision::Own(life) => life.check(now),
                Supervision::Shared { control, .. } => control.check(),
            };
            match control {
                Control::Run => {}
                Control::Drain => self.start_draining(now),
                Control::Exit(code) => return Ok(Some(code)),
            }
        }
        if now >= self.next_sweep {
            self.sweep(now);
            self.resume_accepting(now);
            // The access log's timer: at least every TICK, a line waiting
            // in any serving thread's buffer (a pool thread's too, idle or
            // not) is written out. A thread-loops worker's main thread does
            // it for all its loops (so K loops don't each lock all K
            // buffers).
            if let Supervision::Own(_) = self.supervision {
                self.ctx.flush_access_log();
            }
        }
        if self.ctx.is_draining() && self.conns.is_empty() {
            return Ok(Some(0));
        }
        if !events.is_empty() {
            // A turn that had events lets whoever shares this core run
            // before the next: with more workers (or loops) than cores, each
            // one always has work under load and would otherwise keep the
            // core for a whole scheduler slice (milliseconds) while the
            // other's connections wait. Measured with two workers on one
            // core and 64 connections split between them: p99 5.4 ms
            // without, 1.1-1.2 ms with, the same req/s. Alone on its core,
            // it returns at once.
            let _ = sched_yield();
        }
        Ok(None)
    }

    /// Blocks in `poll` until an event or the next deadline; never blocks
    /// while work is waiting on the ready list or in the pool's return queue.
    fn wait(&mut self, events: &mut Events) -> io::Result<()> {
        let mut timeout = if self.ready.is_empty() {
            self.next_sweep.saturating_duration_since(Instant::now())
        } else {
            Duration::ZERO
        };
        let pool = match &self.scheduler {
            Scheduler::Pool(pool) => Some(pool),
            Scheduler::Inline => None,
        };
        if let Some(pool) = pool {
            // This turn's jobs, all queued by now: one wake-up per thread.
            pool.wake_threads();
        }
        if let Some(pool) = pool
            && !timeout.is_zero()
            && !pool.prepare_to_sleep(self.dirty_in_pool > 0)
        {
            timeout = Duration::ZERO;
        }
        let result = self.poll.poll(events, Some(timeout));
        if let Some(pool) = pool {
            pool.woke_up();
        }
        match result {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {
                events.clear();
                Ok(())
            }
            other => other,
        }
    }

    fn accept(&mut self, now: Instant) {
        for index in 0..self.listeners.len() {
            self.accept_from(index, now);
        }
    }

    /// Accepts from one listener until it would block or accepting stops.
    fn accept_from(&mut self, index: usize, now: Instant) {
        while self.accepting == Accepting::Yes {
            if self.conns.len() >= self.max_connections {
                self.pause(Accepting::Full);
                return;
            }
            match self.listeners[index].accept() {
                Ok((stream, peer)) => {
                    self.count_accepted();
                    // Responses are written whole; don't let Nagle hold the
                    // next keep-alive response back behind a delayed ACK.
                    let _ = stream.set_nodelay(true);
                    let entry = self.conns.vacant_entry();
                    let key = entry.key();
                    let mut conn = Box::new(Connection::new(stream, Some(peer), &self.ctx, now));
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    match self
                        .poll
                        .registry()
                        .register(conn.stream(), Token(key), interest)
                    {
                        Ok(()) => {
                            entry.insert(Entry::Parked(conn));
                            // The request may have arrived with the connection.
                            self.ready.push(key);
                        }
                        Err(err) => log::warn!("cannot register a connection: {err}"),
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if is_fd_exhaustion(&err) => {
                    log::warn!("accept: {err}; pausing accepts for 100 ms");
                    let until = now + Duration::from_millis(100);
                    self.pause(Accepting::PausedUntil(until));
                    self.next_sweep = self.next_sweep.min(until);
                }
                // ECONNABORTED and friends concern one would-be client only.
                Err(err) => log::debug!("accept: {err}"),
            }
        }
    }

    /// The accept strategy's fairness is judged by these counts, kept in
    /// this loop thread's row (the worker's is their sum).
    fn count_accepted(&self) {
        self.ctx
            .slot
            .own_row()
            .accepted
            .fetch_add(1, Ordering::Relaxed);
    }

    fn on_event(&mut self, key: usize) {
        match self.conns.get_mut(key) {
            Some(Entry::InPool { dirty }) => mark_dirty(dirty, &mut self.dirty_in_pool),
            Some(Entry::Parked(_)) => self.schedule(key),
            Some(Entry::Queued(_)) => {} // it will be driven anyway
            None => {}                   // closed earlier in this batch
        }
    }

    /// The change feed has news: every event stream is driven (here, or
    /// when it comes back from the pool). Changes are rare (someone saved
    /// a file), so a look at every connection is cheap enough.
    fn tell_streams(&mut self) {
        for (key, entry) in self.conns.iter_mut() {
            match entry {
                Entry::Parked(conn) if conn.is_streaming() => self.ready.push(key),
                Entry::InPool { dirty } => mark_dirty(dirty, &mut self.dirty_in_pool),
                Entry::Parked(_) | Entry::Queued(_) => {}
            }
        }
    }

    /// Serves a connection: here (process mode, a lingering close, an event
    /// stream) or on the pool. Safe to call more than once for the same
    /// connection.
    fn schedule(&mut self, key: usize) {
        let Some(entry) = self.conns.get_mut(key) else {
            return;
        };
        let inline = matches!(self.scheduler, Scheduler::Inline);
        match entry {
            Entry::Parked(conn) if inline || conn.is_lingering() || conn.is_streaming() => {
                let next = conn.drive(&self.ctx);
                let ended = conn.driven_at();
                self.after_drive(key, next, false);
                self.beat_if_due(ended);
            }
            Entry::Parked(_) => {
                // Those already waiting for room in the queue go first.
                if !self.overflow.is_empty() || !self.submit(key) {
                    self.enqueue(key);
                }
            }
            // Look again when it comes back.
            Entry::InPool { dirty } => mark_dirty(dirty, &mut self.dirty_in_pool),
            Entry::Queued(_) => {} // already waiting its turn
        }
    }

    /// Heartbeats if the last beat between drives is [`BEAT_EVERY`] old;
    /// `at` is a clock reading taken anyway (after the wait, at the end of
    /// a drive): no reading of our own.
    fn beat_if_due(&mut self, at: Instant) {
        if at < self.next_beat {
            return;
        }
        self.next_beat = at + BEAT_EVERY;
        match &self.supervision {
            Supervision::Own(life) => life.heartbeat(),
            Supervision::Shared { row, .. } => self.ctx.slot.rows[*row].heartbeat(),
        }
    }

    /// Thread mode: puts a parked connection in the overflow queue.
    fn enqueue(&mut self, key: usize) {
        let Some(entry) = self.conns.get_mut(key) else {
            return;
        };
        *entry = match std::mem::replace(entry, Entry::InPool { dirty: false }) {
            Entry::Parked(mut conn) => {
                conn.count_idle(false); // it has a request waiting
                Entry::Queued(conn)
            }
            other => {
                *entry = other;
                return; // on a thread or queued already
            }
        };
        self.overflow.push_back(key);
        if self.overflow.len() >= self.overflow_limit {
            self.pause(Accepting::Full);
        }
    }

    /// Thread mode: moves a parked or queued connection to the pool. False
    /// if the pool's queue is full (the connection stays as it was).
    fn submit(&mut self, key: usize) -> bool {
        let (Scheduler::Pool(pool), Some(entry)) = (&self.scheduler, self.conns.get_mut(key))
        else {
            return true;
        };
        let (conn, queued) = match std::mem::replace(entry, Entry::InPool { dirty: false }) {
            Entry::Parked(conn) => (conn, false),
            Entry::Queued(conn) => (conn, true),
            in_pool @ Entry::InPool { .. } => {
                *entry = in_pool;
                return true; // already on a thread
            }
        };
        match pool.submit(Job { key, conn }) {
            Ok(()) => true,
            Err(job) if queued => {
                *entry = Entry::Queued(job.conn);
                false
            }
            Err(job) => {
                *entry = Entry::Parked(job.conn);
                false
            }
        }
    }

    /// Thread mode: takes back the connections the pool is done with, then
    /// refills the queue from the overflow.
    fn collect_finished(&mut self, now: Instant) {
        while let Scheduler::Pool(pool) = &self.scheduler
            && let Some(Done {
                key,
                mut conn,
                next,
            }) = pool.try_done()
        {
            let Some(entry) = self.conns.get_mut(key) else {
                continue;
            };
            let dirty = matches!(entry, Entry::InPool { dirty: true });
            self.dirty_in_pool -= usize::from(dirty);
            if self.ctx.is_draining() {
                // Its thread may have set its deadline before the drain
                // began (a keep-alive's, a stream's ping): the drain's
                // grace applies to it as to those parked then.
                conn.start_draining(now);
            }
            *entry = Entry::Parked(conn);
            self.after_drive(key, next, dirty);
        }
        while let Some(&key) = self.overflow.front() {
            if matches!(self.conns.get(key), Some(Entry::Queued(_))) && !self.submit(key) {
                break; // still full: the next finished job makes room
            }
            self.overflow.pop_front();
        }
        self.resume_accepting(now);
    }

    /// Acts on what a drive said, wherever it ran.
    fn after_drive(&mut self, key: usize, next: Next, dirty: bool) {
        match next {
            Next::Close => self.close(key),
            Next::Yield => self.ready.push(key),
            // An event came while a thread had it: look again.
            Next::Read { .. } | Next::Write | Next::Timer | Next::Linger | Next::Events
                if dirty =>
            {
                self.ready.push(key)
            }
            Next::Read { .. } | Next::Write | Next::Timer | Next::Linger | Next::Events => {
                if let Some(Entry::Parked(conn)) = self.conns.get(key) {
                    self.next_sweep = self.next_sweep.min(conn.deadline());
                }
            }
        }
    }

    fn close(&mut self, key: usize) {
        if let Entry::Parked(mut conn) | Entry::Queued(mut conn) = self.conns.remove(key) {
            let _ = self.poll.registry().deregister(conn.stream());
        }
        if self.accepting == Accepting::Full {
            self.resume_accepting(Instant::now());
        }
    }

    /// Stops accepting. The listener stays registered (a pause can be as
    /// short as one trip through the pool's queue; two `epoll_ctl` calls
    /// per pause would cost more than the events we ignore meanwhile),
    /// except when draining: then it goes for good.
    fn pause(&mut self, why: Accepting) {
        if self.accepting == Accepting::Stopped {
            return;
        }
        if why == Accepting::Stopped {
            for listener in &mut self.listeners {
                let _ = self.poll.registry().deregister(listener);
            }
        }
        self.accepting = why;
    }

    fn resume_accepting(&mut self, now: Instant) {
        let resume = match self.accepting {
            Accepting::Full => {
                self.conns.len() < self.max_connections
                    && self.overflow.len() < self.overflow_limit / 2
            }
            Accepting::PausedUntil(when) => now >= when,
            Accepting::Yes | Accepting::Stopped => false,
        };
        if resume {
            self.accepting = Accepting::Yes;
            // Edge-triggered: connections that arrived during the pause
            // raised no new event, so look for them now.
            self.accept(now);
        }
    }

    /// Closes parked connections past their deadline (or starts their
    /// lingering close), drives those due; plans the next sweep. Queued
    /// and in-pool connections are not timed out: they are being served.
    fn sweep(&mut self, now: Instant) {
        let mut next = now + super::TICK;
        let mut expired = Vec::new();
        for (key, entry) in self.conns.iter_mut() {
            if let Entry::Parked(conn) = entry {
                if conn.deadline() > now {
                    next = next.min(conn.deadline());
                } else if conn.deadline_is_due_work() {
                    self.ready.push(key);
                } else if conn.on_timeout(now) {
                    next = next.min(conn.deadline());
                } else {
                    expired.push(key);
                }
            }
        }
        for key in expired {
            self.close(key);
        }
        if let Accepting::PausedUntil(when) = self.accepting {
            next = next.min(when);
        }
        self.next_sweep = next;
    }

    fn start_draining(&mut self, now: Instant) {
        if self.accepting == Accepting::Stopped {
            return;
        }
        self.ctx.draining.store(true, Ordering::Relaxed);
        if self.own_listener && self.accepting == Accepting::Yes {
            // Connections already queued on this loop's own socket have no
            // one else to take them (the master steers new ones elsewhere
            // before it asks a loop to drain): serve them, with
            // `Connection: close`.
            self.accept(now);
        }
        self.pause(Accepting::Stopped);
        for (_, entry) in self.conns.iter_mut() {
            if let Entry::Parked(conn) = entry {
                conn.start_draining(now);
            }
        }
        self.next_sweep = self.next_sweep.min(now + DRAIN_IDLE_GRACE);
    }
}

/// Marks a connection on a pool thread as having had an event, counting
/// it in `count` once.
fn mark_dirty(dirty: &mut bool, count: &mut usize) {
    if !*dirty {
        *dirty = true;
        *count += 1;
    }
}

/// EMFILE / ENFILE / ENOBUFS / ENOMEM: accepting again at once would spin.
fn is_fd_exhaustion(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream as ClientStream};

    use super::*;
    use crate::changes::{Change, ChangeFeed};
    use crate::http::{Body, Handler, Request, Response};
    use crate::scoreboard::Scoreboard;
    use crate::signals::SignalSet;
    use crate::worker::connection::tests::PANIC_TARGET;

    struct Hello;

    impl Handler for Hello {
        fn handle(&self, _req: &Request) -> Response {
            Response::new(200, Body::Static(b"hello"))
        }
    }

    /// A worker's loop in `mode` on a loopback port, with one pool thread
    /// in thread mode (so the thread that met a panic must serve the next
    /// request).
    fn worker_loop(mode: Mode) -> (EventLoop, SocketAddr) {
        let slot = Scoreboard::new(1).unwrap().slot(0);
        worker_loop_with(mode, Hello, slot)
    }

    /// A worker's loop in `mode` answering with `handler`, counting in
    /// `slot`; in thread-loops mode, the loop of row 0.
    fn worker_loop_with(
        mode: Mode,
        handler: impl Handler + 'static,
        slot: &'static crate::scoreboard::Slot,
    ) -> (EventLoop, SocketAddr) {
        worker_loop_hearing(mode, handler, slot, None)
    }

    /// As [`worker_loop_with`], its event streams reporting `changes`.
    fn worker_loop_hearing(
        mode: Mode,
        handler: impl Handler + 'static,
        slot: &'static crate::scoreboard::Slot,
        changes: Option<ChangeFeed>,
    ) -> (EventLoop, SocketAddr) {
        let mut config = crate::config::defaults();
        config.mode = mode;
        config.threads = 1;
        config.access_log = false;
        let ctx = Arc::new(ServeCtx::new(&config, Box::new(handler), slot, changes));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let life = Lifecycle {
            signals: SignalSet::register(&[]).unwrap(),
            master: nix::unistd::getppid(),
            slot,
            graceful_timeout: Duration::from_secs(30),
            drain_deadline: None,
        };
        let listener = TcpListener::from_std(listener);
        let supervision = match mode {
            Mode::ThreadLoops => Supervision::Shared {
                control: Arc::new(LoopControl::default()),
                row: 0,
            },
            Mode::Process | Mode::Thread => Supervision::Own(life),
        };
        let event_loop = EventLoop::new(ctx, vec![listener], supervision, &config, 0).unwrap();
        (event_loop, addr)
    }

    /// Sends `request` on a new connection and turns the loop until the
    /// worker closes it; returns what came back.
    fn exchange(event_loop: &mut EventLoop, addr: SocketAddr, request: &str) -> String {
        let mut events = Events::with_capacity(64);
        let mut client = ClientStream::connect(addr).unwrap();
        client.write_all(request.as_bytes()).unwrap();
        client.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        loop {
            assert_eq!(
                event_loop.turn(&mut events).unwrap(),
                None,
                "worker stopped"
            );
            let mut chunk = [0; 4096];
            match client.read(&mut chunk) {
                Ok(0) => return String::from_utf8_lossy(&got).into_owned(),
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => panic!("client read: {err}"),
            }
            assert!(Instant::now() < deadline, "connection not closed in time");
        }
    }

    /// A panic in the connection code (not the handler) costs that
    /// connection only: it is closed and counted out, and the worker (its
    /// loop, and in thread mode its pool thread) serves the next one.
    fn survives_a_panic_in_the_connection_code(mode: Mode) {
        let (mut event_loop, addr) = worker_loop(mode);
        let panicking = format!("GET {PANIC_TARGET} HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(
            exchange(&mut event_loop, addr, &panicking),
            "",
            "closed unanswered"
        );
        assert!(event_loop.conns.is_empty());
        assert_eq!(event_loop.ctx.slot.connections(), 0);
        let fine = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let answer = exchange(&mut event_loop, addr, fine);
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
        assert!(answer.ends_with("\r\n\r\nhello"), "{answer}");
    }

    #[test]
    fn process_mode_survives_a_panic_in_the_connection_code() {
        survives_a_panic_in_the_connection_code(Mode::Process);
    }

    #[test]
    fn thread_mode_survives_a_panic_in_the_connection_code() {
        survives_a_panic_in_the_connection_code(Mode::Thread);
    }

    /// Takes 150 ms per request (more than [`BEAT_EVERY`]); notes when
    /// each request started and the loop's heartbeat as it found it then.
    struct Slow {
        slot: &'static crate::scoreboard::Slot,
        loops: bool,
        seen: Arc<std::sync::Mutex<Vec<(u64, u64)>>>,
    }

    impl Handler for Slow {
        fn handle(&self, _req: &Request) -> Response {
            let beat = match self.loops {
                true => &self.slot.rows[0].heartbeat_mono_ms,
                false => &self.slot.heartbeat_mono_ms,
            };
            let entered = crate::scoreboard::mono_ms();
            let found = beat.load(Ordering::Relaxed);
            self.seen.lock().unwrap().push((entered, found));
            std::thread::sleep(Duration::from_millis(150));
            Response::new(200, Body::Static(b"slow"))
        }
    }

    /// Two connections with a slow request each, served in one turn (one
    /// batch of events): the loop heartbeats between them, not only once
    /// the batch is done (the watchdog would see a loop silent for all of
    /// it).
    fn heartbeats_between_slow_turns(mode: Mode) {
        let slot = Scoreboard::new(1).unwrap().slot(0);
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let slow = Slow {
            slot,
            loops: mode == Mode::ThreadLoops,
            seen: Arc::clone(&seen),
        };
        let (mut event_loop, addr) = worker_loop_with(mode, slow, slot);
        // Both connected, their requests sent, before the loop turns: it
        // accepts both in one batch and drives them one after the other.
        let clients: Vec<ClientStream> = (0..2)
            .map(|_| {
                let mut client = ClientStream::connect(addr).unwrap();
                client
                    .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    .unwrap();
                client
            })
            .collect();
        let mut events = Events::with_capacity(64);
        assert_eq!(event_loop.turn(&mut events).unwrap(), None);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "both requests in one turn");
        let (first_entered, _) = seen[0];
        let (_, beat_before_second) = seen[1];
        assert!(
            beat_before_second >= first_entered + 150,
            "no heartbeat between the two slow drives: {seen:?}"
        );
        drop(clients);
    }

    #[test]
    fn process_mode_heartbeats_between_slow_turns() {
        heartbeats_between_slow_turns(Mode::Process);
    }

    #[test]
    fn thread_loops_mode_heartbeats_between_slow_turns() {
        heartbeats_between_slow_turns(Mode::ThreadLoops);
    }

    /// `/events` is an event stream from generation 0; anything else "hello".
    struct Streams;

    impl Handler for Streams {
        fn handle(&self, req: &Request) -> Response {
            match req.path() {
                "/events" => Response::new(200, Body::Events { since: 0 }),
                _ => Response::new(200, Body::Static(b"hello")),
            }
        }
    }

    /// Turns the loop until every client has received `wanted` once more
    /// than it had, adding what each receives to its `got`; fails after a
    /// deadline.
    fn turn_until_each_reads(
        event_loop: &mut EventLoop,
        clients: &mut [ClientStream],
        got: &mut [String],
        wanted: &str,
    ) {
        let mut events = Events::with_capacity(64);
        let deadline = Instant::now() + Duration::from_secs(10);
        let seen: Vec<usize> = got.iter().map(|g| g.matches(wanted).count()).collect();
        while seen
            .iter()
            .zip(got.iter())
            .any(|(before, g)| g.matches(wanted).count() <= *before)
        {
            assert!(Instant::now() < deadline, "no {wanted:?} in {got:?}");
            assert_eq!(
                event_loop.turn(&mut events).unwrap(),
                None,
                "worker stopped"
            );
            for (client, got) in clients.iter_mut().zip(got.iter_mut()) {
                let mut chunk = [0; 4096];
                match client.read(&mut chunk) {
                    Ok(n) => got.push_str(&String::from_utf8_lossy(&chunk[..n])),
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                    Err(err) => panic!("client read: {err}"),
                }
            }
        }
    }

    /// Event streams in `mode`: three of them, with one pool thread in
    /// thread mode, and still a plain request is answered (a stream waits
    /// on the loop, never on a pool thread); each change reaches every
    /// stream; a draining worker closes them.
    fn streams_hear_every_change_and_hold_no_thread(mode: Mode) {
        let slot = Scoreboard::new(1).unwrap().slot(0);
        let word: &'static std::sync::atomic::AtomicU64 =
            Box::leak(Box::new(std::sync::atomic::AtomicU64::new(0)));
        let feed = ChangeFeed::new(word).unwrap();
        let (mut event_loop, addr) = worker_loop_hearing(mode, Streams, slot, Some(feed));
        let mut clients: Vec<ClientStream> = (0..3)
            .map(|_| {
                let mut client = ClientStream::connect(addr).unwrap();
                client
                    .write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
                    .unwrap();
                client.set_nonblocking(true).unwrap();
                client
            })
            .collect();
        let mut got = vec![String::new(); 3];
        turn_until_each_reads(&mut event_loop, &mut clients, &mut got, "\r\n\r\n");
        for head in &got {
            assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
            assert!(!head.contains("Content-Length"), "{head}");
        }
        let plain = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let answer = exchange(&mut event_loop, addr, plain);
        assert!(answer.ends_with("\r\n\r\nhello"), "{answer}");
        assert_eq!(slot.idle_connections(), 3, "waiting streams count as idle");
        feed.publish(Change::Stylesheets);
        turn_until_each_reads(
            &mut event_loop,
            &mut clients,
            &mut got,
            "event: css\ndata: 1\n\n",
        );
        feed.publish(Change::Reload);
        turn_until_each_reads(
            &mut event_loop,
            &mut clients,
            &mut got,
            "event: reload\ndata: 2\n\n",
        );
        // Input on a stream is thrown away, and changes nothing.
        clients[0].write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        feed.publish(Change::Reload);
        turn_until_each_reads(&mut event_loop, &mut clients, &mut got, "data: 3\n\n");
        assert!(!got[0].contains("hello"), "{}", got[0]);
        // Draining: the streams end (their pages reconnect elsewhere).
        event_loop.start_draining(Instant::now());
        let mut events = Events::with_capacity(64);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !event_loop.conns.is_empty() {
            assert!(Instant::now() < deadline, "streams not closed by the drain");
            event_loop.turn(&mut events).unwrap();
        }
    }

    #[test]
    fn process_mode_streams_hear_every_change() {
        streams_hear_every_change_and_hold_no_thread(Mode::Process);
    }

    #[test]
    fn thread_mode_streams_hear_every_change_and_hold_no_pool_thread() {
        streams_hear_every_change_and_hold_no_thread(Mode::Thread);
    }

    #[test]
    fn thread_loops_mode_streams_hear_every_change() {
        streams_hear_every_change_and_hold_no_thread(Mode::ThreadLoops);
    }
}
