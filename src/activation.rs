//! systemd socket activation (`sd_listen_fds(3)`): listeners a `.socket` unit opened and handed
//! over as file descriptors 3, 4, ... with `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES`.
//!
//! A descriptor named `control` (`FileDescriptorName=control`) is the CLI's control socket;
//! every other one is an LMTP listener. With activated LMTP listeners, `server.lmtp_listen` is
//! not bound: the socket unit owns addresses, modes and groups. Only stream sockets that listen
//! are taken; anything else is an error, so a wrong unit file fails at start, not at the first
//! connection.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const FIRST_FD: RawFd = 3;

/// The descriptor name that marks the control socket.
pub const CONTROL_NAME: &str = "control";

/// Sockets handed over by the service manager.
#[derive(Debug, Default)]
pub struct Activated {
    /// LMTP listeners, with their names.
    pub lmtp: Vec<(String, Socket)>,
    /// The control socket, when one was passed.
    pub control: Option<std::os::unix::net::UnixListener>,
}

/// A listening stream socket.
#[derive(Debug)]
pub enum Socket {
    /// TCP (IPv4 or IPv6).
    Tcp(std::net::TcpListener),
    /// Unix-domain.
    Unix(std::os::unix::net::UnixListener),
}

/// Why activated sockets cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    /// `LISTEN_FDS` is not a number, or too large.
    #[error("LISTEN_FDS={0:?} is not a descriptor count")]
    Count(String),
    /// A passed descriptor is not a listening stream socket.
    #[error("socket activation: descriptor {fd} ({name}) is not a listening {what} socket")]
    NotListening {
        /// The descriptor.
        fd: RawFd,
        /// Its name in `LISTEN_FDNAMES`.
        name: String,
        /// What it should have been.
        what: &'static str,
    },
    /// Two control sockets.
    #[error("socket activation: more than one descriptor is named {CONTROL_NAME}")]
    TwoControls,
}

/// The descriptors meant for this process: `(fd, name)` pairs. `None` when the variables are
/// absent or name another process (`LISTEN_PID` is checked, as `sd_listen_fds` does, so a
/// child that inherited the environment does not take its parent's sockets).
pub fn described(
    pid: Option<&str>,
    fds: Option<&str>,
    names: Option<&str>,
    me: u32,
) -> Result<Option<Vec<(RawFd, String)>>, ActivationError> {
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(None);
    };
    if pid.trim().parse::<u32>().ok() != Some(me) {
        return Ok(None);
    }
    let count: RawFd = fds
        .trim()
        .parse()
        .ok()
        .filter(|n| (0..=4096).contains(n))
        .ok_or_else(|| ActivationError::Count(fds.to_string()))?;
    if count == 0 {
        return Ok(None);
    }
    let mut names = names.unwrap_or("").split(':');
    Ok(Some(
        (0..count)
            .map(|i| {
                let name = names.next().filter(|n| !n.is_empty()).unwrap_or("unknown");
                (FIRST_FD + i, name.to_string())
            })
            .collect(),
    ))
}

/// Take the sockets the service manager passed to this process, if any. Each descriptor is
/// marked close-on-exec and checked to be a listening stream socket.
pub fn take() -> Result<Option<Activated>, ActivationError> {
    let var = |k: &str| std::env::var(k).ok();
    let Some(fds) = described(
        var("LISTEN_PID").as_deref(),
        var("LISTEN_FDS").as_deref(),
        var("LISTEN_FDNAMES").as_deref(),
        std::process::id(),
    )?
    else {
        return Ok(None);
    };
    let mut out = Activated::default();
    for (fd, name) in fds {
        // SAFETY: the service manager passed this descriptor to us (LISTEN_PID is ours) and
        // nothing else in the process owns it: it is taken exactly once, here.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        set_cloexec(&owned);
        let not = |what| ActivationError::NotListening {
            fd,
            name: name.clone(),
            what,
        };
        let (domain, stream, listening) = kind(&owned);
        if !stream || !listening {
            return Err(not("stream"));
        }
        if name == CONTROL_NAME {
            if domain != libc::AF_UNIX {
                return Err(not("unix"));
            }
            if out.control.is_some() {
                return Err(ActivationError::TwoControls);
            }
            out.control = Some(owned.into());
            continue;
        }
        let socket = match domain {
            libc::AF_UNIX => Socket::Unix(owned.into()),
            libc::AF_INET | libc::AF_INET6 => Socket::Tcp(owned.into()),
            _ => return Err(not("unix or TCP")),
        };
        out.lmtp.push((name, socket));
    }
    Ok(Some(out))
}

/// Systemd passes descriptors without close-on-exec; set it, as `sd_listen_fds` does.
fn set_cloexec(fd: &OwnedFd) {
    // SAFETY: fcntl on a descriptor we own; F_GETFD/F_SETFD take and return plain ints.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFD);
        if flags >= 0 {
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
    }
}

/// (address family, is a stream socket, is listening); all false/0 for a non-socket.
fn kind(fd: &OwnedFd) -> (libc::c_int, bool, bool) {
    let opt = |name| {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `value`, an int we own.
        let r = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                name,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        (r == 0).then_some(value)
    };
    (
        opt(libc::SO_DOMAIN).unwrap_or(0),
        opt(libc::SO_TYPE) == Some(libc::SOCK_STREAM),
        opt(libc::SO_ACCEPTCONN) == Some(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_descriptors_for_this_process() {
        assert!(described(None, None, None, 7).unwrap().is_none());
        assert!(described(Some("8"), Some("2"), None, 7).unwrap().is_none());
        assert!(described(Some("7"), Some("0"), None, 7).unwrap().is_none());
        assert!(described(Some("x"), Some("1"), None, 7).unwrap().is_none());
        assert!(described(Some("7"), Some("-1"), None, 7).is_err());
        assert!(described(Some("7"), Some("many"), None, 7).is_err());
    }

    #[test]
    fn names_follow_the_descriptors() {
        let got = described(Some("7"), Some("3"), Some("lmtp:control"), 7)
            .unwrap()
            .unwrap();
        assert_eq!(
            got,
            vec![
                (3, "lmtp".to_string()),
                (4, "control".to_string()),
                (5, "unknown".to_string())
            ]
        );
    }

    #[test]
    fn a_datagram_or_unbound_socket_is_refused() {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let fd: OwnedFd = udp.into();
        assert!(!kind(&fd).1);
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fd: OwnedFd = tcp.into();
        assert_eq!(kind(&fd), (libc::AF_INET, true, true));
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let fd: OwnedFd = a.into();
        assert_eq!(kind(&fd), (libc::AF_UNIX, true, false));
    }
}
