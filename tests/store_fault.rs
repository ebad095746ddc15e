//! A store that cannot write (full disk, simulated with the store's fault hook, which fails
//! the file's writes under redb with ENOSPC): everything that needs a write is answered 4xx,
//! nothing is acknowledged that was not stored, and once space is back all goes through without
//! a restart (the store reopens itself). Its own test binary: the hook is process-wide.

mod common;

use common::World;

#[tokio::test]
async fn no_acknowledgement_without_a_durable_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let full = dir.path().join("disk-full");
    std::env::set_var("LISTKEEPER_FAULT_STORE_FULL", &full);
    let club = "address = \"club@example.org\"\nowners = [\"boss@owners.test\"]\n[posting]\npolicy = \"members\"\n";
    let w = World::new(
        "max_recipients_per_transaction = 2\nconnections = 1\n",
        &[("club", club)],
    )
    .await;
    std::fs::write(&full, b"").expect("arm");

    // A held post, a join request and a multi-batch post (journal) all need a write.
    let held = w
        .mail(
            "s@outside.test",
            "club@example.org",
            "From: s@outside.test\r\nSubject: hold me\r\nMessage-ID: <f1@t>",
            "x",
        )
        .await;
    assert!(held.starts_with("451 4.3.0"), "{held}");
    let join = w
        .mail(
            "j@outside.test",
            "dev-join@example.org",
            "From: j@outside.test\r\nSubject: join",
            "",
        )
        .await;
    assert!(join.starts_with("451 4.3.0"), "{join}");
    let post = w
        .mail(
            "p@outside.test",
            "dev@example.org",
            "From: p@outside.test\r\nSubject: big\r\nMessage-ID: <f2@t>",
            "x",
        )
        .await;
    assert!(post.starts_with("451 4.3.0"), "{post}");
    assert!(w.sink.copies().is_empty(), "{:?}", w.sink.copies());

    // Space is back; the MTA retries the same messages (after its back-off: a store that
    // could not be reopened is tried again after a second).
    std::fs::remove_file(&full).expect("disarm");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(w
        .ctx
        .store
        .held_list("club@example.org")
        .expect("read after the store reopened")
        .is_empty());
    let held = w
        .mail(
            "s@outside.test",
            "club@example.org",
            "From: s@outside.test\r\nSubject: hold me\r\nMessage-ID: <f1@t>",
            "x",
        )
        .await;
    assert!(held.starts_with("250 2.0.0 held"), "{held}");
    let join = w
        .mail(
            "j@outside.test",
            "dev-join@example.org",
            "From: j@outside.test\r\nSubject: join",
            "",
        )
        .await;
    assert!(join.starts_with("250 "), "{join}");
    let post = w
        .mail(
            "p@outside.test",
            "dev@example.org",
            "From: p@outside.test\r\nSubject: big\r\nMessage-ID: <f2@t>",
            "x",
        )
        .await;
    assert!(post.contains("distributed to 3 member(s)"), "{post}");
    // Nothing is lost and nothing repeated: a multi-batch post checks that its journal can be
    // written before it sends anything, so the fault cost a 451 and no copies.
    let copies = w.sink.copies();
    for m in ["a@members.test", "b@members.test", "c@members.test"] {
        assert_eq!(copies.get(m), Some(&1), "{m}: {copies:?}");
    }
}
