//! What an operator reads in the log when a configuration is risky: a non-loopback LMTP
//! listener, a server started as root.

mod common;

use std::process::{Command, Stdio};

use common::Harness;

const BIN: &str = env!("CARGO_BIN_EXE_listkeeper");

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
    let log = h.path().join("serve.log");
    let server = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stderr(Stdio::from(std::fs::File::create(&log).expect("log")))
        .spawn()
        .expect("serve");
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
