//! The dev-server features of issue 13, end to end in every architecture:
//! the SPA fallback, a `404.html`, CORS, custom headers, `localhost` on
//! both stacks, the listing's sorting, JSON and dark scheme, `--open`,
//! live reload turned on by a config reload (tests/live_reload.rs has the
//! rest of live reload, in a browser); and the flag and config errors they
//! add (exit code 2, naming the flag or key), and the port-in-use message.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{Ipv6Addr, SocketAddr, TcpListener};
use std::process::{Command, Stdio};

use common::*;

/// What a browser sends when it navigates.
const PAGE: &str = "Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\n";

/// GET `path` with extra header lines, on a fresh connection.
fn get_with(server: &Server, path: &str, extra: &str) -> Response {
    server.connect().request(&format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n"
    ))
}

/// Any request, on a fresh connection.
fn ask(server: &Server, method: &str, path: &str, extra: &str) -> Response {
    server.connect().request(&format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n"
    ))
}

/// Whether this machine has an IPv6 loopback (a container may not).
fn has_ipv6_loopback() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

every_mode!(spa_serves_the_index_for_page_routes_only, |mode| {
    let server = Server::start(mode, &["--spa"]);
    for route in ["/app/settings", "/users/42/", "/dashboard?tab=2"] {
        let response = get_with(&server, route, PAGE);
        assert_eq!(response.status, 200, "{route}");
        assert_eq!(response.text(), "<h1>home</h1>\n", "{route}");
        assert_eq!(
            response.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(response.header("vary"), Some("Accept"));
    }
    let head = ask(&server, "HEAD", "/app/settings", PAGE);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("14"));
    // Missing assets and non-page requests still 404; /-/ is never an app
    // route; real files are served as they are.
    for (path, extra) in [
        ("/app.js", PAGE),
        ("/img/logo.png", PAGE),
        ("/app/settings", ""),
        ("/app/settings", "Accept: */*\r\n"),
        ("/-/nothing", PAGE),
        ("/-/work/nothing", PAGE),
    ] {
        let response = get_with(&server, path, extra);
        assert_eq!(response.status, 404, "{path} {extra:?}");
    }
    assert_eq!(
        get_with(&server, "/hello.txt", PAGE).text(),
        "hello, world\n"
    );
    assert_eq!(get_with(&server, "/site/", PAGE).text(), "<h1>site</h1>\n");
    // Without --spa a route is a 404.
    let plain = Server::start(mode, &[]);
    assert_eq!(get_with(&plain, "/app/settings", PAGE).status, 404);
});

every_mode!(spa_from_the_config_file, |mode| {
    let config = write_config("spa = true\n");
    let server = Server::start(mode, &["--config", &config]);
    assert_eq!(get_with(&server, "/route", PAGE).text(), "<h1>home</h1>\n");
});

every_mode!(a_404_html_is_the_body_of_every_404, |mode| {
    let server = Server::start(mode, &["--spa"]);
    assert_eq!(server.get("/nope").text(), "404 Not Found\n");
    // Read at each 404: added while the server runs, it is used at once.
    std::fs::write(server.root.path().join("404.html"), "<h1>lost</h1>\n").unwrap();
    for (path, extra) in [
        ("/nope", ""),
        ("/docs/nope.txt", ""),
        ("/missing.css", PAGE),
        ("/.env", ""),
        ("/../../etc/passwd", ""),
    ] {
        let response = get_with(&server, path, extra);
        assert_eq!(response.status, 404, "{path}");
        assert_eq!(response.text(), "<h1>lost</h1>\n", "{path}");
        assert_eq!(
            response.header("content-type"),
            Some("text/html; charset=utf-8")
        );
    }
    let head = ask(&server, "HEAD", "/nope", "");
    assert_eq!(head.status, 404);
    assert_eq!(head.header("content-length"), Some("14"));
    // The lab's 404s are its own.
    assert_eq!(server.get("/-/nothing").text(), "404 Not Found\n");
    // A 404.html that leads out of the root is not used.
    std::fs::remove_file(server.root.path().join("404.html")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", server.root.path().join("404.html")).unwrap();
    assert_eq!(server.get("/nope").text(), "404 Not Found\n");
});

every_mode!(cors_on_static_files_and_preflights_not_on_the_lab, |mode| {
    let server = Server::start(mode, &["--cors"]);
    let origin = "Origin: http://app.localhost:5173\r\n";
    for path in ["/hello.txt", "/docs/", "/nope", "/big.bin"] {
        let response = get_with(&server, path, origin);
        assert_eq!(
            response.header("access-control-allow-origin"),
            Some("*"),
            "{path}"
        );
    }
    let preflight = "Access-Control-Request-Method: GET\r\n\
                     Access-Control-Request-Headers: x-requested-with, authorization\r\n";
    let response = ask(
        &server,
        "OPTIONS",
        "/hello.txt",
        &format!("{origin}{preflight}"),
    );
    assert_eq!(response.status, 204);
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        response.header("access-control-allow-methods"),
        Some("GET, HEAD, OPTIONS")
    );
    assert_eq!(
        response.header("access-control-allow-headers"),
        Some("x-requested-with, authorization")
    );
    assert_eq!(response.header("access-control-max-age"), Some("600"));
    let bare = ask(
        &server,
        "OPTIONS",
        "/hello.txt",
        "Access-Control-Request-Method: GET\r\n",
    );
    assert_eq!(bare.header("access-control-allow-headers"), Some("*"));
    // The lab keeps its own Origin rules: views answer any page (they
    // change nothing; without CORS the page can't read them), workloads
    // refuse another page (CSRF).
    for (path, status) in [("/-/status", 200), ("/-/work/cpu?ms=0", 403)] {
        let response = get_with(&server, path, origin);
        assert_eq!(response.status, status, "{path}");
        assert_eq!(response.header("access-control-allow-origin"), None);
        let response = ask(&server, "OPTIONS", path, &format!("{origin}{preflight}"));
        assert_eq!(response.status, 405, "{path}");
        assert_eq!(response.header("access-control-allow-origin"), None);
    }
    // Off by default.
    let plain = Server::start(mode, &[]);
    let response = get_with(&plain, "/hello.txt", origin);
    assert_eq!(response.header("access-control-allow-origin"), None);
    let response = ask(
        &plain,
        "OPTIONS",
        "/hello.txt",
        &format!("{origin}{preflight}"),
    );
    assert_eq!(response.status, 204);
    assert_eq!(response.header("access-control-allow-methods"), None);
});

every_mode!(custom_headers_on_every_static_response, |mode| {
    let config = write_config(
        "[headers]\nCross-Origin-Opener-Policy = \"same-origin\"\nX-From = \"file\"\n",
    );
    let server = Server::start(
        mode,
        &[
            "--config",
            &config,
            "--header",
            "Cross-Origin-Embedder-Policy: require-corp",
            "--header",
            "x-from: flag",
            "--header",
            "Cache-Control: max-age=60",
        ],
    );
    let etag = server.get("/hello.txt").header("etag").unwrap().to_owned();
    for response in [
        server.get("/hello.txt"),
        server.get("/docs/"),
        server.get("/site"),
        server.get("/nope"),
        get_with(&server, "/hello.txt", &format!("If-None-Match: {etag}\r\n")),
        get_with(&server, "/big.bin", "Range: bytes=0-9\r\n"),
    ] {
        let status = response.status;
        assert_eq!(
            response.header("cross-origin-opener-policy"),
            Some("same-origin"),
            "{status}"
        );
        assert_eq!(
            response.header("cross-origin-embedder-policy"),
            Some("require-corp"),
            "{status}"
        );
        // The flag replaced the file's header, and the configured one ours.
        assert_eq!(response.header("x-from"), Some("flag"), "{status}");
        assert_eq!(
            response.header("cache-control"),
            Some("max-age=60"),
            "{status}"
        );
    }
    let lab = server.get("/-/status");
    assert_eq!(lab.header("cross-origin-opener-policy"), None);
    assert_eq!(lab.header("x-from"), None);
});

every_mode!(localhost_listens_on_both_stacks, |mode| {
    let root = TempDir::new();
    write_fixtures(root.path());
    let args: Vec<String> = [
        root.path().to_str().unwrap(),
        "--listen",
        "localhost:0",
        "--mode",
        mode,
        "--workers",
        "2",
        // One loop per worker: if any loop lacked one of the sockets, one
        // of the two stacks would go unanswered.
        "--threads",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let server = Server::start_with(root, &args);
    // The readiness line names the IPv4 address.
    assert_eq!(server.addr.ip().to_string(), "127.0.0.1");
    assert_eq!(server.get("/hello.txt").text(), "hello, world\n");
    let six = SocketAddr::from((Ipv6Addr::LOCALHOST, server.addr.port()));
    if has_ipv6_loopback() {
        for _ in 0..8 {
            let mut client = Client::connect(six);
            assert_eq!(client.get("/hello.txt").text(), "hello, world\n");
            let mut client = Client::connect(server.addr);
            assert_eq!(client.get("/hello.txt").text(), "hello, world\n");
        }
        server.wait_for_log(&format!("also listening on http://{six}"));
        // The lab answers ::1 as the loopback it is.
        assert_eq!(Client::connect(six).get("/-/status").status, 200);
    } else {
        server.wait_for_log("listening on 127.0.0.1");
    }
});

every_mode!(listings_sort_speak_json_and_go_dark, |mode| {
    let server = Server::start(mode, &[]);
    let docs = server.root.path().join("docs");
    std::fs::write(docs.join("big.txt"), vec![b'x'; 3 * 1024 * 1024]).unwrap();
    std::fs::write(docs.join("small.txt"), "s").unwrap();
    std::fs::create_dir(docs.join("zeta")).unwrap();
    std::fs::write(docs.join(".secret"), "token").unwrap();
    let html = server.get("/docs/?sort=size&order=desc").text();
    let at = |needle: &str| {
        html.find(needle)
            .unwrap_or_else(|| panic!("{needle}: {html}"))
    };
    assert!(
        at("href=\"zeta/\"") < at("href=\"big.txt\""),
        "directories first"
    );
    assert!(at("href=\"big.txt\"") < at("href=\"a%26b%20%3Cc%3E.txt\""));
    assert!(at("href=\"a%26b%20%3Cc%3E.txt\"") < at("href=\"small.txt\""));
    assert!(html.contains(">3.0 MiB</td>"), "{html}");
    assert!(html.contains(">1 B</td>"), "{html}");
    assert!(html.contains("prefers-color-scheme: dark"), "{html}");
    assert!(!html.contains("secret"), "{html}");
    let by_name = server.get("/docs/").text();
    let at = |needle: &str| by_name.find(needle).unwrap();
    assert!(at("href=\"a%26b%20%3Cc%3E.txt\"") < at("href=\"big.txt\""));
    assert!(at("href=\"big.txt\"") < at("href=\"small.txt\""));

    let response = get_with(&server, "/docs/?sort=name", "Accept: application/json\r\n");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_str(&response.text()).unwrap();
    let rows = json.as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["zeta", "a&b <c>.txt", "big.txt", "small.txt"]);
    assert_eq!(rows[0]["type"], "dir");
    assert_eq!(rows[0]["size"], serde_json::Value::Null);
    assert_eq!(rows[2]["type"], "file");
    assert_eq!(rows[2]["size"], 3 * 1024 * 1024);
    let modified = rows[2]["modified"].as_str().unwrap();
    assert!(
        modified.len() == 20 && modified.ends_with('Z') && modified.as_bytes()[10] == b'T',
        "{modified}"
    );
});

every_mode!(open_starts_browser_with_the_url, |mode| {
    // A stand-in for the browser that writes down what it was given: the
    // flag's real spawn path, with no browser anywhere near the test.
    let dir = TempDir::new();
    let site = dir.path().join("site");
    std::fs::create_dir(&site).unwrap();
    let opened = dir.path().join("opened");
    let script = dir.path().join("browser.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$1\" > {}.tmp && mv {0}.tmp {0}\n",
            opened.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_forkpool"))
        .args([
            site.to_str().unwrap(),
            "--listen",
            "localhost:0",
            "--mode",
            mode,
        ])
        .args(["--workers", "1", "--threads", "2", "--open"])
        .env("BROWSER", &script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let port = line
        .trim()
        .strip_prefix("listening on http://127.0.0.1:")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_owned();
    let written = wait_until(DEADLINE, || opened.exists());
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGQUIT) };
    let _ = child.wait();
    assert!(written, "$BROWSER was not started");
    let url = std::fs::read_to_string(&opened).unwrap();
    assert_eq!(url.trim(), format!("http://localhost:{port}/"));
    // Nothing else on stdout: the readiness line stays the only line.
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(rest, "");
});

#[test]
fn open_without_a_browser_does_nothing() {
    let root = TempDir::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_forkpool"))
        .args([
            root.path().to_str().unwrap(),
            "-l",
            "127.0.0.1:0",
            "-w",
            "1",
            "--open",
        ])
        .env("BROWSER", "")
        .env("PATH", root.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGQUIT) };
    let out = child.wait_with_output().unwrap();
    assert!(
        line.starts_with("listening on http://127.0.0.1:"),
        "{line:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--open: no browser to start"), "{stderr}");
}

#[test]
fn bad_dev_server_flags_and_keys_exit_2_naming_them() {
    for (args, culprit) in [
        (&["--header", "no colon"][..], "--header"),
        (&["--header", "Bad Name: 1"][..], "--header"),
        (&["--header", "Content-Length: 1"][..], "--header"),
        (
            &["--listen", "localhost:0", "--accept", "reuseport"][..],
            "accept",
        ),
    ] {
        let out = run_to_exit(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("invalid {culprit}: ")),
            "{args:?} should name {culprit}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?} printed a readiness line");
    }
    for (text, key) in [
        ("spa = \"yes\"\n", "spa"),
        ("cors = 1\n", "cors"),
        ("headers = \"X-A: 1\"\n", "headers"),
        ("[headers]\n\"X A\" = \"1\"\n", "headers.X A"),
        (
            "[headers]\nX-A = \"a\\r\\nSet-Cookie: x=1\"\n",
            "headers.X-A",
        ),
        ("[headers]\nX-A = [1]\n", "headers.X-A"),
    ] {
        let config = write_config(text);
        let out = run_to_exit(&["--config", &config, "--listen", "127.0.0.1:0"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text:?}: {stderr}");
        assert!(
            stderr.contains(&format!("invalid {key}: ")),
            "{text:?} should name {key}: {stderr}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn a_port_in_use_says_how_to_get_a_free_one() {
    let server = Server::start("process", &[]);
    let addr = server.addr.to_string();
    let port = server.addr.port().to_string();
    for listen in [addr, format!("localhost:{port}")] {
        let out = run_to_exit(&["--listen", &listen]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{listen}: {stderr}");
        assert!(stderr.contains("cannot listen on"), "{stderr}");
        assert!(stderr.contains(&format!(":{port}: ")), "{stderr}");
        assert!(stderr.contains("--listen 127.0.0.1:0"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}

every_mode!(a_reload_turns_live_reload_on_and_off, |mode| {
    let root = TempDir::new();
    write_fixtures(root.path());
    let config = root.path().join(".forkpool.toml");
    std::fs::write(&config, "workers = 1\n").unwrap();
    let args: Vec<String> = [
        root.path().to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--mode",
        mode,
    ]
    .map(String::from)
    .to_vec();
    let server = Server::start_with(root, &args);
    let tagged = |server: &Server| {
        get_with(server, "/", "")
            .text()
            .contains("/-/livereload.js")
    };
    let workers = server.wait_for_workers(1);
    assert!(!tagged(&server));
    assert_eq!(get_with(&server, "/-/livereload", "").status, 404);
    std::fs::write(&config, "workers = 1\nlive_reload = true\n").unwrap();
    server.signal(libc::SIGHUP);
    server.wait_for_log("live reload: watching");
    // The new worker tags pages; the old one may answer until it drains.
    assert!(wait_until(DEADLINE, || tagged(&server)), "{}", server.log());
    assert!(wait_until(DEADLINE, || server
        .workers()
        .iter()
        .all(|w| !workers.contains(w))));
    // Its stream hears a change made now.
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    std::io::Write::write_all(
        &mut stream,
        b"GET /-/livereload HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200 "), "{line}");
    while line != "\r\n" {
        line.clear();
        reader.read_line(&mut line).unwrap();
    }
    std::fs::write(server.root.path().join("hello.txt"), "changed\n").unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "event: reload\n");
    // And off again: no tag, no stream, and the open one ends.
    std::fs::write(&config, "workers = 1\n").unwrap();
    server.signal(libc::SIGHUP);
    assert!(
        wait_until(DEADLINE, || !tagged(&server)),
        "{}",
        server.log()
    );
    assert!(wait_until(DEADLINE, || get_with(
        &server,
        "/-/livereload",
        ""
    )
    .status
        == 404));
    let mut rest = String::new();
    let ended = std::io::Read::read_to_string(&mut reader, &mut rest);
    assert!(
        ended.is_ok(),
        "the stream of a drained worker ends: {ended:?}"
    );
});
