//! Re-injection into the MTA: the SMTP client and the pool of parallel connections.

pub mod client;
pub mod pool;

pub use client::{MtaReply, RcptStatus, TxError, Wire};
pub use pool::Pool;
