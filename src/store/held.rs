//! Held posts (the moderation queue) and the Message-IDs a list has distributed (duplicate
//! detection).
//!
//! A held post is stored whole with its reasons, sender, time and a random token before the
//! LMTP 250. A decision moves it through `Held -> Approved -> Done` or to `Rejected` /
//! `Discarded` in single transactions, so an approval counts once however often it is sent:
//! an `Approved` post whose fan-out did not finish is resumed by the next approval (the fan-out
//! journal skips what was sent), a `Done` one is "already approved". Decided rows stay, without
//! the message, until they expire, so late answers get a sentence instead of "unknown".

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};

use super::members::{FLAG_MODERATED, MEMBERS};
use super::token::find_token;
use super::{Store, StoreError};

/// (list, sender, received, expires, reasons, subject, message id, state)
type HeldRow<'a> = (&'a str, &'a str, u64, u64, &'a str, &'a str, &'a str, u8);

/// token -> [`HeldRow`]; here and in `HELD_MSG` a given token is looked up only through
/// `find_token`.
const HELD: TableDefinition<&str, HeldRow<'static>> = TableDefinition::new("held");
/// token -> the post as held (CRLF, after content filtering).
const HELD_MSG: TableDefinition<&str, &[u8]> = TableDefinition::new("held_msg");
/// post identity (journal key) -> token: a retried delivery finds its held post.
const HELD_BY_KEY: TableDefinition<&[u8], &str> = TableDefinition::new("held_by_key");
/// (list, token) -> (): the rows of one list, without scanning every list's.
const HELD_BY_LIST: TableDefinition<(&str, &str), ()> = TableDefinition::new("held_by_list");
/// (expires, token) -> (): expiry order.
const HELD_EXP: TableDefinition<(u64, &str), ()> = TableDefinition::new("held_exp");
/// (list, message id) -> when distributed.
const SEEN: TableDefinition<(&str, &str), u64> = TableDefinition::new("seen");
/// (when, list, message id) -> (): sweep order.
const SEEN_AGE: TableDefinition<(u64, &str, &str), ()> = TableDefinition::new("seen_age");

/// Seen Message-IDs are kept at most this long (the largest `duplicate_days`).
const SEEN_MAX_SECS: u64 = 365 * 86_400;

pub(super) fn init(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(HELD)?;
    txn.open_table(HELD_MSG)?;
    txn.open_table(HELD_BY_KEY)?;
    txn.open_table(HELD_EXP)?;
    txn.open_table(SEEN)?;
    txn.open_table(SEEN_AGE)?;
    // A store made before the per-list index: build it once.
    let mut by_list = txn.open_table(HELD_BY_LIST)?;
    if by_list.is_empty()? {
        let held = txn.open_table(HELD)?;
        for row in held.iter()? {
            let (k, v) = row?;
            by_list.insert((v.value().0, k.value()), ())?;
        }
    }
    Ok(())
}

/// Every held row of `list` (any state), through the per-list index.
fn rows_of(
    by_list: &impl ReadableTable<(&'static str, &'static str), ()>,
    held: &impl ReadableTable<&'static str, HeldRow<'static>>,
    list: &str,
) -> Result<Vec<Held>, StoreError> {
    let mut out = Vec::new();
    for row in by_list.range((list, "")..)? {
        let (k, _) = row?;
        let (l, token) = k.value();
        if l != list {
            break;
        }
        if let Some(v) = held.get(token)? {
            out.push(decode(token, v.value()));
        }
    }
    Ok(out)
}

/// Where a held post stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldState {
    /// Waiting for a moderator.
    Held,
    /// Approved; its fan-out has not finished yet.
    Approved,
    /// Approved and distributed.
    Done,
    /// Rejected (the poster was told).
    Rejected,
    /// Discarded silently.
    Discarded,
}

impl HeldState {
    fn code(self) -> u8 {
        match self {
            HeldState::Held => 0,
            HeldState::Approved => 1,
            HeldState::Done => 2,
            HeldState::Rejected => 3,
            HeldState::Discarded => 4,
        }
    }

    fn from_code(c: u8) -> HeldState {
        match c {
            1 => HeldState::Approved,
            2 => HeldState::Done,
            3 => HeldState::Rejected,
            4 => HeldState::Discarded,
            _ => HeldState::Held,
        }
    }

    /// Word for the CLI and replies.
    pub fn name(self) -> &'static str {
        match self {
            HeldState::Held => "held",
            HeldState::Approved => "approved",
            HeldState::Done => "distributed",
            HeldState::Rejected => "rejected",
            HeldState::Discarded => "discarded",
        }
    }
}

/// A held post's record (without the message bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The secret that moderators use.
    pub token: String,
    /// The list key.
    pub list: String,
    /// The poster's address.
    pub sender: String,
    /// Seconds since the epoch.
    pub received: u64,
    /// Seconds since the epoch.
    pub expires: u64,
    /// Why it was held.
    pub reasons: Vec<String>,
    /// Its subject (decoded, one line).
    pub subject: String,
    /// Its Message-ID.
    pub message_id: String,
    /// Where it stands.
    pub state: HeldState,
}

/// A moderator's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Distribute.
    Approve,
    /// Refuse, telling the poster.
    Reject,
    /// Drop silently.
    Discard,
}

/// The result of a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    /// Done now; for an approval the post must now be distributed.
    Now(Held),
    /// An approval whose distribution did not finish: distribute (again; the journal skips
    /// what went out).
    Resume(Held),
    /// Decided before.
    Already(Held),
    /// No such held post on this list.
    Unknown,
}

/// The held post stored under `token` (a token from outside: see `find_token`).
fn read(
    t: &impl ReadableTable<&'static str, HeldRow<'static>>,
    token: &str,
) -> Result<Option<Held>, StoreError> {
    Ok(find_token(t, token)?.map(|v| decode(token, v.value())))
}

fn decode(token: &str, row: HeldRow<'_>) -> Held {
    let (list, sender, received, expires, reasons, subject, message_id, state) = row;
    Held {
        token: token.to_string(),
        list: list.to_string(),
        sender: sender.to_string(),
        received,
        expires,
        reasons: reasons
            .split('\n')
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect(),
        subject: subject.to_string(),
        message_id: message_id.to_string(),
        state: HeldState::from_code(state),
    }
}

fn write(txn: &WriteTransaction, h: &Held) -> Result<(), StoreError> {
    let mut t = txn.open_table(HELD)?;
    let reasons = h.reasons.join("\n");
    t.insert(
        h.token.as_str(),
        (
            h.list.as_str(),
            h.sender.as_str(),
            h.received,
            h.expires,
            reasons.as_str(),
            h.subject.as_str(),
            h.message_id.as_str(),
            h.state.code(),
        ),
    )?;
    Ok(())
}

impl Store {
    /// The held post already stored for this post identity, if any (a retried delivery).
    pub fn held_by_key(&self, key: &[u8]) -> Result<Option<Held>, StoreError> {
        let txn = self.read()?;
        let by = txn.open_table(HELD_BY_KEY)?;
        let Some(token) = by.get(key)? else {
            return Ok(None);
        };
        let token = token.value().to_string();
        let t = txn.open_table(HELD)?;
        read(&t, &token)
    }

    /// Durably store a held post.
    pub fn held_put(&self, h: &Held, key: &[u8], message: &[u8]) -> Result<(), StoreError> {
        self.held_put_within(h, key, message, usize::MAX)
            .map(|_| ())
    }

    /// Durably store a held post unless its list already has `cap` posts waiting for a
    /// decision; `false` (and nothing stored) then. Counted in the same transaction, so
    /// concurrent holds cannot overshoot.
    pub fn held_put_within(
        &self,
        h: &Held,
        key: &[u8],
        message: &[u8],
        cap: usize,
    ) -> Result<bool, StoreError> {
        let txn = self.write()?;
        let waiting = rows_of(
            &txn.open_table(HELD_BY_LIST)?,
            &txn.open_table(HELD)?,
            &h.list,
        )?
        .iter()
        .filter(|o| o.state == HeldState::Held)
        .count();
        if waiting >= cap {
            return Ok(false);
        }
        write(&txn, h)?;
        txn.open_table(HELD_BY_LIST)?
            .insert((h.list.as_str(), h.token.as_str()), ())?;
        txn.open_table(HELD_MSG)?
            .insert(h.token.as_str(), message)?;
        txn.open_table(HELD_BY_KEY)?.insert(key, h.token.as_str())?;
        txn.open_table(HELD_EXP)?
            .insert((h.expires, h.token.as_str()), ())?;
        txn.commit()?;
        Ok(true)
    }

    /// A held post's record.
    pub fn held_get(&self, token: &str) -> Result<Option<Held>, StoreError> {
        let txn = self.read()?;
        read(&txn.open_table(HELD)?, token)
    }

    /// A held post's message bytes (gone once it is decided and distributed).
    pub fn held_message(&self, token: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.read()?;
        let t = txn.open_table(HELD_MSG)?;
        let message = find_token(&t, token)?.map(|v| v.value().to_vec());
        Ok(message)
    }

    /// Posts of `list` waiting for a decision (or approved and not yet distributed), oldest first.
    pub fn held_list(&self, list: &str) -> Result<Vec<Held>, StoreError> {
        let txn = self.read()?;
        let mut out = rows_of(&txn.open_table(HELD_BY_LIST)?, &txn.open_table(HELD)?, list)?;
        out.retain(|h| matches!(h.state, HeldState::Held | HeldState::Approved));
        out.sort_by_key(|h| h.received);
        Ok(out)
    }

    /// Apply a moderator's decision in one transaction.
    pub fn held_decide(
        &self,
        token: &str,
        list: &str,
        decision: Decision,
    ) -> Result<Decided, StoreError> {
        let txn = self.write()?;
        let result = {
            let Some(mut h) = read(&txn.open_table(HELD)?, token)? else {
                return Ok(Decided::Unknown);
            };
            if h.list != list {
                return Ok(Decided::Unknown);
            }
            match (h.state, decision) {
                (HeldState::Held, d) => {
                    h.state = match d {
                        Decision::Approve => HeldState::Approved,
                        Decision::Reject => HeldState::Rejected,
                        Decision::Discard => HeldState::Discarded,
                    };
                    write(&txn, &h)?;
                    if d != Decision::Approve {
                        txn.open_table(HELD_MSG)?.remove(token)?;
                    }
                    Decided::Now(h)
                }
                (HeldState::Approved, Decision::Approve) => Decided::Resume(h),
                _ => Decided::Already(h),
            }
        };
        txn.commit()?;
        Ok(result)
    }

    /// An approved post went out: drop its message, remember its Message-ID.
    pub fn held_done(&self, token: &str, now: u64) -> Result<(), StoreError> {
        let txn = self.write()?;
        {
            let Some(mut h) = read(&txn.open_table(HELD)?, token)? else {
                return Ok(());
            };
            h.state = HeldState::Done;
            write(&txn, &h)?;
            txn.open_table(HELD_MSG)?.remove(token)?;
            if !h.message_id.is_empty() {
                seen_insert(&txn, &h.list, &h.message_id, now)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Remove up to `max` posts whose time is up and return those still waiting (their posters
    /// may be told). Decided rows are dropped silently.
    pub fn held_expire(&self, now: u64, max: usize) -> Result<Vec<Held>, StoreError> {
        let txn = self.write()?;
        let mut out = Vec::new();
        {
            let mut exp = txn.open_table(HELD_EXP)?;
            let due: Vec<(u64, String)> = exp
                .range((0u64, "")..(now.saturating_add(1), ""))?
                .take(max)
                .filter_map(|r| r.ok())
                .map(|(k, _)| {
                    let (e, t) = k.value();
                    (e, t.to_string())
                })
                .collect();
            let mut t = txn.open_table(HELD)?;
            let mut msgs = txn.open_table(HELD_MSG)?;
            let mut by_list = txn.open_table(HELD_BY_LIST)?;
            for (e, token) in due {
                exp.remove((e, token.as_str()))?;
                if let Some(h) = read(&t, &token)? {
                    by_list.remove((h.list.as_str(), token.as_str()))?;
                    if h.state == HeldState::Held {
                        out.push(h);
                    }
                }
                t.remove(token.as_str())?;
                msgs.remove(token.as_str())?;
            }
        }
        txn.commit()?;
        Ok(out)
    }

    /// When the next held post expires (None: nothing held).
    pub fn held_next_expiry(&self) -> Result<Option<u64>, StoreError> {
        let txn = self.read()?;
        let exp = txn.open_table(HELD_EXP)?;
        let first = exp.iter()?.next();
        Ok(match first {
            Some(row) => Some(row?.0.value().0),
            None => None,
        })
    }

    /// Was `message_id` distributed on `list` at or after `since`?
    pub fn seen_since(&self, list: &str, message_id: &str, since: u64) -> Result<bool, StoreError> {
        let txn = self.read()?;
        let t = txn.open_table(SEEN)?;
        Ok(t.get((list, message_id))?
            .is_some_and(|v| v.value() >= since))
    }

    /// Remember that `message_id` was distributed on `list` (sweeping very old entries).
    pub fn seen_record(&self, list: &str, message_id: &str, now: u64) -> Result<(), StoreError> {
        if message_id.is_empty() {
            return Ok(());
        }
        let txn = self.write()?;
        seen_insert(&txn, list, message_id, now)?;
        txn.commit()?;
        Ok(())
    }

    /// Set or clear a member's `moderated` flag; false when not a member.
    pub fn member_set_moderated(
        &self,
        list: &str,
        address: &str,
        on: bool,
    ) -> Result<bool, StoreError> {
        let key = address.to_lowercase();
        let txn = self.write()?;
        let found = {
            let mut m = txn.open_table(MEMBERS)?;
            let current = m.get((list, key.as_str()))?.map(|v| {
                let (flags, a) = v.value();
                (flags, a.to_string())
            });
            match current {
                Some((flags, a)) => {
                    let flags = if on {
                        flags | FLAG_MODERATED
                    } else {
                        flags & !FLAG_MODERATED
                    };
                    m.insert((list, key.as_str()), (flags, a.as_str()))?;
                    true
                }
                None => false,
            }
        };
        txn.commit()?;
        Ok(found)
    }
}

fn seen_insert(
    txn: &WriteTransaction,
    list: &str,
    message_id: &str,
    now: u64,
) -> Result<(), StoreError> {
    let mut seen = txn.open_table(SEEN)?;
    let mut age = txn.open_table(SEEN_AGE)?;
    if let Some(old) = seen.insert((list, message_id), now)? {
        let old = old.value();
        age.remove((old, list, message_id))?;
    }
    age.insert((now, list, message_id), ())?;
    let cutoff = now.saturating_sub(SEEN_MAX_SECS);
    let old: Vec<(u64, String, String)> = age
        .range((0u64, "", "")..(cutoff, "", ""))?
        .take(16)
        .filter_map(|r| r.ok())
        .map(|(k, _)| {
            let (t, l, m) = k.value();
            (t, l.to_string(), m.to_string())
        })
        .collect();
    for (t, l, m) in old {
        age.remove((t, l.as_str(), m.as_str()))?;
        seen.remove((l.as_str(), m.as_str()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;
    use crate::store::token::sample;

    /// Test tokens; all share one lookup id, as two real tokens may.
    fn tok(secret: u128) -> String {
        sample(0x0f0f_0f0f, secret)
    }

    fn held(token: &str, expires: u64) -> Held {
        Held {
            token: token.into(),
            list: "dev@x.org".into(),
            sender: "p@x.org".into(),
            received: 10,
            expires,
            reasons: vec!["not a member".into(), "too big".into()],
            subject: "hello".into(),
            message_id: "m1@x".into(),
            state: HeldState::Held,
        }
    }

    #[test]
    fn an_approval_counts_once() {
        let dir = crate::store::test_dir();
        let s = Store::open(dir.path(), 1 << 20).expect("open");
        s.held_put(
            &held(&tok(1), 1000),
            b"key1",
            b"Subject: hello\r\n\r\nbody\r\n",
        )
        .expect("put");
        assert_eq!(
            s.held_by_key(b"key1").expect("get").map(|h| h.token),
            Some(tok(1))
        );
        assert_eq!(s.held_list("dev@x.org").expect("list").len(), 1);
        assert_eq!(
            s.held_decide(&tok(1), "ops@x.org", Decision::Approve)
                .expect("decide"),
            Decided::Unknown
        );
        assert!(matches!(
            s.held_decide(&tok(1), "dev@x.org", Decision::Approve)
                .expect("decide"),
            Decided::Now(_)
        ));
        assert!(matches!(
            s.held_decide(&tok(1), "dev@x.org", Decision::Approve)
                .expect("decide"),
            Decided::Resume(_)
        ));
        assert!(matches!(
            s.held_decide(&tok(1), "dev@x.org", Decision::Reject)
                .expect("decide"),
            Decided::Already(_)
        ));
        assert!(s.held_message(&tok(1)).expect("msg").is_some());
        s.held_done(&tok(1), 500).expect("done");
        assert!(matches!(
            s.held_decide(&tok(1), "dev@x.org", Decision::Approve)
                .expect("decide"),
            Decided::Already(_)
        ));
        assert!(s.held_message(&tok(1)).expect("msg").is_none());
        assert!(s.seen_since("dev@x.org", "m1@x", 400).expect("seen"));
        assert!(!s.seen_since("dev@x.org", "m1@x", 600).expect("seen"));
    }

    #[test]
    fn only_the_exact_token_decides_or_shows_a_post() {
        let dir = crate::store::test_dir();
        let s = Store::open(dir.path(), 1 << 20).expect("open");
        let (real, twin) = (tok(0x77), tok(0x78));
        s.held_put(&held(&real, 1000), b"k1", b"one").expect("put");
        s.held_put(&held(&twin, 1000), b"k2", b"two").expect("put");
        let mut last = real.clone();
        last.replace_range(39.., "0");
        for guess in [last, tok(0x79), real.to_ascii_uppercase(), real[..8].into()] {
            assert_eq!(s.held_get(&guess).expect("get"), None, "{guess}");
            assert_eq!(s.held_message(&guess).expect("msg"), None, "{guess}");
            assert_eq!(
                s.held_decide(&guess, "dev@x.org", Decision::Discard)
                    .expect("decide"),
                Decided::Unknown,
                "{guess}"
            );
        }
        assert_eq!(s.held_message(&real).expect("msg"), Some(b"one".to_vec()));
        assert_eq!(s.held_message(&twin).expect("msg"), Some(b"two".to_vec()));
        assert!(matches!(
            s.held_decide(&twin, "dev@x.org", Decision::Discard)
                .expect("decide"),
            Decided::Now(h) if h.token == twin
        ));
        assert_eq!(
            s.held_get(&real).expect("get").map(|h| h.state),
            Some(HeldState::Held)
        );
    }

    #[test]
    fn expiry_returns_only_waiting_posts() {
        let dir = crate::store::test_dir();
        let s = Store::open(dir.path(), 1 << 20).expect("open");
        s.held_put(&held(&tok(0xa), 100), b"ka", b"x").expect("put");
        s.held_put(&held(&tok(0xb), 200), b"kb", b"x").expect("put");
        s.held_put(&held(&tok(0xc), 300), b"kc", b"x").expect("put");
        s.held_decide(&tok(0xb), "dev@x.org", Decision::Discard)
            .expect("decide");
        assert_eq!(s.held_next_expiry().expect("next"), Some(100));
        let gone = s.held_expire(250, 10).expect("expire");
        assert_eq!(
            gone.iter().map(|h| h.token.clone()).collect::<Vec<_>>(),
            [tok(0xa)]
        );
        assert_eq!(s.held_next_expiry().expect("next"), Some(300));
        assert!(s.held_get(&tok(0xb)).expect("get").is_none());
    }

    #[test]
    fn moderated_flag() {
        let dir = crate::store::test_dir();
        let s = Store::open(dir.path(), 1 << 20).expect("open");
        let a = Address::parse("M@x.org").expect("addr");
        s.add_members("dev@x.org", &[a]).expect("add");
        assert!(s
            .member_set_moderated("dev@x.org", "m@x.org", true)
            .expect("set"));
        assert_eq!(
            s.member_get("dev@x.org", "m@x.org")
                .expect("get")
                .map(|m| m.flags & FLAG_MODERATED),
            Some(FLAG_MODERATED)
        );
        assert!(!s
            .member_set_moderated("dev@x.org", "nobody@x.org", true)
            .expect("set"));
    }

    /// The cap counts the waiting posts of that list only: other lists' posts and decided or
    /// expired ones make room, and the per-list index follows puts and expiry.
    #[test]
    fn the_cap_counts_one_lists_waiting_posts() {
        let dir = crate::store::test_dir();
        let s = Store::open(dir.path(), 1 << 20).expect("open");
        let other = Held {
            list: "other@x.org".into(),
            ..held(&tok(0x10), 5000)
        };
        assert!(s.held_put_within(&other, b"o", b"x", 1).expect("put"));
        assert!(s
            .held_put_within(&held(&tok(0x11), 100), b"a", b"x", 2)
            .expect("put"));
        assert!(s
            .held_put_within(&held(&tok(0x12), 200), b"b", b"x", 2)
            .expect("put"));
        assert!(!s
            .held_put_within(&held(&tok(0x13), 300), b"c", b"x", 2)
            .expect("put"));
        assert_eq!(s.held_list("dev@x.org").expect("list").len(), 2);
        assert_eq!(s.held_list("other@x.org").expect("list").len(), 1);
        // A discarded post no longer waits.
        assert!(matches!(
            s.held_decide(&tok(0x11), "dev@x.org", Decision::Discard)
                .expect("decide"),
            Decided::Now(_)
        ));
        assert!(s
            .held_put_within(&held(&tok(0x13), 300), b"c", b"x", 2)
            .expect("put"));
        // Expiry removes rows from the index too.
        assert_eq!(s.held_expire(250, 10).expect("expire").len(), 1);
        assert_eq!(s.held_list("dev@x.org").expect("list").len(), 1);
        assert!(s
            .held_put_within(&held(&tok(0x14), 400), b"d", b"x", 2)
            .expect("put"));
    }
}
