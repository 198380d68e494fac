//! XEP-0280 message carbons (`urn:xmpp:carbons:2`).
//!
//! A session turns carbons on or off with an `<enable/>` / `<disable/>` iq
//! to its own account; the flag lives in its [`Bound`](crate::session::Bound)
//! state and the manager counts the enabled sessions (the byte-forwarding
//! fast path only looks further when the count is not zero).
//!
//! * **Sent copies**: an eligible message a resource sends is copied,
//!   wrapped in `<sent><forwarded>`, to the account's other carbons-enabled
//!   resources ([`SessionManager::sent_carbons`]).
//! * **Received copies**: an eligible message delivered to some resources of
//!   an account (or stored offline for it) is copied, wrapped in
//!   `<received><forwarded>`, to its carbons-enabled resources that did not
//!   get it ([`SessionManager::received_carbons`]): a message to the bare
//!   JID that already reached a resource is not copied to it again.
//!
//! Eligibility (§6, [`eligible`]): type `chat`; `normal` (or no type) with a
//! `<body/>`; `error`; never `groupchat` or `headline`, never a message with
//! `<private xmlns='urn:xmpp:carbons:2'/>` (stripped on local delivery) or
//! `<no-copy xmlns='urn:xmpp:hints'/>`, and never one that already carries a
//! carbons `<sent/>` / `<received/>` wrapper (a client cannot get its own
//! wrapper copied as if the server made it). A MUC private message (with
//! `<x xmlns='http://jabber.org/protocol/muc#user'/>`) delivered to a full
//! JID is not copied to the other resources.
//!
//! The wrapper's `from` is the account's bare JID, its `to` the recipient's
//! full JID and its `type` the original's. The forwarded message is
//! serialised once; each copy is that shared tail behind its own start tag.

use jid::BareJid;
use minidom::Element;
use smallvec::SmallVec;

use super::SessionManager;
use crate::ids::SessionId;
use crate::stanza::{MessageType, Stanza, StanzaType};
use crate::stream;
use crate::xml::{self, NS_CARBONS, NS_CLIENT, NS_FORWARD, NS_HINTS};

/// Which way a copied message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    /// Sent by one of the account's resources.
    Sent,
    /// Received by the account.
    Received,
}

/// Whether a message may be copied (XEP-0280 §6).
pub(super) fn eligible(stanza: &Stanza) -> bool {
    let el = &stanza.element;
    let by_type = match stanza.header.ty {
        StanzaType::Message(MessageType::Chat | MessageType::Error) => true,
        StanzaType::Message(MessageType::Normal) => el.has_child("body", NS_CLIENT),
        _ => false,
    };
    by_type
        && !el.children().any(|c| {
            c.is("private", NS_CARBONS)
                || c.is("no-copy", NS_HINTS)
                || c.is("sent", NS_CARBONS)
                || c.is("received", NS_CARBONS)
        })
}

/// Whether a message delivered to a full JID is a MUC private message
/// (it carries `<x xmlns='http://jabber.org/protocol/muc#user'/>`): the
/// other resources are not in the room, so it is not copied to them (§6).
pub(super) fn is_muc_private(message: &Element) -> bool {
    message.has_child("x", "http://jabber.org/protocol/muc#user")
}

/// The copy as an element (without `to`), for the hold stage.
fn wrap(user: &BareJid, name: &str, ty: Option<&str>, original: Element) -> Element {
    let mut message = Element::bare("message", NS_CLIENT);
    xml::set_attr(&mut message, "from", user.as_str());
    if let Some(ty) = ty {
        xml::set_attr(&mut message, "type", ty.to_owned());
    }
    let mut forwarded = Element::bare("forwarded", NS_FORWARD);
    forwarded.append_child(original);
    let mut wrapper = Element::bare(name, NS_CARBONS);
    wrapper.append_child(forwarded);
    message.append_child(wrapper);
    message
}

/// Removes every `<private xmlns='urn:xmpp:carbons:2'/>` child (§6: the
/// recipient's server strips it before delivery).
pub(super) fn strip_private(stanza: &mut Element) {
    while stanza.remove_child("private", NS_CARBONS).is_some() {}
}

impl SessionManager {
    /// `<enable/>` or `<disable/>` from one of the account's sessions
    /// (§4–§5): answered straight to that session.
    pub(super) fn carbons_iq(&mut self, id: SessionId, enable: bool, iq: &Element) {
        if self.set_carbons(id, enable) {
            self.transmit_element(id, &xml::iq_result(iq, None));
        }
    }

    /// Turns carbons on or off for a bound session (an iq, or Bind2
    /// inline). Returns `false` if `id` is not a bound session.
    pub(super) fn set_carbons(&mut self, id: SessionId, enable: bool) -> bool {
        let changed = match self.sessions.get_mut(&id).and_then(|s| s.bound_mut()) {
            Some(bound) if bound.carbons != enable => {
                bound.carbons = enable;
                true
            }
            Some(_) => false,
            None => return false,
        };
        if changed {
            self.carbons_enabled = if enable {
                self.carbons_enabled.saturating_add(1)
            } else {
                self.carbons_enabled.saturating_sub(1)
            };
        }
        true
    }

    /// A session with carbons on went away.
    pub(super) fn carbons_unbound(&mut self, was_enabled: bool) {
        if was_enabled {
            self.carbons_enabled = self.carbons_enabled.saturating_sub(1);
        }
    }

    /// Whether any resource of `user` has carbons on.
    pub(super) fn has_carbons(&self, user: &BareJid) -> bool {
        self.carbons_enabled > 0
            && self
                .resources(user)
                .any(|s| s.bound().is_some_and(|b| b.carbons))
    }

    /// The carbons-enabled resources of `user` that can receive, leaving
    /// out `except`.
    fn carbon_targets(&self, user: &BareJid, except: &[SessionId]) -> SmallVec<[SessionId; 4]> {
        if self.carbons_enabled == 0 {
            return SmallVec::new();
        }
        self.resources(user)
            .filter(|s| s.bound().is_some_and(|b| b.carbons))
            .filter(|s| !except.contains(&s.id) && !s.transport_lost())
            .map(|s| s.id)
            .collect()
    }

    /// Sent copies of a message from session `sender` (its `from` already
    /// stamped) to the account's other carbons-enabled resources.
    pub(super) fn sent_carbons(&mut self, sender: SessionId, user: &BareJid, stanza: &Stanza) {
        let targets = self.carbon_targets(user, &[sender]);
        if targets.is_empty() || !eligible(stanza) {
            return;
        }
        if stanza.element.attr("to").is_some() {
            self.send_carbons(user, Direction::Sent, &stanza.element, &targets);
        } else {
            // Addressed to the own account: the copy names it.
            let mut copy = stanza.element.clone();
            xml::set_attr(&mut copy, "to", user.as_str());
            self.send_carbons(user, Direction::Sent, &copy, &targets);
        }
    }

    /// Received copies of a message for `user` that reached `delivered`
    /// (empty when it was stored offline), to the account's other
    /// carbons-enabled resources. `eligible` was decided before delivery
    /// stripped `<private/>`.
    pub(super) fn received_carbons(
        &mut self,
        user: &BareJid,
        message: &Element,
        delivered: &[SessionId],
        eligible: bool,
    ) {
        if !eligible {
            return;
        }
        let targets = self.carbon_targets(user, delivered);
        if targets.is_empty() {
            return;
        }
        self.send_carbons(user, Direction::Received, message, &targets);
    }

    /// Wraps `original` once and sends one copy to each target: the
    /// original is serialised once into the shared tail of every copy, and
    /// the wrapper is built as an element only if a target is inactive
    /// (XEP-0352 classifies elements).
    fn send_carbons(
        &mut self,
        user: &BareJid,
        direction: Direction,
        original: &Element,
        targets: &[SessionId],
    ) {
        let name = match direction {
            Direction::Sent => "sent",
            Direction::Received => "received",
        };
        let ty = original.attr("type");
        let inner = stream::element_bytes(original);
        let Some(tail) = stream::carbon_tail(name, &inner) else {
            return;
        };
        let mut wrapper: Option<Element> = None;
        for &sid in targets {
            let Some(to) = self.sessions.get(&sid).and_then(|s| s.full_jid()) else {
                continue;
            };
            let data = stream::carbon_copy(user.as_str(), to.as_str(), ty, &tail);
            if self.is_inactive(sid) {
                let wrapper = wrapper.get_or_insert_with(|| wrap(user, name, ty, original.clone()));
                self.deliver_bytes(sid, data, wrapper);
            } else {
                // Active: the hold stage would pass it on unchanged.
                self.emit_transmit(sid, data);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_the_bytes_the_writer_writes_for_the_wrapper() {
        let user = BareJid::new("alice@localhost").expect("valid JID");
        for original in [
            "<message xmlns='jabber:client' from='b@localhost/r' to='alice@localhost/a' type='chat' id='1'><body>a &amp; &lt;b&gt;</body><x xmlns='urn:x' y='&apos;'/></message>",
            "<message xmlns='jabber:client' from='b@localhost/r' xml:lang='en'><body>x</body></message>",
            "<message xmlns='jabber:client'/>",
        ] {
            let original: Element = original.parse().expect("valid XML");
            for name in ["sent", "received"] {
                let ty = original.attr("type");
                let tail = stream::carbon_tail(name, &stream::element_bytes(&original))
                    .expect("a message");
                let got = stream::carbon_copy(user.as_str(), "alice@localhost/b", ty, &tail);
                let mut want = wrap(&user, name, ty, original.clone());
                xml::set_attr(&mut want, "to", "alice@localhost/b");
                assert_eq!(got, stream::element_bytes(&want), "{name}");
            }
        }
    }
}
