//! forkpool: a prefork HTTP/1.1 server whose workers run as single
//! event-loop processes, as an event loop feeding a thread pool, or as
//! one event loop per thread, so the architectures can be load tested and
//! crash tested side by side. See README.md.
//!
//! # Layout
//!
//! Layers only import downwards:
//!
//! - [`master`] (top): binds, forks, supervises; decisions in a pure
//!   planner, effects beside it. It is the only user of `worker::run`, and
//!   the one place the application (`handlers::Router`) is plugged into
//!   the engine.
//! - `handlers`: the application. Routing, static files, the observability
//!   endpoints, the workloads and the faults. Knows HTTP messages, not
//!   sockets.
//! - `worker`: the engine. Event loops, the thread pool, the one
//!   connection state machine every mode shares. Knows only the
//!   `http::Handler` interface, not the application.
//! - `http`: the protocol, without I/O (parsing, bodies, responses).
//! - Shared below everything: [`config`] (and [`cli`]), `scoreboard`
//!   (shared memory between master and workers), `changes` (the master
//!   telling every worker that files changed, for live reload), `signals`,
//!   `death`.
//!
//! The binary uses [`cli`], [`config`] and [`master`]; everything else is
//! private to the crate.

#![warn(clippy::undocumented_unsafe_blocks)]

mod changes;
pub mod cli;
pub mod config;
mod death;
mod handlers;
mod http;
pub mod master;
mod scoreboard;
mod signals;
mod worker;
