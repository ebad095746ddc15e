//! Membership by email, end to end through the LMTP session with an in-process sink as the
//! MTA: commands, double opt-in, owner approval, loops, caps.

mod common;

use common::{header, token_of, World};
use listkeeper::store::{Pending, PendingKind};

const MOD_LIST: &str = "address = \"mod@example.org\"\ndisplay_name = \"Moderated\"\nowners = [\"boss@owners.test\"]\n[subscription]\npolicy = \"moderate\"\n";
const CLOSED_LIST: &str = "address = \"closed@example.org\"\nowners = [\"boss@owners.test\"]\n[subscription]\npolicy = \"closed\"\n";

#[tokio::test]
async fn join_confirm_by_reply_and_welcome() {
    let w = World::new("", &[("mod", MOD_LIST), ("closed", CLOSED_LIST)]).await;
    let out = w
        .mail(
            "new@people.test",
            "dev-join@example.org",
            "From: New <new@people.test>\r\nSubject: hi\r\nMessage-ID: <j1@people.test>",
            "",
        )
        .await;
    assert!(out.starts_with("250 "), "{out}");
    let confirm = w.last_to("new@people.test");
    let token = token_of(&confirm);
    assert!(token.len() >= 32, "at least 128 bits: {token}");
    assert!(
        header(&confirm, "Subject").is_some_and(|s| s.contains(&format!("confirm {token}"))),
        "{confirm}"
    );
    assert!(header(&confirm, "Auto-Submitted").is_some(), "{confirm}");
    assert!(
        header(&confirm, "From").is_some_and(|s| s.contains("dev-request@example.org")),
        "{confirm}"
    );
    assert!(!w.is_member("dev@example.org", "new@people.test"));

    // The subscriber replies to the confirmation: it goes to the Reply-To address.
    let out = w
        .mail(
            "new@people.test",
            &format!("dev-confirm+{token}@example.org"),
            "From: new@people.test\r\nSubject: Re: confirm",
            "> quoted",
        )
        .await;
    assert!(out.starts_with("250 "), "{out}");
    assert!(w.is_member("dev@example.org", "new@people.test"));
    let welcome = w.last_to("new@people.test");
    assert_ne!(welcome, confirm);
    assert!(welcome.contains("dev@example.org"), "{welcome}");

    // The same token again: single use, answered with a sentence, no second welcome.
    let before = w.mails_to("new@people.test").len();
    w.mail(
        "new@people.test",
        &format!("dev-confirm+{token}@example.org"),
        "From: new@people.test\r\nSubject: Re: confirm",
        "",
    )
    .await;
    let again = w.last_to("new@people.test");
    assert_eq!(w.mails_to("new@people.test").len(), before + 1);
    assert!(again.contains("already confirmed"), "{again}");
}

#[tokio::test]
async fn confirm_command_in_a_body_to_request() {
    let w = World::new("", &[("mod", MOD_LIST), ("closed", CLOSED_LIST)]).await;
    w.mail(
        "x@people.test",
        "dev-request@example.org",
        "From: x@people.test\r\nSubject: subscribe",
        "",
    )
    .await;
    let token = token_of(&w.mails_to("x@people.test")[0]);
    // Two mails: the command results and the confirmation request.
    assert_eq!(w.mails_to("x@people.test").len(), 2);
    let out = w
        .mail(
            "x@people.test",
            "dev-request@example.org",
            "From: x@people.test\r\nSubject: hello",
            &format!("confirm {token}\r\n-- \r\nX"),
        )
        .await;
    assert!(out.starts_with("250 "), "{out}");
    assert!(w.is_member("dev@example.org", "x@people.test"));
}

#[tokio::test]
async fn leave_needs_confirmation_too() {
    let w = World::new("", &[("mod", MOD_LIST), ("closed", CLOSED_LIST)]).await;
    let out = w
        .mail(
            "a@members.test",
            "dev-leave@example.org",
            "From: a@members.test\r\nSubject: bye",
            "",
        )
        .await;
    assert!(out.starts_with("250 "), "{out}");
    assert!(
        w.is_member("dev@example.org", "a@members.test"),
        "nothing changes before the confirmation"
    );
    let token = token_of(&w.last_to("a@members.test"));
    w.mail(
        "a@members.test",
        &format!("dev-confirm+{token}@example.org"),
        "From: a@members.test\r\nSubject: Re: x",
        "",
    )
    .await;
    assert!(!w.is_member("dev@example.org", "a@members.test"));
    assert!(
        w.last_to("a@members.test")
            .to_lowercase()
            .contains("unsubscribed")
            || w.last_to("a@members.test").contains("no longer"),
        "{}",
        w.last_to("a@members.test")
    );
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let w = World::new("", &[("mod", MOD_LIST), ("closed", CLOSED_LIST)]).await;
    let p = Pending {
        token: "0123456789abcdef0123456789abcdef01234567".into(),
        kind: PendingKind::Join,
        list: "dev@example.org".into(),
        address: "late@people.test".into(),
        created: 1,
        expires: 2,
        used: false,
    };
    w.ctx.store.pending_create(&p).expect("create");
    w.mail(
        "late@people.test",
        "dev-request@example.org",
        "From: late@people.test\r\nSubject: x",
        &format!("confirm {}", p.token),
    )
    .await;
    let reply = w.last_to("late@people.test");
    assert!(
        reply.contains("expired") || reply.contains("unknown"),
        "{reply}"
    );
    assert!(!w.is_member("dev@example.org", "late@people.test"));
}

#[tokio::test]
async fn a_forged_join_never_subscribes_the_victim_and_is_capped() {
    let w = World::new("[requests]\nper_address_per_hour = 2\n", &[]).await;
    for _ in 0..5 {
        let out = w
            .mail(
                "attacker@evil.test",
                "dev-join@example.org",
                "From: victim@people.test\r\nSubject: join",
                "",
            )
            .await;
        assert!(out.starts_with("250 "), "{out}");
    }
    assert!(!w.is_member("dev@example.org", "victim@people.test"));
    // The victim got at most the cap, and the same token each time (no storm of new ones).
    let mails = w.mails_to("victim@people.test");
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert_eq!(token_of(&mails[0]), token_of(&mails[1]));
    assert!(w.mails_to("attacker@evil.test").is_empty());
}

#[tokio::test]
async fn owner_approval_on_a_moderated_list() {
    let w = World::new("", &[("mod", MOD_LIST), ("closed", CLOSED_LIST)]).await;
    w.mail(
        "p@people.test",
        "mod-join@example.org",
        "From: p@people.test\r\nSubject: join",
        "",
    )
    .await;
    let token = token_of(&w.last_to("p@people.test"));
    w.mail(
        "p@people.test",
        &format!("mod-confirm+{token}@example.org"),
        "From: p@people.test\r\nSubject: Re: x",
        "",
    )
    .await;
    assert!(
        !w.is_member("mod@example.org", "p@people.test"),
        "waits for the owner"
    );
    let notice = w.last_to("boss@owners.test");
    let approval = token_of(&notice);
    assert_ne!(approval, token);

    // A stranger cannot approve.
    w.mail(
        "p@people.test",
        "mod-request@example.org",
        "From: p@people.test\r\nSubject: x",
        &format!("approve {approval}"),
    )
    .await;
    assert!(!w.is_member("mod@example.org", "p@people.test"));
    assert!(
        w.last_to("p@people.test").contains("Only the owners"),
        "{}",
        w.last_to("p@people.test")
    );

    // The owner replies to the notice.
    w.mail(
        "boss@owners.test",
        &format!("mod-confirm+{approval}@example.org"),
        "From: boss@owners.test\r\nSubject: Re: approve",
        "",
    )
    .await;
    assert!(w.is_member("mod@example.org", "p@people.test"));
    assert!(
        w.last_to("boss@owners.test").contains("Approved"),
        "{}",
        w.last_to("boss@owners.test")
    );
}

#[tokio::test]
async fn owner_rejection_tells_the_subscriber() {
    let w = World::new("", &[("mod", MOD_LIST), ("closed", CLOSED_LIST)]).await;
    w.mail(
        "q@people.test",
        "mod-join@example.org",
        "From: q@people.test\r\nSubject: join",
        "",
    )
    .await;
    let token = token_of(&w.last_to("q@people.test"));
    w.mail(
        "q@people.test",
        "mod-request@example.org",
        "From: q@people.test\r\nSubject: x",
        &format!("confirm {token}"),
    )
    .await;
    let approval = token_of(&w.last_to("boss@owners.test"));
    w.mail(
        "boss@owners.test",
        "mod-request@example.org",
        "From: boss@owners.test\r\nSubject: x",
        &format!("reject {approval} not a fit"),
    )
    .await;
    assert!(!w.is_member("mod@example.org", "q@people.test"));
    assert!(
        w.last_to("q@people.test").contains("not a fit"),
        "{}",
        w.last_to("q@people.test")
    );
}

#[tokio::test]
async fn closed_lists_point_at_the_owner() {
    let w = World::new("", &[("mod", MOD_LIST), ("closed", CLOSED_LIST)]).await;
    w.mail(
        "c@people.test",
        "closed-request@example.org",
        "From: c@people.test\r\nSubject: join",
        "",
    )
    .await;
    let reply = w.last_to("c@people.test");
    assert!(reply.contains("closed-owner@example.org"), "{reply}");
    assert_eq!(w.mails_to("c@people.test").len(), 1);
}

#[tokio::test]
async fn automatic_mail_and_loops_are_never_answered() {
    let w = World::new("", &[("mod", MOD_LIST), ("closed", CLOSED_LIST)]).await;
    for headers in [
        "From: v@people.test\r\nAuto-Submitted: auto-replied\r\nSubject: Out of office",
        "From: v@people.test\r\nPrecedence: bulk\r\nSubject: join",
        "From: v@people.test\r\nList-Id: <other.example.net>\r\nSubject: join",
    ] {
        let out = w
            .mail("v@people.test", "dev-request@example.org", headers, "join")
            .await;
        assert!(out.starts_with("250 "), "{out}");
    }
    let out = w
        .mail(
            "",
            "dev-request@example.org",
            "From: v@people.test\r\nSubject: join",
            "join",
        )
        .await;
    assert!(out.starts_with("250 "), "{out}");
    assert!(w.sink.transactions().is_empty(), "{:?}", w.sink.copies());
}

#[tokio::test]
async fn requests_from_long_or_quoted_envelope_senders_answer_only_a_strict_address() {
    let w = World::new("", &[("mod", MOD_LIST), ("closed", CLOSED_LIST)]).await;
    // A forwarded join (SRS, 100-octet local part): the confirmation goes to the From address.
    let srs = "SRS0=k9tZ=QL=people.test=firstname.middlename.lastname+with-a-long-tag-for-lists-2024@forwarder.example.net";
    let out = w
        .mail(
            srs,
            "dev-join@example.org",
            "From: Firstname <first@people.test>\r\nSubject: join",
            "",
        )
        .await;
    assert!(out.starts_with("250 2.0.0 request handled"), "{out}");
    assert!(token_of(&w.last_to("first@people.test")).len() == 40);
    // The same with no From: the envelope sender is no strict address, so nothing is sent.
    let out = w
        .mail(srs, "dev-join@example.org", "Subject: join", "")
        .await;
    assert!(
        out.starts_with("250 2.0.0 no usable sender address"),
        "{out}"
    );
    let out = w
        .mail(
            "\"john smith\"@people.test",
            "dev-join@example.org",
            "From: <\"john smith\"@people.test>\r\nSubject: join",
            "",
        )
        .await;
    assert!(
        out.starts_with("250 2.0.0 no usable sender address"),
        "{out}"
    );
    let rcpts: Vec<String> = w
        .sink
        .transactions()
        .into_iter()
        .flat_map(|t| t.rcpts)
        .collect();
    assert_eq!(rcpts, ["first@people.test"]);
}

#[tokio::test]
async fn fifty_commands_get_one_reply_with_a_limit() {
    let w = World::new("", &[("mod", MOD_LIST), ("closed", CLOSED_LIST)]).await;
    let body: String = (0..50).map(|_| "info\r\n").collect();
    w.mail(
        "m@people.test",
        "dev-request@example.org",
        "From: m@people.test\r\nSubject: lots",
        &body,
    )
    .await;
    let mails = w.mails_to("m@people.test");
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].contains("30 more command(s) were ignored"),
        "{}",
        mails[0]
    );
}

#[tokio::test]
async fn unknown_and_non_ascii_commands_get_a_clear_sentence() {
    let w = World::new("", &[("mod", MOD_LIST), ("closed", CLOSED_LIST)]).await;
    let headers = "From: u@people.test\r\nSubject: =?UTF-8?B?w7xiZXI=?=\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit";
    w.mail(
        "u@people.test",
        "dev-request@example.org",
        headers,
        "subscrbe\r\nabonnieren bitte \u{1F600}\r\nconfirm\r\nset nomail maybe\r\nhelp",
    )
    .await;
    let reply = w.last_to("u@people.test");
    assert!(reply.contains("subscrbe"), "{reply}");
    assert!(reply.contains("help"), "{reply}");
    assert!(header(&reply, "Auto-Submitted").is_some(), "{reply}");
    assert_eq!(w.mails_to("u@people.test").len(), 1);
}

#[tokio::test]
async fn set_nomail_stops_delivery_after_confirmation() {
    let w = World::new("", &[("mod", MOD_LIST), ("closed", CLOSED_LIST)]).await;
    w.mail(
        "b@members.test",
        "dev-request@example.org",
        "From: b@members.test\r\nSubject: x",
        "set nomail on",
    )
    .await;
    let token = token_of(&w.mails_to("b@members.test")[0]);
    w.mail(
        "b@members.test",
        &format!("dev-confirm+{token}@example.org"),
        "From: b@members.test\r\nSubject: Re: x",
        "",
    )
    .await;
    let before = w.mails_to("b@members.test").len();
    let out = w
        .mail(
            "p@outside.test",
            "dev@example.org",
            "From: p@outside.test\r\nSubject: post\r\nMessage-ID: <nm@x>",
            "hi",
        )
        .await;
    assert!(out.contains("distributed to 2 member(s)"), "{out}");
    assert_eq!(w.mails_to("b@members.test").len(), before);
}

/// `help` names the moderators' commands: in full for a moderator or owner, as a pointer for
/// everyone else.
#[tokio::test]
async fn help_tells_moderators_their_commands() {
    let w = World::new("", &[]).await;
    for (who, full) in [("boss@owners.test", true), ("someone@people.test", false)] {
        w.mail(
            who,
            "dev-request@example.org",
            &format!("From: {who}\r\nSubject: help"),
            "",
        )
        .await;
        let reply = w.last_to(who).replace("=\r\n", "");
        assert_eq!(reply.contains("approve TOKEN"), full, "{who}: {reply}");
        assert_eq!(reply.contains("discard TOKEN"), full, "{who}: {reply}");
        assert!(reply.contains("oderators and owners"), "{who}: {reply}");
    }
}
