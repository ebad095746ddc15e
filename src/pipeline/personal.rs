//! Personalized delivery: per-member envelope sender (VERP), footer and List-Unsubscribe,
//! rendered from a post prepared once ([`decorate::Prepared`]).
//!
//! A member's own unsubscribe address is `NAME-leave+MAC.LOCAL=DOMAIN@LISTDOMAIN`: the MAC
//! (HMAC-SHA256 over list and member with the installation's secret, 128 bits shown as 26
//! base32 characters) proves
//! the address came from that member's copy, so mail to it unsubscribes at once, and nobody
//! can forge one for somebody else.

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::decorate::Prepared;
use crate::bounce::{decode_verp as unverp, encode_verp as verp};
use crate::config::ListConfig;
use crate::reinject::Wire;
use crate::route::Role;
use crate::store::ct_eq;

/// Bytes of the MAC shown in an unsubscribe address (128 bits, as many as a token's secret).
const MAC_BYTES: usize = 16;

/// HMAC-SHA256 (RFC 2104) of the concatenated `data` under `key`.
fn hmac(key: &[u8; 32], data: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length (longer ones are hashed, shorter ones zero-padded), so
    // `new_from_slice` cannot fail here.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key).expect("HMAC-SHA256 accepts a key of any length");
    for d in data {
        mac.update(d);
    }
    mac.finalize().into_bytes().into()
}

/// The MAC of `member_key` on `list`: 128 bits in lowercase base32 (RFC 4648 alphabet, no
/// padding; 26 characters, case-insensitive like a local part may be treated).
fn mac_text(secret: &[u8; 32], list: &str, member_key: &str) -> String {
    let mac = hmac(
        secret,
        &[
            b"unsubscribe\0",
            list.as_bytes(),
            b"\0",
            member_key.as_bytes(),
            b"\0",
        ],
    );
    base32(&mac[..MAC_BYTES])
}

/// RFC 4648 base32 in lowercase, without padding.
fn base32(bytes: &[u8]) -> String {
    let mut text = BASE32_NOPAD.encode(bytes);
    // The alphabet is ASCII letters and digits: lowercasing maps it one to one.
    text.make_ascii_lowercase();
    text
}

/// The envelope sender for `member`'s copy: `NAME-bounces+LOCAL=DOMAIN@LISTDOMAIN`.
pub fn verp_sender(list: &ListConfig, delimiter: char, member: &str) -> String {
    Role::Bounces(Some(verp(member))).address(list, delimiter)
}

/// `member`'s own unsubscribe address.
pub fn unsubscribe_address(
    list: &ListConfig,
    delimiter: char,
    secret: &[u8; 32],
    member: &str,
) -> String {
    let key = member.to_lowercase();
    let ext = format!("{}.{}", mac_text(secret, &list.key(), &key), verp(&key));
    Role::Unsubscribe(ext).address(list, delimiter)
}

/// The member an unsubscribe extension (`MAC.LOCAL=DOMAIN`) names, if its MAC is right.
pub fn verify_unsubscribe(list: &ListConfig, secret: &[u8; 32], ext: &str) -> Option<String> {
    let (mac, rest) = ext.split_once('.')?;
    let member = unverp(rest)?.to_lowercase();
    let want = mac_text(secret, &list.key(), &member);
    // Constant-time comparison: the MAC is the secret part. Some MTAs change the case of
    // local parts; the alphabet is case-insensitive.
    ct_eq(mac.to_ascii_lowercase().as_bytes(), want.as_bytes()).then_some(member)
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
    fn hmac_matches_rfc_4231_and_the_mac_is_128_bits() {
        // RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let mac = hmac(&key, &[b"what do ya want ", b"for nothing?"]);
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // RFC 4648 test vectors (lowercase, unpadded).
        assert_eq!(base32(b"f"), "my");
        assert_eq!(base32(b"foob"), "mzxw6yq");
        assert_eq!(base32(b"foobar"), "mzxw6ytboi");
        // Same key and parts give the same MAC, another member or secret another one.
        let secret = [7u8; 32];
        let mac = mac_text(&secret, "l", "a@x");
        assert_eq!(mac.len(), 26);
        assert_eq!(mac, mac_text(&secret, "l", "a@x"));
        assert_ne!(mac, mac_text(&secret, "l", "b@x"));
        assert_ne!(mac, mac_text(&[8u8; 32], "l", "a@x"));
        // The parts are separated: "l" + "a@x" is not "la" + "@x".
        assert_ne!(mac_text(&secret, "la", "@x"), mac_text(&secret, "l", "a@x"));
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

    #[test]
    fn macs_already_handed_out_stay_valid() {
        // Pinned outputs (checked against an independent HMAC-SHA256 and RFC 4648 base32):
        // unsubscribe addresses sit in members' mailboxes, so no change of implementation may
        // change a bit of them.
        let counting: [u8; 32] = std::array::from_fn(|i| i as u8);
        for (secret, list, member, want) in [
            ([7u8; 32], "l", "a@x", "absv3vn5hj2jqysdniy7b6rtzy"),
            (
                counting,
                "announce@lists.example.org",
                "bob@example.org",
                "ihoqkhh26dficflklqu5wdiv6u",
            ),
            (
                [0xff; 32],
                "d\u{e9}bat@example.org",
                "\u{e9}lise+tag@example.fr",
                "pt3la5jvuudpxdqkroswbiq36m",
            ),
        ] {
            assert_eq!(mac_text(&secret, list, member), want, "{list} {member}");
        }
    }
}
