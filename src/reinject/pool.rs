//! The pool of parallel infeeds: `connections` persistent SMTP connections to the MTA, each
//! owned by one worker task that takes transactions from a shared queue.
//!
//! Connections are opened on first use, reused across posts, dropped when the MTA closes them
//! while idle (watched by a read, not a timer), and reopened with a growing backoff after a
//! failure: while a worker is backing off it fails jobs at once, so the LMTP client gets its
//! 451 quickly and the MTA keeps the message.
//!
//! [`Pool::apply`] changes the parallelism and batch size of a running pool (a reload of the
//! global file): new workers start, surplus ones finish their transaction and leave.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch, Mutex};
use tokio::time::Instant;

use super::client::{Client, RcptStatus, TxError, Wire};
use crate::config::ReinjectConfig;

/// First and largest pause before reconnecting after a failure.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// One transaction for the pool.
pub struct Job {
    /// Envelope sender.
    pub from: String,
    /// Envelope recipients (at most `max_recipients_per_transaction`).
    pub rcpts: Vec<String>,
    /// The message.
    pub wire: Arc<Wire>,
    reply: oneshot::Sender<Result<Vec<RcptStatus>, TxError>>,
}

/// Handle to the pool; clone freely.
#[derive(Clone)]
pub struct Pool {
    tx: mpsc::Sender<Job>,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    batch_size: Arc<AtomicUsize>,
    size: Arc<watch::Sender<usize>>,
    spawned: Arc<std::sync::Mutex<usize>>,
    target: String,
    helo: String,
    timeout: Duration,
}

impl Pool {
    /// Start the workers. Nothing connects until the first job.
    pub fn start(cfg: &ReinjectConfig) -> Pool {
        // The queue holds at most a few jobs per connection: back-pressure reaches the fan-out.
        let (tx, rx) = mpsc::channel::<Job>(cfg.connections.max(1) * 2);
        let (size, _) = watch::channel(0usize);
        let pool = Pool {
            tx,
            rx: Arc::new(Mutex::new(rx)),
            batch_size: Arc::new(AtomicUsize::new(cfg.max_recipients_per_transaction)),
            size: Arc::new(size),
            spawned: Arc::new(std::sync::Mutex::new(0)),
            target: cfg.target.clone(),
            helo: cfg.helo_name.clone(),
            timeout: cfg.timeout,
        };
        pool.resize(cfg.connections);
        pool
    }

    /// Recipients per transaction.
    pub fn batch_size(&self) -> usize {
        self.batch_size.load(Ordering::Relaxed).max(1)
    }

    /// Connections (the useful parallelism of one post).
    pub fn connections(&self) -> usize {
        (*self.size.borrow()).max(1)
    }

    /// Apply the live-changeable settings of a reloaded `[reinject]`: connections and batch
    /// size. The others need a restart, which the settings' declarations decide
    /// (`Config::reloaded` keeps their running values).
    pub fn apply(&self, cfg: &ReinjectConfig) {
        self.batch_size
            .store(cfg.max_recipients_per_transaction, Ordering::Relaxed);
        self.resize(cfg.connections);
    }

    /// Run `n` workers: start the missing ones; surplus ones leave after their transaction.
    fn resize(&self, n: usize) {
        let n = n.max(1);
        let Ok(mut spawned) = self.spawned.lock() else {
            return;
        };
        self.size.send_replace(n);
        for id in *spawned..n {
            let worker = Worker {
                id,
                target: self.target.clone(),
                helo: self.helo.clone(),
                timeout: self.timeout,
                rx: self.rx.clone(),
                size: self.size.subscribe(),
                conn: None,
                backoff: BACKOFF_MIN,
                retry_at: None,
            };
            tokio::spawn(worker.run());
        }
        *spawned = n;
    }

    /// Send one transaction and wait for its outcome.
    pub async fn send(
        &self,
        from: String,
        rcpts: Vec<String>,
        wire: Arc<Wire>,
    ) -> Result<Vec<RcptStatus>, TxError> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            from,
            rcpts,
            wire,
            reply,
        };
        if self.tx.send(job).await.is_err() {
            return Err(TxError::Unreachable(
                "the re-injection pool has stopped".into(),
            ));
        }
        rx.await.unwrap_or_else(|_| {
            Err(TxError::Unreachable(
                "the re-injection worker stopped".into(),
            ))
        })
    }
}

/// Connect to the re-injection target once, read its greeting, say EHLO and QUIT: whether the
/// MTA's listener answers. The server checks this at start, so an operator learns of a wrong
/// `reinject.target` before the first post is deferred.
pub async fn probe(cfg: &ReinjectConfig) -> Result<(), TxError> {
    let connect = TcpStream::connect(&cfg.target);
    let stream = match tokio::time::timeout(cfg.timeout, connect).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(TxError::Unreachable(format!(
                "connect to {}: {e}",
                cfg.target
            )))
        }
        Err(_) => {
            return Err(TxError::Unreachable(format!(
                "connect to {}: timed out",
                cfg.target
            )))
        }
    };
    let _ = stream.set_nodelay(true);
    Client::handshake(stream, &cfg.helo_name, cfg.timeout)
        .await?
        .quit()
        .await;
    Ok(())
}

struct Worker {
    id: usize,
    target: String,
    helo: String,
    timeout: Duration,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    size: watch::Receiver<usize>,
    conn: Option<Client<TcpStream>>,
    backoff: Duration,
    retry_at: Option<Instant>,
}

impl Worker {
    async fn run(mut self) {
        let rx = self.rx.clone();
        let mut resizable = true;
        loop {
            if self.id >= *self.size.borrow() {
                tracing::debug!(
                    worker = self.id,
                    "re-injection worker leaves (fewer connections configured)"
                );
                if let Some(conn) = self.conn.take() {
                    conn.quit().await;
                }
                return;
            }
            let has_conn = self.conn.is_some();
            let job = tokio::select! {
                job = async { rx.lock().await.recv().await } => job,
                _ = async {
                    match self.conn.as_mut() {
                        Some(c) => c.closed().await,
                        None => std::future::pending().await,
                    }
                }, if has_conn => {
                    tracing::debug!(worker = self.id, "the MTA closed an idle re-injection connection");
                    self.conn = None;
                    continue;
                }
                changed = self.size.changed(), if resizable => {
                    // The pool's handle is gone when this fails: stop watching for resizes.
                    resizable = changed.is_ok();
                    continue;
                }
            };
            let Some(job) = job else {
                if let Some(conn) = self.conn.take() {
                    conn.quit().await;
                }
                return;
            };
            let result = self.transact(&job).await;
            let _ = job.reply.send(result);
        }
    }

    async fn transact(&mut self, job: &Job) -> Result<Vec<RcptStatus>, TxError> {
        // A reused connection may have died since; if it fails before the message was sent,
        // nothing reached the MTA and one retry on a fresh connection is safe.
        for attempt in 0..2 {
            let reused = self.conn.is_some();
            let conn = self.connect().await?;
            match conn.send_mail(&job.from, &job.rcpts, &job.wire).await {
                Err(TxError::Connection {
                    reason,
                    data_sent: false,
                }) if reused && attempt == 0 => {
                    tracing::debug!(worker = self.id, %reason, "reused connection failed, reconnecting");
                    self.conn = None;
                }
                Err(e @ TxError::Connection { .. }) => {
                    self.conn = None;
                    return Err(e);
                }
                other => return other,
            }
        }
        Err(TxError::Connection {
            reason: "the MTA keeps closing the connection".into(),
            data_sent: false,
        })
    }

    async fn connect(&mut self) -> Result<&mut Client<TcpStream>, TxError> {
        if self.conn.is_none() {
            if let Some(at) = self.retry_at {
                if Instant::now() < at {
                    return Err(TxError::Unreachable(format!(
                        "the MTA at {} could not be reached; retrying shortly",
                        self.target
                    )));
                }
            }
            match self.open().await {
                Ok(c) => {
                    self.backoff = BACKOFF_MIN;
                    self.retry_at = None;
                    self.conn = Some(c);
                }
                Err(e) => {
                    tracing::warn!(worker = self.id, target = %self.target, error = %e, backoff_ms = self.backoff.as_millis() as u64, "cannot connect to the MTA");
                    self.retry_at = Some(Instant::now() + self.backoff);
                    self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                    // Whatever went wrong while connecting (a refused connection, a broken
                    // greeting, a 4xx/5xx greeting or HELO), no transaction was started.
                    return Err(match e {
                        TxError::Connection { reason, .. } => TxError::Unreachable(reason),
                        e => e,
                    });
                }
            }
        }
        self.conn
            .as_mut()
            .ok_or_else(|| TxError::Unreachable("no connection".into()))
    }

    async fn open(&self) -> Result<Client<TcpStream>, TxError> {
        let connect = TcpStream::connect(&self.target);
        let stream = match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(TxError::Unreachable(format!(
                    "connect to {}: {e}",
                    self.target
                )))
            }
            Err(_) => {
                return Err(TxError::Unreachable(format!(
                    "connect to {}: timed out",
                    self.target
                )))
            }
        };
        // Without TCP_NODELAY a transaction written in pieces waits ~40 ms for Nagle.
        let _ = stream.set_nodelay(true);
        Client::handshake(stream, &self.helo, self.timeout).await
    }
}
