//! One client stream: the seed fields of Prosody's `doc/session.txt`.

use std::time::Instant;

use jid::{BareJid, FullJid};
use minidom::Element;

use crate::ids::SessionId;
use crate::output::Framing;
use crate::sasl::SaslExchange;
use crate::sm::SmState;
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

/// What a bound session (a *connected resource*) holds. Exists exactly
/// while the session is bound, so nothing here can be half set.
#[derive(Debug)]
pub(crate) struct Bound {
    /// The bound full JID.
    pub(crate) jid: FullJid,
    /// Its bare JID (the account).
    pub(crate) bare: BareJid,
    /// The last available broadcast presence with its priority; `None`
    /// while unavailable. One value, so priority is set exactly when
    /// presence is. Boxed: an unavailable session keeps no room for it.
    pub(crate) presence: Option<Box<StoredPresence>>,
    /// The session requested the roster.
    pub(crate) interested: bool,
    /// XEP-0280: the session enabled message carbons.
    pub(crate) carbons: bool,
    /// XEP-0191: the session fetched the blocklist (it gets pushes).
    pub(crate) blocklist_interested: bool,
    /// XEP-0352: `Some` while the client is inactive — the stanzas held
    /// back from its output. Boxed: an active session keeps no room for it.
    pub(crate) csi: Option<Box<crate::csi::CsiQueue>>,
    /// Directed presence sent to entities that do not get broadcasts.
    pub(crate) directed: Vec<String>,
    /// Stream management (XEP-0198), once enabled. Boxed: a session
    /// without it keeps no room for it.
    pub(crate) sm: Option<Box<SmState>>,
}

/// A session's last available presence, kept compact: the addressing and
/// the `<delay>` that every copy sent on carries are added when it is
/// written out ([`Bound::stored_presence_to`]), so the stored element has no
/// attribute map unless the client's own presence had attributes.
#[derive(Debug)]
pub(crate) struct StoredPresence {
    /// The presence as the client sent it, without `from` and `to`.
    pub(crate) element: Element,
    /// Its priority (Prosody §5.1).
    pub(crate) priority: i8,
    /// When it was received, in seconds since the Unix epoch (the XEP-0203
    /// delay stamp of the copies sent later).
    pub(crate) since: u64,
}

impl StoredPresence {
    /// Keeps `presence` (as broadcast, `from` stamped) without its
    /// addressing, releasing the attribute map when nothing else is in it.
    pub(crate) fn new(mut presence: Element, priority: i8, since: u64) -> Self {
        crate::xml::remove_attr(&mut presence, "from");
        crate::xml::remove_attr(&mut presence, "to");
        if presence.attrs().is_empty() {
            // A map emptied by `remove` keeps its B-tree root node.
            presence.attrs_mut().clear();
        }
        Self {
            element: presence,
            priority,
            since,
        }
    }
}

impl Bound {
    /// The stored presence as sent on later (to a new sibling, in reply to
    /// a probe, to a new contact): `from` the bound JID, `to` the given
    /// address, with a `<delay from=domain stamp=…>` child (XEP-0203).
    pub(crate) fn stored_presence_to(&self, to: &str) -> Option<Element> {
        let stored = self.presence.as_deref()?;
        let mut p = stored.element.clone();
        crate::xml::set_attr(&mut p, "from", self.jid.as_str());
        crate::xml::set_attr(&mut p, "to", to.to_owned());
        let mut delay = Element::bare("delay", crate::xml::NS_DELAY);
        crate::xml::set_attr(&mut delay, "from", self.jid.domain().as_str());
        crate::xml::set_attr(&mut delay, "stamp", crate::clock::format_unix(stored.since));
        p.append_child(delay);
        Some(p)
    }

    pub(crate) fn new(jid: FullJid) -> Self {
        Self {
            bare: jid.to_bare(),
            jid,
            presence: None,
            interested: false,
            carbons: false,
            blocklist_interested: false,
            csi: None,
            directed: Vec::new(),
            sm: None,
        }
    }
}

/// Negotiation state before authentication.
#[derive(Debug)]
pub(crate) struct Negotiating {
    /// The SASL exchange in progress, if any.
    pub(crate) sasl: Option<SaslExchange>,
    /// Failed authentication attempts so far.
    pub(crate) failures: u32,
    /// Authentication must finish by then.
    pub(crate) deadline: Option<Instant>,
    /// While a SASL2 `<authenticate/>` is in progress: what it asked for
    /// inline, applied after success.
    pub(crate) sasl2: Option<Box<crate::sasl2::Sasl2Inline>>,
    /// The TLS connection's channel-binding data (empty without TLS or
    /// when the embedder supplied none).
    pub(crate) channel_bindings: crate::sasl::ChannelBindings,
}

/// How far a session has got. Each phase holds exactly the state that
/// exists in it; [`SessionKind`] is its public summary (Prosody's `type`).
#[derive(Debug)]
pub(crate) enum Phase {
    /// Stream header, features, STARTTLS, SASL.
    /// Boxed: a bound session keeps no room for it.
    Negotiating(Box<Negotiating>),
    /// `<proceed/>` went out: waiting for the embedder's TLS handshake.
    AwaitingTls(Box<Negotiating>),
    /// SASL succeeded; no resource bound yet.
    Authenticated,
    /// A connected resource.
    Bound(Bound),
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// Reading and writing.
    Open,
    /// Our closing bytes are out; nothing more is read or sent.
    Closed,
    /// The manager is removing it (its last steps may still be queued as
    /// tasks); nothing may start on it any more.
    Removing,
}

/// The client's connection, as distinct from the session (the resource).
/// Today one `SessionId` names both; stream management (XEP-0198) adds a
/// bound session whose transport is gone but which lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// The embedder's socket is there.
    Attached,
    /// The socket closed or failed; the session only finishes the input it
    /// had already read.
    Lost,
}

/// One client session. Read-only view; the manager owns and drives it.
#[derive(Debug)]
pub struct Session {
    pub(crate) id: SessionId,
    /// Negotiating → awaiting TLS → authenticated → bound.
    pub(crate) phase: Phase,
    pub(crate) notopen: bool,
    pub(crate) secure: bool,
    pub(crate) starttls_available: bool,
    /// TCP or WebSocket (RFC 7395).
    pub(crate) framing: Framing,
    /// A WebSocket message was refused: this error closes the stream once
    /// the messages before it are processed.
    pub(crate) frame_error: Option<Box<crate::error::StreamError>>,
    pub(crate) host: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) stream_id: String,
    pub(crate) reader: StreamReader,
    pub(crate) blocked: Option<Blocked>,
    pub(crate) lifecycle: Lifecycle,
    /// Cleanup of a lost transport waits for parked input.
    pub(crate) transport: Transport,
    pub(crate) connected_at: Instant,
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
            phase: Phase::Negotiating(Box::new(Negotiating {
                sasl: None,
                failures: 0,
                deadline: auth_deadline,
                sasl2: None,
                channel_bindings: crate::sasl::ChannelBindings::default(),
            })),
            notopen: true,
            secure,
            starttls_available,
            framing: Framing::Tcp,
            frame_error: None,
            host: None,
            username: None,
            stream_id: String::new(),
            reader,
            blocked: None,
            lifecycle: Lifecycle::Open,
            transport: Transport::Attached,
            connected_at: now,
        }
    }

    /// How this session's connection delimits XML.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The bound state, while bound.
    pub(crate) fn bound(&self) -> Option<&Bound> {
        match &self.phase {
            Phase::Bound(b) => Some(b),
            _ => None,
        }
    }

    /// The bound state, mutable, while bound.
    pub(crate) fn bound_mut(&mut self) -> Option<&mut Bound> {
        match &mut self.phase {
            Phase::Bound(b) => Some(b),
            _ => None,
        }
    }

    /// The negotiation state, mutable, before authentication (also while
    /// waiting for TLS).
    pub(crate) fn negotiating_mut(&mut self) -> Option<&mut Negotiating> {
        match &mut self.phase {
            Phase::Negotiating(n) | Phase::AwaitingTls(n) => Some(&mut **n),
            _ => None,
        }
    }

    /// Starts or forgets the SASL exchange (only while negotiating).
    pub(crate) fn set_sasl(&mut self, sasl: Option<SaslExchange>) {
        if let Some(n) = self.negotiating_mut() {
            n.sasl = sasl;
        }
    }

    /// Starts or forgets the SASL2 request (only while negotiating).
    pub(crate) fn set_sasl2(&mut self, inline: Option<Box<crate::sasl2::Sasl2Inline>>) {
        if let Some(n) = self.negotiating_mut() {
            n.sasl2 = inline;
        }
    }

    /// A SASL2 `<authenticate/>` is in progress.
    pub(crate) fn sasl2_active(&self) -> bool {
        matches!(&self.phase, Phase::Negotiating(n) | Phase::AwaitingTls(n) if n.sasl2.is_some())
    }

    /// The SASL exchange in progress.
    pub(crate) fn sasl_mut(&mut self) -> Option<&mut SaslExchange> {
        self.negotiating_mut().and_then(|n| n.sasl.as_mut())
    }

    /// Waiting for the embedder's TLS handshake.
    pub(crate) fn awaiting_tls(&self) -> bool {
        matches!(self.phase, Phase::AwaitingTls(_))
    }

    /// The authentication deadline, while negotiating.
    pub(crate) fn auth_deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Negotiating(n) | Phase::AwaitingTls(n) => n.deadline,
            _ => None,
        }
    }

    /// Moves between negotiating and awaiting TLS (other phases stay).
    pub(crate) fn set_awaiting_tls(&mut self, awaiting: bool) {
        let phase = std::mem::replace(&mut self.phase, Phase::Authenticated);
        self.phase = match (phase, awaiting) {
            (Phase::Negotiating(n), true) => Phase::AwaitingTls(n),
            (Phase::AwaitingTls(n), false) => Phase::Negotiating(n),
            (other, _) => other,
        };
    }

    /// Our side of the stream is closed (or the session is being removed).
    pub(crate) fn closed(&self) -> bool {
        self.lifecycle != Lifecycle::Open
    }

    /// Marks the stream closed (a removal in progress stays a removal).
    pub(crate) fn mark_closed(&mut self) {
        if self.lifecycle == Lifecycle::Open {
            self.lifecycle = Lifecycle::Closed;
        }
    }

    /// The manager is removing this session.
    pub(crate) fn removing(&self) -> bool {
        self.lifecycle == Lifecycle::Removing
    }

    /// The client's socket is gone.
    pub(crate) fn transport_lost(&self) -> bool {
        self.transport == Transport::Lost
    }

    /// The stream management state, once enabled.
    pub(crate) fn sm(&self) -> Option<&SmState> {
        self.bound()?.sm.as_deref()
    }

    /// The stream management state, mutable, once enabled.
    pub(crate) fn sm_mut(&mut self) -> Option<&mut SmState> {
        self.bound_mut()?.sm.as_deref_mut()
    }

    /// Lost its transport and waits for a resume (XEP-0198).
    pub(crate) fn hibernating(&self) -> bool {
        self.hibernating_until().is_some()
    }

    /// Stanzas for this session still reach its client: its transport is
    /// there, or it hibernates and queues them for a resume.
    pub(crate) fn receives(&self) -> bool {
        !self.transport_lost() || self.hibernating()
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
        !self.notopen && !self.closed()
    }
    /// How far negotiation has got (Prosody's `type`).
    pub fn kind(&self) -> SessionKind {
        match self.phase {
            Phase::Negotiating(_) | Phase::AwaitingTls(_) => SessionKind::Unauthenticated,
            Phase::Authenticated => SessionKind::Authenticated,
            Phase::Bound(_) => SessionKind::Bound,
        }
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
        self.bound().map(|b| b.jid.resource().as_str())
    }
    /// The bound full JID.
    pub fn full_jid(&self) -> Option<&FullJid> {
        self.bound().map(|b| &b.jid)
    }
    /// The account's bare JID, once bound.
    pub fn bare_jid(&self) -> Option<&BareJid> {
        self.bound().map(|b| &b.bare)
    }
    /// The priority of the current presence (`None` while unavailable).
    pub fn priority(&self) -> Option<i8> {
        self.bound()?.presence.as_ref().map(|p| p.priority)
    }
    /// The last available broadcast presence (`None` while unavailable),
    /// as the client sent it: the server adds `from`, `to` and a `<delay>`
    /// to the copies it sends on later.
    pub fn presence(&self) -> Option<&Element> {
        self.bound()?.presence.as_ref().map(|p| &p.element)
    }
    /// Whether the session has requested the roster.
    pub fn interested(&self) -> bool {
        self.bound().is_some_and(|b| b.interested)
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
        self.bound().is_some()
    }
    /// An *available resource*: connected and has sent initial presence.
    pub fn is_available(&self) -> bool {
        self.presence().is_some()
    }
    /// An *interested resource*: connected and has requested the roster.
    pub fn is_interested(&self) -> bool {
        self.interested()
    }
    /// Stream management (XEP-0198) is enabled on this session.
    pub fn sm_enabled(&self) -> bool {
        self.sm().is_some()
    }
    /// Stream management is enabled with resumption: the session hibernates
    /// instead of ending when its transport goes away.
    pub fn resumable(&self) -> bool {
        self.sm()
            .is_some_and(|sm| sm.token.is_some() && !sm.overflowed)
    }
    /// While the session hibernates (its transport is gone, it waits for a
    /// resume): when it expires.
    pub fn hibernating_until(&self) -> Option<Instant> {
        self.sm()?.hibernating_until
    }
}
