//! One record per account (bare JID): everything the manager keeps per user.
//!
//! An [`Account`] exists while anything needs it — a bound session, work
//! waiting on storage, or roster writes not yet acknowledged — and is
//! removed as a whole by [`SessionManager::tidy_account`] when nothing does.

use std::collections::VecDeque;

use jid::BareJid;
use smallvec::SmallVec;

use super::SessionManager;
use super::blocking::CachedBlocklist;
use super::routing::Work;
use crate::ids::{RequestId, SessionId};
use crate::roster::Roster;
use crate::storage::Request;

/// Everything the manager keeps for one bare JID.
#[derive(Debug, Default)]
pub(super) struct Account {
    /// Bound sessions, in bind order.
    pub(super) sessions: SmallVec<[SessionId; 2]>,
    /// Work waiting for storage, and work queued behind it, in order.
    /// `None` while nothing waits (the fast path runs work at once); boxed
    /// so that an idle account keeps no room for it.
    pub(super) queue: Option<Box<UserQueue>>,
    /// The cached roster (Prosody's `session.roster`), once loaded.
    pub(super) roster: Option<CachedRoster>,
    /// Sessions of this account that read no further until the queue drains.
    pub(super) blocked: SmallVec<[SessionId; 1]>,
    /// The cached blocklist (XEP-0191), once loaded. Boxed: an account
    /// without one keeps no room for it.
    pub(super) blocklist: Option<Box<CachedBlocklist>>,
}

impl Account {
    /// Whether nothing needs this record any more.
    fn is_unused(&self) -> bool {
        self.sessions.is_empty()
            && self.queue.is_none()
            && self.roster.is_none()
            && self.blocklist.is_none()
            && self.blocked.is_empty()
    }
}

/// Work queued for one user while a request is in flight.
#[derive(Debug, Default)]
pub(super) struct UserQueue {
    /// Suspended work whose requests are outstanding (normally one).
    pub(super) waiting: SmallVec<[(RequestId, Work); 1]>,
    /// Work that arrived meanwhile, in order.
    pub(super) backlog: VecDeque<Work>,
}

/// A roster cached in the manager.
#[derive(Debug, Default)]
pub(super) struct CachedRoster {
    pub(super) roster: Roster,
    /// Writes not yet acknowledged: the one sent to storage plus those
    /// queued behind it.
    pub(super) writes_in_flight: u32,
    /// Writes waiting for the one in flight to be acknowledged. Storage sees
    /// one write per user at a time, in version order, so a store that
    /// answers out of order cannot apply them out of order.
    pub(super) queued_writes: VecDeque<Request>,
    /// Loading failed: used empty, never written back.
    pub(super) broken: bool,
}

impl SessionManager {
    /// The account record of `user`, created on demand.
    pub(super) fn account_mut(&mut self, user: &BareJid) -> &mut Account {
        self.accounts.entry(user.clone()).or_default()
    }

    /// The bound sessions of `user`, in bind order.
    pub(super) fn bound_sessions(&self, user: &BareJid) -> &[SessionId] {
        self.accounts
            .get(user)
            .map_or(&[], |a| a.sessions.as_slice())
    }

    /// Whether `user` has a bound session (and so is known to exist).
    pub(super) fn has_sessions(&self, user: &BareJid) -> bool {
        self.accounts
            .get(user)
            .is_some_and(|a| !a.sessions.is_empty())
    }

    /// Whether work for `user` waits on storage.
    pub(super) fn has_queue(&self, user: &BareJid) -> bool {
        self.open_queues > 0 && self.accounts.get(user).is_some_and(|a| a.queue.is_some())
    }

    /// The user's queue, if work waits.
    pub(super) fn queue_mut(&mut self, user: &BareJid) -> Option<&mut UserQueue> {
        self.accounts
            .get_mut(user)
            .and_then(|a| a.queue.as_deref_mut())
    }

    /// The user's queue, opened if needed.
    pub(super) fn open_queue(&mut self, user: &BareJid) -> &mut UserQueue {
        let account = self.accounts.entry(user.clone()).or_default();
        if account.queue.is_none() {
            self.open_queues = self.open_queues.saturating_add(1);
        }
        account.queue.get_or_insert_with(Box::default)
    }

    /// Forgets the user's (empty) queue; returns the sessions it blocked.
    pub(super) fn close_queue(&mut self, user: &BareJid) -> SmallVec<[SessionId; 1]> {
        let Some(account) = self.accounts.get_mut(user) else {
            return SmallVec::new();
        };
        if account.queue.take().is_some() {
            self.open_queues = self.open_queues.saturating_sub(1);
        }
        std::mem::take(&mut account.blocked)
    }

    /// The cached roster of a user, if loaded.
    pub(super) fn cached(&self, user: &BareJid) -> Option<&CachedRoster> {
        self.accounts.get(user).and_then(|a| a.roster.as_ref())
    }

    /// The cached roster of a user, mutable, if loaded.
    pub(super) fn cached_mut(&mut self, user: &BareJid) -> Option<&mut CachedRoster> {
        self.accounts.get_mut(user).and_then(|a| a.roster.as_mut())
    }

    /// Drops what nobody needs any more: the cached roster once the user
    /// has no sessions, no queued work and no unacknowledged writes, then
    /// the whole record.
    pub(super) fn tidy_account(&mut self, user: &BareJid) {
        let Some(account) = self.accounts.get_mut(user) else {
            return;
        };
        if account.sessions.is_empty()
            && account.queue.is_none()
            && account
                .roster
                .as_ref()
                .is_some_and(|c| c.writes_in_flight == 0)
        {
            account.roster = None;
        }
        let drop_blocklist = account.sessions.is_empty()
            && account.queue.is_none()
            && account
                .blocklist
                .as_ref()
                .is_some_and(|c| c.writes_in_flight == 0);
        if drop_blocklist {
            self.uncache_blocklist(user);
        }
        let Some(account) = self.accounts.get_mut(user) else {
            return;
        };
        if account.is_unused() {
            self.accounts.remove(user);
        }
    }
}
