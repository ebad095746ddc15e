//! The small content tests moderation builds its rules from: how many explicit recipients a
//! post has, whether the list itself is among them, whether the post is really a membership
//! command ("administrivia"), and whether a header field matches an operator's pattern.
//! Each reads only the top-level header section, as the post's one header parse gives it (or
//! the text it is given).

use std::collections::HashSet;

use mail_parser::parsers::MessageStream;
use mail_parser::{Address, Header, HeaderName, HeaderValue, Message};

/// Body lines looked at for a command.
const ADMIN_LINES: usize = 5;
/// A body with more of the poster's own lines is a discussion, not a command.
const ADMIN_MAX_BODY_LINES: usize = 10;
/// A line (or Subject) with more words is not a command.
const ADMIN_MAX_WORDS: usize = 6;

/// Number of distinct addresses in To and Cc (all occurrences, groups flattened, compared
/// without regard to case) — "explicit recipients".
pub fn explicit_recipients(headers: &Message<'_>) -> usize {
    // A set: a crafted field can hold hundreds of thousands of addresses.
    recipients(headers)
        .into_iter()
        .collect::<HashSet<_>>()
        .len()
}

/// True when one of `addresses` (lowercase `local@domain`) appears in To or Cc
/// (case-insensitive) — false means "implicit destination" (the list was Bcc'd).
pub fn addressed_to(headers: &Message<'_>, addresses: &[String]) -> bool {
    recipients(headers).iter().any(|r| {
        addresses
            .iter()
            .any(|a| a.trim().eq_ignore_ascii_case(r.as_str()))
    })
}

/// Every address of every To and Cc field, lower-cased, groups flattened.
fn recipients(message: &Message<'_>) -> Vec<String> {
    let mut found = Vec::new();
    let Some(root) = message.parts.first() else {
        return found;
    };
    for header in &root.headers {
        if !matches!(header.name, HeaderName::To | HeaderName::Cc) {
            continue;
        }
        let HeaderValue::Address(address) = &header.value else {
            continue;
        };
        let addrs: Vec<_> = match address {
            Address::List(list) => list.iter().collect(),
            Address::Group(groups) => groups.iter().flat_map(|g| g.addresses.iter()).collect(),
        };
        found.extend(
            addrs
                .iter()
                .filter_map(|a| a.address.as_deref())
                .map(|a| a.trim().to_lowercase())
                .filter(|a| !a.is_empty()),
        );
    }
    found
}

/// Administrivia: a post whose Subject, or one of its first 5 non-empty, non-quoted body
/// lines, is essentially a membership command ("unsubscribe", "please remove me", "how do I
/// unsubscribe?"...). Only short lines count (at most 6 words), and body lines only when the
/// poster wrote at most 10 non-empty lines: quoted lines (`>`) and a signature (after
/// "-- ") are not counted, so "unsubscribe" above a full quote still counts, while a
/// discussion mentioning "unsubscribe" in passing does not.
pub fn is_administrivia(subject: &str, body_text: &str) -> bool {
    if is_command(strip_subject_prefixes(subject)) {
        return true;
    }
    let own: Vec<&str> = body_text
        .lines()
        .take_while(|l| l.trim_end_matches('\r') != "-- ")
        .map(|l| l.trim_matches(|c: char| c.is_whitespace() || is_invisible(c)))
        .filter(|l| !l.is_empty() && !l.starts_with('>'))
        .take(ADMIN_MAX_BODY_LINES + 1)
        .collect();
    own.len() <= ADMIN_MAX_BODY_LINES && own.iter().take(ADMIN_LINES).any(|l| is_command(l))
}

/// Whether a line says nothing but a membership command, give or take "please", "me" and
/// punctuation.
fn is_command(line: &str) -> bool {
    let words: Vec<String> = line
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric() && c != '@')
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() || words.len() > ADMIN_MAX_WORDS {
        return false;
    }
    let mut w: Vec<&str> = words.iter().map(String::as_str).collect();
    if w.first() == Some(&"please") {
        w.remove(0);
    }
    if w.last() == Some(&"please") {
        w.pop();
    }
    // "... from this list", "... from the mailing list".
    for tail in [
        &["from", "the", "list"][..],
        &["from", "this", "list"],
        &["from", "the", "mailing", "list"],
        &["from", "this", "mailing", "list"],
    ] {
        if w.len() > tail.len() && w.ends_with(tail) {
            w.truncate(w.len() - tail.len());
            break;
        }
    }
    // "unsubscribe me@example.org": a command with its address.
    if let [verb, address] = w.as_slice() {
        let membership = ["subscribe", "unsubscribe", "join", "leave", "signoff"];
        if address.contains('@') && membership.contains(verb) {
            w.pop();
        }
    }
    matches!(
        w.as_slice(),
        ["subscribe" | "unsubscribe" | "signoff" | "leave" | "join" | "help"]
            | ["subscribe" | "unsubscribe" | "signoff", "me"]
            | ["sign", "off"]
            | ["sign", "me", "off"]
            | ["remove", "me"]
            | ["set", "nomail"]
            | ["how", "do", "i", "unsubscribe"]
    )
}

/// The subject without reply/forward markers and `[list]` tags in front.
fn strip_subject_prefixes(subject: &str) -> &str {
    let mut s = subject.trim();
    loop {
        let before = s.len();
        if let Some(rest) = s.strip_prefix('[') {
            if let Some((_, after)) = rest.split_once(']') {
                s = after.trim_start();
            }
        }
        let marker = s
            .split_once(':')
            .filter(|(m, _)| {
                ["re", "fwd", "fw", "aw", "sv", "wg"]
                    .iter()
                    .any(|p| m.trim().eq_ignore_ascii_case(p))
            })
            .map(|(_, rest)| rest.trim_start());
        if let Some(rest) = marker {
            s = rest;
        }
        if s.len() == before {
            return s;
        }
    }
}

/// Characters that show nothing: a byte-order mark, zero-width spaces and joiners.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{feff}' | '\u{200b}'..='\u{200d}' | '\u{2060}')
}

/// Header match rule: the decoded value (encoded words decoded, folding removed) of every
/// occurrence of `header` (case-insensitive name) in the top-level header section of `raw`
/// (`headers` is its parse), tested with `pattern`; true when one matches.
pub fn header_matches(
    raw: &[u8],
    headers: &Message<'_>,
    header: &str,
    pattern: &regex::Regex,
) -> bool {
    let Some(root) = headers.parts.first() else {
        return false;
    };
    let wanted = header.trim().trim_end_matches(':');
    root.headers
        .iter()
        .filter(|h| h.name.as_str().eq_ignore_ascii_case(wanted))
        .any(|h| pattern.is_match(&decoded(raw, h)))
}

/// A field's value as text: unstructured parsing of its raw bytes, whatever its kind.
fn decoded(raw: &[u8], header: &Header<'_>) -> String {
    let value = raw
        .get(header.offset_start as usize..header.offset_end as usize)
        .unwrap_or_default();
    match MessageStream::new(value).parse_unstructured() {
        HeaderValue::Text(text) => text.into_owned(),
        _ => String::new(),
    }
}
