//! The moderation part of a list file: `[posting]`, `[content]`, `[[rules]]`, `moderators`
//! and `[moderation]`, validated into the types the moderation stage runs on.

use std::ops::Range;

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use super::settings::Bound;
use crate::address::Address;

/// Who may post.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PostingPolicy {
    /// Anyone.
    Open,
    /// Members; others get `posting.non_member_action`.
    Members,
    /// Every post is held for a moderator.
    Moderated,
    /// Only `posting.allowed_posters`; others get `posting.non_member_action`.
    Announce,
}

/// What happens to a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Distribute.
    Accept,
    /// Keep for a moderator.
    Hold,
    /// Refuse at LMTP time with 550 5.7.1 (the MTA bounces it to the poster).
    Reject,
    /// Accept silently and drop (250 and a log line).
    Discard,
}

/// An address or a `^regex` over the lowercase address.
#[derive(Debug, Clone)]
pub enum AddressPattern {
    /// The lowercase address.
    Exact(String),
    /// Matched against the lowercase address.
    Regex(Regex),
}

impl AddressPattern {
    /// Does `key` (a lowercase address) match?
    pub fn matches(&self, key: &str) -> bool {
        match self {
            AddressPattern::Exact(a) => a == key,
            AddressPattern::Regex(r) => r.is_match(key),
        }
    }
}

/// `[posting]`, validated.
#[derive(Debug, Clone)]
pub struct Posting {
    /// `posting.policy`.
    pub policy: PostingPolicy,
    /// For senders the policy does not let in (default `hold`).
    pub non_member_action: Action,
    /// Who may post to an `announce` list.
    pub allowed_posters: Vec<AddressPattern>,
    /// Per-address overrides, tested before the policy: discard, reject, hold, accept.
    pub discard_from: Vec<AddressPattern>,
    /// See `discard_from`.
    pub reject_from: Vec<AddressPattern>,
    /// See `discard_from`.
    pub hold_from: Vec<AddressPattern>,
    /// See `discard_from`; an accepted sender skips the policy, not the content rules.
    pub accept_from: Vec<AddressPattern>,
    /// Hold everything.
    pub emergency: bool,
}

/// One header rule (`[[rules]]`).
#[derive(Debug, Clone)]
pub struct HeaderRule {
    /// Header name.
    pub header: String,
    /// Pattern over the decoded value.
    pub pattern: Regex,
    /// Hold, reject or discard.
    pub action: Action,
    /// Why, for the poster and the moderators.
    pub reason: String,
}

/// `[content]` and `[[rules]]`, validated.
#[derive(Debug, Clone, Default)]
pub struct Content {
    /// Largest post (bytes) and what to do with a bigger one.
    pub max_size: Option<(usize, Action)>,
    /// Most explicit recipients (To + Cc) and what to do with more.
    pub max_recipients: Option<(usize, Action)>,
    /// MIME part filtering: `content.pass_types`, `content.drop_types`,
    /// `content.collapse_alternatives`.
    pub mime: MimeTypes,
    /// When filtering would leave nothing.
    pub filtered_empty_action: Option<Action>,
    /// "unsubscribe me" posts.
    pub administrivia: Option<Action>,
    /// The list is not in To or Cc.
    pub implicit_destination: Option<Action>,
    /// A Message-ID seen on this list in the last N days is discarded (0: off).
    pub duplicate_days: u32,
    /// Header rules in file order.
    pub rules: Vec<HeaderRule>,
}

/// The MIME filter settings as written (the content stage builds its filter from them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MimeTypes {
    /// Keep only these leaf types (empty: all).
    pub pass_types: Vec<String>,
    /// Remove these types.
    pub drop_types: Vec<String>,
    /// Keep only the text/plain of a multipart/alternative.
    pub collapse_alternatives: bool,
}

impl MimeTypes {
    /// Is any filtering configured?
    pub fn is_active(&self) -> bool {
        !self.pass_types.is_empty() || !self.drop_types.is_empty() || self.collapse_alternatives
    }
}

/// `type/subtype`, `type/*` or `type`, in token characters.
fn check_type_pattern(p: &str) -> Result<(), String> {
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    let ok = match p.split_once('/') {
        Some((t, "*")) => token(t),
        Some((t, s)) => token(t) && token(s),
        None => token(p),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{p:?} is not a MIME type pattern such as \"image/png\", \"image/*\" or \"image\""
        ))
    }
}

/// How moderators are told about held posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyMode {
    /// One notice per held post.
    Each,
    /// One summary of all waiting posts per `summary_interval_secs`.
    Summary,
}

/// `[moderation]` and `moderators`, validated.
#[derive(Debug, Clone)]
pub struct Moderation {
    /// Who may approve, reject and discard held posts (the owners when not given).
    pub moderators: Vec<Address>,
    /// Per post or summary.
    pub notify: NotifyMode,
    /// Summary interval.
    pub summary_interval_secs: u64,
    /// Tell the poster the post is held (rate-limited per address).
    pub acknowledge: bool,
    /// Held posts expire after this many seconds.
    pub hold_secs: u64,
    /// Posts waiting for a decision at most; more are deferred with 452 4.2.2 (bounds the disk
    /// and the moderators' notices a flood of held posts can cost).
    pub max_held: usize,
    /// Tell the poster when a held post expires unanswered.
    pub expiry_notice: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPosting {
    policy: Option<PostingPolicy>,
    non_member_action: Option<Spanned<Action>>,
    #[serde(default)]
    allowed_posters: Vec<Spanned<String>>,
    #[serde(default)]
    accept_from: Vec<Spanned<String>>,
    #[serde(default)]
    hold_from: Vec<Spanned<String>>,
    #[serde(default)]
    reject_from: Vec<Spanned<String>>,
    #[serde(default)]
    discard_from: Vec<Spanned<String>>,
    #[serde(default)]
    emergency: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawContent {
    max_size: Option<Spanned<u64>>,
    max_size_action: Option<Spanned<Action>>,
    max_recipients: Option<Spanned<u64>>,
    max_recipients_action: Option<Spanned<Action>>,
    #[serde(default)]
    pass_types: Vec<Spanned<String>>,
    #[serde(default)]
    drop_types: Vec<Spanned<String>>,
    #[serde(default)]
    collapse_alternatives: bool,
    filtered_empty_action: Option<Spanned<Action>>,
    administrivia: Option<Spanned<String>>,
    implicit_destination: Option<Spanned<String>>,
    duplicate_days: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    header: Spanned<String>,
    pattern: Spanned<String>,
    action: Spanned<Action>,
    reason: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawModeration {
    notify: Option<NotifyMode>,
    summary_interval_secs: Option<Spanned<u64>>,
    acknowledge: Option<bool>,
    hold_days: Option<Spanned<u64>>,
    max_held: Option<Spanned<u64>>,
    expiry_notice: Option<bool>,
}

/// Problems as (key, span, sentence); the caller turns them into `ConfigError`s.
pub(super) type Problems = Vec<(String, Range<usize>, String)>;

fn patterns(v: &[Spanned<String>], key: &str, out: &mut Vec<AddressPattern>, p: &mut Problems) {
    for s in v {
        let text = s.get_ref().trim();
        if text.starts_with('^') {
            match Regex::new(&format!("(?i){text}")) {
                Ok(r) => out.push(AddressPattern::Regex(r)),
                Err(e) => p.push((
                    key.into(),
                    s.span(),
                    format!(
                        "{text:?} is not a valid pattern: {}",
                        first_line(&e.to_string())
                    ),
                )),
            }
        } else {
            match Address::parse(text) {
                Ok(a) => out.push(AddressPattern::Exact(a.key())),
                Err(e) => p.push((
                    key.into(),
                    s.span(),
                    format!("{text:?} is neither an address nor a ^regex: {e}"),
                )),
            }
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}

/// A rule action: hold, reject or discard (accept makes no sense there).
fn rule_action(
    v: &Option<Spanned<Action>>,
    key: &str,
    default: Action,
    p: &mut Problems,
) -> Action {
    match v {
        Some(a) if *a.get_ref() == Action::Accept => {
            p.push((
                key.into(),
                a.span(),
                "must be hold, reject or discard".into(),
            ));
            default
        }
        Some(a) => *a.get_ref(),
        None => default,
    }
}

/// `"hold"`, `"reject"`, `"discard"` or `"off"`.
fn switch(
    v: &Option<Spanned<String>>,
    key: &str,
    default: Option<Action>,
    p: &mut Problems,
) -> Option<Action> {
    let Some(v) = v else { return default };
    match v.get_ref().as_str() {
        "off" => None,
        "hold" => Some(Action::Hold),
        "reject" => Some(Action::Reject),
        "discard" => Some(Action::Discard),
        other => {
            p.push((
                key.into(),
                v.span(),
                format!("{other:?} is not one of \"hold\", \"reject\", \"discard\", \"off\""),
            ));
            default
        }
    }
}

pub(super) fn posting(raw: &RawPosting, p: &mut Problems) -> Posting {
    let mut out = Posting {
        policy: raw.policy.unwrap_or(PostingPolicy::Members),
        non_member_action: raw
            .non_member_action
            .as_ref()
            .map_or(Action::Hold, |a| *a.get_ref()),
        allowed_posters: Vec::new(),
        discard_from: Vec::new(),
        reject_from: Vec::new(),
        hold_from: Vec::new(),
        accept_from: Vec::new(),
        emergency: raw.emergency,
    };
    patterns(
        &raw.allowed_posters,
        "posting.allowed_posters",
        &mut out.allowed_posters,
        p,
    );
    patterns(
        &raw.accept_from,
        "posting.accept_from",
        &mut out.accept_from,
        p,
    );
    patterns(&raw.hold_from, "posting.hold_from", &mut out.hold_from, p);
    patterns(
        &raw.reject_from,
        "posting.reject_from",
        &mut out.reject_from,
        p,
    );
    patterns(
        &raw.discard_from,
        "posting.discard_from",
        &mut out.discard_from,
        p,
    );
    out
}

pub(super) fn content(raw: &RawContent, rules: &[RawRule], p: &mut Problems) -> Content {
    let mut c = Content {
        max_size: raw.max_size.as_ref().map(|s| {
            (
                *s.get_ref() as usize,
                rule_action(
                    &raw.max_size_action,
                    "content.max_size_action",
                    Action::Hold,
                    p,
                ),
            )
        }),
        max_recipients: raw.max_recipients.as_ref().map(|s| {
            (
                *s.get_ref() as usize,
                rule_action(
                    &raw.max_recipients_action,
                    "content.max_recipients_action",
                    Action::Hold,
                    p,
                ),
            )
        }),
        mime: MimeTypes {
            pass_types: Vec::new(),
            drop_types: Vec::new(),
            collapse_alternatives: raw.collapse_alternatives,
        },
        filtered_empty_action: Some(rule_action(
            &raw.filtered_empty_action,
            "content.filtered_empty_action",
            Action::Reject,
            p,
        )),
        administrivia: switch(
            &raw.administrivia,
            "content.administrivia",
            Some(Action::Hold),
            p,
        ),
        implicit_destination: switch(
            &raw.implicit_destination,
            "content.implicit_destination",
            None,
            p,
        ),
        duplicate_days: raw.duplicate_days.as_ref().map_or(0, |d| *d.get_ref()),
        rules: Vec::new(),
    };
    for (key, list, out) in [
        (
            "content.pass_types",
            &raw.pass_types,
            &mut c.mime.pass_types,
        ),
        (
            "content.drop_types",
            &raw.drop_types,
            &mut c.mime.drop_types,
        ),
    ] {
        for t in list {
            match check_type_pattern(t.get_ref()) {
                Ok(()) => out.push(t.get_ref().to_ascii_lowercase()),
                Err(e) => p.push((key.into(), t.span(), e)),
            }
        }
    }
    if let Some(d) = &raw.duplicate_days {
        if *d.get_ref() > 365 {
            p.push((
                "content.duplicate_days".into(),
                d.span(),
                "must be between 0 and 365".into(),
            ));
        }
    }
    for r in rules {
        let name = r.header.get_ref().trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
            p.push((
                "rules.header".into(),
                r.header.span(),
                "must be a header field name such as \"X-Spam-Flag\"".into(),
            ));
            continue;
        }
        let pattern = match Regex::new(r.pattern.get_ref()) {
            Ok(re) => re,
            Err(e) => {
                p.push((
                    "rules.pattern".into(),
                    r.pattern.span(),
                    format!(
                        "not a valid regular expression: {}",
                        first_line(&e.to_string())
                    ),
                ));
                continue;
            }
        };
        let action = rule_action(&Some(r.action.clone()), "rules.action", Action::Hold, p);
        let reason = r
            .reason
            .clone()
            .unwrap_or_else(|| format!("the {name} header matches a rule of the list"));
        c.rules.push(HeaderRule {
            header: name.to_string(),
            pattern,
            action,
            reason: reason.replace(['\r', '\n'], " "),
        });
    }
    c
}

pub(super) fn moderation(
    raw: &RawModeration,
    moderators: Vec<Address>,
    p: &mut Problems,
) -> Moderation {
    let bounded = |v: &Option<Spanned<u64>>, key: &str, bound: Bound, p: &mut Problems| match v {
        None => bound.default,
        Some(x) => bound.check(*x.get_ref()).unwrap_or_else(|msg| {
            p.push((key.into(), x.span(), msg));
            bound.default
        }),
    };
    Moderation {
        moderators,
        notify: raw.notify.unwrap_or(NotifyMode::Each),
        summary_interval_secs: bounded(
            &raw.summary_interval_secs,
            "moderation.summary_interval_secs",
            Bound::new(86_400, 300..=7 * 86_400),
            p,
        ),
        acknowledge: raw.acknowledge.unwrap_or(true),
        hold_secs: bounded(
            &raw.hold_days,
            "moderation.hold_days",
            Bound::new(14, 1..=365),
            p,
        ) * 86_400,
        max_held: bounded(
            &raw.max_held,
            "moderation.max_held",
            Bound::new(500, 1..=1_000_000),
            p,
        ) as usize,
        expiry_notice: raw.expiry_notice.unwrap_or(true),
    }
}
