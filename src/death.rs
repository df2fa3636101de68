//! How a process ended: the one record of a worker's death that the
//! master logs, the scoreboard keeps for `/-/status`, and the dashboard
//! shows, in the words the log uses ("exited with code 3", "killed by
//! SIGSEGV (core dumped)"). It lives below every layer because all of them
//! read it; only the master writes one.

use std::fmt;

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Death {
    Exited(i32),
    Signaled { signal: i32, core_dumped: bool },
}

impl Death {
    /// A clean exit: code 0.
    pub(crate) fn is_clean(self) -> bool {
        self == Death::Exited(0)
    }

    pub(crate) fn code(self) -> Option<i32> {
        match self {
            Death::Exited(code) => Some(code),
            Death::Signaled { .. } => None,
        }
    }

    pub(crate) fn signal(self) -> Option<i32> {
        match self {
            Death::Exited(_) => None,
            Death::Signaled { signal, .. } => Some(signal),
        }
    }
}

impl fmt::Display for Death {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Death::Exited(code) => write!(f, "exited with code {code}"),
            Death::Signaled {
                signal,
                core_dumped,
            } => {
                write!(f, "killed by {}", crate::signals::name(signal))?;
                if core_dumped {
                    write!(f, " (core dumped)")?;
                }
                Ok(())
            }
        }
    }
}
