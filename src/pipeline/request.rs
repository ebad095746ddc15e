//! Membership by email: `NAME-request@` (commands), `NAME-join@`/`-subscribe@`,
//! `NAME-leave@`/`-unsubscribe@` and `NAME-confirm+TOKEN@`.
//!
//! Every change of a member's state needs a token that was mailed to that member (double
//! opt-in), so a forged sender can at most cause a confirmation mail, and those are capped per
//! address and per list and hour. Automatic mail (RFC 3834 `Auto-Submitted`, `Precedence:
//! bulk|junk|list`, a null sender, another list's `List-Id`) is never answered. Pending
//! requests are durable before the LMTP 250; a generated mail the MTA does not accept makes the
//! reply 451 so the MTA retries, and a retry finds the same token (no second storm).
//!
//! SECURITY: everything in the message is hostile. Addresses pass `Address::parse` before they
//! reach the store or a header; quoted command lines are sanitised by the parser.

use std::sync::Arc;

use mail_parser::MessageParser;

use super::commands::{self, Command};
use super::{blocking, Context, Delivery, PostError};
use crate::address::Address;
use crate::config::{ListConfig, Roster, SubscriptionPolicy};
use crate::lmtp::reply::Reply;
use crate::notice::{Kind, Vars};
use crate::store::{now_secs, Completion, Decision, Pending, PendingKind};

/// What a mail to a membership address is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `-request`: commands in the subject and body.
    Commands,
    /// `-join`/`-subscribe`.
    Join,
    /// `-leave`/`-unsubscribe`.
    Leave,
    /// `-confirm+TOKEN`.
    Confirm(String),
    /// `-leave+MAC.LOCAL=DOMAIN`: a member's own unsubscribe address.
    Unsubscribe(String),
}

/// The parts of an incoming mail the handlers need.
struct Incoming {
    /// Who to answer and whose membership is concerned: the From address, else the envelope
    /// sender.
    sender: Option<Address>,
    subject: String,
    message_id: Option<String>,
    body: String,
    /// Why the mail is automatic, if it is.
    automatic: Option<&'static str>,
}

fn read_incoming(d: &Delivery) -> Incoming {
    let raw = super::decorate::normalize_line_endings(&d.raw);
    let msg = MessageParser::default().parse(&raw[..]);
    let header = |name: &str| {
        msg.as_ref()
            .and_then(|m| m.header_raw(name))
            .map(|v| v.trim().to_ascii_lowercase())
    };
    let automatic = if d.sender.is_empty() {
        Some("null envelope sender")
    } else if header("Auto-Submitted").is_some_and(|v| !v.starts_with("no")) {
        Some("Auto-Submitted")
    } else if header("Precedence").is_some_and(|v| matches!(v.as_str(), "bulk" | "junk" | "list")) {
        Some("Precedence")
    } else if header("List-Id").is_some() {
        Some("mail from a mailing list")
    } else {
        None
    };
    let from = msg
        .as_ref()
        .and_then(|m| m.from())
        .and_then(|f| f.first())
        .and_then(|a| a.address())
        .and_then(|a| Address::parse(a).ok());
    let sender = from.or_else(|| Address::parse(&d.sender).ok());
    let subject = msg
        .as_ref()
        .and_then(|m| m.subject())
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let body = msg
        .as_ref()
        .and_then(|m| m.body_text(0))
        .map(|b| b.chars().take(64 * 1024).collect())
        .unwrap_or_default();
    let message_id = msg
        .as_ref()
        .and_then(|m| m.message_id())
        .filter(|id| id.len() < 200 && !id.contains(['\r', '\n', '<', '>']))
        .map(str::to_string);
    Incoming {
        sender,
        subject,
        message_id,
        body,
        automatic,
    }
}

/// A fresh token: 160 random bits, lowercase hex (addresses are case-insensitive). The store
/// reads the first 8 digits as a public lookup id and the other 32 (128 bits) as the secret
/// (`store::token`), so all 40 digits must stay random.
pub(crate) fn new_token() -> Result<String, PostError> {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|e| PostError::Store(format!("no randomness: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Handle one mail to a membership address of `list`.
pub async fn handle(ctx: &Context, list: &Arc<ListConfig>, d: &Delivery, action: &Action) -> Reply {
    crate::stats::REQUESTS.inc();
    let inc = read_incoming(d);
    let log_ctx = |outcome: &str, detail: &str| {
        tracing::info!(
            session = d.session, list = %list.key(), action = ?action, sender = %inc.sender.as_ref().map(|a| a.to_string()).unwrap_or_default(),
            outcome, detail, "request"
        );
    };
    if let Some(why) = inc.automatic {
        log_ctx("ignored", why);
        return Reply::ok("automatic mail is not answered");
    }
    let Some(sender) = inc.sender.clone() else {
        log_ctx("ignored", "no usable sender address");
        return Reply::ok("no usable sender address; nothing to answer");
    };
    let mut r = Run {
        ctx,
        list,
        inc: &inc,
        sender,
        results: Vec::new(),
        sent: 0,
        operator: false,
    };
    let outcome = match action {
        Action::Commands => r.commands().await,
        Action::Join => r.direct(PendingKind::Join).await,
        Action::Leave => r.direct(PendingKind::Leave).await,
        Action::Confirm(token) => r.confirm_mail(token).await,
        Action::Unsubscribe(ext) => r.unsubscribe(ext).await,
    };
    match outcome {
        Ok(Done::Answered) => {
            log_ctx("answered", &format!("{} mail(s) sent", r.sent));
            Reply::ok("request handled")
        }
        Ok(Done::Throttled) => {
            log_ctx(
                "dropped",
                "over the hourly cap of mails to this address or list",
            );
            Reply::ok("request dropped: too many requests, try again later")
        }
        Err(e) => {
            tracing::warn!(session = d.session, list = %list.key(), error = %e, "request not completed");
            crate::lmtp::reply::reply_for(&e)
        }
    }
}

/// The operator's `listkeeper pending approve|reject`: decide an approval request as an owner
/// would, telling the subscriber. Returns the sentence for the operator.
pub async fn operator_decision(
    ctx: &Context,
    list: &Arc<ListConfig>,
    token: &str,
    reject: Option<String>,
) -> Result<String, PostError> {
    let inc = Incoming {
        sender: None,
        subject: String::new(),
        message_id: None,
        body: String::new(),
        automatic: None,
    };
    let sender = list
        .owners
        .first()
        .cloned()
        .ok_or_else(|| PostError::Store("the list has no owner".into()))?;
    let mut r = Run {
        ctx,
        list,
        inc: &inc,
        sender,
        results: Vec::new(),
        sent: 0,
        operator: true,
    };
    r.owner_decision(token, reject).await
}

enum Done {
    Answered,
    Throttled,
}

/// One request mail being handled: what was done, to be reported in one reply.
struct Run<'a> {
    ctx: &'a Context,
    list: &'a Arc<ListConfig>,
    inc: &'a Incoming,
    sender: Address,
    /// (command as written, result sentence)
    results: Vec<(String, String)>,
    sent: usize,
    /// The server's operator (CLI), who may decide like an owner.
    operator: bool,
}

impl Run<'_> {
    fn vars(&self, address: &str) -> Vars {
        let mut v = super::hold::list_vars(self.list, address);
        // The reply template adds its own "Re: ": drop the ones the subject already has.
        let mut subject = self.inc.subject.trim();
        while let Some(rest) = subject
            .get(..3)
            .filter(|p| p.eq_ignore_ascii_case("re:"))
            .and_then(|_| subject.get(3..))
        {
            subject = rest.trim_start();
        }
        let subject = if subject.is_empty() {
            "your commands".to_string()
        } else {
            subject.to_string()
        };
        v.insert("subject", subject);
        v
    }

    /// The hourly cap: one unit per mail we are about to send to `to`.
    async fn allow(&self, to: &str) -> Result<bool, PostError> {
        let (store, list, to) = (self.ctx.store.clone(), self.list.key(), to.to_string());
        let (a, l) = (
            self.ctx.config().requests.per_address_per_hour,
            self.ctx.config().requests.per_list_per_hour,
        );
        blocking(move || store.rate_allow(&list, &to, now_secs(), a, l)).await
    }

    /// Render `kind` with `vars` and send it to `to`; a template switched off sends nothing.
    async fn send(
        &mut self,
        kind: Kind,
        to: &str,
        vars: &Vars,
        reply_to: Option<String>,
    ) -> Result<(), PostError> {
        let in_reply_to = self.inc.message_id.as_deref();
        if super::hold::send_notice(
            self.ctx,
            self.list,
            kind,
            to,
            vars,
            reply_to.as_deref(),
            in_reply_to,
        )
        .await?
        {
            self.sent += 1;
        }
        Ok(())
    }

    fn result(&mut self, line: impl Into<String>, text: impl Into<String>) {
        self.results.push((line.into(), text.into()));
    }

    /// Send the one reply that lists every command with its result.
    async fn reply(&mut self) -> Result<(), PostError> {
        let mut text = String::new();
        for (line, result) in &self.results {
            if !line.is_empty() {
                text.push_str(&format!("> {line}\n"));
            }
            text.push_str(result);
            text.push_str("\n\n");
        }
        let mut vars = self.vars(&self.sender.to_string());
        vars.insert("results", text.trim_end().to_string());
        let to = self.sender.to_string();
        self.send(Kind::CommandResults, &to, &vars, None).await
    }

    async fn commands(&mut self) -> Result<Done, PostError> {
        if !self.allow(&self.sender.to_string()).await? {
            return Ok(Done::Throttled);
        }
        let max = self.ctx.config().requests.max_commands;
        let parsed = commands::parse(Some(&self.inc.subject), &self.inc.body, max);
        if parsed.lines.is_empty() {
            self.result(
                "",
                "No command was found in your message. Send `help` for the list of commands.",
            );
        }
        for line in &parsed.lines {
            let text = line.text.clone();
            match &line.parsed {
                Err(why) => self.result(text, why.clone()),
                Ok(cmd) => {
                    let res = self.command(cmd).await?;
                    self.result(text, res);
                }
            }
        }
        if parsed.ignored > 0 {
            self.result(
                "",
                format!(
                    "{} more command(s) were ignored: at most {max} are read from one message.",
                    parsed.ignored
                ),
            );
        }
        self.reply().await?;
        Ok(Done::Answered)
    }

    async fn command(&mut self, cmd: &Command) -> Result<String, PostError> {
        Ok(match cmd {
            Command::Join { digest: Some(_) } => "Digest delivery is not available on this server yet; send `join` without `digest=`.".into(),
            Command::Join { digest: None } => self.start(PendingKind::Join).await?,
            Command::Leave => self.start(PendingKind::Leave).await?,
            Command::SetNomail(on) => self.start(PendingKind::Nomail(*on)).await?,
            Command::Confirm(token) => self.complete(token, None).await?,
            Command::Approve(token) => match self.moderate(token, Decision::Approve, "").await? {
                Some(s) => s,
                None => self.owner_decision(token, None).await?,
            },
            Command::Reject { token, reason } => match self.moderate(token, Decision::Reject, reason).await? {
                Some(s) => s,
                None => self.owner_decision(token, Some(reason.clone())).await?,
            },
            Command::Discard(token) => match self.moderate(token, Decision::Discard, "").await? {
                Some(s) => s,
                None => "No held post with this token is waiting on this list.".into(),
            },
            Command::Help => help_text(self.list),
            Command::Info => self.info(),
            Command::Who => self.who().await?,
        })
    }

    /// `-join@` / `-leave@`: the same as the command, answered by the confirmation mail alone
    /// (or by a reply when nothing was sent).
    async fn direct(&mut self, kind: PendingKind) -> Result<Done, PostError> {
        if !self.allow(&self.sender.to_string()).await? {
            return Ok(Done::Throttled);
        }
        let sent_before = self.sent;
        let word = if kind == PendingKind::Join {
            "join"
        } else {
            "leave"
        };
        let res = self.start(kind).await?;
        if self.sent == sent_before {
            self.result(word, res);
            self.reply().await?;
        }
        Ok(Done::Answered)
    }

    /// A member's own unsubscribe address: the MAC in it proves it came from that member's
    /// copy, so the member leaves at once; a wrong MAC falls back to the confirmed `leave`.
    async fn unsubscribe(&mut self, ext: &str) -> Result<Done, PostError> {
        let Some(member) =
            super::personal::verify_unsubscribe(self.list, self.ctx.store.secret(), ext)
        else {
            tracing::info!(list = %self.list.key(), sender = %self.sender, "unsubscribe address with a wrong token; asking for confirmation");
            return self.direct(PendingKind::Leave).await;
        };
        if !self.allow(&member).await? {
            return Ok(Done::Throttled);
        }
        let Ok(addr) = Address::parse(&member) else {
            return Ok(Done::Answered);
        };
        let removed = {
            let (store, key) = (self.ctx.store.clone(), self.list.key());
            blocking(move || store.remove_members(&key, &[addr]))
                .await?
                .changed
        };
        if removed > 0 {
            tracing::info!(list = %self.list.key(), member = %member, "unsubscribed by its own unsubscribe address");
            let vars = self.vars(&member);
            self.send(Kind::Goodbye, &member, &vars, None).await?;
        }
        Ok(Done::Answered)
    }

    /// Begin a change that the address itself must confirm.
    async fn start(&mut self, kind: PendingKind) -> Result<String, PostError> {
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
        vars.insert("expires", human_ttl(pending.expires.saturating_sub(now)));
        if let PendingKind::Nomail(on) = kind {
            vars.insert("setting", if on { "on" } else { "off" }.to_string());
        }
        self.send(template, &who, &vars, Some(confirm_address))
            .await?;
        Ok(format!(
            "A confirmation request was sent to {who}. Reply to it (or send `confirm TOKEN` to {}) to complete this; nothing changes until then.",
            l.role_address("-request")
        ))
    }

    fn confirm_address(&self, token: &str) -> String {
        let delim = self.ctx.config().server.recipient_delimiter;
        format!(
            "{}-confirm{delim}{token}@{}",
            self.list.name,
            self.list.address.domain()
        )
    }

    /// A mail to `-confirm+TOKEN@`: an owner's approval, or a member's confirmation.
    async fn confirm_mail(&mut self, token: &str) -> Result<Done, PostError> {
        if !self.allow(&self.sender.to_string()).await? {
            return Ok(Done::Throttled);
        }
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
        Ok(Done::Answered)
    }

    /// Complete a member's token. From the confirm address (`direct` set), success is
    /// answered by the welcome/goodbye mail alone and an empty result is returned.
    async fn complete(&mut self, token: &str, direct: Option<String>) -> Result<String, PostError> {
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
        let p = match done {
            Completion::Done(p) => p,
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
                v.insert("expires", human_ttl(a.expires.saturating_sub(now)));
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

    /// A moderator's decision on a held post; `None` if `token` is not a held post.
    async fn moderate(
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
        if !self.operator && !super::hold::is_moderator(self.list, &self.sender) {
            tracing::warn!(list = %self.list.key(), sender = %self.sender, "moderation attempted by a non-moderator");
            return Ok(Some(
                "Only the moderators of this list may decide on held posts.".into(),
            ));
        }
        let by = self.sender.to_string();
        super::hold::decide(self.ctx, self.list, token, decision, reason, &by).await
    }

    /// `approve TOKEN` / `reject TOKEN reason` / a reply to an approval request.
    async fn owner_decision(
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

    fn info(&self) -> String {
        let l = self.list;
        let posting = match l.posting.policy {
            crate::config::PostingPolicy::Open => "anyone may post",
            crate::config::PostingPolicy::Members => "members may post",
            crate::config::PostingPolicy::Moderated => "every post is reviewed by a moderator",
            crate::config::PostingPolicy::Announce => "only designated posters may post",
        };
        let joining = match l.subscription.policy {
            SubscriptionPolicy::Open => "anyone may join after confirming their address",
            SubscriptionPolicy::Moderate => "the owners approve new members",
            SubscriptionPolicy::Closed => "the owners add new members",
        };
        format!(
            "{} <{}>\n{}\nPosting: {posting}. Joining: {joining}.\nOwners: {}",
            if l.display_name.is_empty() {
                &l.name
            } else {
                &l.display_name
            },
            l.key(),
            l.description,
            l.role_address("-owner")
        )
    }

    async fn who(&self) -> Result<String, PostError> {
        let l = self.list;
        let is_owner = l.owners.iter().any(|o| o.key() == self.sender.key());
        let allowed = match l.subscription.roster {
            Roster::Nobody => false,
            Roster::Owners => is_owner,
            Roster::Members => {
                is_owner || {
                    let (store, key, who) =
                        (self.ctx.store.clone(), l.key(), self.sender.to_string());
                    blocking(move || store.member_get(&key, &who))
                        .await?
                        .is_some()
                }
            }
        };
        if !allowed {
            return Ok("The member roster of this list is not available to you.".into());
        }
        const MAX: usize = 5000;
        let (store, key) = (self.ctx.store.clone(), l.key());
        let members = blocking(move || store.members_after(&key, None, MAX + 1)).await?;
        let mut out = format!("Members of {}:\n", l.key());
        for m in members.iter().take(MAX) {
            out.push_str(&m.address);
            out.push('\n');
        }
        if members.len() > MAX {
            out.push_str(&format!("(only the first {MAX} are listed)\n"));
        }
        Ok(out.trim_end().to_string())
    }
}

/// "in 3 days", "in 5 hours", "in 40 minutes" (the templates say "expires {expires}").
fn human_ttl(secs: u64) -> String {
    match secs {
        s if s >= 2 * 86_400 => format!("in {} days", s / 86_400),
        s if s >= 2 * 3600 => format!("in {} hours", s / 3600),
        s => format!("in {} minutes", (s / 60).max(1)),
    }
}

/// The answer to `help`.
pub fn help_text(list: &ListConfig) -> String {
    let req = list.role_address("-request");
    format!(
        "Commands for {list}, sent to {req} in the subject or the body (one per line):\n\
         \n  join             subscribe the address you write from (you will be asked to confirm)\
         \n  leave            unsubscribe (you will be asked to confirm)\
         \n  confirm TOKEN    complete a request; replying to the confirmation mail does the same\
         \n  set nomail on    stay subscribed but receive no posts (`set nomail off` to resume)\
         \n  info             about this list\
         \n  who              the member roster, where the list allows it\
         \n  help             this text\
         \n  end              stop reading here (a signature after \"-- \" is ignored too)\
         \n\nYou can also write to {join} to join and to {leave} to leave. The owners are at {owner}.",
        list = list.key(),
        join = list.role_address("-join"),
        leave = list.role_address("-leave"),
        owner = list.role_address("-owner"),
    )
}

#[cfg(test)]
mod tests {
    use super::new_token;

    #[test]
    fn tokens_are_160_random_bits() {
        let tokens: Vec<String> = (0..2000).map(|_| new_token().expect("token")).collect();
        let mut ones = [0u32; 160];
        for t in &tokens {
            assert_eq!(t.len(), 40, "{t}");
            assert!(crate::store::token_well_formed(t), "{t}");
            for (i, c) in t.chars().enumerate() {
                let v = c.to_digit(16).expect("lowercase hex");
                assert!(!c.is_ascii_uppercase(), "{t}");
                for b in 0..4 {
                    ones[i * 4 + b] += (v >> (3 - b)) & 1;
                }
            }
        }
        let distinct: std::collections::HashSet<&String> = tokens.iter().collect();
        assert_eq!(distinct.len(), tokens.len());
        // Every bit is set in about half of the tokens (1000, standard deviation 22): a
        // constant or partly constant source fails this, chance never does.
        for (bit, n) in ones.iter().enumerate() {
            assert!((800..=1200).contains(n), "bit {bit} set in {n} of 2000");
        }
    }
}
