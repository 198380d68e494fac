//! Rosters (RFC 6121 §2, Prosody §6): the model, roster get/set/remove,
//! pushes and versioning. Storage sees rosters through requests; the
//! in-memory copy is authoritative while it is cached.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use jid::{BareJid, Jid};
use minidom::Element;

use crate::error::{ErrorType, StanzaError, StanzaErrorCondition};
use crate::ids::SessionId;
use crate::manager::SessionManager;
use crate::routing::Origin;
use crate::storage::Request;
use crate::xml::{self, NS_ROSTER};

/// A roster item's subscription state (RFC 6121 §2.1.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Subscription {
    /// Neither side sees the other's presence.
    #[default]
    None,
    /// The user sees the contact's presence.
    To,
    /// The contact sees the user's presence.
    From,
    /// Both see each other's presence.
    Both,
}

impl Subscription {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::To => "to",
            Self::From => "from",
            Self::Both => "both",
        }
    }
    /// Parses the attribute value.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "to" => Some(Self::To),
            "from" => Some(Self::From),
            "both" => Some(Self::Both),
            _ => None,
        }
    }
    /// The contact receives the user's presence (`from` or `both`).
    pub fn contact_sees_user(self) -> bool {
        matches!(self, Self::From | Self::Both)
    }
    /// The user receives the contact's presence (`to` or `both`).
    pub fn user_sees_contact(self) -> bool {
        matches!(self, Self::To | Self::Both)
    }
}

/// One roster item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterItem {
    /// The contact.
    pub jid: BareJid,
    /// The user's name for the contact.
    pub name: Option<String>,
    /// Groups, without duplicates.
    pub groups: BTreeSet<String>,
    /// Subscription state.
    pub subscription: Subscription,
    /// A subscription request to the contact is pending (`ask='subscribe'`).
    pub ask: bool,
    /// The user pre-approved the contact's subscription (RFC 6121 §3.4).
    pub approved: bool,
}

impl RosterItem {
    /// A new item with no subscription.
    pub fn new(jid: BareJid) -> Self {
        Self {
            jid,
            name: None,
            groups: BTreeSet::new(),
            subscription: Subscription::None,
            ask: false,
            approved: false,
        }
    }

    /// The `<item/>` element as sent in results and pushes.
    pub fn to_element(&self) -> Element {
        let mut item = Element::bare("item", NS_ROSTER);
        xml::set_attr(&mut item, "jid", self.jid.as_str());
        xml::set_attr(&mut item, "subscription", self.subscription.as_str());
        if let Some(name) = &self.name {
            xml::set_attr(&mut item, "name", name.as_str());
        }
        if self.ask {
            xml::set_attr(&mut item, "ask", "subscribe");
        }
        if self.approved {
            xml::set_attr(&mut item, "approved", "true");
        }
        for g in &self.groups {
            item.append_child(xml::text_element("group", NS_ROSTER, g));
        }
        item
    }
}

/// A user's roster: items, pending inbound subscription requests, version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    /// Incremented on every change (RFC 6121 §2.6).
    pub version: u64,
    /// Items by contact.
    pub items: BTreeMap<BareJid, RosterItem>,
    /// Inbound subscription requests not yet answered, with the request
    /// stanza as received (re-delivered at each initial presence).
    pub pending_in: BTreeMap<BareJid, Element>,
}

/// One change to a stored roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RosterChange {
    /// Add or replace an item.
    SetItem(RosterItem),
    /// Remove an item.
    RemoveItem(BareJid),
    /// Record an inbound subscription request.
    SetPending(BareJid, Element),
    /// Forget an inbound subscription request.
    RemovePending(BareJid),
}

impl Roster {
    /// Applies a stored change (what a store does with
    /// [`Request::RosterChanged`]).
    pub fn apply(&mut self, version: u64, change: &RosterChange) {
        self.version = version;
        match change {
            RosterChange::SetItem(item) => {
                self.items.insert(item.jid.clone(), item.clone());
            }
            RosterChange::RemoveItem(jid) => {
                self.items.remove(jid);
            }
            RosterChange::SetPending(jid, stanza) => {
                self.pending_in.insert(jid.clone(), stanza.clone());
            }
            RosterChange::RemovePending(jid) => {
                self.pending_in.remove(jid);
            }
        }
    }

    /// The subscription toward `contact` (`None` without an item).
    pub fn subscription(&self, contact: &BareJid) -> Subscription {
        self.items
            .get(contact)
            .map(|i| i.subscription)
            .unwrap_or_default()
    }
}

/// A roster cached in the manager.
#[derive(Debug, Default)]
pub(crate) struct CachedRoster {
    pub roster: Roster,
    /// Writes not yet acknowledged: the one sent to storage plus those
    /// queued behind it.
    pub writes_in_flight: u32,
    /// Writes waiting for the one in flight to be acknowledged. Storage sees
    /// one write per user at a time, in version order, so a store that
    /// answers out of order cannot apply them out of order.
    pub queued_writes: std::collections::VecDeque<Request>,
    /// Loading failed: used empty, never written back.
    pub broken: bool,
}

impl SessionManager {
    /// The cached roster of a user, if loaded.
    pub(crate) fn roster(&self, user: &BareJid) -> Option<&Roster> {
        self.rosters.get(user).map(|c| &c.roster)
    }

    /// Whether `user` lets `contact` see its presence.
    pub(crate) fn shares_presence_with(&self, user: &BareJid, contact: &BareJid) -> bool {
        self.roster(user)
            .is_some_and(|r| r.subscription(contact).contact_sees_user())
    }

    /// Records a change in the cached roster, bumps the version and asks
    /// storage to write it.
    pub(crate) fn change_roster(&mut self, user: &BareJid, change: RosterChange) {
        let Some(cached) = self.rosters.get_mut(user) else {
            return;
        };
        let version = cached.roster.version.saturating_add(1);
        cached.roster.apply(version, &change);
        if cached.broken {
            return;
        }
        let request = Request::RosterChanged {
            account: crate::storage::account_of(user),
            version,
            change,
        };
        let idle = cached.writes_in_flight == 0;
        cached.writes_in_flight = cached.writes_in_flight.saturating_add(1);
        if idle {
            self.new_request(crate::manager::Pending::RosterWrite(user.clone()), request);
        } else {
            cached.queued_writes.push_back(request);
        }
    }

    /// Sends a roster push for `contact` to every interested resource.
    pub(crate) fn push_roster_item(&mut self, user: &BareJid, contact: &BareJid) {
        let Some(roster) = self.roster(user) else {
            return;
        };
        let item = match roster.items.get(contact) {
            Some(item) => item.to_element(),
            None => {
                let mut item = Element::bare("item", NS_ROSTER);
                xml::set_attr(&mut item, "jid", contact.as_str());
                xml::set_attr(&mut item, "subscription", "remove");
                item
            }
        };
        let mut query = Element::bare("query", NS_ROSTER);
        xml::set_attr(&mut query, "ver", roster.version.to_string());
        query.append_child(item);
        let mut push = Element::bare("iq", xml::NS_CLIENT);
        // A push id is not a secret, only a label the client echoes.
        let id = format!(
            "push{}",
            crate::random::random_id(self.rng.as_mut(), 10).unwrap_or_default()
        );
        xml::set_attr(&mut push, "id", id);
        xml::set_attr(&mut push, "type", "set");
        push.append_child(query);
        let targets: smallvec::SmallVec<[SessionId; 4]> = self
            .resources(user)
            .filter(|s| s.interested)
            .map(|s| s.id)
            .collect();
        self.transmit_many(&targets, &push);
    }

    /// A roster get or set from one of the user's sessions (RFC 6121 §2.1–2.5).
    /// The roster is loaded (this runs inside the user's queue).
    pub(crate) fn roster_iq(&mut self, id: SessionId, user: &BareJid, iq: Element, now: Instant) {
        match iq.attr("type") {
            Some("get") => self.roster_get(id, user, &iq),
            Some("set") => self.roster_set(id, user, &iq, now),
            _ => {}
        }
    }

    /// Answers the requesting session directly (Prosody's `origin.send`),
    /// so the reply always precedes the pushes the same request causes,
    /// even when the request waited in the user's queue.
    fn roster_reply(&mut self, id: SessionId, reply: &Element) {
        if self.sessions.contains_key(&id) {
            self.transmit_element(id, reply);
        }
    }

    fn roster_get(&mut self, id: SessionId, user: &BareJid, iq: &Element) {
        let Some(roster) = self.roster(user) else {
            self.send_error_to_session(
                id,
                iq,
                StanzaError::new(ErrorType::Wait, StanzaErrorCondition::InternalServerError),
            );
            return;
        };
        let client_ver = xml::first_child(iq)
            .and_then(|q| q.attr("ver"))
            .and_then(|v| v.parse::<u64>().ok());
        let reply = if client_ver == Some(roster.version) {
            // RFC 6121 §2.6.3: nothing changed, pushes follow if needed.
            xml::iq_result(iq, None)
        } else {
            let mut query = Element::bare("query", NS_ROSTER);
            xml::set_attr(&mut query, "ver", roster.version.to_string());
            for item in roster.items.values() {
                query.append_child(item.to_element());
            }
            xml::iq_result(iq, Some(query))
        };
        if let Some(session) = self.sessions.get_mut(&id) {
            session.interested = true;
        }
        self.roster_reply(id, &reply);
    }

    fn roster_set(&mut self, id: SessionId, user: &BareJid, iq: &Element, now: Instant) {
        let bad = |text: &'static str| StanzaError::bad_request(text);
        let Some(query) = xml::first_child(iq) else {
            return self.send_error_to_session(id, iq, bad("Missing query"));
        };
        let mut items = query.children();
        let (Some(item), None) = (items.next(), items.next()) else {
            return self.send_error_to_session(
                id,
                iq,
                bad("A roster set must contain exactly one item"),
            );
        };
        if !item.is("item", NS_ROSTER) {
            return self.send_error_to_session(
                id,
                iq,
                bad("A roster set must contain exactly one item"),
            );
        }
        let Some(jid_text) = item.attr("jid") else {
            return self.send_error_to_session(id, iq, bad("The item has no 'jid'"));
        };
        let contact = match Jid::new(jid_text) {
            Ok(j) if j.resource().is_none() => j.to_bare(),
            _ => {
                return self.send_error_to_session(
                    id,
                    iq,
                    bad("The item's 'jid' is not a valid bare JID"),
                );
            }
        };
        if contact == *user {
            return self.send_error_to_session(
                id,
                iq,
                StanzaError::new(ErrorType::Cancel, StanzaErrorCondition::NotAllowed),
            );
        }
        let subscription = item.attr("subscription");
        if subscription == Some("remove") {
            if self
                .roster(user)
                .is_some_and(|r| r.items.contains_key(&contact))
            {
                self.roster_reply(id, &xml::iq_result(iq, None));
                self.remove_contact(id, user, &contact, now);
            } else {
                self.send_error_to_session(
                    id,
                    iq,
                    StanzaError::new(ErrorType::Modify, StanzaErrorCondition::ItemNotFound),
                );
            }
            return;
        }
        // RFC 6121 §2.1.2.5: in a roster set every 'subscription' value
        // other than "remove" is ignored, as is any 'ask'.
        let mut groups = BTreeSet::new();
        for group in item.children() {
            if !group.is("group", NS_ROSTER) {
                continue;
            }
            let name = group.text();
            if name.is_empty() {
                return self.send_error_to_session(
                    id,
                    iq,
                    StanzaError::new(ErrorType::Modify, StanzaErrorCondition::NotAcceptable),
                );
            }
            if !groups.insert(name) {
                // RFC 6121 §2.3.3: duplicate groups are a bad request.
                return self.send_error_to_session(id, iq, bad("Duplicate group"));
            }
        }
        let name = item
            .attr("name")
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        let Some(roster) = self.roster(user) else {
            return self.send_error_to_session(
                id,
                iq,
                StanzaError::new(ErrorType::Wait, StanzaErrorCondition::InternalServerError),
            );
        };
        let existing = roster.items.get(&contact).cloned();
        if existing.is_none()
            && roster.items.len().saturating_add(roster.pending_in.len())
                >= self.config.max_roster_items
        {
            return self.send_error_to_session(
                id,
                iq,
                StanzaError::with_text(
                    ErrorType::Wait,
                    StanzaErrorCondition::ResourceConstraint,
                    "The roster is full",
                ),
            );
        }
        let mut new_item = existing.unwrap_or_else(|| RosterItem::new(contact.clone()));
        new_item.name = name;
        new_item.groups = groups;
        self.roster_reply(id, &xml::iq_result(iq, None));
        self.change_roster(user, RosterChange::SetItem(new_item));
        self.push_roster_item(user, &contact);
    }

    /// Removing a contact (RFC 6121 §2.5.2 side effects, Prosody §6.6,
    /// with Prosody issue #1121 fixed: everything is sent from the user
    /// removing the item).
    fn remove_contact(&mut self, _id: SessionId, user: &BareJid, contact: &BareJid, now: Instant) {
        let Some(roster) = self.roster(user) else {
            return;
        };
        let item = roster.items.get(contact).cloned();
        let pending = roster.pending_in.contains_key(contact);
        let sub = item.as_ref().map(|i| i.subscription).unwrap_or_default();
        let ask = item.as_ref().is_some_and(|i| i.ask);
        if sub.contact_sees_user() || pending {
            let stanza = crate::presence::subscription_stanza("unsubscribed", user, contact);
            self.route(stanza, Origin::External, now);
        }
        if sub.user_sees_contact() || ask {
            self.send_unavailable_from_resources(user, contact, now);
            let stanza = crate::presence::subscription_stanza("unsubscribe", user, contact);
            self.route(stanza, Origin::External, now);
        } else if sub.contact_sees_user() {
            self.send_unavailable_from_resources(user, contact, now);
        }
        if pending {
            self.change_roster(user, RosterChange::RemovePending(contact.clone()));
        }
        self.change_roster(user, RosterChange::RemoveItem(contact.clone()));
        self.push_roster_item(user, contact);
    }
}
