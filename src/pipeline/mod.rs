//! Per-role handling of a delivered message, one file per stage:
//! [`classify`] (loops, posting policy) -> [`decorate`] -> [`fanout`] (journaled batches through
//! the re-injection pool); [`owner`] forwards `-owner` mail.
//!
//! [`deliver`] is the entry point the LMTP session calls once per accepted recipient after
//! DATA; it returns that recipient's own reply.

pub mod bounces;
pub mod classify;
pub mod commands;
pub mod content;
pub mod decorate;
pub mod fanout;
pub mod hold;
pub mod moderate;
pub mod owner;
pub mod personal;
pub mod request;

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use crate::address::EnvelopeSender;
use crate::config::Action;
use crate::config::{Config, ListConfig};
use crate::lmtp::reply::{reply_for, Reply};
use crate::registry::Registry;
use crate::reinject::{Pool, TxError};
use crate::route::{Role, Route};
use crate::store::{Store, StoreError};

/// Everything a delivery needs, shared by all sessions.
pub struct Context {
    /// The global configuration; replaced as a whole when the global file changes (only the
    /// settings that can change live are used from a new one).
    pub config: watch::Receiver<Arc<Config>>,
    /// The current lists; replaced as a whole on reload.
    pub registry: watch::Receiver<Arc<Registry>>,
    /// The store.
    pub store: Store,
    /// The infeed into the MTA.
    pub pool: Pool,
    /// Wakes the deadline task when a post is held (its expiry may be the earliest).
    pub held_changed: tokio::sync::Notify,
}

impl Context {
    /// The current global configuration.
    pub fn config(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }
}

/// Why a delivery to one list recipient did not succeed. Mapped to a reply by
/// [`crate::lmtp::reply::reply_for`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    /// The list's file is broken.
    #[error("list {0} is disabled by a configuration error")]
    ListDisabled(String),
    /// Moderation refused the post (reject action); the reason is for the poster.
    #[error("rejected: {0}")]
    Rejected(String),
    /// mail-parser could not find a message in the bytes.
    #[error("unparseable message")]
    Unparseable,
    /// The re-injection target refused the connection or is backing off.
    #[error("MTA unreachable: {0}")]
    MtaUnreachable(String),
    /// A connection to the MTA broke mid-transaction.
    #[error("MTA connection failed: {0}")]
    MtaConnection(String),
    /// The MTA answered 4xx to a transaction or to some recipients.
    #[error("MTA deferred: {0}")]
    MtaDeferred(String),
    /// The MTA answered 5xx to a whole transaction.
    #[error("MTA refused: {0}")]
    MtaRefused(String),
    /// The list's moderation queue holds `moderation.max_held` posts already.
    #[error("moderation queue of {0} is full")]
    QueueFull(String),
    /// The store failed (disk full, I/O error...).
    #[error("store: {0}")]
    Store(String),
    /// The server is stopping.
    #[error("shutting down")]
    Shutdown,
}

impl From<StoreError> for PostError {
    fn from(e: StoreError) -> Self {
        PostError::Store(e.to_string())
    }
}

impl From<TxError> for PostError {
    fn from(e: TxError) -> Self {
        match e {
            // The pool says "connect to ..." or "unreachable" when no connection could be made;
            // anything else temporary is a 4xx reply of the MTA.
            TxError::Temporary(m) if m.starts_with("connect to") || m.contains("unreachable") => {
                PostError::MtaUnreachable(m)
            }
            TxError::Temporary(m) => PostError::MtaDeferred(m),
            TxError::Permanent(m) => PostError::MtaRefused(m),
            TxError::Connection { reason, .. } => PostError::MtaConnection(reason),
        }
    }
}

/// Run a blocking store call off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, PostError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(PostError::from),
        Err(e) => Err(PostError::Store(format!("store task failed: {e}"))),
    }
}

/// One delivered message, as the LMTP session hands it over.
pub struct Delivery {
    /// Session id, for logs.
    pub session: u64,
    /// MAIL FROM, as received; only [`EnvelopeSender::address`] may be answered.
    pub sender: EnvelopeSender,
    /// The raw message as received (dot-unstuffed).
    pub raw: Arc<Vec<u8>>,
}

/// Handle the message for one routed recipient and return its reply.
pub async fn deliver(ctx: &Context, delivery: &Delivery, route: &Route) -> Reply {
    match route {
        Route::Unknown => Reply::new(550, (5, 1, 1), "no such list address here"),
        Route::Disabled { list } => reply_for(&PostError::ListDisabled(list.clone())),
        Route::List(list, Role::Post) => post(ctx, list, delivery).await,
        Route::List(list, Role::Owner) => match owner::forward(ctx, list, delivery).await {
            Ok(n) => Reply::ok(format!("forwarded to {n} owner(s) of {}", list.key())),
            Err(e) => {
                tracing::warn!(session = delivery.session, list = %list.key(), error = %e, "owner mail not forwarded");
                reply_for(&e)
            }
        },
        Route::List(list, Role::Request) => {
            request::handle(ctx, list, delivery, &request::Action::Commands).await
        }
        Route::List(list, Role::Join) => {
            request::handle(ctx, list, delivery, &request::Action::Join).await
        }
        Route::List(list, Role::Leave) => {
            request::handle(ctx, list, delivery, &request::Action::Leave).await
        }
        Route::List(list, Role::Unsubscribe(ext)) => {
            request::handle(
                ctx,
                list,
                delivery,
                &request::Action::Unsubscribe(ext.clone()),
            )
            .await
        }
        Route::List(list, Role::Confirm(token)) => {
            request::handle(
                ctx,
                list,
                delivery,
                &request::Action::Confirm(token.clone()),
            )
            .await
        }
        Route::List(list, Role::Bounces(ext)) => {
            bounces::handle(ctx, list, delivery, ext.as_deref()).await
        }
    }
}

/// Outcome of a post that did not fail.
#[derive(Debug)]
enum Posted {
    Distributed(fanout::Stats),
    Discarded(String),
    Held { token: String, reasons: String },
}

async fn post(ctx: &Context, list: &Arc<ListConfig>, d: &Delivery) -> Reply {
    let started = Instant::now();
    let message_id = classify::message_id(&d.raw);
    let result = post_inner(ctx, list, d, &message_id).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(Posted::Distributed(s)) => {
            crate::stats::POSTS_DISTRIBUTED.inc();
            crate::stats::COPIES.add(s.accepted);
            tracing::info!(
                session = d.session, list = %list.key(), message_id = %message_id, sender = %d.sender,
                members = s.members, copies = s.accepted, refused = s.refused, skipped = s.skipped,
                batches = s.batches, journal_lag_ms = s.journal_lag_ms, outcome = "distributed",
                ms = format_args!("{ms:.1}"), "post"
            );
            Reply::ok(format!(
                "distributed to {} member(s) of {}",
                s.accepted,
                list.key()
            ))
        }
        Ok(Posted::Discarded(why)) => {
            crate::stats::POSTS_DISCARDED.inc();
            tracing::info!(session = d.session, list = %list.key(), message_id = %message_id, sender = %d.sender, outcome = "discarded", reason = %why, ms = format_args!("{ms:.1}"), "post");
            Reply::ok(format!("discarded: {why}"))
        }
        Ok(Posted::Held { token, reasons }) => {
            crate::stats::POSTS_HELD.inc();
            tracing::info!(session = d.session, list = %list.key(), message_id = %message_id, sender = %d.sender, outcome = "held", token = %token, reason = %reasons, ms = format_args!("{ms:.1}"), "post");
            Reply::ok(format!("held for moderation: {reasons}"))
        }
        Err(e) => {
            let reply = reply_for(&e);
            if reply.code / 100 == 4 {
                crate::stats::DEFERRED.inc();
            } else {
                crate::stats::POSTS_REJECTED.inc();
            }
            tracing::warn!(
                session = d.session, list = %list.key(), message_id = %message_id, sender = %d.sender,
                outcome = if reply.code / 100 == 4 { "deferred" } else { "rejected" }, error = %e, reply = %reply,
                ms = format_args!("{ms:.1}"), "post"
            );
            reply
        }
    }
}

async fn post_inner(
    ctx: &Context,
    list: &Arc<ListConfig>,
    d: &Delivery,
    message_id: &str,
) -> Result<Posted, PostError> {
    let normalized = decorate::normalize_line_endings(&d.raw);
    if let Some(why) = decorate::loop_reason(&normalized, &list.decoration) {
        return Ok(Posted::Discarded(why));
    }
    let verdict = moderate::moderate(ctx, list, &d.sender, &normalized).await?;
    let message: &[u8] = verdict.filtered.as_deref().unwrap_or(&normalized);
    match verdict.action {
        Action::Discard => Ok(Posted::Discarded(verdict.reason())),
        Action::Reject => Err(PostError::Rejected(verdict.reason())),
        Action::Hold => {
            let h = hold::hold(
                ctx,
                list,
                &d.raw,
                message,
                verdict.reasons.clone(),
                verdict.poster.as_ref(),
                message_id,
            )
            .await?;
            Ok(Posted::Held {
                token: h.token,
                reasons: verdict.reason(),
            })
        }
        Action::Accept => Ok(Posted::Distributed(
            hold::distribute(ctx, list, message, message_id).await?,
        )),
    }
}
