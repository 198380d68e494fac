//! The roster model (RFC 6121 §2): items, subscription states, pending
//! requests and versions. Storage sees rosters through requests; the
//! manager's roster handling lives in `manager/roster.rs`.

use std::collections::{BTreeMap, BTreeSet};

use jid::BareJid;
use minidom::Element;

use crate::ns::NS_ROSTER;
use crate::xml;

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
    /// [`Request::RosterChanged`](crate::storage::Request::RosterChanged)).
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
