//! Scripted LMTP sessions: every `tests/dialogues/*.lmtp` file is played against a real
//! `Session` over an in-memory pipe, with an in-process SMTP sink as the MTA.
//!
//! Script lines: `C: text` client line (CRLF added); `R: text` raw client bytes with `\r`,
//! `\n`, `\t`, `\\` and `\xNN` escapes, nothing added; consecutive C:/R: lines are written in
//! one piece (pipelining). `S: pattern` is one server reply line, `*` matches any run of
//! characters. `E: copies ADDR=N ...` checks what the sink received once the session ended;
//! `E: transactions N` the number of SMTP transactions. `#` starts a comment.

mod common;

use std::time::Duration;

use common::{Harness, Sink};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::watch;

fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'\\' => out.push(b'\\'),
                b'x' if i + 3 < b.len() => {
                    let hex = std::str::from_utf8(&b[i + 2..i + 4]).unwrap_or("00");
                    out.push(u8::from_str_radix(hex, 16).unwrap_or(0));
                    i += 2;
                }
                other => out.push(other),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(p) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(p);
        } else {
            match rest.find(p) {
                Some(pos) => rest = &rest[pos + p.len()..],
                None => return false,
            }
        }
    }
    true
}

async fn play(path: &std::path::Path) -> Result<(), String> {
    let script = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let sink = Sink::start().await;
    let h = Harness::new(
        &sink.addr,
        "[limits]\nmax_message_size = 4096\nmax_recipients = 3\n",
    );
    let ctx = h.context();
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let (_stop, stop_rx) = watch::channel(false);
    let server = tokio::spawn(listkeeper::lmtp::Session::new(theirs, ctx, stop_rx).run());
    let (r, mut w) = tokio::io::split(ours);
    let mut r = BufReader::new(r);
    let mut transcript = String::new();
    let mut pending: Vec<u8> = Vec::new();
    let lines: Vec<&str> = script.lines().collect();
    let mut expectations = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let fail = |t: &str, msg: String| {
            Err(format!(
                "{}:{}: {msg}\n--- transcript ---\n{t}",
                path.display(),
                n + 1
            ))
        };
        if let Some(c) = line.strip_prefix("C:") {
            let c = c.strip_prefix(' ').unwrap_or(c);
            pending.extend_from_slice(c.as_bytes());
            pending.extend_from_slice(b"\r\n");
            transcript.push_str(&format!("C: {c}\n"));
        } else if let Some(raw) = line.strip_prefix("R:") {
            let raw = raw.strip_prefix(' ').unwrap_or(raw);
            pending.extend_from_slice(&unescape(raw));
            transcript.push_str(&format!("R: {raw}\n"));
        } else if let Some(want) = line.strip_prefix("S:") {
            let want = want.strip_prefix(' ').unwrap_or(want);
            if !pending.is_empty() {
                w.write_all(&pending).await.map_err(|e| e.to_string())?;
                pending.clear();
            }
            let mut got = String::new();
            match tokio::time::timeout(Duration::from_secs(15), r.read_line(&mut got)).await {
                Ok(Ok(0)) => {
                    return fail(
                        &transcript,
                        format!("expected {want:?}, the server closed the connection"),
                    )
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return fail(&transcript, e.to_string()),
                Err(_) => {
                    return fail(
                        &transcript,
                        format!("expected {want:?}, the server said nothing"),
                    )
                }
            }
            let got = got.trim_end_matches(['\r', '\n']).to_string();
            transcript.push_str(&format!("S: {got}\n"));
            if !glob(want, &got) {
                return fail(&transcript, format!("expected {want:?}, got {got:?}"));
            }
        } else if let Some(e) = line.strip_prefix("E:") {
            expectations.push((n + 1, e.trim().to_string()));
        }
    }
    if !pending.is_empty() {
        w.write_all(&pending).await.map_err(|e| e.to_string())?;
    }
    drop(w);
    let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
    let copies = sink.copies();
    for (n, e) in expectations {
        let fail = |msg: String| {
            Err(format!(
                "{}:{n}: {msg}\n--- transcript ---\n{transcript}",
                path.display()
            ))
        };
        if let Some(list) = e.strip_prefix("copies ") {
            for pair in list.split_whitespace() {
                let (addr, count) = pair.split_once('=').unwrap_or((pair, "1"));
                let want: usize = count.parse().unwrap_or(1);
                let got = copies.get(addr).copied().unwrap_or(0);
                if got != want {
                    return fail(format!(
                        "{addr} got {got} copies, expected {want}; sink saw {copies:?}"
                    ));
                }
            }
        } else if let Some(t) = e.strip_prefix("transactions ") {
            let want: usize = t.trim().parse().unwrap_or(0);
            let got = sink.transactions().len();
            if got != want {
                return fail(format!("the sink saw {got} transactions, expected {want}"));
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn scripted_dialogues() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dialogues");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/dialogues")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "lmtp"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "expected the dialogue scripts in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for f in &files {
        if let Err(e) = play(f).await {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} dialogues failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

/// The same pipelined session written in one piece and one byte at a time gets the same
/// replies: no state in the parsers depends on how the bytes were split.
#[tokio::test]
async fn awkward_splits_give_the_same_replies() {
    let client = format!(
        "LHLO mta.test\r\nMAIL FROM:<p@outside.test> BODY=8BITMIME\r\nRCPT TO:<dev@example.org>\r\nRCPT TO:<nosuch@example.org>\r\nDATA\r\nSubject: split\r\n\r\n..leading dot\r\n\r\n.\r\n{}QUIT\r\n",
        common::post("p@outside.test", "dev-owner@example.org", "second")
    );
    let mut outputs = Vec::new();
    for chunk in [client.len(), 1, 2, 3, 7] {
        let sink = Sink::start().await;
        let h = Harness::new(&sink.addr, "");
        let (ours, theirs) = tokio::io::duplex(64);
        let (_stop, stop_rx) = watch::channel(false);
        let server =
            tokio::spawn(listkeeper::lmtp::Session::new(theirs, h.context(), stop_rx).run());
        let (mut r, mut w) = tokio::io::split(ours);
        let bytes = client.clone().into_bytes();
        let writer = tokio::spawn(async move {
            for piece in bytes.chunks(chunk) {
                w.write_all(piece).await.expect("write");
                w.flush().await.expect("flush");
                tokio::task::yield_now().await;
            }
            w
        });
        let mut out = Vec::new();
        tokio::time::timeout(
            Duration::from_secs(20),
            tokio::io::AsyncReadExt::read_to_end(&mut r, &mut out),
        )
        .await
        .expect("session ends")
        .expect("read");
        drop(writer.await);
        let _ = server.await;
        let text = String::from_utf8_lossy(&out).into_owned();
        assert!(
            text.contains("distributed to 3 member(s)"),
            "chunk {chunk}: {text}"
        );
        assert!(
            text.contains("forwarded to 1 owner(s)"),
            "chunk {chunk}: {text}"
        );
        let data = sink
            .transactions()
            .first()
            .map(|t| t.data.clone())
            .unwrap_or_default();
        assert!(
            String::from_utf8_lossy(&data).contains("\r\n.leading dot\r\n"),
            "chunk {chunk}"
        );
        outputs.push(text);
    }
    assert!(outputs.windows(2).all(|w| w[0] == w[1]), "{outputs:#?}");
}
