//! XEP-0352 client state indication (`urn:xmpp:csi:0`): the hold stage in
//! front of a bound session's output.
//!
//! # The output seam
//!
//! Every stanza the manager delivers to a bound session goes through two
//! steps, in this order:
//!
//! 1. [`SessionManager::deliver_bytes`] — the **hold stage**. While the
//!    client is inactive, the stanza is classified
//!    ([`Config::csi_classifier`](crate::Config::csi_classifier), see
//!    [`crate::csi`]) and either held in the session's
//!    [`CsiQueue`](crate::csi::CsiQueue) or sent together with everything
//!    held before it.
//! 2. [`SessionManager::emit_transmit`] — the **send point**: the bytes
//!    become an [`Output::Transmit`] for the embedder. This is the single
//!    place where a stanza counts as handed to the session's output, so
//!    stream management (XEP-0198) counts and queues it there; held
//!    stanzas are not "sent" until a flush passes them on.
//!
//! The byte-forwarding fast path never forwards to an inactive session (it
//! falls back to the element path), so nothing bypasses the hold stage.
//!
//! A flush happens when an important stanza arrives, when the queue reaches
//! [`Config::csi_queue_max`](crate::Config::csi_queue_max), when the client
//! sends anything (before its bytes are read), on `<active/>` and before the
//! session's stream is closed.

use bytes::Bytes;
use minidom::Element;

use super::SessionManager;
use crate::csi::{CsiClass, CsiQueue};
use crate::ids::SessionId;
use crate::output::Output;
use crate::xml::StanzaKind;

impl SessionManager {
    /// Step 1 of the output seam (see the module docs): `data` is the
    /// serialised `stanza`, for `session`.
    pub(super) fn deliver_bytes(&mut self, session: SessionId, data: Bytes, stanza: &Element) {
        if self.inactive_sessions == 0 {
            self.emit_transmit(session, data);
            return;
        }
        let classify = self.config.csi_classifier;
        let max = self.config.csi_queue_max;
        let Some(queue) = self
            .sessions
            .get_mut(&session)
            .and_then(|s| s.bound_mut())
            .and_then(|b| b.csi.as_deref_mut())
        else {
            self.emit_transmit(session, data);
            return;
        };
        let key = match classify(stanza) {
            CsiClass::Flush => {
                self.flush_held(session);
                self.emit_transmit(session, data);
                return;
            }
            CsiClass::Hold => None,
            CsiClass::Replace => Some(
                format!(
                    "{}\u{0}{}",
                    stanza.name(),
                    stanza.attr("from").unwrap_or_default()
                )
                .into_boxed_str(),
            ),
        };
        queue.hold(data, key);
        if queue.len() >= max {
            self.flush_held(session);
        }
    }

    /// Step 2 of the output seam: the stanza is handed to the session's
    /// output. Stream management counts it here.
    pub(super) fn emit_transmit(&mut self, session: SessionId, data: Bytes) {
        match StanzaKind::of_bytes(&data) {
            Some(kind) => self.deliver_to_session(session, data, kind),
            None => self.emit(Output::Transmit { session, data }),
        }
    }

    /// Sends everything held for `session`, in order.
    pub(super) fn flush_held(&mut self, session: SessionId) {
        let held: Vec<Bytes> = match self
            .sessions
            .get_mut(&session)
            .and_then(|s| s.bound_mut())
            .and_then(|b| b.csi.as_deref_mut())
        {
            Some(queue) if queue.len() > 0 => queue.drain().collect(),
            _ => return,
        };
        for data in held {
            self.emit_transmit(session, data);
        }
    }

    /// `<inactive/>` (`active == false`) or `<active/>` from a bound client.
    pub(super) fn set_client_state(&mut self, id: SessionId, active: bool) {
        let Some(bound) = self.sessions.get_mut(&id).and_then(|s| s.bound_mut()) else {
            return;
        };
        match (active, bound.csi.is_some()) {
            (false, false) => {
                bound.csi = Some(Box::default());
                self.inactive_sessions = self.inactive_sessions.saturating_add(1);
            }
            (true, true) => {
                self.flush_held(id);
                if let Some(bound) = self.sessions.get_mut(&id).and_then(|s| s.bound_mut()) {
                    bound.csi = None;
                }
                self.inactive_sessions = self.inactive_sessions.saturating_sub(1);
            }
            _ => {}
        }
    }

    /// Whether `session` is inactive (its output is held).
    pub(super) fn is_inactive(&self, session: SessionId) -> bool {
        self.inactive_sessions > 0
            && self
                .sessions
                .get(&session)
                .and_then(|s| s.bound())
                .is_some_and(|b| b.csi.is_some())
    }

    /// The client sent `data` (TCP bytes or one WebSocket message): whatever
    /// is held goes out first, before the input is read.
    pub(super) fn client_activity(&mut self, id: SessionId, data: &[u8]) {
        if !data.is_empty() && self.is_inactive(id) {
            self.flush_held(id);
        }
    }

    /// A session's bound state is going away: forget its client state.
    pub(super) fn csi_unbound(&mut self, queue: Option<Box<CsiQueue>>) {
        if queue.is_some() {
            self.inactive_sessions = self.inactive_sessions.saturating_sub(1);
        }
    }
}
