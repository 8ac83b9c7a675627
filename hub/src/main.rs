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
    /// Give a user of the hub's own accounts a password, approved at once (the first
    /// admin's account, or a password set without a browser). Reads it twice from
    /// stdin. Run as the hub's user: `runuser -u sudohub -- sudohub set-password NAME`.
    SetPassword {
        /// The user.
        name: String,
        /// Make them an admin too.
        #[arg(long)]
        admin: bool,
    },
    /// Hand over to a new hub process of the installed binary with nothing dropped: it
    /// takes the listening sockets and the servers; this one drains and exits. Run as
    /// the hub's user: `runuser -u sudohub -- sudohub upgrade`.
    Upgrade,
    /// Read the TLS certificate and key again in place (as SIGHUP and `systemctl reload`).
    Reload,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::GenerateConfig) => {
            print!("{}", sudohub::config::GENERATED);
            ExitCode::SUCCESS
        }
        Some(Command::Check { prefix, sudoers }) => {
            sudohub::check::main(cli.config, prefix, sudoers)
        }
        Some(Command::SetPassword { name, admin }) => {
            sudohub::accounts_cli::main(cli.config, &name, admin)
        }
        Some(Command::Upgrade) => control(cli.config, sudohub::serve::Ask::Upgrade),
        Some(Command::Reload) => control(cli.config, sudohub::serve::Ask::Reload),
        None => sudohub::serve::main(cli.config),
    }
}

/// `upgrade` and `reload`: asked of the running hub over its control socket.
fn control(config: Option<PathBuf>, ask: sudohub::serve::Ask) -> ExitCode {
    let path = config.unwrap_or_else(|| sudohub::config::DEFAULT_PATH.into());
    match sudohub::config::HubConfig::load(&path) {
        Ok(cfg) => sudohub::serve::client(&sudohub::serve::control_path(&cfg), ask),
        Err(e) => {
            eprintln!("sudohub: {e}");
            ExitCode::from(2)
        }
    }
}
