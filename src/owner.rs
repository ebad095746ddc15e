//! `NAME-owner@`: forward the message unchanged to the list's owners.

use std::sync::Arc;

use crate::config::ListConfig;
use crate::context::{Context, Delivery};
use crate::outcome::PostError;
use crate::reinject::{RcptStatus, Wire};

/// Forward to every owner; returns how many accepted it. The envelope sender is the list's
/// bounces address, so a failing owner address never bounces back to the original sender.
pub async fn forward(
    ctx: &Context,
    list: &Arc<ListConfig>,
    d: &Delivery,
) -> Result<usize, PostError> {
    let wire = Arc::new(Wire::new(&crate::mime::normalize_line_endings(&d.raw)));
    let mut accepted = 0;
    let owners: Vec<String> = list.owners.iter().map(|a| a.to_string()).collect();
    for chunk in owners.chunks(ctx.pool.batch_size()) {
        let statuses = ctx
            .pool
            .send(list.bounces_address(), chunk.to_vec(), wire.clone())
            .await?;
        for (s, owner) in statuses.iter().zip(chunk) {
            match s {
                RcptStatus::Accepted => accepted += 1,
                RcptStatus::Refused(why) => {
                    tracing::warn!(list = %list.key(), owner = %owner, reply = %why, "owner address refused by the MTA")
                }
                RcptStatus::Failed(e) if e.is_permanent() => {
                    tracing::warn!(list = %list.key(), owner = %owner, error = %e, "owner copy cannot be sent")
                }
                RcptStatus::Deferred(why) => return Err(PostError::Deferred(why.clone())),
                RcptStatus::Failed(e) => return Err(PostError::Mta(e.clone())),
            }
        }
    }
    Ok(accepted)
}
