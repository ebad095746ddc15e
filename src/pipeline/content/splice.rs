//! Rebuilding a multipart body from raw bytes: the preamble and the first delimiter line, the
//! kept children each behind a delimiter line of the original, the closing delimiter and the
//! epilogue. Every delimiter line used is checked to be one (on a line of its own, the
//! boundary followed only by transport padding): mail-parser finds `--BOUNDARY` anywhere, and
//! an edit made on a misread structure would hand readers something else than was filtered.

use std::collections::HashSet;

use mail_parser::{Header, MessagePart, MimeHeaders};

use super::{ContentError, Outcome};

/// The note's first words; its text lists the removed types after them.
const NOTE: &str = "[Parts of this message were removed by the list";
/// Width at which the list of removed types is wrapped.
const NOTE_WIDTH: usize = 76;

const MISPLACED: ContentError = ContentError::Malformed("a delimiter is not on a line of its own");
const OUT_OF_RANGE: ContentError = ContentError::Malformed("part offsets out of range");

/// The body of `part` (a multipart) with its children's `outcomes` applied, and `extra` (a
/// whole part, header and body) added as its last child.
pub(super) fn assemble(
    raw: &[u8],
    part: &MessagePart<'_>,
    children: &[&MessagePart<'_>],
    outcomes: &[Outcome],
    extra: Option<&[u8]>,
) -> Result<Vec<u8>, ContentError> {
    let boundary = part
        .content_type()
        .and_then(|ct| ct.attribute("boundary"))
        .filter(|b| !b.is_empty())
        .ok_or(ContentError::Malformed("a multipart without a boundary"))?;
    let delimiter = [b"--", boundary.as_bytes()].concat();
    let (start, end) = (part.offset_body as usize, part.offset_end as usize);
    let spans: Vec<(usize, usize)> = children
        .iter()
        .map(|c| (c.offset_header as usize, c.offset_end as usize))
        .collect();
    let mut pos = start;
    for &(header, body_end) in &spans {
        if header < pos || body_end < header {
            return Err(ContentError::Malformed("parts overlap"));
        }
        pos = body_end;
    }
    if end < pos || end > raw.len() || spans.len() != outcomes.len() {
        return Err(OUT_OF_RANGE);
    }
    let first = spans.first().map_or(end, |s| s.0);
    let opening = raw.get(start..first).ok_or(OUT_OF_RANGE)?;
    if !opens(opening, &delimiter) {
        return Err(MISPLACED);
    }

    let mut out = Vec::with_capacity(end - start + extra.map_or(0, <[u8]>::len) + 64);
    out.extend_from_slice(opening);
    let mut previous_end = None;
    let mut wrote = false;
    for (&(header, body_end), outcome) in spans.iter().zip(outcomes) {
        let line = match previous_end {
            Some(from) => Some(delimiter_line(raw, from, header, &delimiter)?),
            None => None,
        };
        previous_end = Some(body_end);
        let bytes: &[u8] = match outcome {
            Outcome::Remove => continue,
            Outcome::Keep => raw.get(header..body_end).ok_or(OUT_OF_RANGE)?,
            Outcome::Replace(bytes) => bytes,
        };
        if let (true, Some(line)) = (wrote, line) {
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(line);
        }
        out.extend_from_slice(bytes);
        wrote = true;
    }
    if !wrote {
        return Err(ContentError::Empty);
    }
    let from = previous_end.unwrap_or(first);
    let synthesized;
    let tail = match closing(raw, from, end, &delimiter) {
        Ok(tail) => tail,
        // No closing delimiter, the last part running to the end: readers take the multipart
        // as closed there, and so does the filter, writing the delimiter it lacked.
        Err(e) => {
            // Only when the last part ends a line: then what follows it is read the same.
            if from != end || end != raw.len() || !raw.ends_with(b"\n") {
                return Err(e);
            }
            synthesized = [delimiter.as_slice(), b"--\r\n"].concat();
            synthesized.as_slice()
        }
    };
    if let Some(extra) = extra {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&delimiter);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(extra);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(tail);
    Ok(out)
}

/// Whether the preamble region ends with the first delimiter line.
fn opens(opening: &[u8], delimiter: &[u8]) -> bool {
    let Some(line) = opening.strip_suffix(b"\r\n") else {
        return false;
    };
    let padded = line.len() - line.iter().rev().take_while(|b| is_wsp(**b)).count();
    let line = line.get(..padded).unwrap_or_default();
    let Some(at) = line.len().checked_sub(delimiter.len()) else {
        return false;
    };
    line.ends_with(delimiter) && (at == 0 || line.get(at - 1) == Some(&b'\n'))
}

/// The delimiter line between two children (`raw[from..to]`), without the CRLF that opens
/// it (it belongs to the delimiter, not to the part before).
fn delimiter_line<'r>(
    raw: &'r [u8],
    from: usize,
    to: usize,
    delimiter: &[u8],
) -> Result<&'r [u8], ContentError> {
    let region = raw.get(from..to).ok_or(OUT_OF_RANGE)?;
    let line = own_line(raw, from, region)?;
    let padding = line
        .strip_prefix(delimiter)
        .and_then(|rest| rest.strip_suffix(b"\r\n"))
        .ok_or(MISPLACED)?;
    if padding.iter().all(|b| is_wsp(*b)) {
        Ok(line)
    } else {
        Err(MISPLACED)
    }
}

/// The closing delimiter and the epilogue (`raw[from..end]`), without the CRLF that opens it.
fn closing<'r>(
    raw: &'r [u8],
    from: usize,
    end: usize,
    delimiter: &[u8],
) -> Result<&'r [u8], ContentError> {
    let region = raw.get(from..end).ok_or(OUT_OF_RANGE)?;
    let tail = own_line(raw, from, region)?;
    let closes = tail
        .strip_prefix(delimiter)
        .is_some_and(|rest| rest.starts_with(b"--"));
    if closes {
        Ok(tail)
    } else {
        Err(ContentError::Malformed("no closing delimiter"))
    }
}

/// `region` (starting at `from`) without its leading CRLF; without one, the region must start
/// a line (a part with an empty body ends right after its header's blank line).
fn own_line<'r>(raw: &[u8], from: usize, region: &'r [u8]) -> Result<&'r [u8], ContentError> {
    match region.strip_prefix(b"\r\n") {
        Some(line) => Ok(line),
        None if raw.get(..from).is_some_and(|b| b.ends_with(b"\n")) => Ok(region),
        None => Err(MISPLACED),
    }
}

/// The note part added to a multipart/mixed root: which types were removed (each once, in
/// order of first removal), plain ASCII, lines of at most [`NOTE_WIDTH`] characters.
pub(super) fn note_part(removed: &[String]) -> Vec<u8> {
    let mut unique = HashSet::new();
    let seen: Vec<&str> = removed
        .iter()
        .map(String::as_str)
        .filter(|ty| unique.insert(*ty))
        .collect();
    let mut text = String::from(NOTE);
    let mut line = text.len();
    for (i, ty) in seen.iter().enumerate() {
        let sep = if i == 0 { ":" } else { "," };
        text.push_str(sep);
        line += sep.len();
        if line + 1 + ty.len() + 1 > NOTE_WIDTH {
            text.push_str("\r\n");
            line = 0;
        } else {
            text.push(' ');
            line += 1;
        }
        text.push_str(ty);
        line += ty.len();
    }
    text.push(']');
    // Types are token characters, so only a crafted one can hold "--BOUNDARY" (mail-parser
    // would split the note there); "--" never occurs in the generic text.
    if text.contains("--") {
        text = format!("{NOTE}.]");
    }
    let mut part = b"Content-Type: text/plain; charset=utf-8\r\n\
                     Content-Transfer-Encoding: 7bit\r\n\r\n"
        .to_vec();
    part.extend_from_slice(text.as_bytes());
    part
}

/// A multipart/alternative root replaced by its text/plain alternative: the root's header
/// section without its Content-* fields, the kept part's Content-* fields, the kept part's
/// body.
pub(super) fn hoist(
    raw: &[u8],
    root: &MessagePart<'_>,
    kept: &MessagePart<'_>,
) -> Result<Vec<u8>, ContentError> {
    let body_start = root.offset_body as usize;
    let head = raw.get(..body_start).ok_or(OUT_OF_RANGE)?;
    if !head.ends_with(b"\n\r\n") {
        return Err(ContentError::Malformed(
            "the header section does not end with a blank line",
        ));
    }
    let fields_end = body_start - 2;
    let body = raw
        .get(kept.offset_body as usize..kept.offset_end as usize)
        .ok_or(OUT_OF_RANGE)?;

    let mut out = Vec::with_capacity(body_start + body.len() + 256);
    let mut pos = 0;
    for (start, end) in content_fields(raw, &root.headers, 0, fields_end)? {
        out.extend_from_slice(raw.get(pos..start).ok_or(OUT_OF_RANGE)?);
        pos = end;
    }
    out.extend_from_slice(raw.get(pos..fields_end).ok_or(OUT_OF_RANGE)?);
    let (kept_start, kept_end) = (kept.offset_header as usize, kept.offset_body as usize);
    for (start, end) in content_fields(raw, &kept.headers, kept_start, kept_end)? {
        let field = raw.get(start..end).ok_or(OUT_OF_RANGE)?;
        out.extend_from_slice(field);
        if !field.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    if !body.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    Ok(out)
}

/// The byte ranges of the Content-* fields among `headers`, in order, each checked to lie in
/// `from..to` and after the one before.
fn content_fields(
    raw: &[u8],
    headers: &[Header<'_>],
    from: usize,
    to: usize,
) -> Result<Vec<(usize, usize)>, ContentError> {
    let mut ranges = Vec::new();
    let mut pos = from;
    for h in headers {
        let (start, name_end, end) = (
            h.offset_field as usize,
            h.offset_start as usize,
            h.offset_end as usize,
        );
        let name = raw.get(start..name_end).ok_or(OUT_OF_RANGE)?;
        if !name
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"content-"))
        {
            continue;
        }
        if start < pos || end < start || end > to {
            return Err(ContentError::Malformed("header fields overlap"));
        }
        ranges.push((start, end));
        pos = end;
    }
    Ok(ranges)
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `head` (a header section with its blank line) and `body` as the first part of a new
/// multipart/mixed, `note` the second: the Content-* fields move into the first part, the
/// others stay on top. The boundary is one that occurs nowhere in the message.
pub(super) fn wrap_with_note(head: &[u8], body: &[u8], note: &[u8]) -> Vec<u8> {
    let block = crate::mime::header::scan(head);
    let mut top = Vec::with_capacity(head.len() + 128);
    let mut moved = Vec::new();
    for field in &block.fields {
        if field.is_content_field(head) {
            moved.extend_from_slice(field.bytes(head));
        } else {
            top.extend_from_slice(field.bytes(head));
        }
    }
    let mut n = 0u32;
    let boundary = loop {
        let candidate = format!("=_listkeeper_note_{n}");
        let seen = |bytes: &[u8]| {
            bytes
                .windows(candidate.len())
                .any(|w| w == candidate.as_bytes())
        };
        if !seen(head) && !seen(body) && !seen(note) {
            break candidate;
        }
        n += 1;
    };
    let mut out = top;
    out.extend_from_slice(
        format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\n")
            .as_bytes(),
    );
    out.extend_from_slice(&moved);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
    out.extend_from_slice(note);
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}
