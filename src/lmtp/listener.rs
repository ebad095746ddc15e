//! Accept loops for the configured unix and TCP listeners, with a cap on concurrent sessions.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::reply::Said;
use super::session::Backend;
use super::Session;
use crate::config::Listen;

/// A bound listener, ready to accept.
pub enum Bound {
    /// TCP.
    Tcp(TcpListener),
    /// Unix-domain socket.
    Unix(UnixListener),
}

/// Who may connect to a unix listener socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketAccess {
    /// Permission bits.
    pub mode: u32,
    /// Owner by id (`None`: the server's user).
    pub owner: Option<u32>,
    /// Group by id (`None`: the server's group).
    pub group: Option<u32>,
}

/// Bind one listener. A stale unix socket file from an earlier run is replaced; its owner,
/// group and mode are set so that the MTA's delivery agent can connect.
pub async fn bind(listen: &Listen, access: SocketAccess) -> std::io::Result<Bound> {
    match listen {
        Listen::Tcp(addr) => Ok(Bound::Tcp(TcpListener::bind(addr).await?)),
        Listen::Unix(path) => {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            if std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o1002 == 0o002) {
                tracing::warn!(dir = %dir.display(), "the LMTP socket's directory is writable by every user: anyone could replace the socket; use a directory of the server's own");
            }
            remove_stale_socket(path)?;
            let l = bind_unix_private(path, dir, access)?;
            l.set_nonblocking(true)?;
            Ok(Bound::Unix(UnixListener::from_std(l)?))
        }
    }
}

/// Bind a unix socket in a fresh directory only this user can enter, give it its owner, group
/// and mode there, then rename it to `path`. Changing group and mode by path where others can
/// write would let them swap the path for a symlink between bind and chmod (the server would
/// then change a file of their choosing), and the socket would exist for a moment with the
/// umask's mode; here it appears at `path` complete.
fn bind_unix_private(
    path: &Path,
    dir: &Path,
    access: SocketAccess,
) -> std::io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::DirBuilderExt;
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} names no socket file", path.display()),
        )
    })?;
    // Short, so that the temporary path fits in sun_path whenever the final one does.
    let private = dir.join(format!(".lk{}", std::process::id()));
    // Left over from a crash of a process with this pid: remove_dir_all does not follow a
    // symlink, it removes it.
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let inner = private.join(name);
    let bound = (|| {
        let l = std::os::unix::net::UnixListener::bind(&inner)?;
        if access.owner.is_some() || access.group.is_some() {
            std::os::unix::fs::chown(&inner, access.owner, access.group)
                .map_err(|e| chown_error(e, access))?;
        }
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(access.mode))?;
        std::fs::rename(&inner, path)?;
        Ok(l)
    })();
    if bound.is_err() {
        let _ = std::fs::remove_file(&inner);
    }
    let _ = std::fs::remove_dir(&private);
    bound
}

/// The failed owner or group change, said as such: the bare `Operation not permitted` read as
/// if listening itself had failed.
fn chown_error(e: std::io::Error, access: SocketAccess) -> std::io::Error {
    let mut what = Vec::new();
    if let Some(u) = access.owner {
        what.push(format!(
            "owner {} (server.lmtp_socket_owner; giving a socket to another user needs root)",
            id_name("/etc/passwd", u)
        ));
    }
    if let Some(g) = access.group {
        let name = id_name("/etc/group", g);
        what.push(format!(
            "group {name} (server.lmtp_socket_group; the server's user must be a member of it, e.g. `usermod -aG {} USER` or SupplementaryGroups= in the systemd unit)",
            name.split(' ').next().unwrap_or(&name)
        ));
    }
    std::io::Error::new(
        e.kind(),
        format!(
            "cannot give the socket to {} (chown/chgrp failed: {e})",
            what.join(" and ")
        ),
    )
}

/// "NAME (ID)" from a passwd- or group-style file, else the id alone (only for messages).
fn id_name(file: &str, id: u32) -> String {
    let name = std::fs::read_to_string(file).ok().and_then(|text| {
        text.lines().find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)?.parse::<u32>().ok()? == id).then(|| name.to_string())
        })
    });
    match name {
        Some(n) => format!("{n} ({id})"),
        None => id.to_string(),
    }
}

/// Remove `path` if it is a socket nobody answers on; refuse to touch anything else.
pub fn remove_stale_socket(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("{} is in use by a running server", path.display()),
                ));
            }
            std::fs::remove_file(path)
        }
        Ok(_) => Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        )),
        Err(_) => Ok(()),
    }
}

/// Accept sessions until shutdown, then wait for the sessions in flight.
pub async fn serve<B: Backend>(
    bound: Bound,
    ctx: Arc<B>,
    limit: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut sessions = JoinSet::new();
    let mut backoff = Duration::from_millis(10);
    loop {
        tokio::select! {
            accepted = accept(&bound) => match accepted {
                Ok(stream) => {
                    backoff = Duration::from_millis(10);
                    let (ctx, shutdown, limit) = (ctx.clone(), shutdown.clone(), limit.clone());
                    sessions.spawn(async move { run_session(stream, ctx, shutdown, limit).await });
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    while sessions.join_next().await.is_some() {}
}

enum Stream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept(bound: &Bound) -> std::io::Result<Stream> {
    match bound {
        Bound::Tcp(l) => {
            let (s, _) = l.accept().await?;
            // Replies are small writes: without TCP_NODELAY each one can wait ~40 ms.
            let _ = s.set_nodelay(true);
            Ok(Stream::Tcp(s))
        }
        Bound::Unix(l) => Ok(Stream::Unix(l.accept().await?.0)),
    }
}

async fn run_session<B: Backend>(
    stream: Stream,
    ctx: Arc<B>,
    shutdown: watch::Receiver<bool>,
    limit: Arc<Semaphore>,
) {
    match stream {
        Stream::Tcp(s) => guarded(s, ctx, shutdown, limit).await,
        Stream::Unix(s) => guarded(s, ctx, shutdown, limit).await,
    }
}

async fn guarded<S: AsyncRead + AsyncWrite + Unpin, B: Backend>(
    mut s: S,
    ctx: Arc<B>,
    shutdown: watch::Receiver<bool>,
    limit: Arc<Semaphore>,
) {
    let Ok(_permit) = limit.try_acquire_owned() else {
        let id = super::session::new_id();
        let reply = Said::Busy.reply().with_id(&id);
        tracing::warn!(id = %id, reply = %reply, "too many concurrent LMTP sessions; refusing one");
        let _ = s.write_all(reply.to_line().as_bytes()).await;
        return;
    };
    crate::stats::SESSIONS.inc();
    crate::stats::SESSIONS_TOTAL.inc();
    let end = Session::new(s, ctx, shutdown).run().await;
    crate::stats::SESSIONS.dec();
    tracing::debug!(?end, "lmtp session ended");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The socket appears at its path with the configured mode, answers, and no private
    /// directory is left behind; something that is not a socket is never replaced.
    fn access(mode: u32) -> SocketAccess {
        SocketAccess {
            mode,
            owner: None,
            group: None,
        }
    }

    #[tokio::test]
    async fn unix_socket_is_bound_with_its_mode_and_nothing_left_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lmtp.sock");
        let bound = bind(&Listen::Unix(path.clone()), access(0o640))
            .await
            .expect("bind");
        let mode = std::fs::metadata(&path)
            .expect("socket")
            .permissions()
            .mode()
            & 0o7777;
        assert_eq!(mode, 0o640);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("lmtp.sock")]);
        let Bound::Unix(l) = bound else {
            panic!("not a unix listener")
        };
        let (accepted, connected) =
            tokio::join!(l.accept(), tokio::net::UnixStream::connect(&path));
        assert!(accepted.is_ok() && connected.is_ok());
        drop(l);

        let link = dir.path().join("link.sock");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).expect("symlink");
        assert!(bind(&Listen::Unix(link.clone()), access(0o660))
            .await
            .is_err());
        assert!(std::fs::symlink_metadata(&link)
            .expect("link")
            .file_type()
            .is_symlink());
    }
}
