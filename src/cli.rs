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
    /// Manage users in the configured store (PostgreSQL).
    User {
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create a user; the password is read from a prompt, or from the first
    /// line of standard input when that is not a terminal.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        /// Admin, Deployer or Viewer; repeat the flag or separate with commas.
        #[arg(long = "role", required = true, value_delimiter = ',')]
        roles: Vec<String>,
        /// The tenant's id; the default tenant when left out.
        #[arg(long)]
        tenant: Option<uuid::Uuid>,
        #[arg(long)]
        full_name: Option<String>,
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
