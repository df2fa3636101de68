//! HTTP/1.1 behaviour of the real server, in both worker architectures:
//! keep-alive, pipelining, body framing, limits, timeouts, bad input.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;

every_mode!(keep_alive_serves_many_requests_on_one_connection, |mode| {
    let server = Server::start(mode, &[]);
    let mut client = server.connect();
    for _ in 0..20 {
        let response = client.get("/hello.txt");
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"hello, world\n");
        assert!(response.header("connection").is_none());
    }
});

every_mode!(every_response_has_date_server_and_length, |mode| {
    let server = Server::start(mode, &[]);
    for path in ["/hello.txt", "/missing", "/docs/", "/-/nothing"] {
        let response = server.get(path);
        assert!(
            response.header("date").is_some_and(|d| d.ends_with(" GMT")),
            "{path}: {response:?}"
        );
        assert!(
            response
                .header("server")
                .is_some_and(|s| s.starts_with("forkpool")),
            "{path}"
        );
        let len: usize = response
            .header("content-length")
            .expect("content-length")
            .parse()
            .unwrap();
        assert_eq!(len, response.body.len(), "{path}");
    }
});

every_mode!(connection_close_and_http10, |mode| {
    let server = Server::start(mode, &[]);
    let mut client = server.connect();
    let response =
        client.request("GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("connection"), Some("close"));
    assert!(client.is_closed());

    // HTTP/1.0 closes by default, keeps alive only when asked.
    let mut client = server.connect();
    let response = client.request("GET /hello.txt HTTP/1.0\r\n\r\n");
    assert_eq!(response.status, 200);
    assert!(client.is_closed());
    let mut client = server.connect();
    let response = client.request("GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(response.header("connection"), Some("keep-alive"));
    assert_eq!(client.get("/hello.txt").status, 200);
});

every_mode!(pipelined_requests_get_responses_in_order, |mode| {
    let server = Server::start(mode, &[]);
    let mut client = server.connect();
    let paths = [
        "/hello.txt",
        "/missing",
        "/site/",
        "/big.bin",
        "/hello.txt",
        "/docs",
    ];
    let batch: String = paths
        .iter()
        .map(|p| format!("GET {p} HTTP/1.1\r\nHost: localhost\r\n\r\n"))
        .collect();
    client.send(batch.as_bytes());
    let statuses: Vec<u16> = paths
        .iter()
        .map(|_| client.read_response(false).unwrap().status)
        .collect();
    assert_eq!(statuses, [200, 404, 200, 200, 200, 301]);
});

every_mode!(head_has_get_headers_and_no_body, |mode| {
    let server = Server::start(mode, &[]);
    let mut client = server.connect();
    let head = client.request("HEAD /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("2097152"));
    assert!(head.body.is_empty());
    // Had a body been sent, this would parse body bytes as a status line.
    let next = client.get("/hello.txt");
    assert_eq!(next.body, b"hello, world\n");
});

every_mode!(
    request_bodies_are_consumed_before_the_next_request,
    |mode| {
        let server = Server::start(mode, &[]);
        let mut client = server.connect();
        let response = client.request(
            "POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 11\r\n\r\nhello=world",
        );
        assert_eq!(response.status, 405);
        assert_eq!(response.header("allow"), Some("GET, HEAD, OPTIONS"));
        assert_eq!(client.get("/hello.txt").status, 200);
        let chunked = "POST /x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert_eq!(client.request(chunked).status, 405);
        assert_eq!(client.get("/hello.txt").status, 200);
    }
);

every_mode!(framing_errors_get_400_or_501_and_close, |mode| {
    let server = Server::start(mode, &[]);
    let cases: [(&str, u16); 8] = [
        ("GET / HTTP/1.1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (
            "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
        ),
        ("GET / HTTP/2.0\r\nHost: localhost\r\n\r\n", 505),
        ("BREW /pot HTTP/1.1\r\nHost: localhost\r\n\r\n", 501),
    ];
    for (raw, status) in cases {
        let mut client = server.connect();
        client.send(raw.as_bytes());
        let response = client.read_response(false).expect("a response");
        assert_eq!(response.status, status, "{raw:?}");
        if status != 501 || raw.contains("Transfer-Encoding") {
            assert_eq!(response.header("connection"), Some("close"), "{raw:?}");
            assert!(client.is_closed(), "{raw:?} left the connection open");
        }
    }
    // Garbage closes only its own connection: the server still answers.
    assert_eq!(server.get("/hello.txt").status, 200);
});

every_mode!(limits_give_414_431_413, |mode| {
    let server = Server::start(mode, &[]);
    let long_line = format!(
        "GET /{} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "a".repeat(9000)
    );
    assert_eq!(send_raw(server.addr, long_line.as_bytes()).status, 414);
    let big_head = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "b".repeat(20_000)
    );
    assert_eq!(send_raw(server.addr, big_head.as_bytes()).status, 431);
    let big_body = "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2000000\r\n\r\n";
    assert_eq!(send_raw(server.addr, big_body.as_bytes()).status, 413);
    let mut chunks =
        String::from("POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n");
    chunks.push_str("100000\r\n");
    chunks.push_str(&"x".repeat(0x100000));
    chunks.push_str("\r\n100000\r\n");
    let mut client = server.connect();
    client.send(chunks.as_bytes());
    // The 405 may come first (handled on the head); either way the
    // connection is closed once the chunked body passes the 1 MiB limit.
    let first = client.read_response(false).expect("a response");
    assert!(first.status == 405 || first.status == 413, "{first:?}");
    assert!(client.read_response(false).is_none());
});

every_mode!(slow_headers_get_408, |mode| {
    let server = Server::start(
        mode,
        &["--config", &write_config("header_timeout = \"500ms\"\n")],
    );
    let mut client = server.connect();
    client.send(b"GET /hello.txt HTTP/1.1\r\nHost:");
    let started = Instant::now();
    let response = client.read_response(false).expect("a 408");
    assert_eq!(response.status, 408);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(client.is_closed());
});

every_mode!(
    a_client_that_never_reads_is_cut_off_after_send_timeout,
    |mode| {
        // A slow-read hold: request a large file, never read it, and send a
        // byte now and then (each one wakes the server for this connection).
        // Only written bytes are progress: the connection is closed once
        // nothing was written for `send_timeout`.
        let server = Server::start(
            mode,
            &["--config", &write_config("send_timeout = \"1s\"\n")],
        );
        // More than the server's socket buffer can hold (up to 4 MiB here).
        std::fs::write(server.root.path().join("large.bin"), vec![b'x'; 16 << 20]).unwrap();
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        // A tiny window from the start: the server's writes stop at once.
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect(&server.addr.into()).unwrap();
        let mut stream = std::net::TcpStream::from(socket);
        stream
            .write_all(b"GET /large.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let started = Instant::now();
        // A write fails once the server has closed (it resets a connection
        // whose input it never read).
        let cut = wait_until(Duration::from_secs(10), || {
            std::thread::sleep(Duration::from_millis(300));
            stream.write(b"x").is_err()
        });
        assert!(cut, "still open after 10 s of a client that reads nothing");
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "cut after {:?}, not about send_timeout",
            started.elapsed()
        );
        let mut client = server.connect();
        client.stream = stream;
        assert!(client.closed_within(Duration::from_secs(2)));
        // Only that connection: the server answers.
        assert_eq!(server.get("/hello.txt").status, 200);
    }
);

every_mode!(
    a_malformed_head_request_gets_its_error_without_a_body,
    |mode| {
        let server = Server::start(mode, &[]);
        let mut client = server.connect();
        client.send(b"HEAD /hello.txt HTTP/1.1\r\nHost: localhost\r\nBad Field\r\n\r\n");
        let response = client.read_response(true).expect("an answer");
        assert_eq!(response.status, 400);
        assert_eq!(response.header("connection"), Some("close"));
        // The head ends the answer: no body bytes follow it (a HEAD answer
        // has none, error or not), just the end of the connection.
        assert!(
            client.is_closed(),
            "bytes followed the head of a HEAD answer"
        );
        // A GET with the same fault gets its error with a body.
        let mut client = server.connect();
        client.send(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nBad Field\r\n\r\n");
        let response = client.read_response(false).expect("an answer");
        assert_eq!(response.status, 400);
        assert!(!response.body.is_empty());
    }
);

every_mode!(idle_keep_alive_connections_are_closed, |mode| {
    let server = Server::start(
        mode,
        &["--config", &write_config("keepalive_timeout = \"300ms\"\n")],
    );
    let mut client = server.connect();
    assert_eq!(client.get("/hello.txt").status, 200);
    // Closed without a response once idle past the timeout.
    assert!(client.is_closed());
});

every_mode!(a_large_file_streams_whole, |mode| {
    let server = Server::start(mode, &[]);
    let mut client = server.connect();
    let response = client.get("/big.bin");
    assert_eq!(response.status, 200);
    assert!(response.body == big_bin(), "big.bin content differs");
    // A slow reader: the write side must wait for it, not drop it.
    let mut slow = server.connect();
    slow.send(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n");
    std::thread::sleep(Duration::from_millis(300));
    let response = slow.read_response(false).unwrap();
    assert_eq!(response.body.len(), 2 * 1024 * 1024);
});

every_mode!(half_closed_client_still_gets_its_answer, |mode| {
    let server = Server::start(mode, &[]);
    let mut client = server.connect();
    client.send(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
    client.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut all = Vec::new();
    client.stream.read_to_end(&mut all).unwrap();
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("hello, world\n"));
});

every_mode!(options_and_unknown_methods, |mode| {
    let server = Server::start(mode, &[]);
    let response = send_raw(
        server.addr,
        b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert_eq!(response.status, 204);
    assert_eq!(response.header("allow"), Some("GET, HEAD, OPTIONS"));
    let response = send_raw(
        server.addr,
        b"DELETE /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert_eq!(response.status, 405);
    assert!(response.header("allow").is_some());
});

every_mode!(many_idle_connections_dont_block_new_ones, |mode| {
    let server = Server::start(mode, &["--workers", "1", "--threads", "4"]);
    // 256 parked keep-alive connections against 4 pool threads (in thread
    // mode): none may pin a thread.
    let mut idle: Vec<Client> = (0..256).map(|_| server.connect()).collect();
    for client in &mut idle {
        assert_eq!(client.get("/hello.txt").status, 200);
    }
    let response = server.get("/hello.txt");
    assert_eq!(response.status, 200);
    for client in idle.iter_mut().step_by(17) {
        assert_eq!(client.get("/hello.txt").status, 200);
    }
});

every_mode!(concurrent_clients_all_get_answers, |mode| {
    // More busy connections than pool threads and queue slots: the loop
    // must hold the overflow, feed it to the pool as threads free up, and
    // accept again afterwards. Two rounds, like two load-test runs.
    let server = Server::start(mode, &["--workers", "1", "--threads", "1"]);
    let addr = server.addr;
    for round in 0..2 {
        let clients: Vec<_> = (0..64)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut client = Client::connect(addr);
                    (0..30)
                        .filter(|_| client.get("/hello.txt").status == 200)
                        .count()
                })
            })
            .collect();
        let served: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
        assert_eq!(served, 64 * 30, "round {round}");
    }
});

every_mode!(
    a_new_client_is_served_while_busy_clients_keep_the_pool_full,
    |mode| {
        // Eight keep-alive clients, each always with a request outstanding,
        // against one pool thread: the queue never empties while they run. A
        // newcomer must still get its turn then, not after the load stops.
        let server = Server::start(mode, &["--workers", "1", "--threads", "1"]);
        let addr = server.addr;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let busy: Vec<_> = (0..8)
            .map(|_| {
                let (stop, served) = (stop.clone(), served.clone());
                std::thread::spawn(move || {
                    let mut client = Client::connect(addr);
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        assert_eq!(client.get("/-/work/cpu?ms=2").status, 200);
                        served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let loaded = wait_until(DEADLINE, || {
            served.load(std::sync::atomic::Ordering::Relaxed) >= 50
        });
        assert!(loaded, "the busy clients got no answers");
        let mut newcomer = std::net::TcpStream::connect(addr).unwrap();
        newcomer
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        std::io::Write::write_all(
            &mut newcomer,
            b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",
        )
        .unwrap();
        let mut answer = [0u8; 12];
        let read = newcomer.read_exact(&mut answer);
        let still_loaded = busy.iter().all(|t| !t.is_finished());
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for thread in busy {
            thread.join().unwrap();
        }
        assert!(
            read.is_ok(),
            "the newcomer waited for the load to end: {read:?}"
        );
        assert_eq!(&answer, b"HTTP/1.1 200");
        assert!(
            still_loaded,
            "the load ended before the newcomer was answered"
        );
    }
);

every_mode!(running_out_of_file_descriptors_does_not_spin, |mode| {
    let root = TempDir::new();
    write_fixtures(root.path());
    let args: Vec<String> = [
        root.path().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--mode",
        mode,
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(
        ["--workers", "1", "--threads", "2"]
            .iter()
            .map(|s| s.to_string()),
    )
    .collect();
    let server = Server::start_limited(root, &args, Some(64));
    let worker = server.wait_for_workers(1)[0];
    // Far more connections than the worker has descriptors for: the
    // kernel queues them in the backlog, accept() fails with EMFILE.
    let mut clients: Vec<Client> = (0..120).map(|_| server.connect()).collect();
    server.wait_for_log("pausing accepts");
    let cpu_before = cpu_ticks(worker);
    std::thread::sleep(Duration::from_millis(1000));
    let used = cpu_ticks(worker) - cpu_before;
    // A spinning loop would burn ~100 ticks in that second.
    assert!(
        used < 30,
        "worker used {used} ticks in 1 s: spinning on EMFILE?"
    );
    // Freeing descriptors lets the waiting connections in, in order.
    let mut late = clients.split_off(100);
    drop(clients);
    for client in &mut late {
        assert_eq!(client.get("/hello.txt").status, 200);
    }
});

/// User + system CPU ticks (1/100 s) a process has used.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}
