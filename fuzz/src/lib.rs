//! The checks behind the fuzz targets: one function per target, each feeding arbitrary bytes to
//! public functions of listkeeper and panicking when a property the docs promise does not hold.
//!
//! `fuzz/fuzz_targets/*.rs` call these; `tests/fuzz_regressions.rs` includes this same file
//! (`#[path]`), so a crasher replays under `cargo test` through exactly the code that found it.
//!
//! - [`lmtp_session`]: the bytes are what an LMTP client sends to a `Session`
//! - [`decorate`]: the bytes are a post handed to decoration
//! - [`commands`]: the bytes are the Subject and body of a mail to `NAME-request@`
//! - [`bounce`]: the bytes are a mail to `NAME-bounces@`, or a VERP extension
//! - [`list_file`]: the bytes are a list file (and a global file)
//! - [`mime_depth`]: the bytes are a message whose nesting is measured before parsing

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use listkeeper::address::Address;
use listkeeper::bounce::{self as bounces, Report, MAX_DIAGNOSTIC};
use listkeeper::config::{Config, ConfigError, ListConfig};
use listkeeper::pipeline::decorate::{self as deco, Decoration};
use listkeeper::requests::commands::{self, Command, QUOTE_MAX};
use mail_parser::{MessageParser, PartType};

/// The session refuses a message nested deeper than `limits.max_mime_depth` (default 50)
/// before any stage parses it; the targets that call a stage directly skip such input too.
fn past_session_depth(data: &[u8]) -> bool {
    listkeeper::mime::nesting_depth(data, 50).is_err()
}

// ---------------------------------------------------------------------------------------------
// lmtp_session

/// Lists of the fuzzed server: the three of `tests/common` plus one per pipeline branch the
/// others do not reach (content filtering, moderation, personalized VERP delivery, announce).
const LISTS: &[(&str, &str, &[&str])] = &[
    (
        "dev",
        "address = \"dev@example.org\"\ndisplay_name = \"Developers\"\nowners = [\"boss@owners.test\"]\n[posting]\npolicy = \"open\"\n[decoration]\nsubject_prefix = \"[dev]\"\nfooter = \"Developers list: {list_address}\"\n",
        &["a@members.test", "b@members.test", "c@members.test"],
    ),
    (
        "team",
        "address = \"team@example.org\"\nowners = [\"boss@owners.test\"]\n[posting]\npolicy = \"members\"\nnon_member_action = \"reject\"\n",
        &["m@members.test"],
    ),
    (
        "broken",
        "address = \"broken@example.org\"\nowners = [\"boss@owners.test\"]\ncolour = \"red\"\n",
        &[],
    ),
    (
        "filt",
        "address = \"filt@example.org\"\nowners = [\"boss@owners.test\"]\n[posting]\npolicy = \"open\"\nhold_from = [\"^.*@hold\\\\.test$\"]\nreject_from = [\"bad@x.test\"]\ndiscard_from = [\"spam@x.test\"]\n[content]\nmax_size = 2000\nmax_size_action = \"hold\"\nmax_recipients = 2\nmax_recipients_action = \"reject\"\ndrop_types = [\"image/*\", \"application/x-msdownload\"]\ncollapse_alternatives = true\nfiltered_empty_action = \"reject\"\nadministrivia = \"hold\"\nimplicit_destination = \"hold\"\nduplicate_days = 7\n[[rules]]\nheader = \"X-Spam-Flag\"\npattern = \"^YES\"\naction = \"discard\"\nreason = \"marked as spam\"\n[decoration]\nsubject_prefix = \"[filt]\"\nfooter = \"Filtered: {list_address}\"\n",
        &["a@members.test", "b@members.test"],
    ),
    (
        "mod",
        "address = \"mod@example.org\"\nowners = [\"boss@owners.test\"]\nmoderators = [\"mod1@owners.test\"]\n[posting]\npolicy = \"moderated\"\n[moderation]\nacknowledge = true\n[subscription]\npolicy = \"moderate\"\nroster = \"members\"\n",
        &["a@members.test"],
    ),
    (
        "p13n",
        "address = \"p13n@example.org\"\nowners = [\"boss@owners.test\"]\n[posting]\npolicy = \"open\"\n[delivery]\nmode = \"personalized\"\nverp = true\n[bounces]\nthreshold = 1.0\nprobe = true\n[decoration]\nfooter = \"Sent to {member_address}.\\nLeave: {unsubscribe_address}\"\n",
        &["a@members.test", "b@members.test"],
    ),
    (
        "ann",
        "address = \"ann@example.org\"\nowners = [\"boss@owners.test\"]\n[posting]\npolicy = \"announce\"\nallowed_posters = [\"editor@example.org\"]\nnon_member_action = \"reject\"\n",
        &["a@members.test"],
    ),
];

/// Built once per process: the config, the parsed lists and a store file with the members.
struct World {
    _dir: tempfile::TempDir,
    config: Arc<Config>,
    registry: Arc<listkeeper::registry::Registry>,
    /// Files of a freshly created store; each input gets its own copy of them.
    store_files: Vec<(std::ffi::OsString, Vec<u8>)>,
    scratch: PathBuf,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        // tmpfs when there is one: every input opens (and syncs) a store of its own.
        let scratch = Path::new("/dev/shm");
        let scratch = if scratch.is_dir() {
            scratch.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("listkeeper-fuzz-")
            .tempdir_in(&scratch)
            .expect("temp dir");
        let lists = dir.path().join("lists.d");
        std::fs::create_dir_all(&lists).expect("mkdir lists.d");
        for (name, text, _) in LISTS {
            std::fs::write(lists.join(format!("{name}.toml")), text).expect("write list");
        }
        // The re-injection target is a closed port: bound, then released at once.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let target = closed.local_addr().expect("addr").to_string();
        drop(closed);
        let text = format!(
            "[server]\nlmtp_listen = [\"unix:lmtp.sock\"]\ndata_dir = \"data\"\nlists_dir = \"lists.d\"\n\
             [reinject]\ntarget = \"{target}\"\nhelo_name = \"lk.test\"\ntimeout_secs = 1\nconnections = 1\n\
             [limits]\nmax_message_size = 4096\nmax_recipients = 3\nidle_timeout_secs = 1\n\
             [requests]\nmax_commands = 5\n[store]\ncache_size = 65536\n"
        );
        let path = dir.path().join("listkeeper.toml");
        let config = Config::parse(&path, &text).unwrap_or_else(|e| panic!("fuzz config: {e:?}"));
        let registry = listkeeper::registry::Registry::load(&lists, '+', None);
        let broken: Vec<String> = registry
            .errors()
            .iter()
            .filter(|e| !e.file.ends_with("broken.toml"))
            .map(|e| e.to_string())
            .collect();
        assert!(broken.is_empty(), "fuzz lists do not validate: {broken:#?}");

        let template = dir.path().join("store");
        {
            let store = listkeeper::store::Store::open(&template, 1 << 16).expect("store");
            for (name, _, members) in LISTS.iter().filter(|(_, _, m)| !m.is_empty()) {
                let addrs: Vec<Address> = members
                    .iter()
                    .map(|a| Address::parse(a).expect("member"))
                    .collect();
                store
                    .add_members(&format!("{name}@example.org"), &addrs)
                    .expect("add members");
            }
        }
        let store_files = std::fs::read_dir(&template)
            .expect("store dir")
            .map(|e| {
                let e = e.expect("entry");
                (e.file_name(), std::fs::read(e.path()).expect("read store"))
            })
            .collect();
        World {
            scratch: dir.path().to_path_buf(),
            config: Arc::new(config),
            registry: Arc::new(registry),
            store_files,
            _dir: dir,
        }
    })
}

/// How long a session may take after the client closed its side before it counts as hung.
const SESSION_DEADLINE: Duration = Duration::from_secs(30);

/// `data` is everything an LMTP client sends, written in one piece, then the client closes
/// its side. The session must end without a panic, and everything the server wrote must be
/// well-formed reply lines. With `LISTKEEPER_FUZZ_SHOW` set, the replies go to stderr.
pub fn lmtp_session(data: &[u8]) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let w = world();
    // The store refuses a directory or file other users may read: 0700 and 0600, as it
    // creates them itself.
    let store_dir = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(&w.scratch)
        .expect("store dir");
    for (name, bytes) in &w.store_files {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(store_dir.path().join(name))
            .and_then(|mut f| f.write_all(bytes))
            .expect("copy store");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let out = rt.block_on(async {
        let store = listkeeper::store::Store::open(store_dir.path(), 1 << 16).expect("store");
        let (registry_tx, registry) = tokio::sync::watch::channel(w.registry.clone());
        let ctx = Arc::new(listkeeper::context::Context {
            config: tokio::sync::watch::channel(w.config.clone()).1,
            registry,
            store,
            pool: listkeeper::reinject::Pool::start(&w.config.reinject),
            held_changed: tokio::sync::Notify::new(),
        });
        let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let (client, server) = tokio::io::duplex(1 << 16);
        let session = listkeeper::lmtp::Session::new(server, ctx, stop_rx);
        let (mut rd, mut wr) = tokio::io::split(client);
        let write = async move {
            // The server may hang up first (QUIT): a broken pipe is fine.
            let _ = wr.write_all(data).await;
            let _ = wr.shutdown().await;
        };
        let read = async move {
            let mut out = Vec::new();
            let _ = rd.read_to_end(&mut out).await;
            out
        };
        let all = async { tokio::join!(session.run(), write, read) };
        let (_end, (), out) = tokio::time::timeout(SESSION_DEADLINE, all)
            .await
            .unwrap_or_else(|_| panic!("the session did not end within {SESSION_DEADLINE:?}"));
        drop(registry_tx);
        out
    });
    drop(rt);
    if std::env::var_os("LISTKEEPER_FUZZ_SHOW").is_some() {
        eprintln!("{}", String::from_utf8_lossy(&out));
    }
    check_replies(&out);
}

/// Every line the server wrote is `DDD` + space or dash + printable text + CRLF (RFC 5321
/// 4.2), at most 512 octets with its CRLF (4.5.3.1.5), and the output ends with a line end.
fn check_replies(out: &[u8]) {
    assert!(
        out.is_empty() || out.ends_with(b"\r\n"),
        "the server's output does not end with CRLF: {:?}",
        String::from_utf8_lossy(out)
    );
    for line in out.split_inclusive(|&b| b == b'\n') {
        let shown = String::from_utf8_lossy(line);
        let body = line
            .strip_suffix(b"\r\n")
            .unwrap_or_else(|| panic!("reply line without CRLF: {shown:?}"));
        assert!(
            body.len() >= 3 && body[..3].iter().all(u8::is_ascii_digit),
            "reply line without a code: {shown:?}"
        );
        assert!(
            matches!(body.get(3), None | Some(b' ') | Some(b'-')),
            "reply code not followed by space or dash: {shown:?}"
        );
        assert!(
            body.iter()
                .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)),
            "reply line with a control or non-ASCII byte: {shown:?}"
        );
        assert!(line.len() <= 512, "reply line over 512 octets: {shown:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// decorate

fn decorations() -> &'static [Decoration; 3] {
    static D: OnceLock<[Decoration; 3]> = OnceLock::new();
    D.get_or_init(|| {
        let base = Decoration {
            list_id: "dev.example.org".into(),
            display_name: "Developers".into(),
            subject_prefix: Some("[dev]".into()),
            footer: Some(
                "Developers mailing list\ndev@example.org\nTo unsubscribe: dev-request@example.org"
                    .into(),
            ),
            post_address: "dev@example.org".into(),
            request_address: "dev-request@example.org".into(),
            subscribe_address: "dev-join@example.org".into(),
            unsubscribe_address: "dev-leave@example.org".into(),
            owner_address: "dev-owner@example.org".into(),
        };
        // Non-ASCII everywhere and a footer line too long to append unencoded.
        let wide = Decoration {
            display_name: "Entwickler – Ünïcødé".into(),
            subject_prefix: Some("[dév]".into()),
            footer: Some(format!(
                "Grüße von der Liste\r\n {}\n>quoted\nFrom here\n\n",
                "x".repeat(1000)
            )),
            ..base.clone()
        };
        // Only the list fields.
        let bare = Decoration {
            display_name: String::new(),
            subject_prefix: None,
            footer: None,
            ..base.clone()
        };
        [base, wide, bare]
    })
}

/// `data` is a post. Decoration must not panic; when it succeeds the output is CRLF
/// throughout, parses, is the same for the LF and the CRLF form of the input, and keeps every
/// leaf part of the input byte for byte (except the tail of a single body a footer was
/// appended to). Personalized rendering must parse too.
pub fn decorate(data: &[u8]) {
    if past_session_depth(data) {
        return;
    }
    let normalized = listkeeper::mime::normalize_line_endings(data);
    assert!(
        !has_bare_lf(&normalized),
        "normalize_line_endings left a bare LF"
    );
    assert!(
        matches!(
            listkeeper::mime::normalize_line_endings(&normalized),
            Cow::Borrowed(_)
        ),
        "normalize_line_endings is not idempotent"
    );
    let _ = deco::carries_list_id(data, "dev.example.org");
    let _ = deco::loop_reason(data, &decorations()[0]);
    let parser = MessageParser::default();
    for (i, d) in decorations().iter().enumerate() {
        let Ok(out) = deco::decorate(data, d) else {
            continue;
        };
        let from_crlf = deco::decorate(&normalized, d)
            .unwrap_or_else(|e| panic!("decoration {i}: LF input decorated, CRLF input: {e}"));
        assert!(
            out == from_crlf,
            "decoration {i}: LF and CRLF input give different output"
        );
        assert!(!has_bare_lf(&out), "decoration {i}: bare LF in the output");
        assert_original_kept(i, &normalized, &out);
        if i == 0 {
            let p = deco::prepare(data, d).expect("prepare after decorate succeeded");
            let member = p.render(
                Some("Sent to a@members.test\nLeave: dev-leave+t0k3n@example.org"),
                Some("dev-leave+t0k3n@example.org"),
            );
            assert!(
                parser.parse(&member).is_some(),
                "personalized rendering does not parse"
            );
        }
    }
}

fn has_bare_lf(b: &[u8]) -> bool {
    b.first() == Some(&b'\n') || b.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r')
}

/// The property of `tests/decorate.rs` (`assert_original_kept`): the output parses, and every
/// leaf part of the input is in the output byte for byte, except the tail of a single body the
/// footer was appended to (from the line holding its 4th-last non-blank byte: a padded base64
/// quantum is re-encoded, a quoted-printable soft break ended).
fn assert_original_kept(i: usize, input: &[u8], out: &[u8]) {
    let parser = MessageParser::default();
    assert!(
        parser.parse(out).is_some(),
        "decoration {i}: the output does not parse"
    );
    let Some(original) = parser.parse(input) else {
        return;
    };
    let single = !original.root_part().is_multipart();
    for (n, part) in original.parts.iter().enumerate() {
        if matches!(part.body, PartType::Multipart(_)) {
            continue;
        }
        let Some(bytes) = input.get(part.offset_body as usize..part.offset_end as usize) else {
            continue;
        };
        let bytes = if n == 0 && single {
            &bytes[..appendable_from(bytes)]
        } else {
            bytes
        };
        assert!(
            bytes.is_empty() || out.windows(bytes.len()).any(|w| w == bytes),
            "decoration {i}: the bytes of part {n} are not in the output"
        );
    }
}

/// Start of the line holding the 4th-last byte that is not whitespace.
fn appendable_from(body: &[u8]) -> usize {
    let fourth_last = body
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| !b.is_ascii_whitespace())
        .nth(3)
        .map_or(0, |(i, _)| i);
    body[..fourth_last]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1)
}

// ---------------------------------------------------------------------------------------------
// commands

/// `data` is `SUBJECT <0xff or LF> BODY` (no separator: no Subject, all body), each part taken
/// as UTF-8 (invalid sequences replaced). The parser must not panic and must keep its bounds.
pub fn commands(data: &[u8]) {
    let (subject, body) = match data.iter().position(|&b| b == 0xff || b == b'\n') {
        Some(p) => (
            Some(String::from_utf8_lossy(&data[..p])),
            String::from_utf8_lossy(&data[p + 1..]),
        ),
        None => (None, String::from_utf8_lossy(data)),
    };
    for max in [20, 2] {
        let parsed = commands::parse(subject.as_deref(), &body, max);
        assert!(
            parsed.lines.len() <= max,
            "{} lines returned with max_commands = {max}",
            parsed.lines.len()
        );
        for line in &parsed.lines {
            assert!(
                line.text.chars().count() <= QUOTE_MAX,
                "quoted line longer than {QUOTE_MAX} characters: {:?}",
                line.text
            );
            assert_quotable(&line.text);
            match &line.parsed {
                Ok(Command::Confirm(t) | Command::Approve(t) | Command::Discard(t)) => {
                    assert_token(t)
                }
                Ok(Command::Reject { token, reason }) => {
                    assert_token(token);
                    assert_quotable(reason);
                }
                Ok(Command::Join { digest: Some(v) }) => assert_quotable(v),
                _ => {}
            }
        }
    }
    for max in [0, 2, 3, 4, QUOTE_MAX] {
        let q = commands::quotable(&body, max);
        assert!(q.chars().count() <= max, "quotable({max}) gave {q:?}");
        assert_quotable(&q);
    }
}

fn assert_quotable(s: &str) {
    assert!(
        !s.chars().any(|c| c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')),
        "control or bidi character in text to be quoted back: {s:?}"
    );
}

fn assert_token(t: &str) {
    assert!(
        !t.is_empty() && t.len() <= 128 && !t.chars().any(|c| c.is_whitespace() || c.is_control()),
        "odd token: {t:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// bounce

/// `data` is a mail to NAME-bounces@; its first line (and all of it) is also tried as a VERP
/// extension. Every reported address must be a valid address in its key form, once each, with
/// a one-line bounded diagnostic; VERP must decode to valid keys and round-trip.
pub fn bounce(data: &[u8]) {
    if past_session_depth(data) {
        return;
    }
    // As it arrives from a null sender (real bounces) and from anyone.
    let envelopes = [true, false].map(|null_sender| bounces::Envelope { null_sender });
    for report in envelopes.map(|e| bounces::parse_with(data, e)) {
        check_report(report);
    }
    bounce_verp(data);
}

fn check_report(report: Report) {
    match report {
        Report::Failed(failed) => {
            assert!(!failed.is_empty(), "Report::Failed without a recipient");
            let mut seen = std::collections::HashSet::new();
            for b in &failed {
                let parsed = Address::parse(&b.address)
                    .unwrap_or_else(|e| panic!("reported address {:?}: {e}", b.address));
                assert_eq!(
                    parsed.key(),
                    b.address,
                    "reported address is not in key form"
                );
                assert!(
                    seen.insert(b.address.clone()),
                    "{:?} reported twice",
                    b.address
                );
                if let Some(d) = &b.diagnostic {
                    assert!(
                        d.chars().count() <= MAX_DIAGNOSTIC,
                        "diagnostic longer than {MAX_DIAGNOSTIC}: {d:?}"
                    );
                    assert!(
                        !d.chars().any(char::is_control),
                        "control character in diagnostic: {d:?}"
                    );
                }
                if let Some(s) = &b.status {
                    assert!(
                        !s.chars().any(|c| c.is_whitespace() || c.is_control()),
                        "odd status {s:?}"
                    );
                }
            }
        }
        Report::Delayed | Report::AutoReply | Report::Unattributed(_) | Report::Unrecognized => {}
    }
}

fn bounce_verp(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let first = text.lines().next().unwrap_or_default();
    for ext in [first, &*text] {
        if let Some(key) = bounces::decode_verp(ext) {
            let a = Address::parse(&key)
                .unwrap_or_else(|e| panic!("decode_verp({ext:?}) = {key:?}: {e}"));
            assert_eq!(a.key(), key, "decode_verp({ext:?}) is not a key");
        }
        if let Ok(a) = Address::parse(ext) {
            let plain = format!("{}@{}", a.local(), a.domain());
            let verp = bounces::encode_verp(&plain);
            assert_eq!(
                bounces::decode_verp(&verp),
                Some(a.key()),
                "VERP does not round-trip {plain:?} (encoded {verp:?})"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// list_file

/// A post every accepted list's decoration is tried on.
const SAMPLE_POST: &[u8] =
    b"From: a@x.test\r\nSubject: hi\r\nMessage-ID: <1@x.test>\r\n\r\nHello.\r\n";

/// `data` is a list file (and, second, a global file). Parsing must not panic; every error
/// must be located (line >= 1) unless it is about the file as a whole (no key), its line must
/// be in the text, and it must display. A list that validates must be able to decorate.
pub fn list_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("fuzz.toml");
    match ListConfig::parse(path, &text, '+') {
        Ok(list) => {
            let out = deco::decorate(SAMPLE_POST, &list.decoration)
                .unwrap_or_else(|e| panic!("a valid list cannot decorate: {e}"));
            assert!(
                MessageParser::default().parse(&out).is_some(),
                "a valid list's decoration does not parse"
            );
            let _ = (
                list.key(),
                list.bounces_address(),
                list.role_address("-owner"),
            );
        }
        Err(errors) => check_config_errors(&text, &errors),
    }
    if let Err(errors) = Config::parse(path, &text) {
        check_config_errors(&text, &errors);
    }
}

fn check_config_errors(text: &str, errors: &[ConfigError]) {
    assert!(!errors.is_empty(), "Err with no error");
    let lines = text.matches('\n').count() + 1;
    for e in errors {
        let shown = e.to_string();
        assert!(
            e.line >= 1 || e.key.is_empty(),
            "error about key `{}` without a line: {shown}",
            e.key
        );
        assert!(e.line <= lines, "line {} of {lines}: {shown}", e.line);
        assert!(
            e.line == 0 || e.column >= 1,
            "line without a column: {shown}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// mime_depth

/// `data` is a message. `mime::nesting_depth` must never count less nesting than mail-parser
/// builds (the session relies on it to refuse what would overflow the stack), must stop at
/// every limit below the depth and give the same depth at every limit above it.
pub fn mime_depth(data: &[u8]) {
    use listkeeper::mime;
    let Ok(depth) = mime::nesting_depth(data, mime::DEPTH_CEILING) else {
        // Too deep to parse safely: every smaller limit refuses it too.
        assert!(
            mime::nesting_depth(data, 10).is_err(),
            "refused at the ceiling, accepted at 10"
        );
        return;
    };
    if depth > 0 {
        assert_eq!(
            mime::nesting_depth(data, depth - 1),
            Err(mime::TooDeep { limit: depth - 1 }),
            "depth {depth} accepted one level lower"
        );
    }
    assert_eq!(mime::nesting_depth(data, depth), Ok(depth));
    if let Some(parsed) = mime::parse(data) {
        let built = mime::parsed_depth(&parsed);
        assert!(
            built <= depth,
            "mail-parser built {built} levels, the walk counted {depth}"
        );
    }
}
