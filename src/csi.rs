//! XEP-0352 client state indication: how the output of an inactive client
//! is held back.
//!
//! While a client has said `<inactive/>`, every stanza for it is classified
//! before it reaches its output ([`CsiClass`]). The default classification
//! ([`default_classify`], Prosody's `mod_csi_simple` choices):
//!
//! * **flush** (important): any iq; a message with a `<body/>` or an
//!   encrypted payload (OMEMO, OpenPGP, legacy PGP), also inside a carbon
//!   copy; a message or presence of type `error`; subscription presence
//!   (`subscribe`, `subscribed`, `unsubscribe`, `unsubscribed`);
//! * **replace**: other presence (available, unavailable, probes): only the
//!   latest from each `from` is kept, in the place of the newest;
//! * **hold**: every other message (chat states alone, receipts, markers).
//!
//! An embedder replaces the function with
//! [`ConfigBuilder::csi_classifier`](crate::ConfigBuilder::csi_classifier).

use std::collections::VecDeque;

use bytes::Bytes;
use minidom::Element;

use crate::ns::{NS_CARBONS, NS_CLIENT, NS_FORWARD};

/// What an inactive client's output does with one stanza.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsiClass {
    /// Important: send everything held, then this, now.
    Flush,
    /// Hold it until the next flush.
    Hold,
    /// Hold it, dropping any held stanza with the same `from` of the same
    /// kind (presence is coalesced to the latest per full JID).
    Replace,
}

/// Classifies a stanza for an inactive client (see the module docs).
pub type CsiClassifier = fn(&Element) -> CsiClass;

/// Payloads that make a message important even without a body.
const ENCRYPTED: &[(&str, &str)] = &[
    ("encrypted", "eu.siacs.conversations.axolotl"),
    ("encrypted", "urn:xmpp:omemo:2"),
    ("openpgp", "urn:xmpp:openpgp:0"),
    ("x", "jabber:x:encrypted"),
    ("encryption", "urn:xmpp:eme:0"),
];

/// The default classification (see the module docs).
pub fn default_classify(stanza: &Element) -> CsiClass {
    let ty = stanza.attr("type");
    if ty == Some("error") {
        return CsiClass::Flush;
    }
    match stanza.name() {
        "iq" => CsiClass::Flush,
        "presence" => match ty {
            Some("subscribe" | "subscribed" | "unsubscribe" | "unsubscribed") => CsiClass::Flush,
            _ => CsiClass::Replace,
        },
        "message" => {
            let inner = stanza
                .children()
                .filter(|c| c.has_ns(NS_CARBONS))
                .filter_map(|c| c.get_child("forwarded", NS_FORWARD))
                .find_map(|f| f.get_child("message", NS_CLIENT));
            if important_message(stanza) || inner.is_some_and(important_message) {
                CsiClass::Flush
            } else {
                CsiClass::Hold
            }
        }
        _ => CsiClass::Flush,
    }
}

fn important_message(message: &Element) -> bool {
    message
        .children()
        .any(|c| c.is("body", NS_CLIENT) || ENCRYPTED.iter().any(|(name, ns)| c.is(*name, *ns)))
}

/// One held stanza: its bytes as they will be written, and the key that a
/// newer [`CsiClass::Replace`] stanza replaces it by.
#[derive(Debug)]
struct Held {
    data: Bytes,
    replace_key: Option<Box<str>>,
}

/// The stanzas held back from an inactive session, in order.
#[derive(Debug, Default)]
pub(crate) struct CsiQueue {
    held: VecDeque<Held>,
}

impl CsiQueue {
    /// Holds `data`; with a key, any held entry with the same key is
    /// dropped first (its place goes to the newest).
    pub(crate) fn hold(&mut self, data: Bytes, replace_key: Option<Box<str>>) {
        if let Some(key) = &replace_key {
            self.held
                .retain(|h| h.replace_key.as_deref() != Some(key.as_ref()));
        }
        self.held.push_back(Held { data, replace_key });
    }

    /// How many stanzas are held.
    pub(crate) fn len(&self) -> usize {
        self.held.len()
    }

    /// Takes everything held, oldest first.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Bytes> + '_ {
        self.held.drain(..).map(|h| h.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_stanza(xml: &str) -> Element {
        let wrapped: Element = format!("<w xmlns='jabber:client'>{xml}</w>")
            .parse()
            .expect("valid XML");
        wrapped.children().next().cloned().expect("one stanza")
    }

    #[test]
    fn default_classification() {
        for (xml, class) in [
            ("<iq type='get' id='1'/>", CsiClass::Flush),
            ("<iq type='result' id='1'/>", CsiClass::Flush),
            ("<message><body>hi</body></message>", CsiClass::Flush),
            (
                "<message><encrypted xmlns='urn:xmpp:omemo:2'/></message>",
                CsiClass::Flush,
            ),
            ("<message type='error'/>", CsiClass::Flush),
            (
                "<message><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
                CsiClass::Hold,
            ),
            (
                "<message><received xmlns='urn:xmpp:receipts' id='x'/></message>",
                CsiClass::Hold,
            ),
            (
                "<message><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>\
                 <message xmlns='jabber:client'><body>x</body></message></forwarded></sent></message>",
                CsiClass::Flush,
            ),
            (
                "<message><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>\
                 <message xmlns='jabber:client'><gone xmlns='http://jabber.org/protocol/chatstates'/></message></forwarded></sent></message>",
                CsiClass::Hold,
            ),
            ("<presence/>", CsiClass::Replace),
            ("<presence type='unavailable'/>", CsiClass::Replace),
            ("<presence type='subscribe'/>", CsiClass::Flush),
            ("<presence type='unsubscribed'/>", CsiClass::Flush),
            ("<presence type='error'/>", CsiClass::Flush),
        ] {
            assert_eq!(default_classify(&parse_stanza(xml)), class, "{xml}");
        }
    }

    #[test]
    fn replace_keeps_only_the_latest_per_key() {
        let mut q = CsiQueue::default();
        q.hold(Bytes::from_static(b"a1"), Some("a".into()));
        q.hold(Bytes::from_static(b"m"), None);
        q.hold(Bytes::from_static(b"b1"), Some("b".into()));
        q.hold(Bytes::from_static(b"a2"), Some("a".into()));
        assert_eq!(q.len(), 3);
        let got: Vec<Bytes> = q.drain().collect();
        assert_eq!(got, vec!["m", "b1", "a2"]);
        assert_eq!(q.len(), 0);
    }
}
