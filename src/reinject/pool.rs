//! The pool of parallel infeeds: `connections` persistent SMTP connections to the MTA, each
//! owned by one worker task that takes transactions from a shared queue.
//!
//! Connections are opened on first use, reused across posts, dropped when the MTA closes them
//! while idle (watched by a read, not a timer), and reopened with a growing backoff after a
//! failure: while a worker is backing off it fails jobs at once, so the LMTP client gets its
//! 451 quickly and the MTA keeps the message.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Mutex};
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
    /// Recipients per transaction, from the config.
    pub batch_size: usize,
    /// Number of connections (and so the useful parallelism of one post).
    pub connections: usize,
}

impl Pool {
    /// Start the workers. Nothing connects until the first job.
    pub fn start(cfg: &ReinjectConfig) -> Pool {
        let (tx, rx) = mpsc::channel::<Job>(cfg.connections);
        let rx = Arc::new(Mutex::new(rx));
        for id in 0..cfg.connections {
            let worker = Worker {
                id,
                target: cfg.target.clone(),
                helo: cfg.helo_name.clone(),
                timeout: cfg.timeout,
                rx: rx.clone(),
                conn: None,
                backoff: BACKOFF_MIN,
                retry_at: None,
            };
            tokio::spawn(worker.run());
        }
        Pool {
            tx,
            batch_size: cfg.max_recipients_per_transaction,
            connections: cfg.connections,
        }
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
            return Err(TxError::Temporary(
                "the re-injection pool has stopped".into(),
            ));
        }
        rx.await
            .unwrap_or_else(|_| Err(TxError::Temporary("the re-injection worker stopped".into())))
    }
}

struct Worker {
    id: usize,
    target: String,
    helo: String,
    timeout: Duration,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    conn: Option<Client<TcpStream>>,
    backoff: Duration,
    retry_at: Option<Instant>,
}

impl Worker {
    async fn run(mut self) {
        let rx = self.rx.clone();
        loop {
            let job = match self.conn.as_mut() {
                Some(conn) => tokio::select! {
                    job = async { rx.lock().await.recv().await } => job,
                    _ = conn.closed() => {
                        tracing::debug!(worker = self.id, "the MTA closed an idle re-injection connection");
                        self.conn = None;
                        continue;
                    }
                },
                None => rx.lock().await.recv().await,
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
        Err(TxError::Temporary(
            "the MTA keeps closing the connection".into(),
        ))
    }

    async fn connect(&mut self) -> Result<&mut Client<TcpStream>, TxError> {
        if self.conn.is_none() {
            if let Some(at) = self.retry_at {
                if Instant::now() < at {
                    return Err(TxError::Temporary(format!(
                        "the MTA at {} is unreachable; retrying shortly",
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
                    return Err(match e {
                        TxError::Connection { reason, .. } => TxError::Temporary(reason),
                        e => e,
                    });
                }
            }
        }
        self.conn
            .as_mut()
            .ok_or_else(|| TxError::Temporary("no connection".into()))
    }

    async fn open(&self) -> Result<Client<TcpStream>, TxError> {
        let connect = TcpStream::connect(&self.target);
        let stream = match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(TxError::Temporary(format!(
                    "connect to {}: {e}",
                    self.target
                )))
            }
            Err(_) => {
                return Err(TxError::Temporary(format!(
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
