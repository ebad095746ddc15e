//! Work that happens at a time rather than on a mail: held posts expire (their posters are
//! told), moderation summaries go out, members disabled by bounces long enough ago are
//! removed. One task sleeps until the earliest deadline, or until a post is held; with
//! nothing waiting it has no timer at all (no polling).

use std::sync::Arc;
use std::time::Duration;

use crate::config::moderation::NotifyMode;
use crate::context::{blocking, Context};
use crate::mailer::{list_vars, or_none, send};
use crate::notice::Kind;
use crate::outcome::PostError;
use crate::store::{now_secs, HeldState};

/// How many expired posts one wake-up handles.
const EXPIRE_BATCH: usize = 100;

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
        if let Err(e) = crate::bounce::handle::remove_due(&ctx, now).await {
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
                v.insert("subject", or_none(&h.subject, "subject"));
                if let Err(e) = send(ctx, &list, Kind::HeldExpired, &h.sender, &v, None, None).await
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
            if let Err(e) = send(
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
