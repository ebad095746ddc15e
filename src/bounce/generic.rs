//! The fallback for a message that is clearly a failure notice but that no known format read:
//! the failed addresses are taken from the shapes mailers use to list them, in the text before
//! the returned copy (already cut off, see [`Body`]). No sentence of any one mailer is needed.
//!
//! | shape | e.g. |
//! |---|---|
//! | `<addr>:` / `<addr> (expanded from <alias>):` at the start of a line | qmail, Postfix, Yahoo, Courier |
//! | `addr:` at the start of a line, a reason after it | Exim 3, small MTAs |
//! | `addr` alone on a line, maybe indented, bulleted (`*`, `-`) or quoted, maybe "on DATE" or "(reason)" after it | Exim, Exchange, Domino, GroupWise, hMailServer |
//! | `* [addr]: reason` | MailEnable lists |
//! | `[SMTP:addr]`, `SMTP=addr;` anywhere on a line | MailEnable, Exchange with X.400 recipients |
//! | `550 addr... reason` | a Sendmail transcript |
//! | a lead-in and the address on one line: "Unknown user: addr", "undeliverable to addr", "Delivery failed 20 attempts: addr", "Did not reach the following recipient: addr", "Recipient address: addr" | SMTP32 / IMail, Sun SIMS, Exchange |
//!
//! Precision comes first: only a line whose shape is one of these gives an address (an
//! address inside a sentence does not), an address whose domain has no dot is refused (a
//! scrubbed `xxx@xxx.` must not become `xxx@xxx`), and the addresses of the bounce's own
//! sender and recipients and of postmasters and mailer daemons are never blamed.

use super::text::{address_token, failure_status, fold, Body, Entry, MAX_ENTRIES};
use super::{push_unique, Bounced, Failure};

/// Lead-ins after which one address ends the line, and what a failure without a code is.
const LEAD_INS: &[(&str, Failure)] = &[
    ("unknown user:", Failure::Hard),
    ("user unknown:", Failure::Hard),
    ("no such user:", Failure::Hard),
    ("undeliverable to", Failure::Hard),
    ("undeliverable to:", Failure::Hard),
    ("did not reach the following recipient:", Failure::Hard),
    ("could not be delivered to:", Failure::Hard),
    ("recipient address:", Failure::Hard),
    ("original-recipient:", Failure::Hard),
    ("failed recipient:", Failure::Hard),
    ("recipient:", Failure::Hard),
    // SMTP32 / IMail gave up after its retries: the reason is not said.
    ("attempts:", Failure::Soft),
];

/// Local parts that belong to mail systems, never to a failed member.
const SYSTEM_LOCALS: &[&str] = &[
    "postmaster",
    "mailer-daemon",
    "mail-daemon",
    "mailerdaemon",
    "abuse",
];

/// The failed recipients the shapes give; `own` are the addresses of the bounce's own header
/// (From, To, Cc, Reply-To, Sender), which are never taken.
pub(super) fn failures(body: &Body, own: &[String], default: Failure) -> Vec<Bounced> {
    let mut entries: Vec<(Entry, Failure)> = Vec::new();
    let mut open: Option<usize> = None;
    for line in body.lines() {
        let t = line.trim();
        if t.is_empty() {
            open = None;
            continue;
        }
        match shape(t) {
            Some((address, rest, fallback)) => {
                if !acceptable(&address, own) {
                    open = None;
                    continue;
                }
                let at = match entries.iter().position(|(e, _)| e.address == address) {
                    Some(at) => {
                        if let Some((e, _)) = entries.get_mut(at) {
                            e.reasons.push(String::new());
                        }
                        at
                    }
                    None if entries.len() < MAX_ENTRIES => {
                        entries.push((Entry::new(address), fallback.unwrap_or(default)));
                        entries.len() - 1
                    }
                    None => break,
                };
                if let Some((e, _)) = entries.get_mut(at) {
                    e.push(rest);
                }
                open = Some(at);
            }
            None => {
                if let Some((e, _)) = open.and_then(|at| entries.get_mut(at)) {
                    e.push(t.strip_prefix("Reason:").unwrap_or(t));
                }
            }
        }
    }
    // A reason given once after the list ("Reason: 550 ...") applies to entries without one.
    let shared = shared_reason(&body.text);
    let mut found = Vec::new();
    for (mut entry, fallback) in entries {
        if !entry
            .reasons
            .iter()
            .any(|r| failure_status(r).is_some() || super::text::find_reply_code(r).is_some())
        {
            if let Some(reason) = &shared {
                entry.reasons.push(reason.clone());
            }
        }
        push_unique(&mut found, entry.judge(fallback));
    }
    found
}

/// The text after a line that starts with "Reason:" or "Diagnostic", when it carries a code.
fn shared_reason(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let l = l.trim();
        let lower = l.to_ascii_lowercase();
        let rest = ["reason:", "diagnostic code:", "diagnostic-code:", "error:"]
            .iter()
            .find_map(|p| {
                lower
                    .strip_prefix(p)
                    .map(|_| l.get(p.len()..).unwrap_or(""))
            })?;
        (failure_status(rest).is_some() || super::text::find_reply_code(rest).is_some())
            .then(|| rest.trim().to_string())
    })
}

/// True for an address that may be blamed: not one of the bounce's own, not a system mailbox,
/// a domain with a dot.
fn acceptable(address: &str, own: &[String]) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    domain.contains('.') && !SYSTEM_LOCALS.contains(&local) && !own.iter().any(|o| o == address)
}

/// The address a line lists, what follows it on the line, and the failure a lead-in implies.
fn shape(t: &str) -> Option<(String, &str, Option<Failure>)> {
    // Bullets.
    let t = t
        .strip_prefix(['*', '-', '\u{2022}'])
        .map(str::trim_start)
        .unwrap_or(t);
    // `<addr>:` and `<addr> (expanded from <alias>):`.
    if let Some(rest) = t.strip_prefix('<') {
        let (inner, after) = rest.split_once('>')?;
        let address = address_token(inner)?;
        let after = after.trim_start();
        if after.is_empty() {
            return Some((address, "", None));
        }
        if let Some(after) = after.strip_prefix("(expanded from ") {
            let (alias, after) = after.split_once(')')?;
            let original = address_token(alias).unwrap_or(address);
            return Some((original, after.trim_start().trim_start_matches(':'), None));
        }
        return after.strip_prefix(':').map(|r| (address, r.trim(), None));
    }
    // `[addr]: reason` and `[SMTP:addr]` anywhere.
    if let Some(rest) = t.strip_prefix('[') {
        if let Some((inner, after)) = rest.split_once(']') {
            if !inner.to_ascii_lowercase().starts_with("smtp:") {
                let address = address_token(inner)?;
                let after = after.trim_start();
                let after = after.strip_prefix(':').unwrap_or(after).trim();
                return Some((address, after, None));
            }
        }
    }
    let lower = t.to_ascii_lowercase();
    for marker in ["[smtp:", "smtp="] {
        if let Some(at) = lower.find(marker) {
            let tail = t.get(at + marker.len()..)?;
            let end = tail.find([']', ';', ' ', '>']).unwrap_or(tail.len());
            let address = address_token(tail.get(..end)?)?;
            return Some((address, "", None));
        }
    }
    // `550 addr... reason` (a Sendmail transcript line).
    if let Some((code, rest)) = t.split_once(' ') {
        if code.len() == 3
            && code.starts_with(['4', '5'])
            && code.bytes().all(|b| b.is_ascii_digit())
        {
            if let Some((token, _)) = rest.split_once("...") {
                if !token.contains(' ') {
                    return address_token(token).map(|a| (a, t, None));
                }
            }
        }
    }
    // A lead-in, then the address ending the line.
    let folded = fold(t);
    for (lead, failure) in LEAD_INS {
        if let Some(at) = folded.find(lead) {
            let tail = folded.get(at + lead.len()..)?.trim();
            if tail.split_whitespace().count() == 1 {
                let address = address_token(tail)?;
                return Some((address, t, Some(*failure)));
            }
        }
    }
    // `addr:` with a reason, or the address alone (maybe quoted, "on DATE", "(reason)").
    let (token, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
    let token = token.trim_matches(['\'', '"']);
    if let Some(bare) = token.strip_suffix(':') {
        if !bare.contains(':') {
            let address = address_token(bare)?;
            return Some((address, rest.trim(), None));
        }
        return None;
    }
    if token.contains(':') {
        return None;
    }
    let address = address_token(token)?;
    let rest = rest.trim();
    if rest.is_empty() {
        return Some((address, "", None));
    }
    if rest.starts_with("on ") {
        return Some((address, "", None));
    }
    if let Some(inner) = rest.strip_prefix('(') {
        return Some((address, inner.trim_end_matches(')'), None));
    }
    None
}
