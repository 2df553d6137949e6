//! The client verbs' command line: every verb with its arguments, as clap
//! parses them (`dispatch` in the parent module runs them).

use clap::{Args, Subcommand, ValueEnum};

mod administration;
mod bus;
mod choices;

pub use administration::{SecretsCommand, TenantsCommand, UsersCommand};
pub use bus::{SchemasCommand, SubscriptionsCommand, TopicsCommand};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RunsWhat {
    /// List runs (the default).
    Ls,
}

#[derive(Debug, Args, Clone)]
pub struct DeployArgs {
    /// The module's name, such as netfilter-ext.
    pub module: String,
    /// The semantic version to roll out.
    pub version: String,
    /// The target environment; every environment before it comes first.
    #[arg(long = "to", value_name = "ENV", ignore_case = true, value_parser = choices::environment())]
    pub to: String,
    /// Override the target environment's strategy: Direct, Rolling, BlueGreen, Canary.
    #[arg(long, ignore_case = true, value_parser = choices::strategy())]
    pub strategy: Option<String>,
    /// Canary steps in percent, such as 10,50,100.
    #[arg(long, value_delimiter = ',', value_name = "PERCENTS")]
    pub canary_steps: Option<Vec<u32>>,
    /// Ask for an Admin's approval before any node changes (Staging and Production).
    #[arg(long)]
    pub require_approval: bool,
    /// Deploy a version lower than one the tenant's nodes run (refused
    /// otherwise; the server audits it).
    #[arg(long)]
    pub allow_downgrade: bool,
    #[arg(long)]
    pub description: Option<String>,
    /// Metadata as KEY=VALUE; repeat for more (fault knobs in simulation).
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
    /// The requester's email; defaults to the logged-in user's.
    #[arg(long)]
    pub requester: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Sign in to a server and keep its token (mode 0600) for the other verbs.
    Login {
        /// Asked for when left out.
        #[arg(long, short = 'u')]
        username: Option<String>,
        /// Read the password from the first line of standard input instead of a prompt.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Revoke the saved token on the server and forget it.
    Logout,
    /// Change your own password (asks for the current one and the new one); your other
    /// sessions end, and the saved login gets the new token.
    Password {
        /// Read the current password and the new one from the first two lines of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Start a run of MODULE VERSION up to an environment; --watch follows it live.
    Deploy {
        #[command(flatten)]
        args: DeployArgs,
        /// Follow the run live until it ends; the exit code tells how it ended.
        #[arg(long, short = 'w')]
        watch: bool,
        /// Show what the run would do and change nothing (a dry run).
        #[arg(long, conflicts_with = "watch")]
        plan: bool,
        /// While watching, stop at the approval gate (exit 5) instead of waiting through it.
        #[arg(long, requires = "watch")]
        until_approval: bool,
    },
    /// Show what a run would do, without doing anything (a dry run).
    Plan {
        #[command(flatten)]
        args: DeployArgs,
    },
    /// List runs, newest first.
    Runs {
        #[arg(value_enum)]
        what: Option<RunsWhat>,
        /// Running, PendingApproval, Paused, Succeeded, Failed, RolledBack or Cancelled.
        #[arg(long, ignore_case = true, value_parser = choices::run_status())]
        status: Option<String>,
        #[arg(long)]
        module: Option<String>,
        #[arg(long = "env", value_name = "ENV", ignore_case = true, value_parser = choices::environment())]
        env: Option<String>,
        /// At most this many (1-100); --page-size says the same, as for the other listings.
        #[arg(long, visible_alias = "page-size", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
        limit: u32,
        /// Which page of `limit` runs, newest first (1 = the newest).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        page: u32,
    },
    /// Show a run with its stages; --watch follows it live.
    Status {
        id: String,
        #[arg(long, short = 'w')]
        watch: bool,
        /// While watching, stop at the approval gate (exit 5).
        #[arg(long, requires = "watch")]
        until_approval: bool,
    },
    /// Pause a run at its next step.
    Pause { id: String },
    /// Resume a paused run.
    Resume { id: String },
    /// Skip the current wait (bake time, health-check delay).
    Promote { id: String },
    /// Stop a run and put back every node it changed.
    Abort { id: String },
    /// Roll a finished run back: restore every node it changed.
    Rollback { id: String },
    /// Approvals waiting for a decision.
    Approvals,
    /// Approve a run waiting at its gate (Admins).
    Approve {
        /// The run's id.
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reject a run waiting at its gate (Admins); the run ends Failed.
    Reject {
        /// The run's id.
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// The clusters and their health.
    Clusters,
    /// The nodes of one environment's cluster with the modules they run, a page at a time.
    Nodes {
        /// Development, QA, Staging or Production.
        #[arg(ignore_case = true, value_parser = choices::environment())]
        env: String,
        /// Which page of nodes (1 = the first).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        page: u32,
        /// Nodes per page (1-1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        page_size: u32,
        /// Only nodes that run this module (at --version when given).
        #[arg(long)]
        module: Option<String>,
        /// Only nodes running this version.
        #[arg(long)]
        version: Option<String>,
        /// Only unhealthy nodes.
        #[arg(long)]
        unhealthy: bool,
    },
    /// The supervised actors; --tree groups them under their supervisors.
    Actors {
        #[arg(long)]
        tree: bool,
    },
    /// What happened to a run, in order.
    Events { id: String },
    /// The hosts that run `hotswap agent`, connected or not, with their modules;
    /// `agents token --to ENV` makes an enrolment token for new ones (Admins).
    Agents {
        /// Only the hosts of this environment.
        #[arg(long, short = 'e', ignore_case = true, value_parser = choices::environment())]
        environment: Option<String>,
        /// Only the hosts whose agent is not connected.
        #[arg(long)]
        disconnected: bool,
        /// Which page of hosts (1 = the first).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        page: u32,
        /// Hosts per page (1-1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        page_size: u32,
        #[command(subcommand)]
        command: Option<AgentsCommand>,
    },
    /// The public keys module signatures are checked against; `keys add FILE`
    /// trusts one and `keys revoke KEY` revokes one (Admins).
    Keys {
        #[command(subcommand)]
        command: Option<KeysCommand>,
    },
    /// The message bus's topics; `topics create NAME` makes one, `topics show NAME` adds its
    /// counters, `topics dlq NAME` lists its dead letters.
    Topics {
        #[command(subcommand)]
        command: Option<TopicsCommand>,
    },
    /// Subscriptions to topics (--topic T for one topic's); `subscriptions create TOPIC --group G`
    /// makes one; pause, resume and delete take its id or the start of it.
    Subscriptions {
        /// Only the subscriptions to this topic.
        #[arg(long)]
        topic: Option<String>,
        #[command(subcommand)]
        command: Option<SubscriptionsCommand>,
    },
    /// Publish one message to a topic: PAYLOAD, or standard input when it is `-` or left out.
    Publish {
        topic: String,
        payload: Option<String>,
        /// A header the message carries (repeatable); subscription filters can match on them.
        #[arg(long = "header", value_name = "KEY=VALUE")]
        headers: Vec<String>,
        /// Messages with the same key keep their order on an ordered topic.
        #[arg(long = "key", value_name = "PARTITION_KEY")]
        partition_key: Option<String>,
        /// 0 (the default) to 9; higher leases first under the Priority strategy.
        #[arg(long)]
        priority: Option<u8>,
        /// The message's id (a new UUID when left out); an ExactlyOnce topic stores one
        /// message per id.
        #[arg(long = "id", value_name = "MESSAGE_ID")]
        message_id: Option<String>,
    },
    /// Take the messages waiting for a pull subscription; --ack acknowledges each once printed
    /// (else they come back after the subscription's ack timeout).
    Consume {
        topic: String,
        /// The pull subscription's id or the start of it.
        #[arg(long, short = 's', value_name = "ID")]
        subscription: String,
        /// At most this many messages (1-100).
        #[arg(long, default_value_t = 10)]
        max: u32,
        /// How long to wait for a first message, such as 5s (none: answer at once).
        #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
        wait: Option<std::time::Duration>,
        /// Acknowledge each message once it is printed.
        #[arg(long)]
        ack: bool,
    },
    /// Acknowledge messages taken with `consume` (before the subscription's ack timeout).
    Ack {
        /// The message ids `consume` printed.
        #[arg(required = true, value_name = "MESSAGE_ID")]
        messages: Vec<String>,
        /// The pull subscription's id or the start of it.
        #[arg(long, short = 's', value_name = "ID")]
        subscription: String,
    },
    /// Refuse messages taken with `consume`: retried after the subscription's backoff while
    /// attempts remain, else dead-lettered; --dead-letter sends them to the dead letters at once.
    Nack {
        #[arg(required = true, value_name = "MESSAGE_ID")]
        messages: Vec<String>,
        #[arg(long, short = 's', value_name = "ID")]
        subscription: String,
        /// Why, kept with a dead letter.
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        dead_letter: bool,
    },
    /// The tenants (Admins of the system tenant; others see their own); `tenants create`,
    /// `show` with use against each quota, `suspend`, `activate`, `tier` and `delete`.
    Tenants {
        /// Only tenants with this status: Provisioning, Active, Suspended, Deprovisioning or Deleted.
        #[arg(long)]
        status: Option<String>,
        /// Which page of tenants (1 = the first).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        page: u32,
        /// Tenants per page (1-1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        page_size: u32,
        #[command(subcommand)]
        command: Option<TenantsCommand>,
    },
    /// The users of the tenant (Admins); `users create`, `disable`, `enable`, `roles` and
    /// `password` manage them over the API (`hotswap user create` bootstraps the first Admin in the store).
    Users {
        /// Which page of users (1 = the first).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        page: u32,
        /// Users per page (1-1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        page_size: u32,
        #[command(subcommand)]
        command: Option<UsersCommand>,
    },
    /// The schema registry's subjects; `schemas register ID FILE` adds a version (checked for
    /// compatibility), `show`, `versions`, `approve`, `reject`, `deprecate` and `validate`.
    Schemas {
        /// Which page of subjects (1 = the first).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        page: u32,
        /// Subjects per page (1-1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        page_size: u32,
        #[command(subcommand)]
        command: Option<SchemasCommand>,
    },
    /// The audit trail, newest first (Admins), filtered; a page at a time (--cursor).
    Audit {
        /// Deployment, Approval, Authentication, UserManagement, TenantManagement,
        /// ModuleRegistry, Security or Administration.
        #[arg(long, ignore_case = true, value_parser = choices::audit_category())]
        category: Option<String>,
        /// The event type, such as LoginFailed or DeploymentCreated.
        #[arg(long)]
        event: Option<String>,
        /// A user's name (any case) or id.
        #[arg(long)]
        actor: Option<String>,
        /// Such as Deployment, Approval, User, Agent.
        #[arg(long)]
        resource_type: Option<String>,
        #[arg(long)]
        resource_id: Option<String>,
        /// The trace id a request answered with (X-Trace-Id).
        #[arg(long)]
        trace: Option<String>,
        /// Only entries of the last DURATION, such as 1h or 2days.
        #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
        since: Option<std::time::Duration>,
        /// Entries to a page (1-100).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100))]
        limit: u32,
        /// The cursor the previous page ended with, for older entries.
        #[arg(long)]
        cursor: Option<i64>,
    },
    /// The module registry: every module, or one module's versions with their signatures,
    /// digests, dependencies and where they run; `modules delete NAME VERSION` deletes a
    /// version (Deployers).
    #[command(args_conflicts_with_subcommands = true)]
    Modules {
        name: Option<String>,
        #[command(subcommand)]
        command: Option<ModulesCommand>,
    },
    /// Who depends on MODULE, where they run, and what VERSION would break there (the
    /// knowledge graph's impact analysis); exits 1 when it would break something.
    Impact { module: String, version: String },
    /// Roll several modules out in the order their dependencies need (a deployment batch:
    /// each starts once those it depends on succeeded); --plan shows the order only.
    Release {
        /// The module versions as MODULE@VERSION, in any order.
        #[arg(required = true, value_name = "MODULE@VERSION")]
        items: Vec<String>,
        /// The target environment of every run.
        #[arg(long = "to", value_name = "ENV", required_unless_present = "plan", ignore_case = true, value_parser = choices::environment())]
        to: Option<String>,
        /// Override the target environment's strategy: Direct, Rolling, BlueGreen, Canary.
        #[arg(long, ignore_case = true, value_parser = choices::strategy())]
        strategy: Option<String>,
        /// Metadata every run carries, as KEY=VALUE; repeat for more.
        #[arg(long = "meta", value_name = "KEY=VALUE")]
        meta: Vec<String>,
        /// The requester's email; defaults to the logged-in user's.
        #[arg(long)]
        requester: Option<String>,
        /// Deploy versions lower than ones the tenant's nodes run (refused
        /// otherwise; the server audits each).
        #[arg(long, conflicts_with = "plan")]
        allow_downgrade: bool,
        /// Show the order (waves) and start nothing.
        #[arg(long, conflicts_with_all = ["wait", "to"])]
        plan: bool,
        /// Follow the batch until it ends; exits 0 when every module succeeded, 1 otherwise.
        #[arg(long, short = 'w')]
        wait: bool,
    },
    /// The tenant's deployment batches, newest first; with an id, one batch's steps and their
    /// runs, and --wait follows it until it ends.
    Batch {
        id: Option<String>,
        #[arg(long, short = 'w', requires = "id")]
        wait: bool,
        /// How many of the newest batches to list (1-100).
        #[arg(long, default_value_t = 20, conflicts_with = "id", value_parser = clap::value_parser!(u32).range(1..=100))]
        limit: u32,
        /// The next page: batches created before this one (the last of the previous list).
        #[arg(long, conflicts_with = "id", value_name = "BATCH_ID")]
        before: Option<String>,
    },
    /// The server's secrets (metadata only, never values); `secrets rotate ID` rotates one
    /// (Admins of the system tenant).
    Secrets {
        #[command(subcommand)]
        command: Option<SecretsCommand>,
    },
    /// Print a shell completion script: hotswap completions bash > /etc/bash_completion.d/hotswap
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
pub enum AgentsCommand {
    /// Create an enrolment token for one environment (shown once) and print how to start an agent with it.
    Token {
        /// The environment the hosts join: Development, QA, Staging or Production.
        #[arg(long = "to", value_name = "ENV", ignore_case = true, value_parser = choices::environment())]
        environment: String,
        /// A label every agent enrolled with the token carries (repeatable).
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
        /// Seconds the token can be used for enrolment (the server's agent.token_ttl when omitted).
        #[arg(long, value_name = "SECONDS")]
        expires_in: Option<u64>,
    },
    /// The enrolment tokens made so far (never their secrets), newest first, a page at a time (Admins).
    Tokens {
        /// Only the tokens in this state: usable, expired or revoked.
        #[arg(long, value_parser = ["usable", "expired", "revoked"])]
        state: Option<String>,
        /// Which page of tokens (1 = the first).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        page: u32,
        /// Tokens per page (1-1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        page_size: u32,
    },
    /// Revoke an enrolment token, named by its id or the start of it: no new host can enrol
    /// with it, and the sessions of the agents enrolled with it end (Admins).
    RevokeToken { id: String },
    /// Retire a host for good, named by its hostname or its node id (or the start of it):
    /// its node leaves the cluster, and runs no longer wait for it (refused while a run may
    /// still deploy to its environment; Admins).
    Remove {
        #[arg(value_name = "HOST")]
        hostname: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ModulesCommand {
    /// Delete a version from the registry (refused while a node runs it or holds it in
    /// standby, or a run or batch still deploys it); its bytes go at the next artifact sweep.
    Delete { name: String, version: String },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Trust the RSA public key in FILE (PEM, as `hotswap keygen` writes it).
    Add {
        /// The key's name; defaults to FILE's name up to its first dot.
        #[arg(long)]
        name: Option<String>,
        file: std::path::PathBuf,
    },
    /// Revoke a key, named by its name, its fingerprint or the start of its fingerprint.
    Revoke { key: String },
}
