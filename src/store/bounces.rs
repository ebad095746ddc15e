//! Bounce records per member: a score that rises once per bouncing day, resets after a quiet
//! period, disables delivery at a threshold (optionally after a probe) and leads to removal
//! after a further period. Every step is one transaction together with the member's flag.

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::members::{FLAG_DISABLED, MEMBERS};
use super::token::find_token;
use super::{Store, StoreError};

/// (list, member key) -> (score, last bouncing day, last bounce time, status, since, probe token)
type BounceRow = (f64, u64, u64, u8, u64, &'static str);
const BOUNCES: TableDefinition<(&str, &str), BounceRow> = TableDefinition::new("bounces");
/// (removal due, list, member key) -> (): the removal deadline of disabled members.
const REMOVAL: TableDefinition<(u64, &str, &str), ()> = TableDefinition::new("bounce_removal");
/// probe token -> (list, member key); a given token is looked up only through `find_token`.
const PROBES: TableDefinition<&str, (&str, &str)> = TableDefinition::new("bounce_probes");

pub(super) fn init(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(BOUNCES)?;
    txn.open_table(REMOVAL)?;
    txn.open_table(PROBES)?;
    Ok(())
}

/// Where a member stands with bounces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceStatus {
    /// Delivering; the score may be above zero.
    Ok,
    /// Over the threshold; a probe was sent, its bounce disables.
    Probing,
    /// Delivery disabled.
    Disabled,
}

impl BounceStatus {
    fn code(self) -> u8 {
        match self {
            BounceStatus::Ok => 0,
            BounceStatus::Probing => 1,
            BounceStatus::Disabled => 2,
        }
    }

    fn from_code(c: u8) -> BounceStatus {
        match c {
            1 => BounceStatus::Probing,
            2 => BounceStatus::Disabled,
            _ => BounceStatus::Ok,
        }
    }

    /// Word for the CLI.
    pub fn name(self) -> &'static str {
        match self {
            BounceStatus::Ok => "ok",
            BounceStatus::Probing => "probing",
            BounceStatus::Disabled => "disabled",
        }
    }
}

/// One member's bounce record.
#[derive(Debug, Clone, PartialEq)]
pub struct BounceRecord {
    /// The member key.
    pub member: String,
    /// Current score.
    pub score: f64,
    /// Time of the last bounce (seconds since the epoch).
    pub last_bounce: u64,
    /// Status.
    pub status: BounceStatus,
    /// When the status last changed (disabled since, probing since).
    pub since: u64,
}

/// The scoring rules, from the list's `[bounces]`.
#[derive(Debug, Clone, Copy)]
pub struct Scoring {
    /// Disable at this score.
    pub threshold: f64,
    /// Added for a hard failure (once per day).
    pub points: f64,
    /// Quiet period after which the score starts again.
    pub reset_after: u64,
    /// Probe before disabling.
    pub probe: bool,
    /// Removal this long after disabling (0: never).
    pub remove_after: u64,
}

/// What a bounce did to the member.
#[derive(Debug, Clone, PartialEq)]
pub enum BounceOutcome {
    /// Not a member of the list (ignored).
    NotMember,
    /// Counted (or not: already counted today); still delivering.
    Scored(f64),
    /// Over the threshold: send a probe with this token.
    Probe(String),
    /// Over the threshold (or the probe bounced): delivery disabled now.
    Disabled(f64),
    /// Already disabled or probing: nothing changes.
    Unchanged,
}

fn read(
    t: &impl ReadableTable<(&'static str, &'static str), BounceRow>,
    list: &str,
    member: &str,
) -> Result<Option<(BounceRecord, String)>, StoreError> {
    Ok(t.get((list, member))?.map(|v| {
        let (score, _day, last, status, since, probe) = v.value();
        (
            BounceRecord {
                member: member.to_string(),
                score,
                last_bounce: last,
                status: BounceStatus::from_code(status),
                since,
            },
            probe.to_string(),
        )
    }))
}

fn set_disabled_flag(
    txn: &WriteTransaction,
    list: &str,
    member: &str,
    on: bool,
) -> Result<(), StoreError> {
    let mut m = txn.open_table(MEMBERS)?;
    let current = m.get((list, member))?.map(|v| {
        let (flags, a) = v.value();
        (flags, a.to_string())
    });
    if let Some((flags, a)) = current {
        let flags = if on {
            flags | FLAG_DISABLED
        } else {
            flags & !FLAG_DISABLED
        };
        m.insert((list, member), (flags, a.as_str()))?;
    }
    Ok(())
}

impl Store {
    /// Count a bounce of `member` on `list` at `now`; `probe_token` is used if a probe is due.
    pub fn bounce_record(
        &self,
        list: &str,
        member: &str,
        now: u64,
        rules: &Scoring,
        probe_token: &str,
    ) -> Result<BounceOutcome, StoreError> {
        let member = member.to_lowercase();
        let txn = self.write()?;
        let outcome = {
            if txn
                .open_table(MEMBERS)?
                .get((list, member.as_str()))?
                .is_none()
            {
                return Ok(BounceOutcome::NotMember);
            }
            let mut t = txn.open_table(BOUNCES)?;
            let day = now / 86_400;
            let (mut score, mut last_day, last, mut status, since, sent_probe) =
                match t.get((list, member.as_str()))? {
                    Some(v) => {
                        let (s, d, l, st, si, p) = v.value();
                        (s, d, l, BounceStatus::from_code(st), si, p.to_string())
                    }
                    None => (0.0, u64::MAX, 0, BounceStatus::Ok, 0, String::new()),
                };
            if status == BounceStatus::Probing {
                if now.saturating_sub(since) <= rules.reset_after {
                    if day == last_day {
                        return Ok(BounceOutcome::Unchanged);
                    }
                    // Still bouncing on another day: the same probe again, at most once a
                    // day (a probe whose sending failed gets its retry this way, and forged
                    // bounces cost the member at most one probe a day).
                    t.insert(
                        (list, member.as_str()),
                        (score, day, now, status.code(), since, sent_probe.as_str()),
                    )?;
                    drop(t);
                    txn.commit()?;
                    return Ok(BounceOutcome::Probe(sent_probe));
                }
                // The probe went unanswered for a quiet period: the mailbox took it, so the
                // bounces that led to it were forged or over. Start again from zero.
                txn.open_table(PROBES)?.remove(sent_probe.as_str())?;
                status = BounceStatus::Ok;
                score = 0.0;
                last_day = u64::MAX;
            }
            if status != BounceStatus::Ok {
                return Ok(BounceOutcome::Unchanged);
            }
            if last > 0 && now.saturating_sub(last) > rules.reset_after {
                score = 0.0;
                last_day = u64::MAX;
            }
            if day != last_day {
                score += rules.points;
                last_day = day;
            }
            let (status, since, probe, outcome) = if score >= rules.threshold {
                if rules.probe {
                    txn.open_table(PROBES)?
                        .insert(probe_token, (list, member.as_str()))?;
                    (
                        BounceStatus::Probing,
                        now,
                        probe_token.to_string(),
                        BounceOutcome::Probe(probe_token.to_string()),
                    )
                } else {
                    set_disabled_flag(&txn, list, &member, true)?;
                    if rules.remove_after > 0 {
                        txn.open_table(REMOVAL)?
                            .insert((now + rules.remove_after, list, member.as_str()), ())?;
                    }
                    (
                        BounceStatus::Disabled,
                        now,
                        String::new(),
                        BounceOutcome::Disabled(score),
                    )
                }
            } else {
                (status, since, String::new(), BounceOutcome::Scored(score))
            };
            t.insert(
                (list, member.as_str()),
                (score, last_day, now, status.code(), since, probe.as_str()),
            )?;
            outcome
        };
        txn.commit()?;
        Ok(outcome)
    }

    /// A bounce of the probe with `token`: disables its member. Returns (list, member); `None`
    /// when the token is unknown, or its member has left the list or is no longer probing
    /// with it (a late bounce must not disable, nor tell anyone it did).
    pub fn bounce_probe_failed(
        &self,
        token: &str,
        now: u64,
        remove_after: u64,
    ) -> Result<Option<(String, String)>, StoreError> {
        let txn = self.write()?;
        let found = {
            let mut probes = txn.open_table(PROBES)?;
            let found = find_token(&probes, token)?.map(|v| {
                let (l, m) = v.value();
                (l.to_string(), m.to_string())
            });
            if found.is_some() {
                // `token` is now known to be the stored key itself.
                probes.remove(token)?;
            }
            drop(probes);
            let mut disabled = false;
            if let Some((list, member)) = &found {
                let is_member = txn
                    .open_table(MEMBERS)?
                    .get((list.as_str(), member.as_str()))?
                    .is_some();
                let mut t = txn.open_table(BOUNCES)?;
                let row = read(&t, list, member)?
                    .filter(|(r, p)| is_member && r.status == BounceStatus::Probing && p == token);
                disabled = row.is_some();
                if let Some((r, _)) = row {
                    t.insert(
                        (list.as_str(), member.as_str()),
                        (
                            r.score,
                            now / 86_400,
                            now,
                            BounceStatus::Disabled.code(),
                            now,
                            "",
                        ),
                    )?;
                    drop(t);
                    set_disabled_flag(&txn, list, member, true)?;
                    if remove_after > 0 {
                        txn.open_table(REMOVAL)?
                            .insert((now + remove_after, list.as_str(), member.as_str()), ())?;
                    }
                }
            }
            found.filter(|_| disabled)
        };
        txn.commit()?;
        Ok(found)
    }

    /// Bounce records of `list` with a score or a status, by member.
    pub fn bounce_list(&self, list: &str) -> Result<Vec<BounceRecord>, StoreError> {
        let txn = self.read()?;
        let t = txn.open_table(BOUNCES)?;
        let mut out = Vec::new();
        for row in t.range((list, "")..)? {
            let (k, v) = row?;
            let (l, m) = k.value();
            if l != list {
                break;
            }
            let (score, _d, last, status, since, _p) = v.value();
            out.push(BounceRecord {
                member: m.to_string(),
                score,
                last_bounce: last,
                status: BounceStatus::from_code(status),
                since,
            });
        }
        Ok(out)
    }

    /// Re-enable a member: clears the record and the disabled flag. False when not a member.
    pub fn member_enable(&self, list: &str, member: &str) -> Result<bool, StoreError> {
        let member = member.to_lowercase();
        let txn = self.write()?;
        let is_member = txn
            .open_table(MEMBERS)?
            .get((list, member.as_str()))?
            .is_some();
        if is_member {
            txn.open_table(BOUNCES)?.remove((list, member.as_str()))?;
            set_disabled_flag(&txn, list, &member, false)?;
        }
        txn.commit()?;
        Ok(is_member)
    }

    /// Remove disabled members whose removal is due (at most `max`); returns (list, member).
    /// A member re-enabled in the meantime is skipped.
    pub fn bounce_remove_due(
        &self,
        now: u64,
        max: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let txn = self.write()?;
        let mut removed = Vec::new();
        {
            let mut due_t = txn.open_table(REMOVAL)?;
            let due: Vec<(u64, String, String)> = due_t
                .range((0u64, "", "")..(now.saturating_add(1), "", ""))?
                .take(max)
                .filter_map(|r| r.ok())
                .map(|(k, _)| {
                    let (t, l, m) = k.value();
                    (t, l.to_string(), m.to_string())
                })
                .collect();
            let mut b = txn.open_table(BOUNCES)?;
            let mut members = txn.open_table(MEMBERS)?;
            for (t, l, m) in due {
                due_t.remove((t, l.as_str(), m.as_str()))?;
                let still_disabled =
                    read(&b, &l, &m)?.is_some_and(|(r, _)| r.status == BounceStatus::Disabled);
                if still_disabled {
                    b.remove((l.as_str(), m.as_str()))?;
                    members.remove((l.as_str(), m.as_str()))?;
                    removed.push((l, m));
                }
            }
        }
        txn.commit()?;
        Ok(removed)
    }

    /// When the next removal is due.
    pub fn bounce_next_removal(&self) -> Result<Option<u64>, StoreError> {
        let txn = self.read()?;
        let t = txn.open_table(REMOVAL)?;
        let first = t.iter()?.next();
        Ok(match first {
            Some(row) => Some(row?.0.value().0),
            None => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;
    use crate::store::token::sample;

    fn rules(probe: bool) -> Scoring {
        Scoring {
            threshold: 3.0,
            points: 1.0,
            reset_after: 7 * 86_400,
            probe,
            remove_after: 30 * 86_400,
        }
    }

    #[test]
    fn one_point_per_bouncing_day_then_disabled_then_removed() {
        let dir = crate::store::test_dir();
        let s = Store::open(dir.path(), 1 << 20).expect("open");
        s.add_members("l", &[Address::parse("m@x.org").expect("a")])
            .expect("add");
        let d = 86_400;
        assert_eq!(
            s.bounce_record("l", "nobody@x.org", d, &rules(false), "")
                .expect("b"),
            BounceOutcome::NotMember
        );
        assert_eq!(
            s.bounce_record("l", "m@x.org", d, &rules(false), "")
                .expect("b"),
            BounceOutcome::Scored(1.0)
        );
        // Ten more bounces the same day count nothing.
        for _ in 0..10 {
            assert_eq!(
                s.bounce_record("l", "m@x.org", d + 60, &rules(false), "")
                    .expect("b"),
                BounceOutcome::Scored(1.0)
            );
        }
        assert_eq!(
            s.bounce_record("l", "m@x.org", 2 * d, &rules(false), "")
                .expect("b"),
            BounceOutcome::Scored(2.0)
        );
        assert_eq!(
            s.bounce_record("l", "M@x.org", 3 * d, &rules(false), "")
                .expect("b"),
            BounceOutcome::Disabled(3.0)
        );
        assert_eq!(
            s.member_get("l", "m@x.org")
                .expect("get")
                .map(|m| m.flags & FLAG_DISABLED),
            Some(FLAG_DISABLED)
        );
        assert_eq!(s.bounce_next_removal().expect("next"), Some(3 * d + 30 * d));
        assert!(s.bounce_remove_due(10 * d, 10).expect("remove").is_empty());
        assert_eq!(
            s.bounce_remove_due(40 * d, 10).expect("remove"),
            vec![("l".to_string(), "m@x.org".to_string())]
        );
        assert!(s.member_get("l", "m@x.org").expect("get").is_none());
    }

    #[test]
    fn quiet_periods_reset_and_enable_recovers() {
        let dir = crate::store::test_dir();
        let s = Store::open(dir.path(), 1 << 20).expect("open");
        s.add_members("l", &[Address::parse("m@x.org").expect("a")])
            .expect("add");
        let d = 86_400;
        s.bounce_record("l", "m@x.org", d, &rules(false), "")
            .expect("b");
        s.bounce_record("l", "m@x.org", 2 * d, &rules(false), "")
            .expect("b");
        assert_eq!(
            s.bounce_record("l", "m@x.org", 20 * d, &rules(false), "")
                .expect("b"),
            BounceOutcome::Scored(1.0)
        );
        for day in 21..23 {
            s.bounce_record("l", "m@x.org", day * d, &rules(false), "")
                .expect("b");
        }
        assert_eq!(
            s.bounce_list("l").expect("list")[0].status,
            BounceStatus::Disabled
        );
        assert!(s.member_enable("l", "m@x.org").expect("enable"));
        assert_eq!(
            s.member_get("l", "m@x.org").expect("get").map(|m| m.flags),
            Some(0)
        );
        assert!(s.bounce_list("l").expect("list").is_empty());
        // The old removal deadline passes without removing the recovered member.
        assert!(s.bounce_remove_due(100 * d, 10).expect("remove").is_empty());
        assert!(s.member_get("l", "m@x.org").expect("get").is_some());
    }

    #[test]
    fn a_probe_decides() {
        let dir = crate::store::test_dir();
        let s = Store::open(dir.path(), 1 << 20).expect("open");
        let probe = sample(0x5eed_5eed, 0x1234);
        s.add_members("l", &[Address::parse("m@x.org").expect("a")])
            .expect("add");
        let d = 86_400;
        for day in 1..3 {
            s.bounce_record("l", "m@x.org", day * d, &rules(true), &probe)
                .expect("b");
        }
        assert_eq!(
            s.bounce_record("l", "m@x.org", 3 * d, &rules(true), &probe)
                .expect("b"),
            BounceOutcome::Probe(probe.clone())
        );
        assert_eq!(
            s.member_get("l", "m@x.org").expect("get").map(|m| m.flags),
            Some(0),
            "still delivering"
        );
        // A bounce to a guessed probe address (right lookup id, wrong secret; one digit
        // changed; malformed) changes nothing.
        for guess in [
            sample(0x5eed_5eed, 0x1235),
            sample(0x5eed_5eed, 0x1234 | (1 << 120)),
            probe.to_ascii_uppercase(),
            probe[..39].to_string(),
        ] {
            assert_eq!(
                s.bounce_probe_failed(&guess, 4 * d, 30 * d).expect("probe"),
                None,
                "{guess}"
            );
        }
        assert_eq!(
            s.member_get("l", "m@x.org").expect("get").map(|m| m.flags),
            Some(0),
            "still delivering after guesses"
        );
        assert_eq!(
            s.bounce_probe_failed(&probe, 4 * d, 30 * d).expect("probe"),
            Some(("l".into(), "m@x.org".into()))
        );
        assert_eq!(
            s.member_get("l", "m@x.org")
                .expect("get")
                .map(|m| m.flags & FLAG_DISABLED),
            Some(FLAG_DISABLED)
        );
        assert_eq!(
            s.bounce_probe_failed(&probe, 4 * d, 30 * d).expect("probe"),
            None
        );
    }

    /// A member whose probe was delivered (no bounce came back) is not parked in `probing`:
    /// a bounce on a later day sends the same probe again (once a day, so a probe that could
    /// not be sent gets its retry), and after a quiet period without the probe bouncing, the
    /// member starts again from zero.
    #[test]
    fn an_unanswered_probe_is_repeated_daily_then_forgotten() {
        let dir = crate::store::test_dir();
        let s = Store::open(dir.path(), 1 << 20).expect("open");
        let probe = sample(0x0bad_cafe, 7);
        s.add_members("l", &[Address::parse("m@x.org").expect("a")])
            .expect("add");
        let d = 86_400;
        let r = rules(true);
        for day in 1..3 {
            s.bounce_record("l", "m@x.org", day * d, &r, &probe)
                .expect("b");
        }
        assert_eq!(
            s.bounce_record("l", "m@x.org", 3 * d, &r, &probe)
                .expect("b"),
            BounceOutcome::Probe(probe.clone())
        );
        // The same day: nothing more (forged bounces cost at most one probe a day).
        assert_eq!(
            s.bounce_record("l", "m@x.org", 3 * d + 60, &r, &sample(1, 1))
                .expect("b"),
            BounceOutcome::Unchanged
        );
        // The next day: the same probe again, not a new token.
        assert_eq!(
            s.bounce_record("l", "m@x.org", 4 * d, &r, &sample(2, 2))
                .expect("b"),
            BounceOutcome::Probe(probe.clone())
        );
        // A quiet period after the probe started without its bounce: back to zero.
        let later = 3 * d + r.reset_after + d;
        assert_eq!(
            s.bounce_record("l", "m@x.org", later, &r, &sample(3, 3))
                .expect("b"),
            BounceOutcome::Scored(1.0)
        );
        let rec = s.bounce_list("l").expect("list");
        assert_eq!(rec[0].status, BounceStatus::Ok);
        // The old probe's token is forgotten: its late bounce disables nobody.
        assert_eq!(
            s.bounce_probe_failed(&probe, later, 30 * d).expect("probe"),
            None
        );
        assert_eq!(
            s.member_get("l", "m@x.org").expect("get").map(|m| m.flags),
            Some(0)
        );
    }

    /// A probe bounce that arrives after its member left disables nothing and reports nothing.
    #[test]
    fn a_probe_bounce_after_the_member_left_is_ignored() {
        let dir = crate::store::test_dir();
        let s = Store::open(dir.path(), 1 << 20).expect("open");
        let probe = sample(0x0dd_f00d, 9);
        let m = Address::parse("m@x.org").expect("a");
        s.add_members("l", std::slice::from_ref(&m)).expect("add");
        let d = 86_400;
        for day in 1..4 {
            s.bounce_record("l", "m@x.org", day * d, &rules(true), &probe)
                .expect("b");
        }
        s.remove_members("l", &[m]).expect("remove");
        assert_eq!(
            s.bounce_probe_failed(&probe, 4 * d, 30 * d).expect("probe"),
            None
        );
    }
}
