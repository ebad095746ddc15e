use mail_parser::MessageParser;
use regex::Regex;

use super::*;

// The checks as a stage calls them: on the post's one parse of its header section.
fn headers(raw: &[u8]) -> Option<mail_parser::Message<'_>> {
    MessageParser::default().parse_headers(raw)
}

fn explicit_recipients(raw: &[u8]) -> usize {
    headers(raw).map_or(0, |h| checks::explicit_recipients(&h))
}

fn addressed_to(raw: &[u8], addresses: &[String]) -> bool {
    headers(raw).is_some_and(|h| checks::addressed_to(&h, addresses))
}

fn header_matches(raw: &[u8], header: &str, pattern: &Regex) -> bool {
    headers(raw).is_some_and(|h| checks::header_matches(raw, &h, header, pattern))
}

fn drop(types: &[&str]) -> MimeFilter {
    MimeFilter {
        drop_types: types.iter().map(|t| t.to_string()).collect(),
        ..MimeFilter::default()
    }
}

fn collapse() -> MimeFilter {
    MimeFilter {
        collapse_alternatives: true,
        ..MimeFilter::default()
    }
}

fn run(raw: &str, f: &MimeFilter) -> Result<Option<(String, Vec<String>)>, ContentError> {
    let out = filter_mime(raw.as_bytes(), f)?;
    Ok(out.map(|f| {
        assert!(MessageParser::default().parse(&f.message).is_some());
        (String::from_utf8_lossy(&f.message).into_owned(), f.removed)
    }))
}

const MIXED: &str = "Subject: s\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
    preamble\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\n\
    Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBO\r\n--b--\r\nepilogue\r\n";

#[test]
fn patterns_are_checked() {
    for ok in [
        "text/plain",
        "image/*",
        "text",
        "application/vnd.ms-excel",
        "x-foo/bar+xml",
    ] {
        assert_eq!(MimeFilter::check_pattern(ok), Ok(()), "{ok}");
    }
    for bad in [
        "",
        "Text/Plain",
        "*",
        "*/*",
        "*/plain",
        "text/",
        "/plain",
        "text/pl ain",
        "text/plain;",
        "a/b/c",
        "text/*x",
        "tëxt",
    ] {
        let e = MimeFilter::check_pattern(bad).expect_err(bad);
        assert!(e.contains(&format!("\"{bad}\"")) || bad.is_empty(), "{e}");
    }
}

#[test]
fn pattern_matching() {
    assert!(matches("text/plain", "text/plain"));
    assert!(!matches("text/plain", "text/html"));
    assert!(matches("image/*", "image/png"));
    assert!(!matches("image/*", "imagex/png"));
    assert!(matches("text", "text/html"));
    assert!(!matches("text", "textile/x"));
    assert!(matches("multipart/related", "multipart/related"));
    let f = MimeFilter {
        pass_types: vec!["text".into()],
        drop_types: vec!["text/html".into()],
        collapse_alternatives: false,
    };
    assert!(f.keeps_leaf("text/plain"));
    assert!(!f.keeps_leaf("text/html"));
    assert!(!f.keeps_leaf("image/png"));
    assert!(f.is_active());
    assert!(!MimeFilter::default().is_active());
}

#[test]
fn inactive_filter_changes_nothing() {
    assert_eq!(run(MIXED, &MimeFilter::default()), Ok(None));
    assert_eq!(run("no header at all", &MimeFilter::default()), Ok(None));
}

#[test]
fn removes_a_part_with_its_delimiter_line() {
    let (out, removed) = run(MIXED, &drop(&["image/png"])).unwrap().unwrap();
    assert_eq!(removed, ["image/png"]);
    assert_eq!(
        out,
        "Subject: s\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         preamble\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n\
         [Parts of this message were removed by the list: image/png]\r\n--b--\r\nepilogue\r\n"
    );
    // The first part can go too: the first delimiter line then opens the second.
    let (out, removed) = run(MIXED, &drop(&["text"])).unwrap().unwrap();
    assert_eq!(removed, ["text/plain"]);
    assert!(
        out.contains("preamble\r\n--b\r\nContent-Type: image/png\r\n"),
        "{out}"
    );
    assert!(!out.contains("hello"));
}

#[test]
fn nothing_left_is_empty() {
    assert_eq!(
        run(MIXED, &drop(&["text", "image"])),
        Err(ContentError::Empty)
    );
    assert_eq!(
        run(MIXED, &drop(&["multipart/mixed"])),
        Err(ContentError::Empty)
    );
    let single = "Subject: s\r\nContent-Type: image/png\r\n\r\nxx\r\n";
    assert_eq!(run(single, &drop(&["image/*"])), Err(ContentError::Empty));
    let implicit = "Subject: s\r\n\r\nplain text\r\n";
    let pass_html = MimeFilter {
        pass_types: vec!["text/html".into()],
        ..MimeFilter::default()
    };
    assert_eq!(run(implicit, &pass_html), Err(ContentError::Empty));
    assert_eq!(run(implicit, &drop(&["image/*"])), Ok(None));
}

#[test]
fn unreadable_content_type_does_not_pass_as_text() {
    let raw = "Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
               Content-Type: ;;;\r\n\r\nMZ\r\n--b\r\n\r\nimplicit text\r\n--b--\r\n";
    let pass = MimeFilter {
        pass_types: vec!["text/plain".into()],
        ..MimeFilter::default()
    };
    let (out, removed) = run(raw, &pass).unwrap().unwrap();
    assert_eq!(removed, ["application/octet-stream"]);
    assert!(out.contains("implicit text") && !out.contains("MZ"));
}

#[test]
fn misplaced_delimiters_are_not_edited() {
    // The boundary in the middle of a preamble line: mail-parser takes it as the delimiter.
    let raw = "Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\nsee --b\r\n\
               Content-Type: image/png\r\n\r\nxx\r\n--b\r\nContent-Type: text/plain\r\n\r\nt\r\n--b--\r\n";
    assert_eq!(
        run(raw, &drop(&["image/png"])),
        Err(ContentError::Malformed(
            "a delimiter is not on a line of its own"
        ))
    );
    // No closing delimiter, but text after the last part's end: not edited.
    let raw = "Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
               Content-Type: image/png\r\n\r\nxx\r\n--b\r\nContent-Type: text/plain\r\n\r\nt\r\n--b-x\r\n";
    assert!(matches!(
        run(raw, &drop(&["image/png"])),
        Err(ContentError::Malformed(_))
    ));
    // A longer boundary that starts with this one is not a delimiter of it.
    let raw = "Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
               Content-Type: image/png\r\n\r\nxx\r\n--bb\r\nContent-Type: text/plain\r\n\r\nt\r\n--b--\r\n";
    assert!(matches!(
        run(raw, &drop(&["image/png"])),
        Err(ContentError::Malformed(_))
    ));
    // Nothing to remove: the structure is not looked at closely.
    assert_eq!(run(raw, &drop(&["audio/*"])), Ok(None));
    assert!(matches!(
        run("", &drop(&["audio/*"])),
        Err(ContentError::Malformed(_))
    ));
}

#[test]
fn padding_and_empty_bodies() {
    let raw = "Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b \t\r\n\
               Content-Type: image/png\r\n\r\n--b  \r\nContent-Type: text/plain\r\n\r\n\
               --b\r\nContent-Type: text/plain\r\n\r\nlast\r\n--b-- \r\n";
    let (out, removed) = run(raw, &drop(&["image/png"])).unwrap().unwrap();
    assert_eq!(removed, ["image/png"]);
    let m = MessageParser::default().parse(out.as_bytes()).unwrap();
    assert_eq!(m.parts.len(), 4, "{out}"); // root, two text parts, the note
    assert!(out.starts_with(
        "Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b \t\r\n\
         Content-Type: text/plain\r\n\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nlast\r\n--b\r\n"
    ), "{out}");
    assert!(out.ends_with("image/png]\r\n--b-- \r\n"), "{out}");
}

#[test]
fn collapse_at_the_root_hoists_the_text() {
    let raw = "From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n \
               boundary=\"alt\"\r\nSubject: s\r\n\r\n--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\
               Content-Transfer-Encoding: quoted-printable\r\n\r\nh=C3=A9\r\n--alt\r\n\
               Content-Type: text/html\r\n\r\n<p>h\r\n--alt--\r\n";
    let (out, removed) = run(raw, &collapse()).unwrap().unwrap();
    assert_eq!(removed, ["text/html"]);
    assert_eq!(
        out,
        "From: a@example.org\r\nMIME-Version: 1.0\r\nSubject: s\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\
         \r\nh=C3=A9\r\n"
    );
    // text/plain is itself dropped: the alternative stays and is filtered as usual.
    let f = MimeFilter {
        drop_types: vec!["text/plain".into()],
        collapse_alternatives: true,
        ..MimeFilter::default()
    };
    let (out, removed) = run(raw, &f).unwrap().unwrap();
    assert_eq!(removed, ["text/plain"]);
    assert!(
        out.contains("multipart/alternative") && out.contains("<p>h"),
        "{out}"
    );
    // The note cannot go inside the alternative (it would be one of the alternatives): the
    // message is wrapped in a multipart/mixed with the note after it.
    let parsed = mail_parser::MessageParser::default()
        .parse(out.as_bytes())
        .expect("parses");
    let root = mail_parser::MimeHeaders::content_type(parsed.root_part()).expect("content type");
    assert_eq!(
        (root.ctype(), root.subtype()),
        ("multipart", Some("mixed")),
        "{out}"
    );
    assert!(out.contains("[Parts of this message were removed by the list: text/plain]"));
    assert!(out.starts_with("From: a@example.org\r\nMIME-Version: 1.0\r\nSubject: s\r\n"));
}

#[test]
fn a_report_that_lost_parts_says_so() {
    let raw = "Subject: s\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=r\r\n\r\n\
               --r\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--r\r\n\
               Content-Type: application/x-msdownload\r\n\r\nMZ\r\n--r--\r\n";
    let (out, removed) = run(raw, &drop(&["application/x-msdownload"]))
        .unwrap()
        .unwrap();
    assert_eq!(removed, ["application/x-msdownload"]);
    assert!(!out.contains("MZ"), "{out}");
    assert!(
        out.contains("multipart/report") && out.contains("multipart/mixed"),
        "{out}"
    );
    assert!(
        out.contains("[Parts of this message were removed by the list: application/x-msdownload]"),
        "{out}"
    );
}

#[test]
fn collapse_needs_a_text_plain_alternative() {
    let raw = "Subject: s\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\n\
               Content-Type: text/html\r\n\r\n<p>\r\n--a\r\nContent-Type: text/enriched\r\n\r\nx\r\n--a--\r\n";
    assert_eq!(run(raw, &collapse()), Ok(None));
    let single = "Subject: s\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\n\
                  Content-Type: text/plain\r\n\r\nt\r\n--a--\r\n";
    assert_eq!(run(single, &collapse()), Ok(None));
}

#[test]
fn dropped_multipart_lists_its_leaves() {
    let raw = "Subject: s\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n\
               Content-Type: text/plain\r\n\r\nt\r\n--o\r\nContent-Type: multipart/related; boundary=i\r\n\r\n\
               --i\r\nContent-Type: text/html\r\n\r\n<p>\r\n--i\r\nContent-Type: image/gif\r\n\r\nG\r\n--i--\r\n\
               --o--\r\n";
    let (out, removed) = run(raw, &drop(&["multipart/related"])).unwrap().unwrap();
    assert_eq!(removed, ["text/html", "image/gif"]);
    assert!(
        out.contains("removed by the list: text/html, image/gif]"),
        "{out}"
    );
    // A nested multipart losing everything goes, with its delimiter line.
    let (out, removed) = run(raw, &drop(&["text/html", "image/*"])).unwrap().unwrap();
    assert_eq!(removed, ["text/html", "image/gif"]);
    assert!(!out.contains("--i"), "{out}");
}

#[test]
fn deep_nesting_is_refused_not_recursed() {
    let depth = 200;
    let mut raw = String::from("Subject: s\r\n");
    for i in 0..depth {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{i}x\r\n\r\n--b{i}x\r\n"
        ));
    }
    raw.push_str("Content-Type: image/png\r\n\r\nxx\r\n");
    for i in (0..depth).rev() {
        raw.push_str(&format!("--b{i}x--\r\n"));
    }
    assert!(matches!(
        run(&raw, &drop(&["image/png"])),
        Err(ContentError::Malformed(_))
    ));
}

#[test]
fn note_wraps_dedups_and_never_holds_a_delimiter() {
    let types: Vec<String> = (0..30).map(|i| format!("application/x-type-{i}")).collect();
    let note = String::from_utf8(splice::note_part(&types)).unwrap();
    assert!(note.lines().all(|l| l.len() <= 78), "{note}");
    assert!(note.contains("application/x-type-29]"));
    let note = String::from_utf8(splice::note_part(&["a/b".into(), "a/b".into()])).unwrap();
    assert!(note.ends_with("list: a/b]"), "{note}");
    let note = String::from_utf8(splice::note_part(&["x/y--b".into()])).unwrap();
    assert!(note.ends_with("[Parts of this message were removed by the list.]"));
}

#[test]
fn explicit_recipients_count_distinct_addresses() {
    let raw = b"To: a@example.org, \"B\" <b@example.org>\r\nCc: team: c@example.org, d@example.org;,\r\n \
                A@Example.org\r\nTo: e@example.org\r\nBcc: z@example.org\r\n\r\nbody: x@example.org\r\n";
    assert_eq!(explicit_recipients(raw), 5);
    assert_eq!(
        explicit_recipients(b"To: undisclosed-recipients:;\r\n\r\n"),
        0
    );
    assert_eq!(explicit_recipients(b"Subject: none\r\n\r\n"), 0);
    assert_eq!(explicit_recipients(b""), 0);
}

#[test]
fn addressed_to_ignores_names_and_case() {
    let list = vec!["dev@example.org".to_string()];
    let raw = b"To: \"dev@example.org is not it\" <someone@example.org>\r\n\
                Cc: Developers <DEV@Example.ORG>\r\n\r\n";
    assert!(addressed_to(raw, &list));
    let bcc = b"To: someone@example.org\r\nBcc: dev@example.org\r\n\r\nTo: dev@example.org\r\n";
    assert!(!addressed_to(bcc, &list));
    let group = b"To: devs: dev@example.org;\r\n\r\n";
    assert!(addressed_to(group, &list));
    assert!(!addressed_to(b"To: dev@example.org\r\n\r\n", &[]));
}

#[test]
fn administrivia_commands() {
    for subject in [
        "unsubscribe",
        "UNSUBSCRIBE",
        "Unsubscribe me!",
        "Re: [dev] unsubscribe",
        "please unsubscribe me",
        "Please remove me.",
        "How do I unsubscribe?",
        "subscribe",
        "help",
        "set nomail",
        "signoff",
        "leave",
        "join please",
        "unsubscribe me from this list",
        "unsubscribe ann@example.org",
    ] {
        assert!(is_administrivia(subject, ""), "{subject:?}");
    }
    let reply = "unsubscribe\n\nOn Monday, Ann wrote:\n".to_string()
        + &"> quoted discussion line\n".repeat(40)
        + "-- \nBob\nCompany\nStreet\nCity\nPhone\nFax\nWeb\nMotto\nMore\nEven more\n";
    assert!(is_administrivia("Re: [dev] Release plan", &reply));
    assert!(is_administrivia(
        "",
        "\u{feff}Hi,\n\nplease unsubscribe me.\n\nThanks\n"
    ));
    assert!(is_administrivia("", "\r\n\r\n   Remove me   \r\n"));
}

#[test]
fn administrivia_leaves_discussions_alone() {
    for subject in [
        "How do I unsubscribe a member who left the company?",
        "unsubscribe link broken in footer",
        "Help with the build",
        "Re: help me",
        "join the meeting",
        "help ann@example.org",
        "",
    ] {
        assert!(!is_administrivia(subject, ""), "{subject:?}");
    }
    let discussion = "I think the unsubscribe flow is confusing.\n".to_string()
        + &"More thoughts on the topic.\n".repeat(12)
        + "unsubscribe\n";
    assert!(!is_administrivia("Thoughts", &discussion));
    let long = (1..=11)
        .map(|i| {
            if i == 2 {
                "unsubscribe".to_string()
            } else {
                format!("line {i}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !is_administrivia("x", &long),
        "more than 10 lines of the poster's own"
    );
    // Only the first five of the poster's lines are looked at.
    let late = "a\nb\nc\nd\ne\nunsubscribe\n";
    assert!(!is_administrivia("x", late));
    let quoted = "> unsubscribe\nI disagree with the above.\n";
    assert!(!is_administrivia("Re: x", quoted));
}

#[test]
fn header_rules_see_decoded_values_of_every_occurrence() {
    let raw = b"Subject: =?UTF-8?B?R3LDvMOfZQ==?= aus\r\n  Berlin\r\nX-Spam-Flag: NO\r\n\
                x-spam-flag: YES\r\nFrom: =?UTF-8?Q?J=C3=BCrgen?= <j@example.org>\r\n\r\n\
                X-Spam-Flag: body\r\n";
    let re = |p: &str| Regex::new(p).unwrap();
    assert!(header_matches(raw, "X-Spam-Flag", &re("^YES$")));
    assert!(header_matches(raw, "x-spam-flag", &re("^NO$")));
    assert!(!header_matches(raw, "X-Spam-Flag", &re("body")));
    assert!(header_matches(raw, "subject", &re("^Grüße aus Berlin$")));
    assert!(header_matches(raw, "From", &re("^Jürgen <j@example.org>$")));
    assert!(!header_matches(raw, "X-Missing", &re("")));
    assert!(!header_matches(b"", "Subject", &re("")));
}

#[test]
fn helpers_never_panic_on_garbage() {
    let re = Regex::new("a").unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"To:Cc, <>@\"\\;()\r\n \t=?UTF-8?B?Q?\xc3\xa9\xff\x00unsubscribe>";
    for _ in 0..3000 {
        let len = (next() % 120) as usize;
        let raw: Vec<u8> = (0..len)
            .map(|_| alphabet[(next() as usize) % alphabet.len()])
            .collect();
        let _ = explicit_recipients(&raw);
        let _ = addressed_to(&raw, &["a@b".into()]);
        let _ = header_matches(&raw, "to", &re);
        let text = String::from_utf8_lossy(&raw);
        let _ = is_administrivia(&text, &text);
    }
}

#[test]
fn many_recipients_and_parts_stay_fast() {
    let mut raw = String::from("To: ");
    for i in 0..200_000 {
        raw.push_str(&format!("u{i}@example.org, "));
    }
    raw.push_str("last@example.org\r\n\r\nx\r\n");
    assert_eq!(explicit_recipients(raw.as_bytes()), 200_001);

    let mut raw = String::from("Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n");
    for i in 0..20_000 {
        raw.push_str(&format!(
            "--b\r\nContent-Type: application/x-{i}\r\n\r\nx\r\n"
        ));
    }
    raw.push_str("--b\r\nContent-Type: text/plain\r\n\r\nkept\r\n--b--\r\n");
    let (out, removed) = run(&raw, &drop(&["application"])).unwrap().unwrap();
    assert_eq!(removed.len(), 20_000);
    assert!(out.contains("kept") && out.contains("application/x-19999]"));
}

#[test]
fn two_content_type_fields_hold_the_post() {
    // The executable type first, text/plain last: the parser sees text/plain, a client may
    // see the executable. Neither pass_types nor drop_types may decide on one of them.
    let raw = "Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
               Content-Type: text/plain\r\n\r\nhello\r\n--b\r\n\
               Content-Type: application/x-msdownload\r\nContent-Type: text/plain\r\n\r\nMZ\r\n--b--\r\n";
    let pass = MimeFilter {
        pass_types: vec!["text/plain".into()],
        ..MimeFilter::default()
    };
    assert!(matches!(run(raw, &pass), Err(ContentError::Malformed(_))));
    assert!(matches!(
        run(raw, &drop(&["application/x-msdownload"])),
        Err(ContentError::Malformed(_))
    ));
    let cte = "Subject: s\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\
               Content-Transfer-Encoding: 7bit\r\n\r\nTVo=\r\n";
    assert!(matches!(run(cte, &pass), Err(ContentError::Malformed(_))));
}

#[test]
fn text_without_a_subtype_is_text_plain() {
    let raw = "Subject: s\r\nContent-Type: text; charset=us-ascii\r\n\r\nhello\r\n";
    let pass = MimeFilter {
        pass_types: vec!["text/plain".into()],
        ..MimeFilter::default()
    };
    assert_eq!(run(raw, &pass), Ok(None));
    let mixed = "Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
               Content-Type: text\r\n\r\nhello\r\n--b\r\nContent-Type: image/png\r\n\r\nxx\r\n--b--\r\n";
    let (out, removed) = run(mixed, &pass).unwrap().unwrap();
    assert_eq!(removed, ["image/png"]);
    assert!(out.contains("hello"));
}

#[test]
fn a_multipart_without_its_closing_delimiter_is_closed_at_the_end() {
    let raw = "Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
               Content-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: image/png\r\n\r\nxx\r\n";
    let (out, removed) = run(raw, &drop(&["image/png"])).unwrap().unwrap();
    assert_eq!(removed, ["image/png"]);
    assert!(out.contains("hello") && !out.contains("xx"), "{out}");
    assert!(out.ends_with("\r\n--b--\r\n"), "{out:?}");
    let reparsed = mail_parser::MessageParser::default()
        .parse(out.as_bytes())
        .expect("parses");
    // The root, the text and the note about the removed part.
    assert_eq!(reparsed.parts.len(), 3, "{out}");
}
