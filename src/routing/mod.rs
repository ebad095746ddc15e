//! MTA lookups answered from the lists: which addresses at a list domain exist and where the
//! MTA sends them. The MTA asks at SMTP time, so an address that is no list (or role) address
//! is refused by the MTA itself at RCPT, before any mail is accepted that would have to be
//! bounced; a list file dropped into the lists directory is routable as soon as it is loaded.
//!
//! - [`lookup`]     one question (map name, key) -> [`Answer`], from the current [`Registry`]
//! - [`netstring`]  the framing of Postfix's socketmap protocol, I/O-free
//! - [`socketmap`]  the unix-socket server Postfix (`socketmap:`) and Exim (`${readsocket}`)
//!   ask
//!
//! The answers reveal nothing that mail to the address would not: every role address of a
//! list resolves, confirmation tokens and VERP extensions are not checked here (listkeeper
//! checks them when the mail arrives), so the map is no oracle for valid tokens.

pub mod netstring;
pub mod socketmap;

use crate::config::Listen;
use crate::registry::Registry;
use crate::route::{route, Route};

/// The answer to one lookup, as the socketmap protocol spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `OK value`.
    Found(String),
    /// `NOTFOUND `: not a list address.
    NotFound,
    /// `PERM reason`: the question itself is wrong (unknown map name); not retried.
    Perm(String),
}

impl Answer {
    /// The reply payload (before netstring framing).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Answer::Found(v) => format!("OK {v}").into_bytes(),
            Answer::NotFound => b"NOTFOUND ".to_vec(),
            Answer::Perm(r) => format!("PERM {r}").into_bytes(),
        }
    }
}

/// The maps a client may name.
pub const MAPS: &[&str] = &["transport", "recipient"];

/// Answer `key` in map `map`:
/// - `transport`: a list or role address -> `transport` (Postfix's `transport_maps`);
/// - `recipient`: a list or role address -> the list's address (`relay_recipient_maps`,
///   `virtual_mailbox_maps`, Exim's router condition).
///
/// Anything else (other domains, `@domain` and bare domain keys Postfix also asks, unknown
/// local parts) is not found. A list disabled by a broken file is found: its mail reaches
/// listkeeper, which defers it (451) until the file is fixed, rather than the MTA refusing it
/// for good.
pub fn lookup(registry: &Registry, map: &str, key: &str, transport: &str) -> Answer {
    let list = match route(registry, key) {
        Route::List(l, _) => l.key(),
        Route::Disabled { list } => list,
        Route::Unknown => {
            return match map {
                "transport" | "recipient" => Answer::NotFound,
                _ => unknown_map(map),
            }
        }
    };
    match map {
        "transport" => Answer::Found(transport.to_string()),
        "recipient" => Answer::Found(list),
        _ => unknown_map(map),
    }
}

fn unknown_map(map: &str) -> Answer {
    let shown: String = map.chars().take(64).filter(|c| !c.is_control()).collect();
    Answer::Perm(format!(
        "unknown map {shown:?}: listkeeper answers {}",
        MAPS.join(", ")
    ))
}

/// Postfix's transport for list mail when `routing.socketmap_transport` is not set: the
/// `listkeeper` lmtp service of postfix/master.cf.snippet, pointing at the first LMTP
/// listener.
pub fn default_transport(lmtp: &[Listen]) -> String {
    match lmtp.first() {
        Some(Listen::Unix(p)) => format!("listkeeper:unix:{}", p.display()),
        Some(Listen::Tcp(a)) => format!("listkeeper:inet:{a}"),
        None => "listkeeper".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("dev.toml"),
            "address = \"dev@lists.test\"\nowners = [\"o@example.org\"]\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("broken.toml"),
            "address = \"broken@lists.test\"\n",
        )
        .expect("write");
        let reg = Registry::load(dir.path(), '+', None);
        (dir, reg)
    }

    #[test]
    fn every_list_and_role_address_resolves() {
        let (_d, reg) = registry();
        for key in [
            "dev@lists.test",
            "DEV@Lists.Test",
            "dev-request@lists.test",
            "dev-join@lists.test",
            "dev-subscribe@lists.test",
            "dev-leave@lists.test",
            "dev-unsubscribe@lists.test",
            "dev-owner@lists.test",
            "dev-bounces@lists.test",
            "dev-bounces+bob=example.org@lists.test",
            "dev-confirm+0123456789abcdef@lists.test",
            "dev-leave+abc.bob=example.org@lists.test",
        ] {
            assert_eq!(
                lookup(&reg, "transport", key, "listkeeper:unix:/s"),
                Answer::Found("listkeeper:unix:/s".into()),
                "{key}"
            );
            assert_eq!(
                lookup(&reg, "recipient", key, "t"),
                Answer::Found("dev@lists.test".into()),
                "{key}"
            );
        }
        // A list whose file is broken still reaches listkeeper (which defers it).
        assert_eq!(
            lookup(&reg, "recipient", "broken@lists.test", "t"),
            Answer::Found("broken@lists.test".into())
        );
    }

    #[test]
    fn everything_else_is_not_found() {
        let (_d, reg) = registry();
        for key in [
            "nosuch@lists.test",
            "dev@other.test",
            "lists.test",
            ".lists.test",
            "@lists.test",
            "dev-confirm@lists.test",
            "dev-helper@lists.test",
            "",
            "dev",
        ] {
            assert_eq!(
                lookup(&reg, "transport", key, "t"),
                Answer::NotFound,
                "{key}"
            );
            assert_eq!(
                lookup(&reg, "recipient", key, "t"),
                Answer::NotFound,
                "{key}"
            );
        }
        assert!(matches!(
            lookup(&reg, "virtual", "dev@lists.test", "t"),
            Answer::Perm(_)
        ));
        assert!(matches!(
            lookup(&reg, "virtual", "x@y", "t"),
            Answer::Perm(_)
        ));
    }

    #[test]
    fn default_transport_names_the_first_listener() {
        assert_eq!(
            default_transport(&[Listen::Unix("/run/lk/lmtp.sock".into())]),
            "listkeeper:unix:/run/lk/lmtp.sock"
        );
        assert_eq!(
            default_transport(&[Listen::Tcp("127.0.0.1:2424".into())]),
            "listkeeper:inet:127.0.0.1:2424"
        );
    }
}
