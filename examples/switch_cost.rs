//! Context-switch cost, in the style of lmbench's `lat_ctx`: two processes
//! (`fork`) or two threads of one process pass a token back and forth, both
//! pinned to the same CPU, so every hand-off forces the scheduler to put one
//! side to sleep and run the other: a real context switch.
//!
//! ```text
//! cargo run --release --example switch_cost -- [--quick|--smoke] [--json]
//!     [--cpu N] [--sizes 0,64,1024,8192] [--rounds N] [--iterations N]
//! ```
//!
//! What it measures, per switch:
//! - the direct cost of a switch (save/restore, scheduler, for processes the
//!   change of address space) plus the cost of the hand-off mechanism itself:
//!   a pipe pair, a futex word in a `MAP_SHARED` page, or an eventfd pair;
//! - the refill of caches and TLB after the other side ran, because each side
//!   reads and writes one byte per cache line of its own working set (0, 64
//!   KiB, 1 MiB, 8 MiB: `lat_ctx`'s "size") every time it holds the token.
//!
//! "raw" is elapsed / (2 × round trips). "net" subtracts what touching one
//! working set costs with no switch at all (measured in the same run, on
//! the same CPU, with a single buffer that stays as hot as it can), so net
//! is the switch plus the cache/TLB damage the other side's run did. Unlike
//! `lat_ctx`, net still includes the syscalls of the mechanism (a pipe write
//! and read, a futex wake and wait): they are part of what a hand-off
//! between workers costs, and they differ per mechanism.
//!
//! Where touching the working set dwarfs the switch (8 MiB: about half a
//! millisecond per touch against a microsecond per switch), net is a small
//! difference of two big numbers and mostly noise; the summary says so when
//! the process and thread ranges overlap. "switches/rt" checks the premise:
//! how often the timing side left the CPU per round trip, from
//! `getrusage(RUSAGE_THREAD)`; 1.00 means one switch away and one back per
//! round trip, more means other tasks preempted it. 1.00 doesn't prove a
//! quiet CPU: another task may still run between one side's sleep and the
//! other's wake-up, which only the wall clock sees.
//!
//! What it doesn't measure: scheduler wake-up latency across CPUs, migration,
//! or contention (both sides share one CPU, nothing else is pinned there;
//! whatever else runs on that CPU shows up as noise, hence medians); the
//! cost of creating a process or thread; huge-page effects (the buffers come
//! from `malloc`, 4 KiB pages unless transparent huge pages are `always`).
//!
//! Each side has its own buffer, threads too: what separates the two kinds
//! is the address space (page tables, TLB), not the data. Threads working
//! on shared data would skip part of the refill; that is not measured here.
//!
//! Threads use `FUTEX_PRIVATE_FLAG` as any threaded program does; processes
//! can't (their futex is keyed by the shared page, not the address space).
//! Each measurement is bounded: a watchdog thread notices a peer that ended
//! (its end of a "lifeline" pipe closes) or a deadline, and then unblocks
//! both sides; a child process is killed and reaped on every exit path.

use std::ffi::c_void;
use std::fmt;
use std::fs::File;
use std::hint::black_box;
use std::io::{self, IsTerminal, PipeReader, PipeWriter, Read, Write};
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, FromRawFd};
use std::process::ExitCode;
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, munmap};
use nix::sys::prctl::set_pdeathsig;
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid};
use serde::Serialize;

const USAGE: &str = "\
usage: switch_cost [--quick | --smoke] [--json] [--cpu N] [--sizes KIB,KIB,..]
                   [--rounds N] [--iterations N]

  --quick          fewer sizes, rounds and round trips (under 10 s)
  --smoke          one size, few round trips (under 2 s, for CI)
  --json           print one JSON document instead of the table
  --cpu N          the CPU both sides are pinned to (default: the last allowed)
  --sizes LIST     working set per side in KiB (default: 0,64,1024,8192)
  --rounds N       repetitions; the report gives median, min and max (default: 7)
  --iterations N   round trips per measurement at 0 KiB; bigger working sets
                   get proportionally fewer (default: 10000)";

/// Bytes between two touched bytes: one per cache line, so every line of the
/// working set is pulled in (64 bytes on every x86-64 and most arm64 parts).
const CACHE_LINE: usize = 64;

/// The largest working set `--sizes` accepts: 1 GiB per side.
const MAX_WORKING_SET_KIB: usize = 1 << 20;

/// No measurement goes below this many round trips, however big the working
/// set: fewer would leave the median to a handful of samples.
const MIN_ROUND_TRIPS: u64 = 20;

// ---------------------------------------------------------------------------
// Options (pure: parsed from strings, no system calls)

/// Two processes or two threads of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Process,
    Thread,
}

/// How the token travels from one side to the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Mechanism {
    Pipe,
    Futex,
    Eventfd,
}

/// Within a round the kinds alternate innermost (process, thread, process,
/// thread, ...) so slow drifts of the machine hit both alike.
const MECHANISMS: [Mechanism; 3] = [Mechanism::Pipe, Mechanism::Futex, Mechanism::Eventfd];
const KINDS: [Kind; 2] = [Kind::Process, Kind::Thread];

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Kind::Process => "process",
            Kind::Thread => "thread",
        })
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Mechanism::Pipe => "pipe",
            Mechanism::Futex => "futex",
            Mechanism::Eventfd => "eventfd",
        })
    }
}

/// A named set of defaults; explicit `--sizes`, `--rounds` and
/// `--iterations` override any of them, whatever the order on the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Preset {
    Full,
    Quick,
    Smoke,
}

impl Preset {
    fn sizes_kib(self) -> &'static [usize] {
        match self {
            Preset::Full => &[0, 64, 1024, 8192],
            // The two ends (nothing; 8 MiB, more than any L2) and 1 MiB in
            // between: the comparison the lab is after.
            Preset::Quick => &[0, 1024, 8192],
            Preset::Smoke => &[0],
        }
    }

    fn rounds(self) -> usize {
        match self {
            Preset::Full => 7,
            Preset::Quick => 5,
            Preset::Smoke => 3,
        }
    }

    fn iterations(self) -> u64 {
        match self {
            Preset::Full => 10_000,
            Preset::Quick => 5_000,
            Preset::Smoke => 2_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    /// `None`: the last CPU this process may run on.
    cpu: Option<usize>,
    json: bool,
    sizes_kib: Vec<usize>,
    rounds: usize,
    /// Round trips per measurement at 0 KiB (see `round_trips_for`).
    iterations: u64,
}

#[derive(Debug, PartialEq, Eq)]
enum Command {
    Run(Options),
    Help,
}

/// Parses the arguments after the program name. Accepts `--flag value` and
/// `--flag=value`. The error names the flag and the reason.
fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut preset = None;
    let mut cpu = None;
    let mut json = false;
    let mut sizes_kib = None;
    let mut rounds = None;
    let mut iterations = None;

    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline_value) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        let takes_value = matches!(
            flag.as_str(),
            "--cpu" | "--sizes" | "--rounds" | "--iterations"
        );
        if !takes_value && inline_value.is_some() {
            return Err(format!("{flag} takes no value"));
        }
        let mut value = || {
            inline_value
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--json" => json = true,
            "--quick" | "--smoke" => {
                let chosen = if flag == "--quick" {
                    Preset::Quick
                } else {
                    Preset::Smoke
                };
                if preset.is_some_and(|earlier| earlier != chosen) {
                    return Err("--quick and --smoke exclude each other".to_owned());
                }
                preset = Some(chosen);
            }
            "--cpu" => cpu = Some(parse_count(&flag, &value()?, 0)?),
            "--rounds" => rounds = Some(parse_count(&flag, &value()?, 1)?),
            "--iterations" => iterations = Some(parse_count(&flag, &value()?, 1)? as u64),
            "--sizes" => sizes_kib = Some(parse_sizes(&value()?)?),
            _ => return Err(format!("unknown option '{flag}'")),
        }
    }

    let preset = preset.unwrap_or(Preset::Full);
    Ok(Command::Run(Options {
        cpu,
        json,
        sizes_kib: sizes_kib.unwrap_or_else(|| preset.sizes_kib().to_vec()),
        rounds: rounds.unwrap_or(preset.rounds()),
        iterations: iterations.unwrap_or(preset.iterations()),
    }))
}

/// A whole number no smaller than `at_least`.
fn parse_count(flag: &str, text: &str, at_least: usize) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= at_least => Ok(n),
        _ if at_least == 0 => Err(format!("{flag}: '{text}' is not a whole number")),
        _ => Err(format!(
            "{flag}: '{text}' is not a whole number of at least {at_least}"
        )),
    }
}

/// `0,64,1024`: KiB per side, each at most `MAX_WORKING_SET_KIB`, no repeats.
fn parse_sizes(text: &str) -> Result<Vec<usize>, String> {
    let mut sizes = Vec::new();
    for item in text.split(',') {
        let kib = item.trim().parse::<usize>().map_err(|_| {
            format!("--sizes: '{item}' is not a size in KiB (e.g. --sizes 0,64,1024)")
        })?;
        if kib > MAX_WORKING_SET_KIB {
            return Err(format!(
                "--sizes: {kib} KiB is more than the {MAX_WORKING_SET_KIB} KiB limit"
            ));
        }
        if sizes.contains(&kib) {
            return Err(format!("--sizes: {kib} is listed twice"));
        }
        sizes.push(kib);
    }
    Ok(sizes)
}

/// Round trips for one measurement: `base` at 0 KiB and fewer as the working
/// set grows, so each size takes roughly the same time (touching 8 MiB per
/// switch is a few hundred times slower than the switch alone).
fn round_trips_for(base: u64, working_set_kib: usize) -> u64 {
    let scaled = u128::from(base) * 64 / (64 + working_set_kib as u128);
    let scaled = u64::try_from(scaled).unwrap_or(u64::MAX);
    scaled.max(MIN_ROUND_TRIPS.min(base))
}

/// Untimed round trips before the clock starts: they fault in stack and
/// copy-on-write pages after `fork` and let both sides reach their loops.
fn warmup_for(round_trips: u64) -> u64 {
    (round_trips / 10).clamp(2, 1_000)
}

// ---------------------------------------------------------------------------
// Statistics (pure)

#[derive(Debug, Clone, Copy, PartialEq)]
struct Summary {
    median: f64,
    min: f64,
    max: f64,
}

impl Summary {
    /// `None` for no samples. The median of an even count is the mean of the
    /// middle two.
    fn of(samples: &[f64]) -> Option<Summary> {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let (&min, &max) = (sorted.first()?, sorted.last()?);
        let middle = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[middle]
        } else {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        };
        Some(Summary { median, min, max })
    }
}

// ---------------------------------------------------------------------------
// CPU pinning

/// The CPUs this thread may run on (cgroups, `taskset`), in order.
fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size we pass.
    let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let cpus = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE, so within the set's bits.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect();
    Ok(cpus)
}

/// Pins the calling thread (not the whole process) to `cpu`. Threads it
/// spawns and children it forks afterwards inherit the pin.
fn pin_current_thread(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "CPU number too large",
        ));
    }
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` was checked to be below CPU_SETSIZE just above.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size we pass; pid 0 means
    // the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Working set

/// One side's private buffer, touched once per hand-off.
struct WorkingSet {
    bytes: Vec<u8>,
}

impl WorkingSet {
    fn new(kib: usize) -> WorkingSet {
        // A non-zero fill writes every byte now, so every page is faulted in
        // (no zero page, no copy-on-write left over from `fork`) before the
        // clock starts; `vec![0; n]` would get lazily mapped calloc pages.
        WorkingSet {
            bytes: vec![1; kib * 1024],
        }
    }

    /// Reads and writes one byte per cache line: the whole buffer moves into
    /// this CPU's caches and TLB, and the lines become dirty, as a worker's
    /// data would.
    fn touch(&mut self) {
        for line in self.bytes.chunks_exact_mut(CACHE_LINE) {
            line[0] = line[0].wrapping_add(1);
        }
        // The buffer is "used" afterwards, so the stores can't be elided.
        black_box(&mut self.bytes);
    }
}

// ---------------------------------------------------------------------------
// Token channels

/// Which end of a channel: ping starts with the token (and, in a
/// measurement, holds the clock), pong answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Ping,
    Pong,
}

/// Why a hand-off failed.
#[derive(Debug)]
enum ChannelError {
    /// The watchdog unblocked us: the other side ended or ran out of time.
    Aborted,
    /// The other side closed its end of the pipe.
    PeerClosed,
    Io(io::Error),
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::Aborted => f.write_str("aborted by the watchdog"),
            ChannelError::PeerClosed => f.write_str("the other side closed the channel"),
            ChannelError::Io(error) => write!(f, "{error}"),
        }
    }
}

impl From<io::Error> for ChannelError {
    fn from(error: io::Error) -> Self {
        ChannelError::Io(error)
    }
}

/// The byte a pipe carries: the token, or the watchdog's "stop".
const PIPE_TOKEN: u8 = b't';
const PIPE_ABORT: u8 = b'!';

/// What an eventfd carries. The counter adds up what was written, so the
/// token lives in the low 32 bits and the watchdog's "stop" above them: a
/// token that arrived before a stop is still seen as a token.
const EVENTFD_TOKEN: u64 = 1;
const EVENTFD_ABORT: u64 = 1 << 32;

/// Bits of the futex word: whose turn it is, and the watchdog's "stop".
/// Hand-offs flip only the turn bit, so a stop is never overwritten.
const FUTEX_PONG_TURN: u32 = 1;
const FUTEX_ABORT: u32 = 2;

/// One side's end of a token-passing channel.
enum Endpoint {
    Pipe {
        inbound: PipeReader,
        outbound: PipeWriter,
    },
    Futex {
        word: Arc<SharedWord>,
        side: Side,
        private: bool,
    },
    Eventfd {
        inbound: File,
        outbound: File,
    },
}

impl Endpoint {
    /// Hands the token to the other side (waking it if it sleeps).
    fn send(&mut self) -> Result<(), ChannelError> {
        match self {
            Endpoint::Pipe { outbound, .. } => write_fully(outbound, &[PIPE_TOKEN])?,
            Endpoint::Eventfd { outbound, .. } => {
                write_fully(outbound, &EVENTFD_TOKEN.to_ne_bytes())?
            }
            Endpoint::Futex {
                word,
                side,
                private,
            } => {
                let atomic = word.atomic();
                match side {
                    Side::Ping => atomic.fetch_or(FUTEX_PONG_TURN, Ordering::Release),
                    Side::Pong => atomic.fetch_and(!FUTEX_PONG_TURN, Ordering::Release),
                };
                // Always wake, even if the other side may not sleep yet: the
                // point is to switch on every hand-off, as lat_ctx does.
                futex_wake(atomic, 1, *private)?;
            }
        }
        Ok(())
    }

    /// Blocks until the token comes back. A token already on its way wins
    /// over a "stop" sent after it, so a peer that finished normally never
    /// turns the last round trip into an error.
    fn receive(&mut self) -> Result<(), ChannelError> {
        match self {
            Endpoint::Pipe { inbound, .. } => {
                let mut byte = [0u8; 1];
                if read_some(inbound, &mut byte)? == 0 {
                    return Err(ChannelError::PeerClosed);
                }
                if byte[0] != PIPE_TOKEN {
                    return Err(ChannelError::Aborted);
                }
            }
            Endpoint::Eventfd { inbound, .. } => {
                let mut counter = [0u8; 8];
                // An eventfd read is all 8 bytes or an error, never partial.
                if read_some(&mut *inbound, &mut counter)? != counter.len() {
                    return Err(ChannelError::PeerClosed);
                }
                let value = u64::from_ne_bytes(counter);
                if value >= EVENTFD_ABORT {
                    // The read consumed the stop along with any token: put
                    // it back, so the next receive can't block forever.
                    write_fully(&*inbound, &EVENTFD_ABORT.to_ne_bytes())?;
                }
                if value & 0xffff_ffff != EVENTFD_TOKEN {
                    return Err(ChannelError::Aborted);
                }
            }
            Endpoint::Futex {
                word,
                side,
                private,
            } => {
                let atomic = word.atomic();
                let my_turn = |value: u32| match side {
                    Side::Ping => value & FUTEX_PONG_TURN == 0,
                    Side::Pong => value & FUTEX_PONG_TURN != 0,
                };
                loop {
                    let value = atomic.load(Ordering::Acquire);
                    if my_turn(value) {
                        break;
                    }
                    if value & FUTEX_ABORT != 0 {
                        return Err(ChannelError::Aborted);
                    }
                    // Sleeps only if the word still holds `value`; a wake-up
                    // may be spurious, hence the loop.
                    futex_wait(atomic, value, *private)?;
                }
            }
        }
        Ok(())
    }
}

/// Unblocks both sides of a channel whatever they are doing, so a peer that
/// died or hung can't leave the other waiting forever. Cheap to clone.
#[derive(Clone)]
struct Aborter(Arc<AbortTarget>);

enum AbortTarget {
    Pipe {
        to_ping: PipeWriter,
        to_pong: PipeWriter,
    },
    Futex {
        word: Arc<SharedWord>,
        private: bool,
    },
    Eventfd {
        to_ping: File,
        to_pong: File,
    },
}

impl Aborter {
    /// Best effort and idempotent: an error here means the channel is
    /// already gone, which is what we wanted.
    fn abort(&self) {
        match &*self.0 {
            AbortTarget::Pipe { to_ping, to_pong } => {
                let _ = write_fully(to_ping, &[PIPE_ABORT]);
                let _ = write_fully(to_pong, &[PIPE_ABORT]);
            }
            AbortTarget::Eventfd { to_ping, to_pong } => {
                let _ = write_fully(to_ping, &EVENTFD_ABORT.to_ne_bytes());
                let _ = write_fully(to_pong, &EVENTFD_ABORT.to_ne_bytes());
            }
            AbortTarget::Futex { word, private } => {
                let atomic = word.atomic();
                atomic.fetch_or(FUTEX_ABORT, Ordering::Release);
                let _ = futex_wake(atomic, i32::MAX, *private);
            }
        }
    }
}

/// A connected pair of endpoints (ping, pong) and the aborter for both.
fn channel(mechanism: Mechanism, kind: Kind) -> io::Result<(Endpoint, Endpoint, Aborter)> {
    let channel = match mechanism {
        Mechanism::Pipe => {
            let (from_ping, to_pong) = io::pipe()?;
            let (from_pong, to_ping) = io::pipe()?;
            let target = AbortTarget::Pipe {
                to_ping: to_ping.try_clone()?,
                to_pong: to_pong.try_clone()?,
            };
            (
                Endpoint::Pipe {
                    inbound: from_pong,
                    outbound: to_pong,
                },
                Endpoint::Pipe {
                    inbound: from_ping,
                    outbound: to_ping,
                },
                target,
            )
        }
        Mechanism::Eventfd => {
            let (to_pong, to_ping) = (eventfd()?, eventfd()?);
            let target = AbortTarget::Eventfd {
                to_ping: to_ping.try_clone()?,
                to_pong: to_pong.try_clone()?,
            };
            (
                Endpoint::Eventfd {
                    inbound: to_ping.try_clone()?,
                    outbound: to_pong.try_clone()?,
                },
                Endpoint::Eventfd {
                    inbound: to_pong,
                    outbound: to_ping,
                },
                target,
            )
        }
        Mechanism::Futex => {
            let word = Arc::new(SharedWord::new()?);
            let private = kind == Kind::Thread;
            (
                Endpoint::Futex {
                    word: Arc::clone(&word),
                    side: Side::Ping,
                    private,
                },
                Endpoint::Futex {
                    word: Arc::clone(&word),
                    side: Side::Pong,
                    private,
                },
                AbortTarget::Futex { word, private },
            )
        }
    };
    let (ping, pong, target) = channel;
    Ok((ping, pong, Aborter(Arc::new(target))))
}

fn write_fully(mut writer: impl Write, bytes: &[u8]) -> io::Result<()> {
    // `write_all` retries on EINTR; a pipe or eventfd write this small is
    // atomic, so it is one system call in practice.
    writer.write_all(bytes)
}

fn read_some(mut reader: impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buffer) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

fn eventfd() -> io::Result<File> {
    // SAFETY: eventfd takes no pointers; it returns a new descriptor or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// A `u32` in its own `MAP_SHARED` anonymous page: after `fork`, parent and
/// child map the same physical page, so the word works as a futex between
/// processes as well as between threads.
struct SharedWord {
    page: NonNull<c_void>,
}

const SHARED_WORD_MAPPING: NonZeroUsize = NonZeroUsize::new(4096).unwrap();

// SAFETY: the page is only ever accessed through `&AtomicU32` (which is Sync)
// and unmapped once, by the last owner, in `Drop`.
unsafe impl Send for SharedWord {}
// SAFETY: as above.
unsafe impl Sync for SharedWord {}

impl SharedWord {
    fn new() -> io::Result<SharedWord> {
        // SAFETY: a fresh anonymous mapping at an address the kernel picks
        // can't alias any Rust object.
        let page = unsafe {
            mmap_anonymous(
                None,
                SHARED_WORD_MAPPING,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }?;
        Ok(SharedWord { page })
    }

    fn atomic(&self) -> &AtomicU32 {
        // SAFETY: the page is page-aligned (so aligned for u32), zero-filled
        // (a valid 0), mapped read-write until `self` drops (the borrow can't
        // outlive it), and only ever accessed atomically.
        unsafe { AtomicU32::from_ptr(self.page.as_ptr().cast()) }
    }
}

impl Drop for SharedWord {
    fn drop(&mut self) {
        // SAFETY: `page` came from mmap with this length and, being the last
        // owner, nothing refers to it any more.
        let _ = unsafe { munmap(self.page, SHARED_WORD_MAPPING.get()) };
    }
}

fn futex_wait(word: &AtomicU32, expected: u32, private: bool) -> io::Result<()> {
    // No timeout: one would arm a timer on every wait and add its cost to
    // every switch. The watchdog's abort wakes us instead.
    match futex(word, libc::FUTEX_WAIT, expected, private) {
        // EAGAIN: the word changed before we slept; EINTR: a signal. Both
        // send the caller back to re-read the word.
        Err(error) if matches!(error.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) => Ok(()),
        other => other,
    }
}

fn futex_wake(word: &AtomicU32, waiters: i32, private: bool) -> io::Result<()> {
    futex(word, libc::FUTEX_WAKE, waiters as u32, private)
}

/// FUTEX_WAIT (`value`: the expected word) or FUTEX_WAKE (`value`: how many
/// to wake); private unless the word is shared between processes.
fn futex(word: &AtomicU32, op: i32, value: u32, private: bool) -> io::Result<()> {
    let op = op | if private { libc::FUTEX_PRIVATE_FLAG } else { 0 };
    // SAFETY: `word` is a live, aligned u32 for the whole call; the timeout
    // and second address are null, which both operations accept (no
    // timeout; unused).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            op,
            value,
            ptr::null::<libc::timespec>(),
            ptr::null::<u32>(),
            0u32,
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Running the two sides

/// What ping saw over the timed round trips.
struct Timed {
    elapsed: Duration,
    /// How often ping left the CPU (slept or was preempted).
    cpu_leaves: u64,
}

/// Ping's loop: the only timed part. Times `round_trips` round trips after
/// `warmup` untimed ones.
fn run_ping(
    endpoint: &mut Endpoint,
    working_set_kib: usize,
    warmup: u64,
    round_trips: u64,
) -> Result<Timed, ChannelError> {
    let mut working_set = WorkingSet::new(working_set_kib);
    let mut round_trip = |endpoint: &mut Endpoint| -> Result<(), ChannelError> {
        working_set.touch();
        endpoint.send()?;
        endpoint.receive()
    };
    for _ in 0..warmup {
        round_trip(endpoint)?;
    }
    let leaves_before = cpu_leaves();
    let start = Instant::now();
    for _ in 0..round_trips {
        round_trip(endpoint)?;
    }
    let elapsed = start.elapsed();
    Ok(Timed {
        elapsed,
        cpu_leaves: cpu_leaves().saturating_sub(leaves_before),
    })
}

/// How many times the calling thread has left the CPU so far: voluntary
/// (it slept) plus involuntary (it was preempted) context switches.
fn cpu_leaves() -> u64 {
    getrusage(UsageWho::RUSAGE_THREAD).map_or(0, |usage| {
        let switches = usage.voluntary_context_switches() + usage.involuntary_context_switches();
        u64::try_from(switches).unwrap_or(0)
    })
}

/// Pong's loop: answers exactly `total` tokens (warm-up included).
fn run_pong(
    mut endpoint: Endpoint,
    working_set_kib: usize,
    total: u64,
) -> Result<(), ChannelError> {
    let mut working_set = WorkingSet::new(working_set_kib);
    for _ in 0..total {
        endpoint.receive()?;
        working_set.touch();
        endpoint.send()?;
    }
    Ok(())
}

/// How a watchdog's watch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watch {
    /// The peer's lifeline closed: it finished, failed or died.
    PeerEnded,
    /// The deadline passed first; a child process has been killed.
    DeadlineExceeded,
}

/// Waits (off the hot path, asleep in `poll`) until the peer's lifeline
/// closes or `deadline` passes, then aborts the channel so neither side can
/// stay blocked. A finished peer also triggers the abort: harmless, because
/// its last token is already ahead of the abort (see `Endpoint::receive`).
fn spawn_watchdog(
    lifeline: PipeReader,
    deadline: Instant,
    aborter: Aborter,
    child: Option<Pid>,
) -> io::Result<JoinHandle<Watch>> {
    thread::Builder::new()
        .name("watchdog".to_owned())
        .spawn(move || {
            let watch = loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    if let Some(child) = child {
                        let _ = kill(child, Signal::SIGKILL);
                    }
                    break Watch::DeadlineExceeded;
                }
                // A deadline past PollTimeout's limit (~24 days) is waited
                // for in steps: the loop rechecks.
                let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
                let mut fds = [PollFd::new(lifeline.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, timeout) {
                    // Any event: POLLHUP once every write end is closed (or a
                    // byte, which the peer never writes). Either way it's over.
                    Ok(n) if n > 0 => break Watch::PeerEnded,
                    Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                    // Can't watch any more: stop the measurement rather than
                    // risk an unwatched hang.
                    Err(_) => break Watch::PeerEnded,
                }
            };
            aborter.abort();
            watch
        })
}

/// A forked child that is killed and reaped however we leave the scope.
struct ChildGuard {
    pid: Pid,
    reaped: bool,
}

impl ChildGuard {
    /// Waits for the child. Call it only once the child has ended or was
    /// killed (the watchdog's verdict says so), so this can't block for long.
    fn reap(mut self) -> io::Result<WaitStatus> {
        self.reaped = true;
        loop {
            match waitpid(self.pid, None) {
                Err(nix::errno::Errno::EINTR) => continue,
                result => return result.map_err(io::Error::from),
            }
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}

/// The running other side.
enum Peer {
    Process(ChildGuard),
    Thread(JoinHandle<Result<(), ChannelError>>),
}

/// Forks a child that pins itself, answers `total` tokens on `pong` and
/// exits: 0 on success, 1 if the channel failed, 101 on a panic.
fn fork_pong(
    pong: Endpoint,
    working_set_kib: usize,
    total: u64,
    cpu: usize,
    lifeline: PipeWriter,
) -> io::Result<Pid> {
    // Nothing buffered may be written twice (the child leaves with `_exit`,
    // which doesn't flush, but be explicit).
    io::stdout().flush()?;
    let parent = getpid();
    // SAFETY: the caller guarantees this process is single-threaded here
    // (every earlier peer thread and watchdog has been joined), so the
    // child's heap is consistent and no lock is held by a thread that
    // doesn't exist in the child. No signal handlers are installed, so the
    // child has nothing to reset.
    match unsafe { fork() }? {
        ForkResult::Parent { child } => {
            // Only the child may hold the lifeline: it closes when it exits.
            drop(lifeline);
            Ok(child)
        }
        ForkResult::Child => {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // If the parent dies, so do we; and if it died before the
                // prctl, getppid no longer names it.
                let orphaned = set_pdeathsig(Signal::SIGKILL).is_err() || getppid() != parent;
                if orphaned || pin_current_thread(cpu).is_err() {
                    return 1;
                }
                let _lifeline = lifeline;
                match run_pong(pong, working_set_kib, total) {
                    Ok(()) => 0,
                    Err(_) => 1,
                }
            }));
            let code = outcome.unwrap_or(101);
            // SAFETY: `_exit` ends the child at once without running the
            // parent's atexit handlers or flushing buffers the parent owns.
            unsafe { libc::_exit(code) }
        }
    }
}

/// The caller must not run other threads: for `Kind::Process` this forks.
/// Returns the raw time per switch in nanoseconds and how many times ping
/// left the CPU per round trip.
fn measure_switch(
    kind: Kind,
    mechanism: Mechanism,
    working_set_kib: usize,
    round_trips: u64,
    cpu: usize,
) -> Result<(f64, f64), String> {
    let context = |what: &str| format!("{kind} {mechanism} {working_set_kib} KiB: {what}");
    let (mut ping, pong, aborter) =
        channel(mechanism, kind).map_err(|e| context(&format!("creating the channel: {e}")))?;
    let warmup = warmup_for(round_trips);
    let total = warmup + round_trips;
    let (lifeline_watch, lifeline) =
        io::pipe().map_err(|e| context(&format!("creating the lifeline: {e}")))?;
    let deadline = Instant::now() + time_budget(total, working_set_kib);

    let peer = match kind {
        Kind::Process => {
            let pid = fork_pong(pong, working_set_kib, total, cpu, lifeline)
                .map_err(|e| context(&format!("fork: {e}")))?;
            Peer::Process(ChildGuard { pid, reaped: false })
        }
        Kind::Thread => {
            let spawned = thread::Builder::new()
                .name("pong".to_owned())
                .spawn(move || {
                    let _lifeline = lifeline;
                    pin_current_thread(cpu)?;
                    run_pong(pong, working_set_kib, total)
                });
            Peer::Thread(spawned.map_err(|e| context(&format!("spawning the thread: {e}")))?)
        }
    };
    let child_pid = match &peer {
        Peer::Process(guard) => Some(guard.pid),
        Peer::Thread(_) => None,
    };
    // If spawning the watchdog fails, `peer` drops: a child is killed and
    // reaped; a thread would stay blocked, so abort the channel first.
    let watchdog =
        spawn_watchdog(lifeline_watch, deadline, aborter.clone(), child_pid).map_err(|e| {
            aborter.abort();
            context(&format!("spawning the watchdog: {e}"))
        })?;

    let timed = run_ping(&mut ping, working_set_kib, warmup, round_trips);
    if timed.is_err() {
        aborter.abort();
    }
    let watch = watchdog.join().unwrap_or(Watch::PeerEnded);
    let peer_outcome = match peer {
        Peer::Process(guard) => match guard.reap() {
            Ok(WaitStatus::Exited(_, 0)) => Ok(()),
            Ok(WaitStatus::Exited(_, code)) => Err(format!("the child exited with code {code}")),
            Ok(WaitStatus::Signaled(_, signal, _)) => {
                Err(format!("the child was killed by {signal}"))
            }
            Ok(other) => Err(format!("the child ended oddly: {other:?}")),
            Err(error) => Err(format!("waiting for the child: {error}")),
        },
        Peer::Thread(handle) => match handle.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(format!("the thread failed: {error}")),
            Err(_) => Err("the thread panicked".to_owned()),
        },
    };

    match (timed, peer_outcome) {
        (Ok(timed), Ok(())) => Ok((
            timed.elapsed.as_nanos() as f64 / (2.0 * round_trips as f64),
            timed.cpu_leaves as f64 / round_trips as f64,
        )),
        _ if watch == Watch::DeadlineExceeded => Err(context(&format!(
            "no answer within {:.0?}: stopped",
            time_budget(total, working_set_kib)
        ))),
        (Err(ping_error), Ok(())) => Err(context(&format!("ping side: {ping_error}"))),
        (_, Err(peer_error)) => Err(context(&peer_error)),
    }
}

/// How long one measurement may take before the watchdog gives up:
/// generous (a switch is microseconds, a cache line from DRAM well under
/// 100 ns), so only a dead or stuck peer gets near it.
fn time_budget(total_round_trips: u64, working_set_kib: usize) -> Duration {
    let lines = (working_set_kib * 1024 / CACHE_LINE) as u64;
    let per_switch_ns = 100_000u64.saturating_add(lines.saturating_mul(100));
    let switches = total_round_trips.saturating_mul(2);
    Duration::from_secs(10) + Duration::from_nanos(per_switch_ns.saturating_mul(switches))
}

/// Nanoseconds for one touch of a working set with no switching: the
/// baseline subtracted from every switch (as lat_ctx's "overhead").
///
/// On the wall clock, like the switches it is subtracted from, and over as
/// many touches as a switch measurement makes: other tasks that take the
/// CPU then inflate both alike, on average, instead of only the switches
/// (a CPU-time baseline would leave net biased upwards on a busy machine).
fn measure_touch(working_set_kib: usize, touches: u64) -> f64 {
    let mut working_set = WorkingSet::new(working_set_kib);
    for _ in 0..warmup_for(touches) {
        working_set.touch();
    }
    let start = Instant::now();
    for _ in 0..touches {
        working_set.touch();
    }
    start.elapsed().as_nanos() as f64 / touches as f64
}

// ---------------------------------------------------------------------------
// Rounds and the report

/// One (kind, mechanism, size) cell and its per-round samples.
struct Cell {
    kind: Kind,
    mechanism: Mechanism,
    working_set_kib: usize,
    round_trips: u64,
    raw_ns: Vec<f64>,
    touch_ns: Vec<f64>,
    leaves_per_round_trip: Vec<f64>,
}

#[derive(Debug, Serialize)]
struct Report {
    cpu: usize,
    rounds: usize,
    /// The 1-minute load average when the run started: anything else runnable
    /// on the pinned CPU takes turns with the two sides, so a busy machine
    /// inflates and spreads every figure.
    load_average: Option<f64>,
    /// How many CPUs the run could have used (for the table's header).
    #[serde(skip)]
    cpus_allowed: usize,
    results: Vec<ResultRow>,
}

/// `kind`, `mechanism`, `working_set_kib`, `ns`, `ns_min` and `ns_max` are
/// read by other scripts: keep their names and meaning.
#[derive(Debug, Serialize)]
struct ResultRow {
    kind: Kind,
    mechanism: Mechanism,
    working_set_kib: usize,
    /// Median over rounds of (raw - touch), per switch.
    ns: f64,
    ns_min: f64,
    ns_max: f64,
    /// Median raw time per switch.
    ns_raw: f64,
    /// Median cost of one touch of the working set without switching.
    ns_touch: f64,
    round_trips: u64,
    /// Median times the timing side left the CPU per round trip: 1.0 is the
    /// intended one switch away and one back per round trip (below 1, some
    /// hand-offs didn't switch; above, other tasks preempted it).
    switches_per_round_trip: f64,
}

fn run(options: &Options, cpu: usize, cpus_allowed: usize) -> Result<Report, String> {
    let load_average = load_average();
    pin_current_thread(cpu).map_err(|e| format!("pinning to CPU {cpu}: {e}"))?;
    let mut cells: Vec<Cell> = Vec::new();
    for &working_set_kib in &options.sizes_kib {
        for mechanism in MECHANISMS {
            for kind in KINDS {
                cells.push(Cell {
                    kind,
                    mechanism,
                    working_set_kib,
                    round_trips: round_trips_for(options.iterations, working_set_kib),
                    raw_ns: Vec::new(),
                    touch_ns: Vec::new(),
                    leaves_per_round_trip: Vec::new(),
                });
            }
        }
    }

    let show_progress = !options.json && io::stderr().is_terminal();
    for round in 1..=options.rounds {
        if show_progress {
            eprint!("\rround {round}/{} ", options.rounds);
        }
        for &working_set_kib in &options.sizes_kib {
            let round_trips = round_trips_for(options.iterations, working_set_kib);
            // Two touches per round trip (one per side), one per switch.
            let touch_ns = measure_touch(working_set_kib, 2 * round_trips);
            for cell in cells
                .iter_mut()
                .filter(|cell| cell.working_set_kib == working_set_kib)
            {
                let (raw, leaves) = measure_switch(
                    cell.kind,
                    cell.mechanism,
                    working_set_kib,
                    cell.round_trips,
                    cpu,
                )?;
                cell.raw_ns.push(raw);
                cell.leaves_per_round_trip.push(leaves);
                cell.touch_ns.push(touch_ns);
            }
        }
    }
    if show_progress {
        eprint!("\r");
    }

    let results = cells
        .iter()
        .map(|cell| {
            let net: Vec<f64> = cell
                .raw_ns
                .iter()
                .zip(&cell.touch_ns)
                .map(|(raw, touch)| raw - touch)
                .collect();
            let net = Summary::of(&net).expect("at least one round");
            let raw = Summary::of(&cell.raw_ns).expect("at least one round");
            let touch = Summary::of(&cell.touch_ns).expect("at least one round");
            let leaves = Summary::of(&cell.leaves_per_round_trip).expect("at least one round");
            ResultRow {
                kind: cell.kind,
                mechanism: cell.mechanism,
                working_set_kib: cell.working_set_kib,
                ns: tenths(net.median),
                ns_min: tenths(net.min),
                ns_max: tenths(net.max),
                ns_raw: tenths(raw.median),
                ns_touch: tenths(touch.median),
                round_trips: cell.round_trips,
                switches_per_round_trip: (leaves.median * 100.0).round() / 100.0,
            }
        })
        .collect();
    Ok(Report {
        cpu,
        rounds: options.rounds,
        load_average,
        cpus_allowed,
        results,
    })
}

/// How far apart two rows are, in words that keep noise from passing for a
/// result: a ratio only when both medians are positive and the min-max
/// ranges across rounds don't overlap.
fn compare(process: &ResultRow, thread: &ResultRow) -> String {
    let ranges_overlap = process.ns_min <= thread.ns_max && thread.ns_min <= process.ns_max;
    if ranges_overlap {
        "ranges overlap: within noise".to_owned()
    } else if process.ns > 0.0 && thread.ns > 0.0 {
        format!("{:.2}x", process.ns / thread.ns)
    } else {
        "apart, but a median is not positive".to_owned()
    }
}

/// The 1-minute load average from `/proc/loadavg`, if readable.
fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Rounds to 0.1 ns: more digits would be noise.
fn tenths(ns: f64) -> f64 {
    (ns * 10.0).round() / 10.0
}

fn print_table(report: &Report) {
    println!(
        "context switch cost on CPU {}, {} rounds: ns per switch, median [min, max] across rounds",
        report.cpu, report.rounds
    );
    println!("net = raw - touch (one touch of the working set without switching)");
    if let Some(load) = report.load_average {
        let cpus = report.cpus_allowed;
        println!(
            "load average at start: {load:.2} on {cpus} CPUs (other work on the CPU is noise)"
        );
    }
    println!(
        "switches/rt: times the timing side left the CPU per round trip (over 1: it was preempted)"
    );
    println!();
    println!(
        "{:>10}  {:<8} {:<8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>9}",
        "working", "mechan.", "kind", "net", "min", "max", "raw", "touch", "round", "switches"
    );
    println!(
        "{:>10}  {:<8} {:<8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>9}",
        "set", "", "", "", "", "", "", "", "trips", "/rt"
    );
    for row in &report.results {
        println!(
            "{:>6} KiB  {:<8} {:<8} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>7} {:>9.2}",
            row.working_set_kib,
            row.mechanism,
            row.kind,
            row.ns,
            row.ns_min,
            row.ns_max,
            row.ns_raw,
            row.ns_touch,
            row.round_trips,
            row.switches_per_round_trip
        );
    }

    println!();
    println!("process vs thread (net medians):");
    for process in report
        .results
        .iter()
        .filter(|row| row.kind == Kind::Process)
    {
        let thread = report.results.iter().find(|row| {
            row.kind == Kind::Thread
                && row.mechanism == process.mechanism
                && row.working_set_kib == process.working_set_kib
        });
        if let Some(thread) = thread {
            println!(
                "{:>6} KiB  {:<8} process - thread = {:>+9.1} ns  ({})",
                process.working_set_kib,
                process.mechanism,
                process.ns - thread.ns,
                compare(process, thread)
            );
        }
    }
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("switch_cost: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let allowed = match allowed_cpus() {
        Ok(allowed) if !allowed.is_empty() => allowed,
        Ok(_) => {
            eprintln!("switch_cost: no CPU to run on");
            return ExitCode::FAILURE;
        }
        Err(error) => {
            eprintln!("switch_cost: reading the CPU affinity: {error}");
            return ExitCode::FAILURE;
        }
    };
    let cpu = match options.cpu {
        Some(cpu) if !allowed.contains(&cpu) => {
            eprintln!(
                "switch_cost: --cpu: CPU {cpu} is not one this process may use (allowed: {allowed:?})"
            );
            return ExitCode::from(2);
        }
        Some(cpu) => cpu,
        None => *allowed.last().expect("checked non-empty"),
    };

    match run(&options, cpu, allowed.len()) {
        Ok(report) if options.json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).expect("plain data serializes")
            );
            ExitCode::SUCCESS
        }
        Ok(report) => {
            print_table(&report);
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("switch_cost: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, String> {
        parse_args(line.split_whitespace().map(str::to_owned))
    }

    fn options(line: &str) -> Options {
        match parse(line) {
            Ok(Command::Run(options)) => options,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    #[test]
    fn summary_of_odd_and_even_counts() {
        let odd = Summary::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!(
            odd,
            Summary {
                median: 3.0,
                min: 1.0,
                max: 5.0
            }
        );
        let even = Summary::of(&[4.0, 1.0, 10.0, 2.0]).unwrap();
        assert_eq!(
            even,
            Summary {
                median: 3.0,
                min: 1.0,
                max: 10.0
            }
        );
        assert_eq!(
            Summary::of(&[7.5]).unwrap(),
            Summary {
                median: 7.5,
                min: 7.5,
                max: 7.5
            }
        );
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn summary_keeps_negative_net_values() {
        // Net figures can dip below zero in noise; they must not be clamped.
        let summary = Summary::of(&[-2.0, 1.0, 0.5]).unwrap();
        assert_eq!(
            summary,
            Summary {
                median: 0.5,
                min: -2.0,
                max: 1.0
            }
        );
    }

    #[test]
    fn defaults_and_presets() {
        let full = options("");
        assert_eq!(full.sizes_kib, [0, 64, 1024, 8192]);
        assert_eq!(
            (full.rounds, full.iterations, full.cpu, full.json),
            (7, 10_000, None, false)
        );
        assert_eq!(options("--quick").sizes_kib, Preset::Quick.sizes_kib());
        let smoke = options("--smoke --json");
        assert_eq!(smoke.sizes_kib, [0]);
        assert!(smoke.json);
    }

    #[test]
    fn explicit_values_override_a_preset_in_any_order() {
        for line in [
            "--quick --rounds 3 --sizes 64",
            "--rounds=3 --sizes=64 --quick",
        ] {
            let parsed = options(line);
            assert_eq!(
                (parsed.rounds, parsed.sizes_kib.as_slice()),
                (3, &[64][..]),
                "{line}"
            );
            assert_eq!(parsed.iterations, Preset::Quick.iterations(), "{line}");
        }
        assert_eq!(options("--cpu 1 --iterations 50").cpu, Some(1));
        assert_eq!(options("--cpu=0").cpu, Some(0));
    }

    #[test]
    fn bad_arguments_name_the_flag() {
        for (line, expected) in [
            ("--quick --smoke", "exclude"),
            ("--rounds 0", "--rounds"),
            ("--iterations 0", "--iterations"),
            ("--cpu -1", "--cpu"),
            ("--cpu", "needs a value"),
            ("--sizes 0,,64", "--sizes"),
            ("--sizes 64,64", "twice"),
            ("--sizes 9999999", "limit"),
            ("--json=yes", "takes no value"),
            ("--fast", "unknown option '--fast'"),
            ("extra", "unknown option 'extra'"),
        ] {
            match parse(line) {
                Err(message) => assert!(message.contains(expected), "{line:?}: {message}"),
                Ok(command) => panic!("{line:?} was accepted: {command:?}"),
            }
        }
        assert_eq!(parse("--sizes 0 --help"), Ok(Command::Help));
    }

    #[test]
    fn round_trips_shrink_with_the_working_set_but_not_below_the_floor() {
        assert_eq!(round_trips_for(20_000, 0), 20_000);
        assert_eq!(round_trips_for(20_000, 64), 10_000);
        assert!(round_trips_for(20_000, 8192) < round_trips_for(20_000, 1024));
        assert_eq!(round_trips_for(100, 8192), MIN_ROUND_TRIPS);
        // An explicit tiny count is honoured, not raised to the floor.
        assert_eq!(round_trips_for(5, 8192), 5);
        assert_eq!(round_trips_for(u64::MAX, 0), u64::MAX);
    }

    fn row(kind: Kind, ns: f64, ns_min: f64, ns_max: f64) -> ResultRow {
        ResultRow {
            kind,
            mechanism: Mechanism::Pipe,
            working_set_kib: 0,
            ns,
            ns_min,
            ns_max,
            ns_raw: ns,
            ns_touch: 0.0,
            round_trips: 1,
            switches_per_round_trip: 1.0,
        }
    }

    #[test]
    fn comparison_gives_a_ratio_only_when_the_ranges_are_apart() {
        let thread = row(Kind::Thread, 800.0, 790.0, 820.0);
        let apart = row(Kind::Process, 1000.0, 980.0, 1100.0);
        assert_eq!(compare(&apart, &thread), "1.25x");
        let overlapping = row(Kind::Process, 1000.0, 815.0, 1100.0);
        assert_eq!(
            compare(&overlapping, &thread),
            "ranges overlap: within noise"
        );
        let negative = row(Kind::Thread, -50.0, -90.0, -10.0);
        assert!(compare(&apart, &negative).contains("not positive"));
    }

    #[test]
    fn touch_writes_one_byte_per_cache_line() {
        let mut working_set = WorkingSet::new(1);
        working_set.touch();
        working_set.touch();
        let touched: Vec<usize> = (0..1024).filter(|&i| working_set.bytes[i] != 1).collect();
        assert_eq!(touched, (0..1024).step_by(CACHE_LINE).collect::<Vec<_>>());
        assert!(touched.iter().all(|&i| working_set.bytes[i] == 3));
    }

    /// Runs `body` on a thread and fails (instead of hanging the test run)
    /// if it doesn't finish in time.
    fn within<T: Send + 'static>(seconds: u64, body: impl FnOnce() -> T + Send + 'static) -> T {
        let (done, finished) = std::sync::mpsc::channel();
        thread::spawn(move || done.send(body()));
        finished
            .recv_timeout(Duration::from_secs(seconds))
            .expect("did not finish in time: a hang")
    }

    #[test]
    fn abort_unblocks_a_waiting_side_of_every_mechanism() {
        for mechanism in MECHANISMS {
            let (_ping, mut pong, aborter) = channel(mechanism, Kind::Thread).unwrap();
            let waiting = thread::spawn(move || pong.receive());
            thread::sleep(Duration::from_millis(20));
            aborter.abort();
            let outcome = within(5, move || waiting.join().unwrap());
            assert!(
                matches!(outcome, Err(ChannelError::Aborted)),
                "{mechanism}: {outcome:?}"
            );
        }
    }

    #[test]
    fn a_token_sent_before_an_abort_still_arrives() {
        for mechanism in MECHANISMS {
            let (mut ping, mut pong, aborter) = channel(mechanism, Kind::Thread).unwrap();
            ping.send().unwrap();
            pong.receive().unwrap();
            pong.send().unwrap();
            aborter.abort();
            assert!(ping.receive().is_ok(), "{mechanism}: the token was lost");
            // The peer is gone: the next round trip must fail, not hang.
            let next = within(5, move || ping.send().and_then(|()| ping.receive()));
            assert!(
                matches!(next, Err(ChannelError::Aborted)),
                "{mechanism}: {next:?}"
            );
        }
    }

    #[test]
    fn the_watchdog_unblocks_a_stuck_channel_at_its_deadline() {
        let (_ping, mut pong, aborter) = channel(Mechanism::Futex, Kind::Thread).unwrap();
        // The peer "lives" (its lifeline stays open) but never answers.
        let (lifeline_watch, _lifeline) = io::pipe().unwrap();
        let started = Instant::now();
        let deadline = started + Duration::from_millis(100);
        let watchdog = spawn_watchdog(lifeline_watch, deadline, aborter, None).unwrap();
        let outcome = within(5, move || pong.receive());
        assert!(matches!(outcome, Err(ChannelError::Aborted)), "{outcome:?}");
        assert_eq!(watchdog.join().unwrap(), Watch::DeadlineExceeded);
        assert!(started.elapsed() >= Duration::from_millis(100));
    }

    #[test]
    fn the_watchdog_notices_a_peer_that_ended() {
        let (_ping, mut pong, aborter) = channel(Mechanism::Pipe, Kind::Thread).unwrap();
        let (lifeline_watch, lifeline) = io::pipe().unwrap();
        let deadline = Instant::now() + Duration::from_secs(600);
        let watchdog = spawn_watchdog(lifeline_watch, deadline, aborter, None).unwrap();
        drop(lifeline);
        let outcome = within(5, move || pong.receive());
        assert!(matches!(outcome, Err(ChannelError::Aborted)), "{outcome:?}");
        assert_eq!(
            within(5, move || watchdog.join().unwrap()),
            Watch::PeerEnded
        );
    }

    /// Threads only: forking from the multi-threaded test harness would
    /// break `fork_pong`'s contract. `--smoke` runs the process side.
    #[test]
    fn measures_threads_with_every_mechanism() {
        let cpu = *allowed_cpus().unwrap().last().unwrap();
        for mechanism in MECHANISMS {
            let (ns, leaves) = within(30, move || {
                pin_current_thread(cpu)?;
                measure_switch(Kind::Thread, mechanism, 4, 50, cpu).map_err(io::Error::other)
            })
            .unwrap();
            assert!(ns > 0.0 && ns < 10_000_000.0, "{mechanism}: {ns} ns");
            // On one CPU the token can only come back if the other side ran,
            // so the timing side must leave the CPU at least once per round
            // trip: fewer would mean the pinning or the hand-off is broken.
            assert!(
                leaves >= 1.0,
                "{mechanism}: {leaves} switches per round trip"
            );
        }
    }
}
