//! Bounded text helpers shared by the DSN reader and the prose formats: the input limits, the
//! human text of a bounce without its returned original, enhanced status and SMTP reply codes,
//! the hard/soft decision, one-line diagnostics and addresses found in prose.

use crate::address::Address;

use super::Failure;

/// Only this many bytes of a bounce are read.
pub const MAX_BYTES: usize = 256 * 1024;
/// Only this many lines of a bounce (and of each decoded text part) are read.
pub const MAX_LINES: usize = 2000;
/// Longest diagnostic handed out, in characters.
pub const MAX_DIAGNOSTIC: usize = 200;
/// Most failed recipients taken from one bounce.
pub(super) const MAX_ENTRIES: usize = 100;
/// Longest reason kept while reading, in bytes, before it is cut to [`MAX_DIAGNOSTIC`].
const MAX_REASON: usize = 2048;

/// The prefix of `raw` that is read: at most [`MAX_BYTES`], ending after line [`MAX_LINES`].
pub(super) fn bounded(raw: &[u8]) -> &[u8] {
    let raw = raw.get(..MAX_BYTES).unwrap_or(raw);
    match raw
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'\n')
        .nth(MAX_LINES - 1)
    {
        Some((i, _)) => raw.get(..=i).unwrap_or(raw),
        None => raw,
    }
}

/// The same limits for decoded text (cut on a character boundary).
pub(super) fn bounded_str(s: &str) -> &str {
    let mut end = s.len().min(MAX_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let s = s.get(..end).unwrap_or_default();
    match s.match_indices('\n').nth(MAX_LINES - 1) {
        Some((i, _)) => s.get(..=i).unwrap_or(s),
        None => s,
    }
}

/// The human-readable text of a bounce, without the returned original message.
pub(super) struct Body {
    /// The text parts, each cut where the copy of the original starts, joined by blank lines.
    pub text: String,
    /// `text` folded (see [`fold`]) with every run of whitespace as one space, so that markers
    /// wrapped over two lines are still found.
    pub flat: String,
    /// The text was cut at a mail system's own line introducing the returned message ("---
    /// Below this line is a copy of the message.", "Original message follows."): a bounce
    /// marker even when the introduction above it is the site's own wording.
    pub returned_copy: bool,
}

impl Body {
    pub(super) fn new(texts: &[String]) -> Body {
        let mut text = String::new();
        let mut returned_copy = false;
        for t in texts {
            if text.len() >= MAX_BYTES {
                break;
            }
            for line in t.lines().take(MAX_LINES) {
                if let Some(marker) = original_marker(line) {
                    // Only a mail system writes these: checked before the copy is cut off.
                    returned_copy |= marker != "original message";
                    break;
                }
                text.push_str(line.trim_end());
                text.push('\n');
            }
            text.push('\n');
        }
        let text = bounded_str(&text).to_string();
        let mut flat = String::with_capacity(text.len());
        for word in fold(&text).split_whitespace() {
            flat.push_str(word);
            flat.push(' ');
        }
        Body {
            text,
            flat,
            returned_copy,
        }
    }

    /// The lines of [`Body::text`], without trailing whitespace.
    pub(super) fn lines(&self) -> Vec<&str> {
        self.text.lines().map(str::trim_end).collect()
    }
}

/// Lowercase, with typographic apostrophes as `'` (Gmail and Office 365 write "wasn’t").
pub(super) fn fold(s: &str) -> String {
    s.to_lowercase().replace(['\u{2019}', '\u{2018}'], "'")
}

/// A line that starts the copy of the original message in a text-only bounce: qmail, Exim,
/// Gmail, Exchange, Sendmail. Nothing after it describes the failure. Returns the marker.
fn original_marker(line: &str) -> Option<&'static str> {
    let t = line.trim().trim_matches('-').trim().to_ascii_lowercase();
    if t == "original message" {
        // Also a mail client's quoted reply: no bounce marker by itself.
        return Some("original message");
    }
    [
        "below this line is a copy of the message",
        "this is a copy of the message",
        "this is a copy of your message",
        "original message headers",
        "original message follows",
        "unsent message follows",
        "returned message follows",
        "message header follows",
        "message headers follow",
    ]
    .iter()
    .find(|m| t.starts_with(*m))
    .copied()
}

/// The first RFC 3463 enhanced status code in `s` ("5.1.1", "4.2.2", "5.1.351"): class 2, 4 or
/// 5, then one to three digits twice, not part of a longer dotted number such as an IP address.
pub(super) fn find_status(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let prev_ok = i == 0
            || b.get(i - 1)
                .is_some_and(|&p| !(p.is_ascii_alphanumeric() || p == b'.'));
        let run = b
            .get(i..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| c.is_ascii_digit() || **c == b'.')
            .count();
        if run == 0 {
            i += 1;
            continue;
        }
        if prev_ok && b.get(i + run).is_none_or(|c| !c.is_ascii_alphabetic()) {
            let token = s.get(i..i + run).unwrap_or_default();
            // A sentence may end right after the code.
            if let Some(code) = status_token(token.strip_suffix('.').unwrap_or(token)) {
                return Some(code.to_string());
            }
        }
        i += run;
    }
    None
}

/// `token` when it is exactly an enhanced status code.
pub(super) fn status_token(token: &str) -> Option<&str> {
    let mut parts = token.split('.');
    let (Some(class), Some(subject), Some(detail), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let digits = |p: &str| (1..=3).contains(&p.len()) && p.bytes().all(|c| c.is_ascii_digit());
    (matches!(class, "2" | "4" | "5") && digits(subject) && digits(detail)).then_some(token)
}

/// The first SMTP reply code of class 4 or 5 in `s` ("550", "452"), standing as a word of its
/// own (after a space, `#`, a quote or a bracket) and not a quantity such as "500 MB".
pub(super) fn find_reply_code(s: &str) -> Option<u16> {
    let b = s.as_bytes();
    for i in 0..b.len() {
        let prev_ok = i == 0
            || b.get(i - 1)
                .is_some_and(|p| matches!(p, b' ' | b'\t' | b'#' | b'\'' | b'"' | b'(' | b'['));
        let Some(&[d0, d1, d2]) = b.get(i..i + 3) else {
            break;
        };
        if !prev_ok
            || !matches!(d0, b'4' | b'5')
            || !matches!(d1, b'0'..=b'5')
            || !d2.is_ascii_digit()
        {
            continue;
        }
        let next_ok = b
            .get(i + 3)
            .is_none_or(|c| matches!(c, b' ' | b'\t' | b'-' | b')' | b']' | b'\'' | b':'));
        let rest = s
            .get(i + 3..)
            .unwrap_or_default()
            .trim_start()
            .to_ascii_lowercase();
        let quantity = ["mb", "kb", "gb", "byte", "day", "hour", "minute", "second"]
            .iter()
            .any(|u| rest.starts_with(u));
        if next_ok && !quantity {
            return Some(
                u16::from(d0 - b'0') * 100 + u16::from(d1 - b'0') * 10 + u16::from(d2 - b'0'),
            );
        }
    }
    None
}

/// Words that mark a failure as temporary when no code says it.
const SOFT_WORDS: &[&str] = &[
    "mailbox full",
    "mailbox is full",
    "quota",
    "temporarily",
    "temporary",
    "retry timeout exceeded",
    "in the queue too long",
    "insufficient storage",
    "try again later",
];

/// Words that mark a failure as permanent when no code says it.
const HARD_WORDS: &[&str] = &[
    "permanent",
    "does not exist",
    "doesn't exist",
    "unknown user",
    "no such user",
    "user unknown",
    "mailbox unavailable",
    "no mailbox here",
    "not found",
    "unrouteable address",
];

/// Hard or soft: from the enhanced status code, else the SMTP reply code in `reason`, else its
/// words, else `default` (what the format itself says about the failure).
pub(super) fn failure_of(status: Option<&str>, reason: &str, default: Failure) -> Failure {
    // X.2.2, mailbox full: RFC 3463 uses it for persistent transient conditions too, and a
    // full mailbox is usually emptied again; it scores as soft even when permanent.
    if status.is_some_and(|s| s.trim() == "5.2.2") {
        return Failure::Soft;
    }
    match status.and_then(|s| s.bytes().next()) {
        Some(b'5') => return Failure::Hard,
        Some(b'4') => return Failure::Soft,
        _ => {}
    }
    match find_reply_code(reason).map(|c| c / 100) {
        Some(5) => return Failure::Hard,
        Some(4) => return Failure::Soft,
        _ => {}
    }
    let lower = fold(reason);
    if SOFT_WORDS.iter().any(|w| lower.contains(w)) {
        Failure::Soft
    } else if HARD_WORDS.iter().any(|w| lower.contains(w)) {
        Failure::Hard
    } else {
        default
    }
}

/// A failure status found in `reason` (class 4 or 5).
pub(super) fn failure_status(reason: &str) -> Option<String> {
    find_status(reason).filter(|s| !s.starts_with('2'))
}

/// `s` as one line of at most [`MAX_DIAGNOSTIC`] characters: line breaks and tabs become
/// spaces, runs of spaces one space, control and bidirectional-override characters go.
pub(super) fn one_line(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut count = 0;
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
            continue;
        }
        let needed = if space { 2 } else { 1 };
        if count + needed > MAX_DIAGNOSTIC {
            break;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
        count += needed;
    }
    (!out.is_empty()).then_some(out)
}

/// Appends a line to a reason being collected, bounded.
pub(super) fn push_reason(reason: &mut String, line: &str) {
    let line = line.trim();
    if line.is_empty() || reason.len() >= MAX_REASON {
        return;
    }
    if !reason.is_empty() {
        reason.push(' ');
    }
    reason.push_str(line);
}

/// An address written in prose or a field: surrounding brackets, quotes, `mailto:` and
/// trailing punctuation are dropped. Returns the lowercase key when it is a valid address.
pub(super) fn address_token(token: &str) -> Option<String> {
    let t = token
        .trim()
        .trim_matches(|c| matches!(c, '<' | '>' | '(' | ')' | '[' | ']' | '\'' | '"'));
    let t = t.strip_prefix("mailto:").unwrap_or(t);
    let untrimmed = t;
    let t = t.trim_end_matches(['.', ',', ';', ':']);
    let t = t.trim_matches(|c| matches!(c, '<' | '>' | '\'' | '"'));
    if !t.contains('@') {
        return None;
    }
    // A dot ending a sentence may go, but not when it leaves a domain without a dot: then the
    // dot was part of something scrubbed or cut ("xxx@xxx."), and dropping it would name
    // another, valid address.
    if untrimmed.trim_end_matches([',', ';', ':']).ends_with('.')
        && t.rsplit_once('@').is_none_or(|(_, d)| !d.contains('.'))
    {
        return None;
    }
    Address::parse(t).ok().map(|a| a.key())
}

/// A bounce's own description of one failed recipient, before it is judged.
#[derive(Debug, Default)]
pub(super) struct Entry {
    /// The address that failed, as a key.
    pub address: String,
    /// The address it was expanded from, when the bounce says so (that is the one we sent to).
    pub original: Option<String>,
    /// Reasons, one per mention of the address, each already joined to one line.
    pub reasons: Vec<String>,
}

impl Entry {
    pub(super) fn new(address: String) -> Entry {
        Entry {
            address,
            original: None,
            reasons: vec![String::new()],
        }
    }

    /// Appends to the newest reason.
    pub(super) fn push(&mut self, line: &str) {
        if let Some(r) = self.reasons.last_mut() {
            push_reason(r, line);
        }
    }

    /// Judges the entry: the reason with a code in it is the diagnostic, else the first one.
    pub(super) fn judge(self, default: Failure) -> super::Bounced {
        let with_code = self
            .reasons
            .iter()
            .find(|r| find_status(r).is_some() || find_reply_code(r).is_some());
        let reason = with_code
            .or_else(|| self.reasons.iter().find(|r| !r.is_empty()))
            .cloned()
            .unwrap_or_default();
        let status = failure_status(&reason);
        super::Bounced {
            address: self.original.unwrap_or(self.address),
            failure: failure_of(status.as_deref(), &reason, default),
            status,
            diagnostic: one_line(&reason),
        }
    }
}
