//! # xmpp-session
//!
//! A sans-IO XMPP client-to-server session manager (RFC 6120 / RFC 6121).
//!
//! [`SessionManager`] turns the bytes clients send into the bytes each client
//! must receive. It negotiates streams (header checks, STARTTLS as a signal,
//! SASL PLAIN / SCRAM-SHA-1 / SCRAM-SHA-256, resource binding), keeps the
//! host → user → resource index, routes stanzas and runs presence and rosters.
//! It performs no I/O, reads no clock and never panics on input: the caller
//! feeds bytes in with `handle_*` methods and drains [`Output`]s with
//! [`SessionManager::poll_output`]. Storage and credentials are
//! [`Output::Request`]s answered with [`SessionManager::complete`], so any
//! database, synchronous or not, can sit behind it.
//!
//! The session fields follow Prosody's `doc/session.txt`: a *connected*
//! resource is bound, an *available* resource has sent initial presence and an
//! *interested* resource has requested the roster.
//!
//! ## The API at a glance
//!
//! | What | Items |
//! |---|---|
//! | The core | [`SessionManager`], its [`Output`]s and [`Event`]s, [`ConnectionInfo`] (with its [`Framing`]: TCP or WebSocket), [`TlsInfo`], [`SessionId`], the read-only [`Session`] |
//! | Configuration | [`Config::builder`] → [`ConfigBuilder::build`] → [`Config`] or [`ConfigError`]; [`ConflictPolicy`] |
//! | Storage | [`Request`] / [`Response`] with [`RequestId`]; the [`Store`] trait and [`MemoryStore`]; every account named by one [`AccountJid`] |
//! | Randomness | [`random::RandomSource`], [`random::OsRandom`] (the default); failures are [`random::RandomError`] and fail the login |
//! | Errors sent to clients | [`StreamError`], [`StanzaError`] |
//! | Building blocks, usable alone | [`stream`] (incremental XML stream reader and writer, [`stream::XmlLimits`]), [`sasl`] (server-side SASL exchanges, [`sasl::Credentials`], channel binding with [`sasl::ChannelBindings`]), [`roster`] (roster items and changes) |
//! | Tests (feature `testkit`) | `testkit::TestServer`, `random::SeededRandom` |
//!
//! ```
//! use std::time::Instant;
//! use xmpp_session::{AccountJid, Config, ConnectionInfo, MemoryStore, Output, SessionManager};
//!
//! let mut store = MemoryStore::new();
//! store.add_user(&AccountJid::new("juliet", "localhost")?, "secret")?;
//! let config = Config::builder("localhost").require_tls(false).allow_plain_without_tls(true).build()?;
//! let mut manager = SessionManager::new(config);
//! let now = Instant::now();
//!
//! let conn = manager.connect(ConnectionInfo::plain(), now);
//! manager.handle_input(conn, b"<?xml version='1.0'?><stream:stream to='localhost' \
//!     version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>", now);
//! // Drain what the manager wants done; the store answers credential requests at once.
//! let mut written = Vec::new();
//! while let Some(output) = manager.poll_output_with(&mut store, now) {
//!     if let Output::Transmit { data, .. } = output {
//!         written.extend_from_slice(&data); // a real server writes this to the socket
//!     }
//! }
//! let text = String::from_utf8(written)?;
//! assert!(text.contains("<mechanism>SCRAM-SHA-256</mechanism>"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod account;
mod clock;
pub mod config;
pub mod csi;
pub mod error;
mod ids;
mod manager;
mod negotiation;
mod ns;
mod output;
pub mod random;
pub mod roster;
pub mod sasl;
mod sasl2;
mod session;
mod sm;
mod stanza;
pub mod storage;
pub mod stream;
mod xml;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use account::AccountJid;
pub use config::{Config, ConfigBuilder, ConfigError, ConflictPolicy};
pub use error::{ErrorType, StanzaError, StanzaErrorCondition, StreamError, StreamErrorCondition};
pub use ids::{RequestId, SessionId};
pub use manager::SessionManager;
pub use output::{ConnectionInfo, Event, Framing, HibernationEnd, Output, TlsInfo};
pub use session::{Session, SessionKind};
pub use storage::{
    BlocklistChange, FastToken, FastTokens, MemoryStore, OfflineQuota, OfflineStored, Request,
    Response, Store, StoreError,
};

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use jid;
pub use minidom;
pub use minidom::Element;

/// Differential tests of byte forwarding against the element path.
#[cfg(all(test, feature = "testkit"))]
mod forwarding_tests;

/// Stream management tests that look inside the manager.
#[cfg(all(test, feature = "testkit"))]
mod sm_tests;
