//! Hostile or unlucky clients against the real server, in both worker
//! architectures: byte floods that must be cut off, slow clients that must
//! time out, busy connections that must *not* time out, and error answers
//! that must reach the client whole. Every wait has a deadline; the servers
//! run one worker (and one pool thread) so a stalled loop or pinned thread
//! shows up as a stalled neighbour.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;

/// One worker, one pool thread (in thread mode), and `config`.
fn start(mode: &str, config: &str) -> Server {
    Server::start(
        mode,
        &[
            "--config",
            &write_config(config),
            "--workers",
            "1",
            "--threads",
            "1",
        ],
    )
}

/// GET on a fresh connection that must be answered within `limit`.
fn get_within(server: &Server, path: &str, limit: Duration) -> Response {
    let mut client = server.connect();
    client.stream.set_read_timeout(Some(limit)).unwrap();
    let started = Instant::now();
    client.send(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
    let response = client
        .read_response(false)
        .unwrap_or_else(|| panic!("{path}: closed without an answer"));
    assert!(
        started.elapsed() < limit,
        "{path} took {:?}",
        started.elapsed()
    );
    response
}

/// Sends a request head whose answer comes before its body is read (the
/// handler answers on the head: 405), then floods `pattern` as its body.
/// Asserts that the server cuts the flood off, and that a neighbour on
/// the same worker is served meanwhile.
fn flood_is_cut_off(server: &Server, head: &str, pattern: &[u8]) {
    let mut flooder = server.connect();
    let response = flooder.request(head);
    assert_eq!(response.status, 405);
    let stream = flooder.stream.try_clone().unwrap();
    let pattern = pattern.to_vec();
    let flood = std::thread::spawn(move || flood(&stream, &pattern, Duration::from_secs(3)));
    assert_eq!(
        get_within(server, "/hello.txt", Duration::from_secs(2)).status,
        200
    );
    let cut = flood.join().unwrap();
    assert!(
        cut.is_some(),
        "the server took 3 s of flood without a limit"
    );
    assert!(flooder.closed_within(Duration::from_secs(3)));
    assert_eq!(server.get("/hello.txt").status, 200);
}

const CHUNKED_POST: &str =
    "POST /x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n";

every_mode!(endless_chunked_trailers_are_cut_off, |mode| {
    let server = start(mode, "header_timeout = \"1s\"\n");
    let head = format!("{CHUNKED_POST}5\r\nhello\r\n0\r\n");
    flood_is_cut_off(&server, &head, b"X-Trailer: aaaaaaaaaaaaaaaaaaaaaaaa\r\n");
});

every_mode!(endless_chunk_extensions_are_cut_off, |mode| {
    let server = start(mode, "header_timeout = \"1s\"\n");
    // One data byte per chunk, each with a 1000-byte extension: within
    // the per-line limit, so only a limit on the total can stop it.
    let chunk = format!("1;ext={}\r\na\r\n", "x".repeat(1000));
    flood_is_cut_off(&server, CHUNKED_POST, chunk.as_bytes());
});

every_mode!(a_fast_upload_does_not_starve_other_connections, |mode| {
    // A chunked body of one-byte chunks, too big to finish during the test,
    // sent as fast as the client can: the server parses it more slowly than
    // the client sends it, so only a read budget per drive lets the
    // neighbour on the same loop (or pool thread) have a turn.
    let server = start(
        mode,
        "header_timeout = \"1s\"\nmax_body_bytes = \"100GiB\"\n",
    );
    let mut uploader = server.connect();
    assert_eq!(uploader.request(CHUNKED_POST).status, 405);
    let stream = uploader.stream.try_clone().unwrap();
    let upload = std::thread::spawn(move || flood(&stream, b"1\r\nu\r\n", Duration::from_secs(2)));
    let mut neighbour = server.connect();
    neighbour
        .stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut served = 0;
    while !upload.is_finished() {
        let started = Instant::now();
        assert_eq!(neighbour.get("/hello.txt").status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a GET took {:?} next to an upload",
            started.elapsed()
        );
        served += 1;
    }
    assert!(
        upload.join().unwrap().is_none(),
        "the upload was cut off; log:\n{}",
        server.log()
    );
    assert!(served > 0);
});

every_mode!(queued_connections_are_not_closed_as_idle, |mode| {
    // Thread mode, one pool thread and a queue of two: a slow request takes
    // the thread, and the requests behind it fill the queue and then wait
    // in the loop's overflow, past their connections' keep-alive deadline.
    let server = start(mode, "keepalive_timeout = \"300ms\"\n");
    // All parked first, so their requests reach the loop as events, in order.
    let mut slow = server.connect();
    let mut waiting: Vec<Client> = (0..5).map(|_| server.connect()).collect();
    assert_eq!(slow.get("/hello.txt").status, 200);
    for client in &mut waiting {
        assert_eq!(client.get("/hello.txt").status, 200);
    }
    // Now idle, with deadlines 300 ms away.
    slow.send(b"GET /-/work/io?ms=600 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    for client in &mut waiting {
        client.send(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
    }
    for (n, client) in waiting.iter_mut().enumerate() {
        let response = client
            .read_response(false)
            .unwrap_or_else(|| panic!("request {n} was dropped with its connection"));
        assert_eq!(response.status, 200);
    }
    assert_eq!(slow.read_response(false).expect("an answer").status, 200);
});

every_mode!(a_busy_pipelining_connection_is_not_closed_as_idle, |mode| {
    // The client keeps ~2000 requests in flight for 1 s, so every drive
    // stops on its request budget (Yield) and never waits for input: its
    // keep-alive and header deadlines (200 ms) must not apply.
    let server = start(
        mode,
        "keepalive_timeout = \"200ms\"\nheader_timeout = \"200ms\"\n",
    );
    let mut client = server.connect();
    let stream = client.stream.try_clone().unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let gave_up = Arc::new(AtomicBool::new(false));
    let (seen, stop) = (Arc::clone(&received), Arc::clone(&gave_up));
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let batch = "GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(100);
        let started = Instant::now();
        let mut sent: usize = 0;
        let mut stream = &stream;
        while started.elapsed() < Duration::from_secs(1) && !stop.load(Ordering::Relaxed) {
            if sent.saturating_sub(seen.load(Ordering::Relaxed)) > 2000 {
                std::thread::yield_now();
                continue;
            }
            if stream.write_all(batch.as_bytes()).is_err() {
                return sent;
            }
            sent += 100;
        }
        let last = "GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        if stream.write_all(last.as_bytes()).is_ok() {
            sent += 1;
        }
        sent
    });
    let mut last_closed = false;
    while let Some(response) = client.read_response(false) {
        assert_eq!(response.status, 200);
        received.fetch_add(1, Ordering::Relaxed);
        if response.header("connection") == Some("close") {
            last_closed = true;
            break;
        }
    }
    gave_up.store(true, Ordering::Relaxed);
    let sent = writer.join().unwrap();
    let received = received.load(Ordering::Relaxed);
    assert!(
        last_closed,
        "closed after {received} of {sent} pipelined responses"
    );
    assert_eq!(received, sent);
});

every_mode!(too_many_empty_lines_before_a_request_are_refused, |mode| {
    let server = start(mode, "");
    // RFC 9112 2.2: at least one empty line is ignored. We allowed two
    // until issue 11 (strict framing): now exactly one, and it must be
    // CR LF like every line.
    let mut client = server.connect();
    assert_eq!(
        client
            .request("\r\nGET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .status,
        200
    );
    let response = client.request("\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(response.status, 400);
    assert_eq!(response.header("connection"), Some("close"));
    assert!(client.is_closed());
    let mut client = server.connect();
    let response = client.request("\nGET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(response.status, 400, "a bare LF");
    assert!(client.is_closed());
    // An endless stream of them is cut off at once, too.
    let mut client = server.connect();
    let stream = client.stream.try_clone().unwrap();
    assert!(flood(&stream, b"\r\n", Duration::from_secs(3)).is_some());
    assert_eq!(client.read_response(false).expect("a 400").status, 400);
});

every_mode!(empty_lines_do_not_extend_the_header_timeout, |mode| {
    // The header timer starts at the first byte of a request, empty lines
    // included; it is not the (longer) keep-alive timer, and more bytes
    // don't restart it.
    let server = start(
        mode,
        "header_timeout = \"1s\"\nkeepalive_timeout = \"10s\"\n",
    );
    let mut client = server.connect();
    assert_eq!(client.get("/hello.txt").status, 200);
    let started = Instant::now();
    // The one empty line allowed, a byte at a time, then a slow head.
    client.send(b"\r");
    std::thread::sleep(Duration::from_millis(300));
    client.send(b"\n");
    std::thread::sleep(Duration::from_millis(300));
    client.send(b"GET");
    assert!(
        client.closed_within(Duration::from_secs(3)),
        "an empty line and a slow head kept the connection open"
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    // Likewise a request head sent a byte at a time.
    let mut client = server.connect();
    let stream = client.stream.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let trickle = std::thread::spawn(move || {
        use std::io::Write;
        let mut stream = &stream;
        for byte in b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n" {
            if stopped.load(Ordering::Relaxed) || stream.write_all(&[*byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let started = Instant::now();
    let response = client.read_response(false).expect("a 408");
    stop.store(true, Ordering::Relaxed);
    assert_eq!(response.status, 408);
    assert!(started.elapsed() < Duration::from_secs(3));
    trickle.join().unwrap();
});

every_mode!(a_trickled_body_is_cut_off, |mode| {
    // The body timer runs from the start of the body and only grows with
    // the bytes received (500 B/s), so a byte every 100 ms can't keep the
    // connection forever.
    let server = start(mode, "header_timeout = \"1s\"\n");
    let mut client = server.connect();
    let response =
        client.request("POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n");
    assert_eq!(response.status, 405);
    let started = Instant::now();
    let closed = loop {
        if started.elapsed() > Duration::from_secs(3) {
            break false;
        }
        if std::io::Write::write_all(&mut client.stream, b"x").is_err() {
            break true;
        }
        if client.closed_within(Duration::from_millis(100)) {
            break true;
        }
    };
    assert!(closed, "a trickled body kept the connection for 3 s");
    assert_eq!(server.get("/hello.txt").status, 200);
});

every_mode!(a_body_that_stalls_after_a_fast_start_is_cut_off, |mode| {
    // 50 KB sent at once earn 100 s at 500 B/s; they must not buy 100 s of
    // silence: the body gets at most `header_timeout` since its last bytes.
    let server = start(mode, "header_timeout = \"1s\"\n");
    let mut client = server.connect();
    let response =
        client.request("POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n");
    assert_eq!(response.status, 405);
    std::io::Write::write_all(&mut client.stream, &[b'x'; 50_000]).unwrap();
    assert!(
        client.closed_within(Duration::from_secs(4)),
        "a stalled body kept its connection for 4 s"
    );
});

every_mode!(error_answers_survive_unread_input, |mode| {
    // A large answer still in flight, then a request refused with 413
    // whose body keeps coming: closing at once would reset the connection
    // and destroy what the client has not read yet.
    let server = start(mode, "");
    let mut client = server.connect();
    let mut raw = b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec();
    raw.extend_from_slice(
        b"POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000000\r\n\r\n",
    );
    raw.extend_from_slice(&[b'b'; 64 * 1024]);
    client.send(&raw);
    let big = client.read_response(false).expect("the file");
    assert_eq!(big.status, 200);
    assert!(big.body == big_bin(), "big.bin content differs");
    let refused = client.read_response(false).expect("a 413");
    assert_eq!(refused.status, 413);
    assert!(client.is_closed());

    // The same with a malformed request followed by more input.
    let mut client = server.connect();
    let mut raw = b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec();
    raw.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    raw.extend_from_slice(&b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(200));
    client.send(&raw);
    assert_eq!(client.read_response(false).expect("the file").status, 200);
    assert_eq!(client.read_response(false).expect("a 400").status, 400);
    assert!(client.is_closed());
});

every_mode!(an_error_after_a_pipelined_head_has_its_body, |mode| {
    let server = start(mode, "");
    for bad in [
        "GET / HTTP/2.0\r\nHost: localhost\r\n\r\n",
        "G@T / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ] {
        let mut client = server.connect();
        client.send(format!("HEAD /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n{bad}").as_bytes());
        let head = client.read_response(true).expect("the HEAD answer");
        assert_eq!(head.status, 200);
        let error = client.read_response(false).expect("an error answer");
        assert!(error.status == 400 || error.status == 505, "{error:?}");
        let length: usize = error.header("content-length").unwrap().parse().unwrap();
        assert!(length > 0 && error.body.len() == length, "{error:?}");
        assert!(client.is_closed());
    }
});

every_mode!(a_malformed_request_closes_only_its_connection, |mode| {
    let server = start(mode, "");
    let mut neighbour = server.connect();
    assert_eq!(neighbour.get("/hello.txt").status, 200);
    for bad in [
        &b"\x00\x01\x02 garbage\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET /\xff HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ] {
        let mut client = server.connect();
        client.send(bad);
        let response = client.read_response(false).expect("an answer");
        assert_eq!(response.status, 400, "{:?}", String::from_utf8_lossy(bad));
        assert!(client.is_closed());
        // Same worker, same keep-alive connection: still served.
        assert_eq!(neighbour.get("/hello.txt").status, 200);
    }
});
