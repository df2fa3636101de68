//! The listing of a directory that has no `index.html`: an HTML page, or
//! JSON for `Accept: application/json`.
//!
//! What it does: reads a directory's entries through its fd (symlinks listed
//! as themselves, never followed, so a listing never stats outside the
//! root), sorts them as `?sort=name|size|date&order=asc|desc` asks
//! (directories first whatever the order, then by the key, ties by name),
//! and renders one page: names HTML-escaped, hrefs percent-encoded, sizes
//! in KiB/MiB (the exact count in a tooltip), times in UTC, column headers
//! that sort, and colours that follow `prefers-color-scheme`. The JSON is
//! `[{"name", "type": "dir"|"file", "size" (null for a directory),
//! "modified" (RFC 3339, UTC)}]`, in the same order.
//!
//! What it doesn't: decide when a listing is shown (the request flow in
//! `mod.rs` tries `index.html` first, and picks HTML or JSON) or which
//! entries it shows (the flow leaves dotfiles out), or paginate.

use std::cmp::Ordering;
use std::ffi::CString;
use std::fmt::Write as _;
use std::os::fd::OwnedFd;

use nix::dir::Dir;
use nix::fcntl::AtFlags;
use nix::sys::stat;

use super::{Kind, kind};
use crate::http::date::civil_from_days;
use crate::http::request::query_value;

/// One row of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) name: Vec<u8>,
    is_dir: bool,
    size: u64,
    mtime: i64,
}

/// Reads a directory's entries, unsorted ([`sort_entries`] orders them).
/// Entries that vanish or can't be stat'ed are skipped. Symlinks are
/// listed as themselves (not followed), so a listing never stats outside
/// the root.
pub(crate) fn read_entries(dir_fd: OwnedFd) -> nix::Result<Vec<Entry>> {
    let mut dir = Dir::from_fd(dir_fd)?;
    // Names first: the iterator borrows the Dir we then stat through.
    let names: Vec<CString> = dir
        .iter()
        .map_while(Result::ok)
        .map(|entry| entry.file_name().to_owned())
        .filter(|name| name.as_bytes() != b"." && name.as_bytes() != b"..")
        .collect();
    Ok(names
        .into_iter()
        .filter_map(|name| {
            let st = stat::fstatat(&dir, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW).ok()?;
            Some(Entry {
                is_dir: kind(&st) == Kind::Dir,
                size: super::file_size(&st),
                mtime: st.st_mtime,
                name: name.into_bytes(),
            })
        })
        .collect())
}

/// What a listing is ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SortKey {
    Name,
    Size,
    Date,
}

impl SortKey {
    const ALL: [SortKey; 3] = [SortKey::Name, SortKey::Size, SortKey::Date];

    /// The value of `?sort=`.
    fn param(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Size => "size",
            SortKey::Date => "date",
        }
    }

    /// The column's heading.
    fn heading(self) -> &'static str {
        match self {
            SortKey::Name => "Name",
            SortKey::Size => "Size",
            SortKey::Date => "Modified (UTC)",
        }
    }
}

/// The order a listing asks for; by name, ascending, unless the query says
/// otherwise. Unknown values are ignored, as a listing has no error page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sort {
    pub(crate) key: SortKey,
    pub(crate) descending: bool,
}

impl Sort {
    /// From the query string: `sort=name|size|date`, `order=asc|desc`.
    pub(crate) fn from_query(query: Option<&str>) -> Sort {
        let query = query.unwrap_or("");
        let key = query_value(query, "sort")
            .and_then(|value| SortKey::ALL.into_iter().find(|k| k.param() == value))
            .unwrap_or(SortKey::Name);
        Sort {
            key,
            descending: query_value(query, "order") == Some("desc"),
        }
    }
}

/// Directories first (in either order), then by the key, ties by name.
pub(crate) fn sort_entries(entries: &mut [Entry], sort: Sort) {
    entries.sort_by(|a, b| {
        let by_key = match sort.key {
            SortKey::Name => Ordering::Equal,
            // A directory's st_size says nothing about its content.
            SortKey::Size if a.is_dir => Ordering::Equal,
            SortKey::Size => a.size.cmp(&b.size),
            SortKey::Date => a.mtime.cmp(&b.mtime),
        }
        .then_with(|| a.name.cmp(&b.name));
        let by_key = if sort.descending {
            by_key.reverse()
        } else {
            by_key
        };
        b.is_dir.cmp(&a.is_dir).then(by_key)
    });
}

/// Light and dark, as the reader's system prefers.
const STYLE: &str = "<style>:root{color-scheme:light dark}\
body{font-family:system-ui,sans-serif;margin:1.5em;background:#fff;color:#1f2328}\
a{color:#0969da;text-decoration:none}a:hover{text-decoration:underline}\
table{border-collapse:collapse}th,td{padding:.2em 1.5em .2em 0;text-align:left}\
th{border-bottom:1px solid #d0d7de}td.n,th.n{text-align:right}\
tr:hover td{background:#f6f8fa}\
@media (prefers-color-scheme: dark){body{background:#0d1117;color:#e6edf3}\
a{color:#58a6ff}th{border-color:#30363d}tr:hover td{background:#161b22}}</style>";

/// The listing page for directory `rel` (as returned by
/// [`super::path::decode_path`]), its `entries` already in `sort` order.
pub(crate) fn render_listing(rel: &[u8], entries: &[Entry], sort: Sort) -> String {
    let at_root = rel == b".";
    let shown = if at_root {
        "/".to_owned()
    } else {
        format!("/{}/", String::from_utf8_lossy(rel))
    };
    let title = html_escape(&shown);
    let mut html = String::with_capacity(1024 + entries.len() * 200);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>Index of {title}</title>{STYLE}</head>\n\
         <body><h1>Index of {title}</h1>\n<table>\n<tr>"
    );
    for key in SortKey::ALL {
        heading(&mut html, key, sort);
    }
    html.push_str("</tr>\n");
    if !at_root {
        html.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for entry in entries {
        let slash = if entry.is_dir { "/" } else { "" };
        let _ = write!(
            html,
            "<tr><td><a href=\"{href}{slash}\">{name}{slash}</a></td>",
            href = percent_encode(&entry.name),
            name = html_escape(&String::from_utf8_lossy(&entry.name)),
        );
        if entry.is_dir {
            html.push_str("<td class=\"n\">-</td>");
        } else {
            let _ = write!(
                html,
                "<td class=\"n\" title=\"{} bytes\">{}</td>",
                entry.size,
                human_size(entry.size)
            );
        }
        let _ = writeln!(html, "<td>{}</td></tr>", format_utc(entry.mtime));
    }
    html.push_str("</table>\n</body></html>\n");
    html
}

/// A column heading that sorts by its key: ascending first, and the other
/// way round when the listing is already sorted by it (marked by an arrow).
fn heading(html: &mut String, key: SortKey, sort: Sort) {
    let (order, arrow) = match (sort.key == key, sort.descending) {
        (true, false) => ("desc", " &uarr;"),
        (true, true) => ("asc", " &darr;"),
        (false, _) => ("asc", ""),
    };
    let class = if key == SortKey::Size {
        " class=\"n\""
    } else {
        ""
    };
    let _ = write!(
        html,
        "<th{class}><a href=\"?sort={}&amp;order={order}\">{}</a>{arrow}</th>",
        key.param(),
        key.heading()
    );
}

/// One row of the JSON listing, its fields in this order.
#[derive(serde::Serialize)]
struct JsonRow<'a> {
    name: std::borrow::Cow<'a, str>,
    #[serde(rename = "type")]
    kind: &'static str,
    size: Option<u64>,
    modified: String,
}

/// The listing as JSON; see the module docs.
pub(crate) fn listing_json(entries: &[Entry]) -> String {
    let rows: Vec<JsonRow<'_>> = entries
        .iter()
        .map(|entry| JsonRow {
            name: String::from_utf8_lossy(&entry.name),
            kind: if entry.is_dir { "dir" } else { "file" },
            size: (!entry.is_dir).then_some(entry.size),
            modified: format_rfc3339(entry.mtime),
        })
        .collect();
    // Strings and numbers only: serializing can't fail.
    let mut json = serde_json::to_string(&rows).unwrap_or_default();
    json.push('\n');
    json
}

/// `37 B`, `1.5 KiB`, `12 MiB`: three significant figures at most.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
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

/// `2026-11-24T07:30:12Z` for a Unix time.
fn format_rfc3339(secs: i64) -> String {
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let second_of_day = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::static_files::StaticFiles;
    use crate::handlers::static_files::test_support::{
        HELLO, TempRoot, body_text, get, get_with, header,
    };
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

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
            assert!(!html.contains("hidden"), "dotfiles are not listed");
            assert!(html.contains(&format!(
                "<td class=\"n\" title=\"{0} bytes\">{0} B</td>",
                HELLO.len()
            )));
            // Directories (evil.com, site, sub) before files, each by name.
            let pos = |needle: &str| html.find(needle).unwrap();
            assert!(pos("href=\"evil.com/\"") < pos("href=\"site/\""));
            assert!(pos("href=\"sub/\"") < pos("href=\"a%26b%20%3Cc%3E.txt\""));
            assert!(pos("href=\"a%26b%20%3Cc%3E.txt\"") < pos("href=\"hello.txt\""));
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
        sort_entries(&mut entries, Sort::from_query(None));
        let names: Vec<&[u8]> = entries.iter().map(|e| e.name.as_slice()).collect();
        assert_eq!(names, [&b"c"[..], b"z", b"a", b"b"]);
    }

    #[test]
    fn render_listing_at_the_root_and_below() {
        let entries = [Entry {
            name: b"x&y".to_vec(),
            is_dir: true,
            size: 4096,
            mtime: 86_400,
        }];
        let by_name = Sort::from_query(None);
        let top = render_listing(b".", &entries, by_name);
        assert!(top.contains("<title>Index of /</title>"), "{top}");
        assert!(!top.contains("../"), "{top}");
        assert!(
            top.contains("<a href=\"x%26y/\">x&amp;y/</a></td><td class=\"n\">-</td><td>1970-01-02 00:00</td>"),
            "{top}"
        );
        let below = render_listing(b"a/<b>", &[], by_name);
        assert!(below.contains("<h1>Index of /a/&lt;b&gt;/</h1>"), "{below}");
        assert!(below.contains("<a href=\"../\">../</a>"), "{below}");
    }

    #[test]
    fn read_entries_skips_dot_entries_and_does_not_follow_symlinks() {
        let root = TempRoot::new();
        let fd = nix::fcntl::open(
            &root.path,
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        let entries = read_entries(fd).unwrap();
        let find = |name: &[u8]| entries.iter().find(|e| e.name == name);
        assert!(find(b".").is_none() && find(b"..").is_none());
        assert!(find(b"sub").unwrap().is_dir);
        // link-dir points at a directory but is listed as the link it is.
        assert!(!find(b"link-dir").unwrap().is_dir);
        assert_eq!(find(b"hello.txt").unwrap().size, HELLO.len() as u64);
        assert!(entries.iter().any(|e| e.is_dir));
    }

    fn entry(name: &str, is_dir: bool, size: u64, mtime: i64) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            is_dir,
            size,
            mtime,
        }
    }

    fn sorted(query: &str) -> Vec<String> {
        let mut entries = vec![
            entry("b.txt", false, 10, 300),
            entry("docs", true, 4096, 100),
            entry("a.txt", false, 2000, 100),
            entry("c.txt", false, 10, 200),
            entry("assets", true, 64, 200),
        ];
        sort_entries(&mut entries, Sort::from_query(Some(query)));
        entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.name).into_owned())
            .collect()
    }

    #[test]
    fn sorts_by_name_size_or_date_directories_first() {
        // Sizes: equal ones by name; directories by name (their size is the
        // file system's business). Other parameters don't matter.
        for (query, order) in [
            ("", ["assets", "docs", "a.txt", "b.txt", "c.txt"]),
            ("order=desc", ["docs", "assets", "c.txt", "b.txt", "a.txt"]),
            ("sort=size", ["assets", "docs", "b.txt", "c.txt", "a.txt"]),
            (
                "sort=size&order=desc",
                ["docs", "assets", "a.txt", "c.txt", "b.txt"],
            ),
            (
                "x=1&sort=date",
                ["docs", "assets", "a.txt", "c.txt", "b.txt"],
            ),
            (
                "sort=date&order=desc",
                ["assets", "docs", "b.txt", "c.txt", "a.txt"],
            ),
        ] {
            assert_eq!(sorted(query), order, "{query}");
        }
        // Nonsense is the default order.
        assert_eq!(sorted("sort=colour&order=up"), sorted(""));
    }

    #[test]
    fn headings_sort_and_show_the_order() {
        let entries = [entry("big.bin", false, 3 << 20, 0)];
        let html = render_listing(b".", &entries, Sort::from_query(Some("sort=size")));
        assert!(
            html.contains("<a href=\"?sort=size&amp;order=desc\">Size</a> &uarr;"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"?sort=name&amp;order=asc\">Name</a></th>"),
            "{html}"
        );
        assert!(html.contains("?sort=date&amp;order=asc"), "{html}");
        assert!(
            html.contains("title=\"3145728 bytes\">3.0 MiB</td>"),
            "{html}"
        );
        let html = render_listing(
            b".",
            &entries,
            Sort::from_query(Some("sort=date&order=desc")),
        );
        assert!(
            html.contains("<a href=\"?sort=date&amp;order=asc\">Modified (UTC)</a> &darr;"),
            "{html}"
        );
        // Readable in the dark.
        assert!(html.contains("color-scheme:light dark"), "{html}");
        assert!(
            html.contains("@media (prefers-color-scheme: dark)"),
            "{html}"
        );
    }

    #[test]
    fn human_sizes() {
        for (bytes, shown) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1536, "1.5 KiB"),
            (10 * 1024, "10 KiB"),
            (1023 * 1024, "1023 KiB"),
            (5 << 20, "5.0 MiB"),
            (123 << 30, "123 GiB"),
            (u64::MAX, "16 EiB"),
        ] {
            assert_eq!(human_size(bytes), shown, "{bytes}");
        }
    }

    #[test]
    fn json_rows() {
        let entries = [
            entry("d\"ir", true, 4096, 0),
            entry("f.txt", false, 12, 1_795_505_412),
        ];
        let json: serde_json::Value = serde_json::from_str(&listing_json(&entries)).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"name": "d\"ir", "type": "dir", "size": null, "modified": "1970-01-01T00:00:00Z"},
                {"name": "f.txt", "type": "file", "size": 12, "modified": "2026-11-24T07:30:12Z"},
            ])
        );
        assert_eq!(listing_json(&[]), "[]\n");
        // Fields in the documented order.
        assert!(
            listing_json(&entries[1..])
                .starts_with("[{\"name\":\"f.txt\",\"type\":\"file\",\"size\":12,\"modified\":"),
            "{}",
            listing_json(&entries[1..])
        );
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn a_json_listing_for_a_json_client() {
        let root = TempRoot::new();
        for sf in root.servers() {
            let mut resp = get_with(&sf, "/sub/", "Accept: application/json\r\n");
            assert_eq!(resp.status, 200);
            assert_eq!(header(&resp, "Content-Type"), Some("application/json"));
            assert_eq!(header(&resp, "Vary"), Some("Accept"));
            let json: serde_json::Value = serde_json::from_str(&body_text(&mut resp)).unwrap();
            assert_eq!(json[0]["name"], "inner.txt");
            assert_eq!(json[0]["type"], "file");
            assert_eq!(json[0]["size"], 5);
            assert_eq!(json.as_array().unwrap().len(), 1);
            // Dotfiles stay out of JSON too; the order is the query's.
            let mut resp = get_with(
                &sf,
                "/?sort=size&order=desc",
                "Accept: text/html;q=0.9, Application/JSON\r\n",
            );
            let text = body_text(&mut resp);
            assert!(!text.contains(".hidden"), "{text}");
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            let rows = json.as_array().unwrap();
            let first_file = rows.iter().position(|row| row["type"] == "file").unwrap();
            assert!(rows[..first_file].iter().all(|row| row["type"] == "dir"));
            assert_eq!(rows[first_file]["name"], "hello.txt", "{json}");
            // A browser gets HTML.
            let resp = get_with(&sf, "/", "Accept: text/html,*/*;q=0.8\r\n");
            assert_eq!(
                header(&resp, "Content-Type"),
                Some("text/html; charset=utf-8")
            );
        }
    }
}
