//! Mail addresses: strict parsing and normalisation of the ones we write, and a liberal reading
//! of the envelope sender we receive.
//!
//! Every address that reaches the store, a generated header or an SMTP envelope passes through
//! [`Address::parse`] first. It accepts the RFC 5321 `local@domain` forms list operators meet in
//! practice and refuses everything that could smuggle a line break, a second address or a
//! routing trick into a command or a header: control characters, spaces, angle brackets, source
//! routes, quoted local parts, empty parts and over-long input.
//!
//! The sender in LMTP `MAIL FROM` is read as an [`EnvelopeSender`] instead: RFC 5321's limits
//! are for what a host generates, and real senders exceed them (BATV and SRS local parts over
//! 64 octets, quoted local parts). Refusing them would make the MTA bounce a person's post. An
//! envelope sender is only logged and compared; anything that would answer it or write it
//! into mail gets it through [`EnvelopeSender::address`], the strict parse, or not at all.

use std::fmt;

/// RFC 5321 limits: 64 octets for the local part, 255 for the domain, 254 for the whole path.
const MAX_LOCAL: usize = 64;
const MAX_DOMAIN: usize = 255;
const MAX_TOTAL: usize = 254;

/// The longest local part accepted in an envelope sender: four times RFC 5321's, room for SRS
/// wrapped in BATV; smtp-proto refuses a reverse path over 256 octets before we see it.
const MAX_ENVELOPE_LOCAL: usize = 256;

/// A validated mail address. The domain is stored lowercase; the local part keeps its case
/// (RFC 5321 says only the receiving host may interpret it) but compares case-insensitively via
/// [`Address::key`], which is how members are stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    local: String,
    domain: String,
}

/// Why an address was refused, in words a user understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Nothing was given.
    #[error("the address is empty")]
    Empty,
    /// No `@`, or more than one.
    #[error("the address must have exactly one @")]
    NoAt,
    /// A byte that must never appear in an address.
    #[error("the address contains a forbidden character {0:?}")]
    Forbidden(char),
    /// The part before `@` is missing or too long.
    #[error("the local part (before @) must be 1 to 64 characters")]
    LocalLength,
    /// The domain is missing, too long or malformed.
    #[error("the domain (after @) is not a valid host name")]
    Domain,
    /// The whole address is longer than 254 characters.
    #[error("the address is longer than 254 characters")]
    TooLong,
    /// The part before `@` of an envelope sender is missing or over [`MAX_ENVELOPE_LOCAL`].
    #[error("the local part (before @) must be 1 to {MAX_ENVELOPE_LOCAL} characters")]
    EnvelopeLocalLength,
}

impl Address {
    /// Parse and validate `local@domain`; surrounding whitespace and one pair of angle
    /// brackets are tolerated, anything else odd is refused.
    pub fn parse(input: &str) -> Result<Address, AddressError> {
        let s = input.trim();
        let s = s
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix('>'))
            .unwrap_or(s);
        if s.is_empty() {
            return Err(AddressError::Empty);
        }
        if s.len() > MAX_TOTAL {
            return Err(AddressError::TooLong);
        }
        if let Some(c) = s.chars().find(|&c| is_forbidden(c)) {
            return Err(AddressError::Forbidden(c));
        }
        let mut parts = s.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(AddressError::NoAt);
        };
        if local.is_empty() || local.len() > MAX_LOCAL {
            return Err(AddressError::LocalLength);
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(AddressError::Forbidden('.'));
        }
        if !valid_domain(domain) {
            return Err(AddressError::Domain);
        }
        Ok(Address {
            local: local.to_string(),
            domain: domain.to_ascii_lowercase(),
        })
    }

    /// The part before `@`, as given.
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The domain, lowercase.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The comparison and storage key: the whole address in lowercase. Virtually every
    /// mail system treats local parts case-insensitively, and a member who types their address
    /// with a capital letter must not become a second member.
    pub fn key(&self) -> String {
        format!("{}@{}", self.local.to_lowercase(), self.domain)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// The envelope sender of an LMTP transaction (`MAIL FROM`), read liberally: a local part of up
/// to 256 octets with any character but controls (quoted local parts arrive here unquoted, as
/// smtp-proto hands them over), and a valid host name after the last `@`. The null sender `<>`
/// is [`EnvelopeSender::null`].
///
/// Its text is shown in logs (`Display`) and nowhere else: what may answer the sender, compare
/// it with members or name it in a mail asks for [`EnvelopeSender::address`], which is `None`
/// for a sender the strict parse refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeSender {
    /// As received, without angle brackets or the quotes of a quoted local part; empty for the
    /// null sender.
    path: String,
}

impl EnvelopeSender {
    /// The null sender `<>` (bounces and other automatic mail).
    pub fn null() -> EnvelopeSender {
        EnvelopeSender {
            path: String::new(),
        }
    }

    /// Check a reverse path as smtp-proto returns it (no angle brackets; quotes of a quoted
    /// local part removed); empty is the null sender. Refused: any control character (CR, LF,
    /// NUL, TAB, DEL...) or Unicode line separator, no `@`, an empty or over-long local part, a domain that is not a
    /// host name.
    pub fn parse(path: &str) -> Result<EnvelopeSender, AddressError> {
        if path.is_empty() {
            return Ok(EnvelopeSender::null());
        }
        // Unicode's line and paragraph separators end a line in some log viewers, as CR/LF do.
        if let Some(c) = path
            .chars()
            .find(|&c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
        {
            return Err(AddressError::Forbidden(c));
        }
        // A quoted local part may hold an `@`; a host name never does.
        let Some((local, domain)) = path.rsplit_once('@') else {
            return Err(AddressError::NoAt);
        };
        if local.is_empty() || local.len() > MAX_ENVELOPE_LOCAL {
            return Err(AddressError::EnvelopeLocalLength);
        }
        if !valid_domain(domain) {
            return Err(AddressError::Domain);
        }
        Ok(EnvelopeSender {
            path: path.to_string(),
        })
    }

    /// Whether this is the null sender `<>`.
    pub fn is_null(&self) -> bool {
        self.path.is_empty()
    }

    /// The sender as a strictly valid [`Address`], the only form in which it may be answered,
    /// compared with members or written into mail; `None` for the null sender and for one the
    /// strict parse refuses (too long, quoted, ...): there is no address to answer then.
    pub fn address(&self) -> Option<Address> {
        let (local, _) = self.path.rsplit_once('@')?;
        let a = Address::parse(&self.path).ok()?;
        // `Address::parse` forgives blanks and angle brackets around its input; here they came
        // from inside quotes (`" victim"@x`) and make another mailbox.
        (a.local() == local).then_some(a)
    }
}

impl fmt::Display for EnvelopeSender {
    /// `<>` for the null sender; a local part that is not a dot-atom is quoted again, so the
    /// log shows `"john smith"@example.org` as the sender wrote it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some((local, domain)) = self.path.rsplit_once('@') else {
            return f.write_str("<>");
        };
        if is_dot_atom(local) {
            return f.write_str(&self.path);
        }
        f.write_str("\"")?;
        for c in local.chars() {
            if matches!(c, '"' | '\\') {
                f.write_str("\\")?;
            }
            write!(f, "{c}")?;
        }
        write!(f, "\"@{domain}")
    }
}

/// RFC 5322 `dot-atom-text` (with UTF-8, RFC 6531): atext runs separated by single dots.
fn is_dot_atom(local: &str) -> bool {
    !local.is_empty()
        && local.split('.').all(|run| {
            !run.is_empty()
                && run.chars().all(|c| {
                    c.is_ascii_alphanumeric() || !c.is_ascii() || "!#$%&'*+-/=?^_`{|}~".contains(c)
                })
        })
}

/// Characters refused anywhere in an address: controls (CR, LF, NUL...), space, and the
/// specials that would end or nest an address in a header or an SMTP command.
fn is_forbidden(c: char) -> bool {
    c.is_control()
        || c.is_whitespace()
        || matches!(
            c,
            '<' | '>' | '(' | ')' | '[' | ']' | ',' | ';' | ':' | '"' | '\\'
        )
}

/// A host name: dot-separated labels of letters, digits, hyphens (and UTF-8 for IDN), no empty
/// label, no leading or trailing hyphen, at most 255 octets.
fn valid_domain(domain: &str) -> bool {
    if domain.is_empty() || domain.len() > MAX_DOMAIN {
        return false;
    }
    domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses() {
        let a = Address::parse("  <Alice.Smith+tag@Example.ORG> ").expect("valid");
        assert_eq!(a.to_string(), "Alice.Smith+tag@example.org");
        assert_eq!(a.key(), "alice.smith+tag@example.org");
        assert!(Address::parse("x@b\u{fc}cher.de").is_ok());
    }

    #[test]
    fn refuses_injection_and_garbage() {
        for bad in [
            "",
            "<>",
            "a@b@c",
            "nobody",
            "a b@example.org",
            "a@example.org\r\nBcc: x@y.z",
            "a\0@example.org",
            "@example.org",
            "a@",
            "a@-x.org",
            "a@x..org",
            ".a@x.org",
            "a..b@x.org",
            "\"q\"@x.org",
            "@route:a@x.org",
            "a,b@x.org",
        ] {
            assert!(Address::parse(bad).is_err(), "accepted {bad:?}");
        }
        let long = format!("{}@x.org", "a".repeat(65));
        assert_eq!(Address::parse(&long), Err(AddressError::LocalLength));
        let long = format!("a@{}.org", "b.".repeat(130));
        assert_eq!(Address::parse(&long), Err(AddressError::TooLong));
    }

    #[test]
    fn envelope_senders_are_read_liberally_but_only_strict_ones_can_be_answered() {
        // BATV over SRS: 100 octets before the @.
        let srs = format!(
            "prvs=0417a1b2c3=SRS0=k9tZ=QL=fwd.example={}",
            "x".repeat(70)
        );
        let long = EnvelopeSender::parse(&format!("{srs}@example.net")).expect("long local part");
        assert_eq!(long.address(), None);
        assert_eq!(long.to_string(), format!("{srs}@example.net"));
        // Quoted local parts arrive unquoted from smtp-proto; the log shows them quoted again.
        for (given, shown) in [
            ("john smith@example.org", "\"john smith\"@example.org"),
            ("a@b@example.org", "\"a@b\"@example.org"),
            ("say \"hi\"@example.org", "\"say \\\"hi\\\"\"@example.org"),
            (" victim@example.org", "\" victim\"@example.org"),
        ] {
            let s = EnvelopeSender::parse(given).expect(given);
            assert_eq!(s.to_string(), shown);
            assert_eq!(s.address(), None, "{given}");
        }
        let plain = EnvelopeSender::parse("Poster@Outside.TEST").expect("plain");
        assert_eq!(
            plain.address().map(|a| a.key()).as_deref(),
            Some("poster@outside.test")
        );
        let null = EnvelopeSender::parse("").expect("null sender");
        assert!(null.is_null() && null.address().is_none());
        assert_eq!(null.to_string(), "<>");
        assert_eq!(null, EnvelopeSender::null());
    }

    #[test]
    fn envelope_senders_refuse_controls_and_bad_domains() {
        for bad in [
            "a\r\nb@x.org",
            "a\rb@x.org",
            "a\0b@x.org",
            "a\tb@x.org",
            "a\u{7f}b@x.org",
            "a\u{85}b@x.org",
            "a\u{2028}b@x.org",
            "nobody",
            "@x.org",
            "a@",
            "a@-x.org",
            "a@x..org",
            "a@[192.0.2.1]",
            "a@x.org\r\n",
        ] {
            assert!(EnvelopeSender::parse(bad).is_err(), "accepted {bad:?}");
        }
        let over = format!("{}@x.org", "a".repeat(MAX_ENVELOPE_LOCAL + 1));
        assert_eq!(
            EnvelopeSender::parse(&over),
            Err(AddressError::EnvelopeLocalLength)
        );
        let most = format!("{}@x.org", "a".repeat(MAX_ENVELOPE_LOCAL));
        assert!(EnvelopeSender::parse(&most).is_ok());
    }
}
