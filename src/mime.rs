//! MIME parsing that an attacker cannot turn against the process: the nesting depth of a
//! message, measured before any parser builds a tree, and the one entry point to mail-parser's
//! full parse, whose result is dismantled without recursion.
//!
//! SECURITY: mail-parser builds one nested `Message` value per `message/rfc822` level, with no
//! limit on unencoded nesting, and both dropping that value and its `into_owned` (used for
//! base64-wrapped messages) recurse once per level. About 33 000 levels (1 MB of
//! `Content-Type: message/rfc822` lines) overflow a thread's stack and abort the process,
//! and a base64-wrapped part hides the levels from any check on the outer bytes.
//! [`nesting_depth`] therefore walks a message the way mail-parser's own parse loop does,
//! with the same public stream primitives (so both agree on where every part starts and
//! ends), keeping only a stack of states on the heap; base64 and quoted-printable
//! `message/*` parts are decoded and walked too, as deep as mail-parser would decode them.
//! The session refuses a message deeper than `limits.max_mime_depth` before anything else
//! parses it. [`parse`] is how the rest of the crate gets a full parse: its value takes
//! nested messages apart with an explicit stack when it is dropped.
//!
//! It also owns the two things every reader of a message needs first: the one line-ending
//! normaliser ([`normalize_line_endings`]) and the index of the header section ([`header`]).

pub mod header;

use std::borrow::Cow;
use std::ops::Deref;

use mail_parser::parsers::MessageStream;
use mail_parser::{GetHeader, HeaderName, HeaderValue, Message, MessageParser, PartType};

/// How many times mail-parser decodes a base64/quoted-printable `message/*` part and parses
/// what it holds, one inside the other (its `MAX_NESTED_ENCODED`).
const ENCODED_LEVELS: usize = 3;

/// The deepest nesting any configuration may allow (the top of `limits.max_mime_depth`).
/// Every recursion over a parsed message in this crate is bounded by it.
pub const DEPTH_CEILING: usize = 200;

/// Bare LF -> CRLF (a lone CR stays). Returns Cow::Borrowed when already clean.
pub fn normalize_line_endings(raw: &[u8]) -> Cow<'_, [u8]> {
    let bare = |(i, &b): (usize, &u8)| b == b'\n' && (i == 0 || raw.get(i - 1) != Some(&b'\r'));
    let count = raw.iter().enumerate().filter(|&x| bare(x)).count();
    if count == 0 {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len() + count);
    for (i, &b) in raw.iter().enumerate() {
        if bare((i, &b)) {
            out.push(b'\r');
        }
        out.push(b);
    }
    Cow::Owned(out)
}

/// A message nested deeper than the limit that was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("MIME parts nested more than {limit} levels deep")]
pub struct TooDeep {
    /// The limit that was exceeded.
    pub limit: usize,
}

/// What kind of entity a parse state stands for, as far as nesting is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A message (the top level, or an unencoded `message/rfc822` part).
    Message,
    /// `multipart/digest`: parts without a Content-Type are messages.
    Digest,
    /// Any other multipart.
    Multipart,
}

/// One level of the walk: mail-parser's parser state, reduced to what decides nesting.
struct State {
    kind: Kind,
    boundary: Option<Vec<u8>>,
}

/// The deepest nesting of `raw`: multipart and `message/*` levels, counted as mail-parser
/// would build them (a plain message is 0, a multipart/mixed with text parts 1, a forwarded
/// message inside it 2). Stops with [`TooDeep`] as soon as a level passes `limit`.
pub fn nesting_depth(raw: &[u8], limit: usize) -> Result<usize, TooDeep> {
    let parser = MessageParser::default();
    // Encoded message parts found on the way: walked one after another, never recursively.
    let mut encoded = Vec::new();
    let mut deepest = walk(&parser, raw, 0, ENCODED_LEVELS, limit, &mut encoded)?;
    while let Some(job) = encoded.pop() {
        let depth = walk(&parser, &job.bytes, job.base, job.left, limit, &mut encoded)?;
        deepest = deepest.max(depth);
    }
    Ok(deepest)
}

/// A base64 or quoted-printable `message/*` part, decoded, to be walked at depth `base`.
struct Encoded {
    bytes: Vec<u8>,
    base: usize,
    left: usize,
}

/// One message's walk, in mail-parser's order (`MessageParser::parse_`): returns the deepest
/// level seen, and queues encoded message parts in `encoded` while `left` allows.
fn walk(
    parser: &MessageParser,
    raw: &[u8],
    base: usize,
    left: usize,
    limit: usize,
    encoded: &mut Vec<Encoded>,
) -> Result<usize, TooDeep> {
    let mut stream = MessageStream::new(raw);
    let mut state = State {
        kind: Kind::Message,
        boundary: None,
    };
    // Each entry: the parent's state, and whether it was pushed for a `message/*` part (only
    // those are restored when the nested message's part ends).
    let mut stack: Vec<(State, bool)> = Vec::new();
    let mut headers = Vec::new();
    let mut deepest = base;

    'outer: loop {
        headers.clear();
        if !stream.parse_headers(parser, &mut headers) {
            break;
        }
        let content_type = headers
            .header_value(&HeaderName::ContentType)
            .and_then(|v| v.as_content_type());
        let (multipart, mut message) = match content_type {
            Some(ct) => match ct.ctype() {
                "multipart" => (Some(ct.subtype() == Some("digest")), false),
                "message" => (None, matches!(ct.subtype(), Some("rfc822" | "global"))),
                _ => (None, false),
            },
            None => (None, state.kind == Kind::Digest),
        };
        if let Some(digest) = multipart {
            let boundary = content_type.and_then(|ct| ct.attribute("boundary"));
            if let Some(boundary) = boundary {
                if stream.seek_next_part(boundary.as_bytes()) {
                    let kind = if digest {
                        Kind::Digest
                    } else {
                        Kind::Multipart
                    };
                    let child = State {
                        kind,
                        boundary: Some(boundary.as_bytes().to_vec()),
                    };
                    stack.push((std::mem::replace(&mut state, child), false));
                    reach(base + stack.len(), limit, &mut deepest)?;
                    stream.skip_crlf();
                    continue;
                }
            }
        }
        let base64 = match headers.header_value(&HeaderName::ContentTransferEncoding) {
            Some(HeaderValue::Text(e)) if e.eq_ignore_ascii_case("base64") => Some(true),
            Some(HeaderValue::Text(e)) if e.eq_ignore_ascii_case("quoted-printable") => Some(false),
            _ => None,
        };
        match base64 {
            None if message => {
                // An unencoded message part: its header section starts right here, and it
                // inherits the enclosing boundary.
                let child = State {
                    kind: Kind::Message,
                    boundary: state.boundary.take(),
                };
                stack.push((std::mem::replace(&mut state, child), true));
                reach(base + stack.len(), limit, &mut deepest)?;
                continue;
            }
            Some(base64) if message && left > 0 => {
                let boundary = state.boundary.as_deref().unwrap_or(b"");
                let (end, bytes): (usize, Cow<'_, [u8]>) = if base64 {
                    stream.decode_base64_mime(boundary)
                } else {
                    stream.decode_quoted_printable_mime(boundary)
                };
                if end == usize::MAX {
                    // Undecodable: mail-parser keeps it as text and looks for the boundary.
                    message = false;
                } else {
                    let base = base + stack.len() + 1;
                    reach(base, limit, &mut deepest)?;
                    encoded.push(Encoded {
                        bytes: bytes.into_owned(),
                        base,
                        left: left - 1,
                    });
                }
            }
            _ => message = false,
        }
        if !message {
            // Every decoder and the plain reader end a part at the first `--boundary`, or
            // at the end with the boundary dropped; so does this, without decoding.
            let (_, found) = stream.seek_part_end(state.boundary.as_deref());
            if !found {
                state.boundary = None;
            }
        }

        if state.boundary.is_some() {
            loop {
                if state.kind == Kind::Message {
                    // The part of a nested message ended: back to its parent.
                    match stack.pop() {
                        Some((mut parent, true)) => {
                            parent.boundary = state.boundary.take();
                            state = parent;
                        }
                        _ => break 'outer,
                    }
                }
                if stream.is_multipart_end() {
                    if let Some((parent, _)) = stack.pop() {
                        state = parent;
                        if let Some(boundary) = &state.boundary {
                            if stream.seek_next_part_offset(boundary).is_some() {
                                continue;
                            }
                        }
                    }
                    break 'outer;
                }
                break;
            }
        } else if stream.offset() >= stream.len() {
            break;
        }
    }
    Ok(deepest)
}

/// Note that the walk reached `depth`; an error once it passes `limit`.
fn reach(depth: usize, limit: usize, deepest: &mut usize) -> Result<(), TooDeep> {
    *deepest = (*deepest).max(depth);
    if depth > limit {
        Err(TooDeep { limit })
    } else {
        Ok(())
    }
}

/// A fully parsed message. Derefs to mail-parser's [`Message`]; when dropped, the messages
/// nested in it are taken apart one level at a time instead of by recursion.
pub struct Parsed<'x>(Message<'x>);

/// Parse `raw` fully (headers, parts, nested messages). `None` when mail-parser finds no
/// message in it. Callers hand it messages that passed the session's depth check; every
/// nested level costs no stack when the value is dropped.
pub fn parse(raw: &[u8]) -> Option<Parsed<'_>> {
    PARSES.with(|n| n.set(n.get() + 1));
    MessageParser::default().parse(raw).map(Parsed)
}

thread_local! {
    static PARSES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many full parses [`parse`] made on this thread so far: tests use it to prove that a
/// post's MIME tree is parsed at most once.
pub fn parses_on_this_thread() -> u64 {
    PARSES.with(|n| n.get())
}

impl<'x> Deref for Parsed<'x> {
    type Target = Message<'x>;

    fn deref(&self) -> &Message<'x> {
        &self.0
    }
}

impl Drop for Parsed<'_> {
    fn drop(&mut self) {
        let mut pending: Vec<Message<'_>> = Vec::new();
        take_nested(&mut self.0, &mut pending);
        while let Some(mut message) = pending.pop() {
            take_nested(&mut message, &mut pending);
            // `message` has no nested messages left: dropping it is flat.
        }
    }
}

/// The nesting depth of a parsed message, counted as [`nesting_depth`] counts it, with an
/// explicit stack (for tests and fuzzing: the walk must never count less than this).
pub fn parsed_depth(message: &Message<'_>) -> usize {
    let mut deepest = 0;
    // (message, part index, depth of that part)
    let mut todo = vec![(message, 0usize, 0usize)];
    let mut seen = 0usize;
    while let Some((m, index, depth)) = todo.pop() {
        // A malformed tree could name a part twice; never visit more than all parts of all
        // messages once each.
        seen += 1;
        if seen > 10_000_000 {
            break;
        }
        deepest = deepest.max(depth);
        let Some(part) = m.parts.get(index) else {
            continue;
        };
        match &part.body {
            PartType::Multipart(ids) => {
                for &id in ids {
                    let id = id as usize;
                    if id > index {
                        todo.push((m, id, depth + 1));
                    }
                }
            }
            PartType::Message(nested) => todo.push((nested, 0, depth + 1)),
            _ => {}
        }
    }
    deepest
}

/// Move every message nested directly in `message` onto `pending`.
fn take_nested<'x>(message: &mut Message<'x>, pending: &mut Vec<Message<'x>>) {
    for part in &mut message.parts {
        if let PartType::Message(_) = part.body {
            if let PartType::Message(nested) = std::mem::take(&mut part.body) {
                pending.push(nested);
            }
        }
    }
}

#[cfg(test)]
mod tests;
