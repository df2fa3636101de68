//! Request body framing: consume exactly one body, however it arrives.
//!
//! forkpool's handlers never need a request body, but the body must still be
//! read off the connection before the next pipelined request can be parsed.
//! [`BodyReader`] is a byte-at-a-time-safe state machine (no I/O) that eats a
//! Content-Length or chunked body from whatever slice the connection has,
//! enforcing `max_body_bytes`, and says when the body is complete.
//!
//! The chunked framing is checked strictly against RFC 9112 section 7.1 (a
//! lenient decoder behind a proxy that decodes differently is a smuggling
//! primitive): every line ends in CRLF (a bare LF or CR is an error), the
//! size is hex digits only, extensions follow the grammar
//! `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`, and
//! each trailer line is a field (`name ":" value`) whose name is not one
//! that frames or routes a message (Content-Length, Host...).
//!
//! Chunk extensions and trailers are skipped, never stored, and bounded so
//! a client can't keep us consuming framing without end: each size or
//! trailer line is at most [`MAX_CHUNK_LINE`] bytes, all the extensions of
//! one body together at most [`MAX_EXTENSION_BYTES`] (as hyper does), and
//! the whole trailer section at most `max_header_bytes`. Data bytes are
//! bounded by `max_body_bytes`. Past a bound, or on bad framing, the body
//! is an error; as the response went out before the body was read, the
//! connection can only close (with a linger), not answer 400 or 431.

use super::request::{BodyFraming, RequestError, is_tchar};

/// Longest chunk-size line (size, extensions) or trailer line we accept.
pub(crate) const MAX_CHUNK_LINE: u64 = 4096;
/// Most chunk-extension bytes in one body, all chunks together (hyper's
/// limit): one-byte chunks with long extensions are otherwise bounded only
/// by `max_body_bytes` times [`MAX_CHUNK_LINE`].
pub(crate) const MAX_EXTENSION_BYTES: u64 = 16 * 1024;

/// Trailer fields refused (RFC 9110 6.5.1: a trailer must not frame, route
/// or control the connection); names are compared in lower case.
const FORBIDDEN_TRAILERS: [&[u8]; 8] = [
    b"content-length",
    b"transfer-encoding",
    b"host",
    b"trailer",
    b"te",
    b"connection",
    b"keep-alive",
    b"upgrade",
];
/// The longest name in [`FORBIDDEN_TRAILERS`]: longer names are not kept.
const LONGEST_FORBIDDEN: usize = 17;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Fixed-length body: this many bytes left.
    Length(u64),
    /// Reading the hex size of the next chunk.
    Size {
        size: u64,
        digits: u32,
    },
    /// In the chunk extensions after the size.
    Ext {
        size: u64,
        at: Ext,
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
    /// After the last chunk, at the start of a line: a trailer field, or
    /// the empty line that ends the body.
    TrailerStart,
    /// In a trailer field's name, then its value, then expecting its LF.
    TrailerName,
    TrailerValue,
    TrailerLf,
    /// Expecting the LF of the empty line that ends the body.
    EndLf,
    Done,
}

/// Where in `chunk-ext` the decoder is (RFC 9112 7.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ext {
    /// Whitespace after the size or a value: only `;` may follow.
    Ws,
    /// After `;`: optional whitespace, then a name.
    NameStart,
    Name,
    /// Whitespace after a name: `=` or `;` may follow.
    AfterName,
    /// After `=`: optional whitespace, then a token or a quoted string.
    ValueStart,
    Token,
    Quoted,
    /// After a backslash in a quoted string.
    QuotedPair,
    AfterQuoted,
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
    /// The current trailer's name, lower case, while it is short enough to
    /// be a forbidden one; `name_len` counts up to one past that.
    name: [u8; LONGEST_FORBIDDEN],
    name_len: usize,
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
            name: [0; LONGEST_FORBIDDEN],
            name_len: 0,
        })
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Body data bytes (not framing) consumed so far.
    pub(crate) fn received(&self) -> u64 {
        self.received
    }

    /// Checks the bounds the module docs promise (for the fuzzer): the
    /// current framing line, the extensions, the trailers and the data.
    #[cfg(test)]
    pub(crate) fn within_bounds(&self) -> bool {
        self.line <= MAX_CHUNK_LINE
            && self.extension_bytes <= MAX_EXTENSION_BYTES
            && self.trailer_bytes <= self.trailer_limit
            && self.received <= self.limit
            && self.name_len <= LONGEST_FORBIDDEN + 1
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
            State::Ext { .. } => {
                self.extension_bytes += 1;
                if self.extension_bytes > MAX_EXTENSION_BYTES {
                    return Err(RequestError::BadRequest("chunk extensions too long"));
                }
            }
            State::TrailerStart
            | State::TrailerName
            | State::TrailerValue
            | State::TrailerLf
            | State::EndLf => {
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
            (State::Size { size, .. }, b'\r') => State::SizeLf { size },
            (State::Size { size, .. }, b';') => State::Ext {
                size,
                at: Ext::NameStart,
            },
            (State::Size { size, .. }, b' ' | b'\t') => State::Ext { size, at: Ext::Ws },
            (State::Size { .. }, _) => return Err(RequestError::BadRequest("invalid chunk size")),
            (State::Ext { size, at }, _) => match extension(at, byte) {
                Some(Some(at)) => State::Ext { size, at },
                Some(None) => State::SizeLf { size },
                None => return Err(RequestError::BadRequest("invalid chunk extension")),
            },
            (State::SizeLf { size }, b'\n') => {
                self.line = 0;
                self.start_chunk(size)?
            }
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => {
                self.line = 0;
                State::Size { size: 0, digits: 0 }
            }
            (State::DataCr | State::DataLf, _) => {
                return Err(RequestError::BadRequest("missing CRLF after chunk data"));
            }
            (State::TrailerStart, b'\r') => State::EndLf,
            (State::TrailerStart, b) if is_tchar(b) => {
                self.name_len = 0;
                self.keep_name_byte(b);
                State::TrailerName
            }
            (State::TrailerName, b) if is_tchar(b) => {
                self.keep_name_byte(b);
                State::TrailerName
            }
            (State::TrailerName, b':') => {
                let name = &self.name[..self.name_len.min(LONGEST_FORBIDDEN)];
                if self.name_len <= LONGEST_FORBIDDEN && FORBIDDEN_TRAILERS.contains(&name) {
                    return Err(RequestError::BadRequest("forbidden trailer field"));
                }
                State::TrailerValue
            }
            (State::TrailerStart | State::TrailerName, _) => {
                return Err(RequestError::BadRequest("trailer line is not a field"));
            }
            (State::TrailerValue, b'\r') => State::TrailerLf,
            (State::TrailerValue, b'\t' | b' '..=0x7e | 0x80..=0xff) => State::TrailerValue,
            (State::TrailerValue, _) => {
                return Err(RequestError::BadRequest("invalid trailer value"));
            }
            (State::TrailerLf, b'\n') => {
                self.line = 0;
                State::TrailerStart
            }
            (State::EndLf, b'\n') => {
                self.line = 0;
                State::Done
            }
            (State::SizeLf { .. } | State::TrailerLf | State::EndLf, _) => {
                return Err(RequestError::BadRequest("bare CR in chunked framing"));
            }
            (State::Length(_) | State::Data(_) | State::Done, _) => self.state,
        };
        Ok(())
    }

    /// Keeps a trailer name's byte (lower case) while it may still be a
    /// forbidden one; past that, only counts it.
    fn keep_name_byte(&mut self, byte: u8) {
        if self.name_len < LONGEST_FORBIDDEN {
            self.name[self.name_len] = byte.to_ascii_lowercase();
        }
        self.name_len = (self.name_len + 1).min(LONGEST_FORBIDDEN + 1);
    }

    fn start_chunk(&mut self, size: u64) -> Result<State, RequestError> {
        if size == 0 {
            return Ok(State::TrailerStart);
        }
        if self.received + size > self.limit {
            return Err(RequestError::BodyTooLarge);
        }
        Ok(State::Data(size))
    }
}

/// One byte of a chunk extension at `at`: `Some(Some(next))` to go on,
/// `Some(None)` for the CR that ends the size line, `None` for a byte the
/// grammar doesn't allow there (RFC 9112 7.1.1, RFC 9110 5.6).
fn extension(at: Ext, byte: u8) -> Option<Option<Ext>> {
    let ows = byte == b' ' || byte == b'\t';
    let next = match at {
        Ext::Ws if ows => Ext::Ws,
        Ext::Ws | Ext::AfterName | Ext::AfterQuoted | Ext::Token if byte == b';' => Ext::NameStart,
        Ext::Name if byte == b';' => Ext::NameStart,
        Ext::NameStart if ows => Ext::NameStart,
        Ext::NameStart | Ext::Name if is_tchar(byte) => Ext::Name,
        Ext::Name | Ext::AfterName if ows => Ext::AfterName,
        Ext::Name | Ext::AfterName if byte == b'=' => Ext::ValueStart,
        Ext::ValueStart if ows => Ext::ValueStart,
        Ext::ValueStart | Ext::Token if is_tchar(byte) => Ext::Token,
        Ext::ValueStart if byte == b'"' => Ext::Quoted,
        Ext::Token | Ext::AfterQuoted if ows => Ext::Ws,
        Ext::Name | Ext::Token | Ext::AfterQuoted if byte == b'\r' => return Some(None),
        Ext::Quoted if byte == b'"' => Ext::AfterQuoted,
        Ext::Quoted if byte == b'\\' => Ext::QuotedPair,
        // qdtext: HTAB, SP, VCHAR but '"' and '\\', obs-text.
        Ext::Quoted if byte == b'\t' || byte == b' ' || byte == 0x21 => Ext::Quoted,
        Ext::Quoted if matches!(byte, 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff) => Ext::Quoted,
        // quoted-pair: "\\" ( HTAB / SP / VCHAR / obs-text )
        Ext::QuotedPair if ows || matches!(byte, 0x21..=0x7e | 0x80..=0xff) => Ext::Quoted,
        _ => return None,
    };
    Some(Some(next))
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

    /// Each chunked body is a 400, fed a byte at a time.
    fn assert_bad(bodies: &[&[u8]]) {
        for body in bodies {
            assert!(
                matches!(
                    eat_all(BodyFraming::Chunked, body, 1),
                    Err(RequestError::BadRequest(_))
                ),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
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
    }

    #[test]
    fn extensions_follow_the_grammar() {
        for good in [
            &b"1;a\r\nx\r\n0\r\n\r\n"[..],
            b"1 ;a\r\nx\r\n0\r\n\r\n",
            b"1\t; a = b ;c;d=\"q \\\" \xff\"\r\nx\r\n0\r\n\r\n",
            b"1;a=b;c\r\nx\r\n0;z=\"\"\r\n\r\n",
        ] {
            for step in [1, 2, good.len()] {
                assert_eq!(
                    eat_all(BodyFraming::Chunked, good, step),
                    Ok((good.len(), true)),
                    "{:?} step {step}",
                    String::from_utf8_lossy(good)
                );
            }
        }
        assert_bad(&[
            &b"5 junk\r\n"[..],
            b"5;\0\r\n",
            b"5;a=\0\r\n",
            b"5;\r\n",
            b"5;a=\r\n",
            b"5;a \r\n",
            b"5;a=b \r\n",
            b"0 \r\n",
            b"5 \r\n",
            b"5;a=\"b\r\n",
            b"5;a=\"\x7f\"\r\n",
            b"5;ext=val\rue\r\n",
            b"5;a=b=c\r\n",
            b"5;a@b\r\n",
        ]);
    }

    #[test]
    fn bare_lf_or_cr_in_the_framing_is_400() {
        assert_bad(&[
            &b"3\nabc\r\n0\r\n\r\n"[..],
            b"3\r\nabc\n0\r\n\r\n",
            b"3\r\nabc\r\n0\n\r\n",
            b"3\r\nabc\r\n0\r\n\n",
            b"3\r\nabc\r\n0\r\nX: 1\n\r\n",
            b"3\rabc\r\n",
            b"3;a\n",
            b"0\r\n\rX",
        ]);
    }

    #[test]
    fn trailers_must_be_fields_and_not_framing_ones() {
        assert_eq!(
            eat_all(BodyFraming::Chunked, b"0\r\nX-T: a\tb \r\nY:\r\n\r\n", 1),
            Ok((20, true))
        );
        // A long name is counted, not kept: it can't be a forbidden one.
        let long = format!("0\r\n{}: 1\r\n\r\n", "content-length".repeat(5));
        assert_eq!(
            BodyReader::new(BodyFraming::Chunked, 10, 1000)
                .unwrap()
                .consume(long.as_bytes()),
            Ok(long.len())
        );
        assert_bad(&[
            &b"0\r\nnot a field\r\n\r\n"[..],
            b"0\r\nNoColon\r\n\r\n",
            b"0\r\n: empty name\r\n\r\n",
            b"0\r\nX : space before colon\r\n\r\n",
            b"0\r\n folded\r\n\r\n",
            b"0\r\nX: a\0b\r\n\r\n",
            b"0\r\nX: a\x7fb\r\n\r\n",
            b"0\r\nContent-Length: 99\r\n\r\n",
            b"0\r\nHOST: evil\r\n\r\n",
            b"0\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"0\r\nTE: trailers\r\n\r\n",
        ]);
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
        assert_bad(&[
            &b"x\r\n"[..],
            b"\r\n",
            b"3\r\nabcX",
            b"3\rX",
            b"-5\r\n",
            b"+5\r\n",
            b" 5\r\n",
            b"6_0\r\n",
            b" ;foo=bar\r\n",
        ]);
    }
}
