//! The LMTP server (RFC 2033): replies, the session state machine, the listeners.

pub mod listener;
pub mod parts;
pub mod reply;
pub mod session;

pub use reply::Reply;
pub use session::Session;
