//! The `sudohub` binary: argument parsing only; everything else is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// sudohub: a privilege-separated multi-user Jupyter hub.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The hub's configuration file.
    #[arg(long, default_value = sudohub::config::DEFAULT_PATH)]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print a commented default hub.toml.
    GenerateConfig,
    /// Verify the installation: owners and modes, sudoers, accounts, PAM, configs, DB.
    Check {
        /// The sudoers drop-in to check.
        #[arg(long, default_value = "/etc/sudoers.d/sudohub")]
        sudoers: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::GenerateConfig) = cli.command {
        print!("{}", sudohub::config::GENERATED);
        return ExitCode::SUCCESS;
    }
    if let Some(Command::Check { sudoers }) = &cli.command {
        let config = match sudohub::config::HubConfig::load(&cli.config) {
            Ok(c) => {
                println!("ok   {} is valid", cli.config.display());
                c
            }
            Err(e) => {
                println!("FAIL {e}");
                return ExitCode::from(1);
            }
        };
        let paths = sudohub::check::CheckPaths {
            sudoers: sudoers.clone(),
            ..Default::default()
        };
        let all_ok = sudohub::check::print(&sudohub::check::run(&config, &paths));
        return if all_ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = match sudohub::config::HubConfig::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sudohub: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sudohub: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(sudohub::app::serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sudohub: {e}");
            ExitCode::from(1)
        }
    }
}
