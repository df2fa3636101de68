//! From a request path to a relative path the confined open accepts.
//!
//! What it does: percent-decodes the path and refuses traversal tricks early
//! (`..`, encoded slashes, backslashes, NUL), so the kernel only ever sees a
//! plain relative path; tells dotfiles apart (`is_hidden`); plus the two
//! byte-path helpers the request flow needs (`child`, `file_name`).
//!
//! What it doesn't: touch the file system. Symlinks and races are the
//! confined open's job; this only keeps the obviously wrong out.

/// Turns a still-encoded request path into a relative path for `openat2`:
/// segments joined by `/`, `.` for the root. `Err(400)` for NUL or a bad
/// escape, `Err(404)` for `..`, an encoded slash or any backslash (Windows
/// separators would be a second way to spell traversal; no real file needs
/// one in a URL). The 400 checks run over the whole path first, so the
/// status doesn't depend on which problem comes first.
pub(crate) fn decode_path(path: &str) -> Result<Vec<u8>, u16> {
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

/// Whether a decoded relative path is, or is inside, a dotfile or a
/// dot-directory, other than `.well-known` at the root (RFC 8615: ACME
/// challenges, `security.txt`). Empty and `.` segments don't count.
pub(crate) fn is_hidden(rel: &[u8]) -> bool {
    let mut segments = rel
        .split(|&b| b == b'/')
        .filter(|segment| !segment.is_empty() && *segment != b".");
    let dotted = |segment: &[u8]| segment.first() == Some(&b'.');
    match segments.next() {
        None => false,
        Some(first) => (dotted(first) && first != b".well-known") || segments.any(dotted),
    }
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// `rel/name` (`rel/` when `name` is empty).
pub(crate) fn child(rel: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = Vec::with_capacity(rel.len() + 1 + name.len());
    path.extend_from_slice(rel);
    path.push(b'/');
    path.extend_from_slice(name);
    path
}

/// The last segment of a relative path.
pub(crate) fn file_name(rel: &[u8]) -> &[u8] {
    rel.rsplit(|&b| b == b'/').next().unwrap_or(rel)
}

/// Whether a file of this name is a page (by its extension).
pub(super) fn is_page(name: &[u8]) -> bool {
    let ext = name.rsplit(|&b| b == b'.').next().unwrap_or_default();
    name.contains(&b'.') && (ext.eq_ignore_ascii_case(b"html") || ext.eq_ignore_ascii_case(b"htm"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::static_files::StaticFiles;
    use crate::handlers::static_files::test_support::{TempRoot, get, request};

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
    fn a_backslash_after_a_bad_escape_is_still_400() {
        // The 400 checks win whatever their position.
        assert_eq!(decode_path("/a\\b%zz"), Err(400));
        assert_eq!(decode_path("/..%00"), Err(400));
        assert_eq!(decode_path("/%2f/%"), Err(400));
    }

    #[test]
    fn hidden_paths() {
        for rel in [
            ".env",
            ".git/config",
            "a/.env",
            "a/.b/c",
            "./.env",
            ".well-known/.x",
            "a/.well-known",
            "a/.well-known/x",
            ".well-knownx",
        ] {
            assert!(is_hidden(rel.as_bytes()), "{rel}");
        }
        for rel in [
            ".",
            "./",
            "a",
            "a/b.c",
            "a./b",
            ".well-known",
            ".well-known/acme-challenge/t",
            "./.well-known/",
        ] {
            assert!(!is_hidden(rel.as_bytes()), "{rel}");
        }
    }

    #[test]
    fn child_and_file_name() {
        assert_eq!(child(b"a/b", b"index.html"), b"a/b/index.html");
        assert_eq!(child(b".", b"index.html"), b"./index.html");
        assert_eq!(child(b"a", b""), b"a/");
        assert_eq!(file_name(b"a/b/c.txt"), b"c.txt");
        assert_eq!(file_name(b"c.txt"), b"c.txt");
        assert_eq!(file_name(b"."), b".");
    }

    #[test]
    fn garbage_paths_never_panic() {
        let root = TempRoot::new();
        let sf = StaticFiles::open(&root.path).unwrap();
        for target in [
            "/%", "/%%", "/%%%", "/%e2%82", "/%ff%fe", "/%c3%a9", "/?", "/??", "/#x", "/%2e", "/.",
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

    #[test]
    fn pages_are_html_by_name() {
        for page in [&b"index.html"[..], b"A.HTM", b"x.y.html"] {
            assert!(is_page(page), "{}", String::from_utf8_lossy(page));
        }
        for other in [&b"html"[..], b"a.css", b"a.html.gz", b"a.xhtml", b""] {
            assert!(!is_page(other), "{}", String::from_utf8_lossy(other));
        }
    }
}
