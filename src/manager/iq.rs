//! Server-handled IQs (XEP-0199 ping, XEP-0030 disco, XEP-0092 version,
//! legacy session) and the extension registry.

use std::collections::BTreeSet;
use std::time::Instant;

use jid::BareJid;
use minidom::Element;

use super::SessionManager;
use super::routing::{Origin, Target};
use crate::error::{ErrorType, StanzaError, StanzaErrorCondition};
use crate::output::{Event, Output};
use crate::stanza::{IqType, MessageType, Stanza, StanzaType};
use crate::xml::{
    self, NS_BLOCKING, NS_CARBONS, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING, NS_ROSTER, NS_SESSION,
    NS_VERSION,
};

/// What embedders have claimed.
#[derive(Debug, Default, Clone)]
pub(super) struct Extensions {
    /// IQ payload namespaces handled by the embedder.
    pub iq_namespaces: BTreeSet<String>,
    /// Extra disco features.
    pub features: BTreeSet<String>,
    /// Message types (`chat`, `normal`, `groupchat`, `headline`) to the
    /// server domain or a bare JID handled by the embedder.
    pub message_types: BTreeSet<String>,
    /// Presence to the server domain is handled by the embedder.
    pub presence_to_host: bool,
}

impl SessionManager {
    /// Claims an IQ payload namespace: iq get/set with a payload in `ns`
    /// sent to the server domain or to an account's bare JID come out as
    /// [`Event::Stanza`] instead of being answered here. The embedder must
    /// answer each one (with [`SessionManager::handle_routed`] or
    /// [`SessionManager::send`]). The namespace is listed in disco#info.
    pub fn register_iq_namespace(&mut self, ns: &str) {
        self.extensions.iq_namespaces.insert(ns.to_owned());
        self.extensions.features.insert(ns.to_owned());
    }

    /// Adds a feature to the server's disco#info without claiming anything.
    pub fn register_feature(&mut self, var: &str) {
        self.extensions.features.insert(var.to_owned());
    }

    /// Claims messages of `message_type` (`chat`, `normal`, `groupchat` or
    /// `headline`) addressed to the server domain or to a bare JID: they
    /// come out as [`Event::Stanza`] instead of being delivered.
    pub fn register_message_type(&mut self, message_type: &str) {
        self.extensions
            .message_types
            .insert(message_type.to_owned());
    }

    /// Claims presence addressed to the server domain (other than probes):
    /// it comes out as [`Event::Stanza`].
    pub fn register_presence_to_host(&mut self) {
        self.extensions.presence_to_host = true;
    }

    /// Whether an extension claims this message.
    pub(super) fn extension_claims_message(&self, stanza: &Stanza) -> bool {
        if self.extensions.message_types.is_empty() {
            return false;
        }
        let ty = match stanza.header.ty {
            StanzaType::Message(MessageType::Normal) => "normal",
            StanzaType::Message(MessageType::Chat) => "chat",
            StanzaType::Message(MessageType::Groupchat) => "groupchat",
            StanzaType::Message(MessageType::Headline) => "headline",
            StanzaType::Message(MessageType::Error) => "error",
            // A type nobody defined: only a claim of that very string.
            _ => stanza.element.attr("type").unwrap_or("normal"),
        };
        self.extensions.message_types.contains(ty)
    }

    fn extension_claims_iq(&self, stanza: &Element) -> bool {
        xml::first_child(stanza).is_some_and(|child| {
            self.extensions
                .iq_namespaces
                .iter()
                .any(|ns| child.has_ns(ns.as_str()))
        })
    }

    pub(super) fn emit_stanza_event(&mut self, origin: Origin, stanza: Element) {
        let session = match origin {
            Origin::Client(id) => Some(id),
            Origin::External => None,
        };
        self.emit(Output::Event(Event::Stanza { session, stanza }));
    }

    /// Replies to an iq by routing the answer back to its sender.
    fn reply(&mut self, reply: Element, now: Instant) {
        if reply.attr("to").is_some() {
            self.route(reply, Origin::External, now);
        }
    }

    fn reply_result(&mut self, iq: &Element, payload: Option<Element>, now: Instant) {
        self.reply(xml::iq_result(iq, payload), now);
    }

    fn reply_error(&mut self, iq: &Element, error: StanzaError, now: Instant) {
        self.bounce(iq, error, now);
    }

    /// An iq to the server domain.
    pub(super) fn server_iq(&mut self, ty: IqType, iq: Element, origin: Origin, now: Instant) {
        if ty != IqType::Get && ty != IqType::Set {
            return;
        }
        if self.extension_claims_iq(&iq) {
            self.emit_stanza_event(origin, iq);
            return;
        }
        let Some(child) = xml::first_child(&iq) else {
            self.reply_error(&iq, StanzaError::service_unavailable(), now);
            return;
        };
        match (ty, child.name(), child.ns().as_str()) {
            (IqType::Get, "ping", NS_PING) => self.reply_result(&iq, None, now),
            (IqType::Set, "session", NS_SESSION) => self.reply_result(&iq, None, now),
            (IqType::Get, "query", NS_DISCO_INFO) => {
                if child.attr("node").is_some() {
                    self.reply_error(
                        &iq,
                        StanzaError::new(ErrorType::Cancel, StanzaErrorCondition::ItemNotFound),
                        now,
                    );
                    return;
                }
                let info = self.server_disco_info();
                self.reply_result(&iq, Some(info), now);
            }
            (IqType::Get, "query", NS_DISCO_ITEMS) => {
                self.reply_result(&iq, Some(Element::bare("query", NS_DISCO_ITEMS)), now);
            }
            (IqType::Get, "query", NS_VERSION) => match &self.config.software_name {
                Some(name) => {
                    let mut query = Element::bare("query", NS_VERSION);
                    query.append_child(xml::text_element("name", NS_VERSION, name));
                    if let Some(v) = &self.config.software_version {
                        query.append_child(xml::text_element("version", NS_VERSION, v));
                    }
                    if let Some(os) = &self.config.software_os {
                        query.append_child(xml::text_element("os", NS_VERSION, os));
                    }
                    self.reply_result(&iq, Some(query), now);
                }
                None => self.reply_error(&iq, StanzaError::service_unavailable(), now),
            },
            _ => self.reply_error(&iq, StanzaError::service_unavailable(), now),
        }
    }

    /// The server's disco#info: identity and every enabled feature.
    pub(super) fn server_disco_info(&self) -> Element {
        let mut query = Element::bare("query", NS_DISCO_INFO);
        let mut identity = Element::bare("identity", NS_DISCO_INFO);
        xml::set_attr(&mut identity, "category", "server");
        xml::set_attr(&mut identity, "type", "im");
        if let Some(name) = &self.config.software_name {
            xml::set_attr(&mut identity, "name", name.as_str());
        }
        query.append_child(identity);
        let mut features: BTreeSet<&str> = [
            NS_BLOCKING,
            NS_CARBONS,
            NS_DISCO_INFO,
            NS_DISCO_ITEMS,
            NS_PING,
            NS_ROSTER,
        ]
        .into_iter()
        .collect();
        if self.config.software_name.is_some() {
            features.insert(NS_VERSION);
        }
        if self.config.offline_storage {
            features.insert("msgoffline");
        }
        features.extend(self.extensions.features.iter().map(String::as_str));
        for var in features {
            let mut f = Element::bare("feature", NS_DISCO_INFO);
            xml::set_attr(&mut f, "var", var);
            query.append_child(f);
        }
        query
    }

    /// The disco#info of an account (XEP-0030 §3.1 for user accounts).
    fn account_disco_info(&self) -> Element {
        let mut query = Element::bare("query", NS_DISCO_INFO);
        let mut identity = Element::bare("identity", NS_DISCO_INFO);
        xml::set_attr(&mut identity, "category", "account");
        xml::set_attr(&mut identity, "type", "registered");
        query.append_child(identity);
        for var in [
            NS_DISCO_INFO,
            NS_DISCO_ITEMS,
            NS_PING,
            NS_BLOCKING,
            NS_CARBONS,
        ] {
            let mut f = Element::bare("feature", NS_DISCO_INFO);
            xml::set_attr(&mut f, "var", var);
            query.append_child(f);
        }
        query
    }

    /// Whether the sender may see the account's disco: itself, or a contact
    /// the account shares its presence with.
    fn may_discover(&self, user: &BareJid, origin: Origin, target: &Target, iq: &Stanza) -> bool {
        if matches!(target, Target::OwnAccount(_)) {
            return true;
        }
        if let Origin::Client(id) = origin
            && self.sessions.get(&id).and_then(|s| s.bare_jid()) == Some(user)
        {
            return true;
        }
        let Some(from) = iq.header.sender() else {
            return false;
        };
        self.shares_presence_with(user, &from.to_bare())
    }

    /// An iq get/set to an account's bare JID (or the sender's own account),
    /// answered by the server on the account's behalf.
    pub(super) fn account_iq(
        &mut self,
        user: &BareJid,
        stanza: Stanza,
        origin: Origin,
        target: Target,
        now: Instant,
    ) {
        if self.extension_claims_iq(&stanza.element) {
            self.emit_stanza_event(origin, stanza.element);
            return;
        }
        let own = matches!(target, Target::OwnAccount(_));
        let StanzaType::Iq(ty) = stanza.header.ty else {
            return;
        };
        let may_discover = self.may_discover(user, origin, &target, &stanza);
        let iq = stanza.element;
        let Some(child) = xml::first_child(&iq) else {
            self.reply_error(&iq, StanzaError::service_unavailable(), now);
            return;
        };
        let name = child.name().to_owned();
        let ns = child.ns();
        match (ty, name.as_str(), ns.as_str()) {
            (IqType::Get, "ping", NS_PING) => self.reply_result(&iq, None, now),
            (IqType::Set, "session", NS_SESSION) if own => self.reply_result(&iq, None, now),
            (_, "query", NS_ROSTER) if own => {
                if let Origin::Client(id) = origin {
                    self.roster_iq(id, user, ty, iq, now);
                } else {
                    self.reply_error(&iq, StanzaError::service_unavailable(), now);
                }
            }
            (IqType::Set, "enable" | "disable", NS_CARBONS) if own => {
                if let Origin::Client(id) = origin {
                    self.carbons_iq(id, name == "enable", &iq);
                } else {
                    self.reply_error(&iq, StanzaError::service_unavailable(), now);
                }
            }
            (_, _, NS_BLOCKING) if own => {
                if let Origin::Client(id) = origin {
                    self.blocking_iq(id, user, ty, &iq, now);
                } else {
                    self.reply_error(&iq, StanzaError::service_unavailable(), now);
                }
            }
            (IqType::Get, "query", NS_DISCO_INFO) if child.attr("node").is_none() => {
                if may_discover {
                    let info = self.account_disco_info();
                    self.reply_result(&iq, Some(info), now);
                } else {
                    self.reply_error(&iq, StanzaError::service_unavailable(), now);
                }
            }
            (IqType::Get, "query", NS_DISCO_ITEMS) if child.attr("node").is_none() => {
                if may_discover {
                    self.reply_result(&iq, Some(Element::bare("query", NS_DISCO_ITEMS)), now);
                } else {
                    self.reply_error(&iq, StanzaError::service_unavailable(), now);
                }
            }
            _ => self.reply_error(&iq, StanzaError::service_unavailable(), now),
        }
    }
}
