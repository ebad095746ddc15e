//! Pending confirmations and approvals (tokens), and the hourly counters that cap how many
//! confirmation mails one address or one list may cause.
//!
//! A token is single-use: completing it and applying its effect (membership change, flag,
//! approval request) happen in one durable transaction, so a crash can never consume a token
//! without its effect or apply an effect twice. Used tokens are kept, marked used, until they
//! expire, so a retried mail gets "already done" instead of "unknown token". Expired rows are
//! swept a few at a time by later writes: no timer.

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::members::{FLAG_NOMAIL, MEMBERS};
use super::token::find_token;
use super::{Store, StoreError};

/// (kind, list, address, created, expires, used)
type PendingRow<'a> = (u8, &'a str, &'a str, u64, u64, bool);

/// token -> [`PendingRow`]; looked up by a given token only through `find_token`.
const PENDING: TableDefinition<&str, PendingRow<'static>> = TableDefinition::new("pending");
/// (list, address key, kind) -> token: one open request per address and purpose.
const PENDING_BY: TableDefinition<(&str, &str, u8), &str> = TableDefinition::new("pending_by");
/// (expires, token) -> (): sweep order.
const PENDING_EXP: TableDefinition<(u64, &str), ()> = TableDefinition::new("pending_exp");
/// Expired requests removed per write, so the tables never grow.
const SWEEP_PER_WRITE: usize = 16;

pub(super) fn init(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(PENDING)?;
    txn.open_table(PENDING_BY)?;
    txn.open_table(PENDING_EXP)?;
    Ok(())
}

/// What a token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingKind {
    /// Subscribe `address` (confirmation by the address itself).
    Join,
    /// Unsubscribe `address`.
    Leave,
    /// Set `nomail` on or off for `address`.
    Nomail(bool),
    /// An owner's approval of `address` joining (policy `moderate`).
    Approve,
}

impl PendingKind {
    fn code(self) -> u8 {
        match self {
            PendingKind::Join => 1,
            PendingKind::Leave => 2,
            PendingKind::Nomail(true) => 3,
            PendingKind::Nomail(false) => 4,
            PendingKind::Approve => 5,
        }
    }

    fn from_code(c: u8) -> Option<PendingKind> {
        Some(match c {
            1 => PendingKind::Join,
            2 => PendingKind::Leave,
            3 => PendingKind::Nomail(true),
            4 => PendingKind::Nomail(false),
            5 => PendingKind::Approve,
            _ => return None,
        })
    }

    /// Word for logs and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            PendingKind::Join => "join",
            PendingKind::Leave => "leave",
            PendingKind::Nomail(true) => "nomail-on",
            PendingKind::Nomail(false) => "nomail-off",
            PendingKind::Approve => "approve",
        }
    }
}

/// One pending request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The secret: 40 lowercase hex digits, an 8-digit lookup id and 128 secret bits.
    pub token: String,
    /// What completing it does.
    pub kind: PendingKind,
    /// The list key.
    pub list: String,
    /// The address concerned, as given.
    pub address: String,
    /// Seconds since the epoch.
    pub created: u64,
    /// Seconds since the epoch; unusable from then on.
    pub expires: u64,
    /// Already completed.
    pub used: bool,
}

/// The result of trying to complete a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// Done now: the effect is durable.
    Done(Pending),
    /// Completed earlier (a retried or repeated mail).
    AlreadyUsed(Pending),
    /// Unknown, or belongs to another list.
    Unknown,
    /// Too old.
    Expired(Pending),
    /// The token is of another kind than the action tried (e.g. `approve` on a join token).
    WrongKind(Pending),
}

fn key_of(address: &str) -> String {
    address.to_lowercase()
}

impl Store {
    /// The open (unused, unexpired) request for `address` and `kind` on `list`, if any.
    pub fn pending_find(
        &self,
        list: &str,
        address: &str,
        kind: PendingKind,
        now: u64,
    ) -> Result<Option<Pending>, StoreError> {
        let txn = self.read()?;
        let by = txn.open_table(PENDING_BY)?;
        let Some(token) = by.get((list, key_of(address).as_str(), kind.code()))? else {
            return Ok(None);
        };
        let token = token.value().to_string();
        let t = txn.open_table(PENDING)?;
        let p = read(&t, &token)?;
        Ok(p.filter(|p| !p.used && p.expires > now))
    }

    /// A pending request by token (any state), for the CLI and notices.
    pub fn pending_get(&self, token: &str) -> Result<Option<Pending>, StoreError> {
        let txn = self.read()?;
        let t = txn.open_table(PENDING)?;
        read(&t, token)
    }

    /// Open (unused, unexpired) requests of `list`, oldest first.
    pub fn pending_list(&self, list: &str, now: u64) -> Result<Vec<Pending>, StoreError> {
        let txn = self.read()?;
        let t = txn.open_table(PENDING)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            if let Some(p) = decode(k.value(), v.value()) {
                if p.list == list && !p.used && p.expires > now {
                    out.push(p);
                }
            }
        }
        out.sort_by_key(|p| p.created);
        Ok(out)
    }

    /// Durably record a new request (replacing an older open one for the same purpose).
    pub fn pending_create(&self, p: &Pending) -> Result<(), StoreError> {
        let txn = self.write()?;
        insert_pending(&txn, p)?;
        sweep(&txn, p.created)?;
        txn.commit()?;
        Ok(())
    }

    /// Complete `token` for `list` as `expect` (None: any of Join/Leave/Nomail) and apply its
    /// effect in the same transaction. For a Join that needs an owner's approval, `then`
    /// is the approval request to create instead of subscribing.
    pub fn pending_complete(
        &self,
        token: &str,
        list: &str,
        expect: Option<PendingKind>,
        now: u64,
        then: Option<&Pending>,
    ) -> Result<Completion, StoreError> {
        self.finish(token, list, expect, now, then, true)
    }

    /// An owner's rejection: consume an approval token without subscribing anyone.
    pub fn pending_reject(
        &self,
        token: &str,
        list: &str,
        now: u64,
    ) -> Result<Completion, StoreError> {
        self.finish(token, list, Some(PendingKind::Approve), now, None, false)
    }

    fn finish(
        &self,
        token: &str,
        list: &str,
        expect: Option<PendingKind>,
        now: u64,
        then: Option<&Pending>,
        apply: bool,
    ) -> Result<Completion, StoreError> {
        let txn = self.write()?;
        let result = {
            let mut t = txn.open_table(PENDING)?;
            let Some(p) = read(&t, token)? else {
                return Ok(Completion::Unknown);
            };
            if p.list != list {
                return Ok(Completion::Unknown);
            }
            let kind_ok = match expect {
                Some(k) => p.kind == k,
                None => p.kind != PendingKind::Approve,
            };
            if !kind_ok {
                return Ok(Completion::WrongKind(p));
            }
            if p.used {
                return Ok(Completion::AlreadyUsed(p));
            }
            if p.expires <= now {
                return Ok(Completion::Expired(p));
            }
            t.insert(
                token,
                (
                    p.kind.code(),
                    p.list.as_str(),
                    p.address.as_str(),
                    p.created,
                    p.expires,
                    true,
                ),
            )?;
            let mut by = txn.open_table(PENDING_BY)?;
            by.remove((p.list.as_str(), key_of(&p.address).as_str(), p.kind.code()))?;
            drop(by);
            drop(t);
            let mut m = txn.open_table(MEMBERS)?;
            let akey = key_of(&p.address);
            match p.kind {
                _ if !apply => {}
                PendingKind::Join if then.is_some() => {}
                PendingKind::Join | PendingKind::Approve => {
                    if m.get((list, akey.as_str()))?.is_none() {
                        m.insert((list, akey.as_str()), (0u64, p.address.as_str()))?;
                    }
                }
                PendingKind::Leave => {
                    m.remove((list, akey.as_str()))?;
                }
                PendingKind::Nomail(on) => {
                    let current = m.get((list, akey.as_str()))?.map(|v| {
                        let (flags, addr) = v.value();
                        (flags, addr.to_string())
                    });
                    if let Some((flags, addr)) = current {
                        let flags = if on {
                            flags | FLAG_NOMAIL
                        } else {
                            flags & !FLAG_NOMAIL
                        };
                        m.insert((list, akey.as_str()), (flags, addr.as_str()))?;
                    }
                }
            }
            drop(m);
            if let (PendingKind::Join, Some(next)) = (p.kind, then) {
                insert_pending(&txn, next)?;
            }
            Completion::Done(Pending { used: true, ..p })
        };
        sweep(&txn, now)?;
        txn.commit()?;
        Ok(result)
    }

    /// The member record of `address` on `list`, if subscribed.
    pub fn member_get(
        &self,
        list: &str,
        address: &str,
    ) -> Result<Option<super::Member>, StoreError> {
        let txn = self.read()?;
        let t = txn.open_table(MEMBERS)?;
        let akey = key_of(address);
        Ok(t.get((list, akey.as_str()))?.map(|v| {
            let (flags, addr) = v.value();
            super::Member {
                key: akey.clone(),
                address: addr.to_string(),
                flags,
            }
        }))
    }
}

/// The request stored under `token` (a token from outside: see `find_token`).
fn read(
    t: &impl ReadableTable<&'static str, PendingRow<'static>>,
    token: &str,
) -> Result<Option<Pending>, StoreError> {
    Ok(find_token(t, token)?.and_then(|v| decode(token, v.value())))
}

fn decode(token: &str, row: PendingRow<'_>) -> Option<Pending> {
    let (kind, list, address, created, expires, used) = row;
    PendingKind::from_code(kind).map(|kind| Pending {
        token: token.to_string(),
        kind,
        list: list.to_string(),
        address: address.to_string(),
        created,
        expires,
        used,
    })
}

fn insert_pending(txn: &WriteTransaction, p: &Pending) -> Result<(), StoreError> {
    let mut t = txn.open_table(PENDING)?;
    let mut by = txn.open_table(PENDING_BY)?;
    let mut exp = txn.open_table(PENDING_EXP)?;
    t.insert(
        p.token.as_str(),
        (
            p.kind.code(),
            p.list.as_str(),
            p.address.as_str(),
            p.created,
            p.expires,
            p.used,
        ),
    )?;
    by.insert(
        (p.list.as_str(), key_of(&p.address).as_str(), p.kind.code()),
        p.token.as_str(),
    )?;
    exp.insert((p.expires, p.token.as_str()), ())?;
    Ok(())
}

/// Delete a few expired tokens (and their index rows).
fn sweep(txn: &WriteTransaction, now: u64) -> Result<(), StoreError> {
    let mut exp = txn.open_table(PENDING_EXP)?;
    let old: Vec<(u64, String)> = exp
        .range((0u64, "")..(now, ""))?
        .take(SWEEP_PER_WRITE)
        .filter_map(|r| r.ok())
        .map(|(k, _)| {
            let (e, tok) = k.value();
            (e, tok.to_string())
        })
        .collect();
    let mut t = txn.open_table(PENDING)?;
    let mut by = txn.open_table(PENDING_BY)?;
    for (e, tok) in old {
        exp.remove((e, tok.as_str()))?;
        let row = t.remove(tok.as_str())?.map(|v| {
            let (kind, list, address, ..) = v.value();
            (kind, list.to_string(), key_of(address))
        });
        if let Some((kind, list, akey)) = row {
            let current = by
                .get((list.as_str(), akey.as_str(), kind))?
                .map(|v| v.value().to_string());
            if current.as_deref() == Some(tok.as_str()) {
                by.remove((list.as_str(), akey.as_str(), kind))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::token::sample;

    /// Test tokens; all share one lookup id, as two real tokens may.
    fn tok(secret: u128) -> String {
        sample(0x1234_5678, secret)
    }

    fn pending(token: &str, kind: PendingKind, now: u64) -> Pending {
        Pending {
            token: token.into(),
            kind,
            list: "dev@x.org".into(),
            address: "Bob@x.org".into(),
            created: now,
            expires: now + 3600,
            used: false,
        }
    }

    #[test]
    fn a_token_completes_once_and_applies_its_effect() {
        let dir = crate::store::test_dir();
        let s = Store::open(dir.path(), 1 << 20).expect("open");
        let now = 1_000_000;
        s.pending_create(&pending(&tok(1), PendingKind::Join, now))
            .expect("create");
        assert!(s
            .pending_find("dev@x.org", "bob@X.org", PendingKind::Join, now)
            .expect("find")
            .is_some());
        assert_eq!(
            s.pending_complete(&tok(1), "ops@x.org", None, now, None)
                .expect("c"),
            Completion::Unknown
        );
        assert!(matches!(
            s.pending_complete(&tok(1), "dev@x.org", Some(PendingKind::Approve), now, None)
                .expect("c"),
            Completion::WrongKind(_)
        ));
        assert!(matches!(
            s.pending_complete(&tok(1), "dev@x.org", None, now, None)
                .expect("c"),
            Completion::Done(_)
        ));
        assert_eq!(
            s.member_get("dev@x.org", "BOB@x.org")
                .expect("get")
                .map(|m| m.address),
            Some("Bob@x.org".into())
        );
        assert!(matches!(
            s.pending_complete(&tok(1), "dev@x.org", None, now, None)
                .expect("c"),
            Completion::AlreadyUsed(_)
        ));
        assert!(s
            .pending_find("dev@x.org", "bob@x.org", PendingKind::Join, now)
            .expect("find")
            .is_none());

        s.pending_create(&pending(&tok(2), PendingKind::Nomail(true), now))
            .expect("create");
        assert!(matches!(
            s.pending_complete(&tok(2), "dev@x.org", None, now, None)
                .expect("c"),
            Completion::Done(_)
        ));
        assert_eq!(
            s.member_get("dev@x.org", "bob@x.org")
                .expect("get")
                .map(|m| m.flags),
            Some(FLAG_NOMAIL)
        );

        s.pending_create(&pending(&tok(3), PendingKind::Leave, now))
            .expect("create");
        assert!(matches!(
            s.pending_complete(&tok(3), "dev@x.org", None, now + 3600, None)
                .expect("c"),
            Completion::Expired(_)
        ));
        assert!(matches!(
            s.pending_complete(&tok(3), "dev@x.org", None, now + 10, None)
                .expect("c"),
            Completion::Done(_)
        ));
        assert!(s
            .member_get("dev@x.org", "bob@x.org")
            .expect("get")
            .is_none());
    }

    #[test]
    fn only_the_exact_token_completes() {
        let dir = crate::store::test_dir();
        let s = Store::open(dir.path(), 1 << 20).expect("open");
        let (now, real) = (1_000_000, tok(0x0abc));
        s.pending_create(&pending(&real, PendingKind::Join, now))
            .expect("create");
        let (upper, short) = (real.to_ascii_uppercase(), real[..39].to_string());
        // One digit changed; the lookup id with another secret; malformed.
        for guess in [tok(0x0abd), tok(0x0abc << 64), upper, short, String::new()] {
            assert_eq!(s.pending_get(&guess).expect("get"), None, "{guess}");
            let c = s.pending_complete(&guess, "dev@x.org", None, now, None);
            assert_eq!(c.expect("c"), Completion::Unknown, "{guess}");
        }
        let c = s.pending_complete(&real, "dev@x.org", None, now, None);
        assert!(matches!(c.expect("c"), Completion::Done(_)));
    }

    #[test]
    fn a_moderated_join_turns_into_an_approval_request() {
        let dir = crate::store::test_dir();
        let s = Store::open(dir.path(), 1 << 20).expect("open");
        let now = 5_000_000;
        s.pending_create(&pending(&tok(1), PendingKind::Join, now))
            .expect("create");
        let approval = pending(&tok(4), PendingKind::Approve, now);
        assert!(matches!(
            s.pending_complete(&tok(1), "dev@x.org", None, now, Some(&approval))
                .expect("c"),
            Completion::Done(_)
        ));
        assert!(s
            .member_get("dev@x.org", "bob@x.org")
            .expect("get")
            .is_none());
        assert_eq!(s.pending_list("dev@x.org", now).expect("list").len(), 1);
        assert!(matches!(
            s.pending_complete(&tok(4), "dev@x.org", None, now, None)
                .expect("c"),
            Completion::WrongKind(_)
        ));
        assert!(matches!(
            s.pending_complete(&tok(4), "dev@x.org", Some(PendingKind::Approve), now, None)
                .expect("c"),
            Completion::Done(_)
        ));
        assert!(s
            .member_get("dev@x.org", "bob@x.org")
            .expect("get")
            .is_some());
    }

    #[test]
    fn expired_tokens_are_swept_by_later_writes() {
        let dir = crate::store::test_dir();
        let s = Store::open(dir.path(), 1 << 20).expect("open");
        s.pending_create(&pending(&tok(5), PendingKind::Join, 100))
            .expect("create");
        s.pending_create(&pending(&tok(6), PendingKind::Leave, 100_000))
            .expect("create");
        assert!(s.pending_get(&tok(5)).expect("get").is_none());
        assert!(s.pending_get(&tok(6)).expect("get").is_some());
    }
}
