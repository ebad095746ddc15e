//! Every reply the LMTP server sends, from one mapping: a delivery's [`Outcome`] or
//! [`PostError`] ([`for_outcome`], [`reply_for`]) and what the session itself says
//! ([`Said`]: protocol and session errors, limits, the positive replies to commands).
//!
//! The client sees a generic, helpful sentence with an enhanced status code; the details go to
//! the log. Temporary problems are 4xx with 4.x.x (the MTA keeps the message and retries),
//! permanent ones 5xx with 5.x.x; which is which comes from the error's type
//! ([`PostError::is_permanent`]), never from its text.

use std::fmt;

use smtp_proto::Error as ProtoError;

use crate::address::AddressError;
use crate::outcome::{Outcome, PostError};
use crate::reinject::TxError;

/// One reply line: code, enhanced status code, text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Basic code (250, 451, 550...).
    pub code: u16,
    /// Enhanced status code (RFC 3463), e.g. (5, 1, 1).
    pub esc: (u8, u8, u8),
    /// The sentence for the client (one line, no CR/LF).
    pub text: String,
}

impl Reply {
    /// Build a reply; CR and LF in `text` are replaced so a reply is always one line.
    pub fn new(code: u16, esc: (u8, u8, u8), text: impl Into<String>) -> Reply {
        let text: String = text.into();
        // A reply line is printable US-ASCII (RFC 5321 4.2): anything else a client sent and
        // we echo (a non-ASCII address, a control character) becomes '?'.
        let text = text
            .chars()
            .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
            .collect();
        Reply { code, esc, text }
    }

    /// `250 2.0.0 text`.
    pub fn ok(text: impl Into<String>) -> Reply {
        Reply::new(250, (2, 0, 0), text)
    }

    /// Positive completion (2xx)?
    pub fn is_positive(&self) -> bool {
        self.code / 100 == 2
    }

    /// Wire form with CRLF.
    pub fn to_line(&self) -> String {
        format!("{self}\r\n")
    }

    /// The same reply with the transaction's correlation id at the end of its text, for
    /// replies that are not positive (the id is in listkeeper's log line about them too).
    pub fn with_id(mut self, id: &str) -> Reply {
        if !self.is_positive() && self.code != 354 && !id.is_empty() {
            self.text = format!("{} [id {id}]", self.text);
        }
        self
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b, c) = self.esc;
        write!(f, "{} {a}.{b}.{c} {}", self.code, self.text)
    }
}

/// The reply to a recipient whose delivery was handled.
pub fn for_outcome(outcome: &Outcome) -> Reply {
    match outcome {
        Outcome::Distributed { list, copies } => {
            Reply::ok(format!("distributed to {copies} member(s) of {list}"))
        }
        Outcome::Held { reasons } => Reply::ok(format!("held for moderation: {reasons}")),
        Outcome::Discarded { reason } => Reply::ok(format!("discarded: {reason}")),
        Outcome::Forwarded { list, owners } => {
            Reply::ok(format!("forwarded to {owners} owner(s) of {list}"))
        }
        Outcome::RequestHandled => Reply::ok("request handled"),
        Outcome::RequestIgnored(why) => Reply::ok(*why),
        Outcome::BounceProcessed(what) => Reply::ok(what.as_str()),
    }
}

/// The reply for a failed delivery to one list recipient.
pub fn reply_for(err: &PostError) -> Reply {
    match err {
        PostError::ListDisabled(list) => Reply::new(
            451,
            (4, 3, 5),
            format!(
                "the list {list} is temporarily disabled by a configuration error; try again later"
            ),
        ),
        PostError::Rejected(reason) => Reply::new(
            550,
            (5, 7, 1),
            format!("the list refused this post: {reason}"),
        ),
        PostError::Unparseable => Reply::new(
            554,
            (5, 6, 0),
            "the message could not be parsed as an Internet message",
        ),
        PostError::Mta(TxError::Unreachable(_)) => Reply::new(
            451,
            (4, 4, 1),
            "the mail system is not reachable right now; try again later",
        ),
        PostError::Mta(TxError::Connection { .. }) => Reply::new(
            451,
            (4, 4, 2),
            "the connection to the mail system broke; try again later",
        ),
        PostError::Mta(e) if e.is_permanent() => Reply::new(
            554,
            (5, 4, 0),
            "the mail system refused the list's copies of this message",
        ),
        PostError::Mta(_) | PostError::Deferred(_) => Reply::new(
            451,
            (4, 4, 0),
            "the mail system deferred some copies; try again later",
        ),
        PostError::QueueFull(list) => Reply::new(
            452,
            (4, 2, 2),
            format!("the moderation queue of {list} is full; try again later"),
        ),
        PostError::Store(_) => Reply::new(
            451,
            (4, 3, 0),
            "the list's store is not available; try again later",
        ),
        PostError::Shutdown => Said::ShuttingDown.reply(),
    }
}

/// Everything the session says on its own, outside a delivery's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said<'a> {
    /// RSET.
    Reset,
    /// NOOP.
    Ok,
    /// QUIT.
    Bye,
    /// MAIL FROM accepted.
    SenderOk,
    /// RCPT TO accepted.
    RecipientOk(&'a str),
    /// DATA accepted.
    StartData,
    /// EHLO or HELO to an LMTP server.
    SayLhlo,
    /// HELP.
    Help,
    /// VRFY, EXPN.
    NoVrfy,
    /// Any other known command we do not do.
    NotImplemented(&'a str),
    /// MAIL before LHLO.
    LhloFirst,
    /// MAIL inside a transaction.
    NestedMail,
    /// RCPT before MAIL.
    MailFirst,
    /// DATA after MAIL with no accepted recipient.
    NoValidRecipients,
    /// DATA before MAIL and RCPT.
    MailAndRcptFirst,
    /// A sender we cannot read.
    BadSender(&'a AddressError),
    /// A recipient that is no list address here.
    NoSuchList(&'a str),
    /// `limits.max_recipients`.
    TooManyRecipients,
    /// `limits.max_message_size` (SIZE= or the data itself).
    TooBig,
    /// `limits.max_header_size`.
    HeaderTooBig,
    /// `limits.max_mime_parts`.
    TooManyParts,
    /// `limits.max_mime_depth`.
    TooDeep,
    /// smtp-proto could not read a command.
    Protocol(&'a ProtoError),
    /// `limits.idle_timeout` between commands.
    IdleTimeout,
    /// `limits.data_timeout` for the message.
    SlowData,
    /// The server is stopping.
    ShuttingDown,
    /// `limits.max_sessions`.
    Busy,
    /// A delivery task died (a bug, never input).
    Internal,
}

impl Said<'_> {
    /// The reply line.
    pub fn reply(&self) -> Reply {
        match self {
            Said::Reset => Reply::new(250, (2, 0, 0), "reset"),
            Said::Ok => Reply::new(250, (2, 0, 0), "ok"),
            Said::Bye => Reply::new(221, (2, 0, 0), "bye"),
            Said::SenderOk => Reply::new(250, (2, 1, 0), "sender ok"),
            Said::RecipientOk(to) => Reply::new(250, (2, 1, 5), format!("<{to}> ok")),
            Said::StartData => {
                Reply::new(354, (2, 0, 0), "send the message, end with <CRLF>.<CRLF>")
            }
            Said::SayLhlo => Reply::new(
                500,
                (5, 5, 1),
                "this is an LMTP server (RFC 2033): say LHLO",
            ),
            Said::Help => Reply::new(
                214,
                (2, 0, 0),
                "listkeeper LMTP: LHLO MAIL RCPT DATA RSET NOOP QUIT",
            ),
            Said::NoVrfy => Reply::new(502, (5, 5, 1), "VRFY and EXPN are not offered"),
            Said::NotImplemented(name) => {
                Reply::new(502, (5, 5, 1), format!("{name} is not implemented here"))
            }
            Said::LhloFirst => Reply::new(503, (5, 5, 1), "say LHLO first"),
            Said::NestedMail => Reply::new(503, (5, 5, 1), "nested MAIL command"),
            Said::MailFirst => Reply::new(503, (5, 5, 1), "need MAIL before RCPT"),
            Said::NoValidRecipients => Reply::new(503, (5, 5, 1), "no valid recipients"),
            Said::MailAndRcptFirst => Reply::new(503, (5, 5, 1), "need MAIL and RCPT before DATA"),
            Said::BadSender(e) => Reply::new(501, (5, 1, 7), format!("bad sender address: {e}")),
            Said::NoSuchList(to) => {
                Reply::new(550, (5, 1, 1), format!("<{to}>: no such list address here"))
            }
            Said::TooManyRecipients => {
                Reply::new(452, (4, 5, 3), "too many recipients in this transaction")
            }
            Said::TooBig => Reply::new(552, (5, 3, 4), "message size exceeds the fixed limit"),
            Said::HeaderTooBig => Reply::new(
                552,
                (5, 3, 4),
                "the header section of the message exceeds the fixed limit",
            ),
            Said::TooManyParts => Reply::new(
                552,
                (5, 3, 4),
                "the message has more MIME parts than the fixed limit",
            ),
            Said::TooDeep => Reply::new(
                552,
                (5, 3, 4),
                "the message's MIME parts are nested deeper than the fixed limit",
            ),
            Said::Protocol(e) => protocol_error(e),
            Said::IdleTimeout => Reply::new(421, (4, 4, 2), "idle for too long, closing"),
            Said::SlowData => Reply::new(
                421,
                (4, 4, 2),
                "the message is arriving too slowly, closing",
            ),
            Said::ShuttingDown => Reply::new(
                421,
                (4, 3, 0),
                "listkeeper is shutting down; try again later",
            ),
            Said::Busy => Reply::new(
                421,
                (4, 3, 2),
                "too many concurrent sessions, try again later",
            ),
            Said::Internal => Reply::new(451, (4, 3, 0), "internal error; try again later"),
        }
    }
}

/// The reply for a command smtp-proto could not parse.
fn protocol_error(e: &ProtoError) -> Reply {
    match e {
        ProtoError::UnknownCommand => Reply::new(500, (5, 5, 2), "command not recognized"),
        ProtoError::InvalidSenderAddress => Reply::new(501, (5, 1, 7), "bad sender address syntax"),
        ProtoError::InvalidRecipientAddress => {
            Reply::new(501, (5, 1, 3), "bad recipient address syntax")
        }
        ProtoError::SyntaxError { syntax } => {
            Reply::new(501, (5, 5, 4), format!("syntax: {syntax}"))
        }
        ProtoError::InvalidParameter { param } => {
            Reply::new(501, (5, 5, 4), format!("invalid parameter {param}"))
        }
        ProtoError::UnsupportedParameter { param } => Reply::new(
            555,
            (5, 5, 4),
            format!(
                "unsupported parameter {}",
                param.chars().take(40).collect::<String>()
            ),
        ),
        ProtoError::ResponseTooLong => Reply::new(500, (5, 5, 6), "line too long"),
        _ => Reply::new(500, (5, 5, 2), "command not recognized"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_errors_are_4xx_and_permanent_5xx() {
        let reply = |code| crate::reinject::MtaReply {
            stage: "end of data",
            code,
            esc: None,
            text: "x".into(),
        };
        let temp = [
            PostError::ListDisabled("dev@x".into()),
            PostError::Mta(TxError::Unreachable("x".into())),
            PostError::Mta(TxError::Connection {
                reason: "x".into(),
                data_sent: true,
            }),
            PostError::Mta(TxError::Replied(reply(451))),
            PostError::Deferred(reply(450)),
            PostError::Store("disk full".into()),
            PostError::Shutdown,
        ];
        for e in &temp {
            let r = reply_for(e);
            assert_eq!((r.code / 100, r.esc.0), (4, 4), "{e:?} -> {r}");
            assert!(!e.is_permanent(), "{e:?}");
        }
        let perm = [
            PostError::Rejected("not a member".into()),
            PostError::Unparseable,
            PostError::Mta(TxError::Replied(reply(554))),
            PostError::Mta(TxError::Invalid("x".into())),
        ];
        for e in &perm {
            let r = reply_for(e);
            assert_eq!((r.code / 100, r.esc.0), (5, 5), "{e:?} -> {r}");
            assert!(e.is_permanent(), "{e:?}");
        }
        assert_eq!(
            reply_for(&PostError::ListDisabled("dev@x".into()))
                .to_string()
                .get(..9),
            Some("451 4.3.5")
        );
        assert!(!reply_for(&PostError::Store("secret path".into()))
            .text
            .contains("secret"));
    }

    #[test]
    fn what_the_session_says_is_4xx_or_5xx_with_a_matching_enhanced_code() {
        let e = ProtoError::UnknownCommand;
        for said in [
            Said::SayLhlo,
            Said::NoVrfy,
            Said::LhloFirst,
            Said::NestedMail,
            Said::MailFirst,
            Said::NoValidRecipients,
            Said::MailAndRcptFirst,
            Said::NoSuchList("x@y"),
            Said::TooManyRecipients,
            Said::TooBig,
            Said::HeaderTooBig,
            Said::TooManyParts,
            Said::TooDeep,
            Said::Protocol(&e),
            Said::IdleTimeout,
            Said::SlowData,
            Said::ShuttingDown,
            Said::Busy,
            Said::Internal,
        ] {
            let r = said.reply();
            assert!(matches!(r.code / 100, 4 | 5), "{said:?} -> {r}");
            assert_eq!(u16::from(r.esc.0), r.code / 100, "{said:?} -> {r}");
        }
        assert!(Said::StartData.reply().code == 354);
    }

    #[test]
    fn only_replies_that_are_not_positive_carry_the_id() {
        assert_eq!(
            reply_for(&PostError::Store("x".into()))
                .with_id("a1b2c3d4")
                .to_string(),
            "451 4.3.0 the list's store is not available; try again later [id a1b2c3d4]"
        );
        let ok = for_outcome(&Outcome::RequestHandled).with_id("a1b2c3d4");
        assert_eq!(ok.to_string(), "250 2.0.0 request handled");
        assert_eq!(
            Said::StartData.reply().with_id("x").text,
            Said::StartData.reply().text
        );
    }

    #[test]
    fn a_reply_is_one_line() {
        assert_eq!(
            Reply::new(550, (5, 1, 1), "a\r\nb").to_line(),
            "550 5.1.1 a??b\r\n"
        );
        assert_eq!(
            Reply::new(550, (5, 1, 1), "<b\u{fc}cher@x>").to_line(),
            "550 5.1.1 <b?cher@x>\r\n"
        );
    }
}
