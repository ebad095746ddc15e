//! Edge cases: odd and hostile input never panics, and each footer route is taken when it
//! should be.

use mail_parser::MessageParser;
use std::borrow::Cow;

use super::footer::{base64_tail, qp_encode};
use super::mime::new_boundary;
use super::*;

fn deco(footer: Option<&str>) -> Decoration {
    Decoration {
        list_id: "dev.example.org".into(),
        display_name: "Developers".into(),
        subject_prefix: Some("[dev]".into()),
        footer: footer.map(str::to_string),
        post_address: "dev@example.org".into(),
        request_address: "dev-request@example.org".into(),
        subscribe_address: "dev-join@example.org".into(),
        unsubscribe_address: "dev-leave@example.org".into(),
        owner_address: "dev-owner@example.org".into(),
    }
}

fn run(raw: &[u8], d: &Decoration) -> String {
    let out = decorate(raw, d).expect("decorates");
    assert!(MessageParser::default().parse(&out).is_some(), "reparses");
    String::from_utf8_lossy(&out).into_owned()
}

fn text_of(out: &str) -> String {
    let message = MessageParser::default()
        .parse(out.as_bytes())
        .expect("parses");
    (0..message.text_body_count())
        .filter_map(|i| message.body_text(i).map(|t| t.into_owned()))
        .collect()
}

#[test]
fn empty_and_headerless_input_is_refused() {
    assert!(matches!(
        decorate(b"", &deco(None)),
        Err(DecorateError::Empty)
    ));
    for raw in [
        &b"\r\n"[..],
        b"\r\nbody",
        b"  \r\nSubject: x\r\n",
        b"\x00\xff\xfe",
        b"no colon",
    ] {
        assert!(matches!(
            decorate(raw, &deco(Some("f"))),
            Err(DecorateError::NotAMessage)
        ));
    }
}

#[test]
fn header_only_messages_get_a_separator() {
    let out = run(b"Subject: hi\r\nFrom: a@b", &deco(Some("foot")));
    assert!(
        out.starts_with(
            "Subject: [dev] hi\r\nFrom: a@b\r\nX-BeenThere: dev@example.org\r\nList-Id:"
        ),
        "{out}"
    );
    assert!(
        out.ends_with("Precedence: list\r\n\r\n-- \r\nfoot\r\n"),
        "{out}"
    );
    // A line that is not a field ends the header section (as Postfix's cleanup does).
    let out = run(b"Subject: hi\nthis is the body\n", &deco(Some("foot")));
    assert!(
        out.ends_with("list\r\n\r\nthis is the body\r\n-- \r\nfoot\r\n"),
        "{out}"
    );
}

#[test]
fn no_footer_leaves_the_body_alone() {
    let raw = b"Subject: x\r\nContent-Type: text/html\r\n\r\n<p>hi</p>";
    for footer in [None, Some(""), Some("\n \n")] {
        let out = run(raw, &deco(footer));
        assert!(out.ends_with("Precedence: list\r\n\r\n<p>hi</p>"), "{out}");
    }
}

#[test]
fn garbage_and_mutations_never_panic() {
    let seeds: [&[u8]; 4] = [
        b"Subject: a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n",
        b"Subject: a\r\nContent-Transfer-Encoding: base64\r\n\r\nYWJj\r\nZA==\r\n",
        b"Subject: =?UTF-8?B?w5w=?=\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\na=\r\n",
        b"Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c",
    ];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let bytes = b"\r\n-=:;\"<>?b\x00\xc3\xa9 \tA/+";
    for round in 0..3000 {
        let mut raw = seeds[round % seeds.len()].to_vec();
        for _ in 0..(next() % 6) {
            let pos = (next() as usize) % (raw.len() + 1);
            let b = bytes[(next() as usize) % bytes.len()];
            match next() % 3 {
                0 => raw.insert(pos, b),
                1 if pos < raw.len() => drop(raw.remove(pos)),
                _ if pos < raw.len() => raw[pos] = b,
                _ => {}
            }
        }
        let normalized = normalize_line_endings(&raw);
        if let Ok(out) = decorate(&normalized, &deco(Some("Footer\nline"))) {
            assert!(MessageParser::default().parse(&out).is_some(), "{raw:?}");
        }
        let _ = carries_list_id(&raw, "dev.example.org");
        let _ = loop_reason(&raw, &deco(None));
    }
}

#[test]
fn huge_single_lines() {
    let mut raw = b"Subject: ".to_vec();
    raw.extend(std::iter::repeat_n(b'x', 1 << 20));
    assert!(decorate(&raw, &deco(Some("f"))).is_ok());
    let mut raw = b"Subject: s\r\n\r\n".to_vec();
    raw.extend(std::iter::repeat_n(b'y', 1 << 20));
    let out = decorate(&raw, &deco(Some("f"))).expect("decorates");
    assert!(out.ends_with(b"yyy\r\n-- \r\nf\r\n"));
}

#[test]
fn base64_with_odd_whitespace_appends_cleanly() {
    // "Hello, world!!" with spaces, tabs, blank lines, and the padded quantum split in two.
    let raw = b"Subject: s\r\nContent-Type: text/plain; charset=utf-8\r\n\
                Content-Transfer-Encoding: base64\r\n\r\n  SGVs bG8s\t\r\n\r\nIHdv\r\ncmxk\r\nISE\r\n= \r\n\r\n";
    let out = run(raw, &deco(Some("foot")));
    // The text does not end in a line break: the footer starts on a line of its own.
    assert_eq!(text_of(&out), "Hello, world!!\r\n-- \r\nfoot\r\n");
    assert!(out.contains("cmxk\r\nISENCi0tIA0KZm9vdA0K\r\n"), "{out}");
}

#[test]
fn base64_tails() {
    assert_eq!(base64_tail(b"").map(|t| t.cut), Some(0));
    assert_eq!(base64_tail(b"YWJj\r\n").map(|t| t.cut), Some(6));
    let tail = base64_tail(b"YWJj\r\nZA==\r\n").expect("valid");
    assert_eq!((tail.cut, tail.carry), (6, b"d".to_vec()));
    let tail = base64_tail(b"YWJjZGU=").expect("valid");
    assert_eq!((tail.cut, tail.carry), (4, b"de".to_vec()));
    for bad in [
        &b"YWJ"[..],
        b"YW=j",
        b"Y===",
        b"YWJj*",
        b"ZA==YWJj",
        b"====",
    ] {
        assert!(base64_tail(bad).is_none(), "{bad:?}");
    }
}

#[test]
fn broken_base64_is_wrapped() {
    let raw = b"Subject: s\r\nContent-Transfer-Encoding: base64\r\n\r\nYWJ*j\r\n";
    let out = run(raw, &deco(Some("foot")));
    assert!(out.contains("multipart/mixed; boundary=\"=_lk_"), "{out}");
    assert!(out.contains("Content-Transfer-Encoding: base64\r\n\r\nYWJ*j\r\n\r\n--=_lk_"));
}

#[test]
fn quoted_printable_footer_encoding() {
    let long = format!("{}\r\na=b \r\ncafé\r\n", "x".repeat(200));
    let encoded = qp_encode(long.as_bytes());
    let text = String::from_utf8(encoded).expect("ascii");
    assert!(text.split("\r\n").all(|l| l.len() <= 76), "{text}");
    assert!(text.ends_with("\r\na=3Db=20\r\ncaf=C3=A9\r\n"), "{text}");
}

#[test]
fn non_ascii_footer_routes() {
    let footer = Some("Liste für Entwickler");
    let utf8_8bit = b"Subject: s\r\nContent-Type: text/plain; charset=utf-8\r\n\
                      Content-Transfer-Encoding: 8bit\r\n\r\nhi\r\n";
    assert!(run(utf8_8bit, &deco(footer)).ends_with("hi\r\n-- \r\nListe für Entwickler\r\n"));
    let utf8_qp = b"Subject: s\r\nContent-Type: text/plain; charset=utf-8\r\n\
                    Content-Transfer-Encoding: quoted-printable\r\n\r\nhi\r\n";
    assert!(run(utf8_qp, &deco(footer)).ends_with("hi\r\n--=20\r\nListe f=C3=BCr Entwickler\r\n"));
    // us-ascii (declared or not) with ASCII text, or utf-8 declared 7bit: the footer is
    // appended in place, the header relabelled as UTF-8 8bit, the body untouched.
    let cases: [(&[u8], &str); 4] = [
        (b"Subject: s\r\n\r\nhi\r\n", "Content-Type: text/plain; charset=utf-8\r\n"),
        (
            b"Subject: s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhi\r\n",
            "Content-Type: text/plain; charset=utf-8\r\n",
        ),
        (
            b"Subject: s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"US-ASCII\"; format=flowed\r\n\
              Content-Transfer-Encoding: 7bit\r\n\r\nhi\r\n",
            "Content-Type: text/plain; charset=utf-8; format=flowed\r\n",
        ),
        (
            // Thunderbird's usual plain text.
            b"Subject: s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8; format=flowed\r\n\
              Content-Transfer-Encoding: 7bit\r\n\r\nhi\r\n",
            "Content-Type: text/plain; charset=UTF-8; format=flowed\r\n",
        ),
    ];
    for (raw, content_type) in cases {
        let out = run(raw, &deco(footer));
        assert!(!out.contains("multipart"), "{out}");
        assert!(out.contains(content_type), "{out}");
        assert!(out.contains("Content-Transfer-Encoding: 8bit\r\n"), "{out}");
        assert_eq!(out.matches("Content-Transfer-Encoding").count(), 1, "{out}");
        assert_eq!(out.matches("MIME-Version").count(), 1, "{out}");
        assert!(
            out.ends_with("hi\r\n-- \r\nListe für Entwickler\r\n"),
            "{out}"
        );
        assert_eq!(text_of(&out), "hi\r\n-- \r\nListe für Entwickler\r\n");
    }
    // A us-ascii label on 8-bit text (the label is wrong, nobody knows the charset), and a
    // charset the footer cannot be written in: the footer goes into its own part.
    for raw in [
        &b"Subject: s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nh\xe9\r\n"[..],
        b"Subject: s\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\nhi\r\n",
    ] {
        let out = run(raw, &deco(footer));
        assert!(out.contains("Content-Transfer-Encoding: quoted-printable\r\nContent-Disposition: inline\r\n\r\n--=20\r\nListe f=C3=BCr"), "{out}");
        assert!(text_of(&out).contains("Liste für Entwickler"));
    }
}

#[test]
fn text_bodies_that_cannot_take_a_footer_are_wrapped() {
    let cases: [&[u8]; 4] = [
        b"Subject: s\r\nContent-Type: text/plain; charset=utf-16\r\n\r\n\xff\xfeh\x00",
        b"Subject: s\r\nContent-Type: text/plain; charset=x-unknown\r\n\r\nhi\r\n",
        b"Subject: s\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nhi\r\n",
        b"Subject: s\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 a\r\n",
    ];
    for raw in cases {
        let out = decorate(raw, &deco(Some("foot"))).expect("decorates");
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains("Content-Type: multipart/mixed; boundary="),
            "{text}"
        );
        let body = &raw[raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4..];
        assert!(out.windows(body.len()).any(|w| w == body), "{text}");
    }
}

#[test]
fn truncated_multipart_mixed_is_wrapped() {
    let raw =
        b"Subject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
                --b\r\nContent-Type: text/plain\r\n\r\nhi\r\n";
    let out = run(raw, &deco(Some("foot")));
    assert!(out.contains("boundary=\"=_lk_"), "{out}");
    assert_eq!(out.matches("MIME-Version").count(), 1);
}

#[test]
fn flowed_footer_is_space_stuffed() {
    let raw = b"Subject: s\r\nContent-Type: text/plain; format=flowed\r\n\r\nhi \r\nthere\r\n";
    let out = run(raw, &deco(Some("From the list\n> quoted\nplain")));
    assert!(
        out.ends_with("there\r\n-- \r\n From the list\r\n > quoted\r\nplain\r\n"),
        "{out}"
    );
}

#[test]
fn subject_prefix_variants() {
    let d = deco(None);
    let cases: [(&[u8], &str); 6] = [
        (
            b"Subject: [DEV] shouting\r\n\r\n",
            "Subject: [DEV] shouting\r\n",
        ),
        (b"Subject:tight\r\n\r\n", "Subject: [dev] tight\r\n"),
        (
            b"Subject:\r\n folded\r\n\r\n",
            "Subject: [dev]\r\n folded\r\n",
        ),
        (b"Subject: \r\n\r\n", "Subject: [dev]\r\n"),
        (b"subject : obs\r\n\r\n", "subject : [dev] obs\r\n"),
        (
            b"Subject: =?UTF-8?Q?=5Bdev=5D_x?=\r\n\r\n",
            "Subject: =?UTF-8?Q?=5Bdev=5D_x?=\r\n",
        ),
    ];
    for (raw, want) in cases {
        assert!(run(raw, &d).starts_with(want), "{want}");
    }
    // Only the first of two Subject fields gets the prefix.
    let out = run(b"Subject: one\r\nSubject: two\r\n\r\n", &d);
    assert!(out.starts_with("Subject: [dev] one\r\nSubject: two\r\n"));
}

#[test]
fn non_ascii_prefix_is_an_encoded_word() {
    let mut d = deco(None);
    d.subject_prefix = Some("[dév]".into());
    for (raw, decoded) in [
        (&b"Subject: plain\r\n\r\n"[..], "[dév] plain"),
        (b"Subject: =?UTF-8?B?w5xiZXI=?=\r\n\r\n", "[dév] Über"),
    ] {
        let out = run(raw, &d);
        let message = MessageParser::default()
            .parse(out.as_bytes())
            .expect("parses");
        assert_eq!(message.subject(), Some(decoded), "{out}");
    }
    let out = run(b"From: a@b\r\n\r\n", &d);
    assert!(
        out.starts_with("From: a@b\r\nSubject: =?UTF-8?B?W2TDqXZd?=\r\n"),
        "{out}"
    );
}

#[test]
fn list_id_rendering_and_injection() {
    let mut d = deco(None);
    d.display_name = "Dev \"core\" \\ team".into();
    assert!(run(b"A: b\r\n\r\n", &d)
        .contains("List-Id: \"Dev \\\"core\\\" \\\\ team\" <dev.example.org>\r\n"));
    d.display_name = String::new();
    assert!(run(b"A: b\r\n\r\n", &d).contains("List-Id: <dev.example.org>\r\n"));
    d.display_name = "Entwickler*innen und Übersetzer*innen der Gemeinschaft".into();
    let out = run(b"A: b\r\n\r\n", &d);
    let message = MessageParser::default()
        .parse(out.as_bytes())
        .expect("parses");
    let list_id = message.list_id().as_address().and_then(|a| a.first());
    assert_eq!(
        list_id.and_then(|a| a.name()),
        Some(d.display_name.as_str())
    );
    assert!(out.lines().all(|l| l.len() <= 78), "{out}");

    d.display_name = "Evil\r\nBcc: victim@example.com".into();
    d.subject_prefix = Some("[x]\r\nX-Injected: 1".into());
    d.post_address = "dev@example.org>\r\nX-Injected: 2".into();
    let out = run(b"Subject: s\r\n\r\n", &d);
    assert!(
        !out.contains("\r\nBcc:") && !out.contains("\r\nX-Injected"),
        "{out}"
    );
    assert!(
        out.contains("List-Post: <mailto:dev@example.orgX-Injected:2>\r\n"),
        "{out}"
    );
}

#[test]
fn list_id_detection() {
    let cases: [(&[u8], bool); 7] = [
        (b"List-Id: <dev.example.org>\n\n", true),
        (b"list-id: Dev <DEV.Example.ORG>\r\n\r\n", true),
        (
            b"List-Id: \"a <dev.example.org>\"\r\n <other.example.org>\r\n\r\n",
            false,
        ),
        (
            b"List-Id: (see <dev.example.org>) <other.example.org>\r\n\r\n",
            false,
        ),
        (b"List-Id: Dev\r\n\t<dev.example.org>\r\n\r\n", true),
        (b"Subject: x\r\n\r\nList-Id: <dev.example.org>\r\n", false),
        (b"List-Id: <dev.example.org", false),
    ];
    for (raw, want) in cases {
        assert_eq!(carries_list_id(raw, "dev.example.org"), want, "{raw:?}");
    }
    assert!(carries_list_id(
        b"List-Id: <dev.example.org>\r\n",
        "<dev.example.org>"
    ));
    assert!(!carries_list_id(b"List-Id: <>\r\n", ""));
}

fn deco_of(address: &str) -> Decoration {
    let (name, domain) = address.split_once('@').unwrap_or((address, ""));
    Decoration {
        list_id: format!("{name}.{domain}"),
        display_name: String::new(),
        subject_prefix: None,
        footer: None,
        post_address: address.into(),
        request_address: format!("{name}-request@{domain}"),
        subscribe_address: String::new(),
        unsubscribe_address: String::new(),
        owner_address: String::new(),
    }
}

#[test]
fn the_loop_marker_survives_decoration_by_another_list() {
    let raw = b"From: a@people.test\r\nSubject: hi\r\n\r\nbody\r\n";
    let once = decorate(raw, &deco(Some("foot"))).expect("decorates");
    assert!(been_there(&once, "dev@example.org"));
    assert_eq!(list_hops(&once), 1);
    // Another list replaces dev's List-* fields but keeps its marker and adds its own.
    let twice = decorate(&once, &deco_of("ops@example.net")).expect("decorates");
    let text = String::from_utf8_lossy(&twice);
    assert!(!carries_list_id(&twice, "dev.example.org"), "{text}");
    assert!(text.contains("X-BeenThere: dev@example.org\r\n"), "{text}");
    assert!(text.contains("X-BeenThere: ops@example.net\r\n"), "{text}");
    assert_eq!(list_hops(&twice), 2);
    assert!(been_there(&twice, "DEV@example.org"));
    let why = loop_reason(&twice, &deco(None)).expect("back at dev: a loop");
    assert!(why.contains("loop"), "{why}");
    assert_eq!(loop_reason(&twice, &deco_of("third@example.org")), None);
}

#[test]
fn loop_marker_detection_ignores_case_folding_and_comments() {
    let cases: [(&[u8], bool); 14] = [
        (b"X-BeenThere: dev@example.org\r\n\r\n", true),
        (b"x-beenthere: DEV@Example.ORG\n\n", true),
        (b"X-BEENTHERE :\r\n\tdev@example.org \r\n\r\n", true),
        (b"X-BeenThere: <dev@example.org>\r\n\r\n", true),
        (b"X-BeenThere: dev@example.org (via ops)\r\n\r\n", true),
        (b"X-BeenThere: dev\r\n @example.org\r\n\r\n", true),
        (
            b"X-BeenThere: a@b\r\nX-BeenThere: dev@example.org\r\n\r\n",
            true,
        ),
        (b"X-BeenThere: ops@example.net\r\n\r\n", false),
        (b"X-BeenThere: dev@example.org.evil\r\n\r\n", false),
        (
            b"X-BeenThere: (dev@example.org) ops@example.net\r\n\r\n",
            false,
        ),
        (b"X-BeenThere-Not: dev@example.org\r\n\r\n", false),
        (b"X-Been-There: dev@example.org\r\n\r\n", false),
        (b"Subject: x\r\n\r\nX-BeenThere: dev@example.org\r\n", false),
        (b"X-BeenThere: \xff\x00(\\\r\n\r\n", false),
    ];
    for (raw, want) in cases {
        assert_eq!(
            been_there(raw, "dev@example.org"),
            want,
            "{:?}",
            String::from_utf8_lossy(raw)
        );
        assert_eq!(loop_reason(raw, &deco(None)).is_some(), want);
    }
    assert!(!been_there(b"X-BeenThere: \r\n\r\n", ""));
}

#[test]
fn more_list_passes_than_the_hop_limit_are_a_loop() {
    let hops = |n: usize| {
        let mut raw: Vec<u8> = (0..n)
            .flat_map(|i| format!("X-BeenThere: list{i}@example.net\r\n").into_bytes())
            .collect();
        raw.extend_from_slice(b"Subject: x\r\n\r\nbody\r\n");
        raw
    };
    assert_eq!(loop_reason(&hops(MAX_LIST_HOPS), &deco(None)), None);
    let why = loop_reason(&hops(MAX_LIST_HOPS + 1), &deco(None)).expect("a loop");
    assert!(why.contains("11 lists"), "{why}");
}

#[test]
fn read_receipt_requests_are_dropped_and_the_rest_kept() {
    let raw = b"From: a@people.test\r\nDisposition-Notification-To: a@people.test\r\nX-Keep:  odd\r\n  folding\r\nreturn-receipt-to: <a@people.test>\r\nX-CONFIRM-READING-TO:\r\n a@people.test\r\nErrors-To : a@people.test\r\nX-PMRQC: 1\r\nSubject: hi\r\n\r\nErrors-To: stays in the body\r\n";
    let out = run(raw, &deco(None));
    let head = out.split("\r\n\r\n").next().unwrap_or_default();
    assert!(
        head.starts_with("From: a@people.test\r\nX-Keep:  odd\r\n  folding\r\nSubject: [dev] hi\r\nX-BeenThere: dev@example.org\r\nList-Id:"),
        "{out}"
    );
    assert!(
        out.ends_with("\r\n\r\nErrors-To: stays in the body\r\n"),
        "{out}"
    );
}

#[test]
fn line_ending_normalization() {
    assert!(matches!(
        normalize_line_endings(b"a\r\nb\rc"),
        Cow::Borrowed(_)
    ));
    assert_eq!(
        &*normalize_line_endings(b"\na\nb\r\nc\r"),
        b"\r\na\r\nb\r\nc\r"
    );
}

#[test]
fn boundaries_avoid_prefixes_and_text() {
    let texts: [&[u8]; 1] = [b"some message"];
    let first = new_boundary(&texts, &[]).expect("boundary");
    let second = new_boundary(&texts, &[first[..8].to_string()]).expect("boundary");
    assert_ne!(first, second);
    let mut hay = b"x--".to_vec();
    hay.extend_from_slice(first.as_bytes());
    assert!(!mime::contains(
        &hay,
        new_boundary(&[&hay], &[]).unwrap_or_default().as_bytes()
    ));
}

#[test]
fn the_prefix_never_pushes_the_subject_past_998_octets() {
    let long = "w".repeat(985);
    for eol in ["\r\n", "\n"] {
        let raw = format!("Subject: {long}{eol}From: a@example.org{eol}{eol}body{eol}");
        let out = run(raw.as_bytes(), &deco(None));
        assert!(
            out.split('\n')
                .all(|l| l.trim_end_matches('\r').len() <= 998),
            "an overlong line in {out:?}"
        );
        let message = MessageParser::default()
            .parse(out.as_bytes())
            .expect("parses");
        assert_eq!(message.subject(), Some(format!("[dev] {long}").as_str()));
    }
    // A short subject stays on one line.
    let out = run(b"Subject: hi\r\n\r\nbody\r\n", &deco(None));
    assert!(out.starts_with("Subject: [dev] hi\r\n"), "{out}");
}

#[test]
fn a_wrapped_8bit_post_labels_its_outer_multipart() {
    // A charset the footer cannot be appended in: the post is wrapped, its Content-* fields
    // move into the inner part, and the outer part carries the same 8-bit octets.
    let raw = b"Subject: s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=x-unknown\r\n\
                Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xe9\r\n";
    let out = decorate(raw, &deco(Some("foot"))).expect("decorates");
    let text = String::from_utf8_lossy(&out);
    let (outer, inner) = text.split_once("\r\n\r\n").expect("header section");
    assert!(outer.contains("multipart/mixed"), "{text}");
    assert!(outer.contains("Content-Transfer-Encoding: 8bit"), "{text}");
    assert!(inner.contains("Content-Transfer-Encoding: 8bit"), "{text}");
    // A 7-bit post wrapped the same way declares nothing.
    let ascii = b"Subject: s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=x-unknown\r\n\r\ncafe\r\n";
    let out = decorate(ascii, &deco(Some("foot"))).expect("decorates");
    let text = String::from_utf8_lossy(&out);
    let (outer, _) = text.split_once("\r\n\r\n").expect("header section");
    assert!(outer.contains("multipart/mixed"), "{text}");
    assert!(!outer.contains("Content-Transfer-Encoding"), "{text}");
}
