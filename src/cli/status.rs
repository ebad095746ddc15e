//! `listkeeper status`: ask the running server for its lists, sessions and counters.

use std::path::Path;

use super::load_config;
use crate::control::ControlClient;

/// Print what the running server reports; fail when none runs.
pub fn run(path: &Path) -> Result<(), String> {
    let config = load_config(path)?;
    let sock = &config.server.control_socket;
    let client = ControlClient::reach(sock)?.ok_or_else(|| {
        format!(
            "no listkeeper server is running (nothing answers on {})",
            sock.display()
        )
    })?;
    for line in client.request("status")? {
        println!("{line}");
    }
    Ok(())
}
