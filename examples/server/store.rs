//! Storage: answers the core's [`Request`]s.
//!
//! Accounts, rosters and offline messages live in a [`MemoryStore`].
//! Requests are answered inline, except the PLAIN password check
//! ([`Request::VerifyPassword`]): PBKDF2 costs about a millisecond, so the
//! stored credentials are looked up, the check runs on tokio's blocking pool
//! (`spawn_blocking`) and its verdict comes back as [`ToCore::Answer`].

use tokio::sync::mpsc;
use xmpp_session::random::{OsRandom, RandomSource};
use xmpp_session::sasl::{Credentials, PasswordCheck};
use xmpp_session::{AccountJid, MemoryStore, Request, RequestId, Response, Store, StoreError};

use crate::transport::ToCore;

/// Accounts created when no `--user`/`--users-file` is given (password
/// `password`): the ones the acceptance scripts and load tests log in with.
pub const DEMO_USERS: &str = "user user2 romeo juliet nurse mercutio tybalt benvolio admin alice \
    bob discoverer blocker blockee";

/// The core's handle on the store.
pub struct StoreHandle {
    store: MemoryStore,
    to_core: mpsc::Sender<ToCore>,
}

impl StoreHandle {
    /// Wraps `store`; late answers go to `to_core`.
    pub fn new(store: MemoryStore, to_core: mpsc::Sender<ToCore>) -> Self {
        StoreHandle { store, to_core }
    }

    /// Answers `request` now (`Some`) or later through [`ToCore::Answer`].
    pub fn submit(&mut self, id: RequestId, request: Request) -> Option<Response> {
        let Request::VerifyPassword { account, password } = request else {
            return Some(self.store.answer(&request));
        };
        // The lookup is cheap; only the key derivation leaves the core.
        let credentials = match self.store.credentials(&account) {
            Ok(credentials) => credentials,
            Err(e) => return Some(Response::Failed(e)),
        };
        let to_core = self.to_core.clone();
        tokio::spawn(async move {
            let check = tokio::task::spawn_blocking(move || {
                // `password` is wiped when this closure drops it.
                PasswordCheck::from_credentials(credentials.as_ref(), &password)
            })
            .await;
            let response = match check {
                Ok(check) => Response::PasswordChecked(check),
                Err(e) => Response::Failed(StoreError(format!("password check failed: {e}"))),
            };
            // A send error means the core is shutting down.
            let _ = to_core.send(ToCore::Answer(id, response)).await;
        });
        None
    }
}

/// The store with the given accounts, or with the demo accounts if none.
pub fn make_store(domain: &str, accounts: &[(String, String)]) -> Result<MemoryStore, String> {
    let mut store = MemoryStore::new();
    for (name, password) in accounts {
        let account =
            AccountJid::new(name, domain).map_err(|e| format!("account {name}@{domain}: {e}"))?;
        store
            .add_user(&account, password)
            .map_err(|e| e.to_string())?;
    }
    if accounts.is_empty() {
        // One key derivation shared by all demo accounts keeps start-up fast.
        let mut salt = [0u8; 16];
        OsRandom.fill(&mut salt).map_err(|e| e.to_string())?;
        let credentials = Credentials::from_password("password", &salt, 4096);
        println!("demo accounts (password 'password'):");
        for name in DEMO_USERS.split_whitespace() {
            let account = AccountJid::new(name, domain)
                .map_err(|e| format!("account {name}@{domain}: {e}"))?;
            store.add_credentials(&account, credentials.clone());
            println!("  {account}");
        }
    }
    Ok(store)
}
