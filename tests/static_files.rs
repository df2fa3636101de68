//! The dev server, end to end in every architecture: index files, listings,
//! redirects, MIME types, validators, ranges, no way out of the root, and
//! no dotfiles unless asked.

mod common;

use common::*;

every_mode!(files_have_type_validators_and_no_cache, |mode| {
    let server = Server::start(mode, &[]);
    let response = server.get("/hello.txt");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(response.header("cache-control"), Some("no-cache"));
    assert_eq!(response.header("accept-ranges"), Some("bytes"));
    assert!(response.header("etag").is_some());
    assert!(
        response
            .header("last-modified")
            .is_some_and(|d| d.ends_with(" GMT"))
    );
    assert_eq!(
        server.get("/index.html").header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        server.get("/big.bin").header("content-type"),
        Some("application/octet-stream")
    );
});

every_mode!(directories_index_list_and_redirect, |mode| {
    let server = Server::start(mode, &[]);
    assert_eq!(server.get("/").text(), "<h1>home</h1>\n");
    assert_eq!(server.get("/site/").text(), "<h1>site</h1>\n");
    let redirect = server.get("/site?x=1");
    assert_eq!(redirect.status, 301);
    assert_eq!(redirect.header("location"), Some("/site/?x=1"));
    let listing = server.get("/docs/");
    assert_eq!(listing.status, 200);
    let html = listing.text();
    assert!(html.contains("a&amp;b &lt;c&gt;.txt"), "{html}");
    assert!(!html.contains("<c>"), "unescaped name in listing");
    // The listing's link leads to the file.
    assert_eq!(server.get("/docs/a%26b%20%3Cc%3E.txt").text(), "escaped\n");
});

every_mode!(redirects_never_leave_the_host, |mode| {
    let server = Server::start(mode, &[]);
    std::fs::create_dir(server.root.path().join("evil.com")).unwrap();
    let response = server.get("//evil.com");
    assert_eq!(response.status, 301);
    let location = response.header("location").unwrap();
    assert!(
        location.starts_with('/') && !location.starts_with("//"),
        "{location}"
    );
});

every_mode!(nothing_outside_the_root_is_served, |mode| {
    let server = Server::start(mode, &[]);
    for path in [
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/docs/%2e%2e%2f%2e%2e%2fetc/passwd",
        "/..%2f..%2fetc/passwd",
        "/..%5c..%5cetc/passwd",
        "/docs\\..\\..\\etc\\passwd",
        "/etc-link/passwd",
        "/etc-link/",
    ] {
        let response = server.get(path);
        assert!(
            response.status == 404 || response.status == 400,
            "{path} gave {}: {}",
            response.status,
            response.text()
        );
        assert!(
            !response.text().contains("root:"),
            "{path} leaked /etc/passwd"
        );
    }
    assert_eq!(server.get("/hello%00.txt").status, 400);
    assert_eq!(server.get("/inside-link.txt").text(), "hello, world\n");
});

every_mode!(conditional_requests_give_304, |mode| {
    let server = Server::start(mode, &[]);
    let first = server.get("/hello.txt");
    let etag = first.header("etag").unwrap().to_string();
    let modified = first.header("last-modified").unwrap().to_string();
    let mut client = server.connect();
    let inm = client.request(&format!(
        "GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nIf-None-Match: {etag}\r\n\r\n"
    ));
    assert_eq!(inm.status, 304);
    assert!(inm.body.is_empty());
    assert_eq!(inm.header("etag"), Some(etag.as_str()));
    let ims = client.request(&format!(
        "GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nIf-Modified-Since: {modified}\r\n\r\n"
    ));
    assert_eq!(ims.status, 304);
    // If-None-Match takes precedence over If-Modified-Since.
    let both = client.request(&format!(
        "GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nIf-None-Match: \"other\"\r\nIf-Modified-Since: {modified}\r\n\r\n"
    ));
    assert_eq!(both.status, 200);
    assert_eq!(both.body, b"hello, world\n");
});

every_mode!(ranges_give_206_and_416, |mode| {
    let server = Server::start(mode, &[]);
    let mut client = server.connect();
    let part = client
        .request("GET /big.bin HTTP/1.1\r\nHost: localhost\r\nRange: bytes=1000-1999\r\n\r\n");
    assert_eq!(part.status, 206);
    assert_eq!(
        part.header("content-range"),
        Some("bytes 1000-1999/2097152")
    );
    assert!(part.body == big_bin()[1000..2000]);
    let tail =
        client.request("GET /big.bin HTTP/1.1\r\nHost: localhost\r\nRange: bytes=-100\r\n\r\n");
    assert_eq!(tail.status, 206);
    assert!(tail.body == big_bin()[2097152 - 100..]);
    let large =
        client.request("GET /big.bin HTTP/1.1\r\nHost: localhost\r\nRange: bytes=100000-\r\n\r\n");
    assert_eq!(large.status, 206);
    assert!(large.body == big_bin()[100000..], "sendfile range differs");
    let bad = client
        .request("GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nRange: bytes=500-600\r\n\r\n");
    assert_eq!(bad.status, 416);
    assert_eq!(bad.header("content-range"), Some("bytes */13"));
    assert_eq!(
        client.get("/hello.txt").status,
        200,
        "416 keeps the connection usable"
    );
});

every_mode!(files_changed_on_disk_are_served_fresh, |mode| {
    let server = Server::start(mode, &[]);
    assert_eq!(server.get("/hello.txt").text(), "hello, world\n");
    std::fs::write(server.root.path().join("hello.txt"), "changed\n").unwrap();
    assert_eq!(server.get("/hello.txt").text(), "changed\n");
});

/// Secrets that live in dotfiles, and a `.well-known` file that must stay
/// reachable (ACME challenges, security.txt).
fn write_dotfiles(root: &std::path::Path) {
    std::fs::write(root.join(".env"), "SECRET=1\n").unwrap();
    std::fs::create_dir(root.join(".git")).unwrap();
    std::fs::write(
        root.join(".git/config"),
        "url = https://user:token@example.com/x\n",
    )
    .unwrap();
    std::fs::write(root.join("docs/.htpasswd"), "user:hash\n").unwrap();
    std::fs::create_dir(root.join(".well-known")).unwrap();
    std::fs::write(root.join(".well-known/security.txt"), "Contact: x\n").unwrap();
}

every_mode!(dotfiles_are_404_and_not_listed, |mode| {
    let server = Server::start(mode, &[]);
    write_dotfiles(server.root.path());
    for path in [
        "/.env",
        "/%2eenv",
        "/.git/config",
        "/.git/",
        "/.git",
        "/docs/.htpasswd",
        "/docs/%2Ehtpasswd",
    ] {
        let response = server.get(path);
        assert_eq!(response.status, 404, "{path}");
        assert!(!response.text().contains("SECRET"), "{path}");
    }
    let listing = server.get("/docs/").text();
    assert!(!listing.contains("htpasswd"), "{listing}");
    // The root has an index.html; a listing of it would hide them too.
    std::fs::remove_file(server.root.path().join("index.html")).unwrap();
    let listing = server.get("/").text();
    assert!(
        !listing.contains(".env") && !listing.contains(".git"),
        "{listing}"
    );
    assert!(listing.contains("href=\".well-known/\""), "{listing}");
    let well_known = server.get("/.well-known/security.txt");
    assert_eq!(well_known.status, 200);
    assert_eq!(well_known.text(), "Contact: x\n");
});

every_mode!(hidden_serves_dotfiles, |mode| {
    let server = Server::start(mode, &["--hidden"]);
    write_dotfiles(server.root.path());
    assert_eq!(server.get("/.env").text(), "SECRET=1\n");
    assert_eq!(server.get("/docs/.htpasswd").status, 200);
    assert!(server.get("/docs/").text().contains(".htpasswd"));
    let config = write_config("show_hidden = true\n");
    let server = Server::start(mode, &["--config", &config]);
    write_dotfiles(server.root.path());
    assert_eq!(server.get("/.git/config").status, 200);
});
