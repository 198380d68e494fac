//! Accounts given on the command line: `--user NAME:PASSWORD` and
//! `--users-file PATH`.

use std::path::Path;

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
