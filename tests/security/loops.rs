//! Lists that feed each other: every list pass leaves an `X-BeenThere` marker that the next
//! list keeps, so a post that comes back to a list, or that has passed through too many lists,
//! is discarded as a loop although each list replaced the other's `List-Id`.

use crate::common::{converse, World};

fn open_list(address: &str) -> String {
    format!("address = \"{address}\"\nowners = [\"boss@owners.test\"]\n[posting]\npolicy = \"open\"\n[decoration]\nsubject_prefix = \"[{}]\"\n", address.split('@').next().unwrap_or_default())
}

/// Deliver `data` (a whole message as the sink received it) to `rcpt` over LMTP, dot-stuffed
/// as the MTA would; the reply to the DATA.
async fn redeliver(w: &World, from: &str, rcpt: &str, data: &str) -> String {
    let mut stuffed = String::new();
    for line in data.split_inclusive("\r\n") {
        if line.starts_with('.') {
            stuffed.push('.');
        }
        stuffed.push_str(line);
    }
    if !stuffed.ends_with("\r\n") {
        stuffed.push_str("\r\n");
    }
    let session = format!(
        "LHLO mta.test\r\nMAIL FROM:<{from}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n{stuffed}.\r\nQUIT\r\n"
    );
    let t = converse(w.ctx.clone(), session.as_bytes()).await;
    let lines: Vec<&str> = t.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("354"))
        .map_or(0, |p| p + 1);
    lines
        .get(start)
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("no outcome in: {t}"))
}

/// The last copy the sink took for `to`, with its envelope sender.
fn last_copy(w: &World, to: &str) -> (String, String) {
    let t = w
        .sink
        .transactions()
        .into_iter()
        .rfind(|t| t.rcpts.iter().any(|r| r == to))
        .unwrap_or_else(|| panic!("no copy for {to}: {:?}", w.sink.copies()));
    (t.from, String::from_utf8_lossy(&t.data).into_owned())
}

#[tokio::test]
async fn two_lists_subscribed_to_each_other_stop_the_loop_at_the_first_return() {
    let (a, b) = ("alpha@lists-a.test", "beta@lists-b.test");
    let w = World::new("", &[("alpha", &open_list(a)), ("beta", &open_list(b))]).await;
    let store = &w.ctx.store;
    store
        .add_members(a, &crate::common::addrs(&[b, "one@members.test"]))
        .expect("add");
    store
        .add_members(b, &crate::common::addrs(&[a, "two@members.test"]))
        .expect("add");

    let out = w
        .mail(
            "poster@people.test",
            a,
            "From: <poster@people.test>\r\nTo: <alpha@lists-a.test>\r\nSubject: ring\r\nMessage-ID: <ring@people.test>",
            "Round and round.",
        )
        .await;
    assert!(out.starts_with("250 2.0.0 distributed to 2"), "{out}");

    // Alpha's copy for beta's address goes to beta, which distributes it (with its own
    // List-Id instead of alpha's) ...
    let (from, to_beta) = last_copy(&w, b);
    let out = redeliver(&w, &from, b, &to_beta).await;
    assert!(out.starts_with("250 2.0.0 distributed to 2"), "{out}");

    // ... and beta's copy for alpha's address comes back to alpha: a loop.
    let (from, to_alpha) = last_copy(&w, a);
    assert!(!to_alpha.contains("<alpha.lists-a.test>"), "{to_alpha}");
    let before = w.sink.transactions().len();
    let out = redeliver(&w, &from, a, &to_alpha).await;
    assert!(out.starts_with("250 2.0.0 discarded: "), "{out}");
    assert!(out.contains("loop"), "{out}");
    assert_eq!(w.sink.transactions().len(), before, "alpha sent it again");
    assert_eq!(w.mails_to("one@members.test").len(), 1);
    assert_eq!(w.mails_to("two@members.test").len(), 1);
    // Each list left its marker and kept the other's.
    assert!(
        to_beta.contains("X-BeenThere: alpha@lists-a.test\r\n"),
        "{to_beta}"
    );
    assert!(
        to_alpha.contains("X-BeenThere: alpha@lists-a.test\r\n"),
        "{to_alpha}"
    );
    assert!(
        to_alpha.contains("X-BeenThere: beta@lists-b.test\r\n"),
        "{to_alpha}"
    );

    // The marker is recognised whatever another program did to its case and folding.
    let rewritten = to_alpha.replace(
        "X-BeenThere: alpha@lists-a.test\r\n",
        "x-beenTHERE :\r\n\t<Alpha@Lists-A.Test> \r\n",
    );
    let out = redeliver(&w, &from, a, &rewritten).await;
    assert!(out.starts_with("250 2.0.0 discarded: "), "{out}");
    assert_eq!(w.sink.transactions().len(), before);
}

#[tokio::test]
async fn a_post_through_more_than_ten_lists_is_discarded_as_a_loop() {
    // l0 -> l1 -> ... -> l11, each list a member of the one before.
    let names: Vec<String> = (0..12).map(|i| format!("l{i}@chain.test")).collect();
    let files: Vec<(String, String)> = names
        .iter()
        .enumerate()
        .map(|(i, a)| (format!("l{i}"), open_list(a)))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let w = World::new("", &refs).await;
    for pair in names.windows(2) {
        w.ctx
            .store
            .add_members(&pair[0], &crate::common::addrs(&[&pair[1]]))
            .expect("add");
    }
    let out = w
        .mail(
            "poster@people.test",
            &names[0],
            "From: <poster@people.test>\r\nSubject: chain\r\nMessage-ID: <chain@people.test>",
            "Pass it on.",
        )
        .await;
    assert!(out.starts_with("250 2.0.0 distributed to 1"), "{out}");
    let mut markers = Vec::new();
    for (hop, list) in names.iter().enumerate().skip(1) {
        let (from, data) = last_copy(&w, list);
        markers.push(data.matches("X-BeenThere: ").count());
        let out = redeliver(&w, &from, list, &data).await;
        if hop <= 10 {
            assert!(
                out.starts_with("250 2.0.0 distributed to"),
                "hop {hop}: {out}"
            );
        } else {
            assert!(
                out.starts_with("250 2.0.0 discarded: the message has been through 11 lists"),
                "hop {hop}: {out}"
            );
            assert!(out.contains("loop"), "{out}");
        }
    }
    // One marker per list passed, none lost on the way.
    assert_eq!(markers, (1..12).collect::<Vec<_>>());
}
