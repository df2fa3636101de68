//! HTTP/1.1 without I/O: request heads, body framing, response heads, dates.
//!
//! Everything here works on byte slices and plain values so it can be unit
//! tested and shared by every worker architecture; reading and writing
//! sockets is `worker::connection`'s job. [`Handler`] is the one interface
//! between the engine and the application that answers requests.

pub(crate) mod body;
pub(crate) mod date;
#[cfg(test)]
pub(crate) mod fuzz;
pub(crate) mod request;
pub(crate) mod response;

pub(crate) use request::{Method, Request, RequestError};
pub(crate) use response::{Body, Response};

/// What answers requests: the application a worker serves. The engine
/// (`worker`) knows only this trait; whoever starts a worker builds the
/// handler and hands it in. Every serving thread calls it at once, hence
/// `Sync`; a panic in it is caught by the caller and answered with a 500.
pub(crate) trait Handler: Send + Sync {
    fn handle(&self, req: &Request) -> Response;
}
