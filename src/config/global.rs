//! The global file (`listkeeper.toml`): listeners, directories, re-injection, limits, store.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::error::ConfigError;

/// Where the LMTP server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A unix-domain socket path (`unix:/run/listkeeper/lmtp.sock`).
    Unix(PathBuf),
    /// A TCP `host:port` (`127.0.0.1:2424`, `[::1]:2424`).
    Tcp(String),
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Unix(p) => write!(f, "unix:{}", p.display()),
            Listen::Tcp(a) => write!(f, "{a}"),
        }
    }
}

/// The validated global configuration. Paths are absolute (relative ones are resolved against
/// the directory of the config file).
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from.
    pub path: PathBuf,
    /// `[server]`
    pub server: ServerConfig,
    /// `[reinject]`
    pub reinject: ReinjectConfig,
    /// `[limits]`
    pub limits: Limits,
    /// `[store]`
    pub store: StoreConfig,
    /// `[requests]`
    pub requests: RequestsConfig,
}

/// `[requests]`: email commands and confirmations.
#[derive(Debug, Clone)]
pub struct RequestsConfig {
    /// How long a confirmation or approval token stays valid.
    pub token_ttl: Duration,
    /// Commands read from one mail to `-request`.
    pub max_commands: usize,
    /// Mails one address may be sent per list and hour because of requests (forged ones too).
    pub per_address_per_hour: u64,
    /// Mails one list may send per hour because of requests.
    pub per_list_per_hour: u64,
}

/// `[server]`: listeners and directories.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// LMTP listeners.
    pub lmtp_listen: Vec<Listen>,
    /// Permission bits of unix listener sockets (the MTA's delivery agent must be able to write).
    pub lmtp_socket_mode: u32,
    /// Group of unix listener sockets (e.g. the MTA's `postfix` group), by id.
    pub lmtp_socket_group: Option<u32>,
    /// Owner of unix listener sockets, by id (giving a socket away needs root).
    pub lmtp_socket_owner: Option<u32>,
    /// Where the store lives.
    pub data_dir: PathBuf,
    /// One TOML file per list.
    pub lists_dir: PathBuf,
    /// The address extension delimiter (`+`), as in Postfix's `recipient_delimiter`.
    pub recipient_delimiter: char,
    /// The CLI's control socket (default: `DATA_DIR/control.sock`, mode 0600).
    pub control_socket: PathBuf,
    /// How long shutdown waits for sessions in flight.
    pub shutdown_timeout: Duration,
    /// Runtime worker threads (1 works; default 2).
    pub worker_threads: usize,
}

/// `[reinject]`: the SMTP infeed back into the MTA.
#[derive(Debug, Clone)]
pub struct ReinjectConfig {
    /// `host:port` of the MTA's re-injection smtpd.
    pub target: String,
    /// Parallel persistent connections.
    pub connections: usize,
    /// Recipients per SMTP transaction.
    pub max_recipients_per_transaction: usize,
    /// Name sent in EHLO.
    pub helo_name: String,
    /// Timeout for each reply of the MTA.
    pub timeout: Duration,
}

/// `[limits]`: what one LMTP client may ask of us.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest message accepted (bytes), advertised with SIZE.
    pub max_message_size: usize,
    /// Largest header section accepted (bytes up to the first empty line): every header field
    /// costs the MIME parser far more memory than its bytes, so this bounds what one message
    /// can make it allocate.
    pub max_header_size: usize,
    /// Most MIME parts (boundary delimiter lines) in a message: each costs the MIME parser far
    /// more memory than its bytes.
    pub max_mime_parts: usize,
    /// Deepest nesting of multipart and `message/*` parts (base64-wrapped messages counted
    /// inside): each level costs the parser a nested value, and an unbounded depth overflows
    /// the stack.
    pub max_mime_depth: usize,
    /// Recipients per LMTP transaction.
    pub max_recipients: usize,
    /// Concurrent LMTP sessions.
    pub max_sessions: usize,
    /// A session idle for this long is closed with 421.
    pub idle_timeout: Duration,
    /// The whole DATA phase must end within this (against slow senders holding a session).
    pub data_timeout: Duration,
}

/// `[store]`: the embedded database.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Page cache of the store, bytes.
    pub cache_size: usize,
    /// How long fan-out journal entries are kept (the MTA's maximal queue lifetime or more).
    pub journal_ttl: Duration,
}

/// Every numeric limit, declared once: key, default, min, max.
pub struct Bound {
    /// Dotted key.
    pub key: &'static str,
    /// Used when the key is absent.
    pub default: u64,
    /// Smallest accepted value.
    pub min: u64,
    /// Largest accepted value.
    pub max: u64,
}

/// The table of numeric settings (Postfix style: one place for default, min and max).
pub const BOUNDS: &[Bound] = &[
    Bound {
        key: "reinject.connections",
        default: 4,
        min: 1,
        max: 256,
    },
    Bound {
        key: "reinject.max_recipients_per_transaction",
        default: 500,
        min: 1,
        max: 100_000,
    },
    Bound {
        key: "reinject.timeout_secs",
        default: 300,
        min: 1,
        max: 3600,
    },
    Bound {
        key: "limits.max_message_size",
        default: 10_000_000,
        min: 1024,
        max: 1 << 30,
    },
    Bound {
        key: "limits.max_header_size",
        default: 256 << 10,
        min: 1024,
        max: 1 << 30,
    },
    Bound {
        key: "limits.max_mime_parts",
        default: 10_000,
        min: 10,
        max: 10_000_000,
    },
    Bound {
        key: "limits.max_mime_depth",
        default: 50,
        min: 1,
        max: crate::mime::DEPTH_CEILING as u64,
    },
    Bound {
        key: "limits.max_recipients",
        default: 1000,
        min: 1,
        max: 100_000,
    },
    Bound {
        key: "limits.max_sessions",
        default: 100,
        min: 1,
        max: 100_000,
    },
    Bound {
        key: "limits.idle_timeout_secs",
        default: 300,
        min: 1,
        max: 86_400,
    },
    Bound {
        key: "limits.data_timeout_secs",
        default: 600,
        min: 1,
        max: 86_400,
    },
    Bound {
        key: "server.shutdown_timeout_secs",
        default: 30,
        min: 0,
        max: 3600,
    },
    Bound {
        key: "server.worker_threads",
        default: 2,
        min: 1,
        max: 256,
    },
    Bound {
        key: "requests.token_ttl_secs",
        default: 3 * 86_400,
        min: 60,
        max: 90 * 86_400,
    },
    Bound {
        key: "requests.max_commands",
        default: 20,
        min: 1,
        max: 1000,
    },
    Bound {
        key: "requests.per_address_per_hour",
        default: 5,
        min: 1,
        max: 10_000,
    },
    Bound {
        key: "requests.per_list_per_hour",
        default: 200,
        min: 1,
        max: 1_000_000,
    },
    Bound {
        key: "store.cache_size",
        default: 4 << 20,
        min: 64 << 10,
        max: 1 << 36,
    },
    Bound {
        key: "store.journal_ttl_secs",
        default: 7 * 86_400,
        min: 3600,
        max: 365 * 86_400,
    },
];

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    reinject: RawReinject,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    requests: RawRequests,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRequests {
    token_ttl_secs: Option<Spanned<u64>>,
    max_commands: Option<Spanned<u64>>,
    per_address_per_hour: Option<Spanned<u64>>,
    per_list_per_hour: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    lmtp_listen: Option<Spanned<Vec<Spanned<String>>>>,
    lmtp_socket_mode: Option<Spanned<String>>,
    lmtp_socket_group: Option<Spanned<String>>,
    lmtp_socket_owner: Option<Spanned<String>>,
    data_dir: Option<Spanned<String>>,
    lists_dir: Option<Spanned<String>>,
    recipient_delimiter: Option<Spanned<String>>,
    control_socket: Option<Spanned<String>>,
    shutdown_timeout_secs: Option<Spanned<u64>>,
    worker_threads: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReinject {
    target: Option<Spanned<String>>,
    connections: Option<Spanned<u64>>,
    max_recipients_per_transaction: Option<Spanned<u64>>,
    helo_name: Option<Spanned<String>>,
    timeout_secs: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_message_size: Option<Spanned<u64>>,
    max_header_size: Option<Spanned<u64>>,
    max_mime_parts: Option<Spanned<u64>>,
    max_mime_depth: Option<Spanned<u64>>,
    max_recipients: Option<Spanned<u64>>,
    max_sessions: Option<Spanned<u64>>,
    idle_timeout_secs: Option<Spanned<u64>>,
    data_timeout_secs: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStore {
    cache_size: Option<Spanned<u64>>,
    journal_ttl_secs: Option<Spanned<u64>>,
}

/// Collects errors so that one run of `check` reports all of them.
struct Checker<'a> {
    file: &'a Path,
    text: &'a str,
    errors: Vec<ConfigError>,
}

impl Checker<'_> {
    fn fail(&mut self, span: std::ops::Range<usize>, key: &str, msg: impl Into<String>) {
        self.errors
            .push(ConfigError::at(self.file, self.text, span, key, msg));
    }

    fn bounded(&mut self, key: &str, value: &Option<Spanned<u64>>) -> u64 {
        let Some(b) = BOUNDS.iter().find(|b| b.key == key) else {
            return 0;
        };
        match value {
            None => b.default,
            Some(v) if (b.min..=b.max).contains(v.get_ref()) => *v.get_ref(),
            Some(v) => {
                self.fail(
                    v.span(),
                    key,
                    format!(
                        "{} is out of range, it must be between {} and {}",
                        v.get_ref(),
                        b.min,
                        b.max
                    ),
                );
                b.default
            }
        }
    }

    fn path(
        &mut self,
        base: &Path,
        key: &str,
        value: &Option<Spanned<String>>,
        default: &str,
    ) -> PathBuf {
        let raw = value.as_ref().map_or(default, |v| v.get_ref().as_str());
        if raw.is_empty() {
            if let Some(v) = value {
                self.fail(v.span(), key, "the path is empty");
            }
        }
        base.join(raw)
    }
}

impl Config {
    /// Read and validate the global file; all problems are returned at once.
    pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ConfigError::file(
                path,
                format!("cannot read the file: {e}"),
            )]
        })?;
        Config::parse(path, &text)
    }

    /// Validate `text` as the content of the global file at `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, Vec<ConfigError>> {
        let raw: Raw =
            toml::from_str(text).map_err(|e| vec![ConfigError::from_toml(path, text, &e)])?;
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let base = std::path::absolute(&base).unwrap_or(base);
        let mut c = Checker {
            file: path,
            text,
            errors: Vec::new(),
        };

        let s = &raw.server;
        let mut listen = Vec::new();
        match &s.lmtp_listen {
            None => c.errors.push(ConfigError::file(path, "key `server.lmtp_listen` is missing: give at least one listener, e.g. [\"unix:/run/listkeeper/lmtp.sock\"]")),
            Some(list) if list.get_ref().is_empty() => c.fail(list.span(), "server.lmtp_listen", "the list is empty: give at least one listener"),
            Some(list) => {
                for entry in list.get_ref() {
                    match parse_listen(entry.get_ref(), &base) {
                        Ok(l) => listen.push(l),
                        Err(m) => c.fail(entry.span(), "server.lmtp_listen", m),
                    }
                }
            }
        }
        let owner = match &s.lmtp_socket_owner {
            None => None,
            Some(u) => match user_id(u.get_ref()) {
                Some(id) => Some(id),
                None => {
                    c.fail(
                        u.span(),
                        "server.lmtp_socket_owner",
                        format!(
                            "no user {:?} on this system (a name `getent passwd` knows, or a number)",
                            u.get_ref()
                        ),
                    );
                    None
                }
            },
        };
        let group = match &s.lmtp_socket_group {
            None => None,
            Some(g) => match group_id(g.get_ref()) {
                Some(id) => Some(id),
                None => {
                    c.fail(
                        g.span(),
                        "server.lmtp_socket_group",
                        format!(
                            "no group {:?} on this system (a name `getent group` knows, or a number)",
                            g.get_ref()
                        ),
                    );
                    None
                }
            },
        };
        let mode = match &s.lmtp_socket_mode {
            None => 0o660,
            Some(m) => match u32::from_str_radix(m.get_ref().trim_start_matches("0o"), 8) {
                Ok(v) if v <= 0o777 => v,
                _ => {
                    c.fail(
                        m.span(),
                        "server.lmtp_socket_mode",
                        "must be an octal mode such as \"0660\"",
                    );
                    0o660
                }
            },
        };
        let data_dir = c.path(&base, "server.data_dir", &s.data_dir, "/var/lib/listkeeper");
        let lists_dir = c.path(&base, "server.lists_dir", &s.lists_dir, "lists.d");
        let delimiter = match &s.recipient_delimiter {
            None => '+',
            Some(d) => {
                let mut chars = d.get_ref().chars();
                match (chars.next(), chars.next()) {
                    (Some(ch), None) if "+-_=.#~".contains(ch) => ch,
                    _ => {
                        c.fail(
                            d.span(),
                            "server.recipient_delimiter",
                            "must be a single character such as \"+\" (one of + - _ = . # ~)",
                        );
                        '+'
                    }
                }
            }
        };
        let control_socket = match &s.control_socket {
            Some(_) => c.path(&base, "server.control_socket", &s.control_socket, ""),
            None => data_dir.join("control.sock"),
        };
        let shutdown = c.bounded("server.shutdown_timeout_secs", &s.shutdown_timeout_secs);
        let workers = c.bounded("server.worker_threads", &s.worker_threads);

        let r = &raw.reinject;
        let target = match &r.target {
            None => "127.0.0.1:10026".to_string(),
            Some(t) => {
                if !valid_host_port(t.get_ref()) {
                    c.fail(
                        t.span(),
                        "reinject.target",
                        "must be host:port, e.g. \"127.0.0.1:10026\"",
                    );
                }
                t.get_ref().clone()
            }
        };
        let helo_name = match &r.helo_name {
            None => "localhost".to_string(),
            Some(h) => {
                let ok = !h.get_ref().is_empty()
                    && h.get_ref()
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ".-_[]:".contains(ch));
                if !ok {
                    c.fail(h.span(), "reinject.helo_name", "must be a host name");
                }
                h.get_ref().clone()
            }
        };
        let reinject = ReinjectConfig {
            target,
            connections: c.bounded("reinject.connections", &r.connections) as usize,
            max_recipients_per_transaction: c.bounded(
                "reinject.max_recipients_per_transaction",
                &r.max_recipients_per_transaction,
            ) as usize,
            helo_name,
            timeout: Duration::from_secs(c.bounded("reinject.timeout_secs", &r.timeout_secs)),
        };
        let l = &raw.limits;
        let limits = Limits {
            max_message_size: c.bounded("limits.max_message_size", &l.max_message_size) as usize,
            max_header_size: c.bounded("limits.max_header_size", &l.max_header_size) as usize,
            max_mime_parts: c.bounded("limits.max_mime_parts", &l.max_mime_parts) as usize,
            max_mime_depth: c.bounded("limits.max_mime_depth", &l.max_mime_depth) as usize,
            max_recipients: c.bounded("limits.max_recipients", &l.max_recipients) as usize,
            max_sessions: c.bounded("limits.max_sessions", &l.max_sessions) as usize,
            idle_timeout: Duration::from_secs(
                c.bounded("limits.idle_timeout_secs", &l.idle_timeout_secs),
            ),
            data_timeout: Duration::from_secs(
                c.bounded("limits.data_timeout_secs", &l.data_timeout_secs),
            ),
        };
        let st = &raw.store;
        let store = StoreConfig {
            cache_size: c.bounded("store.cache_size", &st.cache_size) as usize,
            journal_ttl: Duration::from_secs(
                c.bounded("store.journal_ttl_secs", &st.journal_ttl_secs),
            ),
        };
        let rq = &raw.requests;
        let requests = RequestsConfig {
            token_ttl: Duration::from_secs(
                c.bounded("requests.token_ttl_secs", &rq.token_ttl_secs),
            ),
            max_commands: c.bounded("requests.max_commands", &rq.max_commands) as usize,
            per_address_per_hour: c
                .bounded("requests.per_address_per_hour", &rq.per_address_per_hour),
            per_list_per_hour: c.bounded("requests.per_list_per_hour", &rq.per_list_per_hour),
        };
        if !c.errors.is_empty() {
            return Err(c.errors);
        }
        Ok(Config {
            path: path.to_path_buf(),
            server: ServerConfig {
                lmtp_listen: listen,
                lmtp_socket_mode: mode,
                lmtp_socket_group: group,
                lmtp_socket_owner: owner,
                data_dir,
                lists_dir,
                recipient_delimiter: delimiter,
                control_socket,
                shutdown_timeout: Duration::from_secs(shutdown),
                worker_threads: workers as usize,
            },
            reinject,
            limits,
            store,
            requests,
        })
    }
}

/// A group by name or number. Names go through the system's name service (NSS), so groups
/// from LDAP or systemd-homed count as well as those in /etc/group.
fn group_id(name: &str) -> Option<u32> {
    id_by_name(name, |cname, buf| {
        // SAFETY: all-zero bytes are a valid `group` (null pointers, group id 0).
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        // SAFETY: getgrnam_r reads the NUL-terminated `cname`, fills `grp`, writes the entry's
        // strings into `buf` (at most `buf.len()` bytes) and sets `found` to `&grp` or null.
        // Nothing it points to outlives this call; only the id is read.
        let rc = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut grp,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        };
        match rc {
            0 => Ok((!found.is_null()).then_some(grp.gr_gid)),
            err => Err(err),
        }
    })
}

/// A user by name or number, names through NSS like [`group_id`].
fn user_id(name: &str) -> Option<u32> {
    id_by_name(name, |cname, buf| {
        // SAFETY: all-zero bytes are a valid `passwd` (null pointers, ids 0).
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: as for getgrnam_r in `group_id`, with a `passwd` entry.
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        };
        match rc {
            0 => Ok((!found.is_null()).then_some(pwd.pw_uid)),
            err => Err(err),
        }
    })
}

/// First size of the buffer an NSS entry's strings are written to; doubled while the entry
/// does not fit (a group with many members can need much more), up to [`NSS_BUF_MAX`].
const NSS_BUF_START: usize = 1024;
/// Largest buffer offered to NSS for one entry.
const NSS_BUF_MAX: usize = 1 << 20;

/// A number, or the id `lookup` finds for `name`. `lookup` is a `get*nam_r` call: `Ok` with
/// the id or `None` (no such name), `Err` with its error number.
fn id_by_name(
    name: &str,
    mut lookup: impl FnMut(&std::ffi::CStr, &mut [libc::c_char]) -> Result<Option<u32>, i32>,
) -> Option<u32> {
    if let Ok(id) = name.parse::<u32>() {
        return Some(id);
    }
    // A name with a NUL in it cannot exist, and would be cut short if passed on.
    let cname = std::ffi::CString::new(name).ok()?;
    let mut len = NSS_BUF_START;
    // Bounded: the buffer doubles at most ten times, and an interrupted call is retried only
    // a few times.
    for _ in 0..16 {
        let mut buf = vec![0 as libc::c_char; len];
        match lookup(&cname, &mut buf) {
            Ok(id) => return id,
            Err(libc::ERANGE) if len < NSS_BUF_MAX => len *= 2,
            Err(libc::EINTR) => {}
            // POSIX lets ENOENT, ESRCH, EBADF and EPERM mean "no such name"; other errors (a
            // directory server out of reach) are reported as an unknown name as well.
            Err(_) => return None,
        }
    }
    None
}

fn parse_listen(entry: &str, base: &Path) -> Result<Listen, String> {
    if let Some(p) = entry.strip_prefix("unix:") {
        if p.is_empty() {
            return Err(
                "a unix listener needs a path, e.g. \"unix:/run/listkeeper/lmtp.sock\"".into(),
            );
        }
        return Ok(Listen::Unix(base.join(p)));
    }
    if valid_host_port(entry) {
        Ok(Listen::Tcp(entry.to_string()))
    } else {
        Err(format!(
            "{entry:?} is neither \"unix:/path\" nor \"host:port\""
        ))
    }
}

fn valid_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_relative_paths() {
        let cfg = Config::parse(Path::new("/etc/lk/listkeeper.toml"), "[server]\nlmtp_listen = [\"unix:run/lmtp.sock\", \"127.0.0.1:2424\"]\ndata_dir = \"data\"\n")
            .expect("valid");
        assert_eq!(
            cfg.server.lmtp_listen[0],
            Listen::Unix("/etc/lk/run/lmtp.sock".into())
        );
        assert_eq!(cfg.server.data_dir, PathBuf::from("/etc/lk/data"));
        assert_eq!(cfg.server.lists_dir, PathBuf::from("/etc/lk/lists.d"));
        assert_eq!(cfg.reinject.connections, 4);
        assert_eq!(cfg.reinject.max_recipients_per_transaction, 500);
        assert_eq!(cfg.server.recipient_delimiter, '+');
    }

    #[test]
    fn every_error_is_reported_with_position_and_key() {
        let text = "[server]\nlmtp_listen = [\"nowhere\"]\nrecipient_delimiter = \"++\"\n[reinject]\nconnections = 0\n";
        let errs = Config::parse(Path::new("g.toml"), text).expect_err("invalid");
        let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[0].starts_with("g.toml:2:16: key `server.lmtp_listen`:"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with("g.toml:3:23: key `server.recipient_delimiter`:"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].contains("g.toml:5:15: key `reinject.connections`: 0 is out of range"),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        let errs = Config::parse(
            Path::new("g.toml"),
            "[server]\nlmtp_listen = [\"127.0.0.1:1\"]\nlisten_lmtp = 1\n",
        )
        .expect_err("invalid");
        assert_eq!(errs.len(), 1);
        let e = &errs[0];
        assert_eq!((e.line, e.key.as_str()), (3, "server.listen_lmtp"), "{e}");
    }

    #[test]
    fn socket_owner_and_group_are_names_or_numbers() {
        let cfg = Config::parse(
            Path::new("g.toml"),
            "[server]\nlmtp_socket_owner = \"root\"\nlmtp_socket_group = \"4242\"\nlmtp_listen = [\"unix:l.sock\"]\n",
        )
        .expect("valid");
        assert_eq!(cfg.server.lmtp_socket_owner, Some(0));
        assert_eq!(cfg.server.lmtp_socket_group, Some(4242));
        let errs = Config::parse(
            Path::new("g.toml"),
            "[server]\nlmtp_socket_owner = \"no-such-user-here\"\nlmtp_socket_group = \"no-such-group-here\"\nlmtp_listen = [\"unix:l.sock\"]\n",
        )
        .expect_err("unknown names");
        let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with("g.toml:2:21: key `server.lmtp_socket_owner`: no user"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with("g.toml:3:21: key `server.lmtp_socket_group`: no group"),
            "{}",
            lines[1]
        );
        assert!(lines[0].contains("getent passwd"), "{}", lines[0]);
        assert!(lines[1].contains("getent group"), "{}", lines[1]);
    }

    #[test]
    fn users_and_groups_come_from_the_name_service() {
        assert_eq!(user_id("root"), Some(0));
        assert_eq!(group_id("root"), Some(0));
        // Debian's and Fedora's unprivileged user (`getent passwd nobody`).
        assert_eq!(user_id("nobody"), Some(65534));
        assert_eq!(user_id("65534"), Some(65534));
        assert_eq!(group_id("0"), Some(0));
        for unknown in ["no-such-user-here", "", "root\0x", "4294967296", "-1"] {
            assert_eq!(user_id(unknown), None, "{unknown:?}");
            assert_eq!(group_id(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn a_name_service_entry_too_big_for_the_buffer_is_retried_bounded() {
        let mut sizes = Vec::new();
        let found = id_by_name("big", |_, buf| {
            sizes.push(buf.len());
            if buf.len() < 8 * NSS_BUF_START {
                Err(libc::ERANGE)
            } else {
                Ok(Some(7))
            }
        });
        assert_eq!(found, Some(7));
        assert_eq!(sizes, [1024, 2048, 4096, 8192]);
        let mut calls = 0;
        assert_eq!(
            id_by_name("huge", |_, buf| {
                calls += 1;
                assert!(buf.len() <= NSS_BUF_MAX);
                Err(libc::ERANGE)
            }),
            None
        );
        assert_eq!(calls, 11);
        assert_eq!(id_by_name("x", |_, _| Err(libc::EIO)), None);
        assert_eq!(id_by_name("x", |_, _| Ok(None)), None);
    }
}
