//! The read-only commands: `info`, `who`, `help`.

use super::Run;
use crate::config::{ListConfig, Roster, SubscriptionPolicy};
use crate::context::blocking;
use crate::outcome::PostError;

impl Run<'_> {
    pub(super) fn info(&self) -> String {
        let l = self.list;
        let posting = match l.posting.policy {
            crate::config::PostingPolicy::Open => "anyone may post",
            crate::config::PostingPolicy::Members => "members may post",
            crate::config::PostingPolicy::Moderated => "every post is reviewed by a moderator",
            crate::config::PostingPolicy::Announce => "only designated posters may post",
        };
        let joining = match l.subscription.policy {
            SubscriptionPolicy::Open => "anyone may join after confirming their address",
            SubscriptionPolicy::Moderate => "the owners approve new members",
            SubscriptionPolicy::Closed => "the owners add new members",
        };
        format!(
            "{} <{}>\n{}\nPosting: {posting}. Joining: {joining}.\nOwners: {}",
            if l.display_name.is_empty() {
                &l.name
            } else {
                &l.display_name
            },
            l.key(),
            l.description,
            l.role_address("-owner")
        )
    }

    pub(super) async fn who(&self) -> Result<String, PostError> {
        let l = self.list;
        let is_owner = l.owners.iter().any(|o| o.key() == self.sender.key());
        let allowed = match l.subscription.roster {
            Roster::Nobody => false,
            Roster::Owners => is_owner,
            Roster::Members => {
                is_owner || {
                    let (store, key, who) =
                        (self.ctx.store.clone(), l.key(), self.sender.to_string());
                    blocking(move || store.member_get(&key, &who))
                        .await?
                        .is_some()
                }
            }
        };
        if !allowed {
            return Ok("The member roster of this list is not available to you.".into());
        }
        const MAX: usize = 5000;
        let (store, key) = (self.ctx.store.clone(), l.key());
        let members = blocking(move || store.members_after(&key, None, MAX + 1)).await?;
        let mut out = format!("Members of {}:\n", l.key());
        for m in members.iter().take(MAX) {
            out.push_str(&m.address);
            out.push('\n');
        }
        if members.len() > MAX {
            out.push_str(&format!("(only the first {MAX} are listed)\n"));
        }
        Ok(out.trim_end().to_string())
    }
}

/// The answer to `help`; a moderator or owner (`for_moderator`) also gets their commands,
/// everyone else a line saying they exist.
pub fn help_text(list: &ListConfig, for_moderator: bool) -> String {
    let req = list.role_address("-request");
    let moderators = if for_moderator {
        "\n\nFor moderators and owners (TOKEN is in the notice you were sent; replying to the\
         \nnotice approves it):\
         \n  approve TOKEN          distribute a held post, or accept a subscription waiting for the owners\
         \n  reject TOKEN REASON    refuse it; the poster or subscriber is told the reason\
         \n  discard TOKEN          drop a held post without telling the poster"
            .to_string()
    } else {
        "\n\nModerators and owners have commands to decide on held posts and subscriptions:\
         \nthey get them when they send `help` from their own address."
            .to_string()
    };
    format!(
        "Commands for {list}, sent to {req} in the subject or the body (one per line):\n\
         \n  join             subscribe the address you write from (you will be asked to confirm)\
         \n  leave            unsubscribe (you will be asked to confirm)\
         \n  confirm TOKEN    complete a request; replying to the confirmation mail does the same\
         \n  set nomail on    stay subscribed but receive no posts (`set nomail off` to resume)\
         \n  info             about this list\
         \n  who              the member roster, where the list allows it\
         \n  help             this text\
         \n  end              stop reading here (a signature after \"-- \" is ignored too)\
         {moderators}\
         \n\nYou can also write to {join} to join and to {leave} to leave. The owners are at {owner}.",
        list = list.key(),
        join = list.role_address("-join"),
        leave = list.role_address("-leave"),
        owner = list.role_address("-owner"),
    )
}
