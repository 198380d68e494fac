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

use jid::Jid;
use minidom::Element;

use crate::account::AccountJid;
use crate::random::{OsRandom, RandomError, RandomSource};
use crate::roster::{Roster, RosterChange};
use crate::sasl::{Credentials, Password, PasswordCheck};

/// What the core needs from storage. Every variant names its account with
/// one [`AccountJid`].
///
/// `Debug` never shows a password (see [`Password`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// The stored SASL credentials of an account, for a SCRAM login.
    /// Answer with [`Response::Credentials`].
    Credentials {
        /// The account (the SASL user name, nodeprepped, at the stream's host).
        account: AccountJid,
    },
    /// Check the password a client sent with SASL PLAIN for an account.
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
        /// The account (the SASL user name, nodeprepped, at the stream's host).
        account: AccountJid,
        /// The password as the client sent it (not SASLprepped).
        password: Password,
    },
    /// Whether the account exists.
    /// Answer with [`Response::UserExists`].
    UserExists {
        /// The account.
        account: AccountJid,
    },
    /// Store a message for a user who has no resource to take it
    /// (RFC 6121 §8.5.2.2). The stanza already carries its XEP-0203
    /// `<delay/>`. Answer with [`Response::Done`],
    /// [`Response::UserExists`]`(false)` if there is no such account, or
    /// [`Response::OverQuota`] (storing nothing) when the message would
    /// take the account past `quota` ([`OfflineQuota::admits`]): the store
    /// knows what it holds, so it enforces the bound, atomically with the
    /// write.
    StoreOffline {
        /// The recipient.
        account: AccountJid,
        /// The message as it will be delivered.
        stanza: Element,
        /// The serialized size of `stanza` in bytes, as the quota counts it.
        size: usize,
        /// The bound on what the account may hold (from [`Config`](crate::Config)).
        quota: OfflineQuota,
    },
    /// The user's roster. Answer with [`Response::Roster`] (an empty
    /// [`Roster`] when there is none).
    LoadRoster {
        /// The account.
        account: AccountJid,
    },
    /// Apply one change to the user's stored roster and record `version`.
    /// Answer with [`Response::Done`].
    RosterChanged {
        /// The account.
        account: AccountJid,
        /// The roster version after this change.
        version: u64,
        /// The change.
        change: RosterChange,
    },
    /// Take (return and delete) every message stored for the user, oldest
    /// first. Answer with [`Response::Offline`].
    TakeOffline {
        /// The account.
        account: AccountJid,
    },
    /// The user's XEP-0191 blocklist. Answer with [`Response::Blocklist`]
    /// (empty when there is none).
    LoadBlocklist {
        /// The account.
        account: AccountJid,
    },
    /// Apply one change to the user's stored blocklist. Changes for one
    /// account are sent one at a time, in order. Answer with
    /// [`Response::Done`].
    BlocklistChanged {
        /// The account.
        account: AccountJid,
        /// The change.
        change: BlocklistChange,
    },
    /// The FAST tokens (XEP-0484) of one client of the account. Answer with
    /// [`Response::FastTokens`] (empty when there are none).
    FastTokens {
        /// The account.
        account: AccountJid,
        /// The client: SHA-256 of its user-agent id, in hex.
        client: String,
    },
    /// Replace the FAST tokens of one client of the account, then keep at
    /// most `max_clients` clients for the account (forgetting those whose
    /// current token was issued first). Answer with [`Response::Done`].
    StoreFastTokens {
        /// The account.
        account: AccountJid,
        /// The client: SHA-256 of its user-agent id, in hex.
        client: String,
        /// The new state (both empty: forget the client).
        tokens: FastTokens,
        /// Clients with tokens kept per account.
        max_clients: usize,
    },
}

/// The FAST tokens of one client (XEP-0484 §4: after rotation the previous
/// token stays valid until the new one has been used).
///
/// The secrets are kept as they are: the `HT-*` mechanisms use the token
/// itself as the HMAC key, so a hash of it could not verify a login (like
/// SCRAM's stored keys, they are secrets of the store). `Debug` hides them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FastTokens {
    /// The newest token.
    pub current: Option<FastToken>,
    /// The token before it, until `current` is used.
    pub previous: Option<FastToken>,
}

impl std::fmt::Debug for FastTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastTokens")
            .field("current", &self.current)
            .field("previous", &self.previous)
            .finish()
    }
}

/// One FAST token.
#[derive(Clone, PartialEq, Eq)]
pub struct FastToken {
    /// The token as the client received it (the `token` attribute's text,
    /// as bytes): the HMAC key of the `HT-SHA-256-*` mechanisms.
    pub secret: Vec<u8>,
    /// When it expires, in seconds since the Unix epoch.
    pub expires: u64,
    /// The mechanism it was issued for (`HT-SHA-256-NONE`, `-ENDP` or
    /// `-EXPR`): a login with any other fails. Stores that predate this
    /// field should read `HT-SHA-256-NONE`.
    pub mechanism: String,
}

impl std::fmt::Debug for FastToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastToken")
            .field("expires", &self.expires)
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

impl Drop for FastToken {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

/// The bound on one account's offline messages, by count and by bytes
/// ([`Config::max_offline_messages`](crate::Config::max_offline_messages),
/// [`Config::max_offline_bytes`](crate::Config::max_offline_bytes)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfflineQuota {
    max_messages: usize,
    max_bytes: usize,
}

impl OfflineQuota {
    /// A quota of `max_messages` messages and `max_bytes` bytes.
    pub fn new(max_messages: usize, max_bytes: usize) -> Self {
        Self {
            max_messages,
            max_bytes,
        }
    }

    /// Messages an account may hold.
    pub fn max_messages(&self) -> usize {
        self.max_messages
    }

    /// Bytes (serialized stanzas) an account may hold.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Whether an account holding `messages` messages of `bytes` bytes in
    /// all may take one more of `size` bytes.
    pub fn admits(&self, messages: usize, bytes: usize, size: usize) -> bool {
        messages < self.max_messages && bytes.saturating_add(size) <= self.max_bytes
    }
}

/// What became of a message given to [`Store::store_offline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineStored {
    /// Stored.
    Stored,
    /// Not stored: there is no such account.
    NoSuchUser,
    /// Not stored: the account's quota would be exceeded.
    OverQuota,
}

/// One change to an account's stored blocklist (XEP-0191).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlocklistChange {
    /// Add these JIDs (none of them is on the list yet).
    Block(Vec<Jid>),
    /// Remove these JIDs (each of them is on the list).
    Unblock(Vec<Jid>),
    /// Empty the list.
    UnblockAll,
}

impl BlocklistChange {
    /// Applies the change to a list kept in order.
    pub fn apply(&self, list: &mut Vec<Jid>) {
        match self {
            BlocklistChange::Block(jids) => {
                for jid in jids {
                    if !list.contains(jid) {
                        list.push(jid.clone());
                    }
                }
            }
            BlocklistChange::Unblock(jids) => list.retain(|j| !jids.contains(j)),
            BlocklistChange::UnblockAll => list.clear(),
        }
    }
}

impl Request {
    /// The account this request is about.
    pub fn account(&self) -> &AccountJid {
        match self {
            Request::Credentials { account }
            | Request::VerifyPassword { account, .. }
            | Request::UserExists { account }
            | Request::StoreOffline { account, .. }
            | Request::LoadRoster { account }
            | Request::RosterChanged { account, .. }
            | Request::TakeOffline { account }
            | Request::LoadBlocklist { account }
            | Request::BlocklistChanged { account, .. }
            | Request::FastTokens { account, .. }
            | Request::StoreFastTokens { account, .. } => account,
        }
    }
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
    /// Answer to [`Request::StoreOffline`]: not stored, the account's
    /// [`OfflineQuota`] is full. The sender gets `resource-constraint`.
    OverQuota,
    /// Answer to [`Request::TakeOffline`]: the stored messages, oldest first.
    Offline(Vec<Element>),
    /// Answer to [`Request::LoadRoster`].
    Roster(Roster),
    /// Answer to [`Request::LoadBlocklist`]: the blocked JIDs, in the
    /// order they were blocked.
    Blocklist(Vec<Jid>),
    /// Answer to [`Request::FastTokens`].
    FastTokens(FastTokens),
    /// The request failed; the core answers the affected client with a
    /// temporary error (e.g. SASL `temporary-auth-failure`).
    Failed(StoreError),
}

/// The account of a user's bare JID, as used in requests.
pub(crate) fn account_of(user: &jid::BareJid) -> AccountJid {
    AccountJid::from_user_jid(user)
}

/// A storage failure reported by the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("storage failed: {0}")]
pub struct StoreError(pub String);

/// A synchronous store. Implement it to answer every [`Request`] at once.
pub trait Store {
    /// The credentials of the account, `None` if there is no such account.
    fn credentials(&mut self, account: &AccountJid) -> Result<Option<Credentials>, StoreError>;

    /// The verdict on a PLAIN `password` for the account.
    ///
    /// The default looks the [`Store::credentials`] up and runs
    /// [`PasswordCheck::from_credentials`] (PBKDF2) on the calling thread; a store
    /// that keeps passwords elsewhere (e.g. an LDAP bind) overrides it.
    fn verify_password(
        &mut self,
        account: &AccountJid,
        password: &Password,
    ) -> Result<PasswordCheck, StoreError> {
        let credentials = self.credentials(account)?;
        Ok(PasswordCheck::from_credentials(
            credentials.as_ref(),
            password,
        ))
    }

    /// Whether the account exists.
    fn user_exists(&mut self, account: &AccountJid) -> Result<bool, StoreError>;

    /// Appends a message of `size` bytes to the account's offline store,
    /// unless the account does not exist or `quota` does not admit it (see
    /// [`OfflineQuota::admits`]).
    fn store_offline(
        &mut self,
        account: &AccountJid,
        stanza: &Element,
        size: usize,
        quota: &OfflineQuota,
    ) -> Result<OfflineStored, StoreError>;

    /// Removes and returns the account's offline messages, oldest first.
    fn take_offline(&mut self, account: &AccountJid) -> Result<Vec<Element>, StoreError>;

    /// The account's roster (empty when there is none).
    fn load_roster(&mut self, account: &AccountJid) -> Result<Roster, StoreError>;

    /// Applies one change to the account's stored roster.
    fn change_roster(
        &mut self,
        account: &AccountJid,
        version: u64,
        change: &RosterChange,
    ) -> Result<(), StoreError>;

    /// The account's blocklist, in the order the JIDs were blocked (empty
    /// when there is none). The default, for stores that keep none, is
    /// always empty.
    fn load_blocklist(&mut self, account: &AccountJid) -> Result<Vec<Jid>, StoreError> {
        let _ = account;
        Ok(Vec::new())
    }

    /// Applies one change to the account's stored blocklist. The default,
    /// for stores that keep none, fails: the change lasts only while the
    /// account stays cached in the manager.
    fn change_blocklist(
        &mut self,
        account: &AccountJid,
        change: &BlocklistChange,
    ) -> Result<(), StoreError> {
        let _ = (account, change);
        Err(StoreError("this store keeps no blocklist".to_owned()))
    }

    /// The FAST tokens of one client of the account. The default has none
    /// (a store without FAST support).
    fn fast_tokens(
        &mut self,
        account: &AccountJid,
        client: &str,
    ) -> Result<FastTokens, StoreError> {
        let _ = (account, client);
        Ok(FastTokens::default())
    }

    /// Replaces the FAST tokens of one client, keeping at most
    /// `max_clients` clients per account. The default refuses.
    fn store_fast_tokens(
        &mut self,
        account: &AccountJid,
        client: &str,
        tokens: &FastTokens,
        max_clients: usize,
    ) -> Result<(), StoreError> {
        let _ = (account, client, tokens, max_clients);
        Err(StoreError(
            "FAST tokens are not supported by this store".into(),
        ))
    }

    /// Answers one request. The default calls the methods above.
    fn answer(&mut self, request: &Request) -> Response {
        let result = match request {
            Request::Credentials { account } => {
                self.credentials(account).map(Response::Credentials)
            }
            Request::VerifyPassword { account, password } => self
                .verify_password(account, password)
                .map(Response::PasswordChecked),
            Request::UserExists { account } => self.user_exists(account).map(Response::UserExists),
            Request::StoreOffline {
                account,
                stanza,
                size,
                quota,
            } => self
                .store_offline(account, stanza, *size, quota)
                .map(|stored| match stored {
                    OfflineStored::Stored => Response::Done,
                    OfflineStored::NoSuchUser => Response::UserExists(false),
                    OfflineStored::OverQuota => Response::OverQuota,
                }),
            Request::TakeOffline { account } => self.take_offline(account).map(Response::Offline),
            Request::LoadRoster { account } => self.load_roster(account).map(Response::Roster),
            Request::RosterChanged {
                account,
                version,
                change,
            } => self
                .change_roster(account, *version, change)
                .map(|()| Response::Done),
            Request::LoadBlocklist { account } => {
                self.load_blocklist(account).map(Response::Blocklist)
            }
            Request::BlocklistChanged { account, change } => self
                .change_blocklist(account, change)
                .map(|()| Response::Done),
            Request::FastTokens { account, client } => {
                self.fast_tokens(account, client).map(Response::FastTokens)
            }
            Request::StoreFastTokens {
                account,
                client,
                tokens,
                max_clients,
            } => self
                .store_fast_tokens(account, client, tokens, *max_clients)
                .map(|()| Response::Done),
        };
        result.unwrap_or_else(Response::Failed)
    }
}

/// A complete in-memory [`Store`]. Passwords are kept only as SCRAM keys,
/// salted with bytes from a [`RandomSource`].
///
/// It answers [`Request::VerifyPassword`] at once, on the calling thread, with
/// [`PasswordCheck::from_credentials`]; an embedder that wants the PBKDF2 off its
/// core task can look the [`Credentials`] up with [`Store::credentials`] and run
/// the check elsewhere (see `examples/server/`).
pub struct MemoryStore {
    users: HashMap<AccountJid, Credentials>,
    offline: HashMap<AccountJid, OfflineBox>,
    rosters: HashMap<AccountJid, Roster>,
    blocklists: HashMap<AccountJid, Vec<Jid>>,
    /// FAST tokens per account, per client, in issue order.
    fast: HashMap<AccountJid, Vec<(String, FastTokens)>>,
    iterations: u32,
    rng: Box<dyn RandomSource>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("users", &self.users.len())
            .field("offline", &self.offline.len())
            .field("rosters", &self.rosters.len())
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store: SCRAM keys derived with 4096 iterations, salts from
    /// the operating system ([`OsRandom`]).
    pub fn new() -> Self {
        Self::with_iterations(4096)
    }

    /// An empty store deriving SCRAM keys with `iterations` (at least 1),
    /// salts from the operating system.
    pub fn with_iterations(iterations: u32) -> Self {
        Self::with_random(Box::new(OsRandom), iterations)
    }

    /// An empty store taking salts from `rng` and deriving SCRAM keys with
    /// `iterations` (at least 1). Tests pass a seeded source for
    /// reproducible keys.
    pub fn with_random(rng: Box<dyn RandomSource>, iterations: u32) -> Self {
        Self {
            users: HashMap::new(),
            offline: HashMap::new(),
            rosters: HashMap::new(),
            blocklists: HashMap::new(),
            fast: HashMap::new(),
            iterations: iterations.max(1),
            rng,
        }
    }

    /// Adds (or replaces) an account. The password is turned into salted
    /// SCRAM keys and forgotten. Fails, adding nothing, when no random salt
    /// can be had.
    pub fn add_user(&mut self, account: &AccountJid, password: &str) -> Result<(), RandomError> {
        let mut salt = [0u8; 16];
        self.rng.fill(&mut salt)?;
        let creds = Credentials::from_password(password, &salt, self.iterations);
        self.users.insert(account.clone(), creds);
        // A new password invalidates every FAST token (XEP-0484).
        self.fast.remove(account);
        Ok(())
    }

    /// Adds an account with credentials derived elsewhere (a password
    /// change: the account's FAST tokens are forgotten).
    pub fn add_credentials(&mut self, account: &AccountJid, credentials: Credentials) {
        self.users.insert(account.clone(), credentials);
        self.fast.remove(account);
    }

    /// Removes an account.
    pub fn remove_user(&mut self, account: &AccountJid) -> bool {
        self.fast.remove(account);
        self.users.remove(account).is_some()
    }

    /// How many clients of the account hold FAST tokens (for inspection).
    pub fn fast_clients(&self, account: &AccountJid) -> usize {
        self.fast.get(account).map_or(0, Vec::len)
    }

    /// Whether the account exists.
    pub fn has_user(&self, account: &AccountJid) -> bool {
        self.users.contains_key(account)
    }

    /// The stored roster of an account (for inspection).
    pub fn stored_roster(&self, account: &AccountJid) -> Option<&Roster> {
        self.rosters.get(account)
    }

    /// The stored blocklist of an account (for inspection).
    pub fn stored_blocklist(&self, account: &AccountJid) -> &[Jid] {
        self.blocklists
            .get(account)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The messages stored for an account, oldest first (for inspection).
    pub fn offline_messages(&self, account: &AccountJid) -> &[Element] {
        self.offline
            .get(account)
            .map(|stored| stored.messages.as_slice())
            .unwrap_or_default()
    }

    /// The bytes of offline messages stored for an account, as their
    /// requests counted them (for inspection).
    pub fn offline_bytes(&self, account: &AccountJid) -> usize {
        self.offline.get(account).map_or(0, |stored| stored.bytes)
    }
}

/// One account's offline messages in a [`MemoryStore`], with their bytes.
#[derive(Debug, Default)]
struct OfflineBox {
    messages: Vec<Element>,
    bytes: usize,
}

impl Store for MemoryStore {
    fn credentials(&mut self, account: &AccountJid) -> Result<Option<Credentials>, StoreError> {
        Ok(self.users.get(account).cloned())
    }

    fn user_exists(&mut self, account: &AccountJid) -> Result<bool, StoreError> {
        Ok(self.has_user(account))
    }

    fn store_offline(
        &mut self,
        account: &AccountJid,
        stanza: &Element,
        size: usize,
        quota: &OfflineQuota,
    ) -> Result<OfflineStored, StoreError> {
        if !self.has_user(account) {
            return Ok(OfflineStored::NoSuchUser);
        }
        let stored = self.offline.entry(account.clone()).or_default();
        if !quota.admits(stored.messages.len(), stored.bytes, size) {
            return Ok(OfflineStored::OverQuota);
        }
        stored.messages.push(stanza.clone());
        stored.bytes = stored.bytes.saturating_add(size);
        Ok(OfflineStored::Stored)
    }

    fn take_offline(&mut self, account: &AccountJid) -> Result<Vec<Element>, StoreError> {
        Ok(self
            .offline
            .remove(account)
            .map(|stored| stored.messages)
            .unwrap_or_default())
    }

    fn load_roster(&mut self, account: &AccountJid) -> Result<Roster, StoreError> {
        Ok(self.rosters.get(account).cloned().unwrap_or_default())
    }

    fn change_roster(
        &mut self,
        account: &AccountJid,
        version: u64,
        change: &RosterChange,
    ) -> Result<(), StoreError> {
        self.rosters
            .entry(account.clone())
            .or_default()
            .apply(version, change);
        Ok(())
    }

    fn load_blocklist(&mut self, account: &AccountJid) -> Result<Vec<Jid>, StoreError> {
        Ok(self.blocklists.get(account).cloned().unwrap_or_default())
    }

    fn change_blocklist(
        &mut self,
        account: &AccountJid,
        change: &BlocklistChange,
    ) -> Result<(), StoreError> {
        let list = self.blocklists.entry(account.clone()).or_default();
        change.apply(list);
        if list.is_empty() {
            self.blocklists.remove(account);
        }
        Ok(())
    }

    fn fast_tokens(
        &mut self,
        account: &AccountJid,
        client: &str,
    ) -> Result<FastTokens, StoreError> {
        Ok(self
            .fast
            .get(account)
            .and_then(|clients| clients.iter().find(|(c, _)| c == client))
            .map(|(_, tokens)| tokens.clone())
            .unwrap_or_default())
    }

    fn store_fast_tokens(
        &mut self,
        account: &AccountJid,
        client: &str,
        tokens: &FastTokens,
        max_clients: usize,
    ) -> Result<(), StoreError> {
        let clients = self.fast.entry(account.clone()).or_default();
        clients.retain(|(c, _)| c != client);
        if tokens.current.is_some() || tokens.previous.is_some() {
            clients.push((client.to_owned(), tokens.clone()));
        }
        let excess = clients.len().saturating_sub(max_clients);
        clients.drain(..excess);
        if clients.is_empty() {
            self.fast.remove(account);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verify(store: &mut MemoryStore, username: &str, password: &str) -> Response {
        let account = AccountJid::new(username, "localhost").expect("valid account");
        store.answer(&Request::VerifyPassword {
            account,
            password: Password::from(password),
        })
    }

    #[test]
    fn memory_store_answers_password_checks_at_once() {
        let mut store = MemoryStore::with_iterations(2);
        let account = |user: &str| AccountJid::new(user, "localhost").expect("valid account");
        store
            .add_user(&account("romeo"), "pass")
            .expect("random salt");
        let mut disabled = Credentials::from_password("pass", b"salt", 2);
        disabled.disabled = true;
        store.add_credentials(&account("tybalt"), disabled);
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
            account: AccountJid::new("romeo", "localhost").expect("valid account"),
            password: Password::from("hunter2"),
        };
        let text = format!("{request:?} {request:#?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("romeo"), "{text}");
    }
}
