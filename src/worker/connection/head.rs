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

    use proptest::prelude::*;

    use super::*;
    use crate::http::body::BodyReader;
    use crate::http::fuzz::{config, cuts, edit, edited, input, pieces, request};

    const MAX: usize = 256;

    struct Parts {
        scan: HeadScan,
        input: ReadBuffer,
        timers: Timers,
        req: Request,
        max: usize,
    }

    impl Parts {
        fn new() -> Parts {
            Parts::with_max(MAX)
        }

        /// As the connection sets them up: room for a maximal head plus
        /// a little.
        fn with_max(max: usize) -> Parts {
            Parts {
                scan: HeadScan::default(),
                input: ReadBuffer::new(max + 1024),
                timers: Timers::new(Instant::now(), Duration::from_secs(10)),
                req: Request::default(),
                max,
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
                max,
            } = self;
            scan.next(input, timers, *max, req)
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

    /// What the connection's loop makes of a stream (see [`run`]).
    #[derive(Debug, PartialEq)]
    enum Event {
        /// A head parsed into this request (its Debug form).
        Head(String),
        HeadError(RequestError),
        /// A body read whole: so many data bytes.
        Body(u64),
        BodyError(RequestError),
        /// The connection stops reading: the request doesn't keep it open.
        Close,
        /// Every byte was delivered; so many are held, unparsed.
        Waiting(usize),
    }

    /// The connection's loop (`Connection::work`) over a byte stream that
    /// arrives in `pieces`, without sockets or a handler: each read fills
    /// the input buffer, heads go through [`HeadScan`], bodies through
    /// `BodyReader`; it stops where the connection stops reading. Fails
    /// the property if a read finds the buffer full or an unfinished head
    /// held past the limit.
    fn run(pieces: &[&[u8]], max: usize) -> Result<Vec<Event>, TestCaseError> {
        let mut parts = Parts::with_max(max);
        let mut events = Vec::new();
        let mut body: Option<BodyReader> = None;
        let mut reads = pieces.iter().copied();
        let mut unread: &[u8] = &[];
        loop {
            loop {
                if let Some(reader) = &mut body {
                    match reader.consume(parts.input.pending()) {
                        Ok(used) => parts.input.consume(used),
                        Err(err) => {
                            events.push(Event::BodyError(err));
                            return Ok(events);
                        }
                    }
                    prop_assert!(reader.within_bounds(), "{reader:?}");
                    if !reader.is_done() {
                        break;
                    }
                    events.push(Event::Body(reader.received()));
                    body = None;
                }
                match parts.next() {
                    Ok(true) => {
                        events.push(Event::Head(format!("{:?}", parts.req)));
                        let reader = match BodyReader::new(parts.req.body, 1 << 20, max) {
                            Ok(reader) => reader,
                            Err(err) => {
                                events.push(Event::HeadError(err));
                                return Ok(events);
                            }
                        };
                        let unsent = !reader.is_done() && parts.req.expect_continue;
                        if !parts.req.keep_alive || unsent {
                            events.push(Event::Close);
                            return Ok(events);
                        }
                        body = Some(reader);
                    }
                    Ok(false) => break,
                    Err(err) => {
                        events.push(Event::HeadError(err));
                        return Ok(events);
                    }
                }
            }
            let held = parts.input.pending().len();
            prop_assert!(held <= max, "{held} bytes of an unfinished head held");
            while unread.is_empty() {
                match reads.next() {
                    Some(piece) => unread = piece,
                    None => {
                        events.push(Event::Waiting(held));
                        return Ok(events);
                    }
                }
            }
            // `&[u8]` reads from its front and moves past what was read.
            let read = parts.input.fill(&mut unread);
            prop_assert!(read.is_ok(), "a read found the buffer full: {read:?}");
        }
    }

    proptest! {
        #![proptest_config(config())]

        /// The connection's loop over random streams (pipelined valid
        /// requests, edited or not, and the fuzzer's other inputs): the
        /// same events however the stream is split into reads, nothing
        /// held past the limits, no panic.
        #[test]
        fn fuzzed_streams_give_the_same_events_however_they_are_split(
            bytes in prop_oneof![
                1 => proptest::collection::vec(input(), 1..4).prop_map(|s| s.concat()),
                2 => (
                    proptest::collection::vec(request(), 1..6),
                    input(),
                    proptest::collection::vec(edit(), 0..3),
                ).prop_map(|(requests, tail, edits)| {
                    let mut stream: Vec<u8> =
                        requests.iter().flat_map(|r| r.request_bytes().to_vec()).collect();
                    stream.extend_from_slice(&tail);
                    edited(stream, &edits)
                }),
            ],
            cuts in cuts(),
            max in prop_oneof![Just(16 * 1024), 64..4096usize],
        ) {
            let whole = run(&[&bytes], max)?;
            prop_assert_eq!(&run(&pieces(&bytes, &cuts), max)?, &whole);
            if bytes.len() <= 2048 {
                let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
                prop_assert_eq!(&run(&bytewise, max)?, &whole);
            }
        }
    }
}
