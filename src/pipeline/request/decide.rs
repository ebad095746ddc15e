//! Decisions by mail: a moderator on a held post, an owner on a join waiting for approval.

use super::Run;
use crate::notice::Kind;
use crate::pipeline::{blocking, PostError};
use crate::store::{now_secs, Completion, Decision, PendingKind};

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
        crate::pipeline::hold::decide(self.ctx, self.list, token, decision, reason, &by).await
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
