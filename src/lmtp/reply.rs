//! SMTP/LMTP replies and the one function that maps an error to a reply.
//!
//! The client sees a generic, helpful sentence with an enhanced status code; the details go to
//! the log. Temporary problems are 4xx with 4.x.x (the MTA keeps the message and retries),
//! permanent ones 5xx with 5.x.x.

use std::fmt;

use crate::pipeline::PostError;

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
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b, c) = self.esc;
        write!(f, "{} {a}.{b}.{c} {}", self.code, self.text)
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
        PostError::MtaUnreachable(_) => Reply::new(
            451,
            (4, 4, 1),
            "the mail system is not reachable right now; try again later",
        ),
        PostError::MtaConnection(_) => Reply::new(
            451,
            (4, 4, 2),
            "the connection to the mail system broke; try again later",
        ),
        PostError::MtaDeferred(_) => Reply::new(
            451,
            (4, 4, 0),
            "the mail system deferred some copies; try again later",
        ),
        PostError::MtaRefused(_) => Reply::new(
            554,
            (5, 4, 0),
            "the mail system refused the list's copies of this message",
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
        PostError::Shutdown => Reply::new(
            421,
            (4, 3, 0),
            "listkeeper is shutting down; try again later",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_errors_are_4xx_and_permanent_5xx() {
        let temp = [
            PostError::ListDisabled("dev@x".into()),
            PostError::MtaUnreachable("x".into()),
            PostError::MtaConnection("x".into()),
            PostError::MtaDeferred("x".into()),
            PostError::Store("disk full".into()),
            PostError::Shutdown,
        ];
        for e in &temp {
            let r = reply_for(e);
            assert_eq!((r.code / 100, r.esc.0), (4, 4), "{e:?} -> {r}");
        }
        let perm = [
            PostError::Rejected("not a member".into()),
            PostError::Unparseable,
            PostError::MtaRefused("x".into()),
        ];
        for e in &perm {
            let r = reply_for(e);
            assert_eq!((r.code / 100, r.esc.0), (5, 5), "{e:?} -> {r}");
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
