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
