//! LMTP.
