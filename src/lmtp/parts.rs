//! A cheap upper bound on the number of MIME parts of a message, taken before any MIME parser
//! sees it.
//!
//! SECURITY: mail-parser allocates per part far more than the part's bytes (10 MB of empty
//! parts: 1.4 million parts, about 250 MB), and every recipient of a transaction may parse the
//! message. `limits.max_mime_parts` refuses such a message up front. The count is an upper
//! bound: every `boundary=` value seen anywhere is taken as declared, and every line that starts
//! with `--` and one of them counts as a delimiter, so a message can only be over-counted (its
//! own sender's loss), never under-counted.

/// Boundaries remembered at most; more are ignored (nesting that deep is not mail).
const MAX_BOUNDARIES: usize = 64;

/// The boundaries' longest legal length (RFC 2046: 70), plus slack for broken mail.
const MAX_BOUNDARY_LEN: usize = 200;

/// Count boundary delimiter lines of `message`, stopping as soon as the count exceeds `limit`.
/// Returns the count (at most `limit + 1`).
pub fn count_delimiters(message: &[u8], limit: usize) -> usize {
    let mut boundaries: Vec<&[u8]> = Vec::new();
    let mut count = 0;
    for line in message.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(rest) = line.strip_prefix(b"--") {
            if boundaries.iter().any(|b| rest.starts_with(b)) {
                count += 1;
                if count > limit {
                    return count;
                }
                continue;
            }
        }
        // Most lines hold no parameter: skip the search on them.
        if boundaries.len() < MAX_BOUNDARIES && line.contains(&b'=') {
            if let Some(b) = boundary_in(line) {
                if !boundaries.contains(&b) {
                    boundaries.push(b);
                }
            }
        }
    }
    count
}

/// The value of a `boundary=` parameter on this line, if any (quoted or a token).
fn boundary_in(line: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = b"boundary";
    let at = line
        .windows(KEY.len())
        .position(|w| w.eq_ignore_ascii_case(KEY))?;
    let rest = &line[at + KEY.len()..];
    let rest = trim_start(rest).strip_prefix(b"=")?;
    let rest = trim_start(rest);
    let value = match rest.strip_prefix(b"\"") {
        Some(quoted) => {
            let end = quoted.iter().position(|&b| b == b'"')?;
            &quoted[..end]
        }
        None => {
            let end = rest
                .iter()
                .position(|&b| b == b';' || b.is_ascii_whitespace())
                .unwrap_or(rest.len());
            &rest[..end]
        }
    };
    (!value.is_empty() && value.len() <= MAX_BOUNDARY_LEN).then_some(value)
}

fn trim_start(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &s[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_delimiters_of_declared_boundaries() {
        let m = b"Content-Type: multipart/mixed; boundary=\"xx\"\r\n\r\n--xx\r\nContent-Type: multipart/alternative;\r\n boundary=yy\r\n\r\n--yy\r\n\r\na\r\n--yy\r\n\r\nb\r\n--yy--\r\n--xx\r\n\r\nc\r\n--xx--\r\n";
        assert_eq!(count_delimiters(m, 100), 6);
        // Lines starting with "--" that are no delimiter: a signature, a diff.
        let m = b"Subject: patch\n\ntext\n-- \nsig\n--- a/f\n+++ b/f\n";
        assert_eq!(count_delimiters(m, 100), 0);
    }

    #[test]
    fn stops_past_the_limit() {
        let mut m = b"Content-Type: multipart/mixed; boundary=b\n\n".to_vec();
        for _ in 0..1000 {
            m.extend_from_slice(b"--b\n\n");
        }
        assert_eq!(count_delimiters(&m, 10_000), 1000);
        assert_eq!(count_delimiters(&m, 10), 11);
    }

    #[test]
    fn boundary_parameters() {
        assert_eq!(
            boundary_in(b"Content-Type: multipart/mixed; boundary=abc"),
            Some(&b"abc"[..])
        );
        assert_eq!(
            boundary_in(b" BOUNDARY = \"a b;c\"; x=y"),
            Some(&b"a b;c"[..])
        );
        assert_eq!(boundary_in(b"boundary=abc; charset=x"), Some(&b"abc"[..]));
        assert_eq!(boundary_in(b"boundary=\"\""), None);
        assert_eq!(boundary_in(b"boundary=\"unterminated"), None);
        assert_eq!(boundary_in(b"no parameter here"), None);
        assert_eq!(boundary_in(b"boundary"), None);
    }
}
