//! Hourly caps on the mail that requests make listkeeper send (confirmations, replies,
//! acknowledgements): per address and per list, so a forged sender costs a bounded number of
//! mails to its victim.
//!
//! What an address's count means: mails it was sent since it last proved that it reads them.
//! Completing a token (which only the mail to that address carried) is that proof, and clears
//! the address's count for the hour ([`Store::rate_proven`]); the list-wide counts are never
//! cleared. So a person who asks and confirms (help, join, confirm, leave, confirm, ...) never
//! meets the cap, while a forged sender, whose victim answers nothing, still gets at most
//! `per_address_per_hour` mails sent to it.

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::{Store, StoreError};

/// (hour, list, address, or a list-wide budget's key) -> mails counted in that hour.
const RATE: TableDefinition<(u64, &str, &str), u64> = TableDefinition::new("rate");

/// Counters of past hours removed per write, so the table never grows.
const SWEEP_PER_WRITE: usize = 64;

pub(super) fn init(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(RATE)?;
    Ok(())
}

/// The list-wide budgets. An address counts once for all of them, so its cap bounds every
/// mail it is sent; the list-wide counts are kept apart, so that spending one (forged `help`
/// requests from random addresses) does not stop the other (a newcomer's confirmation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// Replies, results and acknowledgements.
    Replies,
    /// Confirmation requests (each one also creates a pending token).
    Confirmations,
}

impl Budget {
    /// The key of the list-wide counter (never an address: addresses have an `@`).
    fn key(self) -> &'static str {
        match self {
            Budget::Replies => "",
            Budget::Confirmations => "#confirmations",
        }
    }
}

impl Store {
    /// Count one reply to `address` of `list` in the hour `now` falls in; false (and nothing
    /// counted) when the address or the list's reply budget is over its cap.
    pub fn rate_allow(
        &self,
        list: &str,
        address: &str,
        now: u64,
        per_address: u64,
        per_list: u64,
    ) -> Result<bool, StoreError> {
        self.rate_allow_in(Budget::Replies, list, address, now, per_address, per_list)
    }

    /// Count one mail of `budget` to `address` of `list` in the hour `now` falls in; false (and
    /// nothing counted) when the address or that budget of the list is over its cap.
    pub fn rate_allow_in(
        &self,
        budget: Budget,
        list: &str,
        address: &str,
        now: u64,
        per_address: u64,
        per_list: u64,
    ) -> Result<bool, StoreError> {
        let hour = now / 3600;
        let akey = address.to_lowercase();
        let txn = self.write()?;
        let allowed = {
            let mut t = txn.open_table(RATE)?;
            let a = t.get((hour, list, akey.as_str()))?.map_or(0, |v| v.value());
            let l = t.get((hour, list, budget.key()))?.map_or(0, |v| v.value());
            let ok = a < per_address && l < per_list;
            if ok {
                t.insert((hour, list, akey.as_str()), a + 1)?;
                t.insert((hour, list, budget.key()), l + 1)?;
            }
            // Counters of earlier hours are of no use any more.
            let old: Vec<(u64, String, String)> = t
                .range((0u64, "", "")..(hour, "", ""))?
                .take(SWEEP_PER_WRITE)
                .filter_map(|r| r.ok())
                .map(|(k, _)| {
                    let (h, l, a) = k.value();
                    (h, l.to_string(), a.to_string())
                })
                .collect();
            for (h, l, a) in old {
                t.remove((h, l.as_str(), a.as_str()))?;
            }
            ok
        };
        txn.commit()?;
        Ok(allowed)
    }
}

impl Store {
    /// `address` completed a token of `list` at `now`: it reads what it is sent, so the mails
    /// counted to it this hour stop counting (the list-wide counts stay).
    pub fn rate_proven(&self, list: &str, address: &str, now: u64) -> Result<(), StoreError> {
        let akey = address.to_lowercase();
        let txn = self.write()?;
        txn.open_table(RATE)?
            .remove((now / 3600, list, akey.as_str()))?;
        txn.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_caps_per_address_and_per_list() {
        let dir = crate::store::test_dir();
        let s = Store::open(dir.path(), 1 << 20).expect("open");
        let now = 7200 * 10;
        assert!(s.rate_allow("dev", "v@x.org", now, 2, 3).expect("rate"));
        assert!(s.rate_allow("dev", "V@x.org", now, 2, 3).expect("rate"));
        assert!(!s.rate_allow("dev", "v@x.org", now, 2, 3).expect("rate"));
        assert!(s.rate_allow("dev", "w@x.org", now, 2, 3).expect("rate"));
        assert!(
            !s.rate_allow("dev", "z@x.org", now, 2, 3).expect("rate"),
            "list cap"
        );
        assert!(
            s.rate_allow("dev", "v@x.org", now + 3600, 2, 3)
                .expect("rate"),
            "next hour"
        );
    }

    #[test]
    fn the_list_budgets_are_apart_and_the_address_cap_is_shared() {
        let dir = crate::store::test_dir();
        let s = Store::open(dir.path(), 1 << 20).expect("open");
        let now = 3600 * 5;
        let allow = |b, a: &str| s.rate_allow_in(b, "dev", a, now, 2, 2).expect("rate");
        assert!(allow(Budget::Replies, "a@x.org"));
        assert!(allow(Budget::Replies, "b@x.org"));
        assert!(
            !allow(Budget::Replies, "c@x.org"),
            "the reply budget is spent"
        );
        assert!(
            allow(Budget::Confirmations, "c@x.org"),
            "confirmations have their own"
        );
        // a@ has had one reply: one confirmation more, then its cap is reached.
        assert!(allow(Budget::Confirmations, "a@x.org"));
        assert!(
            !allow(Budget::Confirmations, "d@x.org"),
            "confirmations spent too"
        );
        let more = s.rate_allow_in(Budget::Replies, "dev", "a@x.org", now, 2, 99);
        assert!(
            !more.expect("rate"),
            "a@ had a reply and a confirmation: its cap of 2"
        );
    }

    #[test]
    fn a_proven_address_starts_again_and_the_list_count_stays() {
        let dir = crate::store::test_dir();
        let s = Store::open(dir.path(), 1 << 20).expect("open");
        let now = 3600 * 9;
        assert!(s.rate_allow("dev", "a@x.org", now, 1, 3).expect("rate"));
        assert!(!s.rate_allow("dev", "a@x.org", now, 1, 3).expect("rate"));
        s.rate_proven("dev", "A@x.org", now).expect("proven");
        assert!(s.rate_allow("dev", "a@x.org", now, 1, 3).expect("rate"));
        assert!(s.rate_allow("dev", "b@x.org", now, 1, 3).expect("rate"));
        assert!(
            !s.rate_allow("dev", "c@x.org", now, 1, 3).expect("rate"),
            "the list's count was not cleared"
        );
    }
}
