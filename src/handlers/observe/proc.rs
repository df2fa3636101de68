//! What the kernel knows of a process, read from `/proc/PID`: context
//! switches (`task/*/status`), CPU time (`stat`) and memory
//! (`smaps_rollup`).
//!
//! Read only when asked: reading `smaps_rollup` briefly takes the kernel's
//! lock on that process's memory map. Nothing here knows about workers or
//! the scoreboard; a process that is gone (or not ours) reads as `None`.

use std::fs;

use serde::Serialize;

/// What the kernel says about one process. Every field is summed over all
/// of its threads where the kernel counts per thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct OsStats {
    pub(crate) voluntary_ctxt_switches: u64,
    pub(crate) nonvoluntary_ctxt_switches: u64,
    pub(crate) cpu_user_ms: u64,
    pub(crate) cpu_sys_ms: u64,
    pub(crate) rss_kib: u64,
    pub(crate) pss_kib: u64,
    /// Unique set size: the private pages, what killing it would free.
    pub(crate) uss_kib: u64,
    pub(crate) threads: u64,
}

impl OsStats {
    /// Reads `/proc/PID`; `None` if the process is gone (or not ours).
    pub(crate) fn read(pid: i32) -> Option<OsStats> {
        let mut stats = OsStats::default();
        // `/proc/PID/status` counts the main thread's switches only; the
        // process's are the sum over its tasks.
        for task in fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
            let Ok(status) = fs::read_to_string(task.path().join("status")) else {
                continue; // the thread ended while we looked
            };
            stats.threads += 1;
            stats.voluntary_ctxt_switches += field(&status, "voluntary_ctxt_switches:");
            stats.nonvoluntary_ctxt_switches += field(&status, "nonvoluntary_ctxt_switches:");
        }
        let (user_ticks, sys_ticks) =
            cpu_ticks(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
        let tick_ms = 1000 / clock_ticks_per_second();
        stats.cpu_user_ms = user_ticks * tick_ms;
        stats.cpu_sys_ms = sys_ticks * tick_ms;
        let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
        stats.rss_kib = field(&rollup, "Rss:");
        stats.pss_kib = field(&rollup, "Pss:");
        stats.uss_kib = field(&rollup, "Private_Clean:") + field(&rollup, "Private_Dirty:");
        Some(stats)
    }

    /// Adds `other`'s figures to these (for totals over processes).
    pub(crate) fn add(&mut self, other: &OsStats) {
        self.voluntary_ctxt_switches += other.voluntary_ctxt_switches;
        self.nonvoluntary_ctxt_switches += other.nonvoluntary_ctxt_switches;
        self.cpu_user_ms += other.cpu_user_ms;
        self.cpu_sys_ms += other.cpu_sys_ms;
        self.rss_kib += other.rss_kib;
        self.pss_kib += other.pss_kib;
        self.uss_kib += other.uss_kib;
        self.threads += other.threads;
    }
}

/// The number after `name` in a `/proc` "Name: value" file (0 if absent).
fn field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

/// utime and stime (fields 14 and 15) of `/proc/PID/stat`, in clock ticks.
/// The command name (field 2) may hold spaces and parentheses, so count
/// from the last `)`.
fn cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    let mut after_name = stat[stat.rfind(')')? + 1..].split_whitespace();
    // After the name come field 3 (state) onwards: utime is the 12th of them.
    let utime = after_name.nth(11)?.parse().ok()?;
    let stime = after_name.next()?.parse().ok()?;
    Some((utime, stime))
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields_parse() {
        let status = "Name:\tx\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n";
        assert_eq!(field(status, "voluntary_ctxt_switches:"), 12);
        assert_eq!(field(status, "nonvoluntary_ctxt_switches:"), 3);
        assert_eq!(field(status, "Missing:"), 0);
        // A command name with spaces and a parenthesis can't shift the fields.
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 9 0 0 20 0 1 0";
        assert_eq!(cpu_ticks(stat), Some((7, 9)));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn this_process_has_os_stats() {
        let me = OsStats::read(std::process::id() as i32).expect("our own /proc");
        assert!(me.threads >= 1);
        assert!(me.rss_kib > 0 && me.pss_kib > 0 && me.uss_kib > 0);
        assert!(me.voluntary_ctxt_switches + me.nonvoluntary_ctxt_switches > 0);
        assert_eq!(OsStats::read(-1), None);
    }

    #[test]
    fn stats_add_up_field_by_field() {
        let one = OsStats {
            voluntary_ctxt_switches: 1,
            nonvoluntary_ctxt_switches: 2,
            cpu_user_ms: 3,
            cpu_sys_ms: 4,
            rss_kib: 5,
            pss_kib: 6,
            uss_kib: 7,
            threads: 8,
        };
        let mut sum = OsStats::default();
        sum.add(&one);
        sum.add(&one);
        assert_eq!(
            sum,
            OsStats {
                voluntary_ctxt_switches: 2,
                nonvoluntary_ctxt_switches: 4,
                cpu_user_ms: 6,
                cpu_sys_ms: 8,
                rss_kib: 10,
                pss_kib: 12,
                uss_kib: 14,
                threads: 16,
            }
        );
    }
}
