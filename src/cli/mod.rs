//! The `listkeeper` command line: one file per subcommand group.

mod bounces;
mod check;
mod held;
mod lists;
mod members;
mod mta;
mod pending;
mod serve;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

/// Where the global configuration is looked for when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "/etc/listkeeper/listkeeper.toml";

/// listkeeper: a mailing-list manager that runs beside your MTA as an LMTP server.
#[derive(Parser, Debug)]
#[command(name = "listkeeper", version, about, long_about = None)]
pub struct Cli {
    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// The global configuration file option, shared by every subcommand.
#[derive(clap::Args, Debug, Clone)]
pub struct ConfigArg {
    /// The global configuration file.
    #[arg(short, long, value_name = "FILE", env = "LISTKEEPER_CONFIG", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the LMTP server in the foreground (stop with SIGTERM or SIGINT, reload lists with SIGHUP).
    ///
    /// Under systemd socket activation (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES; see
    /// config/listkeeper.socket) the sockets passed in are served instead of
    /// server.lmtp_listen, and one named "control" serves the CLI instead of
    /// server.control_socket.
    Serve(ConfigArg),
    /// Validate the global file and every list file; exit 1 on any error.
    Check {
        #[command(flatten)]
        config: ConfigArg,
        /// Check the global file only (what must hold for the server to start; a broken list
        /// file disables only its list).
        #[arg(long)]
        global_only: bool,
    },
    /// Ask the running server for its lists, sessions in flight and counters.
    Status(ConfigArg),
    /// Show the configured lists, their state and member counts.
    Lists(ConfigArg),
    /// Add, remove or list the members of a list.
    #[command(subcommand)]
    Members(members::MembersCommand),
    /// Bounce scores and states of a list's members.
    #[command(subcommand)]
    Bounces(bounces::BouncesCommand),
    /// List, show, approve, reject or discard posts held for moderation.
    #[command(subcommand)]
    Held(held::HeldCommand),
    /// Show, approve or reject requests waiting for a confirmation or an owner.
    #[command(subcommand)]
    Pending(pending::PendingCommand),
    /// Check the MTA's live configuration (Postfix, Exim) against listkeeper's.
    #[command(subcommand)]
    Mta(mta::MtaCommand),
}

/// Log to stderr through [`crate::logging::subscriber`] (control characters in values
/// escaped); `RUST_LOG` overrides the level from `-v`.
pub fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing::subscriber::set_global_default(crate::logging::subscriber(
        filter,
        std::io::stderr,
    ));
}

/// Run the parsed command; the exit code follows Unix habit (0 ok, 1 failure, 2 usage).
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Serve(c) => serve::run(&c.config),
        Command::Check {
            config,
            global_only,
        } => check::run(&config.config, global_only),
        Command::Lists(c) => lists::run(&c.config),
        Command::Status(c) => status::run(&c.config),
        Command::Members(m) => members::run(m),
        Command::Pending(p) => pending::run(p),
        Command::Held(h) => held::run(h),
        Command::Bounces(b) => bounces::run(b),
        Command::Mta(m) => mta::run(m),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("listkeeper: {msg}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Load the global file or return every error as one message, a line each.
fn load_config(path: &std::path::Path) -> Result<Config, String> {
    Config::load(path).map_err(|errs| {
        errs.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\nlistkeeper: ")
    })
}
