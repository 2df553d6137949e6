//! The `hotswap` command line.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "hotswap", version, about = "Rolls hot-swappable kernel modules out across clusters of nodes")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API server (the default).
    Serve,
    /// Print the effective configuration (secrets hidden) and exit.
    Config,
    /// Manage the PostgreSQL schema at store.url.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Run,
    /// Revert the most recently applied migration.
    Revert,
    /// List the migrations and whether each is applied.
    Status,
}
