//! Live reload of a running `listkeeper serve` process, as an operator edits its lists: an
//! editor's save (write a temporary file, rename it over the list file), a removed list file,
//! and a real SIGHUP for the change inotify cannot see (a list file that is a symlink whose
//! target is edited elsewhere, as configuration managers do); and an edit of the global file,
//! whose settings apply live or wait for a restart as their declarations say.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{dialogue, stop_server, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_listkeeper");

fn list(address: &str) -> String {
    format!(
        "address = \"{address}\"\nowners = [\"boss@owners.test\"]\n[posting]\npolicy = \"open\"\n"
    )
}

/// The reply to `RCPT TO:<rcpt>` in a fresh session.
async fn rcpt_reply(sock: &Path, rcpt: &str) -> String {
    let stream = tokio::net::UnixStream::connect(sock)
        .await
        .expect("connect");
    let said = dialogue(
        stream,
        &format!("LHLO t\r\nMAIL FROM:<a@outside.test>\r\nRCPT TO:<{rcpt}>\r\nQUIT\r\n"),
    )
    .await;
    said.lines()
        .filter(|l| !l.starts_with("220") && !l.starts_with("250-") && !l.starts_with("221"))
        .nth(2)
        .unwrap_or_default()
        .to_string()
}

/// Ask until the reply to `rcpt` starts with `code` (at most 10 s); how long it took.
async fn until_reply(sock: &Path, rcpt: &str, code: &str) -> Duration {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < Duration::from_secs(10) {
        last = rcpt_reply(sock, rcpt).await;
        if last.starts_with(code) {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{rcpt}: still {last:?}, expected {code}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_server_follows_saves_removals_and_sighup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lists = dir.path().join("lists.d");
    let elsewhere = dir.path().join("managed");
    std::fs::create_dir_all(&lists).expect("mkdir");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    std::fs::write(lists.join("dev.toml"), list("dev@example.org")).expect("write");
    std::fs::write(elsewhere.join("ext.toml"), list("ext@example.org")).expect("write");
    std::os::unix::fs::symlink(elsewhere.join("ext.toml"), lists.join("ext.toml"))
        .expect("symlink");
    let config = dir.path().join("listkeeper.toml");
    std::fs::write(
        &config,
        "[server]\nlmtp_listen = [\"unix:lmtp.sock\"]\ndata_dir = \"data\"\nlists_dir = \"lists.d\"\n[reinject]\ntarget = \"127.0.0.1:9\"\n",
    )
    .expect("write");
    let log = dir.path().join("serve.log");
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn listkeeper");
    let pid = child.id();
    let sock = dir.path().join("lmtp.sock");
    assert!(wait_until(|| sock.exists()), "no socket");
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(rcpt_reply(&sock, "dev@example.org")
        .await
        .starts_with("250 2.1.5"));
    assert!(rcpt_reply(&sock, "ext@example.org")
        .await
        .starts_with("250 2.1.5"));

    // An editor's save: the new text goes to a temporary file renamed over the list file.
    std::fs::write(lists.join(".ops.toml.swp"), list("ops@example.org")).expect("write");
    std::fs::rename(lists.join(".ops.toml.swp"), lists.join("ops.toml")).expect("rename");
    let took = until_reply(&sock, "ops@example.org", "250 2.1.5").await;
    eprintln!("a saved list file served after {took:?}");

    // A removed list file: its addresses are unknown again; the others stay.
    std::fs::remove_file(lists.join("dev.toml")).expect("rm");
    let took = until_reply(&sock, "dev@example.org", "550 5.1.1").await;
    eprintln!("a removed list file gone after {took:?}");
    assert!(rcpt_reply(&sock, "ops@example.org")
        .await
        .starts_with("250 2.1.5"));

    // An edit of a symlink's target outside the directory makes no event in it: the list
    // changes with SIGHUP. (Waiting longer than the watcher's settle time shows that nothing
    // else reloaded it.)
    std::fs::write(elsewhere.join("ext.toml"), list("external@example.org")).expect("write");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        rcpt_reply(&sock, "external@example.org")
            .await
            .starts_with("550 5.1.1"),
        "reloaded without SIGHUP"
    );
    // SAFETY: kill(2) on the pid of our own child.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGHUP) }, 0);
    until_reply(&sock, "external@example.org", "250 2.1.5").await;
    until_reply(&sock, "ext@example.org", "550 5.1.1").await;
    assert!(
        log_text().contains("SIGHUP: reloading the lists"),
        "{}",
        log_text()
    );

    let status = stop_server(child);
    assert_eq!(status.code(), Some(0), "{}", log_text());
}

/// The replies of one session that gives two recipients.
async fn two_recipients(sock: &Path) -> String {
    let stream = tokio::net::UnixStream::connect(sock)
        .await
        .expect("connect");
    dialogue(
        stream,
        "LHLO t\r\nMAIL FROM:<a@outside.test>\r\nRCPT TO:<dev@example.org>\r\nRCPT TO:<dev-owner@example.org>\r\nQUIT\r\n",
    )
    .await
}

/// An edit of the global file: `limits.max_recipients` (live) applies to the next session;
/// `server.worker_threads` (restart) keeps its running value and the log names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_file_edit_applies_live_settings_and_names_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lists = dir.path().join("lists.d");
    std::fs::create_dir_all(&lists).expect("mkdir");
    std::fs::write(lists.join("dev.toml"), list("dev@example.org")).expect("write");
    let config = dir.path().join("listkeeper.toml");
    let global = |server_extra: &str, rest: &str| {
        format!("[server]\nlmtp_listen = [\"unix:lmtp.sock\"]\ndata_dir = \"data\"\nlists_dir = \"lists.d\"\n{server_extra}[reinject]\ntarget = \"127.0.0.1:9\"\n{rest}")
    };
    std::fs::write(&config, global("", "")).expect("write");
    let log = dir.path().join("serve.log");
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn listkeeper");
    let sock = dir.path().join("lmtp.sock");
    assert!(wait_until(|| sock.exists()), "no socket");
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let before = two_recipients(&sock).await;
    assert!(!before.contains("452 4.5.3"), "{before}");

    std::fs::write(
        &config,
        global("worker_threads = 3\n", "[limits]\nmax_recipients = 1\n"),
    )
    .expect("write");
    assert!(
        wait_until(|| log_text().contains("needs_restart")),
        "{}",
        log_text()
    );
    let text = log_text();
    let line = text
        .lines()
        .find(|l| l.contains("needs_restart"))
        .unwrap_or_default();
    assert!(line.contains("server.worker_threads"), "{line}");
    assert!(!line.contains("limits.max_recipients"), "{line}");
    let started = Instant::now();
    let mut after = String::new();
    while started.elapsed() < Duration::from_secs(10) {
        after = two_recipients(&sock).await;
        if after.contains("452 4.5.3") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(after.contains("452 4.5.3"), "{after}");

    let status = stop_server(child);
    assert_eq!(status.code(), Some(0), "{}", log_text());
}
