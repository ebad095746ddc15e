//! What a mail to `NAME-bounces@` says: which members failed, how (hard or soft), or that it is
//! a delay notice, an auto-reply or something a person must read. This module owns reading
//! bounces and the VERP encoding of member addresses, which do no I/O and keep no state; what
//! follows from a bounce (scores, probes, disabling, telling the owners) is [`handle`], the
//! handler of the bounce addresses.
//!
//! Reading order: RFC 3464 delivery-status parts first (also `message/global-delivery-status`
//! of RFC 6533, and DSN fields sent as `text/plain`), then the human-readable formats of real
//! MTAs, then delay and success notices, then auto-replies. Whatever none of them recognises is
//! [`Report::Unrecognized`], so the caller forwards it to the owners instead of dropping it.
//!
//! SECURITY: the input is untrusted bytes from anyone who can send mail. Nothing here may panic
//! on it, and the work is bounded: only the first [`MAX_BYTES`] and [`MAX_LINES`] lines are
//! read, decoded text is cut to the same limits, and every loop is linear in what is read. An
//! address leaves this module only after [`Address::parse`] accepted it; a diagnostic leaves it
//! as one line of at most [`MAX_DIAGNOSTIC`] characters without control characters. The sender
//! of a bounce is never trusted nor needed.
//!
//! - [`handle`]: mail to `NAME-bounces@`: scores, probes, disabling and removal
//! - `dsn`: RFC 3464 / RFC 6533 per-recipient fields
//! - `formats`: qmail, Yahoo, Postfix, Exim, Sendmail, Exchange / Office 365 and Gmail prose
//! - `notice`: delay and success notices, auto-replies
//! - `text`: the limits, status and reply codes, hard/soft words, one-line diagnostics
//! - `verp`: `bob@example.org` <-> `bob=example.org`

mod dsn;
mod formats;
pub mod handle;
mod notice;
mod text;
mod verp;

#[cfg(test)]
mod tests;

use mail_parser::{Message, MimeHeaders, PartType};

use crate::address::Address;

pub(crate) use notice::is_auto_reply_to_us;
pub use text::{MAX_BYTES, MAX_DIAGNOSTIC, MAX_LINES};
pub use verp::{decode_verp, encode_verp};

/// How a delivery failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 5.x.x: the address does not work.
    Hard,
    /// 4.x.x reported as a failure (the remote MTA gave up on a temporary error, e.g. mailbox
    /// full for days).
    Soft,
}

/// One failed recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounced {
    /// The failed address as reported, lowercase (the [`Address::key`] form), validated. From a
    /// DSN the Original-Recipient is preferred (it is the address the list sent to, before any
    /// forwarding), then the Final-Recipient; the prose formats likewise prefer "expanded
    /// from" / "generated from" over the address that finally failed.
    pub address: String,
    /// Hard or soft.
    pub failure: Failure,
    /// The enhanced status code, e.g. "5.1.1", when known.
    pub status: Option<String>,
    /// The reason as reported: one line, at most [`MAX_DIAGNOSTIC`] characters, control
    /// characters removed.
    pub diagnostic: Option<String>,
}

/// What a mail to NAME-bounces@ is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Real failures (at least one recipient), in the order reported, one per address.
    Failed(Vec<Bounced>),
    /// Only delay, warning, relayed or delivered notices: to be ignored.
    Delayed,
    /// An auto-reply (vacation, out of office, a read receipt): to be ignored.
    AutoReply,
    /// Not understood: to be forwarded to the owners, never dropped silently.
    Unrecognized,
}

/// Classify and parse a bounce message (raw bytes, LF or CRLF).
pub fn parse(raw: &[u8]) -> Report {
    let raw = text::bounded(raw);
    let Some(message) = crate::mime::parse(raw) else {
        return Report::Unrecognized;
    };
    let parts = Parts::of(&message);

    let reports = dsn::read(parts.reports.iter().map(String::as_str));
    if !reports.failed.is_empty() {
        return Report::Failed(reports.failed);
    }
    if reports.other && !reports.unattributed {
        return Report::Delayed;
    }

    let subject = message.subject().unwrap_or_default();
    let body = text::Body::new(&parts.texts);
    let found = formats::failures(&body);
    if !found.is_empty() {
        return Report::Failed(found);
    }
    let delay = notice::is_delay(subject, &body.flat) || notice::is_success(subject, &body.flat);
    if !delay {
        let listed = failed_recipients_header(&message, &body);
        if !listed.is_empty() {
            return Report::Failed(listed);
        }
    }
    if delay {
        return Report::Delayed;
    }
    let bounce_like = !parts.reports.is_empty()
        || formats::any_marker(&body.flat)
        || notice::bounce_subject(subject);
    if !bounce_like && (parts.mdn || notice::is_auto_reply(&message, subject)) {
        return Report::AutoReply;
    }
    Report::Unrecognized
}

/// The text parts of a message outside the returned original, decoded.
struct Parts {
    /// Bodies of delivery-status parts (and of text parts that carry DSN fields).
    reports: Vec<String>,
    /// Human-readable text: the plain parts, or the HTML parts as text when there is no plain one.
    texts: Vec<String>,
    /// A message/disposition-notification part: a read receipt.
    mdn: bool,
}

impl Parts {
    fn of(message: &Message<'_>) -> Parts {
        let mut parts = Parts {
            reports: Vec::new(),
            texts: Vec::new(),
            mdn: false,
        };
        let mut html = Vec::new();
        let mut stack = vec![0u32];
        let mut budget = message.parts.len();
        while let Some(id) = stack.pop() {
            let Some(part) = message.parts.get(id as usize) else {
                continue;
            };
            // A malformed tree must not make this loop longer than the list of parts.
            budget = match budget.checked_sub(1) {
                Some(left) => left,
                None => break,
            };
            let (ctype, subtype) = part
                .content_type()
                .map(|c| {
                    (
                        c.ctype().to_ascii_lowercase(),
                        c.subtype().unwrap_or_default().to_ascii_lowercase(),
                    )
                })
                .unwrap_or_else(|| ("text".into(), "plain".into()));
            let body = match &part.body {
                PartType::Multipart(children) => {
                    stack.extend(children.iter().rev());
                    continue;
                }
                // The returned original: what it says is not the report.
                PartType::Message(_) => continue,
                PartType::Text(t) | PartType::Html(t) => text::bounded_str(t).to_string(),
                PartType::Binary(b) | PartType::InlineBinary(b) => {
                    String::from_utf8_lossy(text::bounded(b)).into_owned()
                }
            };
            match (ctype.as_str(), subtype.as_str()) {
                ("message", "delivery-status" | "global-delivery-status") => {
                    parts.reports.push(body)
                }
                ("message", "disposition-notification" | "global-disposition-notification") => {
                    parts.mdn = true
                }
                ("text", "rfc822-headers" | "global-headers") => {}
                ("text", "html") => html.push(mail_parser::decoders::html::html_to_text(&body)),
                ("text", _) => {
                    if dsn::has_fields(&body) {
                        parts.reports.push(body.clone());
                    }
                    parts.texts.push(body);
                }
                _ => {}
            }
        }
        if parts.texts.is_empty() {
            parts.texts = html;
        }
        parts
    }
}

/// Exim and Gmail name the failed addresses in `X-Failed-Recipients`: the last resort when the
/// prose was not understood.
fn failed_recipients_header(message: &Message<'_>, body: &text::Body) -> Vec<Bounced> {
    let Some(value) = message.header_raw("X-Failed-Recipients") else {
        return Vec::new();
    };
    let status = text::find_status(&body.text).filter(|s| !s.starts_with('2'));
    let failure = text::failure_of(status.as_deref(), "", Failure::Hard);
    let mut found = Vec::new();
    for address in value.split(',').take(text::MAX_ENTRIES) {
        if let Ok(a) = Address::parse(address) {
            push_unique(
                &mut found,
                Bounced {
                    address: a.key(),
                    failure,
                    status: status.clone(),
                    diagnostic: None,
                },
            );
        }
    }
    found
}

/// Adds `b` unless its address is already listed (the first report of an address wins).
fn push_unique(list: &mut Vec<Bounced>, b: Bounced) {
    if list.len() < text::MAX_ENTRIES && !list.iter().any(|x| x.address == b.address) {
        list.push(b);
    }
}
