//! Tokens, and nothing done for another address without a reply from its mailbox (or a
//! moderator's).

use crate::common::{self, header, token_of, World};
use crate::{altered, world, CLUB};
use listkeeper::store::HeldState;

#[tokio::test]
async fn tokens_are_160_bit_hex_and_never_repeat() {
    let w = world().await;
    let mut tokens = Vec::new();
    for i in 0..12 {
        let who = format!("n{i}@people.test");
        w.mail(
            &who,
            "club-join@example.org",
            &format!("From: {who}\r\nSubject: join"),
            "",
        )
        .await;
        tokens.push(token_of(&w.last_to(&who)));
    }
    for i in 0..4 {
        let from = format!("s{i}@outside.test");
        let out = w
            .mail(
                &from,
                "club@example.org",
                &format!("From: {from}\r\nSubject: post {i}\r\nMessage-ID: <t{i}@x>"),
                "Hello.",
            )
            .await;
        assert!(out.contains("held for moderation"), "{out}");
        tokens.push(token_of(&w.last_to("mod@owners.test")));
    }
    for t in &tokens {
        assert_eq!(t.len(), 40, "160 bits as hex: {t}");
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{t}"
        );
    }
    let distinct: std::collections::BTreeSet<&String> = tokens.iter().collect();
    assert_eq!(distinct.len(), tokens.len(), "{tokens:?}");
}

// ---------------------------------------------------------------------------------------
// Nothing for another address without a reply from its mailbox (or a moderator's)

/// The club list with `members`. Its hourly cap per address is raised: forged mails count
/// against the address they forge, and would otherwise drop the real owner's reply at the end.
async fn club_with(members: &[&str]) -> World {
    let w = World::new(
        "[requests]\nper_address_per_hour = 100\n",
        &[("club", CLUB)],
    )
    .await;
    w.ctx
        .store
        .add_members("club@example.org", &common::addrs(members))
        .expect("add");
    w
}

#[tokio::test]
async fn a_forged_leave_with_a_guessed_or_altered_token_changes_nothing() {
    let w = club_with(&["one@members.test"]).await;
    // The attacker forges a leave for one@: the confirmation goes to one@, not to them.
    w.mail(
        "attacker@evil.test",
        "club-leave@example.org",
        "From: one@members.test\r\nSubject: leave",
        "",
    )
    .await;
    assert!(w.mails_to("attacker@evil.test").is_empty());
    let real = token_of(&w.last_to("one@members.test"));

    for (rcpt, body) in [
        (
            format!("club-confirm+{}@example.org", altered(&real)),
            String::new(),
        ),
        (
            "club-confirm+0123456789abcdef0123456789abcdef01234567@example.org".into(),
            String::new(),
        ),
        (
            "club-request@example.org".into(),
            format!("confirm {}", altered(&real)),
        ),
        (
            "club-request@example.org".into(),
            format!("confirm {}", &real[..20]),
        ),
    ] {
        let out = w
            .mail(
                "attacker@evil.test",
                &rcpt,
                "From: one@members.test\r\nSubject: Re: confirm",
                &body,
            )
            .await;
        assert!(out.starts_with("250 "), "{out}");
        assert!(
            w.is_member("club@example.org", "one@members.test"),
            "{rcpt} {body} unsubscribed the member"
        );
    }

    // Only the real token, which went to one@'s mailbox, does it.
    w.mail(
        "one@members.test",
        &format!("club-confirm+{real}@example.org"),
        "From: one@members.test\r\nSubject: Re: confirm",
        "",
    )
    .await;
    assert!(!w.is_member("club@example.org", "one@members.test"));
}

#[tokio::test]
async fn a_token_of_one_list_does_nothing_on_another() {
    let w = world().await;
    w.mail(
        "n@people.test",
        "mod-join@example.org",
        "From: n@people.test\r\nSubject: join",
        "",
    )
    .await;
    let join = token_of(&w.last_to("n@people.test"));

    // The token sent to the other list's confirm address or as its command.
    w.mail(
        "n@people.test",
        &format!("other-confirm+{join}@example.org"),
        "From: n@people.test\r\nSubject: Re: x",
        "",
    )
    .await;
    w.mail(
        "n@people.test",
        "club-request@example.org",
        "From: n@people.test\r\nSubject: x",
        &format!("confirm {join}"),
    )
    .await;
    for list in ["other@example.org", "club@example.org", "mod@example.org"] {
        assert!(!w.is_member(list, "n@people.test"), "{list}");
    }
    assert!(w.mails_to("evil@owners.test").is_empty());
    assert!(w.mails_to("boss@owners.test").is_empty());
    let reply = w.last_to("n@people.test");
    assert!(reply.contains("unknown"), "{reply}");

    // On its own list the same token is still good (so the refusals above were about the list).
    w.mail(
        "n@people.test",
        &format!("mod-confirm+{join}@example.org"),
        "From: n@people.test\r\nSubject: Re: x",
        "",
    )
    .await;
    let approval = token_of(&w.last_to("boss@owners.test"));

    // The owner of another list cannot use the approval token, on either list.
    for (rcpt, body) in [
        (
            "other-request@example.org".to_string(),
            format!("approve {approval}"),
        ),
        (
            format!("other-confirm+{approval}@example.org"),
            String::new(),
        ),
        (
            "mod-request@example.org".to_string(),
            format!("approve {approval}"),
        ),
        (format!("mod-confirm+{approval}@example.org"), String::new()),
    ] {
        w.mail(
            "evil@owners.test",
            &rcpt,
            "From: evil@owners.test\r\nSubject: x",
            &body,
        )
        .await;
        assert!(!w.is_member("mod@example.org", "n@people.test"), "{rcpt}");
        assert!(!w.is_member("other@example.org", "n@people.test"), "{rcpt}");
    }
    w.mail(
        "boss@owners.test",
        "mod-request@example.org",
        "From: boss@owners.test\r\nSubject: x",
        &format!("approve {approval}"),
    )
    .await;
    assert!(w.is_member("mod@example.org", "n@people.test"));
}

#[tokio::test]
async fn only_a_moderator_of_the_list_decides_a_held_post() {
    let w = World::new(
        "",
        &[
            ("club", CLUB),
            (
                "other",
                "address = \"other@example.org\"\nowners = [\"evil@owners.test\"]\nmoderators = [\"evil@owners.test\"]\n",
            ),
        ],
    )
    .await;
    w.ctx
        .store
        .add_members(
            "club@example.org",
            &common::addrs(&["one@members.test", "two@members.test"]),
        )
        .expect("add");
    w.mail(
        "s@outside.test",
        "club@example.org",
        "From: s@outside.test\r\nSubject: hello\r\nMessage-ID: <h@x>",
        "Hi.",
    )
    .await;
    let token = token_of(&w.last_to("mod@owners.test"));
    let state = |w: &World| {
        w.ctx
            .store
            .held_get(&token)
            .expect("store")
            .map(|h| h.state)
    };

    // A member, the poster, the owner (moderators are set) and another list's moderator; by
    // command and by replying to the notice's address; forged From included.
    let attempts = [
        (
            "one@members.test",
            "club-request@example.org",
            format!("approve {token}"),
        ),
        (
            "one@members.test",
            "club-request@example.org",
            format!("reject {token} no"),
        ),
        (
            "one@members.test",
            "club-request@example.org",
            format!("discard {token}"),
        ),
        (
            "s@outside.test",
            "club-request@example.org",
            format!("approve {token}"),
        ),
        (
            "boss@owners.test",
            "club-request@example.org",
            format!("discard {token}"),
        ),
        (
            "evil@owners.test",
            "other-request@example.org",
            format!("approve {token}"),
        ),
        (
            "evil@owners.test",
            "other-request@example.org",
            format!("discard {token}"),
        ),
        (
            "one@members.test",
            &format!("club-confirm+{token}@example.org"),
            String::new(),
        ),
        (
            "evil@owners.test",
            &format!("other-confirm+{token}@example.org"),
            String::new(),
        ),
        // The moderator's address with a token it was never sent.
        (
            "mod@owners.test",
            &format!("club-confirm+{}@example.org", altered(&token)),
            String::new(),
        ),
        (
            "mod@owners.test",
            "club-request@example.org",
            format!("discard {}", altered(&token)),
        ),
    ];
    for (from, rcpt, body) in attempts {
        let out = w
            .mail(from, rcpt, &format!("From: {from}\r\nSubject: x"), &body)
            .await;
        assert!(out.starts_with("250 "), "{out}");
        assert_eq!(state(&w), Some(HeldState::Held), "{from} -> {rcpt}: {body}");
        assert!(
            w.mails_to("two@members.test").is_empty(),
            "{from} -> {rcpt}"
        );
    }

    w.mail(
        "mod@owners.test",
        &format!("club-confirm+{token}@example.org"),
        "From: mod@owners.test\r\nSubject: Re: x",
        "",
    )
    .await;
    assert_eq!(state(&w), Some(HeldState::Done));
    assert_eq!(w.sink.copies().get("two@members.test"), Some(&1));
}

/// A vacation program that answers every mail, confirmation requests and moderation notices
/// included, is the mailbox replying but not its owner: its replies confirm nothing, whether it
/// says so with Auto-Submitted, with the older X-Autoreply family, or only in its subject.
#[tokio::test]
async fn vacation_replies_neither_confirm_a_forged_join_nor_approve_a_held_post() {
    let w = club_with(&["two@members.test"]).await;
    // Someone asks to subscribe away@, whose mailbox answers everything while its owner is away.
    w.mail(
        "attacker@evil.test",
        "club-join@example.org",
        "From: away@people.test\r\nSubject: join",
        "",
    )
    .await;
    let join = token_of(&w.last_to("away@people.test"));
    w.mail(
        "s@outside.test",
        "club@example.org",
        "From: s@outside.test\r\nSubject: hello\r\nMessage-ID: <v@x>",
        "Hi.",
    )
    .await;
    let held = token_of(&w.last_to("mod@owners.test"));
    let vacations = [
        "Subject: Auto: confirm your subscription\r\nAuto-Submitted: auto-replied",
        "Subject: Re: confirm your subscription\r\nX-Autoreply: yes",
        "Subject: Re: confirm\r\nX-Autorespond: on vacation",
        "Subject: Out of Office: Re: confirm",
        "Subject: Automatic reply: confirm",
        "Subject: Abwesenheitsnotiz",
        "Subject: Re: confirm\r\nPrecedence: auto_reply",
    ];
    for v in vacations {
        for (from, token) in [("away@people.test", &join), ("mod@owners.test", &held)] {
            let out = w
                .mail(
                    from,
                    &format!("club-confirm+{token}@example.org"),
                    &format!("From: {from}\r\n{v}"),
                    "I am away until Monday.",
                )
                .await;
            assert!(out.starts_with("250 "), "{out}");
        }
        assert!(
            !w.is_member("club@example.org", "away@people.test"),
            "{v}: confirmed the join"
        );
        let state = w.ctx.store.held_get(&held).expect("store").map(|h| h.state);
        assert_eq!(state, Some(HeldState::Held), "{v}: decided the held post");
        assert!(w.mails_to("two@members.test").is_empty(), "{v}");
    }

    // The people themselves still can, even when the subject they reply to (a list address, a
    // held post's subject) happens to hold such words.
    w.mail(
        "away@people.test",
        &format!("club-confirm+{join}@example.org"),
        "From: away@people.test\r\nSubject: Re: Please confirm: join autoreply-dev@example.org",
        "Yes, please.",
    )
    .await;
    assert!(w.is_member("club@example.org", "away@people.test"));
    w.mail(
        "mod@owners.test",
        &format!("club-confirm+{held}@example.org"),
        "From: mod@owners.test\r\nSubject: Re: Held for moderation: setting up an out of office reply",
        "",
    )
    .await;
    assert_eq!(w.sink.copies().get("two@members.test"), Some(&1));
}

const P13N: &str = "address = \"p13n@example.org\"\nowners = [\"boss@owners.test\"]\n[posting]\npolicy = \"open\"\n[delivery]\nmode = \"personalized\"\n";
const P2: &str = "address = \"p2@example.org\"\nowners = [\"boss@owners.test\"]\n[posting]\npolicy = \"open\"\n[delivery]\nmode = \"personalized\"\n";

#[tokio::test]
async fn an_unsubscribe_mac_works_only_for_its_member_and_list() {
    let w = World::new("", &[("p13n", P13N), ("p2", P2)]).await;
    for list in ["p13n@example.org", "p2@example.org"] {
        w.ctx
            .store
            .add_members(
                list,
                &common::addrs(&["ann@members.test", "bo@members.test"]),
            )
            .expect("add");
    }
    w.mail(
        "p@outside.test",
        "p13n@example.org",
        "From: p@outside.test\r\nSubject: hi\r\nMessage-ID: <u1@t>",
        "Hello.",
    )
    .await;
    let copy = w.last_to("ann@members.test");
    let unsub = header(&copy, "List-Unsubscribe").expect("List-Unsubscribe");
    let addr = unsub
        .split("mailto:")
        .nth(1)
        .and_then(|r| r.split('>').next())
        .expect("address")
        .replace("%3D", "=");
    let (prefix, rest) = addr.split_once('+').expect("extension");
    let (mac, member) = rest.split_once('.').expect("MAC.member");
    assert_eq!(prefix, "p13n-leave");
    assert!(member.starts_with("ann=members.test@"), "{addr}");
    // 128 bits in base32: 26 characters of a-z2-7.
    assert!(
        mac.len() == 26
            && mac
                .bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)),
        "{mac}"
    );
    let other_first = if mac.starts_with('a') { "b" } else { "a" };

    let forged = [
        // Another list, same member and MAC.
        addr.replace("p13n-leave+", "p2-leave+"),
        // Another member, same MAC.
        addr.replace("ann=members.test", "bo=members.test"),
        // One character changed (outside and inside the alphabet), a shortened MAC, an
        // empty MAC.
        format!("{prefix}+{}.{member}", altered(mac)),
        format!("{prefix}+{other_first}{}.{member}", &mac[1..]),
        format!("{prefix}+{}.{member}", &mac[..8]),
        format!("{prefix}+.{member}"),
    ];
    for rcpt in &forged {
        let out = w
            .mail(
                "evil@outside.test",
                rcpt,
                "From: evil@outside.test\r\nSubject: unsubscribe",
                "",
            )
            .await;
        assert!(out.starts_with("250 "), "{rcpt}: {out}");
        for list in ["p13n@example.org", "p2@example.org"] {
            for m in ["ann@members.test", "bo@members.test"] {
                assert!(w.is_member(list, m), "{rcpt} removed {m} from {list}");
            }
        }
    }

    // The real one removes ann from this list only.
    w.mail(
        "ann@members.test",
        &addr,
        "From: ann@members.test\r\nSubject: unsubscribe",
        "",
    )
    .await;
    assert!(!w.is_member("p13n@example.org", "ann@members.test"));
    assert!(w.is_member("p2@example.org", "ann@members.test"));
    assert!(w.is_member("p13n@example.org", "bo@members.test"));
}

#[tokio::test]
async fn with_probes_forged_bounces_never_disable_a_member() {
    // The default list settings (bounces.probe = true), with one bounce reaching the threshold.
    let list = "address = \"b@example.org\"\nowners = [\"boss@owners.test\"]\n[bounces]\nthreshold = 1.0\n";
    let w = World::new("", &[("b", list)]).await;
    w.ctx
        .store
        .add_members("b@example.org", &common::addrs(&["bob@members.test"]))
        .expect("add");
    let dsn = "From: MAILER-DAEMON@evil.test\r\nTo: b-bounces@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"";
    let body = "--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; evil.test\r\n\r\nFinal-Recipient: rfc822; bob@members.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b--";
    let status = |w: &World| {
        w.ctx
            .store
            .bounce_list("b@example.org")
            .expect("store")
            .into_iter()
            .find(|r| r.member == "bob@members.test")
            .map(|r| r.status.name().to_string())
    };
    for rcpt in [
        "b-bounces@example.org",
        "b-bounces+bob=members.test@example.org",
        "b-bounces+probe.0123456789abcdef0123456789abcdef01234567@example.org",
    ] {
        for _ in 0..3 {
            w.mail("", rcpt, dsn, body).await;
        }
        assert_eq!(status(&w).as_deref(), Some("probing"), "{rcpt}");
        let flags = w
            .ctx
            .store
            .member_get("b@example.org", "bob@members.test")
            .expect("store")
            .map(|m| m.flags);
        assert_eq!(flags, Some(0), "{rcpt} disabled the member");
    }
    // Only the bounce of the probe itself (its token went to the member's mailbox) disables.
    let probe = w
        .sink
        .transactions()
        .into_iter()
        .find(|t| t.from.starts_with("b-bounces+probe."))
        .expect("a probe was sent");
    assert_eq!(
        probe.rcpts,
        ["bob@members.test"],
        "the probe goes to the member only"
    );
    w.mail("", &probe.from, dsn, body).await;
    assert_eq!(status(&w).as_deref(), Some("disabled"));
}
