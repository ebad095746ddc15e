//! `listkeeper lists`: every list with its state and member count.

use std::path::Path;

use super::load_config;
use super::members::Backend;
use crate::registry::{ListState, Registry};

/// Print `ADDRESS  STATE  MEMBERS  FILE` per list.
pub fn run(path: &Path) -> Result<(), String> {
    let config = load_config(path)?;
    let reg = Registry::load(
        &config.server.lists_dir,
        config.server.recipient_delimiter,
        None,
    );
    // The lists are shown without counts when the store cannot be read, but not silently (a
    // store refused for its permissions, say).
    let mut backend = match Backend::open_read(&config) {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("listkeeper: member counts unavailable: {e}");
            None
        }
    };
    // What a running server serves: a list whose file broke after it was loaded keeps its
    // last good version there (`kept KEY FILE`), so it is active, not disabled.
    let kept: std::collections::HashMap<std::path::PathBuf, String> = match &backend {
        Some(Backend::Remote(p)) => Backend::client(p)
            .and_then(|c| c.request("status"))
            .unwrap_or_default()
            .iter()
            .filter_map(|l| l.strip_prefix("kept "))
            .filter_map(|l| l.split_once(' '))
            .map(|(k, f)| (std::path::PathBuf::from(f), k.to_string()))
            .collect(),
        _ => Default::default(),
    };
    println!("{:<40} {:<9} {:>9}  FILE", "LIST", "STATE", "MEMBERS");
    for (key, state) in reg.all() {
        if let ListState::Disabled { file, reason } = &state {
            if let Some(served) = kept.get(file) {
                let count = backend
                    .as_mut()
                    .and_then(|b| b.count(&config, served).ok())
                    .map_or("?".to_string(), |n| n.to_string());
                println!(
                    "{served:<40} {:<9} {count:>9}  {}",
                    "active",
                    file.display()
                );
                println!(
                    "    the server serves the last good version; the file has errors: {reason}"
                );
                continue;
            }
        }
        match state {
            ListState::Active(l) => {
                let count = backend
                    .as_mut()
                    .and_then(|b| b.count(&config, &key).ok())
                    .map_or("?".to_string(), |n| n.to_string());
                println!("{key:<40} {:<9} {count:>9}  {}", "active", l.file.display());
            }
            ListState::Disabled { file, reason } => {
                println!("{key:<40} {:<9} {:>9}  {}", "DISABLED", "-", file.display());
                println!("    {reason}");
            }
        }
    }
    Ok(())
}
