//! `listkeeper members add|remove|list`: through the running server's control socket when
//! there is one, directly on the store otherwise.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use clap::Subcommand;

use super::{load_config, ConfigArg};
use crate::address::Address;
use crate::config::Config;
use crate::control::ControlClient;
use crate::registry::Registry;
use crate::store::members::{flag_by_name, flag_names, FLAG_NAMES};
use crate::store::{AddOutcome, Store};

/// `members` subcommands.
#[derive(Subcommand, Debug)]
pub enum MembersCommand {
    /// Subscribe addresses (no confirmation is asked: the operator vouches for them).
    Add(Change),
    /// Unsubscribe addresses.
    Remove(Change),
    /// Re-enable delivery to a member disabled because of bounces (clears the bounce score).
    Enable {
        #[command(flatten)]
        config: ConfigArg,
        /// The list.
        list: String,
        /// The member.
        address: String,
    },
    /// Change a member's settings (at least one).
    #[command(group(clap::ArgGroup::new("setting").required(true).multiple(true).args(["moderated", "nomail", "disabled"])))]
    Set {
        #[command(flatten)]
        config: ConfigArg,
        /// The list.
        list: String,
        /// The member.
        address: String,
        /// Hold this member's posts for a moderator (on) or not (off).
        #[arg(long, value_name = "on|off", value_parser = ["on", "off"])]
        moderated: Option<String>,
        /// Stay subscribed but receive no posts (on), or receive them again (off).
        #[arg(long, value_name = "on|off", value_parser = ["on", "off"])]
        nomail: Option<String>,
        /// Stop delivery as bounces would (on); off is `members enable` (the bounce score is
        /// cleared too).
        #[arg(long, value_name = "on|off", value_parser = ["on", "off"])]
        disabled: Option<String>,
    },
    /// Write every member with its settings as CSV (`address,moderated,nomail,disabled`, a
    /// header line, then `yes`/`no` per setting), for `members import`.
    Export {
        #[command(flatten)]
        config: ConfigArg,
        /// The list.
        list: String,
        /// The format (only csv so far).
        #[arg(long, value_parser = ["csv"], default_value = "csv")]
        format: String,
    },
    /// Read what `members export` wrote: every member is added with exactly these settings
    /// (members already there get them). Every line is checked before anything changes.
    Import {
        #[command(flatten)]
        config: ConfigArg,
        /// The list.
        list: String,
        /// The CSV file (`-` for standard input).
        file: PathBuf,
        /// The format (only csv so far).
        #[arg(long, value_parser = ["csv"], default_value = "csv")]
        format: String,
    },
    /// Print the members of a list, one a line: the address, then a tab and its settings
    /// (moderated, nomail, disabled) when any is on.
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// The list: `name@domain`, or the bare name when it is unique.
        list: String,
    },
}

/// Arguments of `add` and `remove`.
#[derive(clap::Args, Debug)]
pub struct Change {
    #[command(flatten)]
    config: ConfigArg,
    /// The list: `name@domain`, or the bare name when it is unique.
    list: String,
    /// Addresses to add or remove.
    #[arg(required_unless_present = "file", value_parser = address_arg)]
    addresses: Vec<String>,
    /// Also read addresses from FILE, one a line (`-` for standard input; blank lines and
    /// lines starting with `#` are skipped).
    #[arg(short, long, value_name = "FILE")]
    file: Option<PathBuf>,
}

/// An address on the command line: a bad one is a usage error (exit 2), found by clap.
pub(super) fn address_arg(a: &str) -> Result<String, String> {
    Address::parse(a)
        .map(|_| a.to_string())
        .map_err(|e| e.to_string())
}

/// Where member operations go.
pub enum Backend {
    /// A running server's control socket.
    Remote(PathBuf),
    /// The store, opened by this process.
    Local(Store),
}

impl Backend {
    /// Prefer the running server; open the store only when none answers (creating it if
    /// there is none yet: for commands that change members).
    pub fn open(config: &Config) -> Result<Backend, String> {
        Self::open_with(config, Store::open)
    }

    /// [`Backend::open`] for commands that only read: a store that does not exist is an
    /// error, never created.
    pub fn open_read(config: &Config) -> Result<Backend, String> {
        Self::open_with(config, Store::open_existing)
    }

    fn open_with(
        config: &Config,
        open: fn(&std::path::Path, usize) -> Result<Store, crate::store::StoreError>,
    ) -> Result<Backend, String> {
        let sock = &config.server.control_socket;
        // A socket we may not use means a server we must not bypass: say so, rather than
        // try the store behind its back.
        if ControlClient::reach(sock)?.is_some() {
            return Ok(Backend::Remote(sock.clone()));
        }
        open(&config.server.data_dir, config.store.cache_size)
            .map(Backend::Local)
            .map_err(|e| e.to_string())
    }

    pub(super) fn client(path: &std::path::Path) -> Result<ControlClient, String> {
        ControlClient::connect(path)
            .ok_or_else(|| format!("the server stopped answering on {}", path.display()))
    }

    /// Member count of `list`.
    pub fn count(&mut self, _config: &Config, list: &str) -> Result<u64, String> {
        match self {
            Backend::Remote(p) => Self::client(p)?.count(list),
            Backend::Local(s) => s.member_count(list).map_err(|e| e.to_string()),
        }
    }
}

/// Run a `members` subcommand.
pub fn run(cmd: MembersCommand) -> Result<(), String> {
    match cmd {
        MembersCommand::Add(c) => change("add", c),
        MembersCommand::Remove(c) => change("remove", c),
        MembersCommand::Enable {
            config,
            list,
            address,
        } => {
            let config = load_config(&config.config)?;
            let key = resolve(&config, &list)?;
            let addr = Address::parse(&address).map_err(|e| format!("{address:?}: {e}"))?;
            match Backend::open(&config)? {
                Backend::Remote(p) => {
                    Backend::client(&p)?.request(&format!("enable {key} {addr}"))?;
                }
                Backend::Local(store) => {
                    if !store
                        .member_enable(&key, &addr.to_string())
                        .map_err(|e| e.to_string())?
                    {
                        return Err(format!("{addr} is not a member of {key}"));
                    }
                }
            }
            println!("{key}: {addr}: delivery enabled, bounce score cleared");
            Ok(())
        }
        MembersCommand::Set {
            config,
            list,
            address,
            moderated,
            nomail,
            disabled,
        } => {
            let config = load_config(&config.config)?;
            let key = resolve(&config, &list)?;
            let addr = Address::parse(&address).map_err(|e| format!("{address:?}: {e}"))?;
            let changes: Vec<(&str, String)> = [
                ("moderated", moderated),
                ("nomail", nomail),
                ("disabled", disabled),
            ]
            .into_iter()
            .filter_map(|(n, v)| Some((n, v?)))
            .collect();
            let mut backend = Backend::open(&config)?;
            for (name, value) in &changes {
                let flag = flag_by_name(name).ok_or("unknown setting")?;
                let on = value == "on";
                let found = match &mut backend {
                    Backend::Remote(p) => {
                        Backend::client(p)?
                            .request(&format!("set-flag {key} {addr} {name} {value}"))?;
                        true
                    }
                    Backend::Local(store) => {
                        crate::control::set_flag(store, &key, &addr.to_string(), flag, on)
                            .map_err(|e| e.to_string())?
                    }
                };
                if !found {
                    return Err(format!("{addr} is not a member of {key}"));
                }
            }
            let said: Vec<String> = changes.iter().map(|(n, v)| format!("{n} {v}")).collect();
            println!("{key}: {addr}: {}", said.join(", "));
            Ok(())
        }
        MembersCommand::Export { config, list, .. } => {
            let config = load_config(&config.config)?;
            let key = resolve(&config, &list)?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let names: Vec<&str> = FLAG_NAMES.iter().map(|(_, n)| *n).collect();
            writeln!(out, "address,{}", names.join(",")).or_else(quiet_pipe)?;
            let mut row = |flags: u64, address: &str| -> Result<(), String> {
                let cells: Vec<&str> = FLAG_NAMES
                    .iter()
                    .map(|(f, _)| if flags & f != 0 { "yes" } else { "no" })
                    .collect();
                writeln!(out, "{address},{}", cells.join(",")).map_err(|e| e.to_string())
            };
            match Backend::open_read(&config)? {
                Backend::Remote(p) => Backend::client(&p)?.members(&key, &mut row)?,
                Backend::Local(store) => {
                    let mut after: Option<String> = None;
                    loop {
                        let batch = store
                            .members_after(&key, after.as_deref(), 10_000)
                            .map_err(|e| e.to_string())?;
                        if batch.is_empty() {
                            break;
                        }
                        for m in &batch {
                            row(m.flags, &m.address)?;
                        }
                        after = batch.last().map(|m| m.key.clone());
                    }
                }
            }
            out.flush().or_else(quiet_pipe)
        }
        MembersCommand::Import {
            config, list, file, ..
        } => {
            let config = load_config(&config.config)?;
            let key = resolve(&config, &list)?;
            let rows = read_csv(&file)?;
            let out = match Backend::open(&config)? {
                Backend::Remote(p) => Backend::client(&p)?.put(&key, &rows)?,
                Backend::Local(store) => {
                    let mut total = AddOutcome::default();
                    for chunk in rows.chunks(CHUNK) {
                        let o = store.members_put(&key, chunk).map_err(|e| e.to_string())?;
                        total.changed += o.changed;
                        total.unchanged += o.unchanged;
                    }
                    total
                }
            };
            println!(
                "{key}: {} added, {} already members (settings set as imported)",
                out.changed, out.unchanged
            );
            Ok(())
        }
        MembersCommand::List { config, list } => {
            let config = load_config(&config.config)?;
            let key = resolve(&config, &list)?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            match Backend::open_read(&config)? {
                Backend::Remote(p) => {
                    let mut closed = false;
                    Backend::client(&p)?.members(&key, &mut |flags, address| {
                        if !closed {
                            if let Err(e) = writeln!(out, "{}", member_line(flags, address)) {
                                quiet_pipe(e)?;
                                closed = true;
                            }
                        }
                        Ok(())
                    })?
                }
                Backend::Local(store) => {
                    let mut after: Option<String> = None;
                    loop {
                        let batch = store
                            .members_after(&key, after.as_deref(), 10_000)
                            .map_err(|e| e.to_string())?;
                        if batch.is_empty() {
                            break;
                        }
                        for m in &batch {
                            if let Err(e) = writeln!(out, "{}", member_line(m.flags, &m.address)) {
                                return quiet_pipe(e);
                            }
                        }
                        after = batch.last().map(|m| m.key.clone());
                    }
                }
            }
            out.flush().or_else(quiet_pipe)
        }
    }
}

/// The rows of a CSV written by `members export`: its header names the columns (`address`
/// and any of the settings, in any order); every line is checked first and each problem is
/// named with its line, so nothing changes unless all are good.
fn read_csv(file: &std::path::Path) -> Result<Vec<(Address, u64)>, String> {
    let name = file.display().to_string();
    let text = if file.as_os_str() == "-" {
        let mut t = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut t)
            .map_err(|e| format!("<stdin>: {e}"))?;
        t
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("{name}: {e}"))?
    };
    let mut lines = text.lines().enumerate();
    let header: Vec<String> = lines
        .next()
        .map(|(_, h)| {
            h.split(',')
                .map(|c| c.trim().to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    let at = header.iter().position(|c| c == "address").ok_or_else(|| {
        format!("{name}:1: the header has no `address` column (as `members export` writes it)")
    })?;
    let mut flags_at = Vec::new();
    for (i, c) in header.iter().enumerate() {
        if i == at {
            continue;
        }
        let flag = flag_by_name(c).ok_or_else(|| format!("{name}:1: unknown column {c:?}"))?;
        flags_at.push((i, flag));
    }
    let (mut rows, mut problems) = (Vec::new(), Vec::new());
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != header.len() {
            problems.push(format!(
                "{name}:{}: {} columns, the header has {}",
                i + 1,
                cells.len(),
                header.len()
            ));
            continue;
        }
        let addr = match Address::parse(cells[at]) {
            Ok(a) => a,
            Err(e) => {
                problems.push(format!("{name}:{}: {:?}: {e}", i + 1, cells[at]));
                continue;
            }
        };
        let mut flags = 0;
        for (c, flag) in &flags_at {
            match cells[*c].to_ascii_lowercase().as_str() {
                "yes" | "true" | "1" | "on" => flags |= flag,
                "no" | "false" | "0" | "off" | "" => {}
                other => problems.push(format!("{name}:{}: {other:?} is not yes or no", i + 1)),
            }
        }
        rows.push((addr, flags));
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        let n = problems.len();
        problems.truncate(20);
        Err(format!(
            "{}\nlistkeeper: {n} bad line(s); nothing was changed",
            problems.join("\nlistkeeper: ")
        ))
    }
}

/// A line of `members list`: the address, then a tab and its settings when any is on.
fn member_line(flags: u64, address: &str) -> String {
    let names = flag_names(flags);
    if names.is_empty() {
        address.to_string()
    } else {
        format!("{address}\t{}", names.join(","))
    }
}

/// `listkeeper members list | head` is normal use: a closed pipe is not an error.
fn quiet_pipe(e: std::io::Error) -> Result<(), String> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(e.to_string())
    }
}

/// The key of an active list named on the command line.
pub(super) fn resolve(config: &Config, wanted: &str) -> Result<String, String> {
    let reg = Registry::load(
        &config.server.lists_dir,
        config.server.recipient_delimiter,
        None,
    );
    reg.find(wanted).map(|l| l.key()).ok_or_else(|| {
        format!(
            "no active list {wanted:?} in {} (see `listkeeper lists`)",
            config.server.lists_dir.display()
        )
    })
}

fn change(verb: &str, c: Change) -> Result<(), String> {
    let config = load_config(&c.config.config)?;
    let key = resolve(&config, &c.list)?;
    let source = Addresses::open(&c.addresses, c.file.as_deref())?;
    if source.validate()? == 0 {
        return Err("no addresses given: the file has none".into());
    }
    let out: AddOutcome = match Backend::open(&config)? {
        Backend::Remote(p) => {
            Backend::client(&p)?.change_with(verb, &key, |emit| source.each(&mut |a| emit(&a?)))?
        }
        Backend::Local(store) => {
            let mut total = AddOutcome::default();
            let mut chunk = Vec::with_capacity(CHUNK);
            let mut apply = |chunk: &mut Vec<Address>| -> Result<(), String> {
                let o = if verb == "add" {
                    store.add_members(&key, chunk)
                } else {
                    store.remove_members(&key, chunk)
                }
                .map_err(|e| e.to_string())?;
                total.changed += o.changed;
                total.unchanged += o.unchanged;
                chunk.clear();
                Ok(())
            };
            source.each(&mut |a| {
                chunk.push(a?);
                if chunk.len() >= CHUNK {
                    apply(&mut chunk)?;
                }
                Ok(())
            })?;
            if !chunk.is_empty() {
                apply(&mut chunk)?;
            }
            total
        }
    };
    if verb == "add" {
        println!(
            "{key}: {} added, {} already members",
            out.changed, out.unchanged
        );
    } else {
        println!(
            "{key}: {} removed, {} were not members",
            out.changed, out.unchanged
        );
    }
    Ok(())
}

/// Addresses per store transaction when the CLI writes the store itself.
const CHUNK: usize = 10_000;

/// The addresses of `members add|remove`: the arguments, then the file. Every address is
/// validated before anything changes; then they are applied in chunks. A file is read twice
/// for that (memory stays flat however long it is); standard input cannot be, so it is kept,
/// as its bytes.
struct Addresses<'a> {
    args: &'a [String],
    input: Option<(String, Input)>,
}

enum Input {
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl<'a> Addresses<'a> {
    fn open(args: &'a [String], file: Option<&std::path::Path>) -> Result<Self, String> {
        let input = match file {
            None => None,
            Some(p) if p.as_os_str() == "-" => {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes)
                    .map_err(|e| format!("<stdin>: {e}"))?;
                Some(("<stdin>".to_string(), Input::Bytes(bytes)))
            }
            Some(p) => Some((p.display().to_string(), Input::File(p.to_path_buf()))),
        };
        Ok(Addresses { args, input })
    }

    /// Call `f` with each address, or with the error naming where an invalid one is, in order.
    fn each(
        &self,
        f: &mut dyn FnMut(Result<Address, String>) -> Result<(), String>,
    ) -> Result<(), String> {
        for a in self.args {
            f(Address::parse(a).map_err(|e| format!("argument {a:?}: {e}")))?;
        }
        let Some((name, input)) = &self.input else {
            return Ok(());
        };
        let mut line_of = |i: usize, line: &[u8]| -> Result<(), String> {
            let text = String::from_utf8_lossy(line);
            let t = text.trim();
            if t.is_empty() || t.starts_with('#') {
                return Ok(());
            }
            f(Address::parse(t).map_err(|e| format!("{name}:{}: {t:?}: {e}", i + 1)))
        };
        match input {
            Input::Bytes(bytes) => {
                for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
                    line_of(i, line)?;
                }
            }
            Input::File(path) => {
                let file = std::fs::File::open(path).map_err(|e| format!("{name}: {e}"))?;
                for (i, line) in std::io::BufReader::new(file).split(b'\n').enumerate() {
                    line_of(i, &line.map_err(|e| format!("{name}: {e}"))?)?;
                }
            }
        }
        Ok(())
    }

    /// The number of addresses when all are valid; otherwise every problem (20 shown), and
    /// nothing may change.
    fn validate(&self) -> Result<usize, String> {
        let (mut count, mut errors, mut shown) = (0usize, 0usize, Vec::new());
        self.each(&mut |a| {
            match a {
                Ok(_) => count += 1,
                Err(e) => {
                    errors += 1;
                    if shown.len() < 20 {
                        shown.push(e);
                    }
                }
            }
            Ok(())
        })?;
        if errors == 0 {
            Ok(count)
        } else {
            Err(format!(
                "{}\nlistkeeper: {errors} invalid address(es); nothing was changed",
                shown.join("\nlistkeeper: ")
            ))
        }
    }
}
