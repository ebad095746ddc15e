//! The control socket: how the CLI changes the store while a server holds it open.
//!
//! The store file can be open in one process only, so `listkeeper members ...` talks to the
//! running server over a unix socket (mode 0600, so only the server's user may use it) with a
//! line protocol:
//!
//! ```text
//! C: status              (counters, lists; then `.`)
//! C: add LIST            C: remove LIST          C: list LIST        C: count LIST
//! C: address lines...    C: address lines...     S: addresses...     S: ok N
//! C: .                   C: .                    S: .
//! S: ok CHANGED UNCHANGED                        (any failure: S: err SENTENCE)
//! ```
//!
//! SECURITY: trusts the local user at the other end, and only the server's own user and root:
//! the file mode (0600) keeps others out of a socket we bind, and the peer's credentials are
//! checked on every connection as well, so a socket handed over by socket activation with a
//! looser mode, or the moment between binding and `chmod`, lets nobody else in. Every address
//! is validated again here.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::watch;

use crate::address::Address;
use crate::context::Context;
use crate::logging::escape_controls as esc;
use crate::store::{now_secs, AddOutcome, Store, StoreError};

/// Addresses per store transaction during an import.
const CHUNK: usize = 10_000;

/// Serve the control socket until shutdown.
pub async fn serve(
    path: &Path,
    ctx: Arc<Context>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    crate::lmtp::listener::remove_stale_socket(path)?;
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    serve_on(listener, ctx, shutdown).await;
    let _ = std::fs::remove_file(path);
    Ok(())
}

/// Answer the CLI on an already bound socket (socket activation) until shutdown. The socket
/// file belongs to whoever bound it and is left in place.
pub async fn serve_on(
    listener: UnixListener,
    ctx: Arc<Context>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            r = listener.accept() => {
                let Ok((mut stream, _)) = r else { continue };
                let peer = stream.peer_cred().map(|c| c.uid());
                if !peer.as_ref().is_ok_and(|&uid| peer_allowed(uid, own_uid())) {
                    tracing::warn!(peer_uid = ?peer.ok(), "control connection from another user refused");
                    let _ = stream
                        .write_all(b"err only the server's user and root may use the control socket\n")
                        .await;
                    continue;
                }
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    if let Err(e) = handle(stream, ctx).await {
                        tracing::warn!(error = %e, "control connection failed");
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
}

/// The effective user id of this process.
fn own_uid() -> u32 {
    // SAFETY: geteuid(2) takes no arguments, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// May a peer with `uid` use the control socket of a server running as `own`?
fn peer_allowed(uid: u32, own: u32) -> bool {
    uid == own || uid == 0
}

async fn handle(stream: tokio::net::UnixStream, ctx: Arc<Context>) -> std::io::Result<()> {
    let store = ctx.store.clone();
    let (r, mut w) = stream.into_split();
    let mut lines = tokio::io::BufReader::new(r).lines();
    let Some(first) = lines.next_line().await? else {
        return Ok(());
    };
    let (verb, rest) = first.split_once(' ').unwrap_or((first.as_str(), ""));
    let (list, args) = rest.split_once(' ').unwrap_or((rest, ""));
    let reg = ctx.registry.borrow().clone();
    if verb == "status" {
        let mut out = format!("version {}\n", env!("CARGO_PKG_VERSION"));
        out.push_str(&format!(
            "uptime_secs {}\n",
            crate::stats::uptime().as_secs()
        ));
        let cfg = ctx.config();
        out.push_str(&format!(
            "reinject_connections {}\nreinject_batch {}\nmax_recipients {}\nmax_sessions {}\n",
            ctx.pool.connections(),
            ctx.pool.batch_size(),
            cfg.limits.max_recipients,
            cfg.limits.max_sessions
        ));
        let all = reg.all();
        let active = all
            .iter()
            .filter(|(_, s)| matches!(s, crate::registry::ListState::Active(_)))
            .count();
        out.push_str(&format!(
            "lists_active {active}\nlists_disabled {}\n",
            all.len() - active
        ));
        for line in crate::stats::lines() {
            out.push_str(&line);
            out.push('\n');
        }
        for (key, state) in all {
            let word = match state {
                // Its file has errors since; the server serves the version it loaded last.
                crate::registry::ListState::Active(l) if reg.kept().contains(&l.file) => {
                    "active last-good"
                }
                crate::registry::ListState::Active(_) => "active",
                crate::registry::ListState::Disabled { .. } => "DISABLED",
            };
            out.push_str(&format!("list {key} {word}\n"));
        }
        for file in reg.kept() {
            if let Some(key) = reg
                .active()
                .iter()
                .find(|l| l.file == *file)
                .map(|l| l.key())
            {
                out.push_str(&format!("kept {key} {}\n", file.display()));
            }
        }
        out.push_str(".\n");
        return w.write_all(out.as_bytes()).await;
    }
    let Some(list) = reg.find(list) else {
        let msg = format!("err no active list {list:?} is configured\n");
        return w.write_all(msg.as_bytes()).await;
    };
    let key = list.key();
    let reply = match verb {
        "add" | "remove" => {
            let mut total = AddOutcome::default();
            let mut chunk = Vec::with_capacity(CHUNK);
            let mut error = None;
            while let Some(line) = lines.next_line().await? {
                if line == "." {
                    break;
                }
                match Address::parse(&line) {
                    Ok(a) => chunk.push(a),
                    Err(e) => error = error.or(Some(format!("{line:?}: {e}"))),
                }
                if chunk.len() >= CHUNK && error.is_none() {
                    let r = apply(&store, &key, verb, std::mem::take(&mut chunk)).await;
                    match r {
                        Ok(o) => add(&mut total, o),
                        Err(e) => error = Some(e.to_string()),
                    }
                }
            }
            if error.is_none() && !chunk.is_empty() {
                match apply(&store, &key, verb, chunk).await {
                    Ok(o) => add(&mut total, o),
                    Err(e) => error = Some(e.to_string()),
                }
            }
            match error {
                Some(e) => format!("err {e}\n"),
                None => {
                    tracing::info!(list = %key, action = verb, changed = total.changed, unchanged = total.unchanged, "members changed");
                    format!("ok {} {}\n", total.changed, total.unchanged)
                }
            }
        }
        "list" => {
            let mut after: Option<String> = None;
            loop {
                let (s, k, a) = (store.clone(), key.clone(), after.clone());
                let batch =
                    tokio::task::spawn_blocking(move || s.members_after(&k, a.as_deref(), CHUNK))
                        .await
                        .map_err(std::io::Error::other)?;
                let batch = match batch {
                    Ok(b) => b,
                    Err(e) => return w.write_all(format!("err {e}\n").as_bytes()).await,
                };
                if batch.is_empty() {
                    break;
                }
                let mut out = String::with_capacity(batch.len() * 32);
                for m in &batch {
                    out.push_str(&m.address);
                    out.push('\n');
                }
                w.write_all(out.as_bytes()).await?;
                after = batch.last().map(|m| m.key.clone());
            }
            ".\n".to_string()
        }
        "members" => {
            // Like `list`, with each member's flags: `FLAGS ADDRESS` lines.
            let mut after: Option<String> = None;
            loop {
                let (s, k, a) = (store.clone(), key.clone(), after.clone());
                let batch =
                    tokio::task::spawn_blocking(move || s.members_after(&k, a.as_deref(), CHUNK))
                        .await
                        .map_err(std::io::Error::other)?;
                let batch = match batch {
                    Ok(b) => b,
                    Err(e) => return w.write_all(format!("err {e}\n").as_bytes()).await,
                };
                if batch.is_empty() {
                    break;
                }
                let mut out = String::with_capacity(batch.len() * 36);
                for m in &batch {
                    out.push_str(&format!("{} {}\n", m.flags, m.address));
                }
                w.write_all(out.as_bytes()).await?;
                after = batch.last().map(|m| m.key.clone());
            }
            ".\n".to_string()
        }
        "put" => {
            // An import: `FLAGS ADDRESS` lines until `.` (the CLI checked them all before
            // sending), applied in chunks; a bad line stops what follows it.
            let mut total = AddOutcome::default();
            let mut chunk: Vec<(Address, u64)> = Vec::with_capacity(CHUNK);
            let mut error = None;
            while let Some(line) = lines.next_line().await? {
                if line == "." {
                    break;
                }
                let parsed = line
                    .split_once(' ')
                    .and_then(|(f, a)| Some((Address::parse(a).ok()?, f.parse::<u64>().ok()?)));
                match parsed {
                    Some(row) => chunk.push(row),
                    None => error = error.or(Some(format!("bad member line {line:?}"))),
                }
                if (chunk.len() >= CHUNK) && error.is_none() {
                    match put(&store, &key, std::mem::take(&mut chunk)).await {
                        Ok(o) => add(&mut total, o),
                        Err(e) => error = Some(e.to_string()),
                    }
                }
            }
            if error.is_none() && !chunk.is_empty() {
                match put(&store, &key, chunk).await {
                    Ok(o) => add(&mut total, o),
                    Err(e) => error = Some(e.to_string()),
                }
            }
            match error {
                Some(e) => format!("err {e}\n"),
                None => {
                    tracing::info!(list = %key, action = "import", added = total.changed, updated = total.unchanged, "members changed");
                    format!("ok {} {}\n", total.changed, total.unchanged)
                }
            }
        }
        "set-flag" => {
            // `set-flag LIST ADDRESS NAME on|off`
            let mut words = args.split(' ');
            let (address, name, on) = (
                words.next().unwrap_or("").to_string(),
                words.next().unwrap_or(""),
                words.next() == Some("on"),
            );
            match crate::store::members::flag_by_name(name) {
                None => format!("err unknown member setting {name:?}\n"),
                Some(flag) => {
                    let (s, k, a) = (store.clone(), key.clone(), address.clone());
                    match tokio::task::spawn_blocking(move || set_flag(&s, &k, &a, flag, on))
                        .await
                        .map_err(std::io::Error::other)?
                    {
                        Ok(true) => {
                            tracing::info!(list = %key, member = %address, setting = name, on, "member setting changed");
                            "ok 1 0\n".to_string()
                        }
                        Ok(false) => format!("err {address} is not a member of {key}\n"),
                        Err(e) => format!("err {e}\n"),
                    }
                }
            }
        }
        "count" => {
            let s = store.clone();
            match tokio::task::spawn_blocking(move || s.member_count(&key))
                .await
                .map_err(std::io::Error::other)?
            {
                Ok(n) => format!("ok {n}\n"),
                Err(e) => format!("err {e}\n"),
            }
        }
        "pending" => {
            let s = store.clone();
            let rows = tokio::task::spawn_blocking(move || s.pending_list(&key, now_secs()))
                .await
                .map_err(std::io::Error::other)?;
            match rows {
                Ok(rows) => {
                    let mut out = String::new();
                    for p in rows {
                        out.push_str(&format!(
                            "{} {} {} {} {}\n",
                            p.token,
                            p.kind.name(),
                            p.address,
                            p.created,
                            p.expires
                        ));
                    }
                    out.push_str(".\n");
                    out
                }
                Err(e) => format!("err {e}\n"),
            }
        }
        "approve" | "reject" => {
            let (token, reason) = args.split_once(' ').unwrap_or((args, ""));
            let reject = (verb == "reject").then(|| reason.to_string());
            match crate::requests::operator_decision(&ctx, &list, token.trim(), reject).await {
                Ok(sentence) => {
                    tracing::info!(list = %key, action = verb, token = %token, "operator decision");
                    format!("ok {}\n", sentence.replace('\n', " "))
                }
                Err(e) => format!("err {e}\n"),
            }
        }
        "held" => {
            let s = store.clone();
            let rows = tokio::task::spawn_blocking(move || s.held_list(&key))
                .await
                .map_err(std::io::Error::other)?;
            match rows {
                Ok(rows) => {
                    let mut out = String::new();
                    for h in rows {
                        // Escaped, so a tab or line end from a post cannot shift or add fields.
                        let line = format!(
                            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                            esc(&h.token),
                            h.state.name(),
                            h.received,
                            h.expires,
                            esc(&h.sender),
                            esc(&h.subject),
                            esc(&h.reasons.join("; "))
                        );
                        out.push_str(&line);
                        out.push('\n');
                    }
                    out.push_str(".\n");
                    out
                }
                Err(e) => format!("err {e}\n"),
            }
        }
        "held-show" => {
            let (s, t) = (store.clone(), args.trim().to_string());
            let found =
                tokio::task::spawn_blocking(move || -> Result<Option<Vec<u8>>, StoreError> {
                    match s.held_get(&t)? {
                        Some(h) if h.list == key => s.held_message(&t),
                        _ => Ok(None),
                    }
                })
                .await
                .map_err(std::io::Error::other)?;
            match found {
                Ok(Some(m)) => {
                    w.write_all(format!("bytes {}\n", m.len()).as_bytes())
                        .await?;
                    return w.write_all(&m).await;
                }
                Ok(None) => {
                    "err no held post with this token on this list, or it was decided\n".to_string()
                }
                Err(e) => format!("err {e}\n"),
            }
        }
        "held-decide" => {
            let mut parts = args.splitn(3, ' ');
            let (token, what, reason) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            let decision = match what {
                "approve" => Some(crate::store::Decision::Approve),
                "reject" => Some(crate::store::Decision::Reject),
                "discard" => Some(crate::store::Decision::Discard),
                _ => None,
            };
            match decision {
                None => format!("err unknown decision {what:?}\n"),
                Some(d) => {
                    match crate::requests::held_decision(&ctx, &list, token, d, reason, "operator")
                        .await
                    {
                        Ok(Some(sentence)) => format!("ok {}\n", sentence.replace('\n', " ")),
                        Ok(None) => "err no held post with this token on this list\n".to_string(),
                        Err(e) => format!("err {e}\n"),
                    }
                }
            }
        }
        "bounces" => {
            let s = store.clone();
            match tokio::task::spawn_blocking(move || s.bounce_list(&key))
                .await
                .map_err(std::io::Error::other)?
            {
                Ok(rows) => {
                    let mut out = String::new();
                    for r in rows {
                        out.push_str(&format!(
                            "{}\t{:.1}\t{}\t{}\t{}\n",
                            r.member,
                            r.score,
                            r.last_bounce,
                            r.status.name(),
                            r.since
                        ));
                    }
                    out.push_str(".\n");
                    out
                }
                Err(e) => format!("err {e}\n"),
            }
        }
        "enable" => {
            let (s, k, a) = (store.clone(), key.clone(), args.trim().to_string());
            match tokio::task::spawn_blocking(move || s.member_enable(&k, &a))
                .await
                .map_err(std::io::Error::other)?
            {
                Ok(true) => "ok 1 0\n".to_string(),
                Ok(false) => format!("err {} is not a member of {key}\n", args.trim()),
                Err(e) => format!("err {e}\n"),
            }
        }
        "set-moderated" => {
            let (address, on) = args.split_once(' ').unwrap_or((args, ""));
            let on = on.trim() == "on";
            let (s, k, a) = (store.clone(), key.clone(), address.to_string());
            match tokio::task::spawn_blocking(move || s.member_set_moderated(&k, &a, on))
                .await
                .map_err(std::io::Error::other)?
            {
                Ok(true) => "ok 1 0\n".to_string(),
                Ok(false) => format!("err {address} is not a member of {key}\n"),
                Err(e) => format!("err {e}\n"),
            }
        }
        other => format!("err unknown control command {other:?}\n"),
    };
    w.write_all(reply.as_bytes()).await
}

/// Switch a member setting; switching `disabled` off is `members enable` (the bounce score
/// goes too, or the next bounce would disable the member again at once).
pub fn set_flag(
    store: &Store,
    list: &str,
    address: &str,
    flag: u64,
    on: bool,
) -> Result<bool, StoreError> {
    if flag == crate::store::members::FLAG_DISABLED && !on {
        store.member_enable(list, address)
    } else {
        store.member_set_flag(list, address, flag, on)
    }
}

fn add(total: &mut AddOutcome, o: AddOutcome) {
    total.changed += o.changed;
    total.unchanged += o.unchanged;
}

async fn put(
    store: &Store,
    list: &str,
    rows: Vec<(Address, u64)>,
) -> Result<AddOutcome, StoreError> {
    let (store, list) = (store.clone(), list.to_string());
    tokio::task::spawn_blocking(move || store.members_put(&list, &rows))
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
}

async fn apply(
    store: &Store,
    list: &str,
    verb: &str,
    addrs: Vec<Address>,
) -> Result<AddOutcome, StoreError> {
    let (store, list, remove) = (store.clone(), list.to_string(), verb == "remove");
    tokio::task::spawn_blocking(move || {
        if remove {
            store.remove_members(&list, &addrs)
        } else {
            store.add_members(&list, &addrs)
        }
    })
    .await
    .map_err(|e| StoreError::Backend(e.to_string()))?
}

/// The CLI side: a blocking client.
pub struct ControlClient {
    stream: std::os::unix::net::UnixStream,
}

impl ControlClient {
    /// Connect, or `None` when no server is listening (then the CLI opens the store itself).
    pub fn connect(path: &Path) -> Option<ControlClient> {
        Self::reach(path).ok().flatten()
    }

    /// Connect to the server at `path`: `Ok(None)` when no server answers there (no socket,
    /// or nobody listening), an error that says why when one may run but cannot be reached
    /// (the socket is for the server's user and root).
    pub fn reach(path: &Path) -> Result<Option<ControlClient>, String> {
        use std::io::ErrorKind;
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(stream) => Ok(Some(ControlClient { stream })),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
                Ok(None)
            }
            Err(e) if e.kind() == ErrorKind::PermissionDenied => Err(format!(
                "cannot use the control socket {}: permission denied (it is for the server's user and root; run this as one of them)",
                path.display()
            )),
            Err(e) => Err(format!(
                "cannot use the control socket {}: {e}",
                path.display()
            )),
        }
    }

    /// Add or remove (`verb`) addresses; returns (changed, unchanged).
    pub fn change(self, verb: &str, list: &str, addrs: &[Address]) -> Result<AddOutcome, String> {
        self.change_with(verb, list, |emit| addrs.iter().try_for_each(emit))
    }

    /// Add or remove (`verb`) the addresses `feed` emits, streamed to the server as they come
    /// (it applies them in chunks); returns (changed, unchanged).
    pub fn change_with(
        self,
        verb: &str,
        list: &str,
        feed: impl FnOnce(&mut dyn FnMut(&Address) -> Result<(), String>) -> Result<(), String>,
    ) -> Result<AddOutcome, String> {
        let mut w = std::io::BufWriter::new(&self.stream);
        let io = |e: std::io::Error| format!("control socket: {e}");
        writeln!(w, "{verb} {list}").map_err(io)?;
        feed(&mut |a: &Address| writeln!(w, "{a}").map_err(io))?;
        writeln!(w, ".").map_err(io)?;
        w.flush().map_err(io)?;
        drop(w);
        let mut line = String::new();
        BufReader::new(&self.stream)
            .read_line(&mut line)
            .map_err(io)?;
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix("ok ") {
            let mut n = rest.split(' ').filter_map(|x| x.parse::<u64>().ok());
            return Ok(AddOutcome {
                changed: n.next().unwrap_or(0),
                unchanged: n.next().unwrap_or(0),
            });
        }
        Err(line.strip_prefix("err ").unwrap_or(line).to_string())
    }

    /// Stream the members of `list` to `out`, one address per line.
    pub fn list(self, list: &str, out: &mut dyn Write) -> Result<(), String> {
        let io = |e: std::io::Error| format!("control socket: {e}");
        (&self.stream)
            .write_all(format!("list {list}\n").as_bytes())
            .map_err(io)?;
        for line in BufReader::new(&self.stream).lines() {
            let line = line.map_err(io)?;
            if line == "." {
                return Ok(());
            }
            if let Some(e) = line.strip_prefix("err ") {
                return Err(e.to_string());
            }
            if let Err(e) = writeln!(out, "{line}") {
                // `members list | head`: the reader went away, which is fine.
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    return Ok(());
                }
                return Err(io(e));
            }
        }
        Err("the server closed the control connection early".into())
    }

    /// Call `f` with each member of `list` and its flags.
    pub fn members(
        self,
        list: &str,
        f: &mut dyn FnMut(u64, &str) -> Result<(), String>,
    ) -> Result<(), String> {
        let io = |e: std::io::Error| format!("control socket: {e}");
        (&self.stream)
            .write_all(format!("members {list}\n").as_bytes())
            .map_err(io)?;
        for line in BufReader::new(&self.stream).lines() {
            let line = line.map_err(io)?;
            if line == "." {
                return Ok(());
            }
            if let Some(e) = line.strip_prefix("err ") {
                return Err(e.to_string());
            }
            let Some((flags, address)) = line
                .split_once(' ')
                .and_then(|(n, a)| Some((n.parse::<u64>().ok()?, a)))
            else {
                return Err(format!("bad reply {line:?}"));
            };
            f(flags, address)?;
        }
        Err("the server closed the control connection early".into())
    }

    /// Import members with their flags (added, or their flags set); returns (added, updated).
    pub fn put(self, list: &str, rows: &[(Address, u64)]) -> Result<AddOutcome, String> {
        let mut w = std::io::BufWriter::new(&self.stream);
        let io = |e: std::io::Error| format!("control socket: {e}");
        writeln!(w, "put {list}").map_err(io)?;
        for (a, f) in rows {
            writeln!(w, "{f} {a}").map_err(io)?;
        }
        writeln!(w, ".").map_err(io)?;
        w.flush().map_err(io)?;
        drop(w);
        let mut line = String::new();
        BufReader::new(&self.stream)
            .read_line(&mut line)
            .map_err(io)?;
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix("ok ") {
            let mut n = rest.split(' ').filter_map(|x| x.parse::<u64>().ok());
            return Ok(AddOutcome {
                changed: n.next().unwrap_or(0),
                unchanged: n.next().unwrap_or(0),
            });
        }
        Err(line.strip_prefix("err ").unwrap_or(line).to_string())
    }

    /// Open requests of `list`: lines `TOKEN KIND ADDRESS CREATED EXPIRES`.
    pub fn pending(self, list: &str) -> Result<Vec<String>, String> {
        let io = |e: std::io::Error| format!("control socket: {e}");
        (&self.stream)
            .write_all(format!("pending {list}\n").as_bytes())
            .map_err(io)?;
        let mut out = Vec::new();
        for line in BufReader::new(&self.stream).lines() {
            let line = line.map_err(io)?;
            if line == "." {
                return Ok(out);
            }
            if let Some(e) = line.strip_prefix("err ") {
                return Err(e.to_string());
            }
            out.push(line);
        }
        Err("the server closed the control connection early".into())
    }

    /// Approve (`reason` None) or reject an approval request; returns the server's sentence.
    pub fn decide(self, list: &str, token: &str, reason: Option<&str>) -> Result<String, String> {
        let io = |e: std::io::Error| format!("control socket: {e}");
        let line = match reason {
            None => format!("approve {list} {token}\n"),
            Some(r) => format!("reject {list} {token} {}\n", r.replace(['\r', '\n'], " ")),
        };
        (&self.stream).write_all(line.as_bytes()).map_err(io)?;
        let mut reply = String::new();
        BufReader::new(&self.stream)
            .read_line(&mut reply)
            .map_err(io)?;
        let reply = reply.trim_end();
        match reply.strip_prefix("ok ") {
            Some(s) => Ok(s.to_string()),
            None => Err(reply.strip_prefix("err ").unwrap_or(reply).to_string()),
        }
    }

    /// Send one command line and read lines until `.` (or one `ok`/`err` line).
    pub fn request(self, line: &str) -> Result<Vec<String>, String> {
        let io = |e: std::io::Error| format!("control socket: {e}");
        (&self.stream)
            .write_all(format!("{}\n", line.replace(['\r', '\n'], " ")).as_bytes())
            .map_err(io)?;
        let mut out = Vec::new();
        for l in BufReader::new(&self.stream).lines() {
            let l = l.map_err(io)?;
            if l == "." {
                return Ok(out);
            }
            if let Some(e) = l.strip_prefix("err ") {
                return Err(e.to_string());
            }
            if let Some(ok) = l.strip_prefix("ok ") {
                out.push(ok.to_string());
                return Ok(out);
            }
            out.push(l);
        }
        Err("the server closed the control connection early".into())
    }

    /// A held post's bytes (`held-show`).
    pub fn held_message(self, list: &str, token: &str) -> Result<Vec<u8>, String> {
        use std::io::Read;
        let io = |e: std::io::Error| format!("control socket: {e}");
        (&self.stream)
            .write_all(format!("held-show {list} {token}\n").as_bytes())
            .map_err(io)?;
        let mut r = BufReader::new(&self.stream);
        let mut first = String::new();
        r.read_line(&mut first).map_err(io)?;
        let first = first.trim_end();
        let Some(n) = first
            .strip_prefix("bytes ")
            .and_then(|n| n.parse::<usize>().ok())
        else {
            return Err(first.strip_prefix("err ").unwrap_or(first).to_string());
        };
        let mut buf = vec![0u8; n];
        r.read_exact(&mut buf).map_err(io)?;
        Ok(buf)
    }

    /// The number of members of `list`.
    pub fn count(self, list: &str) -> Result<u64, String> {
        let io = |e: std::io::Error| format!("control socket: {e}");
        (&self.stream)
            .write_all(format!("count {list}\n").as_bytes())
            .map_err(io)?;
        let mut line = String::new();
        BufReader::new(&self.stream)
            .read_line(&mut line)
            .map_err(io)?;
        let line = line.trim_end();
        match line.strip_prefix("ok ") {
            Some(n) => n.parse().map_err(|_| format!("bad reply {line:?}")),
            None => Err(line.strip_prefix("err ").unwrap_or(line).to_string()),
        }
    }
}
