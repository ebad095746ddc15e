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
//! The data directory and the file are the server's user's alone (`files`): created 0700 and
//! 0600, refused when they give other users any access.

mod bounces;
mod fault;
mod files;
mod held;
mod journal;
pub mod members;
mod pending;
mod rate;
mod token;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction,
};

pub use bounces::{BounceOutcome, BounceRecord, BounceStatus, Scoring};
pub use held::{Decided, Decision, Held, HeldState};
pub use journal::{DoneBatch, JournalKey};
pub use members::{AddOutcome, Member};
pub use pending::{Completion, Pending, PendingKind};
pub use rate::Budget;
pub use token::{ct_eq, new_token, well_formed as token_well_formed};

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
    /// The data directory or the store file lets other users in (mode & 0o007): they could
    /// read confirmation tokens and the installation's secret.
    #[error("{} is open to other users (mode {mode:04o}); the store holds tokens and secrets that only the server's user may read. Run `{fix}` and try again", path.display())]
    Exposed {
        /// The directory or file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// The command that fixes it.
        fix: String,
    },
    /// A command that only reads found no store: nothing was created.
    #[error("there is no store in {} (nothing was created there: check server.data_dir; `listkeeper serve` and `listkeeper members add` create it)", .0.display())]
    Missing(PathBuf),
    /// Any other backend error (I/O, full disk, corruption).
    #[error("store error: {0}")]
    Backend(String),
}

/// Counts store errors that redb latches (I/O errors): a store whose next transaction sees a
/// new count checks whether its database is the one that failed, and reopens it. Without this a
/// server that only reads after a failed write (small open lists) would keep failing on every
/// page not in the cache until some write came.
static IO_ERRORS: AtomicU64 = AtomicU64::new(0);

/// Whether a redb error is an I/O failure, after which redb refuses to go on.
trait Latching {
    fn latches(&self) -> bool;
}

impl Latching for redb::StorageError {
    fn latches(&self) -> bool {
        matches!(
            self,
            redb::StorageError::Io(_) | redb::StorageError::PreviousIo
        )
    }
}

impl Latching for redb::Error {
    fn latches(&self) -> bool {
        matches!(self, redb::Error::Io(_) | redb::Error::PreviousIo)
    }
}

impl Latching for redb::TransactionError {
    fn latches(&self) -> bool {
        matches!(self, redb::TransactionError::Storage(e) if e.latches())
    }
}

impl Latching for redb::TableError {
    fn latches(&self) -> bool {
        matches!(self, redb::TableError::Storage(e) if e.latches())
    }
}

impl Latching for redb::CommitError {
    fn latches(&self) -> bool {
        matches!(self, redb::CommitError::Storage(e) if e.latches())
    }
}

impl Latching for redb::SetDurabilityError {
    fn latches(&self) -> bool {
        false
    }
}

macro_rules! backend_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                if e.latches() {
                    IO_ERRORS.fetch_add(1, Ordering::AcqRel);
                }
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
    backend: Arc<Backend>,
    secret: [u8; 32],
}

/// The open database, replaced when an I/O error has made it unusable.
///
/// redb latches an I/O error (a full disk failing a commit, say): every later transaction of
/// that `Database` fails with `PreviousIo` until it is closed and opened again, which also
/// repairs the file from its last durable commit. Without a reopen the server would answer 4xx
/// for ever after one full-disk moment; with it, the first transaction after space is back
/// succeeds.
struct Backend {
    path: PathBuf,
    cache_size: usize,
    /// Fault injection for tests: while this file exists, the file system is full
    /// (`LISTKEEPER_FAULT_STORE_FULL=/path`, read once at open; see `fault.rs`).
    fault_full: Option<PathBuf>,
    /// The open database and its generation (one more at every reopen); `None` after a failed
    /// reopen. Callers never hold a database while they wait for this lock, so a reopen only
    /// waits for transactions in flight.
    db: RwLock<Option<(u64, Arc<Database>)>>,
    /// The last generation handed out: 0 at open, so also the number of reopens.
    generations: AtomicU64,
    /// When a reopen was last tried, whether it worked or not: at most one a `REOPEN_RETRY`.
    last_attempt: std::sync::Mutex<Option<Instant>>,
    /// The value of `IO_ERRORS` when this store last checked its database.
    io_errors_checked: AtomicU64,
}

/// How long a reopen waits for transactions still holding the failed database (its file lock)
/// to end.
const REOPEN_WAIT: Duration = Duration::from_secs(5);

/// How often a reopen is tried: opening repairs the file, which reads all of it, and on a disk
/// that is still full the reopened database can fail again at once.
const REOPEN_RETRY: Duration = Duration::from_secs(1);

impl Backend {
    fn open(&self) -> Result<Database, StoreError> {
        let path = &self.path;
        let mut builder = Database::builder();
        builder.set_cache_size(self.cache_size);
        let db = match &self.fault_full {
            None => builder.create(path),
            Some(flag) => std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(redb::DatabaseError::from)
                .and_then(|file| fault::FullDisk::new(file, flag.clone()))
                .and_then(|backend| builder.create_with_backend(backend)),
        };
        db.map_err(|source| match source {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse(path.to_path_buf()),
            source => StoreError::Open {
                path: path.to_path_buf(),
                source,
            },
        })
    }

    /// The database to use, with its generation.
    fn current(&self) -> Result<(u64, Arc<Database>), StoreError> {
        let slot = self.db.read().unwrap_or_else(PoisonError::into_inner);
        let Some((generation, db)) = slot.clone() else {
            drop(slot);
            return self.reopen(None);
        };
        drop(slot);
        let errors = IO_ERRORS.load(Ordering::Acquire);
        if self.io_errors_checked.swap(errors, Ordering::AcqRel) != errors {
            // Some store met an I/O error: is it this one? Beginning a write transaction fails
            // at once on a latched database, and this one never waits.
            match db.try_begin_write() {
                Err(redb::TransactionError::Storage(e)) if e.latches() => {
                    tracing::warn!(store = %self.path.display(), error = %e, "store unusable after an I/O error; reopening it");
                    drop(db);
                    return self.reopen(Some(generation));
                }
                // Healthy: nothing was written.
                Ok(probe) => {
                    let _ = probe.abort();
                }
                // Busy: that writer meets the error itself if there is one.
                Err(_) => {}
            }
        }
        Ok((generation, db))
    }

    /// Close the database of generation `failed` (unless another caller has already replaced
    /// it; `None`: there is none) and open the file again.
    fn reopen(&self, failed: Option<u64>) -> Result<(u64, Arc<Database>), StoreError> {
        let mut slot = self.db.write().unwrap_or_else(PoisonError::into_inner);
        match (failed, slot.as_ref()) {
            // Another caller reopened it meanwhile.
            (Some(failed), Some((generation, db))) if *generation != failed => {
                return Ok((*generation, db.clone()))
            }
            (None, Some((generation, db))) => return Ok((*generation, db.clone())),
            _ => {}
        }
        {
            let mut last = self
                .last_attempt
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|t| t.elapsed() < REOPEN_RETRY) {
                return Err(StoreError::Backend(
                    "the store is recovering from an I/O error; trying again shortly".into(),
                ));
            }
            *last = Some(Instant::now());
        }
        // Dropping the last handle closes the file and releases its lock; a transaction still
        // running on it keeps it open until it ends.
        *slot = None;
        let started = Instant::now();
        loop {
            match self.open() {
                Ok(db) => {
                    let db = Arc::new(db);
                    let generation = self.generations.fetch_add(1, Ordering::AcqRel) + 1;
                    *slot = Some((generation, db.clone()));
                    crate::stats::STORE_REOPENS.inc();
                    tracing::warn!(
                        store = %self.path.display(),
                        ms = started.elapsed().as_millis() as u64,
                        "store reopened after an I/O error"
                    );
                    return Ok((generation, db));
                }
                Err(StoreError::InUse(_)) if started.elapsed() < REOPEN_WAIT => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => {
                    tracing::error!(store = %self.path.display(), error = %e, "store could not be reopened; the next transaction a second from now tries again");
                    return Err(e);
                }
            }
        }
    }

    /// Begin a transaction, reopening the database once if an earlier I/O error left it
    /// unusable.
    fn begin<T>(
        &self,
        begin: impl Fn(&Database) -> Result<T, redb::TransactionError>,
    ) -> Result<T, StoreError> {
        let (generation, db) = self.current()?;
        match begin(&db) {
            Ok(txn) => Ok(txn),
            Err(redb::TransactionError::Storage(e))
                if e.latches() || matches!(e, redb::StorageError::Corrupted(_)) =>
            {
                tracing::warn!(store = %self.path.display(), error = %e, "store unusable after an I/O error; reopening it");
                drop(db);
                let (_, db) = self.reopen(Some(generation))?;
                Ok(begin(&db)?)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Installation-wide values: the secret behind per-member unsubscribe tokens.
const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");

impl Store {
    /// Open (or create) the store in `dir` with a page cache of `cache_size` bytes. A directory
    /// or file created here is for the server's user alone (0700, 0600) whatever the umask; an
    /// existing one that other users may read is refused ([`StoreError::Exposed`]).
    pub fn open(dir: &Path, cache_size: usize) -> Result<Store, StoreError> {
        let fault_full = std::env::var_os("LISTKEEPER_FAULT_STORE_FULL").map(PathBuf::from);
        if let Some(p) = &fault_full {
            tracing::warn!(file = %p.display(), "fault injection armed: the store's file system is full while this file exists");
        }
        Store::open_with(dir, cache_size, fault_full)
    }

    /// [`Store::open`] of a store that must exist already ([`StoreError::Missing`] when
    /// there is none): for commands that only read, so that a mistyped `server.data_dir`
    /// never becomes a new empty store.
    pub fn open_existing(dir: &Path, cache_size: usize) -> Result<Store, StoreError> {
        if !dir.join(FILE_NAME).exists() {
            return Err(StoreError::Missing(dir.to_path_buf()));
        }
        Store::open(dir, cache_size)
    }

    /// [`Store::open`] with the fault hook given rather than read from the environment.
    fn open_with(
        dir: &Path,
        cache_size: usize,
        fault_full: Option<PathBuf>,
    ) -> Result<Store, StoreError> {
        files::prepare(dir, &dir.join(FILE_NAME))?;
        let mut backend = Backend {
            path: dir.join(FILE_NAME),
            cache_size,
            fault_full,
            db: RwLock::new(None),
            generations: AtomicU64::new(0),
            last_attempt: std::sync::Mutex::new(None),
            io_errors_checked: AtomicU64::new(IO_ERRORS.load(Ordering::Acquire)),
        };
        let db = backend.open()?;
        backend.db = RwLock::new(Some((0, Arc::new(db))));
        let mut store = Store {
            backend: Arc::new(backend),
            secret: [0; 32],
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

    /// A read transaction on the latest commit.
    fn read(&self) -> Result<ReadTransaction, StoreError> {
        self.backend.begin(Database::begin_read)
    }

    /// A write transaction that is durable on commit.
    fn write(&self) -> Result<WriteTransaction, StoreError> {
        let mut txn = self.backend.begin(Database::begin_write)?;
        txn.set_durability(Durability::Immediate)?;
        Ok(txn)
    }
}

/// A temporary data directory for tests, 0700 as `Store::open` creates one: tempfile's follow
/// the umask (0755 under 022), and the store refuses a directory other users may enter.
#[cfg(test)]
pub(crate) fn test_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(files::DIR_MODE))
        .tempdir()
        .expect("tempdir")
}

/// Seconds since the epoch (journal ages).
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;

    fn addr(s: &str) -> Address {
        Address::parse(s).expect("address")
    }

    const LIST: &str = "l@example.org";

    /// A store with one member, a@, on a disk that is full (until the returned flag file is
    /// removed), after the write that found it full: redb has latched the error.
    fn latched() -> (tempfile::TempDir, PathBuf, Store) {
        let dir = crate::store::test_dir();
        let flag = dir.path().join("full");
        let s = Store::open_with(dir.path(), 1 << 20, Some(flag.clone())).expect("open");
        s.add_members(LIST, &[addr("a@example.org")])
            .expect("add a");
        std::fs::write(&flag, b"").expect("fill the disk");
        let e = s
            .add_members(LIST, &[addr("b@example.org")])
            .expect_err("a write on a full disk fails");
        assert!(e.to_string().contains("No space left"), "{e}");
        (dir, flag, s)
    }

    #[test]
    fn a_full_disk_fails_writes_and_the_store_reopens_once_space_is_back() {
        let (_dir, flag, s) = latched();
        // While the disk stays full every transaction fails (the reopen that would repair the
        // file needs to write), and reopens are not tried more often than REOPEN_RETRY.
        assert!(s.add_members(LIST, &[addr("c@example.org")]).is_err());
        assert!(s.is_member(LIST, &addr("a@example.org")).is_err());

        std::fs::remove_file(&flag).expect("space is back");
        std::thread::sleep(REOPEN_RETRY);
        // The same handle works again, with what was committed before the fault and nothing
        // of what failed.
        assert!(s
            .is_member(LIST, &addr("a@example.org"))
            .expect("read after reopen"));
        assert!(!s.is_member(LIST, &addr("b@example.org")).expect("read"));
        assert!(!s.is_member(LIST, &addr("c@example.org")).expect("read"));
        s.add_members(LIST, &[addr("b@example.org")])
            .expect("write after reopen");
        assert_eq!(s.member_count(LIST).expect("count"), 2);

        // A clone made before the fault shares the reopened database.
        let clone = s.clone();
        assert!(clone.is_member(LIST, &addr("b@example.org")).expect("read"));
    }

    #[test]
    fn a_failed_write_is_followed_by_a_reopen_even_when_only_reads_come_next() {
        let (_dir, flag, s) = latched();
        std::fs::remove_file(&flag).expect("space is back");
        assert_eq!(s.backend.generations.load(Ordering::Relaxed), 0);
        // The next transaction is a read: it finds the database latched and reopens it, so
        // reads of pages not in the cache do not fail with PreviousIo until some write comes.
        assert!(s.is_member(LIST, &addr("a@example.org")).expect("read"));
        assert_eq!(s.backend.generations.load(Ordering::Relaxed), 1);
        assert!(!s.is_member(LIST, &addr("b@example.org")).expect("read"));
        assert_eq!(s.backend.generations.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn many_threads_meeting_a_latched_database_share_one_reopen() {
        let (_dir, flag, s) = latched();
        std::fs::remove_file(&flag).expect("space is back");
        // Eight writers find the database latched at once: one reopens it, the others wait
        // for that and use the new one (none holds the old database while it waits, which
        // would keep its file locked and fail the reopen).
        let start = std::sync::Barrier::new(8);
        let results: Vec<Result<AddOutcome, StoreError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let (s, start) = (s.clone(), &start);
                    scope.spawn(move || {
                        start.wait();
                        s.add_members(LIST, &[addr(&format!("m{i}@example.org"))])
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        for r in &results {
            assert!(r.is_ok(), "{r:?}");
        }
        assert_eq!(s.member_count(LIST).expect("count"), 9);
        assert_eq!(s.backend.generations.load(Ordering::Relaxed), 1);
    }
}
