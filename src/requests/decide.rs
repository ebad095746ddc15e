//! Decisions: a moderator on a held post (by mail, or the operator through the control
//! socket), an owner on a join waiting for approval. An approved post resumes its journey
//! with `pipeline::post::distribute`.

use std::sync::Arc;

use super::Run;
use crate::config::ListConfig;
use crate::context::{blocking, Context};
use crate::mailer::{list_vars, or_none, send};
use crate::mime::normalize_line_endings;
use crate::notice::Kind;
use crate::outcome::PostError;
use crate::pipeline::post::{distribute, Post};
use crate::store::{now_secs, Completion, Decided, Decision, PendingKind};

impl Run<'_> {
    /// A moderator's decision on a held post; `None` if `token` is not a held post.
    pub(super) async fn moderate(
        &mut self,
        token: &str,
        decision: Decision,
        reason: &str,
    ) -> Result<Option<String>, PostError> {
        let is_held = {
            let (store, t) = (self.ctx.store.clone(), token.to_ascii_lowercase());
            blocking(move || store.held_get(&t)).await?.is_some()
        };
        if !is_held {
            return Ok(None);
        }
        if !self.operator && !crate::pipeline::hold::is_moderator(self.list, &self.sender) {
            tracing::warn!(list = %self.list.key(), sender = %self.sender, "moderation attempted by a non-moderator");
            return Ok(Some(
                "Only the moderators of this list may decide on held posts.".into(),
            ));
        }
        // A moderator with the held post's secret token: never capped.
        self.authenticated = true;
        let by = self.sender.to_string();
        held_decision(self.ctx, self.list, token, decision, reason, &by).await
    }

    /// `approve TOKEN` / `reject TOKEN reason` / a reply to an approval request.
    pub(super) async fn owner_decision(
        &mut self,
        token: &str,
        reject: Option<String>,
    ) -> Result<String, PostError> {
        let l = self.list.clone();
        if !self.operator && !l.owners.iter().any(|o| o.key() == self.sender.key()) {
            tracing::warn!(list = %l.key(), sender = %self.sender, "approval attempted by a non-owner");
            return Ok("Only the owners of this list may approve or reject requests.".into());
        }
        let token = token.to_ascii_lowercase();
        let now = now_secs();
        let done = if reject.is_some() {
            let (store, t, key) = (self.ctx.store.clone(), token.clone(), l.key());
            blocking(move || store.pending_reject(&t, &key, now)).await?
        } else {
            let (store, t, key) = (self.ctx.store.clone(), token.clone(), l.key());
            blocking(move || {
                store.pending_complete(&t, &key, Some(PendingKind::Approve), now, None)
            })
            .await?
        };
        if !matches!(done, Completion::Unknown | Completion::WrongKind(_)) {
            // An owner with the approval's secret token: never capped.
            self.authenticated = true;
        }
        let p = match done {
            Completion::Done(p) => p,
            Completion::AlreadyUsed(p) => {
                return Ok(format!("The request of {} was already decided.", p.address))
            }
            Completion::Expired(p) => {
                return Ok(format!("The request of {} has expired.", p.address))
            }
            Completion::Unknown | Completion::WrongKind(_) => {
                return Ok("No approval request with this token is waiting on this list.".into())
            }
        };
        let mut vars = self.vars(&p.address);
        match reject {
            None => {
                tracing::info!(list = %l.key(), member = %p.address, owner = %self.sender, "subscription approved");
                if l.templates.get(Kind::Welcome).is_some() {
                    self.send(Kind::Welcome, &p.address, &vars, None).await?;
                } else {
                    self.send(Kind::ApprovalGranted, &p.address, &vars, None)
                        .await?;
                }
                Ok(format!(
                    "Approved: {} is now subscribed to {}.",
                    p.address,
                    l.key()
                ))
            }
            Some(reason) => {
                tracing::info!(list = %l.key(), member = %p.address, owner = %self.sender, "subscription rejected");
                let reason = if reason.trim().is_empty() {
                    "No reason was given.".to_string()
                } else {
                    reason
                };
                vars.insert("reason", reason);
                self.send(Kind::ApprovalRejected, &p.address, &vars, None)
                    .await?;
                Ok(format!("Rejected: {} was told.", p.address))
            }
        }
    }
}

/// A moderator's decision on a held post; `None` when `token` is not a held post of this list
/// (it may be a subscription token). The returned sentence is for the moderator.
pub async fn held_decision(
    ctx: &Context,
    list: &Arc<ListConfig>,
    token: &str,
    decision: Decision,
    reason: &str,
    by: &str,
) -> Result<Option<String>, PostError> {
    let token = token.to_ascii_lowercase();
    let decided = {
        let (store, t, k) = (ctx.store.clone(), token.clone(), list.key());
        blocking(move || store.held_decide(&t, &k, decision)).await?
    };
    let (h, resume) = match decided {
        Decided::Unknown => return Ok(None),
        Decided::Already(h) => {
            return Ok(Some(format!(
                "This post ({}) was already {}.",
                quote(&h.subject),
                h.state.name()
            )))
        }
        Decided::Now(h) => (h, false),
        Decided::Resume(h) => (h, true),
    };
    tracing::info!(list = %list.key(), token = %h.token, decision = ?decision, by, resume, "moderation decision");
    match decision {
        Decision::Approve => {
            let message = {
                let (store, t) = (ctx.store.clone(), h.token.clone());
                blocking(move || store.held_message(&t)).await?
            };
            let Some(message) = message else {
                return Ok(Some(
                    "The post's text is no longer stored; it cannot be distributed.".into(),
                ));
            };
            let started = std::time::Instant::now();
            let bytes = normalize_line_endings(&message);
            let stats = distribute(ctx, list, &Post::new(&message, &bytes)).await?;
            tracing::info!(
                list = %list.key(), message_id = %h.message_id, sender = %h.sender, members = stats.members,
                copies = stats.accepted, refused = stats.refused, skipped = stats.skipped, batches = stats.batches,
                journal_lag_ms = stats.journal_lag_ms, outcome = "distributed", approved_by = by, ms = format_args!("{:.1}", started.elapsed().as_secs_f64() * 1000.0), "post"
            );
            let (store, t) = (ctx.store.clone(), h.token.clone());
            blocking(move || store.held_done(&t, now_secs())).await?;
            Ok(Some(format!(
                "Approved: {} was distributed to {} member(s).",
                quote(&h.subject),
                stats.accepted
            )))
        }
        Decision::Reject => {
            if !h.sender.is_empty() {
                let mut v = list_vars(list, &h.sender);
                v.insert(
                    "reason",
                    if reason.trim().is_empty() {
                        "(none given)".into()
                    } else {
                        reason.to_string()
                    },
                );
                v.insert("subject", or_none(&h.subject, "subject"));
                let in_reply = (!h.message_id.is_empty()).then_some(h.message_id.as_str());
                send(ctx, list, Kind::PostRejected, &h.sender, &v, None, in_reply).await?;
            }
            Ok(Some(format!(
                "Rejected: {}; the poster was told.",
                quote(&h.subject)
            )))
        }
        Decision::Discard => Ok(Some(format!("Discarded: {}.", quote(&h.subject)))),
    }
}

fn quote(subject: &str) -> String {
    if subject.is_empty() {
        "the post without subject".into()
    } else {
        format!("\"{subject}\"")
    }
}
