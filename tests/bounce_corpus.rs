//! The bounce corpus: `tests/fixtures/bounce-corpus/FAMILY/NAME.eml`, one directory per mailer
//! family, each message written from the public description of that mailer's wording (RFC
//! examples, the templates in the mailers' sources, their documentation). Each `NAME.expected`
//! holds one line per outcome, in any order:
//!
//! ```text
//! failed hard bob@example.com      a failed recipient and its kind
//! unattributed soft                clearly a bounce, but no address could be read
//! delayed | autoreply | unrecognized
//! ```
//!
//! Only the address and the kind are compared (status and wording are the golden fixtures'
//! business, `tests/bounces.rs`). A message whose `Return-Path` is `<>` arrived with the null
//! envelope sender, as real bounces do. The test prints recall per family (expected outcomes
//! found), and fails on any difference: a missed outcome, a wrong kind, and above all an
//! address blamed that the expected result does not name.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use listkeeper::bounce::{parse_with, Envelope, Failure, Report};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bounce-corpus")
}

fn kind(f: Failure) -> &'static str {
    match f {
        Failure::Hard => "hard",
        Failure::Soft => "soft",
    }
}

fn outcomes(report: &Report) -> BTreeSet<String> {
    match report {
        Report::Failed(list) => list
            .iter()
            .map(|b| format!("failed {} {}", kind(b.failure), b.address))
            .collect(),
        Report::Unattributed(f) => [format!("unattributed {}", kind(*f))].into(),
        Report::Delayed => ["delayed".to_string()].into(),
        Report::AutoReply => ["autoreply".to_string()].into(),
        Report::Unrecognized => ["unrecognized".to_string()].into(),
    }
}

fn null_sender(raw: &[u8]) -> bool {
    let text = String::from_utf8_lossy(raw);
    text.lines()
        .take_while(|l| !l.trim().is_empty())
        .any(|l| l.to_ascii_lowercase().replace(' ', "") == "return-path:<>")
}

#[derive(Default)]
struct Tally {
    messages: usize,
    expected: usize,
    found: usize,
    wrong_addresses: usize,
}

#[test]
fn corpus_recall_per_family() {
    let mut families: BTreeMap<String, Tally> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut dirs: Vec<PathBuf> = fs::read_dir(corpus_dir())
        .expect("corpus directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let family = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("family name")
            .to_string();
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)
            .expect("family directory")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        for path in files {
            let raw = fs::read(&path).expect("read message");
            let envelope = Envelope {
                null_sender: null_sender(&raw),
            };
            let expected: BTreeSet<String> = fs::read_to_string(path.with_extension("expected"))
                .unwrap_or_else(|_| panic!("{}: missing .expected", path.display()))
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect();
            let got = outcomes(&parse_with(&raw, envelope));
            let crlf: Vec<u8> = String::from_utf8_lossy(&raw)
                .replace('\n', "\r\n")
                .into_bytes();
            assert_eq!(
                got,
                outcomes(&parse_with(&crlf, envelope)),
                "{}: LF and CRLF differ",
                path.display()
            );
            let tally = families.entry(family.clone()).or_default();
            tally.messages += 1;
            tally.expected += expected.len();
            tally.found += expected.intersection(&got).count();
            let expected_addresses: BTreeSet<&str> = expected
                .iter()
                .filter_map(|l| l.strip_prefix("failed "))
                .filter_map(|l| l.split_once(' ').map(|(_, a)| a))
                .collect();
            let blamed = got
                .iter()
                .filter_map(|l| l.strip_prefix("failed "))
                .filter_map(|l| l.split_once(' ').map(|(_, a)| a))
                .filter(|a| !expected_addresses.contains(a))
                .count();
            tally.wrong_addresses += blamed;
            if got != expected {
                problems.push(format!(
                    "{family}/{}: expected {expected:?}, got {got:?}",
                    path.file_name().and_then(|n| n.to_str()).unwrap_or("?")
                ));
            }
        }
    }
    let mut table = String::from(
        "| family | messages | expected outcomes | found | recall | wrong addresses |\n|---|---:|---:|---:|---:|---:|\n",
    );
    let mut total = Tally::default();
    for (family, t) in &families {
        table.push_str(&format!(
            "| {family} | {} | {} | {} | {:.0}% | {} |\n",
            t.messages,
            t.expected,
            t.found,
            100.0 * t.found as f64 / t.expected.max(1) as f64,
            t.wrong_addresses
        ));
        total.messages += t.messages;
        total.expected += t.expected;
        total.found += t.found;
        total.wrong_addresses += t.wrong_addresses;
    }
    table.push_str(&format!(
        "| **all {} families** | {} | {} | {} | {:.0}% | {} |\n",
        families.len(),
        total.messages,
        total.expected,
        total.found,
        100.0 * total.found as f64 / total.expected.max(1) as f64,
        total.wrong_addresses
    ));
    println!("{table}");
    assert!(families.len() >= 15, "corpus families missing");
    assert!(problems.is_empty(), "{table}\n{problems:#?}");
}
