use clap::FromArgMatches;
use std::io::{BufRead, IsTerminal};

use hotswap::auth::password::Password;
use hotswap::auth::users::NewUser;
use hotswap::auth::AuthState;
use hotswap::cli::client::output::emit_err;
use hotswap::cli::{Cli, Command, MigrateAction, UserAction};
use hotswap::config::Settings;
use hotswap::config::StoreBackend;
use hotswap::startup::Application;
use hotswap::store::postgres::migrate;
use hotswap::telemetry;

// glibc's malloc consolidates its free lists on every large allocation,
// which made fan-outs to many nodes super-linear; mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let matches = hotswap::cli::client_options::command().get_matches();
    // Before the matches are read: a stand-in's value is not what the global option holds.
    if let Some(refusal) = hotswap::cli::client_options::unused_option(&matches) {
        emit_err(format_args!("hotswap: {refusal}"));
        return std::process::ExitCode::from(2);
    }
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // The client verbs talk to a server: they need none of its settings.
    if let Some(Command::Client(command)) = cli.command {
        return std::process::ExitCode::from(hotswap::cli::client::run(cli.global, command).await);
    }
    // The agent runs on hosts: it reads its own settings, not the server's.
    if let Some(Command::Agent(args)) = cli.command {
        return agent(args).await;
    }
    // Signing keys and modules are made on an operator's machine, which has
    // no server settings.
    match cli.command {
        Some(Command::Keygen { out, public_out }) => {
            return std::process::ExitCode::from(hotswap::cli::module_commands::keygen(&out, public_out.as_deref()));
        }
        Some(Command::Module { action }) => {
            let global = &cli.global;
            let module = hotswap::cli::module_commands::module(
                action,
                global.server.as_deref(),
                global.ca.as_deref(),
                global.tenant.as_deref(),
            );
            return std::process::ExitCode::from(module.await);
        }
        _ => {}
    }
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            emit_err(format_args!("hotswap: {e}"));
            return std::process::ExitCode::from(2);
        }
    };
    // The server logs on stdout (its journal); a one-shot verb prints its
    // result there, so its log lines go to stderr, apart from what a script reads.
    let serving = matches!(cli.command, None | Some(Command::Serve));
    let telemetry = serving.then(|| telemetry::init(&settings.logging, &settings.telemetry));
    if !serving {
        log_to_stderr(&settings.logging.level);
    }
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => match serve(settings).await {
            // A start-up that failed (the address in use, the database
            // unreachable) has acknowledged nothing and has nothing to shut
            // down: the process ends here. Tearing the runtime down would
            // poll actors built before the failure and never started, which
            // then panic for want of a reactor.
            Err(e) => {
                emit_err(format_args!("hotswap: {e}"));
                drop(telemetry);
                std::process::exit(1);
            }
            ok => ok,
        },
        Command::Config => {
            // `hotswap config | head` closes the pipe early: exit 141 as the
            // client verbs do, where println! would panic.
            hotswap::cli::client::output::emit(format_args!("{settings:#?}"));
            Ok(())
        }
        Command::Migrate { action } => migrations(&settings, action).await,
        Command::User { action } => users(&settings, action, cli.global.tenant.as_deref()).await,
        // Handled above, before the settings are loaded.
        Command::Client(_) | Command::Agent(_) | Command::Keygen { .. } | Command::Module { .. } => Ok(()),
        Command::Graph { action } => graph(&settings, action).await,
    };
    // Export the spans still buffered before the process ends.
    drop(telemetry);
    exit_code(result)
}

fn exit_code(result: Result<(), Box<dyn std::error::Error>>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            emit_err(format_args!("hotswap: {e}"));
            // docs/CLI.md: 2 for a usage or input error (a conflict included), 1 for a failure.
            match e.is::<InputError>() {
                true => std::process::ExitCode::from(2),
                false => std::process::ExitCode::FAILURE,
            }
        }
    }
}

/// What the operator typed was refused (a short password, a taken
/// username, an unknown tenant): exit code 2, as the client verbs use for a 4xx.
#[derive(Debug)]
struct InputError(String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// Readable log lines on stderr for the one-shot verbs (migrate, user, graph).
fn log_to_stderr(level: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(hotswap::telemetry::log_filter(level));
    let _ = tracing_subscriber::registry().with(lines).try_init();
}

async fn migrations(settings: &Settings, action: MigrateAction) -> Result<(), Box<dyn std::error::Error>> {
    let url = settings.store.url.trim();
    if url.is_empty() {
        return Err("store.url is not set (HOTSWAP__STORE__URL)".into());
    }
    match action {
        MigrateAction::Run => {
            let applied = migrate::run_pending(url).await?;
            if applied.is_empty() {
                println!("no pending migrations");
            }
            for name in applied {
                println!("applied {name}");
            }
        }
        MigrateAction::Revert => match migrate::revert_last(url).await? {
            Some(name) => println!("reverted {name}"),
            None => println!("no migration to revert"),
        },
        MigrateAction::Status => {
            for (name, applied) in migrate::status(url).await? {
                println!("{} {name}", if applied { "[applied]" } else { "[pending]" });
            }
        }
    }
    Ok(())
}

/// `tenant` is the global `--tenant` (or HOTSWAP_TENANT): an id or a subdomain.
async fn users(
    settings: &Settings,
    action: UserAction,
    tenant: Option<&str>,
) -> Result<(), Box<dyn std::error::Error>> {
    let UserAction::Create { username, email, roles, full_name } = action;
    if settings.store.backend == StoreBackend::Memory {
        return Err("store.backend is \"memory\": a user created here would vanish on exit; \
                    set HOTSWAP__STORE__BACKEND=postgres and HOTSWAP__STORE__URL"
            .into());
    }
    let password = read_password()?;
    let store = hotswap::startup::open_store(settings).await?.store;
    let tenant = match tenant {
        Some(which) => Some(tenant_named(&store, which).await?),
        None => None,
    };
    let auth = AuthState::new(&settings.auth, store).await?;
    let new = NewUser { username, email, full_name, password, roles, tenant_id: tenant };
    let user = auth.create_user(None, new, &cli_actor()).await.map_err(|e| -> Box<dyn std::error::Error> {
        use hotswap::auth::users::UserError;
        match e {
            UserError::Validation(details) => Box::new(InputError(details.join("; "))),
            // The username or email is taken: CLI.md counts a 409 as an input error.
            UserError::Conflict(m) | UserError::NotFound(m) | UserError::Forbidden(m) => Box::new(InputError(m)),
            other => other.to_string().into(),
        }
    })?;
    let roles: Vec<&str> = user.roles.iter().map(|r| r.as_str()).collect();
    println!(
        "created user {} ({}) in tenant {} with roles {}",
        user.username,
        user.id,
        user.tenant_id,
        roles.join(", ")
    );
    Ok(())
}

/// The id of the tenant `which` names, by id or by subdomain (any case).
async fn tenant_named(
    store: &hotswap_actors::store::SharedStore,
    which: &str,
) -> Result<uuid::Uuid, Box<dyn std::error::Error>> {
    if let Ok(id) = which.parse::<uuid::Uuid>() {
        return Ok(id);
    }
    let tenants = store.list_tenants(None).await?;
    tenants
        .iter()
        .find(|t| t.subdomain.eq_ignore_ascii_case(which))
        .map(|t| t.tenant_id)
        .ok_or_else(|| InputError(format!("no tenant has the id or subdomain '{which}'")).into())
}

/// From a prompt (asked twice) on a terminal, else the first line of standard input.
fn read_password() -> Result<Password, Box<dyn std::error::Error>> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Repeat the password: ")?;
        if first != again {
            return Err(InputError("the passwords differ".into()).into());
        }
        return Ok(Password::new(first));
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(Password::new(line.trim_end_matches(['\r', '\n'])))
}

async fn graph(
    settings: &Settings,
    action: hotswap::cli::graph_command::GraphAction,
) -> Result<(), Box<dyn std::error::Error>> {
    if settings.store.backend == StoreBackend::Memory {
        return Err("store.backend is \"memory\": there is no stored graph to rebuild; \
                    set HOTSWAP__STORE__BACKEND=postgres and HOTSWAP__STORE__URL"
            .into());
    }
    let store = hotswap::startup::open_store(settings).await?.store;
    for line in hotswap::cli::graph_command::run(store, &settings.graph, action).await? {
        println!("{line}");
    }
    Ok(())
}

async fn serve(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    if !settings.server.transparent_huge_pages {
        // Before the store and the actors fill the heap (see hotswap::huge_pages).
        if let Err(e) = hotswap::huge_pages::opt_out() {
            tracing::warn!(error = %e, "could not opt out of transparent huge pages; the kernel's setting applies");
        }
    }
    let app = Application::build(settings).await?;
    app.run().await?;
    Ok(())
}

/// The audit actor of commands run on this machine's command line.
fn cli_actor() -> hotswap_actors::domain::AuditActor {
    let who = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    hotswap_actors::domain::AuditActor { name: format!("cli:{who}"), ..Default::default() }
}

async fn agent(args: hotswap::agent::AgentArgs) -> std::process::ExitCode {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Colours only for a terminal, not for the journal or a log file.
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(hotswap::telemetry::log_filter("info"));
    tracing_subscriber::registry().with(lines).init();
    match hotswap::agent::run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            emit_err(format_args!("hotswap agent: {e}"));
            std::process::ExitCode::from(2)
        }
    }
}
