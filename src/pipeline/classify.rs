//! Classification of a post before anything is sent: who sent it and may they post.

use std::sync::Arc;

use mail_parser::MessageParser;

use super::{blocking, Context, PostError};
use crate::address::Address;
use crate::config::{ListConfig, PostingPolicy};

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

/// Apply the list's posting policy: `open` lets everyone in; `members` wants the envelope
/// sender or the From address to be a member.
pub async fn check_policy(
    ctx: &Context,
    list: &Arc<ListConfig>,
    sender: &str,
    raw: &[u8],
) -> Result<(), PostError> {
    match list.posting {
        PostingPolicy::Open => Ok(()),
        PostingPolicy::Members => {
            let mut candidates: Vec<Address> = Vec::with_capacity(2);
            if let Ok(a) = Address::parse(sender) {
                candidates.push(a);
            }
            if let Some(a) = from_address(raw) {
                if !candidates.contains(&a) {
                    candidates.push(a);
                }
            }
            if candidates.is_empty() {
                return Err(PostError::NoSender(list.key()));
            }
            let store = ctx.store.clone();
            let key = list.key();
            let is_member = blocking(move || {
                for a in &candidates {
                    if store.is_member(&key, a)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            })
            .await?;
            if is_member {
                Ok(())
            } else {
                Err(PostError::NotMember(list.key()))
            }
        }
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
