//! Collecting dead children: `waitpid` until nothing is left to reap.
//!
//! Reaping every child the moment SIGCHLD arrives is what keeps zombies
//! away; [`Death`](crate::death::Death) says how each one ended.

use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::death::Death;

/// Every child that has ended since the last call, without blocking.
pub(crate) fn reap_all() -> Vec<(Pid, Death)> {
    let mut dead = Vec::new();
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => dead.push((pid, Death::Exited(code))),
            Ok(WaitStatus::Signaled(pid, signal, core_dumped)) => dead.push((
                pid,
                Death::Signaled {
                    signal: signal as i32,
                    core_dumped,
                },
            )),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return dead,
            Err(Errno::EINTR) => {}
            // Stopped/continued children are not deaths; keep looking.
            Ok(_) => {}
            Err(err) => {
                log::error!("waitpid: {err}");
                return dead;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deaths_read_like_the_log() {
        assert_eq!(Death::Exited(3).to_string(), "exited with code 3");
        let segv = Death::Signaled {
            signal: 11,
            core_dumped: true,
        };
        assert_eq!(segv.to_string(), "killed by SIGSEGV (core dumped)");
        assert!(Death::Exited(0).is_clean());
        assert!(!segv.is_clean());
    }
}
