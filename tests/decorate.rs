//! Golden tests for decoration: every `tests/fixtures/eml/NAME.eml` is decorated with LF and
//! with CRLF line ends, both must give `NAME.expected.eml` byte for byte. On a mismatch the
//! output is written to `NAME.actual` and the test fails naming it. Properties that hold for
//! every post (re-parses, original bytes kept, footer present, one prefix) are checked too.

use std::fs;
use std::path::{Path, PathBuf};

use listkeeper::mime::normalize_line_endings;
use listkeeper::pipeline::decorate::{carries_list_id, decorate, Decoration};
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

const FOOTER_LINES: [&str; 3] = [
    "Developers mailing list",
    "dev@example.org",
    "To unsubscribe: dev-request@example.org",
];

fn decoration() -> Decoration {
    Decoration {
        list_id: "dev.example.org".into(),
        display_name: "Developers".into(),
        subject_prefix: Some("[dev]".into()),
        footer: Some(FOOTER_LINES.join("\n")),
        post_address: "dev@example.org".into(),
        request_address: "dev-request@example.org".into(),
        subscribe_address: "dev-join@example.org".into(),
        unsubscribe_address: "dev-leave@example.org".into(),
        owner_address: "dev-owner@example.org".into(),
    }
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eml")
}

/// The input fixtures, sorted: every `*.eml` that is not an `*.expected.eml`.
fn fixtures() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(fixture_dir())
        .expect("fixture directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.ends_with(".eml") && !name.ends_with(".expected.eml")
        })
        .collect();
    found.sort();
    assert!(found.len() >= 15, "fixtures missing in {:?}", fixture_dir());
    found
}

fn stem(path: &Path) -> String {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name.trim_end_matches(".eml").to_string()
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

/// The decorated output of a fixture, checked to be the same for LF and CRLF input.
fn decorated(path: &Path) -> (Vec<u8>, Vec<u8>) {
    let lf = to_lf(&fs::read(path).expect("read fixture"));
    let crlf = normalize_line_endings(&lf).into_owned();
    let from_crlf = decorate(&crlf, &decoration()).expect("decorate CRLF input");
    // The bare-LF bytes go to decoration as they are: it must normalise them itself.
    let from_lf = decorate(&lf, &decoration()).expect("decorate LF");
    assert!(
        from_lf == from_crlf,
        "{}: LF and CRLF input differ",
        stem(path)
    );
    (crlf, from_crlf)
}

#[test]
fn fixtures_match_expected_output() {
    let mut failures = Vec::new();
    for path in fixtures() {
        let (_, out) = decorated(&path);
        let expected_path = path.with_file_name(format!("{}.expected.eml", stem(&path)));
        let actual_path = path.with_file_name(format!("{}.actual", stem(&path)));
        if fs::read(&expected_path).ok().as_deref() == Some(out.as_slice()) {
            let _ = fs::remove_file(&actual_path);
        } else {
            fs::write(&actual_path, &out).expect("write .actual");
            failures.push(actual_path.display().to_string());
        }
    }
    assert!(failures.is_empty(), "output differs, see: {failures:#?}");
}

#[test]
fn output_parses_and_keeps_original_bytes() {
    for path in fixtures() {
        let (input, out) = decorated(&path);
        assert!(out.windows(2).all(|w| w[1] != b'\n' || w[0] == b'\r'));
        assert_original_kept(&stem(&path), &input, &out);
    }
}

/// What the fuzz target will assert: the output parses, and every leaf part of the input is
/// in the output byte for byte, except the tail of a single body the footer was appended to
/// (from the line holding its 4th-last non-blank byte: a padded base64 quantum is re-encoded,
/// a quoted-printable soft break ended).
fn assert_original_kept(name: &str, input: &[u8], out: &[u8]) {
    let parser = MessageParser::default();
    let Some(original) = parser.parse(input) else {
        return;
    };
    assert!(parser.parse(out).is_some(), "{name}: output does not parse");
    let single = !original.root_part().is_multipart();
    for (i, part) in original.parts.iter().enumerate() {
        if matches!(part.body, PartType::Multipart(_)) {
            continue;
        }
        let bytes = &input[part.offset_body as usize..part.offset_end as usize];
        let bytes = if i == 0 && single {
            &bytes[..appendable_from(bytes)]
        } else {
            bytes
        };
        assert!(
            out.windows(bytes.len().max(1)).any(|w| w == bytes) || bytes.is_empty(),
            "{name}: bytes of part {i} not found in the output"
        );
    }
}

/// Start of the line holding the 4th-last byte that is not whitespace.
fn appendable_from(body: &[u8]) -> usize {
    let fourth_last = body
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| !b.is_ascii_whitespace())
        .nth(3)
        .map_or(0, |(i, _)| i);
    body[..fourth_last]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1)
}

fn texts(message: &Message<'_>) -> String {
    (0..message.text_body_count())
        .filter_map(|i| message.body_text(i))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn footer_is_in_the_decoded_text() {
    for path in fixtures() {
        let name = stem(&path);
        let (_, out) = decorated(&path);
        let message = MessageParser::default().parse(&out).expect("parses");
        let text = texts(&message);
        let has_footer = FOOTER_LINES.iter().all(|l| text.contains(l));
        if name == "multipart-encrypted" {
            assert!(!has_footer, "{name}: an encrypted post gets no footer");
        } else {
            assert!(has_footer, "{name}: footer missing from text:\n{text}");
            assert!(text.contains("-- \n") || text.contains("-- \r\n"), "{name}");
        }
    }
}

#[test]
fn list_fields_replace_foreign_ones_and_prefix_is_added_once() {
    for path in fixtures() {
        let name = stem(&path);
        let (_, out) = decorated(&path);
        let message = MessageParser::default().parse(&out).expect("parses");
        let subject = message.subject().unwrap_or_default();
        assert_eq!(subject.matches("[dev]").count(), 1, "{name}: {subject:?}");
        assert!(carries_list_id(&out, "dev.example.org"), "{name}");
        assert!(
            !carries_list_id(&out, "users.lists.other.example"),
            "{name}"
        );
        let root = message.root_part();
        for field in ["List-Id", "List-Post", "List-Unsubscribe", "Precedence"] {
            let count = root
                .headers
                .iter()
                .filter(|h| h.name().eq_ignore_ascii_case(field))
                .count();
            assert_eq!(count, 1, "{name}: {field} appears {count} times");
        }
        assert_eq!(
            message.header_raw("Precedence").map(str::trim),
            Some("list")
        );
    }
}

#[test]
fn foreign_list_id_is_detected_before_decoration() {
    let raw = fs::read(fixture_dir().join("folded-foreign.eml")).expect("fixture");
    assert!(carries_list_id(&raw, "users.lists.other.example"));
    assert!(carries_list_id(&raw, "USERS.Lists.Other.Example"));
    assert!(!carries_list_id(&raw, "dev.example.org"));
}

#[test]
fn signed_parts_are_byte_identical() {
    let (input, out) = decorated(&fixture_dir().join("multipart-signed.eml"));
    let original = MessageParser::default().parse(&input).expect("parses");
    let root = original.root_part();
    let body = &input[root.offset_body as usize..];
    assert!(
        out.windows(body.len()).any(|w| w == body),
        "signed body changed"
    );

    let decorated = MessageParser::default().parse(&out).expect("parses");
    let signed = decorated
        .parts
        .iter()
        .find(|p| p.content_type().and_then(|c| c.subtype()) == Some("signed"))
        .expect("multipart/signed part");
    let (start, end) = (signed.offset_body as usize, signed.offset_end as usize);
    let signed_body = &out[start..end];
    // The signed content (first part, MIME headers included) is what the signature covers.
    let first = &original.parts[1];
    let content = &input[first.offset_header as usize..first.offset_end as usize];
    assert!(signed_body.windows(content.len()).any(|w| w == content));
    assert!(body.starts_with(signed_body.strip_suffix(b"\r\n").unwrap_or(signed_body)));
}
