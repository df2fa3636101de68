//! Content codings for static files: precompressed siblings, and
//! compression on the fly.
//!
//! What it does: reads `Accept-Encoding` (q-values honoured, `q=0`
//! refuses, `*` stands for the codings not named) and picks the
//! representation of a regular file over 1 KiB (smaller ones always go
//! out as they are):
//! - a precompressed sibling, `file.br`, `file.zst` or `file.gz`, of the
//!   best coding the client accepts (br, then zstd, then gzip on equal
//!   q-values: the smallest first, since it costs nothing to send). It is
//!   opened beneath the root like the file itself, must be a regular file,
//!   and is skipped when it is older than the file (a stale build output
//!   must never hide an edit). It is streamed like any file.
//! - else, for a compressible type (text, JavaScript, JSON, XML, SVG) over
//!   1 KiB and up to 8 MiB, with `compress` on: the file compressed now,
//!   into memory, at a fast level. zstd first on equal q-values (level 3:
//!   the ratio of brotli's quality 3, at a quarter of its CPU), then brotli,
//!   then gzip (level 1).
//! - else the identity: the plain file, untouched.
//!
//! An encoded response carries `Content-Encoding`, `Vary: Accept-Encoding`,
//! the original's `Content-Type`, and an ETag of its own: the sibling's
//! validators, or the file's for compression on the fly, with the coding
//! inside the quotes (`"…-br"`), so `If-None-Match` is answered per
//! encoding (a 304 costs no compression). The compressors are
//! deterministic at a fixed level, so the tag can stay strong. The
//! identity answer says `Vary: Accept-Encoding` too when the file would be
//! compressed for another client, or has a sibling we saw.
//!
//! What it doesn't: encode ranges (a request with `Range` always gets the
//! identity, so byte offsets mean the file's bytes), compress files larger
//! than 8 MiB (they would have to be read whole: they go out as they are,
//! or as their sibling),
//! cache what it compressed (a dev server shows the file as it is now:
//! each request compresses again), or serve a sibling without its
//! original. Costs: a request without `Accept-Encoding` (wrk's), or for
//! a file of 1 KiB or less, takes the plain path with no sibling looked
//! up (its type is looked up once, for its header and for `Vary`); one
//! with it costs one `openat2` per accepted coding until a
//! sibling is found (three failed ones, about 3 µs, for a browser asking
//! for a file without siblings), and compressing 100 KiB of JavaScript
//! costs about 0.3 ms (zstd), 0.5 ms (gzip) or 1.3 ms (brotli) of CPU.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

use nix::sys::stat::{self, FileStat};

use super::path::is_page;
use super::validators::{Validators, not_modified};
use super::{Kind, StaticFiles, content_type, file_name, file_size, kind, serve_file};
use crate::http::request::weighted_list;
use crate::http::{Body, Request, Response};

/// Files this size or smaller always go out as they are, without a look
/// for siblings (three `openat2` calls for a browser: a quarter of such a
/// request's CPU): the headers would eat most of the gain.
const MIN_SIZE: u64 = 1024;
/// Files larger than this are never compressed on the fly: they would
/// have to be read whole into memory.
const MAX_SIZE: u64 = 8 * 1024 * 1024;
/// flate2's fastest level.
const GZIP_LEVEL: u32 = 1;
/// Brotli quality 3: on JavaScript, quality 4 is 3-11 % smaller for 1.1
/// to 1.3 times the CPU at 100 KiB, but 2 to 5 times at 1 to 8 MiB.
const BROTLI_QUALITY: i32 = 3;
/// zstd's default level.
const ZSTD_LEVEL: i32 = 3;

/// A content coding we can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Br,
    Zstd,
    Gzip,
}

/// On equal q-values, the sibling to send: the smallest.
const SIBLING_ORDER: [Coding; 3] = [Coding::Br, Coding::Zstd, Coding::Gzip];
/// On equal q-values, the coding to compress with: the cheapest per byte
/// saved.
const ON_THE_FLY_ORDER: [Coding; 3] = [Coding::Zstd, Coding::Br, Coding::Gzip];

impl Coding {
    /// Its name in `Accept-Encoding` and `Content-Encoding`.
    fn token(self) -> &'static str {
        match self {
            Coding::Br => "br",
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
        }
    }

    /// The suffix of a precompressed sibling's name.
    fn extension(self) -> &'static [u8] {
        match self {
            Coding::Br => b".br",
            Coding::Zstd => b".zst",
            Coding::Gzip => b".gz",
        }
    }
}

/// What an `Accept-Encoding` value allows: each coding's q-value, in
/// thousandths; `None` when neither it nor `*` was named.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Accepted {
    br: Option<u16>,
    zstd: Option<u16>,
    gzip: Option<u16>,
    identity: Option<u16>,
    any: Option<u16>,
}

impl Accepted {
    /// Parses a comma list of `coding[;q=value]`. Unknown codings are
    /// skipped, and so is an entry whose q-value is malformed; a coding
    /// named twice keeps the last q-value. Names are case-insensitive;
    /// `x-gzip` is `gzip` (RFC 9110 8.4.1.3).
    fn parse(value: &str) -> Accepted {
        let mut accepted = Accepted::default();
        for (name, q) in weighted_list(value) {
            let Some(q) = q else { continue };
            let slot = if name.eq_ignore_ascii_case("br") {
                &mut accepted.br
            } else if name.eq_ignore_ascii_case("zstd") {
                &mut accepted.zstd
            } else if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
                &mut accepted.gzip
            } else if name.eq_ignore_ascii_case("identity") {
                &mut accepted.identity
            } else if name == "*" {
                &mut accepted.any
            } else {
                continue;
            };
            *slot = Some(q);
        }
        accepted
    }

    /// The q-value of `coding`: its own, else `*`'s, else 0.
    fn q(&self, coding: Coding) -> u16 {
        let own = match coding {
            Coding::Br => self.br,
            Coding::Zstd => self.zstd,
            Coding::Gzip => self.gzip,
        };
        own.or(self.any).unwrap_or(0)
    }

    /// The codings the client accepts, best first; `order` breaks ties.
    /// A coding is left out when its q is 0, or lower than a q-value the
    /// client gave the identity (itself or through `*`): unnamed, the
    /// identity is acceptable but doesn't compete.
    fn ranked(&self, order: [Coding; 3]) -> impl Iterator<Item = Coding> + use<> {
        let floor = self.identity.or(self.any).unwrap_or(0);
        let q = |c: Coding| self.q(c);
        let mut ranked = order;
        // Stable insertion sort by q, descending: three items, no allocation.
        for i in 1..ranked.len() {
            let mut j = i;
            while j > 0 && q(ranked[j]) > q(ranked[j - 1]) {
                ranked.swap(j, j - 1);
                j -= 1;
            }
        }
        let usable = ranked.map(|c| {
            let qc = q(c);
            (qc > 0 && qc >= floor).then_some(c)
        });
        usable.into_iter().flatten()
    }
}

/// Whether a file of this `Content-Type` (as [`content_type`] gives it:
/// looked up once per request) is worth compressing: text, JavaScript,
/// JSON, XML and their `+json`/`+xml` kin (SVG among them). Not images,
/// audio, video, fonts or archives (compressed already), nor WebAssembly
/// (binary, and often many MiB in a debug build).
fn compressible(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or_default();
    mime.starts_with("text/")
        || matches!(
            mime,
            "application/javascript" | "application/json" | "application/xml"
        )
        || mime.ends_with("+json")
        || mime.ends_with("+xml")
}

/// `data` in `coding`, at the fixed fast level (so the same bytes give
/// the same output: the ETag can stay strong).
fn compress(coding: Coding, data: &[u8]) -> io::Result<Vec<u8>> {
    match coding {
        Coding::Gzip => {
            let out = Vec::with_capacity(data.len() / 3 + 64);
            let mut encoder =
                flate2::write::GzEncoder::new(out, flate2::Compression::new(GZIP_LEVEL));
            encoder.write_all(data)?;
            encoder.finish()
        }
        Coding::Br => {
            let params = brotli::enc::BrotliEncoderParams {
                quality: BROTLI_QUALITY,
                size_hint: data.len(),
                ..Default::default()
            };
            let mut out = Vec::with_capacity(data.len() / 3 + 64);
            brotli::BrotliCompress(&mut &data[..], &mut out, &params)?;
            Ok(out)
        }
        Coding::Zstd => zstd::bulk::compress(data, ZSTD_LEVEL),
    }
}

impl StaticFiles {
    /// Turns compression on the fly on or off (builder style).
    /// Precompressed siblings are served either way: they cost no CPU, and
    /// someone made them on purpose.
    pub(crate) fn compress(mut self, on: bool) -> StaticFiles {
        self.compress = on;
        self
    }

    /// A page made in memory, `len` bytes long, whose validators are `v`
    /// (live reload's page with its tag): compressed on the fly for a
    /// client that accepts it, as a file of that length would be, else as
    /// it is; `make` makes it, unless the answer is a 304. Never a range:
    /// its bytes are not the file's.
    pub(super) fn serve_made(
        &self,
        req: &Request,
        name: &[u8],
        v: Validators,
        len: u64,
        make: impl FnOnce() -> io::Result<Vec<u8>>,
    ) -> Response {
        let worth_it = self.compress && len > MIN_SIZE && len <= MAX_SIZE;
        let coding = match worth_it && !req.accept_encoding.is_empty() {
            true => Accepted::parse(&req.accept_encoding)
                .ranked(ON_THE_FLY_ORDER)
                .next(),
            false => None,
        };
        encoded(req, name, content_type(name), coding, v, || {
            let page = make()?;
            Ok(Body::Bytes(match coding {
                Some(coding) => compress(coding, &page)?,
                None => page,
            }))
        })
    }

    /// Serves the regular file `file` (opened from `rel`, whose status is
    /// `st`) in the best encoding the client accepts: see the module doc.
    pub(super) fn serve_negotiated(
        &self,
        req: &Request,
        rel: &[u8],
        file: File,
        st: &FileStat,
    ) -> Response {
        let name = file_name(rel);
        let size = file_size(st);
        // Live reload: a page gets its tag (one branch when it is off).
        if let Some(generation) = self.reload_generation()
            && is_page(name)
            && let Some(page) = self.serve_page(req, name, &file, st, generation)
        {
            return page;
        }
        // The type, once: the answer's header, and whether it compresses.
        let mime = content_type(name);
        let on_the_fly = self.compressed_on_the_fly(&mime, size);
        // No Accept-Encoding (wrk, curl), a range, or a file too small to
        // gain anything: the plain path, with no sibling looked up.
        if !negotiates(req, size) || !req.range.is_empty() {
            return identity(req, mime, file, st, on_the_fly);
        }
        let accepted = Accepted::parse(&req.accept_encoding);
        let mut sibling_seen = false;
        let mut path = Vec::new();
        for coding in accepted.ranked(SIBLING_ORDER) {
            path.clear();
            path.extend_from_slice(rel);
            path.extend_from_slice(coding.extension());
            let Ok(fd) = self.root.open_beneath(&path) else {
                continue;
            };
            let Ok(sibling) = stat::fstat(&fd) else {
                continue;
            };
            if kind(&sibling) != Kind::File {
                continue;
            }
            sibling_seen = true;
            if (sibling.st_mtime, sibling.st_mtime_nsec) < (st.st_mtime, st.st_mtime_nsec) {
                continue; // stale: the file was edited after it was compressed
            }
            let body = Body::File {
                file: File::from(fd),
                offset: 0,
                len: file_size(&sibling),
            };
            return encoded(
                req,
                name,
                mime,
                Some(coding),
                Validators::of(&sibling),
                || Ok(body),
            );
        }
        if on_the_fly && let Some(coding) = accepted.ranked(ON_THE_FLY_ORDER).next() {
            return encoded(req, name, mime, Some(coding), Validators::of(st), || {
                let data = read_whole(&file, size)?;
                Ok(Body::Bytes(compress(coding, &data)?))
            });
        }
        identity(req, mime, file, st, on_the_fly || sibling_seen)
    }
}

impl StaticFiles {
    /// Whether a file of this name and size is compressed on the fly for a
    /// client that accepts it: its plain answer then says `Vary`.
    /// Whether a file of `content_type` and `size` is compressed on the
    /// fly for a client that accepts it.
    pub(super) fn compressed_on_the_fly(&self, content_type: &str, size: u64) -> bool {
        self.compress && size > MIN_SIZE && size <= MAX_SIZE && compressible(content_type)
    }
}

/// Whether a coding is negotiated for a file of `size` bytes; if not, the
/// plain file goes out (with a range or not): no `Accept-Encoding` (wrk,
/// curl), or a file too small to gain anything.
pub(super) fn negotiates(req: &Request, size: u64) -> bool {
    size > MIN_SIZE && !req.accept_encoding.is_empty()
}

/// Up to `size` bytes of `file` from its start, in one `pread` as a rule
/// (fewer if it shrank meanwhile). Only for files up to [`MAX_SIZE`].
pub(super) fn read_whole(file: &File, size: u64) -> io::Result<Vec<u8>> {
    let mut data = vec![0; size as usize];
    let mut filled = 0;
    while filled < data.len() {
        match file.read_at(&mut data[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    data.truncate(filled);
    Ok(data)
}

/// The plain file, of type `mime`; `vary` when another client could get
/// it encoded.
fn identity(
    req: &Request,
    mime: Cow<'static, str>,
    file: File,
    st: &FileStat,
    vary: bool,
) -> Response {
    let resp = serve_file(req, mime, file, st);
    if vary && matches!(resp.status, 200 | 206 | 304) {
        resp.header("Vary", "Accept-Encoding")
    } else {
        resp
    }
}

/// A representation of `name` other than the plain file: encoded in
/// `coding`, or made in memory (live reload's page), or both. `v` are its
/// validators (the ETag gets the coding's suffix; a made page's have no
/// date): a 304 if the client has it, else the body `body` makes (called
/// only then, so a 304 compresses nothing).
fn encoded(
    req: &Request,
    name: &[u8],
    mime: Cow<'static, str>,
    coding: Option<Coding>,
    mut v: Validators,
    body: impl FnOnce() -> io::Result<Body>,
) -> Response {
    if let Some(coding) = coding {
        v.tag(coding.token());
    }
    let dated = |resp: Response, date: String| match date.is_empty() {
        true => resp,
        false => resp.header("Last-Modified", date),
    };
    if not_modified(&req.if_none_match, &req.if_modified_since, &v) {
        let resp = Response::new(304, Body::Empty)
            .header("ETag", v.etag)
            .header("Cache-Control", "no-cache")
            .header("Vary", "Accept-Encoding");
        return dated(resp, v.last_modified);
    }
    let body = match body() {
        Ok(body) => body,
        Err(err) => {
            log::warn!(
                "static: {} of {:?}: {err}",
                coding.map_or("a page", Coding::token),
                String::from_utf8_lossy(name)
            );
            return Response::error(500);
        }
    };
    // No Accept-Ranges: a range always gets the identity file, so these
    // bytes can't be asked for in parts.
    let mut resp = Response::new(200, body).header("Content-Type", mime);
    if let Some(coding) = coding {
        resp = resp.header("Content-Encoding", coding.token());
    }
    let resp = resp.header("Vary", "Accept-Encoding");
    dated(resp, v.last_modified)
        .header("ETag", v.etag)
        .header("Cache-Control", "no-cache")
        .header("X-Content-Type-Options", "nosniff")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::static_files::test_support::{
        TempRoot, body_bytes, get_with, header, request,
    };
    use std::io::Read;
    use std::time::{Duration, SystemTime};

    fn ranked(value: &str, order: [Coding; 3]) -> Vec<Coding> {
        Accepted::parse(value).ranked(order).collect()
    }

    fn decode(coding: Coding, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match coding {
            Coding::Gzip => {
                flate2::read::GzDecoder::new(bytes)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Coding::Br => {
                brotli::Decompressor::new(bytes, 4096)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Coding::Zstd => out = zstd::stream::decode_all(bytes).unwrap(),
        }
        out
    }

    /// A 4 KiB script: compressible, over the 1 KiB floor.
    fn script() -> Vec<u8> {
        b"function hello(name) { return 'hello, ' + name; }\n"
            .repeat(80)
            .to_vec()
    }

    fn write(root: &TempRoot, name: &str, bytes: &[u8]) {
        std::fs::write(root.path.join(name), bytes).unwrap();
    }

    /// A root with `app.js` and `app.css` (compressible, over 1 KiB), and a
    /// sibling of the styles.
    fn app_and_styles_with(sibling: &str, bytes: &[u8]) -> TempRoot {
        let root = TempRoot::new();
        write(&root, "app.js", &script());
        write(&root, "app.css", &script());
        write(&root, sibling, bytes);
        root
    }

    /// Makes `name` older than everything written since, by a minute.
    fn age(root: &TempRoot, name: &str) {
        let file = File::options()
            .write(true)
            .open(root.path.join(name))
            .unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(60))
            .unwrap();
    }

    use Coding::{Br, Gzip, Zstd};

    #[test]
    fn negotiation_honours_q_values_and_breaks_ties_by_order() {
        let s = SIBLING_ORDER;
        let f = ON_THE_FLY_ORDER;
        assert_eq!(ranked("gzip, deflate, br, zstd", s), [Br, Zstd, Gzip]);
        assert_eq!(ranked("gzip, deflate, br, zstd", f), [Zstd, Br, Gzip]);
        assert_eq!(ranked("gzip", s), [Gzip]);
        assert_eq!(ranked("x-gzip", f), [Gzip]);
        assert_eq!(ranked(" GZIP ; Q=0.5 ,\tBr", s), [Br, Gzip]);
        assert_eq!(
            ranked("br;q=0.2, gzip;q=0.8, zstd;q=0.5", s),
            [Gzip, Zstd, Br]
        );
        // q=0 refuses, alone or through `*`.
        assert_eq!(ranked("br;q=0, gzip", s), [Gzip]);
        assert_eq!(ranked("*", s), [Br, Zstd, Gzip]);
        assert_eq!(ranked("*;q=0", s), []);
        assert_eq!(ranked("gzip;q=0, *", f), [Zstd, Br]);
        assert_eq!(ranked("*;q=0, zstd", s), [Zstd]);
        // Nothing we speak.
        for value in [
            "",
            "identity",
            "deflate",
            "compress, deflate",
            ",,;",
            "br;q=x",
        ] {
            assert_eq!(ranked(value, s), [], "{value:?}");
        }
        // The identity competes only when the client rates it.
        assert_eq!(ranked("br;q=0.5", s), [Br]);
        assert_eq!(ranked("br;q=0.5, identity", s), []);
        assert_eq!(ranked("br;q=0.5, gzip, identity;q=0.8", s), [Gzip]);
        assert_eq!(ranked("br;q=0.5, *;q=0.5", s), [Br, Zstd, Gzip]);
        // The last mention of a coding wins; unknown parameters are ignored.
        assert_eq!(ranked("gzip;q=0, gzip;q=1", s), [Gzip]);
        assert_eq!(ranked("gzip;level=9", s), [Gzip]);
    }

    #[test]
    fn compressible_types() {
        for name in [
            "a.html", "a.css", "a.js", "a.mjs", "a.json", "a.svg", "a.xml", "a.txt", "a.csv",
            "a.md", "A.JS",
        ] {
            assert!(compressible(&content_type(name.as_bytes())), "{name}");
        }
        for name in [
            "a.png", "a.jpg", "a.woff2", "a.gz", "a.br", "a.zip", "a.wasm", "a.mp4", "a.bin",
            "noext", "a.pdf",
        ] {
            assert!(!compressible(&content_type(name.as_bytes())), "{name}");
        }
    }

    #[test]
    fn compression_round_trips_and_is_deterministic() {
        let data = script();
        for coding in ON_THE_FLY_ORDER {
            let once = compress(coding, &data).unwrap();
            assert!(once.len() < data.len() / 4, "{coding:?}: {}", once.len());
            assert_eq!(decode(coding, &once), data, "{coding:?}");
            assert_eq!(compress(coding, &data).unwrap(), once, "{coding:?}");
        }
    }

    #[test]
    fn a_file_that_shrank_is_read_as_it_is_now() {
        let root = TempRoot::new();
        write(&root, "app.js", b"short");
        let file = File::open(root.path.join("app.js")).unwrap();
        assert_eq!(read_whole(&file, 4096).unwrap(), b"short");
        assert_eq!(read_whole(&file, 3).unwrap(), b"sho");
    }

    #[test]
    fn etags_get_the_coding_inside_the_quotes() {
        let root = TempRoot::new();
        let st = stat::stat(&root.path.join("hello.txt")).unwrap();
        let mut v = Validators::of(&st);
        let plain = v.etag.clone();
        v.tag(Br.token());
        assert_eq!(v.etag, format!("{}-br\"", &plain[..plain.len() - 1]));
        // Live reload's page: its own tag, and no date to be 304 by.
        let remade = Validators::of(&st).remade("lr3");
        assert!(remade.etag.ends_with("-lr3\""), "{}", remade.etag);
        assert!(remade.last_modified.is_empty());
        let long_after = "Fri, 01 Jan 2100 00:00:00 GMT";
        assert!(!not_modified("", long_after, &remade));
        assert!(not_modified("", long_after, &Validators::of(&st)));
    }

    #[test]
    fn on_the_fly_compression_serves_each_coding() {
        let root = TempRoot::new();
        write(&root, "app.js", &script());
        for sf in root.servers() {
            let plain = get_with(&sf, "/app.js", "");
            let plain_etag = header(&plain, "ETag").unwrap().to_owned();
            assert_eq!(header(&plain, "Vary"), Some("Accept-Encoding"));
            let mut etags = vec![plain_etag.clone()];
            for coding in [Gzip, Br, Zstd] {
                let ae = format!("Accept-Encoding: {}\r\n", coding.token());
                let mut resp = get_with(&sf, "/app.js", &ae);
                assert_eq!(resp.status, 200);
                assert_eq!(header(&resp, "Content-Encoding"), Some(coding.token()));
                assert_eq!(header(&resp, "Vary"), Some("Accept-Encoding"));
                assert_eq!(
                    header(&resp, "Content-Type"),
                    Some("text/javascript; charset=utf-8")
                );
                assert_eq!(header(&resp, "Accept-Ranges"), None);
                let etag = header(&resp, "ETag").unwrap().to_owned();
                assert_eq!(
                    etag,
                    format!(
                        "{}-{}\"",
                        &plain_etag[..plain_etag.len() - 1],
                        coding.token()
                    )
                );
                assert!(matches!(resp.body, Body::Bytes(_)));
                assert_eq!(decode(coding, &body_bytes(&mut resp)), script());
                // 304 for its own tag, 200 for another encoding's.
                let inm = |tag: &str| format!("{ae}If-None-Match: {tag}\r\n");
                let not_modified = get_with(&sf, "/app.js", &inm(&etag));
                assert_eq!(not_modified.status, 304);
                assert_eq!(header(&not_modified, "ETag"), Some(etag.as_str()));
                assert_eq!(header(&not_modified, "Vary"), Some("Accept-Encoding"));
                assert_eq!(get_with(&sf, "/app.js", &inm(&plain_etag)).status, 200);
                etags.push(etag);
            }
            etags.sort();
            etags.dedup();
            assert_eq!(etags.len(), 4, "{etags:?}");
            // A browser's list gets zstd, the cheapest.
            let browser = "Accept-Encoding: gzip, deflate, br, zstd\r\n";
            let resp = get_with(&sf, "/app.js", browser);
            assert_eq!(header(&resp, "Content-Encoding"), Some("zstd"));
        }
    }

    #[test]
    fn siblings_win_and_follow_the_preference() {
        let root = TempRoot::new();
        write(&root, "app.js", &script());
        write(&root, "app.js.gz", b"GZ");
        write(&root, "app.js.br", b"BR");
        write(&root, "app.js.zst", b"ZST");
        for sf in root.servers() {
            for (ae, coding, body) in [
                ("gzip, deflate, br, zstd", Br, &b"BR"[..]),
                ("gzip, zstd", Zstd, b"ZST"),
                ("gzip", Gzip, b"GZ"),
                ("br;q=0.5, gzip", Gzip, b"GZ"),
                ("br;q=0, zstd;q=0, *", Gzip, b"GZ"),
            ] {
                let mut resp = get_with(&sf, "/app.js", &format!("Accept-Encoding: {ae}\r\n"));
                assert_eq!(resp.status, 200, "{ae}");
                assert_eq!(header(&resp, "Content-Encoding"), Some(coding.token()));
                assert_eq!(header(&resp, "Vary"), Some("Accept-Encoding"));
                assert_eq!(
                    header(&resp, "Content-Type"),
                    Some("text/javascript; charset=utf-8")
                );
                assert!(matches!(resp.body, Body::File { .. }), "{ae}");
                assert_eq!(body_bytes(&mut resp), body, "{ae}");
                assert!(
                    header(&resp, "ETag")
                        .unwrap()
                        .ends_with(&format!("-{}\"", coding.token()))
                );
            }
        }
    }

    #[test]
    fn a_sibling_needs_to_be_a_fresh_regular_file() {
        let root = TempRoot::new();
        write(&root, "app.js", &script());
        write(&root, "app.js.br", b"BR");
        std::fs::create_dir(root.path.join("app.js.zst")).unwrap();
        write(&root, "app.js.gz", b"GZ");
        age(&root, "app.js.gz");
        // Of no compressible type: never compressed on the fly.
        let pixels = vec![b'P'; 2048];
        write(&root, "logo.png", &pixels);
        write(&root, "logo.png.br", b"BR");
        std::os::unix::fs::symlink("/etc/hostname", root.path.join("logo.png.gz")).unwrap();
        for sf in root.servers() {
            // A directory named like a sibling is skipped; a stale one too.
            let zstd = get_with(&sf, "/app.js", "Accept-Encoding: zstd\r\n");
            assert_eq!(header(&zstd, "Content-Encoding"), Some("zstd"));
            assert!(matches!(zstd.body, Body::Bytes(_)), "compressed now");
            // Any sibling accepted beats compressing now.
            let mut br = get_with(&sf, "/app.js", "Accept-Encoding: zstd, br;q=0.5\r\n");
            assert_eq!(header(&br, "Content-Encoding"), Some("br"));
            assert_eq!(body_bytes(&mut br), b"BR");
            let gz = get_with(&sf, "/app.js", "Accept-Encoding: gzip\r\n");
            assert!(matches!(gz.body, Body::Bytes(_)), "not the stale .gz");
            let mut png = get_with(&sf, "/logo.png", "Accept-Encoding: br\r\n");
            assert_eq!(header(&png, "Content-Encoding"), Some("br"));
            assert_eq!(header(&png, "Content-Type"), Some("image/png"));
            assert_eq!(body_bytes(&mut png), b"BR");
            // A symlink out of the root is not followed: identity.
            let mut png = get_with(&sf, "/logo.png", "Accept-Encoding: gzip\r\n");
            assert_eq!(header(&png, "Content-Encoding"), None);
            assert_eq!(header(&png, "Vary"), None);
            assert_eq!(body_bytes(&mut png), pixels);
        }
    }

    #[test]
    fn the_identity_is_left_alone() {
        let root = TempRoot::new();
        write(&root, "app.js", &script());
        write(&root, "small.js", b"let x = 1;");
        write(&root, "blob.bin", &vec![7; 4096]);
        for sf in root.servers() {
            let all = "Accept-Encoding: gzip, br, zstd\r\n";
            // Small, or of a type not worth it: untouched, no Vary.
            for (target, content) in [("/small.js", &b"let x = 1;"[..]), ("/blob.bin", &[7; 4096])]
            {
                let mut resp = get_with(&sf, target, all);
                assert_eq!(header(&resp, "Content-Encoding"), None, "{target}");
                assert_eq!(header(&resp, "Vary"), None, "{target}");
                assert_eq!(body_bytes(&mut resp), content, "{target}");
            }
            // A range gets the identity bytes, Vary still said.
            let mut range = get_with(&sf, "/app.js", &format!("{all}Range: bytes=0-9\r\n"));
            assert_eq!(range.status, 206);
            assert_eq!(header(&range, "Content-Encoding"), None);
            assert_eq!(header(&range, "Vary"), Some("Accept-Encoding"));
            assert_eq!(body_bytes(&mut range), &script()[..10]);
            // Codings we don't speak, or refused ones.
            for ae in ["identity", "deflate", "*;q=0", "gzip;q=0"] {
                let resp = get_with(&sf, "/app.js", &format!("Accept-Encoding: {ae}\r\n"));
                assert_eq!(header(&resp, "Content-Encoding"), None, "{ae}");
                assert_eq!(header(&resp, "Vary"), Some("Accept-Encoding"), "{ae}");
            }
        }
    }

    #[test]
    fn compress_off_keeps_siblings_only() {
        let root = app_and_styles_with("app.css.gz", b"GZ");
        let sf = StaticFiles::open(&root.path).unwrap().compress(false);
        let plain = get_with(&sf, "/app.js", "Accept-Encoding: gzip\r\n");
        assert_eq!(header(&plain, "Content-Encoding"), None);
        assert_eq!(header(&plain, "Vary"), None);
        let mut sibling = get_with(&sf, "/app.css", "Accept-Encoding: gzip\r\n");
        assert_eq!(header(&sibling, "Content-Encoding"), Some("gzip"));
        assert_eq!(body_bytes(&mut sibling), b"GZ");
        // Asked for br only, it saw no sibling: plain, and no Vary.
        let plain = get_with(&sf, "/app.css", "Accept-Encoding: br\r\n");
        assert_eq!(header(&plain, "Vary"), None);
    }

    #[test]
    fn files_over_the_cap_or_under_the_floor_go_out_as_they_are() {
        let root = TempRoot::new();
        let file = File::create(root.path.join("huge.txt")).unwrap();
        file.set_len(MAX_SIZE + 1).unwrap();
        write(&root, "edge.txt", &vec![b'a'; MAX_SIZE as usize]);
        write(&root, "floor.txt", &vec![b'a'; MIN_SIZE as usize]);
        let sf = StaticFiles::open(&root.path).unwrap();
        let huge = get_with(&sf, "/huge.txt", "Accept-Encoding: gzip\r\n");
        assert_eq!(header(&huge, "Content-Encoding"), None);
        assert!(matches!(huge.body, Body::File { len, .. } if len == MAX_SIZE + 1));
        // 1 KiB or less: as it is, its siblings not even looked for.
        write(&root, "floor.txt.gz", b"GZ");
        let floor = get_with(&sf, "/floor.txt", "Accept-Encoding: gzip\r\n");
        assert_eq!(header(&floor, "Content-Encoding"), None);
        assert_eq!(header(&floor, "Vary"), None);
        let mut edge = get_with(&sf, "/edge.txt", "Accept-Encoding: gzip\r\n");
        assert_eq!(header(&edge, "Content-Encoding"), Some("gzip"));
        assert_eq!(
            decode(Gzip, &body_bytes(&mut edge)).len(),
            MAX_SIZE as usize
        );
    }

    #[test]
    fn head_gets_the_get_headers_and_length() {
        let root = app_and_styles_with("app.css.br", b"BR");
        let sf = StaticFiles::open(&root.path).unwrap();
        for target in ["/app.js", "/app.css"] {
            let ae = "Accept-Encoding: br\r\n";
            let get = sf.serve(&request("GET", target, ae));
            let head = sf.serve(&request("HEAD", target, ae));
            assert_eq!(head.status, 200);
            assert_eq!(head.headers, get.headers, "{target}");
            assert_eq!(head.body.len(), get.body.len(), "{target}");
            assert!(head.body.len() < script().len() as u64 / 4, "{target}");
        }
    }

    #[test]
    fn an_index_html_is_negotiated_too() {
        let root = TempRoot::new();
        let page = b"<p>index</p>\n".repeat(200);
        write(&root, "site/index.html", &page);
        let sf = StaticFiles::open(&root.path).unwrap();
        let mut resp = get_with(&sf, "/site/", "Accept-Encoding: gzip\r\n");
        assert_eq!(header(&resp, "Content-Encoding"), Some("gzip"));
        assert_eq!(decode(Gzip, &body_bytes(&mut resp)), page);
    }
}
