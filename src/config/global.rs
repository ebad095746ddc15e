//! The global file (`listkeeper.toml`): listeners, directories, re-injection, limits, store.
//! Each setting is declared once, in its section below: type, default, bounds, and whether a
//! reload applies it (`live`) or it waits for a restart; parsing, the `SETTINGS` tables and
//! [`Config::reloaded`] all read those declarations.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::error::ConfigError;
use super::settings::{section, Checker, Setting};

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
    /// `[routing]`
    pub routing: RoutingConfig,
}

// The sections, one line per setting (the forms are in `settings`). A section checks its
// settings in the order written here, which is therefore the order of its errors.

section! {
    /// `[server]`: listeners and directories.
    [server] ServerConfig from RawServer {
        /// LMTP listeners.
        lmtp_listen: Vec<Listen> as Vec<Spanned<String>> = Checker::listeners, restart;
        /// Owner of unix listener sockets, by id (giving a socket away needs root).
        lmtp_socket_owner: Option<u32> as String = Checker::user, restart;
        /// Group of unix listener sockets (e.g. the MTA's `postfix` group), by id.
        lmtp_socket_group: Option<u32> as String = Checker::group, restart;
        /// Permission bits of unix listener sockets (the MTA's delivery agent must be able to
        /// write).
        lmtp_socket_mode: u32 as String = |c, key, v| c.mode(key, v, 0o660), restart;
        /// Where the store lives.
        data_dir: PathBuf as String =
            |c, key, v| c.path(key, v, "/var/lib/listkeeper"), restart;
        /// One TOML file per list.
        lists_dir: PathBuf as String = |c, key, v| c.path(key, v, "lists.d"), restart;
        /// The address extension delimiter (`+`), as in Postfix's `recipient_delimiter`.
        recipient_delimiter: char as String = |c, key, v| c.delimiter(key, v, '+'), restart;
        /// The CLI's control socket (default: `DATA_DIR/control.sock`, mode 0600).
        control_socket: PathBuf as String = |c, key, v| match v {
            None => data_dir.join("control.sock"),
            Some(_) => c.path(key, v, ""),
        }, restart;
        /// How long shutdown waits for sessions in flight.
        shutdown_timeout_secs => shutdown_timeout: Duration = 30, 0..=3600, restart;
        /// Runtime worker threads (1 works; default 2).
        worker_threads: usize = 2, 1..=256, restart;
    }
}

section! {
    /// `[reinject]`: the SMTP infeed back into the MTA.
    [reinject] ReinjectConfig from RawReinject {
        /// `host:port` of the MTA's re-injection smtpd.
        target: String as String = |c, key, v| c.host_port(key, v, "127.0.0.1:10026"), restart;
        /// Name sent in EHLO.
        helo_name: String as String = |c, key, v| c.host_name(key, v, "localhost"), restart;
        /// Parallel persistent connections.
        connections: usize = 4, 1..=256, live;
        /// Recipients per SMTP transaction.
        max_recipients_per_transaction: usize = 500, 1..=100_000, live;
        /// Timeout for each reply of the MTA.
        timeout_secs => timeout: Duration = 300, 1..=3600, restart;
    }
}

section! {
    /// `[limits]`: what one LMTP client may ask of us.
    [limits] Limits from RawLimits {
        /// Largest message accepted (bytes), advertised with SIZE.
        max_message_size: usize = 10_000_000, 1024..=1 << 30, live;
        /// Largest header section accepted (bytes up to the first empty line): every header
        /// field costs the MIME parser far more memory than its bytes, so this bounds what one
        /// message can make it allocate.
        max_header_size: usize = 256 << 10, 1024..=1 << 30, live;
        /// Most MIME parts (boundary delimiter lines) in a message: each costs the MIME parser
        /// far more memory than its bytes.
        max_mime_parts: usize = 10_000, 10..=10_000_000, live;
        /// Deepest nesting of multipart and `message/*` parts (base64-wrapped messages counted
        /// inside): each level costs the parser a nested value, and an unbounded depth
        /// overflows the stack.
        max_mime_depth: usize = 50, 1..=crate::mime::DEPTH_CEILING as u64, live;
        /// Recipients per LMTP transaction.
        max_recipients: usize = 1000, 1..=100_000, live;
        /// Concurrent LMTP sessions.
        max_sessions: usize = 100, 1..=100_000, live;
        /// A session idle for this long is closed with 421.
        idle_timeout_secs => idle_timeout: Duration = 300, 1..=86_400, live;
        /// The whole DATA phase must end within this (against slow senders holding a session).
        data_timeout_secs => data_timeout: Duration = 600, 1..=86_400, live;
    }
}

section! {
    /// `[store]`: the embedded database.
    [store] StoreConfig from RawStore {
        /// Page cache of the store, bytes.
        cache_size: usize = 4 << 20, 64 << 10..=1 << 36, restart;
        /// How long fan-out journal entries are kept (the MTA's maximal queue lifetime or
        /// more).
        journal_ttl_secs => journal_ttl: Duration = 7 * 86_400, 3600..=365 * 86_400, live;
    }
}

section! {
    /// `[requests]`: email commands and confirmations.
    [requests] RequestsConfig from RawRequests {
        /// How long a confirmation or approval token stays valid.
        token_ttl_secs => token_ttl: Duration = 3 * 86_400, 60..=90 * 86_400, live;
        /// Commands read from one mail to `-request`.
        max_commands: usize = 20, 1..=1000, live;
        /// Mails one address may be sent per list and hour because of requests (forged ones
        /// too).
        per_address_per_hour: u64 = 5, 1..=10_000, live;
        /// Mails one list may send per hour because of requests.
        per_list_per_hour: u64 = 200, 1..=1_000_000, live;
    }
}

section! {
    /// `[routing]`: lookups the MTA makes at SMTP time (`routing` module); off by default.
    [routing] RoutingConfig from RawRouting {
        /// The socketmap socket (Postfix `socketmap:unix:PATH:NAME`, Exim `${readsocket}`);
        /// absent: no socketmap is served.
        socketmap_socket: Option<PathBuf> as String = |c, key, v| v.map(|_| c.path(key, v, "")), restart;
        /// Permission bits of the socketmap socket (owner and group as `server.lmtp_socket_*`):
        /// the MTA's lookup processes must be able to connect.
        socketmap_socket_mode: u32 as String = |c, key, v| c.mode(key, v, 0o660), restart;
        /// The `transport` map's answer for list addresses (default: `listkeeper:` and the first
        /// LMTP listener, e.g. `listkeeper:unix:/run/listkeeper/lmtp.sock`).
        socketmap_transport: Option<String> as String = |_c, _key, v| v.map(|t| t.get_ref().clone()), restart;
    }
}

/// Every setting of the global file, section by section, in declaration order.
pub fn settings() -> impl Iterator<Item = &'static Setting> {
    [
        ServerConfig::SETTINGS,
        ReinjectConfig::SETTINGS,
        Limits::SETTINGS,
        StoreConfig::SETTINGS,
        RequestsConfig::SETTINGS,
        RoutingConfig::SETTINGS,
    ]
    .into_iter()
    .flatten()
}

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
    #[serde(default)]
    routing: RawRouting,
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
            base,
            errors: Vec::new(),
        };
        let server = ServerConfig::check(&mut c, &raw.server);
        let reinject = ReinjectConfig::check(&mut c, &raw.reinject);
        let limits = Limits::check(&mut c, &raw.limits);
        let store = StoreConfig::check(&mut c, &raw.store);
        let requests = RequestsConfig::check(&mut c, &raw.requests);
        let routing = RoutingConfig::check(&mut c, &raw.routing);
        if !c.errors.is_empty() {
            return Err(c.errors);
        }
        Ok(Config {
            path: path.to_path_buf(),
            server,
            reinject,
            limits,
            store,
            requests,
            routing,
        })
    }

    /// What a running server switches to when a reload read `new`: the live settings of `new`
    /// and the running value (ours) of every other one; with the keys of those whose change
    /// must wait for a restart, in declaration order.
    pub fn reloaded(&self, new: Config) -> (Config, Vec<&'static str>) {
        let Config {
            path,
            server,
            reinject,
            limits,
            store,
            requests,
            routing,
        } = new;
        let (server, mut restart) = self.server.reload(server);
        let (reinject, r) = self.reinject.reload(reinject);
        restart.extend(r);
        let (limits, r) = self.limits.reload(limits);
        restart.extend(r);
        let (store, r) = self.store.reload(store);
        restart.extend(r);
        let (requests, r) = self.requests.reload(requests);
        restart.extend(r);
        let (routing, r) = self.routing.reload(routing);
        restart.extend(r);
        let next = Config {
            path,
            server,
            reinject,
            limits,
            store,
            requests,
            routing,
        };
        (next, restart)
    }
}

/// The checks of the settings that are not numbers, as their declarations name them.
impl Checker<'_> {
    fn listeners(
        &mut self,
        key: &str,
        value: Option<&Spanned<Vec<Spanned<String>>>>,
    ) -> Vec<Listen> {
        let mut listen = Vec::new();
        match value {
            None => self.errors.push(ConfigError::file(self.file, format!("key `{key}` is missing: give at least one listener, e.g. [\"unix:/run/listkeeper/lmtp.sock\"]"))),
            Some(list) if list.get_ref().is_empty() => {
                self.fail(list.span(), key, "the list is empty: give at least one listener")
            }
            Some(list) => {
                for entry in list.get_ref() {
                    match parse_listen(entry.get_ref(), &self.base) {
                        Ok(l) => listen.push(l),
                        Err(m) => self.fail(entry.span(), key, m),
                    }
                }
            }
        }
        listen
    }

    /// A user by name (through the name service) or number.
    fn user(&mut self, key: &str, value: Option<&Spanned<String>>) -> Option<u32> {
        let u = value?;
        let id = user_id(u.get_ref());
        if id.is_none() {
            self.fail(
                u.span(),
                key,
                format!(
                    "no user {:?} on this system (a name `getent passwd` knows, or a number)",
                    u.get_ref()
                ),
            );
        }
        id
    }

    /// A group by name (through the name service) or number.
    fn group(&mut self, key: &str, value: Option<&Spanned<String>>) -> Option<u32> {
        let g = value?;
        let id = group_id(g.get_ref());
        if id.is_none() {
            self.fail(
                g.span(),
                key,
                format!(
                    "no group {:?} on this system (a name `getent group` knows, or a number)",
                    g.get_ref()
                ),
            );
        }
        id
    }

    /// Permission bits written in octal (`"0660"`).
    fn mode(&mut self, key: &str, value: Option<&Spanned<String>>, default: u32) -> u32 {
        let Some(m) = value else {
            return default;
        };
        match u32::from_str_radix(m.get_ref().trim_start_matches("0o"), 8) {
            Ok(v) if v <= 0o777 => v,
            _ => {
                self.fail(m.span(), key, "must be an octal mode such as \"0660\"");
                default
            }
        }
    }

    fn delimiter(&mut self, key: &str, value: Option<&Spanned<String>>, default: char) -> char {
        let Some(d) = value else {
            return default;
        };
        let mut chars = d.get_ref().chars();
        match (chars.next(), chars.next()) {
            (Some(ch), None) if "+-_=.#~".contains(ch) => ch,
            _ => {
                self.fail(
                    d.span(),
                    key,
                    "must be a single character such as \"+\" (one of + - _ = . # ~)",
                );
                default
            }
        }
    }

    fn host_port(&mut self, key: &str, value: Option<&Spanned<String>>, default: &str) -> String {
        let Some(t) = value else {
            return default.to_string();
        };
        if !valid_host_port(t.get_ref()) {
            self.fail(t.span(), key, "must be host:port, e.g. \"127.0.0.1:10026\"");
        }
        t.get_ref().clone()
    }

    fn host_name(&mut self, key: &str, value: Option<&Spanned<String>>, default: &str) -> String {
        let Some(h) = value else {
            return default.to_string();
        };
        let ok = !h.get_ref().is_empty()
            && h.get_ref()
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ".-_[]:".contains(ch));
        if !ok {
            self.fail(h.span(), key, "must be a host name");
        }
        h.get_ref().clone()
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

    const MINIMAL: &str = "[server]\nlmtp_listen = [\"127.0.0.1:2424\"]\n";

    /// `text` with `key = value` added to its table.
    fn with(text: &str, key: &str, value: &str) -> String {
        let (section, name) = key.split_once('.').unwrap_or(("", key));
        if section == "server" {
            text.replacen("[server]\n", &format!("[server]\n{name} = {value}\n"), 1)
        } else {
            format!("{text}[{section}]\n{name} = {value}\n")
        }
    }

    #[test]
    fn every_default_is_within_its_bounds_and_every_key_is_declared_once() {
        let mut keys: Vec<&str> = settings().map(|s| s.key).collect();
        let n = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), n, "a key is declared twice");
        for s in settings() {
            if let Some(b) = s.bound {
                assert!(b.min <= b.default && b.default <= b.max, "{s:?}");
            }
        }
    }

    /// Each numeric key is read from its table and held to its bounds: a value just outside
    /// them is one error naming that key; the bounds themselves are accepted.
    #[test]
    fn every_number_is_read_from_its_table_and_checked_against_its_bounds() {
        let path = Path::new("g.toml");
        for s in settings() {
            let Some(b) = s.bound else { continue };
            for v in [b.max.checked_add(1), b.min.checked_sub(1)]
                .into_iter()
                .flatten()
            {
                let text = with(MINIMAL, s.key, &v.to_string());
                let errs = Config::parse(path, &text).expect_err(&text);
                assert_eq!(errs.len(), 1, "{errs:?}");
                let want = format!(
                    "key `{}`: {v} is out of range, it must be between {} and {}",
                    s.key, b.min, b.max
                );
                assert!(errs[0].to_string().contains(&want), "{}", errs[0]);
            }
            for v in [b.min, b.max] {
                let text = with(MINIMAL, s.key, &v.to_string());
                assert!(Config::parse(path, &text).is_ok(), "{text}");
            }
        }
    }

    /// A reload applies what its declaration marks live and keeps every other setting at its
    /// running value, naming it, for every numeric setting.
    #[test]
    fn a_reload_applies_live_numbers_and_names_the_others() {
        let path = Path::new("/etc/lk/listkeeper.toml");
        let running = Config::parse(path, MINIMAL).expect("valid");
        for s in settings() {
            let Some(b) = s.bound else { continue };
            let other = if b.default == b.max { b.min } else { b.max };
            let text = with(MINIMAL, s.key, &other.to_string());
            let new = Config::parse(path, &text).expect("valid");
            let applied = format!("{new:?}");
            let (next, restart) = running.reloaded(new);
            if s.live {
                assert!(restart.is_empty(), "{}: {restart:?}", s.key);
                assert_eq!(format!("{next:?}"), applied, "{}", s.key);
            } else {
                assert_eq!(restart, [s.key]);
                assert_eq!(format!("{next:?}"), format!("{running:?}"), "{}", s.key);
            }
        }
    }

    #[test]
    fn a_reload_keeps_restart_settings_and_applies_live_ones() {
        let path = Path::new("/etc/lk/listkeeper.toml");
        let running = Config::parse(path, MINIMAL).expect("valid");
        let (same, restart) = running.reloaded(running.clone());
        assert!(restart.is_empty(), "{restart:?}");
        assert_eq!(format!("{same:?}"), format!("{running:?}"));

        let text = "[server]\nlmtp_listen = [\"unix:lmtp.sock\"]\nlmtp_socket_mode = \"0600\"\nrecipient_delimiter = \"-\"\nworker_threads = 4\n[reinject]\ntarget = \"127.0.0.1:25\"\nconnections = 8\n[limits]\nmax_recipients = 1\n[store]\ncache_size = 1048576\njournal_ttl_secs = 3600\n[requests]\nmax_commands = 3\n";
        let (next, restart) = running.reloaded(Config::parse(path, text).expect("valid"));
        assert_eq!(
            restart,
            [
                "server.lmtp_listen",
                "server.lmtp_socket_mode",
                "server.recipient_delimiter",
                "server.worker_threads",
                "reinject.target",
                "store.cache_size",
            ]
        );
        assert_eq!(next.server.lmtp_listen, running.server.lmtp_listen);
        assert_eq!(next.server.lmtp_socket_mode, 0o660);
        assert_eq!(next.server.recipient_delimiter, '+');
        assert_eq!(next.server.worker_threads, 2);
        assert_eq!(next.reinject.target, "127.0.0.1:10026");
        assert_eq!(next.store.cache_size, 4 << 20);
        assert_eq!(next.reinject.connections, 8);
        assert_eq!(next.limits.max_recipients, 1);
        assert_eq!(next.store.journal_ttl, Duration::from_secs(3600));
        assert_eq!(next.requests.max_commands, 3);

        // The next reload compares with what runs: the same file is reported again.
        let (_, again) = next.reloaded(Config::parse(path, text).expect("valid"));
        assert_eq!(again, restart);
    }
}
