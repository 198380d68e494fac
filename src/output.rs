//! What the manager asks of its caller ([`Output`], [`Event`]) and what the
//! caller tells it about a connection ([`ConnectionInfo`], [`TlsInfo`]).
//! A leaf module: negotiation and the manager both use it.

use std::time::Instant;

use bytes::Bytes;
use jid::FullJid;
use minidom::Element;

use crate::ids::{RequestId, SessionId};
use crate::sasl::ChannelBindings;
use crate::storage::Request;

/// What the caller must do. Drain with [`SessionManager::poll_output`](crate::SessionManager::poll_output) after
/// every `handle_*` call.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Output {
    /// Write these bytes to the session's socket. A stanza delivered to many
    /// sessions is serialized once: the same `Bytes` is shared. On a
    /// [`Framing::WebSocket`] session the bytes are exactly one WebSocket
    /// text message's payload: send each `Transmit` as its own message,
    /// never merged or split.
    Transmit {
        /// The session to write to.
        session: SessionId,
        /// The bytes.
        data: Bytes,
    },
    /// `<proceed/>` went out: start TLS on the socket, then call
    /// [`SessionManager::handle_tls_established`](crate::SessionManager::handle_tls_established).
    StartTls {
        /// The session whose transport must start TLS.
        session: SessionId,
    },
    /// The closing bytes went out: close the socket.
    Close {
        /// The session to close.
        session: SessionId,
    },
    /// A stanza for a domain this server does not serve (s2s, a component,
    /// another cluster node).
    Route {
        /// The stanza, with `from` and `to` set.
        stanza: Element,
    },
    /// Storage or credentials the caller must answer with
    /// [`SessionManager::complete`](crate::SessionManager::complete).
    Request {
        /// Echo this in `complete`.
        id: RequestId,
        /// What is needed.
        request: Request,
    },
    /// Something happened that an embedder may want to know or act on.
    Event(Event),
}

/// Notifications for the embedder.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// SASL succeeded.
    Authenticated {
        /// The session.
        session: SessionId,
        /// The account's user name.
        username: String,
    },
    /// A resource was bound: the session is a connected resource.
    Bound {
        /// The session.
        session: SessionId,
        /// Its full JID.
        jid: FullJid,
    },
    /// A bound session ended.
    Unbound {
        /// The session.
        session: SessionId,
        /// The full JID it had.
        jid: FullJid,
    },
    /// A session was removed (closed or disconnected); its handle is dead.
    Closed {
        /// The session.
        session: SessionId,
    },
    /// A resumable session lost its transport and hibernates (XEP-0198):
    /// it stays a connected (and available) resource and queues stanzas
    /// until it is resumed or `until` passes. A push service (XEP-0357)
    /// starts here.
    Hibernating {
        /// The session (its handle stays valid while it hibernates).
        session: SessionId,
        /// Its full JID.
        jid: FullJid,
        /// When it expires unless resumed.
        until: Instant,
    },
    /// A stanza was queued for a hibernating session (a push trigger).
    StanzaQueued {
        /// The hibernating session.
        session: SessionId,
        /// Its full JID.
        jid: FullJid,
        /// The stanza as it will be retransmitted on resume.
        data: Bytes,
    },
    /// A session was resumed on a new stream: the resource now lives on
    /// `session` (the handle of the connection that sent `<resume/>`);
    /// `previous`, its old handle, is dead ([`Event::Closed`] follows for it).
    Resumed {
        /// The connection the resource continues on.
        session: SessionId,
        /// The handle the resource had before.
        previous: SessionId,
        /// The resource's full JID.
        jid: FullJid,
    },
    /// A session stopped hibernating: it was resumed, or it expired and
    /// ended (then [`Event::Unbound`] and [`Event::Closed`] follow).
    HibernationEnded {
        /// The session's handle while it hibernated.
        session: SessionId,
        /// Its full JID.
        jid: FullJid,
        /// Why.
        reason: HibernationEnd,
    },
    /// A stanza claimed by the embedder (see
    /// [`SessionManager::register_iq_namespace`](crate::SessionManager::register_iq_namespace)). Every iq get/set must be
    /// answered, e.g. with [`SessionManager::handle_routed`](crate::SessionManager::handle_routed).
    Stanza {
        /// The sending session, if it came from a local client.
        session: Option<SessionId>,
        /// The stanza, `from` stamped.
        stanza: Element,
    },
}

/// Why a hibernating session stopped hibernating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HibernationEnd {
    /// The client resumed it.
    Resumed,
    /// [`Config::resume_timeout`](crate::Config::resume_timeout) passed.
    Expired,
    /// More stanzas were queued than
    /// [`Config::sm_max_queue`](crate::Config::sm_max_queue) allows.
    QueueFull,
    /// The embedder ended it ([`SessionManager::close`](crate::SessionManager::close) or
    /// [`SessionManager::end_hibernation`](crate::SessionManager::end_hibernation)).
    Ended,
}

/// How a connection delimits the XML it carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Framing {
    /// One XML document over a byte stream (RFC 6120 over TCP):
    /// `<stream:stream>` … `</stream:stream>`, read in any chunking with
    /// [`SessionManager::handle_input`](crate::SessionManager::handle_input).
    #[default]
    Tcp,
    /// XMPP over WebSocket (RFC 7395). The client opens with
    /// `<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>` and ends with
    /// `<close/>`; every WebSocket message holds exactly one complete
    /// element carrying its own namespace declarations. The embedder does
    /// the WebSocket handshake (subprotocol `xmpp`) and passes each text
    /// message's payload to
    /// [`SessionManager::handle_frame`](crate::SessionManager::handle_frame);
    /// every [`Output::Transmit`] for the session is exactly one message to
    /// send, and [`Output::Close`] follows the `<close/>` message.
    WebSocket,
}

/// Facts about a new connection. Build it with [`ConnectionInfo::plain`],
/// [`ConnectionInfo::starttls`] or [`ConnectionInfo::direct_tls`], then
/// [`ConnectionInfo::with_framing`] for a WebSocket connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    pub(crate) secure: bool,
    pub(crate) starttls_available: bool,
    pub(crate) framing: Framing,
}

impl ConnectionInfo {
    /// The transport is already encrypted (direct TLS).
    pub fn is_secure(&self) -> bool {
        self.secure
    }
    /// The caller can run STARTTLS on this connection.
    pub fn starttls_available(&self) -> bool {
        self.starttls_available
    }
    /// How the connection delimits XML ([`Framing::Tcp`] unless set).
    pub fn framing(&self) -> Framing {
        self.framing
    }
    /// Plain TCP without STARTTLS.
    pub fn plain() -> Self {
        Self {
            secure: false,
            starttls_available: false,
            framing: Framing::Tcp,
        }
    }
    /// Plain TCP that can be upgraded with STARTTLS.
    pub fn starttls() -> Self {
        Self {
            starttls_available: true,
            ..Self::plain()
        }
    }
    /// Direct TLS.
    pub fn direct_tls() -> Self {
        Self {
            secure: true,
            ..Self::plain()
        }
    }
    /// The same connection with this framing. [`Framing::WebSocket`] never
    /// offers STARTTLS (RFC 7395: TLS belongs to the WebSocket layer,
    /// `wss://`), so it turns [`ConnectionInfo::starttls_available`] off;
    /// use [`ConnectionInfo::direct_tls`] for `wss://` and
    /// [`ConnectionInfo::plain`] for `ws://`.
    pub fn with_framing(mut self, framing: Framing) -> Self {
        self.framing = framing;
        if framing == Framing::WebSocket {
            self.starttls_available = false;
        }
        self
    }
}

/// Facts about a finished TLS handshake, passed to
/// [`SessionManager::handle_tls_established`](crate::SessionManager::handle_tls_established).
///
/// It carries the connection's channel-binding data (RFC 5056). With it,
/// `SCRAM-SHA-256-PLUS` and `SCRAM-SHA-1-PLUS` are offered (legacy SASL and
/// SASL2) and advertised with XEP-0440 `<sasl-channel-binding/>`; without
/// it ([`TlsInfo::default`]) they are not. What to supply:
///
/// - [`TlsInfo::with_tls_exporter`]: RFC 9266 `tls-exporter`, 32 bytes of
///   keying material exported from the server side of the connection after
///   the handshake, label `EXPORTER-Channel-Binding`, empty context (with
///   rustls: `ServerConnection::export_keying_material(&mut [0u8; 32],
///   b"EXPORTER-Channel-Binding", Some(b""))`). Supply it only on TLS 1.3
///   (on TLS 1.2 without extended master secret it does not bind).
/// - [`TlsInfo::with_tls_server_end_point`]: RFC 5929 `tls-server-end-point`,
///   the hash of the server's leaf certificate DER with the certificate's
///   signature hash; SHA-256 for certificates signed with SHA-256, SHA-1 or
///   MD5 (and ECDSA/Ed25519 P-256 certificates signed with SHA-256).
///
/// On a direct-TLS connection ([`ConnectionInfo::direct_tls`]) call
/// `handle_tls_established` right after
/// [`SessionManager::connect`](crate::SessionManager::connect), before any
/// input, to supply it; on STARTTLS pass it when the handshake finishes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsInfo {
    channel_bindings: ChannelBindings,
}

impl TlsInfo {
    /// Sets the RFC 9266 `tls-exporter` data (32 bytes).
    #[must_use]
    pub fn with_tls_exporter(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.channel_bindings = self.channel_bindings.with_tls_exporter(data);
        self
    }

    /// Sets the RFC 5929 `tls-server-end-point` data (the certificate hash).
    #[must_use]
    pub fn with_tls_server_end_point(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.channel_bindings = self.channel_bindings.with_tls_server_end_point(data);
        self
    }

    /// The channel-binding data supplied so far.
    pub fn channel_bindings(&self) -> &ChannelBindings {
        &self.channel_bindings
    }

    pub(crate) fn into_channel_bindings(self) -> ChannelBindings {
        self.channel_bindings
    }
}
