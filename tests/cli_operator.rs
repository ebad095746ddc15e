//! The operator's CLI as a person types it: member settings shown and set, headers on empty
//! tables, remaining times, and usage errors exiting 2. Each check runs on the store directly
//! and again through a running server's control socket.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::Harness;

const BIN: &str = env!("CARGO_BIN_EXE_listkeeper");

fn run(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .output()
        .expect("run listkeeper")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(config: &Path, args: &[&str]) -> String {
    let o = run(config, args);
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Run `f` with the config path while a server runs on the harness's set-up.
fn with_server(h: &Harness, f: impl FnOnce(&Path)) {
    let config = h.path().join("listkeeper.toml");
    let server = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let control = h.config.server.control_socket.clone();
    let up = common::wait_until(|| std::os::unix::net::UnixStream::connect(&control).is_ok());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if up {
            f(&config)
        }
    }));
    let status = common::stop_server(server);
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
    assert!(up, "the server did not start");
    assert!(status.success(), "{status:?}");
}

/// Every member setting can be set with `members set` and is shown by `members list`.
fn settings(config: &Path) {
    let said = ok(
        config,
        &[
            "members",
            "set",
            "dev",
            "a@members.test",
            "--moderated",
            "on",
            "--nomail",
            "on",
        ],
    );
    assert!(said.contains("moderated on, nomail on"), "{said}");
    ok(
        config,
        &[
            "members",
            "set",
            "dev",
            "b@members.test",
            "--disabled",
            "on",
        ],
    );
    let list = ok(config, &["members", "list", "dev"]);
    assert_eq!(
        list,
        "a@members.test\tmoderated,nomail\nb@members.test\tdisabled\nc@members.test\n"
    );
    ok(
        config,
        &[
            "members",
            "set",
            "dev",
            "a@members.test",
            "--nomail",
            "off",
            "--moderated",
            "off",
        ],
    );
    ok(
        config,
        &[
            "members",
            "set",
            "dev",
            "b@members.test",
            "--disabled",
            "off",
        ],
    );
    let list = ok(config, &["members", "list", "dev"]);
    assert_eq!(list, "a@members.test\nb@members.test\nc@members.test\n");
    let o = run(
        config,
        &["members", "set", "dev", "z@members.test", "--nomail", "on"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("is not a member"), "{}", text(&o));

    // An empty table still has its header, and says it is empty.
    let held = ok(config, &["held", "list", "dev"]);
    assert!(held.starts_with("TOKEN "), "{held}");
    assert!(
        held.contains("no posts are held on dev@example.org"),
        "{held}"
    );
}

#[test]
fn member_settings_on_the_store() {
    let h = Harness::new("127.0.0.1:9", "");
    settings(&h.path().join("listkeeper.toml"));
}

#[test]
fn member_settings_through_a_running_server() {
    let h = Harness::new("127.0.0.1:9", "");
    with_server(&h, settings);
}

/// A token made half a minute ago with the default lifetime of 3 days has nearly 3 days left
/// (it used to say "2d").
#[test]
fn a_fresh_token_shows_its_whole_lifetime() {
    let h = Harness::new("127.0.0.1:9", "");
    {
        let store = h.store();
        let now = listkeeper::store::now_secs() - 30;
        store
            .pending_create(&listkeeper::store::Pending {
                token: listkeeper::store::new_token().expect("token"),
                kind: listkeeper::store::PendingKind::Join,
                list: "dev@example.org".into(),
                address: "new@people.test".into(),
                created: now,
                expires: now + 259_200,
                used: false,
            })
            .expect("pending");
    }
    let config = h.path().join("listkeeper.toml");
    let out = ok(&config, &["pending", "list", "dev"]);
    let row = out
        .lines()
        .find(|l| l.contains("new@people.test"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(row.trim_end().ends_with("2d 23h"), "{out}");
}

/// What the README promises: a usage error exits 2, a failure 1.
#[test]
fn usage_errors_exit_2() {
    let h = Harness::new("127.0.0.1:9", "");
    let config = h.path().join("listkeeper.toml");
    for args in [
        &["members", "add", "dev"][..],
        &["members", "add", "dev", "not-an-address"],
        &["members", "set", "dev", "a@members.test"],
        &[
            "members",
            "set",
            "dev",
            "a@members.test",
            "--nomail",
            "maybe",
        ],
        &["members", "frobnicate"],
        &["held"],
    ] {
        let o = run(&config, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
    }
    let o = run(&config, &["members", "list", "nosuchlist"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

/// `members export` then `members import` into another list gives the same members with the
/// same settings; a bad line changes nothing and is named.
fn export_import(config: &Path) {
    ok(
        config,
        &[
            "members",
            "set",
            "dev",
            "a@members.test",
            "--moderated",
            "on",
        ],
    );
    ok(
        config,
        &[
            "members",
            "set",
            "dev",
            "c@members.test",
            "--nomail",
            "on",
            "--disabled",
            "on",
        ],
    );
    let csv = ok(config, &["members", "export", "dev", "--format", "csv"]);
    assert_eq!(
        csv,
        "address,moderated,nomail,disabled\na@members.test,yes,no,no\nb@members.test,no,no,no\nc@members.test,no,yes,yes\n"
    );
    let file = config.with_file_name("dev.csv");
    std::fs::write(&file, &csv).expect("write");
    let said = ok(
        config,
        &["members", "import", "team", file.to_str().expect("utf-8")],
    );
    assert!(said.contains("3 added, 0 already members"), "{said}");
    let again = ok(config, &["members", "export", "team"]);
    assert_eq!(again, csv.clone() + "m@members.test,no,no,no\n", "{again}");

    std::fs::write(
        &file,
        "address,nomail\nx@members.test,yes\nnot an address,no\n",
    )
    .expect("write");
    let o = run(
        config,
        &["members", "import", "team", file.to_str().expect("utf-8")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("dev.csv:3:"), "{}", text(&o));
    assert!(!ok(config, &["members", "list", "team"]).contains("x@members.test"));
}

#[test]
fn export_and_import_on_the_store() {
    let h = Harness::new("127.0.0.1:9", "");
    export_import(&h.path().join("listkeeper.toml"));
}

#[test]
fn export_and_import_through_a_running_server() {
    let h = Harness::new("127.0.0.1:9", "");
    with_server(&h, export_import);
}
