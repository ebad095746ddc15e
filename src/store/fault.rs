//! Fault injection for tests: a storage backend that behaves like a full disk while a flag file
//! exists (`LISTKEEPER_FAULT_STORE_FULL=/path`).
//!
//! It sits under redb, where a real `ENOSPC` would surface, so the whole failure path runs as
//! on a full file system: the commit fails, redb latches the I/O error, the store reopens the
//! file once the flag is gone. Only built into a store when the variable is set; the server
//! logs a warning at start when it is.

use std::fs::File;
use std::io;
use std::ops::Bound;
use std::path::PathBuf;

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// A file backend whose writes fail with `ENOSPC` while `flag` exists.
#[derive(Debug)]
pub(super) struct FullDisk {
    inner: FileBackend,
    flag: PathBuf,
}

impl FullDisk {
    pub(super) fn new(file: File, flag: PathBuf) -> Result<FullDisk, redb::DatabaseError> {
        Ok(FullDisk {
            inner: FileBackend::new(file)?,
            flag,
        })
    }

    fn check(&self) -> Result<(), io::Error> {
        if self.flag.exists() {
            Err(io::Error::from_raw_os_error(ENOSPC))
        } else {
            Ok(())
        }
    }
}

/// `ENOSPC` on Linux: "No space left on device".
const ENOSPC: i32 = 28;

impl StorageBackend for FullDisk {
    fn len(&self) -> Result<u64, io::Error> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        if len > self.inner.len()? {
            self.check()?;
        }
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        self.check()?;
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.check()?;
        self.inner.write(offset, data)
    }

    fn close(&self) -> Result<(), io::Error> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}
