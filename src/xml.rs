//! Namespaces and small helpers for reading and building stanzas on top of
//! [`minidom::Element`].

use minidom::Element;
use minidom::rxml::{Namespace, NcName, NcNameStr, xml_ncname};

pub(crate) use crate::ns::{
    NS_BIND, NS_BIND2, NS_CLIENT, NS_DELAY, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_FAST, NS_PING,
    NS_PRE_APPROVAL, NS_ROSTER, NS_ROSTER_VER, NS_SASL, NS_SASL2, NS_SERVER, NS_SESSION, NS_SM,
    NS_STREAM_LIMITS, NS_STREAMS, NS_TLS, NS_VERSION,
};
pub(crate) use crate::ns::{
    NS_BLOCKING, NS_BLOCKING_ERRORS, NS_CARBONS, NS_CSI, NS_FORWARD, NS_HINTS, NS_SASL_CB,
};

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

/// The value of `el`'s attribute `name` in no namespace, found by one walk
/// over its (few) attributes: a map lookup compares namespace and name
/// strings at every level, which costs more.
#[inline]
pub(crate) fn attr<'a>(el: &'a Element, name: &str) -> Option<&'a str> {
    el.attrs()
        .iter()
        .find(|((ns, n), _)| ns.as_str().is_empty() && n.as_str() == name)
        .map(|(_, value)| value.as_str())
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

    /// Classifies serialised stanza bytes by their start tag (as the
    /// writer produces them: `<message`, `<presence` or `<iq` followed by a
    /// space, `>` or `/`).
    pub(crate) fn of_bytes(data: &[u8]) -> Option<Self> {
        let (kind, rest) = if let Some(rest) = data.strip_prefix(b"<message") {
            (Self::Message, rest)
        } else if let Some(rest) = data.strip_prefix(b"<presence") {
            (Self::Presence, rest)
        } else if let Some(rest) = data.strip_prefix(b"<iq") {
            (Self::Iq, rest)
        } else {
            return None;
        };
        match rest.first() {
            Some(b' ' | b'>' | b'/' | b'\t' | b'\n' | b'\r') => Some(kind),
            _ => None,
        }
    }
}

/// A reply skeleton: the same element name in `jabber:client`, `id` kept,
/// `from` and `to` swapped, the given `type`.
pub(crate) fn reply_skeleton(original: &Element, name: &str, ty: &'static str) -> Element {
    let mut reply = Element::bare(name, NS_CLIENT);
    let (mut id, mut from, mut to) = (None, None, None);
    for ((ns, attr), value) in original.attrs().iter() {
        if ns.as_str().is_empty() {
            match attr.as_str() {
                "id" => id = Some(value.as_str()),
                "from" => from = Some(value.as_str()),
                "to" => to = Some(value.as_str()),
                _ => {}
            }
        }
    }
    if let Some(id) = id {
        set_attr(&mut reply, "id", id);
    }
    if let Some(from) = from {
        set_attr(&mut reply, "to", from);
    }
    if let Some(to) = to {
        set_attr(&mut reply, "from", to);
    }
    set_attr(&mut reply, "type", ty);
    reply
}

/// An iq `result` reply to `original` with an optional payload: `id` kept,
/// `from`/`to` swapped.
pub fn iq_result(original: &Element, payload: Option<Element>) -> Element {
    let mut reply = reply_skeleton(original, "iq", "result");
    if let Some(p) = payload {
        reply.append_child(p);
    }
    reply
}
