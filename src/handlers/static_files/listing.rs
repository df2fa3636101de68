//! The HTML listing of a directory that has no `index.html`.
//!
//! What it does: reads a directory's entries through its fd (symlinks listed
//! as themselves, never followed, so a listing never stats outside the
//! root), sorts directories first, then by name, and renders one page with
//! names HTML-escaped, hrefs percent-encoded and times in UTC.
//!
//! What it doesn't: decide when a listing is shown (the request flow in
//! `mod.rs` tries `index.html` first) or which entries it shows (the flow
//! leaves dotfiles out), paginate, or sort by anything the client asks for.

use std::ffi::CString;
use std::fmt::Write as _;
use std::os::fd::OwnedFd;

use nix::dir::Dir;
use nix::fcntl::AtFlags;
use nix::sys::stat;

use super::{Kind, kind};

/// One row of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) name: Vec<u8>,
    is_dir: bool,
    size: u64,
    mtime: i64,
}

/// Reads a directory's entries, directories first, then by name. Entries
/// that vanish or can't be stat'ed are skipped. Symlinks are listed as
/// themselves (not followed), so a listing never stats outside the root.
pub(crate) fn read_entries(dir_fd: OwnedFd) -> nix::Result<Vec<Entry>> {
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

/// The listing page for directory `rel` (as returned by [`super::path::decode_path`]).
pub(crate) fn render_listing(rel: &[u8], entries: &[Entry]) -> String {
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
    use crate::handlers::static_files::StaticFiles;
    use crate::handlers::static_files::test_support::{HELLO, TempRoot, body_text, get, header};
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
            assert!(html.contains(&format!("<td class=\"n\">{}</td>", HELLO.len())));
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
        sort_entries(&mut entries);
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
        let top = render_listing(b".", &entries);
        assert!(top.contains("<title>Index of /</title>"), "{top}");
        assert!(!top.contains("../"), "{top}");
        assert!(
            top.contains("<a href=\"x%26y/\">x&amp;y/</a></td><td class=\"n\">-</td><td>1970-01-02 00:00</td>"),
            "{top}"
        );
        let below = render_listing(b"a/<b>", &[]);
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
        assert!(entries[0].is_dir, "directories first");
    }
}
