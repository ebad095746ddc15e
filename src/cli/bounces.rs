//! `listkeeper bounces list`: bounce scores and states of a list's members.

use clap::Subcommand;

use super::members::{resolve, Backend};
use super::{load_config, ConfigArg};
use crate::logging::escape_controls as esc;
use crate::store::now_secs;

/// `bounces` subcommands.
#[derive(Subcommand, Debug)]
pub enum BouncesCommand {
    /// Members with a bounce record: address, score, last bounce, state (ok, probing, disabled).
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// The list: `name@domain`, or the bare name when it is unique.
        list: String,
    },
}

/// Run a `bounces` subcommand.
pub fn run(cmd: BouncesCommand) -> Result<(), String> {
    let BouncesCommand::List { config, list } = cmd;
    let config = load_config(&config.config)?;
    let key = resolve(&config, &list)?;
    let rows: Vec<(String, String, u64, String)> = match Backend::open_read(&config)? {
        Backend::Remote(p) => Backend::client(&p)?
            .request(&format!("bounces {key}"))?
            .iter()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                match f.as_slice() {
                    [m, s, last, st, _] => Some((
                        m.to_string(),
                        s.to_string(),
                        last.parse().ok()?,
                        st.to_string(),
                    )),
                    _ => None,
                }
            })
            .collect(),
        Backend::Local(store) => store
            .bounce_list(&key)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|r| {
                (
                    r.member,
                    format!("{:.1}", r.score),
                    r.last_bounce,
                    r.status.name().to_string(),
                )
            })
            .collect(),
    };
    let now = now_secs();
    println!(
        "{:<40} {:>6} {:>12}  STATE",
        "MEMBER", "SCORE", "LAST BOUNCE"
    );
    for (member, score, last, state) in rows {
        let ago = now.saturating_sub(last);
        let ago = if ago >= 86_400 {
            format!("{}d ago", ago / 86_400)
        } else {
            format!("{}h ago", ago / 3600)
        };
        let (member, score, state) = (esc(&member), esc(&score), esc(&state));
        println!("{member:<40} {score:>6} {ago:>12}  {state}");
    }
    Ok(())
}
