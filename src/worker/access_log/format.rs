//! One access-log line, formatted straight into a byte buffer: no `String`,
//! no `format!`, so a line costs no allocation once the buffer has grown.
//!
//! The three shapes ([`AccessLogFormat`]):
//! - `forkpool`: the line forkpool has always written through `log`, prefix
//!   included, so whatever parses it keeps working:
//!   `2026-11-30T12:34:56.789Z INFO  [PID] GET /a 200 1024 45us pid=PID`
//!   (a request whose head could not be parsed is `- -`);
//! - `common`, the NCSA Common Log Format:
//!   `127.0.0.1 - - [30/Nov/2026:12:34:56 +0000] "GET /a HTTP/1.1" 200 1024`
//!   (bytes are the body's, `-` for none, as Apache's `%b`);
//! - `combined`: common, then `"Referer" "User-Agent"` (`"-"` when absent).
//!
//! Quoted fields are escaped as nginx escapes them: `"`, `\`, control bytes
//! and bytes from 0x7f up become `\xHH`, so a client can neither end a
//! field early nor write a line of its own. Times are UTC. The date parts
//! are formatted once per second per buffer ([`Clock`]), as
//! `http::date` does for the `Date` header; only the milliseconds of the
//! `forkpool` timestamp are written per line.
//!
//! This file doesn't decide when lines are written: see the parent module.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::config::AccessLogFormat;
use crate::http::Request;
use crate::http::date::civil_from_days;

/// What one line says about one answer.
pub(crate) struct Entry<'a> {
    /// The request answered; its peer is the line's host.
    pub(crate) req: &'a Request,
    /// Whether `req`'s head was parsed: false for an answer to a head that
    /// could not be (then `req` holds no request line, and `-` stands in).
    pub(crate) parsed: bool,
    pub(crate) status: u16,
    /// Body bytes of the answer.
    pub(crate) bytes: u64,
    /// When serving the request started, for `forkpool`'s time taken (an
    /// unparsable head shows `0us`).
    pub(crate) started: Option<Instant>,
}

/// The date and time, formatted for the current second.
pub(super) struct Clock {
    second: u64,
    /// `2026-11-30T12:34:56` (RFC 3339, as env_logger wrote it).
    rfc3339: [u8; 19],
    /// `30/Nov/2026:12:34:56 +0000` (the CLF date, without its brackets).
    clf: [u8; 26],
}

impl Default for Clock {
    fn default() -> Clock {
        Clock {
            second: u64::MAX,
            rfc3339: [b'0'; 19],
            clf: [b'0'; 26],
        }
    }
}

impl Clock {
    /// Brings the formatted date up to `second` (seconds since 1970, UTC).
    fn set(&mut self, second: u64) {
        if self.second == second {
            return;
        }
        self.second = second;
        let (year, month, day) = civil_from_days((second / 86_400) as i64);
        let in_day = second % 86_400;
        let (hour, minute, sec) = (in_day / 3600, in_day / 60 % 60, in_day % 60);
        let year = year.clamp(0, 9999) as u64;
        let mut r = &mut self.rfc3339[..];
        // Writing into a fixed array of the right size can't fail.
        let _ = write!(
            r,
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{sec:02}"
        );
        r = &mut self.clf[..];
        let name = MONTHS[(month - 1) as usize];
        let _ = write!(
            r,
            "{day:02}/{name}/{year:04}:{hour:02}:{minute:02}:{sec:02} +0000"
        );
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Appends the line for `entry`, newline included, to `out`. `now` is the
/// time the line is stamped with; `pid` the worker's.
pub(super) fn line(
    out: &mut Vec<u8>,
    clock: &mut Clock,
    format: AccessLogFormat,
    pid: u32,
    entry: &Entry<'_>,
    now: SystemTime,
) {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    clock.set(since_epoch.as_secs());
    let mut numbers = itoa::Buffer::new();
    match format {
        AccessLogFormat::Forkpool => {
            out.extend_from_slice(&clock.rfc3339);
            out.push(b'.');
            let millis = since_epoch.subsec_millis();
            out.extend_from_slice(&[
                b'0' + (millis / 100) as u8,
                b'0' + (millis / 10 % 10) as u8,
                b'0' + (millis % 10) as u8,
            ]);
            out.extend_from_slice(b"Z INFO  [");
            out.extend_from_slice(numbers.format(pid).as_bytes());
            out.extend_from_slice(b"] ");
            if entry.parsed {
                out.extend_from_slice(entry.req.method_token.as_bytes());
                out.push(b' ');
                out.extend_from_slice(entry.req.target.as_bytes());
            } else {
                out.extend_from_slice(b"- -");
            }
            out.push(b' ');
            out.extend_from_slice(numbers.format(entry.status).as_bytes());
            out.push(b' ');
            out.extend_from_slice(numbers.format(entry.bytes).as_bytes());
            out.push(b' ');
            let micros = entry.started.map_or(0, |at| at.elapsed().as_micros());
            out.extend_from_slice(numbers.format(micros).as_bytes());
            out.extend_from_slice(b"us pid=");
            out.extend_from_slice(numbers.format(pid).as_bytes());
        }
        AccessLogFormat::Common | AccessLogFormat::Combined => {
            host(out, entry.req.peer);
            out.extend_from_slice(b" - - [");
            out.extend_from_slice(&clock.clf);
            out.extend_from_slice(b"] \"");
            if entry.parsed {
                escaped(out, entry.req.method_token.as_bytes());
                out.push(b' ');
                escaped(out, entry.req.target.as_bytes());
                out.extend_from_slice(match entry.req.http10 {
                    true => b" HTTP/1.0",
                    false => b" HTTP/1.1",
                });
            } else {
                out.push(b'-');
            }
            out.extend_from_slice(b"\" ");
            out.extend_from_slice(numbers.format(entry.status).as_bytes());
            out.push(b' ');
            match entry.bytes {
                0 => out.push(b'-'),
                n => out.extend_from_slice(numbers.format(n).as_bytes()),
            }
            if format == AccessLogFormat::Combined {
                quoted(out, &entry.req.referer);
                quoted(out, &entry.req.user_agent);
            }
        }
    }
    out.push(b'\n');
}

/// The peer's address, `-` if unknown.
fn host(out: &mut Vec<u8>, peer: Option<SocketAddr>) {
    match peer.map(|peer| peer.ip()) {
        Some(IpAddr::V4(ip)) => {
            let mut numbers = itoa::Buffer::new();
            for (n, octet) in ip.octets().into_iter().enumerate() {
                if n > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(numbers.format(octet).as_bytes());
            }
        }
        // Rare enough (a `[::1]` or `localhost` listener) for `fmt`, which
        // writes into the buffer without allocating.
        Some(IpAddr::V6(ip)) => {
            let _ = write!(out, "{ip}");
        }
        None => out.push(b'-'),
    }
}

/// ` "value"`, escaped; `"-"` for an empty one (as nginx and Apache log
/// an absent header).
fn quoted(out: &mut Vec<u8>, value: &str) {
    out.extend_from_slice(b" \"");
    match value.is_empty() {
        true => out.push(b'-'),
        false => escaped(out, value.as_bytes()),
    }
    out.push(b'"');
}

/// `bytes` with `"`, `\`, control bytes and bytes from 0x7f up written as
/// `\xHH` (nginx's `escape=default`).
fn escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            out.extend_from_slice(&[b'\\', b'x', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        } else {
            out.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// 2000-10-10 13:55:36.042 UTC, the date of Apache's CLF example.
    fn apache_example() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(971_186_136_042)
    }

    fn request(head: &str, peer: &str) -> Request {
        let mut req = Request {
            peer: Some(peer.parse().unwrap()),
            keep_referer_and_agent: true,
            ..Request::default()
        };
        crate::http::request::parse_head(head.as_bytes(), 16 * 1024, &mut req).unwrap();
        req
    }

    fn formatted(format: AccessLogFormat, entry: &Entry<'_>) -> String {
        let mut out = Vec::new();
        line(
            &mut out,
            &mut Clock::default(),
            format,
            42,
            entry,
            apache_example(),
        );
        String::from_utf8(out).unwrap()
    }

    fn answered(req: &Request, status: u16, bytes: u64) -> Entry<'_> {
        Entry {
            req,
            parsed: true,
            status,
            bytes,
            started: None,
        }
    }

    #[test]
    fn common_is_ncsa_common_log_format() {
        let req = request("GET /apache_pb.gif HTTP/1.0\r\n\r\n", "127.0.0.1:5000");
        assert_eq!(
            formatted(AccessLogFormat::Common, &answered(&req, 200, 2326)),
            "127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /apache_pb.gif HTTP/1.0\" 200 2326\n"
        );
        assert_eq!(
            formatted(AccessLogFormat::Common, &answered(&req, 304, 0)),
            "127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /apache_pb.gif HTTP/1.0\" 304 -\n",
            "no body is -, as %b"
        );
    }

    #[test]
    fn combined_adds_referer_and_user_agent_escaped() {
        let req = request(
            "GET /a?b=c HTTP/1.1\r\nHost: h\r\nReferer: http://h/start.html\r\n\
             User-Agent: Mozilla/4.08 \"quoted\" back\\slash caf\u{e9}\r\n\r\n",
            "[::1]:5000",
        );
        assert_eq!(
            formatted(AccessLogFormat::Combined, &answered(&req, 200, 5)),
            "::1 - - [10/Oct/2000:13:55:36 +0000] \"GET /a?b=c HTTP/1.1\" 200 5 \
             \"http://h/start.html\" \"Mozilla/4.08 \\x22quoted\\x22 back\\x5Cslash caf\\xC3\\xA9\"\n"
        );
        let bare = request("GET / HTTP/1.1\r\nHost: h\r\n\r\n", "10.0.0.255:1");
        assert_eq!(
            formatted(AccessLogFormat::Combined, &answered(&bare, 404, 9)),
            "10.0.0.255 - - [10/Oct/2000:13:55:36 +0000] \"GET / HTTP/1.1\" 404 9 \"-\" \"-\"\n"
        );
    }

    #[test]
    fn an_unparsed_head_has_no_request_line() {
        let req = Request {
            peer: Some("127.0.0.1:1".parse().unwrap()),
            ..Request::default()
        };
        let refused = Entry {
            parsed: false,
            ..answered(&req, 400, 30)
        };
        assert_eq!(
            formatted(AccessLogFormat::Combined, &refused),
            "127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"-\" 400 30 \"-\" \"-\"\n"
        );
        assert_eq!(
            formatted(AccessLogFormat::Forkpool, &refused),
            "2000-10-10T13:55:36.042Z INFO  [42] - - 400 30 0us pid=42\n"
        );
    }

    #[test]
    fn forkpool_keeps_its_old_shape() {
        let req = request("HEAD /x%20y HTTP/1.1\r\nHost: h\r\n\r\n", "127.0.0.1:1");
        let entry = Entry {
            started: Some(Instant::now()),
            ..answered(&req, 200, 0)
        };
        let line = formatted(AccessLogFormat::Forkpool, &entry);
        let rest = line
            .strip_prefix("2000-10-10T13:55:36.042Z INFO  [42] HEAD /x%20y 200 0 ")
            .unwrap_or_else(|| panic!("{line}"));
        let micros = rest.strip_suffix("us pid=42\n").unwrap();
        assert!(micros.parse::<u64>().is_ok(), "{line}");
    }

    #[test]
    fn control_bytes_in_a_quoted_field_are_escaped() {
        let mut out = Vec::new();
        escaped(&mut out, b"a\x01\x1f\x7f\"b");
        assert_eq!(out, b"a\\x01\\x1F\\x7F\\x22b");
    }

    #[test]
    fn the_dates_agree_with_httpdate() {
        let mut clock = Clock::default();
        // Leap days, year ends, the epoch, far future.
        for second in [
            0u64,
            951_782_400,   // 2000-02-29
            1_709_164_799, // 2024-02-28 23:59:59
            1_735_689_599, // 2024-12-31 23:59:59
            4_102_444_800, // 2100-01-01
            253_402_300_799,
        ] {
            clock.set(second);
            // "Tue, 10 Oct 2000 13:55:36 GMT" -> "10/Oct/2000:13:55:36"
            let http = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(second));
            let parts: Vec<&str> = http[5..].split(' ').collect();
            let want = format!("{}/{}/{}:{} +0000", parts[0], parts[1], parts[2], parts[3]);
            assert_eq!(std::str::from_utf8(&clock.clf).unwrap(), want, "{second}");
            let rfc = std::str::from_utf8(&clock.rfc3339).unwrap();
            let month = MONTHS.iter().position(|m| *m == parts[1]).unwrap() + 1;
            let want = format!("{}-{month:02}-{}T{}", parts[2], parts[0], parts[3]);
            assert_eq!(rfc, want, "{second}");
        }
    }
}
