use clap::Parser;
use hotswap::cli::{Cli, Command, MigrateAction};
use hotswap::config::Settings;
use hotswap::startup::Application;
use hotswap::store::postgres::migrate;
use hotswap::telemetry;

// glibc's malloc consolidates its free lists on every large allocation,
// which made fan-outs to many nodes super-linear; mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hotswap: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let telemetry = telemetry::init(&settings.logging, &settings.telemetry);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Config => {
            println!("{settings:#?}");
            Ok(())
        }
        Command::Migrate { action } => migrations(&settings, action).await,
    };
    // Export the spans still buffered before the process ends.
    drop(telemetry);
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hotswap: {e}");
            std::process::ExitCode::FAILURE
        }
    }
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

async fn serve(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let app = Application::build(settings).await?;
    app.run().await?;
    Ok(())
}
