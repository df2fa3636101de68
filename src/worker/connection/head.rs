//! Finding the next request head in a connection's input.
//!
//! Skips the one empty line (CRLF) a client may send before a request line,
//! feeds the head's bytes to `http::request::HeadScanner` (which scans only
//! bytes it has not scanned yet, so a growing head is never rescanned, and
//! refuses bad framing or a head over the limits before it is complete),
//! and parses a complete one. It starts the header timer at the first byte
//! of a head (the empty line counts).
//!
//! It reads nothing from the socket (the connection fills the buffer) and
//! knows no HTTP grammar itself (`http::request` does).

use super::read_buffer::ReadBuffer;
use super::timers::Timers;
use crate::http::Request;
use crate::http::RequestError;
use crate::http::request::{HeadScanner, parse_scanned_head};

/// Most CR/LF bytes skipped before a request line: one empty line, CR LF.
/// RFC 9112 section 2.2 says to ignore at least one; a second is a 400
/// (issue 11: it was two, and every byte we tolerate that a proxy in front
/// may not is room for smuggling).
pub(super) const MAX_LEADING_CRLF: u32 = 2;

/// Where the search for the pending head's end stands.
#[derive(Debug, Default)]
pub(super) struct HeadScan {
    /// The pending head's scan (how far, which line).
    scanner: HeadScanner,
    /// How many CR/LF bytes were skipped before the pending head.
    leading_crlf: u32,
}

impl HeadScan {
    /// Parses the next request head into `req` if `input` holds all of it
    /// (`Ok(true)`, and the head is consumed); `Ok(false)`: need more.
    pub(super) fn next(
        &mut self,
        input: &mut ReadBuffer,
        timers: &mut Timers,
        max_header_bytes: usize,
        req: &mut Request,
    ) -> Result<bool, RequestError> {
        // RFC 9112 2.2: ignore an empty line before a request line (some
        // clients send a stray CRLF after a body). It starts the header
        // timer like any byte of the request, so it can't be used to keep
        // a connection open; it must be CR LF, like every line.
        while let Some(&byte) = input.pending().first() {
            let after_cr = self.leading_crlf % 2 == 1;
            if !after_cr && byte != b'\r' && byte != b'\n' {
                break;
            }
            timers.head_begun();
            match (after_cr, byte) {
                (false, b'\r') | (true, b'\n') => {}
                (false, _) => return Err(RequestError::BadRequest("bare LF before the request")),
                (true, _) => return Err(RequestError::BadRequest("bare CR before the request")),
            }
            self.leading_crlf += 1;
            if self.leading_crlf > MAX_LEADING_CRLF {
                return Err(RequestError::BadRequest(
                    "more than one empty line before the request",
                ));
            }
            input.consume(1);
        }
        let pending = input.pending();
        match self.scanner.scan(pending, max_header_bytes)? {
            Some(end) => {
                parse_scanned_head(&pending[..end], req)?;
                input.consume(end);
                self.leading_crlf = 0;
                timers.head_done();
                Ok(true)
            }
            None => {
                if !pending.is_empty() {
                    timers.head_begun();
                }
                Ok(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    const MAX: usize = 256;

    struct Parts {
        scan: HeadScan,
        input: ReadBuffer,
        timers: Timers,
        req: Request,
    }

    impl Parts {
        fn new() -> Parts {
            Parts {
                scan: HeadScan::default(),
                input: ReadBuffer::new(MAX + 64),
                timers: Timers::new(Instant::now(), Duration::from_secs(10)),
                req: Request::default(),
            }
        }

        fn arrive(&mut self, mut bytes: &[u8]) {
            self.input.fill(&mut bytes).unwrap();
        }

        fn next(&mut self) -> Result<bool, RequestError> {
            let Parts {
                scan,
                input,
                timers,
                req,
            } = self;
            scan.next(input, timers, MAX, req)
        }
    }

    #[test]
    fn a_complete_head_is_parsed_and_consumed_and_the_next_one_stays() {
        let mut parts = Parts::new();
        parts.arrive(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n");
        assert_eq!(parts.next(), Ok(true));
        assert_eq!(parts.req.target, "/a");
        assert!(!parts.timers.reading_head(), "header timer stopped");
        assert_eq!(parts.input.pending(), b"GET /b HTTP/1.1\r\n");
        assert_eq!(parts.next(), Ok(false));
        assert!(parts.timers.reading_head(), "the next head has begun");
    }

    #[test]
    fn a_head_in_pieces_is_searched_from_where_the_last_search_stopped() {
        let mut parts = Parts::new();
        parts.arrive(b"GET /split HTTP/1.1\r\nHost: x\r");
        assert_eq!(parts.next(), Ok(false));
        assert_ne!(parts.scan.scanner, HeadScanner::default());
        // The terminator straddles the two reads.
        parts.arrive(b"\n\r\n");
        assert_eq!(parts.next(), Ok(true));
        assert_eq!(parts.req.target, "/split");
        assert_eq!(parts.scan.scanner, HeadScanner::default());
    }

    #[test]
    fn one_empty_line_is_skipped_and_starts_the_header_timer() {
        let mut parts = Parts::new();
        parts.arrive(b"\r");
        assert_eq!(parts.next(), Ok(false));
        assert!(parts.timers.reading_head());
        parts.arrive(b"\n");
        assert_eq!(parts.next(), Ok(false));
        assert!(parts.input.is_empty());
        parts.arrive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(parts.next(), Ok(true));
        // The count restarts with each request.
        parts.arrive(b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(parts.next(), Ok(true));
    }

    #[test]
    fn a_second_empty_line_or_a_bare_lf_or_cr_before_the_request_is_a_bad_request() {
        // Two empty lines were allowed before issue 11; now one is.
        for bad in [
            &b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"\r\n\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"\rGET / HTTP/1.1\r\nHost: x\r\n\r\n",
        ] {
            let mut parts = Parts::new();
            parts.arrive(bad);
            assert!(
                matches!(parts.next(), Err(RequestError::BadRequest(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_unfinished_head_over_the_limit_is_refused_before_it_ends() {
        let mut parts = Parts::new();
        parts.arrive(b"GET / HTTP/1.1\r\n");
        let field = format!("X-Long: {}\r\n", "a".repeat(MAX));
        parts.arrive(field.as_bytes());
        assert_eq!(parts.next(), Err(RequestError::HeadersTooLarge));
    }
}
