//! Test fixtures shared by the static-file unit tests: a throwaway root
//! with a known set of files, links and directories, and small helpers to
//! send a request through [`StaticFiles::serve`] and read the answer.
//!
//! Test-only; nothing here is compiled into the server.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::StaticFiles;
use crate::http::request::parse_head;
use crate::http::{Body, Request, Response};

pub(crate) const HELLO: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz\n";

/// A fresh root per test, removed on drop.
pub(crate) struct TempRoot {
    pub(crate) path: PathBuf,
}

impl TempRoot {
    pub(crate) fn new() -> TempRoot {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("forkpool-static-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        let root = TempRoot { path };
        root.write("hello.txt", HELLO);
        root.write("empty.txt", b"");
        root.write("style.css", b"body{}");
        root.write("data.json", b"{}");
        root.write("blob.bin", b"\0\x01");
        root.write("a&b <c>.txt", b"escaped");
        root.write(".hidden", b"dot");
        std::fs::create_dir(root.path.join("sub")).unwrap();
        root.write("sub/inner.txt", b"inner");
        std::fs::create_dir(root.path.join("site")).unwrap();
        root.write("site/index.html", b"<p>index</p>");
        std::fs::create_dir(root.path.join("evil.com")).unwrap();
        std::fs::create_dir(root.path.join("evil.com/dir")).unwrap();
        symlink("hello.txt", root.path.join("link-inside")).unwrap();
        symlink("sub", root.path.join("link-dir")).unwrap();
        symlink("/etc", root.path.join("link-outside")).unwrap();
        symlink("../../../../../../../etc/passwd", root.path.join("link-up")).unwrap();
        root
    }

    fn write(&self, name: &str, content: &[u8]) {
        std::fs::write(self.path.join(name), content).unwrap();
    }

    /// Both resolution strategies (openat2, and the ENOSYS fallback),
    /// and both ways the cache checks a hit (watched, by status).
    pub(crate) fn servers(&self) -> [StaticFiles; 3] {
        let fallback = StaticFiles::open(&self.path).unwrap();
        fallback.root.force_fallback();
        let unwatched = StaticFiles::open(&self.path).unwrap();
        unwatched.cache.watch.turn_off();
        [StaticFiles::open(&self.path).unwrap(), fallback, unwatched]
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

pub(crate) fn request(method: &str, target: &str, extra: &str) -> Request {
    let mut req = Request::default();
    let head = format!("{method} {target} HTTP/1.1\r\nHost: h\r\n{extra}\r\n");
    parse_head(head.as_bytes(), 16384, &mut req).unwrap();
    req
}

pub(crate) fn get(sf: &StaticFiles, target: &str) -> Response {
    sf.serve(&request("GET", target, ""))
}

pub(crate) fn get_with(sf: &StaticFiles, target: &str, extra: &str) -> Response {
    sf.serve(&request("GET", target, extra))
}

pub(crate) fn header<'a>(resp: &'a Response, name: &str) -> Option<&'a str> {
    resp.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_ref())
}

/// The bytes a response body would send.
pub(crate) fn body_bytes(resp: &mut Response) -> Vec<u8> {
    match &mut resp.body {
        Body::Empty | Body::Events { .. } => Vec::new(),
        Body::Static(b) => b.to_vec(),
        Body::Bytes(b) => b.clone(),
        Body::Shared(b) => b.to_vec(),
        Body::File { file, offset, len } => {
            let mut out = vec![0; *len as usize];
            file.seek(SeekFrom::Start(*offset)).unwrap();
            file.read_exact(&mut out).unwrap();
            out
        }
    }
}

pub(crate) fn body_text(resp: &mut Response) -> String {
    String::from_utf8(body_bytes(resp)).unwrap()
}
