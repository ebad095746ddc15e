//! Unit tests: VERP, the code finders, the DSN reader's tolerance and the order of decisions.
//! The MTA formats themselves are covered by the golden fixtures in `tests/bounces.rs`.

use super::text::{find_reply_code, find_status, one_line};
use super::*;

fn failed(
    address: &str,
    failure: Failure,
    status: Option<&str>,
) -> (String, Failure, Option<String>) {
    (address.to_string(), failure, status.map(str::to_string))
}

/// (address, failure, status) of each failed recipient, or panics.
fn summary(report: &Report) -> Vec<(String, Failure, Option<String>)> {
    match report {
        Report::Failed(list) => list
            .iter()
            .map(|b| (b.address.clone(), b.failure, b.status.clone()))
            .collect(),
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[test]
fn verp_round_trips() {
    for address in [
        "bob@example.org",
        "bob+tag@example.org",
        "a=b@example.org",
        "first.last@sub.example.co.uk",
        "x@b\u{fc}cher.example",
    ] {
        let encoded = encode_verp(address);
        assert!(!encoded.contains('@'), "{encoded}");
        assert_eq!(decode_verp(&encoded).as_deref(), Some(address), "{encoded}");
    }
    assert_eq!(encode_verp("bob@example.org"), "bob=example.org");
    // Decoding gives the lowercase key the store uses.
    assert_eq!(
        decode_verp("Bob=Example.ORG").as_deref(),
        Some("bob@example.org")
    );
    // The LAST '=' is the '@'.
    assert_eq!(decode_verp("a=b=c").as_deref(), Some("a=b@c"));
    assert_eq!(encode_verp("no-at-sign"), "no-at-sign");
    assert_eq!(decode_verp(&encode_verp("no-at-sign")), None);
}

#[test]
fn verp_refuses_hostile_extensions() {
    let long_local = format!("{}=example.org", "a".repeat(65));
    let long_domain = format!("a={}.org", "b.".repeat(130));
    let equals = "=".repeat(1000);
    for bad in [
        "",
        "=",
        "==",
        "x=",
        "=example.org",
        "bob",
        "bob=example.org\r\nBcc: x@y.z",
        "bob\0=example.org",
        "bob=exa\u{7f}mple.org",
        "bob\u{85}=example.org",
        " bob=example.org",
        "<bob=example.org>",
        "bob@x=example.org",
        "bob=example..org",
        "bob=-example.org",
        "b ob=example.org",
        "bob=example.org,carol=example.org",
        "\"q\"=example.org",
        equals.as_str(),
        long_local.as_str(),
        long_domain.as_str(),
    ] {
        assert_eq!(decode_verp(bad), None, "decoded {bad:?}");
    }
}

#[test]
fn status_codes_are_found_but_not_in_numbers() {
    assert_eq!(find_status("550 5.1.1 <a@b>").as_deref(), Some("5.1.1"));
    assert_eq!(find_status("(#5.1.2)").as_deref(), Some("5.1.2"));
    assert_eq!(find_status("550-5.1.1 The").as_deref(), Some("5.1.1"));
    assert_eq!(find_status("Status: 4.2.2.").as_deref(), Some("4.2.2"));
    assert_eq!(
        find_status("550 5.1.351 Remote").as_deref(),
        Some("5.1.351")
    );
    for none in [
        "host [192.0.2.5]: refused",
        "10.5.1.1",
        "5.1.1.1",
        "Exim 4.96",
        "sendmail (8.14.4/8.14.4)",
        "x5.1.1",
        "5.1.1x",
        "5.1234.1",
        "3.1.1",
        "",
    ] {
        assert_eq!(find_status(none), None, "{none:?}");
    }
    assert_eq!(find_reply_code("said: 550 5.1.1"), Some(550));
    assert_eq!(find_reply_code("#550 5.1.1 RESOLVER"), Some(550));
    assert_eq!(find_reply_code("returned '452 4.2.2 full'"), Some(452));
    assert_eq!(find_reply_code("554: delivery error"), Some(554));
    assert_eq!(find_reply_code("550-5.1.1"), Some(550));
    for none in [
        "quota of 500 MB exceeded",
        "[192.0.2.45]",
        "port 4500",
        "x550 y",
        "560 x",
        "250 ok",
    ] {
        assert_eq!(find_reply_code(none), None, "{none:?}");
    }
}

#[test]
fn diagnostics_are_one_clean_line() {
    assert_eq!(
        one_line("  a\r\n\tb  c \u{0}\u{1b}d\u{202e}e  "),
        Some("a b c de".into())
    );
    assert_eq!(one_line(" \n\t "), None);
    let long = one_line(&"\u{e9}".repeat(500)).unwrap_or_default();
    assert_eq!(long.chars().count(), MAX_DIAGNOSTIC);
    let words = one_line(&"ab ".repeat(500)).unwrap_or_default();
    assert!(words.chars().count() <= MAX_DIAGNOSTIC && !words.ends_with(' '));
}

fn report_message(dsn: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.org\nSubject: Undelivered Mail Returned to Sender\n\
         MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n\
         --B\nContent-Type: text/plain\n\nSomething went wrong.\n\n\
         --B\nContent-Type: message/delivery-status\n\n{dsn}\n--B--\n"
    )
}

#[test]
fn dsn_fields_are_read_tolerantly() {
    // Case-insensitive names, continuation lines, comments after the status, no blank line
    // between recipients, an Original-Recipient that differs from the final one.
    let dsn = "reporting-mta: dns; mx.example.org\n\n\
               FINAL-RECIPIENT: RFC822; <Alias@Example.org>\n\
               ACTION: Failed\nSTATUS: 5.1.1 (bad destination mailbox address)\n\
               DIAGNOSTIC-CODE: smtp; 550 5.1.1 no such\n  user here\n\
               Original-Recipient: rfc822;member@example.org\n\
               Final-Recipient: rfc822; forwarded@example.net\n\
               Action: failed\nStatus: 4.2.2\n";
    let report = parse(report_message(dsn).as_bytes());
    assert_eq!(
        summary(&report),
        vec![
            failed("alias@example.org", Failure::Hard, Some("5.1.1")),
            failed("member@example.org", Failure::Soft, Some("4.2.2")),
        ]
    );
    let Report::Failed(list) = report else {
        unreachable!()
    };
    assert_eq!(
        list[0].diagnostic.as_deref(),
        Some("550 5.1.1 no such user here")
    );
    assert_eq!(list[1].diagnostic, None);
}

#[test]
fn dsn_actions_and_statuses_decide() {
    let one = |fields: &str| {
        parse(
            report_message(&format!("Final-Recipient: rfc822; a@example.org\n{fields}")).as_bytes(),
        )
    };
    assert_eq!(one("Action: delayed\nStatus: 4.4.1\n"), Report::Delayed);
    assert_eq!(one("Action: delivered\nStatus: 2.0.0\n"), Report::Delayed);
    assert_eq!(one("Action: expanded\nStatus: 2.0.0\n"), Report::Delayed);
    // No Action: only a permanent status is a failure.
    assert_eq!(
        summary(&one("Status: 5.2.1\n")),
        vec![failed("a@example.org", Failure::Hard, Some("5.2.1"))]
    );
    assert_eq!(one("Status: 4.2.1\n"), Report::Delayed);
    // A full mailbox scores soft even with a permanent status.
    assert_eq!(
        summary(&one("Action: failed\nStatus: 5.2.2\n")),
        vec![failed("a@example.org", Failure::Soft, Some("5.2.2"))]
    );
    // Failed without a status: the diagnostic's codes, then its words, then hard.
    let soft = one("Action: failed\nDiagnostic-Code: smtp; 452 mailbox full\n");
    assert_eq!(
        summary(&soft),
        vec![failed("a@example.org", Failure::Soft, None)]
    );
    let words = one("Action: failed\nDiagnostic-Code: x-local; quota exceeded\n");
    assert_eq!(
        summary(&words),
        vec![failed("a@example.org", Failure::Soft, None)]
    );
    let bare = one("Action: failed\n");
    assert_eq!(
        summary(&bare),
        vec![failed("a@example.org", Failure::Hard, None)]
    );
    // A status inside the diagnostic is used when the Status field is garbage.
    let from_diag = one("Action: failed\nStatus: unknown\nDiagnostic-Code: smtp; 550 5.7.1 no\n");
    assert_eq!(
        summary(&from_diag),
        vec![failed("a@example.org", Failure::Hard, Some("5.7.1"))]
    );
}

#[test]
fn unattributed_failures_reach_the_owners() {
    // A failure whose address cannot be read is not hidden behind a delay of another one.
    let dsn =
        "Final-Recipient: x400; c=us;a= ;p=corp;o=hq;s=smith\nAction: failed\nStatus: 5.1.1\n\n\
               Final-Recipient: rfc822; b@example.org\nAction: delayed\nStatus: 4.4.1\n";
    assert_eq!(
        parse(report_message(dsn).as_bytes()),
        Report::Unattributed(Failure::Hard)
    );
    let invalid = "Final-Recipient: rfc822; not an address\nAction: failed\nStatus: 4.2.2\n";
    assert_eq!(
        parse(report_message(invalid).as_bytes()),
        Report::Unattributed(Failure::Soft)
    );
}

#[test]
fn utf8_addresses_are_unescaped() {
    let dsn = "Original-Recipient: utf-8; J\\x{D6}RG@b\\x{fc}cher.example\nAction: failed\nStatus: 5.1.1\n";
    let report = parse(report_message(dsn).as_bytes());
    assert_eq!(
        summary(&report),
        vec![failed(
            "j\u{f6}rg@b\u{fc}cher.example",
            Failure::Hard,
            Some("5.1.1")
        )]
    );
    for bad in [
        "\\x{}",
        "\\x{110000}",
        "\\x{D800}",
        "\\x{1234567}",
        "\\x{zz}",
        "\\x{41",
    ] {
        let dsn = format!("Final-Recipient: utf-8; a{bad}b@example.org\nAction: failed\n");
        assert_eq!(
            parse(report_message(&dsn).as_bytes()),
            Report::Unattributed(Failure::Hard),
            "{bad}"
        );
    }
}

const POSTFIX_HEAD: &str = "From: MAILER-DAEMON@lists.example.org (Mail Delivery System)\n\
    Subject: Undelivered Mail Returned to Sender\nAuto-Submitted: auto-replied\n\n\
    This is the mail system at host lists.example.org.\n\n\
    I'm sorry to have to inform you that your message could not\n\
    be delivered to one or more recipients. It's attached below.\n\n";

#[test]
fn postfix_prose_prefers_the_address_it_was_expanded_from() {
    let raw = format!(
        "{POSTFIX_HEAD}<bob@example.net> (expanded from <bob@example.org>): host\n    \
         mx.example.net[192.0.2.1] said: 550 5.1.1 User unknown (in reply to RCPT TO\n    command)\n"
    );
    let report = parse(raw.as_bytes());
    assert_eq!(
        summary(&report),
        vec![failed("bob@example.org", Failure::Hard, Some("5.1.1"))]
    );
}

#[test]
fn a_bounce_marked_auto_replied_is_never_an_auto_reply() {
    // Postfix marks its bounces "Auto-Submitted: auto-replied": one we cannot read must reach
    // the owners, not be ignored as a vacation message.
    let raw = format!("{POSTFIX_HEAD}<not-an-address>: host said: 550 go away\n");
    assert_eq!(parse(raw.as_bytes()), Report::Unattributed(Failure::Hard));
    // The same header on a person's out-of-office message is an auto-reply.
    let vacation = "From: bob@example.org\nSubject: Re: [dev] hello\nAuto-Submitted: auto-replied\n\nI am away.\n";
    assert_eq!(parse(vacation.as_bytes()), Report::AutoReply);
    for header in [
        "X-Autoreply: yes",
        "X-Autorespond: on",
        "Precedence: auto_reply",
    ] {
        let raw = format!("From: bob@example.org\nSubject: hello\n{header}\n\nI am away.\n");
        assert_eq!(parse(raw.as_bytes()), Report::AutoReply, "{header}");
    }
    let subject = "From: bob@example.org\nSubject: Abwesenheitsnotiz: [dev] hello\n\nBin weg.\n";
    assert_eq!(parse(subject.as_bytes()), Report::AutoReply);
    // Precedence: bulk alone (lists send it too) says nothing.
    let bulk = "From: bob@example.org\nSubject: hello\nPrecedence: bulk\n\nHi.\n";
    assert_eq!(parse(bulk.as_bytes()), Report::Unrecognized);
}

#[test]
fn delays_and_successes_without_dsn_are_ignored() {
    for (subject, body) in [
        ("Delivery Status Notification (Delay)", "Delivery to the following recipient has been delayed:\n\n     bob@example.org\n"),
        ("Warning: could not send message for past 4 hours", "    **********************************************\n    **      THIS IS A WARNING MESSAGE ONLY      **\n    **  YOU DO NOT NEED TO RESEND YOUR MESSAGE  **\n    **********************************************\n"),
        ("Warning: message still undelivered after 4 hours", "Your message is still queued.\n"),
        ("Delivered: [dev] hello", "Your message has been delivered to the following recipients:\n\nbob@example.org\n"),
    ] {
        let raw = format!("From: MAILER-DAEMON@mx.example.org\nSubject: {subject}\n\n{body}");
        assert_eq!(parse(raw.as_bytes()), Report::Delayed, "{subject}");
    }
}

#[test]
fn exim_and_gmail_name_failures_in_a_header() {
    // Prose that no format reads, from an MTA that lists the failures in X-Failed-Recipients.
    let raw = "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n\
               X-Failed-Recipients: Bob@Example.org, not-an-address, carol@example.org\n\
               Subject: Delivery Status Notification (Failure)\n\n\
               ** Message not delivered **\n\nThe response was:\n550 5.7.26 Unauthenticated email is not accepted\n";
    assert_eq!(
        summary(&parse(raw.as_bytes())),
        vec![
            failed("bob@example.org", Failure::Hard, Some("5.7.26")),
            failed("carol@example.org", Failure::Hard, Some("5.7.26")),
        ]
    );
}

#[test]
fn html_only_notices_are_read_as_text() {
    let raw = "From: postmaster@corp.example\nSubject: Undeliverable: hello\nMIME-Version: 1.0\n\
               Content-Type: text/html; charset=us-ascii\n\n\
               <html><body><p><b>Delivery has failed to these recipients or groups:</b></p>\n\
               <p><a href=\"mailto:bob@corp.example\">bob@corp.example</a><br></p>\n\
               <p><b>Diagnostic information for administrators:</b></p>\n\
               <p>Generating server: EXCH01.corp.example</p>\n\
               <p>bob@corp.example<br>\nRemote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'<br>\n</p>\n\
               </body></html>\n";
    assert_eq!(
        summary(&parse(raw.as_bytes())),
        vec![failed("bob@corp.example", Failure::Hard, Some("5.1.1"))]
    );
}

#[test]
fn empty_and_odd_inputs() {
    for raw in [
        &b""[..],
        b"\n",
        b"\r\n\r\n",
        b"\xff\xfe\x00",
        b"Subject: x",
        b"From: a@b\n\n",
    ] {
        assert_eq!(parse(raw), Report::Unrecognized, "{raw:?}");
    }
}

const DAEMON_HEAD: &str = "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\n\
    To: dev-bounces@lists.example.org\nSubject: Undeliverable mail\n\n";

#[test]
fn the_fallback_never_blames_an_address_it_cannot_be_sure_of() {
    // A scrubbed address: dropping the trailing dot would name another address.
    let raw = format!("{DAEMON_HEAD}Unknown user: xxxxx@xxxxxx.\n");
    assert_eq!(parse(raw.as_bytes()), Report::Unattributed(Failure::Hard));
    // A dot that ends a sentence after a full domain goes.
    let raw = format!("{DAEMON_HEAD}Unknown user: ann@example.org.\n");
    assert_eq!(
        summary(&parse(raw.as_bytes())),
        vec![failed("ann@example.org", Failure::Hard, None)]
    );
    // Postmasters, the bounce's own sender and recipients, addresses inside sentences and
    // addresses in the returned copy are never taken.
    let raw = format!(
        "{DAEMON_HEAD}Your message could not be delivered.\n\n\
         postmaster@mx.example.net\n\
         mailer-daemon@mx.example.net\n\
         dev-bounces@lists.example.org\n\
         Please ask carol@example.org about it.\n\n\
         --- Below this line is a copy of the message.\n\n\
         dave@example.org\n"
    );
    assert_eq!(parse(raw.as_bytes()), Report::Unattributed(Failure::Soft));
    // The same text from a person is no bounce at all.
    let person = "From: carol@example.org\nSubject: mail problem\n\n\
         Your message could not be delivered.\n\n  dave@example.org\n";
    assert_eq!(parse(person.as_bytes()), Report::Unrecognized);
}

#[test]
fn a_bounce_with_a_site_specific_introduction_is_read() {
    // qmail with its text replaced: only the returned-copy line marks it, below the cut.
    let raw = "From: MAILER-DAEMON@mx.example.it\nSubject: avviso\n\n\
         Il messaggio non e' stato consegnato.\n\n<eva@example.it>:\n\
         Remote host said: 550 5.1.1 unknown\n\n\
         --- Below this line is a copy of the message.\n\nFrom: x@example.net\n";
    assert_eq!(
        summary(&parse(raw.as_bytes())),
        vec![failed("eva@example.it", Failure::Hard, Some("5.1.1"))]
    );
}
