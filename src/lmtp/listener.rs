//! Accept loops for the configured unix and TCP listeners, with a cap on concurrent sessions.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::Session;
use crate::config::Listen;
use crate::pipeline::Context;

/// A bound listener, ready to accept.
pub enum Bound {
    /// TCP.
    Tcp(TcpListener),
    /// Unix-domain socket.
    Unix(UnixListener),
}

/// Bind one listener. A stale unix socket file from an earlier run is replaced; its mode is
/// set so that the MTA's delivery agent can connect.
pub async fn bind(listen: &Listen, mode: u32, group: Option<u32>) -> std::io::Result<Bound> {
    match listen {
        Listen::Tcp(addr) => Ok(Bound::Tcp(TcpListener::bind(addr).await?)),
        Listen::Unix(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            remove_stale_socket(path)?;
            let l = UnixListener::bind(path)?;
            if let Some(gid) = group {
                std::os::unix::fs::chown(path, None, Some(gid))?;
            }
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
            Ok(Bound::Unix(l))
        }
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
pub async fn serve(
    bound: Bound,
    ctx: Arc<Context>,
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

async fn run_session(
    stream: Stream,
    ctx: Arc<Context>,
    shutdown: watch::Receiver<bool>,
    limit: Arc<Semaphore>,
) {
    match stream {
        Stream::Tcp(s) => guarded(s, ctx, shutdown, limit).await,
        Stream::Unix(s) => guarded(s, ctx, shutdown, limit).await,
    }
}

async fn guarded<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    ctx: Arc<Context>,
    shutdown: watch::Receiver<bool>,
    limit: Arc<Semaphore>,
) {
    let Ok(_permit) = limit.try_acquire_owned() else {
        tracing::warn!("too many concurrent LMTP sessions; refusing one");
        let _ = s
            .write_all(b"421 4.3.2 too many concurrent sessions, try again later\r\n")
            .await;
        return;
    };
    crate::stats::SESSIONS.inc();
    crate::stats::SESSIONS_TOTAL.inc();
    let end = Session::new(s, ctx, shutdown).run().await;
    crate::stats::SESSIONS.dec();
    tracing::debug!(?end, "lmtp session ended");
}
