//! Recipient address -> (list, role), following the address table of DESIGN.md.
//!
//! `dev@d` posts; `dev-request@d`, `dev-join@d`, `dev-subscribe@d`, `dev-leave@d`,
//! `dev-unsubscribe@d`, `dev-owner@d`, `dev-bounces@d` and `dev-bounces+ADDR@d`,
//! `dev-confirm+TOKEN@d` are role addresses. Matching is case-insensitive. The exact list name
//! is tried first, so a list may be called `dev-announce` next to `dev`.

use std::sync::Arc;

use crate::config::ListConfig;
use crate::registry::{ListState, Registry};

/// What an address of a list is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Role {
    /// `NAME@` (an address extension after the delimiter is tolerated and ignored).
    Post,
    /// `NAME-request@`: email commands.
    Request,
    /// `NAME-join@`, `NAME-subscribe@`.
    Join,
    /// `NAME-leave@`, `NAME-unsubscribe@`.
    Leave,
    /// `NAME-leave+MAC.LOCAL=DOMAIN@`: a member's own one-step unsubscribe address (personalized
    /// delivery puts it in List-Unsubscribe and the footer).
    Unsubscribe(String),
    /// `NAME-confirm+TOKEN@`.
    Confirm(String),
    /// `NAME-owner@`.
    Owner,
    /// `NAME-bounces@`, `NAME-bounces+ADDR@` (the extension is the VERP-encoded member).
    Bounces(Option<String>),
}

impl Role {
    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Role::Post => "post",
            Role::Request => "request",
            Role::Join => "join",
            Role::Leave => "leave",
            Role::Unsubscribe(_) => "unsubscribe",
            Role::Confirm(_) => "confirm",
            Role::Owner => "owner",
            Role::Bounces(_) => "bounces",
        }
    }
}

impl Role {
    /// This role's address on `list`, with `delimiter` before an extension: the inverse of
    /// [`route`] (`route(role.address(list, d)) == (list, role)`), and the one place that
    /// spells role addresses for the mail listkeeper sends.
    pub fn address(&self, list: &ListConfig, delimiter: char) -> String {
        let (name, domain) = (&list.name, list.address.domain());
        let with = |suffix: &str, ext: Option<&str>| match ext {
            Some(e) => format!("{name}{suffix}{delimiter}{e}@{domain}"),
            None => format!("{name}{suffix}@{domain}"),
        };
        match self {
            Role::Post => with("", None),
            Role::Request => with("-request", None),
            Role::Join => with("-join", None),
            Role::Leave => with("-leave", None),
            Role::Unsubscribe(ext) => with("-leave", Some(ext)),
            Role::Confirm(token) => with("-confirm", Some(token)),
            Role::Owner => with("-owner", None),
            Role::Bounces(ext) => with("-bounces", ext.as_deref()),
        }
    }
}

/// Where a recipient goes.
#[derive(Debug, Clone)]
pub enum Route {
    /// A working list and the role of the address.
    List(Arc<ListConfig>, Role),
    /// The address belongs to a list whose file is broken: defer (451 4.3.5).
    Disabled {
        /// The list key or file.
        list: String,
    },
    /// Not one of ours: 550 5.1.1.
    Unknown,
}

/// Route `rcpt` (as given in RCPT TO, without brackets).
pub fn route(registry: &Registry, rcpt: &str) -> Route {
    let rcpt = rcpt.to_lowercase();
    let Some((local, domain)) = rcpt.rsplit_once('@') else {
        return Route::Unknown;
    };
    let delim = registry.delimiter();
    let (base, ext) = match local.split_once(delim) {
        Some((b, e)) => (b, Some(e)),
        None => (local, None),
    };
    if let Some(r) = lookup(registry, base, domain, Role::Post) {
        return r;
    }
    for (suffix, role) in [
        ("-request", Role::Request),
        ("-join", Role::Join),
        ("-subscribe", Role::Join),
        ("-leave", Role::Leave),
        ("-unsubscribe", Role::Leave),
        ("-owner", Role::Owner),
        ("-bounces", Role::Bounces(None)),
        ("-confirm", Role::Confirm(String::new())),
    ] {
        let Some(name) = base.strip_suffix(suffix) else {
            continue;
        };
        let role = match (role, ext) {
            (Role::Bounces(_), e) => Role::Bounces(e.map(str::to_string)),
            (Role::Confirm(_), Some(t)) if !t.is_empty() => Role::Confirm(t.to_string()),
            (Role::Confirm(_), _) => return Route::Unknown,
            (Role::Leave, Some(t)) if !t.is_empty() => Role::Unsubscribe(t.to_string()),
            (_, Some(_)) => return Route::Unknown,
            (r, None) => r,
        };
        if let Some(r) = lookup(registry, name, domain, role) {
            return r;
        }
    }
    Route::Unknown
}

fn lookup(registry: &Registry, name: &str, domain: &str, role: Role) -> Option<Route> {
    let key = format!("{name}@{domain}");
    match registry.get(&key)? {
        ListState::Active(l) => Some(Route::List(l.clone(), role)),
        ListState::Disabled { .. } => Some(Route::Disabled { list: key }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["dev", "dev-announce"] {
            let text = format!("address = \"{name}@example.org\"\nowners = [\"o@example.org\"]\n");
            std::fs::write(dir.path().join(format!("{name}.toml")), text).expect("write");
        }
        let reg = Registry::load(dir.path(), '+', None);
        (dir, reg)
    }

    fn role_of(reg: &Registry, rcpt: &str) -> Option<(String, Role)> {
        match route(reg, rcpt) {
            Route::List(l, r) => Some((l.name.clone(), r)),
            _ => None,
        }
    }

    #[test]
    fn routes_every_role_address() {
        let (_d, reg) = registry();
        let dev = |r| Some(("dev".to_string(), r));
        assert_eq!(role_of(&reg, "Dev@Example.ORG"), dev(Role::Post));
        assert_eq!(role_of(&reg, "dev-request@example.org"), dev(Role::Request));
        assert_eq!(role_of(&reg, "dev-subscribe@example.org"), dev(Role::Join));
        assert_eq!(
            role_of(&reg, "dev-unsubscribe@example.org"),
            dev(Role::Leave)
        );
        assert_eq!(role_of(&reg, "dev-owner@example.org"), dev(Role::Owner));
        assert_eq!(
            role_of(&reg, "dev-bounces@example.org"),
            dev(Role::Bounces(None))
        );
        assert_eq!(
            role_of(&reg, "dev-bounces+bob=x.org@example.org"),
            dev(Role::Bounces(Some("bob=x.org".into())))
        );
        assert_eq!(
            role_of(&reg, "dev-confirm+abc@example.org"),
            dev(Role::Confirm("abc".into()))
        );
        assert_eq!(
            role_of(&reg, "dev-announce@example.org"),
            Some(("dev-announce".into(), Role::Post))
        );
        assert_eq!(
            role_of(&reg, "dev-announce-owner@example.org"),
            Some(("dev-announce".into(), Role::Owner))
        );
    }

    #[test]
    fn role_addresses_route_back_to_their_role() {
        let (_d, reg) = registry();
        for list in ["dev@example.org", "dev-announce@example.org"] {
            let Some(ListState::Active(l)) = reg.get(list) else {
                panic!("{list} is not active");
            };
            {
                let delimiter = '+';
                for role in [
                    Role::Post,
                    Role::Request,
                    Role::Join,
                    Role::Leave,
                    Role::Unsubscribe("abcdefghijklmnopqrstuvwxyz.bob=x.org".into()),
                    Role::Confirm("0123456789abcdef0123456789abcdef01234567".into()),
                    Role::Owner,
                    Role::Bounces(None),
                    Role::Bounces(Some("bob=x.org".into())),
                    Role::Bounces(Some("probe.0123456789abcdef".into())),
                ] {
                    let address = role.address(l, delimiter);
                    match route(&reg, &address) {
                        Route::List(got, r) => {
                            assert_eq!((got.key(), r), (l.key(), role.clone()), "{address}")
                        }
                        _ => panic!("{address} does not route"),
                    }
                }
            }
        }
        // The plain role addresses the list file's decoration uses agree with the grammar.
        let Some(ListState::Active(l)) = reg.get("dev@example.org") else {
            panic!("dev is not active");
        };
        assert_eq!(l.role_address("-request"), Role::Request.address(l, '+'));
        assert_eq!(l.bounces_address(), Role::Bounces(None).address(l, '+'));
    }

    #[test]
    fn unknown_addresses_are_not_ours() {
        let (_d, reg) = registry();
        for rcpt in [
            "dev@other.org",
            "nosuch@example.org",
            "dev-confirm@example.org",
            "dev-owner+x@example.org",
            "dev-helper@example.org",
            "nobody",
        ] {
            assert!(matches!(route(&reg, rcpt), Route::Unknown), "{rcpt}");
        }
    }
}
