//! Static files under one root directory, served for GET and HEAD.
//!
//! What it does: the request flow. A request path is decoded and vetted
//! (`path`; dotfiles and dot-directories, which hold secrets such as
//! `.env` and `.git/config`, are 404 and left out of listings unless
//! `show_hidden`, except `/.well-known/`), then opened beneath the root (`confined`: `openat2` with
//! `RESOLVE_BENEATH`, or a canonicalising fallback), and what was opened
//! decides the answer. Regular files get validators and conditional 304s
//! (`validators`) and single byte ranges (`range`, 206/416), and are
//! handed to the connection as [`Body::File`]: nothing is read into memory
//! here, but for a compressible file of at most 8 MiB compressed on the
//! fly for a client that accepts it (`compress`, which also picks
//! precompressed `.br`/`.zst`/`.gz` siblings). Directories get a
//! trailing-slash redirect, their `index.html`, or a listing (`listing`:
//! HTML, or JSON for `Accept: application/json`).
//!
//! The dev server's part of the flow: a path that matches no file gets the
//! root's `index.html` instead (`spa`, for single-page apps) when it has no
//! extension and the client accepts HTML; every other 404 has the root's
//! `404.html` as its body when there is one (opened beneath the root like
//! any file). With live reload on, every page (HTML) gets the script tag
//! that reloads it (`live_reload`, which also serves the script and the
//! event stream for the router). Every response then gets the CORS and configured headers
//! (`headers`). None of it costs a file that is found anything but a
//! branch or two.
//!
//! A small file's plain answer (GET or HEAD, no range, no coding to
//! negotiate, no tag to add) comes from the worker's cache (`cache`) while
//! the path still names the very same, unchanged file (the worker's inotify
//! watch has seen no change, `cache_watch`, or else one `fstatat` finds
//! the same identity); otherwise the flow above runs, and may fill the
//! cache.
//!
//! What it doesn't: multipart ranges (a multi-range request gets the whole
//! file), content negotiation beyond the coding and the above, writes, or
//! trust any cached state it hasn't revalidated (a dev server must always
//! show the file as it is now).
//! Methods other than GET, HEAD and OPTIONS never get here: the router
//! answers them.

mod cache;
mod cache_watch;
mod compress;
mod confined;
mod headers;
mod listing;
pub(crate) mod live_reload;
mod path;
mod range;
#[cfg(test)]
pub(crate) mod test_support;
mod validators;

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::AtomicU64;

use nix::errno::Errno;
use nix::sys::stat::{self, FileStat, SFlag};

use crate::http::request::weighted_list;
use crate::http::{Body, Request, Response};
use cache::FileCache;
use confined::ConfinedRoot;
pub(crate) use headers::{ALLOWED_METHODS, ExtraHeaders};
use listing::{Sort, listing_json, read_entries, render_listing, sort_entries};
use path::{child, decode_path, file_name, is_hidden};
use range::{ByteRange, parse_range};
use validators::{Validators, if_range_allows, not_modified};

/// Serves GET and HEAD for files and directories below one root.
pub(crate) struct StaticFiles {
    /// Every lookup is resolved beneath this root.
    root: ConfinedRoot,
    /// Serve and list dotfiles and dot-directories.
    show_hidden: bool,
    /// Compress compressible files on the fly (see `compress`).
    compress: bool,
    /// Serve `index.html` for page requests that match no file.
    spa: bool,
    /// CORS and the configured headers, on every response.
    extra: ExtraHeaders,
    /// Live reload's change feed word (see `live_reload`), when it is on.
    live_reload: Option<&'static AtomicU64>,
    /// Small files' plain answers, revalidated on each hit (see `cache`).
    cache: FileCache,
}

impl StaticFiles {
    /// Opens the root directory once; every lookup is resolved beneath it.
    /// Dotfiles are hidden.
    pub(crate) fn open(root: &Path) -> io::Result<StaticFiles> {
        Ok(StaticFiles {
            root: ConfinedRoot::open(root)?,
            show_hidden: false,
            compress: true,
            spa: false,
            extra: ExtraHeaders::default(),
            live_reload: None,
            cache: FileCache::default(),
        })
    }

    /// Live reload: pages get the script tag, made at the generation in
    /// `changes` (the change feed's word), when it is `Some` (builder style).
    pub(crate) fn live_reload(mut self, changes: Option<&'static AtomicU64>) -> StaticFiles {
        self.live_reload = changes;
        self
    }

    /// The single-page-app fallback (builder style).
    pub(crate) fn spa(mut self, on: bool) -> StaticFiles {
        self.spa = on;
        self
    }

    /// CORS and configured headers for every response (builder style).
    pub(crate) fn extra_headers(mut self, extra: ExtraHeaders) -> StaticFiles {
        self.extra = extra;
        self
    }

    /// Serves (and lists) dotfiles and dot-directories too when `show` is
    /// true (builder style).
    pub(crate) fn show_hidden(mut self, show: bool) -> StaticFiles {
        self.show_hidden = show;
        self
    }

    /// Answers a GET or HEAD request (the router handles other methods).
    ///
    /// HEAD gets exactly the GET response; the connection drops the body,
    /// so the `Content-Length` stays right.
    pub(crate) fn serve(&self, req: &Request) -> Response {
        self.extra.apply(self.find(req))
    }

    /// OPTIONS for a path outside `/-/`: the answer to a CORS preflight
    /// when CORS is on, else 204 with `Allow`.
    pub(crate) fn options(&self, req: &Request) -> Response {
        self.extra.preflight(req).unwrap_or_else(|| {
            self.extra
                .apply(Response::new(204, Body::Empty).header("Allow", ALLOWED_METHODS))
        })
    }

    /// The request flow; see the module docs.
    fn find(&self, req: &Request) -> Response {
        // `*` (OPTIONS) is the only non-origin-form target that reaches us.
        if !req.target.starts_with('/') {
            return Response::error(400);
        }
        let path = req.path();
        let rel = match decode_path(path) {
            Ok(rel) => rel,
            Err(404) => return self.not_found(),
            Err(status) => return Response::error(status),
        };
        if !self.show_hidden && is_hidden(&rel) {
            return self.not_found();
        }
        // Keep a trailing slash for the kernel: `file.txt/` is then ENOTDIR
        // (404), as it would be on any other server.
        let open_path: std::borrow::Cow<[u8]> = if path.ends_with('/') {
            child(&rel, b"").into()
        } else {
            rel.as_slice().into()
        };
        let plain = self.cacheable(req, path, &rel);
        if plain && let Some(resp) = self.serve_cached(req, &rel) {
            return resp;
        }
        let fd = match self.root.open_beneath(&open_path) {
            Ok(fd) => fd,
            // No such file: perhaps a route of a single-page app.
            Err(Errno::ENOENT | Errno::ENOTDIR) => return self.missing(req, &rel),
            Err(err) => return self.open_error(err, &rel),
        };
        let st = match stat::fstat(&fd) {
            Ok(st) => st,
            Err(err) => {
                log::warn!("static: fstat {:?}: {err}", String::from_utf8_lossy(&rel));
                return Response::error(500);
            }
        };
        match kind(&st) {
            Kind::File if plain => self.serve_and_cache(req, &rel, File::from(fd), &st),
            Kind::File => self.serve_negotiated(req, &rel, File::from(fd), &st),
            Kind::Dir if !path.ends_with('/') => redirect_to_dir(req),
            Kind::Dir => self.serve_dir(req, &rel, fd),
            // FIFOs, sockets and devices are not content.
            Kind::Other => Response::error(403),
        }
    }

    /// Nothing at the path: the app's `index.html` for a page request in
    /// SPA mode, else the 404.
    fn missing(&self, req: &Request, rel: &[u8]) -> Response {
        if self.spa
            && wants_a_page(req, rel)
            && let Some((file, st)) = self.open_file(b"index.html")
        {
            // Same path, another answer for another Accept.
            return self
                .serve_negotiated(req, b"index.html", file, &st)
                .header("Vary", "Accept");
        }
        self.not_found()
    }

    /// A 404, with the root's `404.html` as its body if it has one (a
    /// regular file, beneath the root like any other; with live reload's
    /// tag when that is on), else the plain one.
    fn not_found(&self) -> Response {
        if let Some((file, st)) = self.open_file(b"404.html") {
            let body = match self.page_with_tag(&file, &st) {
                Some(page) => Body::Bytes(page),
                None => Body::File {
                    file,
                    offset: 0,
                    len: file_size(&st),
                },
            };
            return Response::new(404, body)
                .header("Content-Type", "text/html; charset=utf-8")
                .header("Cache-Control", "no-cache")
                .header("X-Content-Type-Options", "nosniff");
        }
        Response::error(404)
    }

    /// The regular file at `rel` beneath the root, if there is one (the
    /// index, the SPA's page, `404.html`: anything else is not theirs).
    fn open_file(&self, rel: &[u8]) -> Option<(File, FileStat)> {
        let fd = self.root.open_beneath(rel).ok()?;
        let st = stat::fstat(&fd).ok()?;
        (kind(&st) == Kind::File).then(|| (File::from(fd), st))
    }

    /// The answer when a path can't be opened. Only the unexpected is
    /// logged: a 404 is a client's business, not the operator's.
    fn open_error(&self, err: Errno, rel: &[u8]) -> Response {
        match err {
            // EXDEV: the walk would leave the root; ELOOP: too many
            // symlinks or a magic link. Both look like "no such file" from
            // outside (but are no SPA route).
            // (ENOENT and ENOTDIR never get here: `serve` tries them as an
            // SPA route first.)
            Errno::EXDEV | Errno::ELOOP | Errno::ENAMETOOLONG => self.not_found(),
            // ENXIO: a socket file (or a device without a driver).
            Errno::EACCES | Errno::EPERM | Errno::ENXIO => Response::error(403),
            other => {
                log::warn!(
                    "static: opening {:?}: {other}",
                    String::from_utf8_lossy(rel)
                );
                Response::error(500)
            }
        }
    }

    /// A directory requested with its trailing slash: `index.html` if it is
    /// a regular file, else a listing.
    fn serve_dir(&self, req: &Request, rel: &[u8], dir_fd: OwnedFd) -> Response {
        // Opened beneath the ROOT, not the directory fd, so the index can't
        // be a symlink out either.
        let index = child(rel, b"index.html");
        if let Some((file, st)) = self.open_file(&index) {
            return self.serve_negotiated(req, &index, file, &st);
        }
        let mut entries = match read_entries(dir_fd) {
            Ok(entries) => entries,
            Err(err) => {
                log::warn!("static: listing {:?}: {err}", String::from_utf8_lossy(rel));
                return Response::error(500);
            }
        };
        if !self.show_hidden {
            entries.retain(|entry| !is_hidden(&child(rel, &entry.name)));
        }
        let sort = Sort::from_query(req.query());
        sort_entries(&mut entries, sort);
        let (body, content_type) = if accepts(req, "application/json") {
            (listing_json(&entries).into_bytes(), "application/json")
        } else {
            let mut page = render_listing(rel, &entries, sort).into_bytes();
            self.tag_page(&mut page);
            (page, "text/html; charset=utf-8")
        };
        Response::new(200, Body::Bytes(body))
            .header("Content-Type", content_type)
            .header("Cache-Control", "no-cache")
            .header("X-Content-Type-Options", "nosniff")
            .header("Vary", "Accept")
    }
}

/// Whether `Accept` names `media_type` with a qvalue above 0 (ignoring
/// case and other parameters; a wildcard doesn't count: every client sends
/// `*/*`).
fn accepts(req: &Request, media_type: &str) -> bool {
    weighted_list(&req.accept)
        .any(|(range, q)| q.is_some_and(|q| q > 0) && range.eq_ignore_ascii_case(media_type))
}

/// A request the SPA fallback answers: GET or HEAD, from a client that
/// accepts HTML (a browser navigating, not `fetch` or an `<img>`), for a
/// path (`rel`, decoded) whose last segment has no extension
/// (`/app/settings`, not `/app.js`, which must stay a 404 so a missing
/// asset shows).
fn wants_a_page(req: &Request, rel: &[u8]) -> bool {
    // (Only GET and HEAD reach static files: the router answers the rest.)
    !file_name(rel).contains(&b'.') && accepts(req, "text/html")
}

/// The 301 that adds the trailing slash, so relative links in the page work.
fn redirect_to_dir(req: &Request) -> Response {
    let path = req.path();
    let mut location = String::with_capacity(path.len() + 2);
    // One leading slash only: `//evil.com/dir/` would be a protocol-relative
    // redirect to another host.
    location.push('/');
    location.push_str(path.trim_start_matches('/'));
    location.push('/');
    if let Some(query) = req.query() {
        location.push('?');
        location.push_str(query);
    }
    // no-cache: browsers keep 301s forever, and on a dev server the
    // directory may become a file tomorrow.
    Response::error(301)
        .header("Location", location)
        .header("Cache-Control", "no-cache")
}

/// What an opened path is, as far as serving it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Other,
}

fn kind(st: &FileStat) -> Kind {
    let format = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if format == SFlag::S_IFREG {
        Kind::File
    } else if format == SFlag::S_IFDIR {
        Kind::Dir
    } else {
        Kind::Other
    }
}

/// `Content-Type` from the extension; text gets an explicit charset so
/// browsers don't guess one. The common types cost no allocation.
fn content_type(name: &[u8]) -> Cow<'static, str> {
    let essence = mime_guess::from_path(Path::new(OsStr::from_bytes(name)))
        .first_raw()
        .unwrap_or("application/octet-stream");
    let with_charset = match essence {
        "text/html" => "text/html; charset=utf-8",
        "text/css" => "text/css; charset=utf-8",
        "text/javascript" => "text/javascript; charset=utf-8",
        "text/plain" => "text/plain; charset=utf-8",
        "text/markdown" => "text/markdown; charset=utf-8",
        "application/javascript" => "application/javascript; charset=utf-8",
        "application/json" => "application/json; charset=utf-8",
        // mime_guess spells a few in mixed case (`macroEnabled`): lower
        // case, as the type's parsed essence always was.
        _ if essence.starts_with("text/") => {
            return Cow::Owned(format!("{}; charset=utf-8", essence.to_ascii_lowercase()));
        }
        _ if essence.bytes().any(|b| b.is_ascii_uppercase()) => {
            return Cow::Owned(essence.to_ascii_lowercase());
        }
        _ => essence,
    };
    Cow::Borrowed(with_charset)
}

/// A file's size in bytes (a negative `st_size`, which no file has, is 0).
fn file_size(st: &FileStat) -> u64 {
    u64::try_from(st.st_size).unwrap_or(0)
}

/// A regular file: 304, 206, 416 or 200, in that order of precedence.
fn serve_file(req: &Request, mime: Cow<'static, str>, file: File, st: &FileStat) -> Response {
    let size = file_size(st);
    let v = Validators::of(st);
    if not_modified(&req.if_none_match, &req.if_modified_since, &v) {
        return file_not_modified(v.etag, v.last_modified);
    }
    let range = if req.range.is_empty() || !if_range_allows(&req.if_range, &v) {
        ByteRange::Ignore
    } else {
        parse_range(&req.range, size)
    };
    let (status, offset, len) = match range {
        ByteRange::Ignore => (200, 0, size),
        ByteRange::Partial { start, len } => (206, start, len),
        ByteRange::Unsatisfiable => {
            return Response::error(416).header("Content-Range", format!("bytes */{size}"));
        }
    };
    let body = Body::File { file, offset, len };
    let resp = file_answer(status, body, mime, v.etag, v.last_modified);
    if status == 206 {
        let last = offset + len - 1;
        return resp.header("Content-Range", format!("bytes {offset}-{last}/{size}"));
    }
    resp
}

/// A file's 304 (one place, so a cached answer can't drift from it).
fn file_not_modified(etag: String, last_modified: String) -> Response {
    Response::new(304, Body::Empty)
        .header("ETag", etag)
        .header("Last-Modified", last_modified)
        .header("Cache-Control", "no-cache")
}

/// A file's 200 or 206, but its `Content-Range` (one place, so a cached
/// answer can't drift from it).
fn file_answer(
    status: u16,
    body: Body,
    content_type: Cow<'static, str>,
    etag: String,
    last_modified: String,
) -> Response {
    Response::new(status, body)
        .header("Content-Type", content_type)
        .header("Last-Modified", last_modified)
        .header("ETag", etag)
        .header("Accept-Ranges", "bytes")
        .header("Cache-Control", "no-cache")
        .header("X-Content-Type-Options", "nosniff")
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::Mode;
    use std::os::unix::fs::symlink;
    use std::time::{Duration, UNIX_EPOCH};
    use test_support::{HELLO, TempRoot, body_bytes, body_text, get, get_with, header, request};

    #[test]
    fn is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<StaticFiles>();
    }

    #[test]
    fn open_refuses_a_missing_root_or_a_file() {
        let root = TempRoot::new();
        assert!(StaticFiles::open(&root.path.join("nope")).is_err());
        assert!(StaticFiles::open(&root.path.join("hello.txt")).is_err());
    }

    #[test]
    fn a_file_is_served_with_its_headers() {
        let root = TempRoot::new();
        for sf in root.servers() {
            let mut resp = get(&sf, "/hello.txt");
            assert_eq!(resp.status, 200);
            // (A file, or its bytes from the cache once it has settled.)
            assert_eq!(resp.body.len(), HELLO.len() as u64);
            assert_eq!(body_bytes(&mut resp), HELLO);
            assert_eq!(
                header(&resp, "Content-Type"),
                Some("text/plain; charset=utf-8")
            );
            assert_eq!(header(&resp, "Accept-Ranges"), Some("bytes"));
            assert_eq!(header(&resp, "Cache-Control"), Some("no-cache"));
            assert_eq!(header(&resp, "X-Content-Type-Options"), Some("nosniff"));
            let etag = header(&resp, "ETag").unwrap();
            assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
            let modified = std::fs::metadata(root.path.join("hello.txt"))
                .unwrap()
                .modified()
                .unwrap();
            assert_eq!(
                header(&resp, "Last-Modified").unwrap(),
                httpdate::fmt_http_date(modified)
            );
            for forbidden in ["Date", "Server", "Content-Length", "Connection"] {
                assert!(header(&resp, forbidden).is_none(), "{forbidden}");
            }
        }
    }

    #[test]
    fn content_types() {
        let root = TempRoot::new();
        let sf = StaticFiles::open(&root.path).unwrap();
        for (target, expected) in [
            ("/style.css", "text/css; charset=utf-8"),
            ("/data.json", "application/json; charset=utf-8"),
            ("/blob.bin", "application/octet-stream"),
            ("/site/index.html", "text/html; charset=utf-8"),
        ] {
            assert_eq!(
                header(&get(&sf, target), "Content-Type"),
                Some(expected),
                "{target}"
            );
        }
        assert_eq!(content_type(b"app.js"), "text/javascript; charset=utf-8");
        assert_eq!(
            content_type(b"app.mjs"),
            "application/javascript; charset=utf-8"
        );
        assert_eq!(content_type(b"x.png"), "image/png");
        assert_eq!(content_type(b"caf\xe9.txt"), "text/plain; charset=utf-8");
        assert_eq!(
            content_type(b"x.docm"),
            "application/vnd.ms-word.document.macroenabled.12"
        );
        assert_eq!(content_type(b"x.psc1"), "application/powershell");
        assert_eq!(content_type(b"noext"), "application/octet-stream");
    }

    #[test]
    fn head_is_the_same_response_as_get() {
        let root = TempRoot::new();
        let sf = StaticFiles::open(&root.path).unwrap();
        let get = get(&sf, "/hello.txt");
        let head = sf.serve(&request("HEAD", "/hello.txt", ""));
        assert_eq!(head.status, get.status);
        assert_eq!(head.headers, get.headers);
        assert_eq!(head.body.len(), get.body.len());
        let head_list = sf.serve(&request("HEAD", "/sub/", ""));
        assert_eq!(head_list.status, 200);
        assert!(head_list.body.len() > 0);
    }

    #[test]
    fn missing_files_are_404() {
        let root = TempRoot::new();
        for sf in root.servers() {
            assert_eq!(get(&sf, "/nope").status, 404);
            assert_eq!(get(&sf, "/sub/nope/deeper").status, 404);
            assert_eq!(get(&sf, "/hello.txt/x").status, 404);
            // A file with a trailing slash is not a directory.
            assert_eq!(get(&sf, "/hello.txt/").status, 404);
            let long = format!("/{}", "a/".repeat(3000));
            assert_eq!(get(&sf, &long).status, 404);
        }
    }

    #[test]
    fn directories_redirect_to_their_slash() {
        let root = TempRoot::new();
        for sf in root.servers() {
            for (target, location) in [
                ("/sub", "/sub/"),
                ("/sub?x=1&y", "/sub/?x=1&y"),
                ("//evil.com/dir", "/evil.com/dir/"),
                ("///evil.com/dir?q", "/evil.com/dir/?q"),
                ("/./evil.com", "/./evil.com/"),
                ("/link-dir", "/link-dir/"),
            ] {
                let resp = get(&sf, target);
                assert_eq!(resp.status, 301, "{target}");
                assert_eq!(header(&resp, "Location"), Some(location), "{target}");
                assert!(!location.starts_with("//"));
            }
        }
    }

    #[test]
    fn index_html_is_served() {
        let root = TempRoot::new();
        for sf in root.servers() {
            let mut resp = get(&sf, "/site/");
            assert_eq!(resp.status, 200);
            assert_eq!(
                header(&resp, "Content-Type"),
                Some("text/html; charset=utf-8")
            );
            assert!(header(&resp, "ETag").is_some());
            assert_eq!(body_text(&mut resp), "<p>index</p>");
        }
    }

    #[test]
    fn an_index_symlink_out_of_the_root_is_not_followed() {
        let root = TempRoot::new();
        symlink("/etc/hostname", root.path.join("sub/index.html")).unwrap();
        for sf in root.servers() {
            let mut resp = get(&sf, "/sub/");
            assert_eq!(resp.status, 200);
            let html = body_text(&mut resp);
            assert!(html.contains("Index of /sub/"), "{html}");
        }
    }

    #[test]
    fn files_with_odd_names_are_served() {
        let root = TempRoot::new();
        std::fs::write(root.path.join(OsStr::from_bytes(b"caf\xe9.txt")), b"x").unwrap();
        let sf = StaticFiles::open(&root.path).unwrap();
        assert_eq!(get(&sf, "/caf%e9.txt").status, 200);
        assert_eq!(get(&sf, "/a%26b%20%3Cc%3E.txt").status, 200);
        assert_eq!(get(&sf, "/a&b%20%3Cc%3E.txt").status, 200);
    }

    #[test]
    fn dotfiles_are_404_and_unlisted_unless_shown() {
        let root = TempRoot::new();
        std::fs::create_dir(root.path.join(".git")).unwrap();
        std::fs::write(root.path.join(".git/config"), b"token").unwrap();
        std::fs::write(root.path.join("sub/.env"), b"SECRET=1").unwrap();
        std::fs::create_dir_all(root.path.join(".well-known/acme")).unwrap();
        std::fs::write(root.path.join(".well-known/security.txt"), b"x").unwrap();
        std::fs::write(root.path.join(".well-known/.private"), b"x").unwrap();
        std::fs::create_dir(root.path.join("sub/.well-known")).unwrap();
        std::fs::write(root.path.join("sub/.well-known/x"), b"x").unwrap();
        for sf in root.servers() {
            for target in [
                "/.hidden",
                "/%2ehidden",
                "/.git/config",
                "/.git/",
                "/.git",
                "/sub/.env",
                "/sub//.env",
                "/./.hidden",
                "/.well-known/.private",
                "/sub/.well-known/x",
            ] {
                assert_eq!(get(&sf, target).status, 404, "{target}");
            }
            let mut security = get(&sf, "/.well-known/security.txt");
            assert_eq!(security.status, 200);
            assert_eq!(body_text(&mut security), "x");
            assert_eq!(get(&sf, "/.well-known").status, 301);
            let html = body_text(&mut get(&sf, "/"));
            assert!(
                !html.contains(".hidden") && !html.contains(".git"),
                "{html}"
            );
            assert!(html.contains("href=\".well-known/\""), "{html}");
            let html = body_text(&mut get(&sf, "/sub/"));
            assert!(
                !html.contains(".env") && !html.contains(".well-known"),
                "{html}"
            );
            let html = body_text(&mut get(&sf, "/.well-known/"));
            assert!(
                html.contains("acme/") && !html.contains(".private"),
                "{html}"
            );
        }
        let shown = StaticFiles::open(&root.path).unwrap().show_hidden(true);
        let mut env = get(&shown, "/sub/.env");
        assert_eq!(body_text(&mut env), "SECRET=1");
        assert_eq!(get(&shown, "/.git/config").status, 200);
        let html = body_text(&mut get(&shown, "/"));
        assert!(html.contains("href=\".hidden\""), "{html}");
        assert!(html.contains("href=\".git/\""), "{html}");
    }

    const PAGE: &str = "Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\n";

    #[test]
    fn spa_serves_the_index_for_page_requests_that_match_nothing() {
        let root = TempRoot::new();
        std::fs::write(root.path.join("index.html"), b"<p>app</p>").unwrap();
        for sf in root.servers() {
            let sf = sf.spa(true);
            for target in [
                "/app/settings",
                "/app/settings/",
                "/users/42?tab=x",
                "/hello.txt/x",
            ] {
                let mut resp = get_with(&sf, target, PAGE);
                assert_eq!(resp.status, 200, "{target}");
                assert_eq!(body_text(&mut resp), "<p>app</p>", "{target}");
                assert_eq!(
                    header(&resp, "Content-Type"),
                    Some("text/html; charset=utf-8")
                );
                assert_eq!(header(&resp, "Vary"), Some("Accept"));
                assert!(header(&resp, "ETag").is_some());
            }
            let head = sf.serve(&request("HEAD", "/app/settings", PAGE));
            assert_eq!(head.status, 200);
            assert_eq!(head.body.len(), "<p>app</p>".len() as u64);
            // Missing assets, clients that don't want a page, dotfiles and
            // traversal stay 404.
            for (target, extra) in [
                ("/app.js", PAGE),
                ("/app/logo.png", PAGE),
                ("/app%2Ejs", PAGE),
                ("/app/settings", ""),
                ("/app/settings", "Accept: */*\r\n"),
                ("/app/settings", "Accept: application/json\r\n"),
                ("/app/settings", "Accept: text/html;q=0, */*\r\n"),
                ("/.env", PAGE),
                ("/.git/config", PAGE),
                ("/../etc", PAGE),
            ] {
                assert_eq!(get_with(&sf, target, extra).status, 404, "{target} {extra}");
            }
            // What exists is served as always.
            assert_eq!(
                body_text(&mut get_with(&sf, "/hello.txt", PAGE)).as_bytes(),
                HELLO
            );
            assert!(body_text(&mut get_with(&sf, "/sub/", PAGE)).contains("Index of /sub/"));
            assert_eq!(get_with(&sf, "/sub", PAGE).status, 301);
        }
        // Off by default.
        let sf = StaticFiles::open(&root.path).unwrap();
        assert_eq!(get_with(&sf, "/app/settings", PAGE).status, 404);
        // No index.html: nothing to fall back to.
        std::fs::remove_file(root.path.join("index.html")).unwrap();
        let sf = StaticFiles::open(&root.path).unwrap().spa(true);
        assert_eq!(get_with(&sf, "/app/settings", PAGE).status, 404);
    }

    #[test]
    fn a_404_html_in_the_root_is_the_body_of_every_404() {
        let root = TempRoot::new();
        for sf in root.servers() {
            let mut plain = get(&sf, "/nope");
            assert_eq!(body_text(&mut plain), "404 Not Found\n");
        }
        std::fs::write(root.path.join("404.html"), b"<h1>lost</h1>").unwrap();
        for sf in root.servers() {
            let sf = sf.spa(true);
            for (target, extra) in [
                ("/nope", ""),
                ("/sub/nope.txt", ""),
                ("/hello.txt/", ""),
                ("/.hidden", ""),
                ("/../../etc/passwd", ""),
                ("/link-up", ""),
                ("/app.js", PAGE),
            ] {
                let mut resp = get_with(&sf, target, extra);
                assert_eq!(resp.status, 404, "{target}");
                assert_eq!(body_text(&mut resp), "<h1>lost</h1>", "{target}");
                assert_eq!(
                    header(&resp, "Content-Type"),
                    Some("text/html; charset=utf-8")
                );
            }
            let head = sf.serve(&request("HEAD", "/nope", ""));
            assert_eq!((head.status, head.body.len()), (404, 13));
            // Other errors keep their own bodies.
            assert_eq!(body_text(&mut get(&sf, "/%zz")), "400 Bad Request\n");
            // The page itself is a file like any other.
            assert_eq!(get(&sf, "/404.html").status, 200);
        }
        // Opened beneath the root: a symlink out of it is not followed, and
        // a directory is no page.
        std::fs::remove_file(root.path.join("404.html")).unwrap();
        symlink("/etc/hostname", root.path.join("404.html")).unwrap();
        let sf = StaticFiles::open(&root.path).unwrap();
        assert_eq!(body_text(&mut get(&sf, "/nope")), "404 Not Found\n");
        std::fs::remove_file(root.path.join("404.html")).unwrap();
        std::fs::create_dir(root.path.join("404.html")).unwrap();
        assert_eq!(body_text(&mut get(&sf, "/nope")), "404 Not Found\n");
    }

    #[test]
    fn extra_headers_reach_every_static_response() {
        let root = TempRoot::new();
        let mut config = crate::config::defaults();
        config.cors = true;
        config.headers = vec![("X-Dev".into(), "1".into())];
        let sf = StaticFiles::open(&root.path)
            .unwrap()
            .extra_headers(ExtraHeaders::new(&config));
        let etag = header(&get(&sf, "/hello.txt"), "ETag").unwrap().to_owned();
        for resp in [
            get(&sf, "/hello.txt"),
            get(&sf, "/sub/"),
            get(&sf, "/sub"),
            get(&sf, "/nope"),
            get_with(&sf, "/hello.txt", &format!("If-None-Match: {etag}\r\n")),
            get_with(&sf, "/hello.txt", "Range: bytes=0-1\r\n"),
            sf.options(&request("OPTIONS", "/hello.txt", "")),
        ] {
            assert_eq!(header(&resp, "Access-Control-Allow-Origin"), Some("*"));
            assert_eq!(header(&resp, "X-Dev"), Some("1"), "{}", resp.status);
        }
        let plain = StaticFiles::open(&root.path).unwrap();
        let resp = get(&plain, "/hello.txt");
        assert!(header(&resp, "Access-Control-Allow-Origin").is_none());
        let options = plain.options(&request("OPTIONS", "/hello.txt", ""));
        assert_eq!(options.status, 204);
        assert_eq!(header(&options, "Allow"), Some("GET, HEAD, OPTIONS"));
    }

    #[test]
    fn special_files_are_403() {
        let root = TempRoot::new();
        nix::unistd::mkfifo(&root.path.join("fifo"), Mode::S_IRWXU).unwrap();
        let sock = root.path.join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        for sf in root.servers() {
            assert_eq!(get(&sf, "/fifo").status, 403);
            assert_eq!(get(&sf, "/sock").status, 403);
        }
    }

    #[test]
    fn unreadable_files_are_403() {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            return; // root reads everything
        }
        use std::os::unix::fs::PermissionsExt;
        let root = TempRoot::new();
        let path = root.path.join("secret.txt");
        std::fs::write(&path, b"s").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
        let sf = StaticFiles::open(&root.path).unwrap();
        assert_eq!(get(&sf, "/secret.txt").status, 403);
    }

    #[test]
    fn a_file_with_an_odd_mtime_does_not_panic() {
        let root = TempRoot::new();
        let path = root.path.join("old.txt");
        std::fs::write(&path, b"old").unwrap();
        let file = File::options().write(true).open(&path).unwrap();
        file.set_modified(UNIX_EPOCH - Duration::from_secs(86_400 * 400))
            .unwrap();
        let sf = StaticFiles::open(&root.path).unwrap();
        let resp = get(&sf, "/old.txt");
        assert_eq!(resp.status, 200);
        assert_eq!(
            header(&resp, "Last-Modified"),
            Some("Thu, 01 Jan 1970 00:00:00 GMT")
        );
        let html = body_text(&mut get(&sf, "/"));
        assert!(html.contains("1968-"), "{html}");
    }
}
