//! Presence (RFC 6121 §3–§4, Prosody §5): broadcast, probes, directed
//! presence, the subscription state machine and disconnect cleanup.

use std::time::Instant;

use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use smallvec::SmallVec;

use super::SessionManager;
use super::routing::{Flow, Origin, Target, Work};
use crate::error::StanzaError;
use crate::ids::SessionId;
use crate::roster::{RosterChange, RosterItem, Subscription};
use crate::session::StoredPresence;
use crate::stanza::{PresenceType, Stanza, StanzaType};
use crate::xml::{self, NS_CLIENT};

/// `<presence type=T from=from to=to/>` with bare JIDs.
pub(super) fn subscription_stanza(ty: &str, from: &BareJid, to: &BareJid) -> Element {
    let mut p = Element::bare("presence", NS_CLIENT);
    xml::set_attr(&mut p, "from", from.as_str());
    xml::set_attr(&mut p, "to", to.as_str());
    xml::set_attr(&mut p, "type", ty.to_owned());
    p
}

/// Priority per Prosody §5.1: an integer clamped to −128…127; anything else
/// (missing, empty, not a number) is 0.
pub(super) fn parse_priority(presence: &Element) -> i8 {
    let Some(p) = presence.get_child("priority", NS_CLIENT) else {
        return 0;
    };
    let text = p.text();
    let t = text.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    let negative = t.starts_with('-');
    // Saturate instead of overflowing on absurdly long numbers.
    let magnitude = digits
        .bytes()
        .try_fold(0i64, |acc, d| {
            acc.checked_mul(10)?.checked_add(i64::from(d - b'0'))
        })
        .unwrap_or(i64::MAX);
    let value = if negative { -magnitude } else { magnitude };
    i8::try_from(value.clamp(-128, 127)).unwrap_or(0)
}

impl SessionManager {
    /// A presence from a bound client (already stamped): queued behind the
    /// user's other work because it may need the roster.
    pub(super) fn outbound_presence(&mut self, id: SessionId, stanza: Stanza, now: Instant) {
        let Some(user) = self.sessions.get(&id).and_then(|s| s.bare_jid().cloned()) else {
            return;
        };
        self.submit(
            user,
            Work::Outbound {
                session: id,
                stanza,
            },
            now,
        );
    }

    /// The outbound half (Prosody's `pre-presence/*`), roster loaded.
    pub(super) fn run_outbound_presence(
        &mut self,
        user: &BareJid,
        id: SessionId,
        mut stanza: Stanza,
        now: Instant,
    ) {
        if !self.sessions.contains_key(&id) {
            return;
        }
        // XEP-0191: presence to a blocked JID is dropped.
        if let Some(to) = stanza.header.recipient()
            && self.is_blocked(user, to)
        {
            return;
        }
        let Ok(target) = self.resolve_target(&mut stanza, Origin::Client(id), now) else {
            return;
        };
        let StanzaType::Presence(ty) = stanza.header.ty else {
            return;
        };
        if let Target::OwnAccount(_) = target {
            match ty {
                PresenceType::Available | PresenceType::Unavailable => {
                    self.broadcast_presence(id, user, ty, stanza.element, now)
                }
                PresenceType::Error => {}
                _ => self.send_error_to_session(
                    id,
                    &stanza.element,
                    StanzaError::bad_request("Invalid presence type"),
                ),
            }
            return;
        }
        match ty {
            t if t.is_subscription() => {
                let contact = stanza.header.recipient().map(|j| j.to_bare());
                if let Some(contact) = contact {
                    if self.subscription_adds_item(user, t, &contact)
                        && self.roster_full_for(user, &contact)
                    {
                        // Not routed: the contact would get a request the
                        // user's roster could not track.
                        return self.send_error_to_session(
                            id,
                            &stanza.element,
                            super::roster::roster_full(),
                        );
                    }
                    self.outbound_subscription(user, t, contact, stanza.element, now);
                }
            }
            PresenceType::Probe => self.route_to(stanza, Origin::Client(id), target, now),
            PresenceType::Available | PresenceType::Unavailable | PresenceType::Error => {
                self.track_directed(id, user, &stanza);
                self.route_to(stanza, Origin::Client(id), target, now);
            }
            _ => self.send_error_to_session(
                id,
                &stanza.element,
                StanzaError::bad_request("Invalid presence type"),
            ),
        }
    }

    /// Whether an outbound subscription stanza may add a roster item: a
    /// `subscribe`, or a `subscribed` that pre-approves (no pending inbound
    /// request, whose place the item would take).
    fn subscription_adds_item(&self, user: &BareJid, ty: PresenceType, contact: &BareJid) -> bool {
        match ty {
            PresenceType::Subscribe => true,
            PresenceType::Subscribed => self
                .roster(user)
                .is_some_and(|r| !r.pending_in.contains_key(contact)),
            _ => false,
        }
    }

    /// Directed presence (Prosody §5.4): remembered by exact `to` unless the
    /// recipient already gets broadcasts (a `from`/`both` contact).
    fn track_directed(&mut self, id: SessionId, user: &BareJid, stanza: &Stanza) {
        let Some(to) = stanza.element.attr("to") else {
            return;
        };
        let contact = stanza.header.recipient().map(|j| j.to_bare());
        if contact
            .as_ref()
            .is_some_and(|c| self.shares_presence_with(user, c))
        {
            return;
        }
        let to = to.to_owned();
        let available = stanza.header.ty == StanzaType::Presence(PresenceType::Available);
        let cap = self.config.max_directed_presence;
        if let Some(bound) = self.sessions.get_mut(&id).and_then(|s| s.bound_mut()) {
            if available {
                if !bound.directed.contains(&to) && bound.directed.len() < cap {
                    bound.directed.push(to);
                }
            } else {
                bound.directed.retain(|d| *d != to);
            }
        }
    }

    /// Broadcast of a session's own presence (Prosody's
    /// `handle_normal_presence`, RFC 6121 §4.2 and §4.4–§4.5).
    pub(super) fn broadcast_presence(
        &mut self,
        id: SessionId,
        user: &BareJid,
        ty: PresenceType,
        stanza: Element,
        now: Instant,
    ) {
        let Some(full) = self.sessions.get(&id).and_then(|s| s.full_jid().cloned()) else {
            return;
        };
        let unavailable = ty == PresenceType::Unavailable;
        // 1. Reflection to the sender.
        self.transmit_element(id, &stanza);
        // 2. The user's other available resources.
        self.presence_to_siblings(user, id, &stanza);
        // 3. Contacts that see the user's presence.
        self.presence_to_contacts(user, &stanza, now);
        if unavailable {
            let directed = match self.sessions.get_mut(&id).and_then(|s| s.bound_mut()) {
                Some(bound) => {
                    bound.presence = None;
                    std::mem::take(&mut bound.directed)
                }
                None => Vec::new(),
            };
            self.presence_to_directed(&stanza, directed, now);
            return;
        }
        let priority = parse_priority(&stanza);
        // Kept without addressing; the `<delay>` is added to later copies.
        let stored = StoredPresence::new(stanza, priority, self.clock.unix_seconds(now));
        let initial = match self.sessions.get_mut(&id).and_then(|s| s.bound_mut()) {
            Some(bound) => bound.presence.replace(Box::new(stored)).is_none(),
            None => return,
        };
        if initial {
            self.initial_presence(id, user, &full, priority, now);
        }
    }

    /// What follows a first available presence: probes, the siblings'
    /// presence, pending subscription requests, offline messages.
    fn initial_presence(
        &mut self,
        id: SessionId,
        user: &BareJid,
        full: &FullJid,
        priority: i8,
        now: Instant,
    ) {
        let (probes, pending): (Vec<BareJid>, Vec<Element>) = match self.roster(user) {
            Some(r) => (
                r.items
                    .values()
                    .filter(|i| i.subscription.user_sees_contact())
                    .filter(|i| !self.is_blocked_contact(user, &i.jid))
                    .map(|i| i.jid.clone())
                    .collect(),
                r.pending_in.values().cloned().collect(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        for contact in probes {
            let mut probe = Element::bare("presence", NS_CLIENT);
            xml::set_attr(&mut probe, "type", "probe");
            xml::set_attr(&mut probe, "from", full.as_str());
            xml::set_attr(&mut probe, "to", contact.as_str());
            self.route(probe, Origin::External, now);
        }
        let siblings: Vec<Element> = self
            .resources(user)
            .filter(|s| s.id != id)
            .filter_map(|s| s.bound()?.stored_presence_to(full.as_str()))
            .collect();
        for p in &siblings {
            self.transmit_element(id, p);
        }
        for request in &pending {
            self.transmit_element(id, request);
        }
        if priority >= 0 {
            self.flush_offline(id, user);
        }
    }

    fn presence_to_siblings(&mut self, user: &BareJid, id: SessionId, stanza: &Element) {
        let siblings: SmallVec<[(SessionId, FullJid); 4]> = self
            .resources(user)
            .filter(|s| s.id != id && s.presence().is_some())
            .filter_map(|s| Some((s.id, s.full_jid().cloned()?)))
            .collect();
        for (sid, jid) in siblings {
            let mut copy = stanza.clone();
            xml::set_attr(&mut copy, "to", jid.as_str());
            self.transmit_element(sid, &copy);
        }
    }

    fn presence_to_contacts(&mut self, user: &BareJid, stanza: &Element, now: Instant) {
        let contacts: Vec<BareJid> = match self.roster(user) {
            Some(r) => r
                .items
                .values()
                .filter(|i| i.subscription.contact_sees_user())
                .filter(|i| !self.is_blocked_contact(user, &i.jid))
                .map(|i| i.jid.clone())
                .collect(),
            None => return,
        };
        let Some(base) = Stanza::parse(stanza.clone()) else {
            return;
        };
        for contact in contacts {
            let mut copy = base.clone();
            // The contact's JID is already normalised: no parsing.
            copy.set_to(Jid::from(contact.clone()));
            let target = if !self.config.serves(contact.domain().as_str()) {
                Target::Remote
            } else if contact.node().is_none() {
                Target::Host(contact.domain().as_str().to_owned())
            } else {
                Target::Bare(contact)
            };

            self.route_to(copy, Origin::External, target, now);
        }
    }

    fn presence_to_directed(&mut self, stanza: &Element, directed: Vec<String>, now: Instant) {
        for to in directed {
            let mut copy = stanza.clone();
            xml::set_attr(&mut copy, "to", to);
            self.route(copy, Origin::External, now);
        }
    }

    /// A bound session went away (Prosody §5.9): unavailable to siblings,
    /// contacts and directed recipients; never reflected.
    pub(super) fn run_unavailable_on_unbind(
        &mut self,
        user: &BareJid,
        full: &FullJid,
        was_available: bool,
        directed: Vec<String>,
        status: Option<String>,
        now: Instant,
    ) {
        let mut stanza = Element::bare("presence", NS_CLIENT);
        xml::set_attr(&mut stanza, "type", "unavailable");
        xml::set_attr(&mut stanza, "from", full.as_str());
        if let Some(status) = status {
            stanza.append_child(xml::text_element(
                "status",
                NS_CLIENT,
                &format!("Disconnected: {status}"),
            ));
        }
        if was_available {
            let siblings: SmallVec<[(SessionId, FullJid); 4]> = self
                .resources(user)
                .filter(|s| s.presence().is_some())
                .filter_map(|s| Some((s.id, s.full_jid().cloned()?)))
                .collect();
            for (sid, jid) in siblings {
                let mut copy = stanza.clone();
                xml::set_attr(&mut copy, "to", jid.as_str());
                self.transmit_element(sid, &copy);
            }
            self.presence_to_contacts(user, &stanza, now);
        }
        self.presence_to_directed(&stanza, directed, now);
    }

    /// Presence delivered to a local user (Prosody §4.7, §5.5, §5.7).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn deliver_presence(
        &mut self,
        user: &BareJid,
        ty: PresenceType,
        stanza: Stanza,
        origin: Origin,
        target: Target,
        exists: bool,
        now: Instant,
    ) -> Flow {
        if ty.is_subscription() || ty == PresenceType::Probe {
            if !exists && !self.has_sessions(user) {
                return self.ask_exists_for(user, stanza, origin, target);
            }
            self.inbound_subscription(user, ty, stanza, now);
            return Flow::Done;
        }
        if !matches!(
            ty,
            PresenceType::Available | PresenceType::Unavailable | PresenceType::Error
        ) {
            return Flow::Done;
        }
        let stanza = stanza.element;
        match &target {
            Target::Full(full) => {
                // Delivered even to a resource that is not available.
                if let Some(sid) = self.session_id(full) {
                    self.transmit_element(sid, &stanza);
                }
            }
            _ => {
                let targets: SmallVec<[SessionId; 4]> = self
                    .resources(user)
                    .filter(|s| s.presence().is_some())
                    .map(|s| s.id)
                    .collect();
                self.transmit_many(&targets, &stanza);
            }
        }
        Flow::Done
    }

    /// Inbound subscription stanzas and probes (RFC 6121 §3, §4.3; Prosody
    /// §5.7). The user's roster is loaded.
    fn inbound_subscription(
        &mut self,
        user: &BareJid,
        ty: PresenceType,
        stanza: Stanza,
        now: Instant,
    ) {
        let Some(original_from) = stanza.header.sender().cloned() else {
            return;
        };
        let stanza = stanza.element;
        let contact = original_from.to_bare();
        if contact == *user {
            return;
        }
        let Some(roster) = self.roster(user) else {
            return;
        };
        let item = roster.items.get(&contact).cloned();
        let sub = item.as_ref().map(|i| i.subscription).unwrap_or_default();
        match ty {
            PresenceType::Probe => {
                if !sub.contact_sees_user() {
                    return;
                }
                let replies: Vec<Element> = self
                    .resources(user)
                    .filter_map(|s| s.bound()?.stored_presence_to(original_from.as_str()))
                    .collect();
                if replies.is_empty() {
                    let mut p = Element::bare("presence", NS_CLIENT);
                    xml::set_attr(&mut p, "type", "unavailable");
                    xml::set_attr(&mut p, "from", user.as_str());
                    xml::set_attr(&mut p, "to", original_from.as_str());
                    self.route(p, Origin::External, now);
                }
                for p in replies {
                    self.route(p, Origin::External, now);
                }
            }
            PresenceType::Subscribe => {
                if sub.contact_sees_user() {
                    // Already subscribed: confirm again (RFC 6121 §3.1.3).
                    self.route(
                        subscription_stanza("subscribed", user, &contact),
                        Origin::External,
                        now,
                    );
                    self.send_presence_of_resources(user, contact.as_str(), now);
                    return;
                }
                if item.as_ref().is_some_and(|i| i.approved) {
                    // Pre-approved (RFC 6121 §3.4): accept without asking.
                    let mut item = item.unwrap_or_else(|| RosterItem::new(contact.clone()));
                    item.approved = false;
                    item.subscription = match item.subscription {
                        Subscription::To | Subscription::Both => Subscription::Both,
                        _ => Subscription::From,
                    };
                    self.change_roster(user, RosterChange::SetItem(item));
                    self.push_roster_item(user, &contact);
                    self.route(
                        subscription_stanza("subscribed", user, &contact),
                        Origin::External,
                        now,
                    );
                    self.send_presence_of_resources(user, contact.as_str(), now);
                    return;
                }
                // Prosody acknowledges the request with the user's
                // unavailable presence (reference §5.7 (c); Prosody's
                // blocking.scs expects it).
                let mut ack = Element::bare("presence", NS_CLIENT);
                xml::set_attr(&mut ack, "type", "unavailable");
                xml::set_attr(&mut ack, "from", user.as_str());
                xml::set_attr(&mut ack, "to", contact.as_str());
                self.route(ack, Origin::External, now);
                let Some(roster) = self.roster(user) else {
                    return;
                };
                if roster.pending_in.contains_key(&contact) || self.roster_at_capacity(user) {
                    return;
                }
                let mut request = stanza;
                xml::set_attr(&mut request, "from", contact.as_str());
                xml::set_attr(&mut request, "to", user.as_str());
                self.change_roster(
                    user,
                    RosterChange::SetPending(contact.clone(), request.clone()),
                );
                let targets: SmallVec<[SessionId; 4]> = self
                    .resources(user)
                    .filter(|s| s.presence().is_some())
                    .map(|s| s.id)
                    .collect();
                self.transmit_many(&targets, &request);
            }
            PresenceType::Subscribed => {
                let Some(mut item) = item.filter(|i| i.ask) else {
                    return;
                };
                item.ask = false;
                item.subscription = match item.subscription {
                    Subscription::From | Subscription::Both => Subscription::Both,
                    _ => Subscription::To,
                };
                self.change_roster(user, RosterChange::SetItem(item));
                self.deliver_to_interested(user, &contact, stanza);
                self.push_roster_item(user, &contact);
            }
            PresenceType::Unsubscribe => {
                let had_pending = roster.pending_in.contains_key(&contact);
                if had_pending {
                    self.change_roster(user, RosterChange::RemovePending(contact.clone()));
                }
                let mut changed_item = false;
                if let Some(mut item) = item.filter(|i| i.subscription.contact_sees_user()) {
                    item.subscription = match item.subscription {
                        Subscription::Both => Subscription::To,
                        _ => Subscription::None,
                    };
                    self.change_roster(user, RosterChange::SetItem(item));
                    changed_item = true;
                    // The contact no longer sees the user: say goodbye.
                    self.send_unavailable_from_resources(user, &contact, now);
                }
                if had_pending || changed_item {
                    self.deliver_to_interested(user, &contact, stanza);
                }
                if changed_item {
                    self.push_roster_item(user, &contact);
                }
            }
            PresenceType::Unsubscribed => {
                let Some(mut item) = item.filter(|i| i.ask || i.subscription.user_sees_contact())
                else {
                    return;
                };
                item.ask = false;
                item.subscription = match item.subscription {
                    Subscription::Both | Subscription::From => Subscription::From,
                    _ => Subscription::None,
                };
                self.change_roster(user, RosterChange::SetItem(item));
                self.deliver_to_interested(user, &contact, stanza);
                self.push_roster_item(user, &contact);
            }
            _ => {}
        }
    }

    /// Delivers an inbound subscription notice (with bare addresses) to the
    /// user's interested resources.
    fn deliver_to_interested(&mut self, user: &BareJid, contact: &BareJid, mut stanza: Element) {
        xml::set_attr(&mut stanza, "from", contact.as_str());
        xml::set_attr(&mut stanza, "to", user.as_str());
        let targets: SmallVec<[SessionId; 4]> = self
            .resources(user)
            .filter(|s| s.interested())
            .map(|s| s.id)
            .collect();
        self.transmit_many(&targets, &stanza);
    }

    /// Outbound subscription stanzas (RFC 6121 §3; Prosody §5.6, with the
    /// unchanged-item pushes left out). The user's roster is loaded.
    fn outbound_subscription(
        &mut self,
        user: &BareJid,
        ty: PresenceType,
        contact: BareJid,
        stanza: Element,
        now: Instant,
    ) {
        if contact == *user {
            return;
        }
        let Some(roster) = self.roster(user) else {
            return;
        };
        let item = roster.items.get(&contact).cloned();
        let pending = roster.pending_in.contains_key(&contact);
        let sub = item.as_ref().map(|i| i.subscription).unwrap_or_default();
        // RFC 6121 §3.1.2: routed from the user's bare JID to the contact's
        // bare JID; the payload (status, nick, id) is kept.
        let mut stanza = stanza;
        xml::set_attr(&mut stanza, "from", user.as_str());
        xml::set_attr(&mut stanza, "to", contact.as_str());
        match ty {
            PresenceType::Subscribe => {
                let mut item = item.unwrap_or_else(|| RosterItem::new(contact.clone()));
                if !item.ask && !item.subscription.user_sees_contact() {
                    item.ask = true;
                    self.change_roster(user, RosterChange::SetItem(item));
                    self.push_roster_item(user, &contact);
                }
                self.route(stanza, Origin::External, now);
            }
            PresenceType::Unsubscribe => {
                if let Some(mut item) = item
                    && (item.ask || item.subscription.user_sees_contact())
                {
                    item.ask = false;
                    item.subscription = match item.subscription {
                        Subscription::Both | Subscription::From => Subscription::From,
                        _ => Subscription::None,
                    };
                    self.change_roster(user, RosterChange::SetItem(item));
                    self.push_roster_item(user, &contact);
                }
                self.route(stanza, Origin::External, now);
            }
            PresenceType::Subscribed => {
                if pending {
                    let mut item = item.unwrap_or_else(|| RosterItem::new(contact.clone()));
                    item.approved = false;
                    item.subscription = match item.subscription {
                        Subscription::None | Subscription::From => Subscription::From,
                        _ => Subscription::Both,
                    };
                    let probe = item.subscription.user_sees_contact();
                    self.change_roster(user, RosterChange::RemovePending(contact.clone()));
                    self.change_roster(user, RosterChange::SetItem(item));
                    self.push_roster_item(user, &contact);
                    self.route(stanza, Origin::External, now);
                    self.send_presence_of_resources(user, contact.as_str(), now);
                    if probe {
                        // Prosody probes a contact the user already sees
                        // (reference §5.10); Prosody's blocking.scs expects
                        // the contact's presence again here.
                        let mut p = Element::bare("presence", NS_CLIENT);
                        xml::set_attr(&mut p, "type", "probe");
                        xml::set_attr(&mut p, "from", user.as_str());
                        xml::set_attr(&mut p, "to", contact.as_str());
                        self.route(p, Origin::External, now);
                    }
                } else if !sub.contact_sees_user() {
                    // Pre-approval (RFC 6121 §3.4): remembered, not sent.
                    let mut item = item.unwrap_or_else(|| RosterItem::new(contact.clone()));
                    if !item.approved {
                        item.approved = true;
                        self.change_roster(user, RosterChange::SetItem(item));
                        self.push_roster_item(user, &contact);
                    }
                }
            }
            PresenceType::Unsubscribed => {
                if pending {
                    self.change_roster(user, RosterChange::RemovePending(contact.clone()));
                }
                let mut changed = false;
                if let Some(mut item) = item.clone()
                    && (item.subscription.contact_sees_user() || item.approved)
                {
                    item.approved = false;
                    item.subscription = match item.subscription {
                        Subscription::Both | Subscription::To => Subscription::To,
                        _ => Subscription::None,
                    };
                    self.change_roster(user, RosterChange::SetItem(item));
                    self.push_roster_item(user, &contact);
                    changed = true;
                }
                if pending || sub.contact_sees_user() {
                    self.route(stanza, Origin::External, now);
                }
                if sub.contact_sees_user() {
                    self.send_unavailable_from_resources(user, &contact, now);
                }
                let _ = changed;
            }
            _ => {}
        }
    }

    /// Every available resource sends its current presence to `to`.
    pub(super) fn send_presence_of_resources(&mut self, user: &BareJid, to: &str, now: Instant) {
        let presences: Vec<Element> = self
            .resources(user)
            .filter_map(|s| s.bound()?.stored_presence_to(to))
            .collect();
        for p in presences {
            self.route(p, Origin::External, now);
        }
    }

    /// Every available resource sends `unavailable` to `contact`.
    pub(super) fn send_unavailable_from_resources(
        &mut self,
        user: &BareJid,
        contact: &BareJid,
        now: Instant,
    ) {
        let fulls: SmallVec<[FullJid; 4]> = self
            .resources(user)
            .filter(|s| s.presence().is_some())
            .filter_map(|s| s.full_jid().cloned())
            .collect();
        for full in fulls {
            let mut p = Element::bare("presence", NS_CLIENT);
            xml::set_attr(&mut p, "type", "unavailable");
            xml::set_attr(&mut p, "from", full.as_str());
            xml::set_attr(&mut p, "to", contact.as_str());
            self.route(p, Origin::External, now);
        }
    }

    /// Presence to a served domain (Prosody §5.8).
    pub(super) fn presence_to_host(
        &mut self,
        ty: PresenceType,
        stanza: Stanza,
        origin: Origin,
        now: Instant,
    ) {
        let Some(from) = stanza.header.sender().cloned() else {
            return;
        };
        let Some(host) = stanza
            .header
            .recipient()
            .map(|j| j.domain().as_str().to_owned())
        else {
            return;
        };
        let stanza = stanza.element;
        let Ok(host_jid) = BareJid::new(&host) else {
            return;
        };
        match ty {
            PresenceType::Probe => {
                let mut p = Element::bare("presence", NS_CLIENT);
                xml::set_attr(&mut p, "from", host.as_str());
                xml::set_attr(&mut p, "to", from.to_bare().as_str());
                if let Some(id) = stanza.attr("id") {
                    xml::set_attr(&mut p, "id", id);
                }
                self.route(p, Origin::External, now);
            }
            PresenceType::Subscribe => {
                let contact = from.to_bare();
                self.route(
                    subscription_stanza("subscribed", &host_jid, &contact),
                    Origin::External,
                    now,
                );
                let mut p = Element::bare("presence", NS_CLIENT);
                xml::set_attr(&mut p, "from", host.as_str());
                xml::set_attr(&mut p, "to", contact.as_str());
                self.route(p, Origin::External, now);
            }
            _ => {
                if self.extensions.presence_to_host {
                    self.emit_stanza_event(origin, stanza);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_priority;
    use minidom::Element;

    fn pres(p: &str) -> Element {
        let mut e = Element::bare("presence", "jabber:client");
        e.append_child(crate::xml::text_element("priority", "jabber:client", p));
        e
    }

    #[test]
    fn priorities() {
        assert_eq!(
            parse_priority(&Element::bare("presence", "jabber:client")),
            0
        );
        assert_eq!(parse_priority(&pres("5")), 5);
        assert_eq!(parse_priority(&pres("+5")), 5);
        assert_eq!(parse_priority(&pres("-1")), -1);
        assert_eq!(parse_priority(&pres(" 7 ")), 7);
        assert_eq!(parse_priority(&pres("200")), 127);
        assert_eq!(parse_priority(&pres("-200")), -128);
        assert_eq!(parse_priority(&pres("99999999999999999999999")), 127);
        assert_eq!(parse_priority(&pres("abc")), 0);
        assert_eq!(parse_priority(&pres("")), 0);
        assert_eq!(parse_priority(&pres("-")), 0);
    }
}
