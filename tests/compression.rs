//! Compression end to end, in every architecture: precompressed siblings
//! picked by `Accept-Encoding` (q-values, `q=0`), compression on the fly
//! that decodes to the file's bytes, a tag and a 304 per encoding, `Vary`,
//! and the cases that stay the identity: small files, binary types,
//! ranges, no `Accept-Encoding`, and `compress = false` (which keeps the
//! siblings).

mod common;

use std::io::{Read, Write};

use common::*;

/// A script of about 10 KiB: compressible, over the 1 KiB floor.
fn script() -> Vec<u8> {
    let mut text = Vec::new();
    for i in 0..200 {
        writeln!(text, "export function f{i}(x) {{ return x * {i} + 1; }}").unwrap();
    }
    text
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut &data[..], &mut out, &params).unwrap();
    out
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(data, 19).unwrap()
}

/// The body decoded as its `Content-Encoding` says.
fn decoded(response: &Response) -> Vec<u8> {
    let body = &response.body[..];
    let mut out = Vec::new();
    match response.header("content-encoding") {
        None => out.extend_from_slice(body),
        Some("gzip") => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .unwrap();
        }
        Some("br") => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        Some("zstd") => out = zstd::stream::decode_all(body).unwrap(),
        Some(other) => panic!("unexpected coding {other}"),
    }
    out
}

/// `METHOD path` with `Accept-Encoding: ae` (none when empty) and `extra`
/// header lines, on a fresh connection.
fn fetch(server: &Server, method: &str, path: &str, ae: &str, extra: &str) -> Response {
    let ae = if ae.is_empty() {
        String::new()
    } else {
        format!("Accept-Encoding: {ae}\r\n")
    };
    server.connect().request(&format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{ae}{extra}\r\n"
    ))
}

fn get(server: &Server, path: &str, ae: &str) -> Response {
    fetch(server, "GET", path, ae, "")
}

/// `app.js` with real siblings in each coding, at their best levels (so
/// they differ from what compressing on the fly would give).
fn write_app_with_siblings(server: &Server) {
    let root = server.root.path();
    let js = script();
    std::fs::write(root.join("app.js"), &js).unwrap();
    std::fs::write(root.join("app.js.br"), brotli(&js)).unwrap();
    std::fs::write(root.join("app.js.zst"), zstd(&js)).unwrap();
    std::fs::write(root.join("app.js.gz"), gzip(&js)).unwrap();
}

every_mode!(siblings_are_chosen_by_accept_encoding, |mode| {
    let server = Server::start(mode, &[]);
    write_app_with_siblings(&server);
    let js = script();
    let root = server.root.path();
    let mut etags = Vec::new();
    for (ae, coding, sibling) in [
        ("gzip, deflate, br, zstd", "br", "app.js.br"),
        ("br", "br", "app.js.br"),
        ("zstd", "zstd", "app.js.zst"),
        ("gzip", "gzip", "app.js.gz"),
        ("gzip;q=1, br;q=0.5, zstd;q=0.8", "gzip", "app.js.gz"),
        ("zstd, gzip", "zstd", "app.js.zst"),
    ] {
        let response = get(&server, "/app.js", ae);
        assert_eq!(response.status, 200, "{ae}");
        assert_eq!(response.header("content-encoding"), Some(coding), "{ae}");
        assert_eq!(response.header("vary"), Some("Accept-Encoding"), "{ae}");
        assert_eq!(
            response.header("content-type"),
            Some("text/javascript; charset=utf-8"),
            "{ae}"
        );
        // The sibling's bytes exactly, which decode to the file.
        assert_eq!(response.body, std::fs::read(root.join(sibling)).unwrap());
        assert_eq!(decoded(&response), js, "{ae}");
        let etag = response.header("etag").unwrap().to_owned();
        assert!(etag.ends_with(&format!("-{coding}\"")), "{etag}");
        etags.push(etag);
    }
    let plain = get(&server, "/app.js", "");
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.body, js);
    etags.push(plain.header("etag").unwrap().to_owned());
    etags.sort();
    etags.dedup();
    assert_eq!(etags.len(), 4, "one tag per encoding: {etags:?}");
    // Any type may have siblings (a game's .wasm.br), though only text
    // is compressed on the fly.
    let wasm = vec![0u8; 4096];
    std::fs::write(root.join("game.wasm"), &wasm).unwrap();
    std::fs::write(root.join("game.wasm.br"), brotli(&wasm)).unwrap();
    let game = get(&server, "/game.wasm", "br, gzip");
    assert_eq!(game.header("content-encoding"), Some("br"));
    assert_eq!(game.header("content-type"), Some("application/wasm"));
    assert_eq!(decoded(&game), wasm);
    let game = get(&server, "/game.wasm", "gzip");
    assert_eq!(game.header("content-encoding"), None);
    assert_eq!(game.body, wasm);
});

every_mode!(each_encoding_has_its_own_304, |mode| {
    let server = Server::start(mode, &[]);
    write_app_with_siblings(&server);
    std::fs::write(server.root.path().join("page.html"), script()).unwrap();
    for path in ["/app.js", "/page.html"] {
        let identity = get(&server, path, "").header("etag").unwrap().to_owned();
        for ae in ["br", "zstd", "gzip"] {
            let first = get(&server, path, ae);
            assert_eq!(first.header("content-encoding"), Some(ae), "{path} {ae}");
            let etag = first.header("etag").unwrap().to_owned();
            let again = |tag: &str| {
                fetch(
                    &server,
                    "GET",
                    path,
                    ae,
                    &format!("If-None-Match: {tag}\r\n"),
                )
            };
            let not_modified = again(&etag);
            assert_eq!(not_modified.status, 304, "{path} {ae}");
            assert_eq!(not_modified.header("etag"), Some(etag.as_str()));
            assert_eq!(not_modified.header("vary"), Some("Accept-Encoding"));
            assert!(not_modified.body.is_empty());
            // The identity's tag doesn't validate an encoded copy...
            let other = again(&identity);
            assert_eq!(other.status, 200, "{path} {ae}");
            assert_eq!(other.header("content-encoding"), Some(ae));
            // ...nor an encoded tag the identity.
            let plain = fetch(
                &server,
                "GET",
                path,
                "",
                &format!("If-None-Match: {etag}\r\n"),
            );
            assert_eq!(plain.status, 200, "{path} {ae}");
        }
    }
});

every_mode!(q_zero_refuses_a_coding, |mode| {
    let server = Server::start(mode, &[]);
    write_app_with_siblings(&server);
    for (ae, coding) in [
        ("br;q=0, zstd;q=0, gzip", Some("gzip")),
        ("gzip;q=0, *", Some("br")),
        ("*;q=0, zstd", Some("zstd")),
        ("*;q=0", None),
        ("br;q=0", None),
        ("identity", None),
        ("deflate", None),
        ("br;q=0.5, identity;q=0.9", None),
    ] {
        let response = get(&server, "/app.js", ae);
        assert_eq!(response.status, 200, "{ae}");
        assert_eq!(response.header("content-encoding"), coding, "{ae}");
        assert_eq!(decoded(&response), script(), "{ae}");
    }
});

every_mode!(compression_on_the_fly_decodes_to_the_original, |mode| {
    let server = Server::start(mode, &[]);
    let root = server.root.path();
    let js = script();
    std::fs::write(root.join("app.js"), &js).unwrap();
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\">{}</svg>",
        "<rect width=\"1\" height=\"1\"/>".repeat(100)
    );
    std::fs::write(root.join("logo.svg"), &svg).unwrap();
    std::fs::write(root.join("data.json"), format!("[{}0]", "1,".repeat(2000))).unwrap();
    for (path, content_type) in [
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/logo.svg", "image/svg+xml"),
        ("/data.json", "application/json; charset=utf-8"),
    ] {
        let original = std::fs::read(root.join(&path[1..])).unwrap();
        for ae in ["gzip", "br", "zstd"] {
            let response = get(&server, path, ae);
            assert_eq!(response.status, 200);
            assert_eq!(response.header("content-encoding"), Some(ae), "{path}");
            assert_eq!(response.header("vary"), Some("Accept-Encoding"));
            assert_eq!(response.header("content-type"), Some(content_type));
            assert_eq!(
                response.header("content-length"),
                Some(response.body.len().to_string().as_str())
            );
            assert!(response.body.len() < original.len() / 2, "{path} {ae}");
            assert_eq!(decoded(&response), original, "{path} {ae}");
        }
    }
    // A browser's list gets zstd: as small as brotli at a fast level, for
    // a fraction of the CPU.
    let browser = get(&server, "/app.js", "gzip, deflate, br, zstd");
    assert_eq!(browser.header("content-encoding"), Some("zstd"));
    // Edited on disk, compressed afresh.
    let edited = script().repeat(2);
    std::fs::write(root.join("app.js"), &edited).unwrap();
    assert_eq!(decoded(&get(&server, "/app.js", "gzip")), edited);
});

every_mode!(small_files_and_binary_types_are_untouched, |mode| {
    let server = Server::start(mode, &[]);
    let root = server.root.path();
    // 1 KiB exactly (bench.sh's file) is not over the floor.
    std::fs::write(root.join("1k.txt"), vec![b'a'; 1024]).unwrap();
    std::fs::write(root.join("pixels.png"), vec![0u8; 8192]).unwrap();
    // Siblings of a file of 1 KiB or less are not even looked for.
    std::fs::write(root.join("hello.txt.gz"), gzip(b"hello, world\n")).unwrap();
    let all = "gzip, deflate, br, zstd";
    for path in ["/hello.txt", "/1k.txt", "/pixels.png", "/big.bin"] {
        let plain = get(&server, path, "");
        let response = get(&server, path, all);
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(response.header("content-encoding"), None, "{path}");
        assert_eq!(response.header("vary"), None, "{path}");
        assert_eq!(response.header("etag"), plain.header("etag"), "{path}");
        assert_eq!(response.body, plain.body, "{path}");
    }
});

every_mode!(ranges_get_the_identity, |mode| {
    let server = Server::start(mode, &[]);
    write_app_with_siblings(&server);
    std::fs::write(server.root.path().join("page.html"), script()).unwrap();
    let js = script();
    for path in ["/app.js", "/page.html"] {
        let response = fetch(
            &server,
            "GET",
            path,
            "gzip, br, zstd",
            "Range: bytes=10-19\r\n",
        );
        assert_eq!(response.status, 206, "{path}");
        assert_eq!(response.header("content-encoding"), None, "{path}");
        assert_eq!(
            response.header("content-range"),
            Some(format!("bytes 10-19/{}", js.len()).as_str())
        );
        assert_eq!(response.body, &js[10..20], "{path}");
        // The whole file compressed says it can't be had in parts.
        let whole = get(&server, path, "gzip");
        assert_eq!(whole.header("content-encoding"), Some("gzip"));
        assert_eq!(whole.header("accept-ranges"), None);
    }
});

every_mode!(head_matches_get, |mode| {
    let server = Server::start(mode, &[]);
    write_app_with_siblings(&server);
    std::fs::write(server.root.path().join("page.html"), script()).unwrap();
    for path in ["/app.js", "/page.html"] {
        for ae in ["br", "gzip", "zstd", ""] {
            let mut get = fetch(&server, "GET", path, ae, "");
            let mut head = fetch(&server, "HEAD", path, ae, "");
            assert_eq!(head.status, 200);
            assert!(head.body.is_empty());
            get.headers.remove("date");
            head.headers.remove("date");
            assert_eq!(head.headers, get.headers, "{path} {ae:?}");
            assert_eq!(
                get.header("content-length"),
                Some(get.body.len().to_string().as_str())
            );
        }
    }
});

every_mode!(without_accept_encoding_the_identity_says_vary, |mode| {
    let server = Server::start(mode, &[]);
    std::fs::write(server.root.path().join("app.js"), script()).unwrap();
    let response = get(&server, "/app.js", "");
    assert_eq!(response.header("content-encoding"), None);
    assert_eq!(response.header("accept-ranges"), Some("bytes"));
    // Another client would get it compressed: caches must keep them apart.
    assert_eq!(response.header("vary"), Some("Accept-Encoding"));
    assert_eq!(response.body, script());
    let etag = response.header("etag").unwrap();
    let not_modified = fetch(
        &server,
        "GET",
        "/app.js",
        "",
        &format!("If-None-Match: {etag}\r\n"),
    );
    assert_eq!(not_modified.status, 304);
    assert_eq!(not_modified.header("vary"), Some("Accept-Encoding"));
});

every_mode!(compress_false_keeps_only_the_siblings, |mode| {
    let config = write_config("compress = false\n");
    let server = Server::start(mode, &["--config", &config]);
    write_app_with_siblings(&server);
    std::fs::write(server.root.path().join("page.html"), script()).unwrap();
    let page = get(&server, "/page.html", "gzip, br, zstd");
    assert_eq!(page.header("content-encoding"), None);
    assert_eq!(page.header("vary"), None);
    assert_eq!(page.body, script());
    // Precompressed files cost no CPU: still served.
    let app = get(&server, "/app.js", "gzip, br, zstd");
    assert_eq!(app.header("content-encoding"), Some("br"));
    assert_eq!(decoded(&app), script());
});
