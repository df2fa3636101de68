//! Strict framing (issue 11) against the real server, in every mode: the
//! gunicorn invalid-request corpus, and each framing rule on the wire.
//!
//! The corpus is gunicorn's `tests/requests/invalid/*.http` (its 27.0.1
//! sdist, MIT; see `tests/data/gunicorn-invalid/README.md`). Each file is
//! decoded as gunicorn's own loader does and sent on a connection of its
//! own. It must be refused: exactly one answer, the status listed in
//! [`EXPECTED`] (a 4xx or 5xx, never a 2xx or 3xx), then the server closes
//! the connection, and no worker died (same worker pids, no panic in the
//! log). Then the same bytes go again with a valid request behind them (the
//! smuggling probe): it must never be answered, so a request whose head is
//! fine but whose body framing is not (a POST answered 405 before its body
//! is read) can't pass as "refused" while the connection goes on.
//!
//! Every target a corpus GET names exists under the root, so a request we
//! wrongly accepted would get a 2xx or 3xx, not a 404 that looks like a
//! refusal. Files refused for a missing Host before their own defect is
//! reached go again with a Host ([`WITH_HOST`]), so the defect itself is
//! tested. A few files fail only under a gunicorn setting or a gunicorn
//! limit lower than ours: [`EXPECTED`]'s notes say what stands in for it,
//! [`equivalent`] and [`over_our_limits`] build the same request over our
//! limits.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;

/// How long one exchange may take: more than the header timeout the
/// servers here run with (1 s), much less than their keep-alive timeout
/// (30 s), so a request accepted on a kept-alive connection shows up as a
/// connection left open, not as a late close.
const EXCHANGE: Duration = Duration::from_secs(6);

/// Our fixed limits (src/http/request.rs), for the equivalents of the
/// files that rely on a gunicorn setting.
const OUR_REQUEST_LINE: usize = 8 * 1024;
/// A field line's limit counts its CRLF (8190, Apache's and gunicorn's).
const OUR_FIELD_LINE: usize = 8190 - 2;
const OUR_MAX_FIELDS: usize = 100;

/// A valid request sent behind an invalid one: if it is ever answered, the
/// server read past the invalid one and went on.
const PROBE: &[u8] = b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

/// In [`EXPECTED`]: the head is valid and the handler answers it before
/// the body is read: 405 (a POST or PUT on the static server), or 421 for
/// a `Host` the server doesn't answer for (`example.com`: the DNS
/// rebinding check of issue 11, where it is in). What follows the head is
/// then refused by closing the connection, which is checked.
const HANDLER: u16 = 0;

/// What each corpus file gets from us. Where our reason differs from
/// gunicorn's, or the file depends on a gunicorn setting, the line says why.
const EXPECTED: &[(&str, u16)] = &[
    // A head that never ends ("baz" is a line without its CRLF): the header
    // timeout answers it (gunicorn: NoMoreData, at the end of its input).
    ("001", 408),
    ("002", 400),
    ("003", 400),
    ("003b", 400),
    // "-bl" is a valid token (an unknown method, 501), but the request has
    // no Host: 400 first.
    ("003c", 400),
    ("004", 400),
    ("005", 400),
    // gunicorn's request line limit is 4094 bytes, ours 8 KiB (nginx's):
    // this 4112-byte PUT is refused as a PUT (HTTP/1.0 closes). Its
    // equivalent over our limit is a 414 (see `over_our_limits`).
    ("006", HANDLER),
    // Field lines of 8189 bytes (007, 008, 017) or 8190
    // (limit_header_default_01) without their CRLF: over the 8190 bytes
    // with it that gunicorn and we allow.
    ("007", 431),
    ("008", 431),
    ("009", 431),
    // gunicorn sets limit_request_field_size = 10; ours is fixed (8190).
    // As sent it lacks a Host (400); the equivalent is 431.
    ("010", 400),
    // 011 and 012 are valid HTTP under any default limits (gunicorn's
    // too): gunicorn refuses them only with limit_request_fields = 2 and
    // limit_request_field_size = 98. Our limits are fixed (100 fields, an
    // 8190-byte field line), so their equivalents go over ours instead.
    ("011", 431),
    ("012", 431),
    // obs-fold (with gunicorn's permit_obsolete_folding): we never allow it.
    ("013", 400),
    ("014", 400),
    ("015", 400),
    ("016", 400),
    ("017", 431),
    ("018", 400),
    // gunicorn refuses the X-Forwarded-* conflict (forwarded_allow_ips);
    // we read no X-Forwarded-* at all. Refused for its missing Host.
    ("019", 400),
    ("020", 400),
    ("021", 400),
    ("022", 400),
    ("023", 400),
    ("024", 400),
    // gunicorn's header_map = "refuse": we refuse framing fields spelled
    // with '_' (Content_Length, Transfer_Encoding), which a CGI/WSGI
    // gateway behind us would read as the real ones; other '_' names pass.
    ("040", 400),
    // Content-Type twice.
    ("041", 400),
    ("042", 400),
    // The chunked files have no Host, a 400 before their framing is
    // looked at: WITH_HOST sends them again with one.
    ("chunked_01", 400),
    ("chunked_02", 400),
    ("chunked_03", 400),
    ("chunked_04", 400),
    ("chunked_05", 400),
    ("chunked_06", 400),
    // header_map = "refuse" in gunicorn; see 040.
    ("chunked_07", 400),
    ("chunked_08", 400),
    ("chunked_09", 400),
    ("chunked_10", 400),
    ("chunked_11", 400),
    ("chunked_12", 400),
    ("chunked_13", 400),
    ("chunked_14", 400),
    ("invalid_field_value_01", 400),
    // gunicorn's limit_request_field_size = 0 means its default limit.
    ("limit_header_default_01", 431),
    ("nonascii_01", 400),
    ("nonascii_02", 400),
    ("nonascii_03", 400),
    ("nonascii_04", 400),
    ("obs_fold_01", 400),
    // PROXY protocol lines (gunicorn's proxy_protocol = True): we don't
    // speak it, so they are invalid request lines, refused as soon as the
    // line ends (the head never does).
    ("pp_01", 400),
    ("pp_02", 400),
    ("pp_03", 400),
    ("prefix_01", 400),
    ("prefix_02", 400),
    ("prefix_03", 400),
    ("prefix_04", 400),
    ("prefix_05", 400),
    ("prefix_06", 400),
    ("rfc9110_field_value_ctl_bel_01", 400),
    ("rfc9110_field_value_ctl_del_01", 400),
    // The head is fine and answered before its body is read; the chunked
    // framing is then refused and the connection closed (checked, with the
    // probe behind it).
    ("rfc9110_trailer_forbidden_cl_01", HANDLER),
    ("rfc9110_trailer_forbidden_host_01", HANDLER),
    ("rfc9110_trailer_forbidden_te_01", HANDLER),
    ("rfc9112_bare_lf_01", 400),
    // The body never ends: answered, then closed by the body timeout.
    ("rfc9112_chunked_missing_final_crlf_01", HANDLER),
    ("rfc9112_chunked_size_minus_sign_01", HANDLER),
    ("rfc9112_chunked_size_plus_sign_01", HANDLER),
    ("rfc9112_leading_crlf_02", 400),
    ("rfc9112_smuggle_cl_list_form_01", 400),
    ("rfc9112_smuggle_cl_te_chunked_01", 400),
    ("rfc9112_target_asterisk_non_options_01", 400),
    ("rfc9112_target_authority_non_connect_01", 400),
    ("rfc9112_target_non_ascii_01", 400),
    ("rfc9112_target_non_ascii_02", 400),
    ("rfc9112_target_nul_01", 400),
    ("rfc9112_target_relative_01", 400),
    ("rfc9112_te_identity_with_cl_01", 400),
    // gzip alone: a coding we don't know, 501 (RFC 9112 6.1; 6.3 would
    // allow a 400 for its missing chunked).
    ("rfc9112_te_not_chunked_final_01", 501),
    ("version_01", 400),
    ("version_02", 505),
];

/// Files refused for a missing Host before their own defect is reached,
/// sent again with a `Host` after the request line, and what we answer
/// then: their own defect is refused too. (010, 019 and 003c are left
/// out: 010 and 019 are valid with a Host but for a gunicorn setting, see
/// above; "-bl" is a valid method token.)
const WITH_HOST: &[(&str, u16)] = &[
    ("013", 400),
    ("017", 431),
    ("020", 400),
    ("021", 400),
    // 405 and then closed: the chunk framing itself is refused.
    ("chunked_01", 405),
    ("chunked_02", 400),
    ("chunked_03", 400),
    ("chunked_04", 400),
    ("chunked_06", 400),
    ("chunked_07", 400),
    ("chunked_08", 400),
    ("chunked_09", 405),
    ("chunked_10", 405),
    ("chunked_11", 405),
    ("chunked_12", 405),
    ("chunked_13", 405),
    ("chunked_14", 405),
    ("nonascii_03", 400),
    ("nonascii_04", 400),
    ("prefix_03", 400),
    ("prefix_04", 400),
    ("prefix_05", 400),
    ("rfc9112_te_identity_with_cl_01", 400),
];

/// `bytes` with `Host: localhost` after its request line.
fn with_host(bytes: &[u8]) -> Vec<u8> {
    let at = find(bytes, b"\r\n").unwrap() + 2;
    [&bytes[..at], b"Host: localhost\r\n", &bytes[at..]].concat()
}

include!("data/gunicorn-invalid/load.rs");

/// What we send instead of a file that only fails under a gunicorn
/// setting: the same request, over our fixed limit rather than over the
/// lower one gunicorn's test configures. `None`: the file as it is.
fn equivalent(name: &str, bytes: &[u8]) -> Option<Vec<u8>> {
    match name {
        // limit_request_fields = 2 (three fields sent): one past our 100.
        "011" => {
            let head_end = find(bytes, b"\r\n\r\n").unwrap() + 2;
            let mut out = bytes[..head_end].to_vec();
            for i in 3..=OUR_MAX_FIELDS {
                out.extend_from_slice(format!("X-Field-{i}: {i}\r\n").as_bytes());
            }
            out.extend_from_slice(&bytes[head_end..]);
            Some(out)
        }
        // limit_request_field_size = 98 (a 99-byte User-Agent line): its
        // value grown to one byte past our field line limit.
        "012" => Some(grow_line(bytes, 1, OUR_FIELD_LINE + 1)),
        _ => None,
    }
}

/// Files refused as they are whose gunicorn verdict rests on a gunicorn
/// limit lower than ours: the same request over our limit, and what we
/// answer then.
fn over_our_limits(name: &str, bytes: &[u8]) -> Option<(Vec<u8>, u16)> {
    match name {
        "006" => Some((grow_line(bytes, 0, OUR_REQUEST_LINE + 1), 414)),
        "010" => {
            let with_host = replace_bytes(bytes, b"Accept:", b"Host: localhost\r\nAccept:");
            Some((grow_line(&with_host, 2, OUR_FIELD_LINE + 1), 431))
        }
        _ => None,
    }
}

/// `bytes` with line `index` (0: the request line) grown to `len` bytes
/// (without its CRLF) by repeating its last byte before the CRLF.
fn grow_line(bytes: &[u8], index: usize, len: usize) -> Vec<u8> {
    let mut start = 0;
    for _ in 0..index {
        start += find(&bytes[start..], b"\r\n").unwrap() + 2;
    }
    let end = start + find(&bytes[start..], b"\r\n").unwrap();
    assert!(end - start < len, "line {index} is already long");
    // The request line grows in its target (the middle token).
    let at = if index == 0 {
        start + bytes[start..end].iter().rposition(|&b| b == b' ').unwrap()
    } else {
        end
    };
    let filler = if index == 0 { b'a' } else { bytes[at - 1] };
    let mut out = bytes[..at].to_vec();
    out.resize(at + len - (end - start), filler);
    out.extend_from_slice(&bytes[at..]);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What came back on one connection.
#[derive(Debug)]
struct Exchange {
    statuses: Vec<u16>,
    /// The server closed the connection (EOF or reset) within [`EXCHANGE`].
    closed: bool,
}

/// Sends `bytes` on a new connection, half-closes nothing, and reads
/// until the server closes it or [`EXCHANGE`] passes.
fn exchange(addr: SocketAddr, bytes: &[u8]) -> Exchange {
    let mut stream = TcpStream::connect_timeout(&addr, DEADLINE).expect("connect");
    stream.set_write_timeout(Some(EXCHANGE)).unwrap();
    // The server may refuse and stop reading before the last byte: a
    // failed write is not a failure of the test.
    let _ = stream.write_all(bytes);
    let deadline = Instant::now() + EXCHANGE;
    let mut received = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let closed = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break false;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut chunk) {
            Ok(0) => break true,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break true, // reset: closed too
        }
    };
    Exchange {
        statuses: statuses(&received),
        closed,
    }
}

/// The statuses of the responses in `bytes` (heads, and bodies skipped by
/// their Content-Length).
fn statuses(mut bytes: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    while let Some(end) = find(bytes, b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let length: usize = head
            .lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, value)| value.trim().parse().ok())
            .unwrap_or(0);
        out.push(status);
        bytes = &bytes[(end + 4 + length).min(bytes.len())..];
    }
    out
}

/// A server for these tests: a 1 s header timeout (a head that never ends
/// is answered soon), a 30 s keep-alive (see [`EXCHANGE`]), and every
/// target a corpus GET names.
fn start(mode: &str) -> Server {
    let config = write_config("header_timeout = \"1s\"\nkeepalive_timeout = \"30s\"\n");
    let server = Server::start(mode, &["--config", &config]);
    let root = server.root.path();
    for dir in ["foo", "stuff", "keep/same", "the"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for file in [
        "foo/bar",
        "foo/index.html",
        "test",
        "stuff/here",
        "first",
        "keep/same/as",
        "the/future",
        "germans..",
        "french..",
    ] {
        std::fs::write(root.join(file), "served\n").unwrap();
    }
    server
}

/// Checks one input: refused with `expected` (any 4xx or 5xx when `None`),
/// one answer, then closed; and with [`PROBE`] behind it, the probe is
/// never answered. Returns what went wrong.
fn refused(addr: SocketAddr, name: &str, bytes: &[u8], expected: Option<u16>) -> Vec<String> {
    let mut failures = Vec::new();
    let alone = exchange(addr, bytes);
    let status_ok = |status: u16| match expected {
        Some(HANDLER) => status == 405 || status == 421,
        Some(expected) => status == expected,
        None => (400..600).contains(&status),
    };
    if alone.statuses.len() != 1 || !status_ok(alone.statuses[0]) || !alone.closed {
        failures.push(format!(
            "{name}: expected {expected:?} then close, got {alone:?}"
        ));
    }
    let probed = exchange(addr, &[bytes, PROBE].concat());
    if probed.statuses.len() != 1 || !(400..600).contains(&probed.statuses[0]) || !probed.closed {
        failures.push(format!(
            "{name} + probe: expected one 4xx/5xx then close, got {probed:?}"
        ));
    }
    failures
}

every_mode!(the_gunicorn_invalid_corpus_is_refused, |mode| {
    let cases = gunicorn_corpus();
    assert_eq!(cases.len(), 81, "the corpus has 81 files");
    let names: Vec<&str> = cases.iter().map(|(name, _)| name.as_str()).collect();
    let listed: Vec<&str> = EXPECTED.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, listed, "EXPECTED lists every file, in order");

    let server = start(mode);
    let workers = server.wait_for_workers(2);
    // Each file on its own connections, all at once (the slow ones wait
    // for a timeout).
    let failures: Vec<String> = std::thread::scope(|scope| {
        let checks: Vec<_> = cases
            .iter()
            .zip(EXPECTED)
            .map(|((name, bytes), &(_, status))| {
                let addr = server.addr;
                scope.spawn(move || {
                    let sent = equivalent(name, bytes).unwrap_or_else(|| bytes.clone());
                    let mut failures = refused(addr, name, &sent, Some(status));
                    if let Some((over, status)) = over_our_limits(name, bytes) {
                        let name = format!("{name} over our limits");
                        failures.extend(refused(addr, &name, &over, Some(status)));
                    }
                    if let Some(&(_, status)) = WITH_HOST.iter().find(|(n, _)| n == name) {
                        let name = format!("{name} with a Host");
                        failures.extend(refused(addr, &name, &with_host(bytes), Some(status)));
                    }
                    failures
                })
            })
            .collect();
        checks
            .into_iter()
            .flat_map(|check| check.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} failures:\n{}\nlog:\n{}",
        failures.len(),
        failures.join("\n"),
        server.log()
    );
    assert_eq!(server.workers(), workers, "a worker died");
    assert!(!server.log().contains("panicked"), "{}", server.log());
});

/// Sends `raw` and the probe behind it on one connection; returns the
/// statuses and whether the server closed.
fn probe(server: &Server, raw: &[u8]) -> Exchange {
    exchange(server.addr, &[raw, PROBE].concat())
}

/// `raw` and the probe behind it get `statuses`, then the connection
/// closes (the probe asks for it).
fn assert_answers(server: &Server, raw: &[u8], statuses: &[u16]) {
    let got = probe(server, raw);
    assert!(
        got.statuses == statuses && got.closed,
        "{:?}: expected {statuses:?} then close, got {got:?}",
        String::from_utf8_lossy(raw)
    );
}

/// `raw` is refused and nothing after it is read as a request.
fn assert_refused(server: &Server, raw: &[u8], status: u16) {
    assert_answers(server, raw, &[status]);
}

/// `raw` is answered `status`, then the probe behind it (200).
fn assert_accepted(server: &Server, raw: &[u8], status: u16) {
    assert_answers(server, raw, &[status, 200]);
}

const CHUNKED: &str = "POST /x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n";

fn chunked(body: &str) -> Vec<u8> {
    format!("{CHUNKED}{body}").into_bytes()
}

every_mode!(
    a_bare_lf_is_refused_in_the_head_and_in_the_chunked_framing,
    |mode| {
        let server = start(mode);
        assert_refused(
            &server,
            b"GET /hello.txt HTTP/1.1\nHost: localhost\r\n\r\n",
            400,
        );
        assert_refused(
            &server,
            b"GET /hello.txt HTTP/1.1\r\nHost: localhost\n\r\n",
            400,
        );
        assert_refused(
            &server,
            b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\n",
            400,
        );
        // The head is answered before the body is read: bad framing can
        // only close the connection.
        assert_chunked(
            &server,
            &["3\r\nabc\r\n0\r\n\r\n"],
            &[
                "3\nabc\r\n0\r\n\r\n",
                "3\r\nabc\n0\r\n\r\n",
                "3\r\nabc\r\n0\n\r\n",
                "3\r\nabc\r\n0\r\nX: 1\n\r\n",
                "3\r\nabc\r\n0\r\n\n",
            ],
        );
    }
);

every_mode!(
    a_field_line_over_8190_bytes_is_431_whatever_the_head_limit,
    |mode| {
        let config = write_config("max_header_bytes = \"64KiB\"\n");
        let server = Server::start(mode, &["--config", &config]);
        let line = |len: usize| {
            format!(
                "GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nX: {}\r\n\r\n",
                "a".repeat(len - 3)
            )
        };
        assert_accepted(&server, line(OUR_FIELD_LINE).as_bytes(), 200);
        assert_refused(&server, line(OUR_FIELD_LINE + 1).as_bytes(), 431);
        // Many lines under the limit are fine up to max_header_bytes.
        let many = format!(
            "GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n{}\r\n",
            format!("X: {}\r\n", "a".repeat(8000)).repeat(5)
        );
        assert_accepted(&server, many.as_bytes(), 200);
    }
);

/// Chunked bodies: each of `good` is read and the probe behind it
/// answered; each of `bad` closes the connection after the head's 405.
fn assert_chunked(server: &Server, good: &[&str], bad: &[&str]) {
    for body in good {
        assert_accepted(server, &chunked(body), 405);
    }
    for body in bad {
        assert_refused(server, &chunked(body), 405);
    }
}

every_mode!(chunk_extensions_must_follow_the_grammar, |mode| {
    let server = start(mode);
    assert_chunked(
        &server,
        &[
            "1;a\r\nx\r\n0\r\n\r\n",
            "1 ; a = b ; c=\"q\\\" t\"\r\nx\r\n0;z\r\n\r\n",
        ],
        &[
            "5 junk\r\nhello\r\n0\r\n\r\n",
            "5;\0\r\nhello\r\n0\r\n\r\n",
            "5;a=\0\r\nhello\r\n0\r\n\r\n",
            "5;\r\nhello\r\n0\r\n\r\n",
            "0 \r\n\r\n",
            "5;a=\"b\r\nhello\r\n0\r\n\r\n",
        ],
    );
});

every_mode!(trailers_must_be_fields, |mode| {
    let server = start(mode);
    assert_chunked(
        &server,
        &["0\r\nX-Checksum: abc\r\n\r\n"],
        &[
            "0\r\nnot a field\r\n\r\n",
            "0\r\nX-Checksum abc\r\n\r\n",
            "0\r\n folded\r\n\r\n",
            "0\r\nX: a\0b\r\n\r\n",
            "0\r\nContent-Length: 5\r\n\r\n",
            "0\r\nHost: evil\r\n\r\n",
        ],
    );
});

every_mode!(only_ows_is_trimmed_from_field_values, |mode| {
    let server = start(mode);
    assert_accepted(
        &server,
        b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: \t0 \r\n\r\n",
        200,
    );
    assert_refused(
        &server,
        b"POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\xc2\xa0\r\n\r\nhello",
        400,
    );
    assert_refused(
        &server,
        b"POST /x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: \xc2\xa0chunked\r\n\r\n0\r\n\r\n",
        400,
    );
});
