//! Scripted LMTP sessions, over an in-memory pipe: every `tests/dialogues/*.lmtp` file is
//! played against a real `Session` with the server's own pipeline, a store and an in-process
//! SMTP sink as the MTA; every `tests/dialogues/fake/*.lmtp` against a `Session` whose
//! backend is a fake with no store and no sink, answering each role as the script says.
//!
//! Script lines: `C: text` client line (CRLF added); `R: text` raw client bytes with `\r`,
//! `\n`, `\t`, `\\` and `\xNN` escapes, nothing added; consecutive C:/R: lines are written in
//! one piece (pipelining). `S: pattern` is one server reply line, `*` matches any run of
//! characters; a reply that is not positive must end with its correlation id (` [id` and 8
//! hex digits `]`), which is checked and removed before matching. `#` starts a comment.
//!
//! Set-up lines, read before the session starts, wherever they stand:
//! - `L: NAME TOML`: the list file `NAME.toml` (escapes as in `R:`), beside dev, team, broken;
//! - `M: LIST ADDR...`: members added to LIST;
//! - `K: BEHAVIOUR`: how the sink answers: `fail_all_data REPLY`, `fail_data_at N REPLY`,
//!   `stall_data_at N`, `close_in_data_at N`, `rcpt ADDR REPLY`, `no_pipelining`;
//! - fake backend only, `O: ROLE RESULT`: what the backend answers for ROLE (`post`,
//!   `request`, `join`, `leave`, `confirm`, `owner`, `bounces`, `unsubscribe`): `distributed N`,
//!   `held REASONS`, `discarded REASON`, `handled`, `forwarded N`, or `error KIND` with KIND
//!   one of `store`, `unreachable`, `connection`, `deferred`, `refused`, `rejected`, `full`,
//!   `shutdown` (anything unset: `handled`).
//!
//! Checks after the session: `E: copies ADDR=N ...` what the sink received; `E: transactions
//! N` the number of SMTP transactions; fake backend only, `E: delivered ROLE=N ...` how many
//! times each role's handler was called.

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

/// A reply line with its correlation id checked and removed: `Err` when a reply that is not
/// positive has none.
fn without_id(line: &str) -> Result<String, String> {
    let positive = matches!(line.as_bytes().first(), Some(b'2' | b'3'));
    match line.rsplit_once(" [id ") {
        Some((text, id))
            if id.len() == 9
                && id.ends_with(']')
                && id[..8].bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            if positive {
                Err(format!("a positive reply carries an id: {line:?}"))
            } else {
                Ok(text.to_string())
            }
        }
        _ if positive => Ok(line.to_string()),
        _ => Err(format!(
            "a reply that is not positive has no correlation id: {line:?}"
        )),
    }
}

/// The set-up lines of a script: list files, members, sink behaviour, fake outcomes.
#[derive(Default)]
struct Setup {
    lists: Vec<(String, String)>,
    members: Vec<(String, Vec<String>)>,
    sink: Vec<String>,
    outcomes: Vec<(String, String)>,
}

fn setup(script: &str) -> Setup {
    let mut s = Setup::default();
    for line in script.lines() {
        let arg = |p: &str| line.strip_prefix(p).map(str::trim);
        if let Some(rest) = arg("L:") {
            let (name, toml) = rest.split_once(' ').unwrap_or((rest, ""));
            let text = String::from_utf8(unescape(toml)).expect("list file text");
            s.lists.push((name.to_string(), text));
        } else if let Some(rest) = arg("M:") {
            let mut words = rest.split_whitespace().map(str::to_string);
            let list = words.next().unwrap_or_default();
            s.members.push((list, words.collect()));
        } else if let Some(rest) = arg("K:") {
            s.sink.push(rest.to_string());
        } else if let Some(rest) = arg("O:") {
            let (role, result) = rest.split_once(' ').unwrap_or((rest, "handled"));
            s.outcomes.push((role.to_string(), result.to_string()));
        }
    }
    s
}

/// Apply `K:` lines to the sink's behaviour.
fn behave(sink: &Sink, lines: &[String]) {
    for line in lines {
        let (what, rest) = line.split_once(' ').unwrap_or((line, ""));
        let number = |t: &str| t.parse::<usize>().expect("a number in a K: line");
        sink.set(|b| match what {
            "fail_all_data" => b.fail_all_data = Some(rest.to_string()),
            "fail_data_at" => {
                let (n, reply) = rest.split_once(' ').unwrap_or((rest, "451 4.3.0 later"));
                b.fail_data_at = Some((number(n), reply.to_string()));
            }
            "stall_data_at" => b.stall_data_at = Some(number(rest)),
            "close_in_data_at" => b.close_in_data_at = Some(number(rest)),
            "rcpt" => {
                let (addr, reply) = rest.split_once(' ').unwrap_or((rest, "550 5.1.1 no"));
                b.rcpt_replies.push((addr.to_string(), reply.to_string()));
            }
            "no_pipelining" => b.no_pipelining = true,
            other => panic!("unknown sink behaviour {other:?}"),
        });
    }
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
    let setup = setup(&script);
    let sink = Sink::start().await;
    behave(&sink, &setup.sink);
    let h = Harness::new(
        &sink.addr,
        "[limits]\nmax_message_size = 4096\nmax_recipients = 3\n",
    );
    for (name, text) in &setup.lists {
        std::fs::write(h.path().join(format!("lists.d/{name}.toml")), text).expect("list file");
    }
    if !setup.members.is_empty() {
        let store = h.store();
        for (list, members) in &setup.members {
            let members: Vec<&str> = members.iter().map(String::as_str).collect();
            store
                .add_members(list, &common::addrs(&members))
                .expect("add members");
        }
    }
    let ctx = h.context();
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let (_stop, stop_rx) = watch::channel(false);
    let server = tokio::spawn(listkeeper::lmtp::Session::new(theirs, ctx, stop_rx).run());
    let (transcript, expectations) = converse_script(path, &script, ours).await?;
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
        } else {
            return fail(format!("unknown check {e:?}"));
        }
    }
    Ok(())
}

/// Play the client side of `script` against the server at the other end of `ours`; returns
/// the transcript and the `E:` lines (with their line numbers) for the caller to check.
async fn converse_script(
    path: &std::path::Path,
    script: &str,
    ours: tokio::io::DuplexStream,
) -> Result<(String, Vec<(usize, String)>), String> {
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
            let got = match without_id(&got) {
                Ok(g) => g,
                Err(e) => return fail(&transcript, e),
            };
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
    // Whatever the server still says (until it closes) is part of the transcript.
    let mut rest = String::new();
    let _ = tokio::time::timeout(
        Duration::from_secs(15),
        tokio::io::AsyncReadExt::read_to_string(&mut r, &mut rest),
    )
    .await;
    Ok((transcript, expectations))
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
        let text: String = String::from_utf8_lossy(&out)
            .lines()
            .map(|l| without_id(l).unwrap_or_else(|e| panic!("chunk {chunk}: {e}")) + "\r\n")
            .collect();
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

/// A backend with no store and no MTA: each role answers as the script's `O:` lines say, and
/// every call is counted.
struct Fake {
    config: std::sync::Arc<listkeeper::config::Config>,
    registry: std::sync::Arc<listkeeper::registry::Registry>,
    outcomes: Vec<(String, String)>,
    calls: std::sync::Mutex<std::collections::BTreeMap<String, usize>>,
}

impl Fake {
    fn answer(&self, role: &str) -> Result<Outcome, PostError> {
        let result = self
            .outcomes
            .iter()
            .rev()
            .find(|(r, _)| r == role)
            .map_or("handled", |(_, o)| o.as_str());
        let (what, rest) = result.split_once(' ').unwrap_or((result, ""));
        let mta = |code| MtaReply {
            stage: "end of data",
            code,
            esc: None,
            text: "from the fake".into(),
        };
        match what {
            "distributed" => Ok(Outcome::Distributed {
                list: "dev@example.org".into(),
                copies: rest.parse().unwrap_or(0),
            }),
            "held" => Ok(Outcome::Held {
                reasons: rest.into(),
            }),
            "discarded" => Ok(Outcome::Discarded {
                reason: rest.into(),
            }),
            "forwarded" => Ok(Outcome::Forwarded {
                list: "dev@example.org".into(),
                owners: rest.parse().unwrap_or(0),
            }),
            "handled" => Ok(Outcome::RequestHandled),
            "error" => Err(match rest {
                "store" => PostError::Store("disk full".into()),
                "unreachable" => PostError::Mta(TxError::Unreachable("refused".into())),
                "connection" => PostError::Mta(TxError::Connection {
                    reason: "reset".into(),
                    data_sent: true,
                }),
                "deferred" => PostError::Deferred(mta(451)),
                "refused" => PostError::Mta(TxError::Replied(mta(554))),
                "rejected" => PostError::Rejected("not a member".into()),
                "full" => PostError::QueueFull("dev@example.org".into()),
                "shutdown" => PostError::Shutdown,
                other => panic!("unknown error kind {other:?}"),
            }),
            other => panic!("unknown outcome {other:?}"),
        }
    }
}

impl Backend for Fake {
    fn config(&self) -> std::sync::Arc<listkeeper::config::Config> {
        self.config.clone()
    }

    fn registry(&self) -> std::sync::Arc<listkeeper::registry::Registry> {
        self.registry.clone()
    }

    async fn deliver(
        self: std::sync::Arc<Self>,
        _delivery: std::sync::Arc<listkeeper::context::Delivery>,
        _list: std::sync::Arc<listkeeper::config::ListConfig>,
        role: listkeeper::route::Role,
    ) -> Result<Outcome, PostError> {
        let name = role.name().to_string();
        *self
            .calls
            .lock()
            .expect("calls")
            .entry(name.clone())
            .or_default() += 1;
        self.answer(&name)
    }
}

use listkeeper::lmtp::session::Backend;
use listkeeper::outcome::{Outcome, PostError};
use listkeeper::reinject::{MtaReply, TxError};

async fn play_fake(path: &std::path::Path) -> Result<(), String> {
    let script = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let setup = setup(&script);
    let dir = tempfile::tempdir().expect("tempdir");
    let lists = dir.path().join("lists.d");
    std::fs::create_dir_all(&lists).expect("mkdir");
    for (name, text) in [
        ("dev", common::DEV_LIST),
        ("team", common::TEAM_LIST),
        ("broken", common::BROKEN_LIST),
    ] {
        std::fs::write(lists.join(format!("{name}.toml")), text).expect("write");
    }
    for (name, text) in &setup.lists {
        std::fs::write(lists.join(format!("{name}.toml")), text).expect("list file");
    }
    let text = "[server]\nlmtp_listen = [\"unix:lmtp.sock\"]\ndata_dir = \"data\"\nlists_dir = \"lists.d\"\n[reinject]\nhelo_name = \"lk.test\"\n[limits]\nmax_message_size = 4096\nmax_recipients = 3\n";
    let config_path = dir.path().join("listkeeper.toml");
    let config = listkeeper::config::Config::parse(&config_path, text).expect("config");
    let fake = std::sync::Arc::new(Fake {
        registry: std::sync::Arc::new(listkeeper::registry::Registry::load(&lists, '+', None)),
        config: std::sync::Arc::new(config),
        outcomes: setup.outcomes,
        calls: Default::default(),
    });
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let (_stop, stop_rx) = watch::channel(false);
    let server = tokio::spawn(listkeeper::lmtp::Session::new(theirs, fake.clone(), stop_rx).run());
    let (transcript, expectations) = converse_script(path, &script, ours).await?;
    let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
    let calls = fake.calls.lock().expect("calls").clone();
    assert!(!dir.path().join("data").exists(), "the fake needs no store");
    for (n, e) in expectations {
        let Some(list) = e.strip_prefix("delivered ") else {
            return Err(format!("{}:{n}: unknown check {e:?}", path.display()));
        };
        for pair in list.split_whitespace() {
            let (role, count) = pair.split_once('=').unwrap_or((pair, "1"));
            let want: usize = count.parse().unwrap_or(1);
            let got = calls.get(role).copied().unwrap_or(0);
            if got != want {
                return Err(format!(
                    "{}:{n}: {role} was delivered {got} times, expected {want}; calls {calls:?}\n--- transcript ---\n{transcript}",
                    path.display()
                ));
            }
        }
    }
    Ok(())
}

/// The session's own behaviour, with a fake behind it: every outcome and error of a delivery
/// becomes the right reply, one per recipient, in order; no store, no MTA.
#[tokio::test]
async fn dialogues_against_a_fake_backend() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dialogues/fake");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/dialogues/fake")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "lmtp"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "expected scripts in {}", dir.display());
    let mut failures = Vec::new();
    for f in &files {
        if let Err(e) = play_fake(f).await {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
