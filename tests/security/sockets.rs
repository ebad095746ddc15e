//! Socket modes and groups, who may use the control socket, where TCP listeners are, and the
//! service user.

use crate::common::{self, Harness};

/// `listkeeper serve` with the dev list, a unix LMTP listener `lmtp.sock` and `extra` in
/// `[server]`.
pub(crate) async fn serve(extra: &str) -> common::Booted {
    common::boot(&[("dev", common::DEV_LIST)], extra).await
}

fn mode_and_gid(path: &std::path::Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).expect("stat");
    (m.mode() & 0o7777, m.gid())
}

fn uid_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).expect("stat").uid()
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[tokio::test]
async fn the_lmtp_socket_is_0660_by_default_and_takes_the_configured_mode_owner_and_group() {
    let s = serve("").await;
    let (mode, _) = mode_and_gid(&s.dir.path().join("lmtp.sock"));
    assert_eq!(mode, 0o660, "{mode:o}");
    let (mode, _) = mode_and_gid(&s.dir.path().join("data/control.sock"));
    assert_eq!(mode, 0o600, "control socket {mode:o}");
    s.shutdown().await;

    // Another mode, and (as root, who may give a file away) another owner and group.
    let owner_group = if is_root() {
        "\nlmtp_socket_owner = \"65534\"\nlmtp_socket_group = \"65534\""
    } else {
        ""
    };
    let s = serve(&format!("lmtp_socket_mode = \"0640\"{owner_group}")).await;
    let sock = s.dir.path().join("lmtp.sock");
    let (mode, gid) = mode_and_gid(&sock);
    assert_eq!(mode, 0o640, "{mode:o}");
    if is_root() {
        assert_eq!((uid_of(&sock), gid), (65534, 65534));
    }
    s.shutdown().await;
}

#[tokio::test]
async fn the_control_socket_refuses_other_users_whatever_its_mode() {
    // A control socket as socket activation may hand it over: mode 0666.
    if !is_root() || !std::path::Path::new("/usr/bin/perl").exists() {
        eprintln!("skipped: needs root (to run a client as another user) and /usr/bin/perl");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let h = Harness::new("127.0.0.1:9", "");
    std::fs::set_permissions(h.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = h.path().join("control.sock");
    let listener = tokio::net::UnixListener::bind(&path).expect("bind");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(listkeeper::control::serve_on(
        listener,
        h.context(),
        stop_rx,
    ));

    let client = |uid: Option<u32>| {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            use std::os::unix::process::CommandExt;
            let mut cmd = std::process::Command::new("/usr/bin/perl");
            cmd.args([
                "-MIO::Socket::UNIX",
                "-e",
                // The server may answer and close before the request is written: no SIGPIPE.
                "$SIG{PIPE} = 'IGNORE'; my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die \"connect: $!\\n\"; print $s \"status\\n\"; local $/; print scalar <$s>;",
            ])
            .arg(&path)
            .current_dir("/");
            if let Some(uid) = uid {
                cmd.uid(uid).gid(uid);
            }
            let out = cmd.output().expect("perl");
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    };
    let nobody = client(Some(65534)).await.expect("join");
    assert!(nobody.starts_with("err "), "{nobody}");
    assert!(!nobody.contains("version"), "{nobody}");
    let own = client(None).await.expect("join");
    assert!(own.starts_with("version "), "{own}");
}

#[test]
fn tcp_listeners_are_never_implicit_and_the_shipped_ones_are_loopback() {
    use listkeeper::config::{Config, Listen};
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/listkeeper.toml");
    let config = Config::load(&shipped).expect("the shipped config is valid");
    let mut tcp = 0;
    for l in &config.server.lmtp_listen {
        if let Listen::Tcp(addr) = l {
            tcp += 1;
            let sock: std::net::SocketAddr = addr.parse().expect("an IP listener");
            assert!(sock.ip().is_loopback(), "{addr}");
        }
    }
    assert!(tcp > 0, "the shipped file has a TCP listener to check");
    // No listener without saying where: no default, no host-less "any address" form.
    for text in [
        "[server]\ndata_dir = \"d\"\n",
        "[server]\nlmtp_listen = [\":2424\"]\n",
        "[server]\nlmtp_listen = [\"2424\"]\n",
        "[server]\nlmtp_listen = []\n",
    ] {
        assert!(
            Config::parse(std::path::Path::new("g.toml"), text).is_err(),
            "{text}"
        );
    }
}

#[test]
fn the_service_runs_as_an_unprivileged_user_without_capabilities() {
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/listkeeper.service"),
    )
    .expect("unit");
    let value = |key: &str| {
        unit.lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix(&format!("{key}=")))
            .map(str::trim)
    };
    let user = value("User").expect("User=");
    assert!(!user.is_empty() && user != "root" && user != "0", "{user}");
    assert_eq!(value("NoNewPrivileges"), Some("yes"));
    assert_eq!(value("CapabilityBoundingSet"), Some(""));
    assert_eq!(value("AmbientCapabilities"), Some(""));
    assert_eq!(value("ProtectSystem"), Some("strict"));
}

/// The unit's check before start passes with a broken list file (that list is disabled, the
/// rest is served) and stops the start only for a broken global file.
#[test]
fn a_broken_list_file_does_not_keep_the_service_from_starting() {
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/listkeeper.service"),
    )
    .expect("unit");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("lists.d")).expect("mkdir");
    std::fs::write(
        dir.path().join("lists.d/broken.toml"),
        "address = \"broken@example.org\"\ncolour = \"red\"\n",
    )
    .expect("write");
    let config = dir.path().join("listkeeper.toml");
    let good = "[server]\nlmtp_listen = [\"unix:lmtp.sock\"]\ndata_dir = \"data\"\n";
    std::fs::write(&config, good).expect("write");
    let pre: Vec<String> = unit
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ExecStartPre="))
        .map(|cmd| {
            cmd.replace(
                "/usr/local/bin/listkeeper",
                env!("CARGO_BIN_EXE_listkeeper"),
            )
            .replace("/etc/listkeeper/listkeeper.toml", &config.to_string_lossy())
        })
        .collect();
    let run_all = || {
        pre.iter().all(|cmd| {
            let words: Vec<&str> = cmd.split_whitespace().collect();
            std::process::Command::new(words[0])
                .args(&words[1..])
                .output()
                .expect("run")
                .status
                .success()
        })
    };
    assert!(run_all(), "{pre:?} refused a broken list file");
    std::fs::write(&config, format!("{good}colour = \"red\"\n")).expect("write");
    assert!(
        pre.is_empty() || !run_all(),
        "{pre:?} let a broken global file pass"
    );
}

/// A server whose user is outside `lmtp_socket_group` says that the group change failed and
/// names the group, not a bare `Operation not permitted` on listening. Needs root, to run the
/// server as `nobody` (who is in no group of root's).
#[test]
fn a_group_the_server_is_not_in_is_named() {
    use std::os::unix::process::CommandExt;
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("lists.d")).expect("mkdir");
    let config = dir.path().join("listkeeper.toml");
    std::fs::write(
        &config,
        "[server]\nlmtp_listen = [\"unix:lmtp.sock\"]\nlmtp_socket_group = \"root\"\ndata_dir = \"data\"\n[reinject]\ntarget = \"127.0.0.1:9\"\n",
    )
    .expect("write");
    for p in [dir.path(), &dir.path().join("lists.d"), &config] {
        std::os::unix::fs::chown(p, Some(65534), Some(65534)).expect("chown");
    }
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_listkeeper"));
    cmd.args(["serve", "--config"]).arg(&config);
    // SAFETY: setgroups, setgid and setuid are async-signal-safe. Root's supplementary groups
    // (group 0 among them) go before the ids change, so the server is outside group root.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) == 0
                && libc::setgid(65534) == 0
                && libc::setuid(65534) == 0
            {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let out = cmd.output().expect("serve as nobody");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("chown/chgrp failed"), "{err}");
    assert!(err.contains("group root (0)"), "{err}");
    assert!(err.contains("server.lmtp_socket_group"), "{err}");
}
