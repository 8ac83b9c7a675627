//! `sudohub set-password NAME [--admin]`: gives a user of the hub's own accounts a
//! password from the command line, approved at once: how the first admin's account is
//! made (names in `admin_users` are never signed up on the web), and how an admin sets
//! a password without a browser. The password is read twice from stdin (without echo on
//! a terminal), never from the arguments. Run as the hub's user, whose database it is.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use sudohub_protocol::Secret;

use crate::auth::password;
use crate::config::HubConfig;
use crate::db::Db;
use crate::types::Username;

/// Reads one line from stdin without its newline; no echo on a terminal.
fn read_secret(prompt: &str) -> Result<String, String> {
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    let saved = if tty {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        let t = nix::sys::termios::tcgetattr(&stdin).map_err(|e| e.to_string())?;
        let mut quiet = t.clone();
        quiet
            .local_flags
            .remove(nix::sys::termios::LocalFlags::ECHO);
        nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &quiet)
            .map_err(|e| e.to_string())?;
        Some(t)
    } else {
        None
    };
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(t) = saved {
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &t);
        eprintln!();
    }
    match read {
        Ok(0) => Err("no password on stdin (give it twice, one per line)".into()),
        Ok(_) => Ok(line.trim_end_matches(['\n', '\r']).to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

fn set_password(config: Option<PathBuf>, name: &str, admin: bool) -> Result<String, String> {
    if nix::unistd::geteuid().is_root() {
        return Err("run it as the hub's user, whose database it is: runuser -u sudohub -- sudohub set-password NAME".into());
    }
    let path = config.unwrap_or_else(|| crate::config::DEFAULT_PATH.into());
    let cfg = HubConfig::load(&path).map_err(|e| e.to_string())?;
    if !cfg.auth.uses(crate::config::SourceKind::Native) {
        return Err("this hub has no accounts of its own: set [auth] source = \"native\" (or sources) in hub.toml".into());
    }
    let user = Username::parse(name).map_err(|e| e.to_string())?;
    if nix::unistd::User::from_name(name).ok().flatten().is_some()
        && cfg.auth.uses(crate::config::SourceKind::Pam)
    {
        return Err(format!(
            "{name} signs in with their account on this machine (PAM); its password is not the hub's to set"
        ));
    }
    let pw = read_secret("New password: ")?;
    let again = read_secret("Again: ")?;
    if !crate::secrets::same(&pw, &again) {
        return Err("the two passwords are not the same".into());
    }
    password::acceptable(&cfg.auth.native, &pw, name, None)?;
    let secret = Secret::new(pw).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let hash = rt
        .block_on(password::hash(&secret))
        .map_err(|e| e.to_string())?;
    let db = Db::open(&cfg.db).map_err(|e| format!("{}: {e}", cfg.db.display()))?;
    db.users()
        .ensure(&user, admin.then_some(true))
        .map_err(|e| e.to_string())?;
    let native = db.native();
    let had = native.get(&user).map_err(|e| e.to_string())?.is_some();
    if had {
        native
            .set_password(&user, &hash)
            .map_err(|e| e.to_string())?;
    } else {
        native
            .create_for_user(&user, &hash)
            .map_err(|e| e.to_string())?;
    }
    crate::auth::native::bind_existing(&db, &user).map_err(|e| e.to_string())?;
    let admin_note = if admin { " (admin)" } else { "" };
    Ok(if had {
        format!("password of {user}{admin_note} changed")
    } else {
        format!("{user}{admin_note} can sign in now")
    })
}

/// The command's entry: prints what it did or why not.
pub fn main(config: Option<PathBuf>, name: &str, admin: bool) -> ExitCode {
    match set_password(config, name, admin) {
        Ok(done) => {
            println!("{done}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sudohub set-password: {e}");
            ExitCode::from(2)
        }
    }
}
