//! The email command parser for `NAME-request@`: the Subject and the plain-text body of one
//! mail -> the commands in it, each with the line as written and either the command or a
//! sentence saying why it was not understood.
//!
//! Pure and I/O-free. It trusts nothing: any byte sequence the caller decoded to UTF-8 is
//! handled without a panic and with bounded work (at most [`MAX_BODY_LINES`] body lines are
//! looked at). It is forgiving the way Mailman and mlmmj are: reply prefixes and list tags in
//! the Subject, quoted text, signatures, greetings and "thanks" are skipped, and prose stops the
//! scan after [`MAX_NOT_UNDERSTOOD`] lines in a row so that a chatty mail gets a short answer.

/// Body lines looked at, at most; the rest of a longer body is not read.
pub const MAX_BODY_LINES: usize = 1000;
/// Consecutive lines that are not commands after which the body is not read further.
pub const MAX_NOT_UNDERSTOOD: usize = 3;
/// Characters of a line quoted back in [`Line::text`], "..." included.
pub const QUOTE_MAX: usize = 80;
/// Characters of a `reject` reason kept.
const REASON_MAX: usize = 300;
/// Token length bounds (the tokens the store generates fall well inside).
const TOKEN_MIN: usize = 16;
const TOKEN_MAX: usize = 128;

/// One command a member can send to NAME-request@.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `join` / `subscribe` [`digest=VALUE`]; the digest value is reserved and kept as written.
    Join {
        /// The value of a `digest=VALUE` argument, if one was given.
        digest: Option<String>,
    },
    /// `leave` / `unsubscribe`.
    Leave,
    /// `confirm TOKEN`.
    Confirm(String),
    /// `approve TOKEN` (owners: a subscription; moderators: a held post).
    Approve(String),
    /// `discard TOKEN` (moderators: drop a held post without telling the poster).
    Discard(String),
    /// `reject TOKEN [reason...]` (owners); the reason may be empty.
    Reject {
        /// The token of the pending request.
        token: String,
        /// The rest of the line, made safe to quote (control characters removed, bounded).
        reason: String,
    },
    /// `help`.
    Help,
    /// `who`.
    Who,
    /// `info`.
    Info,
    /// `set nomail on|off`.
    SetNomail(bool),
}

/// One line that was taken as a command (or tried to be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The line as written, made safe to quote back: control characters removed, at most
    /// [`QUOTE_MAX`] characters (char-safe truncation with "...").
    pub text: String,
    /// The command, or a sentence saying why it was not understood.
    pub parsed: Result<Command, String>,
}

/// The commands of one mail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The lines taken as commands, Subject first, in order; at most `max_commands`.
    pub lines: Vec<Line>,
    /// Command lines not looked at because the limit was reached.
    pub ignored: usize,
}

/// The command words, lowercase.
const KNOWN: &[&str] = &[
    "join",
    "subscribe",
    "leave",
    "unsubscribe",
    "confirm",
    "approve",
    "reject",
    "discard",
    "help",
    "who",
    "info",
    "set",
];

/// Reply and forward prefixes of the common mail clients, lowercase, without the colon.
const REPLY_PREFIXES: &[&str] = &[
    "re", "fwd", "fw", "aw", "wg", "sv", "antw", "tr", "vs", "vl", "res", "rv", "enc", "odp",
    "doorst", "rif", "r",
];

/// Lines that end the commands of a mail.
const END_WORDS: &[&str] = &["end", "stop", "quit", "thanks", "thank you"];

/// Parse the Subject and the plain-text body (already decoded to UTF-8 by the caller).
pub fn parse(subject: Option<&str>, body: &str, max_commands: usize) -> Parsed {
    let mut out = Collector {
        parsed: Parsed::default(),
        max: max_commands,
        subject: None,
    };
    if let Some(line) = subject.and_then(subject_command) {
        out.subject = Some((normalize(&line.text), line.parsed.clone()));
        out.push(line);
    }

    let lines: Vec<&str> = body.split('\n').take(MAX_BODY_LINES).collect();
    let mut not_understood = 0;
    for (i, raw) in lines.iter().enumerate() {
        let line = trim(raw);
        if line.is_empty() || line.starts_with('>') {
            continue;
        }
        if ends_commands(line) {
            break;
        }
        if let Some(parsed) = command_line(line) {
            not_understood = 0;
            if !out.repeats_subject(line, &parsed) {
                out.push(Line {
                    text: quotable(line, QUOTE_MAX),
                    parsed,
                });
            }
            continue;
        }
        if is_attribution(line, lines.get(i + 1..).unwrap_or_default()) {
            continue;
        }
        not_understood += 1;
        if out.parsed.lines.len() < out.max {
            let first = first_word(line).0;
            let bare = first.trim_end_matches(|c: char| c.is_ascii_punctuation());
            let word = quotable(if bare.is_empty() { first } else { bare }, 30);
            out.parsed.lines.push(Line {
                text: quotable(line, QUOTE_MAX),
                parsed: Err(format!(
                    "unknown command `{word}`; send `help` for the list of commands"
                )),
            });
        }
        if not_understood >= MAX_NOT_UNDERSTOOD {
            break;
        }
    }
    out.parsed
}

/// Accumulates lines up to the limit and remembers the Subject's command.
struct Collector {
    parsed: Parsed,
    max: usize,
    subject: Option<(String, Result<Command, String>)>,
}

impl Collector {
    fn push(&mut self, line: Line) {
        if self.parsed.lines.len() < self.max {
            self.parsed.lines.push(line);
        } else {
            self.parsed.ignored += 1;
        }
    }

    /// A body line that says again what the Subject said (a mail with `confirm TOKEN` as
    /// Subject and as body) is answered once.
    fn repeats_subject(&self, line: &str, parsed: &Result<Command, String>) -> bool {
        match (&self.subject, parsed) {
            (Some((_, Ok(a))), Ok(b)) => a == b,
            (Some((text, Err(_))), Err(_)) => *text == normalize(&quotable(line, QUOTE_MAX)),
            _ => false,
        }
    }
}

/// The Subject's command: after reply prefixes and list tags, a known first word makes the
/// whole rest one command. Otherwise a `confirm TOKEN` or `approve TOKEN` anywhere in it (the
/// Subject of our own confirmation mails, answered to the wrong address) counts; anything else
/// is ignored silently.
fn subject_command(subject: &str) -> Option<Line> {
    let rest = trim(strip_reply_prefixes(trim(subject)));
    if let Some(parsed) = command_line(rest) {
        return Some(Line {
            text: quotable(rest, QUOTE_MAX),
            parsed,
        });
    }
    for (word, make) in [
        ("confirm", Command::Confirm as fn(String) -> Command),
        ("approve", Command::Approve),
    ] {
        if let Some(token) = find_token_after(rest, word) {
            return Some(Line {
                text: quotable(&format!("{word} {token}"), QUOTE_MAX),
                parsed: Ok(make(token)),
            });
        }
    }
    None
}

/// The first valid token that follows the word `word` (any case) in `text`.
fn find_token_after(text: &str, word: &str) -> Option<String> {
    let mut words = text.split_whitespace().peekable();
    while let Some(w) = words.next() {
        if command_word(w.trim_start_matches(|c: char| c.is_ascii_punctuation())) == word {
            if let Some(next) = words.peek() {
                if let Ok(token) = token(next) {
                    return Some(token);
                }
            }
        }
    }
    None
}

/// Strip any number of leading `Re:`, `Fwd:`, `AW:`... prefixes (also `Re[2]:`, `RE :`,
/// full-width colons) and `[list]` tags.
fn strip_reply_prefixes(mut s: &str) -> &str {
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix('[') {
            match rest.find(']') {
                Some(end) if end <= 100 => {
                    s = rest.get(end + 1..).unwrap_or_default();
                    continue;
                }
                _ => return s,
            }
        }
        let Some((colon, c)) = s
            .char_indices()
            .take(12)
            .find(|&(_, c)| c == ':' || c == '\u{ff1a}')
        else {
            return s;
        };
        let head = s.get(..colon).unwrap_or_default().trim_end();
        // `Re[2]:` and `Re(2):` count replies.
        let head = match head.split_once(['[', '(']) {
            Some((word, n))
                if n.trim_end_matches([']', ')'])
                    .bytes()
                    .all(|b| b.is_ascii_digit()) =>
            {
                word
            }
            _ => head,
        };
        if !REPLY_PREFIXES.iter().any(|p| head.eq_ignore_ascii_case(p)) {
            return s;
        }
        s = s.get(colon + c.len_utf8()..).unwrap_or_default();
    }
}

/// A signature separator, an Outlook quote header or an `end`-style word ends the commands.
fn ends_commands(line: &str) -> bool {
    if line == "--" || line.starts_with("-----") || line.starts_with("_____") {
        return true;
    }
    let word = line
        .trim_end_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace())
        .to_lowercase();
    let word = normalize_spaces(&word);
    END_WORDS.contains(&word.as_str())
}

/// "On Mon, 1 Jan 2024, Alice wrote:" (in any language) right before quoted text is part of
/// the quote, not prose to answer.
fn is_attribution(line: &str, following: &[&str]) -> bool {
    if !line.ends_with(':') {
        return false;
    }
    following
        .iter()
        .map(|l| l.trim())
        .find(|l| !l.is_empty())
        .is_some_and(|l| l.starts_with('>'))
}

/// `Some` when the first word of `line` is a command word: the command or why it is wrong.
fn command_line(line: &str) -> Option<Result<Command, String>> {
    let (first, rest) = first_word(line);
    let word = command_word(first);
    if !KNOWN.contains(&word.as_str()) {
        return None;
    }
    let args: Vec<&str> = rest.split_whitespace().take(8).collect();
    Some(match word.as_str() {
        "join" | "subscribe" => join(&word, &args),
        "leave" | "unsubscribe" if args.is_empty() => Ok(Command::Leave),
        "leave" | "unsubscribe" => Err(format!(
            "`{word}` takes no arguments: it always unsubscribes the address you write from"
        )),
        "confirm" => args
            .first()
            .ok_or_else(|| "`confirm` needs the token from the confirmation mail".to_string())
            .and_then(|t| token(t))
            .map(Command::Confirm),
        "approve" => args
            .first()
            .ok_or_else(|| "`approve` needs the token from the approval request".to_string())
            .and_then(|t| token(t))
            .map(Command::Approve),
        "reject" => reject(rest),
        "discard" => args
            .first()
            .ok_or_else(|| "`discard` needs the token from the moderation notice".to_string())
            .and_then(|t| token(t))
            .map(Command::Discard),
        "help" => Ok(Command::Help),
        "who" => Ok(Command::Who),
        "info" => Ok(Command::Info),
        _ => set(&args),
    })
}

fn join(word: &str, args: &[&str]) -> Result<Command, String> {
    let mut digest = None;
    for arg in args {
        let key = arg.get(..7).filter(|k| k.eq_ignore_ascii_case("digest="));
        match key.and(arg.get(7..)) {
            Some(value) => {
                let value = value.trim_end_matches(|c: char| c.is_ascii_punctuation());
                if value.is_empty() {
                    return Err("`digest=` needs a value, e.g. `digest=yes`".into());
                }
                digest = Some(quotable(value, 30));
            }
            None => {
                return Err(format!(
                    "`{word}` takes no arguments: it always subscribes the address you write from"
                ))
            }
        }
    }
    Ok(Command::Join { digest })
}

fn reject(rest: &str) -> Result<Command, String> {
    let (first, reason) = first_word(rest);
    if first.is_empty() {
        return Err("`reject` needs the token from the approval request, then a reason".into());
    }
    Ok(Command::Reject {
        token: token(first)?,
        reason: quotable(&normalize_spaces(reason), REASON_MAX),
    })
}

fn set(args: &[&str]) -> Result<Command, String> {
    let words: Vec<String> = args.iter().map(|a| command_word(a)).collect();
    match words
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["nomail", "on"] => Ok(Command::SetNomail(true)),
        ["nomail", "off"] => Ok(Command::SetNomail(false)),
        _ => Err("`set` understands only `set nomail on` and `set nomail off`".into()),
    }
}

/// A token as copied from a mail: surrounding quotes, brackets and trailing punctuation are
/// tolerated; the rest must be 16 to 128 of `[A-Za-z0-9_-]`. Case is kept.
fn token(word: &str) -> Result<String, String> {
    let t = word
        .trim_start_matches(['(', '[', '<', '"', '\'', '`'])
        .trim_end_matches([')', ']', '>', '"', '\'', '`', '.', ',', ';', ':', '!', '?']);
    let ok = (TOKEN_MIN..=TOKEN_MAX).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(t.to_string())
    } else {
        Err("the token looks damaged: copy it from the confirmation mail".into())
    }
}

/// The first whitespace-separated word of `s` and the text after it.
fn first_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(end) => (s.get(..end).unwrap_or(s), s.get(end..).unwrap_or_default()),
        None => (s, ""),
    }
}

/// A word as a command word: lowercase, without a trailing colon or punctuation.
fn command_word(word: &str) -> String {
    word.trim_end_matches(|c: char| c.is_ascii_punctuation() && c != '=')
        .to_lowercase()
}

/// `s` without whitespace, byte-order marks and zero-width spaces at either end.
fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || matches!(c, '\u{feff}' | '\u{200b}'))
}

/// Runs of whitespace made one space, no whitespace at either end.
fn normalize_spaces(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Lowercase with runs of whitespace made one space, for comparing lines.
fn normalize(s: &str) -> String {
    normalize_spaces(s).to_lowercase()
}

/// Bidirectional formatting characters: harmless in our parser, but quoted back they can make
/// the rest of a reply read backwards.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` without control and bidi formatting characters (tabs become spaces), at most `max`
/// characters, truncated char-safely with "...".
pub fn quotable(s: &str, max: usize) -> String {
    let clean = s
        .chars()
        .filter_map(|c| match c {
            '\t' => Some(' '),
            c if c.is_control() || is_bidi_control(c) => None,
            c => Some(c),
        })
        .take(max.saturating_add(1));
    let chars: Vec<char> = clean.collect();
    if chars.len() <= max {
        return chars.into_iter().collect();
    }
    let keep = max.saturating_sub(3);
    let mut out: String = chars.into_iter().take(keep).collect();
    out.push_str(&"...".chars().take(max).collect::<String>());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;
    use std::path::Path;

    const TOKEN: &str = "Tok3n_abcdefghij-KL";

    fn ok(p: &Parsed) -> Vec<Command> {
        p.lines
            .iter()
            .filter_map(|l| l.parsed.clone().ok())
            .collect()
    }

    /// `tests/fixtures/commands/*.txt`: an optional `subject:` and `max:` line, `=== body`,
    /// the body, `=== expect`, then one `TEXT => RESULT` line per returned line and
    /// `ignored: N`. Each runs with LF and with CRLF line ends; a mismatch writes `*.actual`.
    #[test]
    fn fixtures() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/commands");
        let mut seen = 0;
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .expect("fixture dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "txt"))
            .collect();
        entries.sort();
        for path in entries {
            seen += 1;
            let text = std::fs::read_to_string(&path).expect("readable fixture");
            let (head, rest) = text.split_once("=== body\n").expect("=== body");
            let (body, expect) = rest.split_once("=== expect\n").expect("=== expect");
            let mut subject = None;
            let mut max = 20;
            for l in head.lines() {
                if let Some(s) = l.strip_prefix("subject: ") {
                    subject = Some(s);
                } else if let Some(m) = l.strip_prefix("max: ") {
                    max = m.parse().expect("max");
                }
            }
            for crlf in [false, true] {
                let body = if crlf {
                    body.replace('\n', "\r\n")
                } else {
                    body.to_string()
                };
                let parsed = parse(subject, &body, max);
                let mut actual = String::new();
                for l in &parsed.lines {
                    let _ = writeln!(actual, "{} => {:?}", l.text, l.parsed);
                }
                let _ = writeln!(actual, "ignored: {}", parsed.ignored);
                if actual != expect {
                    let out = path.with_extension("actual");
                    std::fs::write(&out, &actual).expect("write .actual");
                    panic!(
                        "{} (crlf: {crlf}) differs; see {}\n{actual}",
                        path.display(),
                        out.display()
                    );
                }
            }
        }
        assert!(seen >= 5, "only {seen} fixtures");
    }

    #[test]
    fn a_reply_confirms_from_the_subject_and_skips_the_quote() {
        let subject = format!("Re: [dev] AW: confirm {TOKEN}");
        let body = format!("Yes please.\n\nOn Mon, 1 Jan 2024, dev-request@example.org wrote:\n> Someone asked to join.\n> send `confirm {TOKEN}` to dev-request@example.org\n");
        let p = parse(Some(&subject), &body, 20);
        assert_eq!(p.lines.len(), 2, "{p:?}");
        assert_eq!(p.lines[0].parsed, Ok(Command::Confirm(TOKEN.into())));
        assert_eq!(p.lines[0].text, format!("confirm {TOKEN}"));
        assert!(p.lines[1]
            .parsed
            .as_ref()
            .is_err_and(|e| e.contains("`Yes`")));
    }

    #[test]
    fn our_own_confirmation_subject_works_when_answered_to_the_request_address() {
        let s = format!("RE: Please confirm: join dev@example.org (confirm {TOKEN})");
        assert_eq!(
            ok(&parse(Some(&s), "", 20)),
            [Command::Confirm(TOKEN.into())]
        );
        let s =
            format!("Re: Approval needed: a@b.c wants to join dev@example.org (approve {TOKEN})");
        assert_eq!(
            ok(&parse(Some(&s), "", 20)),
            [Command::Approve(TOKEN.into())]
        );
        // A damaged token in prose is not a command and not an error either.
        assert_eq!(
            parse(Some("Re: please confirm (confirm abc)"), "", 20),
            Parsed::default()
        );
    }

    #[test]
    fn the_subject_is_only_a_command_when_it_starts_with_one() {
        assert_eq!(parse(Some("Hello"), "", 20), Parsed::default());
        assert_eq!(
            parse(Some("Re: Fwd: hello there"), "", 20),
            Parsed::default()
        );
        assert_eq!(
            ok(&parse(Some("Re[2]: SV :  help"), "", 20)),
            [Command::Help]
        );
        assert_eq!(
            ok(&parse(Some("Fw\u{ff1a}[x y] [dev]who"), "", 20)),
            [Command::Who]
        );
        assert_eq!(parse(Some("Re: Re: Re:"), "", 20), Parsed::default());
        assert_eq!(parse(Some("[unterminated join"), "", 20), Parsed::default());
        let p = parse(Some("Join us"), "", 20);
        assert!(p.lines[0]
            .parsed
            .as_ref()
            .is_err_and(|e| e.contains("no arguments")));
    }

    #[test]
    fn a_body_repeating_the_subject_is_answered_once() {
        let s = format!("confirm {TOKEN}");
        let p = parse(
            Some(&s),
            &format!("  CONFIRM   {TOKEN}  \nconfirm {TOKEN}\nhelp\n"),
            20,
        );
        assert_eq!(ok(&p), [Command::Confirm(TOKEN.into()), Command::Help]);
        let p = parse(Some("set nomail maybe"), "Set  NoMail maybe\n", 20);
        assert_eq!(p.lines.len(), 1, "{p:?}");
        // Not a repeat: the token's case differs.
        let p = parse(Some(&s), &format!("confirm {}\n", TOKEN.to_lowercase()), 20);
        assert_eq!(p.lines.len(), 2);
    }

    #[test]
    fn empty_and_quote_only_bodies_have_no_commands() {
        for body in [
            "",
            "\n",
            " \t\r\n\r\n",
            "> help\n>> join\n",
            "--\nhelp",
            "\u{feff}",
        ] {
            assert_eq!(parse(Some(body), body, 20), Parsed::default(), "{body:?}");
        }
        let p = parse(
            Some("\u{feff}Re: help"),
            "\u{feff}\u{200b}who\u{200b}\r\n",
            20,
        );
        assert_eq!(ok(&p), [Command::Help, Command::Who]);
    }

    #[test]
    fn fifty_commands_with_a_limit_of_twenty() {
        let body = "help\n".repeat(50);
        let p = parse(Some("who"), &body, 20);
        assert_eq!(p.lines.len(), 20);
        assert_eq!(p.lines[0].parsed, Ok(Command::Who));
        assert_eq!(p.ignored, 31);
        let p = parse(Some("who"), &body, 0);
        assert_eq!((p.lines.len(), p.ignored), (0, 51));
    }

    #[test]
    fn huge_and_hostile_bodies_are_bounded() {
        let body = "x\n".repeat(10_000);
        assert_eq!(parse(None, &body, 20).lines.len(), MAX_NOT_UNDERSTOOD);
        let body = "\n".repeat(5_000) + "help\n";
        assert_eq!(
            parse(None, &body, 20),
            Parsed::default(),
            "past the scanned lines"
        );
        let body = "help\n".repeat(10_000);
        assert_eq!(parse(None, &body, 10_000).lines.len(), MAX_BODY_LINES);
        let long = format!("join {}", "\u{1F600}".repeat(200_000));
        let p = parse(Some(&long), &long, 20);
        assert_eq!(p.lines.len(), 1, "the body repeats the subject");
        assert_eq!(p.lines[0].text.chars().count(), QUOTE_MAX);
        assert!(p.lines[0].text.ends_with("..."));
        let p = parse(None, "he\0lp\n\0\nhelp\0\n\u{202e}help\n", 20);
        assert!(
            p.lines.iter().all(|l| !l.text.contains(['\0', '\u{202e}'])),
            "{p:?}"
        );
        assert_eq!(p.lines[0].text, "help");
        let reason = format!("reject {TOKEN} {}\u{7}", "why ".repeat(1000));
        let p = parse(None, &reason, 20);
        match &p.lines[0].parsed {
            Ok(Command::Reject { token, reason }) => {
                assert_eq!(token, TOKEN);
                assert_eq!(reason.chars().count(), REASON_MAX);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn arbitrary_input_never_panics() {
        // A small deterministic generator over characters that matter to the parser.
        let alphabet: Vec<char> =
            "joinConfirm:[]()<>-_= \t\r\n>\0\u{202e}é😀ﺍ?.,digest=set nomail on"
                .chars()
                .collect();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..2000 {
            let len = round % 97;
            let s: String = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    alphabet[(state % alphabet.len() as u64) as usize]
                })
                .collect();
            let p = parse(Some(&s), &s, round % 5);
            assert!(p.lines.len() <= round % 5);
            for l in p.lines {
                assert!(l.text.chars().count() <= QUOTE_MAX);
                assert!(!l.text.chars().any(char::is_control));
            }
        }
    }

    #[test]
    fn quotable_truncates_on_char_boundaries() {
        assert_eq!(quotable("abc", 80), "abc");
        assert_eq!(quotable("äöüäöü", 5), "äö...");
        assert_eq!(quotable("a\tb\r\nc", 80), "a bc");
        assert_eq!(quotable("abcdef", 2), "..");
        assert_eq!(quotable("abcdef", 0), "");
    }
}
