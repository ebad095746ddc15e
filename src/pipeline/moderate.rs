//! Moderation, inline: decide for one post whether it is distributed, held for a moderator,
//! rejected at LMTP time or discarded, and why.
//!
//! Order: emergency; a Message-ID already distributed on this list; the per-address overrides
//! (discard, reject, hold, accept); the posting policy; then the content rules (size,
//! explicit recipients, header rules, administrivia, implicit destination, MIME filtering).
//! The strongest action wins (discard > reject > hold > accept); every hold reason is kept for
//! the moderators.

use std::sync::Arc;

use super::content;
use super::message::Post;
use crate::address::{Address, EnvelopeSender};
use crate::config::moderation::{Action, AddressPattern};
use crate::config::{ListConfig, PostingPolicy};
use crate::context::{blocking, Context};
use crate::outcome::PostError;
use crate::store::members::FLAG_MODERATED;
use crate::store::now_secs;

/// The decision for one post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// What happens.
    pub action: Action,
    /// Why (for the poster, the moderators and the log); empty when accepted.
    pub reasons: Vec<String>,
    /// The post after content filtering, when parts were removed.
    pub filtered: Option<Vec<u8>>,
    /// The poster as identified (From, else the envelope sender).
    pub poster: Option<Address>,
}

impl Verdict {
    fn add(&mut self, action: Action, reason: impl Into<String>) {
        if action > self.action {
            self.action = action;
        }
        if action != Action::Accept {
            self.reasons.push(reason.into());
        }
    }

    /// The reasons of the deciding action, as one sentence.
    pub fn reason(&self) -> String {
        if self.reasons.is_empty() {
            "no reason given".into()
        } else {
            self.reasons.join("; ")
        }
    }
}

fn any_match(patterns: &[AddressPattern], who: &[Address]) -> bool {
    who.iter().any(|a| {
        let k = a.key();
        patterns.iter().any(|p| p.matches(&k))
    })
}

/// Decide for `post` sent by `sender` (envelope) to `list`.
pub async fn moderate(
    ctx: &Context,
    list: &Arc<ListConfig>,
    sender: &EnvelopeSender,
    post: &Post<'_>,
) -> Result<Verdict, PostError> {
    let mut who: Vec<Address> = Vec::with_capacity(2);
    if let Some(a) = post.from() {
        who.push(a.clone());
    }
    // An envelope sender that is no strict address identifies nobody: it matches no member and
    // no pattern, and is never the poster a notice goes to.
    if let Some(a) = sender.address() {
        if !who.contains(&a) {
            who.push(a);
        }
    }
    let mut v = Verdict {
        action: Action::Accept,
        reasons: Vec::new(),
        filtered: None,
        poster: who.first().cloned(),
    };
    let p = &list.posting;

    if p.emergency {
        v.add(
            Action::Hold,
            "the list is in emergency moderation: every post is held",
        );
    }
    let c = &list.content;
    if c.duplicate_days > 0 {
        let id = post.message_id().to_string();
        if !id.is_empty() {
            let since = now_secs().saturating_sub(u64::from(c.duplicate_days) * 86_400);
            let (store, key) = (ctx.store.clone(), list.key());
            if blocking(move || store.seen_since(&key, &id, since)).await? {
                v.add(
                    Action::Discard,
                    format!(
                        "a message with the same Message-ID went to the list in the last {} days",
                        c.duplicate_days
                    ),
                );
                return Ok(v);
            }
        }
    }

    if any_match(&p.discard_from, &who) {
        v.add(Action::Discard, "the sender is on the list's discard list");
    } else if any_match(&p.reject_from, &who) {
        v.add(
            Action::Reject,
            "the sender is not allowed to post to this list",
        );
    } else if any_match(&p.hold_from, &who) {
        v.add(
            Action::Hold,
            "posts from this sender are held for a moderator",
        );
    } else if !any_match(&p.accept_from, &who) {
        policy(ctx, list, &who, &mut v).await?;
    }
    if matches!(v.action, Action::Discard | Action::Reject) {
        return Ok(v);
    }
    content_rules(list, post, &mut v);
    Ok(v)
}

async fn policy(
    ctx: &Context,
    list: &Arc<ListConfig>,
    who: &[Address],
    v: &mut Verdict,
) -> Result<(), PostError> {
    let p = &list.posting;
    let outsider = |v: &mut Verdict, why: &str| {
        let action = p.non_member_action;
        v.add(action, why.to_string());
    };
    match p.policy {
        PostingPolicy::Open => {}
        PostingPolicy::Moderated => v.add(
            Action::Hold,
            "every post to this list is reviewed by a moderator",
        ),
        PostingPolicy::Announce => {
            if !any_match(&p.allowed_posters, who) {
                outsider(
                    v,
                    "only designated posters may post to this announcement list",
                );
            }
        }
        PostingPolicy::Members => {
            if who.is_empty() {
                outsider(v, "the post has no usable sender address");
                return Ok(());
            }
            let (store, key, who2) = (ctx.store.clone(), list.key(), who.to_vec());
            let member = blocking(move || {
                for a in &who2 {
                    if let Some(m) = store.member_get(&key, &a.to_string())? {
                        return Ok(Some(m));
                    }
                }
                Ok(None)
            })
            .await?;
            match member {
                Some(m) if m.flags & FLAG_MODERATED != 0 => v.add(
                    Action::Hold,
                    "posts from this member are reviewed by a moderator",
                ),
                Some(_) => {}
                None => outsider(v, "the sender is not a member of the list"),
            }
        }
    }
    Ok(())
}

/// The content rules of the list: size, explicit recipients, header rules, administrivia,
/// implicit destination, then MIME filtering (which may replace the message).
fn content_rules(list: &ListConfig, post: &Post<'_>, v: &mut Verdict) {
    let c = &list.content;
    let raw = post.bytes();
    if let Some((limit, action)) = c.max_size {
        if raw.len() > limit {
            v.add(
                action,
                format!(
                    "the message is {} bytes, more than the list's limit of {limit}",
                    raw.len()
                ),
            );
        }
    }
    if let Some((limit, action)) = c.max_recipients {
        let n = post.headers().map_or(0, content::explicit_recipients);
        if n > limit {
            v.add(action, format!("the message has {n} explicit recipients (To and Cc), more than the list's limit of {limit}"));
        }
    }
    for rule in &c.rules {
        let hit = post
            .headers()
            .is_some_and(|h| content::header_matches(raw, h, &rule.header, &rule.pattern));
        if hit {
            v.add(rule.action, rule.reason.clone());
        }
    }
    if let Some(action) = c.administrivia {
        let msg = post.tree();
        let subject = msg.and_then(|m| m.subject()).unwrap_or("");
        let body = msg.and_then(|m| m.body_text(0)).unwrap_or_default();
        if content::is_administrivia(subject, &body) {
            v.add(
                action,
                format!(
                    "the message looks like a membership command; such requests go to {}",
                    list.role_address("-request")
                ),
            );
        }
    }
    if let Some(action) = c.implicit_destination {
        if !post
            .headers()
            .is_some_and(|h| content::addressed_to(h, &[list.key()]))
        {
            v.add(
                action,
                "the list is not among the recipients (To or Cc) of the message",
            );
        }
    }
    if list.content.mime.is_active() {
        let filter = content::MimeFilter {
            pass_types: c.mime.pass_types.clone(),
            drop_types: c.mime.drop_types.clone(),
            collapse_alternatives: c.mime.collapse_alternatives,
        };
        let filtered = match post.tree() {
            Some(tree) => content::filter_parsed(raw, tree, &filter),
            None => Err(content::ContentError::Malformed("no header section")),
        };
        match filtered {
            Ok(None) => {}
            Ok(Some(f)) => {
                tracing::info!(list = %list.key(), removed = ?f.removed, "parts removed from a post");
                v.filtered = Some(f.message);
            }
            Err(content::ContentError::Empty) => {
                v.add(c.filtered_empty_action.unwrap_or(Action::Reject), "nothing would be left of the message after removing the parts the list does not accept");
            }
            Err(e @ content::ContentError::Malformed(_)) => v.add(Action::Hold, e.to_string()),
        }
    }
}
