//! `listkeeper members add|remove --file`, as an operator runs it: on the store directly, and
//! through a running server's control socket. Every address is validated before anything
//! changes; errors name file and line.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::Harness;

const BIN: &str = env!("CARGO_BIN_EXE_listkeeper");

fn run(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run listkeeper");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("wait")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn members(config: &Path) -> Vec<String> {
    let o = run(config, &["members", "list", "dev"], None);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The checks, against whichever backend the CLI finds.
fn file_import_and_errors(h: &Harness) {
    let config = h.path().join("listkeeper.toml");
    let file = h.path().join("new.txt");
    std::fs::write(
        &file,
        "# new members\nd@members.test\n\n  E@Members.Test  \r\na@members.test\n",
    )
    .expect("write");
    let file = file.to_str().expect("utf-8 path");
    let o = run(
        &config,
        &["members", "add", "dev", "f@members.test", "--file", file],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("dev@example.org: 3 added, 1 already members"),
        "{}",
        text(&o)
    );
    let now = members(&config);
    for m in ["d@members.test", "e@members.test", "f@members.test"] {
        assert!(
            now.iter().any(|x| x.eq_ignore_ascii_case(m)),
            "{m}: {now:?}"
        );
    }
    assert_eq!(now.len(), 6, "{now:?}");

    // One bad line: nothing changes, and the error names the file and the line.
    let bad = h.path().join("bad.txt");
    std::fs::write(
        &bad,
        "g@members.test\nh@members.test\nnot an address\ni@members.test\n",
    )
    .expect("write");
    let o = run(
        &config,
        &[
            "members",
            "add",
            "dev",
            "--file",
            bad.to_str().expect("utf-8"),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let said = text(&o);
    assert!(said.contains("bad.txt:3: \"not an address\""), "{said}");
    assert!(
        said.contains("1 invalid address(es); nothing was changed"),
        "{said}"
    );
    assert_eq!(members(&config).len(), 6);

    // Standard input, for remove.
    let o = run(
        &config,
        &["members", "remove", "dev", "--file", "-"],
        Some("d@members.test\ne@members.test\nnobody@members.test\n"),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("dev@example.org: 2 removed, 1 were not members"),
        "{}",
        text(&o)
    );
    assert_eq!(members(&config).len(), 4);

    // Nothing at all to do is an error, not a silent success.
    let empty = h.path().join("empty.txt");
    std::fs::write(&empty, "# nobody yet\n\n").expect("write");
    let o = run(
        &config,
        &[
            "members",
            "add",
            "dev",
            "--file",
            empty.to_str().expect("utf-8"),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("no addresses given"), "{}", text(&o));
}

#[test]
fn file_import_on_the_store() {
    let h = Harness::new("127.0.0.1:9", "");
    file_import_and_errors(&h);
}

#[test]
fn file_import_through_a_running_server() {
    let h = Harness::new("127.0.0.1:9", "");
    let config = h.path().join("listkeeper.toml");
    let server = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let control = h.config.server.control_socket.clone();
    let up = common::wait_until(|| std::os::unix::net::UnixStream::connect(&control).is_ok());
    if up {
        // The store is the server's now: the CLI must go through the control socket.
        file_import_and_errors(&h);
    }
    let status = common::stop_server(server);
    assert!(up, "the server did not start");
    assert!(status.success(), "{status:?}");
}

/// A mistyped `server.data_dir` never becomes a new empty store: the commands that only read
/// (`lists`, `members list`, `held list`, `pending list`, `bounces list`) say there is no store
/// there and create nothing; `check` touches no store at all. `members add` still creates the
/// store of a fresh installation.
#[test]
fn commands_that_only_read_never_create_a_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("lists.d")).expect("mkdir");
    std::fs::write(
        dir.path().join("lists.d/dev.toml"),
        "address = \"dev@example.org\"\nowners = [\"o@example.org\"]\n",
    )
    .expect("write");
    let config = dir.path().join("listkeeper.toml");
    std::fs::write(
        &config,
        "[server]\nlmtp_listen = [\"unix:lmtp.sock\"]\ndata_dir = \"dataa\"\nlists_dir = \"lists.d\"\n",
    )
    .expect("write");
    let typo = dir.path().join("dataa");
    let o = run(&config, &["check"], None);
    assert!(o.status.success(), "{}", text(&o));
    for args in [
        &["lists"][..],
        &["members", "list", "dev@example.org"],
        &["held", "list", "dev@example.org"],
        &["pending", "list", "dev@example.org"],
        &["bounces", "list", "dev@example.org"],
    ] {
        let o = run(&config, args, None);
        assert!(
            text(&o).contains("there is no store in") && text(&o).contains("dataa"),
            "{args:?}: {}",
            text(&o)
        );
        assert!(!typo.exists(), "{args:?} created {}", typo.display());
    }
    let o = run(
        &config,
        &["members", "add", "dev@example.org", "a@members.test"],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(typo.join("listkeeper.redb").exists());
}

/// `listkeeper status` (and every command that asks the server) run by a user who may not use
/// the control socket says so, instead of "no server is running" or trying the store behind
/// the server's back. Needs root, to run the command as `nobody`.
#[test]
fn a_control_socket_we_may_not_use_is_named_as_the_cause() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if unsafe_is_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let sock = dir.path().join("control.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let lists = dir.path().join("lists.d");
        std::fs::create_dir(&lists).expect("mkdir");
        std::fs::set_permissions(&lists, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let dev = lists.join("dev.toml");
        std::fs::write(
            &dev,
            "address = \"dev@example.org\"\nowners = [\"o@example.org\"]\n",
        )
        .expect("write");
        std::fs::set_permissions(&dev, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let config = dir.path().join("listkeeper.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlmtp_listen = [\"unix:lmtp.sock\"]\ndata_dir = \"data\"\ncontrol_socket = \"{}\"\n",
                sock.display()
            ),
        )
        .expect("write");
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        for args in [&["status"][..], &["members", "list", "dev@example.org"]] {
            let o = Command::new(BIN)
                .args(args)
                .arg("--config")
                .arg(&config)
                .uid(65534)
                .gid(65534)
                .output()
                .expect("run as nobody");
            let t = text(&o);
            assert!(!o.status.success(), "{args:?}: {t}");
            assert!(t.contains("permission denied"), "{args:?}: {t}");
            assert!(
                !t.contains("no listkeeper server is running"),
                "{args:?}: {t}"
            );
        }
        // Nobody listening: that is "no server".
        drop(_listener);
        let o = run(&config, &["status"], None);
        assert!(
            text(&o).contains("no listkeeper server is running"),
            "{}",
            text(&o)
        );
    } else {
        eprintln!("skipped: needs root to run a command as another user");
    }
}

fn unsafe_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
