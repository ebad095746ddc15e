//! Configuration: the global file and one file per list, parsed with serde
//! (`deny_unknown_fields`), validated into shared types; errors carry file, line, column, key.

pub mod delivery;
pub mod error;
pub mod global;
pub mod list;
pub mod moderation;
mod settings;

pub use error::ConfigError;
pub use global::{
    settings, Config, Limits, Listen, ReinjectConfig, RequestsConfig, RoutingConfig, ServerConfig,
    StoreConfig,
};
pub use list::{Decoration, ListConfig, Roster, Subscription, SubscriptionPolicy};
pub use moderation::{Action, PostingPolicy};
pub use settings::{Bound, Setting};
