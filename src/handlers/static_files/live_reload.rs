//! Live reload's part of serving files: the script tag every HTML
//! response gets, the script, and the event stream the script listens to.
//!
//! With `live_reload` on, every page forkpool serves (an `.html` file, a
//! directory's `index.html`, the SPA fallback, `404.html`, a listing) gets
//! `<script src="/-/livereload.js" data-since="N"></script>` inserted
//! before its last `</body>` (appended when it has none), N being the
//! change feed's generation when the page was made. The script (served
//! from `/-/livereload.js`, not inline, so a page whose Content Security
//! Policy allows only `'self'` scripts still runs it) opens an
//! `EventSource` on `/-/livereload?since=N`; the worker's engine then
//! sends an event for each change after N (`css`: swap the stylesheets,
//! `reload`: reload the page), and at once if one came between the page
//! and the stream.
//!
//! The page with its tag is another representation than the file: its
//! ETag gets the generation (`"…-lrN"`), it has no `Last-Modified` (the
//! file's date doesn't date the tag), it ignores `Range` (the tag moves
//! the bytes), and it is compressed on the fly like a file would be. Pages
//! over [`MOST_HTML`] go out as they are, without the tag.

use std::fs::File;

use nix::sys::stat::FileStat;

use super::compress::read_whole;
use super::validators::Validators;
use super::{StaticFiles, file_size};
use crate::http::{Body, Request, Response};

/// Where the script is served.
pub(crate) const SCRIPT_NAME: &str = "livereload.js";
/// Where the event stream is served.
pub(crate) const STREAM_NAME: &str = "livereload";
/// Pages larger than this are not read into memory to get the tag.
const MOST_HTML: u64 = 8 * 1024 * 1024;

/// The script: listens to the stream, reloads or swaps stylesheets, and
/// says how it is doing in `window.__forkpoolLiveReload` (`connecting`,
/// `open`, `closed`; tests wait for `open`). After an error (the worker it
/// streamed from restarted, say) it reconnects with the last generation it
/// was told about, so it hears only what it has not seen.
const SCRIPT: &str = r#"// forkpool live reload: reloads this page when a file under the served
// root changes, or swaps its stylesheets when only stylesheets did.
(() => {
  const me = document.currentScript;
  let since = (me && me.dataset.since) || "0";
  const say = (state) => { window.__forkpoolLiveReload = state; };
  const swapStylesheets = () => {
    for (const link of document.querySelectorAll('link[rel~="stylesheet"]')) {
      const url = new URL(link.href, location.href);
      if (url.origin !== location.origin) continue;
      url.searchParams.set("forkpool-live-reload", Date.now());
      const fresh = link.cloneNode();
      fresh.href = url.href;
      // The old sheet stays until the new one is in: no flash of an
      // unstyled page.
      fresh.addEventListener("load", () => link.remove());
      fresh.addEventListener("error", () => fresh.remove());
      link.after(fresh);
    }
  };
  const connect = () => {
    say("connecting");
    const events = new EventSource("/-/livereload?since=" + encodeURIComponent(since));
    events.onopen = () => say("open");
    events.addEventListener("reload", () => {
      events.close();
      location.reload();
    });
    events.addEventListener("css", (event) => {
      since = event.data;
      swapStylesheets();
    });
    events.onerror = () => {
      events.close();
      say("closed");
      setTimeout(connect, 1000);
    };
  };
  connect();
})();
"#;

/// `/-/livereload.js`.
pub(crate) fn script() -> Response {
    Response::new(200, Body::Static(SCRIPT.as_bytes()))
        .header("Content-Type", "text/javascript; charset=utf-8")
        .header("Cache-Control", "no-cache")
        .header("X-Content-Type-Options", "nosniff")
        .uncounted()
}

/// `/-/livereload?since=N`: the event stream, from generation N (from
/// `generation`, the current one, when the query doesn't say: such a
/// client hears only of changes to come).
pub(crate) fn stream(req: &Request, generation: u64) -> Response {
    let since = req
        .query_param("since")
        .and_then(|since| since.parse().ok())
        .unwrap_or(generation);
    Response::new(200, Body::Events { since })
        .header("Content-Type", "text/event-stream")
        .header("Cache-Control", "no-cache")
        .header("X-Content-Type-Options", "nosniff")
        .uncounted()
}

/// The tag a page made at `generation` gets.
fn tag(generation: u64) -> String {
    format!("<script src=\"/-/{SCRIPT_NAME}\" data-since=\"{generation}\"></script>")
}

/// Inserts `tag` before the last `</body` (in any case), or appends it.
fn inject(html: &mut Vec<u8>, tag: &str) {
    const CLOSING: &[u8] = b"</body";
    let at = html
        .windows(CLOSING.len())
        .rposition(|window| window.eq_ignore_ascii_case(CLOSING))
        .unwrap_or(html.len());
    html.splice(at..at, tag.bytes());
}

impl StaticFiles {
    /// The change feed's generation, when live reload is on.
    pub(crate) fn reload_generation(&self) -> Option<u64> {
        self.live_reload.map(crate::changes::generation_in)
    }

    /// A page file (`name`, open as `file`, status `st`) with the tag, in
    /// the coding the client accepts; `None` when it is too large to get
    /// one (serve the file as it is).
    pub(super) fn serve_page(
        &self,
        req: &Request,
        name: &[u8],
        file: &File,
        st: &FileStat,
        generation: u64,
    ) -> Option<Response> {
        let size = file_size(st);
        if size > MOST_HTML {
            return None;
        }
        let tag = tag(generation);
        let v = Validators::of(st).remade(&format!("lr{generation}"));
        let len = size + tag.len() as u64;
        Some(self.serve_made(req, name, v, len, || {
            let mut html = read_whole(file, size)?;
            inject(&mut html, &tag);
            Ok(html)
        }))
    }

    /// A listing with the tag, when live reload is on.
    pub(super) fn tag_page(&self, html: &mut Vec<u8>) {
        if let Some(generation) = self.reload_generation() {
            inject(html, &tag(generation));
        }
    }

    /// A page file read whole with the tag (`404.html`), when live reload
    /// is on and the page is at most [`MOST_HTML`]; `None`: send the file
    /// as it is.
    pub(super) fn page_with_tag(&self, file: &File, st: &FileStat) -> Option<Vec<u8>> {
        let generation = self.reload_generation()?;
        let size = file_size(st);
        if size > MOST_HTML {
            return None;
        }
        let mut page = read_whole(file, size).ok()?;
        inject(&mut page, &tag(generation));
        Some(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::static_files::test_support::{
        TempRoot, body_bytes, body_text, get, get_with, header,
    };
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A feed word at generation `generation` (the word's layout is the
    /// feed's: generation above the stylesheets bit).
    fn word(generation: u64) -> &'static AtomicU64 {
        Box::leak(Box::new(AtomicU64::new(generation << 1)))
    }

    const TAG_AT_3: &str = "<script src=\"/-/livereload.js\" data-since=\"3\"></script>";

    #[test]
    fn every_page_gets_the_tag_and_nothing_else_does() {
        let root = TempRoot::new();
        std::fs::write(root.path.join("page.html"), "<body>hi</body>").unwrap();
        std::fs::write(root.path.join("404.html"), "<body>gone</body>").unwrap();
        std::fs::write(root.path.join("index.html"), "<body>app</body>").unwrap();
        let changes = word(3);
        for sf in root.servers() {
            let sf = sf.live_reload(Some(changes)).spa(true);
            let mut page = get(&sf, "/page.html");
            assert_eq!(page.status, 200);
            assert_eq!(body_text(&mut page), format!("<body>hi{TAG_AT_3}</body>"));
            assert!(header(&page, "ETag").unwrap().ends_with("-lr3\""));
            assert_eq!(header(&page, "Last-Modified"), None);
            let mut index = get(&sf, "/site/");
            assert_eq!(body_text(&mut index), format!("<p>index</p>{TAG_AT_3}"));
            let mut spa = get_with(&sf, "/app/route", "Accept: text/html\r\n");
            assert_eq!(spa.status, 200);
            assert_eq!(body_text(&mut spa), format!("<body>app{TAG_AT_3}</body>"));
            let mut missing = get(&sf, "/nope.txt");
            assert_eq!(missing.status, 404);
            assert_eq!(
                body_text(&mut missing),
                format!("<body>gone{TAG_AT_3}</body>")
            );
            let mut listing = get(&sf, "/sub/");
            assert!(body_text(&mut listing).contains(TAG_AT_3), "listing");
            let mut json = get_with(&sf, "/sub/", "Accept: application/json\r\n");
            assert!(!body_text(&mut json).contains("script"));
            for other in ["/hello.txt", "/style.css", "/data.json"] {
                let mut plain = get(&sf, other);
                assert!(!body_text(&mut plain).contains("livereload"), "{other}");
            }
        }
        // Off: the file as it is, with its own validators.
        for sf in root.servers() {
            let mut page = get(&sf, "/page.html");
            assert_eq!(body_text(&mut page), "<body>hi</body>");
            assert!(!header(&page, "ETag").unwrap().contains("-lr"));
            assert!(header(&page, "Last-Modified").is_some());
        }
    }

    #[test]
    fn a_page_over_the_bound_goes_out_untagged() {
        let root = TempRoot::new();
        let huge = vec![b'x'; MOST_HTML as usize + 1];
        std::fs::write(root.path.join("404.html"), &huge).unwrap();
        std::fs::write(root.path.join("huge.html"), &huge).unwrap();
        for sf in root.servers() {
            let sf = sf.live_reload(Some(word(3)));
            for (target, status) in [("/nope", 404), ("/huge.html", 200)] {
                let resp = get(&sf, target);
                assert_eq!(resp.status, status, "{target}");
                assert!(
                    matches!(resp.body, Body::File { len, .. } if len == MOST_HTML + 1),
                    "{target}: streamed as it is, not read whole"
                );
            }
        }
    }

    #[test]
    fn a_tagged_page_is_its_own_representation() {
        let root = TempRoot::new();
        let long = format!("<html><body>{}</body></html>", "text ".repeat(400));
        std::fs::write(root.path.join("page.html"), &long).unwrap();
        let changes = word(3);
        for sf in root.servers() {
            let sf = sf.live_reload(Some(changes));
            let page = get(&sf, "/page.html");
            let etag = header(&page, "ETag").unwrap().to_owned();
            // Revalidated by its own tag: 304 while the generation stands.
            let again = get_with(&sf, "/page.html", &format!("If-None-Match: {etag}\r\n"));
            assert_eq!(again.status, 304);
            // A range gets the whole page: the tag moved the bytes.
            let mut ranged = get_with(&sf, "/page.html", "Range: bytes=0-9\r\n");
            assert_eq!(ranged.status, 200);
            assert_eq!(body_bytes(&mut ranged).len(), long.len() + TAG_AT_3.len());
            // Compressed after the tag went in.
            let mut zipped = get_with(&sf, "/page.html", "Accept-Encoding: gzip\r\n");
            assert_eq!(header(&zipped, "Content-Encoding"), Some("gzip"));
            assert!(header(&zipped, "ETag").unwrap().ends_with("-lr3-gzip\""));
            let mut unzipped = String::new();
            std::io::Read::read_to_string(
                &mut flate2::read::GzDecoder::new(&body_bytes(&mut zipped)[..]),
                &mut unzipped,
            )
            .unwrap();
            assert!(unzipped.ends_with(&format!("{TAG_AT_3}</body></html>")));
            // A change anywhere makes it another page.
            changes.store(4 << 1, Ordering::Release);
            let later = get_with(&sf, "/page.html", &format!("If-None-Match: {etag}\r\n"));
            assert_eq!(later.status, 200);
            assert!(header(&later, "ETag").unwrap().ends_with("-lr4\""));
            changes.store(3 << 1, Ordering::Release);
        }
    }

    fn injected(html: &str) -> String {
        let mut bytes = html.as_bytes().to_vec();
        inject(&mut bytes, "<T>");
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn the_tag_goes_before_the_last_closing_body() {
        assert_eq!(injected("<body>a</body>"), "<body>a<T></body>");
        assert_eq!(
            injected("<body><pre></body></pre></BODY >\n</html>"),
            "<body><pre></body></pre><T></BODY >\n</html>"
        );
        assert_eq!(injected("<p>no body"), "<p>no body<T>");
        assert_eq!(injected(""), "<T>");
    }

    #[test]
    fn the_tag_names_the_script_and_the_generation() {
        assert_eq!(
            tag(7),
            "<script src=\"/-/livereload.js\" data-since=\"7\"></script>"
        );
        assert!(SCRIPT.contains("/-/livereload?since="));
    }
}
