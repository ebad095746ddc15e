//! Fuzz target `mime_depth`: the checks are in `fuzz/src/lib.rs` (shared with
//! `tests/fuzz_regressions.rs`), so a crasher replays in `cargo test` exactly as here.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| listkeeper_fuzz::mime_depth(data));
