// Loading the corpus, shared by `include!` between tests/framing.rs (the
// real server) and src/http/fuzz.rs (the seeds of the parsers' fuzzing).
// Not a test target itself: cargo only builds tests/*.rs.

/// The corpus's `.http` files, decoded, sorted by name (without `.http`).
fn gunicorn_corpus() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/gunicorn-invalid");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "http"))
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            (name, decode_treq(&std::fs::read(&path).unwrap()))
        })
        .collect();
    files.sort();
    files
}

/// A `.http` file as gunicorn's `treq.py` reads it: real newlines are
/// dropped, then `\r\n`, `\0`, `\n`, `\t` and `\xHH` are unescaped.
fn decode_treq(raw: &[u8]) -> Vec<u8> {
    let mut data: Vec<u8> = raw.iter().copied().filter(|&b| b != b'\n').collect();
    for (from, to) in [
        (&b"\\r\\n"[..], &b"\r\n"[..]),
        (b"\\0", b"\0"),
        (b"\\n", b"\n"),
        (b"\\t", b"\t"),
    ] {
        data = replace_bytes(&data, from, to);
    }
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        // As treq.py: an escape needs a byte after it to be decoded.
        if i + 3 < data.len() && &data[i..i + 2] == b"\\x" {
            let hex = std::str::from_utf8(&data[i + 2..i + 4]).unwrap_or("");
            if let Ok(byte) = u8::from_str_radix(hex, 16) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(data[i]);
        i += 1;
    }
    assert!(!out.contains(&b'\\'), "an escape the loader doesn't know");
    out
}

/// `data` with every `from` replaced by `to`, left to right.
fn replace_bytes(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}
