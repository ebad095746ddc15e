//! Decoration of a list post on raw bytes: the RFC 2369/2919 list fields, the `X-BeenThere`
//! loop marker, the Subject prefix and the footer; the fields that request read receipts are
//! dropped. This module owns how a post is changed before fan-out, and how the marks of
//! earlier list passes are read back (the loop check).
//!
//! The body is never re-serialised. Header fields the list does not own keep their bytes,
//! order and folding; the footer is appended in the body's own transfer encoding, inserted as
//! a new part of a multipart/mixed post, or the original body (with its Content-* fields) is
//! wrapped untouched into a new multipart/mixed, so signatures over it still verify.
//!
//! SECURITY: the input is untrusted bytes from the network; nothing here may panic on it.
//! The configured texts are trusted but still cleaned of CR/LF before they reach a header.
//!
//! - [`headers`]: splitting the header section, rendering the list's fields
//! - [`footer`]: rendering and appending the footer in each transfer encoding
//! - [`mime`]: reading the structure, deciding where the footer goes, fresh boundaries

mod footer;
mod headers;
mod mime;
#[cfg(test)]
mod tests;

pub use crate::mime::header::HeaderBlock;
use crate::mime::normalize_line_endings;
use footer::Footer;
use headers::ListField;
use mime::{Append, Plan};

pub use crate::config::Decoration;

/// Why a post cannot be decorated. All are permanent: retrying the same bytes cannot help.
#[derive(Debug, thiserror::Error)]
pub enum DecorateError {
    /// The input has no bytes at all.
    #[error("empty message")]
    Empty,
    /// The input does not start with a header field.
    #[error("not a mail message: it does not start with a header field")]
    NotAMessage,
    /// Every boundary tried for wrapping occurs in the message (needs a crafted message).
    #[error("no unused MIME boundary found for the footer part")]
    NoBoundary,
}

/// True when the header section has a List-Id header whose id (inside <...>, case-insensitive) equals list_id: a mail loop.
pub fn carries_list_id(raw: &[u8], list_id: &str) -> bool {
    has_list_id(raw, &headers::scan(raw), list_id)
}

fn has_list_id(raw: &[u8], block: &HeaderBlock, list_id: &str) -> bool {
    let wanted = headers::clean_token(list_id.trim().trim_matches(|c| c == '<' || c == '>'));
    if wanted.is_empty() {
        return false;
    }
    block
        .fields
        .iter()
        .filter(|f| f.is(raw, "list-id"))
        .filter_map(|f| headers::angle_id(f.value(raw)))
        .any(|id| id.eq_ignore_ascii_case(wanted.as_bytes()))
}

/// Most list passes (`X-BeenThere` fields, any list's) a post may carry when it arrives: more
/// means lists forward it to each other in a circle that no single list's own marker reveals
/// (one of them keeps no markers, or rewrites them), and it is treated as a loop.
pub const MAX_LIST_HOPS: usize = 10;

/// True when the header section has an `X-BeenThere` field naming `address` (a list's posting
/// address): the post has been through that list already. Names and addresses compare
/// ignoring case, folding, whitespace, comments and angle brackets.
pub fn been_there(raw: &[u8], address: &str) -> bool {
    was_through(raw, &headers::scan(raw), address)
}

fn was_through(raw: &[u8], block: &HeaderBlock, address: &str) -> bool {
    let wanted = headers::marker_key(address.as_bytes());
    if wanted.is_empty() {
        return false;
    }
    block
        .fields
        .iter()
        .filter(|f| f.is(raw, headers::BEEN_THERE))
        .any(|f| headers::marker_key(f.value(raw)) == wanted)
}

/// How many list passes (`X-BeenThere` fields) the header section records.
pub fn list_hops(raw: &[u8]) -> usize {
    hops(raw, &headers::scan(raw))
}

fn hops(raw: &[u8], block: &HeaderBlock) -> usize {
    block
        .fields
        .iter()
        .filter(|f| f.is(raw, headers::BEEN_THERE))
        .count()
}

/// Why `raw` (CRLF-normalised, as received) is a mail loop for the list decorating with `d`,
/// or None: it carries the list's own List-Id or `X-BeenThere` marker, or more than
/// [`MAX_LIST_HOPS`] markers.
pub fn loop_reason(raw: &[u8], d: &Decoration) -> Option<String> {
    loop_reason_indexed(raw, &headers::scan(raw), d)
}

/// [`loop_reason`] of `raw` whose header section `block` indexes.
pub fn loop_reason_indexed(raw: &[u8], block: &HeaderBlock, d: &Decoration) -> Option<String> {
    if has_list_id(raw, block, &d.list_id) {
        return Some("the message already carries this list's List-Id (a mail loop)".into());
    }
    if was_through(raw, block, &d.post_address) {
        return Some(
            "the message has been through this list already (X-BeenThere: a mail loop)".into(),
        );
    }
    let hops = hops(raw, block);
    if hops > MAX_LIST_HOPS {
        return Some(format!(
            "the message has been through {hops} lists, more than {MAX_LIST_HOPS} (a mail loop)"
        ));
    }
    None
}

/// Decorate a CRLF-normalised message. Output is CRLF throughout (not dot-stuffed).
/// Bare LFs are normalised here as well, so LF input gives the same output.
pub fn decorate(raw: &[u8], d: &Decoration) -> Result<Vec<u8>, DecorateError> {
    Ok(prepare(raw, d)?.render(d.footer.as_deref(), None))
}

/// Stands in for the member's own unsubscribe address in a [`Prepared`] header.
const UNSUBSCRIBE_MARKER: &str = "listkeeper-unsubscribe-slot@invalid";

/// A post parsed and decorated once, ready to be rendered for each member with their own
/// footer and List-Unsubscribe (personalized delivery): rendering does no parsing, only a few
/// copies and the footer's own encoding.
#[derive(Debug)]
pub struct Prepared {
    message: Vec<u8>,
    body_start: usize,
    head: Vec<u8>,
    moved: Vec<u8>,
    plan: Plan,
    boundary: Option<String>,
    has_mime_version: bool,
    list_unsubscribe: String,
}

/// Parse and decorate `raw` once; the footer of `d` decides where footers go (member values
/// are filled in by [`Prepared::render`]).
pub fn prepare(raw: &[u8], d: &Decoration) -> Result<Prepared, DecorateError> {
    if raw.is_empty() {
        return Err(DecorateError::Empty);
    }
    let normalized = normalize_line_endings(raw);
    let block = headers::scan(&normalized);
    let parsed = std::cell::OnceCell::new();
    let tree = || {
        parsed
            .get_or_init(|| crate::mime::parse(&normalized))
            .as_ref()
            .map(|p| &**p)
    };
    prepare_indexed(&normalized, &block, tree, d)
}

/// [`prepare`] of a CRLF message `m` whose header section `block` indexes; `tree` gives its
/// parse, and is called only when the structure matters (a footer is to be added).
pub fn prepare_indexed<'t, 'm: 't>(
    m: &'m [u8],
    block: &HeaderBlock,
    tree: impl FnOnce() -> Option<&'t mail_parser::Message<'m>>,
    d: &Decoration,
) -> Result<Prepared, DecorateError> {
    if m.is_empty() {
        return Err(DecorateError::Empty);
    }
    if block.fields.is_empty() {
        return Err(DecorateError::NotAMessage);
    }
    // Without its own blank line the post is ambiguous (mail-parser reads on past a line
    // that is not a field, Postfix ends the header there): one is inserted, and the
    // structure is not used.
    let separated = if block.separator {
        None
    } else {
        Some(with_separator(m, block))
    };
    let separated_block = separated.as_deref().map(headers::scan);
    let (m, block) = match (&separated, &separated_block) {
        (Some(s), Some(b)) => (&s[..], b),
        _ => (m, block),
    };

    let footer = d.footer.as_deref().and_then(Footer::new);
    let part = footer.as_ref().map(Footer::part).unwrap_or_default();
    let parsed = if footer.is_some() && separated.is_none() {
        tree().filter(|p| p.root_part().offset_body as usize == block.body_start)
    } else {
        None
    };
    let plan = match &footer {
        None => Plan::NoFooter,
        Some(f) => mime::plan(m, block, parsed, f, &part),
    };
    let wrap = plan == Plan::Wrap;
    let mut marked = d.clone();
    if !marked.unsubscribe_address.is_empty() {
        marked.unsubscribe_address = UNSUBSCRIBE_MARKER.to_string();
    }
    let relabel = match &plan {
        Plan::Append { relabel, .. } => *relabel,
        _ => mime::Relabel::default(),
    };
    let mut head = Vec::with_capacity(block.body_start + 1024);
    let moved = push_header(&mut head, m, block, &marked, wrap);
    relabel_fields(&mut head, relabel);
    let boundary = if wrap {
        let existing = parsed.map(mime::boundaries).unwrap_or_default();
        // The boundary is derived from the list's own rendering, so it is the same for every
        // member and for the bulk copy.
        let mut plain_head = Vec::with_capacity(head.len());
        push_header(&mut plain_head, m, block, d, wrap);
        Some(
            mime::new_boundary(&[m, &plain_head, &part], &existing)
                .ok_or(DecorateError::NoBoundary)?,
        )
    } else {
        None
    };
    let plan = if footer.is_some() {
        plan
    } else {
        Plan::NoFooter
    };
    Ok(Prepared {
        list_unsubscribe: headers::mailto_uri(&d.unsubscribe_address, "").unwrap_or_default(),
        has_mime_version: block.fields.iter().any(|f| f.is(m, "mime-version")),
        body_start: block.body_start,
        message: m.to_vec(),
        head,
        moved,
        plan,
        boundary,
    })
}

impl Prepared {
    /// The decorated message with `footer` (None: no footer) and, when given, this member's
    /// own List-Unsubscribe address instead of the list's.
    pub fn render(&self, footer: Option<&str>, unsubscribe: Option<&str>) -> Vec<u8> {
        let m = &self.message;
        let footer = footer.and_then(Footer::new);
        let part = footer.as_ref().map(Footer::part).unwrap_or_default();
        let mut out = Vec::with_capacity(m.len() + part.len() + 1024);
        let unsub = unsubscribe.and_then(|u| headers::mailto_uri(u, ""));
        let marker = headers::mailto_uri(UNSUBSCRIBE_MARKER, "").unwrap_or_default();
        match (unsub, mime::find(&self.head, marker.as_bytes())) {
            (Some(u), Some(at)) => {
                out.extend_from_slice(&self.head[..at]);
                out.extend_from_slice(u.as_bytes());
                out.extend_from_slice(&self.head[at + marker.len()..]);
            }
            (None, Some(at)) => {
                // The list's own address, for the bulk copy.
                out.extend_from_slice(&self.head[..at]);
                out.extend_from_slice(self.list_unsubscribe.as_bytes());
                out.extend_from_slice(&self.head[at + marker.len()..]);
            }
            _ => out.extend_from_slice(&self.head),
        }
        let body = m.get(self.body_start..).unwrap_or_default();
        match (&self.plan, &footer) {
            (Plan::Wrap, Some(_)) => {
                let boundary = self.boundary.as_deref().unwrap_or("=_listkeeper");
                if !self.has_mime_version {
                    out.extend_from_slice(b"MIME-Version: 1.0\r\n");
                }
                // The inner part took its Content-Transfer-Encoding along; a multipart that
                // carries 8-bit octets must say so itself (RFC 2045 6.4).
                if let Some(cte) = outer_encoding(&self.moved, body) {
                    out.extend_from_slice(
                        format!("Content-Transfer-Encoding: {cte}\r\n").as_bytes(),
                    );
                }
                let delimiter = format!("--{boundary}");
                let content_type = format!(
                    "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n{delimiter}\r\n"
                );
                out.extend_from_slice(content_type.as_bytes());
                out.extend_from_slice(&self.moved);
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(body);
                out.extend_from_slice(format!("\r\n{delimiter}\r\n").as_bytes());
                out.extend_from_slice(&part);
                out.extend_from_slice(format!("\r\n{delimiter}--\r\n").as_bytes());
            }
            (Plan::Append { how, flowed, .. }, Some(f)) => {
                out.extend_from_slice(b"\r\n");
                let text = f.text(*flowed);
                match how {
                    Append::Plain => footer::append_plain(&mut out, body, &text),
                    Append::QuotedPrintable => footer::append_qp(&mut out, body, &text),
                    Append::Base64(tail) => footer::append_base64(&mut out, body, tail, &text),
                }
            }
            (Plan::Insert { at, boundary }, Some(_)) => {
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(m.get(self.body_start..*at).unwrap_or_default());
                out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
                out.extend_from_slice(&part);
                out.extend_from_slice(m.get(*at..).unwrap_or_default());
            }
            _ => {
                if self.plan == Plan::Wrap {
                    // Wrapped for a footer that this rendering does not have: keep the moved
                    // Content-* fields where they were.
                    out.extend_from_slice(&self.moved);
                }
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(body);
            }
        }
        out
    }
}

/// Applies `relabel` to a rendered header section: the Content-Type's charset becomes utf-8
/// (added when missing, the field too), Content-Transfer-Encoding becomes 8bit (added when
/// missing), MIME-Version is added when missing. Every other byte stays.
fn relabel_fields(head: &mut Vec<u8>, relabel: mime::Relabel) {
    if !relabel.charset && !relabel.eight_bit {
        return;
    }
    let block = crate::mime::header::scan(head);
    let mut out = Vec::with_capacity(head.len() + 80);
    let (mut saw_type, mut saw_cte, mut saw_version) = (false, false, false);
    for field in &block.fields {
        let bytes = field.bytes(head);
        if field.is(head, "content-type") && relabel.charset && !saw_type {
            saw_type = true;
            out.extend_from_slice(&with_utf8_charset(bytes));
        } else if field.is(head, "content-transfer-encoding") && relabel.eight_bit && !saw_cte {
            saw_cte = true;
            out.extend_from_slice(b"Content-Transfer-Encoding: 8bit\r\n");
        } else {
            saw_version |= field.is(head, "mime-version");
            out.extend_from_slice(bytes);
        }
    }
    if !saw_version {
        out.extend_from_slice(b"MIME-Version: 1.0\r\n");
    }
    if relabel.charset && !saw_type {
        out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
    }
    if relabel.eight_bit && !saw_cte {
        out.extend_from_slice(b"Content-Transfer-Encoding: 8bit\r\n");
    }
    *head = out;
}

/// A Content-Type field with its charset parameter's value replaced by utf-8, or the
/// parameter added before the line end.
fn with_utf8_charset(field: &[u8]) -> Vec<u8> {
    let lower = field.to_ascii_lowercase();
    if let Some(at) = mime::find(&lower, b"charset") {
        let after = at + b"charset".len();
        let rest = field.get(after..).unwrap_or_default();
        let spaces = rest
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
        if rest.get(spaces) == Some(&b'=') {
            let value_start = after + spaces + 1;
            let value = field.get(value_start..).unwrap_or_default();
            let len = if value.first() == Some(&b'"') {
                value
                    .iter()
                    .skip(1)
                    .position(|&b| b == b'"')
                    .map_or(value.len(), |p| p + 2)
            } else {
                value
                    .iter()
                    .position(|&b| matches!(b, b';' | b' ' | b'\t' | b'\r' | b'\n' | b'('))
                    .unwrap_or(value.len())
            };
            let mut out = field.get(..value_start).unwrap_or_default().to_vec();
            out.extend_from_slice(b"utf-8");
            out.extend_from_slice(field.get(value_start + len..).unwrap_or_default());
            return out;
        }
    }
    let end = field.len()
        - field
            .iter()
            .rev()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
    let mut out = field.get(..end).unwrap_or_default().to_vec();
    out.extend_from_slice(b"; charset=utf-8");
    out.extend_from_slice(field.get(end..).unwrap_or_default());
    out
}

/// The encoding a multipart wrapped around `body` must declare: `binary` or `8bit` when the
/// moved Content-Transfer-Encoding says so or the body holds 8-bit octets, else none (7bit).
fn outer_encoding(moved: &[u8], body: &[u8]) -> Option<&'static str> {
    let fields = String::from_utf8_lossy(moved).to_ascii_lowercase();
    let declared = fields
        .split('\n')
        .filter_map(|l| l.strip_prefix("content-transfer-encoding:"))
        .map(str::trim)
        .next()
        .unwrap_or_default();
    match declared {
        "binary" => Some("binary"),
        "8bit" => Some("8bit"),
        _ if body.iter().any(|&b| b >= 0x80) => Some("8bit"),
        _ => None,
    }
}

/// The message with a blank line after its header section (which `block` indexes, and which
/// ends without one: at the end of input, or at a line that is not a field).
fn with_separator(m: &[u8], block: &HeaderBlock) -> Vec<u8> {
    let (head, body) = m.split_at(block.end.min(m.len()));
    let mut out = Vec::with_capacity(m.len() + 4);
    out.extend_from_slice(head);
    if !head.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// Writes the header section without its blank line: kept fields as they were, the Subject
/// prefixed, the list's fields appended, read-receipt requests left out. With `wrap`, Content-* fields are left out and
/// returned, to head the inner part.
fn push_header(
    out: &mut Vec<u8>,
    m: &[u8],
    block: &HeaderBlock,
    d: &Decoration,
    wrap: bool,
) -> Vec<u8> {
    let prefix = headers::prefix(d);
    let mut moved = Vec::new();
    let mut subject_seen = false;
    for field in &block.fields {
        if field.is_list_field(m) || field.is_receipt_request(m) {
            continue;
        }
        if wrap && field.is_content_field(m) {
            moved.extend_from_slice(field.bytes(m));
            continue;
        }
        if field.is(m, "subject") && !subject_seen {
            subject_seen = true;
            let prefixed = prefix
                .as_deref()
                .and_then(|p| headers::prefixed_subject(m, field, p));
            if let Some(bytes) = prefixed {
                out.extend_from_slice(&bytes);
                continue;
            }
        }
        out.extend_from_slice(field.bytes(m));
    }
    if let (false, Some(p)) = (subject_seen, prefix.as_deref()) {
        headers::new_subject(out, p);
    }
    headers::push_list_fields(out, d);
    moved
}
