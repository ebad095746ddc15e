//! The [`Post`] value: one message read once where it enters the pipeline. Every stage reads
//! from it; none parses the message again.

use std::sync::OnceLock;

use mail_parser::{Message, MessageParser};

use crate::address::Address;
use crate::mime::header::{self, HeaderBlock};
use crate::mime::Parsed;

/// One post, read once where it enters the pipeline. Every stage reads from it; none parses
/// the message again.
pub struct Post<'a> {
    raw: &'a [u8],
    bytes: &'a [u8],
    header: HeaderBlock,
    headers: Option<Message<'a>>,
    message_id: String,
    from: Option<Address>,
    tree: OnceLock<Option<Parsed<'a>>>,
}

impl<'a> Post<'a> {
    /// Read `bytes` (`raw` with CRLF line ends): index and parse the header section.
    pub fn new(raw: &'a [u8], bytes: &'a [u8]) -> Post<'a> {
        let header = header::scan(bytes);
        let headers = MessageParser::default().parse_headers(bytes);
        let message_id = headers
            .as_ref()
            .and_then(|m| m.message_id())
            .unwrap_or_default()
            .to_string();
        let from = headers
            .as_ref()
            .and_then(|m| m.from()?.first()?.address().map(str::to_string))
            .and_then(|a| Address::parse(&a).ok());
        Post {
            raw,
            bytes,
            header,
            headers,
            message_id,
            from,
            tree: OnceLock::new(),
        }
    }

    /// The message as received (the journal key and the held copy are taken from it).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The message with CRLF line ends.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Where each top-level header field is, and where the body starts.
    pub fn header(&self) -> &HeaderBlock {
        &self.header
    }

    /// mail-parser's reading of the top-level header section (None: no header at all).
    pub fn headers(&self) -> Option<&Message<'a>> {
        self.headers.as_ref()
    }

    /// The Message-ID without brackets, or empty.
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// The first From address, when it is a valid address.
    pub fn from(&self) -> Option<&Address> {
        self.from.as_ref()
    }

    /// The whole MIME tree: parsed on the first call, by whichever stage needs it first.
    pub fn tree(&self) -> Option<&Message<'a>> {
        self.tree
            .get_or_init(|| crate::mime::parse(self.bytes))
            .as_ref()
            .map(|p| &**p)
    }
}
