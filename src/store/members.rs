//! Members per list: key `(list, member key)`, value `(flags, address as given)`.
//! Read in sorted batches so that no caller ever holds a whole list in memory.

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};

use super::{Store, StoreError};
use crate::address::Address;

pub(super) const MEMBERS: TableDefinition<(&str, &str), (u64, &str)> =
    TableDefinition::new("members");

/// Member flag: subscribed but receives no posts (`set nomail on`).
pub const FLAG_NOMAIL: u64 = 1;

/// Member flag: this member's posts are held for a moderator.
pub const FLAG_MODERATED: u64 = 2;

/// Member flag: delivery disabled because the address keeps bouncing.
pub const FLAG_DISABLED: u64 = 4;

/// The member settings by name, as the CLI shows and sets them (`members list`, `members set`,
/// export and import).
pub const FLAG_NAMES: [(u64, &str); 3] = [
    (FLAG_MODERATED, "moderated"),
    (FLAG_NOMAIL, "nomail"),
    (FLAG_DISABLED, "disabled"),
];

/// The names of the settings in `flags`, in [`FLAG_NAMES`] order.
pub fn flag_names(flags: u64) -> Vec<&'static str> {
    FLAG_NAMES
        .iter()
        .filter(|(f, _)| flags & f != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// The flag called `name` (see [`FLAG_NAMES`]).
pub fn flag_by_name(name: &str) -> Option<u64> {
    FLAG_NAMES.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
}

pub(super) fn init(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(MEMBERS)?;
    Ok(())
}

/// One member of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The lowercase key (sort order and identity).
    pub key: String,
    /// The address as the member gave it (used on the envelope).
    pub address: String,
    /// `FLAG_*` bits.
    pub flags: u64,
}

/// Result of adding or removing a set of addresses.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AddOutcome {
    /// Newly added (or removed).
    pub changed: u64,
    /// Already present (or, for removal, not a member).
    pub unchanged: u64,
}

impl Store {
    /// Add members to `list` (its key `name@domain`) in one durable transaction.
    pub fn add_members(&self, list: &str, addrs: &[Address]) -> Result<AddOutcome, StoreError> {
        let txn = self.write()?;
        let mut out = AddOutcome::default();
        {
            let mut t = txn.open_table(MEMBERS)?;
            for a in addrs {
                let key = a.key();
                if t.get((list, key.as_str()))?.is_some() {
                    out.unchanged += 1;
                } else {
                    t.insert((list, key.as_str()), (0u64, a.to_string().as_str()))?;
                    out.changed += 1;
                }
            }
        }
        txn.commit()?;
        Ok(out)
    }

    /// Remove members from `list` in one durable transaction.
    pub fn remove_members(&self, list: &str, addrs: &[Address]) -> Result<AddOutcome, StoreError> {
        let txn = self.write()?;
        let mut out = AddOutcome::default();
        {
            let mut t = txn.open_table(MEMBERS)?;
            for a in addrs {
                if t.remove((list, a.key().as_str()))?.is_some() {
                    out.changed += 1;
                } else {
                    out.unchanged += 1;
                }
            }
        }
        txn.commit()?;
        Ok(out)
    }

    /// Switch `flag` on or off for the member `address` of `list`; false when it is no member.
    pub fn member_set_flag(
        &self,
        list: &str,
        address: &str,
        flag: u64,
        on: bool,
    ) -> Result<bool, StoreError> {
        let key = address.to_lowercase();
        let txn = self.write()?;
        let found = {
            let mut t = txn.open_table(MEMBERS)?;
            let current = t.get((list, key.as_str()))?.map(|v| {
                let (flags, a) = v.value();
                (flags, a.to_string())
            });
            match current {
                Some((flags, a)) => {
                    let flags = if on { flags | flag } else { flags & !flag };
                    t.insert((list, key.as_str()), (flags, a.as_str()))?;
                    true
                }
                None => false,
            }
        };
        txn.commit()?;
        Ok(found)
    }

    /// Put members with exactly the given flags into `list` in one durable transaction (an
    /// import): new addresses are added, members already there get these flags. `changed`
    /// counts the added ones.
    pub fn members_put(
        &self,
        list: &str,
        members: &[(Address, u64)],
    ) -> Result<AddOutcome, StoreError> {
        let txn = self.write()?;
        let mut out = AddOutcome::default();
        {
            let mut t = txn.open_table(MEMBERS)?;
            for (addr, flags) in members {
                let key = addr.key();
                let old = t
                    .get((list, key.as_str()))?
                    .map(|v| v.value().1.to_string());
                let shown = old.clone().unwrap_or_else(|| addr.to_string());
                t.insert((list, key.as_str()), (*flags, shown.as_str()))?;
                if old.is_none() {
                    out.changed += 1;
                } else {
                    out.unchanged += 1;
                }
            }
        }
        txn.commit()?;
        Ok(out)
    }

    /// Is `addr` a member of `list`?
    pub fn is_member(&self, list: &str, addr: &Address) -> Result<bool, StoreError> {
        let txn = self.read()?;
        let t = txn.open_table(MEMBERS)?;
        Ok(t.get((list, addr.key().as_str()))?.is_some())
    }

    /// Up to `limit` members of `list` whose key sorts after `after` (the start when None).
    /// Successive calls stream the whole list in bounded memory.
    pub fn members_after(
        &self,
        list: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError> {
        let txn = self.read()?;
        let t = txn.open_table(MEMBERS)?;
        let start = after.unwrap_or("");
        let mut out = Vec::with_capacity(limit.min(4096));
        for row in t.range((list, start)..)? {
            let (k, v) = row?;
            let (l, key) = k.value();
            if l != list {
                break;
            }
            if after.is_some() && key == start {
                continue;
            }
            let (flags, address) = v.value();
            out.push(Member {
                key: key.to_string(),
                address: address.to_string(),
                flags,
            });
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Number of members of `list` (counts by streaming; used by the CLI only).
    pub fn member_count(&self, list: &str) -> Result<u64, StoreError> {
        let txn = self.read()?;
        let t = txn.open_table(MEMBERS)?;
        let mut n = 0;
        for row in t.range((list, "")..)? {
            let (k, _) = row?;
            if k.value().0 != list {
                break;
            }
            n += 1;
        }
        Ok(n)
    }

    /// Number of members of all lists together.
    pub fn total_members(&self) -> Result<u64, StoreError> {
        let txn = self.read()?;
        Ok(txn.open_table(MEMBERS)?.len()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(v: &[&str]) -> Vec<Address> {
        v.iter().filter_map(|a| Address::parse(a).ok()).collect()
    }

    #[test]
    fn members_stream_in_sorted_batches_per_list() {
        let dir = crate::store::test_dir();
        let store = Store::open(dir.path(), 1 << 20).expect("open");
        let out = store
            .add_members("dev@x.org", &addrs(&["c@x.org", "A@x.org", "b@x.org"]))
            .expect("add");
        assert_eq!(
            out,
            AddOutcome {
                changed: 3,
                unchanged: 0
            }
        );
        let out = store
            .add_members("dev@x.org", &addrs(&["a@X.org"]))
            .expect("add");
        assert_eq!(
            out,
            AddOutcome {
                changed: 0,
                unchanged: 1
            }
        );
        store
            .add_members("dev-z@x.org", &addrs(&["z@x.org"]))
            .expect("add");
        store
            .add_members("de@x.org", &addrs(&["y@x.org"]))
            .expect("add");

        let first = store.members_after("dev@x.org", None, 2).expect("read");
        assert_eq!(
            first.iter().map(|m| m.address.as_str()).collect::<Vec<_>>(),
            ["A@x.org", "b@x.org"]
        );
        let rest = store
            .members_after("dev@x.org", Some(&first[1].key), 2)
            .expect("read");
        assert_eq!(
            rest.iter().map(|m| m.key.as_str()).collect::<Vec<_>>(),
            ["c@x.org"]
        );
        assert_eq!(store.member_count("dev@x.org").expect("count"), 3);
        assert!(store
            .is_member("dev@x.org", &addrs(&["B@X.ORG"])[0])
            .expect("read"));

        let out = store
            .remove_members("dev@x.org", &addrs(&["b@x.org", "q@x.org"]))
            .expect("remove");
        assert_eq!(
            out,
            AddOutcome {
                changed: 1,
                unchanged: 1
            }
        );
        assert_eq!(store.member_count("dev@x.org").expect("count"), 2);
    }

    #[test]
    fn a_second_process_cannot_open_it() {
        let dir = crate::store::test_dir();
        let _store = Store::open(dir.path(), 1 << 20).expect("open");
        assert!(matches!(
            Store::open(dir.path(), 1 << 20),
            Err(StoreError::InUse(_))
        ));
    }
}
