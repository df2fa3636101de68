//! Fault injection under `/-/fault/`: the ways real handlers fail, on
//! demand, so their cost in each architecture can be observed.
//!
//! Off unless `[faults] enabled` (or `--faults`); the router answers 404
//! otherwise, takes POST only (405 for GET), refuses a POST from another
//! site's page (403) and a peer on another machine (404) unless
//! `faults.allow_remote`; the config refuses to enable them on a
//! non-loopback address unless `faults.allow_remote` says so. These
//! endpoints kill processes on purpose: that is their job.
//!
//! | fault | what the handler does |
//! |---|---|
//! | `panic` | panics: caught around the handler, the request gets a 500 |
//! | `abort` | `abort()`: SIGABRT, the whole worker process dies |
//! | `segv` | writes through a bad pointer: a real SIGSEGV |
//! | `exit` | `exit(1)`: the worker process ends "cleanly" |
//! | `stack-overflow` | unbounded recursion: the guard page, then SIGSEGV/abort |
//! | `hang` | never returns: the thread sleeps forever |
//! | `leak?mb=N` | allocates N MiB, touches it and never frees it |
//! | `poison` | panics while holding the shared cache's lock |

use std::time::{Duration, Instant};

use crate::handlers::lab::{Identity, SharedCache, param, report};
use crate::http::Response;
use crate::http::request::Request;

/// Most memory one `leak` request may leak.
const MAX_LEAK_MB: u64 = 1024;

/// One of the faults, named as in `/-/fault/NAME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    Panic,
    Abort,
    Segv,
    Exit,
    StackOverflow,
    Hang,
    Leak,
    Poison,
}

/// Every fault with its name.
const NAMES: [(&str, Fault); 8] = [
    ("panic", Fault::Panic),
    ("abort", Fault::Abort),
    ("segv", Fault::Segv),
    ("exit", Fault::Exit),
    ("stack-overflow", Fault::StackOverflow),
    ("hang", Fault::Hang),
    ("leak", Fault::Leak),
    ("poison", Fault::Poison),
];

impl Fault {
    /// The fault called `name`, if there is one (known before the method
    /// is checked, so an unknown name is a 404 whatever the method).
    pub(crate) fn named(name: &str) -> Option<Fault> {
        NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, fault)| *fault)
    }

    /// Its name in `/-/fault/NAME`.
    fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("?", |(n, _)| n)
    }
}

/// Runs `fault`. Most never return.
pub(crate) fn inject(fault: Fault, req: &Request, who: &Identity, cache: &SharedCache) -> Response {
    log::warn!(
        "injecting fault {:?} (pid {}, thread {:?})",
        fault.name(),
        who.pid,
        std::thread::current().name()
    );
    match fault {
        Fault::Panic => panic!("injected panic"),
        Fault::Abort => std::process::abort(),
        Fault::Segv => segfault(),
        Fault::Exit => std::process::exit(1),
        Fault::StackOverflow => {
            let depth = recurse(std::hint::black_box(0));
            Response::text(500, format!("the stack did not overflow ({depth})"))
        }
        Fault::Hang => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        Fault::Leak => match param(req, "mb", MAX_LEAK_MB) {
            Ok(mb) => leak(who, mb),
            Err(error) => error,
        },
        Fault::Poison => {
            let _guard = cache.raw().lock();
            panic!("injected panic while holding the shared cache lock");
        }
    }
}

/// A real memory fault (not `raise(SIGSEGV)`): a store to an unmapped page.
fn segfault() -> ! {
    // SAFETY: deliberately unsound: a dangling `u64` pointer is address 8,
    // which Linux never maps (mmap_min_addr), so this store faults and the
    // kernel sends SIGSEGV. Rust's own SIGSEGV handler sees a fault outside
    // any guard page, restores the default action, and the retried store
    // kills the process.
    unsafe { std::ptr::write_volatile(std::ptr::dangling_mut::<u64>(), 0xdead) };
    unreachable!("the store to a dangling pointer did not fault");
}

/// Recursion the optimiser can't remove or turn into a loop.
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    if depth == u64::MAX {
        return frame[0];
    }
    recurse(std::hint::black_box(depth + 1)) + frame[1]
}

/// Allocates `mb` MiB, writes every page (so it counts in RSS) and forgets it.
fn leak(who: &Identity, mb: u64) -> Response {
    let started = Instant::now();
    // Non-zero fill: the allocator must write (so commit) every page.
    let block = vec![1u8; (mb * 1024 * 1024) as usize].leak();
    std::hint::black_box(block);
    report(who, "leak", started, &[("mb", mb)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_has_one_name() {
        for (name, fault) in NAMES {
            assert_eq!(Fault::named(name), Some(fault));
            assert_eq!(fault.name(), name);
        }
        for name in ["", "Panic", "leak?mb=1", "nope"] {
            assert_eq!(Fault::named(name), None, "{name}");
        }
    }
}
