//! Confirmations: starting a change the address itself must confirm, and completing it with
//! the token (by command, by reply to `NAME-confirm+TOKEN@`).

use super::Run;
use crate::config::SubscriptionPolicy;
use crate::context::blocking;
use crate::mailer::expires_in;
use crate::notice::Kind;
use crate::outcome::PostError;
use crate::route::Role;
use crate::store::{new_token, now_secs, Budget, Completion, Decision, Pending, PendingKind};

impl Run<'_> {
    /// Begin a change that the address itself must confirm.
    pub(super) async fn start(&mut self, kind: PendingKind) -> Result<String, PostError> {
        let l = self.list.clone();
        let who = self.sender.to_string();
        let member = {
            let (store, key, who) = (self.ctx.store.clone(), l.key(), who.clone());
            blocking(move || store.member_get(&key, &who)).await?
        };
        match kind {
            PendingKind::Join if l.subscription.policy == SubscriptionPolicy::Closed => {
                return Ok(format!(
                    "This list is closed: new members are added by its owners. Write to {} if you would like to join.",
                    l.role_address("-owner")
                ));
            }
            PendingKind::Join if member.is_some() => {
                return Ok(format!(
                    "You ({who}) are already subscribed to {}.",
                    l.key()
                ))
            }
            PendingKind::Leave | PendingKind::Nomail(_) if member.is_none() => {
                return Ok(format!(
                    "You ({who}) are not subscribed to {}, so there is nothing to change.",
                    l.key()
                ))
            }
            _ => {}
        }
        let now = now_secs();
        let existing = {
            let (store, key, who) = (self.ctx.store.clone(), l.key(), who.clone());
            blocking(move || store.pending_find(&key, &who, kind, now)).await?
        };
        if let Some(p) = &existing {
            if self.confirmations.contains(&p.token) {
                // The same request twice in one mail: one confirmation is enough.
                return Ok(format!(
                    "A confirmation request for this was already sent to {who} because of this message."
                ));
            }
        }
        if !self.allow(Budget::Confirmations, &who).await? {
            return Ok(format!(
                "Too many requests for {who} this hour: no confirmation request was sent. Please try again later."
            ));
        }
        let pending = match existing {
            Some(p) => p,
            None => {
                let p = Pending {
                    token: new_token()?,
                    kind,
                    list: l.key(),
                    address: who.clone(),
                    created: now,
                    expires: now + self.ctx.config().requests.token_ttl.as_secs(),
                    used: false,
                };
                let (store, p2) = (self.ctx.store.clone(), p.clone());
                blocking(move || store.pending_create(&p2)).await?;
                p
            }
        };
        let template = match kind {
            PendingKind::Join => Kind::ConfirmJoin,
            PendingKind::Leave => Kind::ConfirmLeave,
            _ => Kind::ConfirmNomail,
        };
        let confirm_address = self.confirm_address(&pending.token);
        let mut vars = self.vars(&who);
        vars.insert("token", pending.token.clone());
        vars.insert("confirm_address", confirm_address.clone());
        vars.insert("expires", expires_in(pending.expires.saturating_sub(now)));
        if let PendingKind::Nomail(on) = kind {
            vars.insert("setting", if on { "on" } else { "off" }.to_string());
        }
        self.confirmations.push(pending.token.clone());
        self.send(template, &who, &vars, Some(confirm_address))
            .await?;
        Ok(format!(
            "A confirmation request was sent to {who}. Reply to it (or send `confirm TOKEN` to {}) to complete this; nothing changes until then.",
            l.role_address("-request")
        ))
    }

    pub(super) fn confirm_address(&self, token: &str) -> String {
        let delim = self.ctx.config().server.recipient_delimiter;
        Role::Confirm(token.to_string()).address(self.list, delim)
    }

    /// A mail to `-confirm+TOKEN@`: an owner's approval, or a member's confirmation.
    pub(super) async fn confirm_mail(&mut self, token: &str) -> Result<(), PostError> {
        let token = token.to_ascii_lowercase();
        let kind = {
            let (store, t) = (self.ctx.store.clone(), token.clone());
            blocking(move || store.pending_get(&t))
                .await?
                .map(|p| p.kind)
        };
        let line = format!("confirm {token}");
        let held = {
            let (store, t) = (self.ctx.store.clone(), token.clone());
            blocking(move || store.held_get(&t)).await?.is_some()
        };
        let res = if held {
            self.moderate(&token, Decision::Approve, "")
                .await?
                .unwrap_or_else(|| "No held post with this token is waiting on this list.".into())
        } else if kind == Some(PendingKind::Approve) {
            self.owner_decision(&token, None).await?
        } else {
            self.complete(&token, Some(line.clone())).await?
        };
        if !res.is_empty() {
            self.result(line, res);
            self.reply().await?;
        }
        Ok(())
    }

    /// Complete a member's token. From the confirm address (`direct` set), success is
    /// answered by the welcome/goodbye mail alone and an empty result is returned.
    pub(super) async fn complete(
        &mut self,
        token: &str,
        direct: Option<String>,
    ) -> Result<String, PostError> {
        let l = self.list.clone();
        let token = token.to_ascii_lowercase();
        let now = now_secs();
        let pending = {
            let (store, t) = (self.ctx.store.clone(), token.clone());
            blocking(move || store.pending_get(&t)).await?
        };
        let approval = match &pending {
            Some(p)
                if p.kind == PendingKind::Join
                    && l.subscription.policy == SubscriptionPolicy::Moderate =>
            {
                Some(Pending {
                    token: new_token()?,
                    kind: PendingKind::Approve,
                    list: l.key(),
                    address: p.address.clone(),
                    created: now,
                    expires: now + self.ctx.config().requests.token_ttl.as_secs(),
                    used: false,
                })
            }
            _ => None,
        };
        let done = {
            let (store, t, key, a) = (
                self.ctx.store.clone(),
                token.clone(),
                l.key(),
                approval.clone(),
            );
            blocking(move || store.pending_complete(&t, &key, None, now, a.as_ref())).await?
        };
        if matches!(done, Completion::Done(_) | Completion::AlreadyUsed(_)) {
            // The token was mailed to its address: whoever holds it is answered uncapped.
            self.authenticated = true;
        }
        let p = match done {
            Completion::Done(p) => {
                // The token reached p.address and came back: that address reads our mail,
                // so what it was sent this hour no longer counts against its cap.
                let (store, key, a) = (self.ctx.store.clone(), l.key(), p.address.clone());
                blocking(move || store.rate_proven(&key, &a, now)).await?;
                p
            }
            Completion::AlreadyUsed(p) => return Ok(format!("This request ({} for {}) was already confirmed; nothing more to do.", p.kind.name(), p.address)),
            Completion::Expired(_) => {
                return Ok("This confirmation has expired. Please send your request again to get a new one.".into())
            }
            Completion::Unknown => {
                return Ok("This confirmation token is unknown: it may be mistyped, or belong to another list.".into())
            }
            Completion::WrongKind(_) => return Ok("This token is for an owner's approval; owners send `approve TOKEN`.".into()),
        };
        let vars = self.vars(&p.address);
        let direct_ok = direct.is_some();
        match (p.kind, approval) {
            (PendingKind::Join, Some(a)) => {
                let confirm = self.confirm_address(&a.token);
                let mut v = self.vars(&p.address);
                v.insert("token", a.token.clone());
                v.insert("confirm_address", confirm.clone());
                v.insert("expires", expires_in(a.expires.saturating_sub(now)));
                for owner in l.owners.clone() {
                    self.send(
                        Kind::ApprovalRequest,
                        &owner.to_string(),
                        &v,
                        Some(confirm.clone()),
                    )
                    .await?;
                }
                Ok(format!("Thank you: {} is confirmed. The list owners approve new members; you will hear from us when they have decided.", p.address))
            }
            (PendingKind::Join, None) => {
                self.send(Kind::Welcome, &p.address, &vars, None).await?;
                tracing::info!(list = %l.key(), member = %p.address, "subscribed");
                Ok(if direct_ok && l.templates.get(Kind::Welcome).is_some() {
                    String::new()
                } else {
                    format!("{} is now subscribed to {}.", p.address, l.key())
                })
            }
            (PendingKind::Leave, _) => {
                self.send(Kind::Goodbye, &p.address, &vars, None).await?;
                tracing::info!(list = %l.key(), member = %p.address, "unsubscribed");
                Ok(if direct_ok && l.templates.get(Kind::Goodbye).is_some() {
                    String::new()
                } else {
                    format!("{} is no longer subscribed to {}.", p.address, l.key())
                })
            }
            (PendingKind::Nomail(on), _) => Ok(format!(
                "Delivery for {} is now {}.",
                p.address,
                if on {
                    "off (nomail on): you stay subscribed but receive no posts"
                } else {
                    "on again"
                }
            )),
            (PendingKind::Approve, _) => Ok(String::new()),
        }
    }
}
