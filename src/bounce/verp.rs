//! VERP: the member's address travels in the envelope sender of each list copy, as the
//! extension of the bounce address (`dev-bounces+bob=example.org@lists.example.org`), so a
//! bounce names the member even when its text does not. The LAST `=` stands for `@`: a local
//! part may contain `=`, a domain never does.

use crate::address::Address;

/// VERP: "bob=example.org" -> Some("bob@example.org") (the LAST '=' stands for '@'), validated
/// with [`Address::parse`] and returned as its lowercase key; None if not decodable. An
/// extension with whitespace, control characters, angle brackets or an `@` is refused rather
/// than trimmed.
pub fn decode_verp(extension: &str) -> Option<String> {
    if extension
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '@'))
    {
        return None;
    }
    let (local, domain) = extension.rsplit_once('=')?;
    Address::parse(&format!("{local}@{domain}"))
        .ok()
        .map(|a| a.key())
}

/// "bob@example.org" -> "bob=example.org" (the last '@' becomes '='). A string without '@' is
/// returned as it is, and does not decode.
pub fn encode_verp(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => format!("{local}={domain}"),
        None => address.to_string(),
    }
}
