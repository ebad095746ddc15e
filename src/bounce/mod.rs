//! What a mail to `NAME-bounces@` says: which members failed, how (hard or soft), or that it is
//! a delay notice, an auto-reply or something a person must read. This module owns reading
//! bounces and the VERP encoding of member addresses, which do no I/O and keep no state; what
//! follows from a bounce (scores, probes, disabling, telling the owners) is [`handle`], the
//! handler of the bounce addresses.
//!
//! Reading order: RFC 3464 delivery-status parts first (also `message/global-delivery-status`
//! of RFC 6533, and DSN fields sent as `text/plain`), then the human-readable formats of real
//! MTAs, then delay and success notices, then `X-Failed-Recipients`, then (for a message that
//! is clearly a failure notice sent by a mail system) the generic list shapes of `generic`,
//! and only then auto-replies. A clear failure notice without a readable address is
//! [`Report::Unattributed`]; whatever none of them recognises is [`Report::Unrecognized`], so
//! the caller forwards it to the owners instead of dropping it.
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
//! - `generic`: the fallback for any clear failure notice: addresses from the usual list shapes
//! - `notice`: delay and success notices, auto-replies
//! - `text`: the limits, status and reply codes, hard/soft words, one-line diagnostics
//! - `verp`: `bob@example.org` <-> `bob=example.org`

mod dsn;
mod formats;
mod generic;
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
    /// Clearly a failure notice, but no address in it could be read: counted for the member
    /// when the envelope (VERP) names one, else forwarded to the owners like
    /// [`Report::Unrecognized`]. Hard only when the text says the failure is permanent.
    Unattributed(Failure),
    /// Not understood: to be forwarded to the owners, never dropped silently.
    Unrecognized,
}

/// What the envelope of the mail to `NAME-bounces@` says about it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Envelope {
    /// It came with the null sender `<>` (RFC 5321 4.5.5: delivery status notifications do).
    pub null_sender: bool,
}

/// Classify and parse a bounce message (raw bytes, LF or CRLF), knowing nothing of its
/// envelope.
pub fn parse(raw: &[u8]) -> Report {
    parse_with(raw, Envelope::default())
}

/// Classify and parse a bounce message (raw bytes, LF or CRLF) that came with `envelope`.
pub fn parse_with(raw: &[u8], envelope: Envelope) -> Report {
    let raw = text::bounded(raw);
    let Some(message) = crate::mime::parse(raw) else {
        return Report::Unrecognized;
    };
    let parts = Parts::of(&message);

    // A gateway may forward the whole bounce as an attachment: its report counts when the
    // outer message has none.
    let bodies = if parts.reports.is_empty() {
        &parts.inner_reports
    } else {
        &parts.reports
    };
    let reports = dsn::read(bodies.iter().map(String::as_str));
    if !reports.failed.is_empty() {
        return Report::Failed(reports.failed);
    }
    if reports.other && !reports.unattributed {
        return Report::Delayed;
    }
    // A disposition notification that says the message failed (quota, deleted unread by a
    // filter) is a bounce sent in the wrong form.
    let failed_mdn = mdn_failures(&parts.mdn_bodies);
    if !failed_mdn.is_empty() {
        return Report::Failed(failed_mdn);
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
    let says_failure =
        formats::any_marker(&body.flat) || body.returned_copy || notice::bounce_subject(subject);
    // Sent by a mail system, not a person: the null sender, a daemon's From, a report part or
    // the failed-recipients field.
    let machine = envelope.null_sender
        || from_mail_system(&message)
        || !parts.reports.is_empty()
        || !parts.inner_reports.is_empty()
        || message.header_raw("X-Failed-Recipients").is_some();
    if says_failure && machine {
        let own = own_addresses(&message);
        let default = text::failure_of(None, &body.text, Failure::Hard);
        let found = generic::failures(&body, &own, default);
        if !found.is_empty() {
            return Report::Failed(found);
        }
        // No address could be read: as the report says, else soft unless the text says the
        // failure is permanent.
        return Report::Unattributed(
            reports
                .unattributed_failure
                .unwrap_or_else(|| text::failure_of(None, &body.text, Failure::Soft)),
        );
    }
    let bounce_like = !parts.reports.is_empty() || says_failure;
    if !bounce_like && (parts.mdn || notice::is_auto_reply(&message, subject)) {
        return Report::AutoReply;
    }
    Report::Unrecognized
}

/// The From of a mail system: a postmaster or mailer daemon, or a "Mail Delivery" name.
fn from_mail_system(message: &Message<'_>) -> bool {
    let Some(from) = message.from().and_then(|f| f.first()) else {
        return false;
    };
    let address = from.address().unwrap_or_default().to_ascii_lowercase();
    let local = address
        .rsplit_once('@')
        .map_or(address.as_str(), |(l, _)| l);
    let name = from.name().unwrap_or_default().to_ascii_lowercase();
    [
        "mailer-daemon",
        "mailer_daemon",
        "mail-daemon",
        "postmaster",
        "microsoftexchange",
    ]
    .iter()
    .any(|p| local.starts_with(p))
        || name.contains("mail delivery")
        || name.contains("mailer-daemon")
}

/// The addresses in the bounce's own From, To, Cc, Reply-To and Sender: never blamed by the
/// fallback (they are the reporting system and the list's bounce address).
fn own_addresses(message: &Message<'_>) -> Vec<String> {
    let mut own = Vec::new();
    let fields = [
        message.from(),
        message.to(),
        message.cc(),
        message.reply_to(),
        message.sender(),
    ];
    for field in fields.into_iter().flatten() {
        for a in field.iter().take(text::MAX_ENTRIES) {
            if let Some(key) = a.address().and_then(|a| Address::parse(a).ok()) {
                own.push(key.key());
            }
        }
    }
    own
}

/// Failures told by disposition notifications: `Disposition: ...; failed` (or a `Failure:` /
/// `Error:` field) names its Final-Recipient; a quota reason is soft.
fn mdn_failures(bodies: &[String]) -> Vec<Bounced> {
    let mut found = Vec::new();
    for body in bodies {
        let mut recipient = None;
        let mut failed = false;
        let mut reason = String::new();
        for line in body.lines().take(text::MAX_LINES) {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            match name.trim().to_ascii_lowercase().as_str() {
                "final-recipient" | "original-recipient" if recipient.is_none() => {
                    let address = value.split_once(';').map_or(value, |(_, a)| a);
                    recipient = text::address_token(address.trim());
                }
                "disposition" => {
                    let modifiers = value.split_once(';').map_or("", |(_, m)| m);
                    failed |= modifiers.to_ascii_lowercase().contains("failed");
                }
                "failure" | "error" => {
                    failed = true;
                    text::push_reason(&mut reason, value);
                }
                _ => {}
            }
        }
        if let (true, Some(address)) = (failed, recipient) {
            let status = text::failure_status(&reason);
            push_unique(
                &mut found,
                Bounced {
                    address,
                    failure: text::failure_of(status.as_deref(), &reason, Failure::Hard),
                    status,
                    diagnostic: text::one_line(&reason),
                },
            );
        }
    }
    found
}

/// The text parts of a message outside the returned original, decoded.
struct Parts {
    /// Bodies of delivery-status parts (and of text parts that carry DSN fields).
    reports: Vec<String>,
    /// Human-readable text: the plain parts, or the HTML parts as text when there is no plain one.
    texts: Vec<String>,
    /// A message/disposition-notification part: a read receipt.
    mdn: bool,
    /// The bodies of the disposition-notification parts.
    mdn_bodies: Vec<String>,
    /// Delivery-status bodies inside attached messages (a forwarded bounce).
    inner_reports: Vec<String>,
}

impl Parts {
    fn of(message: &Message<'_>) -> Parts {
        let mut parts = Parts {
            reports: Vec::new(),
            texts: Vec::new(),
            mdn: false,
            mdn_bodies: Vec::new(),
            inner_reports: Vec::new(),
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
                // The returned original: what it says is not the report, but a forwarded
                // bounce's delivery-status parts are kept apart.
                PartType::Message(inner) => {
                    inner_reports(inner, &mut parts.inner_reports);
                    continue;
                }
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
                    parts.mdn = true;
                    parts.mdn_bodies.push(body);
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

/// The delivery-status bodies among the parts of an attached message, one level deep (a
/// message attached inside it is not opened: no depth an attacker chooses).
fn inner_reports(message: &Message<'_>, out: &mut Vec<String>) {
    for part in message.parts.iter().take(text::MAX_ENTRIES) {
        let is_report = part.content_type().is_some_and(|c| {
            c.ctype().eq_ignore_ascii_case("message")
                && c.subtype().is_some_and(|s| {
                    s.eq_ignore_ascii_case("delivery-status")
                        || s.eq_ignore_ascii_case("global-delivery-status")
                })
        });
        if !is_report || out.len() >= text::MAX_ENTRIES {
            continue;
        }
        let body = match &part.body {
            PartType::Text(t) | PartType::Html(t) => text::bounded_str(t).to_string(),
            PartType::Binary(b) | PartType::InlineBinary(b) => {
                String::from_utf8_lossy(text::bounded(b)).into_owned()
            }
            _ => continue,
        };
        out.push(body);
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
