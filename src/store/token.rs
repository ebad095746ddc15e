//! Finding a row by a token that came from outside (a mail, a command, an address extension,
//! the control socket or the CLI): the one place where a guessed token meets the stored ones.
//!
//! Tokens are the keys of their tables (`pending`, `held`, `held_msg`, `bounce_probes`), and a
//! redb `get` is a B-tree search whose byte comparisons stop at the first difference, so its
//! time depends on how many leading characters of a guess match a stored token: in principle
//! it reveals a token prefix by prefix. Without changing the store format, a token (40
//! lowercase hex digits, 160 random bits) is read as an 8-digit lookup id, which is treated as
//! public and may be found by the B-tree search, followed by 32 digits (128 bits) that are the
//! secret: the table is range-scanned for the keys starting with the lookup id and each
//! candidate is compared with the whole token in constant time.
//!
//! SECURITY: the token is hostile; anything but exactly 40 lowercase hex digits is unknown
//! before any table is touched.

use redb::{AccessGuard, ReadableTable, Value};
use subtle::ConstantTimeEq;

use super::StoreError;

/// Hex digits of a token.
pub const TOKEN_HEX: usize = 40;
/// Leading hex digits of a token that serve as its public lookup id; the rest (128 bits) is
/// the secret.
pub const LOOKUP_ID_HEX: usize = 8;

/// Equality of two byte strings in time that depends only on their lengths (the lengths are
/// not secret): every byte is compared, with no early exit at the first difference. `subtle`
/// keeps the optimiser from turning that back into a comparison that stops early.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Is `token` shaped like the tokens listkeeper issues (40 lowercase hex digits)?
pub fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_HEX
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The value stored under `token` in `table`, found without a search on the token's secret
/// part: a range scan over the keys that start with the lookup id, then a constant-time
/// comparison of each candidate with the whole token. Every candidate is compared (no exit at
/// a match), so the time does not depend on which one matches either.
pub(super) fn find_token<'t, V: Value + 'static>(
    table: &'t impl ReadableTable<&'static str, V>,
    token: &str,
) -> Result<Option<AccessGuard<'t, V>>, StoreError> {
    if !well_formed(token) {
        return Ok(None);
    }
    let id = &token[..LOOKUP_ID_HEX];
    let mut found = None;
    for row in table.range(id..)? {
        let (key, value) = row?;
        let key = key.value();
        if !key.starts_with(id) {
            break;
        }
        if ct_eq(key.as_bytes(), token.as_bytes()) {
            found = Some(value);
        }
    }
    Ok(found)
}

/// A fresh token: 160 random bits from the OS, lowercase hex (addresses are case-insensitive).
/// The store reads the first 8 digits as a public lookup id and the other 32 (128 bits) as
/// the secret, so all 40 digits must stay random. Without randomness there is no token (no
/// weaker fallback): the caller answers with a temporary error.
pub fn new_token() -> Result<String, StoreError> {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Backend(format!("no randomness: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A well-formed token for tests: lookup id `id`, secret `secret`.
#[cfg(test)]
pub(super) fn sample(id: u32, secret: u128) -> String {
    format!("{id:08x}{secret:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{Database, ReadableDatabase, TableDefinition};

    const T: TableDefinition<&str, u64> = TableDefinition::new("t");

    /// A store with `keys` in table `T`, each mapped to its position.
    fn table_with(keys: &[&str]) -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::create(dir.path().join("t.redb")).expect("create");
        let txn = db.begin_write().expect("write");
        {
            let mut t = txn.open_table(T).expect("table");
            for (i, k) in keys.iter().enumerate() {
                t.insert(*k, i as u64).expect("insert");
            }
        }
        txn.commit().expect("commit");
        (dir, db)
    }

    fn lookup(db: &Database, token: &str) -> Option<u64> {
        let txn = db.begin_read().expect("read");
        let t = txn.open_table(T).expect("table");
        find_token(&t, token).expect("find").map(|v| v.value())
    }

    #[test]
    fn constant_time_equality() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"xbc"));
        assert!(!ct_eq(b"abc", b"abcd"));
        assert!(!ct_eq(b"", b"a"));
    }

    #[test]
    fn only_the_whole_token_is_found() {
        let a = sample(0x0123_abcd, 0x5555_0000_1111_2222_3333_4444_5555_6666);
        let (_dir, db) = table_with(&[&a]);
        assert_eq!(lookup(&db, &a), Some(0));
        // Equal but for the last digit.
        let mut last = a.clone();
        last.pop();
        last.push('7');
        assert_eq!(lookup(&db, &last), None);
        // The right lookup id with another secret.
        assert_eq!(lookup(&db, &sample(0x0123_abcd, 1)), None);
        assert_eq!(lookup(&db, &sample(0x0123_abcd, 0)), None);
        assert_eq!(lookup(&db, &sample(0x0123_abcd, u128::MAX)), None);
        // Another lookup id with the right secret.
        assert_eq!(lookup(&db, &format!("0123abce{}", &a[8..])), None);
    }

    #[test]
    fn tokens_sharing_a_lookup_id_are_each_found() {
        let a = sample(0xdead_beef, 1);
        let b = sample(0xdead_beef, 2);
        let c = sample(0xdead_beef, u128::MAX);
        let before = sample(0xdead_beee, u128::MAX);
        let after = sample(0xdead_bef0, 0);
        let (_dir, db) = table_with(&[&a, &b, &c, &before, &after]);
        assert_eq!(lookup(&db, &a), Some(0));
        assert_eq!(lookup(&db, &b), Some(1));
        assert_eq!(lookup(&db, &c), Some(2));
        assert_eq!(lookup(&db, &before), Some(3));
        assert_eq!(lookup(&db, &after), Some(4));
        assert_eq!(lookup(&db, &sample(0xdead_beef, 3)), None);
    }

    #[test]
    fn malformed_tokens_are_unknown_and_never_panic() {
        let a = sample(0x00ff_00ff, 0xabcd_ef01_2345_6789_abcd_ef01_2345_6789);
        // A stored key of the wrong shape (none is ever written) is not reachable either.
        let (_dir, db) = table_with(&[&a, "00ff00ff", "short"]);
        let upper = a.to_ascii_uppercase();
        let mut non_hex = a.clone();
        non_hex.replace_range(39.., "g");
        let multibyte = format!("{}é", &a[..38]);
        let with_space = format!(" {}", &a[1..]);
        for bad in [
            "",
            "00ff00ff",
            "short",
            &a[..39],
            &format!("{a}0"),
            &upper,
            &non_hex,
            &multibyte,
            &with_space,
            &"é".repeat(20),
            &"\0".repeat(40),
        ] {
            assert!(!well_formed(bad), "{bad:?}");
            assert_eq!(lookup(&db, bad), None, "{bad:?}");
        }
        assert!(well_formed(&a));
        assert_eq!(lookup(&db, &a), Some(0));
    }
}
