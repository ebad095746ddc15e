//! Log output: the tracing subscriber the binary installs, and the field formatter that keeps
//! every log line one line of plain text, whatever its values hold.
//!
//! SECURITY: log values come from the network (Message-IDs, envelope senders, subjects,
//! error texts quoting them). A CR or LF in one would start a forged line (`... outcome=
//! "distributed"`), an ESC would send terminal escape sequences to whoever reads the log with
//! `less -R` or a terminal. [`EscapedFields`] escapes every control character (C0 with CR, LF
//! and TAB, DEL, C1) and the Unicode line and paragraph separators in every field of every
//! line, so no call site can forget it; [`escape_controls`] does the same for the CLI's output.
//! The format is otherwise tracing-subscriber's own (`key=value`, the message bare).

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// Characters that never reach a log line or the terminal as they are.
fn is_escaped(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// Writes `c` escaped: `\r`, `\n`, `\t`, `\x1b` for the other C0 characters and DEL,
/// `\u{85}` above ASCII.
fn write_escaped(out: &mut dyn fmt::Write, c: char) -> fmt::Result {
    match c {
        '\r' => out.write_str("\\r"),
        '\n' => out.write_str("\\n"),
        '\t' => out.write_str("\\t"),
        c if c.is_ascii() => write!(out, "\\x{:02x}", u32::from(c)),
        c => write!(out, "\\u{{{:x}}}", u32::from(c)),
    }
}

/// `text` with every control character and line separator escaped (see [`write_escaped`]);
/// borrowed when there is none.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_escaped(c) {
            // Writing to a String cannot fail.
            let _ = write_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A `fmt::Write` that escapes what passes through it.
struct Escaping<'a> {
    inner: &'a mut dyn fmt::Write,
}

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some((at, c)) = rest.char_indices().find(|(_, c)| is_escaped(*c)) {
            self.inner.write_str(rest.get(..at).unwrap_or_default())?;
            write_escaped(self.inner, c)?;
            rest = rest.get(at + c.len_utf8()..).unwrap_or_default();
        }
        self.inner.write_str(rest)
    }
}

/// The field formatter of every log line: tracing-subscriber's default layout (`key=value`
/// separated by spaces, `message` bare, strings in quotes), each value escaped.
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapedFields;

impl<'a> MakeVisitor<Writer<'a>> for EscapedFields {
    type Visitor = EscapedVisitor<'a>;

    fn make_visitor(&self, target: Writer<'a>) -> Self::Visitor {
        EscapedVisitor {
            writer: target,
            first: true,
            result: Ok(()),
        }
    }
}

/// Writes one set of fields for [`EscapedFields`].
#[derive(Debug)]
pub struct EscapedVisitor<'a> {
    writer: Writer<'a>,
    first: bool,
    result: fmt::Result,
}

impl EscapedVisitor<'_> {
    /// Writes `name=` (nothing for the message) and the value, escaped.
    fn field(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.result.is_err() {
            return;
        }
        let pad = if self.first { "" } else { " " };
        self.first = false;
        let name = field.name();
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.result = if name == "message" {
            write!(self.writer, "{pad}")
        } else {
            write!(self.writer, "{pad}{name}=")
        }
        .and_then(|()| {
            Escaping {
                inner: &mut self.writer,
            }
            .write_fmt(value)
        });
    }
}

impl Visit for EscapedVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.field(field, format_args!("{value}"));
        } else {
            self.field(field, format_args!("{value:?}"));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        match value.source() {
            None => self.field(field, format_args!("{value}")),
            Some(_) => {
                let mut sources = Vec::new();
                let mut next = value.source();
                while let Some(e) = next {
                    sources.push(e.to_string());
                    next = e.source();
                }
                let name = field.name();
                self.field(
                    field,
                    format_args!("{value} {name}.sources=[{}]", sources.join(", ")),
                );
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, format_args!("{value:?}"));
    }
}

impl VisitOutput<fmt::Result> for EscapedVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for EscapedVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

/// The subscriber `listkeeper` logs through: plain text (no colours), fields escaped by
/// [`EscapedFields`], levels from `filter`, lines to `writer`.
pub fn subscriber<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .fmt_fields(EscapedFields)
        .finish()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer into a shared buffer, as the subscriber's `MakeWriter`.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
        }
    }

    #[test]
    fn control_characters_and_separators_are_escaped() {
        assert!(matches!(
            escape_controls("plain <id@x> ü"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_controls("a\r\n b\tc\x1b[31md\x7f\0"),
            "a\\r\\n b\\tc\\x1b[31md\\x7f\\x00"
        );
        assert_eq!(
            escape_controls("x\u{85}y\u{9b}z\u{2028}\u{2029}é"),
            "x\\u{85}y\\u{9b}z\\u{2028}\\u{2029}é"
        );
        let mut out = String::new();
        let mut w = Escaping { inner: &mut out };
        w.write_str("one\ntwo").expect("write");
        w.write_str("\u{1b}").expect("write");
        assert_eq!(out, "one\\ntwo\\x1b");
    }

    #[derive(Debug)]
    struct Outer(Inner);
    #[derive(Debug)]
    struct Inner;
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("outer failed")
        }
    }
    impl fmt::Display for Inner {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("inner cause")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    impl std::error::Error for Inner {}

    /// Every kind of field the code base logs, with harmless values.
    fn benign_events() {
        let e = Outer(Inner);
        let span = tracing::info_span!("session", id = 7, peer = %"unix");
        let _entered = span.enter();
        tracing::info!(session = 3, list = %"dev@example.org", message_id = %"a.b@x", sender = %"", outcome = "distributed", removed = ?vec!["image/png"], ms = format_args!("{:.1}", 1.25), "post");
        tracing::warn!(
            error = &e as &(dyn std::error::Error + 'static),
            r#type = "x",
            "with an error"
        );
        tracing::warn!(error = %e, "no list {} here", "dev");
    }

    #[test]
    fn the_layout_is_tracing_subscribers_default_for_harmless_values() {
        let (ours, theirs) = (Buffer::default(), Buffer::default());
        let escaped = tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .with_writer(ours.clone())
            .fmt_fields(EscapedFields)
            .finish();
        tracing::subscriber::with_default(escaped, benign_events);
        let default = tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .with_writer(theirs.clone())
            .finish();
        tracing::subscriber::with_default(default, benign_events);
        assert_eq!(ours.text(), theirs.text());
        assert_eq!(ours.text().lines().count(), 3, "{}", ours.text());
        assert!(ours.text().contains(
            "post session=3 list=dev@example.org message_id=a.b@x sender= outcome=\"distributed\""
        ));
    }

    #[test]
    fn hostile_values_stay_on_one_line_without_escape_sequences() {
        let buffer = Buffer::default();
        let message_id = "evil@x\r\n 2026-01-01T00:00:00Z  INFO listkeeper::pipeline: post message_id=ok@x outcome=\"distributed\"\x1b[2K";
        let sender = "a\u{1b}]0;pwned\u{7}@x\u{85}\u{2028}";
        let subject = "hi\nthere\u{9b}31m";
        tracing::subscriber::with_default(
            subscriber(EnvFilter::new("info"), buffer.clone()),
            || {
                tracing::info!(message_id = %message_id, sender = %sender, subject = subject, "post");
                tracing::warn!("refused {message_id}");
            },
        );
        let text = buffer.text();
        assert_eq!(text.matches('\n').count(), 2, "{text:?}");
        assert!(text.ends_with('\n'), "{text:?}");
        for bad in ['\r', '\u{1b}', '\u{7}', '\u{85}', '\u{9b}', '\u{2028}'] {
            assert!(!text.contains(bad), "{bad:?} in {text:?}");
        }
        let first = text.lines().next().unwrap_or_default();
        assert!(
            first.contains(" INFO listkeeper::logging::tests: post message_id=evil@x\\r\\n 2026-01-01T00:00:00Z  INFO listkeeper::pipeline: post message_id=ok@x outcome=\"distributed\"\\x1b[2K sender=a\\x1b]0;pwned\\x07@x\\u{85}\\u{2028} subject=\"hi\\nthere\\u{9b}31m\""),
            "{first}"
        );
        assert!(text.lines().nth(1).unwrap_or_default().ends_with(
            "refused evil@x\\r\\n 2026-01-01T00:00:00Z  INFO listkeeper::pipeline: post message_id=ok@x outcome=\"distributed\"\\x1b[2K"
        ));
    }
}
