//! The embedded store (redb, one file under `data_dir`): members per list and the fan-out
//! journal; later issues add pending confirmations, held messages, bounce scores and keys.
//!
//! The backend is this module's concern alone: callers see typed operations. Every write is a
//! redb transaction committed with `Durability::Immediate` (fsync) before the call returns,
//! so an LMTP acknowledgement that depends on it can follow. All calls block: async code runs
//! them with `tokio::task::spawn_blocking`.
//!
//! SECURITY: trusts nothing it is given beyond the types; addresses are validated by the
//! caller (`address::Address`), list keys come from validated configuration. Tokens from
//! outside are looked up only through `token::find_token` (constant-time on their secret part).

mod bounces;
mod held;
mod journal;
pub mod members;
mod pending;
mod rate;
mod token;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, Durability, ReadableTable, WriteTransaction};

pub use bounces::{BounceOutcome, BounceRecord, BounceStatus, Scoring};
pub use held::{Decided, Decision, Held, HeldState};
pub use journal::{DoneBatch, JournalKey};
pub use members::{AddOutcome, Member};
pub use pending::{Completion, Pending, PendingKind};
pub use token::{ct_eq, well_formed as token_well_formed};

/// The store file inside `data_dir`.
pub const FILE_NAME: &str = "listkeeper.redb";

/// A store failure; always temporary from the mail system's point of view (4xx).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store file is held by another process (a running server).
    #[error("the store {0} is in use by another listkeeper process")]
    InUse(PathBuf),
    /// Opening or creating failed.
    #[error("cannot open the store {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: redb::DatabaseError,
    },
    /// Any other backend error (I/O, full disk, corruption).
    #[error("store error: {0}")]
    Backend(String),
}

macro_rules! backend_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Backend(e.to_string())
            }
        }
    )*};
}
backend_from!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// A handle on the store; cheap to clone and share between tasks.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    secret: [u8; 32],
    /// Fault injection for tests: while this file exists, every write fails as if the disk
    /// were full (`LISTKEEPER_FAULT_STORE_FULL=/path`, read once at open).
    fault_full: Option<Arc<PathBuf>>,
}

/// Installation-wide values: the secret behind per-member unsubscribe tokens.
const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");

impl Store {
    /// Open (or create) the store in `dir` with a page cache of `cache_size` bytes.
    pub fn open(dir: &Path, cache_size: usize) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Backend(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join(FILE_NAME);
        let db = Database::builder()
            .set_cache_size(cache_size)
            .create(&path)
            .map_err(|source| match source {
                redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse(path.clone()),
                source => StoreError::Open {
                    path: path.clone(),
                    source,
                },
            })?;
        let fault_full =
            std::env::var_os("LISTKEEPER_FAULT_STORE_FULL").map(|p| Arc::new(PathBuf::from(p)));
        if let Some(p) = &fault_full {
            tracing::warn!(file = %p.display(), "fault injection armed: store writes fail while this file exists");
        }
        let mut store = Store {
            db: Arc::new(db),
            secret: [0; 32],
            fault_full,
        };
        store.init_tables()?;
        store.secret = store.load_secret()?;
        Ok(store)
    }

    /// Create every table once so that readers never meet a missing one.
    fn init_tables(&self) -> Result<(), StoreError> {
        let txn = self.write()?;
        members::init(&txn)?;
        journal::init(&txn)?;
        pending::init(&txn)?;
        rate::init(&txn)?;
        held::init(&txn)?;
        bounces::init(&txn)?;
        txn.commit()?;
        Ok(())
    }

    /// The installation's secret, created on first use (random, 256 bits).
    fn load_secret(&self) -> Result<[u8; 32], StoreError> {
        let txn = self.write()?;
        let secret = {
            let mut t = txn.open_table(META)?;
            let existing = t.get("secret")?.map(|v| v.value().to_vec());
            match existing {
                Some(v) if v.len() == 32 => {
                    let mut s = [0u8; 32];
                    s.copy_from_slice(&v);
                    s
                }
                _ => {
                    let mut s = [0u8; 32];
                    getrandom::fill(&mut s)
                        .map_err(|e| StoreError::Backend(format!("no randomness: {e}")))?;
                    t.insert("secret", s.as_slice())?;
                    s
                }
            }
        };
        txn.commit()?;
        Ok(secret)
    }

    /// The installation's secret (for message authentication codes in addresses).
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// A write transaction that is durable on commit.
    fn write(&self) -> Result<WriteTransaction, StoreError> {
        if self.fault_full.as_ref().is_some_and(|p| p.exists()) {
            return Err(StoreError::Backend(
                "No space left on device (fault injection)".into(),
            ));
        }
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        Ok(txn)
    }
}

/// Seconds since the epoch (journal ages).
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
