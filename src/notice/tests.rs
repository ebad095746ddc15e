use super::*;

use mail_parser::{HeaderValue, MessageParser};

const TOML: &str = r#"
[templates.welcome]
enabled = false
[templates.goodbye]
subject = "Bye from {list_name} {{braces}}"
body = "Goodbye {address}.\r\nSee {owner_address}."
"#;

#[derive(serde::Deserialize)]
struct File {
    templates: BTreeMap<String, RawTemplate>,
}

fn overrides(text: &str) -> Result<Templates, Vec<TemplateError>> {
    let file: File = toml::from_str(text).expect("valid TOML");
    templates_from(&file.templates)
}

fn vars(kind: Kind) -> Vars {
    kind.placeholders()
        .iter()
        .map(|&p| (p, format!("<{p}>")))
        .collect()
}

#[test]
fn defaults_validate_and_carry_the_tokens() {
    let t = Templates::defaults();
    let common = Kind::Welcome.placeholders();
    assert_eq!(common.len(), 7);
    let mut keys: Vec<&str> = Vec::new();
    for &kind in Kind::all() {
        assert_eq!(Kind::from_key(kind.key()), Some(kind));
        assert!(kind.placeholders().starts_with(common), "{kind:?}");
        keys.push(kind.key());
        let tpl = t.get(kind).expect("defaults are on");
        check_placeholders(&tpl.subject, kind).expect("subject placeholders");
        check_placeholders(&tpl.body, kind).expect("body placeholders");
        assert!(!tpl.subject.chars().any(char::is_control), "{kind:?}");
        // Every placeholder of the kind is filled: nothing of the form {name} survives.
        let r = t.rendered(kind, &vars(kind)).expect("on");
        assert!(
            !r.subject.contains(['{', '}']) && !r.body.contains(['{', '}']),
            "{r:?}"
        );
        for line in r.body.lines() {
            assert!(line.chars().count() <= 76, "{kind:?}: {line:?}");
        }
    }
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), Kind::all().len());
    for kind in [Kind::ConfirmJoin, Kind::ConfirmLeave, Kind::ConfirmNomail] {
        let tpl = t.get(kind).expect("on");
        assert!(tpl.subject.contains("confirm {token}"), "{kind:?}");
        assert!(tpl.body.contains("confirm {token}") && tpl.body.contains("{expires}"));
    }
    let approval = t.get(Kind::ApprovalRequest).expect("on");
    assert!(approval.subject.contains("approve {token}"));
    assert!(approval.body.contains("reject {token}"));
    assert!(t
        .get(Kind::CommandResults)
        .expect("on")
        .body
        .contains("{results}"));
    assert!(t
        .get(Kind::ApprovalRejected)
        .expect("on")
        .body
        .contains("{reason}"));
}

#[test]
fn the_confirmation_subject_is_understood_as_a_command_when_replied_to() {
    use crate::requests::commands::{parse, Command};
    let token = "AbCdEfGhIjKlMnOp_-12";
    let mut v = vars(Kind::ConfirmJoin);
    v.insert("token", token.into());
    v.insert("list_address", "dev@example.org".into());
    for kind in [Kind::ConfirmJoin, Kind::ConfirmLeave, Kind::ConfirmNomail] {
        let r = Templates::defaults().rendered(kind, &v).expect("on");
        let p = parse(Some(&format!("Re: {}", r.subject)), "", 20);
        assert_eq!(p.lines.len(), 1, "{kind:?}: {p:?}");
        assert_eq!(p.lines[0].parsed, Ok(Command::Confirm(token.into())));
    }
    let r = Templates::defaults()
        .rendered(Kind::ApprovalRequest, &v)
        .expect("on");
    let p = parse(Some(&format!("AW: {}", r.subject)), "", 20);
    assert_eq!(p.lines[0].parsed, Ok(Command::Approve(token.into())));
}

#[test]
fn overrides_apply_and_welcome_can_be_switched_off() {
    let t = overrides(TOML).expect("valid");
    assert_eq!(t.get(Kind::Welcome), None);
    assert!(t.get(Kind::Goodbye).is_some());
    let mut v = Vars::new();
    v.insert("list_name", "dev".into());
    v.insert("address", "a@example.org".into());
    let r = t.rendered(Kind::Goodbye, &v).expect("on");
    assert_eq!(r.subject, "Bye from dev {braces}");
    assert_eq!(r.body, "Goodbye a@example.org.\nSee {owner_address}.");
    assert_eq!(
        t.get(Kind::ConfirmJoin),
        Templates::defaults().get(Kind::ConfirmJoin)
    );
    let on = overrides("[templates.welcome]\nenabled = true\n").expect("valid");
    assert!(on.get(Kind::Welcome).is_some());
    assert_eq!(
        overrides("templates = {}").expect("valid"),
        Templates::defaults()
    );
}

#[test]
fn every_bad_override_is_reported_with_its_key_and_span() {
    let text = r#"
[templates.wellcome]
subject = "Hi"
[templates.welcome]
body = "Hello {adress}"
[templates.confirm_join]
enabled = false
subject = "Line\nbreak"
[templates.goodbye]
subject = "  "
body = "a lone } here"
[templates.approval_rejected]
body = "{token}"
"#;
    let errors = overrides(text).expect_err("invalid");
    let keys: Vec<&str> = errors.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        keys,
        [
            "templates.approval_rejected.body",
            "templates.confirm_join.subject",
            "templates.confirm_join.enabled",
            "templates.goodbye.subject",
            "templates.goodbye.body",
            "templates.welcome.body",
            "templates.wellcome",
        ]
    );
    let at = |key: &str| {
        let e = errors.iter().find(|e| e.0 == key).expect("reported");
        (text.get(e.1.clone()).unwrap_or_default(), e.2.as_str())
    };
    let (span, msg) = at("templates.welcome.body");
    assert_eq!(span, "\"Hello {adress}\"");
    assert!(
        msg.starts_with("unknown placeholder {adress} for `welcome`"),
        "{msg}"
    );
    let (span, msg) = at("templates.wellcome");
    assert_eq!(span, "\"Hi\"");
    assert!(msg.contains("known are confirm_join,"), "{msg}");
    assert_eq!(at("templates.confirm_join.enabled").0, "false");
    assert!(at("templates.confirm_join.subject")
        .1
        .contains("control characters"));
    assert!(at("templates.goodbye.subject").1.contains("empty"));
    assert!(at("templates.goodbye.body").1.contains("lone '}'"));
    assert!(at("templates.approval_rejected.body").1.contains("{token}"));
    let bad = "[templates.welcome]\ncolour = \"red\"\n";
    assert!(toml::from_str::<File>(bad).is_err(), "deny_unknown_fields");
}

#[test]
fn render_fills_placeholders_once() {
    let mut v = Vars::new();
    v.insert("address", "{token}".into());
    v.insert("token", "T".into());
    v.insert("list_name", "Ünïcödé 😀".into());
    assert_eq!(render("{address} {token}", &v), "{token} T");
    assert_eq!(render("{{x}} {list_name}", &v), "{x} Ünïcödé 😀");
    assert_eq!(render("{nope} } { {", &v), "{nope} } { {");
    assert_eq!(render("{token", &v), "{token");
    assert_eq!(render("}}}{{{", &v), "}}{{");
    assert_eq!(render("", &v), "");
}

fn notice<'a>(subject: &'a str, body: &'a str, name: &'a str) -> Notice<'a> {
    Notice {
        from_name: name,
        from: "dev-request@example.org",
        to: "alice@example.net",
        reply_to: Some("dev-confirm+AbCdEfGhIjKlMnOp@example.org"),
        in_reply_to: Some("orig.123@mail.example.net"),
        auto_submitted: "auto-replied",
        list_id: "dev.example.org",
        subject,
        body,
        domain: "example.org",
    }
}

fn head(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn built_messages_parse_back() {
    let subject = "Bitte bestätigen: join dev@example.org (confirm AbCdEfGhIjKlMnOp) — 日本語 😀";
    let body = "Hällo,\n\nplease confirm.\n-- \nDev\n";
    let raw = build(&notice(subject, body, "Entwickler, Ünïcode")).expect("built");
    assert!(
        raw.windows(2).all(|w| w[1] != b'\n' || w[0] == b'\r'),
        "CRLF only"
    );
    assert!(raw.is_ascii(), "headers and body are encoded");
    let m = MessageParser::default().parse(&raw).expect("parses");
    assert_eq!(m.subject(), Some(subject));
    let from = m.from().and_then(|a| a.first()).expect("From");
    assert_eq!(from.name(), Some("Entwickler, Ünïcode"));
    assert_eq!(from.address(), Some("dev-request@example.org"));
    assert_eq!(
        m.to().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("alice@example.net")
    );
    assert_eq!(
        m.reply_to()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some("dev-confirm+AbCdEfGhIjKlMnOp@example.org")
    );
    assert_eq!(
        m.body_text(0).as_deref().map(|b| b.replace("\r\n", "\n")),
        Some(body.to_string())
    );
    assert_eq!(m.in_reply_to().as_text(), Some("orig.123@mail.example.net"));
    assert_eq!(m.references().as_text(), Some("orig.123@mail.example.net"));
    assert!(m
        .message_id()
        .is_some_and(|id| id.ends_with("@example.org")));
    assert!(m.date().is_some());
    let h = head(&raw);
    assert!(h.contains("\r\nAuto-Submitted: auto-replied\r\n"), "{h}");
    assert!(h.contains("\r\nList-Id: <dev.example.org>\r\n"), "{h}");
    assert!(h.contains("MIME-Version: 1.0\r\n"), "{h}");
    assert!(
        h.contains("Content-Type: text/plain; charset=\"utf-8\""),
        "{h}"
    );
    // mail-builder picks the encoding: base64 for this short, mostly non-ASCII body...
    assert!(h.contains("Content-Transfer-Encoding: base64"), "{h}");
    assert!(!h.to_ascii_lowercase().contains("precedence:"), "{h}");
    assert!(!h.contains("Content-Type: multipart"), "{h}");

    // ...and quoted-printable for a default text with one non-ASCII name in it.
    let mut v = vars(Kind::Welcome);
    v.insert("address", "jürgen@example.net".into());
    let r = Templates::defaults()
        .rendered(Kind::Welcome, &v)
        .expect("on");
    let raw = build(&notice(&r.subject, &r.body, "Ünïcode")).expect("built");
    assert!(head(&raw).contains("Content-Transfer-Encoding: quoted-printable"));
    let m = MessageParser::default().parse(&raw).expect("parses");
    let text = m.body_text(0).map(|b| b.replace("\r\n", "\n"));
    assert_eq!(text.as_deref(), Some(r.body.as_str()));
}

#[test]
fn ascii_notices_are_7bit_and_ids_are_fresh() {
    let n = Notice {
        in_reply_to: None,
        reply_to: None,
        auto_submitted: "auto-generated",
        ..notice("Welcome to dev@example.org", "Hello,\nwelcome.\n", "")
    };
    let a = build(&n).expect("built");
    let b = build(&n).expect("built");
    let (ma, mb) = (
        MessageParser::default().parse(&a).expect("parses"),
        MessageParser::default().parse(&b).expect("parses"),
    );
    assert_ne!(ma.message_id(), mb.message_id());
    assert_eq!(
        ma.body_text(0)
            .as_deref()
            .map(|b| b.replace("\r\n", "\n"))
            .as_deref(),
        Some("Hello,\nwelcome.\n")
    );
    let h = head(&a);
    assert!(
        !h.contains("Content-Transfer-Encoding: quoted-printable") && !h.contains("base64"),
        "{h}"
    );
    assert!(
        h.starts_with("From: <dev-request@example.org>\r\n")
            || h.starts_with("From: dev-request@example.org\r\n"),
        "{h}"
    );
    assert!(
        !h.contains("In-Reply-To") && !h.contains("References") && !h.contains("Reply-To"),
        "{h}"
    );
    assert!(h.contains("Auto-Submitted: auto-generated"), "{h}");
    assert!(matches!(
        ma.header("List-Id"),
        Some(HeaderValue::Address(_)) | Some(HeaderValue::Text(_))
    ));
}

#[test]
fn line_breaks_cannot_inject_headers() {
    let evil = "Hi\r\nBcc: evil@example.com\r\n\r\nbody";
    let n = Notice {
        in_reply_to: Some("x@y>\r\nBcc: evil@example.com"),
        ..notice(
            evil,
            "text\r\n\r\nBcc: evil@example.com\n.\r\n",
            "Dev\nBcc: evil@example.com\r",
        )
    };
    let raw = build(&n).expect("built");
    let h = head(&raw);
    for line in h.split("\r\n") {
        assert!(!line.to_ascii_lowercase().starts_with("bcc"), "{h}");
    }
    let m = MessageParser::default().parse(&raw).expect("parses");
    assert!(m.bcc().is_none());
    assert!(
        m.in_reply_to().as_text().is_none(),
        "a broken id is left out"
    );
    assert_eq!(m.subject(), Some("Hi Bcc: evil@example.com body"));
    assert_eq!(
        m.from().and_then(|a| a.first()).and_then(|a| a.name()),
        Some("Dev Bcc: evil@example.com")
    );
}

#[test]
fn encoded_words_in_a_subject_are_shown_as_text_not_decoded() {
    // `{subject}` is decoded once; a subject encoded twice would come back as an encoded word
    // whose decoding holds CR LF.
    let inner = "=?UTF-8?B?eA0KQmNjOiBldmlsQGV4YW1wbGUuY29tDQoNCmJvZHk=?=";
    for subject in [
        format!("Re: {inner}"),
        format!("Held for moderation: {inner} {}", "long ".repeat(20)),
        format!("\u{fc}ber {inner}"),
    ] {
        let raw = build(&notice(&subject, "b", "")).expect("built");
        let h = head(&raw);
        assert!(!h.contains(inner), "{h}");
        for line in h.split("\r\n") {
            assert!(line.len() <= 78, "{line:?}");
        }
        let m = MessageParser::default().parse(&raw).expect("parses");
        assert_eq!(m.subject(), Some(subject.trim_end()), "{h}");
    }
}

#[test]
fn bad_addresses_and_tokens_are_refused() {
    for bad in [
        "",
        "alice@example.net\r\nBcc: evil@example.com",
        "Alice <alice@example.net>",
        "<alice@example.net>",
        "alice@example.net, bob@example.net",
        "alice @example.net",
        " alice@example.net",
        "alice",
        "alice@example.net\n",
    ] {
        let n = Notice {
            to: bad,
            ..notice("s", "b", "")
        };
        assert!(
            matches!(build(&n), Err(NoticeError::BadAddress { field: "to", .. })),
            "{bad:?}"
        );
        let n = Notice {
            from: bad,
            ..notice("s", "b", "")
        };
        assert!(build(&n).is_err(), "{bad:?}");
        let n = Notice {
            reply_to: Some(bad),
            ..notice("s", "b", "")
        };
        assert!(build(&n).is_err(), "{bad:?}");
    }
    let n = Notice {
        list_id: "dev.example.org>\r\nX: y",
        ..notice("s", "b", "")
    };
    assert!(matches!(
        build(&n),
        Err(NoticeError::BadToken {
            field: "list_id",
            ..
        })
    ));
    let n = Notice {
        domain: "",
        ..notice("s", "b", "")
    };
    assert!(build(&n).is_err());
    let n = Notice {
        auto_submitted: "auto-replied\r\nX: y",
        ..notice("s", "b", "")
    };
    assert!(build(&n).is_err());
    let e = build(&Notice {
        to: "a\r\nb",
        ..notice("s", "b", "")
    })
    .expect_err("refused");
    assert!(!e.to_string().contains('\n'), "{e}");
}
#[test]
fn every_default_builds_as_7bit_and_round_trips() {
    let mut v = Vars::new();
    for (k, val) in [
        ("list_address", "dev@example.org"),
        ("list_name", "dev"),
        ("request_address", "dev-request@example.org"),
        ("owner_address", "dev-owner@example.org"),
        ("address", "alice@example.net"),
        ("token", "AbCdEfGhIjKlMnOpQrSt"),
        (
            "confirm_address",
            "dev-confirm+AbCdEfGhIjKlMnOpQrSt@example.org",
        ),
        ("expires", "in 3 days"),
        ("setting", "on"),
        ("results", "> join\n  Done."),
        ("subject", "join"),
        ("reason", "(none given)"),
    ] {
        v.insert(k, val.to_string());
    }
    for &kind in Kind::all() {
        let r = Templates::defaults().rendered(kind, &v).expect("on");
        let raw = build(&notice(&r.subject, &r.body, "Developers")).expect("built");
        assert!(
            head(&raw).contains("Content-Transfer-Encoding: 7bit"),
            "{kind:?}"
        );
        let m = MessageParser::default().parse(&raw).expect("parses");
        assert_eq!(m.subject(), Some(r.subject.as_str()), "{kind:?}");
        let text = m.body_text(0).map(|b| b.replace("\r\n", "\n"));
        assert_eq!(text.as_deref(), Some(r.body.as_str()), "{kind:?}");
    }
}
