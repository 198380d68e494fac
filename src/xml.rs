//! Namespaces and small helpers for reading and building stanzas on top of
//! [`minidom::Element`].

use minidom::Element;
use minidom::rxml::{Namespace, NcName, NcNameStr, xml_ncname};

use crate::error::StanzaError;

/// `jabber:client`, the default namespace of a c2s stream.
pub const NS_CLIENT: &str = "jabber:client";
/// `jabber:server`.
pub const NS_SERVER: &str = "jabber:server";
/// The stream namespace, bound to the `stream:` prefix.
pub const NS_STREAMS: &str = "http://etherx.jabber.org/streams";
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

fn nc(name: &'static NcNameStr) -> NcName {
    name.to_owned()
}

/// Attribute name for a static, well-known attribute.
fn attr_name(name: &'static str) -> NcName {
    match name {
        "to" => nc(xml_ncname!("to")),
        "from" => nc(xml_ncname!("from")),
        "id" => nc(xml_ncname!("id")),
        "type" => nc(xml_ncname!("type")),
        "xmlns" => nc(xml_ncname!("xmlns")),
        "by" => nc(xml_ncname!("by")),
        "jid" => nc(xml_ncname!("jid")),
        "name" => nc(xml_ncname!("name")),
        "subscription" => nc(xml_ncname!("subscription")),
        "ask" => nc(xml_ncname!("ask")),
        "ver" => nc(xml_ncname!("ver")),
        "stamp" => nc(xml_ncname!("stamp")),
        "category" => nc(xml_ncname!("category")),
        "var" => nc(xml_ncname!("var")),
        "node" => nc(xml_ncname!("node")),
        "mechanism" => nc(xml_ncname!("mechanism")),
        "version" => nc(xml_ncname!("version")),
        "approved" => nc(xml_ncname!("approved")),
        other => NcName::try_from(other).unwrap_or_else(|_| nc(xml_ncname!("invalid"))),
    }
}

/// Sets (or replaces) an attribute in no namespace.
pub fn set_attr(el: &mut Element, name: &'static str, value: impl Into<String>) {
    el.attrs_mut()
        .insert(Namespace::NONE, attr_name(name), value.into());
}

/// Removes an attribute in no namespace, returning its value.
pub fn remove_attr(el: &mut Element, name: &str) -> Option<String> {
    el.attrs_mut().remove(Namespace::NONE.as_str(), name)
}

/// An element in `ns` with a text child.
pub fn text_element(name: &str, ns: &str, text: &str) -> Element {
    let mut el = Element::bare(name, ns);
    el.append_text_node(text);
    el
}

/// Number of child elements.
pub fn child_count(el: &Element) -> usize {
    el.children().count()
}

/// The first child element.
pub fn first_child(el: &Element) -> Option<&Element> {
    el.children().next()
}

/// The stanza kind of a top-level `jabber:client` element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StanzaKind {
    /// `<message/>`
    Message,
    /// `<presence/>`
    Presence,
    /// `<iq/>`
    Iq,
}

impl StanzaKind {
    /// Classifies an element (any namespace is accepted; callers check it).
    pub fn of(el: &Element) -> Option<Self> {
        match el.name() {
            "message" => Some(Self::Message),
            "presence" => Some(Self::Presence),
            "iq" => Some(Self::Iq),
            _ => None,
        }
    }
}

/// A reply skeleton: the same element name in `jabber:client`, `id` kept,
/// `from` and `to` swapped, the given `type`.
fn reply_to(original: &Element, name: &str, ty: &'static str) -> Element {
    let mut reply = Element::bare(name, NS_CLIENT);
    if let Some(id) = original.attr("id") {
        set_attr(&mut reply, "id", id);
    }
    if let Some(from) = original.attr("from") {
        set_attr(&mut reply, "to", from);
    }
    if let Some(to) = original.attr("to") {
        set_attr(&mut reply, "from", to);
    }
    set_attr(&mut reply, "type", ty);
    reply
}

/// The error reply to `original` (RFC 6120 §8.3.1): same name and `id`,
/// `from` and `to` swapped, `type='error'`, no payload copied.
/// Returns `None` when `original` is itself an error (never answer an error
/// with an error).
pub fn error_reply(original: &Element, error: &StanzaError) -> Option<Element> {
    if original.attr("type") == Some("error") {
        return None;
    }
    let mut reply = reply_to(original, original.name(), "error");
    reply.append_child(error.to_element());
    Some(reply)
}

/// An iq `result` reply to `original` with an optional payload: `id` kept,
/// `from`/`to` swapped.
pub fn iq_result(original: &Element, payload: Option<Element>) -> Element {
    let mut reply = reply_to(original, "iq", "result");
    if let Some(p) = payload {
        reply.append_child(p);
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorType, StanzaErrorCondition};

    #[test]
    fn error_reply_swaps_and_drops_payload() {
        let mut m = Element::builder("message", NS_CLIENT)
            .append(text_element("body", NS_CLIENT, "hi"))
            .build();
        set_attr(&mut m, "to", "a@b");
        set_attr(&mut m, "from", "c@d/e");
        set_attr(&mut m, "id", "1");
        let err = StanzaError::new(ErrorType::Cancel, StanzaErrorCondition::ServiceUnavailable);
        let r = error_reply(&m, &err).expect("reply");
        assert_eq!(r.attr("to"), Some("c@d/e"));
        assert_eq!(r.attr("from"), Some("a@b"));
        assert_eq!(r.attr("type"), Some("error"));
        assert_eq!(r.attr("id"), Some("1"));
        assert!(!r.has_child("body", NS_CLIENT));
        set_attr(&mut m, "type", "error");
        assert!(error_reply(&m, &err).is_none());
    }
}
