//! Static files under one root directory, served for GET and HEAD.
//!
//! What it does: percent-decodes the request path and rejects traversal
//! tricks early (`..`, encoded slashes, backslashes, NUL), then lets the
//! kernel enforce the rest. Every file is opened with `openat2` and
//! `RESOLVE_BENEATH` relative to a root directory fd opened once, so neither
//! `..` inside a symlink nor a symlink pointing elsewhere can leave the root,
//! whatever renames race with us. Regular files get validators (`ETag`,
//! `Last-Modified`), conditional 304s and single byte ranges (206/416), and
//! are handed to the connection as [`Body::File`]: nothing is read into
//! memory here. Directories get a trailing-slash redirect, their
//! `index.html`, or an HTML listing.
//!
//! What it doesn't: multipart ranges (a multi-range request gets the whole
//! file), compression, content negotiation, writes, or caching metadata (a
//! dev server must always show the file as it is now). Absolute symlinks are
//! refused even when they point inside the root, because `RESOLVE_BENEATH`
//! refuses them. On a kernel without `openat2` (before 5.6, or a seccomp
//! filter answering ENOSYS) it falls back to canonicalising the path and
//! checking its prefix, which a concurrent symlink swap could race, but which
//! still refuses every plain escape.

use std::borrow::Cow;
use std::ffi::{CString, OsStr};
use std::fmt::Write as _;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{self, FileStat, Mode, SFlag};

use crate::http::{Body, Request, Response};

/// Serves GET and HEAD for files and directories below one root.
pub struct StaticFiles {
    /// The root, opened once with `O_PATH`: every lookup starts here.
    root_fd: OwnedFd,
    /// The canonical root path, only used by the no-`openat2` fallback.
    canonical_root: PathBuf,
    /// Set once `openat2` answered ENOSYS, so we stop trying it. Atomic
    /// because thread-mode pool threads share one `StaticFiles`.
    no_openat2: AtomicBool,
}

impl StaticFiles {
    /// Opens the root directory once; every lookup is resolved beneath it.
    pub fn open(root: &Path) -> io::Result<StaticFiles> {
        let root_fd = fcntl::open(
            root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(StaticFiles {
            root_fd,
            canonical_root: std::fs::canonicalize(root)?,
            no_openat2: AtomicBool::new(false),
        })
    }

    /// Answers a GET or HEAD request (the router handles other methods).
    ///
    /// HEAD gets exactly the GET response; the connection drops the body,
    /// so the `Content-Length` stays right.
    pub fn serve(&self, req: &Request) -> Response {
        // `*` (OPTIONS) is the only non-origin-form target that reaches us.
        if !req.target.starts_with('/') {
            return Response::error(400);
        }
        let path = req.path();
        let rel = match decode_path(path) {
            Ok(rel) => rel,
            Err(status) => return Response::error(status),
        };
        // Keep a trailing slash for the kernel: `file.txt/` is then ENOTDIR
        // (404), as it would be on any other server.
        let open_path = if path.ends_with('/') {
            child(&rel, b"")
        } else {
            rel.clone()
        };
        let fd = match self.open_beneath(&open_path) {
            Ok(fd) => fd,
            Err(err) => return open_error(err, &rel),
        };
        let st = match stat::fstat(&fd) {
            Ok(st) => st,
            Err(err) => {
                log::warn!("static: fstat {:?}: {err}", String::from_utf8_lossy(&rel));
                return Response::error(500);
            }
        };
        match kind(&st) {
            Kind::File => serve_file(req, file_name(&rel), File::from(fd), &st),
            Kind::Dir if !path.ends_with('/') => redirect_to_dir(req),
            Kind::Dir => self.serve_dir(req, &rel, fd),
            // FIFOs, sockets and devices are not content.
            Kind::Other => Response::error(403),
        }
    }

    /// Opens `rel` (relative, no `..`, no NUL) for reading, never outside
    /// the root. `O_NONBLOCK` so a FIFO can't block the worker.
    fn open_beneath(&self, rel: &[u8]) -> Result<OwnedFd, Errno> {
        let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
        if !self.no_openat2.load(Ordering::Relaxed) {
            let how = OpenHow::new()
                .flags(flags)
                .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
            let mut tries = 0;
            loop {
                match fcntl::openat2(&self.root_fd, rel, how) {
                    // EAGAIN: a concurrent rename kept the kernel from
                    // proving the walk stayed beneath; openat2(2) says retry.
                    Err(Errno::EAGAIN | Errno::EINTR) if tries < 3 => tries += 1,
                    Err(Errno::ENOSYS) => {
                        log::warn!("static: openat2 unavailable, using the canonicalize fallback");
                        self.no_openat2.store(true, Ordering::Relaxed);
                        break;
                    }
                    other => return other,
                }
            }
        }
        self.open_canonical(rel, flags)
    }

    /// The fallback for kernels without `openat2`: resolve every symlink
    /// ourselves, then insist the result is still under the root.
    fn open_canonical(&self, rel: &[u8], flags: OFlag) -> Result<OwnedFd, Errno> {
        let full = self.canonical_root.join(OsStr::from_bytes(rel));
        let real = std::fs::canonicalize(full).map_err(io_errno)?;
        if !real.starts_with(&self.canonical_root) {
            return Err(Errno::EXDEV);
        }
        fcntl::open(&real, flags, Mode::empty())
    }

    /// A directory requested with its trailing slash: `index.html` if it is
    /// a regular file, else a listing.
    fn serve_dir(&self, req: &Request, rel: &[u8], dir_fd: OwnedFd) -> Response {
        // Opened beneath the ROOT, not the directory fd, so the index can't
        // be a symlink out either.
        if let Ok(fd) = self.open_beneath(&child(rel, b"index.html"))
            && let Ok(st) = stat::fstat(&fd)
            && kind(&st) == Kind::File
        {
            return serve_file(req, b"index.html", File::from(fd), &st);
        }
        let entries = match read_entries(dir_fd) {
            Ok(entries) => entries,
            Err(err) => {
                log::warn!("static: listing {:?}: {err}", String::from_utf8_lossy(rel));
                return Response::error(500);
            }
        };
        let html = render_listing(rel, &entries);
        Response::new(200, Body::Bytes(html.into_bytes()))
            .header("Content-Type", "text/html; charset=utf-8")
            .header("Cache-Control", "no-cache")
            .header("X-Content-Type-Options", "nosniff")
    }
}

// ---------------------------------------------------------------------------
// Paths

/// Turns a still-encoded request path into a relative path for `openat2`:
/// segments joined by `/`, `.` for the root. `Err(400)` for NUL or a bad
/// escape, `Err(404)` for `..`, an encoded slash or any backslash (Windows
/// separators would be a second way to spell traversal; no real file needs
/// one in a URL). The 400 checks run over the whole path first, so the
/// status doesn't depend on which problem comes first.
fn decode_path(path: &str) -> Result<Vec<u8>, u16> {
    let raw = path.as_bytes();
    let mut decoded = Vec::with_capacity(raw.len());
    let mut refused = false;
    let mut i = 0;
    while i < raw.len() {
        let byte = if raw[i] == b'%' {
            let hi = raw.get(i + 1).and_then(|&b| hex_value(b)).ok_or(400u16)?;
            let lo = raw.get(i + 2).and_then(|&b| hex_value(b)).ok_or(400u16)?;
            i += 3;
            let byte = hi << 4 | lo;
            // A decoded slash would join two segments behind our back.
            refused |= byte == b'/';
            byte
        } else {
            i += 1;
            raw[i - 1]
        };
        if byte == 0 {
            return Err(400);
        }
        refused |= byte == b'\\';
        decoded.push(byte);
    }
    if refused {
        return Err(404);
    }
    let mut rel = Vec::with_capacity(decoded.len());
    for segment in decoded.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => return Err(404),
            _ => {
                if !rel.is_empty() {
                    rel.push(b'/');
                }
                rel.extend_from_slice(segment);
            }
        }
    }
    if rel.is_empty() {
        rel.push(b'.');
    }
    Ok(rel)
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// `rel/name` (`rel/` when `name` is empty).
fn child(rel: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = Vec::with_capacity(rel.len() + 1 + name.len());
    path.extend_from_slice(rel);
    path.push(b'/');
    path.extend_from_slice(name);
    path
}

/// The last segment of a relative path.
fn file_name(rel: &[u8]) -> &[u8] {
    rel.rsplit(|&b| b == b'/').next().unwrap_or(rel)
}

fn io_errno(err: io::Error) -> Errno {
    err.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

/// The answer when a path can't be opened. Only the unexpected is logged:
/// a 404 is a client's business, not the operator's.
fn open_error(err: Errno, rel: &[u8]) -> Response {
    match err {
        // EXDEV: the walk would leave the root; ELOOP: too many symlinks or
        // a magic link. Both look like "no such file" from outside.
        Errno::ENOENT | Errno::ENOTDIR | Errno::EXDEV | Errno::ELOOP | Errno::ENAMETOOLONG => {
            Response::error(404)
        }
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

// ---------------------------------------------------------------------------
// Files

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

/// What a cache compares against: derived from the inode's mtime and size.
struct Validators {
    etag: String,
    last_modified: String,
    mtime_secs: i64,
}

impl Validators {
    fn of(st: &FileStat) -> Validators {
        Validators {
            // Nanoseconds too, so two saves within one second differ.
            etag: format!(
                "\"{:x}-{:x}-{:x}\"",
                st.st_mtime, st.st_mtime_nsec, st.st_size
            ),
            last_modified: http_date(st.st_mtime),
            mtime_secs: st.st_mtime,
        }
    }
}

/// An HTTP date for a Unix time, clamped to what `httpdate` can format
/// (it panics before 1970 and after 9999, and mtimes are user-settable).
fn http_date(secs: i64) -> String {
    const LAST_SECOND_OF_9999: i64 = 253_402_300_799;
    let secs = secs.clamp(0, LAST_SECOND_OF_9999) as u64;
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

/// `Content-Type` from the extension; text gets an explicit charset so
/// browsers don't guess one.
fn content_type(name: &[u8]) -> Cow<'static, str> {
    let mime = mime_guess::from_path(Path::new(OsStr::from_bytes(name))).first_or_octet_stream();
    let essence = mime.essence_str();
    if mime.type_() == mime_guess::mime::TEXT
        || essence == "application/javascript"
        || essence == "application/json"
    {
        Cow::Owned(format!("{essence}; charset=utf-8"))
    } else {
        Cow::Owned(essence.to_owned())
    }
}

/// A regular file: 304, 206, 416 or 200, in that order of precedence.
fn serve_file(req: &Request, name: &[u8], file: File, st: &FileStat) -> Response {
    let size = u64::try_from(st.st_size).unwrap_or(0);
    let v = Validators::of(st);
    if not_modified(&req.if_none_match, &req.if_modified_since, &v) {
        return Response::new(304, Body::Empty)
            .header("ETag", v.etag)
            .header("Last-Modified", v.last_modified)
            .header("Cache-Control", "no-cache");
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
    let mut resp = Response::new(status, Body::File { file, offset, len })
        .header("Content-Type", content_type(name))
        .header("Last-Modified", v.last_modified)
        .header("ETag", v.etag)
        .header("Accept-Ranges", "bytes")
        .header("Cache-Control", "no-cache")
        .header("X-Content-Type-Options", "nosniff");
    if status == 206 {
        let last = offset + len - 1;
        resp = resp.header("Content-Range", format!("bytes {offset}-{last}/{size}"));
    }
    resp
}

/// RFC 9110 13.2.2: If-None-Match wins; If-Modified-Since counts only
/// when it is absent.
fn not_modified(if_none_match: &str, if_modified_since: &str, v: &Validators) -> bool {
    if !if_none_match.is_empty() {
        return etag_list_matches(if_none_match, &v.etag);
    }
    if if_modified_since.is_empty() {
        return false;
    }
    match httpdate::parse_http_date(if_modified_since) {
        Ok(since) => unix_secs(since) >= v.mtime_secs,
        // An invalid date is ignored, as RFC 9110 says.
        Err(_) => false,
    }
}

/// Weak comparison (a `W/` prefix is ignored on both sides), over a comma
/// list or `*`.
fn etag_list_matches(list: &str, etag: &str) -> bool {
    let ours = strip_weak(etag);
    list.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || strip_weak(tag) == ours)
}

fn strip_weak(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

fn unix_secs(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// If-Range: the range applies only to the representation the client
/// already has part of. A strong ETag or the exact date we sent.
fn if_range_allows(if_range: &str, v: &Validators) -> bool {
    if_range.is_empty() || if_range == v.etag || if_range == v.last_modified
}

/// What a `Range` header asks of a file of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ByteRange {
    /// Absent, unparseable, another unit, or several ranges: send it all.
    Ignore,
    /// One satisfiable range, clamped to the file.
    Partial { start: u64, len: u64 },
    /// Well-formed but outside the file: 416.
    Unsatisfiable,
}

/// Parses `bytes=a-b`, `bytes=a-` and `bytes=-n`. Multiple ranges are
/// ignored rather than answered with multipart/byteranges: RFC 9110 lets a
/// server ignore Range, and it keeps the response a plain file slice.
fn parse_range(header: &str, size: u64) -> ByteRange {
    let Some((unit, set)) = header.split_once('=') else {
        return ByteRange::Ignore;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return ByteRange::Ignore;
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return ByteRange::Ignore;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // Suffix: the last n bytes.
        let Some(n) = parse_pos(last) else {
            return ByteRange::Ignore;
        };
        if n == 0 || size == 0 {
            return ByteRange::Unsatisfiable;
        }
        let len = n.min(size);
        return ByteRange::Partial {
            start: size - len,
            len,
        };
    }
    let Some(start) = parse_pos(first) else {
        return ByteRange::Ignore;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match parse_pos(last) {
            Some(end) if end >= start => end,
            // `5-2` is invalid, not unsatisfiable: ignore it.
            _ => return ByteRange::Ignore,
        }
    };
    if start >= size {
        return ByteRange::Unsatisfiable;
    }
    let end = end.min(size - 1);
    ByteRange::Partial {
        start,
        len: end - start + 1,
    }
}

/// A decimal position; absurdly large ones saturate (they are still
/// well-formed, so they must yield 416 or a clamp, not be ignored).
fn parse_pos(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u64::MAX))
}

// ---------------------------------------------------------------------------
// Listings

/// One row of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: Vec<u8>,
    is_dir: bool,
    size: u64,
    mtime: i64,
}

/// Reads a directory's entries, directories first, then by name. Entries
/// that vanish or can't be stat'ed are skipped. Symlinks are listed as
/// themselves (not followed), so a listing never stats outside the root.
fn read_entries(dir_fd: OwnedFd) -> nix::Result<Vec<Entry>> {
    let mut dir = Dir::from_fd(dir_fd)?;
    // Names first: the iterator borrows the Dir we then stat through.
    let names: Vec<CString> = dir
        .iter()
        .map_while(Result::ok)
        .map(|entry| entry.file_name().to_owned())
        .filter(|name| name.as_bytes() != b"." && name.as_bytes() != b"..")
        .collect();
    let mut entries: Vec<Entry> = names
        .into_iter()
        .filter_map(|name| {
            let st = stat::fstatat(&dir, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW).ok()?;
            Some(Entry {
                is_dir: kind(&st) == Kind::Dir,
                size: u64::try_from(st.st_size).unwrap_or(0),
                mtime: st.st_mtime,
                name: name.into_bytes(),
            })
        })
        .collect();
    sort_entries(&mut entries);
    Ok(entries)
}

fn sort_entries(entries: &mut [Entry]) {
    entries.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
}

/// The listing page for directory `rel` (as returned by [`decode_path`]).
fn render_listing(rel: &[u8], entries: &[Entry]) -> String {
    let at_root = rel == b".";
    let shown = if at_root {
        "/".to_owned()
    } else {
        format!("/{}/", String::from_utf8_lossy(rel))
    };
    let title = html_escape(&shown);
    let mut html = String::with_capacity(512 + entries.len() * 160);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
         <title>Index of {title}</title>\
         <style>body{{font-family:sans-serif}}td{{padding:0 1em 0 0}}\
         td.n{{text-align:right}}</style></head>\n\
         <body><h1>Index of {title}</h1>\n<table>\n\
         <tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr>\n"
    );
    if !at_root {
        html.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for entry in entries {
        let slash = if entry.is_dir { "/" } else { "" };
        let size = if entry.is_dir {
            "-".to_owned()
        } else {
            entry.size.to_string()
        };
        let _ = writeln!(
            html,
            "<tr><td><a href=\"{href}{slash}\">{name}{slash}</a></td>\
             <td class=\"n\">{size}</td><td>{time}</td></tr>",
            href = percent_encode(&entry.name),
            name = html_escape(&String::from_utf8_lossy(&entry.name)),
            time = format_utc(entry.mtime),
        );
    }
    html.push_str("</table>\n</body></html>\n");
    html
}

/// Escapes text for HTML element content and quoted attributes.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Encodes one name for a relative href: everything but RFC 3986 unreserved
/// characters, including `/` (it is part of the name, not a separator) and
/// `:` (so `javascript:x` stays a relative path).
fn percent_encode(name: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(name.len() * 3);
    for &b in name {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
    out
}

/// `2026-11-24 07:30` (UTC) for a Unix time.
fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let minute_of_day = secs.rem_euclid(86_400) / 60;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        minute_of_day / 60,
        minute_of_day % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`), to avoid a date crate for one column.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::parse_head;
    use std::io::{Read, Seek, SeekFrom};
    use std::os::unix::fs::symlink;
    use std::sync::atomic::AtomicUsize;

    const HELLO: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz\n";

    /// A fresh root per test, removed on drop.
    struct TempRoot {
        path: PathBuf,
    }

    impl TempRoot {
        fn new() -> TempRoot {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path =
                std::env::temp_dir().join(format!("forkpool-static-{}-{n}", std::process::id()));
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

        /// Both resolution strategies: openat2, and the ENOSYS fallback.
        fn servers(&self) -> [StaticFiles; 2] {
            let fallback = StaticFiles::open(&self.path).unwrap();
            fallback.no_openat2.store(true, Ordering::Relaxed);
            [StaticFiles::open(&self.path).unwrap(), fallback]
        }
    }

    impl Drop for TempRoot {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }

    fn request(method: &str, target: &str, extra: &str) -> Request {
        let mut req = Request::default();
        let head = format!("{method} {target} HTTP/1.1\r\nHost: h\r\n{extra}\r\n");
        parse_head(head.as_bytes(), 16384, &mut req).unwrap();
        req
    }

    fn get(sf: &StaticFiles, target: &str) -> Response {
        sf.serve(&request("GET", target, ""))
    }

    fn get_with(sf: &StaticFiles, target: &str, extra: &str) -> Response {
        sf.serve(&request("GET", target, extra))
    }

    fn header<'a>(resp: &'a Response, name: &str) -> Option<&'a str> {
        resp.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    /// The bytes a response body would send.
    fn body_bytes(resp: &mut Response) -> Vec<u8> {
        match &mut resp.body {
            Body::Empty => Vec::new(),
            Body::Static(b) => b.to_vec(),
            Body::Bytes(b) => b.clone(),
            Body::File { file, offset, len } => {
                let mut out = vec![0; *len as usize];
                file.seek(SeekFrom::Start(*offset)).unwrap();
                file.read_exact(&mut out).unwrap();
                out
            }
        }
    }

    fn body_text(resp: &mut Response) -> String {
        String::from_utf8(body_bytes(resp)).unwrap()
    }

    #[test]
    fn is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<StaticFiles>();
    }

    #[test]
    fn openat2_is_kept_when_the_kernel_has_it() {
        let root = TempRoot::new();
        let sf = StaticFiles::open(&root.path).unwrap();
        let probe = fcntl::openat2(&sf.root_fd, ".", OpenHow::new());
        assert_eq!(get(&sf, "/hello.txt").status, 200);
        let has_openat2 = !matches!(probe, Err(Errno::ENOSYS));
        assert_eq!(sf.no_openat2.load(Ordering::Relaxed), !has_openat2);
        if has_openat2 {
            // RESOLVE_BENEATH refuses absolute symlinks, even into the root.
            let target = root.path.join("hello.txt");
            symlink(&target, root.path.join("abs-link")).unwrap();
            assert_eq!(get(&sf, "/abs-link").status, 404);
        }
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
            assert!(
                matches!(resp.body, Body::File { offset: 0, len, .. } if len == HELLO.len() as u64)
            );
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
            ("/.hidden", "application/octet-stream"),
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
        assert!(!head_list.body.is_empty());
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
    fn traversal_is_404() {
        let root = TempRoot::new();
        for sf in root.servers() {
            for target in [
                "/../etc/passwd",
                "/..",
                "/sub/../hello.txt",
                "/%2e%2e/etc/passwd",
                "/%2E%2E/etc/passwd",
                "/.%2e/etc/passwd",
                "/a%2f..%2f..",
                "/a%2F..%2F..%2Fetc%2Fpasswd",
                "/sub%2finner.txt",
                "/..%5c..",
                "/..\\..\\etc\\passwd",
                "/sub\\inner.txt",
                "/%5c%5cevil.com",
            ] {
                assert_eq!(get(&sf, target).status, 404, "{target}");
            }
        }
    }

    #[test]
    fn bad_encodings_are_400() {
        let root = TempRoot::new();
        let sf = StaticFiles::open(&root.path).unwrap();
        for target in [
            "/hello.txt%00",
            "/%00/../x",
            "/..%00",
            "/%",
            "/%2",
            "/%zz",
            "/a%g1",
        ] {
            assert_eq!(get(&sf, target).status, 400, "{target}");
        }
        let star = sf.serve(&request("OPTIONS", "*", ""));
        assert_eq!(star.status, 400);
    }

    #[test]
    fn decode_path_rules() {
        assert_eq!(decode_path("/"), Ok(b".".to_vec()));
        assert_eq!(decode_path("//./"), Ok(b".".to_vec()));
        assert_eq!(decode_path("/a//b/./c"), Ok(b"a/b/c".to_vec()));
        assert_eq!(decode_path("/a%20b/%41"), Ok(b"a b/A".to_vec()));
        assert_eq!(decode_path("/caf%C3%A9"), Ok("café".as_bytes().to_vec()));
        assert_eq!(decode_path("/caf%e9"), Ok(b"caf\xe9".to_vec()));
        assert_eq!(decode_path("/a+b"), Ok(b"a+b".to_vec()));
        assert_eq!(decode_path("/..."), Ok(b"...".to_vec()));
        assert_eq!(decode_path("/..a"), Ok(b"..a".to_vec()));
        assert_eq!(decode_path("/a/.."), Err(404));
        assert_eq!(decode_path("/a\\b"), Err(404));
        assert_eq!(decode_path("/a%2fb"), Err(404));
        assert_eq!(decode_path("/a%2fb%00"), Err(400));
        assert_eq!(decode_path("/\0"), Err(400));
        assert_eq!(decode_path("/%f"), Err(400));
        assert_eq!(decode_path("/%+1"), Err(400));
    }

    #[test]
    fn symlinks_inside_work_and_outside_are_404() {
        let root = TempRoot::new();
        for sf in root.servers() {
            let mut inside = get(&sf, "/link-inside");
            assert_eq!(inside.status, 200);
            assert_eq!(body_bytes(&mut inside), HELLO);
            assert_eq!(get(&sf, "/link-dir/inner.txt").status, 200);
            assert_eq!(get(&sf, "/link-outside").status, 404);
            assert_eq!(get(&sf, "/link-outside/").status, 404);
            assert_eq!(get(&sf, "/link-outside/passwd").status, 404);
            assert_eq!(get(&sf, "/link-up").status, 404);
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
    fn listings_escape_names_and_sort_directories_first() {
        let root = TempRoot::new();
        std::fs::write(root.path.join(OsStr::from_bytes(b"caf\xe9.txt")), b"x").unwrap();
        std::fs::write(root.path.join("q\"'.txt"), b"x").unwrap();
        for sf in root.servers() {
            let mut resp = get(&sf, "/");
            assert_eq!(resp.status, 200);
            assert_eq!(
                header(&resp, "Content-Type"),
                Some("text/html; charset=utf-8")
            );
            assert_eq!(header(&resp, "Cache-Control"), Some("no-cache"));
            let html = body_text(&mut resp);
            assert!(html.contains("<title>Index of /</title>"), "{html}");
            assert!(!html.contains("href=\"../\""), "no parent at the root");
            assert!(!html.contains("<c>"), "{html}");
            assert!(html.contains(">a&amp;b &lt;c&gt;.txt</a>"), "{html}");
            assert!(html.contains("href=\"a%26b%20%3Cc%3E.txt\""), "{html}");
            assert!(html.contains("href=\"caf%E9.txt\""), "{html}");
            assert!(html.contains("caf\u{FFFD}.txt"), "{html}");
            assert!(html.contains("q&quot;&#39;.txt"), "{html}");
            assert!(html.contains("href=\"sub/\">sub/</a>"), "{html}");
            assert!(html.contains("href=\".hidden\""), "dotfiles are listed");
            assert!(html.contains(&format!("<td class=\"n\">{}</td>", HELLO.len())));
            // Directories (evil.com, site, sub) before files, each by name.
            let pos = |needle: &str| html.find(needle).unwrap();
            assert!(pos("href=\"evil.com/\"") < pos("href=\"site/\""));
            assert!(pos("href=\"sub/\"") < pos("href=\".hidden\""));
            assert!(pos("href=\".hidden\"") < pos("href=\"hello.txt\""));
            // Symlinks are listed as themselves, never followed.
            assert!(html.contains("href=\"link-outside\""), "{html}");
            assert!(!html.contains("href=\"link-outside/\""), "{html}");
            assert!(!html.contains("passwd"));
        }
    }

    #[test]
    fn a_listing_links_to_its_parent() {
        let root = TempRoot::new();
        let sf = StaticFiles::open(&root.path).unwrap();
        let mut resp = get(&sf, "/sub/");
        let html = body_text(&mut resp);
        assert!(html.contains("<title>Index of /sub/</title>"), "{html}");
        assert!(html.contains("<a href=\"../\">../</a>"), "{html}");
        assert!(html.contains("href=\"inner.txt\""), "{html}");
        // A file name reached through an encoded path shows decoded.
        std::fs::create_dir(root.path.join("a <b>")).unwrap();
        let html = body_text(&mut get(&sf, "/a%20%3Cb%3E/"));
        assert!(html.contains("Index of /a &lt;b&gt;/"), "{html}");
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
    fn if_none_match_gives_304() {
        let root = TempRoot::new();
        let sf = StaticFiles::open(&root.path).unwrap();
        let first = get(&sf, "/hello.txt");
        let etag = header(&first, "ETag").unwrap().to_owned();
        for value in [
            etag.clone(),
            format!("W/{etag}"),
            "*".to_owned(),
            format!("\"nope\", {etag}"),
            format!("\"a\",W/{etag} , \"b\""),
        ] {
            let resp = get_with(&sf, "/hello.txt", &format!("If-None-Match: {value}\r\n"));
            assert_eq!(resp.status, 304, "{value}");
            assert!(matches!(resp.body, Body::Empty));
            assert_eq!(header(&resp, "ETag"), Some(etag.as_str()));
            assert!(header(&resp, "Last-Modified").is_some());
            assert_eq!(header(&resp, "Cache-Control"), Some("no-cache"));
        }
        let resp = get_with(&sf, "/hello.txt", "If-None-Match: \"other\"\r\n");
        assert_eq!(resp.status, 200);
        // Two header lines combine into one list.
        let two = format!("If-None-Match: \"x\"\r\nIf-None-Match: {etag}\r\n");
        assert_eq!(get_with(&sf, "/hello.txt", &two).status, 304);
    }

    #[test]
    fn if_modified_since_gives_304_unless_if_none_match_says_otherwise() {
        let root = TempRoot::new();
        let sf = StaticFiles::open(&root.path).unwrap();
        let first = get(&sf, "/hello.txt");
        let modified = header(&first, "Last-Modified").unwrap().to_owned();
        let ims =
            |date: &str| get_with(&sf, "/hello.txt", &format!("If-Modified-Since: {date}\r\n"));
        assert_eq!(ims(&modified).status, 304);
        assert_eq!(ims("Fri, 31 Dec 9999 23:59:59 GMT").status, 304);
        assert_eq!(ims("Sun, 06 Nov 1994 08:49:37 GMT").status, 200);
        assert_eq!(ims("not a date").status, 200);
        // If-None-Match takes precedence: a mismatch means 200.
        let both = format!("If-None-Match: \"other\"\r\nIf-Modified-Since: {modified}\r\n");
        assert_eq!(get_with(&sf, "/hello.txt", &both).status, 200);
    }

    #[test]
    fn single_ranges_give_206() {
        let root = TempRoot::new();
        let sf = StaticFiles::open(&root.path).unwrap();
        let size = HELLO.len() as u64;
        for (range, start, end) in [
            ("bytes=0-9", 0, 9),
            ("bytes=-5", size - 5, size - 1),
            ("bytes=5-", 5, size - 1),
            ("bytes=5-1000", 5, size - 1),
            ("bytes=-1000", 0, size - 1),
            ("BYTES = 3-3", 3, 3),
        ] {
            let mut resp = get_with(&sf, "/hello.txt", &format!("Range: {range}\r\n"));
            assert_eq!(resp.status, 206, "{range}");
            assert_eq!(
                header(&resp, "Content-Range").unwrap(),
                format!("bytes {start}-{end}/{size}"),
                "{range}"
            );
            assert!(
                matches!(resp.body, Body::File { offset, len, .. } if offset == start && len == end - start + 1),
                "{range}"
            );
            assert_eq!(
                body_bytes(&mut resp),
                &HELLO[start as usize..=end as usize],
                "{range}"
            );
            assert!(header(&resp, "ETag").is_some());
        }
    }

    #[test]
    fn unsatisfiable_ranges_give_416() {
        let root = TempRoot::new();
        let sf = StaticFiles::open(&root.path).unwrap();
        let size = HELLO.len();
        for (target, range, size) in [
            ("/hello.txt", "bytes=1000-", size),
            ("/hello.txt", "bytes=37-40", size),
            ("/hello.txt", "bytes=-0", size),
            ("/hello.txt", "bytes=99999999999999999999999-", size),
            ("/empty.txt", "bytes=0-", 0),
            ("/empty.txt", "bytes=-5", 0),
        ] {
            let resp = get_with(&sf, target, &format!("Range: {range}\r\n"));
            assert_eq!(resp.status, 416, "{range}");
            assert_eq!(
                header(&resp, "Content-Range").unwrap(),
                format!("bytes */{size}")
            );
            assert!(!matches!(resp.body, Body::File { .. }));
        }
    }

    #[test]
    fn ignored_ranges_give_200() {
        let root = TempRoot::new();
        let sf = StaticFiles::open(&root.path).unwrap();
        for range in [
            "bytes=0-1,3-4",
            "bytes=0-1, -2",
            "items=0-1",
            "bytes=abc",
            "bytes=5-2",
            "bytes=-",
            "bytes=1-2-3",
            "bytes 0-1",
        ] {
            let resp = get_with(&sf, "/hello.txt", &format!("Range: {range}\r\n"));
            assert_eq!(resp.status, 200, "{range}");
            assert!(header(&resp, "Content-Range").is_none());
            assert_eq!(resp.body.len(), HELLO.len() as u64);
        }
    }

    #[test]
    fn if_range_applies_the_range_only_to_the_same_file() {
        let root = TempRoot::new();
        let sf = StaticFiles::open(&root.path).unwrap();
        let first = get(&sf, "/hello.txt");
        let etag = header(&first, "ETag").unwrap().to_owned();
        let modified = header(&first, "Last-Modified").unwrap().to_owned();
        let with = |if_range: &str| {
            get_with(
                &sf,
                "/hello.txt",
                &format!("Range: bytes=0-9\r\nIf-Range: {if_range}\r\n"),
            )
            .status
        };
        assert_eq!(with(&etag), 206);
        assert_eq!(with(&modified), 206);
        assert_eq!(with("\"other\""), 200);
        assert_eq!(with(&format!("W/{etag}")), 200);
        assert_eq!(with("Sun, 06 Nov 1994 08:49:37 GMT"), 200);
        // A 304 wins over a range.
        let both = format!("If-None-Match: {etag}\r\nRange: bytes=0-1\r\n");
        assert_eq!(get_with(&sf, "/hello.txt", &both).status, 304);
    }

    #[test]
    fn parse_range_cases() {
        use ByteRange::*;
        assert_eq!(parse_range("bytes=0-0", 10), Partial { start: 0, len: 1 });
        assert_eq!(parse_range("bytes=9-", 10), Partial { start: 9, len: 1 });
        assert_eq!(parse_range("bytes=10-", 10), Unsatisfiable);
        assert_eq!(parse_range("bytes=-10", 10), Partial { start: 0, len: 10 });
        assert_eq!(
            parse_range("bytes=0-18446744073709551615", 10),
            Partial { start: 0, len: 10 }
        );
        assert_eq!(
            parse_range("bytes=-99999999999999999999", 10),
            Partial { start: 0, len: 10 }
        );
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("", 10), Ignore);
        assert_eq!(parse_range("bytes=", 10), Ignore);
        assert_eq!(parse_range("bytes=+1-2", 10), Ignore);
        assert_eq!(parse_range("bytes=1-+2", 10), Ignore);
        assert_eq!(parse_range("bytes==1-2", 10), Ignore);
    }

    #[test]
    fn validators_and_conditionals_are_pure() {
        let v = Validators {
            etag: "\"abc\"".to_owned(),
            last_modified: http_date(1_000_000),
            mtime_secs: 1_000_000,
        };
        assert!(not_modified("\"abc\"", "", &v));
        assert!(not_modified("W/\"abc\"", "", &v));
        assert!(!not_modified("\"abcd\"", "", &v));
        assert!(!not_modified("", "", &v));
        assert!(not_modified("", &http_date(1_000_000), &v));
        assert!(!not_modified("", &http_date(999_999), &v));
        assert!(if_range_allows("", &v));
        assert!(if_range_allows("\"abc\"", &v));
        assert!(!if_range_allows("W/\"abc\"", &v));
        // httpdate would panic out of range: we clamp.
        assert_eq!(http_date(-5), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(i64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
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

    #[test]
    fn listing_helpers() {
        assert_eq!(
            html_escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(percent_encode(b"a/b c~-._"), "a%2Fb%20c~-._");
        assert_eq!(percent_encode(b"javascript:x"), "javascript%3Ax");
        assert_eq!(percent_encode(b"\xff\x00"), "%FF%00");
        assert_eq!(format_utc(0), "1970-01-01 00:00");
        assert_eq!(format_utc(1_795_505_400), "2026-11-24 07:30");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00");
        assert_eq!(format_utc(-60), "1969-12-31 23:59");
        // Extreme values must not panic.
        let _ = format_utc(i64::MAX);
        let _ = format_utc(i64::MIN);
        let mut entries = vec![
            Entry {
                name: b"b".to_vec(),
                is_dir: false,
                size: 1,
                mtime: 0,
            },
            Entry {
                name: b"z".to_vec(),
                is_dir: true,
                size: 0,
                mtime: 0,
            },
            Entry {
                name: b"a".to_vec(),
                is_dir: false,
                size: 1,
                mtime: 0,
            },
            Entry {
                name: b"c".to_vec(),
                is_dir: true,
                size: 0,
                mtime: 0,
            },
        ];
        sort_entries(&mut entries);
        let names: Vec<&[u8]> = entries.iter().map(|e| e.name.as_slice()).collect();
        assert_eq!(names, [&b"c"[..], b"z", b"a", b"b"]);
    }

    #[test]
    fn garbage_paths_never_panic() {
        let root = TempRoot::new();
        let sf = StaticFiles::open(&root.path).unwrap();
        for target in [
            "/%", "/%%", "/%%%", "/%e2%82", "/%ff%fe", "/\u{e9}", "/?", "/??", "/#x", "/%2e", "/.",
            "/./.", "/sub/.", "/~", "/%7e",
        ] {
            let resp = get(&sf, target);
            assert!(
                [200, 301, 400, 403, 404].contains(&resp.status),
                "{target}: {}",
                resp.status
            );
        }
    }
}
