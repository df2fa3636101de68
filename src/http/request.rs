//! Request heads: finding where one ends, parsing it, and the framing rules.
//!
//! Pure functions over bytes, no I/O. The connection feeds each read to a
//! [`HeadScanner`], which scans only the bytes it has not seen (so a slow
//! client never makes us rescan its whole buffer) and refuses bad framing
//! before the head ends, then calls [`parse_scanned_head`] once, into a
//! [`Request`] it reuses for every request on the connection (so the hot
//! path does not allocate once the strings have grown).
//!
//! The rules are RFC 9112's, strictly (a lenient parser behind a proxy that
//! parses differently is a request-smuggling primitive): every line ends in
//! CRLF, a bare LF is a 400; the request line is at most 8 KiB (414), a
//! field line at most 8190 bytes and the head at most `max_header_bytes`
//! (431);
//! only SP and HTAB are trimmed from values; a missing Host on HTTP/1.1, a
//! repeated Host, Content-Length or Content-Type, Content-Length together
//! with Transfer-Encoding, a Content-Length that is not one decimal number,
//! a coding after `chunked`, or a framing field spelled with `_`
//! (`Content_Length`) is a 400; a transfer coding other than `chunked` is a
//! 501; a well-formed version other than 1.x is a 505. The empty line allowed before a request line is the
//! connection's to skip. Bodies themselves are decoded by [`super::body`].

use std::fmt;
use std::mem::MaybeUninit;

/// Longest request line accepted (nginx's `large_client_header_buffers` size).
pub(crate) const MAX_REQUEST_LINE: usize = 8 * 1024;
/// Longest field line (`name: value`) accepted, however large
/// `max_header_bytes` is, counted with its CRLF as Apache
/// (`LimitRequestFieldSize`) and gunicorn (`limit_request_field_size`)
/// count it: 8190 bytes, their default. (The request line's limit is
/// counted without its CRLF.)
pub(crate) const MAX_FIELD_LINE: usize = 8190;
/// Most header fields in one request (httparse needs a fixed array).
pub(crate) const MAX_HEADERS: usize = 100;

/// Why a request could not be read. One `match` turns it into a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestError {
    /// Malformed syntax or framing; the reason is for the log and the body.
    BadRequest(&'static str),
    /// The request line is longer than [`MAX_REQUEST_LINE`].
    UriTooLong,
    /// The head is larger than `max_header_bytes`, a field line is longer
    /// than [`MAX_FIELD_LINE`], or there are too many fields.
    HeadersTooLarge,
    /// The body is larger than `max_body_bytes`.
    BodyTooLarge,
    /// A well-formed HTTP version we don't speak (HTTP/2.0 in HTTP/1 syntax).
    UnsupportedVersion,
    /// A transfer coding other than chunked.
    UnsupportedTransferCoding,
    /// An `Expect` other than `100-continue`.
    UnsupportedExpectation,
}

impl RequestError {
    pub(crate) fn status(self) -> u16 {
        match self {
            RequestError::BadRequest(_) => 400,
            RequestError::BodyTooLarge => 413,
            RequestError::UriTooLong => 414,
            RequestError::UnsupportedExpectation => 417,
            RequestError::HeadersTooLarge => 431,
            RequestError::UnsupportedTransferCoding => 501,
            RequestError::UnsupportedVersion => 505,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::BadRequest(why) => write!(f, "bad request: {why}"),
            RequestError::UriTooLong => write!(f, "request line too long"),
            RequestError::HeadersTooLarge => write!(f, "request header fields too large"),
            RequestError::BodyTooLarge => write!(f, "request body too large"),
            RequestError::UnsupportedVersion => write!(f, "HTTP version not supported"),
            RequestError::UnsupportedTransferCoding => write!(f, "transfer coding not supported"),
            RequestError::UnsupportedExpectation => write!(f, "expectation not supported"),
        }
    }
}

impl std::error::Error for RequestError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Method {
    #[default]
    Get,
    Head,
    Post,
    Put,
    Delete,
    Patch,
    Options,
    Connect,
    Trace,
    /// A syntactically valid method token we don't know (answered with 501).
    Other,
}

impl Method {
    fn from_token(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "OPTIONS" => Method::Options,
            "CONNECT" => Method::Connect,
            "TRACE" => Method::Trace,
            _ => Method::Other,
        }
    }
}

/// How the request body is framed (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum BodyFraming {
    #[default]
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head. Reused across the requests of one connection:
/// [`parse_head`] clears it and refills the strings in place.
#[derive(Debug, Default, Clone)]
pub(crate) struct Request {
    pub(crate) method: Method,
    /// The method as sent, for the access log.
    pub(crate) method_token: String,
    /// The request target in origin form (`/path?query`); an absolute-form
    /// target has its scheme and authority removed.
    pub(crate) target: String,
    pub(crate) http10: bool,
    /// Whether the client wants the connection kept open after this request.
    pub(crate) keep_alive: bool,
    pub(crate) body: BodyFraming,
    pub(crate) expect_continue: bool,
    /// Conditional and range headers; empty when absent.
    pub(crate) if_none_match: String,
    pub(crate) if_modified_since: String,
    pub(crate) range: String,
    pub(crate) if_range: String,
    /// `Accept-Encoding`, every line joined into one list; empty when absent
    /// (then static files cost nothing extra: see `static_files::compress`).
    pub(crate) accept_encoding: String,
    /// `Host`, `Origin` and `Sec-Fetch-Site` as sent (empty when absent):
    /// who may reach what is decided on them (see `handlers`).
    pub(crate) host: String,
    pub(crate) origin: String,
    pub(crate) sec_fetch_site: String,
    /// `Accept` (repeats combined with commas), and a CORS preflight's
    /// `Access-Control-Request-Method` and `-Headers`: the dev server's
    /// SPA fallback, JSON listings and `--cors` read them. Empty when absent.
    pub(crate) accept: String,
    pub(crate) cors_request_method: String,
    pub(crate) cors_request_headers: String,
    /// The connection's peer, set by the connection (not parsed).
    pub(crate) peer: Option<std::net::SocketAddr>,
    /// `Referer` and `User-Agent` as sent (the first of each), for the
    /// combined access-log format; empty when absent, and always empty
    /// unless `keep_referer_and_agent`.
    pub(crate) referer: String,
    pub(crate) user_agent: String,
    /// Set by the connection (not parsed) when its access log shows the two
    /// fields above: otherwise they are neither looked for nor copied.
    pub(crate) keep_referer_and_agent: bool,
}

impl Request {
    /// The path part of the target, still percent-encoded.
    pub(crate) fn path(&self) -> &str {
        match self.target.find('?') {
            Some(i) => &self.target[..i],
            None => &self.target,
        }
    }

    /// The query string after `?`, if any.
    pub(crate) fn query(&self) -> Option<&str> {
        self.target.find('?').map(|i| &self.target[i + 1..])
    }

    /// The value of query parameter `name`, if present (not percent-decoded:
    /// our parameters are numbers).
    pub(crate) fn query_param(&self, name: &str) -> Option<&str> {
        query_value(self.query()?, name)
    }

    pub(crate) fn is_head(&self) -> bool {
        self.method == Method::Head
    }
}

/// Finds where a request head ends as its bytes arrive, and refuses it as
/// soon as its framing is wrong (RFC 9112 section 2.2): every line ends in
/// CRLF (a bare LF is a 400, checked here because httparse accepts it),
/// the request line is at most [`MAX_REQUEST_LINE`] bytes (else 414) and
/// valid (checked once it is complete, so garbage is refused before the
/// head ends), a field line at most [`MAX_FIELD_LINE`] with its CRLF and
/// the head at most `max_header_bytes` (else 431).
///
/// Each byte is scanned once: a call starts where the previous one stopped,
/// so a slow client never makes us rescan its buffer. Errors don't depend
/// on how the bytes were split across calls: each is the one the shortest
/// failing prefix of the head shows (see [`HeadScanner::scan`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct HeadScanner {
    /// How many bytes of the head were scanned.
    scanned: usize,
    /// Where the line being scanned starts.
    line_start: usize,
}

impl HeadScanner {
    /// Scans the bytes of `buf` (the pending head, from its first byte: the
    /// same bytes as last time, plus what arrived since) not scanned yet.
    /// `Ok(Some(end))`: the head is `buf[..end]` and the scanner is reset
    /// for the next one; `Ok(None)`: need more bytes.
    ///
    /// When several rules fail within the new bytes, the error is that of
    /// the one that fails first, as if the bytes had come one at a time: a
    /// line over its limit or a head over `max_header_bytes` fails at the
    /// first byte past the limit (the line's limit plus one byte, which
    /// may be its CR), the other rules at the LF that ends the line. At the
    /// same byte: the line's length, the head's size, then the bare LF,
    /// then the request line's syntax.
    pub(crate) fn scan(
        &mut self,
        buf: &[u8],
        max_header_bytes: usize,
    ) -> Result<Option<usize>, RequestError> {
        let mut from = self.scanned;
        while let Some(pos) = buf[from..].iter().position(|&b| b == b'\n') {
            let lf = from + pos;
            let has_cr = lf > self.line_start && buf[lf - 1] == b'\r';
            let content = lf - self.line_start - usize::from(has_cr);
            if let Some(err) = self.limit_error(lf, max_header_bytes) {
                return Err(err);
            }
            if content > self.line_limit(max_header_bytes) {
                return Err(self.line_too_long());
            }
            if lf >= max_header_bytes {
                return Err(RequestError::HeadersTooLarge);
            }
            if !has_cr {
                return Err(RequestError::BadRequest("bare LF in the head"));
            }
            if self.line_start == 0 {
                check_request_line(&buf[..=lf])?;
            } else if content == 0 {
                *self = HeadScanner::default();
                return Ok(Some(lf + 1));
            }
            self.line_start = lf + 1;
            from = lf + 1;
        }
        self.scanned = buf.len();
        match self.limit_error(buf.len(), max_header_bytes) {
            Some(err) => Err(err),
            None => Ok(None),
        }
    }

    /// The error of a limit that fails before byte `end` of the head (the
    /// LF of the current line, or the end of the bytes so far), if any.
    fn limit_error(&self, end: usize, max_header_bytes: usize) -> Option<RequestError> {
        // The current line may take its limit plus one byte (its CR) before
        // the LF; the byte after that fails.
        let line_fails_at = self.line_start + self.line_limit(max_header_bytes) + 1;
        let head_fails_at = max_header_bytes;
        match (line_fails_at < end, head_fails_at < end) {
            (true, true) if head_fails_at < line_fails_at => Some(RequestError::HeadersTooLarge),
            (true, _) => Some(self.line_too_long()),
            (false, true) => Some(RequestError::HeadersTooLarge),
            (false, false) => None,
        }
    }

    fn line_limit(&self, max_header_bytes: usize) -> usize {
        match self.line_start {
            0 => MAX_REQUEST_LINE.min(max_header_bytes),
            _ => MAX_FIELD_LINE - 2,
        }
    }

    fn line_too_long(&self) -> RequestError {
        match self.line_start {
            0 => RequestError::UriTooLong,
            _ => RequestError::HeadersTooLarge,
        }
    }
}

/// Checks a complete request line (with its CRLF) before the rest of the
/// head arrives, with httparse as [`parse_scanned_head`] will (which also
/// checks the target).
fn check_request_line(line: &[u8]) -> Result<(), RequestError> {
    if line == b"\r\n" {
        return Err(RequestError::BadRequest("empty request line"));
    }
    let mut no_headers = [];
    match httparse::Request::new(&mut no_headers).parse(line) {
        Ok(_) => Ok(()),
        Err(err) => Err(httparse_error(err, line)),
    }
}

/// Parses a complete head on its own (`buf` is exactly the head, ending
/// with its blank line): [`HeadScanner`]'s framing rules, then the fields.
/// The connection scans as bytes arrive and calls [`parse_scanned_head`];
/// this is for tests (unit and fuzz) and the handlers' test requests.
#[cfg(test)]
pub(crate) fn parse_head(
    buf: &[u8],
    max_header_bytes: usize,
    req: &mut Request,
) -> Result<(), RequestError> {
    match HeadScanner::default().scan(buf, max_header_bytes)? {
        Some(end) if end == buf.len() => parse_scanned_head(buf, req),
        _ => Err(RequestError::BadRequest("incomplete head")),
    }
}

/// Parses a head that [`HeadScanner::scan`] accepted (`buf` ends with its
/// blank line) into `req`.
pub(crate) fn parse_scanned_head(buf: &[u8], req: &mut Request) -> Result<(), RequestError> {
    // Uninitialised: filling 100 empty headers (3.2 KiB) for every request
    // cost more than parsing a short head; httparse initialises what it uses.
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    match parsed.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(RequestError::BadRequest("incomplete head")),
        Err(err) => {
            let line_len = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
            return Err(httparse_error(err, &buf[..line_len]));
        }
    }

    let method = parsed.method.unwrap_or_default();
    req.method = Method::from_token(method);
    req.method_token.clear();
    req.method_token.push_str(method);
    req.http10 = parsed.version == Some(0);
    let authority = set_target(&mut req.target, parsed.path.unwrap_or_default(), req.method)?;
    req.body = BodyFraming::None;
    req.expect_continue = false;
    req.if_none_match.clear();
    req.if_modified_since.clear();
    req.range.clear();
    req.if_range.clear();
    req.accept_encoding.clear();
    req.host.clear();
    // RFC 9112 3.2.2: an absolute-form target's authority is the host the
    // request is for, whatever Host says (who may reach what is decided on
    // it). The Host field below must still be present, once.
    req.host.push_str(authority.unwrap_or_default());
    req.origin.clear();
    req.sec_fetch_site.clear();
    req.accept.clear();
    req.cors_request_method.clear();
    req.cors_request_headers.clear();
    req.referer.clear();
    req.user_agent.clear();

    let mut hosts = 0;
    let mut content_types = 0;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut content_length: Option<u64> = None;
    let mut codings = Codings::default();
    for header in parsed.headers.iter() {
        let name = header.name;
        // Only OWS (SP, HTAB) surrounds a value: `trim()` would also strip
        // Unicode spaces, and `Content-Length: 5\u{a0}` would pass as 5.
        let value = trim_ows(
            std::str::from_utf8(header.value)
                .map_err(|_| RequestError::BadRequest("non-UTF-8 header value"))?,
        );
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            set_once(&mut req.host, value);
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(trim_ows) {
                conn_close |= token.eq_ignore_ascii_case("close");
                conn_keep_alive |= token.eq_ignore_ascii_case("keep-alive");
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            // One field line, one value: a list (`5, 5`) or a repeat is
            // allowed by RFC 9112 6.3 but is how smuggling starts (nginx
            // refuses a repeat too).
            if content_length.is_some() {
                return Err(RequestError::BadRequest("more than one Content-Length"));
            }
            content_length = Some(parse_content_length(value)?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            codings.add(value)?;
        } else if name.eq_ignore_ascii_case("content-type") {
            content_types += 1;
        } else if name.eq_ignore_ascii_case("expect") {
            if value.eq_ignore_ascii_case("100-continue") {
                req.expect_continue = true;
            } else {
                return Err(RequestError::UnsupportedExpectation);
            }
        } else if name.eq_ignore_ascii_case("if-none-match") {
            append_list(&mut req.if_none_match, value);
        } else if name.eq_ignore_ascii_case("if-modified-since") {
            set_once(&mut req.if_modified_since, value);
        } else if name.eq_ignore_ascii_case("range") {
            set_once(&mut req.range, value);
        } else if name.eq_ignore_ascii_case("origin") {
            set_once(&mut req.origin, value);
        } else if name.eq_ignore_ascii_case("sec-fetch-site") {
            set_once(&mut req.sec_fetch_site, value);
        } else if name.eq_ignore_ascii_case("if-range") {
            set_once(&mut req.if_range, value);
        } else if name.eq_ignore_ascii_case("accept-encoding") {
            append_list(&mut req.accept_encoding, value);
        } else if name.eq_ignore_ascii_case("accept") {
            append_list(&mut req.accept, value);
        } else if name.eq_ignore_ascii_case("access-control-request-method") {
            set_once(&mut req.cors_request_method, value);
        } else if name.eq_ignore_ascii_case("access-control-request-headers") {
            append_list(&mut req.cors_request_headers, value);
        } else if req.keep_referer_and_agent && name.eq_ignore_ascii_case("referer") {
            set_once(&mut req.referer, value);
        } else if req.keep_referer_and_agent && name.eq_ignore_ascii_case("user-agent") {
            set_once(&mut req.user_agent, value);
        } else if underscored("content-length", name) || underscored("transfer-encoding", name) {
            // A gateway that maps names to CGI/WSGI variables reads
            // `Content_Length` as the framing field: refuse the ambiguity.
            return Err(RequestError::BadRequest(
                "framing field name spelled with '_'",
            ));
        }
    }

    if hosts > 1 {
        return Err(RequestError::BadRequest("more than one Host header"));
    }
    if hosts == 0 && !req.http10 {
        return Err(RequestError::BadRequest("missing Host header"));
    }
    if content_types > 1 {
        return Err(RequestError::BadRequest("more than one Content-Type"));
    }
    if codings.present {
        if content_length.is_some() {
            return Err(RequestError::BadRequest(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        if req.http10 {
            return Err(RequestError::BadRequest("Transfer-Encoding in HTTP/1.0"));
        }
        // RFC 9112 6.1: a coding we don't know is a 501 (so `gzip` alone
        // is, though 6.3 would also allow a 400 for its missing chunked).
        if codings.unknown {
            return Err(RequestError::UnsupportedTransferCoding);
        }
        if !codings.chunked {
            return Err(RequestError::BadRequest("empty Transfer-Encoding"));
        }
        req.body = BodyFraming::Chunked;
    } else if let Some(len) = content_length.filter(|&len| len > 0) {
        req.body = BodyFraming::Length(len);
    }
    req.keep_alive = if req.http10 {
        conn_keep_alive && !conn_close
    } else {
        !conn_close
    };
    Ok(())
}

/// The transfer codings of a request, over all its `Transfer-Encoding`
/// lines: `chunked` must come last and once; any other is unknown (501).
#[derive(Debug, Default)]
struct Codings {
    present: bool,
    chunked: bool,
    unknown: bool,
}

impl Codings {
    fn add(&mut self, value: &str) -> Result<(), RequestError> {
        self.present = true;
        for coding in value.split(',').map(trim_ows).filter(|c| !c.is_empty()) {
            if self.chunked {
                return Err(RequestError::BadRequest("chunked is not the final coding"));
            }
            // transfer-coding = token *( OWS ";" OWS transfer-parameter )
            let (name, params) = match coding.split_once(';') {
                Some((name, params)) => (trim_ows(name), Some(params)),
                None => (coding, None),
            };
            if !is_token(name) {
                return Err(RequestError::BadRequest("invalid transfer coding"));
            }
            if name.eq_ignore_ascii_case("chunked") {
                if params.is_some() {
                    return Err(RequestError::BadRequest("parameters on chunked"));
                }
                self.chunked = true;
            } else {
                self.unknown = true;
            }
        }
        Ok(())
    }
}

/// The status for an httparse error; `line` is the request line (for the
/// version's verdict).
fn httparse_error(err: httparse::Error, line: &[u8]) -> RequestError {
    match err {
        httparse::Error::Version => version_error(line),
        httparse::Error::TooManyHeaders => RequestError::HeadersTooLarge,
        httparse::Error::Token => RequestError::BadRequest("invalid method or target"),
        httparse::Error::HeaderName => RequestError::BadRequest("invalid header name"),
        httparse::Error::HeaderValue => RequestError::BadRequest("invalid header value"),
        _ => RequestError::BadRequest("malformed request line"),
    }
}

/// 505 for a well-formed `HTTP/x.y` we don't speak, 400 for anything else.
fn version_error(line: &[u8]) -> RequestError {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            RequestError::UnsupportedVersion
        }
        [b'H', b'T', b'T', b'P', b'/', major] if major.is_ascii_digit() => {
            RequestError::UnsupportedVersion
        }
        _ => RequestError::BadRequest("malformed HTTP version"),
    }
}

/// Stores the target in origin form. Absolute-form (`http://host/p`) is
/// accepted as RFC 9112 requires of servers, and its authority returned;
/// `*` only with OPTIONS. A target is visible ASCII (httparse lets UTF-8
/// through; RFC 3986 doesn't).
fn set_target<'a>(
    target: &mut String,
    raw: &'a str,
    method: Method,
) -> Result<Option<&'a str>, RequestError> {
    target.clear();
    if !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(RequestError::BadRequest("non-ASCII request target"));
    }
    if raw == "*" {
        if method != Method::Options {
            return Err(RequestError::BadRequest("'*' target without OPTIONS"));
        }
        target.push_str(raw);
        return Ok(None);
    }
    if raw.starts_with('/') {
        target.push_str(raw);
        return Ok(None);
    }
    let lower_scheme = raw
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let rest = if lower_scheme.starts_with("http://") {
        &raw[7..]
    } else if lower_scheme.starts_with("https://") {
        &raw[8..]
    } else {
        return Err(RequestError::BadRequest("invalid request target"));
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    if !rest[authority_end..].starts_with('/') {
        target.push('/');
    }
    target.push_str(&rest[authority_end..]);
    Ok(Some(&rest[..authority_end]))
}

/// The value of the first `name=value` pair named `name` in a query
/// string (`name` alone gives ""); not percent-decoded.
pub(crate) fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
}

/// The entries of a weighted list field (`Accept`, `Accept-Encoding`: RFC
/// 9110 12.4.2), each with its qvalue in thousandths (1000 when absent,
/// `None` when malformed: the entry is to be ignored). Other parameters
/// are left out of the name.
pub(crate) fn weighted_list(value: &str) -> impl Iterator<Item = (&str, Option<u16>)> {
    value.split(',').map(|entry| {
        let mut parts = entry.split(';');
        let name = trim_ows(parts.next().unwrap_or_default());
        let mut q = Some(1000);
        for param in parts {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            if trim_ows(key).eq_ignore_ascii_case("q") {
                q = parse_q(trim_ows(value));
            }
        }
        (name, q)
    })
}

/// A qvalue (RFC 9110 12.4.2): `0`, `0.5`, `1`, `1.000`, at most three
/// decimals; in thousandths.
fn parse_q(text: &str) -> Option<u16> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths = 0u16;
    for (i, digit) in frac.bytes().enumerate() {
        thousandths += u16::from(digit - b'0') * [100, 10, 1][i];
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Removes OWS (SP, HTAB) around a value, and nothing else.
pub(crate) fn trim_ows(text: &str) -> &str {
    text.trim_matches([' ', '\t'])
}

/// RFC 9110 `tchar`: the bytes of a token (method, field name, coding).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 9110 `token`: one or more `tchar`.
fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(is_tchar)
}

/// Whether `name` is `canonical` (lower case, with '-') spelled with at
/// least one '_' for a '-'.
fn underscored(canonical: &str, name: &str) -> bool {
    name.len() == canonical.len()
        && name.contains('_')
        && name
            .bytes()
            .zip(canonical.bytes())
            .all(|(b, c)| b.to_ascii_lowercase() == c || (b == b'_' && c == b'-'))
}

fn parse_content_length(text: &str) -> Result<u64, RequestError> {
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RequestError::BadRequest("invalid Content-Length"));
    }
    text.parse()
        .map_err(|_| RequestError::BadRequest("invalid Content-Length"))
}

fn set_once(field: &mut String, value: &str) {
    if field.is_empty() {
        field.push_str(value);
    }
}

/// Repeated list headers (If-None-Match) combine with commas (RFC 9110 5.3).
fn append_list(field: &mut String, value: &str) {
    if !field.is_empty() {
        field.push_str(", ");
    }
    field.push_str(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Request, RequestError> {
        let mut req = Request::default();
        parse_head(text.as_bytes(), 16 * 1024, &mut req).map(|()| req)
    }

    /// Each head is a 400.
    fn assert_bad(heads: &[&str]) {
        for head in heads {
            assert!(
                matches!(parse(head), Err(RequestError::BadRequest(_))),
                "{head:?}"
            );
        }
    }

    /// Feeds `bytes` to a scanner in pieces of `step` bytes (the whole
    /// head so far each time, as the connection does).
    fn scan_in_steps(bytes: &[u8], step: usize, max: usize) -> Result<Option<usize>, RequestError> {
        let mut scanner = HeadScanner::default();
        let mut seen = 0;
        loop {
            seen = (seen + step).min(bytes.len());
            if let Some(end) = scanner.scan(&bytes[..seen], max)? {
                return Ok(Some(end));
            }
            if seen == bytes.len() {
                return Ok(None);
            }
        }
    }

    #[test]
    fn head_end_is_found_after_crlf_crlf() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
        assert_eq!(HeadScanner::default().scan(head, 1024), Ok(Some(27)));
        assert_eq!(
            HeadScanner::default().scan(b"GET / HTTP/1.1\r\nHost: a\r\n", 1024),
            Ok(None)
        );
    }

    #[test]
    fn head_end_search_resumes_across_a_split_terminator() {
        let full = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        for split in 1..full.len() {
            let mut scanner = HeadScanner::default();
            assert_eq!(
                scanner.scan(&full[..split], 1024),
                Ok(None),
                "split {split}"
            );
            assert_eq!(scanner.scanned, split, "split {split}");
            assert_eq!(
                scanner.scan(full, 1024),
                Ok(Some(full.len())),
                "split {split}"
            );
            assert_eq!(scanner, HeadScanner::default(), "reset for the next head");
        }
    }

    #[test]
    fn a_bare_lf_anywhere_in_the_head_is_400() {
        for bad in [
            &b"GET / HTTP/1.1\nHost: a\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\n",
            b"GET / HTTP/1.1\n\n",
            b"\nGET / HTTP/1.1\r\n\r\n",
            b"GET\n/\nHTTP/1.1\r\n\r\n",
        ] {
            for step in [1, 3, bad.len()] {
                assert!(
                    matches!(
                        scan_in_steps(bad, step, 1024),
                        Err(RequestError::BadRequest(_))
                    ),
                    "{:?} in steps of {step}",
                    String::from_utf8_lossy(bad)
                );
            }
        }
    }

    #[test]
    fn a_bad_request_line_is_refused_before_the_head_ends() {
        let mut scanner = HeadScanner::default();
        assert!(matches!(
            scanner.scan(b"PROXY TCP4 192.168.0.1 192.16...\r\n", 1024),
            Err(RequestError::BadRequest(_))
        ));
        let mut scanner = HeadScanner::default();
        assert_eq!(
            scanner.scan(b"GET / HTTP/2.0\r\nHo", 1024),
            Err(RequestError::UnsupportedVersion)
        );
        assert_eq!(
            HeadScanner::default().scan(b"GET / HTTP/1.1\r\nHo", 1024),
            Ok(None)
        );
        assert!(matches!(
            HeadScanner::default().scan(b"\r\nGET / HTTP/1.1\r\n", 1024),
            Err(RequestError::BadRequest(_))
        ));
    }

    #[test]
    fn line_limits_fail_at_the_same_byte_however_the_head_is_split() {
        let field = |len: usize| format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(len - 3));
        let max = 32 * 1024;
        // A field line of exactly the limit (with its CRLF) passes; one
        // byte more is 431.
        assert!(scan_in_steps(field(MAX_FIELD_LINE - 2).as_bytes(), 1000, max).is_ok());
        for step in [1, 7, 4096, max] {
            assert_eq!(
                scan_in_steps(field(MAX_FIELD_LINE - 1).as_bytes(), step, max),
                Err(RequestError::HeadersTooLarge),
                "step {step}"
            );
        }
        // A request line over its limit is 414, even with a bare LF after it.
        let line = format!(
            "GET /{} HTTP/1.1\nHost: a\r\n\r\n",
            "a".repeat(MAX_REQUEST_LINE)
        );
        for step in [1, 100, 8190, max] {
            assert_eq!(
                scan_in_steps(line.as_bytes(), step, max),
                Err(RequestError::UriTooLong),
                "step {step}"
            );
        }
    }

    #[test]
    fn a_simple_get_is_parsed() {
        let req = parse("GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!(req.method, Method::Get);
        assert_eq!(req.path(), "/a/b");
        assert_eq!(req.query(), Some("x=1&y=2"));
        assert_eq!(req.query_param("y"), Some("2"));
        assert_eq!(req.query_param("z"), None);
        assert!(req.keep_alive);
        assert!(!req.http10);
        assert_eq!(req.body, BodyFraming::None);
    }

    #[test]
    fn keep_alive_follows_version_and_connection() {
        assert!(
            !parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
                .unwrap()
                .keep_alive
        );
        assert!(!parse("GET / HTTP/1.0\r\n\r\n").unwrap().keep_alive);
        assert!(
            parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
                .unwrap()
                .keep_alive
        );
        assert!(
            parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, keep-alive\r\n\r\n")
                .unwrap()
                .keep_alive
        );
    }

    #[test]
    fn missing_or_repeated_host_is_400() {
        assert!(matches!(
            parse("GET / HTTP/1.1\r\n\r\n"),
            Err(RequestError::BadRequest(_))
        ));
        assert!(matches!(
            parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            Err(RequestError::BadRequest(_))
        ));
        assert!(parse("GET / HTTP/1.0\r\n\r\n").is_ok());
    }

    #[test]
    fn body_framing_rules() {
        let len = parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!(len.body, BodyFraming::Length(5));
        let ows = parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \t5 \r\n\r\n").unwrap();
        assert_eq!(ows.body, BodyFraming::Length(5));
        let chunked =
            parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        assert_eq!(chunked.body, BodyFraming::Chunked);
        assert_bad(&[
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            // Strict (issue 11): a repeat or a list, even of one value.
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n",
            // Only SP and HTAB are trimmed: a no-break space is not OWS.
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\u{a0}\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \u{a0}chunked\r\n\r\n",
            // chunked must be the final coding (RFC 9112 6.3), and bare.
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked, gzip\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;a=b\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chu nked\r\n\r\n",
            // Framing fields spelled with '_', repeated Content-Type.
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer_Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.0\r\nContent_length: 7\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Type: a/b\r\nContent-Type: c/d\r\n\r\n",
        ]);
        for unknown in ["gzip, chunked", "gzip", "identity"] {
            let head =
                format!("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: {unknown}\r\n\r\n");
            assert_eq!(
                parse(&head).unwrap_err(),
                RequestError::UnsupportedTransferCoding,
                "{unknown}"
            );
        }
    }

    #[test]
    fn versions() {
        assert_eq!(
            parse("GET / HTTP/2.0\r\nHost: h\r\n\r\n").unwrap_err(),
            RequestError::UnsupportedVersion
        );
        assert_eq!(
            parse("GET / HTTP/3\r\nHost: h\r\n\r\n").unwrap_err(),
            RequestError::UnsupportedVersion
        );
        assert!(matches!(
            parse("GET / FOO/1.1\r\nHost: h\r\n\r\n"),
            Err(RequestError::BadRequest(_))
        ));
    }

    #[test]
    fn limits() {
        let long = format!(
            "GET /{} HTTP/1.1\r\nHost: h\r\n\r\n",
            "a".repeat(MAX_REQUEST_LINE)
        );
        assert_eq!(parse(&long).unwrap_err(), RequestError::UriTooLong);
        let mut req = Request::default();
        let big = format!(
            "GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n",
            "a".repeat(2000)
        );
        assert_eq!(
            parse_head(big.as_bytes(), 1024, &mut req).unwrap_err(),
            RequestError::HeadersTooLarge
        );
        assert_eq!(
            HeadScanner::default().scan(&[b'a'; 9000], 16384),
            Err(RequestError::UriTooLong)
        );
        assert_eq!(
            HeadScanner::default().scan(b"GET / HTTP/1.1\r\nX: aaaaaaaa", 20),
            Err(RequestError::HeadersTooLarge)
        );
        assert_eq!(
            HeadScanner::default().scan(b"GET / HTTP/1.1\r\nX: a", 100),
            Ok(None)
        );
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect();
        let many = format!("GET / HTTP/1.1\r\nHost: h\r\n{many}\r\n");
        assert_eq!(parse(&many).unwrap_err(), RequestError::HeadersTooLarge);
    }

    #[test]
    fn q_values_parse_as_the_rfc_writes_them() {
        for (text, q) in [
            ("0", Some(0)),
            ("1", Some(1000)),
            ("1.", Some(1000)),
            ("1.000", Some(1000)),
            ("0.5", Some(500)),
            ("0.05", Some(50)),
            ("0.001", Some(1)),
            ("0.", Some(0)),
            ("1.001", None),
            ("0.0001", None),
            ("2", None),
            (".5", None),
            ("", None),
            ("0.5x", None),
            ("-0", None),
        ] {
            assert_eq!(parse_q(text), q, "{text:?}");
        }
    }

    #[test]
    fn weighted_lists_give_each_entry_its_q() {
        let entries: Vec<_> =
            weighted_list("text/html;level=1, */*;q=0.1 ,gzip;q=0, br;q=x").collect();
        assert_eq!(
            entries,
            [
                ("text/html", Some(1000)),
                ("*/*", Some(100)),
                ("gzip", Some(0)),
                ("br", None)
            ]
        );
    }

    #[test]
    fn targets() {
        assert_eq!(
            parse("GET http://example.com/x?q HTTP/1.1\r\nHost: h\r\n\r\n")
                .unwrap()
                .target,
            "/x?q"
        );
        assert_eq!(
            parse("GET http://example.com HTTP/1.1\r\nHost: h\r\n\r\n")
                .unwrap()
                .target,
            "/"
        );
        // The absolute form's authority is the host, whatever Host says.
        let absolute = parse("GET http://example.com:81?q HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!(
            (absolute.target.as_str(), absolute.host.as_str()),
            ("/?q", "example.com:81")
        );
        let origin_form = parse("GET /x HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!(origin_form.host, "h");
        assert_eq!(
            parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")
                .unwrap()
                .target,
            "*"
        );
        assert_bad(&[
            "GET x HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET * HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET /\u{e0}%20k HTTP/1.1\r\nHost: h\r\n\r\n",
        ]);
    }

    #[test]
    fn only_ows_is_trimmed_and_other_underscored_names_pass() {
        let req = parse("GET / HTTP/1.1\r\nHost: \t h \r\nX_Custom: 1\r\n\r\n").unwrap();
        assert_eq!(req.host, "h");
        assert_eq!(trim_ows("\u{a0}x\u{a0}"), "\u{a0}x\u{a0}");
        assert!(underscored("content-length", "CONTENT_LENGTH"));
        assert!(!underscored("content-length", "Content-Length"));
        assert!(!underscored("content-length", "content_lengths"));
    }

    #[test]
    fn expect_and_conditionals() {
        let req =
            parse("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
                .unwrap();
        assert!(req.expect_continue);
        assert_eq!(
            parse("PUT / HTTP/1.1\r\nHost: h\r\nExpect: foo\r\n\r\n").unwrap_err(),
            RequestError::UnsupportedExpectation
        );
        let req = parse("GET / HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"a\"\r\nIf-None-Match: \"b\"\r\nRange: bytes=0-1\r\n\r\n").unwrap();
        assert_eq!(req.if_none_match, "\"a\", \"b\"");
        assert_eq!(req.range, "bytes=0-1");
    }

    #[test]
    fn referer_and_user_agent_are_kept_only_when_asked() {
        let head = b"GET / HTTP/1.1\r\nHost: h\r\nReferer: http://a/\r\nUser-Agent: x \"y\"\r\nuser-agent: second\r\n\r\n";
        let mut req = Request::default();
        parse_head(head, 1024, &mut req).unwrap();
        assert_eq!((req.referer.as_str(), req.user_agent.as_str()), ("", ""));
        req.keep_referer_and_agent = true;
        parse_head(head, 1024, &mut req).unwrap();
        assert_eq!(req.referer, "http://a/");
        assert_eq!(req.user_agent, "x \"y\"", "the first one");
        parse_head(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 1024, &mut req).unwrap();
        assert_eq!((req.referer.as_str(), req.user_agent.as_str()), ("", ""));
    }

    #[test]
    fn accept_encoding_lines_join_and_clear_on_reuse() {
        let mut req = Request::default();
        let two = b"GET / HTTP/1.1\r\nHost: h\r\naccept-encoding: gzip\r\nAccept-Encoding:  br;q=0.5 \r\n\r\n";
        parse_head(two, 1024, &mut req).unwrap();
        assert_eq!(req.accept_encoding, "gzip, br;q=0.5");
        parse_head(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 1024, &mut req).unwrap();
        assert_eq!(req.accept_encoding, "");
    }

    #[test]
    fn accept_and_cors_preflight_fields() {
        let req = parse(
            "OPTIONS /x HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\naccept: */*\r\n\
             Access-Control-Request-Method: PUT\r\n\
             Access-Control-Request-Headers: x-a\r\nAccess-Control-Request-Headers: x-b\r\n\r\n",
        )
        .unwrap();
        assert_eq!(req.accept, "text/html, */*");
        assert_eq!(req.cors_request_method, "PUT");
        assert_eq!(req.cors_request_headers, "x-a, x-b");
        // Reused for the next request: cleared.
        let mut reused = req;
        parse_head(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 16 * 1024, &mut reused).unwrap();
        assert!(reused.accept.is_empty() && reused.cors_request_method.is_empty());
        assert!(reused.cors_request_headers.is_empty());
    }

    #[test]
    fn garbage_never_panics() {
        let mut req = Request::default();
        let samples: [&[u8]; 6] = [
            b"\r\n\r\n",
            b"\0\0\0\n\n",
            b"GET\n\n",
            b"G T / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost\r\n\r\n",
            b"\xff\xfe / HTTP/1.1\r\n\r\n",
        ];
        for sample in samples {
            assert!(parse_head(sample, 1024, &mut req).is_err(), "{sample:?}");
        }
    }
}
