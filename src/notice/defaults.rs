//! The built-in texts: short, plain and friendly; a list overrides any of them in its file.
//!
//! What the caller puts in the placeholders these texts expect:
//! - `{expires}` reads after "expires": "in 3 days", "on 2024-05-01 at 12:00 UTC".
//! - `{reason}` is never empty: pass "(none given)" when the owner gave no reason.
//! - `{subject}` is the Subject of the mail being answered, or "your commands" if it had none.
//! - `{results}` is one or more lines, each a quoted command and what happened to it.
//!
//! The confirmation subjects carry `confirm {token}` (and the approval request
//! `approve {token}`) literally, so a reply that reaches `NAME-request@` instead of the
//! confirm address still works: the command parser finds them in a reply's Subject.
//! `{display_name}` and `{description}` are not used here because a list may leave them empty.

use super::Kind;

/// The last line of every default text. Not behind a "-- " separator: its trailing space
/// would make mail-builder send every ASCII notice quoted-printable instead of 7bit.
macro_rules! signed {
    ($text:expr) => {
        concat!(
            $text,
            "\nMailing list {list_address}, run by {owner_address}\n"
        )
    };
}

/// Subject and body of `kind`'s built-in text.
pub fn text(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::ConfirmJoin => (
            "Please confirm: join {list_address} (confirm {token})",
            signed!(
                "Hello,

someone, maybe you, asked to subscribe {address}
to the mailing list {list_address}.

To confirm, simply reply to this message (what you write does not
matter), or send a mail with this line

    confirm {token}

to {request_address}.

If you did not ask for this, ignore this message: nothing happens
unless you confirm. The request expires {expires}.
"
            ),
        ),
        Kind::ConfirmLeave => (
            "Please confirm: leave {list_address} (confirm {token})",
            signed!(
                "Hello,

someone, maybe you, asked to unsubscribe {address}
from the mailing list {list_address}.

To confirm, simply reply to this message (what you write does not
matter), or send a mail with this line

    confirm {token}

to {request_address}.

If you did not ask for this, ignore this message: you stay
subscribed unless you confirm. The request expires {expires}.
"
            ),
        ),
        Kind::ConfirmNomail => (
            "Please confirm: nomail {setting} for {list_address} (confirm {token})",
            signed!(
                "Hello,

someone, maybe you, asked to set `nomail {setting}` for {address}
on the mailing list {list_address}. With nomail on you stay a member
but receive no posts; with nomail off posts are delivered again.

To confirm, simply reply to this message (what you write does not
matter), or send a mail with this line

    confirm {token}

to {request_address}.

If you did not ask for this, ignore this message: nothing changes
unless you confirm. The request expires {expires}.
"
            ),
        ),
        Kind::Welcome => (
            "Welcome to {list_address}",
            signed!(
                "Hello,

welcome to the mailing list {list_address}: {address} is now
subscribed.

To post, write to {list_address}.
To leave, send a mail with the word `leave` to {request_address}.
Send `help` to the same address for the other commands.
"
            ),
        ),
        Kind::Goodbye => (
            "You have left {list_address}",
            signed!(
                "Hello,

{address} is no longer subscribed to the mailing list
{list_address} and will receive no more posts from it.

If this was a mistake, send a mail with the word `join` to
{request_address}.
"
            ),
        ),
        Kind::CommandResults => (
            "Re: {subject}",
            signed!(
                "Hello,

this is what happened to the commands in your mail to
{request_address}:

{results}

Send a mail with the word `help` to {request_address} for the list
of commands.
"
            ),
        ),
        Kind::ApprovalRequest => (
            "Approval needed: {address} wants to join {list_address} (approve {token})",
            signed!(
                "Hello,

{address} asked to join the mailing list {list_address},
which needs an owner's approval.

To approve, simply reply to this message, or send a mail with this line

    approve {token}

to {request_address}. To refuse, send

    reject {token} REASON

to {request_address}; the reason, if you give one, is passed on
to {address}.

If no owner decides, the request expires {expires}.
"
            ),
        ),
        Kind::ApprovalGranted => (
            "Your request to join {list_address} was approved",
            signed!(
                "Hello,

an owner of the mailing list {list_address} approved your request:
{address} is now subscribed.

To leave later, send a mail with the word `leave` to
{request_address}.
"
            ),
        ),
        Kind::ApprovalRejected => (
            "Your request to join {list_address} was declined",
            signed!(
                "Hello,

an owner of the mailing list {list_address} declined the request
to subscribe {address}. The reason given:

    {reason}

For questions, write to the owners at {owner_address}.
"
            ),
        ),
        Kind::HeldNotice => (
            "Held for moderation: {subject} (approve {token})",
            signed!(
                "Hello,

a post to {list_address} from {sender} is held for a moderator.

Why: {reason}

{headers}

{excerpt}

To approve it, simply reply to this message, or send one of these
lines to {request_address}:

    approve {token}
    reject {token} REASON
    discard {token}

A rejection tells the poster, with the reason; a discard does not.
If no moderator decides, the post expires {expires}.
"
            ),
        ),
        Kind::HeldSummary => (
            "{count} post(s) waiting for moderation on {list_address}",
            signed!(
                "Hello,

these posts to {list_address} are waiting for a moderator:

{summary}

Send `approve TOKEN`, `reject TOKEN REASON` or `discard TOKEN`
to {request_address}.
"
            ),
        ),
        Kind::HeldAck => (
            "Your post to {list_address} is awaiting moderation",
            signed!(
                "Hello,

your post to {list_address} with the subject

    {subject}

is held until a moderator reviews it. Why: {reason}

You will hear from us if it is rejected; it expires {expires} if
nobody decides.
"
            ),
        ),
        Kind::PostRejected => (
            "Your post to {list_address} was rejected",
            signed!(
                "Hello,

a moderator of {list_address} rejected your post with the subject

    {subject}

The reason given:

    {reason}

For questions, write to the owners at {owner_address}.
"
            ),
        ),
        Kind::HeldExpired => (
            "Your post to {list_address} expired without review",
            signed!(
                "Hello,

your post to {list_address} with the subject

    {subject}

was held for a moderator, and nobody decided in time, so it was
not distributed. You may send it again, or write to the owners at
{owner_address}.
"
            ),
        ),
        Kind::BounceDisabled => (
            "Delivery from {list_address} to you is suspended",
            signed!(
                "Hello,

mail from the list {list_address} to {address} has been bouncing
for several days, so delivery to this address is suspended. You
are still subscribed.

If this mail reaches you, the problem may be over: ask the owners
at {owner_address} to re-enable delivery.
"
            ),
        ),
        Kind::BounceOwners => (
            "{address} {action} on {list_address} because of bounces",
            signed!(
                "Hello,

mail from {list_address} to {address}
keeps bouncing (score {score}), so the member was {action}.

To re-enable delivery, run on the list server:

    listkeeper members enable {list_address} {address}

and `listkeeper bounces list {list_address}` shows all scores.
"
            ),
        ),
        Kind::BounceProbe => (
            "Checking your address for {list_address}",
            signed!(
                "Hello,

mail from the list {list_address} to {address} has been bouncing
recently. This message checks whether the address works again;
there is nothing you need to do.
"
            ),
        ),
    }
}
