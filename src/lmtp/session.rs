//! One LMTP session (RFC 2033) as a state machine over any byte stream.
//!
//! Commands are parsed by smtp-proto; a command in the wrong state gets `503 5.5.1`, a bad
//! one `500`/`501`, never a dropped connection. After the final dot every accepted recipient
//! gets its own reply, in RCPT order, from its own outcome. Replies are buffered and flushed
//! whenever the input is drained, so a pipelining client gets them in one write.
//!
//! SECURITY: every byte here comes from the network. Lines are bounded by smtp-proto (4096
//! bytes), messages by `limits.max_message_size`, their header section by
//! `limits.max_header_size`, their MIME parts by `limits.max_mime_parts` and their nesting by
//! `limits.max_mime_depth` (both measured before any parser builds a tree), recipients by `limits.max_recipients`. Time is bounded too: a
//! command must be complete within `limits.idle_timeout` of the previous one (bytes trickled
//! in do not extend it), and the whole DATA phase within `limits.data_timeout`. Only
//! configured list addresses are accepted (invariant 6). The sender is read liberally
//! ([`EnvelopeSender`]: long and quoted local parts, never control characters) and reaches
//! the pipeline in that type, which yields an address to answer only when it is strictly valid.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use smtp_proto::request::receiver::{DataReceiver, RequestReceiver};
use smtp_proto::{Error as ProtoError, Request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::reply::Reply;
use crate::address::EnvelopeSender;
use crate::pipeline::{self, Context, Delivery};
use crate::registry::Registry;
use crate::route::{self, Role, Route};

static SESSION_IDS: AtomicU64 = AtomicU64::new(1);

enum State {
    /// Before LHLO.
    Fresh,
    /// After LHLO or a finished transaction.
    Ready,
    /// After MAIL.
    Mail { from: EnvelopeSender },
    /// After at least one accepted RCPT.
    Rcpt {
        from: EnvelopeSender,
        rcpts: Vec<(String, Route)>,
        refused: usize,
    },
}

enum Mode {
    Command,
    Data {
        receiver: DataReceiver,
        message: Vec<u8>,
        /// Set once the message broke a limit; what arrives after it is dropped.
        over: Option<Over>,
        /// Where to look next for the end of the header section; `None` once it was found.
        header_scan: Option<usize>,
        /// The whole DATA phase must end by then.
        deadline: tokio::time::Instant,
    },
}

/// Which limit a message broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Over {
    /// `limits.max_message_size`.
    Size,
    /// `limits.max_header_size`.
    Header,
    /// `limits.max_mime_parts`.
    Parts,
    /// `limits.max_mime_depth`.
    Depth,
}

/// One recipient's share of the work after the final dot.
enum Work {
    /// Its own delivery.
    Task(tokio::task::JoinHandle<Reply>),
    /// The same list and role as the n-th recipient of this transaction: its reply.
    SameAs(usize),
}

/// Why a session ended (for the log).
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// QUIT.
    Quit,
    /// The client went away.
    Closed,
    /// Idle for too long.
    Timeout,
    /// Server shutdown.
    Shutdown,
    /// An I/O error.
    Io(String),
}

/// An LMTP session on `stream`.
pub struct Session<S> {
    stream: S,
    ctx: Arc<Context>,
    shutdown: watch::Receiver<bool>,
    id: u64,
    hostname: String,
    state: State,
    mode: Mode,
    registry: Arc<Registry>,
    config: Arc<crate::config::Config>,
    receiver: RequestReceiver,
    /// After a line over the limit: the rest of that line is being thrown away, so that it
    /// is answered once and never read as commands.
    discard_line: bool,
    out: Vec<u8>,
    /// When the last complete command (or message) arrived: the idle timeout counts from
    /// here, so a client trickling a line byte by byte cannot hold the session.
    last_command: tokio::time::Instant,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// A new session; nothing is sent until [`Session::run`].
    pub fn new(stream: S, ctx: Arc<Context>, shutdown: watch::Receiver<bool>) -> Session<S> {
        let registry = ctx.registry.borrow().clone();
        // A session keeps the settings it started with, even if the global file is reloaded.
        let config = ctx.config();
        Session {
            stream,
            id: SESSION_IDS.fetch_add(1, Ordering::Relaxed),
            hostname: config.reinject.helo_name.clone(),
            config,
            ctx,
            shutdown,
            state: State::Fresh,
            mode: Mode::Command,
            registry,
            receiver: RequestReceiver::default(),
            discard_line: false,
            out: Vec::with_capacity(512),
            last_command: tokio::time::Instant::now(),
        }
    }

    /// Converse until QUIT, EOF, timeout or shutdown.
    pub async fn run(mut self) -> End {
        let greeting = format!("220 {} LMTP listkeeper ready\r\n", self.hostname);
        self.out.extend_from_slice(greeting.as_bytes());
        let mut chunk = vec![0u8; 8192];
        let idle = self.config.limits.idle_timeout;
        loop {
            if let Err(e) = self.flush().await {
                return End::Io(e.to_string());
            }
            let in_data = matches!(self.mode, Mode::Data { .. });
            let now = tokio::time::Instant::now();
            let wait = match &self.mode {
                Mode::Data { deadline, .. } => idle.min(deadline.saturating_duration_since(now)),
                Mode::Command => (self.last_command + idle).saturating_duration_since(now),
            };
            let n = tokio::select! {
                r = tokio::time::timeout(wait, self.stream.read(&mut chunk)) => match r {
                    Ok(Ok(0)) => return End::Closed,
                    Ok(Ok(n)) => n,
                    Ok(Err(e)) => return End::Io(e.to_string()),
                    Err(_) => {
                        let why = if in_data { "the message is arriving too slowly, closing" } else { "idle for too long, closing" };
                        self.say(Reply::new(421, (4, 4, 2), why));
                        let _ = self.flush().await;
                        return End::Timeout;
                    }
                },
                _ = self.shutdown.changed(), if !in_data && !*self.shutdown.borrow() => {
                    self.say(Reply::new(421, (4, 3, 0), "listkeeper is shutting down; try again later"));
                    let _ = self.flush().await;
                    return End::Shutdown;
                }
            };
            let input = &chunk[..n];
            let mut it = input.iter();
            while it.len() > 0 {
                if let Some(end) = self.step(&mut it).await {
                    let _ = self.flush().await;
                    return end;
                }
            }
            if *self.shutdown.borrow() && matches!(self.state, State::Fresh | State::Ready) {
                self.say(Reply::new(
                    421,
                    (4, 3, 0),
                    "listkeeper is shutting down; try again later",
                ));
                let _ = self.flush().await;
                return End::Shutdown;
            }
        }
    }

    /// Consume some input; `Some` ends the session.
    async fn step(&mut self, it: &mut std::slice::Iter<'_, u8>) -> Option<End> {
        if let Mode::Data {
            receiver,
            message,
            over,
            header_scan,
            ..
        } = &mut self.mode
        {
            let complete = receiver.ingest(it, message);
            let limits = &self.config.limits;
            if over.is_none() {
                if message.len() > limits.max_message_size {
                    *over = Some(Over::Size);
                } else if let Some(from) = *header_scan {
                    match header_end(message, from) {
                        Ok(end) => {
                            *header_scan = None;
                            if end > limits.max_header_size {
                                *over = Some(Over::Header);
                            }
                        }
                        Err(_) if message.len() > limits.max_header_size => {
                            *over = Some(Over::Header);
                        }
                        Err(next) => *header_scan = Some(next),
                    }
                }
            }
            if over.is_some() {
                // Nothing of a refused message is kept: memory stays bounded by one chunk.
                message.clear();
            }
            if complete {
                let Mode::Data { message, over, .. } =
                    std::mem::replace(&mut self.mode, Mode::Command)
                else {
                    return None;
                };
                self.end_of_data(message, over).await;
                self.last_command = tokio::time::Instant::now();
            }
            return None;
        }
        if self.discard_line {
            if it.by_ref().any(|&b| b == b'\n') {
                self.discard_line = false;
            }
            return None;
        }
        let request = match self.receiver.ingest(it) {
            Ok(r) => r.into_owned(),
            Err(ProtoError::NeedsMoreData { .. }) => return None,
            Err(e) => {
                self.last_command = tokio::time::Instant::now();
                if matches!(e, ProtoError::ResponseTooLong) {
                    // smtp-proto leaves the rest of the line in the input.
                    self.receiver = RequestReceiver::default();
                    self.discard_line = true;
                }
                let reply = protocol_error(&e);
                self.say(reply);
                return None;
            }
        };
        self.last_command = tokio::time::Instant::now();
        self.command(request)
    }

    fn command(&mut self, req: Request<String>) -> Option<End> {
        tracing::trace!(session = self.id, command = req.name(), "lmtp command");
        match req {
            Request::Lhlo { host } => {
                let _ = host;
                self.state = State::Ready;
                let size = self.config.limits.max_message_size;
                let text = format!(
                    "250-{}\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 SIZE {size}\r\n",
                    self.hostname
                );
                self.out.extend_from_slice(text.as_bytes());
            }
            Request::Ehlo { .. } | Request::Helo { .. } => {
                self.say(Reply::new(
                    500,
                    (5, 5, 1),
                    "this is an LMTP server (RFC 2033): say LHLO",
                ));
            }
            Request::Mail { from } => self.mail(from.address, from.size),
            Request::Rcpt { to } => self.rcpt(to.address),
            Request::Data => self.data(),
            Request::Rset => {
                if !matches!(self.state, State::Fresh) {
                    self.state = State::Ready;
                }
                self.say(Reply::new(250, (2, 0, 0), "reset"));
            }
            Request::Noop { .. } => self.say(Reply::new(250, (2, 0, 0), "ok")),
            Request::Quit => {
                self.say(Reply::new(221, (2, 0, 0), "bye"));
                return Some(End::Quit);
            }
            Request::Help { .. } => self.say(Reply::new(
                214,
                (2, 0, 0),
                "commands: LHLO MAIL RCPT DATA RSET NOOP QUIT",
            )),
            Request::Vrfy { .. } | Request::Expn { .. } => {
                self.say(Reply::new(502, (5, 5, 1), "VRFY and EXPN are not offered"))
            }
            other => self.say(Reply::new(
                502,
                (5, 5, 1),
                format!("{} is not implemented here", other.name()),
            )),
        }
        None
    }

    fn mail(&mut self, from: String, size: usize) {
        match self.state {
            State::Fresh => return self.say(Reply::new(503, (5, 5, 1), "say LHLO first")),
            State::Mail { .. } | State::Rcpt { .. } => {
                return self.say(Reply::new(503, (5, 5, 1), "nested MAIL command"))
            }
            State::Ready => {}
        }
        if size > self.config.limits.max_message_size {
            return self.say(Reply::new(
                552,
                (5, 3, 4),
                "message size exceeds the fixed limit",
            ));
        }
        // Liberal: a long (BATV, SRS) or quoted local part is a real person's, and refusing it
        // bounces their post. Nothing answers this sender unless it is strictly valid.
        let from = match EnvelopeSender::parse(&from) {
            Ok(from) => from,
            Err(e) => {
                return self.say(Reply::new(
                    501,
                    (5, 1, 7),
                    format!("bad sender address: {e}"),
                ))
            }
        };
        // A transaction sees one consistent set of lists, even if a reload happens meanwhile.
        self.registry = self.ctx.registry.borrow().clone();
        self.state = State::Mail { from };
        self.say(Reply::new(250, (2, 1, 0), "sender ok"));
    }

    fn rcpt(&mut self, to: String) {
        let (from, mut rcpts, mut refused) = match std::mem::replace(&mut self.state, State::Ready)
        {
            State::Mail { from } => (from, Vec::new(), 0),
            State::Rcpt {
                from,
                rcpts,
                refused,
            } => (from, rcpts, refused),
            other => {
                self.state = other;
                return self.say(Reply::new(503, (5, 5, 1), "need MAIL before RCPT"));
            }
        };
        let reply = if rcpts.len() >= self.config.limits.max_recipients {
            Reply::new(452, (4, 5, 3), "too many recipients in this transaction")
        } else {
            match route::route(&self.registry, &to) {
                Route::Unknown => {
                    Reply::new(550, (5, 1, 1), format!("<{to}>: no such list address here"))
                }
                Route::Disabled { list } => {
                    crate::lmtp::reply::reply_for(&pipeline::PostError::ListDisabled(list))
                }
                route => {
                    rcpts.push((to.clone(), route));
                    Reply::new(250, (2, 1, 5), format!("<{to}> ok"))
                }
            }
        };
        if !reply.is_positive() {
            refused += 1;
            tracing::info!(session = self.id, rcpt = %to, reply = %reply, "recipient refused");
        }
        self.state = State::Rcpt {
            from,
            rcpts,
            refused,
        };
        self.say(reply);
    }

    fn data(&mut self) {
        match &self.state {
            State::Rcpt { rcpts, .. } if !rcpts.is_empty() => {
                let mut receiver = DataReceiver::new();
                // The receiver only sees a terminating dot after a CRLF: prime it with one so
                // that an empty message (`.` right after DATA) also ends.
                let mut scratch = Vec::new();
                receiver.ingest(&mut b"\r\n".iter(), &mut scratch);
                self.mode = Mode::Data {
                    receiver,
                    message: Vec::with_capacity(16 * 1024),
                    over: None,
                    header_scan: Some(0),
                    deadline: tokio::time::Instant::now() + self.config.limits.data_timeout,
                };
                self.say(Reply::new(
                    354,
                    (2, 0, 0),
                    "send the message, end with <CRLF>.<CRLF>",
                ));
            }
            State::Rcpt { .. } | State::Mail { .. } => {
                self.say(Reply::new(503, (5, 5, 1), "no valid recipients"))
            }
            _ => self.say(Reply::new(503, (5, 5, 1), "need MAIL and RCPT before DATA")),
        }
    }

    async fn end_of_data(&mut self, message: Vec<u8>, over: Option<Over>) {
        let State::Rcpt { from, rcpts, .. } = std::mem::replace(&mut self.state, State::Ready)
        else {
            return;
        };
        let max_parts = self.config.limits.max_mime_parts;
        let max_depth = self.config.limits.max_mime_depth;
        let over = over
            .or_else(|| {
                (super::parts::count_delimiters(&message, max_parts) > max_parts)
                    .then_some(Over::Parts)
            })
            .or_else(|| {
                crate::mime::nesting_depth(&message, max_depth)
                    .err()
                    .map(|_| Over::Depth)
            });
        if let Some(over) = over {
            let text = match over {
                Over::Size => "message size exceeds the fixed limit",
                Over::Header => "the header section of the message exceeds the fixed limit",
                Over::Parts => "the message has more MIME parts than the fixed limit",
                Over::Depth => "the message's MIME parts are nested deeper than the fixed limit",
            };
            tracing::info!(session = self.id, sender = %from, limit = ?over, "message over a limit refused");
            for _ in &rcpts {
                self.say(Reply::new(552, (5, 3, 4), text));
            }
            return;
        }
        let delivery = Arc::new(Delivery {
            session: self.id,
            sender: from,
            raw: Arc::new(message),
        });
        // Each distinct (list, role) is handled once, concurrently with the others: `dev@`,
        // `DEV@` and `dev+x@` in one transaction are one post, and each of them gets its
        // reply. Replies are written in RCPT order as soon as each one and all before it are
        // known.
        let mut handled: Vec<((String, Role), usize)> = Vec::new();
        let mut work = Vec::with_capacity(rcpts.len());
        for (i, (_, route)) in rcpts.into_iter().enumerate() {
            if let Route::List(list, role) = &route {
                let key = (list.key(), role.clone());
                if let Some((_, first)) = handled.iter().find(|(k, _)| *k == key) {
                    work.push(Work::SameAs(*first));
                    continue;
                }
                handled.push((key, i));
            }
            let (ctx, delivery) = (self.ctx.clone(), delivery.clone());
            work.push(Work::Task(tokio::spawn(async move {
                pipeline::deliver(&ctx, &delivery, &route).await
            })));
        }
        let mut replies: Vec<Reply> = Vec::with_capacity(work.len());
        for w in work {
            let reply = match w {
                Work::Task(h) => h.await.unwrap_or_else(|e| {
                    tracing::error!(session = self.id, error = %e, "delivery task failed");
                    Reply::new(451, (4, 3, 0), "internal error; try again later")
                }),
                Work::SameAs(first) => replies.get(first).cloned().unwrap_or_else(|| {
                    Reply::new(451, (4, 3, 0), "internal error; try again later")
                }),
            };
            replies.push(reply.clone());
            self.say(reply);
            let _ = self.flush().await;
        }
    }

    fn say(&mut self, reply: Reply) {
        self.out.extend_from_slice(reply.to_line().as_bytes());
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.stream.write_all(&self.out).await?;
        self.stream.flush().await?;
        self.out.clear();
        Ok(())
    }
}

/// The end of the header section of `message` (the offset of its empty line), looking from
/// `from` on; `Err(next)` when it has not arrived yet, with where to look again.
fn header_end(message: &[u8], from: usize) -> Result<usize, usize> {
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
    use super::header_end;

    #[test]
    fn the_header_section_ends_at_the_first_empty_line() {
        assert_eq!(header_end(b"A: 1\r\nB: 2\r\n\r\nbody\r\n", 0), Ok(12));
        assert_eq!(header_end(b"A: 1\nB: 2\n\nbody\n", 0), Ok(10));
        assert_eq!(header_end(b"\r\nbody", 0), Ok(0));
        // Not there yet: the next search starts where a split empty line may begin.
        assert_eq!(header_end(b"A: 1\r\nB: 2\r\n", 0), Err(11));
        assert_eq!(header_end(b"A: 1\r\nB: 2\r\n\r", 0), Err(11));
        assert_eq!(header_end(b"A: 1\r\nB: 2\r\n\r\n", 11), Ok(12));
        assert_eq!(header_end(b"A: 1\r\n folded\r\n", 0), Err(14));
    }
}
