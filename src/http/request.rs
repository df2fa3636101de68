//! Request heads: finding where one ends, parsing it, and the framing rules.
//!
//! Pure functions over bytes, no I/O. The connection calls [`find_head_end`]
//! on each read, starting where the previous scan stopped (so a slow client
//! never makes us rescan its whole buffer), then [`parse_head`] once, into a
//! [`Request`] it reuses for every request on the connection (so the hot path
//! does not allocate once the strings have grown).
//!
//! The rules are RFC 9112's: a missing Host on HTTP/1.1, a repeated Host,
//! Content-Length together with Transfer-Encoding, or a Content-Length that
//! is invalid or repeated with different values is a 400; a transfer coding
//! other than `chunked` is a 501; a well-formed version other than 1.x is a
//! 505. Bodies themselves are decoded by [`super::body`].

use std::fmt;

/// Longest request line accepted (nginx's `large_client_header_buffers` size).
pub(crate) const MAX_REQUEST_LINE: usize = 8 * 1024;
/// Most header fields in one request (httparse needs a fixed array).
pub(crate) const MAX_HEADERS: usize = 100;

/// Why a request could not be read. One `match` turns it into a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestError {
    /// Malformed syntax or framing; the reason is for the log and the body.
    BadRequest(&'static str),
    /// The request line is longer than [`MAX_REQUEST_LINE`].
    UriTooLong,
    /// The head is larger than `max_header_bytes`, or has too many fields.
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
    /// `Host`, `Origin` and `Sec-Fetch-Site` as sent (empty when absent):
    /// who may reach what is decided on them (see `handlers`).
    pub(crate) host: String,
    pub(crate) origin: String,
    pub(crate) sec_fetch_site: String,
    /// The connection's peer, set by the connection (not parsed).
    pub(crate) peer: Option<std::net::SocketAddr>,
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
        self.query()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
    }

    pub(crate) fn is_head(&self) -> bool {
        self.method == Method::Head
    }
}

/// Finds the end of a request head in `buf`: the index just past the blank
/// line (`\r\n\r\n`, or a bare `\n\n` as RFC 9112 tolerates). The search
/// starts at `from` (minus the three bytes a terminator can straddle), so
/// the caller passes the length it scanned last time.
pub(crate) fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    let mut i = start;
    while let Some(pos) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + pos;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

/// Checks a head that has not ended yet: is it already over a limit?
/// `len` is the number of head bytes buffered so far.
pub(crate) fn check_partial_head(buf: &[u8], max_header_bytes: usize) -> Result<(), RequestError> {
    let line_end = buf.iter().position(|&b| b == b'\n');
    if line_end.is_none() && buf.len() > MAX_REQUEST_LINE.min(max_header_bytes) {
        return Err(RequestError::UriTooLong);
    }
    if buf.len() > max_header_bytes {
        return Err(RequestError::HeadersTooLarge);
    }
    Ok(())
}

/// Parses a complete head (`buf` ends with its blank line) into `req`.
pub(crate) fn parse_head(
    buf: &[u8],
    max_header_bytes: usize,
    req: &mut Request,
) -> Result<(), RequestError> {
    let line_len = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    if line_len > MAX_REQUEST_LINE {
        return Err(RequestError::UriTooLong);
    }
    if buf.len() > max_header_bytes {
        return Err(RequestError::HeadersTooLarge);
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(RequestError::BadRequest("incomplete head")),
        Err(httparse::Error::Version) => return Err(version_error(&buf[..line_len])),
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::HeadersTooLarge),
        Err(httparse::Error::Token) => return Err(RequestError::BadRequest("invalid method")),
        Err(httparse::Error::HeaderName) => {
            return Err(RequestError::BadRequest("invalid header name"));
        }
        Err(httparse::Error::HeaderValue) => {
            return Err(RequestError::BadRequest("invalid header value"));
        }
        Err(_) => return Err(RequestError::BadRequest("malformed request line")),
    }

    let method = parsed.method.unwrap_or_default();
    req.method = Method::from_token(method);
    req.method_token.clear();
    req.method_token.push_str(method);
    req.http10 = parsed.version == Some(0);
    set_target(&mut req.target, parsed.path.unwrap_or_default())?;
    req.body = BodyFraming::None;
    req.expect_continue = false;
    req.if_none_match.clear();
    req.if_modified_since.clear();
    req.range.clear();
    req.if_range.clear();
    req.host.clear();
    req.origin.clear();
    req.sec_fetch_site.clear();

    let mut hosts = 0;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    for header in parsed.headers.iter() {
        let name = header.name;
        let value = std::str::from_utf8(header.value)
            .map_err(|_| RequestError::BadRequest("non-UTF-8 header value"))?
            .trim();
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            set_once(&mut req.host, value);
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                conn_close |= token.eq_ignore_ascii_case("close");
                conn_keep_alive |= token.eq_ignore_ascii_case("keep-alive");
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            for item in value.split(',').map(str::trim) {
                let len = parse_content_length(item)?;
                if content_length.is_some_and(|prev| prev != len) {
                    return Err(RequestError::BadRequest("conflicting Content-Length"));
                }
                content_length = Some(len);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
            for coding in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                if chunked {
                    // chunked must be the last coding, applied once
                    return Err(RequestError::BadRequest("chunked is not the final coding"));
                }
                if coding.eq_ignore_ascii_case("chunked") {
                    chunked = true;
                } else {
                    return Err(RequestError::UnsupportedTransferCoding);
                }
            }
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
        }
    }

    if hosts > 1 {
        return Err(RequestError::BadRequest("more than one Host header"));
    }
    if hosts == 0 && !req.http10 {
        return Err(RequestError::BadRequest("missing Host header"));
    }
    if transfer_encoding {
        if content_length.is_some() {
            return Err(RequestError::BadRequest(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        if req.http10 {
            return Err(RequestError::BadRequest("Transfer-Encoding in HTTP/1.0"));
        }
        if !chunked {
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

/// 505 for a well-formed `HTTP/x.y` we don't speak, 400 for anything else.
fn version_error(line: &[u8]) -> RequestError {
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
/// accepted as RFC 9112 requires of servers; `*` only means "the server".
fn set_target(target: &mut String, raw: &str) -> Result<(), RequestError> {
    target.clear();
    if raw.starts_with('/') || raw == "*" {
        target.push_str(raw);
        return Ok(());
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
    match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => target.push_str(&rest[i..]),
        Some(i) => {
            target.push('/');
            target.push_str(&rest[i..]);
        }
        None => target.push('/'),
    }
    Ok(())
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

    #[test]
    fn head_end_is_found_with_crlf_or_bare_lf() {
        assert_eq!(
            find_head_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest", 0),
            Some(27)
        );
        assert_eq!(
            find_head_end(b"GET / HTTP/1.1\nHost: a\n\nrest", 0),
            Some(24)
        );
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nHost: a\r\n", 0), None);
    }

    #[test]
    fn head_end_search_resumes_across_a_split_terminator() {
        let full = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        for split in 1..full.len() {
            let scanned = split;
            let partial = find_head_end(&full[..split], 0);
            assert_eq!(partial, None, "split {split}");
            assert_eq!(
                find_head_end(full, scanned),
                Some(full.len()),
                "split {split}"
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
        let same =
            parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(same.unwrap().body, BodyFraming::Length(5));
        let chunked =
            parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        assert_eq!(chunked.body, BodyFraming::Chunked);
        for bad in [
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(
                matches!(parse(bad), Err(RequestError::BadRequest(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
                .unwrap_err(),
            RequestError::UnsupportedTransferCoding
        );
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
            check_partial_head(&[b'a'; 9000], 16384).unwrap_err(),
            RequestError::UriTooLong
        );
        assert_eq!(
            check_partial_head(b"GET / HTTP/1.1\r\nX: aaaaaaaa", 20).unwrap_err(),
            RequestError::HeadersTooLarge
        );
        assert!(check_partial_head(b"GET / HTTP/1.1\r\nX: a", 100).is_ok());
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect();
        let many = format!("GET / HTTP/1.1\r\nHost: h\r\n{many}\r\n");
        assert_eq!(parse(&many).unwrap_err(), RequestError::HeadersTooLarge);
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
        assert_eq!(
            parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")
                .unwrap()
                .target,
            "*"
        );
        assert!(matches!(
            parse("GET x HTTP/1.1\r\nHost: h\r\n\r\n"),
            Err(RequestError::BadRequest(_))
        ));
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
