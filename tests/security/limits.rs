//! Resource limits: slow clients (paused time, no real waiting), long lines, huge header
//! sections, too many sessions.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{converse, Harness, World};
use crate::sockets::serve;

/// Start a session over an in-memory pipe.
fn session(
    extra: &str,
) -> (
    Harness,
    tokio::io::DuplexStream,
    tokio::task::JoinHandle<listkeeper::lmtp::session::End>,
) {
    let h = Harness::new("127.0.0.1:9", extra);
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    std::mem::forget(stop);
    let server = tokio::spawn(listkeeper::lmtp::Session::new(theirs, h.context(), stop_rx).run());
    (h, ours, server)
}

/// A client that trickles a command a byte at a time, each byte well within the idle timeout,
/// is cut off once the idle timeout has passed since its last complete command (slow-loris).
#[tokio::test(start_paused = true)]
async fn a_command_trickled_byte_by_byte_is_cut_off_with_421() {
    let (_h, mut ours, server) = session("[limits]\nidle_timeout_secs = 60\n");
    ours.write_all(b"LHLO t\r\n").await.expect("write");
    let started = tokio::time::Instant::now();
    for b in b"MAIL FROM:<a@x.test>".iter().cycle().take(200) {
        tokio::time::sleep(Duration::from_secs(20)).await;
        if ours.write_all(&[*b]).await.is_err() {
            break;
        }
    }
    let mut out = Vec::new();
    let _ = ours.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("421 4.4.2 idle for too long"), "{text}");
    assert_eq!(
        server.await.ok(),
        Some(listkeeper::lmtp::session::End::Timeout)
    );
    assert!(
        started.elapsed() <= Duration::from_secs(80),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_silent_session_is_closed_after_the_idle_timeout() {
    let (_h, mut ours, server) = session("[limits]\nidle_timeout_secs = 60\n");
    ours.write_all(b"LHLO t\r\n").await.expect("write");
    let mut out = Vec::new();
    let _ = ours.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("421 4.4.2 idle for too long"), "{text}");
    assert_eq!(
        server.await.ok(),
        Some(listkeeper::lmtp::session::End::Timeout)
    );
}

#[tokio::test]
async fn an_over_long_command_line_is_refused_and_the_session_goes_on() {
    let h = Harness::new("127.0.0.1:9", "");
    let long = format!("NOOP {}\r\n", "x".repeat(64 * 1024));
    let t = converse(
        h.context(),
        format!("LHLO t\r\n{long}NOOP\r\nQUIT\r\n").as_bytes(),
    )
    .await;
    assert!(t.contains("500 5.5.6 line too long"), "{t}");
    assert!(t.contains("250 2.0.0 ok"), "{t}");
    assert!(t.contains("221 "), "{t}");
}

/// Play `client` to a session over a pipe that carries at most `capacity` bytes at a time, so
/// that the server reads it in pieces of that size; returns what the server said.
async fn converse_in_pieces(
    ctx: std::sync::Arc<listkeeper::context::Context>,
    client: String,
    capacity: usize,
) -> String {
    let (ours, theirs) = tokio::io::duplex(capacity);
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(listkeeper::lmtp::Session::new(theirs, ctx, stop_rx).run());
    let (mut r, mut w) = tokio::io::split(ours);
    let writer = tokio::spawn(async move {
        let _ = w.write_all(client.as_bytes()).await;
        w
    });
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), r.read_to_end(&mut out)).await;
    let _ = writer.await;
    let _ = server.await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_header_section_over_the_limit_is_refused() {
    let w = World::new("[limits]\nmax_header_size = 2048\n", &[]).await;
    let contents = [
        // One header line longer than the limit.
        format!(
            "From: p@outside.test\r\nSubject: {}\r\n\r\nbody\r\n",
            "x".repeat(3000)
        ),
        // Many small fields.
        format!(
            "From: p@outside.test\r\n{}Subject: y\r\n\r\nbody\r\n",
            "X-A: 1\r\n".repeat(400)
        ),
        // No empty line at all: everything is header.
        format!("From: p@outside.test\r\n{}", "X-B: 1\r\n".repeat(400)),
    ];
    for (i, content) in contents.iter().enumerate() {
        let session = format!(
            "LHLO t\r\nMAIL FROM:<p@outside.test>\r\nRCPT TO:<dev@example.org>\r\nRCPT TO:<dev-request@example.org>\r\nDATA\r\n{content}.\r\nNOOP\r\nQUIT\r\n"
        );
        for capacity in [1 << 16, 61] {
            let t = converse_in_pieces(w.ctx.clone(), session.clone(), capacity).await;
            let refusals = t
                .matches("552 5.3.4 the header section of the message exceeds the fixed limit")
                .count();
            assert_eq!(refusals, 2, "case {i}, one per recipient: {t}");
            assert!(t.contains("250 2.0.0 ok"), "the session goes on: {t}");
        }
    }
    assert!(w.sink.transactions().is_empty(), "{:?}", w.sink.copies());

    // Just under the limit, read in small pieces (the empty line split between two reads):
    // distributed.
    let headers = format!("From: p@outside.test\r\nSubject: {}\r\n", "z".repeat(1900));
    for capacity in [7, 61, 1 << 16] {
        let t = converse_in_pieces(
            w.ctx.clone(),
            format!("LHLO t\r\nMAIL FROM:<p@outside.test>\r\nRCPT TO:<dev@example.org>\r\nDATA\r\n{headers}\r\nbody\r\n.\r\nQUIT\r\n"),
            capacity,
        )
        .await;
        assert!(t.contains("250 2.0.0 distributed to 3"), "{capacity}: {t}");
    }
}

#[tokio::test]
async fn sessions_over_the_cap_get_421() {
    let s = serve("[limits]\nmax_sessions = 1").await;
    let sock = s.dir.path().join("lmtp.sock");
    let mut first = tokio::net::UnixStream::connect(&sock)
        .await
        .expect("connect");
    let mut greeting = [0u8; 64];
    let n = first.read(&mut greeting).await.expect("read");
    assert!(greeting[..n].starts_with(b"220 "), "{:?}", &greeting[..n]);
    let mut second = tokio::net::UnixStream::connect(&sock)
        .await
        .expect("connect");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), second.read_to_end(&mut out)).await;
    let t = String::from_utf8_lossy(&out);
    assert!(t.starts_with("421 4.3.2"), "{t}");
    assert!(
        t.trim_end().ends_with(']') && t.contains(" [id "),
        "the refusal carries its id: {t}"
    );
    drop(first);
    s.shutdown().await;
}

/// A message with more MIME parts than `limits.max_mime_parts` is refused before any parser
/// sees it (10 MB of empty parts cost mail-parser about 250 MB); one at the limit is delivered.
#[tokio::test]
async fn a_message_with_too_many_mime_parts_is_refused() {
    let w = World::new("[limits]\nmax_mime_parts = 50\n", &[]).await;
    let message = |parts: usize| {
        let mut m = String::from(
            "From: p@outside.test\r\nSubject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n",
        );
        for i in 0..parts {
            m.push_str(&format!(
                "--b1\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n"
            ));
        }
        m.push_str("--b1--\r\n");
        format!(
            "LHLO t\r\nMAIL FROM:<p@outside.test>\r\nRCPT TO:<dev@example.org>\r\nRCPT TO:<dev-request@example.org>\r\nDATA\r\n{m}.\r\nNOOP\r\nQUIT\r\n"
        )
    };
    let t = converse_in_pieces(w.ctx.clone(), message(60), 1 << 16).await;
    let refusals = t
        .matches("552 5.3.4 the message has more MIME parts than the fixed limit")
        .count();
    assert_eq!(refusals, 2, "one per recipient: {t}");
    assert!(t.contains("250 2.0.0 ok"), "the session goes on: {t}");
    assert!(w.sink.transactions().is_empty(), "{:?}", w.sink.copies());

    // 49 parts and the closing delimiter: 50 delimiter lines, at the limit.
    let t = converse_in_pieces(w.ctx.clone(), message(49), 1 << 16).await;
    assert!(t.contains("250 2.0.0 distributed to 3"), "{t}");
}

/// `levels` unencoded `message/rfc822` parts, one inside the other, under a post's header.
fn nested_rfc822(levels: usize) -> String {
    let mut m = String::from("From: p@outside.test\r\nSubject: nested\r\nMIME-Version: 1.0\r\n");
    m.push_str(&"Content-Type: message/rfc822\r\n\r\n".repeat(levels));
    m.push_str("Subject: innermost\r\n\r\nhello\r\n");
    m
}

/// A session that sends `message` to every role address of the list at once.
fn to_every_role(message: &str) -> String {
    let token = "0123456789abcdef0123456789abcdef01234567";
    format!(
        "LHLO t\r\nMAIL FROM:<p@outside.test>\r\nRCPT TO:<dev@example.org>\r\nRCPT TO:<dev-request@example.org>\r\nRCPT TO:<dev-join@example.org>\r\nRCPT TO:<dev-leave@example.org>\r\nRCPT TO:<dev-confirm+{token}@example.org>\r\nRCPT TO:<dev-owner@example.org>\r\nRCPT TO:<dev-bounces@example.org>\r\nDATA\r\n{message}.\r\nNOOP\r\nQUIT\r\n"
    )
}

/// About 33 000 nested `message/rfc822` parts (1 MB) used to abort the whole process with a
/// stack overflow when the parsed message was dropped, on every role address and again on the
/// MTA's every retry. Now the nesting is measured before any parser sees the message: every
/// recipient gets `552 5.3.4`, nothing goes out and the session goes on.
#[tokio::test]
async fn deeply_nested_messages_are_refused_before_parsing() {
    let w = World::new("", &[]).await;
    let t = converse_in_pieces(
        w.ctx.clone(),
        to_every_role(&nested_rfc822(33_000)),
        1 << 16,
    )
    .await;
    let refusals = t
        .matches("552 5.3.4 the message's MIME parts are nested deeper than the fixed limit")
        .count();
    assert_eq!(refusals, 7, "one per recipient: {t}");
    assert!(t.contains("250 2.0.0 ok"), "the session goes on: {t}");
    assert!(w.sink.transactions().is_empty(), "{:?}", w.sink.copies());
}

/// The same nesting hidden in a base64 `message/rfc822` part, where no check of the outer
/// bytes can see it (mail-parser decodes and parses such parts, and copied the result
/// recursively).
#[tokio::test]
async fn nesting_hidden_in_a_base64_message_part_is_refused() {
    use base64::Engine as _;
    let w = World::new("", &[]).await;
    let inner = base64::engine::general_purpose::STANDARD.encode(nested_rfc822(33_000));
    let mut m = String::from(
        "From: p@outside.test\r\nSubject: wrapped\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"w\"\r\n\r\n--w\r\nContent-Type: text/plain\r\n\r\nsee the attachment\r\n--w\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n",
    );
    for line in inner.as_bytes().chunks(76) {
        m.push_str(std::str::from_utf8(line).expect("base64 is ascii"));
        m.push_str("\r\n");
    }
    m.push_str("--w--\r\n");
    let t = converse_in_pieces(w.ctx.clone(), to_every_role(&m), 1 << 16).await;
    let refusals = t
        .matches("552 5.3.4 the message's MIME parts are nested deeper than the fixed limit")
        .count();
    assert_eq!(refusals, 7, "one per recipient: {t}");
    assert!(w.sink.transactions().is_empty(), "{:?}", w.sink.copies());
}

/// A message nested exactly `limits.max_mime_depth` deep is still mail: it is distributed,
/// and every stage that parses it (administrivia check, decoration) copes on a test thread's
/// small stack. One level more is refused.
#[tokio::test]
async fn nesting_at_the_limit_is_delivered() {
    let w = World::new("[limits]\nmax_mime_depth = 200\n", &[]).await;
    let session = |levels| {
        format!(
            "LHLO t\r\nMAIL FROM:<p@outside.test>\r\nRCPT TO:<dev@example.org>\r\nDATA\r\n{}.\r\nQUIT\r\n",
            nested_rfc822(levels)
        )
    };
    let t = converse_in_pieces(w.ctx.clone(), session(200), 1 << 16).await;
    assert!(t.contains("250 2.0.0 distributed to 3"), "{t}");
    let t = converse_in_pieces(w.ctx.clone(), session(201), 1 << 16).await;
    assert!(
        t.contains("552 5.3.4 the message's MIME parts are nested deeper"),
        "{t}"
    );
}

/// Recipients of one transaction that name the same list and role (address extensions, case)
/// used to distribute the message once each: 22 copies per member, and memory growing with
/// every recipient. Now they are one delivery, and every one of them gets its reply.
#[tokio::test]
async fn one_transaction_to_many_spellings_of_a_list_is_one_post() {
    let w = World::new("", &[]).await;
    let mut rcpts: Vec<String> = (0..20).map(|i| format!("dev+{i}@example.org")).collect();
    rcpts.push("DEV@example.org".into());
    rcpts.push("dev@EXAMPLE.ORG".into());
    rcpts.push("dev-request@example.org".into());
    rcpts.push("DEV-REQUEST@example.org".into());
    let session = format!(
        "LHLO t\r\nMAIL FROM:<p@outside.test>\r\n{}DATA\r\n{}\r\n.\r\nQUIT\r\n",
        rcpts
            .iter()
            .map(|r| format!("RCPT TO:<{r}>\r\n"))
            .collect::<String>(),
        "From: <p@outside.test>\r\nTo: <dev@example.org>\r\nSubject: once\r\nMessage-ID: <once@test>\r\n\r\nHello list."
    );
    let t = converse_in_pieces(w.ctx.clone(), session, 1 << 16).await;
    assert_eq!(
        t.matches("250 2.0.0 distributed to 3").count(),
        22,
        "every spelling of the list gets its reply: {t}"
    );
    let after_dot = t.split("354 ").nth(1).unwrap_or_default();
    assert_eq!(
        after_dot.lines().count(),
        1 + 24 + 1,
        "one reply per recipient: {t}"
    );
    let copies = w.sink.copies();
    for member in ["a@members.test", "b@members.test", "c@members.test"] {
        assert_eq!(copies.get(member), Some(&1), "{copies:?}");
    }
    // The two spellings of the request address were one request: one answer.
    assert_eq!(copies.get("p@outside.test"), Some(&1), "{copies:?}");
}

/// After a line over the limit the rest of that line is discarded, and the client gets
/// exactly one reply for it: a pipelining client stays in step. (The rest of the line used
/// to be parsed as new commands: a 20 000-byte `NOOP` followed by `NOOP`, `RSET`, `NOOP` got
/// six replies.)
#[tokio::test]
async fn an_over_long_line_gets_exactly_one_reply_and_pipelining_stays_in_step() {
    let h = Harness::new("127.0.0.1:9", "");
    for len in [8200, 20_000, 70_000] {
        let long = format!("NOOP {}\r\n", "x".repeat(len));
        let t = converse(
            h.context(),
            format!("LHLO t\r\n{long}NOOP\r\nRSET\r\nNOOP\r\nQUIT\r\n").as_bytes(),
        )
        .await;
        // A refusal carries the transaction's correlation id: checked, then left out.
        let replies: Vec<&str> = t
            .lines()
            .filter(|l| {
                !l.starts_with("220 ") && !l.starts_with("250-") && !l.starts_with("250 SIZE")
            })
            .map(|l| match l.rsplit_once(" [id ") {
                Some((text, id)) if l.starts_with('5') && id.len() == 9 => text,
                _ => l,
            })
            .collect();
        assert_eq!(
            replies,
            [
                "500 5.5.6 line too long",
                "250 2.0.0 ok",
                "250 2.0.0 reset",
                "250 2.0.0 ok",
                "221 2.0.0 bye",
            ],
            "a {len}-byte line: {t}"
        );
    }
}
