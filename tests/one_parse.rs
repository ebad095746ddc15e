//! A post's MIME tree is parsed at most once, whatever the stages that read it: content rules
//! (administrivia, header rules, recipients), the moderators' excerpt, decoration with a
//! footer, personalized rendering.

mod common;

use common::World;
use listkeeper::mime::parses_on_this_thread;

const BUSY: &str = "address = \"busy@example.org\"\nowners = [\"boss@owners.test\"]\n[posting]\npolicy = \"open\"\n[content]\nadministrivia = \"hold\"\nimplicit_destination = \"hold\"\nmax_recipients = 10\nmax_recipients_action = \"hold\"\n[[rules]]\nheader = \"X-Spam\"\npattern = \"^yes\"\naction = \"discard\"\nreason = \"spam\"\n[decoration]\nsubject_prefix = \"[busy]\"\nfooter = \"Busy list: {list_address}\"\n";
const HELD: &str = "address = \"held@example.org\"\nowners = [\"boss@owners.test\"]\nmoderators = [\"mod@owners.test\"]\n[posting]\npolicy = \"moderated\"\n[content]\nadministrivia = \"hold\"\n[decoration]\nfooter = \"Held list\"\n";
const PERSONAL: &str = "address = \"own@example.org\"\nowners = [\"boss@owners.test\"]\n[posting]\npolicy = \"open\"\n[content]\nadministrivia = \"hold\"\n[delivery]\nmode = \"personalized\"\nverp = true\n[decoration]\nfooter = \"Sent to {member_address}\"\n";

const MIXED: &str = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"";
const BODY: &str = "--b\r\nContent-Type: text/plain\r\n\r\nHello, this is a discussion.\r\n--b\r\nContent-Type: text/plain; name=\"notes.txt\"\r\n\r\nnotes\r\n--b--";

async fn parses_for(w: &World, list: &str) -> (u64, String) {
    let before = parses_on_this_thread();
    let out = w
        .mail(
            "p@outside.test",
            list,
            &format!("From: p@outside.test\r\nTo: {list}\r\nSubject: one parse\r\nMessage-ID: <{list}.1@x>\r\n{MIXED}"),
            BODY,
        )
        .await;
    (parses_on_this_thread() - before, out)
}

#[tokio::test]
async fn a_post_is_parsed_at_most_once() {
    let w = World::new("", &[("busy", BUSY), ("held", HELD), ("own", PERSONAL)]).await;
    for list in ["busy@example.org", "own@example.org"] {
        w.ctx
            .store
            .add_members(list, &common::addrs(&["a@members.test", "b@members.test"]))
            .expect("add");
    }
    let (n, out) = parses_for(&w, "busy@example.org").await;
    assert!(out.starts_with("250 2.0.0 distributed to 2"), "{out}");
    assert_eq!(n, 1, "every content rule and a footer on a multipart post");

    let (n, out) = parses_for(&w, "held@example.org").await;
    assert!(out.starts_with("250 2.0.0 held for moderation"), "{out}");
    assert_eq!(n, 1, "content rules and the moderators' excerpt");

    let (n, out) = parses_for(&w, "own@example.org").await;
    assert!(out.starts_with("250 2.0.0 distributed to 2"), "{out}");
    assert_eq!(
        n, 1,
        "personalized copies are rendered from one preparation"
    );
    assert!(w
        .last_to("a@members.test")
        .contains("Sent to a@members.test"));
}
