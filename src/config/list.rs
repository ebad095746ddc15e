//! One list file (`lists.d/NAME.toml`): the list's address, owners, posting policy and
//! decoration. Membership is not here: it lives in the store.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::delivery::{self, Bounces, Delivery};
use super::error::ConfigError;
use super::moderation::{self, Content, Moderation, Posting};
use crate::address::Address;

/// How people join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionPolicy {
    /// Anyone, after confirming their address.
    Open,
    /// After confirming, an owner approves.
    Moderate,
    /// Nobody by mail: the owners add members.
    Closed,
}

/// Who may ask for the member roster with `who`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Roster {
    /// Owners only.
    Owners,
    /// Members and owners.
    Members,
    /// Nobody.
    Nobody,
}

/// `[subscription]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    /// `subscription.policy` (default `open`).
    pub policy: SubscriptionPolicy,
    /// `subscription.roster` (default `owners`).
    pub roster: Roster,
}

/// The role suffixes a list owns besides its own address (DESIGN.md, Addresses).
pub const ROLE_SUFFIXES: &[&str] = &[
    "-request",
    "-join",
    "-subscribe",
    "-leave",
    "-unsubscribe",
    "-confirm",
    "-owner",
    "-bounces",
];

/// What a list adds to every post it distributes.
#[derive(Debug, Clone)]
pub struct Decoration {
    /// RFC 2919 list identifier without brackets, e.g. "dev.example.org".
    pub list_id: String,
    /// Human name of the list (may be non-ASCII UTF-8, may be empty).
    pub display_name: String,
    /// e.g. "[dev]"; None or empty = no prefix.
    pub subject_prefix: Option<String>,
    /// Already-rendered footer text (UTF-8, lines separated by \n or \r\n); None = no footer.
    pub footer: Option<String>,
    /// Address for List-Post, e.g. "dev@example.org".
    pub post_address: String,
    /// Address for List-Help, e.g. "dev-request@example.org".
    pub request_address: String,
    /// Address for List-Subscribe, e.g. "dev-join@example.org".
    pub subscribe_address: String,
    /// Address for List-Unsubscribe, e.g. "dev-leave@example.org".
    pub unsubscribe_address: String,
    /// Address for List-Owner, e.g. "dev-owner@example.org".
    pub owner_address: String,
}

/// A validated list, shared read-only (`Arc`) by every session that uses it.
#[derive(Debug, Clone)]
pub struct ListConfig {
    /// The file it came from.
    pub file: PathBuf,
    /// `name@domain`, lowercase.
    pub address: Address,
    /// The local part of the address.
    pub name: String,
    /// Human name.
    pub display_name: String,
    /// One line about the list.
    pub description: String,
    /// Who gets `NAME-owner@` mail.
    pub owners: Vec<Address>,
    /// `[posting]`: who may post, per-address overrides, emergency.
    pub posting: Posting,
    /// `[content]` and `[[rules]]`.
    pub content: Content,
    /// `moderators` and `[moderation]`.
    pub moderation: Moderation,
    /// `[delivery]`: bulk or personalized, VERP.
    pub delivery: Delivery,
    /// `[bounces]`: scoring, disabling, removal.
    pub bounces: Bounces,
    /// `[subscription]`.
    pub subscription: Subscription,
    /// Generated mails: defaults with this list's `[templates.*]` overrides.
    pub templates: crate::notice::Templates,
    /// Headers, prefix and rendered footer, built once at load time.
    pub decoration: Decoration,
}

impl ListConfig {
    /// `NAME-ROLE@DOMAIN`, e.g. `role_address("-owner")`.
    pub fn role_address(&self, suffix: &str) -> String {
        format!("{}{}@{}", self.name, suffix, self.address.domain())
    }

    /// The envelope sender of every copy: `NAME-bounces@DOMAIN`.
    pub fn bounces_address(&self) -> String {
        self.role_address("-bounces")
    }

    /// The address as `name@domain`.
    pub fn key(&self) -> String {
        self.address.key()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    address: Spanned<String>,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    description: String,
    owners: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    posting: moderation::RawPosting,
    #[serde(default)]
    moderators: Vec<Spanned<String>>,
    #[serde(default)]
    content: moderation::RawContent,
    #[serde(default)]
    rules: Vec<moderation::RawRule>,
    #[serde(default)]
    moderation: moderation::RawModeration,
    #[serde(default)]
    delivery: delivery::RawDelivery,
    #[serde(default)]
    bounces: delivery::RawBounces,
    #[serde(default)]
    decoration: RawDecoration,
    #[serde(default)]
    subscription: RawSubscription,
    #[serde(default)]
    templates: std::collections::BTreeMap<String, crate::notice::RawTemplate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubscription {
    #[serde(default = "default_sub_policy")]
    policy: SubscriptionPolicy,
    #[serde(default = "default_roster")]
    roster: Roster,
}

impl Default for RawSubscription {
    fn default() -> Self {
        RawSubscription {
            policy: default_sub_policy(),
            roster: default_roster(),
        }
    }
}

fn default_sub_policy() -> SubscriptionPolicy {
    SubscriptionPolicy::Open
}

fn default_roster() -> Roster {
    Roster::Owners
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDecoration {
    subject_prefix: Option<Spanned<String>>,
    footer: Option<Spanned<String>>,
}

/// Best effort for a broken file: the `address` value if the TOML at least parses, so that the
/// list's addresses can answer 451 while it is broken instead of 550.
pub fn address_hint(text: &str) -> Option<Address> {
    let table: toml::Table = toml::from_str(text).ok()?;
    Address::parse(table.get("address")?.as_str()?).ok()
}

impl ListConfig {
    /// Read and validate one list file.
    pub fn load(path: &Path, delimiter: char) -> Result<ListConfig, Vec<ConfigError>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ConfigError::file(
                path,
                format!("cannot read the file: {e}"),
            )]
        })?;
        ListConfig::parse(path, &text, delimiter)
    }

    /// Validate `text` as the list file at `path`.
    pub fn parse(path: &Path, text: &str, delimiter: char) -> Result<ListConfig, Vec<ConfigError>> {
        let raw: Raw =
            toml::from_str(text).map_err(|e| vec![ConfigError::from_toml(path, text, &e)])?;
        let mut errors = Vec::new();
        macro_rules! fail {
            ($span:expr, $key:expr, $msg:expr) => {
                errors.push(ConfigError::at(path, text, $span, $key, $msg))
            };
        }

        let address = match Address::parse(raw.address.get_ref()) {
            Ok(a) => Some(a),
            Err(e) => {
                fail!(
                    raw.address.span(),
                    "address",
                    format!("{:?} is not a valid address: {e}", raw.address.get_ref())
                );
                None
            }
        };
        let mut name = String::new();
        if let Some(a) = &address {
            name = a.local().to_lowercase();
            let clean = name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !clean || name.contains(delimiter) {
                fail!(raw.address.span(), "address", format!("the list name {name:?} may contain only letters, digits, '-', '_' and '.', and not the recipient delimiter {delimiter:?}"));
            } else if let Some(s) = ROLE_SUFFIXES.iter().find(|s| name.ends_with(*s)) {
                fail!(raw.address.span(), "address", format!("the list name {name:?} ends in {s:?}, which is reserved for role addresses"));
            }
        }
        let mut owners = Vec::new();
        if raw.owners.get_ref().is_empty() {
            fail!(
                raw.owners.span(),
                "owners",
                "give at least one owner address"
            );
        }
        for o in raw.owners.get_ref() {
            match Address::parse(o.get_ref()) {
                Ok(a)
                    if address.as_ref().is_some_and(|l| {
                        a.domain() == l.domain() && a.local().to_lowercase().starts_with(&name)
                    }) =>
                {
                    fail!(
                        o.span(),
                        "owners",
                        format!(
                            "{:?} is an address of this list itself, which would loop",
                            o.get_ref()
                        )
                    );
                }
                Ok(a) => owners.push(a),
                Err(e) => fail!(
                    o.span(),
                    "owners",
                    format!("{:?} is not a valid address: {e}", o.get_ref())
                ),
            }
        }
        let display_name = raw.display_name.clone();
        if display_name.chars().any(|c| c.is_control()) {
            errors.push(ConfigError::file(
                path,
                "key `display_name`: must be one line without control characters",
            ));
        }
        let prefix = raw.decoration.subject_prefix.as_ref().map(|v| {
            if v.get_ref().chars().any(|c| c.is_control()) {
                fail!(
                    v.span(),
                    "decoration.subject_prefix",
                    "must be one line without control characters"
                );
            }
            v.get_ref().clone()
        });
        let prefix = prefix.filter(|p| !p.trim().is_empty());

        let mut moderators = Vec::new();
        for m in &raw.moderators {
            match Address::parse(m.get_ref()) {
                Ok(a) => moderators.push(a),
                Err(e) => fail!(
                    m.span(),
                    "moderators",
                    format!("{:?} is not a valid address: {e}", m.get_ref())
                ),
            }
        }
        if raw.moderators.is_empty() {
            moderators = owners.clone();
        }
        let mut problems = moderation::Problems::new();

        let Some(address) = address else {
            return Err(errors);
        };
        let mut list = ListConfig {
            file: path.to_path_buf(),
            name: name.clone(),
            display_name,
            description: raw.description.clone(),
            owners,
            posting: moderation::posting(&raw.posting, &mut problems),
            content: moderation::content(&raw.content, &raw.rules, &mut problems),
            moderation: moderation::moderation(&raw.moderation, moderators, &mut problems),
            delivery: delivery::delivery(&raw.delivery, &mut problems),
            bounces: delivery::bounces(&raw.bounces, &mut problems),
            subscription: Subscription {
                policy: raw.subscription.policy,
                roster: raw.subscription.roster,
            },
            templates: match crate::notice::templates_from(&raw.templates) {
                Ok(t) => t,
                Err(errs) => {
                    for (key, span, msg) in errs {
                        errors.push(ConfigError::at(path, text, span, &key, msg));
                    }
                    crate::notice::Templates::defaults()
                }
            },
            decoration: Decoration {
                list_id: format!("{}.{}", name, address.domain()),
                display_name: raw.display_name.clone(),
                subject_prefix: prefix,
                footer: None,
                post_address: address.key(),
                request_address: String::new(),
                subscribe_address: String::new(),
                unsubscribe_address: String::new(),
                owner_address: String::new(),
            },
            address,
        };
        list.decoration.request_address = list.role_address("-request");
        list.decoration.subscribe_address = list.role_address("-join");
        list.decoration.unsubscribe_address = list.role_address("-leave");
        list.decoration.owner_address = list.role_address("-owner");
        if let Some(f) = &raw.decoration.footer {
            match render_footer(f.get_ref(), &list) {
                Ok(text) => list.decoration.footer = Some(text),
                Err(m) => errors.push(ConfigError::at(
                    path,
                    text,
                    f.span(),
                    "decoration.footer",
                    m,
                )),
            }
        }
        for (key, span, msg) in problems {
            errors.push(ConfigError::at(path, text, span, &key, msg));
        }
        if list.posting.policy == moderation::PostingPolicy::Announce
            && list.posting.allowed_posters.is_empty()
        {
            errors.push(ConfigError::file(
                path,
                "key `posting.allowed_posters`: an announce list needs at least one allowed poster",
            ));
        }
        if errors.is_empty() {
            Ok(list)
        } else {
            Err(errors)
        }
    }
}

/// Fill `{list_address}`, `{list_name}`, `{request_address}`, `{owner_address}`,
/// `{display_name}` and `{description}`; `{{` and `}}` are literal braces. An unknown
/// placeholder is a configuration error, not a silent blank.
pub fn render_footer(template: &str, list: &ListConfig) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(pos) = rest.find(['{', '}']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('}') {
            return Err("a lone '}' (write '}}' for a literal brace)".into());
        }
        let Some(end) = tail.find('}') else {
            return Err("a '{' without its '}' (write '{{' for a literal brace)".into());
        };
        let value = match &tail[1..end] {
            "list_address" => list.address.key(),
            "list_name" => list.name.clone(),
            "request_address" => list.role_address("-request"),
            "owner_address" => list.role_address("-owner"),
            "display_name" => list.display_name.clone(),
            "description" => list.description.clone(),
            "member_address" | "unsubscribe_address" if list.delivery.mode == super::delivery::DeliveryMode::Personalized => {
                format!("{{{}}}", &tail[1..end])
            }
            "member_address" | "unsubscribe_address" => {
                return Err(format!(
                    "{{{}}} is filled in per member, which needs delivery.mode = \"personalized\"",
                    &tail[1..end]
                ))
            }
            other => {
                return Err(format!(
                    "unknown placeholder {{{other}}}; known are {{list_address}}, {{list_name}}, {{request_address}}, {{owner_address}}, {{display_name}}, {{description}}"
                ))
            }
        };
        out.push_str(&value);
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    if out
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err("the footer contains control characters".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "address = \"Dev@Example.org\"\ndisplay_name = \"Developers\"\nowners = [\"boss@example.org\"]\n[posting]\npolicy = \"open\"\n[decoration]\nsubject_prefix = \"[dev]\"\nfooter = \"Post to {list_address}; help: {request_address} {{x}}\"\n";

    #[test]
    fn a_good_file_is_rendered_once() {
        let l = ListConfig::parse(Path::new("dev.toml"), GOOD, '+').expect("valid");
        assert_eq!(l.key(), "dev@example.org");
        assert_eq!(l.bounces_address(), "dev-bounces@example.org");
        assert_eq!(l.posting.policy, moderation::PostingPolicy::Open);
        assert_eq!(l.decoration.list_id, "dev.example.org");
        assert_eq!(
            l.decoration.footer.as_deref(),
            Some("Post to dev@example.org; help: dev-request@example.org {x}")
        );
    }

    #[test]
    fn bounces_probe_unless_told_to_trust_bounces() {
        let l = ListConfig::parse(Path::new("dev.toml"), GOOD, '+').expect("valid");
        assert!(
            l.bounces.probe,
            "forged bounces must not disable by default"
        );
        let off = format!("{GOOD}[bounces]\nprobe = false\n");
        let l = ListConfig::parse(Path::new("dev.toml"), &off, '+').expect("valid");
        assert!(!l.bounces.probe);
    }

    #[test]
    fn errors_name_line_column_and_key() {
        let bad = GOOD.replace("\"open\"", "\"closed\"");
        let e = ListConfig::parse(Path::new("dev.toml"), &bad, '+').expect_err("invalid");
        assert_eq!(e.len(), 1);
        assert_eq!(
            (e[0].line, e[0].column, e[0].key.as_str()),
            (5, 10, "posting.policy"),
            "{}",
            e[0]
        );
        let bad = GOOD.replace("{request_address}", "{nope}");
        let e = ListConfig::parse(Path::new("dev.toml"), &bad, '+').expect_err("invalid");
        assert!(
            e[0].to_string()
                .starts_with("dev.toml:8:10: key `decoration.footer`: unknown placeholder {nope}"),
            "{}",
            e[0]
        );
        let bad = GOOD.replace("[posting]", "colour = 1\n[posting]");
        let e = ListConfig::parse(Path::new("dev.toml"), &bad, '+').expect_err("invalid");
        assert_eq!((e[0].line, e[0].key.as_str()), (4, "colour"), "{}", e[0]);
        let bad = GOOD.replace("Dev@", "dev-owner@");
        assert!(ListConfig::parse(Path::new("dev.toml"), &bad, '+').is_err());
        let bad = GOOD.replace("boss@example.org", "dev-owner@example.org");
        assert!(ListConfig::parse(Path::new("dev.toml"), &bad, '+').is_err());
    }

    #[test]
    fn moderation_numbers_are_bounded() {
        let bad = format!("{GOOD}[moderation]\nhold_days = 0\nmax_held = 2000000\n");
        let e = ListConfig::parse(Path::new("dev.toml"), &bad, '+').expect_err("invalid");
        let lines: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            lines,
            [
                "dev.toml:10:13: key `moderation.hold_days`: 0 is out of range, it must be between 1 and 365",
                "dev.toml:11:12: key `moderation.max_held`: 2000000 is out of range, it must be between 1 and 1000000",
            ]
        );
    }
}
