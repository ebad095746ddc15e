//! The security properties of SECURITY.md, each asserted from the outside: what an attacker
//! can send (forged senders, guessed or borrowed tokens, hostile subjects and names, slow or
//! huge input, another local user) and what must not follow from it.
//!
//! - [`access`]: tokens, and nothing done for another address without its mailbox or a
//!   moderator
//! - [`injection`]: no header injection through names, subjects and placeholders
//! - [`sockets`]: socket modes, the control socket's users, listeners, the service user
//! - [`limits`]: slow clients, long lines, huge headers, deep MIME nesting, too many sessions,
//!   one transaction naming a list many times
//! - [`caps`]: the hourly caps are on mail sent, never on completing tokens or decisions
//! - [`store_files`]: the store's directory and file are for the server's user alone
//! - [`logs`]: no control characters from a message in log lines or the CLI's listings
//! - [`loops`]: lists subscribed to each other, posts through too many lists
//! - [`receipts`]: no read-receipt request reaches the members

#[path = "../common/mod.rs"]
mod common;

mod access;
mod caps;
mod injection;
mod limits;
mod logs;
mod loops;
mod receipts;
mod sockets;
mod store_files;

use common::World;

pub(crate) const CLUB: &str = "address = \"club@example.org\"\ndisplay_name = \"Club\"\nowners = [\"boss@owners.test\"]\nmoderators = [\"mod@owners.test\"]\n[posting]\npolicy = \"members\"\n";
pub(crate) const OTHER: &str = "address = \"other@example.org\"\nowners = [\"evil@owners.test\"]\n[posting]\npolicy = \"members\"\n[subscription]\npolicy = \"moderate\"\n";
pub(crate) const MODERATE: &str = "address = \"mod@example.org\"\nowners = [\"boss@owners.test\"]\n[subscription]\npolicy = \"moderate\"\n";

pub(crate) async fn world() -> World {
    let w = World::new("", &[("club", CLUB), ("other", OTHER), ("mod", MODERATE)]).await;
    w.ctx
        .store
        .add_members(
            "club@example.org",
            &common::addrs(&["one@members.test", "two@members.test"]),
        )
        .expect("add");
    w
}

/// `token` with its last hex digit changed.
pub(crate) fn altered(token: &str) -> String {
    let (head, last) = token.split_at(token.len() - 1);
    format!("{head}{}", if last == "0" { "1" } else { "0" })
}
