//! Thread mode's pool: `threads` threads that serve connections handed to
//! them by the worker's event loop (gunicorn `gthread`, Apache `event`).
//!
//! A job is a whole [`Connection`], moved (not shared: no lock around it)
//! through a bounded queue. The pool thread drives it exactly as the event
//! loop does in process mode (read, parse, handle, write until the socket
//! would block) and moves it back through a channel. An idle keep-alive
//! connection is parked in the loop, never on a thread.
//!
//! Wake-ups are what a hand-off costs (a futex wake, and on a busy core a
//! context switch each), so they are batched both ways:
//! - the loop queues every connection with work it found in a turn, then
//!   wakes as many idle threads as there are jobs no wake-up is on its way
//!   for ([`Pool::wake_threads`]), once, before it waits again; a thread
//!   that finishes a job takes the next one without sleeping;
//! - a pool thread wakes a sleeping loop (a `mio::Waker`) only when the
//!   loop must act on what came back at once (a connection that yielded or
//!   holds a timer; and any connection while one in the pool had an event
//!   meanwhile: the loop doesn't say which), or when the thread has no job
//!   left. A connection that waits for input
//!   needs no wake-up: its next event wakes the loop, which finds it back
//!   then.
//!
//! Neither direction allocates per job (the queue and the channel are
//! sized up front), so the hand-off path does no allocation.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crossbeam_channel::{Receiver, Sender, bounded};

use super::connection::{Connection, Next, ServeCtx};

/// Jobs the queue holds per pool thread: room for a whole batch of ready
/// connections (a loop turn's worth), so a batch is handed over at once
/// and each thread woken once for it; beyond this the loop's overflow
/// queue (bounded, with accept pushback) holds them.
const JOBS_PER_THREAD: usize = 8;

/// A connection on its way to or from a pool thread; `key` is its slab key.
pub(crate) struct Job {
    pub(crate) key: usize,
    pub(crate) conn: Box<Connection>,
}

/// A job done: the connection and what it waits for now.
pub(crate) struct Done {
    pub(crate) key: usize,
    pub(crate) conn: Box<Connection>,
    pub(crate) next: Next,
}

/// The job queue and who waits on it.
struct Jobs {
    queue: VecDeque<Job>,
    /// Threads waiting for a job.
    idle: usize,
    /// Of those, the ones already woken and not yet running.
    waking: usize,
    /// The pool is gone: threads return.
    closed: bool,
}

/// What the loop and the pool threads share.
struct Shared {
    jobs: Mutex<Jobs>,
    job_ready: Condvar,
    /// Set while the loop is (about to be) blocked in `poll`.
    loop_sleeping: AtomicBool,
    /// Set with `loop_sleeping` when the loop has work waiting for some
    /// connection on a pool thread: then any connection coming back wakes it.
    wake_for_every_return: AtomicBool,
}

impl Shared {
    /// The queue, even if a thread panicked holding it (nothing here
    /// panics under the lock; a poisoned queue is still a valid queue).
    fn lock(&self) -> MutexGuard<'_, Jobs> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) struct Pool {
    shared: Arc<Shared>,
    capacity: usize,
    done: Receiver<Done>,
}

impl Pool {
    /// Starts `threads` threads named `forkpool-w{position}-t{n}`.
    ///
    /// `max_connections` bounds the return channel: every connection can be
    /// in flight at once, so a pool thread never blocks handing one back.
    pub(crate) fn start(
        ctx: &Arc<ServeCtx>,
        position: usize,
        threads: usize,
        max_connections: usize,
        waker: Arc<mio::Waker>,
    ) -> std::io::Result<Pool> {
        let capacity = threads * JOBS_PER_THREAD;
        let (done_tx, done_rx) = bounded::<Done>(max_connections + capacity);
        let shared = Arc::new(Shared {
            jobs: Mutex::new(Jobs {
                queue: VecDeque::with_capacity(capacity),
                idle: 0,
                waking: 0,
                closed: false,
            }),
            job_ready: Condvar::new(),
            loop_sleeping: AtomicBool::new(false),
            wake_for_every_return: AtomicBool::new(false),
        });
        // The threads are never joined: they end with the process (or
        // return once the pool is dropped).
        for n in 0..threads {
            let serve = PoolThread {
                ctx: Arc::clone(ctx),
                shared: Arc::clone(&shared),
                done: done_tx.clone(),
                waker: Arc::clone(&waker),
            };
            std::thread::Builder::new()
                .name(format!("forkpool-w{position}-t{n}"))
                .spawn(move || serve.run(n))?;
        }
        Ok(Pool {
            shared,
            capacity,
            done: done_rx,
        })
    }

    /// Queues a connection for the pool, or gives it back if the queue is
    /// full. Wakes no thread: [`Pool::wake_threads`] does, once per batch.
    pub(crate) fn submit(&self, job: Job) -> Result<(), Job> {
        let mut jobs = self.shared.lock();
        if jobs.queue.len() >= self.capacity {
            return Err(job);
        }
        jobs.queue.push_back(job);
        Ok(())
    }

    /// Wakes as many idle threads as there are queued jobs no wake-up is
    /// on its way for. The loop calls it once a turn, before it waits: a
    /// batch of jobs costs each thread one wake-up, not one per job.
    pub(crate) fn wake_threads(&self) {
        let wanted = {
            let mut jobs = self.shared.lock();
            let unclaimed = jobs.queue.len().saturating_sub(jobs.waking);
            let sleeping = jobs.idle.saturating_sub(jobs.waking);
            let wanted = unclaimed.min(sleeping);
            jobs.waking += wanted;
            wanted
        };
        for _ in 0..wanted {
            self.shared.job_ready.notify_one();
        }
    }

    /// The next connection a pool thread has finished with, if any.
    pub(crate) fn try_done(&self) -> Option<Done> {
        self.done.try_recv().ok()
    }

    /// Call right before blocking in `poll`: returns false (don't block)
    /// if work came back meanwhile. `every_return`: wake the loop for any
    /// connection that comes back (it has an event waiting for one of them:
    /// an event came for it while a thread had it). Pairs with
    /// [`PoolThread::wake_loop`].
    pub(crate) fn prepare_to_sleep(&self, every_return: bool) -> bool {
        self.shared
            .wake_for_every_return
            .store(every_return, Ordering::SeqCst);
        self.shared.loop_sleeping.store(true, Ordering::SeqCst);
        if self.done.is_empty() {
            true
        } else {
            self.shared.loop_sleeping.store(false, Ordering::SeqCst);
            false
        }
    }

    pub(crate) fn woke_up(&self) {
        self.shared.loop_sleeping.store(false, Ordering::SeqCst);
    }
}

impl Drop for Pool {
    /// The threads return once the queue is empty.
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.job_ready.notify_all();
    }
}

struct PoolThread {
    ctx: Arc<ServeCtx>,
    shared: Arc<Shared>,
    done: Sender<Done>,
    waker: Arc<mio::Waker>,
}

impl PoolThread {
    fn run(self, thread: usize) {
        crate::scoreboard::set_serving_thread(thread);
        let mut next_job = self.wait_for_job();
        while let Some(Job { key, mut conn }) = next_job {
            // `drive` catches panics, the handler's and its own: a bug in
            // the connection code loses that connection, not this thread.
            // One turn: a connection that yielded comes back here too,
            // and the loop puts it behind those already waiting.
            let next = conn.drive(&self.ctx);
            if self.done.send(Done { key, conn, next }).is_err() {
                return;
            }
            next_job = self.shared.lock().queue.pop_front();
            // Tell a sleeping loop what came back only when it must act on
            // it now (a turn to give again, a timer to set, an event that
            // came meanwhile), or when this thread runs out of jobs. A
            // connection that waits for input needs no telling: its next
            // event wakes the loop, which then finds it back (the rest of
            // a batch comes back together).
            let urgent = matches!(next, Next::Yield | Next::Timer)
                || self.shared.wake_for_every_return.load(Ordering::SeqCst);
            if urgent || next_job.is_none() {
                self.wake_loop();
            }
            if next_job.is_none() {
                next_job = self.wait_for_job();
            }
        }
    }

    /// Blocks until a job is queued; `None` once the pool is gone.
    fn wait_for_job(&self) -> Option<Job> {
        let mut jobs = self.shared.lock();
        loop {
            if let Some(job) = jobs.queue.pop_front() {
                return Some(job);
            }
            if jobs.closed {
                return None;
            }
            jobs.idle += 1;
            jobs = self
                .shared
                .job_ready
                .wait(jobs)
                .unwrap_or_else(|e| e.into_inner());
            jobs.idle -= 1;
            // Woken on purpose or not, this thread is running now.
            jobs.waking = jobs.waking.saturating_sub(1);
        }
    }

    /// Wakes the loop if it sleeps: under load it is awake and finds the
    /// connections back without an eventfd write.
    fn wake_loop(&self) {
        if self.shared.loop_sleeping.swap(false, Ordering::SeqCst) {
            let _ = self.waker.wake();
        }
    }
}
