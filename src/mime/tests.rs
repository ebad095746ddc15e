use super::*;
use base64::Engine as _;

/// `levels` unencoded `message/rfc822` parts, one inside the other.
fn nested_messages(levels: usize) -> Vec<u8> {
    let mut m = b"From: a@example.org\r\nSubject: deep\r\n".to_vec();
    for _ in 0..levels {
        m.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
    }
    m.extend_from_slice(b"Subject: innermost\r\n\r\nhello\r\n");
    m
}

fn depth(raw: &[u8]) -> usize {
    nesting_depth(raw, DEPTH_CEILING).expect("within the ceiling")
}

fn tree_depth(raw: &[u8]) -> usize {
    parsed_depth(&parse(raw).expect("parses"))
}

const FORWARD: &[u8] = b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n--o\r\nContent-Type: text/plain\r\n\r\nsee below\r\n--o\r\nContent-Type: message/rfc822\r\n\r\nFrom: b@example.org\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\nContent-Type: text/plain\r\n\r\nplain\r\n--i\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--i--\r\n\r\n--o\r\nContent-Type: text/plain\r\n\r\nafter\r\n--o--\r\n";

#[test]
fn depth_counts_multipart_and_message_levels_as_the_parser_builds_them() {
    assert_eq!(depth(b"Subject: plain\r\n\r\nbody\r\n"), 0);
    let mixed = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b--\r\n";
    assert_eq!(depth(mixed), 1);
    assert_eq!(tree_depth(mixed), 1);
    // mixed -> message/rfc822 -> alternative
    assert_eq!(depth(FORWARD), 3);
    assert_eq!(tree_depth(FORWARD), 3);
    assert_eq!(depth(&nested_messages(5)), 5);
    assert_eq!(tree_depth(&nested_messages(5)), 5);
}

#[test]
fn parts_of_a_digest_without_content_type_are_messages() {
    let digest = b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: one\r\n\r\nfirst\r\n--d\r\n\r\nSubject: two\r\nContent-Type: multipart/mixed; boundary=e\r\n\r\n--e\r\n\r\nx\r\n--e--\r\n\r\n--d--\r\n";
    // digest (1) -> message (2) -> mixed (3)
    assert_eq!(depth(digest), 3);
    assert_eq!(tree_depth(digest), 3);
}

#[test]
fn a_message_nested_past_the_limit_is_refused_without_walking_all_of_it() {
    let deep = nested_messages(33_000);
    assert_eq!(nesting_depth(&deep, 50), Err(TooDeep { limit: 50 }));
    assert_eq!(nesting_depth(&nested_messages(50), 50), Ok(50));
    assert_eq!(
        nesting_depth(&nested_messages(51), 50),
        Err(TooDeep { limit: 50 })
    );
}

#[test]
fn base64_wrapped_nesting_is_counted_with_the_wrapper() {
    let inner = base64::engine::general_purpose::STANDARD.encode(nested_messages(40));
    let mut m = b"Content-Type: multipart/mixed; boundary=w\r\n\r\n--w\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    for line in inner.as_bytes().chunks(76) {
        m.extend_from_slice(line);
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(b"--w--\r\n");
    // mixed (1) -> encoded message (2) -> 40 more levels
    assert_eq!(depth(&m), 42);
    assert_eq!(tree_depth(&m), 42);
    assert_eq!(nesting_depth(&m, 41), Err(TooDeep { limit: 41 }));

    // The same, quoted-printable and wrapped twice.
    let qp_inner = nested_messages(30);
    let mut once =
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
            .to_vec();
    once.extend_from_slice(&qp_inner);
    let twice = base64::engine::general_purpose::STANDARD.encode(&once);
    let mut m =
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    m.extend_from_slice(twice.as_bytes());
    m.extend_from_slice(b"\r\n");
    assert_eq!(depth(&m), 32);
    assert_eq!(tree_depth(&m), 32);
}

#[test]
fn the_walk_never_counts_less_than_the_parser_builds_on_the_fixtures() {
    let mut seen = 0;
    for dir in [
        "tests/fixtures/eml",
        "tests/fixtures/bounces",
        "tests/fixtures/content",
    ] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(raw) = std::fs::read(entry.path()) else {
                continue;
            };
            let walked = depth(&raw);
            if let Some(parsed) = parse(&raw) {
                let built = parsed_depth(&parsed);
                assert!(
                    walked >= built,
                    "{}: walked {walked}, built {built}",
                    entry.path().display()
                );
                seen += 1;
            };
        }
    }
    assert!(seen > 10, "only {seen} fixtures found");
}

#[test]
fn a_deep_parse_is_dropped_without_recursion() {
    // Far deeper than a small stack allows when dropped recursively.
    let deep = nested_messages(33_000);
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let parsed = parse(&deep).expect("parses");
            let d = parsed_depth(&parsed);
            drop(parsed);
            d
        })
        .expect("thread");
    assert_eq!(handle.join().expect("no overflow"), 33_000);
}
