//! Shared test harness: an in-process SMTP sink that plays the MTA's re-injection port, and a
//! listkeeper context (temp data dir, lists, store, pool) pointed at it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use listkeeper::address::Address;
use listkeeper::config::Config;
use listkeeper::context::Context;
use listkeeper::registry::Registry;
use listkeeper::reinject::Pool;
use listkeeper::store::Store;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// One transaction the sink accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub rcpts: Vec<String>,
    pub data: Vec<u8>,
}

/// How the sink answers; changeable while it runs.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Reply to the final dot of transaction number N (0-based, counted over all
    /// connections), e.g. `Some((2, "451 4.3.0 try later"))`.
    pub fail_data_at: Option<(usize, String)>,
    /// Reply to RCPT for these addresses.
    pub rcpt_replies: Vec<(String, String)>,
    /// Close the connection in the middle of the message of transaction N.
    pub close_in_data_at: Option<usize>,
    /// Answer every final dot with this (e.g. "451 4.3.0 busy").
    pub fail_all_data: Option<String>,
    /// Don't offer PIPELINING.
    pub no_pipelining: bool,
    /// Take the message of transaction N and never answer its final dot (the connection stays
    /// open until the client closes it).
    pub stall_data_at: Option<usize>,
}

/// A loopback SMTP server that records what it accepts.
#[derive(Clone)]
pub struct Sink {
    pub addr: String,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub behaviour: Arc<Mutex<Behaviour>>,
    transactions: Arc<Mutex<usize>>,
    pub connections: Arc<Mutex<usize>>,
    /// Transactions open right now (MAIL seen, final reply not yet sent) and the most at once.
    pub open_tx: Arc<Mutex<(usize, usize)>>,
}

impl Sink {
    pub async fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        Sink::serve(listener)
    }

    /// Start on a given port (to bring a sink "back" where an earlier one was).
    pub async fn start_at(addr: &str) -> Sink {
        let listener = TcpListener::bind(addr).await.expect("bind sink");
        Sink::serve(listener)
    }

    fn serve(listener: TcpListener) -> Sink {
        let sink = Sink {
            addr: listener.local_addr().expect("addr").to_string(),
            received: Arc::default(),
            behaviour: Arc::default(),
            transactions: Arc::default(),
            connections: Arc::default(),
            open_tx: Arc::default(),
        };
        let s = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                *s.connections.lock().expect("lock") += 1;
                let s = s.clone();
                tokio::spawn(async move { s.session(stream).await });
            }
        });
        sink
    }

    async fn session(&self, stream: tokio::net::TcpStream) {
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        let _ = w.write_all(b"220 sink ESMTP\r\n").await;
        let mut from = String::new();
        let mut rcpts: Vec<String> = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let cmd = line.trim_end().to_string();
            let upper = cmd.to_ascii_uppercase();
            let reply = if upper.starts_with("EHLO") {
                let b = self.behaviour.lock().expect("lock").clone();
                if b.no_pipelining {
                    "250-sink\r\n250-8BITMIME\r\n250 SIZE 100000000".to_string()
                } else {
                    "250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 100000000".to_string()
                }
            } else if upper.starts_with("MAIL FROM:") {
                from = between(&cmd, '<', '>');
                rcpts.clear();
                {
                    let mut o = self.open_tx.lock().expect("lock");
                    o.0 += 1;
                    o.1 = o.1.max(o.0);
                }
                "250 2.1.0 ok".into()
            } else if upper.starts_with("RCPT TO:") {
                let to = between(&cmd, '<', '>');
                let b = self.behaviour.lock().expect("lock").clone();
                match b.rcpt_replies.iter().find(|(a, _)| *a == to) {
                    Some((_, reply)) => reply.clone(),
                    None => {
                        rcpts.push(to);
                        "250 2.1.5 ok".into()
                    }
                }
            } else if upper == "DATA" {
                if rcpts.is_empty() {
                    "554 5.5.1 no valid recipients".into()
                } else {
                    let _ = w.write_all(b"354 go ahead\r\n").await;
                    let n = {
                        let mut t = self.transactions.lock().expect("lock");
                        *t += 1;
                        *t - 1
                    };
                    let b = self.behaviour.lock().expect("lock").clone();
                    let mut data = Vec::new();
                    loop {
                        let mut l = Vec::new();
                        if r.read_until(b'\n', &mut l).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if l == b".\r\n" {
                            break;
                        }
                        if b.close_in_data_at == Some(n) {
                            return;
                        }
                        let l = if l.starts_with(b"..") {
                            l[1..].to_vec()
                        } else {
                            l
                        };
                        data.extend_from_slice(&l);
                    }
                    {
                        let mut o = self.open_tx.lock().expect("lock");
                        o.0 = o.0.saturating_sub(1);
                    }
                    if b.stall_data_at == Some(n) {
                        let mut rest = Vec::new();
                        let _ = r.read_to_end(&mut rest).await;
                        return;
                    }
                    if let Some(reply) = b.fail_all_data.clone() {
                        reply
                    } else if let Some((_, reply)) =
                        b.fail_data_at.clone().filter(|(at, _)| *at == n)
                    {
                        reply
                    } else {
                        self.received.lock().expect("lock").push(Received {
                            from: from.clone(),
                            rcpts: rcpts.clone(),
                            data,
                        });
                        "250 2.0.0 queued".into()
                    }
                }
            } else if upper == "RSET" || upper == "NOOP" {
                rcpts.clear();
                "250 2.0.0 ok".into()
            } else if upper == "QUIT" {
                let _ = w.write_all(b"221 2.0.0 bye\r\n").await;
                return;
            } else {
                "502 5.5.1 unknown".into()
            };
            if w.write_all(format!("{reply}\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    }

    /// How many copies each address received.
    pub fn copies(&self) -> std::collections::BTreeMap<String, usize> {
        let mut m = std::collections::BTreeMap::new();
        for t in self.received.lock().expect("lock").iter() {
            for r in &t.rcpts {
                *m.entry(r.clone()).or_insert(0) += 1;
            }
        }
        m
    }

    pub fn transactions(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    pub fn set(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut self.behaviour.lock().expect("lock"));
    }
}

fn between(s: &str, a: char, b: char) -> String {
    match (s.find(a), s.rfind(b)) {
        (Some(i), Some(j)) if j > i => s[i + 1..j].to_string(),
        _ => String::new(),
    }
}

/// A listkeeper set-up in a temp dir: config, lists, store.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub config: Config,
}

pub const DEV_LIST: &str = "address = \"dev@example.org\"\ndisplay_name = \"Developers\"\nowners = [\"boss@owners.test\"]\n[posting]\npolicy = \"open\"\n[decoration]\nsubject_prefix = \"[dev]\"\nfooter = \"Developers list: {list_address}\"\n";
pub const TEAM_LIST: &str = "address = \"team@example.org\"\nowners = [\"boss@owners.test\"]\n[posting]\npolicy = \"members\"\nnon_member_action = \"reject\"\n";
pub const BROKEN_LIST: &str =
    "address = \"broken@example.org\"\nowners = [\"boss@owners.test\"]\ncolour = \"red\"\n";

impl Harness {
    /// A set-up with lists dev (open, 3 members), team (members-only, 1 member) and broken.
    pub fn new(target: &str, extra: &str) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let lists = dir.path().join("lists.d");
        std::fs::create_dir_all(&lists).expect("mkdir");
        std::fs::write(lists.join("dev.toml"), DEV_LIST).expect("write");
        std::fs::write(lists.join("team.toml"), TEAM_LIST).expect("write");
        std::fs::write(lists.join("broken.toml"), BROKEN_LIST).expect("write");
        // `extra` goes into [reinject] and may set its own timeout.
        let timeout = if extra.contains("timeout_secs") {
            ""
        } else {
            "timeout_secs = 5\n"
        };
        let text = format!(
            "[server]\nlmtp_listen = [\"unix:lmtp.sock\"]\ndata_dir = \"data\"\nlists_dir = \"lists.d\"\n[reinject]\ntarget = \"{target}\"\nhelo_name = \"lk.test\"\n{timeout}{extra}\n"
        );
        let path = dir.path().join("listkeeper.toml");
        std::fs::write(&path, &text).expect("write");
        let config = Config::parse(&path, &text).expect("config");
        let h = Harness { dir, config };
        let store = h.store();
        store
            .add_members(
                "dev@example.org",
                &addrs(&["a@members.test", "b@members.test", "c@members.test"]),
            )
            .expect("add");
        store
            .add_members("team@example.org", &addrs(&["m@members.test"]))
            .expect("add");
        h
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.config.server.data_dir.clone()
    }

    /// Open the store (only while no context holds it).
    pub fn store(&self) -> Store {
        Store::open(&self.config.server.data_dir, 1 << 20).expect("store")
    }

    /// A context as `serve` builds it.
    pub fn context(&self) -> Arc<Context> {
        let registry = Registry::load(&self.config.server.lists_dir, '+', None);
        let (_tx, rx) = watch::channel(Arc::new(registry));
        std::mem::forget(_tx);
        Arc::new(Context {
            config: watch::channel(Arc::new(self.config.clone())).1,
            registry: rx,
            store: self.store(),
            pool: Pool::start(&self.config.reinject),
            held_changed: tokio::sync::Notify::new(),
        })
    }
}

pub fn addrs(v: &[&str]) -> Vec<Address> {
    v.iter()
        .map(|a| Address::parse(a).expect("valid test address"))
        .collect()
}

/// Run an LMTP conversation over an in-memory pipe: `client` is written in one piece, then
/// everything the server says until it closes (or `wait` passes) is returned.
pub async fn converse(ctx: Arc<Context>, client: &[u8]) -> String {
    let (mut ours, theirs) = tokio::io::duplex(1 << 20);
    let (_stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(listkeeper::lmtp::Session::new(theirs, ctx, stop_rx).run());
    ours.write_all(client).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), ours.read_to_end(&mut out)).await;
    drop(ours);
    let _ = server.await;
    String::from_utf8_lossy(&out).into_owned()
}

/// A small post.
pub fn post(from: &str, to: &str, subject: &str) -> String {
    format!(
        "MAIL FROM:<{from}>\r\nRCPT TO:<{to}>\r\nDATA\r\nFrom: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nMessage-ID: <{subject}@test>\r\n\r\nHello list.\r\n.\r\n"
    )
}

/// A harness with a context and a sink, and helpers to send mail and read what went out.
pub struct World {
    pub sink: Sink,
    pub h: Harness,
    pub ctx: Arc<Context>,
}

impl World {
    /// The standard lists plus `extra_lists` (file stem, content); `extra` is appended to the
    /// global config.
    pub async fn new(extra: &str, extra_lists: &[(&str, &str)]) -> World {
        let sink = Sink::start().await;
        let h = Harness::new(&sink.addr, extra);
        for (name, text) in extra_lists {
            std::fs::write(h.path().join(format!("lists.d/{name}.toml")), text).expect("write");
        }
        let ctx = h.context();
        World { sink, h, ctx }
    }

    /// Deliver one mail over LMTP; returns the reply to the DATA (the recipient's outcome).
    pub async fn mail(&self, envelope_from: &str, rcpt: &str, headers: &str, body: &str) -> String {
        let session = format!(
            "LHLO mta.test\r\nMAIL FROM:<{envelope_from}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n{headers}\r\n\r\n{body}\r\n.\r\nQUIT\r\n"
        );
        let t = converse(self.ctx.clone(), session.as_bytes()).await;
        let lines: Vec<&str> = t.lines().collect();
        let start = lines
            .iter()
            .position(|l| l.starts_with("354"))
            .map_or(0, |p| p + 1);
        lines
            .get(start)
            .map(|s| s.to_string())
            .unwrap_or_else(|| format!("no outcome in: {t}"))
    }

    /// The mails the sink received for `to`, as text.
    pub fn mails_to(&self, to: &str) -> Vec<String> {
        self.sink
            .transactions()
            .into_iter()
            .filter(|t| t.rcpts.iter().any(|r| r == to))
            .map(|t| String::from_utf8_lossy(&t.data).into_owned())
            .collect()
    }

    /// The last mail to `to` (panics when there is none).
    pub fn last_to(&self, to: &str) -> String {
        self.mails_to(to)
            .pop()
            .unwrap_or_else(|| panic!("no mail to {to}; sink: {:?}", self.sink.copies()))
    }

    /// Is `addr` a member of `list`?
    pub fn is_member(&self, list: &str, addr: &str) -> bool {
        self.ctx
            .store
            .member_get(list, addr)
            .expect("store")
            .is_some()
    }
}

/// The token from a generated mail's Reply-To `NAME-confirm+TOKEN@DOMAIN`.
pub fn token_of(mail: &str) -> String {
    let line = mail
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("reply-to:"))
        .unwrap_or_else(|| panic!("no Reply-To in:\n{mail}"));
    let start = line.find("-confirm+").expect("confirm address") + "-confirm+".len();
    let rest = &line[start..];
    rest[..rest.find('@').expect("@")].to_string()
}

/// A header field, unfolded.
pub fn header(mail: &str, name: &str) -> Option<String> {
    let head = mail
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .replace("\r\n ", " ")
        .replace("\r\n\t", " ");
    head.lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with(&format!("{}:", name.to_ascii_lowercase()))
        })
        .map(str::to_string)
}

/// Poll `ready` every 50 ms for at most 10 s (waiting for a spawned server, not timing it).
pub fn wait_until(mut ready: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// SIGTERM to a spawned `listkeeper serve`, then its exit status (killed after 10 s more).
pub fn stop_server(mut child: std::process::Child) -> std::process::ExitStatus {
    // SAFETY: kill(2) on the pid of our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    if wait_until(|| matches!(child.try_wait(), Ok(Some(_)))) {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
    }
    let _ = child.kill();
    child.wait().expect("wait")
}

/// Write `client` to a live LMTP connection in one piece and read the replies until `221` or
/// 10 s of silence.
pub async fn dialogue<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: S,
    client: &str,
) -> String {
    let (r, mut w) = tokio::io::split(stream);
    w.write_all(client.as_bytes()).await.expect("write");
    let mut r = BufReader::new(r);
    let mut out = String::new();
    loop {
        let mut line = String::new();
        match tokio::time::timeout(Duration::from_secs(10), r.read_line(&mut line)).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
            Ok(Ok(_)) => out.push_str(&line),
        }
        if line.starts_with("221") {
            break;
        }
    }
    out
}

/// `listkeeper serve` running in this process: a unix LMTP listener `lmtp.sock`, the lists
/// given, `server_extra` in `[server]`, re-injection into a fresh sink.
pub struct Booted {
    /// The temp dir: `lmtp.sock`, `data/`, `lists.d/`.
    pub dir: tempfile::TempDir,
    pub sink: Sink,
    pub sock: PathBuf,
    pub control: PathBuf,
    pub stop: tokio::sync::oneshot::Sender<()>,
    pub server: tokio::task::JoinHandle<Result<(), listkeeper::server::ServerError>>,
}

pub async fn boot(lists: &[(&str, &str)], server_extra: &str) -> Booted {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let lists_dir = dir.path().join("lists.d");
    std::fs::create_dir_all(&lists_dir).expect("mkdir");
    for (name, text) in lists {
        std::fs::write(lists_dir.join(format!("{name}.toml")), text).expect("write");
    }
    let text = format!(
        "[server]\nlmtp_listen = [\"unix:lmtp.sock\"]\ndata_dir = \"data\"\n{server_extra}\n[reinject]\ntarget = \"{}\"\n",
        sink.addr
    );
    let path = dir.path().join("listkeeper.toml");
    std::fs::write(&path, &text).expect("write");
    let config = Config::parse(&path, &text).expect("config");
    let control = config.server.control_socket.clone();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(1);
    let server = tokio::spawn(listkeeper::server::run(
        config,
        async move {
            let _ = stop_rx.await;
            drop(reload_tx);
        },
        reload_rx,
    ));
    let sock = dir.path().join("lmtp.sock");
    for _ in 0..500 {
        if control.exists() && sock.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(sock.exists(), "the server did not come up");
    Booted {
        dir,
        sink,
        sock,
        control,
        stop,
        server,
    }
}

impl Booted {
    /// Shut it down and check that it stopped cleanly.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let r = tokio::time::timeout(Duration::from_secs(20), self.server)
            .await
            .expect("stops")
            .expect("join");
        assert!(r.is_ok(), "{r:?}");
    }
}
