//! listkeeper: a mailing-list manager that runs as an LMTP sidecar to an existing MTA.
//!
//! # Layout
//! Modules in the order a post flows through them, each with what it owns:
//!
//! - [`lmtp`]      RFC 2033 server: the `Session` state machine over any stream and any
//!   `Backend`, the listeners, and every reply the server sends (`lmtp::reply`)
//! - [`mime`]      the nesting check before any parse, the one full parse, the line-ending
//!   normaliser and the header index
//! - [`route`]     recipient address -> (list, role), and `Role::address` back
//! - [`roles`]     which handler takes a delivery, by role; the server's `Backend`
//! - [`context`]   what every handler gets: the shared `Context` and the `Delivery`
//! - [`outcome`]   what handling came to: `Outcome` or `PostError` (temporary or permanent)
//! - [`pipeline`]  a post's journey, one file read top to bottom (`pipeline::post`): read once
//!   into a `Post` -> loop check -> authenticate -> moderate -> hold | decorate -> fan out
//!   -> record
//! - [`reinject`]  the SMTP client and the pool of parallel infeeds into the MTA
//! - [`store`]     the embedded redb store: members, journal, tokens, held posts, caps
//!
//! Beside the post's journey:
//!
//! - [`requests`]  `NAME-request@`, `-join`, `-leave`, `-confirm+TOKEN`: commands, tokens,
//!   decisions (an approved post resumes its journey)
//! - [`bounce`]    what a bounce says (DSN, MTA formats, VERP), and `NAME-bounces@` handling
//! - [`owner`]     `NAME-owner@`, forwarded to the owners
//! - [`mailer`]    the one way a handler mails someone (a notice through the pool)
//! - [`notice`]    every generated mail's text: templates, rendering, building
//! - [`scheduled`] work at a time: held posts expire, summaries, removals (no polling)
//!
//! Around them:
//!
//! - [`config`]    global file and list files -> validated `Config` / `ListConfig`; every
//!   setting declared once
//! - [`address`]   strict addresses, and the liberal envelope sender
//! - [`registry`]  the live set of lists (swapped atomically on reload)
//! - [`control`]   the CLI's socket to a running server
//! - [`stats`]     process-wide counters and uptime for `listkeeper status`
//! - [`logging`]   the log subscriber: one line per event, control characters escaped
//! - [`activation`] listeners handed over by systemd socket activation
//! - [`routing`]   MTA lookups answered from the lists (Postfix socketmap, Exim readsocket)
//! - [`server`]    wires it all together: listeners, signals, reload, graceful shutdown
//! - [`cli`]       the `listkeeper` command line

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
pub mod routing;
pub mod scheduled;
pub mod server;
pub mod stats;
pub mod store;
