//! Bounce processing through the LMTP session: VERP and DSN attribution, one point per
//! bouncing day, the probe at the threshold whose bounce alone disables (the default), the
//! old disabling at the threshold with `probe = false`, notices, and what is ignored or
//! forwarded.

mod common;

use common::World;

/// A real-world-looking bounce fixture, as the MTA would deliver it to a bounce address.
fn fixture(name: &str) -> (String, String) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bounces")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .expect("fixture")
        .replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").expect("header and body");
    (head.replace('\n', "\r\n"), body.replace('\n', "\r\n"))
}

const LIST: &str = "address = \"dev@lists.example.org\"\nowners = [\"boss@owners.test\"]\n[posting]\npolicy = \"open\"\n[bounces]\nthreshold = 2.0\n";

async fn world(extra: &str) -> World {
    let w = World::new("", &[("b", &format!("{LIST}{extra}"))]).await;
    w.ctx
        .store
        .add_members(
            "dev@lists.example.org",
            &common::addrs(&["bob@example.com", "amy@example.com"]),
        )
        .expect("add");
    w
}

fn score(w: &World, member: &str) -> Option<(f64, String)> {
    w.ctx
        .store
        .bounce_list("dev@lists.example.org")
        .expect("list")
        .into_iter()
        .find(|r| r.member == member)
        .map(|r| (r.score, r.status.name().to_string()))
}

#[tokio::test]
async fn a_verp_bounce_counts_once_a_day_for_the_member() {
    let w = world("").await;
    let (head, body) = fixture("postfix-user-unknown.eml");
    for _ in 0..3 {
        let out = w
            .mail(
                "",
                "dev-bounces+bob=example.com@lists.example.org",
                &head,
                &body,
            )
            .await;
        assert!(out.starts_with("250 2.0.0 bounce counted"), "{out}");
    }
    assert_eq!(score(&w, "bob@example.com"), Some((1.0, "ok".into())));
    assert_eq!(score(&w, "amy@example.com"), None);
}

/// The probes the sink received: mails whose envelope sender is `dev-bounces+probe.TOKEN@`.
fn probes(w: &World) -> Vec<common::Received> {
    w.sink
        .transactions()
        .into_iter()
        .filter(|t| t.from.starts_with("dev-bounces+probe."))
        .collect()
}

/// Is `member` disabled for delivery (the member flag, not the bounce record)?
fn flagged(w: &World, member: &str) -> bool {
    w.ctx
        .store
        .member_get("dev@lists.example.org", member)
        .expect("store")
        .is_some_and(|m| m.flags != 0)
}

async fn post(w: &World, id: &str) -> String {
    w.mail(
        "p@outside.test",
        "dev@lists.example.org",
        &format!("From: p@outside.test\r\nSubject: hi\r\nMessage-ID: <{id}@t>"),
        "x",
    )
    .await
}

#[tokio::test]
async fn at_the_threshold_a_probe_goes_out_and_only_its_bounce_disables() {
    // The default: bounces.probe = true.
    let w = world("hard_score = 2.0\n").await;
    let (head, body) = fixture("postfix-user-unknown.eml");
    // A DSN without VERP names bob; his score reaches the threshold: a probe, no disabling.
    let out = w
        .mail("", "dev-bounces@lists.example.org", &head, &body)
        .await;
    assert!(
        out.starts_with("250 2.0.0 bounce counted for 1 member(s)"),
        "{out}"
    );
    assert_eq!(score(&w, "bob@example.com"), Some((2.0, "probing".into())));
    assert!(!flagged(&w, "bob@example.com"));
    let sent = probes(&w);
    assert_eq!(sent.len(), 1, "one probe: {sent:?}");
    let probe = sent[0].clone();
    assert_eq!(probe.rcpts, ["bob@example.com"]);
    let token = probe
        .from
        .strip_prefix("dev-bounces+probe.")
        .and_then(|r| r.strip_suffix("@lists.example.org"))
        .unwrap_or_else(|| panic!("probe envelope sender {}", probe.from));
    assert!(
        token.len() == 40
            && token
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "a 160-bit token: {token}"
    );
    let text = String::from_utf8_lossy(&probe.data);
    assert!(
        common::header(&text, "Subject")
            .is_some_and(|s| s.contains("Checking your address for dev@lists.example.org")),
        "{text}"
    );
    assert!(
        w.mails_to("boss@owners.test").is_empty(),
        "the owners are told only when the probe bounced"
    );
    // Probing, bob still gets posts.
    let out = post(&w, "b1").await;
    assert!(out.contains("distributed to 2 member(s)"), "{out}");

    // Nothing but the probe's own bounce disables: more bounces (VERP or not), a bounce to a
    // made-up probe token, an auto-reply to the real probe address. None sends a second probe.
    let (auto_head, auto_body) = fixture("office-automatic-reply.eml");
    let guessed = format!("dev-bounces+probe.{}@lists.example.org", "0".repeat(40));
    for (rcpt, head, body, expect) in [
        (
            "dev-bounces+bob=example.com@lists.example.org",
            &head,
            &body,
            "250 2.0.0 bounce counted for 0 member(s)",
        ),
        (
            "dev-bounces@lists.example.org",
            &head,
            &body,
            "250 2.0.0 bounce counted for 0 member(s)",
        ),
        (
            guessed.as_str(),
            &head,
            &body,
            "250 2.0.0 probe reply ignored",
        ),
        (
            probe.from.as_str(),
            &auto_head,
            &auto_body,
            "250 2.0.0 probe reply ignored",
        ),
    ] {
        let out = w.mail("", rcpt, head, body).await;
        assert!(out.starts_with(expect), "{rcpt}: {out}");
        assert_eq!(
            score(&w, "bob@example.com").map(|s| s.1).as_deref(),
            Some("probing"),
            "{rcpt}"
        );
        assert!(!flagged(&w, "bob@example.com"), "{rcpt} disabled bob");
    }
    assert_eq!(probes(&w).len(), 1, "no second probe");
    assert!(w.mails_to("boss@owners.test").is_empty());

    // The probe bounces (its token went only to bob's mailbox): now bob is disabled.
    let out = w.mail("", &probe.from, &head, &body).await;
    assert!(
        out.starts_with("250 2.0.0 probe bounced; the member is disabled"),
        "{out}"
    );
    assert_eq!(score(&w, "bob@example.com"), Some((2.0, "disabled".into())));
    assert!(flagged(&w, "bob@example.com"));
    // Told: the member (best effort) and the owners.
    assert!(
        w.last_to("boss@owners.test").contains("bob@example.com"),
        "{}",
        w.last_to("boss@owners.test")
    );
    assert!(
        common::header(&w.last_to("bob@example.com"), "Subject")
            .is_some_and(|s| !s.contains("Checking your address")),
        "the member is told of the disabling"
    );
    // The token is spent: its bounce again changes nothing.
    let out = w.mail("", &probe.from, &head, &body).await;
    assert!(out.starts_with("250 2.0.0 probe reply ignored"), "{out}");
    // A disabled member gets no posts; the others do.
    let out = post(&w, "b2").await;
    assert!(out.contains("distributed to 1 member(s)"), "{out}");
    // Re-enabled by the operator, the member gets posts again.
    assert!(w
        .ctx
        .store
        .member_enable("dev@lists.example.org", "bob@example.com")
        .expect("enable"));
    let out = post(&w, "b3").await;
    assert!(out.contains("distributed to 2 member(s)"), "{out}");
}

#[tokio::test]
async fn with_probe_false_the_threshold_disables_at_once() {
    // The operator trusts bounce content: no probe, the threshold itself disables.
    let w = world("hard_score = 2.0\nprobe = false\n").await;
    let (head, body) = fixture("postfix-user-unknown.eml");
    let out = w
        .mail("", "dev-bounces@lists.example.org", &head, &body)
        .await;
    assert!(out.starts_with("250 "), "{out}");
    assert_eq!(score(&w, "bob@example.com"), Some((2.0, "disabled".into())));
    assert!(flagged(&w, "bob@example.com"));
    assert!(probes(&w).is_empty());
    assert!(
        w.last_to("boss@owners.test").contains("bob@example.com"),
        "{}",
        w.last_to("boss@owners.test")
    );
    assert!(!w.mails_to("bob@example.com").is_empty());
    let out = post(&w, "b1").await;
    assert!(out.contains("distributed to 1 member(s)"), "{out}");
}

#[tokio::test]
async fn delays_and_auto_replies_are_ignored_and_the_unreadable_forwarded() {
    let w = world("").await;
    for name in ["postfix-delay.eml", "office-automatic-reply.eml"] {
        let (head, body) = fixture(name);
        let out = w
            .mail(
                "",
                "dev-bounces+bob=example.com@lists.example.org",
                &head,
                &body,
            )
            .await;
        assert!(
            out.starts_with("250 2.0.0 ") && out.contains("ignored"),
            "{name}: {out}"
        );
    }
    assert_eq!(score(&w, "bob@example.com"), None);
    let (head, body) = fixture("human-reply.eml");
    let out = w
        .mail(
            "alice@example.net",
            "dev-bounces@lists.example.org",
            &head,
            &body,
        )
        .await;
    assert!(out.contains("forwarded to the owners"), "{out}");
    assert_eq!(w.mails_to("boss@owners.test").len(), 1);
}

/// A failure notice in which no address can be read counts for the member the VERP envelope
/// names (soft unless the text says permanent); without VERP it reaches the owners.
#[tokio::test]
async fn a_failure_without_an_address_counts_for_the_verp_member() {
    let w = world("").await;
    let head = "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\nSubject: Undeliverable message";
    let body = "Sorry, your message could not be delivered. The remote server did not answer.\r\n";
    let out = w
        .mail(
            "",
            "dev-bounces+bob=example.com@lists.example.org",
            head,
            body,
        )
        .await;
    assert!(out.starts_with("250 2.0.0 bounce counted for 1"), "{out}");
    // Soft: the list's default soft score is below one point.
    let (points, state) = score(&w, "bob@example.com").expect("scored");
    assert!(points > 0.0 && points < 1.0, "{points}");
    assert_eq!(state, "ok");
    assert!(w.mails_to("boss@owners.test").is_empty());

    let out = w
        .mail("", "dev-bounces@lists.example.org", head, body)
        .await;
    assert!(out.contains("forwarded to the owners"), "{out}");
    assert_eq!(w.mails_to("boss@owners.test").len(), 1);
    assert_eq!(score(&w, "amy@example.com"), None);
}

/// The probe's token names the member, so a failure notice of the probe in which no address
/// can be read disables as well.
#[tokio::test]
async fn a_probe_bounce_without_a_readable_address_disables() {
    let w = world("hard_score = 2.0\n").await;
    let (head, body) = fixture("postfix-user-unknown.eml");
    let out = w
        .mail("", "dev-bounces@lists.example.org", &head, &body)
        .await;
    assert!(out.starts_with("250 2.0.0 bounce counted"), "{out}");
    let sent = probes(&w);
    assert_eq!(sent.len(), 1, "one probe: {sent:?}");
    let probe_address = sent[0].from.clone();
    let head = "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\nSubject: Undeliverable message";
    let body = "Sorry, your message could not be delivered. This is a permanent error.\r\n";
    let out = w.mail("", &probe_address, head, body).await;
    assert!(out.contains("probe bounced"), "{out}");
    assert!(flagged(&w, "bob@example.com"));
}
