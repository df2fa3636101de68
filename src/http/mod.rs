//! HTTP/1.1 without I/O: request heads, body framing, response heads, dates.
//!
//! Everything here works on byte slices and plain values so it can be unit
//! tested and shared by both worker architectures; reading and writing
//! sockets is `worker::connection`'s job.

pub mod body;
pub mod date;
pub mod request;
pub mod response;

pub use request::{Method, Request, RequestError};
pub use response::{Body, Response};
