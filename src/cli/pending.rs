//! `listkeeper pending list|approve|reject`: subscription requests waiting for a
//! confirmation or an owner's approval.

use clap::Subcommand;

use super::members::{resolve, Backend};
use super::{load_config, ConfigArg};
use crate::logging::escape_controls as esc;
use crate::store::now_secs;

/// `pending` subcommands.
#[derive(Subcommand, Debug)]
pub enum PendingCommand {
    /// Show open requests: TOKEN, KIND (join, leave, nomail-on/off, approve), ADDRESS, age.
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// The list: `name@domain`, or the bare name when it is unique.
        list: String,
    },
    /// Approve a subscription waiting for an owner (the subscriber is welcomed by mail).
    Approve {
        #[command(flatten)]
        config: ConfigArg,
        /// The list.
        list: String,
        /// The approval token (from `pending list` or the owners' notice).
        token: String,
    },
    /// Reject a subscription waiting for an owner (the subscriber is told, with the reason).
    Reject {
        #[command(flatten)]
        config: ConfigArg,
        /// The list.
        list: String,
        /// The approval token.
        token: String,
        /// Why, in words for the subscriber.
        reason: Vec<String>,
    },
}

/// Run a `pending` subcommand.
pub fn run(cmd: PendingCommand) -> Result<(), String> {
    match cmd {
        PendingCommand::List { config, list } => {
            let config = load_config(&config.config)?;
            let key = resolve(&config, &list)?;
            let rows: Vec<(String, String, String, u64, u64)> = match Backend::open_read(&config)? {
                Backend::Remote(p) => Backend::client(&p)?
                    .pending(&key)?
                    .iter()
                    .filter_map(|l| {
                        let f: Vec<&str> = l.split(' ').collect();
                        match f.as_slice() {
                            [t, k, a, c, e] => Some((
                                t.to_string(),
                                k.to_string(),
                                a.to_string(),
                                c.parse().ok()?,
                                e.parse().ok()?,
                            )),
                            _ => None,
                        }
                    })
                    .collect(),
                Backend::Local(store) => store
                    .pending_list(&key, now_secs())
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|p| {
                        (
                            p.token,
                            p.kind.name().to_string(),
                            p.address,
                            p.created,
                            p.expires,
                        )
                    })
                    .collect(),
            };
            let now = now_secs();
            println!(
                "{:<42} {:<10} {:<40} {:>8} {:>10}",
                "TOKEN", "KIND", "ADDRESS", "AGE", "EXPIRES IN"
            );
            for (token, kind, address, created, expires) in rows {
                // The address is as the request gave it: escaped for the terminal.
                let (token, kind, address) = (esc(&token), esc(&kind), esc(&address));
                println!(
                    "{token:<42} {kind:<10} {address:<40} {:>8} {:>10}",
                    span(now.saturating_sub(created)),
                    span(expires.saturating_sub(now))
                );
            }
            Ok(())
        }
        PendingCommand::Approve {
            config,
            list,
            token,
        } => decide(&config, &list, &token, None),
        PendingCommand::Reject {
            config,
            list,
            token,
            reason,
        } => decide(&config, &list, &token, Some(reason.join(" "))),
    }
}

fn decide(
    config: &ConfigArg,
    list: &str,
    token: &str,
    reason: Option<String>,
) -> Result<(), String> {
    let config = load_config(&config.config)?;
    let key = resolve(&config, list)?;
    match Backend::open(&config)? {
        Backend::Remote(p) => {
            let sentence = Backend::client(&p)?.decide(&key, token, reason.as_deref())?;
            println!("{}", esc(&sentence));
            Ok(())
        }
        Backend::Local(_) => Err(
            "the server is not running: start it first, the subscriber is told the decision by mail".into(),
        ),
    }
}

/// A duration as a person reads it, truncated to its two largest units: "2d 23h", "5h 10m",
/// "12m" (a fresh 3-day token has "2d 23h" left, not "2d").
pub(super) fn span(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h) {
        (0, 0) => format!("{m}m"),
        (0, h) => format!("{h}h {m}m"),
        (d, h) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::span;

    #[test]
    fn spans_keep_two_units() {
        assert_eq!(span(3 * 86_400 - 1), "2d 23h");
        assert_eq!(span(3 * 86_400), "3d 0h");
        assert_eq!(span(5 * 3600 + 600), "5h 10m");
        assert_eq!(span(59), "0m");
    }
}
