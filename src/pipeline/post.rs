//! The journey of a post, read top to bottom. [`run`] is the whole of it:
//!
//! 1. **read** the message once into a [`Post`] ([`super::message`]): CRLF bytes, the index of
//!    its header section, Message-ID and From from one parse of that section, and the MIME
//!    tree, parsed at most once and only when a stage asks for it;
//! 2. **loop check**: this list's List-Id or `X-BeenThere` marker, or too many list passes;
//! 3. **authenticate**: the slot where DKIM, SPF, DMARC and ARC results go (nothing checked
//!    yet);
//! 4. **moderate**: the posting policy and the content rules give a verdict
//!    ([`super::moderate`]);
//! 5. **hold** for a moderator ([`super::hold`]), or
//! 6. **decorate** ([`super::decorate`]; personalized delivery renders each member's copy
//!    from one preparation, [`super::personal`]),
//! 7. **fan out** to the members in journaled batches ([`super::fanout`]),
//! 8. **record**: the Message-ID for duplicate detection, the counters and the post's one
//!    log line.
//!
//! A moderator's approval resumes the journey at step 6 with [`distribute`].

use std::sync::Arc;
use std::time::Instant;

pub use super::message::Post;
use super::{decorate, fanout, hold, moderate};
use crate::config::delivery::DeliveryMode;
use crate::config::moderation::Action;
use crate::config::ListConfig;
use crate::context::{blocking, Context, Delivery};
use crate::mime::normalize_line_endings;
use crate::outcome::{Outcome, PostError};
use crate::reinject::Wire;
use crate::store::{now_secs, JournalKey};

/// What the journey came to, with what the log line needs.
enum Journey {
    Distributed(fanout::Stats),
    Discarded(String),
    Held { token: String, reasons: String },
}

/// Take a post to `list` through the whole journey.
pub async fn run(
    ctx: &Context,
    list: &Arc<ListConfig>,
    d: &Delivery,
) -> Result<Outcome, PostError> {
    let started = Instant::now();
    let bytes = normalize_line_endings(&d.raw);
    let post = Post::new(&d.raw, &bytes);
    let journey = journey(ctx, list, d, &post).await;
    record(list, d, &post, &journey, started);
    journey.map(|j| match j {
        Journey::Distributed(s) => Outcome::Distributed {
            list: list.key(),
            copies: s.accepted,
        },
        Journey::Discarded(reason) => Outcome::Discarded { reason },
        Journey::Held { reasons, .. } => Outcome::Held { reasons },
    })
}

async fn journey(
    ctx: &Context,
    list: &Arc<ListConfig>,
    d: &Delivery,
    post: &Post<'_>,
) -> Result<Journey, PostError> {
    // Loop check.
    if let Some(reason) =
        decorate::loop_reason_indexed(post.bytes(), post.header(), &list.decoration)
    {
        return Ok(Journey::Discarded(reason));
    }
    // Authenticate: DKIM, SPF, DMARC and ARC results go here, for moderation and decoration.
    // Moderate.
    let verdict = moderate::moderate(ctx, list, &d.sender, post).await?;
    // Content filtering may have removed parts: the rest of the journey takes that message.
    match verdict.filtered.as_deref() {
        Some(bytes) => hold_or_distribute(ctx, list, &Post::new(post.raw(), bytes), &verdict).await,
        None => hold_or_distribute(ctx, list, post, &verdict).await,
    }
}

/// The verdict carried out on `post`: dropped, refused, held, or distributed.
async fn hold_or_distribute(
    ctx: &Context,
    list: &Arc<ListConfig>,
    post: &Post<'_>,
    verdict: &moderate::Verdict,
) -> Result<Journey, PostError> {
    match verdict.action {
        Action::Discard => Ok(Journey::Discarded(verdict.reason())),
        Action::Reject => Err(PostError::Rejected(verdict.reason())),
        // Hold.
        Action::Hold => {
            let poster = verdict.poster.as_ref();
            let h = hold::hold(ctx, list, post, verdict.reasons.clone(), poster).await?;
            Ok(Journey::Held {
                token: h.token,
                reasons: verdict.reason(),
            })
        }
        // Decorate, fan out, record.
        Action::Accept => Ok(Journey::Distributed(distribute(ctx, list, post).await?)),
    }
}

/// Decorate `post`, fan it out to the members of `list`, then remember its Message-ID (for
/// `content.duplicate_days`). Also where a moderator's approval resumes a held post.
pub async fn distribute(
    ctx: &Context,
    list: &Arc<ListConfig>,
    post: &Post<'_>,
) -> Result<fanout::Stats, PostError> {
    let key = JournalKey::new(&list.key(), post.message_id(), post.bytes());
    // Decorate.
    let prepared = decorate::prepare_indexed(
        post.bytes(),
        post.header(),
        || post.tree(),
        &list.decoration,
    )
    .map_err(|_| PostError::Unparseable)?;
    let payload = match list.delivery.mode {
        DeliveryMode::Bulk => {
            let copy = prepared.render(list.decoration.footer.as_deref(), None);
            fanout::Payload::Bulk(Arc::new(Wire::from_owned(copy)))
        }
        DeliveryMode::Personalized => {
            fanout::Payload::Personal(Arc::new(super::personal::Personal {
                prepared,
                footer: list.decoration.footer.clone(),
                secret: *ctx.store.secret(),
                delimiter: ctx.config().server.recipient_delimiter,
                verp: list.delivery.verp,
            }))
        }
    };
    // Fan out.
    let stats = fanout::fan_out(ctx, list, key, payload).await?;
    // Record.
    if list.content.duplicate_days > 0 && !post.message_id().is_empty() {
        let (store, k, id) = (ctx.store.clone(), list.key(), post.message_id().to_string());
        blocking(move || store.seen_record(&k, &id, now_secs())).await?;
    }
    Ok(stats)
}

/// The counters and the post's one log line.
fn record(
    list: &ListConfig,
    d: &Delivery,
    post: &Post<'_>,
    journey: &Result<Journey, PostError>,
    started: Instant,
) {
    let ms = format_args!("{:.1}", started.elapsed().as_secs_f64() * 1000.0).to_string();
    let (id, message_id, sender) = (&d.id, post.message_id(), &d.sender);
    match journey {
        Ok(Journey::Distributed(s)) => {
            crate::stats::POSTS_DISTRIBUTED.inc();
            crate::stats::COPIES.add(s.accepted);
            tracing::info!(
                session = d.session, id = %id, list = %list.key(), message_id = %message_id, sender = %sender,
                members = s.members, copies = s.accepted, refused = s.refused, skipped = s.skipped,
                batches = s.batches, journal_lag_ms = s.journal_lag_ms, outcome = "distributed",
                ms = %ms, "post"
            );
        }
        Ok(Journey::Discarded(why)) => {
            crate::stats::POSTS_DISCARDED.inc();
            tracing::info!(session = d.session, id = %id, list = %list.key(), message_id = %message_id, sender = %sender, outcome = "discarded", reason = %why, ms = %ms, "post");
        }
        Ok(Journey::Held { token, reasons }) => {
            crate::stats::POSTS_HELD.inc();
            tracing::info!(session = d.session, id = %id, list = %list.key(), message_id = %message_id, sender = %sender, outcome = "held", token = %token, reason = %reasons, ms = %ms, "post");
        }
        Err(e) => {
            let outcome = if e.is_permanent() {
                crate::stats::POSTS_REJECTED.inc();
                "rejected"
            } else {
                crate::stats::DEFERRED.inc();
                "deferred"
            };
            tracing::warn!(
                session = d.session, id = %id, list = %list.key(), message_id = %message_id, sender = %sender,
                outcome, error = %e, ms = %ms, "post"
            );
        }
    }
}
