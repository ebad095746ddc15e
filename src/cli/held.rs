//! `listkeeper held list|show|approve|reject|discard`: the moderation queue from the shell.

use clap::Subcommand;

use super::members::{resolve, Backend};
use super::{load_config, ConfigArg};
use crate::logging::escape_controls as esc;
use crate::store::now_secs;

/// `held` subcommands.
#[derive(Subcommand, Debug)]
pub enum HeldCommand {
    /// Posts waiting for a moderator: TOKEN, age, sender, subject, reasons.
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// The list: `name@domain`, or the bare name when it is unique.
        list: String,
    },
    /// Print a held post as it was received.
    Show {
        #[command(flatten)]
        config: ConfigArg,
        /// The list.
        list: String,
        /// The token from `held list` or the moderators' notice.
        token: String,
    },
    /// Distribute a held post (exactly once, however often it is approved).
    Approve {
        #[command(flatten)]
        config: ConfigArg,
        /// The list.
        list: String,
        /// The token.
        token: String,
    },
    /// Refuse a held post; the poster is told, with the reason.
    Reject {
        #[command(flatten)]
        config: ConfigArg,
        /// The list.
        list: String,
        /// The token.
        token: String,
        /// Why, in words for the poster.
        reason: Vec<String>,
    },
    /// Drop a held post without telling anyone.
    Discard {
        #[command(flatten)]
        config: ConfigArg,
        /// The list.
        list: String,
        /// The token.
        token: String,
    },
}

/// Run a `held` subcommand.
pub fn run(cmd: HeldCommand) -> Result<(), String> {
    match cmd {
        HeldCommand::List { config, list } => {
            let config = load_config(&config.config)?;
            let key = resolve(&config, &list)?;
            let rows: Vec<Vec<String>> = match Backend::open_read(&config)? {
                Backend::Remote(p) => Backend::client(&p)?
                    .request(&format!("held {key}"))?
                    .into_iter()
                    .map(|l| l.split('\t').map(str::to_string).collect())
                    .collect(),
                Backend::Local(store) => store
                    .held_list(&key)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|h| {
                        vec![
                            h.token,
                            h.state.name().to_string(),
                            h.received.to_string(),
                            h.expires.to_string(),
                            h.sender,
                            h.subject,
                            h.reasons.join("; "),
                        ]
                    })
                    .collect(),
            };
            let now = now_secs();
            println!("{:<42} {:<10} {:>8}  FROM", "TOKEN", "STATE", "AGE");
            if rows.is_empty() {
                println!("(no posts are held on {key})");
            }
            for r in rows {
                let [token, state, received, _expires, sender, subject, reasons] = r.as_slice()
                else {
                    continue;
                };
                let age = now.saturating_sub(received.parse().unwrap_or(now));
                // Sender, subject and reasons come from the post: escaped, so that they can
                // neither add lines nor send escape sequences to the operator's terminal.
                println!(
                    "{:<42} {:<10} {:>8}  {}",
                    esc(token),
                    esc(state),
                    super::pending::span(age),
                    esc(sender)
                );
                println!("    subject: {}", esc(subject));
                println!("    why: {}", esc(reasons));
            }
            Ok(())
        }
        HeldCommand::Show {
            config,
            list,
            token,
        } => {
            let config = load_config(&config.config)?;
            let key = resolve(&config, &list)?;
            let message = match Backend::open_read(&config)? {
                Backend::Remote(p) => Backend::client(&p)?.held_message(&key, &token)?,
                Backend::Local(store) => {
                    let h = store.held_get(&token).map_err(|e| e.to_string())?;
                    if h.as_ref().is_none_or(|h| h.list != key) {
                        return Err(format!("no held post {token} on {key}"));
                    }
                    store
                        .held_message(&token)
                        .map_err(|e| e.to_string())?
                        .ok_or("the post's text is no longer stored (it was decided)")?
                }
            };
            use std::io::Write;
            std::io::stdout()
                .write_all(&message)
                .map_err(|e| e.to_string())
        }
        HeldCommand::Approve {
            config,
            list,
            token,
        } => decide(&config, &list, &token, "approve", ""),
        HeldCommand::Reject {
            config,
            list,
            token,
            reason,
        } => decide(&config, &list, &token, "reject", &reason.join(" ")),
        HeldCommand::Discard {
            config,
            list,
            token,
        } => decide(&config, &list, &token, "discard", ""),
    }
}

fn decide(
    config: &ConfigArg,
    list: &str,
    token: &str,
    what: &str,
    reason: &str,
) -> Result<(), String> {
    let config = load_config(&config.config)?;
    let key = resolve(&config, list)?;
    match Backend::open(&config)? {
        Backend::Remote(p) => {
            let out = Backend::client(&p)?.request(&format!("held-decide {key} {token} {what} {reason}"))?;
            println!("{}", esc(&out.join(" ")));
            Ok(())
        }
        Backend::Local(_) => Err("the server is not running: start it first (approving distributes the post, rejecting tells the poster)".into()),
    }
}
