//! No header injection through names, subjects and template placeholders: every generated
//! mail is checked at the sink, byte for byte.

use crate::common::{self, converse, header, token_of, World};
use crate::world;

/// Fields a generated mail may have.
const NOTICE_FIELDS: &[&str] = &[
    "from",
    "to",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "auto-submitted",
    "list-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
];

/// A generated mail to `to`: only the fields above, each once, every line CRLF-terminated
/// and free of control characters, one To that is `to`.
fn assert_clean_notice(mail: &str, to: &str) {
    let (head, _) = mail
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header/body separator:\n{mail}"));
    let mut seen: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        assert!(
            !line.chars().any(|c| c.is_control() && c != '\t'),
            "control character in header line {line:?}:\n{mail}"
        );
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let (name, _) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("not a header line {line:?}:\n{mail}"));
        let name = name.to_ascii_lowercase();
        assert!(
            NOTICE_FIELDS.contains(&name.as_str()),
            "unexpected field {name:?}:\n{mail}"
        );
        assert!(!seen.contains(&name), "{name} twice:\n{mail}");
        seen.push(name);
    }
    let to_line = header(mail, "To").expect("To");
    assert_eq!(to_line.trim_end(), format!("To: <{to}>"), "{mail}");
    let parsed = mail_parser::MessageParser::default()
        .parse(mail.as_bytes())
        .expect("parses");
    let subject = parsed.subject().unwrap_or_default();
    assert!(!subject.chars().any(char::is_control), "{subject:?}");
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn hostile_subjects_and_ids_cannot_add_headers_to_generated_mails() {
    let w = world().await;
    let evil = "help\r\nBcc: victim@evil.test\r\nX-Injected: yes\r\n\r\nbody";
    let subjects = [
        format!("=?UTF-8?B?{}?=", b64(evil)),
        "=?UTF-8?Q?help=0D=0ABcc:_victim@evil.test?=".to_string(),
        "help\rBcc: victim@evil.test".to_string(),
        format!(
            "=?UTF-8?B?{}?=",
            b64("h\u{85}Bcc: x@evil.test\u{2028}X-Injected: 1\u{0}")
        ),
        // Encoded twice: decoded once, it is an encoded word that decodes to CR LF.
        format!("=?UTF-8?B?{}?=", b64(&format!("=?UTF-8?B?{}?=", b64(evil)))),
    ];
    for (i, subject) in subjects.iter().enumerate() {
        let from = format!("u{i}@people.test");
        // A command reply ("Re: {subject}"), with a hostile Message-ID to answer.
        w.mail(
            &from,
            "club-request@example.org",
            &format!("From: {from}\r\nSubject: {subject}\r\nMessage-ID: <m{i}@x>\r\n Bcc: victim@evil.test"),
            "help",
        )
        .await;
        assert_clean_notice(&w.last_to(&from), &from);

        // A held post: the moderators' notice and the poster's acknowledgement carry it.
        let out = w
            .mail(
                &from,
                "club@example.org",
                &format!("From: {from}\r\nSubject: {subject}\r\nMessage-ID: <p{i}@x>"),
                "Hello.\r\nBcc: in the body is fine",
            )
            .await;
        assert!(out.contains("held for moderation"), "{out}");
        assert_clean_notice(&w.last_to("mod@owners.test"), "mod@owners.test");
        assert_clean_notice(&w.last_to(&from), &from);
    }
    assert!(w.mails_to("victim@evil.test").is_empty());
    assert!(w.mails_to("x@evil.test").is_empty());

    // Welcome (after the confirmation) and the bounce notices of a disabled member.
    w.mail(
        "new@people.test",
        "club-join@example.org",
        "From: new@people.test\r\nSubject: join",
        "",
    )
    .await;
    let confirm = w.last_to("new@people.test");
    assert_clean_notice(&confirm, "new@people.test");
    w.mail(
        "new@people.test",
        &format!("club-confirm+{}@example.org", token_of(&confirm)),
        &format!(
            "From: new@people.test\r\nSubject: =?UTF-8?B?{}?=",
            b64(evil)
        ),
        "",
    )
    .await;
    assert!(w.is_member("club@example.org", "new@people.test"));
    assert_clean_notice(&w.last_to("new@people.test"), "new@people.test");
    assert!(w.mails_to("victim@evil.test").is_empty());
}

#[tokio::test]
async fn bounce_notices_are_clean() {
    let list = "address = \"b@example.org\"\ndisplay_name = \"B \\\"quoted\\\" \u{fc}ber\"\nowners = [\"boss@owners.test\"]\n[bounces]\nthreshold = 1.0\n";
    let w = World::new("", &[("b", list)]).await;
    w.ctx
        .store
        .add_members("b@example.org", &common::addrs(&["bob+x=y@members.test"]))
        .expect("add");
    let dsn = "From: MAILER-DAEMON@mx.test\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"";
    let body = "--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.test\r\n\r\nFinal-Recipient: rfc822; bob+x=y@members.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b--";
    w.mail("", "b-bounces+bob+x=y=members.test@example.org", dsn, body)
        .await;
    // The threshold sends a probe (bounces.probe is on by default) ...
    let probe = w
        .sink
        .transactions()
        .into_iter()
        .find(|t| t.from.starts_with("b-bounces+probe."))
        .expect("a probe was sent");
    assert_clean_notice(
        &String::from_utf8_lossy(&probe.data),
        "bob+x=y@members.test",
    );
    // ... and its bounce disables: the member and the owners are told.
    let before = w.mails_to("bob+x=y@members.test").len();
    w.mail("", &probe.from, dsn, body).await;
    let to_member = w.mails_to("bob+x=y@members.test");
    assert_eq!(to_member.len(), before + 1, "the disabling notice");
    assert_clean_notice(&to_member[before], "bob+x=y@members.test");
    let owners = w.last_to("boss@owners.test");
    assert_clean_notice(&owners, "boss@owners.test");
    // The display name is a phrase (quoted, or RFC 2047 encoded), never raw text.
    let from = header(&owners, "From").expect("From");
    assert!(from.contains("=?") || from.contains("\\\""), "{from}");
}

#[tokio::test]
async fn template_placeholders_cannot_add_headers() {
    // Subjects that pull in multi-line values: the command results, the held post's headers
    // and excerpt, a moderator's reason.
    let list = "address = \"tpl@example.org\"\nowners = [\"boss@owners.test\"]\nmoderators = [\"mod@owners.test\"]\n[posting]\npolicy = \"moderated\"\n[templates.command_results]\nsubject = \"Results {subject} {results}\"\n[templates.held_notice]\nsubject = \"Held {headers} {excerpt} {sender}\"\n[templates.post_rejected]\nsubject = \"Rejected: {reason} {subject}\"\n";
    let w = World::new("", &[("tpl", list)]).await;
    w.mail(
        "u@people.test",
        "tpl-request@example.org",
        "From: u@people.test\r\nSubject: info",
        "help\r\nBcc: victim@evil.test\r\ninfo\r\nwho",
    )
    .await;
    assert_clean_notice(&w.last_to("u@people.test"), "u@people.test");

    w.mail(
        "p@people.test",
        "tpl@example.org",
        "From: p@people.test\r\nTo: tpl@example.org\r\nCc: victim@evil.test\r\nSubject: =?UTF-8?B?eA0KQmNjOiB2aWN0aW1AZXZpbC50ZXN0?=\r\nMessage-ID: <t@x>",
        "Bcc: victim@evil.test\r\nX-Injected: yes\r\n",
    )
    .await;
    let notice = w.last_to("mod@owners.test");
    assert_clean_notice(&notice, "mod@owners.test");
    let token = token_of(&notice);
    w.mail(
        "mod@owners.test",
        "tpl-request@example.org",
        "From: mod@owners.test\r\nSubject: x",
        &format!("reject {token} off topic\u{b}\u{c}\u{1b}[2J Bcc: victim@evil.test"),
    )
    .await;
    let told = w.last_to("p@people.test");
    assert!(
        header(&told, "Subject").is_some_and(|s| s.contains("Rejected")),
        "{told}"
    );
    assert_clean_notice(&told, "p@people.test");
    assert!(w.mails_to("victim@evil.test").is_empty());
}

#[tokio::test]
async fn names_and_prefixes_with_control_characters_disable_the_list() {
    let bad = [
        ("n1", "address = \"n1@example.org\"\nowners = [\"o@owners.test\"]\ndisplay_name = \"Dev\\r\\nBcc: x@evil.test\"\n"),
        ("n2", "address = \"n2@example.org\"\nowners = [\"o@owners.test\"]\n[decoration]\nsubject_prefix = \"[dev]\\nBcc: x@evil.test\"\n"),
        ("n3", "address = \"n3@example.org\"\nowners = [\"o@owners.test\"]\n[templates.welcome]\nsubject = \"Hi\\r\\nBcc: x@evil.test\"\n"),
    ];
    let w = World::new("", &bad).await;
    for (name, _) in bad {
        let t = converse(
            w.ctx.clone(),
            format!("LHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<{name}@example.org>\r\nQUIT\r\n")
                .as_bytes(),
        )
        .await;
        assert!(t.contains("451 4.3.5"), "{name}: {t}");
    }
}

#[tokio::test]
async fn a_hostile_subject_stays_one_header_in_list_copies() {
    let w = World::new("", &[]).await;
    let subject = format!("=?UTF-8?B?{}?=", b64("x\r\nBcc: victim@evil.test"));
    let out = w
        .mail(
            "p@outside.test",
            "dev@example.org",
            &format!("From: p@outside.test\r\nSubject: {subject}\r\nMessage-ID: <c@x>"),
            "Hello.",
        )
        .await;
    assert!(out.contains("distributed to 3"), "{out}");
    let copy = w.last_to("a@members.test");
    let head = copy.split("\r\n\r\n").next().unwrap_or_default();
    assert!(
        !head
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
        "{copy}"
    );
    let subject_line = header(&copy, "Subject").expect("Subject");
    assert_eq!(subject_line, format!("Subject: [dev] {subject}"));
    assert!(w.mails_to("victim@evil.test").is_empty());
}
