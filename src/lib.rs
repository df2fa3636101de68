//! forkpool: a prefork HTTP/1.1 server whose workers run either as single
//! event-loop processes or as thread pools, so the two architectures can be
//! load tested and crash tested side by side. See README.md.

pub mod cli;
pub mod config;
pub mod death;
pub mod handlers;
pub mod http;
pub mod master;
pub mod scoreboard;
pub mod signals;
pub mod worker;
