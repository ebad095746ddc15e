//! Bounce processing through the LMTP session: VERP and DSN attribution, one point per
//! bouncing day, disabling with notices, probes, and what is ignored or forwarded.

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

#[tokio::test]
async fn without_verp_the_dsn_names_the_member_and_the_threshold_disables() {
    let w = world("hard_score = 2.0\n").await;
    let (head, body) = fixture("postfix-user-unknown.eml");
    let out = w
        .mail("", "dev-bounces@lists.example.org", &head, &body)
        .await;
    assert!(out.starts_with("250 "), "{out}");
    assert_eq!(score(&w, "bob@example.com"), Some((2.0, "disabled".into())));
    // Told: the member (best effort) and the owners.
    assert!(
        w.last_to("boss@owners.test").contains("bob@example.com"),
        "{}",
        w.last_to("boss@owners.test")
    );
    assert!(!w.mails_to("bob@example.com").is_empty());
    // A disabled member gets no posts; the others do.
    let out = w
        .mail(
            "p@outside.test",
            "dev@lists.example.org",
            "From: p@outside.test\r\nSubject: hi\r\nMessage-ID: <b1@t>",
            "x",
        )
        .await;
    assert!(out.contains("distributed to 1 member(s)"), "{out}");
    // Re-enabled by the operator, the member gets posts again.
    assert!(w
        .ctx
        .store
        .member_enable("dev@lists.example.org", "bob@example.com")
        .expect("enable"));
    let out = w
        .mail(
            "p@outside.test",
            "dev@lists.example.org",
            "From: p@outside.test\r\nSubject: hi\r\nMessage-ID: <b2@t>",
            "x",
        )
        .await;
    assert!(out.contains("distributed to 2 member(s)"), "{out}");
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

#[tokio::test]
async fn a_probe_confirms_before_disabling() {
    let w = world("hard_score = 2.0\nprobe = true\n").await;
    let (head, body) = fixture("postfix-user-unknown.eml");
    w.mail(
        "",
        "dev-bounces+bob=example.com@lists.example.org",
        &head,
        &body,
    )
    .await;
    assert_eq!(
        score(&w, "bob@example.com").map(|s| s.1),
        Some("probing".into())
    );
    let probe = w
        .sink
        .transactions()
        .into_iter()
        .find(|t| t.from.starts_with("dev-bounces+probe."))
        .expect("a probe was sent");
    assert_eq!(probe.rcpts, ["bob@example.com"]);
    let ext = probe
        .from
        .trim_start_matches("dev-bounces+")
        .split('@')
        .next()
        .unwrap_or_default()
        .to_string();
    // The probe bounces too: now the member is disabled.
    w.mail(
        "",
        &format!("dev-bounces+{ext}@lists.example.org"),
        &head,
        &body,
    )
    .await;
    assert_eq!(
        score(&w, "bob@example.com").map(|s| s.1),
        Some("disabled".into())
    );
}
