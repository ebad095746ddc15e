//! `listkeeper serve`: open the store, load the lists, start the pool, the listeners and the
//! control socket; reload the global file and the lists on SIGHUP and when their files change
//! (of the global file, what its declarations mark live); on shutdown stop accepting, let
//! sessions in flight finish (bounded by `server.shutdown_timeout_secs`), and return.
//!
//! Idle means idle: every task here waits on a socket, a signal or a channel; no timer runs.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

use crate::config::{Config, Listen};
use crate::context::Context;
use crate::lmtp::listener;
use crate::registry::Registry;
use crate::reinject::Pool;
use crate::store::{Store, StoreError};

/// Tell systemd (Type=notify) about our state: `READY=1`, `STOPPING=1`. Does nothing
/// without `$NOTIFY_SOCKET`.
pub fn sd_notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    let sent = match bytes.strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name)
                .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
        }
        None => sock.send_to(state.as_bytes(), &path),
    };
    if let Err(e) = sent {
        tracing::warn!(error = %e, "could not notify systemd");
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A listener could not be bound.
    #[error("cannot listen on {listen}: {source}")]
    Listen {
        /// The listener.
        listen: String,
        /// Why.
        source: std::io::Error,
    },
    /// The sockets passed by socket activation cannot be used.
    #[error(transparent)]
    Activation(#[from] crate::activation::ActivationError),
}

/// Return freed heap memory to the system (glibc keeps it otherwise, so a reload of many
/// lists would leave the process at twice its size).
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim only releases free memory of glibc's own arenas; it takes no
        // pointers from us and is safe to call from any thread at any time.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// Is `addr` (host:port) a loopback address?
fn is_loopback(addr: &str) -> bool {
    let host = addr
        .rsplit_once(':')
        .map_or(addr, |(h, _)| h)
        .trim_matches(|c| c == '[' || c == ']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn warn_exposed(addr: &str) {
    tracing::warn!(
        listen = %addr,
        "LMTP listens on a non-loopback address: anyone who reaches it can inject list mail; keep it on 127.0.0.1 or ::1 unless a firewall protects it"
    );
}

/// Register a socket passed by socket activation with the runtime; also say where it listens.
fn adopt(socket: crate::activation::Socket) -> std::io::Result<(listener::Bound, String)> {
    use crate::activation::Socket;
    match socket {
        Socket::Tcp(l) => {
            l.set_nonblocking(true)?;
            let addr = l.local_addr()?;
            if !addr.ip().is_loopback() {
                warn_exposed(&addr.to_string());
            }
            Ok((
                listener::Bound::Tcp(tokio::net::TcpListener::from_std(l)?),
                addr.to_string(),
            ))
        }
        Socket::Unix(l) => {
            l.set_nonblocking(true)?;
            let shown = l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| format!("unix:{}", p.display())))
                .unwrap_or_else(|| "unix socket".into());
            Ok((
                listener::Bound::Unix(tokio::net::UnixListener::from_std(l)?),
                shown,
            ))
        }
    }
}

/// What to reload.
#[derive(Debug, Clone, Copy)]
enum Reload {
    /// SIGHUP: the global file and the lists.
    Signal,
    /// A file event in the lists directory.
    Lists,
    /// A file event on the global file.
    Global,
}

/// Read the global file again and apply what can change while running: the settings its
/// sections declare `live` (`Config::reloaded`). Every other one keeps its running value, and
/// those that changed are logged as needing a restart. An invalid file changes nothing.
async fn reload_global(
    current: &Arc<Config>,
    ctx: &Context,
    limit: &Semaphore,
) -> Option<Arc<Config>> {
    let path = current.path.clone();
    let loaded = tokio::task::spawn_blocking(move || Config::load(&path))
        .await
        .ok()?;
    let new = match loaded {
        Ok(c) => c,
        Err(errs) => {
            for e in errs {
                tracing::error!(error = %e, "invalid global file ignored; the running settings stay");
            }
            return None;
        }
    };
    let (next, restart) = current.reloaded(new);
    // `next` keeps the running target, EHLO name and timeout, which the pool started with: it
    // has nothing left to report as needing a restart.
    ctx.pool.apply(&next.reinject);
    let (old_max, new_max) = (current.limits.max_sessions, next.limits.max_sessions);
    if new_max > old_max {
        limit.add_permits(new_max - old_max);
    } else if new_max < old_max {
        limit.forget_permits(old_max - new_max);
    }
    if restart.is_empty() {
        tracing::info!(
            connections = next.reinject.connections,
            max_sessions = next.limits.max_sessions,
            "global file reloaded"
        );
    } else {
        tracing::warn!(needs_restart = %restart.join(", "), "global file reloaded; these changes take effect after a restart");
    }
    Some(Arc::new(next))
}

/// Watch the global file (through its directory, so that an editor's rename is seen too).
fn watch_global_file(
    path: &std::path::Path,
    tx: mpsc::Sender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())?
        .to_path_buf();
    let name = path.file_name()?.to_os_string();
    let handler = move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            if !ev.kind.is_access()
                && ev
                    .paths
                    .iter()
                    .any(|p| p.file_name() == Some(name.as_os_str()))
            {
                let _ = tx.try_send(());
            }
        }
    };
    let mut watcher = notify::recommended_watcher(handler).ok()?;
    match watcher.watch(&dir, RecursiveMode::NonRecursive) {
        Ok(()) => Some(watcher),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the global file; reload with SIGHUP");
            None
        }
    }
}

/// How long a burst of file events must be quiet before the lists are reloaded.
const RELOAD_SETTLE: std::time::Duration = std::time::Duration::from_millis(200);

/// Watch the lists directory (inotify on Linux, no polling); every change to a `*.toml` file
/// asks for a reload. Without a watcher (unsupported file system) SIGHUP still works.
fn watch_lists_dir(
    dir: &std::path::Path,
    tx: mpsc::Sender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let handler = move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            let relevant = !ev.kind.is_access()
                && ev
                    .paths
                    .iter()
                    .any(|p| p.extension().is_some_and(|x| x == "toml"));
            if relevant {
                let _ = tx.try_send(());
            }
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the lists directory; reload with SIGHUP");
            return None;
        }
    };
    if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the lists directory; reload with SIGHUP");
        return None;
    }
    Some(watcher)
}

/// Load the lists and log every problem (a broken file disables only its list).
pub fn load_registry(config: &Config, previous: Option<&Registry>) -> Registry {
    let reg = Registry::load(
        &config.server.lists_dir,
        config.server.recipient_delimiter,
        previous,
    );
    for e in reg.errors() {
        if reg.kept().contains(&e.file) {
            tracing::error!(error = %e, "invalid edit ignored: the list keeps serving its last good version");
        } else {
            tracing::error!(error = %e, "list disabled by a configuration error");
        }
    }
    reg
}

/// Run until `shutdown` completes. Every message on `reload` (SIGHUP) reloads the lists.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
    mut reload: mpsc::Receiver<()>,
) -> Result<(), ServerError> {
    crate::stats::started();
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    if root {
        tracing::warn!("running as root: listkeeper needs no privileges; run it as its own user (see config/listkeeper.service)");
    }
    let config = Arc::new(config);
    let store = Store::open(&config.server.data_dir, config.store.cache_size)?;
    let registry = Arc::new(load_registry(&config, None));
    tracing::info!(
        lists = registry.active().len(),
        disabled = registry.errors().len(),
        "lists loaded"
    );
    let (reg_tx, reg_rx) = watch::channel(registry);
    let (stop_tx, stop_rx) = watch::channel(false);

    let pool = Pool::start(&config.reinject);
    // Once, in the background: a wrong or stopped re-injection target is said at start, not
    // discovered at the first post (which the MTA then keeps: 451).
    let reinject = config.reinject.clone();
    tokio::spawn(async move {
        match crate::reinject::pool::probe(&reinject).await {
            Ok(()) => {
                tracing::info!(target = %reinject.target, "the MTA's re-injection listener answers")
            }
            Err(e) => {
                tracing::warn!(target = %reinject.target, error = %e, "the MTA's re-injection listener cannot be reached: every post will be deferred (451) until it can; check reinject.target and the MTA")
            }
        }
    });
    let (config_tx, config_rx) = watch::channel(config.clone());
    let ctx = Arc::new(Context {
        config: config_rx,
        registry: reg_rx.clone(),
        store: store.clone(),
        pool,
        held_changed: tokio::sync::Notify::new(),
    });
    let limit = Arc::new(Semaphore::new(config.limits.max_sessions));
    let deadlines = tokio::spawn(crate::scheduled::run_deadlines(
        ctx.clone(),
        stop_rx.clone(),
    ));

    let activated = crate::activation::take().map_err(ServerError::Activation)?;
    let (lmtp, control_fd) = match activated {
        Some(a) => (a.lmtp, a.control),
        None => (Vec::new(), None),
    };
    let mut sockets: Vec<PathBuf> = Vec::new();
    let mut tasks = JoinSet::new();
    if lmtp.is_empty() {
        for l in &config.server.lmtp_listen {
            let access = listener::SocketAccess {
                mode: config.server.lmtp_socket_mode,
                owner: config.server.lmtp_socket_owner,
                group: config.server.lmtp_socket_group,
            };
            let bound = listener::bind(l, access)
                .await
                .map_err(|source| ServerError::Listen {
                    listen: l.to_string(),
                    source,
                })?;
            match l {
                Listen::Unix(p) => sockets.push(p.clone()),
                Listen::Tcp(addr) if !is_loopback(addr) => warn_exposed(addr),
                Listen::Tcp(_) => {}
            }
            tracing::info!(listen = %l, "LMTP listening");
            tasks.spawn(listener::serve(
                bound,
                ctx.clone(),
                limit.clone(),
                stop_rx.clone(),
            ));
        }
    } else {
        tracing::info!(
            sockets = lmtp.len(),
            "LMTP sockets from socket activation; server.lmtp_listen is not bound"
        );
        for (name, socket) in lmtp {
            let (bound, shown) = adopt(socket).map_err(|source| ServerError::Listen {
                listen: format!("activated socket {name}"),
                source,
            })?;
            tracing::info!(listen = %shown, name = %name, "LMTP listening (socket activation)");
            tasks.spawn(listener::serve(
                bound,
                ctx.clone(),
                limit.clone(),
                stop_rx.clone(),
            ));
        }
    }
    if let Some(path) = &config.routing.socketmap_socket {
        let access = listener::SocketAccess {
            mode: config.routing.socketmap_socket_mode,
            owner: config.server.lmtp_socket_owner,
            group: config.server.lmtp_socket_group,
        };
        let listen = Listen::Unix(path.clone());
        let bound =
            listener::bind(&listen, access)
                .await
                .map_err(|source| ServerError::Listen {
                    listen: listen.to_string(),
                    source,
                })?;
        if let listener::Bound::Unix(l) = bound {
            let transport: Arc<str> = match &config.routing.socketmap_transport {
                Some(t) => t.as_str().into(),
                None => crate::routing::default_transport(&config.server.lmtp_listen).into(),
            };
            sockets.push(path.clone());
            tracing::info!(listen = %listen, transport = %transport, "socketmap listening");
            tasks.spawn(crate::routing::socketmap::serve(
                l,
                reg_rx.clone(),
                transport,
                stop_rx.clone(),
            ));
        }
    }
    let control = config.server.control_socket.clone();
    let control_activated = control_fd.is_some();
    {
        let (ctx, stop) = (ctx.clone(), stop_rx.clone());
        let control = control.clone();
        match control_fd {
            Some(fd) => {
                let l = fd
                    .set_nonblocking(true)
                    .and_then(|()| tokio::net::UnixListener::from_std(fd))
                    .map_err(|source| ServerError::Listen {
                        listen: "activated control socket".into(),
                        source,
                    })?;
                tracing::info!("control socket from socket activation");
                tasks.spawn(crate::control::serve_on(l, ctx, stop));
            }
            None => {
                tasks.spawn(async move {
                    if let Err(e) = crate::control::serve(&control, ctx, stop).await {
                        tracing::error!(socket = %control.display(), error = %e, "control socket unavailable; the CLI cannot change members while the server runs");
                    }
                });
            }
        }
    }
    let (fs_tx, mut fs_rx) = mpsc::channel::<()>(1);
    let _watcher = watch_lists_dir(&config.server.lists_dir, fs_tx);
    let (global_tx, mut global_rx) = mpsc::channel::<()>(1);
    let _global_watcher = watch_global_file(&config.path, global_tx);
    tracing::info!(target = %config.reinject.target, connections = config.reinject.connections, "listkeeper ready");
    sd_notify("READY=1");

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            r = async {
                tokio::select! {
                    Some(()) = reload.recv() => Some(Reload::Signal),
                    Some(()) = fs_rx.recv() => {
                        // Editors write a file in several steps: let them finish, then reload once.
                        tokio::time::sleep(RELOAD_SETTLE).await;
                        while fs_rx.try_recv().is_ok() {}
                        Some(Reload::Lists)
                    }
                    Some(()) = global_rx.recv() => {
                        tokio::time::sleep(RELOAD_SETTLE).await;
                        while global_rx.try_recv().is_ok() {}
                        Some(Reload::Global)
                    }
                    else => None,
                }
            } => {
                let Some(what) = r else {
                    (&mut shutdown).await;
                    break;
                };
                if matches!(what, Reload::Signal | Reload::Global) {
                    let current = config_tx.borrow().clone();
                    if let Some(next) = reload_global(&current, &ctx, &limit).await {
                        config_tx.send_replace(next);
                    }
                }
                if matches!(what, Reload::Signal | Reload::Lists) {
                    tracing::info!(reason = ?what, "reloading the lists");
                    let cfg = config.clone();
                    let prev = reg_tx.borrow().clone();
                    match tokio::task::spawn_blocking(move || load_registry(&cfg, Some(&prev))).await {
                        Ok(reg) => {
                            tracing::info!(lists = reg.active().len(), disabled = reg.errors().len(), "lists reloaded");
                            let _ = reg_tx.send(Arc::new(reg));
                            // The old list set was freed once the last session let go of it;
                            // glibc keeps freed memory unless asked to return it.
                            tokio::task::spawn_blocking(release_free_memory);
                        }
                        Err(e) => tracing::error!(error = %e, "reload failed"),
                    }
                }
            }
        }
    }

    tracing::info!("shutting down: no new sessions, finishing the ones in flight");
    sd_notify("STOPPING=1");
    let _ = stop_tx.send(true);
    let grace = config.server.shutdown_timeout;
    let drained =
        tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(seconds = grace.as_secs(), "sessions still running after the shutdown timeout; closing them (their mail stays with the MTA)");
        tasks.abort_all();
    }
    let _ = deadlines.await;
    for p in sockets {
        let _ = std::fs::remove_file(p);
    }
    if !control_activated {
        let _ = std::fs::remove_file(&control);
    }
    drop(ctx);
    tracing::info!("stopped");
    Ok(())
}
