//! The one way every role handler mails someone: a generated mail (a [`Kind`] of notice,
//! rendered from the list's templates by [`crate::notice`]) sent through the re-injection
//! pool, with the placeholder values every template shares.

use std::sync::Arc;

use crate::config::ListConfig;
use crate::context::Context;
use crate::notice::{self, Kind, Vars};
use crate::outcome::PostError;
use crate::reinject::{RcptStatus, TxError, Wire};
use crate::route::Role;

/// Common placeholder values for the mails of `list`.
pub fn list_vars(list: &ListConfig, address: &str) -> Vars {
    let mut v = Vars::new();
    v.insert("list_address", list.key());
    v.insert("list_name", list.name.clone());
    v.insert("display_name", list.display_name.clone());
    v.insert("description", list.description.clone());
    v.insert("request_address", list.role_address("-request"));
    v.insert("owner_address", list.role_address("-owner"));
    v.insert("address", address.to_string());
    v
}

/// "in 3 days", "in 5 hours", "in 40 minutes": when a token or a held post expires (the
/// templates say "expires {expires}").
pub fn expires_in(secs: u64) -> String {
    match secs {
        s if s >= 2 * 86_400 => format!("in {} days", s / 86_400),
        s if s >= 2 * 3600 => format!("in {} hours", s / 3600),
        s => format!("in {} minutes", (s / 60).max(1)),
    }
}

/// `text`, or `(no WHAT)` when it is empty: for placeholders a person reads.
pub fn or_none(text: &str, what: &str) -> String {
    if text.is_empty() {
        format!("(no {what})")
    } else {
        text.to_string()
    }
}

/// Send a generated mail of `kind` to `to`; a template switched off sends nothing. The MTA
/// refusing the address (5xx) is logged, deferring it is an error (the caller answers 4xx).
pub async fn send(
    ctx: &Context,
    list: &ListConfig,
    kind: Kind,
    to: &str,
    vars: &Vars,
    reply_to: Option<&str>,
    in_reply_to: Option<&str>,
) -> Result<bool, PostError> {
    let Some(t) = list.templates.get(kind) else {
        return Ok(false);
    };
    let subject = notice::render(&t.subject, vars);
    let body = notice::render(&t.body, vars);
    let from = list.role_address("-request");
    let auto = match kind {
        Kind::HeldNotice | Kind::HeldSummary | Kind::ApprovalRequest | Kind::HeldExpired => {
            "auto-generated"
        }
        _ => "auto-replied",
    };
    let n = notice::Notice {
        from_name: &list.display_name,
        from: &from,
        to,
        reply_to,
        in_reply_to,
        auto_submitted: auto,
        list_id: &list.decoration.list_id,
        subject: &subject,
        body: &body,
        domain: list.address.domain(),
    };
    let bytes = notice::build(&n).map_err(|e| {
        tracing::error!(list = %list.key(), kind = kind.key(), error = %e, "could not build a generated mail");
        PostError::Unparseable
    })?;
    let wire = Arc::new(Wire::new(&bytes));
    match ctx
        .pool
        .send(list.bounces_address(), vec![to.to_string()], wire)
        .await?
        .first()
    {
        Some(RcptStatus::Accepted) => Ok(true),
        Some(RcptStatus::Refused(why)) => {
            tracing::info!(list = %list.key(), to, reply = %why, kind = kind.key(), "generated mail refused by the MTA");
            Ok(false)
        }
        Some(RcptStatus::Failed(e)) if e.is_permanent() => {
            tracing::info!(list = %list.key(), to, error = %e, kind = kind.key(), "generated mail cannot be sent");
            Ok(false)
        }
        Some(RcptStatus::Deferred(why)) => Err(PostError::Deferred(why.clone())),
        Some(RcptStatus::Failed(e)) => Err(PostError::Mta(e.clone())),
        None => Err(PostError::Mta(TxError::Connection {
            reason: "the MTA gave no reply for the recipient".into(),
            data_sent: true,
        })),
    }
}

/// The confirm address that carries `token`.
pub fn confirm_address(ctx: &Context, list: &ListConfig, token: &str) -> String {
    let delim = ctx.config().server.recipient_delimiter;
    Role::Confirm(token.to_string()).address(list, delim)
}
