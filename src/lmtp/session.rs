//! One LMTP session (RFC 2033) as a state machine over any byte stream, handing each message
//! to a [`Backend`] (the server's role handlers, or a fake in tests).
//!
//! Commands are parsed by smtp-proto; a command in the wrong state gets `503 5.5.1`, a bad
//! one `500`/`501`, never a dropped connection; after a line over the limit the rest of that
//! line is discarded, so it is answered once. After the final dot every accepted recipient
//! gets its own reply, in RCPT order, from its own outcome (recipients naming the same list
//! and role share one delivery). Every reply comes from `lmtp::reply`; every refusal carries
//! the transaction's correlation id, which its log line carries too. Replies are buffered and
//! flushed whenever the input is drained, so a pipelining client gets them in one write.
//!
//! SECURITY: every byte here comes from the network. Lines are bounded by smtp-proto (4096
//! bytes), messages by `limits.max_message_size`, their header section by
//! `limits.max_header_size`, their MIME parts by `limits.max_mime_parts` and their nesting by
//! `limits.max_mime_depth` (both measured before any parser builds a tree), recipients by
//! `limits.max_recipients`. Time is bounded too: a
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

use super::reply::{for_outcome, reply_for, Reply, Said};
use crate::address::EnvelopeSender;
use crate::config::{Config, ListConfig};
use crate::context::Delivery;
use crate::outcome::{Outcome, PostError};
use crate::registry::Registry;
use crate::route::{self, Role, Route};

/// What the session hands each recipient's share of a message to: the server's role handlers
/// (`roles`, for `context::Context`), or a fake in tests, so whole dialogues run without a
/// store or an MTA.
pub trait Backend: Send + Sync + 'static {
    /// The settings a new session starts with (it keeps them, whatever reloads later).
    fn config(&self) -> Arc<Config>;
    /// The lists as they are now (a transaction keeps the set it started with).
    fn registry(&self) -> Arc<Registry>;
    /// Handle `delivery` for the address of `role` on `list`.
    fn deliver(
        self: Arc<Self>,
        delivery: Arc<Delivery>,
        list: Arc<ListConfig>,
        role: Role,
    ) -> impl std::future::Future<Output = Result<Outcome, PostError>> + Send + 'static;
}

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
        rcpts: Vec<(Arc<ListConfig>, Role)>,
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
    Task(tokio::task::JoinHandle<Result<Outcome, PostError>>),
    /// The same list and role as the n-th recipient of this transaction: its reply.
    SameAs(usize),
}

impl Over {
    fn said(self) -> Said<'static> {
        match self {
            Over::Size => Said::TooBig,
            Over::Header => Said::HeaderTooBig,
            Over::Parts => Said::TooManyParts,
            Over::Depth => Said::TooDeep,
        }
    }
}

/// A short random correlation id (8 hex digits); never fails (an id is not a secret).
pub(crate) fn new_id() -> String {
    let mut b = [0u8; 4];
    if getrandom::fill(&mut b).is_err() {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        return format!("{:08x}", NEXT.fetch_add(1, Ordering::Relaxed) as u32);
    }
    format!("{:08x}", u32::from_be_bytes(b))
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

/// An LMTP session on `stream`, handing messages to `B`.
pub struct Session<S, B> {
    stream: S,
    backend: Arc<B>,
    shutdown: watch::Receiver<bool>,
    id: u64,
    /// The correlation id of the transaction (a new one at each MAIL; one for the session
    /// before that): in every reply that is not positive and in the log lines about it.
    txn: String,
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

impl<S: AsyncRead + AsyncWrite + Unpin, B: Backend> Session<S, B> {
    /// A new session; nothing is sent until [`Session::run`].
    pub fn new(stream: S, backend: Arc<B>, shutdown: watch::Receiver<bool>) -> Session<S, B> {
        let registry = backend.registry();
        // A session keeps the settings it started with, even if the global file is reloaded.
        let config = backend.config();
        Session {
            stream,
            id: SESSION_IDS.fetch_add(1, Ordering::Relaxed),
            txn: new_id(),
            hostname: config.reinject.helo_name.clone(),
            config,
            backend,
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
                        self.refuse(if in_data { Said::SlowData } else { Said::IdleTimeout });
                        let _ = self.flush().await;
                        return End::Timeout;
                    }
                },
                _ = self.shutdown.changed(), if !in_data && !*self.shutdown.borrow() => {
                    self.refuse(Said::ShuttingDown);
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
                self.refuse(Said::ShuttingDown);
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
                    match crate::mime::header::arrived_end(message, from) {
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
                self.refuse(Said::Protocol(&e));
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
            Request::Ehlo { .. } | Request::Helo { .. } => self.refuse(Said::SayLhlo),
            Request::Mail { from } => self.mail(from.address, from.size),
            Request::Rcpt { to } => self.rcpt(to.address),
            Request::Data => self.data(),
            Request::Rset => {
                if !matches!(self.state, State::Fresh) {
                    self.state = State::Ready;
                }
                self.say(Said::Reset.reply());
            }
            Request::Noop { .. } => self.say(Said::Ok.reply()),
            Request::Quit => {
                self.say(Said::Bye.reply());
                return Some(End::Quit);
            }
            Request::Help { .. } => self.say(Said::Help.reply()),
            Request::Vrfy { .. } | Request::Expn { .. } => self.refuse(Said::NoVrfy),
            other => self.refuse(Said::NotImplemented(other.name())),
        }
        None
    }

    fn mail(&mut self, from: String, size: usize) {
        match self.state {
            State::Fresh => return self.refuse(Said::LhloFirst),
            State::Mail { .. } | State::Rcpt { .. } => return self.refuse(Said::NestedMail),
            State::Ready => {}
        }
        // A new transaction, a new correlation id.
        self.txn = new_id();
        if size > self.config.limits.max_message_size {
            return self.refuse(Said::TooBig);
        }
        // Liberal: a long (BATV, SRS) or quoted local part is a real person's, and refusing it
        // bounces their post. Nothing answers this sender unless it is strictly valid.
        let from = match EnvelopeSender::parse(&from) {
            Ok(from) => from,
            Err(e) => return self.refuse(Said::BadSender(&e)),
        };
        // A transaction sees one consistent set of lists, even if a reload happens meanwhile.
        self.registry = self.backend.registry();
        self.state = State::Mail { from };
        self.say(Said::SenderOk.reply());
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
                return self.refuse(Said::MailFirst);
            }
        };
        let reply = if rcpts.len() >= self.config.limits.max_recipients {
            Err(Said::TooManyRecipients.reply())
        } else {
            match route::route(&self.registry, &to) {
                Route::Unknown => Err(Said::NoSuchList(&to).reply()),
                Route::Disabled { list } => Err(reply_for(&PostError::ListDisabled(list))),
                Route::List(list, role) => {
                    rcpts.push((list, role));
                    Ok(Said::RecipientOk(&to).reply())
                }
            }
        };
        match reply {
            Ok(ok) => self.say(ok),
            Err(no) => {
                refused += 1;
                let no = no.with_id(&self.txn);
                tracing::info!(session = self.id, id = %self.txn, rcpt = %to, reply = %no, "recipient refused");
                self.say(no);
            }
        }
        self.state = State::Rcpt {
            from,
            rcpts,
            refused,
        };
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
                self.say(Said::StartData.reply());
            }
            State::Rcpt { .. } | State::Mail { .. } => self.refuse(Said::NoValidRecipients),
            _ => self.refuse(Said::MailAndRcptFirst),
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
            let reply = over.said().reply().with_id(&self.txn);
            tracing::info!(session = self.id, id = %self.txn, sender = %from, limit = ?over, reply = %reply, "message over a limit refused");
            for _ in &rcpts {
                self.say(reply.clone());
            }
            return;
        }
        let delivery = Arc::new(Delivery {
            session: self.id,
            id: self.txn.clone(),
            sender: from,
            raw: Arc::new(message),
        });
        // Each distinct (list, role) is handled once, concurrently with the others: `dev@`,
        // `DEV@` and `dev+x@` in one transaction are one post, and each of them gets its
        // reply. Replies are written in RCPT order as soon as each one and all before it are
        // known.
        // A map: the client chooses up to `limits.max_recipients` recipients.
        let mut handled: std::collections::HashMap<(String, Role), usize> =
            std::collections::HashMap::with_capacity(rcpts.len());
        let mut work = Vec::with_capacity(rcpts.len());
        for (i, (list, role)) in rcpts.into_iter().enumerate() {
            let key = (list.key(), role.clone());
            if let Some(first) = handled.get(&key) {
                work.push(Work::SameAs(*first));
                continue;
            }
            handled.insert(key, i);
            let (backend, delivery) = (self.backend.clone(), delivery.clone());
            work.push(Work::Task(tokio::spawn(
                backend.deliver(delivery, list, role),
            )));
        }
        let mut replies: Vec<Reply> = Vec::with_capacity(work.len());
        for w in work {
            let reply = match w {
                Work::Task(h) => match h.await {
                    Ok(Ok(outcome)) => for_outcome(&outcome),
                    // The handler logged the error, with the id.
                    Ok(Err(e)) => reply_for(&e).with_id(&self.txn),
                    Err(e) => {
                        tracing::error!(session = self.id, id = %self.txn, error = %e, "delivery task failed");
                        Said::Internal.reply().with_id(&self.txn)
                    }
                },
                Work::SameAs(first) => replies
                    .get(first)
                    .cloned()
                    .unwrap_or_else(|| Said::Internal.reply().with_id(&self.txn)),
            };
            replies.push(reply.clone());
            self.say(reply);
            let _ = self.flush().await;
        }
    }

    /// Say a reply that needs no log line of its own (positive, or logged by the caller).
    fn say(&mut self, reply: Reply) {
        self.out.extend_from_slice(reply.to_line().as_bytes());
    }

    /// Refuse something the client did: the reply carries the correlation id, and one log line
    /// says what was refused.
    fn refuse(&mut self, said: Said<'_>) {
        let reply = said.reply().with_id(&self.txn);
        tracing::info!(session = self.id, id = %self.txn, reply = %reply, "refused");
        self.say(reply);
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
