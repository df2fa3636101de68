//! A property test of the connection state machine (stable Rust,
//! proptest): random byte streams, seeded with valid requests, pipelined
//! and cut at random points, fed to a real [`Connection`] over a loopback
//! socket, with the client's writes, reads and the server's drives
//! interleaved at random.
//!
//! What must hold for every stream:
//! - nothing panics in the connection code (a panic there is caught by
//!   `drive`, so a panic hook counts them; the handler's own panics, on
//!   purpose, are told apart by their message);
//! - the buffers stay bounded: the input never holds more than a maximal
//!   head, the output never more than the batching limit plus one answer;
//! - every byte the client receives belongs to a well-formed response
//!   (status line, `Date`, `Server`, a `Content-Length` that matches the
//!   body, none for HEAD, 204 and 304), the handler's answers arrive in the
//!   order it gave them and none is lost, their bodies intact (small and
//!   large, copied and `sendfile`d), and nothing follows an answer that
//!   closes the connection;
//! - the connection finishes (closes) once the client has sent everything.
//!
//! It runs [`DEFAULT_CASES`] streams in `cargo test` (a few seconds);
//! `FORKPOOL_FUZZ_CASES=100000 cargo test --lib fuzz` runs longer.
//! Timeouts are not exercised here (no sweep): `timers` and the
//! integration tests cover them.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpStream as ClientStream;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use super::tests::accepted;
use super::{Connection, Next};
use crate::http::{Body, Handler, Request, Response};

/// Streams per `cargo test` run, unless `FORKPOOL_FUZZ_CASES` says otherwise.
const DEFAULT_CASES: u32 = 256;
/// The message of the handler's deliberate panic (`/panic`).
const HANDLER_PANIC: &str = "fuzz: the handler panics on purpose";
/// Sizes of the handler's bodies: bigger than the socket buffers, a file
/// sent by `sendfile`, a file copied into the write buffer.
const BIG: usize = 300 * 1024;
const FILE: usize = 100 * 1024;
const SMALL_FILE: usize = 10 * 1024;

/// Requests that leave the connection open, the bulk of a stream: the
/// shapes the tests use, every body framing, every kind of answer.
const KEEP_ALIVE: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n",
    b"HEAD /big HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /small-file HTTP/1.1\r\nHost: x\r\n\r\n",
    b"HEAD /file HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /204 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /304 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /delay HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello=world",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
    b"GET /?a=1&b=%20 HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\nIf-None-Match: \"x\"\r\n\r\n",
];

/// Requests that end the connection: the ways to ask for a close, and
/// requests the connection must refuse.
const ENDING: &[&[u8]] = &[
    b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"PUT /x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody",
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: x\r\nBad Field\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Field\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
];

/// Bytes HTTP framing is made of, for junk that gets further than noise.
const HTTP_BYTES: &[u8] = b"\r\n\r\n :;,=0123456789abcdefGHPTSO/.\t\0\x7f\xc2\xa0";

/// Answers by path; counts its calls and numbers its answers (`X-Seq`)
/// so the client can check order and loss.
struct Fuzzed {
    calls: Arc<AtomicUsize>,
    file: File,
    small_file: File,
}

impl Handler for Fuzzed {
    fn handle(&self, req: &Request) -> Response {
        let seq = self.calls.fetch_add(1, Ordering::SeqCst);
        let file = |file: &File, len: usize| Body::File {
            file: file.try_clone().expect("dup a file"),
            offset: 0,
            len: len as u64,
        };
        let mut response = match req.path() {
            "/big" => Response::new(200, Body::Bytes(pattern(BIG))),
            "/file" => Response::new(200, file(&self.file, FILE)),
            "/small-file" => Response::new(200, file(&self.small_file, SMALL_FILE)),
            "/204" => Response::new(204, Body::Empty),
            "/304" => Response::new(304, Body::Empty),
            "/panic" => panic!("{HANDLER_PANIC}"),
            _ => Response::new(200, Body::Static(b"hello")),
        };
        match req.path() {
            "/delay" => response.not_before = Some(Instant::now() + Duration::from_millis(1)),
            "/close" => response.close = true,
            _ => {}
        }
        response
            .header("X-Seq", seq.to_string())
            .header("X-Path", req.path().to_string())
            .header("X-Head", if req.is_head() { "1" } else { "0" })
    }
}

/// The body the handler sends for `len` bytes of `/big` or a file.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// An unlinked file holding `len` bytes of [`pattern`].
fn pattern_file(len: usize) -> File {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("forkpool-fuzz-{}-{n}", std::process::id()));
    std::fs::write(&path, pattern(len)).unwrap();
    let file = File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    file
}

/// One generated case: the bytes the client sends, how it cuts them into
/// writes, and when it reads (bit 0 of each step).
#[derive(Debug, Clone)]
struct Case {
    stream: Vec<u8>,
    cuts: Vec<usize>,
    steps: Vec<u8>,
}

fn pick(seeds: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    (0..seeds.len()).prop_map(move |i| seeds[i].to_vec())
}

/// How a stream ends after its keep-alive requests: nothing more, a
/// request that ends the connection, one cut short, or junk.
fn tail() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => Just(Vec::new()),
        3 => pick(ENDING),
        1 => (pick(KEEP_ALIVE), any::<Index>()).prop_map(|(mut bytes, at)| {
            bytes.truncate(at.index(bytes.len()));
            bytes
        }),
        1 => prop::collection::vec(any::<u8>(), 0..48),
        1 => prop::collection::vec(prop::sample::select(HTTP_BYTES), 0..48),
    ]
}

/// Keep-alive requests, a tail, and now and then a few bytes of the whole
/// stream replaced (wherever they fall: a head, a body, chunk framing).
fn case() -> impl Strategy<Value = Case> {
    let edits = prop_oneof![
        2 => Just(Vec::new()),
        1 => prop::collection::vec((any::<Index>(), any::<u8>()), 1..4),
        1 => prop::collection::vec((any::<Index>(), prop::sample::select(HTTP_BYTES)), 1..4),
    ];
    (
        prop::collection::vec(pick(KEEP_ALIVE), 0..16),
        tail(),
        edits,
        prop::collection::vec(1usize..2048, 1..16),
        prop::collection::vec(any::<u8>(), 1..32),
    )
        .prop_map(|(requests, tail, edits, cuts, steps)| {
            let mut stream = requests.concat();
            stream.extend_from_slice(&tail);
            if !stream.is_empty() {
                for (at, byte) in edits {
                    let i = at.index(stream.len());
                    stream[i] = byte;
                }
            }
            Case {
                stream,
                cuts,
                steps,
            }
        })
}

thread_local! {
    /// Panics on this thread other than the handler's deliberate one.
    static UNEXPECTED_PANICS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Installs (once) a panic hook that counts unexpected panics per thread
/// and keeps the deliberate ones quiet; others still reach the default hook.
fn count_panics() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if super::panic_message(info.payload()) == HANDLER_PANIC {
                return;
            }
            UNEXPECTED_PANICS.with(|count| count.set(count.get() + 1));
            previous(info);
        }));
    });
}

#[test]
fn random_streams_never_panic_stay_bounded_and_get_well_formed_answers() {
    count_panics();
    let cases = std::env::var("FORKPOOL_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let file = pattern_file(FILE);
    let small_file = pattern_file(SMALL_FILE);
    let mut runner = TestRunner::new(config);
    let result = runner.run(&case(), |case| {
        let calls = Arc::new(AtomicUsize::new(0));
        let handler = Fuzzed {
            calls: Arc::clone(&calls),
            file: file.try_clone().unwrap(),
            small_file: small_file.try_clone().unwrap(),
        };
        let received = exchange(handler, &case)?;
        eprintln!(
            "DEBUG stream {} calls {} received {} status {:?}",
            case.stream.len(),
            calls.load(Ordering::SeqCst),
            received.len(),
            String::from_utf8_lossy(&received)
                .matches("HTTP/1.1 ")
                .count()
        );
        check_answers(&received, calls.load(Ordering::SeqCst))
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

/// Plays one case: the client writes its stream in the case's cuts and
/// reads when the case says (or when nothing else can move), the server
/// drives after every step. Returns all the client received.
fn exchange(handler: Fuzzed, case: &Case) -> Result<Vec<u8>, TestCaseError> {
    let (conn, ctx, mut client) = accepted(handler);
    client.set_nonblocking(true).unwrap();
    let max_input = ctx.max_header_bytes + 1024;
    let panics_before = UNEXPECTED_PANICS.with(std::cell::Cell::get);
    let mut received = Vec::new();
    let mut sent = 0;
    let mut shut = false;
    let mut conn = Some(conn);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut client_done = false;
    for step in 0.. {
        prop_assert!(Instant::now() < deadline, "the exchange never finished");
        let mut moved = false;
        // The client writes its next cut, or ends its stream.
        if sent < case.stream.len() {
            let cut = case.cuts[step % case.cuts.len()];
            let end = (sent + cut).min(case.stream.len());
            match client.write(&case.stream[sent..end]) {
                Ok(n) => {
                    sent += n;
                    moved |= n > 0;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                // The server closed (a reset for input it never read).
                Err(_) => sent = case.stream.len(),
            }
        } else if !shut {
            let _ = client.shutdown(std::net::Shutdown::Write);
            shut = true;
            moved = true;
        }
        // The server drives (a spurious wake-up is fine: it must cope).
        let mut next = None;
        let mut closed = false;
        if let Some(open) = &mut conn {
            let driven = open.drive(&ctx);
            prop_assert_eq!(
                UNEXPECTED_PANICS.with(std::cell::Cell::get),
                panics_before,
                "the connection code panicked"
            );
            prop_assert!(open.input.pending().len() <= max_input);
            prop_assert!(
                open.output.buffered() <= 64 * 1024 + BIG + 1024,
                "output grew to {}",
                open.output.buffered()
            );
            match driven {
                Next::Close => {
                    // Let the client take what was written before the
                    // socket closes: a close with unread input resets the
                    // connection, and the kernel drops what it had not
                    // sent yet (the race lingering closes exist for).
                    drain_before_close(&mut client, open, &mut received)?;
                    closed = true;
                }
                Next::Timer => {
                    std::thread::sleep(open.deadline().saturating_duration_since(Instant::now()))
                }
                _ => {}
            }
            next = Some(driven);
        }
        if closed {
            conn = None; // dropped: the socket closes
        }
        // The client reads when the case says, or when it has nothing
        // else to do, or when the server waits for it to.
        let stuck = !moved || next == Some(Next::Write);
        if case.steps[step % case.steps.len()] & 1 == 1 || stuck || conn.is_none() {
            client_done = read_available(&mut client, &mut received);
        }
        if conn.is_none() && client_done {
            break;
        }
    }
    Ok(received)
}

/// Reads until the server's socket has nothing left to send and the
/// client's has nothing left to read.
fn drain_before_close(
    client: &mut ClientStream,
    conn: &Connection,
    received: &mut Vec<u8>,
) -> Result<(), TestCaseError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        read_available(client, received);
        if unsent(conn) == 0 {
            read_available(client, received);
            return Ok(());
        }
        prop_assert!(
            Instant::now() < deadline,
            "the server's output never drained"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Bytes in the server socket's send queue, not yet acknowledged.
fn unsent(conn: &Connection) -> i32 {
    let mut queued: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int through a valid pointer,
    // on a socket this connection owns.
    let result = unsafe { libc::ioctl(conn.stream.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
    assert_eq!(result, 0, "ioctl(SIOCOUTQ)");
    queued
}

/// Reads whatever is there without waiting; true once the server's side
/// has ended (end of stream or a reset).
fn read_available(client: &mut ClientStream, received: &mut Vec<u8>) -> bool {
    let mut chunk = [0; 64 * 1024];
    loop {
        match client.read(&mut chunk) {
            Ok(0) => return true,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return false,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

/// One response head, parsed.
struct Head {
    status: u16,
    /// Lower-cased names.
    fields: Vec<(String, String)>,
    len: usize,
}

impl Head {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the response head at the start of `bytes`: a strict status line
/// and fields, nothing else.
fn parse_head(bytes: &[u8]) -> Result<Head, TestCaseError> {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| TestCaseError::fail(format!("an incomplete head: {:?}", lossy(bytes))))?;
    let text = std::str::from_utf8(&bytes[..end])
        .map_err(|_| TestCaseError::fail("a head that is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.split_once(' '))
        .filter(|(code, reason)| {
            code.len() == 3 && *reason == crate::http::response::reason(code.parse().unwrap_or(0))
        })
        .and_then(|(code, _)| code.parse().ok())
        .ok_or_else(|| TestCaseError::fail(format!("a bad status line: {status_line:?}")))?;
    let mut fields = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(": ")
            .filter(|(name, _)| {
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
            .ok_or_else(|| TestCaseError::fail(format!("a bad field line: {line:?}")))?;
        fields.push((name.to_ascii_lowercase(), value.to_string()));
    }
    Ok(Head {
        status,
        fields,
        len: end + 4,
    })
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned()
}

/// Checks everything the client received: well-formed responses, the
/// handler's in order and complete, nothing after a closing one.
fn check_answers(mut rest: &[u8], handler_calls: usize) -> Result<(), TestCaseError> {
    let mut next_seq = 0;
    while !rest.is_empty() {
        let head = parse_head(rest)?;
        rest = &rest[head.len..];
        prop_assert!(head.field("date").is_some_and(|d| d.ends_with(" GMT")));
        prop_assert!(head.field("server").is_some());
        let no_body = matches!(head.status, 100..=199 | 204 | 304);
        let length = head.field("content-length").map(|len| len.parse::<usize>());
        prop_assert_eq!(
            length.is_none(),
            no_body,
            "Content-Length on {}",
            head.status
        );
        let length = match length {
            Some(Ok(len)) => len,
            Some(Err(_)) => return Err(TestCaseError::fail("a bad Content-Length")),
            None => 0,
        };
        let closes = head.field("connection") == Some("close");
        let body_len = match head.field("x-seq") {
            // The handler's answer: in order, its body as the path says.
            Some(seq) => {
                prop_assert_eq!(seq, next_seq.to_string(), "answers out of order or lost");
                next_seq += 1;
                let head_only = head.field("x-head") == Some("1") || no_body;
                let body_len = if head_only { 0 } else { length };
                prop_assert!(rest.len() >= body_len, "a body cut short");
                let expected = match head.field("x-path").unwrap_or_default() {
                    "/big" => pattern(BIG),
                    "/file" => pattern(FILE),
                    "/small-file" => pattern(SMALL_FILE),
                    "/204" | "/304" => Vec::new(),
                    _ => b"hello".to_vec(),
                };
                prop_assert_eq!(length, expected.len(), "Content-Length");
                if !head_only {
                    prop_assert!(&rest[..body_len] == expected.as_slice(), "a corrupt body");
                }
                body_len
            }
            // The handler panicked: a 500 in its place.
            None if head.status == 500 => {
                next_seq += 1;
                prop_assert!(rest.len() >= length, "a body cut short");
                length
            }
            // A request the connection refused: it closes after the
            // answer, whose body is absent only if the request was a HEAD.
            None => {
                prop_assert!(
                    closes,
                    "an error that keeps the connection: {}",
                    head.status
                );
                prop_assert!(
                    rest.len() == length || rest.is_empty(),
                    "{} bytes after an error head announcing {length}",
                    rest.len()
                );
                rest.len()
            }
        };
        rest = &rest[body_len..];
        prop_assert!(!closes || rest.is_empty(), "bytes after a closing answer");
    }
    prop_assert_eq!(
        next_seq,
        handler_calls,
        "answers the handler gave were lost"
    );
    Ok(())
}
