//! Fan-out: stream the members from the store in batches, send each batch as one SMTP
//! transaction through the pool (up to `connections` batches of a post in flight), and journal
//! every accepted batch before the post is acknowledged.
//!
//! Each batch's task journals the batch itself, right after the MTA's reply: a crash between
//! that reply and the commit is the only way a member gets a post twice (the MTA has the copy,
//! the journal does not), so nothing else is allowed to sit in between. `Stats::journal_lag_ms`
//! reports the longest such window of a post.
//!
//! Memory per post is bounded by `connections + 2` batches of addresses, whatever the list
//! size. A post that fits in one batch writes no journal entry (nothing to skip on a retry, and
//! an fsync would cost more than the whole transaction), unless the MTA deferred some of its
//! recipients. The post succeeds only when every batch was accepted (invariant 1); a member
//! the MTA refuses with 5xx is logged and does not fail it.

use std::sync::Arc;

use tokio::task::JoinSet;

use super::personal::Personal;
use crate::config::ListConfig;
use crate::context::{blocking, Context};
use crate::outcome::PostError;
use crate::reinject::{RcptStatus, TxError, Wire};
use crate::store::members::{FLAG_DISABLED, FLAG_NOMAIL};
use crate::store::{DoneBatch, JournalKey, Member};

/// What a fan-out did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Members streamed from the store.
    pub members: u64,
    /// Recipients the MTA accepted in this attempt.
    pub accepted: u64,
    /// Recipients the MTA refused with 5xx.
    pub refused: u64,
    /// Members skipped: already sent in an earlier attempt, or `nomail`.
    pub skipped: u64,
    /// SMTP transactions.
    pub batches: u64,
    /// The longest time between the MTA's reply to a batch and that batch's journal commit,
    /// in milliseconds (0 when nothing was journaled).
    pub journal_lag_ms: u64,
}

struct Batch {
    first: String,
    last: String,
    rcpts: Vec<String>,
    keys: Vec<String>,
}

/// A finished batch: the MTA's answer, and how journaling it went (`None`: not journaled).
struct BatchResult {
    batch: Batch,
    result: Result<Vec<RcptStatus>, TxError>,
    journal: Option<Result<u64, PostError>>,
}

/// What a batch task needs to journal its batch.
#[derive(Clone)]
struct Journal {
    store: crate::store::Store,
    key: JournalKey,
    ttl: u64,
    /// A multi-batch post journals every batch; otherwise only one with deferred recipients.
    always: bool,
}

impl Journal {
    /// A batch's transaction has ended: journal it (if it counts) at once.
    async fn finish(&self, batch: Batch, result: Result<Vec<RcptStatus>, TxError>) -> BatchResult {
        let journal = self
            .record(&batch, &result, std::time::Instant::now())
            .await;
        BatchResult {
            batch,
            result,
            journal,
        }
    }

    /// Journal `batch` if it counts; the lag since `replied` in milliseconds.
    async fn record(
        &self,
        batch: &Batch,
        result: &Result<Vec<RcptStatus>, TxError>,
        replied: std::time::Instant,
    ) -> Option<Result<u64, PostError>> {
        let statuses = result.as_ref().ok()?;
        let except: Vec<String> = statuses
            .iter()
            .zip(&batch.keys)
            .filter(|(s, _)| s.is_deferred())
            .map(|(_, k)| k.clone())
            .collect();
        if !self.always && except.is_empty() {
            return None;
        }
        let entry = DoneBatch {
            first: batch.first.clone(),
            last: batch.last.clone(),
            except,
        };
        let (store, key, ttl) = (self.store.clone(), self.key, self.ttl);
        Some(
            blocking(move || store.journal_record(&key, &entry, ttl))
                .await
                .map(|()| replied.elapsed().as_millis() as u64),
        )
    }
}

/// What goes to the members.
#[derive(Clone)]
pub enum Payload {
    /// One copy for everyone.
    Bulk(Arc<Wire>),
    /// A copy rendered per member (one transaction each).
    Personal(Arc<Personal>),
}

/// Distribute `payload` to the members of `list`.
pub async fn fan_out(
    ctx: &Context,
    list: &Arc<ListConfig>,
    key: JournalKey,
    payload: Payload,
) -> Result<Stats, PostError> {
    let store = ctx.store.clone();
    let done = blocking(move || store.journal_load(&key)).await?;
    let batch_size = ctx.pool.batch_size();
    // Personalized batches run their members' transactions in parallel themselves.
    let in_flight_max = match payload {
        Payload::Bulk(_) => ctx.pool.connections(),
        Payload::Personal(_) => 1,
    };
    let from = list.bounces_address();
    let list_key = list.key();

    let mut stats = Stats::default();
    let mut failure: Option<PostError> = None;
    let mut tasks: JoinSet<BatchResult> = JoinSet::new();
    let mut next = fetch(ctx, &list_key, None, batch_size).await?;
    let mut journal = Journal {
        store: ctx.store.clone(),
        key,
        ttl: ctx.config().store.journal_ttl.as_secs(),
        always: !done.is_empty(),
    };

    while !next.is_empty() {
        // After a failure the post is answered 4xx and retried anyway: stop sending. For a
        // journal that cannot be written that is essential (every further batch would be
        // repeated by the retry); for a failing MTA it spares it the rest.
        if failure.is_some() {
            break;
        }
        let current = std::mem::take(&mut next);
        // A short batch is the last one: no need to ask the store again.
        if current.len() >= batch_size {
            let after = current.last().map(|m| m.key.clone());
            match fetch(ctx, &list_key, after, batch_size).await {
                Ok(members) => next = members,
                // Not `?`: the batches in flight must finish and journal what the MTA
                // accepted (dropping the JoinSet would abort them half-way).
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if !next.is_empty() && !journal.always {
            // A multi-batch post journals its batches: make sure the store can write before
            // anything is sent, so a full disk costs a 451 and no copies.
            let (store, ttl) = (journal.store.clone(), journal.ttl);
            let marker = DoneBatch {
                first: String::new(),
                last: String::new(),
                except: Vec::new(),
            };
            blocking(move || store.journal_record(&key, &marker, ttl)).await?;
            journal.always = true;
        }
        stats.members += current.len() as u64;
        let batch = make_batch(&current, &done, &mut stats);
        if batch.rcpts.is_empty() {
            continue;
        }
        // Count what has finished (each task journaled its own batch), and wait for a free
        // connection.
        while let Some(r) = tasks.try_join_next() {
            settle(r, &mut stats, &mut failure);
        }
        while tasks.len() >= in_flight_max {
            if let Some(r) = tasks.join_next().await {
                settle(r, &mut stats, &mut failure);
            }
        }
        if failure.is_some() {
            break;
        }
        let pool = ctx.pool.clone();
        match &payload {
            Payload::Bulk(wire) => {
                stats.batches += 1;
                let (from, wire, journal) = (from.clone(), wire.clone(), journal.clone());
                tasks.spawn(async move {
                    let result = pool.send(from, batch.rcpts.clone(), wire).await;
                    journal.finish(batch, result).await
                });
            }
            Payload::Personal(p) => {
                stats.batches += batch.rcpts.len() as u64;
                let (p, list, parallel) = (p.clone(), list.clone(), ctx.pool.connections());
                let journal = journal.clone();
                tasks.spawn(async move {
                    let result = Ok(personal_batch(&pool, &list, &p, &batch.rcpts, parallel).await);
                    journal.finish(batch, result).await
                });
            }
        }
    }
    while let Some(r) = tasks.join_next().await {
        settle(r, &mut stats, &mut failure);
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(stats),
    }
}

/// One transaction per member, `parallel` at a time; each member's own outcome (a failed
/// transaction is that member's [`RcptStatus::Failed`]).
async fn personal_batch(
    pool: &crate::reinject::Pool,
    list: &Arc<ListConfig>,
    p: &Arc<Personal>,
    rcpts: &[String],
    parallel: usize,
) -> Vec<RcptStatus> {
    let lost = |reason: &str| {
        RcptStatus::Failed(TxError::Connection {
            reason: reason.into(),
            data_sent: true,
        })
    };
    let mut out: Vec<Option<RcptStatus>> = vec![None; rcpts.len()];
    let mut running: JoinSet<(usize, RcptStatus)> = JoinSet::new();
    for (i, member) in rcpts.iter().enumerate() {
        while running.len() >= parallel {
            if let Some(Ok((j, s))) = running.join_next().await {
                out[j] = Some(s);
            }
        }
        let (from, wire) = p.render(list, member);
        let (pool, member) = (pool.clone(), member.clone());
        running.spawn(async move {
            let status = match pool.send(from, vec![member], Arc::new(wire)).await {
                Ok(mut s) => s
                    .pop()
                    .unwrap_or_else(|| lost("the MTA gave no reply for the recipient")),
                Err(TxError::Replied(r)) if r.is_permanent() => RcptStatus::Refused(r),
                Err(TxError::Replied(r)) => RcptStatus::Deferred(r),
                Err(e) => RcptStatus::Failed(e),
            };
            (i, status)
        });
    }
    while let Some(r) = running.join_next().await {
        if let Ok((j, s)) = r {
            out[j] = Some(s);
        }
    }
    out.into_iter()
        .map(|s| s.unwrap_or_else(|| lost("the transaction task failed")))
        .collect()
}

async fn fetch(
    ctx: &Context,
    list: &str,
    after: Option<String>,
    limit: usize,
) -> Result<Vec<Member>, PostError> {
    let store = ctx.store.clone();
    let list = list.to_string();
    blocking(move || store.members_after(&list, after.as_deref(), limit)).await
}

fn make_batch(members: &[Member], done: &[DoneBatch], stats: &mut Stats) -> Batch {
    let mut batch = Batch {
        first: members.first().map(|m| m.key.clone()).unwrap_or_default(),
        last: members.last().map(|m| m.key.clone()).unwrap_or_default(),
        rcpts: Vec::with_capacity(members.len()),
        keys: Vec::with_capacity(members.len()),
    };
    for m in members {
        if m.flags & (FLAG_NOMAIL | FLAG_DISABLED) != 0 || done.iter().any(|d| d.covers(&m.key)) {
            stats.skipped += 1;
            continue;
        }
        batch.rcpts.push(m.address.clone());
        batch.keys.push(m.key.clone());
    }
    batch
}

/// Account for one finished transaction (already journaled by its task when it counts).
fn settle(
    joined: Result<BatchResult, tokio::task::JoinError>,
    stats: &mut Stats,
    failure: &mut Option<PostError>,
) {
    let BatchResult {
        batch,
        result,
        journal,
    } = match joined {
        Ok(r) => r,
        Err(e) => {
            failure.get_or_insert(PostError::Mta(TxError::Connection {
                reason: format!("batch task failed: {e}"),
                data_sent: true,
            }));
            return;
        }
    };
    let statuses = match result {
        Ok(s) => s,
        Err(e) => {
            let e = PostError::from(e);
            // A permanent refusal outranks a temporary one: retrying would not help.
            if e.is_permanent() || failure.is_none() {
                *failure = Some(e);
            }
            return;
        }
    };
    for (status, rcpt) in statuses.into_iter().zip(&batch.rcpts) {
        match status {
            RcptStatus::Accepted => stats.accepted += 1,
            RcptStatus::Refused(why) => {
                stats.refused += 1;
                tracing::info!(member = %rcpt, reply = %why, "the MTA refused a member address");
            }
            RcptStatus::Failed(e) if e.is_permanent() => {
                stats.refused += 1;
                tracing::info!(member = %rcpt, error = %e, "a member's copy cannot be sent");
            }
            RcptStatus::Deferred(why) => {
                tracing::info!(member = %rcpt, reply = %why, "the MTA deferred a member address");
                failure.get_or_insert(PostError::Deferred(why));
            }
            RcptStatus::Failed(e) => {
                tracing::info!(member = %rcpt, error = %e, "a member's copy was not sent");
                failure.get_or_insert(PostError::Mta(e));
            }
        }
    }
    match journal {
        None => {}
        Some(Ok(lag)) => stats.journal_lag_ms = stats.journal_lag_ms.max(lag),
        Some(Err(e)) => {
            tracing::error!(error = %e, "a batch was accepted by the MTA but could not be journaled; a retry will repeat it");
            failure.get_or_insert(e);
        }
    }
}
