//! Accounts: the commands `adduser`, `deluser`, `passwd` and `users`, which
//! work on the database without a running server, and the accounts given
//! at start with `--user NAME:PASSWORD` and `--users-file PATH`.

use std::io::IsTerminal;
use std::path::Path;

use xmpp_session::{AccountJid, Store};

use crate::store::Db;

/// Parses `name:password`.
pub fn parse_account(line: &str) -> Result<(String, String), String> {
    match line.split_once(':') {
        Some((name, password)) if !name.is_empty() => Ok((name.to_owned(), password.to_owned())),
        _ => Err(format!("expected NAME:PASSWORD, got {line:?}")),
    }
}

/// The accounts from `--user` flags and an optional users file.
pub fn load_accounts(
    users: &[String],
    users_file: Option<&Path>,
) -> Result<Vec<(String, String)>, String> {
    let mut accounts = Vec::new();
    for user in users {
        accounts.push(parse_account(user)?);
    }
    if let Some(path) = users_file {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for line in text.lines().map(str::trim) {
            if !line.is_empty() && !line.starts_with('#') {
                accounts.push(parse_account(line)?);
            }
        }
    }
    Ok(accounts)
}

/// Account commands that work on the database without a running server,
/// like prosodyctl's `register`/`deluser`.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Create an account (the password is read from stdin unless --password).
    Adduser {
        /// The user name (the part before the @).
        name: String,
        /// The password (visible in the process list; prefer stdin).
        #[arg(long)]
        password: Option<String>,
    },
    /// Delete an account with its roster and offline messages.
    Deluser {
        /// The user name.
        name: String,
    },
    /// Change an account's password (read from stdin unless --password).
    Passwd {
        /// The user name.
        name: String,
        /// The new password.
        #[arg(long)]
        password: Option<String>,
    },
    /// List the accounts.
    Users,
}

/// The password from `--password`, or one line of standard input.
fn password(given: Option<String>) -> Result<String, String> {
    if let Some(password) = given {
        return Ok(password);
    }
    if std::io::stdin().is_terminal() {
        eprint!("password (shown as typed): ");
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("reading the password: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err("empty password".to_owned());
    }
    Ok(password)
}

/// Runs an account command on `db` for `domain`; the message to print.
pub fn run(command: Command, db: &mut Db, domain: &str) -> Result<String, String> {
    let account = |name: &str| {
        AccountJid::new(name, domain).map_err(|e| format!("account {name}@{domain}: {e}"))
    };
    match command {
        Command::Adduser { name, password: p } => {
            let account = account(&name)?;
            if db.user_exists(&account).map_err(|e| e.to_string())? {
                return Err(format!("{account} exists already (use passwd)"));
            }
            db.set_password(&account, &password(p)?)?;
            Ok(format!("created {account}"))
        }
        Command::Passwd { name, password: p } => {
            let account = account(&name)?;
            if !db.user_exists(&account).map_err(|e| e.to_string())? {
                return Err(format!("no account {account}"));
            }
            db.set_password(&account, &password(p)?)?;
            Ok(format!("password of {account} changed"))
        }
        Command::Deluser { name } => {
            let account = account(&name)?;
            if db.remove_user(&account).map_err(|e| e.to_string())? {
                Ok(format!("deleted {account}"))
            } else {
                Err(format!("no account {account}"))
            }
        }
        Command::Users => {
            let users = db.users().map_err(|e| e.to_string())?;
            Ok(format!("{} account(s)\n{}", users.len(), users.join("\n"))
                .trim_end()
                .to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_session::Store;

    #[test]
    fn adduser_stores_the_nodeprepped_name() {
        let mut db = Db::open(None).expect("in-memory database");
        for (given, stored) in [
            ("Romeo", "romeo"),
            ("Straße", "strasse"),
            ("\u{ff2a}\u{ff55}\u{ff4c}\u{ff49}\u{ff45}\u{ff54}", "juliet"),
        ] {
            let message = run(
                Command::Adduser {
                    name: given.to_owned(),
                    password: Some("pass".to_owned()),
                },
                &mut db,
                "localhost",
            )
            .expect("created");
            assert_eq!(message, format!("created {stored}@localhost"));
            let account = AccountJid::new(stored, "localhost").expect("valid account");
            assert_eq!(db.user_exists(&account), Ok(true), "{given}");
        }
        // The same name in another form is the same account.
        let again = run(
            Command::Adduser {
                name: "ROMEO".to_owned(),
                password: Some("pass".to_owned()),
            },
            &mut db,
            "localhost",
        );
        assert_eq!(
            again,
            Err("romeo@localhost exists already (use passwd)".to_owned())
        );
    }
}
