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

use std::collections::{HashMap, VecDeque};

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
/// newer [`CsiClass::Replace`] stanza replaces it by. `None` once replaced.
#[derive(Debug)]
struct Held {
    data: Option<Bytes>,
    replace_key: Option<Box<str>>,
}

/// The stanzas held back from an inactive session, in order.
///
/// A replaced entry becomes a gap (found through `index` in O(1)); the
/// gaps are squeezed out once they outnumber the live entries, so the
/// queue's length stays within twice [`CsiQueue::len`] plus a constant.
#[derive(Debug, Default)]
pub(crate) struct CsiQueue {
    held: VecDeque<Held>,
    /// Position in `held` (counted from `first`) of the entry per key.
    index: HashMap<Box<str>, u64>,
    /// The position number of `held[0]`.
    first: u64,
    /// Entries that are not gaps.
    live: usize,
}

impl CsiQueue {
    /// Holds `data`; with a key, any held entry with the same key is
    /// dropped first (its place goes to the newest).
    pub(crate) fn hold(&mut self, data: Bytes, replace_key: Option<Box<str>>) {
        let at = self.first.saturating_add(self.held.len() as u64);
        if let Some(key) = &replace_key
            && let Some(old) = self.index.insert(key.clone(), at)
            && let Some(entry) = usize::try_from(old.saturating_sub(self.first))
                .ok()
                .and_then(|i| self.held.get_mut(i))
            && entry.data.take().is_some()
        {
            self.live = self.live.saturating_sub(1);
        }
        self.held.push_back(Held {
            data: Some(data),
            replace_key,
        });
        self.live = self.live.saturating_add(1);
        if self.held.len() > self.live.saturating_mul(2).saturating_add(16) {
            self.compact();
        }
    }

    /// Squeezes the gaps out and renumbers the index.
    fn compact(&mut self) {
        self.held.retain(|h| h.data.is_some());
        self.first = 0;
        self.index.clear();
        for (i, h) in self.held.iter().enumerate() {
            if let Some(key) = &h.replace_key {
                self.index.insert(key.clone(), i as u64);
            }
        }
    }

    /// How many stanzas are held.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Takes everything held, oldest first.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Bytes> + '_ {
        self.first = self.first.saturating_add(self.held.len() as u64);
        self.index.clear();
        self.live = 0;
        self.held.drain(..).filter_map(|h| h.data)
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
        // After a drain, keys start afresh.
        q.hold(Bytes::from_static(b"a3"), Some("a".into()));
        assert_eq!(q.drain().collect::<Vec<_>>(), vec!["a3"]);
    }

    proptest::proptest! {
        /// The queue behaves like a plain list where a keyed entry first
        /// removes the older one with its key, and stays compact.
        #[test]
        fn queue_matches_a_simple_model(
            ops in proptest::collection::vec((0u8..4, proptest::option::of(0u8..3)), 0..200)
        ) {
            let mut q = CsiQueue::default();
            let mut model: Vec<(Bytes, Option<u8>)> = Vec::new();
            for (n, (op, key)) in ops.into_iter().enumerate() {
                if op == 0 {
                    let got: Vec<Bytes> = q.drain().collect();
                    let want: Vec<Bytes> = model.drain(..).map(|(d, _)| d).collect();
                    proptest::prop_assert_eq!(got, want);
                    continue;
                }
                let data = Bytes::from(n.to_string());
                if let Some(k) = key {
                    model.retain(|(_, mk)| *mk != Some(k));
                }
                model.push((data.clone(), key));
                q.hold(data, key.map(|k| k.to_string().into_boxed_str()));
                proptest::prop_assert_eq!(q.len(), model.len());
                proptest::prop_assert!(q.held.len() <= 2 * q.len() + 17);
            }
            let got: Vec<Bytes> = q.drain().collect();
            let want: Vec<Bytes> = model.into_iter().map(|(d, _)| d).collect();
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn replacing_one_key_forever_keeps_the_queue_small() {
        let mut q = CsiQueue::default();
        q.hold(Bytes::from_static(b"first"), None);
        for _ in 0..10_000 {
            q.hold(Bytes::from_static(b"p"), Some("a".into()));
            assert!(q.held.len() <= 2 * q.len() + 17, "{}", q.held.len());
        }
        assert_eq!(q.len(), 2);
        assert_eq!(q.drain().collect::<Vec<_>>(), vec!["first", "p"]);
    }
}
