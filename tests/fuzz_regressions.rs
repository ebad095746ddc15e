//! Regression tests for the fuzz targets (`fuzz/README.md`). The targets' checks live in
//! `fuzz/src/lib.rs`, included here as `checks`, so every input below goes through exactly the
//! public listkeeper functions and properties that the fuzzer ran.
//!
//! - every seed of `fuzz/corpus/TARGET/` is replayed, so the properties also hold under plain
//!   `cargo test`, without cargo-fuzz;
//! - every crasher a target found is a test of its own, named after the target.

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::path::Path;

/// Feed every seed of `fuzz/corpus/TARGET` to `check`; on a panic, name the seed.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 5, "seeds missing in {}", dir.display());
    for seed in seeds {
        let data = std::fs::read(&seed).expect("read seed");
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("fuzz target {target} fails on its seed {}", seed.display());
        }
    }
}

#[test]
fn lmtp_session_seeds() {
    replay("lmtp_session", checks::lmtp_session);
}

#[test]
fn decorate_seeds() {
    replay("decorate", checks::decorate);
}

#[test]
fn commands_seeds() {
    replay("commands", checks::commands);
}

#[test]
fn bounce_seeds() {
    replay("bounce", checks::bounce);
}

#[test]
fn list_file_seeds() {
    replay("list_file", checks::list_file);
}

#[test]
fn mime_depth_seeds() {
    replay("mime_depth", checks::mime_depth);
}

// Crashers. Each input is the one `cargo fuzz tmin` left; fuzz/README.md ("Findings") has the
// stack traces.

/// mail-parser 0.11.9 `MessageParser::parse` hits its `debug_assert!(false, "Invalid part ID,
/// could not find multipart.")` (parsers/message.rs:485) on a multipart holding a
/// message/rfc822 part with no header. decorate::prepare parses the post for the footer plan
/// (pipeline/decorate/mod.rs:141). Release builds compile the check out and decorate this fine;
/// `Cargo.toml` turns mail-parser's debug assertions off in dev builds too
/// (`[profile.dev.package.mail-parser]`), and this test fails if that goes.
#[test]
fn decorate_mail_parser_debug_assert() {
    checks::decorate(
        b"From:IME\nContent-Type:multipart/e; boundary=\"fwd-boundary-77\"\n\n--fwd-boundary-77\nCo\nContent-Type: message/rfc822\n\ns\nContent-Type: message/rfc822\n\n\nFrm:7\n--fwd-boundary-77--\n",
    );
}

/// The same input, and the same mail-parser debug_assert, through bounce::parse
/// (bounce/mod.rs:83).
#[test]
fn bounce_mail_parser_debug_assert() {
    checks::bounce(b"From:IME\nContent-Type:multipart/e; boundary=\"fwd-boundary-77\"\n\n--fwd-boundary-77\nCo\nContent-Type: message/rfc822\n\ns\nContent-Type: message/rfc822\n\n\nFrm:7\n--fwd-boundary-77--\n");
}

/// A MAIL parameter smtp-proto does not know is echoed into the 555 reply, and the invalid
/// UTF-8 in it arrives as U+FFFD: `555 5.5.4 unsupported parameter J\u{fffd}` is not a reply
/// line (RFC 5321 4.2: printable US-ASCII). lmtp/session.rs `protocol_error`; `Reply::new`
/// only replaces CR and LF.
#[test]
fn lmtp_session_reply_echoes_non_ascii_parameter() {
    checks::lmtp_session(b"MAIL FROM:<>j\xb7\n");
}

/// The same through RCPT: an unknown recipient is echoed into the 550 reply
/// (lmtp/session.rs `rcpt`, `<{to}>: no such list address here`).
#[test]
fn lmtp_session_reply_echoes_non_ascii_recipient() {
    checks::lmtp_session(b"LHLO x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<x@example.org\xff>\r\n");
}
