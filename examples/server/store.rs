//! Storage: a SQLite database (rusqlite, SQLite compiled in) that answers
//! the core's [`Request`]s on a thread of its own.
//!
//! What is kept (see [`SCHEMA`]): accounts as salted SCRAM-SHA-1 and
//! SCRAM-SHA-256 keys only (the library's [`Credentials`], never a
//! password), each roster with its version, the inbound subscription
//! requests still pending, and offline messages. `--db PATH` names the file
//! (created on first run); `--memory` keeps everything in memory.
//!
//! Threads. The core hands each request to [`StoreHandle::submit`], which
//! never blocks: the request goes over a channel to the store thread. That
//! thread takes every request already queued, runs them in one transaction,
//! commits, and only then sends the answers back as [`ToCore::Answer`]. A
//! PLAIN password check ([`Request::VerifyPassword`]) only looks the
//! credentials up there; the PBKDF2 work (about a millisecond) runs on
//! tokio's blocking pool, so its answer may come back after later ones. The
//! core orders requests per user, so answers in any order are safe.
//!
//! The same [`Db`] serves the account commands in [`crate::admin`] without
//! a running server.

use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::mpsc;
use xmpp_session::jid::{BareJid, Jid};
use xmpp_session::random::{OsRandom, RandomSource};
use xmpp_session::roster::{Roster, RosterChange, RosterItem, Subscription};
use xmpp_session::sasl::{Credentials, PasswordCheck, ScramKeys};
use xmpp_session::{
    AccountJid, BlocklistChange, Element, FastToken, FastTokens, OfflineQuota, OfflineStored,
    Request, RequestId, Response, Store, StoreError,
};

use crate::transport::ToCore;

/// Demo accounts (password `password`), created with `--demo` and with
/// `--memory`: the ones the acceptance scripts and load tests log in with.
pub const DEMO_USERS: &str = "user user2 romeo juliet nurse mercutio tybalt benvolio admin alice \
    bob discoverer blocker blockee";

/// PBKDF2 iterations for new SCRAM keys.
pub const ITERATIONS: u32 = 4096;

/// Requests run in one transaction at most.
const MAX_TRANSACTION: usize = 256;

/// The tables; created if missing.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS accounts (
    jid TEXT PRIMARY KEY,                 -- user@domain
    disabled INTEGER NOT NULL DEFAULT 0,
    sha1_salt BLOB, sha1_iterations INTEGER, sha1_stored_key BLOB, sha1_server_key BLOB,
    sha256_salt BLOB, sha256_iterations INTEGER, sha256_stored_key BLOB, sha256_server_key BLOB
);
CREATE TABLE IF NOT EXISTS roster_versions (
    account TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS roster_items (
    account TEXT NOT NULL,
    contact TEXT NOT NULL,
    name TEXT,
    subscription TEXT NOT NULL,           -- none, to, from, both
    ask INTEGER NOT NULL,
    approved INTEGER NOT NULL,
    PRIMARY KEY (account, contact)
);
CREATE TABLE IF NOT EXISTS roster_groups (
    account TEXT NOT NULL,
    contact TEXT NOT NULL,
    grp TEXT NOT NULL,
    PRIMARY KEY (account, contact, grp)
);
CREATE TABLE IF NOT EXISTS pending_in (
    account TEXT NOT NULL,
    contact TEXT NOT NULL,
    stanza TEXT NOT NULL,                 -- the subscription request as received
    PRIMARY KEY (account, contact)
);
CREATE TABLE IF NOT EXISTS offline (
    id INTEGER PRIMARY KEY AUTOINCREMENT, -- delivery order
    account TEXT NOT NULL,
    stanza TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS offline_account ON offline (account, id);
CREATE TABLE IF NOT EXISTS blocklist (
    id INTEGER PRIMARY KEY AUTOINCREMENT, -- the order JIDs were blocked in
    account TEXT NOT NULL,
    blocked TEXT NOT NULL,                -- any JID (XEP-0191)
    UNIQUE (account, blocked)
);
CREATE TABLE IF NOT EXISTS fast_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT, -- issue order (oldest forgotten first)
    account TEXT NOT NULL,
    client TEXT NOT NULL,                 -- SHA-256 of the user-agent id, hex
    current_secret BLOB, current_expires INTEGER,
    previous_secret BLOB, previous_expires INTEGER,
    current_mechanism TEXT NOT NULL DEFAULT 'HT-SHA-256-NONE',
    previous_mechanism TEXT NOT NULL DEFAULT 'HT-SHA-256-NONE',
    UNIQUE (account, client)
);
";

/// Adds the FAST tokens' mechanism columns to a database created before
/// they existed (its tokens were all issued for `HT-SHA-256-NONE`).
fn add_fast_mechanism_columns(conn: &Connection) -> rusqlite::Result<()> {
    for column in ["current_mechanism", "previous_mechanism"] {
        let present: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info('fast_tokens') WHERE name = ?1)",
            [column],
            |row| row.get(0),
        )?;
        if !present {
            conn.execute_batch(&format!(
                "ALTER TABLE fast_tokens ADD COLUMN {column} \
                 TEXT NOT NULL DEFAULT 'HT-SHA-256-NONE'"
            ))?;
        }
    }
    Ok(())
}

/// The mechanism column of an empty token slot.
const HT_SHA_256_NONE: &str = "HT-SHA-256-NONE";

/// A database error as the core's [`StoreError`].
fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError(format!("database: {e}"))
}

/// A stored element, parsed back.
fn parse_element(text: &str) -> Result<Element, StoreError> {
    text.parse::<Element>()
        .map_err(|e| StoreError(format!("stored stanza unreadable: {e}")))
}

/// A stored bare JID, parsed back.
fn parse_jid(text: &str) -> Result<BareJid, StoreError> {
    BareJid::new(text).map_err(|e| StoreError(format!("stored JID {text:?}: {e}")))
}

/// The database.
pub struct Db {
    conn: Connection,
}

impl Db {
    /// Opens (creating if needed) the database at `path`, or an in-memory
    /// one when `path` is `None`.
    pub fn open(path: Option<&Path>) -> Result<Db, String> {
        let conn = match path {
            Some(path) => Connection::open(path),
            None => Connection::open_in_memory(),
        }
        .map_err(|e| match path {
            Some(path) => format!("{}: {e}", path.display()),
            None => format!("in-memory database: {e}"),
        })?;
        // WAL: readers never wait for the writer; NORMAL sync is durable
        // across a crash of this process (not of the machine) and fast.
        conn.pragma_update(None, "journal_mode", "WAL")
            .and_then(|()| conn.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|()| conn.execute_batch(SCHEMA))
            .and_then(|()| add_fast_mechanism_columns(&conn))
            .map_err(|e| format!("database setup: {e}"))?;
        Ok(Db { conn })
    }

    /// Stores credentials for `account`, replacing any. Returns whether the
    /// account existed.
    pub fn set_credentials(
        &mut self,
        account: &AccountJid,
        credentials: &Credentials,
    ) -> Result<bool, StoreError> {
        let existed = self.user_exists(account)?;
        // New credentials invalidate every FAST token (XEP-0484).
        self.conn
            .execute(
                "DELETE FROM fast_tokens WHERE account = ?1",
                [account.as_str()],
            )
            .map_err(db_err)?;
        let keys = |k: &Option<ScramKeys>| {
            k.as_ref().map(|k| {
                (
                    k.salt.clone(),
                    k.iterations,
                    k.stored_key.clone(),
                    k.server_key.clone(),
                )
            })
        };
        let (s1, s256) = (keys(&credentials.sha1), keys(&credentials.sha256));
        self.conn
            .execute(
                "INSERT OR REPLACE INTO accounts VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    account.as_str(),
                    credentials.disabled,
                    s1.as_ref().map(|k| &k.0),
                    s1.as_ref().map(|k| k.1),
                    s1.as_ref().map(|k| &k.2),
                    s1.as_ref().map(|k| &k.3),
                    s256.as_ref().map(|k| &k.0),
                    s256.as_ref().map(|k| k.1),
                    s256.as_ref().map(|k| &k.2),
                    s256.as_ref().map(|k| &k.3),
                ],
            )
            .map_err(db_err)?;
        Ok(existed)
    }

    /// Adds or replaces an account with keys derived from `password` under a
    /// fresh random salt. Returns whether the account existed.
    pub fn set_password(&mut self, account: &AccountJid, password: &str) -> Result<bool, String> {
        let mut salt = [0u8; 16];
        OsRandom.fill(&mut salt).map_err(|e| e.to_string())?;
        let credentials = Credentials::from_password(password, &salt, ITERATIONS);
        self.set_credentials(account, &credentials)
            .map_err(|e| e.to_string())
    }

    /// Deletes an account with its roster, pending requests and offline
    /// messages. Returns whether it existed.
    pub fn remove_user(&mut self, account: &AccountJid) -> Result<bool, StoreError> {
        let tx = self.conn.transaction().map_err(db_err)?;
        let mut removed = 0;
        for table in [
            "accounts WHERE jid",
            "roster_versions WHERE account",
            "roster_items WHERE account",
            "roster_groups WHERE account",
            "pending_in WHERE account",
            "offline WHERE account",
            "blocklist WHERE account",
            "fast_tokens WHERE account",
        ] {
            let n = tx
                .execute(&format!("DELETE FROM {table} = ?1"), [account.as_str()])
                .map_err(db_err)?;
            if table.starts_with("accounts") {
                removed = n;
            }
        }
        tx.commit().map_err(db_err)?;
        Ok(removed > 0)
    }

    /// Every account, sorted.
    pub fn users(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT jid FROM accounts ORDER BY jid")
            .map_err(db_err)?;
        let rows = stmt.query_map([], |row| row.get(0)).map_err(db_err)?;
        rows.collect::<Result<_, _>>().map_err(db_err)
    }

    /// Adds the [`DEMO_USERS`] that do not exist yet, all with password
    /// `password` (one key derivation shared by all keeps start-up fast).
    pub fn add_demo_users(&mut self, domain: &str) -> Result<Vec<AccountJid>, String> {
        let mut salt = [0u8; 16];
        OsRandom.fill(&mut salt).map_err(|e| e.to_string())?;
        let credentials = Credentials::from_password("password", &salt, ITERATIONS);
        let mut added = Vec::new();
        for name in DEMO_USERS.split_whitespace() {
            let account = AccountJid::new(name, domain)
                .map_err(|e| format!("account {name}@{domain}: {e}"))?;
            if !self.user_exists(&account).map_err(|e| e.to_string())? {
                self.set_credentials(&account, &credentials)
                    .map_err(|e| e.to_string())?;
            }
            added.push(account);
        }
        Ok(added)
    }

    /// Runs `requests` in one transaction and returns their answers (a
    /// password check's answer is the stored credentials, checked by the
    /// caller). On a failed commit every answer is a failure.
    fn run_batch(&mut self, requests: Vec<(RequestId, Request)>) -> Vec<(RequestId, Answer)> {
        if let Err(e) = self.conn.execute_batch("BEGIN") {
            let failure = db_err(e);
            return requests
                .into_iter()
                .map(|(id, _)| (id, Answer::Now(Response::Failed(failure.clone()))))
                .collect();
        }
        let mut answers: Vec<(RequestId, Answer)> = requests
            .into_iter()
            .map(|(id, request)| {
                let answer = match request {
                    Request::VerifyPassword { account, password } => {
                        match self.credentials(&account) {
                            Ok(credentials) => Answer::Check(credentials, password),
                            Err(e) => Answer::Now(Response::Failed(e)),
                        }
                    }
                    request => Answer::Now(self.answer(&request)),
                };
                (id, answer)
            })
            .collect();
        if let Err(e) = self.conn.execute_batch("COMMIT") {
            let _ = self.conn.execute_batch("ROLLBACK");
            let failure = db_err(e);
            for (_, answer) in &mut answers {
                *answer = Answer::Now(Response::Failed(failure.clone()));
            }
        }
        answers
    }
}

/// What the store thread found for one request.
enum Answer {
    /// The response.
    Now(Response),
    /// A PLAIN password to check against these credentials (off the store
    /// thread).
    Check(Option<Credentials>, xmpp_session::sasl::Password),
}

impl Store for Db {
    fn credentials(&mut self, account: &AccountJid) -> Result<Option<Credentials>, StoreError> {
        self.conn
            .query_row(
                "SELECT disabled, sha1_salt, sha1_iterations, sha1_stored_key, sha1_server_key, \
                 sha256_salt, sha256_iterations, sha256_stored_key, sha256_server_key \
                 FROM accounts WHERE jid = ?1",
                [account.as_str()],
                |row| {
                    let keys = |at: usize| -> rusqlite::Result<Option<ScramKeys>> {
                        let salt: Option<Vec<u8>> = row.get(at)?;
                        Ok(match salt {
                            None => None,
                            Some(salt) => Some(ScramKeys::new(
                                salt,
                                row.get(at + 1)?,
                                row.get::<_, Vec<u8>>(at + 2)?,
                                row.get::<_, Vec<u8>>(at + 3)?,
                            )),
                        })
                    };
                    Ok(Credentials {
                        sha1: keys(1)?,
                        sha256: keys(5)?,
                        disabled: row.get(0)?,
                    })
                },
            )
            .optional()
            .map_err(db_err)
    }

    fn user_exists(&mut self, account: &AccountJid) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT 1 FROM accounts WHERE jid = ?1",
                [account.as_str()],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(db_err)
    }

    fn store_offline(
        &mut self,
        account: &AccountJid,
        stanza: &Element,
        size: usize,
        quota: &OfflineQuota,
    ) -> Result<OfflineStored, StoreError> {
        if !self.user_exists(account)? {
            return Ok(OfflineStored::NoSuchUser);
        }
        // What the account holds, measured as the stored text; one thread
        // owns the connection, so the check and the insert cannot race.
        let (messages, bytes): (i64, i64) = self
            .conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(stanza AS BLOB))), 0) \
                 FROM offline WHERE account = ?1",
                [account.as_str()],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .map_err(db_err)?;
        let count = |n: i64| usize::try_from(n).unwrap_or(usize::MAX);
        if !quota.admits(count(messages), count(bytes), size) {
            return Ok(OfflineStored::OverQuota);
        }
        self.conn
            .execute(
                "INSERT INTO offline (account, stanza) VALUES (?1, ?2)",
                params![account.as_str(), String::from(stanza)],
            )
            .map_err(db_err)?;
        Ok(OfflineStored::Stored)
    }

    fn take_offline(&mut self, account: &AccountJid) -> Result<Vec<Element>, StoreError> {
        let texts: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT stanza FROM offline WHERE account = ?1 ORDER BY id")
                .map_err(db_err)?;
            let rows = stmt
                .query_map([account.as_str()], |row| row.get(0))
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)?
        };
        self.conn
            .execute("DELETE FROM offline WHERE account = ?1", [account.as_str()])
            .map_err(db_err)?;
        texts.iter().map(|t| parse_element(t)).collect()
    }

    fn load_roster(&mut self, account: &AccountJid) -> Result<Roster, StoreError> {
        let user = account.as_str();
        let mut roster = Roster {
            version: self
                .conn
                .query_row(
                    "SELECT version FROM roster_versions WHERE account = ?1",
                    [user],
                    |row| row.get(0),
                )
                .optional()
                .map_err(db_err)?
                .unwrap_or(0),
            ..Roster::default()
        };
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT contact, name, subscription, ask, approved FROM roster_items \
                 WHERE account = ?1",
            )
            .map_err(db_err)?;
        let rows = stmt
            .query_map([user], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Option<String>>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, bool>(3)?,
                    row.get::<_, bool>(4)?,
                ))
            })
            .map_err(db_err)?;
        for row in rows {
            let (contact, name, subscription, ask, approved) = row.map_err(db_err)?;
            let mut item = RosterItem::new(parse_jid(&contact)?);
            item.name = name;
            item.subscription = Subscription::from_name(&subscription).unwrap_or_default();
            item.ask = ask;
            item.approved = approved;
            roster.items.insert(item.jid.clone(), item);
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT contact, grp FROM roster_groups WHERE account = ?1")
            .map_err(db_err)?;
        let rows = stmt
            .query_map([user], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(db_err)?;
        for row in rows {
            let (contact, group) = row.map_err(db_err)?;
            if let Some(item) = roster.items.get_mut(&parse_jid(&contact)?) {
                item.groups.insert(group);
            }
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT contact, stanza FROM pending_in WHERE account = ?1")
            .map_err(db_err)?;
        let rows = stmt
            .query_map([user], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(db_err)?;
        for row in rows {
            let (contact, stanza) = row.map_err(db_err)?;
            roster
                .pending_in
                .insert(parse_jid(&contact)?, parse_element(&stanza)?);
        }
        Ok(roster)
    }

    fn change_roster(
        &mut self,
        account: &AccountJid,
        version: u64,
        change: &RosterChange,
    ) -> Result<(), StoreError> {
        let user = account.as_str();
        let c = &self.conn;
        c.execute(
            "INSERT OR REPLACE INTO roster_versions VALUES (?1, ?2)",
            params![user, version],
        )
        .map_err(db_err)?;
        match change {
            RosterChange::SetItem(item) => {
                let contact = item.jid.as_str();
                c.execute(
                    "INSERT OR REPLACE INTO roster_items VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        user,
                        contact,
                        item.name,
                        item.subscription.as_str(),
                        item.ask,
                        item.approved
                    ],
                )
                .map_err(db_err)?;
                c.execute(
                    "DELETE FROM roster_groups WHERE account = ?1 AND contact = ?2",
                    [user, contact],
                )
                .map_err(db_err)?;
                for group in &item.groups {
                    c.execute(
                        "INSERT INTO roster_groups VALUES (?1, ?2, ?3)",
                        [user, contact, group.as_str()],
                    )
                    .map_err(db_err)?;
                }
            }
            RosterChange::RemoveItem(jid) => {
                for table in ["roster_items", "roster_groups"] {
                    c.execute(
                        &format!("DELETE FROM {table} WHERE account = ?1 AND contact = ?2"),
                        [user, jid.as_str()],
                    )
                    .map_err(db_err)?;
                }
            }
            RosterChange::SetPending(jid, stanza) => {
                c.execute(
                    "INSERT OR REPLACE INTO pending_in VALUES (?1, ?2, ?3)",
                    params![user, jid.as_str(), String::from(stanza)],
                )
                .map_err(db_err)?;
            }
            RosterChange::RemovePending(jid) => {
                c.execute(
                    "DELETE FROM pending_in WHERE account = ?1 AND contact = ?2",
                    [user, jid.as_str()],
                )
                .map_err(db_err)?;
            }
        }
        Ok(())
    }

    fn fast_tokens(
        &mut self,
        account: &AccountJid,
        client: &str,
    ) -> Result<FastTokens, StoreError> {
        let token = |secret: Option<Vec<u8>>, expires: Option<u64>, mechanism: String| {
            Some(FastToken {
                secret: secret?,
                expires: expires?,
                mechanism,
            })
        };
        self.conn
            .query_row(
                "SELECT current_secret, current_expires, current_mechanism, \
                 previous_secret, previous_expires, previous_mechanism \
                 FROM fast_tokens WHERE account = ?1 AND client = ?2",
                [account.as_str(), client],
                |row| {
                    Ok(FastTokens {
                        current: token(row.get(0)?, row.get(1)?, row.get(2)?),
                        previous: token(row.get(3)?, row.get(4)?, row.get(5)?),
                    })
                },
            )
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(db_err)
    }

    fn store_fast_tokens(
        &mut self,
        account: &AccountJid,
        client: &str,
        tokens: &FastTokens,
        max_clients: usize,
    ) -> Result<(), StoreError> {
        // Runs inside the batch's transaction (see `run_batch`).
        let tx = &self.conn;
        tx.execute(
            "DELETE FROM fast_tokens WHERE account = ?1 AND client = ?2",
            [account.as_str(), client],
        )
        .map_err(db_err)?;
        if tokens.current.is_some() || tokens.previous.is_some() {
            let (current, previous) = (tokens.current.as_ref(), tokens.previous.as_ref());
            tx.execute(
                "INSERT INTO fast_tokens (account, client, current_secret, current_expires, \
                 current_mechanism, previous_secret, previous_expires, previous_mechanism) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    account.as_str(),
                    client,
                    current.map(|t| &t.secret),
                    current.map(|t| t.expires),
                    current.map_or(HT_SHA_256_NONE, |t| t.mechanism.as_str()),
                    previous.map(|t| &t.secret),
                    previous.map(|t| t.expires),
                    previous.map_or(HT_SHA_256_NONE, |t| t.mechanism.as_str()),
                ],
            )
            .map_err(db_err)?;
        }
        let keep = i64::try_from(max_clients).unwrap_or(i64::MAX);
        tx.execute(
            "DELETE FROM fast_tokens WHERE account = ?1 AND id NOT IN \
             (SELECT id FROM fast_tokens WHERE account = ?1 ORDER BY id DESC LIMIT ?2)",
            params![account.as_str(), keep],
        )
        .map_err(db_err)?;
        Ok(())
    }

    fn load_blocklist(&mut self, account: &AccountJid) -> Result<Vec<Jid>, StoreError> {
        self.blocklist(account)
    }

    fn change_blocklist(
        &mut self,
        account: &AccountJid,
        change: &BlocklistChange,
    ) -> Result<(), StoreError> {
        self.apply_blocklist(account, change)
    }
}

impl Db {
    /// The blocklist requests ([`Request::LoadBlocklist`],
    /// [`Request::BlocklistChanged`]).
    fn blocklist(&mut self, account: &AccountJid) -> Result<Vec<Jid>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT blocked FROM blocklist WHERE account = ?1 ORDER BY id")
            .map_err(db_err)?;
        let rows = stmt
            .query_map([account.as_str()], |row| row.get::<_, String>(0))
            .map_err(db_err)?;
        let mut jids = Vec::new();
        for text in rows {
            let text = text.map_err(db_err)?;
            let jid =
                Jid::new(&text).map_err(|e| StoreError(format!("stored JID {text:?}: {e}")))?;
            jids.push(jid);
        }
        Ok(jids)
    }

    fn apply_blocklist(
        &mut self,
        account: &AccountJid,
        change: &BlocklistChange,
    ) -> Result<(), StoreError> {
        let user = account.as_str();
        let c = &self.conn;
        let (sql, jids) = match change {
            BlocklistChange::Block(jids) => (
                "INSERT OR IGNORE INTO blocklist (account, blocked) VALUES (?1, ?2)",
                jids,
            ),
            BlocklistChange::Unblock(jids) => (
                "DELETE FROM blocklist WHERE account = ?1 AND blocked = ?2",
                jids,
            ),
            BlocklistChange::UnblockAll => {
                c.execute("DELETE FROM blocklist WHERE account = ?1", [user])
                    .map_err(db_err)?;
                return Ok(());
            }
            other => return Err(StoreError(format!("unknown blocklist change {other:?}"))),
        };
        for jid in jids {
            c.execute(sql, [user, jid.as_str()]).map_err(db_err)?;
        }
        Ok(())
    }
}

/// The core's handle on the store thread.
pub struct StoreHandle {
    tx: std_mpsc::Sender<(RequestId, Request)>,
    thread: JoinHandle<()>,
}

impl StoreHandle {
    /// Starts the store thread; answers go to `to_core`, password checks to
    /// the blocking pool of the current tokio runtime.
    pub fn spawn(mut db: Db, to_core: mpsc::Sender<ToCore>) -> Result<StoreHandle, String> {
        let runtime = tokio::runtime::Handle::current();
        let (tx, rx) = std_mpsc::channel::<(RequestId, Request)>();
        let thread = std::thread::Builder::new()
            .name("store".to_owned())
            .spawn(move || {
                // Ends when the core drops the handle: every request received
                // has been committed and answered by then.
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_TRANSACTION {
                        match rx.try_recv() {
                            Ok(next) => batch.push(next),
                            Err(_) => break,
                        }
                    }
                    for (id, answer) in db.run_batch(batch) {
                        match answer {
                            Answer::Now(response) => {
                                // An error means the core has stopped.
                                let _ = to_core.blocking_send(ToCore::Answer(id, response));
                            }
                            Answer::Check(credentials, password) => {
                                let to_core = to_core.clone();
                                runtime.spawn(async move {
                                    let check = tokio::task::spawn_blocking(move || {
                                        // `password` is wiped when dropped here.
                                        PasswordCheck::from_credentials(
                                            credentials.as_ref(),
                                            &password,
                                        )
                                    })
                                    .await;
                                    let response = match check {
                                        Ok(check) => Response::PasswordChecked(check),
                                        Err(e) => Response::Failed(StoreError(format!(
                                            "password check failed: {e}"
                                        ))),
                                    };
                                    let _ = to_core.send(ToCore::Answer(id, response)).await;
                                });
                            }
                        }
                    }
                }
            })
            .map_err(|e| format!("cannot start the store thread: {e}"))?;
        Ok(StoreHandle { tx, thread })
    }

    /// Queues `request`; its answer comes back as [`ToCore::Answer`].
    pub fn submit(&self, id: RequestId, request: Request) {
        if self.tx.send((id, request)).is_err() {
            tracing::error!("store thread gone: request dropped");
        }
    }

    /// Waits until every request submitted so far is committed and the
    /// database is closed.
    pub fn close(self) {
        drop(self.tx);
        if self.thread.join().is_err() {
            tracing::error!("the store thread panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> Element {
        format!("<message xmlns='jabber:client' type='chat'><body>{body}</body></message>")
            .parse()
            .expect("valid stanza")
    }

    #[test]
    fn offline_quota_is_enforced_by_count_and_by_bytes() {
        let mut db = Db::open(None).expect("in-memory database");
        let bob = AccountJid::new("bob", "localhost").expect("valid account");
        let nobody = AccountJid::new("nobody", "localhost").expect("valid account");
        db.set_password(&bob, "pass").expect("account");
        let small = message("hi");
        let size = String::from(&small).len();
        let quota = OfflineQuota::new(2, 3 * size);
        let store = |db: &mut Db, account: &AccountJid, el: &Element| {
            let size = String::from(el).len();
            db.store_offline(account, el, size, &quota)
                .expect("no database error")
        };
        assert_eq!(store(&mut db, &nobody, &small), OfflineStored::NoSuchUser);
        // Bytes: one message bigger than the whole quota.
        let big = message(&"x".repeat(3 * size));
        assert_eq!(store(&mut db, &bob, &big), OfflineStored::OverQuota);
        // Count: two fit, the third does not.
        assert_eq!(store(&mut db, &bob, &small), OfflineStored::Stored);
        assert_eq!(store(&mut db, &bob, &small), OfflineStored::Stored);
        assert_eq!(store(&mut db, &bob, &small), OfflineStored::OverQuota);
        assert_eq!(db.take_offline(&bob).expect("taken").len(), 2);
        assert_eq!(store(&mut db, &bob, &small), OfflineStored::Stored);
    }

    #[test]
    fn fast_tokens_keep_their_mechanism_and_old_tables_read_none() {
        let mut db = Db::open(None).expect("in-memory database");
        let bob = AccountJid::new("bob", "localhost").expect("valid account");
        let token = |mechanism: &str| FastToken {
            secret: b"secret".to_vec(),
            expires: 10,
            mechanism: mechanism.into(),
        };
        let tokens = FastTokens {
            current: Some(token("HT-SHA-256-EXPR")),
            previous: Some(token("HT-SHA-256-ENDP")),
        };
        db.store_fast_tokens(&bob, "c", &tokens, 3).expect("stored");
        assert_eq!(db.fast_tokens(&bob, "c").expect("read"), tokens);

        // A table from before the mechanism columns gets them, and its
        // tokens read as -NONE; adding them twice is a no-op.
        let conn = Connection::open_in_memory().expect("in-memory database");
        conn.execute_batch(
            "CREATE TABLE fast_tokens (id INTEGER PRIMARY KEY AUTOINCREMENT, \
             account TEXT NOT NULL, client TEXT NOT NULL, current_secret BLOB, \
             current_expires INTEGER, previous_secret BLOB, previous_expires INTEGER, \
             UNIQUE (account, client)); \
             INSERT INTO fast_tokens (account, client, current_secret, current_expires) \
             VALUES ('bob@localhost', 'c', x'736563726574', 10);",
        )
        .expect("old table");
        add_fast_mechanism_columns(&conn).expect("columns added");
        add_fast_mechanism_columns(&conn).expect("idempotent");
        let mut old = Db { conn };
        let read = old.fast_tokens(&bob, "c").expect("read");
        assert_eq!(read.current, Some(token("HT-SHA-256-NONE")));
        assert_eq!(read.previous, None);
    }
}
