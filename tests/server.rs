//! The whole server as `listkeeper serve` runs it: real unix and TCP listeners, the control
//! socket, SIGHUP-style reload and a clean shutdown.

mod common;

use std::time::Duration;

use common::{boot, dialogue, Booted, Sink};

#[tokio::test]
async fn serves_unix_and_tcp_reloads_and_stops_cleanly() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let lists = dir.path().join("lists.d");
    std::fs::create_dir_all(&lists).expect("mkdir");
    std::fs::write(lists.join("dev.toml"), common::DEV_LIST).expect("write");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let text = format!(
        "[server]\nlmtp_listen = [\"unix:run/lmtp.sock\", \"127.0.0.1:{port}\"]\ndata_dir = \"data\"\n[reinject]\ntarget = \"{}\"\n",
        sink.addr
    );
    let path = dir.path().join("listkeeper.toml");
    std::fs::write(&path, &text).expect("write");
    let config = listkeeper::config::Config::parse(&path, &text).expect("config");
    let control = config.server.control_socket.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(1);
    let server = tokio::spawn(listkeeper::server::run(
        config,
        async {
            let _ = stop_rx.await;
        },
        reload_rx,
    ));

    let sock = dir.path().join("run/lmtp.sock");
    for _ in 0..200 {
        if control.exists() && sock.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Members through the control socket, as the CLI does while the server runs.
    let client = listkeeper::control::ControlClient::connect(&control).expect("control socket");
    let out = tokio::task::spawn_blocking(move || {
        client.change(
            "add",
            "dev@example.org",
            &common::addrs(&["x@members.test", "y@members.test"]),
        )
    })
    .await
    .expect("join");
    assert_eq!(out.map(|o| o.changed), Ok(2));

    let post = common::post("p@outside.test", "dev@example.org", "unix");
    let t = dialogue(
        tokio::net::UnixStream::connect(&sock).await.expect("unix"),
        &format!("LHLO t\r\n{post}QUIT\r\n"),
    )
    .await;
    assert!(t.contains("250 2.0.0 distributed to 2 member(s)"), "{t}");
    let post = common::post("p@outside.test", "dev@example.org", "tcp");
    let t = dialogue(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("tcp"),
        &format!("LHLO t\r\n{post}QUIT\r\n"),
    )
    .await;
    assert!(t.contains("250 2.0.0 distributed to 2 member(s)"), "{t}");

    // A new list file takes effect on reload; a session opened afterwards sees it.
    std::fs::write(
        lists.join("ops.toml"),
        "address = \"ops@example.org\"\nowners = [\"o@owners.test\"]\n",
    )
    .expect("write");
    reload_tx.send(()).await.expect("reload");
    let mut seen = false;
    for _ in 0..100 {
        let t = dialogue(
            tokio::net::UnixStream::connect(&sock).await.expect("unix"),
            "LHLO t\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<ops@example.org>\r\nQUIT\r\n",
        )
        .await;
        if t.contains("250 2.1.5") {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen, "the reloaded list was not served");

    // Without any signal: a file dropped into the directory is picked up from its file event,
    // and a file broken by an edit disables its list (451 4.3.5), leaving the others alone.
    std::fs::write(
        lists.join("qa.toml"),
        "address = \"qa@example.org\"\nowners = [\"o@owners.test\"]\n",
    )
    .expect("write");
    // ops was good before: its invalid edit keeps the good version serving. new is broken
    // from the start: its address answers 451.
    std::fs::write(
        lists.join("ops.toml"),
        "address = \"ops@example.org\"\nowners = []\n",
    )
    .expect("write");
    std::fs::write(
        lists.join("new.toml"),
        "address = \"new@example.org\"\nowners = []\n",
    )
    .expect("write");
    let probe = "LHLO t\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<qa@example.org>\r\nRCPT TO:<new@example.org>\r\nRCPT TO:<ops@example.org>\r\nRCPT TO:<dev@example.org>\r\nQUIT\r\n";
    let mut last = String::new();
    for _ in 0..200 {
        last = dialogue(
            tokio::net::UnixStream::connect(&sock).await.expect("unix"),
            probe,
        )
        .await;
        if last.contains("250 2.1.5 <qa@example.org>") && last.contains("451 4.3.5") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(last.contains("250 2.1.5 <qa@example.org>"), "{last}");
    assert!(
        last.contains("451 4.3.5 the list new@example.org"),
        "{last}"
    );
    assert!(last.contains("250 2.1.5 <ops@example.org>"), "{last}");
    assert!(last.contains("250 2.1.5 <dev@example.org>"), "{last}");

    let _ = stop_tx.send(());
    let result = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stops")
        .expect("join");
    assert!(result.is_ok(), "{result:?}");
    assert!(!sock.exists(), "the socket file is removed on exit");
    assert_eq!(sink.copies().get("x@members.test"), Some(&2));
}

/// `listkeeper pending list|approve` as the CLI runs them against a live server.
#[tokio::test]
async fn operator_approves_a_pending_subscription_over_the_control_socket() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let lists = dir.path().join("lists.d");
    std::fs::create_dir_all(&lists).expect("mkdir");
    std::fs::write(
        lists.join("mod.toml"),
        "address = \"mod@example.org\"\nowners = [\"boss@owners.test\"]\n[subscription]\npolicy = \"moderate\"\n",
    )
    .expect("write");
    let text = format!(
        "[server]\nlmtp_listen = [\"unix:lmtp.sock\"]\ndata_dir = \"data\"\n[reinject]\ntarget = \"{}\"\n",
        sink.addr
    );
    let path = dir.path().join("listkeeper.toml");
    std::fs::write(&path, &text).expect("write");
    let config = listkeeper::config::Config::parse(&path, &text).expect("config");
    let control = config.server.control_socket.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (_reload_tx, reload_rx) = tokio::sync::mpsc::channel(1);
    let server = tokio::spawn(listkeeper::server::run(
        config,
        async {
            let _ = stop_rx.await;
        },
        reload_rx,
    ));
    let sock = dir.path().join("lmtp.sock");
    for _ in 0..200 {
        if control.exists() && sock.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mail = |rcpt: String| {
        format!("LHLO t\r\nMAIL FROM:<s@people.test>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\nFrom: s@people.test\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n")
    };
    let t = dialogue(
        tokio::net::UnixStream::connect(&sock).await.expect("unix"),
        &mail("mod-join@example.org".into()),
    )
    .await;
    assert!(t.contains("250 2.0.0 request handled"), "{t}");
    let confirmation = String::from_utf8_lossy(&sink.transactions()[0].data).into_owned();
    let start = confirmation.find("mod-confirm+").expect("reply-to") + "mod-confirm+".len();
    let token: String = confirmation[start..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    dialogue(
        tokio::net::UnixStream::connect(&sock).await.expect("unix"),
        &mail(format!("mod-confirm+{token}@example.org")),
    )
    .await;

    let c = control.clone();
    let pending = tokio::task::spawn_blocking(move || {
        listkeeper::control::ControlClient::connect(&c)
            .expect("control")
            .pending("mod@example.org")
    })
    .await
    .expect("join")
    .expect("pending");
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert!(
        pending[0].contains(" approve s@people.test "),
        "{pending:?}"
    );
    let approval = pending[0].split(' ').next().unwrap_or_default().to_string();
    let c = control.clone();
    let said = tokio::task::spawn_blocking(move || {
        listkeeper::control::ControlClient::connect(&c)
            .expect("control")
            .decide("mod@example.org", &approval, None)
    })
    .await
    .expect("join");
    assert!(
        said.as_deref().is_ok_and(|s| s.contains("now subscribed")),
        "{said:?}"
    );
    let c = control.clone();
    let count = tokio::task::spawn_blocking(move || {
        listkeeper::control::ControlClient::connect(&c)
            .expect("control")
            .count("mod@example.org")
    })
    .await
    .expect("join");
    assert_eq!(count, Ok(1));
    let welcome =
        String::from_utf8_lossy(&sink.transactions().last().expect("welcome").data).into_owned();
    assert!(welcome.contains("Welcome"), "{welcome}");

    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
}

/// Run a blocking control-socket call.
async fn control<T: Send + 'static>(
    path: &std::path::Path,
    f: impl FnOnce(listkeeper::control::ControlClient) -> T + Send + 'static,
) -> T {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        f(listkeeper::control::ControlClient::connect(&p).expect("control socket"))
    })
    .await
    .expect("join")
}

/// `listkeeper held list|show|approve` and `members set --moderated` against a live server.
#[tokio::test]
async fn operator_moderates_over_the_control_socket() {
    let b = boot(&[("club", "address = \"club@example.org\"\nowners = [\"boss@owners.test\"]\n[posting]\npolicy = \"members\"\n")], "").await;
    let out = control(&b.control, |c| {
        c.change(
            "add",
            "club@example.org",
            &common::addrs(&["one@members.test"]),
        )
    })
    .await;
    assert_eq!(out.map(|o| o.changed), Ok(1));
    let out = control(&b.control, |c| {
        c.request("set-moderated club@example.org one@members.test on")
    })
    .await;
    assert!(out.is_ok(), "{out:?}");
    let mail = "LHLO t\r\nMAIL FROM:<one@members.test>\r\nRCPT TO:<club@example.org>\r\nDATA\r\nFrom: one@members.test\r\nSubject: please review\r\n\r\nbody text\r\n.\r\nQUIT\r\n";
    let t = dialogue(
        tokio::net::UnixStream::connect(&b.sock)
            .await
            .expect("unix"),
        mail,
    )
    .await;
    assert!(
        t.contains("held for moderation: posts from this member are reviewed"),
        "{t}"
    );

    let rows = control(&b.control, |c| c.request("held club@example.org"))
        .await
        .expect("held list");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let token = rows[0].split('\t').next().unwrap_or_default().to_string();
    assert!(rows[0].contains("please review"), "{rows:?}");
    let t2 = token.clone();
    let shown = control(&b.control, move |c| c.held_message("club@example.org", &t2))
        .await
        .expect("show");
    assert!(String::from_utf8_lossy(&shown).contains("body text"));
    let t3 = token.clone();
    let said = control(&b.control, move |c| {
        c.request(&format!("held-decide club@example.org {t3} approve"))
    })
    .await;
    assert!(
        said.as_ref()
            .is_ok_and(|s| s.join(" ").contains("distributed to 1 member(s)")),
        "{said:?}"
    );
    let posts = || {
        let tx = b.sink.transactions();
        tx.iter()
            .filter(|t| {
                t.rcpts.iter().any(|r| r == "one@members.test")
                    && String::from_utf8_lossy(&t.data).contains("body text")
            })
            .count()
    };
    assert_eq!(posts(), 1);
    let said = control(&b.control, move |c| {
        c.request(&format!("held-decide club@example.org {token} approve"))
    })
    .await;
    assert!(
        said.as_ref()
            .is_ok_and(|s| s.join(" ").contains("already distributed")),
        "{said:?}"
    );
    assert_eq!(posts(), 1);

    let _ = b.stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), b.server).await;
}

/// `listkeeper status` (systemd's readiness notification is in tests/service.rs, in a process
/// of its own: NOTIFY_SOCKET is read by every server of this test binary).
#[tokio::test]
async fn status_reports_counters() {
    let b = boot(&[("dev", common::DEV_LIST)], "").await;
    let post = common::post("p@outside.test", "dev@example.org", "counted");
    dialogue(
        tokio::net::UnixStream::connect(&b.sock)
            .await
            .expect("unix"),
        &format!("LHLO t\r\n{post}QUIT\r\n"),
    )
    .await;
    let status = control(&b.control, |c| c.request("status"))
        .await
        .expect("status");
    let text = status.join("\n");
    assert!(text.contains("lists_active 1"), "{text}");
    assert!(text.contains("list dev@example.org active"), "{text}");
    let distributed: u64 = status
        .iter()
        .find_map(|l| l.strip_prefix("posts_distributed "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(distributed >= 1, "{text}");
    let _ = b.stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), b.server).await;
}

/// Editing the global file applies limits and re-injection parallelism live; an invalid edit
/// changes nothing.
#[tokio::test]
async fn global_file_edits_apply_live() {
    let b = boot(&[("dev", common::DEV_LIST)], "").await;
    let path = b.dir.path().join("listkeeper.toml");
    let original = std::fs::read_to_string(&path).expect("read");
    let status = |b: &Booted| {
        let c = b.control.clone();
        async move {
            control(&c, |c| c.request("status"))
                .await
                .expect("status")
                .join("\n")
        }
    };
    let first = status(&b).await;
    assert!(first.contains("reinject_connections 4"), "{first}");

    std::fs::write(
        &path,
        format!("{original}[limits]\nmax_recipients = 1\n[reinject_]\n"),
    )
    .expect("write");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        status(&b).await.contains("max_recipients 1000"),
        "an invalid file changes nothing"
    );

    std::fs::write(
        &path,
        original.replace("[reinject]\n", "[reinject]\nconnections = 2\n")
            + "[limits]\nmax_recipients = 1\n",
    )
    .expect("write");
    let mut text = String::new();
    for _ in 0..100 {
        text = status(&b).await;
        if text.contains("reinject_connections 2") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        text.contains("reinject_connections 2") && text.contains("max_recipients 1"),
        "{text}"
    );
    let t = dialogue(
        tokio::net::UnixStream::connect(&b.sock).await.expect("unix"),
        "LHLO t\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<dev@example.org>\r\nRCPT TO:<dev-owner@example.org>\r\nQUIT\r\n",
    )
    .await;
    assert!(t.contains("452 4.5.3"), "{t}");
    let _ = b.stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), b.server).await;
}

/// After an invalid edit of a serving list's file, `listkeeper lists` says what the running
/// server does: the list is active on its last good version (the file's error beside it),
/// not DISABLED as the file alone would say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_shows_a_list_serving_its_last_good_version_as_active() {
    let b = boot(&[("dev", common::DEV_LIST)], "").await;
    std::fs::write(b.dir.path().join("lists.d/dev.toml"), "address = [").expect("edit");
    let config = b.dir.path().join("listkeeper.toml");
    let mut out = String::new();
    for _ in 0..100 {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_listkeeper"))
            .args(["lists", "--config"])
            .arg(&config)
            .output()
            .expect("lists");
        out = String::from_utf8_lossy(&o.stdout).into_owned();
        if out.contains("last good version") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let line = out
        .lines()
        .find(|l| l.starts_with("dev@example.org"))
        .unwrap_or_default();
    assert!(
        line.contains("active") && !line.contains("DISABLED"),
        "{out}"
    );
    assert!(
        out.contains("the server serves the last good version; the file has errors"),
        "{out}"
    );
    let _ = b.stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), b.server).await;
}
