//! Golden tests for bounce parsing. Every `tests/fixtures/bounces/NAME.eml` is parsed with LF
//! and with CRLF line ends (both must agree), and the result, one line per outcome, is compared
//! with `NAME.expected`:
//!
//! ```text
//! failed hard bob@example.com 5.1.1 | 550 5.1.1 <bob@example.com>: Recipient address rejected
//! failed soft judy@example.info - | retry timeout exceeded
//! delayed | autoreply | unrecognized
//! ```
//!
//! (`-` is an unknown status; the diagnostic after ` | ` is left out when there is none.) On a
//! mismatch the result is written to `NAME.actual` and the test fails naming it.

use std::fs;
use std::path::{Path, PathBuf};

use listkeeper::address::Address;
use listkeeper::bounce::{parse, Failure, Report, MAX_DIAGNOSTIC};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bounces")
}

fn fixtures() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(fixture_dir())
        .expect("fixture directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 20, "fixtures missing in {:?}", fixture_dir());
    paths
}

fn name(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .expect("file name")
        .to_string()
}

fn to_lf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, &b) in raw.iter().enumerate() {
        if !(b == b'\r' && raw.get(i + 1) == Some(&b'\n')) {
            out.push(b);
        }
    }
    out
}

fn to_crlf(lf: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(lf.len() + lf.len() / 16);
    for &b in lf {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

fn render(report: &Report) -> String {
    match report {
        Report::Failed(list) => list
            .iter()
            .map(|b| {
                let kind = match b.failure {
                    Failure::Hard => "hard",
                    Failure::Soft => "soft",
                };
                let status = b.status.as_deref().unwrap_or("-");
                let mut line = format!("failed {kind} {} {status}", b.address);
                if let Some(d) = &b.diagnostic {
                    line.push_str(" | ");
                    line.push_str(d);
                }
                line
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Report::Delayed => "delayed".into(),
        Report::AutoReply => "autoreply".into(),
        Report::Unattributed(Failure::Hard) => "unattributed hard".into(),
        Report::Unattributed(Failure::Soft) => "unattributed soft".into(),
        Report::Unrecognized => "unrecognized".into(),
    }
}

/// The report for a fixture, checked to be the same with LF and CRLF line ends.
fn report_of(name: &str, raw: &[u8]) -> Report {
    let lf = to_lf(raw);
    let from_lf = parse(&lf);
    let from_crlf = parse(&to_crlf(&lf));
    assert_eq!(from_lf, from_crlf, "{name}: LF and CRLF input differ");
    from_lf
}

#[test]
fn fixtures_match_expected() {
    let mut failures = Vec::new();
    for path in fixtures() {
        let name = name(&path);
        let report = report_of(&name, &fs::read(&path).expect("read fixture"));
        check_invariants(&name, &report);
        let actual = format!("{}\n", render(&report));
        let expected = fs::read_to_string(path.with_extension("expected"))
            .unwrap_or_else(|_| panic!("{name}: missing {name}.expected"));
        let actual_path = path.with_extension("actual");
        if expected == actual {
            let _ = fs::remove_file(&actual_path);
        } else {
            fs::write(&actual_path, actual).expect("write .actual");
            failures.push(actual_path.display().to_string());
        }
    }
    assert!(failures.is_empty(), "reports differ, see: {failures:#?}");
}

/// Hides the delivery-status parts, leaving only what people read.
fn without_dsn(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    for line in raw.split_inclusive(|&b| b == b'\n') {
        let lower = line.to_ascii_lowercase();
        let is = |s: &[u8]| lower.windows(s.len()).any(|w| w == s);
        if lower.starts_with(b"content-type:") && is(b"message/") && is(b"delivery-status") {
            out.extend_from_slice(b"Content-Type: application/octet-stream\n");
        } else {
            out.extend_from_slice(line);
        }
    }
    out
}

/// Where an MTA sends both a DSN and prose, reading only the prose gives the same recipients,
/// kinds and status codes (the diagnostics differ in wording).
#[test]
fn dsn_and_prose_agree() {
    let strip = |s: String| {
        s.lines()
            .map(|l| l.split(" | ").next().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    let mut compared = 0;
    for path in fixtures() {
        let raw = fs::read(&path).expect("read fixture");
        let hidden = without_dsn(&raw);
        if hidden == raw {
            continue;
        }
        let name = name(&path);
        compared += 1;
        let with = strip(render(&report_of(&name, &raw)));
        let without = strip(render(&report_of(&name, &hidden)));
        assert_eq!(with, without, "{name}: prose and DSN disagree");
    }
    assert!(compared >= 10, "only {compared} fixtures carry a DSN");
}

/// What every report promises, whatever the input.
fn check_invariants(name: &str, report: &Report) {
    let Report::Failed(list) = report else {
        return;
    };
    assert!(!list.is_empty(), "{name}: Failed without recipients");
    for (i, b) in list.iter().enumerate() {
        let parsed = Address::parse(&b.address).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed.key(), b.address, "{name}: address not a key");
        assert!(
            list.iter().skip(i + 1).all(|o| o.address != b.address),
            "{name}: {} listed twice",
            b.address
        );
        if let Some(s) = &b.status {
            let parts: Vec<&str> = s.split('.').collect();
            assert!(
                parts.len() == 3
                    && matches!(parts[0], "4" | "5")
                    && parts.iter().all(|p| !p.is_empty() && p.len() <= 3),
                "{name}: bad status {s:?}"
            );
            // The class decides, except that a full mailbox (5.2.2) is soft.
            let class = if b.failure == Failure::Hard || s == "5.2.2" {
                "5"
            } else {
                "4"
            };
            assert_eq!(parts[0], class, "{name}: status {s} but {:?}", b.failure);
            assert!(
                s != "5.2.2" || b.failure == Failure::Soft,
                "{name}: a full mailbox is soft"
            );
        }
        if let Some(d) = &b.diagnostic {
            assert!(
                !d.is_empty() && d.chars().count() <= MAX_DIAGNOSTIC,
                "{name}: {d:?}"
            );
            assert!(!d.chars().any(char::is_control), "{name}: control in {d:?}");
            assert_eq!(d.trim(), d, "{name}: untrimmed {d:?}");
        }
    }
}

#[test]
fn mutated_fixtures_never_panic() {
    let inputs: Vec<Vec<u8>> = fixtures()
        .iter()
        .map(|p| fs::read(p).expect("read"))
        .collect();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let bytes = b"\r\n-=:;\"<>()#.@5 \t\x00\xc3\xa9\xffA";
    let mut failed = 0;
    for round in 0..4000 {
        let mut raw = inputs[round % inputs.len()].clone();
        match next() % 4 {
            0 => raw.truncate((next() as usize) % (raw.len() + 1)),
            1 => {
                // Drop a run of lines.
                let starts: Vec<usize> = std::iter::once(0)
                    .chain(
                        raw.iter()
                            .enumerate()
                            .filter(|(_, &b)| b == b'\n')
                            .map(|(i, _)| i + 1),
                    )
                    .collect();
                let at = starts[(next() as usize) % starts.len()];
                let count = 1 + (next() as usize) % 6;
                let end = starts
                    .iter()
                    .copied()
                    .filter(|&s| s > at)
                    .nth(count - 1)
                    .unwrap_or(raw.len());
                raw.drain(at..end);
            }
            _ => {
                for _ in 0..(1 + next() % 12) {
                    let pos = (next() as usize) % (raw.len() + 1);
                    let b = bytes[(next() as usize) % bytes.len()];
                    match next() % 4 {
                        0 => raw.insert(pos, b),
                        1 if pos < raw.len() => drop(raw.remove(pos)),
                        2 if pos < raw.len() => raw[pos] ^= 1 << (next() % 8),
                        _ if pos < raw.len() => raw[pos] = b,
                        _ => {}
                    }
                }
            }
        }
        let report = parse(&raw);
        check_invariants(&format!("round {round}"), &report);
        if matches!(report, Report::Failed(_)) {
            failed += 1;
        }
    }
    // Most mutations leave the failure readable: the loop exercised the deep paths.
    assert!(
        failed > 1500,
        "too few mutations still parsed as failures: {failed}"
    );
}

#[test]
fn hostile_shapes_are_bounded() {
    // Many tiny parts, deep nesting, endless lines and endless headers: each returns.
    let mut many = String::from("Content-Type: multipart/report; boundary=b\n\n");
    for _ in 0..20_000 {
        many.push_str("--b\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822; a@b.example\nAction: failed\n");
    }
    assert!(matches!(parse(many.as_bytes()), Report::Failed(l) if l.len() == 1));

    let mut deep = String::new();
    for i in 0..500 {
        deep.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n"
        ));
    }
    let _ = parse(deep.as_bytes());

    let long_line = format!(
        "Subject: x\n\n<{}@example.com>: {}\n",
        "a".repeat(60),
        "x".repeat(5_000_000)
    );
    let _ = parse(long_line.as_bytes());

    let endless = "X-Junk: y\n".repeat(1_000_000);
    assert_eq!(parse(endless.as_bytes()), Report::Unrecognized);

    // A recipient past the line limit is not read.
    let mut late = String::from(
        "Subject: failure notice\n\nHi. This is the qmail-send program at mail.example.net.\n",
    );
    late.push_str(&"padding\n".repeat(3000));
    late.push_str("\n<kate@example.net>:\nSorry, no mailbox here by that name. (#5.1.1)\n");
    assert_eq!(parse(late.as_bytes()), Report::Unrecognized);
}
