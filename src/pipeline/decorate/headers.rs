//! The header section of a post: splitting it into fields byte-exactly, and rendering the
//! fields the list adds (RFC 2369 / RFC 2919, the `X-BeenThere` loop marker, the Subject
//! prefix). Everything rendered from configuration goes through [`clean_text`] or [`mailto`],
//! so no CR/LF reaches a header.

use base64::Engine as _;
use mail_parser::parsers::MessageStream;
use mail_parser::HeaderValue;

use super::Decoration;

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

/// One header field: `start..end` is the first line and its continuation lines, line ends
/// included; `colon` is the index of the `:` after the name.
#[derive(Debug, Clone, Copy)]
pub(super) struct Field {
    pub start: usize,
    pub colon: usize,
    pub end: usize,
}

impl Field {
    /// The field name, without the whitespace that obsolete syntax allows before the colon.
    pub fn name<'a>(&self, raw: &'a [u8]) -> &'a [u8] {
        let name = raw.get(self.start..self.colon).unwrap_or_default();
        let len = name.len() - name.iter().rev().take_while(|b| is_wsp(**b)).count();
        name.get(..len).unwrap_or_default()
    }

    /// True when the name equals `lower` (given in lower case), ignoring case.
    pub fn is(&self, raw: &[u8], lower: &str) -> bool {
        self.name(raw).eq_ignore_ascii_case(lower.as_bytes())
    }

    /// The whole field as it appears in the message.
    pub fn bytes<'a>(&self, raw: &'a [u8]) -> &'a [u8] {
        raw.get(self.start..self.end).unwrap_or_default()
    }

    /// The raw value: everything after the colon, folds and final line end included.
    pub fn value<'a>(&self, raw: &'a [u8]) -> &'a [u8] {
        raw.get(self.colon + 1..self.end).unwrap_or_default()
    }

    /// One of the fields the list replaces.
    pub fn is_list_field(&self, raw: &[u8]) -> bool {
        LIST_FIELDS.iter().any(|n| self.is(raw, n))
    }

    /// A field asking for a read receipt or a delivery report (see [`RECEIPT_FIELDS`]).
    pub fn is_receipt_request(&self, raw: &[u8]) -> bool {
        RECEIPT_FIELDS.iter().any(|n| self.is(raw, n))
    }

    /// A MIME `Content-*` field (RFC 2045 9: they all describe the body, so they move with it).
    pub fn is_content_field(&self, raw: &[u8]) -> bool {
        self.name(raw)
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"content-"))
    }
}

/// The header section as found in the message.
#[derive(Debug, Default)]
pub(super) struct HeaderBlock {
    pub fields: Vec<Field>,
    /// Where the section ends (the blank line, or the first line that is not a field).
    pub end: usize,
    /// Where the body starts (after the blank line when there is one).
    pub body_start: usize,
    /// Whether a blank line separates header and body.
    pub separator: bool,
}

/// Splits the header section. A line that is neither a field nor a continuation ends the
/// section without a separator (as Postfix's cleanup treats it). Works on LF and CRLF input.
pub(super) fn scan(raw: &[u8]) -> HeaderBlock {
    let mut block = HeaderBlock::default();
    let mut pos = 0;
    while pos < raw.len() {
        let rest = raw.get(pos..).unwrap_or_default();
        let line_len = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let line = rest.get(..line_len).unwrap_or_default();
        if line == b"\n" || line == b"\r\n" {
            block.end = pos;
            block.body_start = pos + line_len;
            block.separator = true;
            return block;
        }
        let continues = line.first().is_some_and(|b| is_wsp(*b));
        match block.fields.last_mut() {
            Some(last) if continues => last.end = pos + line_len,
            _ => match field_colon(line) {
                Some(colon) if !continues => block.fields.push(Field {
                    start: pos,
                    colon: pos + colon,
                    end: pos + line_len,
                }),
                _ => {
                    block.end = pos;
                    block.body_start = pos;
                    return block;
                }
            },
        }
        pos += line_len;
    }
    block.end = raw.len();
    block.body_start = raw.len();
    block
}

/// The index of the colon when `line` starts with a field name (RFC 5322 ftext, with the
/// obsolete whitespace before the colon allowed).
fn field_colon(line: &[u8]) -> Option<usize> {
    let name = line
        .iter()
        .take_while(|&&b| (33..=126).contains(&b) && b != b':')
        .count();
    let wsp = line.get(name..)?.iter().take_while(|b| is_wsp(**b)).count();
    (name > 0 && line.get(name + wsp) == Some(&b':')).then_some(name + wsp)
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
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
        out.push(b' ');
    }
    out.extend_from_slice(rest);
    Some(out)
}
