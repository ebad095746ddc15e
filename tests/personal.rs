//! Personalized delivery: one transaction per member with VERP, the member's own footer and
//! List-Unsubscribe, and one-step unsubscribing through that address.

mod common;

use common::{header, World};

const PERSONAL: &str = "address = \"p13n@example.org\"\nowners = [\"boss@owners.test\"]\n[posting]\npolicy = \"open\"\n[delivery]\nmode = \"personalized\"\nverp = true\n[decoration]\nfooter = \"Sent to {member_address}.\\nLeave: {unsubscribe_address}\"\n";

async fn world() -> World {
    let w = World::new("", &[("p13n", PERSONAL)]).await;
    w.ctx
        .store
        .add_members(
            "p13n@example.org",
            &common::addrs(&["ann@members.test", "Bob@Members.test", "cy@members.test"]),
        )
        .expect("add");
    w
}

#[tokio::test]
async fn every_member_gets_an_own_copy_with_verp_footer_and_unsubscribe() {
    let w = world().await;
    let out = w
        .mail(
            "p@outside.test",
            "p13n@example.org",
            "From: p@outside.test\r\nSubject: hi\r\nMessage-ID: <p1@t>",
            "Hello.",
        )
        .await;
    assert!(out.contains("distributed to 3 member(s)"), "{out}");
    let tx = w.sink.transactions();
    assert_eq!(tx.len(), 3);
    for t in &tx {
        assert_eq!(t.rcpts.len(), 1);
        let member = &t.rcpts[0];
        let (l, d) = member.rsplit_once('@').expect("@");
        assert_eq!(t.from, format!("p13n-bounces+{l}={d}@example.org"));
        let data = String::from_utf8_lossy(&t.data);
        assert!(data.contains(&format!("Sent to {member}.")), "{data}");
        let unsub = header(&data, "List-Unsubscribe").expect("List-Unsubscribe");
        let lower = member.to_lowercase();
        let (ll, ld) = lower.rsplit_once('@').expect("@");
        assert!(
            unsub.contains("<mailto:p13n-leave+")
                && unsub.contains(&format!(".{ll}%3D{ld}@example.org>")),
            "{unsub}"
        );
        assert!(data.contains("Leave: p13n-leave+"), "{data}");
    }
}

#[tokio::test]
async fn the_own_unsubscribe_address_works_and_cannot_be_forged() {
    let w = world().await;
    w.mail(
        "p@outside.test",
        "p13n@example.org",
        "From: p@outside.test\r\nSubject: hi\r\nMessage-ID: <p2@t>",
        "Hello.",
    )
    .await;
    let copy = w.mails_to("ann@members.test").pop().expect("copy");
    let unsub = header(&copy, "List-Unsubscribe").expect("List-Unsubscribe");
    // RFC 6068 percent-encodes the '=' of the VERP part in the mailto: URI.
    let addr = unsub
        .split("mailto:")
        .nth(1)
        .and_then(|r| r.split('>').next())
        .expect("address")
        .replace("%3D", "=");

    // A forged one (someone else's address with a made-up MAC) only starts a confirmed leave.
    let forged = addr.replace("ann=members.test", "cy=members.test");
    w.mail(
        "evil@outside.test",
        &forged,
        "From: evil@outside.test\r\nSubject: unsubscribe",
        "",
    )
    .await;
    assert!(w.is_member("p13n@example.org", "cy@members.test"));

    let out = w
        .mail(
            "ann@members.test",
            &addr,
            "From: ann@members.test\r\nSubject: unsubscribe",
            "",
        )
        .await;
    assert!(out.starts_with("250 "), "{out}");
    assert!(!w.is_member("p13n@example.org", "ann@members.test"));
    assert!(
        w.last_to("ann@members.test").contains("You have left")
            || w.last_to("ann@members.test")
                .to_lowercase()
                .contains("left"),
        "{}",
        w.last_to("ann@members.test")
    );
}

#[test]
fn per_member_placeholders_and_verp_need_personalized_mode() {
    let bulk = PERSONAL.replace("mode = \"personalized\"\nverp = true\n", "");
    let e = listkeeper::config::ListConfig::parse(std::path::Path::new("p.toml"), &bulk, '+')
        .expect_err("invalid");
    assert!(
        e[0].to_string()
            .contains("needs delivery.mode = \"personalized\""),
        "{}",
        e[0]
    );
    let verp_bulk = PERSONAL.replace("mode = \"personalized\"\n", "").replace(
        "Sent to {member_address}.\\nLeave: {unsubscribe_address}",
        "x",
    );
    let e = listkeeper::config::ListConfig::parse(std::path::Path::new("p.toml"), &verp_bulk, '+')
        .expect_err("invalid");
    assert!(e.iter().any(|e| e.key == "delivery.verp"), "{e:?}");
}
