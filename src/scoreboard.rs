//! The scoreboard: one shared-memory slot per worker, written by the worker
//! and read by the master and by `/-/status` (Apache's scoreboard, in atomics).
//!
//! The master maps it (anonymous, `MAP_SHARED`) before the first fork, so
//! every worker inherits the same pages. A [`Header`] comes first (the
//! master's pid and start, and the last [`DEATHS_KEPT`] worker deaths, which
//! only the master writes), then one [`Slot`] per worker. Everything is an
//! atomic: no locks across processes, so a process that dies mid-update
//! can't wedge anyone. The mapping is never unmapped, which is what makes
//! handing out `&'static` references sound.
//!
//! Two clocks: `*_mono_ms` fields are `CLOCK_MONOTONIC` (system-wide, so
//! comparable across processes, and immune to wall-clock jumps: what the
//! watchdog judges by); `*_ms` fields without it are wall-clock ms since the
//! Unix epoch, for people.

use std::io;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous};

use crate::death::Death;

/// Most serving threads a slot tracks (the config's limit on `threads`).
pub(crate) const MAX_SERVING_THREADS: usize = crate::config::MAX_THREADS;

thread_local! {
    /// This thread's row in its worker's slot ([`Slot::rows`]): where it
    /// counts and marks itself busy.
    static SERVING_THREAD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Names the calling thread's row (pool or loop thread `n`; the one loop
/// of a process-mode worker is 0).
pub(crate) fn set_serving_thread(index: usize) {
    SERVING_THREAD.with(|cell| cell.set(index.min(MAX_SERVING_THREADS - 1)));
}

/// Lifecycle of the worker in a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum SlotState {
    Free = 0,
    Starting = 1,
    Ready = 2,
    Draining = 3,
}

impl SlotState {
    /// The name `/-/status` and the dashboard use.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SlotState::Free => "free",
            SlotState::Starting => "starting",
            SlotState::Ready => "ready",
            SlotState::Draining => "draining",
        }
    }
}

/// One worker's shared counters. Zeroed memory is a valid, free slot.
#[repr(C, align(64))]
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) pid: AtomicI32,
    state: AtomicU32,
    /// The worker's position (0..workers); a replacement takes the same one.
    pub(crate) position: AtomicU32,
    /// Bumped by the master each time the slot is handed to a new worker.
    pub(crate) generation: AtomicU64,
    pub(crate) started_ms: AtomicU64,
    /// Set at spawn and by the worker at least every `worker::TICK`.
    pub(crate) heartbeat_mono_ms: AtomicU64,
    /// Serving threads: pool threads (thread mode) or loop threads
    /// (thread-loops mode); 0 in process mode, where the loop is the one.
    pub(crate) threads: AtomicU32,
    /// Set by a thread-loops worker: each row's heartbeat is a loop's own,
    /// and the watchdog judges every one of them.
    pub(crate) loops_heartbeat: AtomicBool,
    /// One row per serving thread (the loop thread is 0 in process mode,
    /// pool or loop thread `n` is `n` otherwise); the worker initialises
    /// the rows it uses before it publishes `threads`. The worker's figures
    /// are the sums over its rows ([`Slot::requests`] and the like): each
    /// thread counts only in its own row.
    pub(crate) rows: [ThreadRow; MAX_SERVING_THREADS],
}

/// One serving thread's figures, on a cache line of its own so that
/// threads counting side by side don't contend: a request, an accept or a
/// connection is counted once, here, by the thread that handles it.
#[repr(C, align(64))]
#[derive(Debug, Default)]
pub(crate) struct ThreadRow {
    /// When its current request started (monotonic ms), or 0 when idle.
    /// How the master spots one hung thread in a worker whose heartbeat
    /// is fine.
    pub(crate) busy_since_mono_ms: AtomicU64,
    /// Thread-loops mode: each loop's own heartbeat, so the master can tell
    /// one stuck loop in a worker whose other loops are fine (other modes
    /// don't keep it up: `Slot::loops_heartbeat` says which).
    pub(crate) heartbeat_mono_ms: AtomicU64,
    /// Connections accepted (the accept strategy's fairness is judged by
    /// these), requests answered and body bytes sent by this thread.
    pub(crate) accepted: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    /// Connections this thread's loop holds, and how many of those are idle
    /// keep-alive ones (parked between requests).
    pub(crate) connections: AtomicU32,
    pub(crate) idle_connections: AtomicU32,
    /// Of those, the event streams (live reload): capped per loop.
    pub(crate) streams: AtomicU32,
}

impl ThreadRow {
    /// A thread-loops loop's own heartbeat.
    pub(crate) fn heartbeat(&self) {
        self.heartbeat_mono_ms.store(mono_ms(), Ordering::Relaxed);
    }

    /// Zeroes the row for a new worker.
    pub(crate) fn reset(&self, now_mono_ms: u64) {
        self.busy_since_mono_ms.store(0, Ordering::Relaxed);
        self.heartbeat_mono_ms.store(now_mono_ms, Ordering::Relaxed);
        self.accepted.store(0, Ordering::Relaxed);
        self.requests.store(0, Ordering::Relaxed);
        self.bytes_sent.store(0, Ordering::Relaxed);
        self.connections.store(0, Ordering::Relaxed);
        self.idle_connections.store(0, Ordering::Relaxed);
        self.streams.store(0, Ordering::Relaxed);
    }
}

impl Slot {
    pub(crate) fn state(&self) -> SlotState {
        match self.state.load(Ordering::Acquire) {
            1 => SlotState::Starting,
            2 => SlotState::Ready,
            3 => SlotState::Draining,
            _ => SlotState::Free,
        }
    }

    pub(crate) fn set_state(&self, state: SlotState) {
        self.state.store(state as u32, Ordering::Release);
    }

    /// Called by the master before forking the slot's new worker.
    pub(crate) fn reset_for_spawn(&self, position: usize) {
        self.pid.store(0, Ordering::Relaxed);
        self.position.store(position as u32, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.started_ms.store(now_ms(), Ordering::Relaxed);
        let now = mono_ms();
        self.heartbeat_mono_ms.store(now, Ordering::Relaxed);
        // Only the rows the last worker used were written: touching all of
        // them would fault in the whole slot for every spawn.
        for row in &self.rows[..self.serving_threads()] {
            row.reset(now);
        }
        self.threads.store(0, Ordering::Relaxed);
        self.loops_heartbeat.store(false, Ordering::Relaxed);
        self.set_state(SlotState::Starting);
    }

    pub(crate) fn heartbeat(&self) {
        self.heartbeat_mono_ms.store(mono_ms(), Ordering::Relaxed);
    }

    /// Marks the calling thread busy until the guard drops.
    pub(crate) fn busy(&'static self) -> BusyGuard {
        let index = SERVING_THREAD.with(std::cell::Cell::get);
        self.rows[index]
            .busy_since_mono_ms
            .store(mono_ms(), Ordering::Relaxed);
        BusyGuard { slot: self, index }
    }

    /// How many threads serve requests: the pool, or the one loop thread.
    pub(crate) fn serving_threads(&self) -> usize {
        (self.threads.load(Ordering::Relaxed) as usize).clamp(1, MAX_SERVING_THREADS)
    }

    /// The rows of the threads that serve.
    pub(crate) fn serving_rows(&self) -> &[ThreadRow] {
        &self.rows[..self.serving_threads()]
    }

    /// Publishes how many threads serve, after initialising their rows
    /// (the worker's, while booting, in every mode).
    pub(crate) fn set_serving_threads(&self, threads: usize) {
        let threads = threads.clamp(1, MAX_SERVING_THREADS);
        let now = mono_ms();
        for row in &self.rows[..threads] {
            row.reset(now);
        }
        self.threads.store(threads as u32, Ordering::Release);
    }

    /// The calling thread's row (see [`set_serving_thread`]).
    pub(crate) fn own_row(&self) -> &ThreadRow {
        &self.rows[SERVING_THREAD.with(std::cell::Cell::get)]
    }

    /// The sum of one figure over the serving threads' rows.
    fn total(&self, figure: impl Fn(&ThreadRow) -> u64) -> u64 {
        self.serving_rows().iter().map(figure).sum()
    }

    /// Requests the worker answered.
    pub(crate) fn requests(&self) -> u64 {
        self.total(|row| row.requests.load(Ordering::Relaxed))
    }

    /// Response body bytes the worker sent.
    pub(crate) fn bytes_sent(&self) -> u64 {
        self.total(|row| row.bytes_sent.load(Ordering::Relaxed))
    }

    /// Connections the worker accepted.
    pub(crate) fn accepted(&self) -> u64 {
        self.total(|row| row.accepted.load(Ordering::Relaxed))
    }

    /// Connections the worker holds.
    pub(crate) fn connections(&self) -> u64 {
        self.total(|row| u64::from(row.connections.load(Ordering::Relaxed)))
    }

    /// Of those, the idle keep-alive ones.
    pub(crate) fn idle_connections(&self) -> u64 {
        self.total(|row| u64::from(row.idle_connections.load(Ordering::Relaxed)))
    }

    /// The oldest loop heartbeat of a thread-loops worker (monotonic ms),
    /// or `None` for a worker whose loops don't keep one.
    pub(crate) fn oldest_loop_heartbeat_mono_ms(&self) -> Option<u64> {
        if !self.loops_heartbeat.load(Ordering::Relaxed) {
            return None;
        }
        self.serving_rows()
            .iter()
            .map(|row| row.heartbeat_mono_ms.load(Ordering::Relaxed))
            .min()
    }

    fn busy_marks(&self) -> impl Iterator<Item = u64> + '_ {
        self.serving_rows()
            .iter()
            .map(|row| row.busy_since_mono_ms.load(Ordering::Relaxed))
            .filter(|&since| since != 0)
    }

    /// The start of the oldest request in progress (monotonic ms), if any.
    pub(crate) fn oldest_busy_mono_ms(&self) -> Option<u64> {
        self.busy_marks().min()
    }

    /// Threads in the middle of a request.
    pub(crate) fn busy_threads(&self) -> usize {
        self.busy_marks().count()
    }

    /// Counts one answered request (relaxed: a statistic, not a fence).
    pub(crate) fn count_request(&self, bytes: u64) {
        let row = self.own_row();
        row.requests.fetch_add(1, Ordering::Relaxed);
        row.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Clears a thread's busy mark when its request is done (or unwinds).
pub(crate) struct BusyGuard {
    slot: &'static Slot,
    index: usize,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.slot.rows[self.index]
            .busy_since_mono_ms
            .store(0, Ordering::Relaxed);
    }
}

/// How many worker deaths the scoreboard remembers.
pub(crate) const DEATHS_KEPT: usize = 32;

/// One worker death, as the master recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeathRecord {
    pub(crate) position: u32,
    pub(crate) pid: i32,
    /// How it ended: the exit code, or the signal that killed it.
    pub(crate) how: Death,
    pub(crate) at_ms: u64,
    pub(crate) uptime_ms: u64,
    pub(crate) requests: u64,
}

/// A [`DeathRecord`] in shared memory, guarded by a sequence lock: the one
/// writer (the master) makes `seq` odd while it writes, and a reader that
/// sees it odd or changed reads again.
#[repr(C)]
#[derive(Debug)]
struct SharedDeath {
    seq: AtomicU64,
    /// Which death this is (its number + 1; 0: never written), so a reader
    /// racing the master can't mistake the newest record for an old one.
    number: AtomicU64,
    position: AtomicU32,
    pid: AtomicI32,
    /// -1: none (killed by a signal).
    code: AtomicI32,
    /// 0: none (exited).
    signal: AtomicI32,
    core_dumped: AtomicU32,
    at_ms: AtomicU64,
    uptime_ms: AtomicU64,
    requests: AtomicU64,
}

/// The master's part of the mapping.
#[repr(C, align(64))]
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) master_pid: AtomicI32,
    pub(crate) master_started_ms: AtomicU64,
    /// Slots ever handed out: readers look no further. Touching a page of
    /// a shared mapping makes it resident in the reader too, so scanning
    /// all the (mostly never used) slots would add megabytes to the PSS of
    /// every worker that answers `/-/status`: the very figure it reports.
    slots_used: AtomicU32,
    /// Deaths recorded so far; death `n` is in `deaths[n % DEATHS_KEPT]`.
    deaths_recorded: AtomicU64,
    deaths: [SharedDeath; DEATHS_KEPT],
    /// The latest change under the root, for live reload: written by the
    /// master's watcher, read by every worker (see `changes`).
    pub(crate) changes: AtomicU64,
}

impl Header {
    /// Records a death. Only the master calls this (one writer).
    pub(crate) fn record_death(&self, death: &DeathRecord) {
        let n = self.deaths_recorded.load(Ordering::Relaxed);
        let shared = &self.deaths[n as usize % DEATHS_KEPT];
        // Wrapping: workers can write this memory too, and a corrupt
        // counter must not panic the master (debug builds check overflow).
        let seq = shared.seq.load(Ordering::Relaxed);
        shared.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Release);
        shared.number.store(n.wrapping_add(1), Ordering::Relaxed);
        shared.position.store(death.position, Ordering::Relaxed);
        shared.pid.store(death.pid, Ordering::Relaxed);
        let (code, signal, core_dumped) = match death.how {
            Death::Exited(code) => (code, 0, false),
            Death::Signaled {
                signal,
                core_dumped,
            } => (-1, signal, core_dumped),
        };
        shared.code.store(code, Ordering::Relaxed);
        shared.signal.store(signal, Ordering::Relaxed);
        shared
            .core_dumped
            .store(core_dumped as u32, Ordering::Relaxed);
        shared.at_ms.store(death.at_ms, Ordering::Relaxed);
        shared.uptime_ms.store(death.uptime_ms, Ordering::Relaxed);
        shared.requests.store(death.requests, Ordering::Relaxed);
        shared.seq.store(seq.wrapping_add(2), Ordering::Release);
        self.deaths_recorded
            .store(n.wrapping_add(1), Ordering::Release);
    }

    /// Every death recorded since the master started.
    pub(crate) fn deaths_total(&self) -> u64 {
        self.deaths_recorded.load(Ordering::Acquire)
    }

    /// The deaths still remembered, newest first. A record being rewritten
    /// at this very moment is skipped rather than waited for.
    pub(crate) fn recent_deaths(&self) -> Vec<DeathRecord> {
        let total = self.deaths_total();
        let kept = total.min(DEATHS_KEPT as u64);
        (total - kept..total)
            .rev()
            .filter_map(|n| read_death(&self.deaths[n as usize % DEATHS_KEPT], n))
            .collect()
    }
}

/// Death number `n`, if its record still holds it and reads consistently.
fn read_death(shared: &SharedDeath, n: u64) -> Option<DeathRecord> {
    for _ in 0..4 {
        let before = shared.seq.load(Ordering::Acquire);
        if before % 2 == 1 {
            std::hint::spin_loop();
            continue;
        }
        let number = shared.number.load(Ordering::Relaxed);
        let code = shared.code.load(Ordering::Relaxed);
        let signal = shared.signal.load(Ordering::Relaxed);
        let record = DeathRecord {
            position: shared.position.load(Ordering::Relaxed),
            pid: shared.pid.load(Ordering::Relaxed),
            how: match signal {
                0 => Death::Exited(code),
                signal => Death::Signaled {
                    signal,
                    core_dumped: shared.core_dumped.load(Ordering::Relaxed) != 0,
                },
            },
            at_ms: shared.at_ms.load(Ordering::Relaxed),
            uptime_ms: shared.uptime_ms.load(Ordering::Relaxed),
            requests: shared.requests.load(Ordering::Relaxed),
        };
        std::sync::atomic::fence(Ordering::Acquire);
        if shared.seq.load(Ordering::Relaxed) == before {
            // Overwritten by a newer death since we counted: not this one.
            return (number == n.wrapping_add(1)).then_some(record);
        }
    }
    None
}

/// The shared mapping; see the module docs.
#[derive(Clone, Copy)]
pub(crate) struct Scoreboard {
    header: NonNull<Header>,
    slots: NonNull<Slot>,
    len: usize,
}

// SAFETY: the mapping holds atomics only; sharing them between threads is
// what atomics are for.
unsafe impl Send for Scoreboard {}
// SAFETY: as for `Send`: every access through it is to atomics.
unsafe impl Sync for Scoreboard {}

impl Scoreboard {
    /// Maps a header and `len` zeroed slots shared with every future child,
    /// and names the calling process the master.
    pub(crate) fn new(len: usize) -> io::Result<Scoreboard> {
        let len = len.max(1);
        // `Header` is 64-byte aligned, so its size is a multiple of 64 and
        // the slots that follow it are aligned too.
        let bytes = NonZeroUsize::new(size_of::<Header>() + len * size_of::<Slot>())
            .ok_or_else(|| io::Error::other("empty scoreboard"))?;
        // SAFETY: a fresh anonymous mapping aliases nothing; zero bytes are a
        // valid `Header` and valid `Slot`s (all fields are atomics).
        let ptr = unsafe {
            mmap_anonymous(
                None,
                bytes,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }
        .map_err(io::Error::from)?;
        let header: NonNull<Header> = ptr.cast();
        // SAFETY: the slots start right after the header, inside the mapping.
        let slots = unsafe { ptr.cast::<u8>().add(size_of::<Header>()).cast() };
        let board = Scoreboard { header, slots, len };
        let header = board.header();
        header
            .master_pid
            .store(std::process::id() as i32, Ordering::Relaxed);
        header.master_started_ms.store(now_ms(), Ordering::Relaxed);
        Ok(board)
    }

    pub(crate) fn header(&self) -> &'static Header {
        // SAFETY: the mapping lives (unmapped never) for the rest of the process.
        unsafe { &*self.header.as_ptr() }
    }

    /// Slot `index`. Panics on an out-of-range index (a bug in the master).
    pub(crate) fn slot(&self, index: usize) -> &'static Slot {
        assert!(index < self.len, "scoreboard slot {index} out of range");
        // SAFETY: in bounds, and the mapping lives (unmapped never) for the
        // rest of the process.
        unsafe { &*self.slots.as_ptr().add(index) }
    }

    /// Every slot that was ever used, in order.
    pub(crate) fn slots(&self) -> impl Iterator<Item = &'static Slot> + '_ {
        let used = self.header().slots_used.load(Ordering::Acquire) as usize;
        (0..used.min(self.len)).map(|i| self.slot(i))
    }

    /// The first free slot, if any, now counted as used (the master's, before
    /// a spawn).
    pub(crate) fn claim_slot(&self) -> Option<usize> {
        let index = (0..self.len).find(|&i| self.slot(i).state() == SlotState::Free)?;
        self.header()
            .slots_used
            .fetch_max(index as u32 + 1, Ordering::AcqRel);
        Some(index)
    }
}

/// Milliseconds since the Unix epoch (wall clock: for people).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Milliseconds of `CLOCK_MONOTONIC`: the same clock in every process, and
/// never set back (for deadlines and ages).
pub(crate) fn mono_ms() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_start_free_and_are_shared_with_a_child() {
        let board = Scoreboard::new(4).unwrap();
        assert_eq!(board.slots().count(), 0);
        assert_eq!(board.claim_slot(), Some(0));
        board.slot(0).reset_for_spawn(0);
        assert_eq!(board.slot(0).state(), SlotState::Starting);
        assert_eq!(board.claim_slot(), Some(1));
        assert_eq!(board.slots().count(), 2);
        // SAFETY: the child only touches atomics and exits at once.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                board.slot(0).count_request(10);
                // SAFETY: plain exit without running the test harness's atexit.
                unsafe { libc::_exit(0) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(board.slot(0).requests(), 1);
                assert_eq!(board.slot(0).bytes_sent(), 10);
            }
        }
    }

    #[test]
    fn deaths_are_kept_newest_first_up_to_the_limit() {
        let board = Scoreboard::new(1).unwrap();
        let header = board.header();
        assert!(header.recent_deaths().is_empty());
        let killed = Death::Signaled {
            signal: 6,
            core_dumped: false,
        };
        for pid in 1..=(DEATHS_KEPT as i32 + 3) {
            header.record_death(&DeathRecord {
                position: 0,
                pid,
                how: killed,
                at_ms: 0,
                uptime_ms: 0,
                requests: 0,
            });
        }
        let deaths = header.recent_deaths();
        assert_eq!(header.deaths_total(), DEATHS_KEPT as u64 + 3);
        assert_eq!(deaths.len(), DEATHS_KEPT);
        assert_eq!(deaths[0].pid, DEATHS_KEPT as i32 + 3);
        assert_eq!(deaths[DEATHS_KEPT - 1].pid, 4);
        assert_eq!(deaths[0].how, killed);
        // A reader that counted before the newest death went in must not
        // take the newest for the oldest one it expected in that place.
        let place = &header.deaths[(DEATHS_KEPT + 2) % DEATHS_KEPT];
        assert_eq!(
            read_death(place, DEATHS_KEPT as u64 + 2).map(|d| d.pid),
            Some(DEATHS_KEPT as i32 + 3)
        );
        assert_eq!(read_death(place, 2), None);
    }
}
