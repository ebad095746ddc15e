//! Mail to the bounce address that reports no failure: delay warnings, success notices and
//! auto-replies. All are to be ignored, so each test is specific: a message that merely might be
//! one of them is left unrecognised and reaches the owners.

use mail_parser::Message;

use super::text::fold;

/// Sentences of delay warnings (folded text).
const DELAY_WORDS: &[&str] = &[
    "this is a warning only",                                 // Postfix
    "this is a warning message only",                         // Sendmail
    "the following addresses had transient non-fatal errors", // Sendmail
    "has not yet been delivered to one or more of its",       // Exim
    "delivery attempts will continue",                        // Exim
    "message still undelivered",
    "delivery to the following recipient has been delayed", // Gmail, Exchange
    "delivery to the following recipients has been delayed",
    "delivery is delayed to these recipients or groups", // Exchange 2010+
    "there was a temporary problem delivering your message", // Gmail
    "hasn't been delivered yet",                         // Office 365
];

/// Subjects of delay warnings (folded, prefixes).
const DELAY_SUBJECTS: &[&str] = &[
    "delayed mail",                    // Postfix
    "delivery delayed:",               // Exchange
    "warning: could not send message", // Sendmail
    "mail delivery warning",
    "delivery status notification (delay)", // Gmail, Exchange
    "warning: message still undelivered",
];

/// Subjects and sentences of success notices (DSN NOTIFY=SUCCESS, relayed to a non-DSN host).
const SUCCESS_SUBJECTS: &[&str] = &[
    "successful mail delivery report", // Postfix
    "delivery status notification (success)",
    "delivery status notification (relay)",
    "delivered:", // Exchange
    "relayed:",   // Exchange
];
const SUCCESS_WORDS: &[&str] = &[
    "your message was successfully delivered to the destination", // Postfix
    "delivery to these recipients or groups is complete",         // Exchange
];

/// Subjects that say "failure notice" whatever the body: never an auto-reply.
const BOUNCE_SUBJECTS: &[&str] = &[
    "undeliver",
    "undelivered mail",
    "returned mail",
    "failure notice",
    "delivery status notification",
    "mail delivery failed",
    "delivery failure",
    "non remis",
    "unzustellbar",
    "nicht zustellbar",
];

/// Subjects of auto-replies (folded): anywhere for the specific phrases, at the start for the
/// short ones.
const AUTO_REPLY_PHRASES: &[&str] = &[
    "out of office",
    "out of the office",
    "automatic reply",
    "auto-reply",
    "autoreply",
    "auto reply",
    "automatische antwort",
    "abwesenheitsnotiz",
    "réponse automatique",
    "respuesta automática",
    "risposta automatica",
    "resposta automática",
    "automatisch antwoord",
];
const AUTO_REPLY_PREFIXES: &[&str] = &["auto:", "vacation:", "away:", "on vacation", "away from"];

/// A delay warning: its subject or its sentences say so.
pub(super) fn is_delay(subject: &str, flat: &str) -> bool {
    let subject = fold(subject.trim());
    DELAY_SUBJECTS.iter().any(|s| subject.starts_with(s))
        || (subject.starts_with("warning: message") && subject.contains("delayed")) // Exim
        || DELAY_WORDS.iter().any(|w| flat.contains(w))
}

/// A success (delivered or relayed) notice.
pub(super) fn is_success(subject: &str, flat: &str) -> bool {
    let subject = fold(subject.trim());
    SUCCESS_SUBJECTS.iter().any(|s| subject.starts_with(s))
        || SUCCESS_WORDS.iter().any(|w| flat.contains(w))
}

/// A subject that announces a failure notice.
pub(super) fn bounce_subject(subject: &str) -> bool {
    let subject = fold(subject);
    BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s))
}

/// An auto-reply (RFC 3834 Auto-Submitted: auto-replied, the X-Autoreply family, Precedence:
/// auto_reply) or a subject of one. Call only for a message that is no failure notice: MTAs
/// mark bounces auto-replied too.
pub(super) fn is_auto_reply(message: &Message<'_>, subject: &str) -> bool {
    auto_reply_marked(message, subject, false)
}

/// [`is_auto_reply`] for replies to listkeeper's own mails, whose subjects carry words others
/// chose (a held post's subject, a list's address): the subject's phrases count only at its
/// start, where vacation programs put them ("Out of Office: Re: ...", "Automatic reply: ...").
pub(crate) fn is_auto_reply_to_us(message: &Message<'_>, subject: &str) -> bool {
    auto_reply_marked(message, subject, true)
}

fn auto_reply_marked(message: &Message<'_>, subject: &str, prefix_only: bool) -> bool {
    let header = |name: &str| {
        message
            .header_raw(name)
            .map(|v| v.trim().to_ascii_lowercase())
    };
    if header("Auto-Submitted").is_some_and(|v| v.starts_with("auto-replied")) {
        return true;
    }
    if [
        "X-Autoreply",
        "X-Autorespond",
        "X-Autoresponder",
        "X-Vacation",
    ]
    .iter()
    .any(|h| header(h).is_some_and(|v| v != "no"))
    {
        return true;
    }
    if header("Precedence").is_some_and(|v| v == "auto_reply") {
        return true;
    }
    let subject = fold(subject.trim());
    AUTO_REPLY_PHRASES.iter().any(|p| {
        if prefix_only {
            subject.starts_with(p)
        } else {
            subject.contains(p)
        }
    }) || AUTO_REPLY_PREFIXES.iter().any(|p| subject.starts_with(p))
}
