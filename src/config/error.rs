//! Configuration errors that name the file, line, column and key, in one sentence.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in one configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, as the operator named it (or as found in the lists directory).
    pub file: PathBuf,
    /// 1-based line; 0 when the problem is the file as a whole (unreadable, missing).
    pub line: usize,
    /// 1-based column; 0 when unknown.
    pub column: usize,
    /// Dotted key path (`posting.policy`), empty for file-level problems.
    pub key: String,
    /// What is wrong, as a sentence fragment.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": key `{}`: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// A problem with the file as a whole.
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            key: String::new(),
            message: message.into(),
        }
    }

    /// A problem located at a byte span of `text`, for `key`.
    pub fn at(
        file: &Path,
        text: &str,
        span: Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = line_col(text, span.start);
        ConfigError {
            file: file.to_path_buf(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// Convert a TOML parse or deserialisation error. toml reports a span and a message; the
    /// key is recovered from the document (the key on the error's line, under the last table
    /// header above it) or, for a missing field, from the message.
    pub fn from_toml(file: &Path, text: &str, err: &toml::de::Error) -> Self {
        let message = err.message().trim().replace('\n', " ");
        let span = err.span().unwrap_or(0..0);
        let (line, column) = if err.span().is_some() {
            line_col(text, span.start)
        } else {
            (0, 0)
        };
        let mut key = key_at(text, span.start).unwrap_or_default();
        if let Some(field) = backticked_after(&message, "missing field ") {
            key = if key.is_empty() || !key.ends_with(field) {
                join_key(&table_before(text, span.start), field)
            } else {
                key
            };
        } else if let Some(field) = backticked_after(&message, "unknown field ") {
            key = join_key(&table_before(text, span.start), field);
        }
        ConfigError {
            file: file.to_path_buf(),
            line,
            column,
            key,
            message,
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    let column = before
        .get(line_start..)
        .map_or(1, |s| s.chars().count() + 1);
    (line, column)
}

/// The dotted path of the key defined on the line containing `offset`, if any.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let start = text.get(..offset)?.rfind('\n').map_or(0, |p| p + 1);
    let line = text.get(start..)?.lines().next()?;
    let (k, _) = line.split_once('=')?;
    let k = k.trim().trim_matches('"');
    if k.is_empty() || k.starts_with('[') || k.starts_with('#') {
        return None;
    }
    Some(join_key(&table_before(text, offset), k))
}

/// The `[table]` or `[[table]]` header in force at `offset`.
fn table_before(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    for line in before.lines().rev() {
        let t = line.trim();
        if t.starts_with('[') {
            return t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        }
    }
    String::new()
}

fn join_key(table: &str, key: &str) -> String {
    if table.is_empty() {
        key.to_string()
    } else {
        format!("{table}.{key}")
    }
}

/// `unknown field `foo`, expected ...` -> `foo`.
fn backticked_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.get(message.find(prefix)? + prefix.len()..)?;
    let rest = rest.strip_prefix('`')?;
    Some(&rest[..rest.find('`')?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        assert_eq!(line_col("a\nbc\n", 3), (2, 2));
        assert_eq!(line_col("", 10), (1, 1));
    }

    #[test]
    fn key_comes_from_the_table_header() {
        let text = "address = \"x\"\n[posting]\npolicy = \"nope\"\n";
        let off = text.find("\"nope").unwrap_or(0);
        assert_eq!(key_at(text, off).as_deref(), Some("posting.policy"));
    }
}
