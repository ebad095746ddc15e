//! Which handler takes a delivery, by the role of the address it was sent to: posts go
//! through the [`crate::pipeline`], membership addresses to [`crate::requests`], bounce
//! addresses to [`crate::bounce::handle`], `NAME-owner@` to [`crate::owner`]. Each returns an
//! [`Outcome`] or a [`PostError`]; the LMTP session turns that into the recipient's reply.

use std::sync::Arc;

use crate::config::{Config, ListConfig};
use crate::context::{Context, Delivery};
use crate::lmtp::session::Backend;
use crate::outcome::{Outcome, PostError};
use crate::registry::Registry;
use crate::requests::Action;
use crate::route::Role;

/// Handle `delivery` for the address of `role` on `list`.
pub async fn deliver(
    ctx: &Context,
    delivery: &Delivery,
    list: &Arc<ListConfig>,
    role: &Role,
) -> Result<Outcome, PostError> {
    match role {
        Role::Post => crate::pipeline::post::run(ctx, list, delivery).await,
        Role::Owner => match crate::owner::forward(ctx, list, delivery).await {
            Ok(owners) => Ok(Outcome::Forwarded {
                list: list.key(),
                owners,
            }),
            Err(e) => {
                tracing::warn!(session = delivery.session, id = %delivery.id, list = %list.key(), error = %e, "owner mail not forwarded");
                Err(e)
            }
        },
        Role::Request => crate::requests::handle(ctx, list, delivery, &Action::Commands).await,
        Role::Join => crate::requests::handle(ctx, list, delivery, &Action::Join).await,
        Role::Leave => crate::requests::handle(ctx, list, delivery, &Action::Leave).await,
        Role::Unsubscribe(ext) => {
            let action = Action::Unsubscribe(ext.clone());
            crate::requests::handle(ctx, list, delivery, &action).await
        }
        Role::Confirm(token) => {
            let action = Action::Confirm(token.clone());
            crate::requests::handle(ctx, list, delivery, &action).await
        }
        Role::Bounces(ext) => {
            crate::bounce::handle::handle(ctx, list, delivery, ext.as_deref()).await
        }
    }
}

/// The real server behind every LMTP session.
impl Backend for Context {
    fn config(&self) -> Arc<Config> {
        Context::config(self)
    }

    fn registry(&self) -> Arc<Registry> {
        self.registry.borrow().clone()
    }

    async fn deliver(
        self: Arc<Self>,
        delivery: Arc<Delivery>,
        list: Arc<ListConfig>,
        role: Role,
    ) -> Result<Outcome, PostError> {
        deliver(&self, &delivery, &list, &role).await
    }
}
