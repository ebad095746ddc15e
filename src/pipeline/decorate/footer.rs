//! The footer: rendering it once, and appending it to a text body in that body's own transfer
//! encoding (7bit/8bit as is, quoted-printable, base64) without re-encoding the body.

use base64::Engine as _;

/// Longest line SMTP allows, without its CRLF (RFC 5322 2.1.1).
const MAX_LINE: usize = 998;
/// Longest encoded line we write for quoted-printable and base64 (RFC 2045).
const ENCODED_LINE: usize = 76;

/// A rendered footer: `-- ` separator line, then the configured lines, CRLF throughout.
#[derive(Debug, Clone)]
pub(super) struct Footer {
    lines: Vec<String>,
}

impl Footer {
    /// Renders the configured text; None when it has no visible line.
    pub fn new(text: &str) -> Option<Footer> {
        let unified = text.replace("\r\n", "\n").replace('\r', "\n");
        let mut lines: Vec<String> = unified
            .split('\n')
            .map(|l| l.trim_end().to_string())
            .collect();
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        (!lines.is_empty()).then_some(Footer { lines })
    }

    /// Whether the footer is plain US-ASCII.
    pub fn is_ascii(&self) -> bool {
        self.lines.iter().all(|l| l.is_ascii())
    }

    /// Whether it can go into a 7bit or 8bit body as it is (no line too long for SMTP).
    pub fn fits_unencoded(&self) -> bool {
        self.lines.iter().all(|l| l.len() < MAX_LINE)
    }

    /// The footer text. `flowed` space-stuffs lines for a `format=flowed` body (RFC 3676
    /// 4.4); the `-- ` line is the signature separator there too and stays as it is.
    pub fn text(&self, flowed: bool) -> Vec<u8> {
        let mut out = b"-- \r\n".to_vec();
        for line in &self.lines {
            if flowed
                && (line.starts_with(' ') || line.starts_with('>') || line.starts_with("From "))
            {
                out.push(b' ');
            }
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// A complete MIME part (headers, blank line, body) holding the footer as UTF-8 text.
    pub fn part(&self) -> Vec<u8> {
        let text = self.text(false);
        let qp = !self.is_ascii() || !self.fits_unencoded();
        let mut out = b"Content-Type: text/plain; charset=utf-8\r\n".to_vec();
        out.extend_from_slice(if qp {
            b"Content-Transfer-Encoding: quoted-printable\r\n".as_slice()
        } else {
            b"Content-Transfer-Encoding: 7bit\r\n".as_slice()
        });
        out.extend_from_slice(b"Content-Disposition: inline\r\n\r\n");
        if qp {
            out.extend_from_slice(&qp_encode(&text));
        } else {
            out.extend_from_slice(&text);
        }
        out
    }
}

/// 7bit/8bit/binary: the body, a line end if it lacks one, the footer.
pub(super) fn append_plain(out: &mut Vec<u8>, body: &[u8], footer: &[u8]) {
    out.extend_from_slice(body);
    if !body.is_empty() && !body.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(footer);
}

/// Quoted-printable: the body ended with a hard line break, then the encoded footer.
pub(super) fn append_qp(out: &mut Vec<u8>, body: &[u8], footer: &[u8]) {
    out.extend_from_slice(body);
    if !body.is_empty() {
        if !body.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
        // A last line ending in `=` (trailing whitespace is transport padding) is a soft
        // break that would join the footer's first line: end it with an empty line.
        let last_line = out
            .strip_suffix(b"\r\n")
            .or_else(|| out.strip_suffix(b"\n"))
            .unwrap_or_default();
        let trimmed = last_line.iter().rev().find(|b| **b != b' ' && **b != b'\t');
        if trimmed == Some(&b'=') {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(&qp_encode(footer));
}

/// Quoted-printable encoding of CRLF text, lines soft-broken at 76 characters.
pub(super) fn qp_encode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 3 / 2);
    let mut lines = text.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let last = lines.peek().is_none();
        if last && line.is_empty() {
            break; // the split after the final CRLF
        }
        let mut len = 0;
        for (i, &b) in line.iter().enumerate() {
            let at_end = i + 1 == line.len();
            let literal =
                (b.is_ascii_graphic() && b != b'=') || ((b == b' ' || b == b'\t') && !at_end);
            let width = if literal { 1 } else { 3 };
            if len + width > ENCODED_LINE - 1 {
                out.extend_from_slice(b"=\r\n");
                len = 0;
            }
            if literal {
                out.push(b);
            } else {
                out.extend_from_slice(format!("={b:02X}").as_bytes());
            }
            len += width;
        }
        if !last {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// Where a base64 body can take more data: `cut` is where its last quantum starts when that
/// quantum is padded (its 1–2 bytes are in `carry`), else the body's length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Base64Tail {
    pub cut: usize,
    pub carry: Vec<u8>,
    /// The last decoded byte (None for an empty body): a text that does not end in a line
    /// break gets one before the footer, or the footer joins its last line.
    pub last: Option<u8>,
}

/// Checks that `body` is plain base64 (alphabet, whitespace, padding only at the very end, a
/// whole number of quanta) and finds its tail; None when it is anything else.
pub(super) fn base64_tail(body: &[u8]) -> Option<Base64Tail> {
    let mut ring = [(0usize, 0u8); 4];
    let (mut count, mut pad) = (0usize, 0usize);
    for (i, &b) in body.iter().enumerate() {
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            b'=' => pad += 1,
            _ if sextet(b).is_some() && pad == 0 => {}
            _ => return None,
        }
        if let Some(slot) = ring.get_mut(count % 4) {
            *slot = (i, b);
        }
        count += 1;
    }
    if count % 4 != 0 || pad > 2 {
        return None;
    }
    if pad == 0 {
        // The ring holds the last quantum when there is one; its third byte ends the text.
        let [_, _, (_, c2), (_, c3)] = ring;
        let last = match count {
            0 => None,
            _ => Some(((sextet(c2)? & 0x03) << 6) | sextet(c3)?),
        };
        return Some(Base64Tail {
            cut: body.len(),
            carry: Vec::new(),
            last,
        });
    }
    // count is a non-zero multiple of 4 here, so the ring holds exactly the last quantum.
    let [(cut, c0), (_, c1), (_, c2), _] = ring;
    let (v0, v1) = (sextet(c0)?, sextet(c1)?);
    let mut carry = vec![(v0 << 2) | (v1 >> 4)];
    if pad == 1 {
        carry.push(((v1 & 0x0f) << 4) | (sextet(c2)? >> 2));
    }
    let last = carry.last().copied();
    Some(Base64Tail { cut, carry, last })
}

fn sextet(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Base64: the body up to its padded last quantum, then that quantum's bytes and the footer
/// encoded together as new 76-character lines.
pub(super) fn append_base64(out: &mut Vec<u8>, body: &[u8], tail: &Base64Tail, footer: &[u8]) {
    let kept = body.get(..tail.cut).unwrap_or(body);
    out.extend_from_slice(kept);
    if !kept.is_empty() && !kept.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    let mut data = tail.carry.clone();
    if tail.last.is_some_and(|b| b != b'\n') {
        data.extend_from_slice(b"\r\n");
    }
    data.extend_from_slice(footer);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&data);
    for line in encoded.as_bytes().chunks(ENCODED_LINE) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
}
