//! Moderation inline: policies, overrides, content rules, the held queue and moderator
//! decisions by mail, against the in-process sink.

mod common;

use common::{header, token_of, World};
use listkeeper::store::{Held, HeldState};

const MEMBERS_LIST: &str = "address = \"club@example.org\"\nowners = [\"boss@owners.test\"]\nmoderators = [\"mod@owners.test\"]\n[posting]\npolicy = \"members\"\n";

async fn world(extra_list: &str) -> World {
    let w = World::new("", &[("club", MEMBERS_LIST), ("x", extra_list)]).await;
    w.ctx
        .store
        .add_members(
            "club@example.org",
            &common::addrs(&["one@members.test", "two@members.test"]),
        )
        .expect("add");
    w
}

fn post(from: &str, subject: &str, id: &str) -> String {
    format!(
        "From: <{from}>\r\nTo: club@example.org\r\nSubject: {subject}\r\nMessage-ID: <{id}@test>"
    )
}

#[tokio::test]
async fn a_strangers_post_is_held_and_approved_by_a_moderators_reply() {
    let w = world("").await;
    let out = w
        .mail(
            "s@outside.test",
            "club@example.org",
            &post("s@outside.test", "hello club", "h1"),
            "Hi all.",
        )
        .await;
    assert!(
        out.starts_with("250 2.0.0 held for moderation: the sender is not a member"),
        "{out}"
    );
    assert!(w.mails_to("one@members.test").is_empty());

    // The moderator (not the owner: moderators are set) gets the notice with the reason,
    // headers, first lines and a Reply-To carrying the token; the poster an acknowledgement.
    assert!(w.mails_to("boss@owners.test").is_empty());
    let notice = w.last_to("mod@owners.test");
    assert!(notice.contains("the sender is not a member"), "{notice}");
    assert!(notice.contains("Subject: hello club"), "{notice}");
    assert!(notice.contains("| Hi all."), "{notice}");
    let token = token_of(&notice);
    let ack = w.last_to("s@outside.test");
    assert!(
        header(&ack, "Subject").is_some_and(|s| s.contains("awaiting moderation")),
        "{ack}"
    );

    // A stranger replying to the confirm address cannot approve it.
    w.mail(
        "s@outside.test",
        &format!("club-confirm+{token}@example.org"),
        "From: s@outside.test\r\nSubject: Re: x",
        "",
    )
    .await;
    assert!(w.mails_to("one@members.test").is_empty());

    w.mail(
        "mod@owners.test",
        &format!("club-confirm+{token}@example.org"),
        "From: mod@owners.test\r\nSubject: Re: x",
        "",
    )
    .await;
    let copies = w.sink.copies();
    assert_eq!(
        (
            copies.get("one@members.test"),
            copies.get("two@members.test")
        ),
        (Some(&1), Some(&1)),
        "{copies:?}"
    );
    let reply = w.last_to("mod@owners.test");
    assert!(reply.contains("distributed to 2 member(s)"), "{reply}");
    let sent = w.last_to("one@members.test");
    assert!(
        sent.contains("List-Id: <club.example.org>") && sent.contains("Hi all."),
        "{sent}"
    );

    // Approving again, by reply or by command: exactly once.
    w.mail(
        "mod@owners.test",
        "club-request@example.org",
        "From: mod@owners.test\r\nSubject: x",
        &format!("approve {token}"),
    )
    .await;
    assert!(
        w.last_to("mod@owners.test").contains("already distributed"),
        "{}",
        w.last_to("mod@owners.test")
    );
    assert_eq!(w.sink.copies().get("one@members.test"), Some(&1));
}

/// BATV over SRS: a 100-octet local part, over RFC 5321's 64 (which binds what we generate).
const SRS_SENDER: &str = "prvs=0417a1b2c3=SRS0=k9tZ=QL=sending-domain.example.com=firstname.middlename.lastname+mailinglists42@forwarder.example.net";

#[tokio::test]
async fn long_and_quoted_envelope_senders_are_served_but_never_answered() {
    let w = world("").await;
    // A member's post forwarded with SRS and BATV: the From header is the member, it goes out.
    let out = w
        .mail(
            SRS_SENDER,
            "club@example.org",
            &post("one@members.test", "forwarded", "q1"),
            "Hi all.",
        )
        .await;
    assert!(
        out.starts_with("250 2.0.0 distributed to 2 member(s)"),
        "{out}"
    );
    assert_eq!(w.mails_to("two@members.test").len(), 1);

    // A quoted local part in the envelope and in From: no strict address names the poster, so
    // the post is held as a stranger's and nobody but the moderator hears of it.
    let out = w
        .mail(
            "\"john smith\"@example.org",
            "club@example.org",
            "From: John Smith <\"john smith\"@example.org>\r\nTo: club@example.org\r\nSubject: quoted\r\nMessage-ID: <q2@test>",
            "Hi all.",
        )
        .await;
    assert!(
        out.starts_with("250 2.0.0 held for moderation: the post has no usable sender address"),
        "{out}"
    );
    let notice = w.last_to("mod@owners.test");
    assert!(notice.contains("(no sender)"), "{notice}");
    let to_anyone_else: Vec<_> = w
        .sink
        .transactions()
        .into_iter()
        .flat_map(|t| t.rcpts)
        .filter(|r| !r.ends_with("@members.test") && r != "mod@owners.test")
        .collect();
    assert!(to_anyone_else.is_empty(), "{to_anyone_else:?}");
    // Rejecting it tells nobody: there is no address to answer.
    let token = token_of(&notice);
    let out = w
        .mail(
            "mod@owners.test",
            "club-request@example.org",
            "From: mod@owners.test\r\nSubject: x",
            &format!("reject {token} off topic"),
        )
        .await;
    assert!(out.starts_with("250 "), "{out}");
    let rcpts: Vec<String> = w
        .sink
        .transactions()
        .into_iter()
        .flat_map(|t| t.rcpts)
        .collect();
    assert!(
        rcpts
            .iter()
            .all(|r| r.ends_with("@members.test") || r == "mod@owners.test"),
        "{rcpts:?}"
    );
}

#[tokio::test]
async fn reject_tells_the_poster_and_discard_does_not() {
    let w = world("").await;
    w.mail(
        "s@outside.test",
        "club@example.org",
        &post("s@outside.test", "first", "r1"),
        "x",
    )
    .await;
    let t1 = token_of(&w.last_to("mod@owners.test"));
    w.mail(
        "t@outside.test",
        "club@example.org",
        &post("t@outside.test", "second", "r2"),
        "x",
    )
    .await;
    let t2 = token_of(&w.last_to("mod@owners.test"));
    w.mail(
        "mod@owners.test",
        "club-request@example.org",
        "From: mod@owners.test\r\nSubject: x",
        &format!("reject {t1} off topic here\r\ndiscard {t2}"),
    )
    .await;
    let told = w.last_to("s@outside.test");
    assert!(told.contains("off topic here"), "{told}");
    assert_eq!(
        w.mails_to("t@outside.test").len(),
        1,
        "only the acknowledgement"
    );
    assert!(w.mails_to("one@members.test").is_empty());
    let results = w.last_to("mod@owners.test");
    assert!(
        results.contains("Rejected") && results.contains("Discarded"),
        "{results}"
    );
}

#[tokio::test]
async fn policies_overrides_and_rules() {
    let list = "address = \"ann@example.org\"\nowners = [\"boss@owners.test\"]\n[posting]\npolicy = \"announce\"\nallowed_posters = [\"^.*@press\\\\.test$\"]\nnon_member_action = \"reject\"\ndiscard_from = [\"spammer@evil.test\"]\naccept_from = [\"guest@friends.test\"]\n[[rules]]\nheader = \"X-Spam-Flag\"\npattern = \"^YES\"\naction = \"discard\"\nreason = \"spam\"\n";
    let w = world(list).await;
    w.ctx
        .store
        .add_members("ann@example.org", &common::addrs(&["reader@members.test"]))
        .expect("add");
    let send = |from: &'static str, extra: &'static str, id: &'static str| {
        let w = &w;
        async move {
            w.mail(from, "ann@example.org", &format!("From: {from}\r\nTo: ann@example.org\r\nSubject: news\r\nMessage-ID: <{id}@t>{extra}"), "text").await
        }
    };
    assert!(send("editor@press.test", "", "a1")
        .await
        .contains("distributed to 1"));
    let out = send("random@outside.test", "", "a2").await;
    assert!(
        out.starts_with("550 5.7.1 the list refused this post: only designated posters"),
        "{out}"
    );
    assert!(send("spammer@evil.test", "", "a3")
        .await
        .starts_with("250 2.0.0 discarded"));
    assert!(send("guest@friends.test", "", "a4")
        .await
        .contains("distributed to 1"));
    let out = send("editor@press.test", "\r\nX-Spam-Flag: YES", "a5").await;
    assert!(out.starts_with("250 2.0.0 discarded: spam"), "{out}");
    assert_eq!(w.sink.copies().get("reader@members.test"), Some(&2));
}

#[tokio::test]
async fn moderated_lists_emergency_and_moderated_members_hold() {
    let list = "address = \"mod@example.org\"\nowners = [\"boss@owners.test\"]\n[posting]\npolicy = \"moderated\"\n";
    let w = world(list).await;
    w.ctx
        .store
        .add_members("mod@example.org", &common::addrs(&["reader@members.test"]))
        .expect("add");
    let out = w
        .mail(
            "reader@members.test",
            "mod@example.org",
            "From: reader@members.test\r\nSubject: s\r\nMessage-ID: <m1@t>",
            "x",
        )
        .await;
    assert!(
        out.contains("held for moderation: every post to this list is reviewed"),
        "{out}"
    );
    // The owners moderate when no moderators are set.
    assert!(
        w.last_to("boss@owners.test").contains("approve"),
        "{}",
        w.last_to("boss@owners.test")
    );

    assert!(w
        .ctx
        .store
        .member_set_moderated("club@example.org", "one@members.test", true)
        .expect("set"));
    let out = w
        .mail(
            "one@members.test",
            "club@example.org",
            &post("one@members.test", "mine", "m2"),
            "x",
        )
        .await;
    assert!(
        out.contains("held for moderation: posts from this member are reviewed"),
        "{out}"
    );
}

#[tokio::test]
async fn size_limit_and_duplicate_message_ids() {
    let list = "address = \"dup@example.org\"\nowners = [\"boss@owners.test\"]\n[posting]\npolicy = \"open\"\n[content]\nmax_size = 400\nmax_size_action = \"reject\"\nduplicate_days = 7\n";
    let w = world(list).await;
    w.ctx
        .store
        .add_members("dup@example.org", &common::addrs(&["reader@members.test"]))
        .expect("add");
    let headers = "From: a@outside.test\r\nSubject: once\r\nMessage-ID: <same@t>";
    assert!(w
        .mail("a@outside.test", "dup@example.org", headers, "x")
        .await
        .contains("distributed to 1"));
    let out = w
        .mail("a@outside.test", "dup@example.org", headers, "x")
        .await;
    assert!(
        out.starts_with("250 2.0.0 discarded: a message with the same Message-ID"),
        "{out}"
    );
    let out = w
        .mail(
            "a@outside.test",
            "dup@example.org",
            "From: a@outside.test\r\nSubject: big\r\nMessage-ID: <big@t>",
            &"y".repeat(500),
        )
        .await;
    assert!(
        out.starts_with("550 5.7.1 the list refused this post: the message is"),
        "{out}"
    );
    assert_eq!(w.sink.copies().get("reader@members.test"), Some(&1));
}

#[tokio::test]
async fn a_held_post_survives_a_restart_and_a_failed_approval_is_resumed() {
    let w = world("").await;
    w.mail(
        "s@outside.test",
        "club@example.org",
        &post("s@outside.test", "persist", "p1"),
        "x",
    )
    .await;
    let token = token_of(&w.last_to("mod@owners.test"));
    let data = w.h.data_dir();
    // Restart: a new context on the same store.
    let World { sink, h, ctx } = w;
    drop(ctx);
    let mut store = None;
    for _ in 0..200 {
        if let Ok(s) = listkeeper::store::Store::open(&data, 1 << 20) {
            store = Some(s);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    drop(store.expect("store released"));
    let w = World {
        sink,
        ctx: h.context(),
        h,
    };
    assert_eq!(
        w.ctx
            .store
            .held_list("club@example.org")
            .expect("list")
            .len(),
        1
    );

    // The MTA defers the copies: the approval mail gets 451 and stays with the MTA...
    w.sink
        .set(|b| b.fail_all_data = Some("451 4.3.0 later".into()));
    let out = w
        .mail(
            "mod@owners.test",
            "club-request@example.org",
            "From: mod@owners.test\r\nSubject: x",
            &format!("approve {token}"),
        )
        .await;
    assert!(out.starts_with("451 "), "{out}");
    // ...which retries it once the MTA works again: distributed once.
    w.sink.set(|b| b.fail_all_data = None);
    let out = w
        .mail(
            "mod@owners.test",
            "club-request@example.org",
            "From: mod@owners.test\r\nSubject: x",
            &format!("approve {token}"),
        )
        .await;
    assert!(out.starts_with("250 "), "{out}");
    assert_eq!(w.sink.copies().get("one@members.test"), Some(&1));
    assert_eq!(
        w.ctx.store.held_get(&token).expect("get").map(|h| h.state),
        Some(HeldState::Done)
    );
}

#[tokio::test]
async fn expired_held_posts_are_removed_and_the_poster_told() {
    let w = world("").await;
    let h = Held {
        token: "00112233445566778899aabbccddeeff00112233".into(),
        list: "club@example.org".into(),
        sender: "late@outside.test".into(),
        received: 1,
        expires: 2,
        reasons: vec!["the sender is not a member of the list".into()],
        subject: "old news".into(),
        message_id: "old@t".into(),
        state: HeldState::Held,
    };
    w.ctx
        .store
        .held_put(&h, b"some-key", b"Subject: old news\r\n\r\nx\r\n")
        .expect("put");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(listkeeper::scheduled::run_deadlines(w.ctx.clone(), stop_rx));
    for _ in 0..200 {
        if !w.mails_to("late@outside.test").is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let _ = stop_tx.send(true);
    let _ = task.await;
    let told = w.last_to("late@outside.test");
    assert!(
        told.contains("old news") && told.contains("expired"),
        "{told}"
    );
    assert!(w.ctx.store.held_get(&h.token).expect("get").is_none());
}

#[tokio::test]
async fn content_rules_administrivia_recipients_destination_and_mime() {
    let list = "address = \"rules@example.org\"\nowners = [\"boss@owners.test\"]\n[posting]\npolicy = \"open\"\n[content]\nmax_recipients = 3\nmax_recipients_action = \"reject\"\nimplicit_destination = \"discard\"\ndrop_types = [\"image/*\"]\nfiltered_empty_action = \"reject\"\n";
    let w = world(list).await;
    w.ctx
        .store
        .add_members(
            "rules@example.org",
            &common::addrs(&["reader@members.test"]),
        )
        .expect("add");
    let to = "To: rules@example.org";

    let out = w
        .mail(
            "a@outside.test",
            "rules@example.org",
            &format!("From: a@outside.test\r\n{to}\r\nSubject: unsubscribe\r\nMessage-ID: <ad@t>"),
            "unsubscribe me",
        )
        .await;
    assert!(
        out.starts_with(
            "250 2.0.0 held for moderation: the message looks like a membership command"
        ),
        "{out}"
    );

    let out = w.mail("a@outside.test", "rules@example.org", "From: a@outside.test\r\nTo: rules@example.org, b@x.test, c@x.test\r\nCc: d@x.test\r\nSubject: spam shot", "x").await;
    assert!(
        out.starts_with(
            "550 5.7.1 the list refused this post: the message has 4 explicit recipients"
        ),
        "{out}"
    );

    let out = w
        .mail(
            "a@outside.test",
            "rules@example.org",
            "From: a@outside.test\r\nTo: someone@else.test\r\nSubject: bcc",
            "x",
        )
        .await;
    assert!(
        out.starts_with("250 2.0.0 discarded: the list is not among the recipients"),
        "{out}"
    );

    let mime = "From: a@outside.test\r\nTo: rules@example.org\r\nSubject: with picture\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"";
    let body = "--b1\r\nContent-Type: text/plain\r\n\r\nSee the picture.\r\n--b1\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b1--\r\n";
    let out = w
        .mail("a@outside.test", "rules@example.org", mime, body)
        .await;
    assert!(out.contains("distributed to 1"), "{out}");
    let got = w.last_to("reader@members.test");
    assert!(
        got.contains("See the picture.") && !got.contains("iVBORw0KGgo="),
        "{got}"
    );
    assert!(
        got.contains("image/png"),
        "a note names what was removed: {got}"
    );

    let only_image = "From: a@outside.test\r\nTo: rules@example.org\r\nSubject: only picture\r\nMIME-Version: 1.0\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64";
    let out = w
        .mail(
            "a@outside.test",
            "rules@example.org",
            only_image,
            "iVBORw0KGgo=",
        )
        .await;
    assert!(
        out.starts_with("550 5.7.1 the list refused this post: nothing would be left"),
        "{out}"
    );
}

/// `moderation.max_held` bounds the queue: past it a post is deferred with 452 4.2.2 (the MTA
/// keeps it and retries), a retried delivery of a post already held is not counted twice, and
/// once a moderator decides one, the next post is held again.
#[tokio::test]
async fn a_full_moderation_queue_defers_new_posts() {
    let capped = "address = \"capped@example.org\"\nowners = [\"boss@owners.test\"]\nmoderators = [\"mod@owners.test\"]\n[posting]\npolicy = \"members\"\n[moderation]\nmax_held = 2\nacknowledge = false\n";
    let w = World::new("", &[("capped", capped)]).await;
    let send = |id: &'static str| {
        let w = &w;
        async move {
            w.mail(
                "s@outside.test",
                "capped@example.org",
                &format!("From: <s@outside.test>\r\nTo: capped@example.org\r\nSubject: spam {id}\r\nMessage-ID: <{id}@test>"),
                "buy now",
            )
            .await
        }
    };
    for id in ["q1", "q2"] {
        let out = send(id).await;
        assert!(
            out.starts_with("250 2.0.0 held for moderation"),
            "{id}: {out}"
        );
    }
    let notices = w.mails_to("mod@owners.test").len();
    assert_eq!(notices, 2);
    let out = send("q3").await;
    assert!(
        out.starts_with("452 4.2.2 the moderation queue of capped@example.org is full"),
        "{out}"
    );
    assert_eq!(
        w.mails_to("mod@owners.test").len(),
        2,
        "no notice for a deferred post"
    );
    // The MTA retrying a post that is already held: still held, not refused.
    let out = send("q1").await;
    assert!(out.starts_with("250 2.0.0 held for moderation"), "{out}");
    assert_eq!(
        w.ctx
            .store
            .held_list("capped@example.org")
            .expect("list")
            .len(),
        2
    );

    // A moderator discards one: there is room again.
    let token = token_of(&w.mails_to("mod@owners.test")[0]);
    w.mail(
        "mod@owners.test",
        "capped-request@example.org",
        "From: mod@owners.test\r\nSubject: moderation",
        &format!("discard {token}"),
    )
    .await;
    let out = send("q3").await;
    assert!(out.starts_with("250 2.0.0 held for moderation"), "{out}");
    assert!(
        w.sink.copies().keys().all(|k| k == "mod@owners.test"),
        "{:?}",
        w.sink.copies()
    );
}
