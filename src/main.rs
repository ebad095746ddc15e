//! The `listkeeper` binary: parse arguments, set up logging, run the subcommand.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = listkeeper::cli::Cli::parse();
    listkeeper::cli::init_logging(cli.verbose);
    listkeeper::cli::run(cli)
}
