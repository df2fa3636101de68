//! The access log, as a user sees it on stderr: lines are buffered per
//! serving thread, yet show up within about a second without more
//! traffic, and none is lost when a worker stops (a graceful stop,
//! recycling by `max_requests`); the `common` and `combined` formats are
//! the NCSA ones, with quotes escaped; a bad `access_log_format` is
//! refused with exit code 2.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// How soon a buffered line must show up with no further traffic: the
/// loop flushes every 500 ms; the rest is slack for a loaded machine.
const FLUSH_WITHIN: Duration = Duration::from_secs(2);

/// How many times `needle` occurs in the log.
fn count(log: &str, needle: &str) -> usize {
    log.matches(needle).count()
}

every_mode!(lines_appear_within_a_second_without_more_traffic, |mode| {
    let server = Server::start(mode, &[]);
    let mut client = server.connect();
    for n in 0..3 {
        assert_eq!(client.get(&format!("/hello.txt?timer={n}")).status, 200);
    }
    // The connection stays open and quiet: only the timer can write the
    // lines out (three lines are far from a full buffer).
    let answered = Instant::now();
    let all_there =
        |log: &str| (0..3).all(|n| log.contains(&format!("GET /hello.txt?timer={n} 200 ")));
    let seen = wait_until(DEADLINE, || all_there(&server.log()));
    let waited = answered.elapsed();
    assert!(seen, "lines never written; log:\n{}", server.log());
    assert!(
        waited <= FLUSH_WITHIN,
        "lines took {waited:?} to appear; log:\n{}",
        server.log()
    );
    drop(client);
});

every_mode!(a_graceful_stop_logs_every_request, |mode| {
    let mut server = Server::start(mode, &[]);
    const REQUESTS: usize = 30;
    for n in 0..REQUESTS {
        // A connection each, closed by the client once answered: the
        // workers hold no connection when the stop comes, so they exit at
        // once, most likely before the timer wrote their lines.
        assert_eq!(server.get(&format!("/hello.txt?stop={n}")).status, 200);
    }
    server.signal(libc::SIGTERM);
    let status = server.wait_exit();
    assert!(status.success(), "{status:?}; log:\n{}", server.log());
    let log = server.log();
    for n in 0..REQUESTS {
        let line = format!("GET /hello.txt?stop={n} 200 13 ");
        assert_eq!(count(&log, &line), 1, "{line:?}; log:\n{log}");
    }
});

every_mode!(
    a_worker_recycled_by_max_requests_logs_every_request,
    |mode| {
        let config = write_config("[supervisor]\nmax_requests = 5\n");
        let server = Server::start(mode, &["--config", &config, "--workers", "1"]);
        let first = server.wait_for_workers(1)[0];
        let mut sent = 0;
        let deadline = Instant::now() + DEADLINE;
        // Until the first worker has been replaced; each request on a fresh
        // connection, so a draining worker has nothing to wait for.
        while server.workers().contains(&first) {
            assert!(
                Instant::now() < deadline,
                "never recycled; log:\n{}",
                server.log()
            );
            let response = server.get(&format!("/hello.txt?recycle={sent}"));
            assert_eq!(response.status, 200);
            sent += 1;
        }
        // The master logs the exit (with the requests the worker served)
        // after reaping the worker, which wrote its lines before exiting: once
        // the exit is in the log, so are all of its lines.
        let exited = log_line(&server, &format!("(pid {first}) exited with code 0"));
        let served: usize = exited
            .split(", ")
            .last()
            .and_then(|tail| tail.strip_suffix(" request(s) served"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no request count in {exited:?}"));
        assert!(served >= 5, "{exited}");
        let log = server.log();
        let logged = count(&log, &format!("pid={first}\n"));
        assert_eq!(logged, served, "lines of the recycled worker; log:\n{log}");
        assert!(sent >= served);
    }
);

/// The fields of a Common (or Combined) Log Format line.
#[derive(Debug)]
struct Clf<'a> {
    host: &'a str,
    date: &'a str,
    request: &'a str,
    status: &'a str,
    bytes: &'a str,
    /// Referer and User-Agent, for `combined`.
    quoted: Vec<&'a str>,
}

/// Parses `host - - [date] "request" status bytes` and any ` "field"`
/// after it, strictly: quoted fields hold no raw `"`.
fn parse_clf(line: &str) -> Option<Clf<'_>> {
    let (host, rest) = line.split_once(" - - [")?;
    let (date, rest) = rest.split_once("] \"")?;
    let (request, rest) = rest.split_once("\" ")?;
    let mut fields = rest.splitn(3, ' ');
    let status = fields.next()?;
    let bytes = fields.next()?;
    let mut quoted = Vec::new();
    if let Some(mut rest) = fields.next() {
        while !rest.is_empty() {
            let inner = rest.strip_prefix('"')?;
            let end = inner.find('"')?;
            quoted.push(&inner[..end]);
            rest = inner[end + 1..]
                .strip_prefix(' ')
                .unwrap_or(&inner[end + 1..]);
        }
    }
    Some(Clf {
        host,
        date,
        request,
        status,
        bytes,
        quoted,
    })
}

/// `10/Oct/2000:13:55:36 +0000`, character class by character class.
fn is_clf_date(date: &str) -> bool {
    let shape = "00/Aaa/0000:00:00:00 +0000";
    date.len() == shape.len()
        && date.chars().zip(shape.chars()).all(|(c, s)| match s {
            '0' => c.is_ascii_digit(),
            'A' => c.is_ascii_uppercase(),
            'a' => c.is_ascii_lowercase(),
            other => c == other,
        })
}

/// Waits for the log line containing `needle`; returns it.
fn log_line(server: &Server, needle: &str) -> String {
    server.wait_for_log(needle);
    let log = server.log();
    log.lines()
        .find(|line| line.contains(needle))
        .unwrap()
        .to_string()
}

every_mode!(common_lines_parse, |mode| {
    let server = Server::start(mode, &["--access-log-format", "common"]);
    assert_eq!(server.get("/hello.txt?common").status, 200);
    assert_eq!(server.get("/missing?common").status, 404);
    let line = log_line(&server, "/hello.txt?common");
    let clf = parse_clf(&line).unwrap_or_else(|| panic!("not CLF: {line}"));
    assert_eq!(clf.host, "127.0.0.1", "{line}");
    assert!(is_clf_date(clf.date), "{line}");
    assert_eq!(clf.request, "GET /hello.txt?common HTTP/1.1", "{line}");
    assert_eq!((clf.status, clf.bytes), ("200", "13"), "{line}");
    assert!(clf.quoted.is_empty(), "common has no Referer: {line}");
    let line = log_line(&server, "/missing?common");
    let clf = parse_clf(&line).unwrap_or_else(|| panic!("not CLF: {line}"));
    assert_eq!(clf.status, "404", "{line}");
    // A head that can't be parsed has no request line to show.
    let answer = send_raw(server.addr, b"GET / HTTP/1.1\r\nBad Field\r\n\r\n");
    assert_eq!(answer.status, 400);
    let line = log_line(&server, "\"-\" 400 ");
    assert!(parse_clf(&line).is_some(), "not CLF: {line}");
});

every_mode!(combined_lines_parse_and_escape_quotes, |mode| {
    let server = Server::start(mode, &["--access-log-format", "combined"]);
    let mut client = server.connect();
    let response = client.request(
        "GET /hello.txt?combined HTTP/1.1\r\nHost: localhost\r\n\
         Referer: http://localhost/page.html\r\n\
         User-Agent: evil\" 200 \"injected\r\n\r\n",
    );
    assert_eq!(response.status, 200);
    assert_eq!(client.get("/hello.txt?bare").status, 200);
    let line = log_line(&server, "/hello.txt?combined");
    let clf = parse_clf(&line).unwrap_or_else(|| panic!("not combined: {line}"));
    assert!(is_clf_date(clf.date), "{line}");
    assert_eq!(clf.request, "GET /hello.txt?combined HTTP/1.1", "{line}");
    assert_eq!((clf.status, clf.bytes), ("200", "13"), "{line}");
    assert_eq!(
        clf.quoted,
        ["http://localhost/page.html", "evil\\x22 200 \\x22injected"],
        "{line}"
    );
    let line = log_line(&server, "/hello.txt?bare");
    let clf = parse_clf(&line).unwrap_or_else(|| panic!("not combined: {line}"));
    assert_eq!(clf.quoted, ["-", "-"], "absent headers are \"-\": {line}");
});

#[test]
fn a_bad_access_log_format_exits_2_naming_the_key() {
    let config = write_config("access_log_format = \"combind\"\n");
    for (args, culprit) in [
        (
            vec!["--config", config.as_str(), "--listen", "127.0.0.1:0"],
            "invalid access_log_format: ",
        ),
        (
            vec!["--access-log-format", "apache", "--listen", "127.0.0.1:0"],
            "invalid --access-log-format: ",
        ),
    ] {
        let out = run_to_exit(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(culprit), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} printed a readiness line");
    }
    let out = run_to_exit(&["--config", &config, "--listen", "127.0.0.1:0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("did you mean \"combined\"?"), "{stderr}");
}
