//! Roster get/set/remove, pushes and the cached roster's ordered writes
//! (RFC 6121 §2, Prosody §6).

use std::collections::BTreeSet;
use std::time::Instant;

use jid::{BareJid, Jid};
use minidom::Element;

use super::SessionManager;
use super::routing::Origin;
use crate::error::{ErrorType, StanzaError, StanzaErrorCondition};
use crate::ids::SessionId;
use crate::roster::{Roster, RosterChange, RosterItem};
use crate::stanza::IqType;
use crate::storage::Request;
use crate::xml::{self, NS_ROSTER};

impl SessionManager {
    /// The cached roster of a user, if loaded.
    pub(super) fn roster(&self, user: &BareJid) -> Option<&Roster> {
        self.cached(user).map(|c| &c.roster)
    }

    /// Whether `user` lets `contact` see its presence.
    pub(super) fn shares_presence_with(&self, user: &BareJid, contact: &BareJid) -> bool {
        self.roster(user)
            .is_some_and(|r| r.subscription(contact).contact_sees_user())
    }

    /// Records a change in the cached roster, bumps the version and asks
    /// storage to write it.
    pub(super) fn change_roster(&mut self, user: &BareJid, change: RosterChange) {
        let Some(cached) = self.cached_mut(user) else {
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
            self.request(super::Pending::RosterWrite(user.clone()), request);
        } else {
            cached.queued_writes.push_back(request);
        }
    }

    /// An iq `set` push (roster, blocklist) around `payload`, with a fresh id.
    pub(super) fn push_iq(&mut self, payload: Element) -> Element {
        let mut push = Element::bare("iq", xml::NS_CLIENT);
        // A push id is not a secret, only a label the client echoes.
        let id = format!(
            "push{}",
            crate::random::random_id(self.rng.as_mut(), 10).unwrap_or_default()
        );
        xml::set_attr(&mut push, "id", id);
        xml::set_attr(&mut push, "type", "set");
        push.append_child(payload);
        push
    }

    /// Sends a roster push for `contact` to every interested resource.
    pub(super) fn push_roster_item(&mut self, user: &BareJid, contact: &BareJid) {
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
        let push = self.push_iq(query);
        let targets: smallvec::SmallVec<[SessionId; 4]> = self
            .resources(user)
            .filter(|s| s.interested())
            .map(|s| s.id)
            .collect();
        self.transmit_many(&targets, &push);
    }

    /// A roster get or set from one of the user's sessions (RFC 6121 §2.1–2.5).
    /// The roster is loaded (this runs inside the user's queue).
    pub(super) fn roster_iq(
        &mut self,
        id: SessionId,
        user: &BareJid,
        ty: IqType,
        iq: Element,
        now: Instant,
    ) {
        match ty {
            IqType::Get => self.roster_get(id, user, &iq),
            IqType::Set => self.roster_set(id, user, &iq, now),
            IqType::Result | IqType::Error | IqType::Other => {}
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
        if let Some(bound) = self.sessions.get_mut(&id).and_then(|s| s.bound_mut()) {
            bound.interested = true;
        }
        self.roster_reply(id, &reply);
    }

    /// Whether adding an item for `contact` would take the user's roster
    /// (items plus pending inbound requests) past `max_roster_items`;
    /// `false` when the item exists (it is only updated).
    pub(super) fn roster_full_for(&self, user: &BareJid, contact: &BareJid) -> bool {
        self.roster(user)
            .is_some_and(|r| !r.items.contains_key(contact))
            && self.roster_at_capacity(user)
    }

    /// Whether the user's items plus pending inbound requests have reached
    /// `max_roster_items` (a new pending request would exceed it).
    pub(super) fn roster_at_capacity(&self, user: &BareJid) -> bool {
        self.roster(user).is_some_and(|r| {
            r.items.len().saturating_add(r.pending_in.len()) >= self.config.max_roster_items
        })
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
            if name.len() > self.config.max_roster_group_bytes {
                return self.send_error_to_session(id, iq, not_acceptable("Group name too long"));
            }
            if !groups.insert(name) {
                // RFC 6121 §2.3.3: duplicate groups are a bad request.
                return self.send_error_to_session(id, iq, bad("Duplicate group"));
            }
            if groups.len() > self.config.max_roster_groups_per_item {
                return self.send_error_to_session(id, iq, not_acceptable("Too many groups"));
            }
        }
        let name = item
            .attr("name")
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        if name
            .as_ref()
            .is_some_and(|n| n.len() > self.config.max_roster_name_bytes)
        {
            return self.send_error_to_session(id, iq, not_acceptable("Name too long"));
        }
        let Some(roster) = self.roster(user) else {
            return self.send_error_to_session(
                id,
                iq,
                StanzaError::new(ErrorType::Wait, StanzaErrorCondition::InternalServerError),
            );
        };
        let existing = roster.items.get(&contact).cloned();
        if self.roster_full_for(user, &contact) {
            return self.send_error_to_session(id, iq, roster_full());
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
            let stanza = super::presence::subscription_stanza("unsubscribed", user, contact);
            self.route(stanza, Origin::External, now);
        }
        if sub.user_sees_contact() || ask {
            self.send_unavailable_from_resources(user, contact, now);
            let stanza = super::presence::subscription_stanza("unsubscribe", user, contact);
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

/// The error for a change that would take a roster past
/// [`Config::max_roster_items`](crate::Config::max_roster_items).
pub(super) fn roster_full() -> StanzaError {
    StanzaError::with_text(
        ErrorType::Wait,
        StanzaErrorCondition::ResourceConstraint,
        "The roster is full",
    )
}

/// RFC 6121 §2.3.3: a roster item beyond a configured byte or count bound.
fn not_acceptable(text: &'static str) -> StanzaError {
    StanzaError::with_text(ErrorType::Modify, StanzaErrorCondition::NotAcceptable, text)
}
