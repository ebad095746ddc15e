//! Classification of a post before anything is sent: who sent it and may they post.

use mail_parser::MessageParser;

use crate::address::Address;

/// The Message-ID of `raw` (without brackets), or empty.
pub fn message_id(raw: &[u8]) -> String {
    let header_end = header_end(raw);
    MessageParser::new()
        .parse_headers(&raw[..header_end])
        .and_then(|m| m.message_id().map(str::to_string))
        .unwrap_or_default()
}

/// The first From address of `raw`, if it is a valid address.
pub fn from_address(raw: &[u8]) -> Option<Address> {
    let header_end = header_end(raw);
    let msg = MessageParser::new().parse_headers(&raw[..header_end])?;
    let from = msg.from()?.first()?.address()?.to_string();
    Address::parse(&from).ok()
}

/// Offset just past the header block (or the whole input when there is no blank line).
fn header_end(raw: &[u8]) -> usize {
    let crlf = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    let lf = raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(raw.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_message_id_and_from_from_headers_only() {
        let raw =
            b"From: \"A\" <Alice@Example.org>\r\nMessage-ID: <abc@x>\r\n\r\nFrom: evil@x.org\r\n";
        assert_eq!(message_id(raw), "abc@x");
        assert_eq!(
            from_address(raw).map(|a| a.key()),
            Some("alice@example.org".into())
        );
        assert_eq!(message_id(b"garbage"), "");
        assert_eq!(from_address(b"\xff\xfe"), None);
    }
}
