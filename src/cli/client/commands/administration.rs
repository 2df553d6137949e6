//! The administrators' verbs: tenants, users and the server's secrets.

use clap::Subcommand;

/// TENANT, in each of these, is the tenant's id or its subdomain.
#[derive(Subcommand, Debug)]
pub enum TenantsCommand {
    /// Create a tenant with its own clusters (Admins of the system tenant).
    Create {
        /// Its display name, such as "Acme Corp".
        name: String,
        /// 1-63 letters, digits and '-', stored lowercased.
        #[arg(long)]
        subdomain: String,
        /// Who to contact about it.
        #[arg(long = "email", value_name = "EMAIL")]
        contact_email: String,
        /// Free (the default), Starter, Professional, Enterprise or Custom.
        #[arg(long)]
        tier: Option<String>,
        /// A host name of its own, such as deploy.acme.example.
        #[arg(long = "domain", value_name = "HOST")]
        custom_domain: Option<String>,
    },
    /// A tenant with its use of each quota.
    Show { tenant: String },
    /// Suspend a tenant: its users may read, but start no runs and use no verbs.
    Suspend {
        tenant: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Make a suspended tenant active again.
    Activate { tenant: String },
    /// Change a tenant's tier; its quotas become the tier's.
    Tier { tenant: String, tier: String },
    /// Delete a tenant (refused while it has active runs); its record and history stay.
    Delete { tenant: String },
}

/// USER, in each of these, is the user's name or id.
#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Create a user in the tenant (the one --tenant names, else the caller's); the password
    /// is asked twice without echo, or read from standard input with --password-stdin.
    Create {
        username: String,
        #[arg(long)]
        email: String,
        /// Admin, Deployer or Viewer (repeatable; each includes the ones below it).
        #[arg(long = "role", value_name = "ROLE", required = true)]
        roles: Vec<String>,
        /// The person's full name.
        #[arg(long = "name", value_name = "FULL_NAME")]
        full_name: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user: signing in is refused and the user's tokens stop working at once.
    Disable { user: String },
    /// Enable a disabled user again.
    Enable { user: String },
    /// Replace a user's roles (Admin, Deployer, Viewer); the user's tokens carry them at once.
    Roles {
        user: String,
        #[arg(required = true, value_name = "ROLE")]
        roles: Vec<String>,
    },
    /// Set a user's password (asked twice without echo, or --password-stdin).
    Password {
        user: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum SecretsCommand {
    /// Rotate a secret now: a new version, the previous one valid through its rotation window.
    Rotate { id: String },
}
