//! listkeeper: a mailing-list manager that runs as an LMTP sidecar to an existing MTA.
//!
//! # Layout
//! Modules in the order a post flows through them:
//!
//! - [`config`]   global file and one TOML file per list -> validated, shared `Config` / `ListConfig`
//! - [`address`]  strict parsing and normalisation of mail addresses
//! - [`registry`] the live set of lists (swapped atomically on reload; broken files disable one list)
//! - [`lmtp`]     RFC 2033 server: I/O-free replies, the `Session<S>` state machine, the listeners
//! - [`mime`]     the nesting depth of a message before any parse, and the one full parse
//! - [`route`]    recipient address -> (list, role)
//! - [`pipeline`] per-role handling: classify (loops, posting policy), decorate, fan-out, owner
//! - [`bounce`]   what a mail to NAME-bounces@ says (DSN, MTA formats, auto-replies) and VERP
//! - [`reinject`] SMTP client connections and the pool of parallel infeeds into the MTA
//! - [`store`]    the embedded redb store: members and the fan-out journal
//! - [`notice`]   every generated mail: templates (defaults + per-list overrides), rendering, building
//! - [`control`]  a local control socket so the CLI can change the store of a running server
//! - [`stats`]    process-wide counters for `listkeeper status`
//! - [`activation`] listeners handed over by systemd socket activation
//! - [`server`]   wires it all together: listeners, signals, reload, graceful shutdown
//! - [`cli`]      the `listkeeper` command line
//! - [`logging`]  the log subscriber: one line per event, control characters in values escaped

pub mod activation;
pub mod address;
pub mod bounce;
pub mod cli;
pub mod config;
pub mod context;
pub mod control;
pub mod lmtp;
pub mod logging;
pub mod mailer;
pub mod mime;
pub mod notice;
pub mod outcome;
pub mod owner;
pub mod pipeline;
pub mod registry;
pub mod reinject;
pub mod requests;
pub mod roles;
pub mod route;
pub mod scheduled;
pub mod server;
pub mod stats;
pub mod store;
