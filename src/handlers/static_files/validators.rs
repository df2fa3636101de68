//! Cache validators of a file and the conditional headers that test them.
//!
//! What it does: derives `ETag` and `Last-Modified` from an inode, decides
//! whether If-None-Match / If-Modified-Since make the answer a 304 (RFC 9110
//! 13.2.2 precedence), and whether If-Range lets a range apply.
//!
//! What it doesn't: parse `Range` (see `range`) or build responses; the
//! request flow in `mod.rs` puts the answers together. No caching metadata
//! beyond the validators: a dev server must always show the file as it is
//! now.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::stat::FileStat;

/// What a cache compares against: derived from the inode's mtime and size.
pub(crate) struct Validators {
    pub(crate) etag: String,
    pub(crate) last_modified: String,
    mtime_secs: i64,
}

impl Validators {
    pub(crate) fn of(st: &FileStat) -> Validators {
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

    /// The validators of a representation made from the file (live
    /// reload's page with its tag): the file's ETag with `suffix` inside the
    /// quotes, and no date (the file's mtime doesn't date what was added, so
    /// no `If-Modified-Since` can make it a 304).
    pub(crate) fn remade(mut self, suffix: &str) -> Validators {
        self.tag(suffix);
        self.last_modified.clear();
        self.mtime_secs = i64::MAX;
        self
    }

    /// `"abc"` becomes `"abc-suffix"`: a tag per representation, as RFC
    /// 9110 8.8.3 asks of representations that differ (an encoding, a page
    /// with live reload's tag).
    pub(crate) fn tag(&mut self, suffix: &str) {
        let closing = self.etag.pop();
        debug_assert_eq!(closing, Some('"'));
        self.etag.push('-');
        self.etag.push_str(suffix);
        self.etag.push('"');
    }
}

/// An HTTP date for a Unix time, clamped to what `httpdate` can format
/// (it panics before 1970 and after 9999, and mtimes are user-settable).
fn http_date(secs: i64) -> String {
    const LAST_SECOND_OF_9999: i64 = 253_402_300_799;
    let secs = secs.clamp(0, LAST_SECOND_OF_9999) as u64;
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

/// RFC 9110 13.2.2: If-None-Match wins; If-Modified-Since counts only
/// when it is absent.
pub(crate) fn not_modified(if_none_match: &str, if_modified_since: &str, v: &Validators) -> bool {
    if !if_none_match.is_empty() {
        return etag_list_matches(if_none_match, &v.etag);
    }
    if if_modified_since.is_empty() || v.last_modified.is_empty() {
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
pub(crate) fn if_range_allows(if_range: &str, v: &Validators) -> bool {
    if_range.is_empty() || if_range == v.etag || if_range == v.last_modified
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::static_files::StaticFiles;
    use crate::handlers::static_files::test_support::{TempRoot, get, get_with, header};
    use crate::http::Body;

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
    fn etag_lists_compare_weakly() {
        assert!(etag_list_matches("W/\"abc\"", "W/\"abc\""));
        assert!(etag_list_matches("\"abc\"", "W/\"abc\""));
        assert!(etag_list_matches(" \"x\" ,\t\"abc\"", "\"abc\""));
        assert!(etag_list_matches("\"x\", *", "\"abc\""));
        assert!(!etag_list_matches("\"x\", \"y\"", "\"abc\""));
        assert!(!etag_list_matches("abc", "\"abc\""));
        assert_eq!(strip_weak("W/\"a\""), "\"a\"");
        assert_eq!(strip_weak("w/\"a\""), "w/\"a\"");
    }

    #[test]
    fn an_if_modified_since_date_before_1970_is_the_epoch() {
        assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(unix_secs(UNIX_EPOCH + Duration::from_secs(42)), 42);
        let v = Validators {
            etag: "\"e\"".to_owned(),
            last_modified: http_date(0),
            mtime_secs: -86_400,
        };
        // Clamped last_modified round-trips as "not modified since".
        assert!(not_modified("", &v.last_modified, &v));
    }
}
