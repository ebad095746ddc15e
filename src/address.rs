//! Strict parsing and normalisation of mail addresses.
