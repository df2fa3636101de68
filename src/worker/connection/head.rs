//! Finding the next request head in a connection's input.
//!
//! Skips the empty lines a client may send before a request line, searches
//! for the head's end only in bytes it has not searched yet (no rescanning
//! a growing head on every read), refuses a head over the limits before it
//! is complete, and parses a complete one. It starts the header timer at
//! the first byte of a head (an empty line counts).
//!
//! It reads nothing from the socket (the connection fills the buffer) and
//! knows no HTTP grammar itself (`http::request` does).

use super::read_buffer::ReadBuffer;
use super::timers::Timers;
use crate::http::Request;
use crate::http::RequestError;
use crate::http::request::{check_partial_head, find_head_end, parse_head};

/// Most CR/LF bytes skipped before a request line: two empty lines (RFC
/// 9112 section 2.2 says to ignore at least one).
pub(super) const MAX_LEADING_CRLF: u32 = 4;

/// Where the search for the pending head's end stands.
#[derive(Debug, Default)]
pub(super) struct HeadScan {
    /// How many bytes of the pending head were already searched for its end.
    scanned: usize,
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
        // RFC 9112 2.2: ignore an empty line or two before a request line
        // (some clients send a stray CRLF after a body). They start the
        // header timer like any byte of the request, so they can't be used
        // to keep a connection open.
        while matches!(input.pending().first(), Some(b'\r' | b'\n')) {
            timers.head_begun();
            self.leading_crlf += 1;
            if self.leading_crlf > MAX_LEADING_CRLF {
                return Err(RequestError::BadRequest("empty lines before the request"));
            }
            input.consume(1);
        }
        let pending = input.pending();
        match find_head_end(pending, self.scanned) {
            Some(end) => {
                parse_head(&pending[..end], max_header_bytes, req)?;
                input.consume(end);
                self.scanned = 0;
                self.leading_crlf = 0;
                timers.head_done();
                Ok(true)
            }
            None => {
                self.scanned = pending.len();
                if !pending.is_empty() {
                    timers.head_begun();
                }
                check_partial_head(pending, max_header_bytes)?;
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
        assert_eq!(parts.scan.scanned, parts.input.pending().len());
        // The terminator straddles the two reads.
        parts.arrive(b"\n\r\n");
        assert_eq!(parts.next(), Ok(true));
        assert_eq!(parts.req.target, "/split");
        assert_eq!(parts.scan.scanned, 0);
    }

    #[test]
    fn up_to_two_empty_lines_are_skipped_and_start_the_header_timer() {
        let mut parts = Parts::new();
        parts.arrive(b"\r\n\r\n");
        assert_eq!(parts.next(), Ok(false));
        assert!(parts.timers.reading_head());
        assert!(parts.input.is_empty());
        parts.arrive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(parts.next(), Ok(true));
        // The count restarts with each request.
        parts.arrive(b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(parts.next(), Ok(true));
    }

    #[test]
    fn more_empty_lines_are_a_bad_request() {
        let mut parts = Parts::new();
        parts.arrive(b"\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n");
        assert!(matches!(parts.next(), Err(RequestError::BadRequest(_))));
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
