//! `NAME-bounces@` and `NAME-bounces+LOCAL=DOMAIN@`: bounce processing.
//!
//! The VERP extension names the member for sure; without it the member comes from the DSN
//! (RFC 3464) or the heuristics for the common non-standard formats ([`crate::bounce`]).
//! Delay notices and auto-replies are ignored; a bounce nobody can read is forwarded to the
//! owners (rate-limited), never dropped silently. A member's score rises once per bouncing
//! day. At the threshold a probe goes to the member with a fresh token in its envelope sender
//! (`NAME-bounces+probe.TOKEN@`), and only a bounce of that probe disables: bounces are
//! unauthenticated, so anyone can forge one (`bounces.probe = false` disables at the
//! threshold itself). The member and the owners are told of the disabling; the deadline task
//! removes the member later unless re-enabled.

use std::sync::Arc;

use crate::bounce::{self, Failure, Report};
use crate::config::ListConfig;
use crate::context::{blocking, Context, Delivery};
use crate::mailer::{list_vars, send};
use crate::notice::Kind;
use crate::outcome::{Outcome, PostError};
use crate::reinject::Wire;
use crate::route::Role;
use crate::store::{new_token, now_secs, BounceOutcome, Scoring};

/// The extension of a probe's envelope sender: `NAME-bounces+probe.TOKEN@`.
const PROBE_PREFIX: &str = "probe.";

/// Handle one mail to a bounce address of `list`.
pub async fn handle(
    ctx: &Context,
    list: &Arc<ListConfig>,
    d: &Delivery,
    ext: Option<&str>,
) -> Result<Outcome, PostError> {
    match process(ctx, list, d, ext).await {
        Ok(sentence) => Ok(Outcome::BounceProcessed(sentence)),
        Err(e) => {
            tracing::warn!(session = d.session, id = %d.id, list = %list.key(), error = %e, "bounce not processed");
            Err(e)
        }
    }
}

async fn process(
    ctx: &Context,
    list: &Arc<ListConfig>,
    d: &Delivery,
    ext: Option<&str>,
) -> Result<String, PostError> {
    crate::stats::BOUNCES.inc();
    let envelope = bounce::Envelope {
        null_sender: d.sender.is_null(),
    };
    let report = bounce::parse_with(&d.raw, envelope);
    let now = now_secs();
    if let Some(token) = ext.and_then(|e| e.strip_prefix(PROBE_PREFIX)) {
        // The token names the member: a failure notice without a readable address counts.
        if matches!(report, Report::Failed(_) | Report::Unattributed(_)) {
            let (store, t, remove) = (
                ctx.store.clone(),
                token.to_ascii_lowercase(),
                list.bounces.remove_after_secs,
            );
            if let Some((_, member)) =
                blocking(move || store.bounce_probe_failed(&t, now, remove)).await?
            {
                tracing::info!(list = %list.key(), member = %member, "probe bounced: delivery disabled");
                disabled(ctx, list, &member, list.bounces.threshold).await?;
                return Ok("probe bounced; the member is disabled".into());
            }
        }
        return Ok("probe reply ignored".into());
    }
    let failed = match report {
        Report::Delayed => {
            tracing::info!(list = %list.key(), "delay notice ignored");
            return Ok("delay notice ignored".into());
        }
        Report::AutoReply => {
            tracing::info!(list = %list.key(), "auto-reply to the bounce address ignored");
            return Ok("auto-reply ignored".into());
        }
        Report::Unattributed(failure) => match ext.and_then(bounce::decode_verp) {
            // A failure notice without a readable address: the envelope names the member.
            Some(member) => vec![bounce::Bounced {
                address: member,
                failure,
                status: None,
                diagnostic: None,
            }],
            None => {
                forward_to_owners(ctx, list, d, now).await?;
                return Ok("failure without an address; forwarded to the owners".into());
            }
        },
        Report::Unrecognized => {
            forward_to_owners(ctx, list, d, now).await?;
            return Ok("not understood; forwarded to the owners".into());
        }
        Report::Failed(f) => f,
    };
    // VERP names the member; otherwise every failed recipient that is a member counts.
    let verp_member = ext.and_then(bounce::decode_verp);
    let mut targets: Vec<(String, Failure)> = match &verp_member {
        Some(m) => {
            let failure = if failed.iter().any(|b| b.failure == Failure::Hard) {
                Failure::Hard
            } else {
                Failure::Soft
            };
            vec![(m.to_lowercase(), failure)]
        }
        None => failed
            .iter()
            .map(|b| (b.address.to_lowercase(), b.failure))
            .collect(),
    };
    targets.sort_by(|a, b| a.0.cmp(&b.0));
    targets.dedup_by(|a, b| a.0 == b.0);
    let mut counted = 0;
    for (member, failure) in targets {
        let b = &list.bounces;
        let rules = Scoring {
            threshold: b.threshold,
            points: if failure == Failure::Hard {
                b.hard_score
            } else {
                b.soft_score
            },
            reset_after: b.reset_after_secs,
            probe: b.probe,
            remove_after: b.remove_after_secs,
        };
        let token = new_token()?;
        let outcome = {
            let (store, key, m, t) = (ctx.store.clone(), list.key(), member.clone(), token.clone());
            blocking(move || store.bounce_record(&key, &m, now, &rules, &t)).await?
        };
        tracing::info!(list = %list.key(), member = %member, failure = ?failure, outcome = ?outcome, "bounce");
        match outcome {
            BounceOutcome::NotMember | BounceOutcome::Unchanged => {}
            BounceOutcome::Scored(_) => counted += 1,
            BounceOutcome::Probe(t) => {
                counted += 1;
                probe(ctx, list, &member, &t).await?;
            }
            BounceOutcome::Disabled(score) => {
                counted += 1;
                disabled(ctx, list, &member, score).await?;
            }
        }
    }
    Ok(format!("bounce counted for {counted} member(s)"))
}

/// Tell the member (best effort: the address bounces) and the owners.
async fn disabled(
    ctx: &Context,
    list: &ListConfig,
    member: &str,
    score: f64,
) -> Result<(), PostError> {
    let mut v = list_vars(list, member);
    v.insert("score", format!("{score:.1}"));
    if let Err(e) = send(ctx, list, Kind::BounceDisabled, member, &v, None, None).await {
        tracing::info!(list = %list.key(), member, error = %e, "disabling notice not sent");
    }
    owners_told(ctx, list, member, score, "disabled").await
}

/// Tell the owners that `member` was `action` (disabled, removed).
pub async fn owners_told(
    ctx: &Context,
    list: &ListConfig,
    member: &str,
    score: f64,
    action: &str,
) -> Result<(), PostError> {
    let mut v = list_vars(list, member);
    v.insert("score", format!("{score:.1}"));
    v.insert("action", action.to_string());
    for o in &list.owners {
        send(
            ctx,
            list,
            Kind::BounceOwners,
            &o.to_string(),
            &v,
            None,
            None,
        )
        .await?;
    }
    Ok(())
}

/// A probe: a small mail whose envelope sender carries the token; its bounce disables.
async fn probe(
    ctx: &Context,
    list: &ListConfig,
    member: &str,
    token: &str,
) -> Result<(), PostError> {
    let Some(t) = list.templates.get(Kind::BounceProbe) else {
        return Ok(());
    };
    let mut v = list_vars(list, member);
    v.insert("score", String::new());
    let subject = crate::notice::render(&t.subject, &v);
    let body = crate::notice::render(&t.body, &v);
    let from = list.role_address("-request");
    let n = crate::notice::Notice {
        from_name: &list.display_name,
        from: &from,
        to: member,
        reply_to: None,
        in_reply_to: None,
        auto_submitted: "auto-generated",
        list_id: &list.decoration.list_id,
        subject: &subject,
        body: &body,
        domain: list.address.domain(),
    };
    let bytes = crate::notice::build(&n).map_err(|_| PostError::Unparseable)?;
    let delim = ctx.config().server.recipient_delimiter;
    let envelope = Role::Bounces(Some(format!("{PROBE_PREFIX}{token}"))).address(list, delim);
    ctx.pool
        .send(
            envelope,
            vec![member.to_string()],
            Arc::new(Wire::new(&bytes)),
        )
        .await?;
    Ok(())
}

/// Forward a bounce nobody could read to the owners, at most `forward_unrecognized_per_hour`.
async fn forward_to_owners(
    ctx: &Context,
    list: &Arc<ListConfig>,
    d: &Delivery,
    now: u64,
) -> Result<(), PostError> {
    let per_hour = list.bounces.forward_unrecognized_per_hour;
    let allowed = {
        let (store, key) = (ctx.store.clone(), list.key());
        blocking(move || store.rate_allow(&key, "unrecognized-bounces", now, per_hour, u64::MAX))
            .await?
    };
    if !allowed {
        tracing::warn!(list = %list.key(), "unrecognized bounce not forwarded: over the hourly cap (it is logged here)");
        return Ok(());
    }
    let n = crate::owner::forward(ctx, list, d).await?;
    tracing::info!(list = %list.key(), owners = n, "unrecognized bounce forwarded to the owners");
    Ok(())
}

/// The deadline task's share: remove members disabled long enough ago, telling the owners.
pub async fn remove_due(ctx: &Context, now: u64) -> Result<(), PostError> {
    let store = ctx.store.clone();
    let removed = blocking(move || store.bounce_remove_due(now, 100)).await?;
    let reg = ctx.registry.borrow().clone();
    for (list, member) in removed {
        tracing::info!(list = %list, member = %member, "removed after bouncing");
        if let Some(l) = reg.find(&list) {
            if let Err(e) = owners_told(ctx, &l, &member, l.bounces.threshold, "removed").await {
                tracing::info!(list = %list, error = %e, "removal notice not sent");
            }
        }
    }
    Ok(())
}
