//! Every mail listkeeper writes itself (confirmations, command results, approval requests,
//! welcome and goodbye) comes from here: a [`Template`] per [`Kind`], with the defaults compiled
//! into the binary ([`defaults`]) and per-list overrides from the list file's
//! `[templates.KEY]` sections, validated at load time by [`templates_from`]; [`render`] fills
//! the placeholders and [`build()`] turns the result into RFC 5322 bytes.
//!
//! Pure and I/O-free apart from the clock and the random Message-ID. It trusts the caller for
//! the values of placeholders but not for header safety: [`build()`] strips line breaks from
//! every header text and refuses addresses that could carry a second header or recipient.

mod build;
pub mod defaults;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

pub use build::{build, Notice, NoticeError};

/// Which generated mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// To someone who asked to join: confirm with the token.
    ConfirmJoin,
    /// To a member who asked to leave: confirm with the token.
    ConfirmLeave,
    /// To a member who asked to change `nomail`: confirm with the token.
    ConfirmNomail,
    /// To a new member.
    Welcome,
    /// To a member who left.
    Goodbye,
    /// The answer to a mail to `NAME-request@`.
    CommandResults,
    /// To the owners: someone wants to join a list that needs approval.
    ApprovalRequest,
    /// To the requester: an owner approved.
    ApprovalGranted,
    /// To the requester: an owner refused.
    ApprovalRejected,
    /// To the moderators: a post is held (one per post).
    HeldNotice,
    /// To the moderators: the posts waiting (notify = "summary").
    HeldSummary,
    /// To the poster: the post is held for a moderator.
    HeldAck,
    /// To the poster: a moderator rejected the post.
    PostRejected,
    /// To the poster: nobody decided on the held post in time.
    HeldExpired,
    /// To a member whose delivery was disabled because of bounces.
    BounceDisabled,
    /// To the owners: a member was disabled or removed because of bounces.
    BounceOwners,
    /// To a member over the bounce threshold: a probe whose bounce confirms.
    BounceProbe,
}

/// The placeholders every kind knows, followed by `extra`, as one static list.
macro_rules! with_common {
    ($($extra:literal),*) => {
        &[
            "list_address", "list_name", "display_name", "description", "request_address",
            "owner_address", "address", $($extra),*
        ]
    };
}

impl Kind {
    /// The list-file key: `[templates.KEY]`.
    pub fn key(&self) -> &'static str {
        match self {
            Kind::ConfirmJoin => "confirm_join",
            Kind::ConfirmLeave => "confirm_leave",
            Kind::ConfirmNomail => "confirm_nomail",
            Kind::Welcome => "welcome",
            Kind::Goodbye => "goodbye",
            Kind::CommandResults => "command_results",
            Kind::ApprovalRequest => "approval_request",
            Kind::ApprovalGranted => "approval_granted",
            Kind::ApprovalRejected => "approval_rejected",
            Kind::HeldNotice => "held_notice",
            Kind::HeldSummary => "held_summary",
            Kind::HeldAck => "held_ack",
            Kind::PostRejected => "post_rejected",
            Kind::HeldExpired => "held_expired",
            Kind::BounceDisabled => "bounce_disabled",
            Kind::BounceOwners => "bounce_owners",
            Kind::BounceProbe => "bounce_probe",
        }
    }

    /// Every kind, in declaration order.
    pub fn all() -> &'static [Kind] {
        &[
            Kind::ConfirmJoin,
            Kind::ConfirmLeave,
            Kind::ConfirmNomail,
            Kind::Welcome,
            Kind::Goodbye,
            Kind::CommandResults,
            Kind::ApprovalRequest,
            Kind::ApprovalGranted,
            Kind::ApprovalRejected,
            Kind::HeldNotice,
            Kind::HeldSummary,
            Kind::HeldAck,
            Kind::PostRejected,
            Kind::HeldExpired,
            Kind::BounceDisabled,
            Kind::BounceOwners,
            Kind::BounceProbe,
        ]
    }

    /// The kind whose [`Kind::key`] is `key`.
    pub fn from_key(key: &str) -> Option<Kind> {
        Kind::all().iter().copied().find(|k| k.key() == key)
    }

    /// The placeholder names (without braces) a template of this kind may use.
    pub fn placeholders(&self) -> &'static [&'static str] {
        match self {
            Kind::ConfirmJoin | Kind::ConfirmLeave | Kind::ApprovalRequest => {
                with_common!("token", "confirm_address", "expires")
            }
            Kind::ConfirmNomail => with_common!("token", "confirm_address", "expires", "setting"),
            Kind::CommandResults => with_common!("results", "subject"),
            Kind::ApprovalRejected => with_common!("reason"),
            Kind::HeldNotice => with_common!(
                "token",
                "confirm_address",
                "expires",
                "reason",
                "sender",
                "subject",
                "headers",
                "excerpt"
            ),
            Kind::HeldSummary => with_common!("summary", "count"),
            Kind::HeldAck => with_common!("reason", "subject", "expires"),
            Kind::PostRejected => with_common!("reason", "subject"),
            Kind::HeldExpired => with_common!("subject"),
            Kind::BounceDisabled => with_common!("score"),
            Kind::BounceOwners => with_common!("score", "action"),
            Kind::BounceProbe => with_common!("score"),
            Kind::Welcome | Kind::Goodbye | Kind::ApprovalGranted => with_common!(),
        }
    }

    /// Whether a list may switch this mail off (`enabled = false`).
    pub fn can_switch_off(&self) -> bool {
        matches!(
            self,
            Kind::Welcome | Kind::Goodbye | Kind::HeldAck | Kind::HeldExpired
        )
    }
}

/// A subject and a body template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// One line; rendered, then made safe for the header by [`build()`].
    pub subject: String,
    /// Plain text, `\n` line ends.
    pub body: String,
}

/// The built-in texts, allocated once for all lists.
static DEFAULT_ITEMS: std::sync::LazyLock<BTreeMap<Kind, Template>> =
    std::sync::LazyLock::new(|| {
        Kind::all()
            .iter()
            .map(|&k| {
                let (subject, body) = defaults::text(k);
                (
                    k,
                    Template {
                        subject: subject.to_string(),
                        body: body.to_string(),
                    },
                )
            })
            .collect()
    });

/// All templates of one list: the defaults with the list's overrides applied; welcome and
/// goodbye can be switched off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates {
    items: BTreeMap<Kind, Template>,
    off: BTreeSet<Kind>,
}

impl Templates {
    /// The built-in texts, all switched on.
    pub fn defaults() -> Templates {
        Templates {
            items: BTreeMap::new(),
            off: BTreeSet::new(),
        }
    }

    /// The template for `kind`; `None` when the list switched it off.
    pub fn get(&self, kind: Kind) -> Option<&Template> {
        if self.off.contains(&kind) {
            return None;
        }
        self.items.get(&kind).or_else(|| DEFAULT_ITEMS.get(&kind))
    }

    /// The template for `kind` with `vars` filled in; `None` when switched off.
    pub fn rendered(&self, kind: Kind, vars: &Vars) -> Option<Template> {
        self.get(kind).map(|t| Template {
            subject: render(&t.subject, vars),
            body: render(&t.body, vars),
        })
    }
}

impl Default for Templates {
    fn default() -> Self {
        Templates::defaults()
    }
}

/// The list-file section `[templates.KEY]` as serde reads it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTemplate {
    /// Replaces the default subject.
    pub subject: Option<Spanned<String>>,
    /// Replaces the default body.
    pub body: Option<Spanned<String>>,
    /// `false` switches the mail off; only `welcome` and `goodbye` allow it.
    pub enabled: Option<Spanned<bool>>,
}

/// One problem in the `[templates]` sections: dotted key, byte span in the list file, sentence.
pub type TemplateError = (String, Range<usize>, String);

/// Apply the list file's overrides (map key = [`Kind::key`]) to the defaults. Every problem is
/// reported, not only the first: an unknown template name, an unknown placeholder for that
/// kind, a lone brace, control characters (in a subject any, in a body all but tab and line
/// breaks), an empty subject, and `enabled` on a template that cannot be switched off.
///
/// The map key itself has no span in serde's model, so an unknown name is located at its
/// first field (or at 0..0 for an empty section).
pub fn templates_from(
    raw: &BTreeMap<String, RawTemplate>,
) -> Result<Templates, Vec<TemplateError>> {
    let mut templates = Templates::defaults();
    let mut errors = Vec::new();
    for (key, r) in raw {
        let Some(kind) = Kind::from_key(key) else {
            let span = [
                r.subject.as_ref().map(Spanned::span),
                r.body.as_ref().map(Spanned::span),
            ]
            .into_iter()
            .flatten()
            .chain(r.enabled.as_ref().map(Spanned::span))
            .min_by_key(|s| s.start)
            .unwrap_or(0..0);
            let known: Vec<&str> = Kind::all().iter().map(Kind::key).collect();
            errors.push((
                format!("templates.{key}"),
                span,
                format!("unknown template {key:?}; known are {}", known.join(", ")),
            ));
            continue;
        };
        if let Some(subject) = &r.subject {
            let problem = if subject.get_ref().trim().is_empty() {
                Some("the subject must not be empty".to_string())
            } else if subject.get_ref().chars().any(char::is_control) {
                Some("the subject must be one line without control characters".to_string())
            } else {
                check_placeholders(subject.get_ref(), kind).err()
            };
            match problem {
                Some(m) => errors.push((format!("templates.{key}.subject"), subject.span(), m)),
                None => set(&mut templates, kind, |t| {
                    t.subject = subject.get_ref().clone()
                }),
            }
        }
        if let Some(body) = &r.body {
            let control = body
                .get_ref()
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'));
            let problem = if control {
                Some("the body contains control characters".to_string())
            } else {
                check_placeholders(body.get_ref(), kind).err()
            };
            match problem {
                Some(m) => errors.push((format!("templates.{key}.body"), body.span(), m)),
                None => set(&mut templates, kind, |t| {
                    t.body = body.get_ref().replace("\r\n", "\n")
                }),
            }
        }
        if let Some(enabled) = &r.enabled {
            if !kind.can_switch_off() {
                errors.push((
                    format!("templates.{key}.enabled"),
                    enabled.span(),
                    format!(
                        "only `welcome` and `goodbye` can be switched off; `{key}` is always sent"
                    ),
                ));
            } else if !*enabled.get_ref() {
                templates.off.insert(kind);
            }
        }
    }
    if errors.is_empty() {
        Ok(templates)
    } else {
        Err(errors)
    }
}

fn set(templates: &mut Templates, kind: Kind, f: impl FnOnce(&mut Template)) {
    let Some(default) = DEFAULT_ITEMS.get(&kind) else {
        return;
    };
    f(templates
        .items
        .entry(kind)
        .or_insert_with(|| default.clone()));
}

/// Check that every `{name}` in `template` is a placeholder of `kind` and that every other
/// brace is doubled.
pub fn check_placeholders(template: &str, kind: Kind) -> Result<(), String> {
    let known = kind.placeholders();
    let mut rest = template;
    while let Some(pos) = rest.find(['{', '}']) {
        let tail = rest.get(pos..).unwrap_or_default();
        if tail.starts_with("{{") || tail.starts_with("}}") {
            rest = tail.get(2..).unwrap_or_default();
            continue;
        }
        if tail.starts_with('}') {
            return Err("a lone '}' (write '}}' for a literal brace)".into());
        }
        let Some(end) = tail.find('}') else {
            return Err("a '{' without its '}' (write '{{' for a literal brace)".into());
        };
        let name = tail.get(1..end).unwrap_or_default();
        if !known.contains(&name) {
            let list: Vec<String> = known.iter().map(|k| format!("{{{k}}}")).collect();
            return Err(format!(
                "unknown placeholder {{{name}}} for `{}`; known are {}",
                kind.key(),
                list.join(", ")
            ));
        }
        rest = tail.get(end + 1..).unwrap_or_default();
    }
    Ok(())
}

/// Placeholder values, by name without braces.
pub type Vars = BTreeMap<&'static str, String>;

/// Fill `{name}` placeholders from `vars`; `{{` and `}}` are literal braces. Unknown names and
/// lone braces are left as they are (validation happens at load time). Values are inserted
/// as they are, never expanded again.
pub fn render(template: &str, vars: &Vars) -> String {
    let mut out = String::with_capacity(template.len() + 128);
    let mut rest = template;
    while let Some(pos) = rest.find(['{', '}']) {
        out.push_str(rest.get(..pos).unwrap_or_default());
        let tail = rest.get(pos..).unwrap_or_default();
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(tail.get(..1).unwrap_or_default());
            rest = tail.get(2..).unwrap_or_default();
            continue;
        }
        if tail.starts_with('{') {
            let value = tail
                .find('}')
                .and_then(|end| Some((end, vars.get(tail.get(1..end)?)?)));
            if let Some((end, value)) = value {
                out.push_str(value);
                rest = tail.get(end + 1..).unwrap_or_default();
                continue;
            }
        }
        // A lone brace or an unknown name: keep the brace, go on after it.
        out.push_str(tail.get(..1).unwrap_or_default());
        rest = tail.get(1..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
