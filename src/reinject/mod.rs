//! Re-injection.
