//! `listkeeper check`: validate everything, print every problem, exit non-zero on any.

use std::path::Path;

use super::load_config;
use crate::registry::Registry;

/// Validate the global file and every list file (`global_only`: the global file alone, as a
/// service manager checks before starting: a broken list file disables only its list, so it
/// must not stop the server from starting).
pub fn run(path: &Path, global_only: bool) -> Result<(), String> {
    let config = load_config(path)?;
    if global_only {
        println!("{}: ok (list files not checked)", path.display());
        return Ok(());
    }
    let reg = Registry::load(
        &config.server.lists_dir,
        config.server.recipient_delimiter,
        None,
    );
    for e in reg.errors() {
        eprintln!("{e}");
    }
    let active = reg.active().len();
    if reg.errors().is_empty() {
        println!("{}: ok, {active} list(s)", path.display());
        Ok(())
    } else {
        Err(format!(
            "{} error(s); {active} list(s) valid",
            reg.errors().len()
        ))
    }
}
