//! The scoreboard: one shared-memory slot per worker, written by the worker
//! and read by the master (Apache's scoreboard, in atomics).
//!
//! The master maps it (anonymous, `MAP_SHARED`) before the first fork, so
//! every worker inherits the same pages. A slot holds counters and
//! timestamps only, each an atomic: no locks across processes, so a worker
//! that dies mid-update can't wedge anyone. The mapping is never unmapped,
//! which is what makes handing out `&'static Slot` sound.

use std::io;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous};

/// Most serving threads a slot tracks (the config's limit on `threads`).
pub const MAX_SERVING_THREADS: usize = 1024;

thread_local! {
    /// This thread's index in `busy_since_ms`.
    static SERVING_THREAD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Names the calling thread's entry in `busy_since_ms` (pool thread `n`).
pub fn set_serving_thread(index: usize) {
    SERVING_THREAD.with(|cell| cell.set(index.min(MAX_SERVING_THREADS - 1)));
}

/// Lifecycle of the worker in a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum SlotState {
    Free = 0,
    Starting = 1,
    Ready = 2,
    Draining = 3,
}

/// One worker's shared counters. Zeroed memory is a valid, free slot.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct Slot {
    pub pid: AtomicI32,
    state: AtomicU32,
    /// Bumped by the master each time the slot is handed to a new worker.
    pub generation: AtomicU64,
    /// Milliseconds since the epoch.
    pub started_ms: AtomicU64,
    pub heartbeat_ms: AtomicU64,
    pub requests: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub connections: AtomicU32,
    /// Pool threads (thread mode); 0 in process mode.
    pub threads: AtomicU32,
    /// Per serving thread (the loop thread is 0 in process mode, pool
    /// thread `n` is `n` in thread mode): when its current request started,
    /// in ms since the epoch, or 0 when idle. How the master spots one hung
    /// thread in a worker whose heartbeat is fine.
    pub busy_since_ms: [AtomicU64; MAX_SERVING_THREADS],
}

impl Slot {
    pub fn state(&self) -> SlotState {
        match self.state.load(Ordering::Acquire) {
            1 => SlotState::Starting,
            2 => SlotState::Ready,
            3 => SlotState::Draining,
            _ => SlotState::Free,
        }
    }

    pub fn set_state(&self, state: SlotState) {
        self.state.store(state as u32, Ordering::Release);
    }

    /// Called by the master before forking the slot's new worker.
    pub fn reset_for_spawn(&self) {
        self.pid.store(0, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Relaxed);
        let now = now_ms();
        self.started_ms.store(now, Ordering::Relaxed);
        self.heartbeat_ms.store(now, Ordering::Relaxed);
        self.requests.store(0, Ordering::Relaxed);
        self.bytes_sent.store(0, Ordering::Relaxed);
        self.connections.store(0, Ordering::Relaxed);
        self.threads.store(0, Ordering::Relaxed);
        for busy in &self.busy_since_ms {
            busy.store(0, Ordering::Relaxed);
        }
        self.set_state(SlotState::Starting);
    }

    pub fn heartbeat(&self) {
        self.heartbeat_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Marks the calling thread busy until the guard drops.
    pub fn busy(&'static self) -> BusyGuard {
        let index = SERVING_THREAD.with(std::cell::Cell::get);
        self.busy_since_ms[index].store(now_ms(), Ordering::Relaxed);
        BusyGuard { slot: self, index }
    }

    /// The start of the oldest request in progress, if any.
    pub fn oldest_busy_ms(&self) -> Option<u64> {
        let serving = (self.threads.load(Ordering::Relaxed) as usize).clamp(1, MAX_SERVING_THREADS);
        self.busy_since_ms[..serving]
            .iter()
            .map(|busy| busy.load(Ordering::Relaxed))
            .filter(|&since| since != 0)
            .min()
    }

    /// Counts one answered request (relaxed: a statistic, not a fence).
    pub fn count_request(&self, bytes: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Clears a thread's busy mark when its request is done (or unwinds).
pub struct BusyGuard {
    slot: &'static Slot,
    index: usize,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.slot.busy_since_ms[self.index].store(0, Ordering::Relaxed);
    }
}

/// The shared mapping; see the module docs.
#[derive(Clone, Copy)]
pub struct Scoreboard {
    slots: NonNull<Slot>,
    len: usize,
}

// SAFETY: the slots are atomics only; sharing them between threads is what
// atomics are for.
unsafe impl Send for Scoreboard {}
unsafe impl Sync for Scoreboard {}

impl Scoreboard {
    /// Maps `len` zeroed slots shared with every future child.
    pub fn new(len: usize) -> io::Result<Scoreboard> {
        let bytes = NonZeroUsize::new(len.max(1) * size_of::<Slot>())
            .ok_or_else(|| io::Error::other("empty scoreboard"))?;
        // SAFETY: a fresh anonymous mapping aliases nothing; zero bytes are a
        // valid `Slot` (all fields are integers/atomics).
        let ptr = unsafe {
            mmap_anonymous(
                None,
                bytes,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }
        .map_err(io::Error::from)?;
        Ok(Scoreboard {
            slots: ptr.cast(),
            len: len.max(1),
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slot `index`. Panics on an out-of-range index (a bug in the master).
    pub fn slot(&self, index: usize) -> &'static Slot {
        assert!(index < self.len, "scoreboard slot {index} out of range");
        // SAFETY: in bounds, and the mapping lives (unmapped never) for the
        // rest of the process.
        unsafe { &*self.slots.as_ptr().add(index) }
    }

    /// The first free slot, if any.
    pub fn free_slot(&self) -> Option<usize> {
        (0..self.len).find(|&i| self.slot(i).state() == SlotState::Free)
    }
}

/// Milliseconds since the Unix epoch (wall clock: comparable across processes).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_start_free_and_are_shared_with_a_child() {
        let board = Scoreboard::new(4).unwrap();
        assert_eq!(board.free_slot(), Some(0));
        board.slot(0).reset_for_spawn();
        assert_eq!(board.slot(0).state(), SlotState::Starting);
        assert_eq!(board.free_slot(), Some(1));
        // SAFETY: the child only touches atomics and exits at once.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                board.slot(0).count_request(10);
                // SAFETY: plain exit without running the test harness's atexit.
                unsafe { libc::_exit(0) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(board.slot(0).requests.load(Ordering::Relaxed), 1);
                assert_eq!(board.slot(0).bytes_sent.load(Ordering::Relaxed), 10);
            }
        }
    }
}
