//! HTTP responses: what a handler returns, and how its head is serialised.
//!
//! A handler builds a [`Response`] (status, extra headers, a [`Body`]); the
//! connection writes it. This module only turns a response head into bytes:
//! it adds the headers every response carries (`Server`, `Date`,
//! `Content-Length`, `Connection`) so no handler can forget them. It does no
//! I/O: streaming a file body, or the events of an event stream, is the
//! connection's job.

use std::borrow::Cow;
use std::fs::File;
use std::sync::Arc;
use std::time::Instant;

/// The value of the `Server` header on every response.
pub(crate) const SERVER_NAME: &str = concat!("forkpool/", env!("CARGO_PKG_VERSION"));

/// A header value: most are static strings, a few (ETag, dates, ranges) are built.
pub(crate) type HeaderValue = Cow<'static, str>;

/// What a handler answers.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// Extra headers, in order. Never `Date`, `Server`, `Content-Length` or
    /// `Connection`: the writer owns those.
    pub(crate) headers: Vec<(&'static str, HeaderValue)>,
    pub(crate) body: Body,
    /// Close the connection after this response (the handler's wish; the
    /// connection may also close for its own reasons).
    pub(crate) close: bool,
    /// Send it no earlier than this: how a handler on the event loop waits
    /// without blocking the loop (a timer, not a sleep).
    pub(crate) not_before: Option<Instant>,
    /// Whether it counts in the worker's request and byte counters: not for
    /// the observability endpoints, so watching a run doesn't change it.
    pub(crate) counted: bool,
}

/// A response body. Its length is known up front, so every response
/// carries a correct `Content-Length` (we never need chunked responses),
/// except an event stream's, which has no end: its end is the close.
#[derive(Debug)]
pub(crate) enum Body {
    Empty,
    Static(&'static [u8]),
    Bytes(Vec<u8>),
    /// Bytes shared with a cache: handing them over is a reference count,
    /// not a copy.
    Shared(Arc<[u8]>),
    /// `len` bytes of `file` starting at `offset`, streamed by the connection
    /// (read into the write buffer when small, `sendfile` when large).
    File {
        file: File,
        offset: u64,
        len: u64,
    },
    /// A live-reload event stream (Server-Sent Events): the connection
    /// stays open, writes an event for each change the worker's change
    /// feed publishes after generation `since`, and closes when either
    /// side is done. No `Content-Length`; always `Connection: close`.
    Events {
        since: u64,
    },
}

impl Body {
    pub(crate) fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Static(b) => b.len() as u64,
            Body::Bytes(b) => b.len() as u64,
            Body::Shared(b) => b.len() as u64,
            Body::File { len, .. } => *len,
            Body::Events { .. } => 0,
        }
    }
}

impl Response {
    pub(crate) fn new(status: u16, body: Body) -> Response {
        Response {
            status,
            headers: Vec::with_capacity(8),
            body,
            close: false,
            not_before: None,
            counted: true,
        }
    }

    /// Leaves this response out of the request counters (builder style).
    pub(crate) fn uncounted(mut self) -> Response {
        self.counted = false;
        self
    }

    /// Adds a header (builder style).
    pub(crate) fn header(mut self, name: &'static str, value: impl Into<HeaderValue>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// A short plain-text answer, used for errors: `404 Not Found\n`.
    pub(crate) fn text(status: u16, text: impl Into<String>) -> Response {
        let mut body = text.into();
        if !body.ends_with('\n') {
            body.push('\n');
        }
        Response::new(status, Body::Bytes(body.into_bytes()))
            .header("Content-Type", "text/plain; charset=utf-8")
    }

    /// The standard error answer for a status: its reason phrase as the body.
    pub(crate) fn error(status: u16) -> Response {
        Response::text(status, format!("{} {}", status, reason(status)))
    }

    /// Does this status forbid a body (and a `Content-Length`)?
    pub(crate) fn status_has_no_body(status: u16) -> bool {
        (100..200).contains(&status) || status == 204 || status == 304
    }

    /// Appends the status line and headers, ending with the blank line.
    ///
    /// `keep_alive` decides the `Connection` header: HTTP/1.1 gets
    /// `Connection: close` only when closing; HTTP/1.0 gets
    /// `Connection: keep-alive` only when staying open.
    pub(crate) fn write_head(&self, out: &mut Vec<u8>, date: &str, http10: bool, keep_alive: bool) {
        let mut num = itoa::Buffer::new();
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(num.format(self.status).as_bytes());
        out.push(b' ');
        out.extend_from_slice(reason(self.status).as_bytes());
        out.extend_from_slice(b"\r\nServer: ");
        out.extend_from_slice(SERVER_NAME.as_bytes());
        out.extend_from_slice(b"\r\nDate: ");
        out.extend_from_slice(date.as_bytes());
        out.extend_from_slice(b"\r\n");
        let endless = matches!(self.body, Body::Events { .. });
        if !Response::status_has_no_body(self.status) && !endless {
            out.extend_from_slice(b"Content-Length: ");
            out.extend_from_slice(num.format(self.body.len()).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if !keep_alive || endless {
            // An endless body ends with the connection (RFC 9112 6.3).
            out.extend_from_slice(b"Connection: close\r\n");
        } else if http10 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// The reason phrase of a status code (RFC 9110 section 15).
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(resp: &Response, http10: bool, keep_alive: bool) -> String {
        let mut out = Vec::new();
        resp.write_head(
            &mut out,
            "Tue, 24 Nov 2026 07:30:00 GMT",
            http10,
            keep_alive,
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn head_has_the_mandatory_headers() {
        let r = Response::new(200, Body::Static(b"hello")).header("Content-Type", "text/plain");
        let h = head(&r, false, true);
        assert!(h.starts_with("HTTP/1.1 200 OK\r\n"), "{h}");
        assert!(h.contains("\r\nServer: forkpool/"));
        assert!(h.contains("\r\nDate: Tue, 24 Nov 2026 07:30:00 GMT\r\n"));
        assert!(h.contains("\r\nContent-Length: 5\r\n"));
        assert!(h.contains("\r\nContent-Type: text/plain\r\n"));
        assert!(!h.contains("Connection"));
        assert!(h.ends_with("\r\n\r\n"));
    }

    #[test]
    fn connection_header_follows_version_and_keep_alive() {
        let r = Response::new(200, Body::Empty);
        assert!(head(&r, false, false).contains("Connection: close\r\n"));
        assert!(head(&r, true, true).contains("Connection: keep-alive\r\n"));
        assert!(head(&r, true, false).contains("Connection: close\r\n"));
    }

    #[test]
    fn an_event_stream_has_no_length_and_ends_with_the_connection() {
        let r = Response::new(200, Body::Events { since: 3 });
        let h = head(&r, false, true);
        assert!(!h.contains("Content-Length"), "{h}");
        assert!(h.contains("Connection: close\r\n"), "{h}");
    }

    #[test]
    fn not_modified_has_no_content_length() {
        let r = Response::new(304, Body::Empty);
        assert!(!head(&r, false, true).contains("Content-Length"));
        let r = Response::new(204, Body::Empty);
        assert!(!head(&r, false, true).contains("Content-Length"));
    }
}
