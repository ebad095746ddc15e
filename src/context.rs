//! What every role handler gets: the shared [`Context`] of the server (configuration, lists,
//! store, the infeed into the MTA) and the [`Delivery`] it is handling.

use std::sync::Arc;

use tokio::sync::watch;

use crate::address::EnvelopeSender;
use crate::config::Config;
use crate::outcome::PostError;
use crate::registry::Registry;
use crate::reinject::Pool;
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

/// One delivered message, as the LMTP session hands it over.
pub struct Delivery {
    /// Session id, for logs.
    pub session: u64,
    /// The transaction's correlation id: in every log line about it, and in its non-2xx
    /// replies, so an operator can join the MTA's log to listkeeper's.
    pub id: String,
    /// MAIL FROM, as received; only [`EnvelopeSender::address`] may be answered.
    pub sender: EnvelopeSender,
    /// The raw message as received (dot-unstuffed).
    pub raw: Arc<Vec<u8>>,
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
