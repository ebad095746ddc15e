//! systemd socket activation, as a service manager does it: the sockets are bound before
//! `listkeeper serve` starts and handed over as descriptors 3, 4, ... with LISTEN_PID,
//! LISTEN_FDS and LISTEN_FDNAMES. The binary is started through `sh`, which moves the sockets
//! from stdin/stdout to 3/4 and execs with its own pid in LISTEN_PID.

mod common;

use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{dialogue, stop_server as stop, wait_until, Harness, Sink};

const BIN: &str = env!("CARGO_BIN_EXE_listkeeper");

/// Start `listkeeper serve` with `fd3` (and `fd4`) as activated sockets named `names`.
/// `pid` is what LISTEN_PID says: `None` for the right process.
fn start(
    config: &Path,
    fd3: OwnedFd,
    fd4: Option<OwnedFd>,
    names: &str,
    pid: Option<&str>,
    log: &Path,
) -> Child {
    let count = if fd4.is_some() { 2 } else { 1 };
    let pid = pid.unwrap_or("$$");
    let script = format!(
        "exec 3<&0 4>&1 0</dev/null 1>&2; export LISTEN_PID={pid} LISTEN_FDS={count} LISTEN_FDNAMES={names}; exec \"$0\" \"$@\""
    );
    let log = std::fs::File::create(log).expect("log file");
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(BIN)
        .arg("serve")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::from(fd3))
        .stdout(fd4.map_or_else(Stdio::null, Stdio::from))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn listkeeper")
}

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// An activated TCP socket carries the LMTP traffic and an activated unix socket named
/// `control` answers the CLI; the configured listener is not bound, and the control socket
/// file, which belongs to the service manager, is left in place at exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_sockets_it_is_handed() {
    let sink = Sink::start().await;
    let h = Harness::new(&sink.addr, "");
    let config = h.path().join("listkeeper.toml");
    let log = h.path().join("serve.log");
    let lmtp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind lmtp");
    let lmtp_addr = lmtp.local_addr().expect("addr");
    let control_path = h.config.server.control_socket.clone();
    let control = std::os::unix::net::UnixListener::bind(&control_path).expect("bind control");
    let child = start(
        &config,
        lmtp.into(),
        Some(control.into()),
        "lmtp:control",
        None,
        &log,
    );

    // The socket listens before the server runs: connecting needs no wait for readiness.
    let stream = tokio::net::TcpStream::connect(lmtp_addr)
        .await
        .expect("connect");
    let post = common::post("p@outside.test", "dev@example.org", "activated");
    let said = dialogue(stream, &format!("LHLO t\r\n{post}QUIT\r\n")).await;
    assert!(
        said.contains("250 2.0.0") || said.contains("250 2.6.0"),
        "{said}\n{}",
        log_of(&log)
    );
    let copies = sink.copies();
    for m in ["a@members.test", "b@members.test", "c@members.test"] {
        assert_eq!(copies.get(m), Some(&1), "{copies:?}");
    }
    assert!(
        !h.path().join("lmtp.sock").exists(),
        "server.lmtp_listen must not be bound under socket activation"
    );

    let status = tokio::task::spawn_blocking({
        let config = config.clone();
        move || {
            Command::new(BIN)
                .args(["status", "--config"])
                .arg(&config)
                .output()
                .expect("run status")
        }
    })
    .await
    .expect("join");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success() && text.contains("list dev@example.org active"),
        "{text}{}",
        String::from_utf8_lossy(&status.stderr)
    );

    let exit = tokio::task::spawn_blocking(move || stop(child))
        .await
        .expect("join");
    assert!(exit.success(), "{exit:?}\n{}", log_of(&log));
    assert!(
        control_path.exists(),
        "the activated control socket file is the service manager's"
    );
    let log = log_of(&log);
    assert!(log.contains("socket activation"), "{log}");
}

/// A unix socket works as the LMTP listener too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activated_unix_socket_serves_lmtp() {
    let sink = Sink::start().await;
    let h = Harness::new(&sink.addr, "");
    let config = h.path().join("listkeeper.toml");
    let log = h.path().join("serve.log");
    let path = h.path().join("activated.sock");
    let lmtp = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let child = start(&config, lmtp.into(), None, "lmtp", None, &log);
    let stream = tokio::net::UnixStream::connect(&path)
        .await
        .expect("connect");
    let said = dialogue(stream, "LHLO t\r\nQUIT\r\n").await;
    assert!(
        said.starts_with("220 ") && said.contains("250-PIPELINING") && said.contains("221 "),
        "{said}\n{}",
        log_of(&log)
    );
    assert!(!h.path().join("lmtp.sock").exists());
    let exit = tokio::task::spawn_blocking(move || stop(child))
        .await
        .expect("join");
    assert!(exit.success(), "{exit:?}\n{}", log_of(&log));
}

/// Descriptors meant for another process (LISTEN_PID is not ours) are left alone and the
/// configured listeners are bound as without activation.
#[test]
fn descriptors_for_another_pid_are_ignored() {
    let h = Harness::new("127.0.0.1:9", "");
    let config = h.path().join("listkeeper.toml");
    let log = h.path().join("serve.log");
    let lmtp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let child = start(&config, lmtp.into(), None, "lmtp", Some("1"), &log);
    let sock = h.path().join("lmtp.sock");
    let bound = wait_until(|| std::os::unix::net::UnixStream::connect(&sock).is_ok());
    let exit = stop(child);
    assert!(bound, "configured listener not bound\n{}", log_of(&log));
    assert!(exit.success(), "{exit:?}\n{}", log_of(&log));
    assert!(!log_of(&log).contains("socket activation"));
}

/// A socket that is not a listening stream socket (a unit file mistake) stops the start with
/// a message naming the descriptor, instead of failing at the first connection.
#[test]
fn a_datagram_socket_is_refused_at_start() {
    let h = Harness::new("127.0.0.1:9", "");
    let config = h.path().join("listkeeper.toml");
    let log = h.path().join("serve.log");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut child = start(&config, udp.into(), None, "lmtp", None, &log);
    let mut status = None;
    wait_until(|| {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    let Some(status) = status else {
        let _ = child.kill();
        panic!("still running with a datagram socket\n{}", log_of(&log));
    };
    let log = log_of(&log);
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains("descriptor 3 (lmtp) is not a listening stream socket"),
        "{log}"
    );
}
