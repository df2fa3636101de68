//! The `Range` header: which bytes of a file of a given size to send.
//!
//! What it does: parses one byte range (`bytes=a-b`, `bytes=a-`,
//! `bytes=-n`) and clamps it to the file, telling "send it all" (ignore),
//! "send this slice" (206) and "outside the file" (416) apart.
//!
//! What it doesn't: multipart ranges. A multi-range request gets the whole
//! file: RFC 9110 lets a server ignore Range, and it keeps the response a
//! plain file slice. Whether If-Range lets a range apply is `validators`'
//! business.

/// What a `Range` header asks of a file of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ByteRange {
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
pub(crate) fn parse_range(header: &str, size: u64) -> ByteRange {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::static_files::StaticFiles;
    use crate::handlers::static_files::test_support::{
        HELLO, TempRoot, body_bytes, get_with, header,
    };
    use crate::http::Body;

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
    fn positions_are_plain_decimals_that_saturate() {
        assert_eq!(parse_pos("0"), Some(0));
        assert_eq!(parse_pos("0042"), Some(42));
        assert_eq!(parse_pos("99999999999999999999"), Some(u64::MAX));
        assert_eq!(parse_pos(""), None);
        assert_eq!(parse_pos("-1"), None);
        assert_eq!(parse_pos("1 "), None);
        assert_eq!(parse_pos("0x10"), None);
    }

    #[test]
    fn spaces_around_the_parts_are_tolerated() {
        use ByteRange::*;
        assert_eq!(
            parse_range(" bytes = 2 - 4 ", 10),
            Partial { start: 2, len: 3 }
        );
        assert_eq!(parse_range("bytes= - 3", 10), Partial { start: 7, len: 3 });
        assert_eq!(parse_range("bytes=5-5", 5), Unsatisfiable);
    }
}
