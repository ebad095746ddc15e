//! `cargo bench --bench footprint`: how small, quiet and fast the real server is.
//!
//! Starts the release binary (`target/release/listkeeper serve`, the one cargo builds for this
//! bench) with generated configurations in a scratch directory under `target/`, plays the MTA
//! on both sides (LMTP clients over the unix socket, an in-process SMTP sink on 127.0.0.1 as
//! `reinject.target` that answers 250 to everything, offers PIPELINING and counts recipients)
//! and prints one table, figure next to target. See BENCHMARKS.md.
//!
//! Parts (all by default; name some as arguments or in `FOOTPRINT_PARTS=idle,latency,...`):
//! - `idle`: RSS, PSS and wake-ups (context switches of all threads) over an idle period
//!   after start-up and one post, with 1 list and with 20 000 lists of 50 members.
//! - `latency`: 1 000 posts one after another to a 10-member list over one LMTP connection.
//! - `throughput`: 20 LMTP clients posting 5 KB messages to 1 000 lists of 10 members.
//! - `scale`: `members add --file` of 1 000 000 addresses (offline and through the control
//!   socket), and one bulk post to a 100 000- and a 1 000 000-member list (time, VmHWM).
//!
//! `FOOTPRINT_QUICK=1` shrinks everything (about a minute). `FOOTPRINT_BIN` names another
//! binary, `FOOTPRINT_DIR` another scratch directory, `FOOTPRINT_KEEP=1` keeps it (with the
//! server logs). Everything talks to loopback and Unix sockets only, and every loop is bounded
//! in count and time.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream, UnixStream};

const DOMAIN: &str = "lists.footprint.test";
const POSTER: &str = "poster@example.net";
/// Longest any single LMTP reply may take (a post to a million members included).
const REPLY_TIMEOUT: Duration = Duration::from_secs(900);

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

fn err(msg: impl Into<String>) -> BoxError {
    msg.into().into()
}

// ------------------------------------------------------------------------------------------
// Options

#[derive(Debug, Clone)]
struct Opts {
    quick: bool,
    parts: Vec<String>,
    bin: PathBuf,
    scratch: PathBuf,
    keep: bool,
    idle: Duration,
    latency_posts: usize,
    tp_time: Duration,
    tp_clients: usize,
    tp_lists: usize,
    many_lists: usize,
    many_members: usize,
    mid_members: usize,
    big_members: usize,
}

const ALL_PARTS: &[&str] = &["idle", "latency", "throughput", "scale"];

impl Opts {
    fn from_env() -> Opts {
        let quick = std::env::var("FOOTPRINT_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let mut parts: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with("--"))
            .collect();
        if let Ok(p) = std::env::var("FOOTPRINT_PARTS") {
            parts.extend(p.split(',').map(|s| s.trim().to_string()));
        }
        parts.retain(|p| !p.is_empty());
        if parts.is_empty() {
            parts = ALL_PARTS.iter().map(|s| s.to_string()).collect();
        }
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| manifest.join("target"));
        let bin = std::env::var_os("FOOTPRINT_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_listkeeper")));
        let scratch = std::env::var_os("FOOTPRINT_DIR")
            .map(PathBuf::from)
            .unwrap_or(target);
        let keep = std::env::var("FOOTPRINT_KEEP").is_ok_and(|v| !v.is_empty() && v != "0");
        let q = |full: usize, small: usize| if quick { small } else { full };
        Opts {
            quick,
            parts,
            bin,
            scratch,
            keep,
            idle: Duration::from_secs(q(30, 5) as u64),
            latency_posts: q(1000, 200),
            tp_time: Duration::from_secs(q(30, 5) as u64),
            tp_clients: 20,
            tp_lists: q(1000, 100),
            many_lists: q(20_000, 2_000),
            many_members: 50,
            mid_members: q(100_000, 10_000),
            big_members: q(1_000_000, 100_000),
        }
    }

    fn wants(&self, part: &str) -> bool {
        self.parts.iter().any(|p| p == part)
    }
}

// ------------------------------------------------------------------------------------------
// The report

struct Row {
    part: String,
    metric: String,
    value: String,
    target: String,
    /// None: no target.
    ok: Option<bool>,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Report {
    fn row(&mut self, part: &str, metric: &str, value: String, target: &str, ok: Option<bool>) {
        let mark = match ok {
            Some(true) => "ok",
            Some(false) => "MISSED",
            None => "",
        };
        eprintln!("  {part:<10} {metric:<58} {value:>18}  {target} {mark}");
        self.rows.push(Row {
            part: part.into(),
            metric: metric.into(),
            value,
            target: target.into(),
            ok,
        });
    }

    fn note(&mut self, n: String) {
        eprintln!("  note: {n}");
        self.notes.push(n);
    }

    fn markdown(&self, opts: &Opts) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "listkeeper footprint ({} run, {} cores)\n",
            if opts.quick { "QUICK" } else { "full" },
            cores()
        );
        let _ = writeln!(s, "| part | measure | value | target | |");
        let _ = writeln!(s, "|---|---|---:|---|---|");
        for r in &self.rows {
            let mark = match r.ok {
                Some(true) => "ok",
                Some(false) => "**missed**",
                None => "",
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                r.part, r.metric, r.value, r.target, mark
            );
        }
        if !self.notes.is_empty() {
            let _ = writeln!(s);
            for n in &self.notes {
                let _ = writeln!(s, "- {n}");
            }
        }
        s
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

/// Nearest-rank percentile of sorted durations.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// ------------------------------------------------------------------------------------------
// /proc

#[derive(Debug, Clone, Copy, Default)]
struct Mem {
    rss_kb: u64,
    pss_kb: u64,
    hwm_kb: u64,
    threads: u64,
}

fn field_kb(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(key)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0)
}

fn mem(pid: u32) -> Mem {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    Mem {
        rss_kb: field_kb(&rollup, "Rss").max(field_kb(&status, "VmRSS")),
        pss_kb: field_kb(&rollup, "Pss"),
        hwm_kb: field_kb(&status, "VmHWM"),
        threads: field_kb(&status, "Threads"),
    }
}

/// Reset VmHWM to the current RSS (`echo 5 > /proc/PID/clear_refs`).
fn reset_hwm(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// utime + stime of the whole process, in clock ticks (100 per second on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name is in parentheses and may contain spaces: fields count from after it.
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // Field 14 (utime) and 15 (stime) counted from 1 over the whole line; `after` starts at 3.
    get(11) + get(12)
}

const TICK_MS: f64 = 10.0;

/// Busy clock ticks of the whole machine (all cores) since boot.
fn machine_busy_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu = stat.lines().next().unwrap_or_default();
    // cpu user nice system idle iowait irq softirq steal ...
    cpu.split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse::<u64>().ok())
        .enumerate()
        .filter(|(i, _)| !matches!(i, 3 | 4))
        .map(|(_, v)| v)
        .take(6)
        .sum()
}

/// Per thread: (name, voluntary + involuntary context switches).
fn switches(pid: u32) -> HashMap<u32, (String, u64)> {
    let mut out = HashMap::new();
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for e in rd.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        let name = status
            .lines()
            .find_map(|l| l.strip_prefix("Name:"))
            .unwrap_or("?")
            .trim()
            .to_string();
        let n = field_kb(&status, "voluntary_ctxt_switches")
            + field_kb(&status, "nonvoluntary_ctxt_switches");
        out.insert(tid, (name, n));
    }
    out
}

struct Idle {
    total: u64,
    per_second: Vec<u64>,
    /// (thread name, tid) -> switches in the window.
    by_thread: BTreeMap<(String, u32), u64>,
    threads_before: usize,
    threads_after: usize,
    /// Threads that exited in the window (each woke up at least once to do so).
    exited: Vec<String>,
    /// The second before the window (the end of the post), not counted.
    tail: String,
}

impl Idle {
    /// Context switches plus thread exits.
    fn wakeups(&self) -> u64 {
        self.total + self.exited.len() as u64
    }

    fn who(&self) -> String {
        let who: Vec<String> = self
            .by_thread
            .iter()
            .map(|((name, tid), n)| format!("{name}[{tid}]: {n}"))
            .collect();
        if who.is_empty() {
            "none".into()
        } else {
            who.join(", ")
        }
    }
}

/// Watch `pid` for `window`, sampling every thread's context switches once a second (reading
/// /proc does not wake the process). New threads count from zero; a thread that exits between
/// two samples loses what it did after the last one (at most its exit).
async fn watch_idle(pid: u32, window: Duration) -> Idle {
    let mut prev = switches(pid);
    let threads_before = prev.len();
    let mut per_second = Vec::new();
    let mut by_thread: BTreeMap<(String, u32), u64> = BTreeMap::new();
    let mut exited = Vec::new();
    let start = Instant::now();
    let mut tick = 1u32;
    while start.elapsed() < window {
        let next = start + Duration::from_secs(u64::from(tick));
        tokio::time::sleep_until(next.into()).await;
        tick += 1;
        let now = switches(pid);
        let mut sum = 0;
        for (tid, (name, n)) in &now {
            let before = prev.get(tid).map_or(0, |p| p.1);
            let d = n.saturating_sub(before);
            if d > 0 {
                *by_thread.entry((name.clone(), *tid)).or_default() += d;
            }
            sum += d;
        }
        for (tid, (name, _)) in prev.iter().filter(|(t, _)| !now.contains_key(t)) {
            exited.push(format!("{name}[{tid}] at {}s", tick - 1));
        }
        per_second.push(sum);
        prev = now;
    }
    Idle {
        total: per_second.iter().sum(),
        per_second,
        by_thread,
        threads_before,
        threads_after: prev.len(),
        exited,
        tail: String::new(),
    }
}

// ------------------------------------------------------------------------------------------
// The SMTP sink (plays the MTA's re-injection port)

#[derive(Default)]
struct SinkStats {
    rcpts: AtomicU64,
    txns: AtomicU64,
    conns: AtomicU64,
    /// `X-Footprint-Seq` of a message -> when its latest copy was accepted.
    accepted: Mutex<HashMap<u64, Instant>>,
}

impl SinkStats {
    fn accepted_at(&self, seq: u64) -> Option<Instant> {
        self.accepted.lock().ok()?.get(&seq).copied()
    }
}

async fn start_sink() -> Res<(String, Arc<SinkStats>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let stats = Arc::new(SinkStats::default());
    let st = stats.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            st.conns.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(sink_session(stream, st.clone()));
        }
    });
    Ok((addr, stats))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn seq_of(message: &[u8]) -> Option<u64> {
    let head = &message[..message.len().min(16 * 1024)];
    let at = find(head, b"\nX-Footprint-Seq: ")? + 18;
    let digits: Vec<u8> = head[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// One SMTP session: replies are collected and written when the input is drained, so a
/// pipelined group gets one write back.
async fn sink_session(stream: TcpStream, st: Arc<SinkStats>) {
    let _ = stream.set_nodelay(true);
    let (mut r, mut w) = stream.into_split();
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut chunk = vec![0u8; 1 << 16];
    let mut pos = 0usize;
    // While reading a message (which starts at `pos`): where to resume looking for its end.
    let mut data: Option<usize> = None;
    let mut rcpts = 0u64;
    let mut out: Vec<u8> = b"220 footprint-sink ESMTP\r\n".to_vec();
    loop {
        loop {
            if let Some(scan) = data {
                let msg = &buf[pos..];
                let end = if scan == 0 && msg.starts_with(b".\r\n") {
                    Some((0, 3))
                } else {
                    find(&msg[scan.min(msg.len())..], b"\r\n.\r\n")
                        .map(|i| (scan + i + 2, scan + i + 5))
                };
                let Some((body_end, consumed)) = end else {
                    data = Some(msg.len().saturating_sub(4));
                    break;
                };
                let seq = seq_of(&msg[..body_end]);
                st.rcpts.fetch_add(rcpts, Ordering::Relaxed);
                st.txns.fetch_add(1, Ordering::Relaxed);
                if let Some(seq) = seq {
                    if let Ok(mut m) = st.accepted.lock() {
                        m.insert(seq, Instant::now());
                    }
                }
                out.extend_from_slice(b"250 2.0.0 queued\r\n");
                pos += consumed;
                data = None;
                rcpts = 0;
                continue;
            }
            let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') else {
                break;
            };
            let verb = buf[pos..pos + nl]
                .iter()
                .take(4)
                .map(u8::to_ascii_uppercase)
                .collect::<Vec<u8>>();
            pos += nl + 1;
            match verb.as_slice() {
                b"EHLO" => out.extend_from_slice(
                    b"250-footprint-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 104857600\r\n",
                ),
                b"HELO" | b"NOOP" => out.extend_from_slice(b"250 2.0.0 ok\r\n"),
                b"MAIL" | b"RSET" => {
                    rcpts = 0;
                    out.extend_from_slice(b"250 2.0.0 ok\r\n");
                }
                b"RCPT" => {
                    rcpts += 1;
                    out.extend_from_slice(b"250 2.1.5 ok\r\n");
                }
                b"DATA" if rcpts > 0 => {
                    out.extend_from_slice(b"354 go ahead\r\n");
                    data = Some(0);
                }
                b"DATA" => out.extend_from_slice(b"554 5.5.1 no valid recipients\r\n"),
                b"QUIT" => {
                    let _ = w.write_all(b"221 2.0.0 bye\r\n").await;
                    return;
                }
                _ => out.extend_from_slice(b"500 5.5.2 what?\r\n"),
            }
        }
        if !out.is_empty() {
            if w.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if pos > 0 {
            buf.drain(..pos);
            pos = 0;
        }
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

// ------------------------------------------------------------------------------------------
// The LMTP client (plays the MTA's delivery agent)

struct Lmtp {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
    last: String,
}

struct Posted {
    code: u16,
    /// When the final `.` was written.
    dot: Instant,
    /// When its reply was read.
    replied: Instant,
}

impl Lmtp {
    async fn connect(path: &Path) -> Res<Lmtp> {
        let s = UnixStream::connect(path).await?;
        let (r, w) = s.into_split();
        let mut c = Lmtp {
            r: BufReader::new(r),
            w,
            last: String::new(),
        };
        let greeting = c.reply().await?;
        if greeting != 220 {
            return Err(err(format!("LMTP greeting: {}", c.last)));
        }
        c.w.write_all(b"LHLO footprint.test\r\n").await?;
        if c.reply().await? != 250 {
            return Err(err(format!("LHLO: {}", c.last)));
        }
        Ok(c)
    }

    /// One (possibly multi-line) reply; its code.
    async fn reply(&mut self) -> Res<u16> {
        self.last.clear();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(REPLY_TIMEOUT, self.r.read_line(&mut line)).await??;
            if n == 0 {
                return Err(err("the LMTP server closed the connection"));
            }
            self.last.push_str(&line);
            let b = line.as_bytes();
            if b.len() < 4 || b[3] != b'-' {
                return line
                    .get(..3)
                    .and_then(|c| c.parse().ok())
                    .ok_or_else(|| err(format!("bad reply {line:?}")));
            }
        }
    }

    /// MAIL, RCPT and DATA pipelined, then the message (`body` ends with CRLF, dot-stuffed),
    /// then the final dot on its own.
    async fn post(&mut self, rcpt: &str, body: &[u8]) -> Res<Posted> {
        let cmds = format!("MAIL FROM:<{POSTER}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n");
        self.w.write_all(cmds.as_bytes()).await?;
        let mail = self.reply().await?;
        let rc = self.reply().await?;
        let data = self.reply().await?;
        if mail != 250 || rc != 250 || data != 354 {
            return Err(err(format!(
                "MAIL {mail} RCPT {rc} DATA {data}: {}",
                self.last.trim_end()
            )));
        }
        self.w.write_all(body).await?;
        let dot = Instant::now();
        self.w.write_all(b".\r\n").await?;
        let code = self.reply().await?;
        let replied = Instant::now();
        if code != 250 {
            return Err(err(format!("post to {rcpt}: {}", self.last.trim_end())));
        }
        Ok(Posted { code, dot, replied })
    }

    async fn quit(mut self) {
        let _ = self.w.write_all(b"QUIT\r\n").await;
        let _ = self.reply().await;
    }
}

/// A post of about `size` bytes, tagged with `seq` for the sink.
fn message(list: &str, seq: u64, size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Poster <{POSTER}>\r\nTo: {list}\r\nSubject: footprint {seq}\r\n\
         Message-ID: <{seq}.{}@footprint.test>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
         X-Footprint-Seq: {seq}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
        std::process::id()
    )
    .into_bytes();
    let line = b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n";
    while m.len() < size {
        m.extend_from_slice(line);
    }
    m
}

fn list_addr(name: &str) -> String {
    format!("{name}@{DOMAIN}")
}

// ------------------------------------------------------------------------------------------
// Configurations and the server process

struct Setup {
    root: PathBuf,
    config: PathBuf,
    lists: PathBuf,
    lmtp: PathBuf,
    control: PathBuf,
    bin: PathBuf,
}

impl Setup {
    fn new(base: &Path, name: &str, sink: &str, bin: &Path) -> Res<Setup> {
        let root = base.join(name);
        let lists = root.join("lists.d");
        std::fs::create_dir_all(&lists)?;
        let config = root.join("listkeeper.toml");
        let text = format!(
            "[server]\nlmtp_listen = [\"unix:{lmtp}\"]\ndata_dir = \"{data}\"\nlists_dir = \"{lists}\"\n\
             control_socket = \"{control}\"\nworker_threads = 2\n\n\
             [reinject]\ntarget = \"{sink}\"\nconnections = 4\nmax_recipients_per_transaction = 500\n",
            lmtp = root.join("lmtp.sock").display(),
            data = root.join("data").display(),
            lists = lists.display(),
            control = root.join("control.sock").display(),
        );
        std::fs::write(&config, text)?;
        Ok(Setup {
            lmtp: root.join("lmtp.sock"),
            control: root.join("control.sock"),
            root,
            config,
            lists,
            bin: bin.to_path_buf(),
        })
    }

    /// A list anyone may post to (bulk delivery, the default decoration).
    fn add_list(&self, name: &str) -> Res<()> {
        let text = format!(
            "address = \"{}\"\nowners = [\"owner@footprint.test\"]\n\n[posting]\npolicy = \"open\"\n",
            list_addr(name)
        );
        std::fs::write(self.lists.join(format!("{name}.toml")), text)?;
        Ok(())
    }

    /// `listkeeper SUB... --config FILE`.
    fn cli(&self, sub: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(sub).arg("--config").arg(&self.config);
        c
    }
}

struct Server {
    child: Child,
    pid: u32,
    /// exec -> the LMTP greeting read on the socket.
    startup: Duration,
}

impl Server {
    async fn start(setup: &Setup, tag: &str) -> Res<Server> {
        let log = std::fs::File::create(setup.root.join(format!("server-{tag}.log")))?;
        let t0 = Instant::now();
        let mut child = Command::new(&setup.bin)
            .arg("serve")
            .arg("--config")
            .arg(&setup.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let pid = child.id();
        loop {
            if let Some(st) = child.try_wait()? {
                return Err(err(format!(
                    "listkeeper serve exited with {st} (see {}/server-{tag}.log)",
                    setup.root.display()
                )));
            }
            if let Ok(s) = UnixStream::connect(&setup.lmtp).await {
                let mut r = BufReader::new(s);
                let mut line = String::new();
                if r.read_line(&mut line).await.is_ok() && line.starts_with("220") {
                    break;
                }
            }
            if t0.elapsed() > Duration::from_secs(300) {
                let _ = child.kill();
                return Err(err("listkeeper serve did not accept within 300 s"));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let startup = t0.elapsed();
        // The CLI needs the control socket too (it is bound right after the listeners).
        let t1 = Instant::now();
        while std::os::unix::net::UnixStream::connect(&setup.control).is_err() {
            if t1.elapsed() > Duration::from_secs(30) {
                return Err(err("the control socket did not appear"));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(Server {
            child,
            pid,
            startup,
        })
    }

    /// Processes besides the server itself (its children).
    fn children(&self) -> usize {
        let Ok(rd) = std::fs::read_dir(format!("/proc/{}/task", self.pid)) else {
            return 0;
        };
        rd.flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
            .map(|c| c.split_whitespace().count())
            .sum()
    }

    async fn stop(mut self) -> Res<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(60) {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Err(err("listkeeper did not stop within 60 s of SIGTERM"))
    }
}

impl Drop for Server {
    /// A part that failed half-way leaves no server behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Write `n` member addresses for list `tag` to a file (one a line).
fn address_file(path: &Path, tag: &str, n: usize) -> Res<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    for i in 0..n {
        writeln!(w, "member{i:07}.{tag}@m{:02}.footprint.test", i % 97)?;
    }
    w.flush()?;
    Ok(())
}

/// `listkeeper members add LIST --file FILE`: wall time and the CLI's peak RSS (VmHWM sampled
/// every 20 ms until it exits, so close to but at most the true peak).
async fn cli_add(setup: &Setup, list: &str, file: &Path) -> Res<(Duration, u64, String)> {
    let mut cmd = setup.cli(&["members", "add"]);
    cmd.arg(list_addr(list))
        .arg("--file")
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t0 = Instant::now();
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let mut hwm = 0;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        hwm = hwm.max(mem(pid).hwm_kb);
        if t0.elapsed() > Duration::from_secs(1800) {
            let _ = child.kill();
            return Err(err("members add did not finish in 30 min"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = t0.elapsed();
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut o, &mut out);
    }
    if !status.success() {
        let mut e = String::new();
        if let Some(mut o) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut o, &mut e);
        }
        return Err(err(format!("members add failed: {status}: {e}")));
    }
    Ok((took, hwm, out.trim().to_string()))
}

/// Add members to many lists through a running server's control socket (one connection and
/// one store transaction per list).
async fn control_add(setup: &Setup, lists: &[String], per_list: usize) -> Res<()> {
    for name in lists {
        let s = UnixStream::connect(&setup.control).await?;
        let (r, mut w) = s.into_split();
        let mut req = format!("add {}\n", list_addr(name));
        for i in 0..per_list {
            let _ = writeln!(req, "m{i:03}.{name}@members.footprint.test");
        }
        req.push_str(".\n");
        w.write_all(req.as_bytes()).await?;
        let mut line = String::new();
        BufReader::new(r).read_line(&mut line).await?;
        if !line.starts_with("ok ") {
            return Err(err(format!("control add {name}: {}", line.trim_end())));
        }
    }
    Ok(())
}

/// One post to `list`; returns (dot -> reply, dot -> last copy accepted by the sink).
async fn post_once(
    setup: &Setup,
    sink: &SinkStats,
    list: &str,
    seq: u64,
) -> Res<(Duration, Option<Duration>)> {
    let mut c = Lmtp::connect(&setup.lmtp).await?;
    let p = c.post(&list_addr(list), &message(list, seq, 2048)).await?;
    c.quit().await;
    let last = sink
        .accepted_at(seq)
        .map(|t| t.saturating_duration_since(p.dot));
    Ok((p.replied - p.dot, last))
}

// ------------------------------------------------------------------------------------------
// The parts

struct Ctx {
    opts: Opts,
    base: PathBuf,
    sink: String,
    stats: Arc<SinkStats>,
    seq: AtomicU64,
}

impl Ctx {
    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }
}

struct IdleRun<'a> {
    label: &'a str,
    procs: usize,
    mem: Mem,
    idle: &'a Idle,
    window: Duration,
    rss_target_mb: u64,
}

fn idle_rows(rep: &mut Report, run: IdleRun<'_>) {
    let IdleRun {
        label,
        procs,
        mem: mem_after,
        idle,
        window,
        rss_target_mb,
    } = run;
    rep.row(
        "idle",
        &format!("{label}: processes"),
        procs.to_string(),
        "1",
        Some(procs == 1),
    );
    rep.row(
        "idle",
        &format!("{label}: RSS after start, 1 post, idle"),
        mb(mem_after.rss_kb),
        &format!("< {rss_target_mb} MB"),
        Some(mem_after.rss_kb < rss_target_mb * 1024),
    );
    rep.row(
        "idle",
        &format!("{label}: threads"),
        mem_after.threads.to_string(),
        "",
        None,
    );
    rep.row(
        "idle",
        &format!("{label}: PSS"),
        mb(mem_after.pss_kb),
        "",
        None,
    );
    let per_s = idle.wakeups() as f64 / window.as_secs_f64();
    rep.row(
        "idle",
        &format!(
            "{label}: wake-ups/s over {} s idle ({} switches + {} thread exits)",
            window.as_secs(),
            idle.total,
            idle.exited.len()
        ),
        format!("{per_s:.2}"),
        "0",
        Some(idle.wakeups() == 0),
    );
    let last: u64 = idle.per_second.iter().rev().take(10).sum();
    rep.row(
        "idle",
        &format!("{label}: wake-ups in the last 10 s of the window"),
        last.to_string(),
        "0",
        Some(last == 0),
    );
    rep.note(format!(
        "idle {label}: second after the post (not counted): {} switches; window: threads {} -> {}, \
         exited: [{}]; switches per second {:?}; by thread: {}",
        idle.tail,
        idle.threads_before,
        idle.threads_after,
        idle.exited.join(", "),
        idle.per_second,
        idle.who()
    ));
}

/// Let the post's tail end (session close, replies) for a second, then watch the idle window.
async fn settle_then_watch(pid: u32, window: Duration) -> Idle {
    let tail = watch_idle(pid, Duration::from_secs(1)).await;
    let mut idle = watch_idle(pid, window).await;
    idle.tail = format!("{} ({})", tail.total, tail.who());
    idle
}

async fn part_idle(cx: &Ctx, rep: &mut Report) -> Res<()> {
    let o = &cx.opts;
    // One list of 10 members.
    eprintln!("idle: 1 list");
    let setup = Setup::new(&cx.base, "idle-1", &cx.sink, &o.bin)?;
    setup.add_list("solo")?;
    let f = setup.root.join("solo.txt");
    address_file(&f, "solo", 10)?;
    cli_add(&setup, "solo", &f).await?;
    let srv = Server::start(&setup, "idle").await?;
    rep.row(
        "idle",
        "1 list: start-up (exec -> LMTP greeting)",
        ms(srv.startup),
        "",
        None,
    );
    post_once(&setup, &cx.stats, "solo", cx.next_seq()).await?;
    let idle = settle_then_watch(srv.pid, o.idle).await;
    idle_rows(
        rep,
        IdleRun {
            label: "1 list",
            procs: 1 + srv.children(),
            mem: mem(srv.pid),
            idle: &idle,
            window: o.idle,
            rss_target_mb: 15,
        },
    );
    srv.stop().await?;

    // Many lists of 50 members.
    let n = o.many_lists;
    eprintln!("idle: {n} lists of {} members", o.many_members);
    let setup = Setup::new(&cx.base, "idle-many", &cx.sink, &o.bin)?;
    let names: Vec<String> = (0..n).map(|i| format!("l{i:05}")).collect();
    for name in &names {
        setup.add_list(name)?;
    }
    let srv = Server::start(&setup, "many-empty").await?;
    let m0 = mem(srv.pid);
    rep.row(
        "scale",
        &format!("{n} list files, empty store: start-up"),
        ms(srv.startup),
        "",
        None,
    );
    rep.row(
        "scale",
        &format!("{n} list files, empty store: RSS after start-up"),
        mb(m0.rss_kb),
        "",
        None,
    );
    let t = Instant::now();
    control_add(&setup, &names, o.many_members).await?;
    let took = t.elapsed();
    rep.row(
        "scale",
        &format!(
            "{n} lists x {} members via the control socket",
            o.many_members
        ),
        secs(took),
        "",
        None,
    );
    srv.stop().await?;
    let srv = Server::start(&setup, "many").await?;
    let m1 = mem(srv.pid);
    rep.row(
        "scale",
        &format!("{n} lists, {} members: start-up", n * o.many_members),
        ms(srv.startup),
        "",
        None,
    );
    rep.row(
        "scale",
        &format!(
            "{n} lists, {} members: RSS after start-up",
            n * o.many_members
        ),
        mb(m1.rss_kb),
        "< 60 MB",
        Some(m1.rss_kb < 60 * 1024),
    );
    post_once(&setup, &cx.stats, &names[n / 2], cx.next_seq()).await?;
    let idle = settle_then_watch(srv.pid, o.idle).await;
    idle_rows(
        rep,
        IdleRun {
            label: &format!("{n} lists"),
            procs: 1 + srv.children(),
            mem: mem(srv.pid),
            idle: &idle,
            window: o.idle,
            rss_target_mb: 60,
        },
    );
    // A reload (SIGHUP, or any edit in the lists directory) re-reads every file.
    let log = setup.root.join("server-many.log");
    let count = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .matches("lists reloaded")
            .count()
    };
    let before = count(&log);
    let rss0 = mem(srv.pid).rss_kb;
    reset_hwm(srv.pid);
    let t = Instant::now();
    let _ = Command::new("kill")
        .args(["-HUP", &srv.pid.to_string()])
        .status();
    while count(&log) == before && t.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = t.elapsed();
    let m = mem(srv.pid);
    rep.row(
        "scale",
        &format!("{n} lists: reload (SIGHUP -> \"lists reloaded\")"),
        ms(took),
        "",
        None,
    );
    rep.row(
        "scale",
        &format!("{n} lists: peak RSS during the reload (VmHWM)"),
        format!(
            "{} (RSS before {}, after {})",
            mb(m.hwm_kb),
            mb(rss0),
            mb(m.rss_kb)
        ),
        "",
        None,
    );
    srv.stop().await?;
    Ok(())
}

async fn part_latency(cx: &Ctx, rep: &mut Report) -> Res<()> {
    let o = &cx.opts;
    eprintln!("latency: {} posts to a 10-member list", o.latency_posts);
    let setup = Setup::new(&cx.base, "latency", &cx.sink, &o.bin)?;
    setup.add_list("lat")?;
    let f = setup.root.join("lat.txt");
    address_file(&f, "lat", 10)?;
    cli_add(&setup, "lat", &f).await?;
    let srv = Server::start(&setup, "latency").await?;
    let mut c = Lmtp::connect(&setup.lmtp).await?;
    // Warm up: the re-injection connections open on first use.
    for _ in 0..10 {
        let seq = cx.next_seq();
        c.post(&list_addr("lat"), &message("lat", seq, 2048))
            .await?;
    }
    let mut reply = Vec::with_capacity(o.latency_posts);
    let mut sunk = Vec::with_capacity(o.latency_posts);
    let cpu0 = cpu_ticks(srv.pid);
    let t0 = Instant::now();
    for _ in 0..o.latency_posts {
        let seq = cx.next_seq();
        let body = message("lat", seq, 2048);
        let p = c.post(&list_addr("lat"), &body).await?;
        debug_assert_eq!(p.code, 250);
        reply.push(p.replied - p.dot);
        match cx.stats.accepted_at(seq) {
            Some(t) => sunk.push(t.saturating_duration_since(p.dot)),
            None => return Err(err(format!("post {seq} was answered 250 but not sunk"))),
        }
    }
    let wall = t0.elapsed();
    let cpu = (cpu_ticks(srv.pid) - cpu0) as f64 * TICK_MS;
    c.quit().await;
    reply.sort();
    sunk.sort();
    let (p50, p99) = (pct(&reply, 50.0), pct(&reply, 99.0));
    let n = o.latency_posts;
    rep.row(
        "latency",
        &format!("{n} posts, 10 members: dot -> LMTP reply p50"),
        ms(p50),
        "< 2 ms",
        Some(p50 < Duration::from_millis(2)),
    );
    rep.row(
        "latency",
        "dot -> LMTP reply p99",
        ms(p99),
        "< 10 ms",
        Some(p99 < Duration::from_millis(10)),
    );
    rep.row(
        "latency",
        "dot -> LMTP reply max",
        ms(*reply.last().unwrap_or(&Duration::ZERO)),
        "",
        None,
    );
    rep.row(
        "latency",
        "dot -> last copy accepted by the sink p50",
        ms(pct(&sunk, 50.0)),
        "< 2 ms",
        Some(pct(&sunk, 50.0) < Duration::from_millis(2)),
    );
    rep.row(
        "latency",
        "dot -> last copy accepted by the sink p99",
        ms(pct(&sunk, 99.0)),
        "< 10 ms",
        Some(pct(&sunk, 99.0) < Duration::from_millis(10)),
    );
    rep.row(
        "latency",
        "dot -> last copy accepted by the sink max",
        ms(*sunk.last().unwrap_or(&Duration::ZERO)),
        "",
        None,
    );
    rep.row(
        "latency",
        "listkeeper CPU per post (utime+stime)",
        format!("{:.2} ms", cpu / n as f64),
        "",
        None,
    );
    rep.note(format!(
        "latency: {n} posts in {} ({:.0} posts/s one at a time)",
        secs(wall),
        n as f64 / wall.as_secs_f64()
    ));
    srv.stop().await?;
    Ok(())
}

async fn part_throughput(cx: &Ctx, rep: &mut Report) -> Res<()> {
    let o = &cx.opts;
    let nl = o.tp_lists;
    eprintln!(
        "throughput: {} clients, {nl} lists of 10, {} s",
        o.tp_clients,
        o.tp_time.as_secs()
    );
    let setup = Arc::new(Setup::new(&cx.base, "throughput", &cx.sink, &o.bin)?);
    let names: Vec<String> = (0..nl).map(|i| format!("t{i:04}")).collect();
    for n in &names {
        setup.add_list(n)?;
    }
    let srv = Server::start(&setup, "throughput").await?;
    control_add(&setup, &names, 10).await?;
    let names = Arc::new(names);
    let body_size = 5 * 1024;
    let rcpts0 = cx.stats.rcpts.load(Ordering::Relaxed);
    let cpu0 = cpu_ticks(srv.pid);
    let t0 = Instant::now();
    let deadline = t0 + o.tp_time;
    let mut tasks = tokio::task::JoinSet::new();
    let seqs = Arc::new(AtomicU64::new(
        cx.seq.fetch_add(10_000_000, Ordering::Relaxed),
    ));
    for client in 0..o.tp_clients {
        let (setup, names, seqs) = (setup.clone(), names.clone(), seqs.clone());
        let clients = o.tp_clients;
        tasks.spawn(async move {
            let mut c = Lmtp::connect(&setup.lmtp).await?;
            let mut lat = Vec::new();
            let mut k = 0usize;
            while Instant::now() < deadline {
                let name = &names[(client + k * clients) % names.len()];
                k += 1;
                let seq = seqs.fetch_add(1, Ordering::Relaxed);
                let body = message(name, seq, body_size);
                let p = c.post(&list_addr(name), &body).await?;
                lat.push(p.replied - p.dot);
            }
            c.quit().await;
            Ok::<_, BoxError>(lat)
        });
    }
    let mut lat = Vec::new();
    while let Some(r) = tasks.join_next().await {
        lat.extend(r??);
    }
    let wall = t0.elapsed();
    let cpu = (cpu_ticks(srv.pid) - cpu0) as f64 * TICK_MS;
    let copies = cx.stats.rcpts.load(Ordering::Relaxed) - rcpts0;
    lat.sort();
    let posts = lat.len();
    rep.row(
        "throughput",
        &format!(
            "{} clients, 5 KB posts, {nl} lists x 10: posts/s",
            o.tp_clients
        ),
        format!("{:.0}", posts as f64 / wall.as_secs_f64()),
        "",
        None,
    );
    rep.row(
        "throughput",
        "copies/s (recipients accepted by the sink)",
        format!("{:.0}", copies as f64 / wall.as_secs_f64()),
        "",
        None,
    );
    rep.row(
        "throughput",
        "dot -> LMTP reply p50",
        ms(pct(&lat, 50.0)),
        "",
        None,
    );
    rep.row(
        "throughput",
        "dot -> LMTP reply p99",
        ms(pct(&lat, 99.0)),
        "",
        None,
    );
    rep.row(
        "throughput",
        "listkeeper CPU per post",
        format!("{:.2} ms", cpu / posts.max(1) as f64),
        "",
        None,
    );
    rep.note(format!(
        "throughput: {posts} posts, {copies} copies in {}; listkeeper used {:.0}% of one core \
         (the clients and the sink share the same 2 cores)",
        secs(wall),
        cpu / wall.as_secs_f64() / 10.0
    ));
    let m = mem(srv.pid);
    rep.row(
        "throughput",
        "listkeeper VmHWM after the run",
        mb(m.hwm_kb),
        "",
        None,
    );
    srv.stop().await?;
    Ok(())
}

async fn part_scale(cx: &Ctx, rep: &mut Report) -> Res<()> {
    let o = &cx.opts;
    let (big, mid) = (o.big_members, o.mid_members);
    eprintln!("scale: members add of {big}, posts to {mid} and {big} members");
    let setup = Setup::new(&cx.base, "scale", &cx.sink, &o.bin)?;
    for n in ["big", "bigctl", "mid"] {
        setup.add_list(n)?;
    }
    let (fbig, fctl, fmid) = (
        setup.root.join("big.txt"),
        setup.root.join("bigctl.txt"),
        setup.root.join("mid.txt"),
    );
    address_file(&fbig, "big", big)?;
    address_file(&fctl, "bigctl", big)?;
    address_file(&fmid, "mid", mid)?;

    let (took, hwm, out) = cli_add(&setup, "big", &fbig).await?;
    rep.row(
        "scale",
        &format!("members add --file {big} (no server): time"),
        secs(took),
        "",
        None,
    );
    rep.row("scale", "  the CLI's peak RSS", mb(hwm), "", None);
    rep.note(format!("members add (no server): {out}"));
    cli_add(&setup, "mid", &fmid).await?;

    let srv = Server::start(&setup, "scale").await?;
    let before = mem(srv.pid);
    let (took, hwm, out) = cli_add(&setup, "bigctl", &fctl).await?;
    let after = mem(srv.pid);
    rep.row(
        "scale",
        &format!("members add --file {big} (control socket): time"),
        secs(took),
        "",
        None,
    );
    rep.row("scale", "  the CLI's peak RSS", mb(hwm), "", None);
    rep.row(
        "scale",
        "  the server's VmHWM before -> after",
        format!("{} -> {}", mb(before.hwm_kb), mb(after.hwm_kb)),
        "",
        None,
    );
    rep.note(format!("members add (control socket): {out}"));

    let mut peaks = Vec::new();
    for (list, n) in [("mid", mid), ("big", big)] {
        let r0 = mem(srv.pid);
        let reset = reset_hwm(srv.pid);
        let rc0 = cx.stats.rcpts.load(Ordering::Relaxed);
        let seq = cx.next_seq();
        let (reply, last) = post_once(&setup, &cx.stats, list, seq).await?;
        let r1 = mem(srv.pid);
        let got = cx.stats.rcpts.load(Ordering::Relaxed) - rc0;
        if got < n as u64 {
            rep.note(format!(
                "post to {list}: the sink got only {got} of {n} copies"
            ));
        }
        rep.row(
            "scale",
            &format!("bulk post to {n} members: dot -> last batch accepted"),
            last.map_or("?".into(), secs),
            "",
            None,
        );
        rep.row(
            "scale",
            &format!("bulk post to {n} members: dot -> LMTP reply"),
            secs(reply),
            "",
            None,
        );
        rep.row(
            "scale",
            &format!(
                "bulk post to {n} members: peak RSS (VmHWM{})",
                if reset {
                    ", reset before"
                } else {
                    " since start"
                }
            ),
            format!("{} (RSS before {})", mb(r1.hwm_kb), mb(r0.rss_kb)),
            "flat",
            None,
        );
        peaks.push((n, r1.hwm_kb.saturating_sub(r0.rss_kb), r1.hwm_kb));
    }
    if let [(n1, g1, _), (n2, g2, _)] = peaks[..] {
        // Flat: the bigger list may not need notably more memory (slack for allocator noise).
        let flat = g2 <= g1 + 2048;
        rep.row(
            "scale",
            &format!("peak growth during the post: {n1} -> {n2} members"),
            format!("{} -> {}", mb(g1), mb(g2)),
            "flat (+2 MB)",
            Some(flat),
        );
    }
    let s =
        std::fs::metadata(setup.root.join("data").join("listkeeper.redb")).map_or(0, |m| m.len());
    rep.note(format!(
        "scale: store file {:.0} MB for {} members",
        s as f64 / 1048576.0,
        2 * big + mid
    ));
    srv.stop().await?;
    Ok(())
}

// ------------------------------------------------------------------------------------------

fn main() {
    let opts = Opts::from_env();
    if !opts.bin.exists() {
        eprintln!(
            "footprint: {} is missing; build it with `cargo build --release`",
            opts.bin.display()
        );
        std::process::exit(1);
    }
    let unknown: Vec<&String> = opts
        .parts
        .iter()
        .filter(|p| !ALL_PARTS.contains(&p.as_str()))
        .collect();
    if !unknown.is_empty() {
        eprintln!("footprint: unknown part(s) {unknown:?}; known: {ALL_PARTS:?}");
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let code = rt.block_on(run(opts));
    std::process::exit(code);
}

async fn run(opts: Opts) -> i32 {
    if let Err(e) = std::fs::create_dir_all(&opts.scratch) {
        eprintln!("footprint: {}: {e}", opts.scratch.display());
        return 1;
    }
    let dir = match tempfile::Builder::new()
        .prefix("footprint-")
        .tempdir_in(&opts.scratch)
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!("footprint: scratch directory: {e}");
            return 1;
        }
    };
    let (sink, stats) = match start_sink().await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("footprint: sink: {e}");
            return 1;
        }
    };
    eprintln!(
        "footprint: {} ({} run), scratch {}, sink {sink}",
        opts.bin.display(),
        if opts.quick { "QUICK" } else { "full" },
        dir.path().display()
    );
    let cx = Ctx {
        opts: opts.clone(),
        base: dir.path().to_path_buf(),
        sink,
        stats,
        seq: AtomicU64::new(1),
    };
    let mut rep = Report::default();
    let mut failed = false;
    for part in ALL_PARTS {
        if !opts.wants(part) {
            continue;
        }
        let t = Instant::now();
        let (busy0, self0) = (machine_busy_ticks(), cpu_ticks(std::process::id()));
        let r = match *part {
            "idle" => part_idle(&cx, &mut rep).await,
            "latency" => part_latency(&cx, &mut rep).await,
            "throughput" => part_throughput(&cx, &mut rep).await,
            _ => part_scale(&cx, &mut rep).await,
        };
        if let Err(e) = r {
            failed = true;
            rep.note(format!("part {part} FAILED: {e}"));
        }
        // Everything else on the machine (other users' builds, say) competes for the 2 cores.
        let wall = t.elapsed();
        let busy = machine_busy_ticks().saturating_sub(busy0) as f64 * TICK_MS;
        let own = cpu_ticks(std::process::id()).saturating_sub(self0) as f64 * TICK_MS;
        rep.note(format!(
            "{part}: took {}; the machine was {:.0}% busy (of {} cores), this benchmark's own \
             process {:.0}% of one core; load average at the end: {}",
            secs(wall),
            busy / wall.as_secs_f64() / 10.0 / cores() as f64,
            cores(),
            own / wall.as_secs_f64() / 10.0,
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    let md = rep.markdown(&opts);
    println!("\n{md}");
    let out = opts.scratch.join("footprint.md");
    if std::fs::write(&out, &md).is_ok() {
        eprintln!("footprint: table written to {}", out.display());
    }
    if opts.keep {
        let kept = dir.keep();
        eprintln!("footprint: kept {}", kept.display());
    }
    i32::from(failed)
}
