//! The acknowledgement rule (invariant 1) and the fan-out journal (invariant 2), against an
//! in-process SMTP sink that misbehaves on purpose.

mod common;

use common::{addrs, converse, post, Harness, Sink};

const LHLO: &str = "LHLO mta.test\r\n";

/// The reply lines after the DATA's 354, i.e. the per-recipient outcomes.
fn outcomes(transcript: &str) -> Vec<String> {
    let lines: Vec<&str> = transcript.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("354"))
        .map_or(lines.len(), |p| p + 1);
    lines[start..]
        .iter()
        .filter(|l| !l.starts_with("221"))
        .map(|l| l.to_string())
        .collect()
}

#[tokio::test]
async fn a_post_is_acknowledged_only_after_the_mta_accepted_it() {
    let sink = Sink::start().await;
    let h = Harness::new(&sink.addr, "");
    let t = converse(
        h.context(),
        format!(
            "{LHLO}{}QUIT\r\n",
            post("p@outside.test", "dev@example.org", "ok")
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(
        outcomes(&t),
        ["250 2.0.0 distributed to 3 member(s) of dev@example.org"],
        "{t}"
    );
    let tx = sink.transactions();
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0].from, "dev-bounces@example.org");
    assert_eq!(
        tx[0].rcpts,
        ["a@members.test", "b@members.test", "c@members.test"]
    );
    let data = String::from_utf8_lossy(&tx[0].data);
    assert!(
        data.contains("List-Id: \"Developers\" <dev.example.org>\r\n"),
        "{data}"
    );
    assert!(data.contains("Subject: [dev] ok\r\n"), "{data}");
    assert!(
        data.contains("List-Post: <mailto:dev@example.org>\r\n"),
        "{data}"
    );
    assert!(
        data.contains("List-Unsubscribe: <mailto:dev-leave@example.org>\r\n"),
        "{data}"
    );
    assert!(data.contains("Precedence: list\r\n"), "{data}");
    assert!(data.contains("Developers list: dev@example.org"), "{data}");
}

#[tokio::test]
async fn mta_451_at_end_of_data_gives_451_and_nothing_is_lost() {
    let sink = Sink::start().await;
    sink.set(|b| b.fail_all_data = Some("451 4.3.0 queue file write error".into()));
    let h = Harness::new(&sink.addr, "");
    let t = converse(
        h.context(),
        format!(
            "{LHLO}{}QUIT\r\n",
            post("p@outside.test", "dev@example.org", "x")
        )
        .as_bytes(),
    )
    .await;
    let o = outcomes(&t);
    assert_eq!(o.len(), 1, "{t}");
    assert!(o[0].starts_with("451 4.4.0 "), "{t}");
    assert!(sink.copies().is_empty());
}

#[tokio::test]
async fn mta_closing_mid_data_gives_451() {
    let sink = Sink::start().await;
    sink.set(|b| b.close_in_data_at = Some(0));
    let h = Harness::new(&sink.addr, "");
    let t = converse(
        h.context(),
        format!(
            "{LHLO}{}QUIT\r\n",
            post("p@outside.test", "dev@example.org", "x")
        )
        .as_bytes(),
    )
    .await;
    let o = outcomes(&t);
    assert!(o[0].starts_with("451 4.4.2 "), "{t}");
}

/// An MTA that takes the message and never answers the final dot: listkeeper gives up after
/// `reinject.timeout_secs`, answers 451 (the MTA keeps the post), drops that connection rather
/// than reusing it, and the retry goes through a fresh one.
#[tokio::test]
async fn an_mta_that_never_answers_the_dot_times_out_with_451_and_the_retry_delivers() {
    let sink = Sink::start().await;
    sink.set(|b| b.stall_data_at = Some(0));
    let h = Harness::new(&sink.addr, "timeout_secs = 1\nconnections = 1");
    let ctx = h.context();
    let session = format!(
        "{LHLO}{}QUIT\r\n",
        post("p@outside.test", "dev@example.org", "x")
    );
    let started = std::time::Instant::now();
    let t = converse(ctx.clone(), session.as_bytes()).await;
    let waited = started.elapsed();
    assert!(outcomes(&t)[0].starts_with("451 4.4.2 "), "{t}");
    assert!(
        waited >= std::time::Duration::from_millis(900) && waited.as_secs() < 10,
        "{waited:?}"
    );
    assert!(sink.copies().is_empty(), "{:?}", sink.copies());

    let t = converse(ctx, session.as_bytes()).await;
    assert!(
        outcomes(&t)[0].starts_with("250 2.0.0 distributed to 3"),
        "{t}"
    );
    assert_eq!(*sink.connections.lock().expect("lock"), 2);
    for m in ["a@members.test", "b@members.test", "c@members.test"] {
        assert_eq!(sink.copies().get(m), Some(&1), "{m}");
    }
}

#[tokio::test]
async fn mta_down_gives_451_quickly() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let h = Harness::new(&port.to_string(), "");
    let started = std::time::Instant::now();
    let t = converse(
        h.context(),
        format!(
            "{LHLO}{}QUIT\r\n",
            post("p@outside.test", "dev@example.org", "x")
        )
        .as_bytes(),
    )
    .await;
    assert!(outcomes(&t)[0].starts_with("451 4.4.1 "), "{t}");
    assert!(started.elapsed().as_secs() < 5);
}

#[tokio::test]
async fn a_member_refused_with_5xx_does_not_fail_the_post() {
    let sink = Sink::start().await;
    sink.set(|b| b.rcpt_replies = vec![("b@members.test".into(), "550 5.1.1 no such user".into())]);
    let h = Harness::new(&sink.addr, "");
    let t = converse(
        h.context(),
        format!(
            "{LHLO}{}QUIT\r\n",
            post("p@outside.test", "dev@example.org", "x")
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(
        outcomes(&t),
        ["250 2.0.0 distributed to 2 member(s) of dev@example.org"],
        "{t}"
    );
    let copies = sink.copies();
    assert_eq!(copies.get("a@members.test"), Some(&1));
    assert_eq!(copies.get("b@members.test"), None);
}

#[tokio::test]
async fn a_deferred_member_gets_the_retry_and_nobody_else_does() {
    let sink = Sink::start().await;
    sink.set(|b| b.rcpt_replies = vec![("b@members.test".into(), "450 4.2.0 mailbox busy".into())]);
    let h = Harness::new(&sink.addr, "");
    let ctx = h.context();
    let msg = format!(
        "{LHLO}{}QUIT\r\n",
        post("p@outside.test", "dev@example.org", "x")
    );
    let t = converse(ctx.clone(), msg.as_bytes()).await;
    assert!(outcomes(&t)[0].starts_with("451 4.4.0 "), "{t}");
    sink.set(|b| b.rcpt_replies.clear());
    // The MTA retries the very same message.
    let t = converse(ctx, msg.as_bytes()).await;
    assert_eq!(
        outcomes(&t),
        ["250 2.0.0 distributed to 1 member(s) of dev@example.org"],
        "{t}"
    );
    let copies = sink.copies();
    for m in ["a@members.test", "b@members.test", "c@members.test"] {
        assert_eq!(copies.get(m), Some(&1), "{m}: {copies:?}");
    }
}

#[tokio::test]
async fn journal_skips_accepted_batches_across_a_restart() {
    let sink = Sink::start().await;
    // Batches of 2 over one connection: 3 transactions for 5 members; the third fails.
    let h = Harness::new(
        &sink.addr,
        "connections = 1\nmax_recipients_per_transaction = 2\n",
    );
    {
        let store = h.store();
        store
            .add_members(
                "dev@example.org",
                &addrs(&["d@members.test", "e@members.test"]),
            )
            .expect("add");
    }
    sink.set(|b| b.fail_data_at = Some((2, "451 4.3.0 try again".into())));
    let msg = format!(
        "{LHLO}{}QUIT\r\n",
        post("p@outside.test", "dev@example.org", "journal")
    );
    {
        let ctx = h.context();
        let t = converse(ctx.clone(), msg.as_bytes()).await;
        assert!(outcomes(&t)[0].starts_with("451 "), "{t}");
        // The listkeeper process goes away: its store handle with it.
        drop(ctx);
    }
    assert_eq!(sink.copies().len(), 4, "{:?}", sink.copies());
    // Restart (a new context on the same data dir), the MTA retries, the sink works again.
    let ctx = wait_for_store(&h).await;
    let t = converse(ctx, msg.as_bytes()).await;
    assert_eq!(
        outcomes(&t),
        ["250 2.0.0 distributed to 1 member(s) of dev@example.org"],
        "{t}"
    );
    let copies = sink.copies();
    assert_eq!(copies.len(), 5);
    assert!(copies.values().all(|&n| n == 1), "{copies:?}");
}

/// The store is released when the last task of the old context finishes.
async fn wait_for_store(h: &Harness) -> std::sync::Arc<listkeeper::context::Context> {
    for _ in 0..100 {
        if let Ok(store) = listkeeper::store::Store::open(&h.data_dir(), 1 << 20) {
            drop(store);
            return h.context();
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the store was not released");
}

#[tokio::test]
async fn a_single_batch_post_writes_no_journal() {
    let sink = Sink::start().await;
    let h = Harness::new(&sink.addr, "");
    let msg = format!(
        "{LHLO}{}QUIT\r\n",
        post("p@outside.test", "dev@example.org", "once")
    );
    let ctx = h.context();
    converse(ctx.clone(), msg.as_bytes()).await;
    // A second delivery of the same message (as if the LMTP 250 had been lost) goes out again:
    // a one-batch post has no journal entry to skip by. That is the documented trade-off: its
    // crash window (MTA's 250 -> our 250) is shorter than a journal fsync would make it.
    converse(ctx, msg.as_bytes()).await;
    assert_eq!(sink.copies().get("a@members.test"), Some(&2));
}

#[tokio::test]
async fn batches_of_one_post_use_all_connections() {
    let sink = Sink::start().await;
    let h = Harness::new(
        &sink.addr,
        "connections = 3\nmax_recipients_per_transaction = 1\n",
    );
    let t = converse(
        h.context(),
        format!(
            "{LHLO}{}QUIT\r\n",
            post("p@outside.test", "dev@example.org", "par")
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(
        outcomes(&t),
        ["250 2.0.0 distributed to 3 member(s) of dev@example.org"],
        "{t}"
    );
    assert_eq!(sink.transactions().len(), 3);
    assert_eq!(*sink.connections.lock().expect("lock"), 3);
}

#[tokio::test]
async fn works_without_pipelining_and_reuses_connections() {
    let sink = Sink::start().await;
    sink.set(|b| b.no_pipelining = true);
    let h = Harness::new(&sink.addr, "connections = 1\n");
    let ctx = h.context();
    for i in 0..3 {
        let t = converse(
            ctx.clone(),
            format!(
                "{LHLO}{}QUIT\r\n",
                post("p@outside.test", "dev@example.org", &format!("np{i}"))
            )
            .as_bytes(),
        )
        .await;
        assert_eq!(outcomes(&t).len(), 1, "{t}");
        assert!(outcomes(&t)[0].starts_with("250 "), "{t}");
    }
    assert_eq!(sink.transactions().len(), 3);
    assert_eq!(*sink.connections.lock().expect("lock"), 1);
}

/// A sender that trickles its message is cut off when the DATA phase runs out of time, even
/// though each byte arrives well within the idle timeout (slow-loris).
#[tokio::test(start_paused = true)]
async fn a_trickled_message_is_cut_off_with_421() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = Harness::new(
        "127.0.0.1:9",
        "[limits]\ndata_timeout_secs = 5\nidle_timeout_secs = 300\n",
    );
    let (mut ours, theirs) = tokio::io::duplex(4096);
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(listkeeper::lmtp::Session::new(theirs, h.context(), stop_rx).run());
    ours.write_all(b"LHLO t\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<dev@example.org>\r\nDATA\r\n")
        .await
        .expect("write");
    for _ in 0..10 {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        if ours.write_all(b"x").await.is_err() {
            break;
        }
    }
    let mut out = Vec::new();
    let _ = ours.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("421 4.4.2 the message is arriving too slowly"),
        "{text}"
    );
    assert_eq!(
        server.await.ok(),
        Some(listkeeper::lmtp::session::End::Timeout)
    );
}

/// A 100 000-member post keeps at most `connections` transactions in flight, whatever the list
/// size, and every member gets exactly one copy.
#[tokio::test]
async fn a_large_fan_out_keeps_at_most_connections_transactions_in_flight() {
    let sink = Sink::start().await;
    let h = Harness::new(
        &sink.addr,
        "connections = 3\nmax_recipients_per_transaction = 1000\n",
    );
    {
        let store = h.store();
        let members: Vec<_> = (0..100_000)
            .map(|i| {
                listkeeper::address::Address::parse(&format!("m{i}@big.test")).expect("address")
            })
            .collect();
        store.add_members("dev@example.org", &members).expect("add");
    }
    let t = converse(
        h.context(),
        format!(
            "{LHLO}{}QUIT\r\n",
            post("p@outside.test", "dev@example.org", "big")
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(
        outcomes(&t),
        ["250 2.0.0 distributed to 100003 member(s) of dev@example.org"],
        "{t}"
    );
    let (_, max_open) = *sink.open_tx.lock().expect("lock");
    assert!(max_open <= 3, "{max_open} transactions were open at once");
    assert_eq!(sink.transactions().len(), 101);
    let copies = sink.copies();
    assert_eq!(copies.len(), 100_003);
    assert!(copies.values().all(|&n| n == 1));
}
