//! Live reload (issue 13) on the wire, in every architecture: what
//! `--live-reload` does to HTML responses, and the `/-/livereload`
//! Server-Sent Events stream, read raw from a `TcpStream` on 127.0.0.1.
//!
//! Checked: every kind of HTML response (a file, a directory's index, the
//! SPA fallback, `404.html`, a listing) carries the script tag before its
//! last `</body>` (or at its end), with a Content-Length that counts it and
//! an ETag of its own, so a cached copy without the script is never
//! revalidated as current; other files and servers without the flag are
//! untouched, and `/-/livereload` is theirs to 404. The stream answers as
//! `text/event-stream` and says `reload` for a change, `css` for a change
//! to stylesheets only; a burst of writes (an editor's save) is one event,
//! two at most; and idle streams, however many, never hold the only pool
//! thread. Events are parsed as a browser's EventSource would (one without
//! a `data` field is never dispatched), over chunked framing if the server
//! uses it. Every wait has a deadline; the only fixed wait is the window
//! after a burst in which a second event would have to come.
//!
//! Not checked here: what a page does with the events (tests/live_reload.rs
//! runs Chromium for that).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

/// How long a request may take to be answered, or a change to be told,
/// before the test calls it stuck (not the 1 s promise: the browser
/// tests hold the server to that).
const ANSWER: Duration = Duration::from_secs(5);
/// After a burst's first event, how long a second one may still come:
/// the debounce closes a burst at most ~300 ms after it starts.
const BURST_WINDOW: Duration = Duration::from_secs(1);

const TAG_START: &str = r#"<script src="/-/livereload.js" data-since=""#;
const TAG_END: &str = r#""></script>"#;

/// A page with a `</body>` in a script before its real one: the tag goes
/// before the last.
const INDEX: &str = "<!doctype html>\n<html><body>\n<p id=\"v\">one</p>\n\
                     <script>const s = \"</body>\";</script>\n</body></html>\n";
const NOT_FOUND: &str = "<!doctype html>\n<html><body><h1>lost</h1></body></html>\n";

/// The standard fixtures, with `INDEX` as the index and a `404.html`.
fn root() -> TempDir {
    let root = TempDir::new();
    write_fixtures(root.path());
    std::fs::write(root.path().join("index.html"), INDEX).unwrap();
    std::fs::write(root.path().join("404.html"), NOT_FOUND).unwrap();
    root
}

/// A response read to the end of a `Connection: close` exchange, so a
/// wrong Content-Length shows instead of desynchronising a keep-alive
/// parser.
struct Whole {
    status: u16,
    /// Lower-cased names.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Whole {
    fn header(&self, name: &str) -> Option<&str> {
        let found = self.headers.iter().find(|(n, _)| n == name);
        found.map(|(_, value)| value.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body, checked against its Content-Length.
    fn framed_body(&self, what: &str) -> String {
        let length = self.header("content-length");
        assert_eq!(
            length,
            Some(self.body.len().to_string().as_str()),
            "{what}: Content-Length against the bytes sent; body:\n{}",
            self.text()
        );
        self.text()
    }
}

/// `method path` with `extra` header lines and `Connection: close`, read
/// until the server closes.
fn fetch(addr: SocketAddr, method: &str, path: &str, extra: &str) -> Whole {
    let mut client = Client::connect(addr);
    let request =
        format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}\r\n");
    client.send(request.as_bytes());
    let mut bytes = Vec::new();
    if let Err(e) = client.stream.read_to_end(&mut bytes) {
        panic!("{method} {path}: {e} after {} bytes", bytes.len());
    }
    let head_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {path}: no head in {bytes:?}"))
        + 4;
    let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Whole {
        status: status.parse().expect("a status code"),
        headers,
        body: bytes[head_end..].to_vec(),
    }
}

/// Where `body` has the live-reload tag, and its `N`; panics if the tag
/// is missing or malformed.
fn find_tag(body: &str, what: &str) -> (usize, u64) {
    let at = body
        .find(TAG_START)
        .unwrap_or_else(|| panic!("{what}: no live-reload script in:\n{body}"));
    let rest = &body[at + TAG_START.len()..];
    let digits = rest.find(TAG_END).map(|end| &rest[..end]);
    let since = digits.and_then(|n| n.parse().ok());
    let since = since.unwrap_or_else(|| panic!("{what}: a malformed tag in:\n{body}"));
    (at, since)
}

/// `body` is `original` with exactly the tag inserted before its last
/// `</body>` (at its end if it has none); returns the tag's `N`.
fn assert_injected(body: &str, original: &str, what: &str) -> u64 {
    let (at, since) = find_tag(body, what);
    let tag = format!("{TAG_START}{since}{TAG_END}");
    let spot = original.rfind("</body>").unwrap_or(original.len());
    let want = format!("{}{tag}{}", &original[..spot], &original[spot..]);
    assert_eq!(at, spot, "{what}: the tag is not before the last </body>");
    assert_eq!(body, want, "{what}");
    since
}

/// What a browser sends when it navigates.
const PAGE: &str = "Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\n";

every_mode!(every_html_response_carries_the_script, |mode| {
    let server = Server::start_in(root(), mode, &["--live-reload", "--spa"]);
    let addr = server.addr;

    let index = fetch(addr, "GET", "/", "");
    assert_eq!(index.status, 200);
    assert_injected(&index.framed_body("GET /"), INDEX, "GET /");
    let head = fetch(addr, "HEAD", "/", "");
    assert_eq!(
        head.header("content-length"),
        index.header("content-length"),
        "HEAD / must announce the injected length"
    );
    assert_eq!(head.header("etag"), index.header("etag"));

    // A file named in full, a directory's index without </body>, the SPA
    // fallback, 404.html, a listing.
    let named = fetch(addr, "GET", "/index.html", "");
    assert_injected(&named.framed_body("/index.html"), INDEX, "/index.html");
    let site = fetch(addr, "GET", "/site/", "");
    let site_body = site.framed_body("/site/");
    assert_injected(&site_body, "<h1>site</h1>\n", "/site/ (no </body>)");
    let spa = fetch(addr, "GET", "/app/settings", PAGE);
    assert_eq!(spa.status, 200);
    assert_injected(&spa.framed_body("SPA fallback"), INDEX, "SPA fallback");
    let lost = fetch(addr, "GET", "/missing.png", "");
    assert_eq!(lost.status, 404);
    assert_injected(&lost.framed_body("404.html"), NOT_FOUND, "404.html");
    let listing = fetch(addr, "GET", "/docs/", "");
    assert_eq!(listing.status, 200);
    let listing = listing.framed_body("listing");
    let (_, since) = find_tag(&listing, "listing");
    let tag = format!("{TAG_START}{since}{TAG_END}");
    let before = listing
        .rfind("</body>")
        .map_or(&listing[..], |end| &listing[..end]);
    assert!(
        before.ends_with(&tag) && listing.matches(TAG_START).count() == 1,
        "listing: the tag must come once, before the last </body>:\n{listing}"
    );

    // Other files are served as they are.
    let text = fetch(addr, "GET", "/hello.txt", "");
    assert_eq!(text.framed_body("/hello.txt"), "hello, world\n");

    // The script itself.
    let script = fetch(addr, "GET", "/-/livereload.js", "");
    assert_eq!(script.status, 200);
    let kind = script.header("content-type").unwrap_or("");
    assert!(kind.contains("javascript"), "Content-Type {kind:?}");
    assert!(script.framed_body("the script").contains("EventSource"));
});

every_mode!(the_script_has_its_own_etag_and_only_with_the_flag, |mode| {
    let live = Server::start_in(root(), mode, &["--live-reload"]);
    let dir = live.root.path().display().to_string();
    // Another server on the same files: same inode, size and mtime.
    let plain_args: Vec<String> = [&dir, "--listen", "127.0.0.1:0", "--mode", mode]
        .iter()
        .map(|s| s.to_string())
        .chain(["--workers".into(), "1".into()])
        .collect();
    let plain = Server::start_with(TempDir::new(), &plain_args);

    let served = fetch(plain.addr, "GET", "/", "");
    assert_eq!(served.framed_body("plain GET /"), INDEX, "no script");
    let plain_etag = served.header("etag").expect("an ETag").to_string();
    let injected = fetch(live.addr, "GET", "/", "");
    let live_etag = injected.header("etag").expect("an ETag").to_string();
    assert_ne!(
        live_etag, plain_etag,
        "the injected page needs its own ETag"
    );

    // A copy cached without the script is not current; one with it is.
    let if_plain = format!("If-None-Match: {plain_etag}\r\n");
    let revalidated = fetch(live.addr, "GET", "/", &if_plain);
    assert_eq!(revalidated.status, 200, "a scriptless copy kept as current");
    assert_injected(&revalidated.text(), INDEX, "after If-None-Match");
    let if_live = format!("If-None-Match: {live_etag}\r\n");
    assert_eq!(fetch(live.addr, "GET", "/", &if_live).status, 304);

    // Without the flag there is no stream.
    for path in ["/-/livereload", "/-/livereload?since=0"] {
        assert_eq!(fetch(plain.addr, "GET", path, "").status, 404, "{path}");
    }

    // The config file's `live_reload = true` is the flag.
    let config = write_config("live_reload = true\n");
    let configured = Server::start_in(root(), mode, &["--config", &config]);
    let body = fetch(configured.addr, "GET", "/", "").framed_body("configured");
    assert_injected(&body, INDEX, "live_reload = true");
});

/// One open `/-/livereload` stream, read as a browser's EventSource would.
struct Events {
    stream: TcpStream,
    chunked: bool,
    /// Bytes received and not yet de-chunked.
    raw: Vec<u8>,
    /// Stream text not yet cut into events.
    text: String,
    /// Everything received, for failure messages.
    seen: String,
}

impl Events {
    /// Opens the stream with `since`, as the page's script does; panics
    /// unless it is answered within [`ANSWER`] with 200 and
    /// `text/event-stream`.
    fn open(addr: SocketAddr, since: u64) -> Events {
        let stream = TcpStream::connect_timeout(&addr, ANSWER).expect("connect");
        let mut events = Events {
            stream,
            chunked: false,
            raw: Vec::new(),
            text: String::new(),
            seen: String::new(),
        };
        let request = format!(
            "GET /-/livereload?since={since} HTTP/1.1\r\nHost: localhost\r\n\
             Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
        );
        events.stream.write_all(request.as_bytes()).unwrap();
        let deadline = Instant::now() + ANSWER;
        let head_end = loop {
            if let Some(i) = events.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(
                events.read_until(deadline),
                "no answer to GET /-/livereload within {ANSWER:?}; got {:?}",
                events.seen
            );
        };
        let head = String::from_utf8_lossy(&events.raw[..head_end]).to_ascii_lowercase();
        events.raw.drain(..head_end);
        assert!(head.starts_with("http/1.1 200 "), "{head}");
        let header = |name: &str| {
            head.split("\r\n")
                .filter_map(|line| line.split_once(':'))
                .find(|(n, _)| n.trim() == name)
                .map(|(_, v)| v.trim().to_string())
        };
        let kind = header("content-type").unwrap_or_default();
        assert!(kind.starts_with("text/event-stream"), "{head}");
        events.chunked = header("transfer-encoding").is_some_and(|te| te.contains("chunked"));
        events
    }

    /// Reads once, waiting no later than `deadline`; false if nothing came
    /// by then. Panics if the server closed the stream.
    fn read_until(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        self.stream.set_read_timeout(Some(left)).unwrap();
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => panic!("the server closed the stream; it sent:\n{}", self.seen),
            Ok(n) => {
                self.raw.extend_from_slice(&chunk[..n]);
                self.seen.push_str(&String::from_utf8_lossy(&chunk[..n]));
                true
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                false
            }
            Err(e) => panic!("reading the stream: {e}; it sent:\n{}", self.seen),
        }
    }

    /// Moves what `raw` holds of the body into `text`.
    fn decode(&mut self) {
        if !self.chunked {
            self.text.push_str(&String::from_utf8_lossy(&self.raw));
            self.raw.clear();
            return;
        }
        while let Some(line_end) = self.raw.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&self.raw[..line_end]).into_owned();
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .unwrap_or_else(|_| panic!("bad chunk size {line:?}; sent:\n{}", self.seen));
            assert!(size > 0, "the stream ended; it sent:\n{}", self.seen);
            let start = line_end + 2;
            if self.raw.len() < start + size + 2 {
                return;
            }
            let data = String::from_utf8_lossy(&self.raw[start..start + size]).into_owned();
            self.text.push_str(&data);
            self.raw.drain(..start + size + 2);
        }
    }

    /// The next event an EventSource would dispatch, by type (`message`
    /// when it names none), if one is complete in `text`.
    fn take_event(&mut self) -> Option<String> {
        loop {
            self.text = self.text.replace("\r\n", "\n");
            let end = self.text.find("\n\n")?;
            let block: String = self.text.drain(..end + 2).collect();
            let mut name = None;
            let mut data = false;
            for line in block.lines().filter(|line| !line.starts_with(':')) {
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => name = Some(value.to_string()),
                    "data" => data = true,
                    _ => {}
                }
            }
            // Without data a browser dispatches nothing (HTML, "dispatch
            // the event", step 2).
            if data {
                return Some(name.unwrap_or_else(|| "message".into()));
            }
        }
    }

    /// The next event, if one comes before `deadline`.
    fn next_before(&mut self, deadline: Instant) -> Option<String> {
        loop {
            self.decode();
            if let Some(event) = self.take_event() {
                return Some(event);
            }
            if !self.read_until(deadline) {
                return None;
            }
        }
    }

    /// The next event, which must come within [`ANSWER`].
    fn next(&mut self, after: &str) -> String {
        let event = self.next_before(Instant::now() + ANSWER);
        event.unwrap_or_else(|| {
            panic!(
                "no event within {ANSWER:?} of {after}; the stream sent:\n{}",
                self.seen
            )
        })
    }
}

/// The `N` of the page served now: what its script would ask from.
fn since(server: &Server) -> u64 {
    let page = fetch(server.addr, "GET", "/", "");
    find_tag(&page.text(), "GET /").1
}

every_mode!(the_stream_says_reload_or_css, |mode| {
    let server = Server::start(mode, &["--live-reload"]);
    let root = server.root.path();
    let mut events = Events::open(server.addr, since(&server));

    std::fs::write(root.join("notes.txt"), "a change\n").unwrap();
    let event = events.next("writing notes.txt");
    assert_eq!(event, "reload", "sent:\n{}", events.seen);

    // Stylesheets only, two in one burst: one css event.
    std::fs::write(root.join("style.css"), "p { color: red }\n").unwrap();
    std::fs::write(root.join("docs/theme.css"), "p { color: blue }\n").unwrap();
    let event = events.next("writing two .css files");
    assert_eq!(event, "css", "sent:\n{}", events.seen);

    // An HTML edit in a subdirectory (the watch is recursive).
    std::fs::write(root.join("site/index.html"), "<h1>new</h1>\n").unwrap();
    let event = events.next("writing site/index.html");
    assert_eq!(event, "reload", "sent:\n{}", events.seen);
});

every_mode!(a_burst_of_writes_is_one_event, |mode| {
    let server = Server::start(mode, &["--live-reload"]);
    let root = server.root.path();
    let mut events = Events::open(server.addr, since(&server));

    // Ten files at once, two by an editor's rename.
    let start = Instant::now();
    for n in 0..10 {
        let path = root.join(format!("part{n}.js"));
        if n % 5 == 0 {
            let temp = root.join(format!("part{n}.js.tmp"));
            std::fs::write(&temp, format!("// {n}\n")).unwrap();
            std::fs::rename(&temp, &path).unwrap();
        } else {
            std::fs::write(&path, format!("// {n}\n")).unwrap();
        }
    }
    let burst = start.elapsed();
    let first = events.next("a burst of ten writes");
    let mut all = vec![first];
    let window_end = Instant::now() + BURST_WINDOW;
    while let Some(event) = events.next_before(window_end) {
        all.push(event);
    }
    assert!(
        all.len() <= 2 && all.iter().all(|event| event == "reload"),
        "ten writes in {burst:?} gave {all:?}; sent:\n{}",
        events.seen
    );
});

every_mode!(idle_streams_hold_no_pool_thread, |mode| {
    // One worker with one thread: a stream that held it would starve
    // everything else.
    let server = Server::start(mode, &["--live-reload", "--workers", "1", "--threads", "1"]);
    let since = since(&server);
    let mut streams: Vec<Events> = (0..4).map(|_| Events::open(server.addr, since)).collect();

    let addr = server.addr;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(Client::connect(addr).get("/hello.txt"));
    });
    let answer = match rx.recv_timeout(ANSWER) {
        Ok(answer) => answer,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "GET /hello.txt not answered within {ANSWER:?} while 4 streams are open: \
             they hold the pool; log:\n{}",
            server.log()
        ),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            panic!("GET /hello.txt failed (see above); log:\n{}", server.log())
        }
    };
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "hello, world\n");

    // And the streams still hear the next change.
    std::fs::write(server.root.path().join("notes.txt"), "a change\n").unwrap();
    for (n, events) in streams.iter_mut().enumerate() {
        let event = events.next(&format!("a change (stream {n})"));
        assert_eq!(event, "reload", "stream {n} sent:\n{}", events.seen);
    }
});
