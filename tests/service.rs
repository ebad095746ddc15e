//! The server as a service manager sees it: readiness and stop notifications (Type=notify),
//! and what an operator reads in the log when a configuration is risky: a non-loopback LMTP
//! listener, a server started as root.

mod common;

use std::process::{Command, Stdio};

use common::Harness;

const BIN: &str = env!("CARGO_BIN_EXE_listkeeper");

/// `listkeeper serve` with `config`, its log (level info) going to `serve.log` in the harness.
fn serve_logging(
    h: &Harness,
    config: &std::path::Path,
) -> (std::process::Child, std::path::PathBuf) {
    let log = h.path().join("serve.log");
    let server = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stderr(Stdio::from(std::fs::File::create(&log).expect("log")))
        .spawn()
        .expect("serve");
    (server, log)
}

#[test]
fn risky_settings_are_warned_about_in_the_log() {
    // A free port on every address (bound and released again).
    let port = std::net::TcpListener::bind("0.0.0.0:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let h = Harness::new("127.0.0.1:9", "");
    let config = h.path().join("listkeeper.toml");
    let text = std::fs::read_to_string(&config).expect("read");
    let text = text.replace(
        "lmtp_listen = [\"unix:lmtp.sock\"]",
        &format!("lmtp_listen = [\"unix:lmtp.sock\", \"0.0.0.0:{port}\"]"),
    );
    std::fs::write(&config, text).expect("write");
    let (server, log) = serve_logging(&h, &config);
    let ready = common::wait_until(|| {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("listkeeper ready"))
    });
    let status = common::stop_server(server);
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(ready && status.success(), "{status:?}\n{said}");
    assert!(
        said.contains("LMTP listens on a non-loopback address")
            && said.contains(&format!("0.0.0.0:{port}")),
        "{said}"
    );
    // SAFETY: geteuid(2) has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert_eq!(
        said.contains("running as root: listkeeper needs no privileges"),
        root,
        "{said}"
    );
}

/// A Type=notify service: READY=1 once the listeners are bound (the LMTP socket answers at
/// once), STOPPING=1 when SIGTERM starts the shutdown.
#[test]
fn readiness_and_stopping_are_notified() {
    let h = Harness::new("127.0.0.1:9", "");
    let config = h.path().join("listkeeper.toml");
    let notify_path = h.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).expect("bind");
    notify
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    let recv = || {
        let mut buf = [0u8; 64];
        notify
            .recv(&mut buf)
            .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
            .ok()
    };
    let server = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify_path)
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let ready = recv();
    let answers = std::os::unix::net::UnixStream::connect(h.path().join("lmtp.sock")).is_ok();
    let status = common::stop_server(server);
    let stopping = recv();
    assert_eq!(ready.as_deref(), Some("READY=1"));
    assert!(answers, "READY=1 came before the LMTP listener was bound");
    assert_eq!(stopping.as_deref(), Some("STOPPING=1"));
    assert!(status.success(), "{status:?}");
}

/// A re-injection target nobody listens on is said in the log at start, before any post.
#[test]
fn an_unreachable_reinjection_target_is_said_at_start() {
    let h = Harness::new("127.0.0.1:9", "");
    let config = h.path().join("listkeeper.toml");
    let (server, log) = serve_logging(&h, &config);
    let warned = common::wait_until(|| {
        std::fs::read_to_string(&log)
            .is_ok_and(|l| l.contains("the MTA's re-injection listener cannot be reached"))
    });
    let status = common::stop_server(server);
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(warned && status.success(), "{status:?}\n{said}");
    assert!(said.contains("127.0.0.1:9"), "{said}");
}
