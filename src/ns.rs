//! XML namespaces used on a c2s stream, defined once for the whole crate.

/// `jabber:client`, the default namespace of a c2s stream.
pub const NS_CLIENT: &str = "jabber:client";
/// `jabber:server`.
pub const NS_SERVER: &str = "jabber:server";
/// The stream namespace, bound to the `stream:` prefix.
pub const NS_STREAMS: &str = "http://etherx.jabber.org/streams";
/// RFC 7395 WebSocket framing: `<open/>` and `<close/>`.
pub const NS_FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
/// Stream error conditions.
pub const NS_STREAMS_ERR: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// Stanza error conditions.
pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// STARTTLS.
pub const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// SASL.
pub const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// Resource binding.
pub const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
/// Legacy session establishment (RFC 3921).
pub const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
/// Application error namespace used by `<stanza-too-big/>`.
pub const NS_XMPP_ERRORS: &str = "urn:xmpp:errors";
/// XEP-0478 stream limits.
pub const NS_STREAM_LIMITS: &str = "urn:xmpp:stream-limits:0";
/// The roster.
pub const NS_ROSTER: &str = "jabber:iq:roster";
/// Roster versioning stream feature.
pub const NS_ROSTER_VER: &str = "urn:xmpp:features:rosterver";
/// Subscription pre-approval stream feature.
pub const NS_PRE_APPROVAL: &str = "urn:xmpp:features:pre-approval";
/// XEP-0199 ping.
pub const NS_PING: &str = "urn:xmpp:ping";
/// XEP-0030 disco#info.
pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// XEP-0030 disco#items.
pub const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
/// XEP-0092 software version.
pub const NS_VERSION: &str = "jabber:iq:version";
/// XEP-0203 delayed delivery.
pub const NS_DELAY: &str = "urn:xmpp:delay";
/// XEP-0198 stream management.
pub const NS_SM: &str = "urn:xmpp:sm:3";
/// XEP-0280 message carbons.
pub const NS_CARBONS: &str = "urn:xmpp:carbons:2";
/// XEP-0297 stanza forwarding.
pub const NS_FORWARD: &str = "urn:xmpp:forward:0";
/// XEP-0334 message processing hints.
pub const NS_HINTS: &str = "urn:xmpp:hints";
/// XEP-0191 blocking command.
pub const NS_BLOCKING: &str = "urn:xmpp:blocking";
/// XEP-0191 application error for stanzas to a blocked JID.
pub const NS_BLOCKING_ERRORS: &str = "urn:xmpp:blocking:errors";
/// XEP-0352 client state indication.
pub const NS_CSI: &str = "urn:xmpp:csi:0";
/// SASL2 (XEP-0388).
pub const NS_SASL2: &str = "urn:xmpp:sasl:2";
/// Bind2 (XEP-0386).
pub const NS_BIND2: &str = "urn:xmpp:bind:0";
/// FAST (XEP-0484).
pub const NS_FAST: &str = "urn:xmpp:fast:0";
/// SASL channel-binding type capability (XEP-0440).
pub const NS_SASL_CB: &str = "urn:xmpp:sasl-cb:0";
