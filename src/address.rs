//! Strict parsing and normalisation of mail addresses.
//!
//! Every address that reaches the store, a generated header or an SMTP envelope passes through
//! [`Address::parse`] first. It accepts the RFC 5321 `local@domain` forms list operators meet in
//! practice and refuses everything that could smuggle a line break, a second address or a
//! routing trick into a command or a header: control characters, spaces, angle brackets, source
//! routes, quoted local parts, empty parts and over-long input.

use std::fmt;

/// RFC 5321 limits: 64 octets for the local part, 255 for the domain, 254 for the whole path.
const MAX_LOCAL: usize = 64;
const MAX_DOMAIN: usize = 255;
const MAX_TOTAL: usize = 254;

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
}
