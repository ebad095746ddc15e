//! A rendered notice -> RFC 5322 bytes, with mail-builder.
//!
//! Header safety does not depend on the caller: every free text going into a header (display
//! name, subject) loses its control characters, so no CR or LF can start a new header line;
//! addresses, the List-Id and the Message-ID domain must be plain tokens or the notice is
//! refused. The In-Reply-To id comes from the mail being answered, so a broken one is left out
//! instead of refusing the answer.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use mail_builder::headers::address::Address as MailAddress;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::MessageBuilder;

use crate::address::Address;

/// A generated mail, ready to build.
#[derive(Debug, Clone, Copy)]
pub struct Notice<'a> {
    /// The sender's display name, e.g. the list's display name; may be non-ASCII or empty.
    pub from_name: &'a str,
    /// The sender address, e.g. `dev-request@example.org`.
    pub from: &'a str,
    /// One recipient address.
    pub to: &'a str,
    /// Where replies go, e.g. `dev-confirm+TOKEN@example.org`.
    pub reply_to: Option<&'a str>,
    /// Message-ID of the mail this answers, without `<>`.
    pub in_reply_to: Option<&'a str>,
    /// `auto-replied` (answers to a mail) or `auto-generated` (notices), RFC 3834.
    pub auto_submitted: &'static str,
    /// The list's id, e.g. `dev.example.org`, written as `List-Id: <dev.example.org>`.
    pub list_id: &'a str,
    /// The rendered subject.
    pub subject: &'a str,
    /// The rendered body, UTF-8, `\n` or `\r\n` line ends.
    pub body: &'a str,
    /// The right-hand side of the Message-ID.
    pub domain: &'a str,
}

/// Why a notice was not built: a value that could break the header it goes into.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoticeError {
    /// An address field is not one plain `local@domain`.
    #[error("the {field} address {value:?} is not a plain local@domain address")]
    BadAddress {
        /// `from`, `to` or `reply_to`.
        field: &'static str,
        /// The value, as given.
        value: String,
    },
    /// A token-like header value (List-Id, domain, Auto-Submitted) has characters it cannot have.
    #[error("the {field} {value:?} may contain only letters, digits, '.', '-' and '_'")]
    BadToken {
        /// `list_id`, `domain` or `auto_submitted`.
        field: &'static str,
        /// The value, as given.
        value: String,
    },
}

/// The RFC 5322 bytes (CRLF line ends) of `n`: From, To, Reply-To, Subject, Date, a fresh
/// Message-ID, In-Reply-To and References when answering, Auto-Submitted, List-Id, then
/// MIME-Version and a text/plain; charset=utf-8 body whose transfer encoding mail-builder
/// chooses (7bit for ASCII, quoted-printable or base64 otherwise). No Precedence header:
/// RFC 3834's Auto-Submitted is the standard signal.
pub fn build(n: &Notice) -> Result<Vec<u8>, NoticeError> {
    let from = plain_address("from", n.from)?;
    let to = plain_address("to", n.to)?;
    let reply_to = n
        .reply_to
        .map(|r| plain_address("reply_to", r))
        .transpose()?;
    let list_id = plain_token("list_id", n.list_id, false)?;
    let domain = plain_token("domain", n.domain, false)?;
    let auto_submitted = plain_token("auto_submitted", n.auto_submitted, true)?;
    let name = one_line(n.from_name);
    let subject = one_line(n.subject);

    let mut message = MessageBuilder::new()
        .from(MailAddress::new_address(
            (!name.is_empty()).then_some(name),
            from,
        ))
        .to(MailAddress::new_address(None::<&str>, to));
    if let Some(r) = reply_to {
        message = message.reply_to(MailAddress::new_address(None::<&str>, r));
    }
    // A printable-ASCII subject is folded at spaces and sent as it is: an encoded word would
    // split a long one mid-token and hide `confirm TOKEN` from plain-text readers. Unless it
    // holds text a reader would decode as an RFC 2047 encoded word (`=?...?=`, e.g. a subject
    // that was encoded twice, decoded once for `{subject}`): that could carry CR, LF or other
    // control characters past [`one_line`] into the decoded subject, so it is encoded whole.
    message = if subject.contains("=?") {
        message.header("Subject", Raw::new(encoded_words(&subject)))
    } else if subject.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        message.header("Subject", Raw::new(fold_ascii(&subject)))
    } else {
        message.subject(subject)
    };
    message = message.date(Date::now()).message_id(new_message_id(domain));
    if let Some(id) = n.in_reply_to.and_then(usable_message_id) {
        message = message
            .in_reply_to(MessageId::new(id))
            .references(MessageId::new(id));
    }
    let message = message
        .header("Auto-Submitted", Raw::new(auto_submitted))
        .header("List-Id", Raw::new(format!("<{list_id}>")))
        .text_body(n.body);
    let mut out = Vec::with_capacity(n.body.len() + 1024);
    message.serialize(&mut out);
    Ok(out)
}

/// Fold an ASCII header value at spaces so that lines stay under 78 characters where a space
/// allows it (RFC 5322 2.2.3); a word longer than a line stays whole.
fn fold_ascii(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    let mut column = "Subject: ".len();
    for (i, word) in value.split(' ').enumerate() {
        if i > 0 {
            if column + 1 + word.len() > 78 {
                out.push_str("\r\n ");
                column = 1;
            } else {
                out.push(' ');
                column += 1;
            }
        }
        out.push_str(word);
        column += word.len();
    }
    out
}

/// `text` as RFC 2047 encoded words (UTF-8, B), each at most 42 bytes of text so that
/// `Subject: ` and a word fit in 78 characters, folded between words (decoders join adjacent
/// encoded words without the space).
fn encoded_words(text: &str) -> String {
    use base64::Engine;
    const MAX_BYTES: usize = 42;
    let mut words: Vec<String> = Vec::new();
    let mut start = 0;
    let mut end = 0;
    for (i, c) in text.char_indices() {
        if i + c.len_utf8() - start > MAX_BYTES {
            words.push(text.get(start..end).unwrap_or_default().to_string());
            start = end;
        }
        end = i + c.len_utf8();
    }
    words.push(text.get(start..end).unwrap_or_default().to_string());
    words
        .iter()
        .map(|w| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(w.as_bytes());
            format!("=?UTF-8?B?{b64}?=")
        })
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// `value` if it is exactly one address that [`Address::parse`] accepts with nothing around it.
fn plain_address<'a>(field: &'static str, value: &'a str) -> Result<&'a str, NoticeError> {
    let plain = !value.is_empty()
        && !value.contains(['<', '>'])
        && value.trim() == value
        && Address::parse(value).is_ok();
    if plain {
        Ok(value)
    } else {
        Err(NoticeError::BadAddress {
            field,
            value: value.to_string(),
        })
    }
}

/// `value` if it is 1..=255 of `[A-Za-z0-9._-]`, or of `[A-Za-z0-9-]` when `dashes_only`.
/// Non-ASCII (IDN) domains must be passed in their ASCII (punycode) form.
fn plain_token<'a>(
    field: &'static str,
    value: &'a str,
    dashes_only: bool,
) -> Result<&'a str, NoticeError> {
    let ok = (1..=255).contains(&value.len())
        && value.bytes().all(|b| {
            b.is_ascii_alphanumeric() || b == b'-' || (!dashes_only && (b == b'.' || b == b'_'))
        });
    if ok {
        Ok(value)
    } else {
        Err(NoticeError::BadToken {
            field,
            value: value.to_string(),
        })
    }
}

/// Free header text: control characters (CR, LF, NUL, tab...) become spaces, runs of
/// whitespace one space.
fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The id of the mail being answered, if it can go into a header unchanged: printable
/// ASCII without spaces or angle brackets, one `@`, at most 250 characters.
fn usable_message_id(id: &str) -> Option<&str> {
    let id = id.trim();
    let id = id
        .strip_prefix('<')
        .and_then(|i| i.strip_suffix('>'))
        .unwrap_or(id);
    let ok = (3..=250).contains(&id.len())
        && id.matches('@').count() == 1
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>');
    ok.then_some(id)
}

/// A fresh Message-ID `SECONDS.RANDOM@domain`: 128 random bits from the OS, or, should the OS
/// refuse, from the process's hash keys mixed with a counter and the clock.
fn new_message_id(domain: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut bytes = [0u8; 16];
    let random = match getrandom::fill(&mut bytes) {
        Ok(()) => u128::from_le_bytes(bytes),
        Err(_) => {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let half = |salt: u64| {
                let mut h = RandomState::new().build_hasher();
                h.write_u64(n);
                h.write_u64(salt);
                h.write_u128(now.as_nanos());
                h.finish()
            };
            (u128::from(half(1)) << 64) | u128::from(half(2))
        }
    };
    format!("{:x}.{random:032x}@{domain}", now.as_secs())
}
