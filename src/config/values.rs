//! Value parsers and the typed TOML values built on them.
//!
//! The parsers read what a user writes for one value, in a flag or in the
//! file: a duration ("250ms", "1.5s"), a size ("16KiB", "64MiB"), a worker
//! count (N or "auto"), a mode, a listen address, a server name, a
//! response header (`--header "Name: value"`). Each returns the reason
//! when the value is bad; whoever knows the key or the flag names it.
//!
//! The typed values ([`Timeout`], [`ByteSize`], [`Listen`], …) are what the
//! file layer deserializes each key into. Their `Deserialize` impls go
//! through a `toml::Value`, so a wrong type and a bad string get the same
//! kind of message, ours: "expected …, found " and the value as written.
//! Range checks that depend on the key stay with the key, in `file`.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};
use toml::Value;

use super::{Accept, AccessLogFormat, MAX_WORKERS, Mode, WORKERS};
use crate::http::request::{is_tchar, trim_ows};

// ---------------------------------------------------------------------------
// Typed TOML values
// ---------------------------------------------------------------------------

/// A timeout: a duration string or a whole number of seconds; never 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Timeout(pub(super) Duration);

/// A size in bytes: a string with a unit or a whole number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ByteSize(pub(super) u64);

/// A listen address as [`parse_listen`] reads it; a bare integer is a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Listen {
    /// `localhost:PORT` is `127.0.0.1:PORT` here ...
    pub(super) addr: SocketAddr,
    /// ... and `[::1]:PORT` too, when this is set: browsers try `::1`
    /// first for `localhost`.
    pub(super) localhost: bool,
}

/// A number of workers, or "auto" (already resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Workers(pub(super) usize);

/// Any integer; the key's range is checked by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Integer(pub(super) i64);

/// `true` or `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Boolean(pub(super) bool);

/// A directory path, as written (resolved once every layer is in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Directory(pub(super) PathBuf);

/// A list of host names, each as [`parse_server_name`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ServerNames(pub(super) Vec<String>);

impl Timeout {
    fn from_value(v: &Value) -> Result<Timeout, String> {
        let duration = match v {
            Value::String(s) => parse_duration(s)?,
            // Negative seconds fall through to the "longer than 0" reason.
            Value::Integer(n) => Duration::from_secs(u64::try_from(*n).unwrap_or(0)),
            _ => return Err(expected("a duration such as \"5s\"", v)),
        };
        if duration.is_zero() {
            return Err(format!("must be longer than 0, found {}", shown(v)));
        }
        Ok(Timeout(duration))
    }
}

impl ByteSize {
    fn from_value(v: &Value) -> Result<ByteSize, String> {
        match v {
            Value::String(s) => parse_size(s).map(ByteSize),
            Value::Integer(n) => u64::try_from(*n)
                .map(ByteSize)
                .map_err(|_| format!("must not be negative, found {n}")),
            _ => Err(expected("a size such as \"16KiB\"", v)),
        }
    }
}

impl Listen {
    fn from_value(v: &Value) -> Result<Listen, String> {
        match v {
            Value::String(s) => parse_listen(s),
            Value::Integer(n) => parse_listen(&n.to_string()),
            _ => Err(expected("an address such as \"127.0.0.1:8080\"", v)),
        }
    }
}

impl Workers {
    fn from_value(v: &Value) -> Result<Workers, String> {
        match v {
            Value::Integer(n) => Ok(Workers(in_range(*n, &WORKERS)? as usize)),
            Value::String(s) => parse_workers(s).map(Workers),
            _ => Err(expected("a number of workers or \"auto\"", v)),
        }
    }
}

impl Integer {
    fn from_value(v: &Value) -> Result<Integer, String> {
        v.as_integer()
            .map(Integer)
            .ok_or_else(|| expected("an integer", v))
    }
}

impl Boolean {
    fn from_value(v: &Value) -> Result<Boolean, String> {
        v.as_bool()
            .map(Boolean)
            .ok_or_else(|| expected("true or false", v))
    }
}

impl Directory {
    fn from_value(v: &Value) -> Result<Directory, String> {
        v.as_str()
            .map(|s| Directory(PathBuf::from(s)))
            .ok_or_else(|| expected("a directory path", v))
    }
}

impl ServerNames {
    fn from_value(v: &Value) -> Result<ServerNames, String> {
        let Value::Array(items) = v else {
            return Err(expected(
                "a list of host names such as [\"dev.example\"]",
                v,
            ));
        };
        let mut names = Vec::with_capacity(items.len());
        for item in items {
            let Value::String(s) = item else {
                return Err(expected("a host name such as \"dev.example\"", item));
            };
            let name = parse_server_name(s)?;
            if !names.contains(&name) {
                names.push(name);
            }
        }
        Ok(ServerNames(names))
    }
}

impl Mode {
    fn from_value(v: &Value) -> Result<Mode, String> {
        match v {
            Value::String(s) => parse_mode(s),
            _ => Err(expected(MODES, v)),
        }
    }
}

impl Accept {
    fn from_value(v: &Value) -> Result<Accept, String> {
        match v {
            Value::String(s) => parse_accept(s),
            _ => Err(expected(ACCEPTS, v)),
        }
    }
}

impl AccessLogFormat {
    fn from_value(v: &Value) -> Result<AccessLogFormat, String> {
        match v {
            Value::String(s) => parse_access_log_format(s),
            _ => Err(expected(ACCESS_LOG_FORMATS, v)),
        }
    }
}

const MODES: &str = r#""process", "thread" or "thread-loops""#;
const ACCESS_LOG_FORMATS: &str = r#""forkpool", "common" or "combined""#;
const ACCEPTS: &str = r#""shared" or "reuseport""#;

/// `Deserialize` through a `toml::Value` and the type's `from_value`, so
/// that every error is the type's own message (serde's "invalid type: …"
/// never reaches the user).
macro_rules! deserialize_from_value {
    ($($type:ty),+ $(,)?) => {$(
        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = Value::deserialize(deserializer)?;
                <$type>::from_value(&value).map_err(de::Error::custom)
            }
        }
    )+};
}

deserialize_from_value!(
    Timeout,
    ByteSize,
    Listen,
    Workers,
    Integer,
    Boolean,
    Directory,
    ServerNames,
    Mode,
    Accept,
    AccessLogFormat
);

/// How a value is shown back in an error: as written for scalars.
pub(super) fn shown(v: &Value) -> String {
    match v {
        Value::Table(_) | Value::Array(_) => format!("a {}", v.type_str()),
        _ => v.to_string(),
    }
}

/// "expected `what`, found `v`".
fn expected(what: &str, v: &Value) -> String {
    format!("expected {what}, found {}", shown(v))
}

// ---------------------------------------------------------------------------
// Parsers. Each returns the reason; the caller adds the key or flag.
// ---------------------------------------------------------------------------

pub(super) fn in_range<T: PartialOrd + fmt::Display + Copy>(
    n: T,
    range: &RangeInclusive<T>,
) -> Result<T, String> {
    if range.contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "must be between {} and {}, found {n}",
            range.start(),
            range.end()
        ))
    }
}

/// `workers = "auto"`: one worker per CPU this process may run on.
pub(super) fn auto_workers() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    cpus.min(MAX_WORKERS)
}

/// `"auto"` (one per CPU) or a count from 1 to 512.
pub(super) fn parse_workers(s: &str) -> Result<usize, String> {
    if s.trim().eq_ignore_ascii_case("auto") {
        return Ok(auto_workers());
    }
    let n: i64 = s.trim().parse().map_err(|_| {
        format!("expected a number of workers (1 to {MAX_WORKERS}) or \"auto\", found \"{s}\"")
    })?;
    Ok(in_range(n, &WORKERS)? as usize)
}

pub(super) fn parse_mode(s: &str) -> Result<Mode, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "process" => Ok(Mode::Process),
        "thread" => Ok(Mode::Thread),
        "thread-loops" => Ok(Mode::ThreadLoops),
        _ => Err(format!("expected {MODES}, found \"{s}\"")),
    }
}

pub(super) fn parse_accept(s: &str) -> Result<Accept, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "shared" => Ok(Accept::Shared),
        "reuseport" => Ok(Accept::Reuseport),
        _ => Err(format!("expected {ACCEPTS}, found \"{s}\"")),
    }
}

/// An access-log format name; a near miss ("combine", "comon") gets a
/// "did you mean", as an unknown key does.
pub(super) fn parse_access_log_format(s: &str) -> Result<AccessLogFormat, String> {
    const ALL: [AccessLogFormat; 3] = [
        AccessLogFormat::Forkpool,
        AccessLogFormat::Common,
        AccessLogFormat::Combined,
    ];
    let wanted = s.trim().to_ascii_lowercase();
    if let Some(format) = ALL.into_iter().find(|f| f.name() == wanted) {
        return Ok(format);
    }
    let names = ALL.map(AccessLogFormat::name);
    Err(match closest(&wanted, &names) {
        Some(name) => {
            format!("expected {ACCESS_LOG_FORMATS}, found \"{s}\"; did you mean \"{name}\"?")
        }
        None => format!("expected {ACCESS_LOG_FORMATS}, found \"{s}\""),
    })
}

/// The known name (a key, a value) nearest to a misspelt one, if it is a
/// plausible typo: at most 2 edits, or a quarter of the known key's length for long keys; the
/// first in `known` on a tie.
pub(super) fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::levenshtein(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// A listen address: `IP:PORT` or `[IPv6]:PORT`, `localhost:PORT`
/// (127.0.0.1 and ::1, as browsers resolve it; no resolver is consulted),
/// or a bare `PORT` (127.0.0.1 only). Port 0 asks the kernel for a free
/// port.
pub(super) fn parse_listen(s: &str) -> Result<Listen, String> {
    let s = s.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(Listen {
            addr,
            localhost: false,
        });
    }
    let (port, localhost) = match s.strip_prefix("localhost:") {
        Some(port) => (port, true),
        None => (s, false),
    };
    if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
        return match port.parse::<u16>() {
            Ok(port) => Ok(Listen {
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                localhost,
            }),
            Err(_) => Err(format!("port must be between 0 and 65535, found {port}")),
        };
    }
    Err(format!(
        "expected IP:PORT, [IPv6]:PORT, localhost:PORT or a port number, found \"{s}\""
    ))
}

/// A host name requests may carry in `Host`: letters, digits, `-` and `_`
/// in dot-separated labels, no port; case and one trailing dot don't
/// matter (stored lower case, without it). A leading dot (`.example.com`)
/// stands for the name and every name below it.
pub(super) fn parse_server_name(s: &str) -> Result<String, String> {
    let lower = s.trim().to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    let labels = name.strip_prefix('.').unwrap_or(name);
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if labels.len() > 253 || !labels.split('.').all(label_ok) {
        return Err(format!(
            "expected a host name without a port, such as \"dev.example\" (or \".example\" \
             for it and every name below it), found \"{s}\""
        ));
    }
    Ok(name.to_owned())
}

/// Names forkpool writes on every response itself, or that frame or
/// describe the body it sends (its coding, its range): a second one from
/// the config would contradict or repeat it.
const OWN_HEADERS: [&str; 7] = [
    "content-length",
    "transfer-encoding",
    "content-encoding",
    "content-range",
    "connection",
    "date",
    "server",
];

/// `--header "Name: value"`: a response header for every static response,
/// checked by [`check_header`].
pub(super) fn parse_header_line(s: &str) -> Result<(String, String), String> {
    let Some((name, value)) = s.split_once(':') else {
        return Err(format!(
            "expected \"Name: value\", such as \"Cross-Origin-Opener-Policy: same-origin\", \
             found \"{s}\""
        ));
    };
    check_header(name.trim(), value)
}

/// A response header as the config gives it: the name a token (RFC 9110
/// 5.1: letters, digits and ``!#$%&'*+-.^_`|~``), not one forkpool writes
/// itself; the value printable ASCII, spaces and tabs (no CR or LF, so it
/// can't start another header), trimmed. Returns them as they will be sent.
pub(super) fn check_header(name: &str, value: &str) -> Result<(String, String), String> {
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(format!(
            "a header name is letters, digits and !#$%&'*+-.^_`|~, found \"{name}\""
        ));
    }
    if OWN_HEADERS.iter().any(|own| own.eq_ignore_ascii_case(name)) {
        return Err(format!(
            "{name} is written by forkpool itself: it frames or describes the body it sends"
        ));
    }
    let value = trim_ows(value);
    if let Some(bad) = value
        .chars()
        .find(|&c| !(c == ' ' || c == '\t' || c.is_ascii_graphic()))
    {
        return Err(format!(
            "the value of {name} must be printable ASCII, found {bad:?} in \"{}\"",
            value.escape_debug()
        ));
    }
    Ok((name.to_owned(), value.to_owned()))
}

/// Parses a duration: a decimal number and a unit, `ms`, `s`, `m` or `h`
/// ("250ms", "5s", "1.5s", "2m", "1h"); no unit means seconds. Fractions
/// below a nanosecond are dropped.
pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    const NANOS: [(&str, u64); 5] = [
        ("", 1_000_000_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60 * 1_000_000_000),
        ("h", 3600 * 1_000_000_000),
    ];
    parse_scaled(s, &NANOS)
        .map(Duration::from_nanos)
        .map_err(|err| match err {
            Unscaled::Malformed => format!(
                "expected a duration such as \"5s\", \"250ms\", \"2m\" or \"1h\", found \"{s}\""
            ),
            Unscaled::TooLarge => format!("\"{s}\" is too long"),
        })
}

/// Parses a size: a decimal number and a unit, case-insensitive: `B`,
/// `KB`/`MB`/`GB`/`TB` (powers of 1000) or `KiB`/`MiB`/`GiB`/`TiB` (powers
/// of 1024); no unit means bytes. Fractions of a byte are dropped.
pub(super) fn parse_size(s: &str) -> Result<u64, String> {
    const UNITS: [(&str, u64); 10] = [
        ("", 1),
        ("b", 1),
        ("kb", 1000),
        ("mb", 1_000_000),
        ("gb", 1_000_000_000),
        ("tb", 1_000_000_000_000),
        ("kib", 1 << 10),
        ("mib", 1 << 20),
        ("gib", 1 << 30),
        ("tib", 1 << 40),
    ];
    parse_scaled(s, &UNITS).map_err(|err| match err {
        Unscaled::Malformed => format!(
            "expected a size such as \"512B\", \"16KiB\", \"64MiB\" or \"1GB\", found \"{s}\""
        ),
        Unscaled::TooLarge => format!("\"{s}\" is too large"),
    })
}

/// Why [`parse_scaled`] has no number for a string.
enum Unscaled {
    /// Not a decimal number followed by one of the units.
    Malformed,
    /// Well formed, but the product does not fit a `u64`.
    TooLarge,
}

/// A decimal number and a unit from `units` (lower case, matched without
/// regard to case), times the unit's value.
fn parse_scaled(s: &str, units: &[(&str, u64)]) -> Result<u64, Unscaled> {
    let (number, unit) = split_number(s);
    let unit = unit.to_ascii_lowercase();
    let (_, scale) = units
        .iter()
        .find(|(u, _)| *u == unit)
        .ok_or(Unscaled::Malformed)?;
    if !is_decimal(number) {
        return Err(Unscaled::Malformed);
    }
    scale_decimal(number, *scale).ok_or(Unscaled::TooLarge)
}

/// Splits " 1.5 s " into ("1.5", "s").
fn split_number(s: &str) -> (&str, &str) {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    (&s[..end], s[end..].trim_start())
}

/// Digits with at most one decimal point, and at least one digit.
fn is_decimal(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && s.bytes().filter(|&b| b == b'.').count() <= 1
}

/// `number` (already checked by [`is_decimal`]) times `scale`, exactly,
/// rounded down; `None` if it does not fit a `u64`.
fn scale_decimal(number: &str, scale: u64) -> Option<u64> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    // Digits past the 18th are far below one unit of any scale used here.
    let fraction = &fraction[..fraction.len().min(18)];
    let numerator: u128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().ok()?
    };
    let denominator = 10u128.pow(fraction.len() as u32);
    let total = whole
        .checked_mul(u128::from(scale))?
        .checked_add(numerator * u128::from(scale) / denominator)?;
    u64::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::load_text;

    #[test]
    fn listen_forms() {
        for (input, want) in [
            ("127.0.0.1:8080", "127.0.0.1:8080"),
            ("0.0.0.0:80", "0.0.0.0:80"),
            ("[::1]:0", "[::1]:0"),
            ("localhost:3000", "127.0.0.1:3000"),
            ("8080", "127.0.0.1:8080"),
            (" 0 ", "127.0.0.1:0"),
        ] {
            let listen = parse_listen(input).unwrap();
            assert_eq!(listen.addr, want.parse().unwrap(), "{input}");
            // Only the name means both stacks; a bare port is 127.0.0.1.
            assert_eq!(listen.localhost, input.starts_with("localhost"), "{input}");
        }
        for bad in [
            "",
            "nowhere",
            "localhost",
            "localhost:",
            "1.2.3.4",
            "::1:80",
            "70000",
            "-1",
        ] {
            assert!(parse_listen(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            load_text("listen = 9000\n").unwrap().listen,
            "127.0.0.1:9000".parse().unwrap()
        );
    }

    #[test]
    fn access_log_formats() {
        for (input, want) in [
            ("forkpool", AccessLogFormat::Forkpool),
            ("common", AccessLogFormat::Common),
            (" Combined ", AccessLogFormat::Combined),
        ] {
            assert_eq!(parse_access_log_format(input), Ok(want), "{input:?}");
        }
        let near = parse_access_log_format("combine").unwrap_err();
        assert!(near.ends_with("did you mean \"combined\"?"), "{near}");
        let far = parse_access_log_format("apache").unwrap_err();
        assert_eq!(
            far,
            r#"expected "forkpool", "common" or "combined", found "apache""#
        );
        let err = load_text("access_log_format = \"comon\"\n").unwrap_err();
        assert_eq!(err.key, "access_log_format");
        assert!(err.reason.contains("did you mean \"common\"?"), "{err}");
    }

    #[test]
    fn response_headers() {
        let ok = |line: &str| parse_header_line(line).unwrap();
        assert_eq!(
            ok("Cross-Origin-Opener-Policy: same-origin"),
            ("Cross-Origin-Opener-Policy".into(), "same-origin".into())
        );
        assert_eq!(ok(" X-A :\t a: b \t"), ("X-A".into(), "a: b".into()));
        assert_eq!(ok("X-Empty:"), ("X-Empty".into(), String::new()));
        assert_eq!(
            ok("x~!#$%&'*+-.^_`|:1"),
            ("x~!#$%&'*+-.^_`|".into(), "1".into())
        );
        for (bad, why) in [
            ("no colon", "expected \"Name: value\""),
            (": v", "a header name is"),
            ("Bad Name: v", "a header name is"),
            ("X(y): v", "a header name is"),
            ("X-A: a\r\nSet-Cookie: x", "printable ASCII"),
            ("X-A: a\nb", "printable ASCII"),
            ("X-A: caf\u{e9}", "printable ASCII"),
            ("X-A: \u{7f}", "printable ASCII"),
            ("content-length: 5", "written by forkpool itself"),
            ("Connection: close", "written by forkpool itself"),
            ("Server: x", "written by forkpool itself"),
        ] {
            let err = parse_header_line(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        for (input, want) in [
            ("5s", ms(5000)),
            ("250ms", ms(250)),
            ("2m", ms(120_000)),
            ("1h", ms(3_600_000)),
            ("1.5s", ms(1500)),
            ("0.25m", ms(15_000)),
            (".5s", ms(500)),
            ("7", ms(7000)),
            ("10 S", ms(10_000)),
            ("0s", ms(0)),
            ("1.0000000001s", Duration::from_nanos(1_000_000_000)),
        ] {
            assert_eq!(parse_duration(input), Ok(want), "{input}");
        }
        for bad in [
            "",
            "s",
            "soon",
            "5x",
            "-5s",
            "1..5s",
            "1.5.s",
            "5s5",
            "5 fortnights",
            "1e3s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        // Overflow is an error, not a wrap-around.
        assert!(
            parse_duration("99999999999h")
                .unwrap_err()
                .contains("too long")
        );
        assert!(parse_duration("99999999999999999999999999999999999999999s").is_err());
    }

    #[test]
    fn sizes() {
        for (input, want) in [
            ("512B", 512),
            ("512", 512),
            ("1KB", 1000),
            ("1kb", 1000),
            ("16KiB", 16 * 1024),
            ("16kib", 16 * 1024),
            ("64MiB", 64 << 20),
            ("2MB", 2_000_000),
            ("1GiB", 1 << 30),
            ("1GB", 1_000_000_000),
            ("1TiB", 1 << 40),
            ("1.5KiB", 1536),
            ("0", 0),
            ("4 MiB", 4 << 20),
        ] {
            assert_eq!(parse_size(input), Ok(want), "{input}");
        }
        for bad in ["", "KiB", "lots", "1XB", "-1", "1..5KiB", "1 K i B"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert!(
            parse_size("17179869184GiB")
                .unwrap_err()
                .contains("too large")
        );
        assert!(parse_size("18446744073709551616").is_err());
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
    }

    /// One key's value from TOML text, through the typed value's `Deserialize`.
    fn typed<T: serde::de::DeserializeOwned>(value: &str) -> Result<T, String> {
        #[derive(Deserialize)]
        struct One<T> {
            v: T,
        }
        toml::from_str::<One<T>>(&format!("v = {value}\n"))
            .map(|one| one.v)
            .map_err(|err| err.message().to_owned())
    }

    #[test]
    fn typed_values_deserialize_from_toml() {
        let secs = Duration::from_secs;
        assert_eq!(typed("\"250ms\""), Ok(Timeout(Duration::from_millis(250))));
        assert_eq!(typed("7"), Ok(Timeout(secs(7))));
        assert_eq!(typed("\"64MiB\""), Ok(ByteSize(64 << 20)));
        assert_eq!(typed("100"), Ok(ByteSize(100)));
        let listen = |addr: &str, localhost| Listen {
            addr: addr.parse().unwrap(),
            localhost,
        };
        assert_eq!(typed("\"[::1]:0\""), Ok(listen("[::1]:0", false)));
        assert_eq!(typed("9000"), Ok(listen("127.0.0.1:9000", false)));
        assert_eq!(typed("\"localhost:0\""), Ok(listen("127.0.0.1:0", true)));
        assert_eq!(typed("3"), Ok(Workers(3)));
        assert_eq!(typed("\"auto\""), Ok(Workers(auto_workers())));
        assert_eq!(typed("\" Thread \""), Ok(Mode::Thread));
        assert_eq!(typed("-5"), Ok(Integer(-5)));
        assert_eq!(typed("false"), Ok(Boolean(false)));
        assert_eq!(typed("\"site\""), Ok(Directory(PathBuf::from("site"))));
    }

    #[test]
    fn wrong_types_get_our_message_not_serdes() {
        for (message, want) in [
            (
                typed::<Timeout>("true").unwrap_err(),
                "expected a duration such as \"5s\", found true",
            ),
            (
                typed::<Timeout>("-1").unwrap_err(),
                "must be longer than 0, found -1",
            ),
            (
                typed::<Timeout>("\"0ms\"").unwrap_err(),
                "must be longer than 0, found \"0ms\"",
            ),
            (
                typed::<ByteSize>("1.5").unwrap_err(),
                "expected a size such as \"16KiB\", found 1.5",
            ),
            (
                typed::<ByteSize>("-1").unwrap_err(),
                "must not be negative, found -1",
            ),
            (
                typed::<Listen>("[1, 2]").unwrap_err(),
                "expected an address such as \"127.0.0.1:8080\", found a array",
            ),
            (
                typed::<Workers>("1.5").unwrap_err(),
                "expected a number of workers or \"auto\", found 1.5",
            ),
            (
                typed::<Workers>("513").unwrap_err(),
                "must be between 1 and 512, found 513",
            ),
            (
                typed::<Mode>("1").unwrap_err(),
                "expected \"process\", \"thread\" or \"thread-loops\", found 1",
            ),
            (
                typed::<Integer>("\"8\"").unwrap_err(),
                "expected an integer, found \"8\"",
            ),
            (
                typed::<Boolean>("{ a = 1 }").unwrap_err(),
                "expected true or false, found a table",
            ),
            (
                typed::<Directory>("5").unwrap_err(),
                "expected a directory path, found 5",
            ),
        ] {
            assert_eq!(message, want);
        }
    }

    #[test]
    fn server_names() {
        for (input, want) in [
            ("dev.example", "dev.example"),
            (" Laptop.Local. ", "laptop.local"),
            (".example.com", ".example.com"),
            ("my_service", "my_service"),
            ("x", "x"),
            ("10.0.0.1", "10.0.0.1"),
        ] {
            assert_eq!(parse_server_name(input), Ok(want.to_owned()), "{input}");
        }
        for bad in [
            "",
            ".",
            "..example",
            "a..b",
            "*.example.com",
            "dev.example:8080",
            "[::1]",
            "a/b",
            "é.example",
            &"a".repeat(64),
            &format!("{}a", "a.".repeat(127)),
        ] {
            let err = parse_server_name(bad).unwrap_err();
            assert!(err.contains("expected a host name"), "{bad:?}: {err}");
        }
        assert_eq!(
            typed("[\"A.example\", \"a.example\", \"b\"]"),
            Ok(ServerNames(vec!["a.example".into(), "b".into()]))
        );
        assert_eq!(
            typed::<ServerNames>("\"a.example\"").unwrap_err(),
            "expected a list of host names such as [\"dev.example\"], found \"a.example\""
        );
        assert_eq!(
            typed::<ServerNames>("[1]").unwrap_err(),
            "expected a host name such as \"dev.example\", found 1"
        );
    }

    #[test]
    fn modes_and_worker_counts() {
        assert_eq!(parse_mode("PROCESS"), Ok(Mode::Process));
        assert_eq!(parse_mode(" thread "), Ok(Mode::Thread));
        assert_eq!(parse_mode("Thread-Loops"), Ok(Mode::ThreadLoops));
        assert_eq!(
            parse_mode("fiber"),
            Err("expected \"process\", \"thread\" or \"thread-loops\", found \"fiber\"".to_owned())
        );
        assert_eq!(parse_accept(" ReusePort "), Ok(Accept::Reuseport));
        assert_eq!(
            parse_accept("fifo"),
            Err("expected \"shared\" or \"reuseport\", found \"fifo\"".to_owned())
        );
        assert_eq!(parse_workers(" 3 "), Ok(3));
        assert_eq!(parse_workers("Auto"), Ok(auto_workers()));
        assert_eq!(
            parse_workers("0"),
            Err("must be between 1 and 512, found 0".to_owned())
        );
        assert!(parse_workers("lots").unwrap_err().contains("(1 to 512)"));
        assert!((1..=MAX_WORKERS).contains(&auto_workers()));
    }
}
