//! Membership by email: `NAME-request@` (commands), `NAME-join@`/`-subscribe@`,
//! `NAME-leave@`/`-unsubscribe@` and `NAME-confirm+TOKEN@`.
//!
//! Every change of a member's state needs a token that was mailed to that member (double
//! opt-in), so a forged sender can at most cause a confirmation mail. What is asked is always
//! processed; the hourly caps are on the mail that unauthenticated requests make listkeeper
//! send (confirmation requests and replies, per address and per list), never on completing a
//! valid token, a moderator's or owner's decision or a member's own unsubscribe address, nor
//! on the mails those cause. One request mail sends at most one confirmation per token. Automatic mail (RFC 3834 `Auto-Submitted`, `Precedence:
//! bulk|junk|list`, a null sender, another list's `List-Id`, a vacation reply known by
//! `X-Autoreply` and kin or by its subject) is neither answered nor obeyed. Pending
//! requests are durable before the LMTP 250; a generated mail the MTA does not accept makes the
//! reply 451 so the MTA retries, and a retry finds the same token (no second storm).
//!
//! SECURITY: everything in the message is hostile. Addresses pass `Address::parse` before they
//! reach the store or a header; quoted command lines are sanitised by the parser.

use std::sync::Arc;

pub mod commands;
mod confirm;
pub mod decide;
mod info;

pub use decide::held_decision;
pub use info::help_text;

use crate::address::Address;
use crate::config::ListConfig;
use crate::context::{blocking, Context, Delivery};
use crate::notice::{Kind, Vars};
use crate::outcome::{Outcome, PostError};
use crate::store::{now_secs, Budget, Decision, PendingKind};
use commands::Command;

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
    let raw = crate::mime::normalize_line_endings(&d.raw);
    let msg = crate::mime::parse(&raw[..]);
    let header = |name: &str| {
        msg.as_ref()
            .and_then(|m| m.header_raw(name))
            .map(|v| v.trim().to_ascii_lowercase())
    };
    let automatic = if d.sender.is_null() {
        Some("null envelope sender")
    } else if header("Auto-Submitted").is_some_and(|v| !v.starts_with("no")) {
        Some("Auto-Submitted")
    } else if header("Precedence").is_some_and(|v| matches!(v.as_str(), "bulk" | "junk" | "list")) {
        Some("Precedence")
    } else if header("List-Id").is_some() {
        Some("mail from a mailing list")
    } else if msg
        .as_ref()
        .is_some_and(|m| crate::bounce::is_auto_reply_to_us(m, m.subject().unwrap_or("")))
    {
        // A vacation program that sets no Auto-Submitted (X-Autoreply, "Out of office: ..."):
        // its reply to a confirmation must not confirm a join someone else asked for.
        Some("auto-reply")
    } else {
        None
    };
    let from = msg
        .as_ref()
        .and_then(|m| m.from())
        .and_then(|f| f.first())
        .and_then(|a| a.address())
        .and_then(|a| Address::parse(a).ok());
    let sender = from.or_else(|| d.sender.address());
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

/// Handle one mail to a membership address of `list`.
pub async fn handle(
    ctx: &Context,
    list: &Arc<ListConfig>,
    d: &Delivery,
    action: &Action,
) -> Result<Outcome, PostError> {
    crate::stats::REQUESTS.inc();
    let inc = read_incoming(d);
    let log_ctx = |outcome: &str, detail: &str| {
        tracing::info!(
            session = d.session, id = %d.id, list = %list.key(), action = ?action, sender = %inc.sender.as_ref().map(|a| a.to_string()).unwrap_or_default(),
            outcome, detail, "request"
        );
    };
    if let Some(why) = inc.automatic {
        log_ctx("ignored", why);
        return Ok(Outcome::RequestIgnored("automatic mail is not answered"));
    }
    let Some(sender) = inc.sender.clone() else {
        log_ctx("ignored", "no usable sender address");
        return Ok(Outcome::RequestIgnored(
            "no usable sender address; nothing to answer",
        ));
    };
    let mut r = Run::new(ctx, list, &inc, sender, false);
    let outcome = match action {
        Action::Commands => r.commands().await,
        Action::Join => r.direct(PendingKind::Join).await,
        Action::Leave => r.direct(PendingKind::Leave).await,
        Action::Confirm(token) => r.confirm_mail(token).await,
        Action::Unsubscribe(ext) => r.unsubscribe(ext).await,
    };
    match outcome {
        Ok(()) if r.capped > 0 => {
            log_ctx(
                "answered",
                &format!(
                    "{} mail(s) sent, {} not sent: over the hourly cap of mails to this address or list",
                    r.sent, r.capped
                ),
            );
            Ok(Outcome::RequestHandled)
        }
        Ok(()) => {
            log_ctx("answered", &format!("{} mail(s) sent", r.sent));
            Ok(Outcome::RequestHandled)
        }
        Err(e) => {
            tracing::warn!(session = d.session, id = %d.id, list = %list.key(), error = %e, "request not completed");
            Err(e)
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
    let mut r = Run::new(ctx, list, &inc, sender, true);
    r.owner_decision(token, reject).await
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
    /// Mails not sent because of the hourly caps.
    capped: usize,
    /// The server's operator (CLI), who may decide like an owner.
    operator: bool,
    /// A secret token or unsubscribe MAC in this mail was valid: its sender holds mail
    /// listkeeper sent, so the reply is not capped.
    authenticated: bool,
    /// Tokens whose confirmation request this mail already sent.
    confirmations: Vec<String>,
}

impl<'a> Run<'a> {
    fn new(
        ctx: &'a Context,
        list: &'a Arc<ListConfig>,
        inc: &'a Incoming,
        sender: Address,
        operator: bool,
    ) -> Run<'a> {
        Run {
            ctx,
            list,
            inc,
            sender,
            results: Vec::new(),
            sent: 0,
            capped: 0,
            operator,
            authenticated: operator,
            confirmations: Vec::new(),
        }
    }

    fn vars(&self, address: &str) -> Vars {
        let mut v = crate::mailer::list_vars(self.list, address);
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

    /// The hourly cap: one unit of `budget` per mail we are about to send to `to`. A mail it
    /// refuses is counted in `capped` and logged.
    async fn allow(&mut self, budget: Budget, to: &str) -> Result<bool, PostError> {
        let (store, list, addr) = (self.ctx.store.clone(), self.list.key(), to.to_string());
        let (a, l) = (
            self.ctx.config().requests.per_address_per_hour,
            self.ctx.config().requests.per_list_per_hour,
        );
        let allowed =
            blocking(move || store.rate_allow_in(budget, &list, &addr, now_secs(), a, l)).await?;
        if !allowed {
            self.capped += 1;
            tracing::info!(list = %self.list.key(), to = %to, budget = ?budget, "mail not sent: over the hourly cap");
        }
        Ok(allowed)
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
        if crate::mailer::send(
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

    /// Send the one reply that lists every command with its result (within the hourly caps,
    /// unless the mail carried a valid token).
    async fn reply(&mut self) -> Result<(), PostError> {
        let to = self.sender.to_string();
        if !self.authenticated && !self.allow(Budget::Replies, &to).await? {
            return Ok(());
        }
        let mut text = String::new();
        for (line, result) in &self.results {
            if !line.is_empty() {
                text.push_str(&format!("> {line}\n"));
            }
            text.push_str(result);
            text.push_str("\n\n");
        }
        let mut vars = self.vars(&to);
        vars.insert("results", text.trim_end().to_string());
        self.send(Kind::CommandResults, &to, &vars, None).await
    }

    async fn commands(&mut self) -> Result<(), PostError> {
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
        self.reply().await
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
            Command::Help => help_text(
                self.list,
                crate::pipeline::hold::is_moderator(self.list, &self.sender)
                    || self.list.owners.iter().any(|o| o.key() == self.sender.key()),
            ),
            Command::Info => self.info(),
            Command::Who => self.who().await?,
        })
    }

    /// `-join@` / `-leave@`: the same as the command, answered by the confirmation mail alone
    /// (or by a reply when nothing was sent).
    async fn direct(&mut self, kind: PendingKind) -> Result<(), PostError> {
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
        Ok(())
    }

    /// A member's own unsubscribe address: the MAC in it proves it came from that member's
    /// copy, so the member leaves at once; a wrong MAC falls back to the confirmed `leave`.
    async fn unsubscribe(&mut self, ext: &str) -> Result<(), PostError> {
        let Some(member) =
            crate::pipeline::personal::verify_unsubscribe(self.list, self.ctx.store.secret(), ext)
        else {
            tracing::info!(list = %self.list.key(), sender = %self.sender, "unsubscribe address with a wrong token; asking for confirmation");
            return self.direct(PendingKind::Leave).await;
        };
        // The MAC proves the mail came from that member's own copy: never capped.
        self.authenticated = true;
        let Ok(addr) = Address::parse(&member) else {
            return Ok(());
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::new_token;

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
