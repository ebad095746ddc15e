//! Reading the MIME structure of a post (through mail-parser's raw offsets) to decide where the
//! footer goes, and choosing a fresh boundary when the post has to be wrapped.

use mail_parser::{Message, MessagePart, MimeHeaders, PartType};
use sha2::{Digest, Sha256};

use super::footer::{base64_tail, Base64Tail, Footer};
use super::headers::HeaderBlock;

/// Where the footer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Plan {
    /// No footer (none configured, or the post is encrypted).
    NoFooter,
    /// Appended to the single text body in its own transfer encoding. With `relabel`, the
    /// header fields change so that the body may hold the UTF-8 footer (the body does not).
    Append {
        how: Append,
        flowed: bool,
        relabel: Relabel,
    },
    /// A new part of a multipart/mixed post, inserted at `at`, right before the CRLF that
    /// opens the closing delimiter of `boundary`.
    Insert { at: usize, boundary: String },
    /// The body and its Content-* fields move into a first part of a new multipart/mixed.
    Wrap,
}

/// Header fields changed so that a non-ASCII footer can be appended in place instead of
/// wrapping the post (members' clients show a wrapped footer as an attachment).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Relabel {
    /// An ASCII-only body labelled us-ascii (or not labelled) becomes charset=utf-8: the same
    /// bytes mean the same text.
    pub charset: bool,
    /// A 7bit (or unlabelled) body becomes 8bit: the footer's UTF-8 octets are 8-bit. The post
    /// came over LMTP with 8BITMIME, and the re-injection path announces BODY=8BITMIME when
    /// the MTA offers it (the local MTA does); 8-bit posts already travel that way.
    pub eight_bit: bool,
}

/// How a footer is appended to a single text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Append {
    /// 7bit, 8bit, binary or no transfer encoding: as it is.
    Plain,
    /// Quoted-printable encoded.
    QuotedPrintable,
    /// Base64 encoded, continuing from the body's tail.
    Base64(Base64Tail),
}

/// Decides where the footer goes. `parsed` is None when mail-parser could not make sense of
/// the post; `part` is the rendered footer part (a boundary must not occur in it).
pub(super) fn plan(
    raw: &[u8],
    block: &HeaderBlock,
    parsed: Option<&Message<'_>>,
    footer: &Footer,
    part: &[u8],
) -> Plan {
    let Some(message) = parsed else {
        // Unknown structure: only a post that declares nothing about its body is treated as
        // plain text; anything else keeps its body untouched.
        let declares = block
            .fields
            .iter()
            .any(|f| f.is(raw, "content-type") || f.is(raw, "content-transfer-encoding"));
        return if !declares && footer.is_ascii() && footer.fits_unencoded() {
            Plan::Append {
                how: Append::Plain,
                flowed: false,
                relabel: Relabel::default(),
            }
        } else {
            Plan::Wrap
        };
    };
    let root = message.root_part();
    let Some(ct) = root.content_type() else {
        let has_field = block.fields.iter().any(|f| f.is(raw, "content-type"));
        return if has_field {
            Plan::Wrap // a Content-Type mail-parser could not read
        } else {
            text_plan(raw, block, root, footer, None, false)
        };
    };
    let ctype = ct.ctype().to_ascii_lowercase();
    let subtype = ct.subtype().unwrap_or_default().to_ascii_lowercase();
    match (ctype.as_str(), subtype.as_str()) {
        ("multipart", "encrypted") => Plan::NoFooter,
        ("multipart", "mixed") => insert_plan(raw, message, root, ct.attribute("boundary"), part),
        ("text", "plain") => {
            let flowed = ct
                .attribute("format")
                .is_some_and(|f| f.eq_ignore_ascii_case("flowed"));
            text_plan(raw, block, root, footer, ct.attribute("charset"), flowed)
        }
        _ => Plan::Wrap,
    }
}

/// A single text/plain body: append when the charset and the transfer encoding allow it.
fn text_plan(
    raw: &[u8],
    block: &HeaderBlock,
    root: &MessagePart<'_>,
    footer: &Footer,
    charset: Option<&str>,
    flowed: bool,
) -> Plan {
    let attachment = root
        .content_disposition()
        .is_some_and(|d| d.is_attachment());
    let charset = charset.map(|c| c.trim().to_ascii_lowercase());
    let cte = root
        .content_transfer_encoding()
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let body = raw.get(block.body_start..).unwrap_or_default();
    let utf8 = matches!(charset.as_deref(), Some("utf-8" | "utf8"));
    let mut relabel = Relabel::default();
    let charset_ok = if footer.is_ascii() {
        charset.as_deref().is_none_or(ascii_compatible)
    } else if utf8 {
        true
    } else {
        // us-ascii (the default) with ASCII-only text: the same bytes are UTF-8. For base64
        // the encoded bytes say nothing about the text: wrap.
        let ascii_label = charset
            .as_deref()
            .is_none_or(|c| c == "us-ascii" || c == "ascii");
        relabel.charset = ascii_label && cte != "base64" && body.is_ascii();
        relabel.charset
    };
    if attachment || !charset_ok {
        return Plan::Wrap;
    }
    let how = match cte.as_str() {
        "" | "7bit" if footer.is_ascii() && footer.fits_unencoded() => Append::Plain,
        "" | "7bit" if footer.fits_unencoded() => {
            relabel.eight_bit = true;
            Append::Plain
        }
        "8bit" | "binary" if footer.fits_unencoded() => Append::Plain,
        "quoted-printable" => Append::QuotedPrintable,
        "base64" => match base64_tail(body) {
            Some(tail) => Append::Base64(tail),
            None => return Plan::Wrap,
        },
        _ => return Plan::Wrap,
    };
    Plan::Append {
        how,
        flowed,
        relabel,
    }
}

/// Charsets in which ASCII bytes mean ASCII characters everywhere, so an ASCII footer can
/// follow any body. Anything not listed (UTF-16, UTF-7, ISO-2022-*, EBCDIC, unknown) wraps.
fn ascii_compatible(charset: &str) -> bool {
    const EXACT: &[&str] = &[
        "us-ascii",
        "ascii",
        "utf-8",
        "utf8",
        "gb2312",
        "gbk",
        "gb18030",
        "big5",
        "big5-hkscs",
        "euc-jp",
        "euc-kr",
        "euc-cn",
        "euc-tw",
        "shift_jis",
        "shift-jis",
        "sjis",
        "tis-620",
        "ks_c_5601-1987",
        "macintosh",
        "viscii",
        "cp437",
        "ibm437",
        "cp850",
        "ibm850",
        "cp852",
        "ibm852",
        "cp866",
        "ibm866",
    ];
    const PREFIXES: &[&str] = &[
        "iso-8859-",
        "iso8859-",
        "windows-",
        "cp12",
        "koi8-",
        "x-mac-",
    ];
    EXACT.contains(&charset) || PREFIXES.iter().any(|p| charset.starts_with(p))
}

/// A multipart/mixed post: the footer part goes right before the closing delimiter, found
/// where mail-parser ended the root's last child. No closing delimiter: wrap instead.
fn insert_plan(
    raw: &[u8],
    message: &Message<'_>,
    root: &MessagePart<'_>,
    boundary: Option<&str>,
    part: &[u8],
) -> Plan {
    let (Some(boundary), PartType::Multipart(children)) = (boundary, &root.body) else {
        return Plan::Wrap;
    };
    let Some(last) = children.last().and_then(|&id| message.part(id)) else {
        return Plan::Wrap;
    };
    let at = last.offset_end as usize;
    let closing = [b"\r\n--", boundary.as_bytes(), b"--"].concat();
    let delimiter = [b"--", boundary.as_bytes()].concat();
    let closes = raw.get(at..).is_some_and(|rest| rest.starts_with(&closing));
    if boundary.is_empty()
        || !closes
        || at < root.offset_body as usize
        || contains(part, &delimiter)
    {
        return Plan::Wrap;
    }
    Plan::Insert {
        at,
        boundary: boundary.to_string(),
    }
}

/// Every boundary declared in the parsed post, nested messages included (walked with an
/// explicit stack: the nesting depth is the sender's choice).
pub(super) fn boundaries(message: &Message<'_>) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![message];
    while let Some(message) = todo.pop() {
        for part in &message.parts {
            if let Some(b) = part.content_type().and_then(|ct| ct.attribute("boundary")) {
                found.push(b.to_string());
            }
            if let PartType::Message(inner) = &part.body {
                todo.push(inner);
            }
        }
    }
    found
}

/// A boundary derived from a hash of the message that occurs in none of `texts` and that no
/// `existing` boundary is a prefix of (mail-parser matches `--BOUNDARY` anywhere, not only
/// at line starts). None after many collisions, which needs a crafted message.
pub(super) fn new_boundary(texts: &[&[u8]], existing: &[String]) -> Option<String> {
    let mut seed = Sha256::new();
    for text in texts {
        seed.update(text);
    }
    let seed = seed.finalize();
    for attempt in 0u32..64 {
        let digest = Sha256::new()
            .chain_update(seed)
            .chain_update(attempt.to_be_bytes())
            .finalize();
        let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
        // "=_" cannot occur in quoted-printable text, which makes collisions rarer still.
        let candidate = format!("=_lk_{hex}");
        let clash = texts.iter().any(|t| contains(t, candidate.as_bytes()))
            || existing
                .iter()
                .any(|b| !b.is_empty() && candidate.starts_with(b.as_str()));
        if !clash {
            return Some(candidate);
        }
    }
    None
}

/// Whether `needle` occurs in `hay`.
/// The first position of `needle` in `hay`.
pub(super) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(super) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    match needle.first() {
        None => true,
        Some(&first) => hay
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == first)
            .any(|(i, _)| hay.get(i..).is_some_and(|rest| rest.starts_with(needle))),
    }
}
