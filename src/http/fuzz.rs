//! Fuzzing the parsers on stable Rust: property tests (proptest) that feed
//! the head scanner and parser ([`HeadScanner`], [`parse_scanned_head`],
//! [`parse_head`]) and the body decoder ([`BodyReader`]) byte streams cut
//! at random points, as reads would cut them.
//!
//! Inputs: random bytes; a seed corpus (gunicorn's invalid requests from
//! `tests/data/gunicorn-invalid`, and every string literal in `tests/*.rs`
//! that holds an HTTP/1 request) with random edits; and valid requests from
//! a generator, edited or not. Properties:
//! - nothing panics;
//! - the outcome is the same however the bytes were split;
//! - what is held stays bounded: an unfinished head never exceeds
//!   `max_header_bytes`, the body decoder's line, extension, trailer and
//!   data counters stay within their limits;
//! - a generated request parses back to what was generated, and its body
//!   is consumed exactly, leaving the next request untouched.
//!
//! `cargo test` runs 256 cases per property (a few seconds); set
//! `FORKPOOL_FUZZ_CASES` (e.g. 100000) to run longer. The connection's own
//! loop over these parts is fuzzed the same way in
//! `worker::connection::head`, with the strategies here.

use std::sync::OnceLock;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;

use super::body::BodyReader;
use super::request::{
    BodyFraming, HeadScanner, Request, RequestError, parse_head, parse_scanned_head,
};

include!("../../tests/data/gunicorn-invalid/load.rs");

/// Cases per property: 256, or `FORKPOOL_FUZZ_CASES`.
pub(crate) fn config() -> Config {
    let cases = std::env::var("FORKPOOL_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256);
    Config {
        cases,
        // A failure prints its (shrunk) input; no files in the tree.
        failure_persistence: None,
        ..Config::default()
    }
}

/// The seed corpus: gunicorn's invalid requests, then the tests' requests.
pub(crate) fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut seeds: Vec<Vec<u8>> = gunicorn_corpus().into_iter().map(|(_, b)| b).collect();
        seeds.extend(test_requests());
        seeds
    })
}

/// Every string literal in `tests/*.rs` holding an HTTP/1 request line,
/// unescaped (format placeholders stay as written: still fine seeds).
fn test_requests() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut requests = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "rs") {
            let source = std::fs::read(&path).unwrap();
            requests.extend(
                literals(&source)
                    .into_iter()
                    .filter(|l| l.windows(8).any(|w| w == b" HTTP/1.")),
            );
        }
    }
    requests.sort();
    requests.dedup();
    requests
}

/// The string literals of Rust source `text`, unescaped. Enough of Rust's
/// lexer for our tests: comments, char literals, raw strings.
fn literals(text: &[u8]) -> Vec<Vec<u8>> {
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'/' if text.get(i + 1) == Some(&b'/') => {
                i += text[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .unwrap_or(text.len() - i);
            }
            b'\'' if text[i + 1..].starts_with(b"\"'") => i += 3,
            b'\'' if text[i + 1..].starts_with(b"\\\"'") => i += 4,
            b'r' if i == 0 || !ident(text[i - 1]) => {
                let hashes = text[i + 1..].iter().take_while(|&&b| b == b'#').count();
                if text.get(i + 1 + hashes) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let start = i + 2 + hashes;
                let close = [b"\"".as_slice(), &vec![b'#'; hashes]].concat();
                let len = text[start..]
                    .windows(close.len())
                    .position(|w| w == close)
                    .unwrap_or(text.len() - start);
                out.push(text[start..start + len].to_vec());
                i = start + len + close.len();
            }
            b'"' => {
                let (literal, end) = unescape(text, i + 1);
                out.push(literal);
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

/// Unescapes a string literal starting at `start` (after its quote);
/// returns it and the index after its closing quote.
fn unescape(text: &[u8], start: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut i = start;
    while i < text.len() {
        match text[i] {
            b'"' => return (out, i + 1),
            b'\\' => {
                let escaped = text.get(i + 1).copied().unwrap_or(b'\\');
                i += 2;
                match escaped {
                    b'r' => out.push(b'\r'),
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'0' => out.push(0),
                    b'x' => {
                        let hex =
                            std::str::from_utf8(text.get(i..i + 2).unwrap_or(b"")).unwrap_or("");
                        out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                        i += 2;
                    }
                    b'u' => {
                        let close = text[i..].iter().position(|&b| b == b'}').unwrap_or(0);
                        let hex = std::str::from_utf8(&text[i + 1..i + close]).unwrap_or("");
                        let c = u32::from_str_radix(hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .unwrap_or('?');
                        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                        i += close + 1;
                    }
                    // A line continuation: the newline and the indentation go.
                    b'\n' => {
                        i += text[i..]
                            .iter()
                            .take_while(|b| b.is_ascii_whitespace())
                            .count();
                    }
                    other => out.push(other),
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    (out, text.len())
}

/// One random edit of an input. Positions are taken modulo its length.
#[derive(Debug, Clone)]
pub(crate) enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    /// Repeats `len` bytes from a position `times` times: grows a line or
    /// a head past its limit.
    Repeat(usize, usize, usize),
    Truncate(usize),
}

pub(crate) fn edit() -> impl Strategy<Value = Edit> {
    // Mostly the bytes framing is made of.
    let byte = || {
        prop_oneof![
            3 => prop::sample::select(b"\r\n\0 \t:;=\"\\,-_\x7f\x80\xa0\xff0aAfF".to_vec()),
            1 => any::<u8>(),
        ]
    };
    prop_oneof![
        (any::<usize>(), byte()).prop_map(|(at, b)| Edit::Set(at, b)),
        (any::<usize>(), byte()).prop_map(|(at, b)| Edit::Insert(at, b)),
        any::<usize>().prop_map(Edit::Remove),
        (any::<usize>(), 1..64usize, 1..200usize).prop_map(|(at, len, n)| Edit::Repeat(at, len, n)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    let len = bytes.len();
    match *edit {
        Edit::Insert(at, b) => bytes.insert(at % (len + 1), b),
        _ if len == 0 => {}
        Edit::Set(at, b) => bytes[at % len] = b,
        Edit::Remove(at) => {
            bytes.remove(at % len);
        }
        Edit::Repeat(at, n, times) => {
            let at = at % len;
            let part = bytes[at..(at + n).min(len)].to_vec();
            let grown: Vec<u8> = part.repeat(times);
            bytes.splice(at..at, grown);
        }
        Edit::Truncate(at) => bytes.truncate(at % len),
    }
}

pub(crate) fn edited(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        apply(&mut bytes, edit);
    }
    bytes
}

/// A byte stream to parse: random bytes, an edited seed, or a generated
/// request (edited or not).
pub(crate) fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => vec(any::<u8>(), 0..300),
        4 => (any::<Index>(), vec(edit(), 0..6))
            .prop_map(|(seed, edits)| edited(seed.get(seeds()).clone(), &edits)),
        2 => (request(), vec(edit(), 0..4)).prop_map(|(r, edits)| edited(r.bytes, &edits)),
        1 => request().prop_map(|r| r.bytes),
    ]
}

/// Where to cut an input into reads: up to 16 points.
pub(crate) fn cuts() -> impl Strategy<Value = Vec<Index>> {
    vec(any::<Index>(), 0..16)
}

/// `bytes` cut at `cuts` (taken as fractions of its length).
pub(crate) fn pieces<'a>(bytes: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
    at.push(bytes.len());
    at.sort_unstable();
    at.dedup();
    let mut pieces = Vec::with_capacity(at.len());
    let mut from = 0;
    for to in at {
        pieces.push(&bytes[from..to]);
        from = to;
    }
    pieces
}

/// Every piece one byte long.
fn bytewise(bytes: &[u8]) -> Vec<&[u8]> {
    bytes.chunks(1).collect()
}

/// What became of the first head of a stream.
#[derive(Debug, PartialEq)]
enum HeadOutcome {
    /// It ended at `end` and parsed into the request (its Debug form).
    Parsed(usize, String),
    /// It ended at `end` and its fields were refused.
    Invalid(usize, RequestError),
    /// Its framing or size was refused before it ended.
    Refused(RequestError),
    /// The stream ended first.
    Unfinished,
}

/// Feeds `pieces` to a scanner as reads would (the whole head so far each
/// time); fails the property if an unfinished head outgrows `max`.
fn scan_head(pieces: &[&[u8]], max: usize) -> Result<HeadOutcome, TestCaseError> {
    let mut buf = Vec::new();
    let mut scanner = HeadScanner::default();
    for piece in pieces {
        buf.extend_from_slice(piece);
        match scanner.scan(&buf, max) {
            Ok(Some(end)) => {
                prop_assert!(end <= max, "a head of {end} bytes passed {max}");
                let mut req = Request::default();
                return Ok(match parse_scanned_head(&buf[..end], &mut req) {
                    Ok(()) => HeadOutcome::Parsed(end, format!("{req:?}")),
                    Err(err) => HeadOutcome::Invalid(end, err),
                });
            }
            Ok(None) => prop_assert!(buf.len() <= max, "{} unfinished bytes held", buf.len()),
            Err(err) => return Ok(HeadOutcome::Refused(err)),
        }
    }
    Ok(HeadOutcome::Unfinished)
}

/// What became of a body.
#[derive(Debug, PartialEq)]
enum BodyOutcome {
    /// Its declared length was over the limit.
    TooLarge(RequestError),
    /// Consumed so many bytes; done or not; so many data bytes.
    Read(usize, bool, u64),
    Refused(RequestError),
}

fn read_body(
    framing: BodyFraming,
    limit: u64,
    trailer_limit: usize,
    pieces: &[&[u8]],
) -> Result<BodyOutcome, TestCaseError> {
    let mut reader = match BodyReader::new(framing, limit, trailer_limit) {
        Ok(reader) => reader,
        Err(err) => return Ok(BodyOutcome::TooLarge(err)),
    };
    let mut consumed = 0;
    for piece in pieces {
        match reader.consume(piece) {
            Ok(used) => {
                consumed += used;
                prop_assert!(reader.within_bounds(), "{reader:?}");
                if reader.is_done() {
                    prop_assert!(used <= piece.len());
                    break;
                }
                prop_assert_eq!(used, piece.len(), "stopped before the end of the body");
            }
            Err(err) => return Ok(BodyOutcome::Refused(err)),
        }
    }
    Ok(BodyOutcome::Read(
        consumed,
        reader.is_done(),
        reader.received(),
    ))
}

/// A request the generator built, and what parsing it must give back.
#[derive(Debug, Clone)]
pub(crate) struct Generated {
    /// The request, then `NEXT` (what follows must be left alone).
    pub(crate) bytes: Vec<u8>,
    method: String,
    target: String,
    http10: bool,
    host: String,
    keep_alive: bool,
    framing: BodyFraming,
    head_len: usize,
    body_len: usize,
    data: Vec<u8>,
}

const NEXT: &[u8] = b"NEXT";

impl Generated {
    /// The request alone, without what follows it.
    pub(crate) fn request_bytes(&self) -> &[u8] {
        &self.bytes[..self.head_len + self.body_len]
    }
}

/// RFC 9110 token.
fn token(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Za-z0-9!#$%&'*+.^_`|~-]{{1,{max}}}")).unwrap()
}

/// A field value that trimming leaves alone, with OWS around it.
fn field_value() -> impl Strategy<Value = (String, String, String)> {
    (
        "[ \t]{0,2}",
        "([!-~\\x{80}-\\x{ff}]([ \t!-~]{0,20}[!-~])?)?",
        "[ \t]{0,2}",
    )
}

/// Field names the generator leaves to the request's own fields.
fn special(name: &str) -> bool {
    let lower = name.to_ascii_lowercase().replace('_', "-");
    [
        "host",
        "connection",
        "content-length",
        "transfer-encoding",
        "content-type",
        "expect",
    ]
    .contains(&lower.as_str())
}

/// `chunk-ext`: `;` names, maybe with token or quoted-string values, BWS.
fn chunk_ext() -> impl Strategy<Value = String> {
    let bws = || "[ \t]{0,2}";
    let value = prop_oneof![token(6), "\"([ !#-\\[\\]-~]|\\\\[ -~]){0,6}\"",];
    let one = (
        bws(),
        bws(),
        token(6),
        proptest::option::of((bws(), bws(), value)),
    );
    vec(one, 0..3).prop_map(|exts| {
        exts.into_iter()
            .map(|(b1, b2, name, value)| {
                let value = value
                    .map(|(b3, b4, v)| format!("{b3}={b4}{v}"))
                    .unwrap_or_default();
                format!("{b1};{b2}{name}{value}")
            })
            .collect()
    })
}

/// How a generated request carries its body.
#[derive(Debug, Clone)]
enum GenBody {
    None,
    Length(Vec<u8>),
    /// Chunks (data, extensions), the last chunk's extensions, trailers.
    Chunked(Vec<(Vec<u8>, String)>, String, Vec<(String, String)>),
}

fn gen_body() -> impl Strategy<Value = GenBody> {
    let chunk = (vec(any::<u8>(), 1..40), chunk_ext());
    let trailer = (token(12), field_value()).prop_filter_map("a forbidden trailer", |(n, v)| {
        let forbidden = [
            "content-length",
            "transfer-encoding",
            "host",
            "trailer",
            "te",
            "connection",
            "keep-alive",
            "upgrade",
        ];
        (!forbidden.contains(&n.to_ascii_lowercase().as_str()))
            .then(|| (n, format!("{}{}{}", v.0, v.1, v.2)))
    });
    prop_oneof![
        Just(GenBody::None),
        vec(any::<u8>(), 0..100).prop_map(GenBody::Length),
        (vec(chunk, 0..4), chunk_ext(), vec(trailer, 0..3))
            .prop_map(|(chunks, last, trailers)| GenBody::Chunked(chunks, last, trailers)),
    ]
}

prop_compose! {
    /// A valid request (RFC 9112, and within our limits).
    pub(crate) fn request()(
        method in prop_oneof![
            prop::sample::select(vec!["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
                .prop_map(str::to_string),
            token(10),
        ],
        path in "/[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,40}(\\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]{0,20})?",
        http10 in prop::bool::weighted(0.2),
        host in proptest::option::of("[a-z0-9.-]{1,20}(:[0-9]{1,5})?"),
        fields in vec((token(16), field_value()), 0..6),
        connection in proptest::option::of(prop::sample::select(vec!["close", "keep-alive", "Keep-Alive, x", "x"])),
        body in gen_body(),
        leading_zeros in 0..3usize,
    ) -> Generated {
        let mut head = format!("{method} {path} HTTP/1.{}\r\n", u8::from(!http10));
        // HTTP/1.1 needs a Host; HTTP/1.0 may have one.
        let host = match (host, http10) {
            (Some(host), _) => host,
            (None, false) => "h".to_string(),
            (None, true) => String::new(),
        };
        if !host.is_empty() {
            head.push_str(&format!("Host: {host}\r\n"));
        }
        for (name, (before, value, after)) in fields.iter().filter(|(name, _)| !special(name)) {
            head.push_str(&format!("{name}:{before}{value}{after}\r\n"));
        }
        if let Some(connection) = connection {
            head.push_str(&format!("Connection: {connection}\r\n"));
        }
        let close = connection.is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let keep_alive_token = connection.is_some_and(|c| c.to_ascii_lowercase().contains("keep-alive"));
        let keep_alive = if http10 { keep_alive_token && !close } else { !close };
        // Chunked needs HTTP/1.1.
        let body = match body {
            GenBody::Chunked(..) if http10 => GenBody::None,
            body => body,
        };
        let (framing, body_bytes, data) = match body {
            GenBody::None => (BodyFraming::None, Vec::new(), Vec::new()),
            GenBody::Length(data) => {
                head.push_str(&format!("Content-Length: {}\r\n", data.len()));
                let framing = match data.len() {
                    0 => BodyFraming::None,
                    n => BodyFraming::Length(n as u64),
                };
                (framing, data.clone(), data)
            }
            GenBody::Chunked(chunks, last, trailers) => {
                head.push_str("Transfer-Encoding: chunked\r\n");
                let mut bytes = Vec::new();
                let mut data = Vec::new();
                for (chunk, ext) in &chunks {
                    let size = format!("{}{:x}", "0".repeat(leading_zeros), chunk.len());
                    bytes.extend_from_slice(format!("{size}{ext}\r\n").as_bytes());
                    bytes.extend_from_slice(chunk);
                    bytes.extend_from_slice(b"\r\n");
                    data.extend_from_slice(chunk);
                }
                bytes.extend_from_slice(format!("0{last}\r\n").as_bytes());
                for (name, value) in &trailers {
                    bytes.extend_from_slice(format!("{name}:{value}\r\n").as_bytes());
                }
                bytes.extend_from_slice(b"\r\n");
                (BodyFraming::Chunked, bytes, data)
            }
        };
        head.push_str("\r\n");
        let bytes = [head.as_bytes(), &body_bytes, NEXT].concat();
        Generated {
            bytes,
            method,
            target: path,
            http10,
            host,
            keep_alive,
            framing,
            head_len: head.len(),
            body_len: body_bytes.len(),
            data,
        }
    }
}

/// A body to decode: a generated one (chunked or not), edited, or random
/// bytes, or what follows a seed's head; with its framing and limits.
fn body_case() -> impl Strategy<Value = (BodyFraming, u64, usize, Vec<u8>)> {
    let framing = prop_oneof![
        3 => Just(BodyFraming::Chunked),
        1 => (0..300u64).prop_map(BodyFraming::Length),
        1 => Just(BodyFraming::None),
    ];
    let limit = prop_oneof![0..200u64, Just(1 << 20)];
    let trailer_limit = prop_oneof![0..100usize, Just(16 * 1024)];
    let generated = (request(), vec(edit(), 0..4)).prop_map(|(r, edits)| {
        let body = r.bytes[r.head_len..].to_vec();
        edited(body, &edits)
    });
    let after_seed = (any::<Index>(), vec(edit(), 0..4)).prop_map(|(seed, edits)| {
        let seed = seed.get(seeds());
        let at = seed
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(0, |i| i + 4);
        edited(seed[at..].to_vec(), &edits)
    });
    let bytes = prop_oneof![3 => generated, 1 => after_seed, 1 => vec(any::<u8>(), 0..300)];
    (framing, limit, trailer_limit, bytes)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_head_gives_the_same_outcome_however_it_is_split(
        bytes in input(),
        cuts in cuts(),
        max in prop_oneof![Just(16 * 1024), 16..256usize, 256..20_000usize],
    ) {
        let whole = scan_head(&[&bytes], max)?;
        prop_assert_eq!(&scan_head(&pieces(&bytes, &cuts), max)?, &whole);
        if bytes.len() <= 2048 {
            prop_assert_eq!(&scan_head(&bytewise(&bytes), max)?, &whole);
        }
        // The whole-head entry point agrees with the incremental one.
        if let HeadOutcome::Parsed(end, _) | HeadOutcome::Invalid(end, _) = whole {
            let mut req = Request::default();
            let alone = match parse_head(&bytes[..end], max, &mut req) {
                Ok(()) => HeadOutcome::Parsed(end, format!("{req:?}")),
                Err(err) => HeadOutcome::Invalid(end, err),
            };
            prop_assert_eq!(alone, whole);
        }
    }

    #[test]
    fn a_body_gives_the_same_outcome_however_it_is_split(
        (framing, limit, trailer_limit, bytes) in body_case(),
        cuts in cuts(),
    ) {
        let whole = read_body(framing, limit, trailer_limit, &[&bytes])?;
        let split = read_body(framing, limit, trailer_limit, &pieces(&bytes, &cuts))?;
        prop_assert_eq!(&split, &whole);
        if bytes.len() <= 2048 {
            prop_assert_eq!(&read_body(framing, limit, trailer_limit, &bytewise(&bytes))?, &whole);
        }
    }

    #[test]
    fn a_generated_request_parses_back_to_what_was_generated(
        generated in request(),
        cuts in cuts(),
    ) {
        let bytes = &generated.bytes;
        let pieces = pieces(bytes, &cuts);
        let mut req = Request::default();
        let outcome = scan_head(&pieces, 16 * 1024)?;
        let HeadOutcome::Parsed(end, _) = outcome else {
            return Err(TestCaseError::fail(format!("{outcome:?}: {:?}", String::from_utf8_lossy(bytes))));
        };
        prop_assert_eq!(end, generated.head_len);
        parse_head(&bytes[..end], 16 * 1024, &mut req).unwrap();
        prop_assert_eq!(&req.method_token, &generated.method);
        prop_assert_eq!(&req.target, &generated.target);
        prop_assert_eq!(req.http10, generated.http10);
        prop_assert_eq!(&req.host, &generated.host);
        prop_assert_eq!(req.keep_alive, generated.keep_alive);
        prop_assert_eq!(req.body, generated.framing);
        // The body, fed in the same pieces from where the head ended.
        let body_pieces: Vec<&[u8]> = {
            let mut at = 0;
            pieces
                .iter()
                .filter_map(|piece| {
                    let (start, stop) = (at, at + piece.len());
                    at = stop;
                    (stop > end).then(|| &piece[end.saturating_sub(start)..])
                })
                .collect()
        };
        let outcome = read_body(req.body, 1 << 20, 16 * 1024, &body_pieces)?;
        prop_assert_eq!(
            outcome,
            BodyOutcome::Read(generated.body_len, true, generated.data.len() as u64)
        );
        prop_assert_eq!(&bytes[end + generated.body_len..], NEXT);
    }
}
