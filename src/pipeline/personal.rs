//! Personalized delivery: per-member envelope sender (VERP), footer and List-Unsubscribe,
//! rendered from a post prepared once ([`decorate::Prepared`]).
//!
//! A member's own unsubscribe address is `NAME-leave+MAC.LOCAL=DOMAIN@LISTDOMAIN`: the MAC
//! (HMAC-SHA256 over list and member with the installation's secret, 64 bits shown) proves
//! the address came from that member's copy, so mail to it unsubscribes at once, and nobody
//! can forge one for somebody else.

use sha2::{Digest, Sha256};

use super::decorate::Prepared;
use crate::bounce::{decode_verp as unverp, encode_verp as verp};
use crate::config::ListConfig;
use crate::reinject::Wire;
use crate::store::ct_eq;

/// Hex characters of the MAC in an unsubscribe address.
const MAC_HEX: usize = 16;

/// HMAC-SHA256 (RFC 2104).
fn hmac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(key);
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    for p in parts {
        inner.update(p);
        inner.update([0]);
    }
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn mac_hex(secret: &[u8; 32], list: &str, member_key: &str) -> String {
    hmac(
        secret,
        &[b"unsubscribe", list.as_bytes(), member_key.as_bytes()],
    )[..MAC_HEX / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The envelope sender for `member`'s copy: `NAME-bounces+LOCAL=DOMAIN@LISTDOMAIN`.
pub fn verp_sender(list: &ListConfig, delimiter: char, member: &str) -> String {
    format!(
        "{}-bounces{delimiter}{}@{}",
        list.name,
        verp(member),
        list.address.domain()
    )
}

/// `member`'s own unsubscribe address.
pub fn unsubscribe_address(
    list: &ListConfig,
    delimiter: char,
    secret: &[u8; 32],
    member: &str,
) -> String {
    let key = member.to_lowercase();
    format!(
        "{}-leave{delimiter}{}.{}@{}",
        list.name,
        mac_hex(secret, &list.key(), &key),
        verp(&key),
        list.address.domain()
    )
}

/// The member an unsubscribe extension (`MAC.LOCAL=DOMAIN`) names, if its MAC is right.
pub fn verify_unsubscribe(list: &ListConfig, secret: &[u8; 32], ext: &str) -> Option<String> {
    let (mac, rest) = ext.split_once('.')?;
    let member = unverp(rest)?.to_lowercase();
    let want = mac_hex(secret, &list.key(), &member);
    // Constant-time comparison: the MAC is the secret part.
    ct_eq(mac.as_bytes(), want.as_bytes()).then_some(member)
}

/// What a personalized fan-out needs besides the members.
pub struct Personal {
    /// The post, decorated once.
    pub prepared: Prepared,
    /// The footer with `{member_address}` and `{unsubscribe_address}` still in it.
    pub footer: Option<String>,
    /// The installation secret.
    pub secret: [u8; 32],
    /// The recipient delimiter.
    pub delimiter: char,
    /// VERP envelope senders.
    pub verp: bool,
}

impl Personal {
    /// `member`'s copy and its envelope sender.
    pub fn render(&self, list: &ListConfig, member: &str) -> (String, Wire) {
        let unsub = unsubscribe_address(list, self.delimiter, &self.secret, member);
        let footer = self.footer.as_ref().map(|f| {
            f.replace("{member_address}", member)
                .replace("{unsubscribe_address}", &unsub)
        });
        let bytes = self.prepared.render(footer.as_deref(), Some(&unsub));
        let from = if self.verp {
            verp_sender(list, self.delimiter, member)
        } else {
            list.bounces_address()
        };
        (from, Wire::from_owned(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_shape_and_verifies() {
        // Same key and parts give the same MAC, another member another one.
        let secret = [7u8; 32];
        assert_eq!(mac_hex(&secret, "l", "a@x"), mac_hex(&secret, "l", "a@x"));
        assert_ne!(mac_hex(&secret, "l", "a@x"), mac_hex(&secret, "l", "b@x"));
        assert_ne!(
            mac_hex(&secret, "l", "a@x"),
            mac_hex(&[8u8; 32], "l", "a@x")
        );
        assert_eq!(verp("bob@example.org"), "bob=example.org");
        assert_eq!(
            unverp("bob=x=example.org").as_deref(),
            Some("bob=x@example.org")
        );
        assert_eq!(
            unverp("b.o+b=example.org").as_deref(),
            Some("b.o+b@example.org")
        );
        assert_eq!(unverp("=example.org"), None);
    }
}
