//! Storage and credentials as requests.
//!
//! The core never blocks on a database. When it needs data it emits
//! [`Output::Request`](crate::Output::Request) with a [`Request`]; the caller
//! answers, now or later, with
//! [`SessionManager::complete`](crate::SessionManager::complete) and a
//! [`Response`]. Work that depends on the answer is parked in order.
//!
//! Simple embedders implement [`Store`] (or use [`MemoryStore`]) and drain
//! with [`SessionManager::poll_output_with`](crate::SessionManager::poll_output_with),
//! which answers every request at once.

use std::collections::HashMap;

use minidom::Element;

use crate::roster::{Roster, RosterChange};
use crate::sasl::{Credentials, Password, PasswordCheck};

/// What the core needs from storage.
///
/// `Debug` never shows a password (see [`Password`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// The stored SASL credentials of `username@host`, for a SCRAM login.
    /// Answer with [`Response::Credentials`].
    Credentials {
        /// The (nodeprepped or saslprepped) user name.
        username: String,
        /// The served domain.
        host: String,
    },
    /// Check the password a client sent with SASL PLAIN for `username@host`.
    /// Answer with [`Response::PasswordChecked`].
    ///
    /// Checking means deriving keys from the password with PBKDF2 (the stored
    /// iteration count, 4096 by default): about a millisecond of CPU. Answer from a
    /// thread pool (e.g. tokio's `spawn_blocking`) so that the task driving the
    /// manager keeps serving other clients; [`PasswordCheck::from_credentials`]
    /// does the check against stored [`Credentials`]. The session reads nothing
    /// more until the answer arrives.
    ///
    /// The manager keeps no copy of the password: it lives only in this request,
    /// and is wiped when the request (and every clone of it) is dropped.
    VerifyPassword {
        /// The nodeprepped user name.
        username: String,
        /// The served domain.
        host: String,
        /// The password as the client sent it (not SASLprepped).
        password: Password,
    },
    /// Whether the account `username@host` exists.
    /// Answer with [`Response::UserExists`].
    UserExists {
        /// The user name.
        username: String,
        /// The served domain.
        host: String,
    },
    /// Store a message for a user who has no resource to take it
    /// (RFC 6121 §8.5.2.2). The stanza already carries its XEP-0203
    /// `<delay/>`. Answer with [`Response::Done`], or
    /// [`Response::UserExists`]`(false)` if there is no such account.
    StoreOffline {
        /// The recipient's user name.
        username: String,
        /// The served domain.
        host: String,
        /// The message as it will be delivered.
        stanza: Element,
    },
    /// The user's roster. Answer with [`Response::Roster`] (an empty
    /// [`Roster`] when there is none).
    LoadRoster {
        /// The user name.
        username: String,
        /// The served domain.
        host: String,
    },
    /// Apply one change to the user's stored roster and record `version`.
    /// Answer with [`Response::Done`].
    RosterChanged {
        /// The user name.
        username: String,
        /// The served domain.
        host: String,
        /// The roster version after this change.
        version: u64,
        /// The change.
        change: RosterChange,
    },
    /// Take (return and delete) every message stored for the user, oldest
    /// first. Answer with [`Response::Offline`].
    TakeOffline {
        /// The user name.
        username: String,
        /// The served domain.
        host: String,
    },
}

/// The caller's answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response {
    /// Answer to [`Request::Credentials`]: `None` when there is no such user.
    Credentials(Option<Credentials>),
    /// Answer to [`Request::VerifyPassword`].
    PasswordChecked(PasswordCheck),
    /// Answer to [`Request::UserExists`] (and `false` to refuse a
    /// [`Request::StoreOffline`] for an unknown user).
    UserExists(bool),
    /// The write succeeded.
    Done,
    /// Answer to [`Request::TakeOffline`]: the stored messages, oldest first.
    Offline(Vec<Element>),
    /// Answer to [`Request::LoadRoster`].
    Roster(Roster),
    /// The request failed; the core answers the affected client with a
    /// temporary error (e.g. SASL `temporary-auth-failure`).
    Failed(StoreError),
}

/// The user-name part of an account's bare JID, as used in requests.
pub(crate) fn username_of(user: &jid::BareJid) -> String {
    user.node()
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default()
}

/// The domain of an account's bare JID, as used in requests.
pub(crate) fn host_of(user: &jid::BareJid) -> String {
    user.domain().as_str().to_owned()
}

/// A storage failure reported by the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("storage failed: {0}")]
pub struct StoreError(pub String);

/// A synchronous store. Implement it to answer every [`Request`] at once.
pub trait Store {
    /// The credentials of `username@host`, `None` if there is no such user.
    fn credentials(
        &mut self,
        username: &str,
        host: &str,
    ) -> Result<Option<Credentials>, StoreError>;

    /// The verdict on a PLAIN `password` for `username@host`.
    ///
    /// The default looks the [`Store::credentials`] up and runs
    /// [`PasswordCheck::from_credentials`] (PBKDF2) on the calling thread; a store
    /// that keeps passwords elsewhere (e.g. an LDAP bind) overrides it.
    fn verify_password(
        &mut self,
        username: &str,
        host: &str,
        password: &Password,
    ) -> Result<PasswordCheck, StoreError> {
        let credentials = self.credentials(username, host)?;
        Ok(PasswordCheck::from_credentials(
            credentials.as_ref(),
            password,
        ))
    }

    /// Whether the account exists.
    fn user_exists(&mut self, username: &str, host: &str) -> Result<bool, StoreError>;

    /// Appends a message to the user's offline store. Returns `false` if the
    /// account does not exist.
    fn store_offline(
        &mut self,
        username: &str,
        host: &str,
        stanza: &Element,
    ) -> Result<bool, StoreError>;

    /// Removes and returns the user's offline messages, oldest first.
    fn take_offline(&mut self, username: &str, host: &str) -> Result<Vec<Element>, StoreError>;

    /// The user's roster (empty when there is none).
    fn load_roster(&mut self, username: &str, host: &str) -> Result<Roster, StoreError>;

    /// Applies one change to the user's stored roster.
    fn change_roster(
        &mut self,
        username: &str,
        host: &str,
        version: u64,
        change: &RosterChange,
    ) -> Result<(), StoreError>;

    /// Answers one request. The default calls the methods above.
    fn answer(&mut self, request: &Request) -> Response {
        let result = match request {
            Request::Credentials { username, host } => {
                self.credentials(username, host).map(Response::Credentials)
            }
            Request::VerifyPassword {
                username,
                host,
                password,
            } => self
                .verify_password(username, host, password)
                .map(Response::PasswordChecked),
            Request::UserExists { username, host } => {
                self.user_exists(username, host).map(Response::UserExists)
            }
            Request::StoreOffline {
                username,
                host,
                stanza,
            } => self.store_offline(username, host, stanza).map(|stored| {
                if stored {
                    Response::Done
                } else {
                    Response::UserExists(false)
                }
            }),
            Request::TakeOffline { username, host } => {
                self.take_offline(username, host).map(Response::Offline)
            }
            Request::LoadRoster { username, host } => {
                self.load_roster(username, host).map(Response::Roster)
            }
            Request::RosterChanged {
                username,
                host,
                version,
                change,
            } => self
                .change_roster(username, host, *version, change)
                .map(|()| Response::Done),
        };
        result.unwrap_or_else(Response::Failed)
    }
}

/// A complete in-memory [`Store`]. Passwords are kept only as SCRAM keys.
///
/// It answers [`Request::VerifyPassword`] at once, on the calling thread, with
/// [`PasswordCheck::from_credentials`]; an embedder that wants the PBKDF2 off its
/// core task can look the [`Credentials`] up with [`Store::credentials`] and run
/// the check elsewhere (see `examples/server.rs`).
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    users: HashMap<(String, String), Credentials>,
    offline: HashMap<(String, String), Vec<Element>>,
    rosters: HashMap<(String, String), Roster>,
    iterations: u32,
}

impl MemoryStore {
    /// An empty store (SCRAM keys derived with 4096 iterations).
    pub fn new() -> Self {
        Self::with_iterations(4096)
    }

    /// An empty store deriving SCRAM keys with `iterations` (at least 1).
    pub fn with_iterations(iterations: u32) -> Self {
        Self {
            users: HashMap::new(),
            offline: HashMap::new(),
            rosters: HashMap::new(),
            iterations: iterations.max(1),
        }
    }

    /// Adds (or replaces) an account. The password is turned into salted
    /// SCRAM keys and forgotten.
    pub fn add_user(&mut self, host: &str, username: &str, password: &str) {
        let mut salt = [0u8; 16];
        crate::random::RandomSource::fill(&mut crate::random::OsRandom, &mut salt);
        let creds = Credentials::from_password(password, &salt, self.iterations.max(1));
        self.users
            .insert((host.to_owned(), username.to_owned()), creds);
    }

    /// Adds an account with credentials derived elsewhere.
    pub fn add_credentials(&mut self, host: &str, username: &str, credentials: Credentials) {
        self.users
            .insert((host.to_owned(), username.to_owned()), credentials);
    }

    /// Removes an account.
    pub fn remove_user(&mut self, host: &str, username: &str) -> bool {
        self.users
            .remove(&(host.to_owned(), username.to_owned()))
            .is_some()
    }

    /// Whether the account exists.
    pub fn has_user(&self, host: &str, username: &str) -> bool {
        self.users
            .contains_key(&(host.to_owned(), username.to_owned()))
    }

    /// The stored roster of a user (for inspection).
    pub fn stored_roster(&self, host: &str, username: &str) -> Option<&Roster> {
        self.rosters.get(&(host.to_owned(), username.to_owned()))
    }

    /// The messages stored for a user, oldest first (for inspection).
    pub fn offline_messages(&self, host: &str, username: &str) -> &[Element] {
        self.offline
            .get(&(host.to_owned(), username.to_owned()))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

impl Store for MemoryStore {
    fn credentials(
        &mut self,
        username: &str,
        host: &str,
    ) -> Result<Option<Credentials>, StoreError> {
        Ok(self
            .users
            .get(&(host.to_owned(), username.to_owned()))
            .cloned())
    }

    fn user_exists(&mut self, username: &str, host: &str) -> Result<bool, StoreError> {
        Ok(self.has_user(host, username))
    }

    fn store_offline(
        &mut self,
        username: &str,
        host: &str,
        stanza: &Element,
    ) -> Result<bool, StoreError> {
        if !self.has_user(host, username) {
            return Ok(false);
        }
        self.offline
            .entry((host.to_owned(), username.to_owned()))
            .or_default()
            .push(stanza.clone());
        Ok(true)
    }

    fn take_offline(&mut self, username: &str, host: &str) -> Result<Vec<Element>, StoreError> {
        Ok(self
            .offline
            .remove(&(host.to_owned(), username.to_owned()))
            .unwrap_or_default())
    }

    fn load_roster(&mut self, username: &str, host: &str) -> Result<Roster, StoreError> {
        Ok(self
            .rosters
            .get(&(host.to_owned(), username.to_owned()))
            .cloned()
            .unwrap_or_default())
    }

    fn change_roster(
        &mut self,
        username: &str,
        host: &str,
        version: u64,
        change: &RosterChange,
    ) -> Result<(), StoreError> {
        self.rosters
            .entry((host.to_owned(), username.to_owned()))
            .or_default()
            .apply(version, change);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verify(store: &mut MemoryStore, username: &str, password: &str) -> Response {
        store.answer(&Request::VerifyPassword {
            username: username.to_owned(),
            host: "localhost".to_owned(),
            password: Password::from(password),
        })
    }

    #[test]
    fn memory_store_answers_password_checks_at_once() {
        let mut store = MemoryStore::with_iterations(2);
        store.add_user("localhost", "romeo", "pass");
        let mut disabled = Credentials::from_password("pass", b"salt", 2);
        disabled.disabled = true;
        store.add_credentials("localhost", "tybalt", disabled);
        for (user, password, expected) in [
            ("romeo", "pass", PasswordCheck::Valid),
            ("romeo", "Pass", PasswordCheck::WrongPassword),
            ("mercutio", "pass", PasswordCheck::UnknownUser),
            ("tybalt", "pass", PasswordCheck::AccountDisabled),
        ] {
            assert_eq!(
                verify(&mut store, user, password),
                Response::PasswordChecked(expected),
                "{user}:{password}"
            );
        }
    }

    #[test]
    fn request_debug_hides_the_password() {
        let request = Request::VerifyPassword {
            username: "romeo".to_owned(),
            host: "localhost".to_owned(),
            password: Password::from("hunter2"),
        };
        let text = format!("{request:?} {request:#?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("romeo"), "{text}");
    }
}
