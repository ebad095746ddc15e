//! The hourly caps are on the mail listkeeper sends because of unauthenticated requests,
//! never on processing what is asked: forged requests cannot switch off email control of a
//! list, and one forged mail cannot make listkeeper send more than one confirmation.

use crate::common::{header, token_of, World};
use crate::CLUB;

const PERSONAL: &str = "address = \"p13n@example.org\"\nowners = [\"boss@owners.test\"]\n[posting]\npolicy = \"open\"\n[delivery]\nmode = \"personalized\"\n[decoration]\nfooter = \"Leave: {unsubscribe_address}\"\n";

/// A world whose list-wide budget is small (10 instead of 200), so a flood spends it quickly.
async fn flooded_world() -> World {
    let w = World::new(
        "[requests]\nper_list_per_hour = 10\n",
        &[("club", CLUB), ("p13n", PERSONAL)],
    )
    .await;
    for (list, members) in [
        (
            "club@example.org",
            &["one@members.test", "two@members.test"],
        ),
        (
            "p13n@example.org",
            &["ann@members.test", "bob@members.test"],
        ),
    ] {
        w.ctx
            .store
            .add_members(list, &crate::common::addrs(members))
            .expect("add");
    }
    // The flood: forged `help` requests from random addresses spend the reply budget of both
    // lists for the hour.
    for list in ["club", "p13n"] {
        for i in 0..15 {
            let from = format!("r{i}@random.test");
            let out = w
                .mail(
                    &from,
                    &format!("{list}-request@example.org"),
                    &format!("From: {from}\r\nSubject: help"),
                    "",
                )
                .await;
            assert!(out.starts_with("250 "), "{out}");
        }
    }
    let answered = (0..15)
        .filter(|i| !w.mails_to(&format!("r{i}@random.test")).is_empty())
        .count();
    assert_eq!(answered, 10, "the reply budget of each list is 10");
    w
}

/// After the flood, a newcomer's join still gets its confirmation, the reply to it
/// subscribes, and the welcome arrives.
#[tokio::test]
async fn a_flood_of_forged_requests_does_not_stop_a_join() {
    let w = flooded_world().await;
    w.mail(
        "new@people.test",
        "club-join@example.org",
        "From: new@people.test\r\nSubject: join",
        "",
    )
    .await;
    let token = token_of(&w.last_to("new@people.test"));
    let out = w
        .mail(
            "new@people.test",
            &format!("club-confirm+{token}@example.org"),
            "From: new@people.test\r\nSubject: Re: confirm",
            "",
        )
        .await;
    assert!(out.starts_with("250 "), "{out}");
    assert!(w.is_member("club@example.org", "new@people.test"));
    let welcome = w.last_to("new@people.test");
    assert!(
        header(&welcome, "Subject").is_some_and(|s| s.to_lowercase().contains("welcome")),
        "{welcome}"
    );
}

/// After the flood, a member's own one-click leave address still removes the member.
#[tokio::test]
async fn a_flood_of_forged_requests_does_not_stop_a_one_click_leave() {
    let w = flooded_world().await;
    w.mail(
        "p@outside.test",
        "p13n@example.org",
        "From: p@outside.test\r\nSubject: hi\r\nMessage-ID: <p1@t>",
        "Hello.",
    )
    .await;
    let copy = w.mails_to("ann@members.test").pop().expect("copy");
    let unsub = header(&copy, "List-Unsubscribe").expect("List-Unsubscribe");
    let addr = unsub
        .split("mailto:")
        .nth(1)
        .and_then(|r| r.split('>').next())
        .expect("address")
        .replace("%3D", "=");
    w.mail(
        "ann@members.test",
        &addr,
        "From: ann@members.test\r\nSubject: unsubscribe",
        "",
    )
    .await;
    assert!(!w.is_member("p13n@example.org", "ann@members.test"));
    assert!(w.is_member("p13n@example.org", "bob@members.test"));
}

/// A moderator who approves seven held posts by reply in one hour, after an attacker forged
/// the moderator's address five times, has every post distributed and every decision
/// answered: the per-address cap (5) no longer drops the 6th and 7th.
#[tokio::test]
async fn a_moderators_decisions_are_never_capped() {
    let w = World::new("", &[("club", CLUB)]).await;
    w.ctx
        .store
        .add_members(
            "club@example.org",
            &crate::common::addrs(&["one@members.test"]),
        )
        .expect("add");
    for _ in 0..5 {
        w.mail(
            "evil@outside.test",
            "club-request@example.org",
            "From: mod@owners.test\r\nSubject: help",
            "",
        )
        .await;
    }
    let forged_answers = w.mails_to("mod@owners.test").len();
    assert_eq!(
        forged_answers, 5,
        "the forged mails spent the moderator's cap"
    );
    let mut tokens = Vec::new();
    for i in 0..7 {
        let from = format!("s{i}@outside.test");
        let out = w
            .mail(
                &from,
                "club@example.org",
                &format!("From: {from}\r\nSubject: post {i}\r\nMessage-ID: <held{i}@x>"),
                "Hello.",
            )
            .await;
        assert!(out.contains("held for moderation"), "{out}");
        tokens.push(token_of(&w.last_to("mod@owners.test")));
    }
    let before = w.mails_to("mod@owners.test").len();
    for token in &tokens {
        let out = w
            .mail(
                "mod@owners.test",
                &format!("club-confirm+{token}@example.org"),
                "From: mod@owners.test\r\nSubject: Re: held",
                "",
            )
            .await;
        assert!(out.starts_with("250 "), "{out}");
    }
    assert_eq!(
        w.sink.copies().get("one@members.test"),
        Some(&7),
        "every approved post is distributed"
    );
    assert_eq!(
        w.mails_to("mod@owners.test").len() - before,
        7,
        "every decision is answered"
    );
}

/// One forged mail with 20 `join` lines used to send its victim 21 mails and count once.
/// Now it sends one confirmation (the same token does not go out twice from one mail) and
/// one reply, each counted: the victim gets at most the cap of 5 mails an hour whatever the
/// forger sends.
#[tokio::test]
async fn one_mail_sends_one_confirmation_and_every_mail_counts() {
    let w = World::new("[requests]\nmax_commands = 20\n", &[("club", CLUB)]).await;
    let joins = "join\r\n".repeat(20);
    let forge = || {
        w.mail(
            "evil@outside.test",
            "club-request@example.org",
            "From: victim@people.test\r\nSubject: hello",
            &joins,
        )
    };
    forge().await;
    let mails = w.mails_to("victim@people.test");
    assert_eq!(mails.len(), 2, "one confirmation and one reply: {mails:?}");
    for _ in 0..4 {
        forge().await;
    }
    let mails = w.mails_to("victim@people.test");
    assert_eq!(
        mails.len(),
        5,
        "the hourly cap per address: {}",
        mails.len()
    );
    assert!(!w.is_member("club@example.org", "victim@people.test"));
    assert!(w.mails_to("evil@outside.test").is_empty());
}

/// A person using the list as intended (help, join, confirm, leave, confirm, join again,
/// set nomail, ...) never meets the hourly cap: each completed token proves the address reads
/// what it is sent, so the mails counted before it stop counting. Every step is answered.
#[tokio::test]
async fn normal_use_never_meets_the_cap() {
    let w = World::new("", &[("club", CLUB)]).await;
    const ME: &str = "me@people.test";
    async fn request(w: &World, subject: &str) {
        let out = w
            .mail(
                ME,
                "club-request@example.org",
                &format!("From: {ME}\r\nSubject: {subject}"),
                "",
            )
            .await;
        assert!(out.starts_with("250 "), "{out}");
    }
    // Reply to the last confirmation request.
    async fn confirm(w: &World) {
        let mails = w.mails_to(ME);
        let conf = mails
            .iter()
            .rev()
            .find(|m| header(m, "Reply-To").is_some_and(|r| r.contains("-confirm+")))
            .unwrap_or_else(|| panic!("no confirmation in {mails:#?}"));
        let token = token_of(conf);
        let out = w
            .mail(
                ME,
                &format!("club-confirm+{token}@example.org"),
                &format!("From: {ME}\r\nSubject: Re: confirm"),
                "",
            )
            .await;
        assert!(out.starts_with("250 "), "{out}");
    }
    let mut expected = 0;
    let mut step = |n: usize, what: &str| {
        expected += n;
        assert_eq!(w.mails_to(ME).len(), expected, "after {what}");
    };
    request(&w, "help").await;
    step(1, "help");
    for round in 0..3 {
        request(&w, "join").await;
        step(2, "join: a confirmation and a reply");
        confirm(&w).await;
        step(1, "confirming the join: the welcome");
        assert!(w.is_member("club@example.org", ME), "round {round}");
        request(&w, "set nomail on").await;
        step(2, "set nomail");
        confirm(&w).await;
        step(1, "confirming nomail: the reply");
        request(&w, "info").await;
        step(1, "info");
        request(&w, "leave").await;
        step(2, "leave");
        confirm(&w).await;
        step(1, "confirming the leave: the goodbye");
        assert!(!w.is_member("club@example.org", ME), "round {round}");
    }
    request(&w, "help").await;
    step(1, "help at the end");
}
