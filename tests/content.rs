//! Golden tests for MIME filtering. Every `tests/fixtures/content/NAME.CASE.filter` runs the
//! filter it describes on `NAME.eml`, with LF and with CRLF line ends (both must agree). A
//! `.filter` file has one setting a line, `#` starts a comment:
//!
//! ```text
//! # what the case shows
//! pass: text/plain, image/*      (content.pass_types; optional)
//! drop: image/*                  (content.drop_types; optional)
//! collapse: yes                  (content.collapse_alternatives; optional)
//! outcome: filtered              (filtered | unchanged | empty)
//! removed: image/png, text/html  (the removed types, with `filtered`)
//! ```
//!
//! A `filtered` case compares the output with `NAME.CASE.expected.eml` byte for byte; on a
//! mismatch the output is written to `NAME.CASE.actual` and the test fails naming it. Every
//! output must also re-parse, be CRLF throughout, and contain each kept part byte for byte.

use std::fs;
use std::path::{Path, PathBuf};

use listkeeper::mime::normalize_line_endings;
use listkeeper::pipeline::content::{filter_mime, ContentError, Filtered, MimeFilter};
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

const NOTE: &str = "[Parts of this message were removed by the list";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/content")
}

#[derive(Debug)]
struct Case {
    name: String,
    input: PathBuf,
    filter: MimeFilter,
    outcome: String,
    removed: Vec<String>,
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn cases() -> Vec<Case> {
    let mut paths: Vec<PathBuf> = fs::read_dir(fixture_dir())
        .expect("fixture directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "filter"))
        .collect();
    paths.sort();
    let found: Vec<Case> = paths.iter().map(|p| case(p)).collect();
    assert!(found.len() >= 20, "cases missing in {:?}", fixture_dir());
    found
}

fn case(path: &Path) -> Case {
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("file name")
        .to_string();
    let input_stem = name.split('.').next().expect("NAME.CASE");
    let mut c = Case {
        input: path.with_file_name(format!("{input_stem}.eml")),
        name,
        filter: MimeFilter::default(),
        outcome: String::new(),
        removed: Vec::new(),
    };
    let text = fs::read_to_string(path).expect("read .filter");
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once(':').expect("`key: value`");
        let value = value.trim();
        match key.trim() {
            "pass" => c.filter.pass_types = list(value),
            "drop" => c.filter.drop_types = list(value),
            "collapse" => c.filter.collapse_alternatives = value == "yes",
            "outcome" => c.outcome = value.to_string(),
            "removed" => c.removed = list(value),
            other => panic!("{}: unknown key {other}", c.name),
        }
    }
    for p in c.filter.pass_types.iter().chain(&c.filter.drop_types) {
        assert_eq!(MimeFilter::check_pattern(p), Ok(()), "{}: {p}", c.name);
    }
    c
}

fn to_lf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, &b) in raw.iter().enumerate() {
        if !(b == b'\r' && raw.get(i + 1) == Some(&b'\n')) {
            out.push(b);
        }
    }
    out
}

/// The CRLF input and the result, checked to be the same for LF and CRLF input.
fn filtered(c: &Case) -> (Vec<u8>, Result<Option<Filtered>, ContentError>) {
    let lf = to_lf(&fs::read(&c.input).expect("read fixture"));
    let crlf = normalize_line_endings(&lf).into_owned();
    let from_crlf = filter_mime(&crlf, &c.filter);
    let from_lf = filter_mime(&normalize_line_endings(&lf), &c.filter);
    assert_eq!(from_lf, from_crlf, "{}: LF and CRLF input differ", c.name);
    assert_eq!(filter_mime(&lf, &c.filter), from_crlf, "{}: raw LF", c.name);
    (crlf, from_crlf)
}

#[test]
fn fixtures_match_expected_output() {
    let mut failures = Vec::new();
    for c in cases() {
        let (_, result) = filtered(&c);
        let expected_path = c.input.with_file_name(format!("{}.expected.eml", c.name));
        let actual_path = c.input.with_file_name(format!("{}.actual", c.name));
        match (c.outcome.as_str(), result) {
            ("unchanged", Ok(None)) | ("empty", Err(ContentError::Empty)) => {
                assert!(!expected_path.exists(), "{}: stray expected file", c.name);
            }
            ("filtered", Ok(Some(f))) => {
                assert_eq!(f.removed, c.removed, "{}: removed types", c.name);
                if fs::read(&expected_path).ok().as_deref() == Some(f.message.as_slice()) {
                    let _ = fs::remove_file(&actual_path);
                } else {
                    fs::write(&actual_path, &f.message).expect("write .actual");
                    failures.push(actual_path.display().to_string());
                }
            }
            (outcome, result) => panic!("{}: expected {outcome}, got {result:?}", c.name),
        }
    }
    assert!(failures.is_empty(), "output differs, see: {failures:#?}");
}

#[test]
fn outputs_parse_and_keep_parts_byte_for_byte() {
    for c in cases() {
        if let (input, Ok(Some(f))) = filtered(&c) {
            assert!(
                f.message.windows(2).all(|w| w[1] != b'\n' || w[0] == b'\r'),
                "{}: bare LF in output",
                c.name
            );
            assert_kept(&c.name, &input, &f);
        }
    }
}

#[test]
fn signed_part_is_byte_identical() {
    let c = case(&fixture_dir().join("signed-nested.drop-images.filter"));
    let (input, result) = filtered(&c);
    let out = result.expect("filters").expect("changes").message;
    let original = MessageParser::default().parse(&input).expect("parses");
    let signed = original
        .parts
        .iter()
        .find(|p| p.content_type().and_then(|t| t.subtype()) == Some("signed"))
        .expect("multipart/signed part");
    let bytes = &input[signed.offset_header as usize..signed.offset_end as usize];
    assert!(out.windows(bytes.len()).any(|w| w == bytes));
    assert!(String::from_utf8_lossy(&out).contains("fingerprint.png"));
}

/// A leaf as the filter sees it: signed and encrypted multiparts and attached messages are
/// leaves. Returns (type, bytes of header and body, bytes of the body).
fn leaves<'a>(message: &Message<'_>, raw: &'a [u8]) -> Vec<(String, &'a [u8], &'a [u8])> {
    let mut found = Vec::new();
    let mut stack = vec![0usize];
    while let Some(id) = stack.pop() {
        let part = &message.parts[id];
        let ty = part
            .content_type()
            .map(|t| format!("{}/{}", t.ctype(), t.subtype().unwrap_or_default()))
            .unwrap_or_else(|| "text/plain".into());
        match &part.body {
            PartType::Multipart(children)
                if ty != "multipart/signed" && ty != "multipart/encrypted" =>
            {
                stack.extend(children.iter().rev().map(|&c| c as usize));
            }
            _ => found.push((
                ty,
                &raw[part.offset_header as usize..part.offset_end as usize],
                &raw[part.offset_body as usize..part.offset_end as usize],
            )),
        }
    }
    found
}

/// Every leaf of the output but the note is a leaf of the input, byte for byte (a hoisted
/// root: its body), and input leaves = output leaves + removed parts.
fn assert_kept(name: &str, input: &[u8], f: &Filtered) {
    let parser = MessageParser::default();
    let original = parser.parse(input).expect("input parses");
    let out = parser.parse(&f.message).expect("output parses");
    let before = leaves(&original, input);
    let after: Vec<_> = leaves(&out, &f.message)
        .into_iter()
        .filter(|(_, _, body)| !body.starts_with(NOTE.as_bytes()))
        .collect();
    let hoisted = original.root_part().is_multipart() && !out.root_part().is_multipart();
    for (ty, whole, body) in &after {
        let found = if hoisted {
            // A body that does not end a line gets a CRLF.
            let trimmed = body.strip_suffix(b"\r\n");
            before
                .iter()
                .any(|(_, _, b)| b == body || Some(*b) == trimmed)
        } else {
            before.iter().any(|(_, w, _)| w == whole)
        };
        assert!(found, "{name}: kept {ty} part changed");
    }
    assert_eq!(
        before.len(),
        after.len() + f.removed.len(),
        "{name}: parts unaccounted for"
    );
    let has_note = f.message.windows(NOTE.len()).any(|w| w == NOTE.as_bytes());
    // Every multipart that lost parts says so: a mixed root gets the note, any other root is
    // wrapped in a new mixed one with it; only a root collapsed to its text has none.
    let mixed_root = out
        .root_part()
        .content_type()
        .is_some_and(|t| t.ctype() == "multipart" && t.subtype() == Some("mixed"));
    assert_eq!(
        has_note, mixed_root,
        "{name}: a note exactly in a mixed root"
    );
    assert_eq!(
        has_note, !hoisted,
        "{name}: a note unless collapsed to text"
    );
}

#[test]
fn mutated_fixtures_never_panic_and_outputs_reparse() {
    let all = cases();
    let mut inputs: Vec<Vec<u8>> = all
        .iter()
        .map(|c| normalize_line_endings(&fs::read(&c.input).expect("read")).into_owned())
        .collect();
    inputs.dedup();
    let mut filters: Vec<MimeFilter> = all.iter().map(|c| c.filter.clone()).collect();
    filters.dedup();

    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let bytes = b"\r\n-=:;\"<>/b\x00\xc3\xa9 \tA+*";
    let mut changed = 0;
    for round in 0..4000 {
        let mut raw = inputs[round % inputs.len()].clone();
        match next() % 4 {
            0 => raw.truncate((next() as usize) % (raw.len() + 1)),
            1 => {
                // Remove one line.
                let starts: Vec<usize> = std::iter::once(0)
                    .chain(
                        raw.iter()
                            .enumerate()
                            .filter(|(_, &b)| b == b'\n')
                            .map(|(i, _)| i + 1),
                    )
                    .collect();
                let at = starts[(next() as usize) % starts.len()];
                let end = raw[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(raw.len(), |p| at + p + 1);
                raw.drain(at..end);
            }
            _ => {
                for _ in 0..(1 + next() % 8) {
                    let pos = (next() as usize) % (raw.len() + 1);
                    let b = bytes[(next() as usize) % bytes.len()];
                    match next() % 3 {
                        0 => raw.insert(pos, b),
                        1 if pos < raw.len() => drop(raw.remove(pos)),
                        _ if pos < raw.len() => raw[pos] = b,
                        _ => {}
                    }
                }
            }
        }
        let filter = &filters[(next() as usize) % filters.len()];
        if let Ok(Some(f)) = filter_mime(&raw, filter) {
            changed += 1;
            let reparsed = MessageParser::default().parse(&f.message);
            assert!(reparsed.is_some(), "output does not parse for {raw:?}");
            assert!(!f.removed.is_empty());
            let normalized = normalize_line_endings(&raw);
            assert_kept(&format!("round {round}"), &normalized, &f);
        }
    }
    assert!(changed > 500, "too few mutations were filtered: {changed}");
}
