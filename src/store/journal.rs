//! The fan-out journal: which member batches of a post the MTA has already accepted, so a
//! retried post (after a crash or a 451) skips them (invariant 2).
//!
//! Rows are `(message key, first member key) -> (last member key, exceptions)`: members are
//! streamed in key order, so a batch is a key range; exceptions are members of the range that
//! the MTA deferred (4xx) and that must still be sent. Entries expire after the configured
//! TTL; expired ones are swept a few at a time by later writes (no timer, no polling).

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use sha2::{Digest, Sha256};

use super::{now_secs, Store, StoreError};

const JOURNAL: TableDefinition<(&[u8], &str), (&str, &str)> = TableDefinition::new("journal");
const JOURNAL_AGE: TableDefinition<(u64, &[u8]), ()> = TableDefinition::new("journal_age");

/// How many expired posts one write sweeps at most.
const SWEEP_PER_WRITE: usize = 16;

pub(super) fn init(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(JOURNAL)?;
    txn.open_table(JOURNAL_AGE)?;
    Ok(())
}

/// Identifies one post to one list: SHA-256 of the list, the Message-ID and the raw message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JournalKey(pub [u8; 32]);

impl JournalKey {
    /// Derive the key of `raw` (as received) posted to `list`.
    pub fn new(list: &str, message_id: &str, raw: &[u8]) -> JournalKey {
        let mut h = Sha256::new();
        h.update(list.as_bytes());
        h.update([0]);
        h.update(message_id.as_bytes());
        h.update([0]);
        h.update(raw);
        JournalKey(h.finalize().into())
    }

    /// Short hex form for logs.
    pub fn short(&self) -> String {
        self.0[..6].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A batch of members the MTA accepted: every key in `first..=last` except `except`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoneBatch {
    /// First member key of the batch.
    pub first: String,
    /// Last member key of the batch.
    pub last: String,
    /// Members of the range that still need the post (deferred by the MTA).
    pub except: Vec<String>,
}

impl DoneBatch {
    /// Was `key` delivered by this batch?
    pub fn covers(&self, key: &str) -> bool {
        self.first.as_str() <= key
            && key <= self.last.as_str()
            && !self.except.iter().any(|e| e == key)
    }
}

impl Store {
    /// The batches of this post already accepted by the MTA (empty for a new post).
    pub fn journal_load(&self, key: &JournalKey) -> Result<Vec<DoneBatch>, StoreError> {
        let txn = self.read()?;
        let t = txn.open_table(JOURNAL)?;
        let mut out = Vec::new();
        for row in t.range((key.0.as_slice(), "")..)? {
            let (k, v) = row?;
            let (msg, first) = k.value();
            if msg != key.0.as_slice() {
                break;
            }
            let (last, except) = v.value();
            out.push(DoneBatch {
                first: first.to_string(),
                last: last.to_string(),
                except: except
                    .split('\n')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            });
        }
        Ok(out)
    }

    /// Durably record one accepted batch; sweeps a few expired posts on the way.
    pub fn journal_record(
        &self,
        key: &JournalKey,
        batch: &DoneBatch,
        ttl_secs: u64,
    ) -> Result<(), StoreError> {
        self.journal_record_at(key, batch, ttl_secs, now_secs())
    }

    /// [`Store::journal_record`] with an explicit clock (seconds since the epoch).
    pub fn journal_record_at(
        &self,
        key: &JournalKey,
        batch: &DoneBatch,
        ttl_secs: u64,
        now: u64,
    ) -> Result<(), StoreError> {
        let txn = self.write()?;
        {
            let mut t = txn.open_table(JOURNAL)?;
            let mut ages = txn.open_table(JOURNAL_AGE)?;
            let is_new = match t.range((key.0.as_slice(), "")..)?.next() {
                Some(row) => row?.0.value().0 != key.0.as_slice(),
                None => true,
            };
            if is_new {
                ages.insert((now, key.0.as_slice()), ())?;
            }
            let except = batch.except.join("\n");
            t.insert(
                (key.0.as_slice(), batch.first.as_str()),
                (batch.last.as_str(), except.as_str()),
            )?;

            let cutoff = now.saturating_sub(ttl_secs);
            let mut expired: Vec<(u64, Vec<u8>)> = Vec::new();
            for row in ages
                .range((0u64, &[][..])..(cutoff, &[][..]))?
                .take(SWEEP_PER_WRITE)
            {
                let (k, _) = row?;
                let (at, msg) = k.value();
                expired.push((at, msg.to_vec()));
            }
            for (at, msg) in expired {
                ages.remove((at, msg.as_slice()))?;
                let firsts: Vec<String> = t
                    .range((msg.as_slice(), "")..)?
                    .map_while(|r| r.ok())
                    .take_while(|(k, _)| k.value().0 == msg.as_slice())
                    .map(|(k, _)| k.value().1.to_string())
                    .collect();
                for f in firsts {
                    t.remove((msg.as_slice(), f.as_str()))?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_survives_reopen_and_expires() {
        let dir = crate::store::test_dir();
        let key = JournalKey::new("dev@x.org", "<1@x>", b"body");
        assert_ne!(key, JournalKey::new("ops@x.org", "<1@x>", b"body"));
        let batch = DoneBatch {
            first: "a@x.org".into(),
            last: "m@x.org".into(),
            except: vec!["c@x.org".into()],
        };
        {
            let store = Store::open(dir.path(), 1 << 20).expect("open");
            assert!(store.journal_load(&key).expect("load").is_empty());
            store.journal_record(&key, &batch, 3600).expect("record");
        }
        let store = Store::open(dir.path(), 1 << 20).expect("reopen");
        let done = store.journal_load(&key).expect("load");
        assert_eq!(done, vec![batch.clone()]);
        assert!(done[0].covers("b@x.org"));
        assert!(!done[0].covers("c@x.org"));
        assert!(!done[0].covers("n@x.org"));

        // A write an hour and a second later sweeps the post recorded an hour before.
        let other = JournalKey::new("dev@x.org", "<2@x>", b"body");
        store
            .journal_record_at(&other, &batch, 3600, now_secs() + 3601)
            .expect("record");
        assert_eq!(store.journal_load(&other).expect("load").len(), 1);
        assert!(store.journal_load(&key).expect("load").is_empty());
    }
}
