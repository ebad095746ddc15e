//! The held queue in motion: holding a post (durably, before the 250), telling moderators and
//! the poster, a moderator's decision, distributing an approved post exactly once, and the
//! deadline task that expires held posts and sends summaries.
//!
//! SECURITY: only a moderator's address may decide (an attempt by anyone else is refused and
//! logged); the token (160 random bits) is the secret that makes a forged moderator address
//! useless without the notice.

use std::sync::Arc;
use std::time::Duration;

use super::request::new_token;
use super::{blocking, decorate, fanout, Context, PostError};
use crate::address::Address;
use crate::config::delivery::DeliveryMode;
use crate::config::moderation::NotifyMode;
use crate::config::ListConfig;
use crate::notice::{self, Kind, Vars};
use crate::reinject::{RcptStatus, Wire};
use crate::store::{now_secs, Decided, Decision, Held, HeldState, JournalKey};

/// How many expired posts one wake-up handles.
const EXPIRE_BATCH: usize = 100;

/// Common placeholder values for the mails of `list`.
pub fn list_vars(list: &ListConfig, address: &str) -> Vars {
    let mut v = Vars::new();
    v.insert("list_address", list.key());
    v.insert("list_name", list.name.clone());
    v.insert("display_name", list.display_name.clone());
    v.insert("description", list.description.clone());
    v.insert("request_address", list.role_address("-request"));
    v.insert("owner_address", list.role_address("-owner"));
    v.insert("address", address.to_string());
    v
}

/// Send a generated mail of `kind` to `to`; a template switched off sends nothing. The MTA
/// refusing the address (5xx) is logged, deferring it is an error (the caller answers 4xx).
pub async fn send_notice(
    ctx: &Context,
    list: &ListConfig,
    kind: Kind,
    to: &str,
    vars: &Vars,
    reply_to: Option<&str>,
    in_reply_to: Option<&str>,
) -> Result<bool, PostError> {
    let Some(t) = list.templates.get(kind) else {
        return Ok(false);
    };
    let subject = notice::render(&t.subject, vars);
    let body = notice::render(&t.body, vars);
    let from = list.role_address("-request");
    let auto = match kind {
        Kind::HeldNotice | Kind::HeldSummary | Kind::ApprovalRequest | Kind::HeldExpired => {
            "auto-generated"
        }
        _ => "auto-replied",
    };
    let n = notice::Notice {
        from_name: &list.display_name,
        from: &from,
        to,
        reply_to,
        in_reply_to,
        auto_submitted: auto,
        list_id: &list.decoration.list_id,
        subject: &subject,
        body: &body,
        domain: list.address.domain(),
    };
    let bytes = notice::build(&n).map_err(|e| {
        tracing::error!(list = %list.key(), kind = kind.key(), error = %e, "could not build a generated mail");
        PostError::Unparseable
    })?;
    let wire = Arc::new(Wire::new(&bytes));
    match ctx
        .pool
        .send(list.bounces_address(), vec![to.to_string()], wire)
        .await?
        .first()
    {
        Some(RcptStatus::Accepted) => Ok(true),
        Some(RcptStatus::Refused(why)) => {
            tracing::info!(list = %list.key(), to, reply = %why, kind = kind.key(), "generated mail refused by the MTA");
            Ok(false)
        }
        Some(RcptStatus::Deferred(why)) => Err(PostError::MtaDeferred(why.clone())),
        None => Err(PostError::MtaDeferred("no reply for the recipient".into())),
    }
}

/// The confirm address that carries `token`.
pub fn confirm_address(ctx: &Context, list: &ListConfig, token: &str) -> String {
    let delim = ctx.config().server.recipient_delimiter;
    format!(
        "{}-confirm{delim}{token}@{}",
        list.name,
        list.address.domain()
    )
}

fn human_in(secs: u64) -> String {
    match secs {
        s if s >= 2 * 86_400 => format!("in {} days", s / 86_400),
        s if s >= 2 * 3600 => format!("in {} hours", s / 3600),
        s => format!("in {} minutes", (s / 60).max(1)),
    }
}

/// What the moderators see of a post: a few headers and the first lines of its text.
fn excerpt(message: &[u8]) -> (String, String) {
    let msg = crate::mime::parse(message);
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

/// Hold `message` (already filtered) for the moderators; idempotent per post, so a retried
/// delivery finds the first hold and only repeats what did not go out.
pub async fn hold(
    ctx: &Context,
    list: &Arc<ListConfig>,
    raw: &[u8],
    message: &[u8],
    reasons: Vec<String>,
    poster: Option<&Address>,
    message_id: &str,
) -> Result<Held, PostError> {
    let key = JournalKey::new(&list.key(), message_id, raw);
    let now = now_secs();
    let existing = {
        let store = ctx.store.clone();
        blocking(move || store.held_by_key(&key.0)).await?
    };
    let subject = {
        let m = mail_parser::MessageParser::new().parse_headers(message);
        m.and_then(|m| {
            m.subject().map(|s| {
                s.chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            })
        })
        .unwrap_or_default()
    };
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
        let (headers, excerpt) = excerpt(message);
        let mut v = list_vars(list, &h.sender);
        v.insert("token", h.token.clone());
        v.insert("confirm_address", confirm.clone());
        v.insert("expires", human_in(h.expires.saturating_sub(now)));
        v.insert("reason", h.reasons.join("; "));
        v.insert(
            "sender",
            if h.sender.is_empty() {
                "(no sender)".into()
            } else {
                h.sender.clone()
            },
        );
        v.insert(
            "subject",
            if h.subject.is_empty() {
                "(no subject)".into()
            } else {
                h.subject.clone()
            },
        );
        v.insert("headers", headers);
        v.insert("excerpt", excerpt);
        for m in &list.moderation.moderators {
            send_notice(
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
            v.insert(
                "subject",
                if h.subject.is_empty() {
                    "(no subject)".into()
                } else {
                    h.subject.clone()
                },
            );
            v.insert("expires", human_in(h.expires.saturating_sub(now)));
            send_notice(
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

/// Decorate and fan out `message` (CRLF) to the members, then remember its Message-ID.
pub async fn distribute(
    ctx: &Context,
    list: &Arc<ListConfig>,
    message: &[u8],
    message_id: &str,
) -> Result<fanout::Stats, PostError> {
    let key = JournalKey::new(&list.key(), message_id, message);
    let payload = match list.delivery.mode {
        DeliveryMode::Bulk => {
            let decorated = decorate::decorate(message, &list.decoration)
                .map_err(|_| PostError::Unparseable)?;
            fanout::Payload::Bulk(Arc::new(Wire::new(&decorated)))
        }
        DeliveryMode::Personalized => {
            let prepared =
                decorate::prepare(message, &list.decoration).map_err(|_| PostError::Unparseable)?;
            fanout::Payload::Personal(Arc::new(super::personal::Personal {
                prepared,
                footer: list.decoration.footer.clone(),
                secret: *ctx.store.secret(),
                delimiter: ctx.config().server.recipient_delimiter,
                verp: list.delivery.verp,
            }))
        }
    };
    let stats = fanout::fan_out(ctx, list, key, payload).await?;
    if list.content.duplicate_days > 0 && !message_id.is_empty() {
        let (store, k, id) = (ctx.store.clone(), list.key(), message_id.to_string());
        blocking(move || store.seen_record(&k, &id, now_secs())).await?;
    }
    Ok(stats)
}

/// Is `who` a moderator of `list`?
pub fn is_moderator(list: &ListConfig, who: &Address) -> bool {
    let k = who.key();
    list.moderation.moderators.iter().any(|m| m.key() == k)
}

/// A moderator's decision on a held post; `None` when `token` is not a held post of this list
/// (it may be a subscription token). The returned sentence is for the moderator.
pub async fn decide(
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
            let stats = distribute(ctx, list, &message, &h.message_id).await?;
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
                v.insert(
                    "subject",
                    if h.subject.is_empty() {
                        "(no subject)".into()
                    } else {
                        h.subject.clone()
                    },
                );
                let in_reply = (!h.message_id.is_empty()).then_some(h.message_id.as_str());
                send_notice(ctx, list, Kind::PostRejected, &h.sender, &v, None, in_reply).await?;
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

/// The deadline task: expires held posts (telling their posters), sends summaries and removes
/// members disabled by bounces long enough ago. It
/// sleeps until the earliest deadline or until a post is held; with nothing held it has no
/// timer at all.
pub async fn run_deadlines(ctx: Arc<Context>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut last_summary: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    loop {
        let now = now_secs();
        if let Err(e) = expire(&ctx, now).await {
            tracing::warn!(error = %e, "expiring held posts failed; retrying later");
        }
        if let Err(e) = super::bounces::remove_due(&ctx, now).await {
            tracing::warn!(error = %e, "removing bouncing members failed; retrying later");
        }
        let next_summary = summaries(&ctx, now, &mut last_summary).await;
        let store = ctx.store.clone();
        let next_expiry = tokio::task::spawn_blocking(move || store.held_next_expiry())
            .await
            .ok()
            .and_then(|r| r.ok())
            .flatten();
        let store = ctx.store.clone();
        let next_removal = tokio::task::spawn_blocking(move || store.bounce_next_removal())
            .await
            .ok()
            .and_then(|r| r.ok())
            .flatten();
        let deadline = [next_expiry, next_summary, next_removal]
            .into_iter()
            .flatten()
            .min();
        let sleep = async {
            match deadline {
                Some(t) => {
                    tokio::time::sleep(Duration::from_secs(t.saturating_sub(now_secs()).max(1)))
                        .await
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            _ = ctx.held_changed.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn expire(ctx: &Context, now: u64) -> Result<(), PostError> {
    loop {
        let store = ctx.store.clone();
        let gone = blocking(move || store.held_expire(now, EXPIRE_BATCH)).await?;
        let reg = ctx.registry.borrow().clone();
        for h in &gone {
            tracing::info!(list = %h.list, token = %h.token, sender = %h.sender, "held post expired");
            let Some(list) = reg.find(&h.list) else {
                continue;
            };
            if list.moderation.expiry_notice && !h.sender.is_empty() {
                let mut v = list_vars(&list, &h.sender);
                v.insert(
                    "subject",
                    if h.subject.is_empty() {
                        "(no subject)".into()
                    } else {
                        h.subject.clone()
                    },
                );
                if let Err(e) =
                    send_notice(ctx, &list, Kind::HeldExpired, &h.sender, &v, None, None).await
                {
                    tracing::info!(list = %h.list, error = %e, "expiry notice not sent");
                }
            }
        }
        if gone.len() < EXPIRE_BATCH {
            return Ok(());
        }
    }
}

/// Send due summaries; returns when the next one is due (if any list waits in summary mode).
async fn summaries(
    ctx: &Context,
    now: u64,
    last: &mut std::collections::HashMap<String, u64>,
) -> Option<u64> {
    let reg = ctx.registry.borrow().clone();
    let mut next: Option<u64> = None;
    for list in reg.active() {
        if list.moderation.notify != NotifyMode::Summary {
            continue;
        }
        let store = ctx.store.clone();
        let key = list.key();
        let held = match blocking(move || store.held_list(&key)).await {
            Ok(h) => h
                .into_iter()
                .filter(|h| h.state == HeldState::Held)
                .collect::<Vec<_>>(),
            Err(_) => continue,
        };
        let Some(oldest) = held.iter().map(|h| h.received).min() else {
            continue;
        };
        let interval = list.moderation.summary_interval_secs;
        // A summary goes out once the oldest waiting post has waited an interval, then every
        // interval while posts wait.
        let due = oldest.max(last.get(&list.key()).copied().unwrap_or(0)) + interval;
        if due > now {
            next = Some(next.map_or(due, |n| n.min(due)));
            continue;
        }
        let mut text = String::new();
        for h in &held {
            text.push_str(&format!(
                "  {}  from {}\n    \"{}\" ({})\n",
                h.token,
                h.sender,
                h.subject,
                h.reasons.join("; ")
            ));
        }
        let mut v = list_vars(&list, "");
        v.insert("summary", text.trim_end().to_string());
        v.insert("count", held.len().to_string());
        for m in &list.moderation.moderators {
            if let Err(e) = send_notice(
                ctx,
                &list,
                Kind::HeldSummary,
                &m.to_string(),
                &v,
                None,
                None,
            )
            .await
            {
                tracing::info!(list = %list.key(), error = %e, "moderation summary not sent");
            }
        }
        last.insert(list.key(), now);
        next = Some(next.map_or(now + interval, |n| n.min(now + interval)));
    }
    next
}
