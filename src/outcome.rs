//! What handling one recipient of a delivery came to: an [`Outcome`], or a [`PostError`].
//! The role handlers return these and never build SMTP replies; `lmtp::reply` maps both to
//! the reply the MTA gets, in one place. Whether an error is temporary is its variant (and,
//! for the MTA's own replies, the MTA's code), never a match on its text.

use crate::reinject::{MtaReply, TxError};
use crate::store::StoreError;

/// How one recipient of a delivery was handled (all of these are answered 2xx).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The post went out: the MTA accepted `copies` copies for the members of `list`.
    Distributed {
        /// The list's address.
        list: String,
        /// Copies the MTA accepted in this attempt.
        copies: u64,
    },
    /// The post waits for a moderator.
    Held {
        /// Why, for the poster.
        reasons: String,
    },
    /// The post was dropped on purpose (a loop, a duplicate, a discard rule).
    Discarded {
        /// Why, for the log and the MTA's log.
        reason: String,
    },
    /// Mail to `NAME-owner@` went to the owners.
    Forwarded {
        /// The list's address.
        list: String,
        /// Owners whose copy the MTA accepted.
        owners: usize,
    },
    /// A request was carried out (whatever it asked, and whatever was mailed back).
    RequestHandled,
    /// A request that is not answered, and why.
    RequestIgnored(&'static str),
    /// A bounce was read and acted on; the sentence says what happened.
    BounceProcessed(String),
}

/// Why handling one recipient did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    /// The list's file is broken.
    #[error("list {0} is disabled by a configuration error")]
    ListDisabled(String),
    /// Moderation refused the post (reject action); the reason is for the poster.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The message cannot be read or decorated as an Internet message.
    #[error("unparseable message")]
    Unparseable,
    /// A transaction with the MTA failed as a whole (its reply, its connection, or no
    /// connection at all).
    #[error("{0}")]
    Mta(TxError),
    /// The MTA deferred (4xx) some recipients of a transaction it otherwise took.
    #[error("the MTA deferred some copies: {0}")]
    Deferred(MtaReply),
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

impl PostError {
    /// True when the MTA should not retry: the same message will fail the same way.
    pub fn is_permanent(&self) -> bool {
        match self {
            PostError::Rejected(_) | PostError::Unparseable => true,
            PostError::Mta(e) => e.is_permanent(),
            PostError::ListDisabled(_)
            | PostError::Deferred(_)
            | PostError::QueueFull(_)
            | PostError::Store(_)
            | PostError::Shutdown => false,
        }
    }
}

impl From<StoreError> for PostError {
    fn from(e: StoreError) -> Self {
        PostError::Store(e.to_string())
    }
}

impl From<TxError> for PostError {
    fn from(e: TxError) -> Self {
        PostError::Mta(e)
    }
}
