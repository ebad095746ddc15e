//! Nothing from a message reaches a log line or the operator's terminal as it is: the running
//! server's log and the CLI's listings escape control characters (CR, LF, ESC, C1, ...), so a
//! hostile Message-ID or subject can neither forge a line nor send escape sequences.

use std::path::Path;
use std::process::{Command, Stdio};

use listkeeper::store::{now_secs, Held, HeldState, Pending, PendingKind, Store};

use crate::common::{addrs, dialogue, stop_server, wait_until, Sink};

const BIN: &str = env!("CARGO_BIN_EXE_listkeeper");

const LIST: &str =
    "address = \"dev@example.org\"\nowners = [\"boss@owners.test\"]\n[posting]\npolicy = \"open\"\n";

/// A config dir with the open list dev (one member) re-injecting into `target`.
fn setup(dir: &Path, target: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("lists.d")).expect("mkdir");
    std::fs::write(dir.join("lists.d/dev.toml"), LIST).expect("write");
    let config = dir.join("listkeeper.toml");
    std::fs::write(
        &config,
        format!("[server]\nlmtp_listen = [\"unix:lmtp.sock\"]\ndata_dir = \"data\"\nlists_dir = \"lists.d\"\n[reinject]\ntarget = \"{target}\"\n"),
    )
    .expect("write");
    let store = Store::open(&dir.join("data"), 1 << 20).expect("store");
    store
        .add_members("dev@example.org", &addrs(&["a@members.test"]))
        .expect("add");
    config
}

/// No raw control character but the line ends, and every line starts as the subscriber
/// starts lines (a timestamp of this year or later).
fn assert_clean_log(log: &str) {
    for bad in ['\r', '\u{1b}', '\u{7}', '\u{85}', '\u{9b}'] {
        assert!(!log.contains(bad), "{bad:?} in the log:\n{log:?}");
    }
    for line in log.lines() {
        assert!(
            line.len() > 20 && line.starts_with("20") && line.as_bytes()[4] == b'-',
            "a line that the subscriber did not start: {line:?}\nin:\n{log}"
        );
        assert!(!line.starts_with("2001-"), "a forged line: {line:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_message_id_cannot_forge_or_colour_a_log_line() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = setup(dir.path(), &sink.addr);
    let log_path = dir.path().join("serve.log");
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDS")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).expect("log"))
        .spawn()
        .expect("spawn listkeeper");
    let sock = dir.path().join("lmtp.sock");
    assert!(wait_until(|| sock.exists()), "the server did not come up");

    // The folded Message-ID unfolds to CR LF SP inside the value; ESC, BEL and a C1 CSI are
    // raw header bytes. The forged line claims another post was distributed.
    let forged = "2001-01-01T00:00:00.000000Z  INFO listkeeper::pipeline: post session=9 list=dev@example.org message_id=forged@x outcome=\"distributed\"";
    let post = format!(
        "LHLO mta.test\r\nMAIL FROM:<p@people.test>\r\nRCPT TO:<dev@example.org>\r\nDATA\r\n\
         From: <p@people.test>\r\nSubject: log \x1b[31mred\r\n\
         Message-ID: <evil\x1b[2K\x1b[1G\u{7}\u{9b}0m@people.test\r\n {forged}>\r\n\r\nHello.\r\n.\r\nQUIT\r\n"
    );
    let stream = tokio::net::UnixStream::connect(&sock)
        .await
        .expect("connect");
    let said = dialogue(stream, &post).await;
    let status = stop_server(child);
    assert!(status.success(), "{status:?}");
    let log = std::fs::read_to_string(&log_path).expect("log");
    assert!(said.contains("250 2.0.0 distributed to 1"), "{said}\n{log}");

    assert_clean_log(&log);
    let post_lines: Vec<&str> = log.lines().filter(|l| l.contains("outcome=")).collect();
    assert_eq!(post_lines.len(), 1, "{log}");
    let line = post_lines[0];
    assert!(line.contains("outcome=\"distributed\""), "{line}");
    assert!(
        line.contains("\\x1b[2K\\x1b[1G\\x07\\u{9b}0m@people.test\\r\\n 2001-01-01T00:00:00"),
        "the Message-ID is not in the line, escaped: {line}"
    );
}

#[test]
fn cli_listings_escape_what_posts_and_requests_put_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = setup(dir.path(), "127.0.0.1:9");
    {
        let store = Store::open(&dir.path().join("data"), 1 << 20).expect("store");
        let now = now_secs();
        let held = Held {
            token: "0123456789abcdef0123456789abcdef01234567".into(),
            list: "dev@example.org".into(),
            sender: "p@people.test\u{1b}[8m".into(),
            received: now,
            expires: now + 3600,
            reasons: vec!["held\r\u{1b}[1Afake-token  held  0h ago  from boss@owners.test".into()],
            subject: "hi\u{1b}]0;owned\u{7}\n    why: nothing\u{85}".into(),
            message_id: "h@x".into(),
            state: HeldState::Held,
        };
        store
            .held_put(&held, b"key", b"Subject: x\r\n\r\nbody\r\n")
            .expect("hold");
        store
            .pending_create(&Pending {
                token: "89abcdef0123456789abcdef0123456789abcdef".into(),
                kind: PendingKind::Join,
                list: "dev@example.org".into(),
                address: "j@people.test\u{1b}[2J\r\nforged".into(),
                created: now,
                expires: now + 3600,
                used: false,
            })
            .expect("pending");
    }
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .expect("run listkeeper");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).expect("UTF-8")
    };

    let held = run(&["held", "list", "dev"]);
    assert!(
        !held.contains(['\u{1b}', '\r', '\u{7}', '\u{85}']),
        "{held:?}"
    );
    assert_eq!(held.lines().count(), 4, "the header and one post: {held}");
    assert!(held.contains("  p@people.test\\x1b[8m\n"), "{held}");
    assert!(
        held.contains("    subject: hi\\x1b]0;owned\\x07\\n    why: nothing\\u{85}\n"),
        "{held}"
    );
    assert!(
        held.contains("    why: held\\r\\x1b[1Afake-token  held  0h ago  from boss@owners.test\n"),
        "{held}"
    );

    let pending = run(&["pending", "list", "dev"]);
    assert!(!pending.contains(['\u{1b}', '\r']), "{pending:?}");
    assert_eq!(pending.lines().count(), 2, "{pending}");
    assert!(
        pending.contains("j@people.test\\x1b[2J\\r\\nforged"),
        "{pending}"
    );
}
