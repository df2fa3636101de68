//! Thread mode's pool: `threads` threads that serve connections handed to
//! them by the worker's event loop (gunicorn `gthread`, Apache `event`).
//!
//! A job is a whole [`Connection`], moved (not shared: no lock around it)
//! through a bounded queue. The pool thread drives it exactly as the event
//! loop does in process mode (read, parse, handle, write until the socket
//! would block) and moves it back through a second channel, waking the loop
//! with a `mio::Waker` only if the loop is asleep. An idle keep-alive
//! connection is parked in the loop, never on a thread.
//!
//! Neither channel allocates per message (both are bounded arrays sized up
//! front), so the hand-off path does no allocation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

use super::connection::{Connection, Next, ServeCtx};

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

pub(crate) struct Pool {
    jobs: Sender<Job>,
    done: Receiver<Done>,
    /// Set while the loop is (about to be) blocked in `poll`.
    loop_sleeping: Arc<AtomicBool>,
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
        // Twice the threads: enough that a thread finishing a job finds the
        // next one waiting, small enough that a busy pool pushes back on
        // accepting instead of queueing without bound.
        let (jobs_tx, jobs_rx) = bounded::<Job>(threads * 2);
        let (done_tx, done_rx) = bounded::<Done>(max_connections + threads * 2);
        let loop_sleeping = Arc::new(AtomicBool::new(false));
        // The threads are never joined: they end with the process.
        for n in 0..threads {
            let serve = PoolThread {
                ctx: Arc::clone(ctx),
                jobs: jobs_rx.clone(),
                done: done_tx.clone(),
                waker: Arc::clone(&waker),
                loop_sleeping: Arc::clone(&loop_sleeping),
            };
            std::thread::Builder::new()
                .name(format!("forkpool-w{position}-t{n}"))
                .spawn(move || serve.run(n))?;
        }
        Ok(Pool {
            jobs: jobs_tx,
            done: done_rx,
            loop_sleeping,
        })
    }

    /// Hands a connection to the pool, or gives it back if the queue is full.
    pub(crate) fn submit(&self, job: Job) -> Result<(), Job> {
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => Err(job),
        }
    }

    /// The next connection a pool thread has finished with, if any.
    pub(crate) fn try_done(&self) -> Option<Done> {
        self.done.try_recv().ok()
    }

    /// Call right before blocking in `poll`: returns false (don't block)
    /// if work came back meanwhile. Pairs with the check in the pool thread.
    pub(crate) fn prepare_to_sleep(&self) -> bool {
        self.loop_sleeping.store(true, Ordering::SeqCst);
        if self.done.is_empty() {
            true
        } else {
            self.loop_sleeping.store(false, Ordering::SeqCst);
            false
        }
    }

    pub(crate) fn woke_up(&self) {
        self.loop_sleeping.store(false, Ordering::SeqCst);
    }
}

struct PoolThread {
    ctx: Arc<ServeCtx>,
    jobs: Receiver<Job>,
    done: Sender<Done>,
    waker: Arc<mio::Waker>,
    loop_sleeping: Arc<AtomicBool>,
}

impl PoolThread {
    fn run(self, thread: usize) {
        crate::scoreboard::set_serving_thread(thread);
        // Ends when the loop drops the job sender (the worker is exiting).
        while let Ok(Job { key, mut conn }) = self.jobs.recv() {
            // `drive` catches panics, the handler's and its own: a bug in
            // the connection code loses that connection, not this thread.
            // One turn: a connection that yielded comes back here too,
            // and the loop puts it behind those already waiting.
            let next = conn.drive(&self.ctx);
            if self.done.send(Done { key, conn, next }).is_err() {
                return;
            }
            // Wake the loop only if it sleeps: under load it is awake and
            // will find the connection without an eventfd write.
            if self.loop_sleeping.swap(false, Ordering::SeqCst) {
                let _ = self.waker.wake();
            }
        }
    }
}
