//! The header section of a message, indexed once: where each field starts, its colon and
//! where it ends (continuation lines included), where the section ends and the body starts.
//! This is the one place that finds where a header section ends, for a whole message
//! ([`scan`]) and for one still arriving ([`arrived_end`]).
//!
//! Works on LF and CRLF input, on any bytes: nothing here panics.

/// One header field: `start..end` is the first line and its continuation lines, line ends
/// included; `colon` is the index of the `:` after the name.
#[derive(Debug, Clone, Copy)]
pub struct Field {
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

    /// A MIME `Content-*` field (RFC 2045 9: they all describe the body, so they move with it).
    pub fn is_content_field(&self, raw: &[u8]) -> bool {
        self.name(raw)
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"content-"))
    }
}

/// The header section as found in the message.
#[derive(Debug, Default)]
pub struct HeaderBlock {
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
pub fn scan(raw: &[u8]) -> HeaderBlock {
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

pub fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The end of the header section of `message` while it arrives: the offset of its empty line,
/// looking from `from` on; `Err(next)` when it has not arrived yet, with where to look again.
pub fn arrived_end(message: &[u8], from: usize) -> Result<usize, usize> {
    // An empty first line: no header fields at all.
    if message.starts_with(b"\r\n") || message.starts_with(b"\n") {
        return Ok(0);
    }
    let mut i = from;
    while let Some(&b) = message.get(i) {
        if b == b'\n' {
            match (message.get(i + 1), message.get(i + 2)) {
                (Some(b'\n'), _) | (Some(b'\r'), Some(b'\n')) => return Ok(i + 1),
                (None, _) | (Some(b'\r'), None) => return Err(i),
                _ => {}
            }
        }
        i += 1;
    }
    Err(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_section_ends_at_the_first_empty_line() {
        assert_eq!(arrived_end(b"A: 1\r\nB: 2\r\n\r\nbody\r\n", 0), Ok(12));
        assert_eq!(arrived_end(b"A: 1\nB: 2\n\nbody\n", 0), Ok(10));
        assert_eq!(arrived_end(b"\r\nbody", 0), Ok(0));
        // Not there yet: the next search starts where a split empty line may begin.
        assert_eq!(arrived_end(b"A: 1\r\nB: 2\r\n", 0), Err(11));
        assert_eq!(arrived_end(b"A: 1\r\nB: 2\r\n\r", 0), Err(11));
        assert_eq!(arrived_end(b"A: 1\r\nB: 2\r\n\r\n", 11), Ok(12));
        assert_eq!(arrived_end(b"A: 1\r\n folded\r\n", 0), Err(14));
        // The index agrees on where the body starts.
        let m = b"A: 1\r\nB: 2\r\n\r\nbody\r\n";
        assert_eq!(scan(m).end, 12);
        assert_eq!(scan(m).body_start, 14);
    }
}
