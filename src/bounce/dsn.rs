//! RFC 3464 delivery-status fields (and RFC 6533 `message/global-delivery-status`, whose
//! addresses may be UTF-8): a per-message group, then one group per recipient, separated by
//! blank lines. Field names are case-insensitive, values may continue on indented lines, and
//! address fields carry a type (`rfc822;`, `utf-8;`). Real MTAs forget blank lines, so an
//! address field after an Action, or a second one of the same name, also starts a recipient.

use crate::address::Address;

use super::text::{self, MAX_ENTRIES, MAX_LINES};
use super::{push_unique, Bounced, Failure};

/// Longest field value kept, in bytes (Diagnostic-Code may be folded over many lines).
const MAX_VALUE: usize = 2048;

/// What the delivery-status parts of a bounce say.
#[derive(Debug, Default)]
pub(super) struct Read {
    /// Recipients whose Action is failed, with a valid address.
    pub failed: Vec<Bounced>,
    /// Recipients that were delayed, delivered, relayed or expanded.
    pub other: bool,
    /// A failed recipient whose address could not be read: someone must look at it.
    pub unattributed: bool,
    /// How such a recipient failed (hard when any of them did).
    pub unattributed_failure: Option<Failure>,
}

/// One recipient group.
#[derive(Debug, Default)]
struct Group {
    original: Option<String>,
    final_recipient: Option<String>,
    action: Option<String>,
    status: Option<String>,
    diagnostic: Option<String>,
}

/// True when `text` carries DSN recipient fields at the start of its lines (a delivery-status
/// part sent as text/plain).
pub(super) fn has_fields(text: &str) -> bool {
    let mut recipient = false;
    let mut action = false;
    for line in text.lines().take(MAX_LINES) {
        let Some((name, _)) = line.split_once(':') else {
            continue;
        };
        match name.to_ascii_lowercase().as_str() {
            "final-recipient" | "original-recipient" => recipient = true,
            "action" => action = true,
            _ => {}
        }
        if recipient && action {
            return true;
        }
    }
    false
}

/// Reads every delivery-status body.
pub(super) fn read<'a>(bodies: impl Iterator<Item = &'a str>) -> Read {
    let mut read = Read::default();
    for body in bodies {
        for group in groups(body) {
            judge(group, &mut read);
        }
    }
    read
}

fn judge(g: Group, read: &mut Read) {
    let address = g
        .original
        .as_deref()
        .and_then(address_of)
        .or_else(|| g.final_recipient.as_deref().and_then(address_of));
    let diagnostic = g.diagnostic.as_deref().map(strip_type).unwrap_or_default();
    let first = g
        .status
        .as_deref()
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_default();
    // Some MTAs write the SMTP reply code where the enhanced code belongs ("Status: 553
    // sorry, ..."): its class still says permanent or temporary.
    let reply_class = (first.len() == 3 && first.bytes().all(|b| b.is_ascii_digit()))
        .then(|| first.bytes().next())
        .flatten()
        .filter(|c| matches!(c, b'4' | b'5'));
    let status = text::status_token(first)
        .map(str::to_string)
        .or_else(|| text::find_status(&diagnostic));
    let class = status
        .as_deref()
        .and_then(|s| s.bytes().next())
        .or(reply_class);
    // Without a diagnostic, the words of a reply code in Status are the reason.
    let diagnostic = match (diagnostic.is_empty(), reply_class, g.status.as_deref()) {
        (true, Some(_), Some(words)) => words.to_string(),
        _ => diagnostic,
    };
    let action = g
        .action
        .as_deref()
        .and_then(|a| a.split([' ', '\t', '(', ';']).next())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let failed = match action.as_str() {
        // "failure", "fail": seen from real MTAs instead of RFC 3464's "failed".
        a if a.starts_with("fail") => true,
        "delayed" | "delivered" | "relayed" | "expanded" => false,
        // Without a (known) Action only a permanent status counts as a failure.
        _ => match class {
            Some(b'5') => true,
            Some(b'2' | b'4') => false,
            _ => return,
        },
    };
    if !failed {
        read.other = true;
        return;
    }
    // A 2.x.x Status on a failure says nothing about its kind.
    let status = status.filter(|s| !s.starts_with('2'));
    let Some(address) = address else {
        read.unattributed = true;
        let failure = text::failure_of(status.as_deref(), &diagnostic, Failure::Hard);
        if read.unattributed_failure != Some(Failure::Hard) {
            read.unattributed_failure = Some(failure);
        }
        return;
    };
    push_unique(
        &mut read.failed,
        Bounced {
            address,
            failure: text::failure_of(status.as_deref(), &diagnostic, Failure::Hard),
            status,
            diagnostic: text::one_line(&diagnostic),
        },
    );
}

/// The recipient groups of one delivery-status body.
fn groups(body: &str) -> Vec<Group> {
    let mut found = Vec::new();
    let mut current = Group::default();
    let mut field: Option<(String, String)> = None;
    for line in body.lines().take(MAX_LINES) {
        if found.len() > MAX_ENTRIES {
            break;
        }
        if line.trim().is_empty() {
            apply(field.take(), &mut current, &mut found);
            close(&mut current, &mut found);
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = field.as_mut() {
                if value.len() < MAX_VALUE {
                    value.push('\n');
                    value.push_str(line.trim());
                }
            }
        } else {
            apply(field.take(), &mut current, &mut found);
            field = line.split_once(':').and_then(|(name, value)| {
                let name = name.trim();
                let valid = !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
                valid.then(|| (name.to_ascii_lowercase(), value.trim().to_string()))
            });
        }
    }
    apply(field.take(), &mut current, &mut found);
    close(&mut current, &mut found);
    found
}

fn apply(field: Option<(String, String)>, g: &mut Group, found: &mut Vec<Group>) {
    let Some((name, value)) = field else {
        return;
    };
    match name.as_str() {
        // Postfix writes Final- before Original-Recipient, RFC 3464 the other way round; both
        // come before Action, so an address field after an Action (or a second one of the
        // same name) belongs to the next recipient.
        // Sun SIMS and PMDF put Action and Status first, so an Action alone does not end a
        // group: only one that already names a recipient does.
        "original-recipient" => {
            if g.original.is_some() || (g.action.is_some() && g.final_recipient.is_some()) {
                close(g, found);
            }
            g.original = Some(value);
        }
        "final-recipient" => {
            if g.final_recipient.is_some() || (g.action.is_some() && g.original.is_some()) {
                close(g, found);
            }
            g.final_recipient = Some(value);
        }
        "action" => {
            if g.action.is_some() && (g.original.is_some() || g.final_recipient.is_some()) {
                close(g, found);
            }
            g.action.get_or_insert(value);
        }
        "status" => {
            g.status.get_or_insert(value);
        }
        "diagnostic-code" => {
            g.diagnostic.get_or_insert(value);
        }
        _ => {}
    }
}

/// Ends the current group; it is kept when it names a recipient.
fn close(g: &mut Group, found: &mut Vec<Group>) {
    let g = std::mem::take(g);
    if g.original.is_some() || g.final_recipient.is_some() {
        found.push(g);
    }
}

/// `rfc822; Bob@Example.org` -> `bob@example.org`. RFC 6533 `utf-8;` addresses may carry
/// `\x{HEX}` escapes. Other address types (x400, unknown) give None.
fn address_of(value: &str) -> Option<String> {
    let (kind, address) = match value.split_once(';') {
        Some((kind, address)) => (kind.trim().to_ascii_lowercase(), address),
        None => ("rfc822".to_string(), value),
    };
    let address = address.split_whitespace().next()?;
    let address = match kind.as_str() {
        "rfc822" => address.to_string(),
        "utf-8" | "utf8" => unescape(address)?,
        _ => return None,
    };
    Address::parse(&address).ok().map(|a| a.key())
}

/// Decodes the `\x{HEX}` escapes of RFC 6533's utf-8-addr-xtext / unitext forms.
fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("\\x{") {
        out.push_str(rest.get(..at)?);
        let tail = rest.get(at + 3..)?;
        let end = tail.find('}')?;
        let hex = tail.get(..end)?;
        if hex.is_empty() || hex.len() > 6 {
            return None;
        }
        out.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
        rest = tail.get(end + 1..)?;
    }
    out.push_str(rest);
    Some(out)
}

/// `smtp; 550 5.1.1 ...` -> `550 5.1.1 ...`; the repeated code that starts each continuation
/// line of a multi-line SMTP reply (`550-5.1.1 `) is dropped too.
fn strip_type(value: &str) -> String {
    let value = match value.split_once(';') {
        Some((kind, rest))
            if !kind.is_empty()
                && kind.len() <= 20
                && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
        {
            rest
        }
        _ => value,
    };
    let mut out = String::new();
    let mut reply: Option<&str> = None;
    for (n, line) in value.split('\n').enumerate() {
        let line = line.trim();
        let line = match (n, reply) {
            (0, _) => {
                reply = line
                    .get(..3)
                    .filter(|c| c.bytes().all(|b| b.is_ascii_digit()));
                line
            }
            (_, Some(code)) => strip_reply_prefix(line, code),
            _ => line,
        };
        text::push_reason(&mut out, line);
    }
    // The first line keeps its code, but "550-5.1.1 text" reads better as "550 5.1.1 text".
    if let Some(code) = reply {
        if let Some(rest) = out.strip_prefix(code).and_then(|r| r.strip_prefix('-')) {
            return format!("{code} {rest}");
        }
    }
    out
}

/// "550-5.1.1 more text" or "550 5.1.1 more text" -> "more text", for a continuation line of
/// the reply whose code is `code`.
fn strip_reply_prefix<'a>(line: &'a str, code: &str) -> &'a str {
    let Some(rest) = line.strip_prefix(code) else {
        return line;
    };
    let Some(rest) = rest.strip_prefix(['-', ' ']) else {
        return line;
    };
    match rest.split_once(' ') {
        Some((first, after)) if text::status_token(first).is_some() => after.trim_start(),
        _ => rest,
    }
}
