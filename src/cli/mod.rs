//! The `hotswap` command line: the server's own verbs (serve, migrate, user,
//! keygen) and the operator's client verbs, which talk to a server over the
//! REST API and the live WebSocket (`client`).

use clap::{Parser, Subcommand};

pub mod client;
pub mod client_options;
pub mod graph_command;
pub mod module_commands;

pub use client::{ClientCommand, GlobalArgs};

#[derive(Debug, Parser)]
#[command(name = "hotswap", version, about = "Rolls hot-swappable kernel modules out across clusters of nodes")]
#[command(after_help = "Exit codes of the client verbs: 0 succeeded, 1 failed, 2 usage or input error, \
3 rolled back, 4 cancelled, 5 waiting for approval, 130 interrupted (Ctrl-C). See docs/CLI.md.")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
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
    /// Write a new RSA-3072 key pair for signing modules.
    Keygen {
        /// The private key (PKCS#8 PEM, readable by its owner only).
        #[arg(long, default_value = "signing-key.pem")]
        out: std::path::PathBuf,
        /// The public key (SPKI PEM), to trust with POST /api/v1/signing-keys;
        /// defaults to OUT with ".pub" added.
        #[arg(long)]
        public_out: Option<std::path::PathBuf>,
    },
    /// Sign and upload modules.
    Module {
        #[command(subcommand)]
        action: ModuleAction,
    },
    #[command(flatten)]
    Client(ClientCommand),
    /// Run on a real host: enrol with the server and install modules for it (docs/AGENT.md).
    Agent(crate::agent::AgentArgs),
    /// Maintain the knowledge graph in the configured store.
    Graph {
        #[command(subcommand)]
        action: graph_command::GraphAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModuleAction {
    /// Write FILE's detached signature: RSA over the SHA-256 of the statement
    /// that names the module, its version, FILE's SHA-256 and (from
    /// --descriptor) its hooks, as `openssl dgst -sha256 -sign` signs that
    /// statement (docs/SECURITY.md); with --bare, over FILE's own bytes.
    Sign {
        /// The private key, PEM (PKCS#8 or PKCS#1).
        #[arg(long)]
        key: std::path::PathBuf,
        /// "pkcs1v15" (the default) or "pss".
        #[arg(long, default_value = "pkcs1v15")]
        algorithm: String,
        /// Where the signature goes; defaults to FILE with ".sig" added.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// The module's descriptor (JSON with its name and version): the
        /// signature covers name, version, the file's digest and the
        /// descriptor's hooks together.
        #[arg(long, conflicts_with_all = ["name", "bare"], required_unless_present_any = ["name", "bare"])]
        descriptor: Option<std::path::PathBuf>,
        /// The module's name, instead of a descriptor (for a module without hooks).
        #[arg(long, requires = "version", conflicts_with = "bare")]
        name: Option<String>,
        /// The module's version, with --name.
        #[arg(long, requires = "name")]
        version: Option<String>,
        /// Sign the file's bytes alone (accepted only where
        /// security.accept_artifact_signatures is on: development and test).
        #[arg(long)]
        bare: bool,
        file: std::path::PathBuf,
    },
    /// Upload FILE with its descriptor and signature to a HotSwap server
    /// (the one `hotswap login` signed in to, unless told otherwise), with
    /// HOTSWAP_TOKEN or the saved login's token.
    Push {
        /// The descriptor, JSON: {name, version, description, author, dependencies, ...}.
        #[arg(long)]
        descriptor: std::path::PathBuf,
        /// The detached signature; defaults to FILE.sig when that exists.
        #[arg(long)]
        signature: Option<std::path::PathBuf>,
        file: std::path::PathBuf,
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
        // The tenant is the global `--tenant` (an id or a subdomain; the
        // system tenant when left out): a flag of the same name here would
        // clash with it.
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
