//! One SMTP client connection to the MTA's re-injection port, on smtp-proto's reply and EHLO
//! parsers.
//!
//! A transaction is `RSET` (on a reused connection), `MAIL`, one `RCPT` per recipient and
//! `DATA`, written in one piece when the server offers PIPELINING, then the message. Every
//! recipient gets its own status; the caller decides what a whole-post failure means.
//!
//! SECURITY: talks only to the configured target; envelope addresses were validated before
//! they got here and are checked again for CR/LF so a command cannot be split.

use std::time::Duration;

use smtp_proto::response::parser::ResponseReceiver;
use smtp_proto::{EhloResponse, Response, EXT_8BIT_MIME, EXT_PIPELINING, EXT_SIZE};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A message in wire form: CRLF line ends, dot-stuffed, terminated by `.CRLF`. Built once per
/// post and shared by every transaction of its fan-out.
#[derive(Debug)]
pub struct Wire {
    bytes: Vec<u8>,
    eight_bit: bool,
}

impl Wire {
    /// Prepare `message` (CRLF line ends expected; bare LF is fixed up) for DATA.
    pub fn new(message: &[u8]) -> Wire {
        let mut bytes = Vec::with_capacity(message.len() + message.len() / 64 + 8);
        let mut at_line_start = true;
        let mut prev = 0u8;
        for &b in message {
            if at_line_start && b == b'.' {
                bytes.push(b'.');
            }
            if b == b'\n' && prev != b'\r' {
                bytes.push(b'\r');
            }
            bytes.push(b);
            at_line_start = b == b'\n';
            prev = b;
        }
        if !bytes.ends_with(b"\r\n") {
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b".\r\n");
        let eight_bit = message.iter().any(|&b| b >= 0x80);
        Wire { bytes, eight_bit }
    }

    /// Like [`Wire::new`], but takes the message by value and reuses its buffer when nothing
    /// needs stuffing (no line starts with `.`, no bare LF): a per-member copy costs one
    /// scan instead of a second copy.
    pub fn from_owned(mut message: Vec<u8>) -> Wire {
        let mut prev = b'\n';
        let clean = message.iter().all(|&b| {
            let ok = (prev != b'\n' || b != b'.') && (b != b'\n' || prev == b'\r');
            prev = b;
            ok
        });
        if !clean {
            return Wire::new(&message);
        }
        let eight_bit = message.iter().any(|&b| b >= 0x80);
        if !message.ends_with(b"\r\n") {
            message.extend_from_slice(b"\r\n");
        }
        message.extend_from_slice(b".\r\n");
        Wire {
            bytes: message,
            eight_bit,
        }
    }

    /// The bytes to send after `354`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Size in bytes (for `SIZE=`).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Never true: a wire message has at least its terminator.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// The outcome for one recipient of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptStatus {
    /// The MTA took responsibility.
    Accepted,
    /// 4xx: try again later.
    Deferred(MtaReply),
    /// 5xx: this address will never work (logged; bounce handling comes later).
    Refused(MtaReply),
    /// The recipient's own transaction failed as a whole (personalized delivery sends one
    /// transaction per member).
    Failed(TxError),
}

impl RcptStatus {
    /// Not accepted, and worth trying again later.
    pub fn is_deferred(&self) -> bool {
        match self {
            RcptStatus::Deferred(_) => true,
            RcptStatus::Failed(e) => !e.is_permanent(),
            RcptStatus::Accepted | RcptStatus::Refused(_) => false,
        }
    }
}

/// One reply of the MTA as it gave it: kept structured up to the LMTP reply mapping and the
/// log, never flattened into a sentence to be matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtaReply {
    /// The SMTP command or stage it answered ("MAIL FROM", "RCPT TO", "end of data"...).
    pub stage: &'static str,
    /// Basic reply code.
    pub code: u16,
    /// Enhanced status code (RFC 3463), when the MTA gave one.
    pub esc: Option<(u8, u8, u8)>,
    /// The MTA's text, its lines joined by spaces.
    pub text: String,
}

impl MtaReply {
    fn of(r: &Response<String>, stage: &'static str) -> MtaReply {
        MtaReply {
            stage,
            code: r.code,
            esc: (r.esc[0] > 0).then_some((r.esc[0], r.esc[1], r.esc[2])),
            text: r.message.replace(['\r', '\n'], " "),
        }
    }

    /// A 5xx reply: the same request will never work.
    pub fn is_permanent(&self) -> bool {
        self.code / 100 == 5
    }
}

impl std::fmt::Display for MtaReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.stage, self.code)?;
        if let Some((a, b, c)) = self.esc {
            write!(f, " {a}.{b}.{c}")?;
        }
        write!(f, " {}", self.text)
    }
}

/// A transaction that did not complete as a whole. Whether it is worth retrying is
/// [`TxError::is_permanent`], decided by the variant and the MTA's code, never by text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The MTA answered a stage of the transaction (greeting, MAIL, DATA, the final dot) with
    /// a 4xx or 5xx reply.
    #[error("the MTA answered {0}")]
    Replied(MtaReply),
    /// No connection to the MTA could be had: refused, timed out, backing off after such a
    /// failure, or the pool has stopped.
    #[error("MTA unreachable: {0}")]
    Unreachable(String),
    /// listkeeper would not send this transaction (an envelope address with forbidden
    /// characters): retrying cannot help.
    #[error("not sent: {0}")]
    Invalid(String),
    /// The connection broke or timed out. `data_sent` tells whether the server may have
    /// accepted the message (only then is a retry a possible duplicate).
    #[error("connection failed: {reason}")]
    Connection {
        /// What happened.
        reason: String,
        /// Whether the message body had been sent.
        data_sent: bool,
    },
}

impl TxError {
    /// True when retrying the same transaction cannot succeed (5xx, or refused by us).
    pub fn is_permanent(&self) -> bool {
        match self {
            TxError::Replied(r) => r.is_permanent(),
            TxError::Invalid(_) => true,
            TxError::Unreachable(_) | TxError::Connection { .. } => false,
        }
    }
}

/// The SMTP conversation over any byte stream (a TcpStream in the pool, a duplex in tests).
pub struct Client<S> {
    stream: S,
    buf: Vec<u8>,
    pos: usize,
    receiver: ResponseReceiver,
    timeout: Duration,
    pipelining: bool,
    eight_bit_mime: bool,
    size: bool,
    used: bool,
}

fn conn_err(reason: impl Into<String>, data_sent: bool) -> TxError {
    TxError::Connection {
        reason: reason.into(),
        data_sent,
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// Read the greeting and say EHLO (falling back to HELO).
    pub async fn handshake(stream: S, helo: &str, timeout: Duration) -> Result<Client<S>, TxError> {
        let mut c = Client {
            stream,
            buf: Vec::with_capacity(4096),
            pos: 0,
            receiver: ResponseReceiver::default(),
            timeout,
            pipelining: false,
            eight_bit_mime: false,
            size: false,
            used: false,
        };
        let greeting = c.reply(false).await?;
        if greeting.code != 220 {
            return Err(classify(&greeting, "greeting"));
        }
        c.send(format!("EHLO {helo}\r\n").as_bytes(), false).await?;
        let mut raw = Vec::new();
        let ehlo = c.reply_keeping(false, Some(&mut raw)).await?;
        if ehlo.code == 250 {
            let offered = extensions(&raw);
            c.pipelining = offered.has_capability(EXT_PIPELINING);
            c.eight_bit_mime = offered.has_capability(EXT_8BIT_MIME);
            c.size = offered.has_capability(EXT_SIZE);
        } else {
            c.send(format!("HELO {helo}\r\n").as_bytes(), false).await?;
            let helo_reply = c.reply(false).await?;
            if helo_reply.code != 250 {
                return Err(classify(&helo_reply, "HELO"));
            }
        }
        Ok(c)
    }

    /// Whether the server offered PIPELINING.
    pub fn pipelining(&self) -> bool {
        self.pipelining
    }

    /// Whether this connection already carried a transaction.
    pub fn is_used(&self) -> bool {
        self.used
    }

    /// Run one transaction. `Ok` means the transaction ran to its end; each recipient's status
    /// says who the MTA accepted. A whole-transaction failure is an `Err`.
    pub async fn send_mail(
        &mut self,
        from: &str,
        rcpts: &[String],
        wire: &Wire,
    ) -> Result<Vec<RcptStatus>, TxError> {
        if from.contains(['\r', '\n', '<', '>'])
            || rcpts.iter().any(|r| r.contains(['\r', '\n', '<', '>']))
        {
            return Err(TxError::Invalid(
                "an envelope address with forbidden characters".into(),
            ));
        }
        let reset = self.used;
        self.used = true;
        let mut mail = format!("MAIL FROM:<{from}>");
        if self.eight_bit_mime && wire.eight_bit {
            mail.push_str(" BODY=8BITMIME");
        }
        if self.size {
            mail.push_str(&format!(" SIZE={}", wire.len()));
        }
        mail.push_str("\r\n");

        let mut statuses = Vec::with_capacity(rcpts.len());
        let mail_reply;
        let data_reply;
        if self.pipelining {
            let mut cmds = Vec::with_capacity(64 + rcpts.len() * 48);
            if reset {
                cmds.extend_from_slice(b"RSET\r\n");
            }
            cmds.extend_from_slice(mail.as_bytes());
            for r in rcpts {
                cmds.extend_from_slice(format!("RCPT TO:<{r}>\r\n").as_bytes());
            }
            cmds.extend_from_slice(b"DATA\r\n");
            self.send(&cmds, false).await?;
            if reset {
                self.reply(false).await?;
            }
            mail_reply = self.reply(false).await?;
            for _ in rcpts {
                let r = self.reply(false).await?;
                statuses.push(rcpt_status(&r));
            }
            data_reply = Some(self.reply(false).await?);
        } else {
            if reset {
                self.send(b"RSET\r\n", false).await?;
                self.reply(false).await?;
            }
            self.send(mail.as_bytes(), false).await?;
            mail_reply = self.reply(false).await?;
            if mail_reply.code / 100 == 2 {
                for r in rcpts {
                    self.send(format!("RCPT TO:<{r}>\r\n").as_bytes(), false)
                        .await?;
                    let reply = self.reply(false).await?;
                    statuses.push(rcpt_status(&reply));
                }
            }
            data_reply = if statuses.contains(&RcptStatus::Accepted) {
                self.send(b"DATA\r\n", false).await?;
                Some(self.reply(false).await?)
            } else {
                None
            };
        }

        if mail_reply.code / 100 != 2 {
            return Err(classify(&mail_reply, "MAIL FROM"));
        }
        let any_accepted = statuses.contains(&RcptStatus::Accepted);
        match data_reply {
            Some(r) if r.code == 354 => {
                if !any_accepted {
                    // A server that said 354 without a valid recipient: end the empty message.
                    self.send(b".\r\n", true).await?;
                    self.reply(true).await?;
                    return Ok(statuses);
                }
                self.send(wire.as_bytes(), true).await?;
                let done = self.reply(true).await?;
                if done.code / 100 != 2 {
                    return Err(classify(&done, "end of data"));
                }
                Ok(statuses)
            }
            Some(r) if any_accepted => Err(classify(&r, "DATA")),
            _ => Ok(statuses),
        }
    }

    /// Say QUIT (best effort).
    pub async fn quit(mut self) {
        if self.send(b"QUIT\r\n", false).await.is_ok() {
            let _ = self.reply(false).await;
        }
    }

    /// Wait until the server closes the idle connection or sends something unsolicited
    /// (Postfix says 421 on its idle timeout). Event-driven: no timer, no polling.
    pub async fn closed(&mut self) {
        let mut byte = [0u8; 512];
        let _ = self.stream.read(&mut byte).await;
    }

    async fn send(&mut self, bytes: &[u8], data_sent: bool) -> Result<(), TxError> {
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(self.timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(conn_err(format!("write failed: {e}"), data_sent)),
            Err(_) => Err(conn_err("timed out writing", data_sent)),
        }
    }

    async fn reply(&mut self, data_sent: bool) -> Result<Response<String>, TxError> {
        self.reply_keeping(data_sent, None).await
    }

    /// The next reply; its bytes as the server sent them are appended to `raw` if given (the
    /// EHLO reply is parsed again from them for its extensions).
    async fn reply_keeping(
        &mut self,
        data_sent: bool,
        mut raw: Option<&mut Vec<u8>>,
    ) -> Result<Response<String>, TxError> {
        loop {
            if self.pos < self.buf.len() {
                let start = self.pos;
                let mut it = self.buf[self.pos..].iter();
                let result = self.receiver.parse(&mut it);
                self.pos = self.buf.len() - it.len();
                if let Some(raw) = raw.as_deref_mut() {
                    raw.extend_from_slice(&self.buf[start..self.pos]);
                }
                match result {
                    Ok(r) => {
                        self.receiver.reset();
                        return Ok(r);
                    }
                    Err(smtp_proto::Error::NeedsMoreData { .. }) => {}
                    Err(e) => {
                        self.receiver.reset();
                        return Err(conn_err(
                            format!("unparseable reply from the MTA: {e:?}"),
                            data_sent,
                        ));
                    }
                }
            }
            if self.pos >= self.buf.len() {
                self.buf.clear();
                self.pos = 0;
            }
            let mut chunk = [0u8; 4096];
            let n = match tokio::time::timeout(self.timeout, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) => return Err(conn_err("the MTA closed the connection", data_sent)),
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(conn_err(format!("read failed: {e}"), data_sent)),
                Err(_) => return Err(conn_err("timed out waiting for the MTA's reply", data_sent)),
            };
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The extensions a 250 reply to EHLO offers, read by smtp-proto's EHLO parser from the
/// reply's bytes. A reply it cannot read offers none: the transaction then uses plain
/// RFC 5321, which every MTA takes.
fn extensions(raw: &[u8]) -> EhloResponse<String> {
    match EhloResponse::parse(&mut raw.iter()) {
        Ok(ehlo) => ehlo,
        Err(e) => {
            tracing::warn!(
                error = %e,
                "unreadable EHLO reply from the MTA; sending without PIPELINING, SIZE or 8BITMIME"
            );
            EhloResponse::default()
        }
    }
}

fn rcpt_status(r: &Response<String>) -> RcptStatus {
    match r.code / 100 {
        2 => RcptStatus::Accepted,
        5 => RcptStatus::Refused(MtaReply::of(r, "RCPT TO")),
        _ => RcptStatus::Deferred(MtaReply::of(r, "RCPT TO")),
    }
}

fn classify(r: &Response<String>, stage: &'static str) -> TxError {
    TxError::Replied(MtaReply::of(r, stage))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::{DuplexStream, ReadBuf};

    /// The client's end of a duplex that hands out at most `.1` bytes per read, so replies
    /// reach the client in awkward splits.
    struct Trickle(DuplexStream, usize);

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            let mut small = [0u8; 16];
            let n = self.1.min(buf.remaining()).min(small.len());
            let mut part = ReadBuf::new(&mut small[..n]);
            let polled = Pin::new(&mut self.0).poll_read(cx, &mut part);
            if let Poll::Ready(Ok(())) = polled {
                buf.put_slice(part.filled());
            }
            polled
        }
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Pin::new(&mut self.0).poll_write(cx, buf)
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_flush(cx)
        }

        fn poll_shutdown(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }

    /// What Postfix says to EHLO with `smtpd_sasl_auth_enable` and `broken_sasl_auth_clients`.
    const POSTFIX_EHLO: &str = "250-mta.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n\
        250-VRFY\r\n250-ETRN\r\n250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n\
        250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n";

    /// A handshake and one transaction of an 8-bit message with a server that answers EHLO
    /// with `ehlo` and everything else with success, its replies read `chunk` bytes at a
    /// time: whether the client pipelined, and its MAIL command.
    async fn mail_command(ehlo: &str, chunk: usize) -> (bool, String) {
        let (client_end, mut server) = tokio::io::duplex(1 << 16);
        // The whole script up front: the client reads the replies in order either way.
        let mut script = format!("220 mta.example.org ESMTP\r\n{ehlo}");
        if !ehlo.starts_with("250") {
            script.push_str("250 mta.example.org\r\n");
        }
        script.push_str("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go on\r\n250 2.0.0 queued\r\n");
        server.write_all(script.as_bytes()).await.expect("script");
        let mut c = Client::handshake(
            Trickle(client_end, chunk),
            "lists.example.org",
            Duration::from_secs(5),
        )
        .await
        .expect("handshake");
        let pipelining = c.pipelining();
        let wire = Wire::new("Subject: caf\u{e9}\r\n\r\nbody\r\n".as_bytes());
        let statuses = c
            .send_mail("l-bounces@example.org", &["a@example.net".into()], &wire)
            .await
            .expect("sent");
        assert_eq!(statuses, [RcptStatus::Accepted]);
        drop(c);
        let mut wrote = String::new();
        server.read_to_string(&mut wrote).await.expect("transcript");
        let mail = wrote
            .lines()
            .find(|l| l.starts_with("MAIL FROM:"))
            .expect("a MAIL command")
            .to_string();
        (pipelining, mail.replace(&wire.len().to_string(), "N"))
    }

    #[tokio::test]
    async fn the_ehlo_reply_decides_pipelining_size_and_8bitmime() {
        let from = "MAIL FROM:<l-bounces@example.org>";
        let sink = "250-sink\r\n250-8BITMIME\r\n250 SIZE 100000000\r\n";
        let lower = "250-mta\r\n250-pipelining\r\n250 8bitmime\r\n";
        let cases = [
            (POSTFIX_EHLO, true, " BODY=8BITMIME SIZE=N"),
            (sink, false, " BODY=8BITMIME SIZE=N"),
            (lower, true, " BODY=8BITMIME"),
            ("250 mta.example.org\r\n", false, ""),
            // EHLO refused: HELO, and no extensions.
            ("502 5.5.2 Error: command not recognized\r\n", false, ""),
            // A reply smtp-proto cannot read (a line with another code) offers nothing.
            ("250-mta\r\n250-PIPELINING\r\n251 SIZE\r\n", false, ""),
        ];
        for chunk in [1, 3, 16] {
            for (ehlo, pipelining, params) in cases {
                assert_eq!(
                    mail_command(ehlo, chunk).await,
                    (pipelining, format!("{from}{params}")),
                    "{ehlo:?} read {chunk} bytes at a time"
                );
            }
        }
    }

    #[test]
    fn owned_wire_form_matches_the_copying_one() {
        for m in [
            &b"Subject: x\r\n\r\nplain\r\n"[..],
            b"Subject: x\r\n\r\n.dot\r\n",
            b"a\nb",
            b"x\r\n.",
            b"\xc3\xa9",
        ] {
            let a = Wire::new(m);
            let b = Wire::from_owned(m.to_vec());
            assert_eq!(
                (a.as_bytes(), a.eight_bit),
                (b.as_bytes(), b.eight_bit),
                "{m:?}"
            );
        }
    }

    #[test]
    fn wire_form_is_dot_stuffed_and_terminated() {
        let w = Wire::new(b"Subject: x\r\n\r\n.hidden\r\nok\n..two");
        assert_eq!(
            w.as_bytes(),
            b"Subject: x\r\n\r\n..hidden\r\nok\r\n...two\r\n.\r\n"
        );
        assert!(!w.eight_bit);
        assert!(Wire::new("\u{e9}".as_bytes()).eight_bit);
    }
}
