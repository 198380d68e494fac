//! One client stream: the seed fields of Prosody's `doc/session.txt`.

use std::time::Instant;

use jid::{BareJid, FullJid};
use minidom::Element;

use crate::ids::SessionId;
use crate::sasl::SaslExchange;
use crate::stream::StreamReader;

/// How far a session has got (Prosody's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionKind {
    /// `c2s_unauthed`: connected, not yet authenticated.
    Unauthenticated,
    /// `c2s_unbound`: authenticated, no resource bound yet.
    Authenticated,
    /// `c2s`: a bound resource (a *connected resource*).
    Bound,
}

/// What the session is waiting for before it reads on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blocked {
    /// SASL credentials from storage.
    Credentials,
    /// Work parked in the manager (a storage answer, e.g. a roster load).
    Manager,
}

/// One client session. Read-only view; the manager owns and drives it.
#[derive(Debug)]
pub struct Session {
    pub(crate) id: SessionId,
    pub(crate) kind: SessionKind,
    pub(crate) notopen: bool,
    pub(crate) secure: bool,
    pub(crate) starttls_available: bool,
    pub(crate) awaiting_tls: bool,
    pub(crate) host: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) resource: Option<String>,
    pub(crate) full_jid: Option<FullJid>,
    pub(crate) bare_jid: Option<BareJid>,
    pub(crate) priority: Option<i8>,
    pub(crate) presence: Option<Element>,
    pub(crate) interested: bool,
    pub(crate) stream_id: String,
    pub(crate) reader: StreamReader,
    pub(crate) sasl: Option<SaslExchange>,
    pub(crate) auth_failures: u32,
    pub(crate) blocked: Option<Blocked>,
    pub(crate) closed: bool,
    /// The manager is removing the session (its last steps may be queued
    /// behind other work); nothing may start on it any more.
    pub(crate) removing: bool,
    /// The transport is gone; cleanup waits for parked input.
    pub(crate) disconnected: bool,
    pub(crate) auth_deadline: Option<Instant>,
    pub(crate) connected_at: Instant,
    pub(crate) directed: Vec<String>,
}

impl Session {
    pub(crate) fn new(
        id: SessionId,
        secure: bool,
        starttls_available: bool,
        reader: StreamReader,
        now: Instant,
        auth_deadline: Option<Instant>,
    ) -> Self {
        Self {
            id,
            kind: SessionKind::Unauthenticated,
            notopen: true,
            secure,
            starttls_available,
            awaiting_tls: false,
            host: None,
            username: None,
            resource: None,
            full_jid: None,
            bare_jid: None,
            priority: None,
            presence: None,
            interested: false,
            stream_id: String::new(),
            reader,
            sasl: None,
            auth_failures: 0,
            blocked: None,
            closed: false,
            removing: false,
            disconnected: false,
            auth_deadline,
            connected_at: now,
            directed: Vec::new(),
        }
    }

    /// The handle of this session (Prosody's `conn`).
    pub fn id(&self) -> SessionId {
        self.id
    }
    /// `true` until the client's stream header has been accepted, and again
    /// after each stream restart (Prosody's `notopen`).
    pub fn notopen(&self) -> bool {
        self.notopen
    }
    /// Whether the stream is open (the opposite of [`Session::notopen`]).
    pub fn is_open(&self) -> bool {
        !self.notopen && !self.closed
    }
    /// How far negotiation has got (Prosody's `type`).
    pub fn kind(&self) -> SessionKind {
        self.kind
    }
    /// Whether the transport is encrypted (direct TLS or after STARTTLS).
    pub fn is_secure(&self) -> bool {
        self.secure
    }
    /// The authenticated user name (node part), once authenticated.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }
    /// The served domain named in the stream header.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }
    /// The bound resource.
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }
    /// The bound full JID.
    pub fn full_jid(&self) -> Option<&FullJid> {
        self.full_jid.as_ref()
    }
    /// The account's bare JID, once bound.
    pub fn bare_jid(&self) -> Option<&BareJid> {
        self.bare_jid.as_ref()
    }
    /// The priority of the current presence (`None` while unavailable).
    pub fn priority(&self) -> Option<i8> {
        self.priority
    }
    /// The last available broadcast presence (`None` while unavailable).
    pub fn presence(&self) -> Option<&Element> {
        self.presence.as_ref()
    }
    /// Whether the session has requested the roster.
    pub fn interested(&self) -> bool {
        self.interested
    }
    /// The id of the current stream.
    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }
    /// When the connection was accepted.
    pub fn connected_at(&self) -> Instant {
        self.connected_at
    }
    /// A *connected resource*: a resource is bound.
    pub fn is_connected(&self) -> bool {
        self.full_jid.is_some()
    }
    /// An *available resource*: connected and has sent initial presence.
    pub fn is_available(&self) -> bool {
        self.full_jid.is_some() && self.presence.is_some()
    }
    /// An *interested resource*: connected and has requested the roster.
    pub fn is_interested(&self) -> bool {
        self.full_jid.is_some() && self.interested
    }
}
