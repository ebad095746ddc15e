//! The header section of a post: splitting it into fields byte-exactly, and rendering the
//! fields the list adds (RFC 2369 / RFC 2919, the `X-BeenThere` loop marker, the Subject
//! prefix). Everything rendered from configuration goes through [`clean_text`] or [`mailto`],
//! so no CR/LF reaches a header.

use base64::Engine as _;
use mail_parser::parsers::MessageStream;
use mail_parser::HeaderValue;

use super::Decoration;
pub(super) use crate::mime::header::{is_wsp, scan, Field, HeaderBlock};

/// Soft limit for lines we generate (RFC 5322 2.1.1).
const LINE_LIMIT: usize = 78;
/// Fields a list replaces with its own.
const LIST_FIELDS: &[&str] = &[
    "list-id",
    "list-post",
    "list-help",
    "list-subscribe",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-owner",
    "list-archive",
    "precedence",
];
/// Fields that ask each reader's mail program to send a receipt or a report to an address the
/// poster chose: distributed, they would make every member's client reveal the member's
/// address to the poster, so the list drops them (as Mailman and Sympa do).
const RECEIPT_FIELDS: &[&str] = &[
    "disposition-notification-to",
    "return-receipt-to",
    "x-confirm-reading-to",
    "x-pmrqc",
    "errors-to",
];
/// The loop marker: every list pass adds one with its own posting address and none removes
/// them (Mailman writes the same field), so a post that comes back to a list it has passed
/// through, or that has passed through too many lists, is recognised however the lists in
/// between rewrote their own fields.
pub(super) const BEEN_THERE: &str = "x-beenthere";

/// What the list does with a field of the post.
pub(super) trait ListField {
    /// One of the fields the list replaces.
    fn is_list_field(&self, raw: &[u8]) -> bool;
    /// A request for a read receipt or a report, which the list drops.
    fn is_receipt_request(&self, raw: &[u8]) -> bool;
}

impl ListField for Field {
    /// One of the fields the list replaces.
    fn is_list_field(&self, raw: &[u8]) -> bool {
        LIST_FIELDS.iter().any(|n| self.is(raw, n))
    }

    /// A field asking for a read receipt or a delivery report (see [`RECEIPT_FIELDS`]).
    fn is_receipt_request(&self, raw: &[u8]) -> bool {
        RECEIPT_FIELDS.iter().any(|n| self.is(raw, n))
    }
}

/// The list id inside the first `<...>` of a List-Id value that is not in a quoted string or
/// a comment, whitespace removed.
pub(super) fn angle_id(value: &[u8]) -> Option<Vec<u8>> {
    let (mut quoted, mut escaped, mut depth) = (false, false, 0usize);
    for (i, &b) in value.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if b == b'\\' && (quoted || depth > 0) {
            escaped = true;
        } else if quoted {
            quoted = b != b'"';
        } else if b == b'(' {
            depth += 1;
        } else if b == b')' && depth > 0 {
            depth -= 1;
        } else if depth == 0 && b == b'"' {
            quoted = true;
        } else if depth == 0 && b == b'<' {
            let inner = value.get(i + 1..)?;
            let close = inner.iter().position(|&c| c == b'>')?;
            let id = inner.get(..close)?;
            return Some(
                id.iter()
                    .copied()
                    .filter(|c| !c.is_ascii_whitespace())
                    .collect(),
            );
        }
    }
    None
}

/// The address of an `X-BeenThere` value, compared as a key: the inside of its first `<...>`
/// when it has one, else the value without comments; whitespace and control bytes (folds
/// included) removed, ASCII lower-cased. Any bytes give some key (never a panic).
pub(super) fn marker_key(value: &[u8]) -> Vec<u8> {
    let bare = angle_id(value).unwrap_or_else(|| without_comments(value));
    bare.iter()
        .filter(|b| !b.is_ascii_whitespace() && !b.is_ascii_control())
        .map(u8::to_ascii_lowercase)
        .collect()
}

/// `value` without RFC 5322 comments (nested, with quoted pairs); quoted strings are kept.
fn without_comments(value: &[u8]) -> Vec<u8> {
    let (mut out, mut depth, mut escaped, mut quoted) = (Vec::new(), 0usize, false, false);
    for &b in value {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(b);
            }
        } else if b == b'\\' && (quoted || depth > 0) {
            escaped = true;
            if depth == 0 {
                out.push(b);
            }
        } else if quoted {
            quoted = b != b'"';
            out.push(b);
        } else if b == b'(' {
            depth += 1;
        } else if b == b')' && depth > 0 {
            depth -= 1;
        } else if depth == 0 {
            quoted = b == b'"';
            out.push(b);
        }
    }
    out
}

/// Configured text made safe for a header: control characters (CR and LF included) become
/// spaces, runs of whitespace collapse to one space, ends are trimmed.
pub(super) fn clean_text(text: &str) -> String {
    let spaced: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A list id or address from configuration: no whitespace, controls or angle brackets.
pub(super) fn clean_token(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() && !c.is_whitespace() && *c != '<' && *c != '>')
        .collect()
}

/// `<mailto:ADDR>` with everything RFC 6068 does not allow literally percent-encoded.
pub(super) fn mailto_uri(address: &str, query: &str) -> Option<String> {
    mailto(address, query)
}

fn mailto(address: &str, query: &str) -> Option<String> {
    let address = clean_token(address);
    if address.is_empty() {
        return None;
    }
    let mut uri = String::from("<mailto:");
    for b in address.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$'()*+,;:@".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str(query);
    uri.push('>');
    Some(uri)
}

/// RFC 2047 encoded words (UTF-8, B) of at most 68 characters each, split on char boundaries.
pub(super) fn encoded_words(text: &str) -> Vec<String> {
    // 42 bytes = 56 base64 characters + 12 for the frame: `List-Id: ` and a word fit in 78.
    const MAX_BYTES: usize = 42;
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > MAX_BYTES {
            words.push(encode_word(&chunk));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() || words.is_empty() {
        words.push(encode_word(&chunk));
    }
    words
}

fn encode_word(chunk: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(chunk.as_bytes());
    format!("=?UTF-8?B?{b64}?=")
}

fn is_printable_ascii(text: &str) -> bool {
    text.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// `Name: tok tok ...\r\n`, folded before a token that would pass the line limit.
fn push_field(out: &mut Vec<u8>, name: &str, tokens: &[String]) {
    let mut line = name.len() + 1;
    out.extend_from_slice(name.as_bytes());
    out.push(b':');
    for token in tokens {
        if line > name.len() + 1 && line + 1 + token.len() > LINE_LIMIT {
            out.extend_from_slice(b"\r\n");
            line = 0;
        }
        out.push(b' ');
        out.extend_from_slice(token.as_bytes());
        line += 1 + token.len();
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends the list's fields (X-BeenThere, List-Id, List-Post, List-Help, List-Subscribe,
/// List-Unsubscribe, List-Owner, Precedence); one whose value is empty is left out.
pub(super) fn push_list_fields(out: &mut Vec<u8>, d: &Decoration) {
    let own = clean_token(&d.post_address);
    if !own.is_empty() {
        push_field(out, "X-BeenThere", &[own]);
    }
    let id = clean_token(d.list_id.trim_matches(|c| c == '<' || c == '>'));
    if !id.is_empty() {
        let name = clean_text(&d.display_name);
        let mut tokens = if name.is_empty() {
            Vec::new()
        } else if is_printable_ascii(&name) {
            vec![format!(
                "\"{}\"",
                name.replace('\\', "\\\\").replace('"', "\\\"")
            )]
        } else {
            encoded_words(&name)
        };
        tokens.push(format!("<{id}>"));
        push_field(out, "List-Id", &tokens);
    }
    let links = [
        ("List-Post", &d.post_address, ""),
        ("List-Help", &d.request_address, "?subject=help"),
        ("List-Subscribe", &d.subscribe_address, ""),
        ("List-Unsubscribe", &d.unsubscribe_address, ""),
        ("List-Owner", &d.owner_address, ""),
    ];
    for (name, address, query) in links {
        if let Some(uri) = mailto(address, query) {
            push_field(out, name, &[uri]);
        }
    }
    out.extend_from_slice(b"Precedence: list\r\n");
}

/// The configured prefix, cleaned; None when there is none.
pub(super) fn prefix(d: &Decoration) -> Option<String> {
    d.subject_prefix
        .as_deref()
        .map(clean_text)
        .filter(|p| !p.is_empty())
}

/// The prefix as header text: itself if printable ASCII, else encoded words. `space_inside`
/// puts the separating space inside the last encoded word, for when an encoded word follows
/// (whitespace between two encoded words is dropped by decoders).
fn prefix_text(prefix: &str, space_inside: bool) -> String {
    if is_printable_ascii(prefix) {
        prefix.to_string()
    } else if space_inside {
        encoded_words(&format!("{prefix} ")).join(" ")
    } else {
        encoded_words(prefix).join(" ")
    }
}

/// A new `Subject: PREFIX` field, for a post without one.
pub(super) fn new_subject(out: &mut Vec<u8>, prefix: &str) {
    push_field(out, "Subject", &[prefix_text(prefix, false)]);
}

/// The Subject field with the prefix in front of its raw value, or None when the decoded
/// subject already contains the prefix (ignoring case). The original bytes are kept.
pub(super) fn prefixed_subject(raw: &[u8], field: &Field, prefix: &str) -> Option<Vec<u8>> {
    let decoded = match MessageStream::new(field.value(raw)).parse_unstructured() {
        HeaderValue::Text(text) => text.into_owned(),
        _ => String::new(),
    };
    if decoded.to_lowercase().contains(&prefix.to_lowercase()) {
        return None;
    }
    let after_colon = field.colon + 1;
    let wsp = field.value(raw).iter().take_while(|b| is_wsp(**b)).count();
    let rest = raw.get(after_colon + wsp..field.end).unwrap_or_default();
    let empty_line = rest.is_empty() || rest.starts_with(b"\r\n") || rest.starts_with(b"\n");
    let text = prefix_text(prefix, rest.starts_with(b"=?"));

    let mut out = Vec::with_capacity(field.end - field.start + text.len() + 2);
    out.extend_from_slice(raw.get(field.start..after_colon + wsp).unwrap_or_default());
    if wsp == 0 {
        out.push(b' ');
    }
    out.extend_from_slice(text.as_bytes());
    if !empty_line {
        // RFC 5322 2.1.1: no line longer than 998 octets. When the prefix would push the first
        // line past that, the old text moves to a continuation line of its own, which is
        // shorter than the line it came from.
        let first_line = rest
            .iter()
            .take_while(|&&b| b != b'\r' && b != b'\n')
            .count();
        if out.len() + 1 + first_line > MAX_LINE {
            let crlf = raw.get(..field.end).is_some_and(|f| f.ends_with(b"\r\n"));
            out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        }
        out.push(b' ');
    }
    out.extend_from_slice(rest);
    Some(out)
}

/// Longest header line, without its line break (RFC 5322 2.1.1).
const MAX_LINE: usize = 998;
