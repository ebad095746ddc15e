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
    println!("{:<40} {:<9} {:>9}  FILE", "LIST", "STATE", "MEMBERS");
    for (key, state) in reg.all() {
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
