//! XEP-0191 blocking command (`urn:xmpp:blocking`).
//!
//! The blocklist is cached in the [`Account`](super::account::Account)
//! record like the roster: loaded with [`Request::LoadBlocklist`] when a
//! resource binds (its session reads no further until it is there) or when
//! a stanza arrives for an account whose list is not cached, kept while the
//! account has sessions or work, and written with
//! [`Request::BlocklistChanged`], one write per account at a time, in order.
//! A list that failed to load is used empty and never written back.
//!
//! Routing (§3.3, with XEP-0016's JID matching: an item blocks the full JID,
//! the bare JID, the domain or `domain/resource` it names):
//!
//! * from a blocked JID to the user: messages and iq get/set are answered
//!   `service-unavailable`, everything else is dropped;
//! * from the user's client to a blocked JID: messages and iqs are refused
//!   with `not-acceptable` and `<blocked xmlns='urn:xmpp:blocking:errors'/>`
//!   (errors and results are dropped), presence is dropped; presence
//!   broadcasts, probes and the unavailable presence at logout skip blocked
//!   contacts.
//!
//! Blocking sends unavailable presence from the user's available resources
//! to each newly blocked JID the user shares presence with (roster `from` or
//! `both`); unblocking sends them the current presence. Pushes go to the
//! sessions that fetched the list.

use std::collections::{HashSet, VecDeque};
use std::time::Instant;

use jid::{BareJid, Jid};
use minidom::Element;
use smallvec::SmallVec;

use super::routing::Origin;
use super::{Pending, SessionManager};
use crate::error::{ErrorType, StanzaError, StanzaErrorCondition};
use crate::ids::SessionId;
use crate::stanza::{IqType, Stanza, StanzaType};
use crate::storage::{BlocklistChange, Request};
use crate::xml::{self, NS_BLOCKING, NS_BLOCKING_ERRORS};

/// A blocklist cached in the manager.
#[derive(Debug, Default)]
pub(super) struct CachedBlocklist {
    /// The blocked JIDs, in the order they were blocked.
    jids: Vec<Jid>,
    /// The same JIDs as strings, for matching.
    lookup: HashSet<Box<str>>,
    /// Writes not yet acknowledged: the one sent plus those queued.
    pub(super) writes_in_flight: u32,
    /// Writes waiting for the one in flight.
    pub(super) queued_writes: VecDeque<Request>,
    /// Loading failed: used empty, never written back.
    broken: bool,
}

impl CachedBlocklist {
    /// A list as loaded (`None`: loading failed).
    pub(super) fn loaded(jids: Option<Vec<Jid>>) -> Self {
        let broken = jids.is_none();
        let mut list = Self {
            broken,
            ..Self::default()
        };
        list.apply(&BlocklistChange::Block(jids.unwrap_or_default()));
        list
    }

    /// Whether nothing is blocked.
    pub(super) fn is_empty(&self) -> bool {
        self.jids.is_empty()
    }

    fn apply(&mut self, change: &BlocklistChange) {
        change.apply(&mut self.jids);
        self.lookup = self.jids.iter().map(|j| j.as_str().into()).collect();
    }

    /// Whether an item blocks `jid` (XEP-0016 §2.1 matching: the full
    /// JID, the bare JID, `domain/resource` or the domain).
    pub(super) fn blocks(&self, jid: &Jid) -> bool {
        if self.lookup.is_empty() {
            return false;
        }
        let domain = jid.domain().as_str();
        if self.lookup.contains(jid.as_str()) || self.lookup.contains(domain) {
            return true;
        }
        if jid.resource().is_some() && self.lookup.contains(jid.to_bare().as_str()) {
            return true;
        }
        match (jid.node(), jid.resource()) {
            (Some(_), Some(resource)) => {
                let domain_resource = format!("{domain}/{}", resource.as_str());
                self.lookup.contains(domain_resource.as_str())
            }
            _ => false,
        }
    }
}

/// The `not-acceptable` reply to a stanza for a blocked JID (§3.3).
fn blocked_reply(original: &Element) -> Option<Element> {
    let error = StanzaError::with_text(
        ErrorType::Cancel,
        StanzaErrorCondition::NotAcceptable,
        "You have blocked this JID",
    );
    let mut reply = error.reply_to(original)?;
    if let Some(el) = reply.get_child_mut("error", xml::NS_CLIENT) {
        el.append_child(Element::bare("blocked", NS_BLOCKING_ERRORS));
    }
    Some(reply)
}

/// The `<item jid='…'/>` children of a block or unblock element; `Err`
/// when one is not a valid JID.
fn items(payload: &Element) -> Result<Vec<Jid>, ()> {
    let mut jids: Vec<Jid> = Vec::new();
    for item in payload.children().filter(|c| c.is("item", NS_BLOCKING)) {
        let jid = item
            .attr("jid")
            .and_then(|j| crate::stanza::parse_jid(j).ok())
            .ok_or(())?;
        if !jids.contains(&jid) {
            jids.push(jid);
        }
    }
    Ok(jids)
}

fn item_elements(parent: &mut Element, jids: &[Jid]) {
    for jid in jids {
        let mut item = Element::bare("item", NS_BLOCKING);
        xml::set_attr(&mut item, "jid", jid.as_str());
        parent.append_child(item);
    }
}

impl SessionManager {
    /// The cached blocklist of `user`, if loaded.
    pub(super) fn blocklist(&self, user: &BareJid) -> Option<&CachedBlocklist> {
        self.accounts.get(user).and_then(|a| a.blocklist.as_deref())
    }

    /// Whether `user`'s cached blocklist blocks `jid` (never when no list
    /// is cached).
    pub(super) fn is_blocked(&self, user: &BareJid, jid: &Jid) -> bool {
        self.nonempty_blocklists > 0 && self.blocklist(user).is_some_and(|b| b.blocks(jid))
    }

    /// Whether `user`'s cached blocklist blocks the contact `jid`.
    pub(super) fn is_blocked_contact(&self, user: &BareJid, jid: &BareJid) -> bool {
        self.nonempty_blocklists > 0
            && self.blocklist(user).is_some_and(|b| {
                b.lookup.contains(jid.as_str()) || b.lookup.contains(jid.domain().as_str())
            })
    }

    /// Whether `user` blocks anybody (per its cached list).
    pub(super) fn blocks_anyone(&self, user: &BareJid) -> bool {
        self.nonempty_blocklists > 0 && self.blocklist(user).is_some_and(|b| !b.is_empty())
    }

    /// Caches a loaded blocklist.
    pub(super) fn cache_blocklist(&mut self, user: &BareJid, list: CachedBlocklist) {
        let nonempty = !list.is_empty();
        let old = self.account_mut(user).blocklist.replace(Box::new(list));
        self.count_blocklist(old.is_some_and(|o| !o.is_empty()), nonempty);
    }

    /// Forgets a cached blocklist (the account is being tidied).
    pub(super) fn uncache_blocklist(&mut self, user: &BareJid) {
        let old = self.accounts.get_mut(user).and_then(|a| a.blocklist.take());
        self.count_blocklist(old.is_some_and(|o| !o.is_empty()), false);
    }

    fn count_blocklist(&mut self, was_nonempty: bool, nonempty: bool) {
        match (was_nonempty, nonempty) {
            (false, true) => self.nonempty_blocklists = self.nonempty_blocklists.saturating_add(1),
            (true, false) => self.nonempty_blocklists = self.nonempty_blocklists.saturating_sub(1),
            _ => {}
        }
    }

    /// Whether a stanza for `user` from `sender` must be refused (the
    /// inbound half). Answers it if so.
    pub(super) fn refuse_inbound(&mut self, user: &BareJid, stanza: &Stanza, now: Instant) -> bool {
        let Some(sender) = stanza.header.sender() else {
            return false;
        };
        if !self.is_blocked(user, sender) || sender.to_bare() == *user {
            return false;
        }
        let answer = match stanza.header.ty {
            StanzaType::Message(_) => true,
            StanzaType::Iq(ty) => matches!(ty, IqType::Get | IqType::Set),
            StanzaType::Presence(_) => false,
        };
        if answer {
            self.bounce(&stanza.element, StanzaError::service_unavailable(), now);
        }
        true
    }

    /// Whether a stanza a client of `user` sends to `to` must be refused
    /// (the outbound half). Answers the client if so.
    pub(super) fn refuse_outbound(
        &mut self,
        id: SessionId,
        user: &BareJid,
        to: &Jid,
        stanza: &Stanza,
    ) -> bool {
        if !self.is_blocked(user, to) {
            return false;
        }
        let answer = match stanza.header.ty {
            StanzaType::Message(_) => true,
            StanzaType::Iq(ty) => matches!(ty, IqType::Get | IqType::Set),
            StanzaType::Presence(_) => false,
        };
        if answer && let Some(reply) = blocked_reply(&stanza.element) {
            self.transmit_element(id, &reply);
        }
        true
    }

    /// A blocking iq from one of the user's sessions (§3.1–§3.4). The
    /// blocklist and the roster are loaded (this runs in the user's queue).
    pub(super) fn blocking_iq(
        &mut self,
        id: SessionId,
        user: &BareJid,
        ty: IqType,
        iq: &Element,
        now: Instant,
    ) {
        let Some(payload) = xml::first_child(iq) else {
            return;
        };
        match (ty, payload.name()) {
            (IqType::Get, "blocklist") => self.blocklist_get(id, user, iq),
            (IqType::Set, "block") => self.block(id, user, iq, now),
            (IqType::Set, "unblock") => self.unblock_jids(id, user, iq, now),
            _ => self.send_error_to_session(id, iq, StanzaError::service_unavailable()),
        }
    }

    fn blocklist_get(&mut self, id: SessionId, user: &BareJid, iq: &Element) {
        let mut list = Element::bare("blocklist", NS_BLOCKING);
        if let Some(cached) = self.blocklist(user) {
            item_elements(&mut list, &cached.jids);
        }
        if let Some(bound) = self.sessions.get_mut(&id).and_then(|s| s.bound_mut()) {
            bound.blocklist_interested = true;
        }
        self.transmit_element(id, &xml::iq_result(iq, Some(list)));
    }

    fn block(&mut self, id: SessionId, user: &BareJid, iq: &Element, now: Instant) {
        let jids = match xml::first_child(iq).map_or(Err(()), items) {
            Ok(jids) if jids.is_empty() => {
                let error = StanzaError::bad_request("No JID to block");
                self.send_error_to_session(id, iq, error);
                return;
            }
            Ok(jids) => jids,
            Err(()) => {
                let error = StanzaError::new(ErrorType::Modify, StanzaErrorCondition::JidMalformed);
                self.send_error_to_session(id, iq, error);
                return;
            }
        };
        let Some(cached) = self.blocklist(user) else {
            return;
        };
        let new: Vec<Jid> = jids
            .into_iter()
            .filter(|j| !cached.jids.contains(j))
            .collect();
        if cached.jids.len().saturating_add(new.len()) > self.config.max_blocklist_items {
            let error = StanzaError::with_text(
                ErrorType::Wait,
                StanzaErrorCondition::ResourceConstraint,
                "Too many blocked JIDs",
            );
            self.send_error_to_session(id, iq, error);
            return;
        }
        self.transmit_element(id, &xml::iq_result(iq, None));
        if new.is_empty() {
            return;
        }
        // Unavailable first: once the list changes, nothing reaches them.
        for jid in &new {
            if self.shares_presence_with(user, &jid.to_bare()) {
                self.send_unavailable_to(user, jid, now);
            }
        }
        let mut push = Element::bare("block", NS_BLOCKING);
        item_elements(&mut push, &new);
        self.change_blocklist(user, BlocklistChange::Block(new));
        self.push_blocklist(user, push);
    }

    fn unblock_jids(&mut self, id: SessionId, user: &BareJid, iq: &Element, now: Instant) {
        let Ok(jids) = xml::first_child(iq).map_or(Err(()), items) else {
            let error = StanzaError::new(ErrorType::Modify, StanzaErrorCondition::JidMalformed);
            self.send_error_to_session(id, iq, error);
            return;
        };
        let Some(cached) = self.blocklist(user) else {
            return;
        };
        let (removed, change) = if jids.is_empty() {
            (cached.jids.clone(), BlocklistChange::UnblockAll)
        } else {
            let removed: Vec<Jid> = jids
                .into_iter()
                .filter(|j| cached.jids.contains(j))
                .collect();
            (removed.clone(), BlocklistChange::Unblock(removed))
        };
        self.transmit_element(id, &xml::iq_result(iq, None));
        if removed.is_empty() {
            return;
        }
        let mut push = Element::bare("unblock", NS_BLOCKING);
        if !matches!(change, BlocklistChange::UnblockAll) {
            item_elements(&mut push, &removed);
        }
        self.change_blocklist(user, change);
        self.push_blocklist(user, push);
        for jid in &removed {
            if self.shares_presence_with(user, &jid.to_bare()) {
                self.send_presence_of_resources(user, jid.as_str(), now);
            }
        }
    }

    /// Every available resource of `user` sends unavailable to `to`.
    fn send_unavailable_to(&mut self, user: &BareJid, to: &Jid, now: Instant) {
        let fulls: SmallVec<[String; 4]> = self
            .resources(user)
            .filter(|s| s.presence().is_some())
            .filter_map(|s| s.full_jid().map(|f| f.as_str().to_owned()))
            .collect();
        for full in fulls {
            let mut p = Element::bare("presence", xml::NS_CLIENT);
            xml::set_attr(&mut p, "type", "unavailable");
            xml::set_attr(&mut p, "from", full);
            xml::set_attr(&mut p, "to", to.as_str());
            self.route(p, Origin::External, now);
        }
    }

    /// A push (`<block/>` or `<unblock/>`) to every session that fetched
    /// the list.
    fn push_blocklist(&mut self, user: &BareJid, payload: Element) {
        let push = self.push_iq(payload);
        let targets: SmallVec<[SessionId; 4]> = self
            .resources(user)
            .filter(|s| s.bound().is_some_and(|b| b.blocklist_interested))
            .map(|s| s.id)
            .collect();
        self.transmit_many(&targets, &push);
    }

    /// Applies a change to the cached list and writes it, in order.
    fn change_blocklist(&mut self, user: &BareJid, change: BlocklistChange) {
        let Some(cached) = self
            .accounts
            .get_mut(user)
            .and_then(|a| a.blocklist.as_mut())
        else {
            return;
        };
        let was_nonempty = !cached.is_empty();
        cached.apply(&change);
        let nonempty = !cached.is_empty();
        let write = if cached.broken {
            None
        } else {
            let request = Request::BlocklistChanged {
                account: crate::storage::account_of(user),
                change,
            };
            let idle = cached.writes_in_flight == 0;
            cached.writes_in_flight = cached.writes_in_flight.saturating_add(1);
            if idle {
                Some(request)
            } else {
                cached.queued_writes.push_back(request);
                None
            }
        };
        self.count_blocklist(was_nonempty, nonempty);
        if let Some(request) = write {
            self.request(Pending::BlocklistWrite(user.clone()), request);
        }
    }

    /// A blocklist write was acknowledged: the next one goes out.
    pub(super) fn blocklist_written(&mut self, user: &BareJid) {
        let next = self
            .accounts
            .get_mut(user)
            .and_then(|a| a.blocklist.as_mut())
            .and_then(|cached| {
                cached.writes_in_flight = cached.writes_in_flight.saturating_sub(1);
                cached.queued_writes.pop_front()
            });
        if let Some(request) = next {
            self.new_request(Pending::BlocklistWrite(user.clone()), request);
        }
        self.tidy_account(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> Jid {
        Jid::new(s).expect("valid JID")
    }

    #[test]
    fn matching_follows_xep_0016() {
        let list = CachedBlocklist::loaded(Some(vec![
            jid("bare@example.com"),
            jid("full@example.com/res"),
            jid("evil.example"),
            jid("host.example/only"),
        ]));
        for (who, blocked) in [
            ("bare@example.com", true),
            ("bare@example.com/any", true),
            ("full@example.com", false),
            ("full@example.com/res", true),
            ("full@example.com/other", false),
            ("evil.example", true),
            ("anyone@evil.example/x", true),
            ("someone@host.example/only", true),
            ("someone@host.example/other", false),
            ("host.example/only", true),
            ("other@example.com", false),
        ] {
            assert_eq!(list.blocks(&jid(who)), blocked, "{who}");
        }
        assert!(!CachedBlocklist::loaded(None).blocks(&jid("a@b")));
    }
}
