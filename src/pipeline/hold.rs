//! The hold stage: holding a post durably (before the 250) for a moderator, telling the
//! moderators and the poster. A moderator's decision is taken by `requests::decide`, which
//! resumes an approved post's journey with `post::distribute`; expiry and summaries are
//! `scheduled` work.
//!
//! SECURITY: only a moderator's address may decide (an attempt by anyone else is refused and
//! logged); the token (160 random bits) is the secret that makes a forged moderator address
//! useless without the notice.

use std::sync::Arc;

use super::message::Post;
use crate::address::Address;
use crate::config::moderation::NotifyMode;
use crate::config::ListConfig;
use crate::context::{blocking, Context};
use crate::mailer::{confirm_address, expires_in, list_vars, or_none, send};
use crate::notice::Kind;
use crate::outcome::PostError;
use crate::store::{new_token, now_secs, Held, HeldState, JournalKey};

/// What the moderators see of a post: a few headers and the first lines of its text.
fn excerpt(post: &Post<'_>) -> (String, String) {
    let msg = post.tree();
    let mut headers = String::new();
    if let Some(m) = &msg {
        for name in ["From", "To", "Cc", "Subject", "Date", "Message-ID"] {
            if let Some(v) = m.header_raw(name) {
                let v: String = v.split_whitespace().collect::<Vec<_>>().join(" ");
                let v: String = v.chars().filter(|c| !c.is_control()).take(200).collect();
                headers.push_str(&format!("    {name}: {v}\n"));
            }
        }
    }
    let text = msg
        .as_ref()
        .and_then(|m| m.body_text(0))
        .unwrap_or_default();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(15)
        .map(|l| {
            format!(
                "    | {}",
                l.chars()
                    .filter(|c| !c.is_control())
                    .take(100)
                    .collect::<String>()
            )
        })
        .collect();
    if lines.is_empty() {
        lines.push("    (no text part)".into());
    }
    (headers.trim_end().to_string(), lines.join("\n"))
}

/// Hold `post` (already filtered) for the moderators; idempotent per post (keyed by the
/// message as received), so a retried delivery finds the first hold and only repeats what
/// did not go out.
pub async fn hold(
    ctx: &Context,
    list: &Arc<ListConfig>,
    post: &Post<'_>,
    reasons: Vec<String>,
    poster: Option<&Address>,
) -> Result<Held, PostError> {
    let message_id = post.message_id();
    let message = post.bytes();
    let key = JournalKey::new(&list.key(), message_id, post.raw());
    let now = now_secs();
    let existing = {
        let store = ctx.store.clone();
        blocking(move || store.held_by_key(&key.0)).await?
    };
    let subject = post
        .headers()
        .and_then(|m| m.subject())
        .map(|s| {
            s.chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        })
        .unwrap_or_default();
    let h = match existing {
        Some(h) => h,
        None => {
            let h = Held {
                token: new_token()?,
                list: list.key(),
                sender: poster.map(|a| a.to_string()).unwrap_or_default(),
                received: now,
                expires: now + list.moderation.hold_secs,
                reasons,
                subject,
                message_id: message_id.to_string(),
                state: HeldState::Held,
            };
            let (store, h2, msg) = (ctx.store.clone(), h.clone(), message.to_vec());
            let cap = list.moderation.max_held;
            if !blocking(move || store.held_put_within(&h2, &key.0, &msg, cap)).await? {
                tracing::warn!(list = %list.key(), max_held = cap, sender = %h.sender, message_id = %message_id, "moderation queue full: post deferred (452 4.2.2)");
                return Err(PostError::QueueFull(list.key()));
            }
            ctx.held_changed.notify_one();
            h
        }
    };
    if list.moderation.notify == NotifyMode::Each {
        let confirm = confirm_address(ctx, list, &h.token);
        let (headers, excerpt) = excerpt(post);
        let mut v = list_vars(list, &h.sender);
        v.insert("token", h.token.clone());
        v.insert("confirm_address", confirm.clone());
        v.insert("expires", expires_in(h.expires.saturating_sub(now)));
        v.insert("reason", h.reasons.join("; "));
        v.insert("sender", or_none(&h.sender, "sender"));
        v.insert("subject", or_none(&h.subject, "subject"));
        v.insert("headers", headers);
        v.insert("excerpt", excerpt);
        for m in &list.moderation.moderators {
            send(
                ctx,
                list,
                Kind::HeldNotice,
                &m.to_string(),
                &v,
                Some(&confirm),
                None,
            )
            .await?;
        }
    }
    if let (true, Some(p)) = (list.moderation.acknowledge, poster) {
        let allowed = {
            let (store, key, to) = (ctx.store.clone(), list.key(), p.to_string());
            let (a, l) = (
                ctx.config().requests.per_address_per_hour,
                ctx.config().requests.per_list_per_hour,
            );
            blocking(move || store.rate_allow(&key, &to, now, a, l)).await?
        };
        if allowed {
            let mut v = list_vars(list, &p.to_string());
            v.insert("reason", h.reasons.join("; "));
            v.insert("subject", or_none(&h.subject, "subject"));
            v.insert("expires", expires_in(h.expires.saturating_sub(now)));
            send(
                ctx,
                list,
                Kind::HeldAck,
                &p.to_string(),
                &v,
                None,
                (!message_id.is_empty()).then_some(message_id),
            )
            .await?;
        }
    }
    Ok(h)
}

/// Is `who` a moderator of `list`?
pub fn is_moderator(list: &ListConfig, who: &Address) -> bool {
    let k = who.key();
    list.moderation.moderators.iter().any(|m| m.key() == k)
}
