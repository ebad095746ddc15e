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
    /// Change a member's settings.
    Set {
        #[command(flatten)]
        config: ConfigArg,
        /// The list.
        list: String,
        /// The member.
        address: String,
        /// Hold this member's posts for a moderator (on) or not (off).
        #[arg(long, value_name = "on|off", value_parser = ["on", "off"])]
        moderated: String,
    },
    /// Print the members of a list, one address per line.
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
    addresses: Vec<String>,
    /// Also read addresses from FILE, one a line (`-` for standard input; blank lines and
    /// lines starting with `#` are skipped).
    #[arg(short, long, value_name = "FILE")]
    file: Option<PathBuf>,
}

/// Where member operations go.
pub enum Backend {
    /// A running server's control socket.
    Remote(PathBuf),
    /// The store, opened by this process.
    Local(Store),
}

impl Backend {
    /// Prefer the running server; open the store only when none answers.
    pub fn open(config: &Config) -> Result<Backend, String> {
        let sock = &config.server.control_socket;
        if ControlClient::connect(sock).is_some() {
            return Ok(Backend::Remote(sock.clone()));
        }
        Store::open(&config.server.data_dir, config.store.cache_size)
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
        } => {
            let config = load_config(&config.config)?;
            let key = resolve(&config, &list)?;
            let addr = Address::parse(&address).map_err(|e| format!("{address:?}: {e}"))?;
            let on = moderated == "on";
            match Backend::open(&config)? {
                Backend::Remote(p) => {
                    Backend::client(&p)?
                        .request(&format!("set-moderated {key} {addr} {moderated}"))?;
                }
                Backend::Local(store) => {
                    if !store
                        .member_set_moderated(&key, &addr.to_string(), on)
                        .map_err(|e| e.to_string())?
                    {
                        return Err(format!("{addr} is not a member of {key}"));
                    }
                }
            }
            println!("{key}: {addr}: moderated {moderated}");
            Ok(())
        }
        MembersCommand::List { config, list } => {
            let config = load_config(&config.config)?;
            let key = resolve(&config, &list)?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            match Backend::open(&config)? {
                Backend::Remote(p) => Backend::client(&p)?.list(&key, &mut out)?,
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
                            if let Err(e) = writeln!(out, "{}", m.address) {
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
    let addrs = collect(&c.addresses, c.file.as_deref())?;
    if addrs.is_empty() {
        return Err("no addresses given (as arguments or with --file)".into());
    }
    let out: AddOutcome = match Backend::open(&config)? {
        Backend::Remote(p) => Backend::client(&p)?.change(verb, &key, &addrs)?,
        Backend::Local(store) => {
            let mut total = AddOutcome::default();
            for chunk in addrs.chunks(10_000) {
                let o = if verb == "add" {
                    store.add_members(&key, chunk)
                } else {
                    store.remove_members(&key, chunk)
                }
                .map_err(|e| e.to_string())?;
                total.changed += o.changed;
                total.unchanged += o.unchanged;
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

/// Validate every address first (arguments, then the file): nothing changes unless all are
/// valid, and each invalid one is named with its line.
fn collect(args: &[String], file: Option<&std::path::Path>) -> Result<Vec<Address>, String> {
    let mut out = Vec::with_capacity(args.len());
    let mut errors = Vec::new();
    for a in args {
        match Address::parse(a) {
            Ok(addr) => out.push(addr),
            Err(e) => errors.push(format!("argument {a:?}: {e}")),
        }
    }
    if let Some(path) = file {
        let name = path.display().to_string();
        let reader: Box<dyn BufRead> = if name == "-" {
            Box::new(std::io::BufReader::new(std::io::stdin()))
        } else {
            let f = std::fs::File::open(path).map_err(|e| format!("{name}: {e}"))?;
            Box::new(std::io::BufReader::new(f))
        };
        let name = if name == "-" {
            "<stdin>".to_string()
        } else {
            name
        };
        for (i, line) in reader.split(b'\n').enumerate() {
            let line = line.map_err(|e| format!("{name}: {e}"))?;
            let text = String::from_utf8_lossy(&line);
            let t = text.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            match Address::parse(t) {
                Ok(a) => out.push(a),
                Err(e) => errors.push(format!("{name}:{}: {t:?}: {e}", i + 1)),
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        let n = errors.len();
        let shown: Vec<String> = errors.into_iter().take(20).collect();
        Err(format!(
            "{}\nlistkeeper: {n} invalid address(es); nothing was changed",
            shown.join("\nlistkeeper: ")
        ))
    }
}
