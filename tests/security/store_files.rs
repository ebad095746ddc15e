//! The store holds confirmation tokens (one approves a held post) and the secret behind
//! unsubscribe addresses: its directory and file are created for the server's user alone
//! whatever the umask, and a store that other users can read is refused with the fix.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common;

const BIN: &str = env!("CARGO_BIN_EXE_listkeeper");

/// A configuration with the dev list and `data_dir = "data"`; the data directory is not
/// created here (`listkeeper` creates it).
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let lists = dir.path().join("lists.d");
    std::fs::create_dir(&lists).expect("mkdir");
    std::fs::write(lists.join("dev.toml"), common::DEV_LIST).expect("write");
    let config = dir.path().join("listkeeper.toml");
    std::fs::write(
        &config,
        "[server]\nlmtp_listen = [\"unix:lmtp.sock\"]\ndata_dir = \"data\"\n[reinject]\ntarget = \"127.0.0.1:9\"\n",
    )
    .expect("write");
    let data = dir.path().join("data");
    (dir, config, data)
}

/// Run `listkeeper ARGS --config CONFIG` under umask 022, as a login shell or an init script
/// without `UMask=` would.
fn run(config: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg("--config")
        .arg(config)
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: umask(2) is async-signal-safe and touches nothing but the child's own mask.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
    cmd.output().expect("run listkeeper")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn under_umask_022_the_data_directory_is_created_0700_and_the_store_0600() {
    let (_dir, config, data) = setup();
    let o = run(&config, &["members", "add", "dev", "a@members.test"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(mode(&data), 0o700, "data directory {:o}", mode(&data));
    let store = data.join("listkeeper.redb");
    assert_eq!(mode(&store), 0o600, "store file {:o}", mode(&store));
}

#[test]
fn a_store_file_others_can_read_is_refused_with_the_chmod_that_fixes_it() {
    let (_dir, config, data) = setup();
    let o = run(&config, &["members", "add", "dev", "a@members.test"]);
    assert!(o.status.success(), "{}", text(&o));
    let store = data.join("listkeeper.redb");
    chmod(&store, 0o644);

    // The CLI refuses to open it...
    let o = run(&config, &["members", "list", "dev"]);
    assert!(!o.status.success(), "{}", text(&o));
    let fix = format!("chmod 600 {}", store.display());
    assert!(text(&o).contains(&fix), "no `{fix}` in: {}", text(&o));
    assert!(!text(&o).contains("a@members.test"), "{}", text(&o));
    // ...and so does the server, before it listens.
    let o = run(&config, &["serve"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(&fix), "no `{fix}` in: {}", text(&o));
    assert_eq!(
        mode(&store),
        0o644,
        "the operator's file is not changed behind their back"
    );

    // After the fix it opens again.
    chmod(&store, 0o600);
    let o = run(&config, &["members", "list", "dev"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("a@members.test"), "{}", text(&o));
}

#[test]
fn a_data_directory_others_can_enter_is_refused_and_group_bits_are_tolerated() {
    let (_dir, config, data) = setup();
    // Made by hand under umask 022 (`mkdir -p`), before listkeeper ever ran: 0755.
    std::fs::create_dir(&data).expect("mkdir");
    chmod(&data, 0o755);
    let o = run(&config, &["members", "add", "dev", "a@members.test"]);
    assert!(!o.status.success(), "{}", text(&o));
    let fix = format!("chmod 700 {}", data.display());
    assert!(text(&o).contains(&fix), "no `{fix}` in: {}", text(&o));
    assert!(
        !data.join("listkeeper.redb").exists(),
        "nothing is created in a directory others can read"
    );
    for others in [0o751, 0o705, 0o701] {
        chmod(&data, others);
        let o = run(&config, &["members", "list", "dev"]);
        assert!(!o.status.success(), "{others:o}: {}", text(&o));
    }

    // A service group may read the directory (systemd's StateDirectoryMode=0750), and a store
    // file an older version created group-readable (UMask=0007) still opens.
    chmod(&data, 0o750);
    let o = run(&config, &["members", "add", "dev", "a@members.test"]);
    assert!(o.status.success(), "{}", text(&o));
    let store = data.join("listkeeper.redb");
    assert_eq!(mode(&store), 0o600, "created without group bits");
    chmod(&store, 0o660);
    let o = run(&config, &["members", "list", "dev"]);
    assert!(o.status.success(), "{}", text(&o));
    for others in [0o664, 0o606, 0o602] {
        chmod(&store, others);
        let o = run(&config, &["members", "list", "dev"]);
        assert!(!o.status.success(), "{others:o}: {}", text(&o));
    }
}

#[test]
fn the_shipped_unit_keeps_the_state_directory_to_the_service_user() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/listkeeper.service"),
    )
    .expect("unit");
    let value = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
    };
    assert_eq!(value("StateDirectory"), Some("listkeeper"));
    let mode = value("StateDirectoryMode").expect("StateDirectoryMode=");
    let mode = u32::from_str_radix(mode, 8).expect("octal");
    assert_eq!(mode & 0o077, 0, "StateDirectoryMode={mode:o}");
}
