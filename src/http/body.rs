//! Request body framing: consume exactly one body, however it arrives.
//!
//! forkpool's handlers never need a request body, but the body must still be
//! read off the connection before the next pipelined request can be parsed.
//! [`BodyReader`] is a byte-at-a-time-safe state machine (no I/O) that eats a
//! Content-Length or chunked body from whatever slice the connection has,
//! enforcing `max_body_bytes`, and says when the body is complete. Chunk
//! extensions and trailers are skipped, never stored, and bounded so a
//! client can't keep us consuming framing without end: each size or
//! trailer line is at most [`MAX_CHUNK_LINE`] bytes, all the extensions of
//! one body together at most [`MAX_EXTENSION_BYTES`] (as hyper does), and
//! the whole trailer section at most `max_header_bytes`. Data bytes are
//! bounded by `max_body_bytes`. Past a bound the body is an error; as the
//! response went out before the body was read, the connection can only
//! close (with a linger), not answer 400 or 431.

use super::request::{BodyFraming, RequestError};

/// Longest chunk-size line (size, extensions) or trailer line we accept.
pub(crate) const MAX_CHUNK_LINE: u64 = 4096;
/// Most chunk-extension bytes in one body, all chunks together (hyper's
/// limit): one-byte chunks with long extensions are otherwise bounded only
/// by `max_body_bytes` times [`MAX_CHUNK_LINE`].
pub(crate) const MAX_EXTENSION_BYTES: u64 = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Fixed-length body: this many bytes left.
    Length(u64),
    /// Reading the hex size of the next chunk.
    Size {
        size: u64,
        digits: u32,
    },
    /// Skipping a chunk extension up to the end of the size line.
    Extension {
        size: u64,
    },
    /// Expecting the LF of the size line (the CR was seen).
    SizeLf {
        size: u64,
    },
    /// Inside a chunk's data: this many bytes left.
    Data(u64),
    /// After a chunk's data: expecting CR LF.
    DataCr,
    DataLf,
    /// After the last chunk: trailer lines until an empty one.
    /// `line` counts the bytes of the current line.
    Trailer {
        line: u64,
    },
    TrailerLf {
        line: u64,
    },
    Done,
}

/// Consumes one request body; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct BodyReader {
    state: State,
    /// Body bytes (data only, not framing) seen so far.
    received: u64,
    limit: u64,
    line: u64,
    /// Extension bytes seen so far, and the limit of the trailer section.
    extension_bytes: u64,
    trailer_bytes: u64,
    trailer_limit: u64,
}

impl BodyReader {
    /// A reader for `framing`, or an error if a declared length already
    /// exceeds `limit`. `trailer_limit` bounds the chunked trailer section
    /// (the connection passes `max_header_bytes`).
    pub(crate) fn new(
        framing: BodyFraming,
        limit: u64,
        trailer_limit: usize,
    ) -> Result<BodyReader, RequestError> {
        let state = match framing {
            BodyFraming::None => State::Done,
            BodyFraming::Length(len) if len > limit => return Err(RequestError::BodyTooLarge),
            BodyFraming::Length(len) => State::Length(len),
            BodyFraming::Chunked => State::Size { size: 0, digits: 0 },
        };
        Ok(BodyReader {
            state,
            received: 0,
            limit,
            line: 0,
            extension_bytes: 0,
            trailer_bytes: 0,
            trailer_limit: trailer_limit as u64,
        })
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Body data bytes (not framing) consumed so far.
    pub(crate) fn received(&self) -> u64 {
        self.received
    }

    /// Consumes body bytes from the front of `input`; returns how many were
    /// consumed. Stops at the end of the body, leaving what follows (the next
    /// pipelined request) untouched.
    pub(crate) fn consume(&mut self, input: &[u8]) -> Result<usize, RequestError> {
        let mut pos = 0;
        while pos < input.len() {
            match self.state {
                State::Done => break,
                State::Length(left) => {
                    let take = left.min((input.len() - pos) as u64);
                    pos += take as usize;
                    self.received += take;
                    self.state = if take == left {
                        State::Done
                    } else {
                        State::Length(left - take)
                    };
                }
                State::Data(left) => {
                    let take = left.min((input.len() - pos) as u64);
                    pos += take as usize;
                    self.received += take;
                    self.state = if take == left {
                        State::DataCr
                    } else {
                        State::Data(left - take)
                    };
                }
                _ => {
                    self.step(input[pos])?;
                    pos += 1;
                }
            }
        }
        Ok(pos)
    }

    /// One byte of chunked framing.
    fn step(&mut self, byte: u8) -> Result<(), RequestError> {
        self.line += 1;
        if self.line > MAX_CHUNK_LINE {
            return Err(RequestError::BadRequest("chunk line too long"));
        }
        match self.state {
            State::Extension { .. } => {
                self.extension_bytes += 1;
                if self.extension_bytes > MAX_EXTENSION_BYTES {
                    return Err(RequestError::BadRequest("chunk extensions too long"));
                }
            }
            State::Trailer { .. } | State::TrailerLf { .. } => {
                self.trailer_bytes += 1;
                if self.trailer_bytes > self.trailer_limit {
                    return Err(RequestError::HeadersTooLarge);
                }
            }
            _ => {}
        }
        self.state = match (self.state, byte) {
            (State::Size { size, digits }, b) if b.is_ascii_hexdigit() => {
                if digits >= 15 {
                    return Err(RequestError::BadRequest("chunk size too large"));
                }
                let digit = (b as char).to_digit(16).unwrap_or(0) as u64;
                State::Size {
                    size: size * 16 + digit,
                    digits: digits + 1,
                }
            }
            (State::Size { digits: 0, .. }, _) => {
                return Err(RequestError::BadRequest("invalid chunk size"));
            }
            (State::Size { size, .. }, b';' | b' ' | b'\t') => State::Extension { size },
            (State::Size { size, .. } | State::Extension { size }, b'\r') => State::SizeLf { size },
            (
                State::Size { size, .. } | State::Extension { size } | State::SizeLf { size },
                b'\n',
            ) => {
                self.line = 0;
                self.start_chunk(size)?
            }
            (State::Size { .. }, _) => return Err(RequestError::BadRequest("invalid chunk size")),
            (State::Extension { size }, _) => State::Extension { size },
            (State::SizeLf { .. }, _) => {
                return Err(RequestError::BadRequest("bad chunk line end"));
            }
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataCr | State::DataLf, b'\n') => {
                self.line = 0;
                State::Size { size: 0, digits: 0 }
            }
            (State::DataCr | State::DataLf, _) => {
                return Err(RequestError::BadRequest("missing CRLF after chunk data"));
            }
            (State::Trailer { line } | State::TrailerLf { line }, b'\n') => {
                self.line = 0;
                if line == 0 {
                    State::Done
                } else {
                    State::Trailer { line: 0 }
                }
            }
            (State::Trailer { line }, b'\r') => State::TrailerLf { line },
            (State::Trailer { line }, _) => State::Trailer { line: line + 1 },
            (State::TrailerLf { .. }, _) => {
                return Err(RequestError::BadRequest("bad trailer line end"));
            }
            (State::Length(_) | State::Data(_) | State::Done, _) => self.state,
        };
        Ok(())
    }

    fn start_chunk(&mut self, size: u64) -> Result<State, RequestError> {
        if size == 0 {
            return Ok(State::Trailer { line: 0 });
        }
        if self.received + size > self.limit {
            return Err(RequestError::BodyTooLarge);
        }
        Ok(State::Data(size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eat_all(
        framing: BodyFraming,
        input: &[u8],
        step: usize,
    ) -> Result<(usize, bool), RequestError> {
        let mut reader = BodyReader::new(framing, 1000, 100)?;
        let mut total = 0;
        for piece in input.chunks(step) {
            let used = reader.consume(piece)?;
            total += used;
            if used < piece.len() {
                break;
            }
        }
        Ok((total, reader.is_done()))
    }

    #[test]
    fn content_length_stops_at_the_end() {
        for step in [1, 2, 3, 100] {
            assert_eq!(
                eat_all(BodyFraming::Length(5), b"helloGET /", step).unwrap(),
                (5, true)
            );
        }
        assert_eq!(
            eat_all(BodyFraming::Length(5), b"hel", 100).unwrap(),
            (3, false)
        );
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let body = b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        for step in [1, 2, 7, 1000] {
            assert_eq!(
                eat_all(BodyFraming::Chunked, body, step).unwrap(),
                (body.len() - 4, true),
                "step {step}"
            );
        }
        // bare LF line ends are tolerated
        assert_eq!(
            eat_all(BodyFraming::Chunked, b"3\nabc\n0\n\n", 1).unwrap(),
            (9, true)
        );
    }

    #[test]
    fn limits_are_enforced() {
        assert_eq!(
            BodyReader::new(BodyFraming::Length(1001), 1000, 100).unwrap_err(),
            RequestError::BodyTooLarge
        );
        assert_eq!(
            eat_all(BodyFraming::Chunked, b"3e9\r\n", 1000).unwrap_err(),
            RequestError::BodyTooLarge
        );
        let many = b"1f4\r\n"
            .iter()
            .chain([b'a'; 500].iter())
            .chain(b"\r\n1f5\r\n".iter())
            .copied()
            .collect::<Vec<u8>>();
        assert_eq!(
            eat_all(BodyFraming::Chunked, &many, 1000).unwrap_err(),
            RequestError::BodyTooLarge
        );
        assert!(matches!(
            eat_all(BodyFraming::Chunked, b"ffffffffffffffffff\r\n", 1000),
            Err(RequestError::BadRequest(_))
        ));
        let long_ext = [b"1;".as_slice(), &[b'x'; 5000]].concat();
        assert!(matches!(
            eat_all(BodyFraming::Chunked, &long_ext, 1000),
            Err(RequestError::BadRequest(_))
        ));
    }

    #[test]
    fn endless_trailers_and_extensions_are_cut_off() {
        // Each trailer line is short; the section as a whole is too long.
        let mut trailers = b"0\r\n".to_vec();
        for _ in 0..20 {
            trailers.extend_from_slice(b"X-T: 1\r\n");
        }
        assert_eq!(
            eat_all(BodyFraming::Chunked, &trailers, 7).unwrap_err(),
            RequestError::HeadersTooLarge
        );
        // Short enough: fine.
        assert_eq!(
            eat_all(BodyFraming::Chunked, b"0\r\nX-T: 1\r\n\r\n", 3).unwrap(),
            (13, true)
        );
        // Each extension is short; together they are too long.
        let ext = format!("1;{}\r\na\r\n", "e".repeat(1000));
        let many = ext.repeat(20);
        let mut reader = BodyReader::new(BodyFraming::Chunked, 1 << 20, 100).unwrap();
        assert!(matches!(
            reader.consume(many.as_bytes()),
            Err(RequestError::BadRequest(_))
        ));
        let mut reader = BodyReader::new(BodyFraming::Chunked, 1 << 20, 100).unwrap();
        assert_eq!(
            reader.consume(ext.repeat(15).as_bytes()).unwrap(),
            ext.len() * 15
        );
        assert_eq!(reader.received(), 15);
    }

    #[test]
    fn malformed_chunks_are_400() {
        for bad in [&b"x\r\n"[..], b"\r\n", b"3\r\nabcX", b"3\rX"] {
            assert!(
                matches!(
                    eat_all(BodyFraming::Chunked, bad, 1),
                    Err(RequestError::BadRequest(_))
                ),
                "{bad:?}"
            );
        }
    }
}
