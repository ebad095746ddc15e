//! The human-readable formats of real MTAs, for bounces without a usable delivery-status part.
//! Each format is recognised by its own sentences, found in the folded text so that wrapped
//! lines still match, and then read line by line. The copy of the original message is already
//! cut off (see [`Body`]), so addresses quoted from it are never taken for failed recipients.
//!
//! | format | recognised by | a recipient is |
//! |---|---|---|
//! | qmail, Yahoo | "This is the qmail-send program", "unable to deliver your message to the following address" | `<addr>:` then reason lines |
//! | Postfix | "I'm sorry to have to inform you that your message could not be delivered" | `<addr>: reason` with indented continuations |
//! | Exim | "The following address(es) failed:" | `  addr` then `    reason` lines |
//! | Sendmail | "The following addresses had permanent fatal errors" | `<addr>` then `    (reason: ...)` |
//! | Gmail (old) | "Delivery to the following recipient failed permanently:" | an address line; "Technical details of ... failure:" |
//! | Gmail | "Your message wasn't delivered to ADDR because ..." | the response after "The response ... was:" |
//! | Exchange 5.5-2019 | "Delivery has failed to these recipients or groups:", "cannot be reached" | an address line, then its reason; repeated with the code under "Diagnostic information" |
//! | Office 365 | "Your message to ADDR couldn't be delivered." | "Reported error:" / "Remote Server returned" |

use super::text::{address_token, fold, Body, Entry, MAX_ENTRIES};
use super::{push_unique, Bounced, Failure};

/// One format: does the folded text carry it, how to read it, what a failure without a code is.
struct Format {
    matches: fn(&str) -> bool,
    read: fn(&[&str]) -> Vec<Entry>,
    default: fn(&str) -> Failure,
}

const FORMATS: &[Format] = &[
    Format {
        matches: |f| {
            f.contains("this is the qmail-send program")
                || f.contains("wasn't able to deliver your message to the following address")
                || f.contains("unable to deliver your message to the following address")
        },
        read: angle_entries,
        default: |_| Failure::Hard,
    },
    Format {
        matches: |f| {
            f.contains("i'm sorry to have to inform you that your message could not be delivered")
        },
        read: angle_entries,
        default: |_| Failure::Hard,
    },
    Format {
        matches: |f| f.contains("address(es) failed"),
        read: exim_entries,
        default: |f| {
            if f.contains("this is a temporary error") {
                Failure::Soft
            } else {
                Failure::Hard
            }
        },
    },
    Format {
        matches: |f| f.contains(SENDMAIL),
        read: |lines| {
            let start = marker_line(lines, &[SENDMAIL]);
            block_entries(lines, start, |l| l.trim_start().starts_with("-----"))
        },
        default: |_| Failure::Hard,
    },
    Format {
        matches: |f| GMAIL_OLD.iter().any(|m| f.contains(m)),
        read: gmail_old_entries,
        default: |f| {
            if f.contains("technical details of temporary failure") {
                Failure::Soft
            } else {
                Failure::Hard
            }
        },
    },
    Format {
        matches: |f| f.contains(GMAIL),
        read: gmail_entries,
        default: |_| Failure::Hard,
    },
    Format {
        matches: |f| EXCHANGE.iter().any(|m| f.contains(m)),
        read: |lines| block_entries(lines, marker_line(lines, EXCHANGE), |_| false),
        default: |_| Failure::Hard,
    },
    Format {
        matches: |f| f.contains(OFFICE365) && f.contains("couldn't be delivered"),
        read: office365_entries,
        default: |_| Failure::Hard,
    },
];

const SENDMAIL: &str = "the following addresses had permanent fatal errors";
const GMAIL_OLD: &[&str] = &[
    "delivery to the following recipient failed",
    "delivery to the following recipients failed",
];
const GMAIL: &str = "your message wasn't delivered to ";
const EXCHANGE: &[&str] = &[
    "delivery has failed to these recipients or groups",
    "the following recipient(s) cannot be reached",
    "did not reach the following recipient(s)",
];
const OFFICE365: &str = "your message to ";

/// Words of a failure notice in general: a message with them is no auto-reply, even when no
/// format could read it.
const BOUNCE_WORDS: &[&str] = &[
    "could not be delivered",
    "couldn't be delivered",
    "wasn't delivered",
    "was not delivered",
    "delivery has failed",
    "delivery failed",
    "undeliverable",
    "permanent fatal error",
    "address not found",
    "message not delivered",
];

/// The failed recipients the first matching format finds.
pub(super) fn failures(body: &Body) -> Vec<Bounced> {
    let lines = body.lines();
    for format in FORMATS {
        if !(format.matches)(&body.flat) {
            continue;
        }
        let default = (format.default)(&body.flat);
        let mut found = Vec::new();
        for entry in (format.read)(&lines) {
            push_unique(&mut found, entry.judge(default));
        }
        if !found.is_empty() {
            return found;
        }
    }
    Vec::new()
}

/// True when the folded text reads like a failure notice of any kind.
pub(super) fn any_marker(flat: &str) -> bool {
    FORMATS.iter().any(|f| (f.matches)(flat)) || BOUNCE_WORDS.iter().any(|w| flat.contains(w))
}

/// Index of the first line holding one of `markers`, else 0.
fn marker_line(lines: &[&str], markers: &[&str]) -> usize {
    lines
        .iter()
        .position(|l| {
            let l = fold(l);
            markers.iter().any(|m| l.contains(m))
        })
        .unwrap_or(0)
}

/// Adds `entry` when it names an address.
fn keep(entries: &mut Vec<Entry>, entry: Option<Entry>) {
    if let Some(e) = entry {
        if (!e.address.is_empty() || e.original.is_some()) && entries.len() < MAX_ENTRIES {
            entries.push(e);
        }
    }
}

/// qmail, Yahoo and Postfix: `<addr>:` or `<addr> (expanded from <alias>): reason` at the
/// start of a line, the reason going on until a blank line.
fn angle_entries(lines: &[&str]) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut current: Option<Entry> = None;
    for line in lines {
        if let Some(entry) = angle_line(line) {
            keep(&mut entries, current.replace(entry));
        } else if line.trim().is_empty() {
            keep(&mut entries, current.take());
        } else if let Some(e) = current.as_mut() {
            e.push(line);
        }
    }
    keep(&mut entries, current);
    entries
}

fn angle_line(line: &str) -> Option<Entry> {
    let rest = line.strip_prefix('<')?;
    let (address, rest) = rest.split_once('>')?;
    let mut entry = Entry::new(address_token(address)?);
    let mut rest = rest.trim_start();
    if let Some(after) = rest.strip_prefix("(expanded from ") {
        let (alias, after) = after.split_once(')')?;
        entry.original = address_token(alias);
        rest = after.trim_start();
    }
    entry.push(rest.strip_prefix(':')?);
    Some(entry)
}

/// Exim: after "The following address(es) failed:", each address indented by two spaces, its
/// reason by four; "(generated from alias)" names the address we sent to.
fn exim_entries(lines: &[&str]) -> Vec<Entry> {
    let mut entries = Vec::new();
    let Some(start) = lines
        .iter()
        .position(|l| fold(l).contains("address(es) failed"))
    else {
        return entries;
    };
    let mut current: Option<Entry> = None;
    for line in lines.iter().skip(start + 1) {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        let indent: usize = line
            .chars()
            .take_while(|c| c.is_whitespace())
            .map(|c| if c == '\t' { 8 } else { 1 })
            .sum();
        if indent == 0 {
            break;
        }
        if indent < 4 {
            let (token, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
            let (token, colon_rest) = token.split_once(':').unwrap_or((token, ""));
            // "pipe to |...", "an undisclosed address": an entry without an address, which a
            // "generated from" line may still name.
            let mut entry = Entry::new(address_token(token).unwrap_or_default());
            entry.push(colon_rest);
            entry.push(rest.trim_start_matches(':'));
            keep(&mut entries, current.replace(entry));
        } else if let Some(e) = current.as_mut() {
            match generated_from(t) {
                Some(original) => e.original = Some(original),
                None => e.push(t),
            }
        }
    }
    keep(&mut entries, current);
    entries
}

/// "(generated from x)", "generated by x", "(expanded from: <x>)": the address before aliasing.
fn generated_from(line: &str) -> Option<String> {
    let l = line.to_ascii_lowercase();
    [
        "(generated from ",
        "generated by ",
        "(expanded from: ",
        "(expanded from ",
    ]
    .iter()
    .find_map(|p| l.strip_prefix(p))
    .and_then(|rest| rest.split_whitespace().next())
    .and_then(address_token)
}

/// Exchange and Sendmail: after the marker, a line that is an address (alone, in brackets,
/// "Name (addr)", "addr on DATE") starts an entry, and the lines up to the next blank line are
/// its reason. An address met again (Exchange repeats it under "Diagnostic information for
/// administrators" with the code) adds a reason to the same entry.
fn block_entries(lines: &[&str], start: usize, stop: fn(&str) -> bool) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut open: Option<usize> = None;
    for line in lines.iter().skip(start + 1) {
        if stop(line) {
            break;
        }
        let t = line.trim();
        if t.is_empty() {
            open = None;
            continue;
        }
        if let Some((address, rest)) = address_line(t) {
            let at = match entries.iter().position(|e| e.address == address) {
                Some(at) => {
                    if let Some(e) = entries.get_mut(at) {
                        e.reasons.push(String::new());
                    }
                    at
                }
                None if entries.len() < MAX_ENTRIES => {
                    entries.push(Entry::new(address));
                    entries.len() - 1
                }
                None => break,
            };
            if let Some(e) = entries.get_mut(at) {
                e.push(rest);
            }
            open = Some(at);
        } else if let Some(e) = open.and_then(|at| entries.get_mut(at)) {
            if let Some(original) = generated_from(t) {
                e.original = Some(original);
            } else if let Some(reason) = t.strip_prefix("(reason: ") {
                e.push(reason.strip_suffix(')').unwrap_or(reason));
            } else {
                e.push(t);
            }
        }
    }
    entries
}

/// A line that is essentially one address; returns it and what follows it on the line (empty,
/// or the text after a colon).
fn address_line(t: &str) -> Option<(String, &str)> {
    let (token, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
    let token = token.split("<mailto:").next().unwrap_or(token);
    if let Some(address) = address_token(token) {
        return accept(address, rest);
    }
    // "Bob Smith (bob@example.org)" or "Bob Smith <bob@example.org>".
    let open = t.find(['(', '<'])?;
    let name = t.get(..open)?;
    if name.len() > 80 || name.contains([':', '@']) || name.split_whitespace().count() > 6 {
        return None;
    }
    let inner = t.get(open + 1..)?;
    let close = inner.find([')', '>'])?;
    let address = address_token(inner.get(..close)?)?;
    accept(address, inner.get(close + 1..)?)
}

fn accept(address: String, rest: &str) -> Option<(String, &str)> {
    let mut rest = rest.trim();
    if rest.starts_with("<mailto:") {
        rest = rest.split_once('>').map_or("", |(_, r)| r.trim());
    }
    if rest.is_empty() || rest.starts_with("on ") || rest.starts_with('(') {
        Some((address, ""))
    } else {
        rest.strip_prefix(':').map(|r| (address, r.trim()))
    }
}

/// Gmail before 2015: the addresses under "Delivery to the following recipient failed
/// permanently:", the reason after "Technical details of permanent failure:".
fn gmail_old_entries(lines: &[&str]) -> Vec<Entry> {
    let start = marker_line(lines, GMAIL_OLD);
    let details = lines
        .iter()
        .enumerate()
        .skip(start)
        .find(|(_, l)| fold(l).contains("technical details of"))
        .map(|(i, _)| i);
    let mut reason = String::new();
    if let Some(at) = details {
        for line in lines.iter().skip(at).take(12) {
            let line = line.split_once("failure:").map_or(*line, |(_, r)| r);
            super::text::push_reason(&mut reason, line);
        }
    }
    let end = details.unwrap_or(lines.len());
    let mut entries = Vec::new();
    for line in lines.iter().take(end).skip(start + 1) {
        if let Some((address, _)) = address_line(line.trim()) {
            let mut e = Entry::new(address);
            e.push(&reason);
            keep(&mut entries, Some(e));
        }
    }
    entries
}

/// Gmail since 2015: "Your message wasn't delivered to ADDR because ...", and the remote
/// server's words after "The response from the remote server was:" (or "The response was:").
fn gmail_entries(lines: &[&str]) -> Vec<Entry> {
    let folded: Vec<String> = lines.iter().map(|l| fold(l)).collect();
    let Some((at, address)) = folded.iter().enumerate().find_map(|(i, l)| {
        let (_, after) = l.split_once(GMAIL)?;
        Some((i, address_token(after.split_whitespace().next()?)?))
    }) else {
        return Vec::new();
    };
    let mut entry = Entry::new(address);
    let response = folded.iter().position(|l| {
        l.contains("the response from the remote server was:") || l.contains("the response was:")
    });
    match response {
        Some(r) => {
            for line in lines
                .iter()
                .skip(r + 1)
                .skip_while(|l| l.trim().is_empty())
                .take(6)
            {
                if line.trim().is_empty() {
                    break;
                }
                entry.push(line);
            }
        }
        None => entry.push(lines.get(at).copied().unwrap_or_default()),
    }
    vec![entry]
}

/// Office 365 since 2017: "Your message to ADDR couldn't be delivered.", and the code after
/// "Reported error:", in "Remote Server returned '...'" or after "Status code:".
fn office365_entries(lines: &[&str]) -> Vec<Entry> {
    let folded: Vec<String> = lines.iter().map(|l| fold(l)).collect();
    let Some(address) = folded.iter().find_map(|l| {
        let (_, after) = l.split_once(OFFICE365)?;
        address_token(after.split_whitespace().next()?)
    }) else {
        return Vec::new();
    };
    let mut entry = Entry::new(address);
    let line_with = |needle: &str| folded.iter().position(|l| l.contains(needle));
    let reason = line_with("reported error:")
        .or_else(|| line_with("remote server returned"))
        .or_else(|| line_with("status code:"));
    if let Some(line) = reason.and_then(|r| lines.get(r)) {
        let line = line.split_once("error:").map_or(*line, |(_, r)| r);
        entry.push(line);
    }
    vec![entry]
}
