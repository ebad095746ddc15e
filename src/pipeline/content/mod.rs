//! Content checks of a post, as pure functions over its raw bytes: MIME part filtering
//! (`content.pass_types`, `content.drop_types`, `content.collapse_alternatives`) and the small
//! tests the moderation stage builds its content rules from (explicit recipients, implicit
//! destination, administrivia, header rules). No I/O, no configuration types: the caller
//! decides what a hit means.
//!
//! Filtering works like decoration: on raw bytes through mail-parser's offsets. A removed part
//! disappears together with its delimiter line; every kept part (header and body) is copied
//! byte for byte, and so are boundaries, preambles and epilogues. multipart/signed and
//! multipart/encrypted are never opened (changing them breaks the signature or the
//! encryption), and a message/rfc822 attachment is one part.
//!
//! SECURITY: the input is untrusted bytes from the network; nothing here may panic on it.
//! A structure that cannot be edited exactly (a delimiter that is not on a line of its own, a
//! missing closing delimiter, absurd nesting) is not guessed at: it is reported as
//! [`ContentError::Malformed`], for the caller to hold, so a crafted message cannot slip a
//! dropped type through. Content types written into the note are reduced to token characters.
//!
//! - [`checks`]: recipients, implicit destination, administrivia, header rules
//! - `tree`: which parts stay, are removed, or replace their multipart/alternative
//! - `splice`: rebuilding a multipart body from the kept parts' bytes, the note, hoisting

pub mod checks;
mod splice;
#[cfg(test)]
mod tests;
mod tree;

pub use checks::{addressed_to, explicit_recipients, header_matches, is_administrivia};

use crate::mime::normalize_line_endings;

/// What filtering does with one part (decided by `tree`, carried out by `splice`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Its bytes are copied unchanged.
    Keep,
    /// It goes, with its delimiter line.
    Remove,
    /// These bytes take its place (header and body).
    Replace(Vec<u8>),
}

/// `content.pass_types` / `content.drop_types` / `content.collapse_alternatives` of a list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MimeFilter {
    /// If non-empty, only leaf parts whose type matches one of these are kept ("text/plain",
    /// "image/*", "text"). multipart containers are always kept (their children are filtered).
    pub pass_types: Vec<String>,
    /// Leaf parts whose type matches are removed ("application/x-msdownload", "image/*").
    /// Also matched against a multipart's own type ("multipart/related" drops it whole).
    pub drop_types: Vec<String>,
    /// In a multipart/alternative, keep only the text/plain alternative (the part itself,
    /// replacing the multipart/alternative in place; if there is no text/plain alternative,
    /// keep the alternative as it is).
    pub collapse_alternatives: bool,
}

impl MimeFilter {
    /// Whether the filter can change anything at all.
    pub fn is_active(&self) -> bool {
        !self.pass_types.is_empty() || !self.drop_types.is_empty() || self.collapse_alternatives
    }

    /// Validates one pattern: "type/subtype", "type/*" or "type", in lower-case RFC 2045
    /// token characters. The error is a sentence for the operator.
    pub fn check_pattern(p: &str) -> Result<(), String> {
        if p.is_empty() {
            return Err("a content type pattern must not be empty".into());
        }
        if p.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(format!(
                "content type pattern \"{p}\" must be written in lower case"
            ));
        }
        let ok = match p.split_once('/') {
            Some((t, "*")) => is_token(t),
            Some((t, s)) => is_token(t) && is_token(s),
            None => is_token(p),
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "\"{p}\" is not a content type pattern: write \"type/subtype\", \"type/*\" or \
                 \"type\", e.g. \"text/plain\", \"image/*\" or \"text\""
            ))
        }
    }

    /// Whether a leaf part of type `ty` (lower case) stays.
    fn keeps_leaf(&self, ty: &str) -> bool {
        !self.drops(ty)
            && (self.pass_types.is_empty() || self.pass_types.iter().any(|p| matches(p, ty)))
    }

    /// Whether `ty` (lower case) is one of the dropped types.
    fn drops(&self, ty: &str) -> bool {
        self.drop_types.iter().any(|p| matches(p, ty))
    }
}

/// Lower-case RFC 2045 token characters, without `*` (reserved for the wildcard subtype).
fn is_token(t: &str) -> bool {
    !t.is_empty()
        && t.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'+-.^_`{|}~".contains(&b)
        })
}

/// Whether `pattern` covers the content type `ty` ("type/subtype", lower case).
fn matches(pattern: &str, ty: &str) -> bool {
    let pattern = pattern.trim();
    let main = ty.split_once('/').map_or(ty, |(t, _)| t);
    match pattern.split_once('/') {
        Some((t, "*")) => t.eq_ignore_ascii_case(main),
        Some(_) => pattern.eq_ignore_ascii_case(ty),
        None => pattern.eq_ignore_ascii_case(main),
    }
}

/// What filtering did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filtered {
    /// The new message (CRLF).
    pub message: Vec<u8>,
    /// Content types of the parts removed, in order, e.g. ["image/png", "text/html"]. A
    /// multipart removed whole is listed by its leaves.
    pub removed: Vec<String>,
}

/// Why a post cannot be filtered. Both are permanent: the same bytes give the same answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// Nothing would be left: the caller treats this as a content rule hit.
    #[error(
        "nothing would be left of the message after removing the parts the list does not accept"
    )]
    Empty,
    /// Parts should be removed, but the structure cannot be edited exactly (or the bytes are
    /// not a message); the caller holds the post rather than distributing what it cannot see.
    #[error("the MIME structure cannot be filtered: {0}")]
    Malformed(&'static str),
}

/// Filter a CRLF-normalised message (bare LFs are normalised here as well). Ok(None): nothing
/// to change (the caller keeps the original bytes). Ok(Some(f)): parts were removed.
/// Err(Empty): nothing would be left (the caller treats that as a content rule hit).
/// Err(Malformed): see [`ContentError::Malformed`].
pub fn filter_mime(raw: &[u8], f: &MimeFilter) -> Result<Option<Filtered>, ContentError> {
    if !f.is_active() {
        return Ok(None);
    }
    let normalized = normalize_line_endings(raw);
    let m: &[u8] = &normalized;
    let message = crate::mime::parse(m).ok_or(ContentError::Malformed("no header section"))?;
    filter_parsed(m, &message, f)
}

/// [`filter_mime`] of a CRLF message `m` that is already parsed (`message` is its parse).
pub fn filter_parsed(
    m: &[u8],
    message: &mail_parser::Message<'_>,
    f: &MimeFilter,
) -> Result<Option<Filtered>, ContentError> {
    if !f.is_active() {
        return Ok(None);
    }
    // Readers disagree about which of two Content-Type (or Content-Transfer-Encoding) fields
    // counts: the parser takes the last, a member's client may take the first. The filter
    // cannot know which one the member sees, so such a post is held, never passed.
    if message.parts.iter().any(|part| {
        let count = |name: mail_parser::HeaderName<'_>| {
            part.headers.iter().filter(|h| h.name == name).count()
        };
        count(mail_parser::HeaderName::ContentType) > 1
            || count(mail_parser::HeaderName::ContentTransferEncoding) > 1
    }) {
        return Err(ContentError::Malformed(
            "a part has two Content-Type or Content-Transfer-Encoding fields",
        ));
    }
    let mut walk = tree::Walk::new(m, message, f);
    let message = match walk.root()? {
        tree::Root::Unchanged => return Ok(None),
        tree::Root::Rebuilt(bytes) => bytes,
    };
    Ok(Some(Filtered {
        message,
        removed: walk.into_removed(),
    }))
}
