use clap::Parser;
use hotswap::cli::{Cli, Command};
use hotswap::config::Settings;
use hotswap::startup::Application;
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
    telemetry::init(&settings.logging);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Config => {
            println!("{settings:#?}");
            Ok(())
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hotswap: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let app = Application::build(settings).await?;
    app.run().await?;
    Ok(())
}
