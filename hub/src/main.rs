//! The `sudohub` binary: argument parsing only; everything else is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// sudohub: a privilege-separated multi-user Jupyter hub.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The hub's configuration file [default: /etc/sudohub/hub.toml, or
    /// <prefix>/etc/sudohub/hub.toml for `check --prefix`].
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print a commented default hub.toml.
    GenerateConfig,
    /// Verify the installation: owners and modes, sudoers, accounts, PAM, configs, DB.
    Check {
        /// Check an install made with `install.sh --prefix DIR`: its hub.toml,
        /// helpers.toml, sudoers drop-in and PAM service below DIR.
        #[arg(long)]
        prefix: Option<PathBuf>,
        /// The sudoers drop-in to check [default: <prefix>/etc/sudoers.d/sudohub].
        #[arg(long)]
        sudoers: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::GenerateConfig) = cli.command {
        print!("{}", sudohub::config::GENERATED);
        return ExitCode::SUCCESS;
    }
    if let Some(Command::Check { prefix, sudoers }) = &cli.command {
        let root = prefix.clone().unwrap_or_else(|| PathBuf::from("/"));
        let config_path = cli
            .config
            .clone()
            .unwrap_or_else(|| root.join("etc/sudohub/hub.toml"));
        let config = match sudohub::config::HubConfig::load(&config_path) {
            Ok(c) => {
                println!("ok   {} is valid", config_path.display());
                c
            }
            Err(e) => {
                println!("FAIL {e}");
                return ExitCode::from(1);
            }
        };
        let paths = match prefix {
            Some(dir) => sudohub::check::CheckPaths::below(dir),
            None => sudohub::check::CheckPaths::default(),
        };
        let paths = sudohub::check::CheckPaths {
            sudoers: sudoers.clone().unwrap_or(paths.sudoers.clone()),
            ..paths
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
    let config_path = cli
        .config
        .unwrap_or_else(|| PathBuf::from(sudohub::config::DEFAULT_PATH));
    let config = match sudohub::config::HubConfig::load(&config_path) {
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
