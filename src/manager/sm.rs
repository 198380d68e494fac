//! XEP-0198 stream management: acknowledgements, hibernation, resumption.
//!
//! # Counting
//!
//! `h` counts the stanzas (`<message/>`, `<presence/>`, `<iq/>`, never
//! nonzas) handled from the client since `<enable/>`, mod 2^32: each one is
//! counted when it is taken from the stream, on the element path
//! ([`SessionManager::sm_handled`] from the stanza step) and on the byte
//! forwarding path alike. Outbound stanzas are counted, and kept until the
//! client acknowledges them, in exactly one place:
//! [`SessionManager::deliver_to_session`], through which every stanza's
//! bytes reach a session's output (element path, byte forwarding, offline
//! flush, presence, roster pushes, the public `send`).
//!
//! **Seam for held stanzas (CSI, XEP-0352).** Anything that holds stanzas
//! back from a session must do it *in front of*
//! [`SessionManager::deliver_to_session`] and call it when it releases
//! them: a held stanza is not sent, so it is neither counted nor in the
//! unacknowledged queue; on release it is counted like any other.
//!
//! The server asks for an acknowledgement (`<r/>`) once
//! [`Config::sm_request_ack_after`](crate::Config::sm_request_ack_after)
//! stanzas are unacknowledged and no request is outstanding. An `<a h>`
//! acknowledging more than was sent closes the stream with
//! `undefined-condition` and `<handled-count-too-high/>` (§4).
//!
//! # Hibernation and resumption
//!
//! When the transport of a resumable session goes away
//! ([`SessionManager::handle_disconnect`], which the embedder also calls on
//! a read error or its own read timeout), the session finishes the input
//! it had read and then hibernates: it stays bound, available and in the
//! routing index, contacts see no unavailable presence, and stanzas for it
//! are counted and queued (they count as sent: on resume every
//! unacknowledged one is retransmitted). A session the client closed
//! cleanly (`</stream:stream>`) or that we closed with a stream error does
//! not hibernate.
//!
//! `<resume previd h/>` on a new stream (after SASL, before bind) of the
//! same account moves the resource onto the **new connection's
//! [`SessionId`]**: the embedder keeps mapping one handle to one socket.
//! [`Event::Resumed`] names both handles; the old one gets
//! [`Event::Closed`] (and, if its transport was still open, the stream
//! error `conflict` and [`Output::Close`]). Counting continues.
//!
//! # Expiry
//!
//! After the resume timeout, when more than
//! [`Config::sm_max_queue`](crate::Config::sm_max_queue) stanzas wait, or
//! when the embedder ends it ([`SessionManager::end_hibernation`]), a
//! hibernating session ends like a disconnect (unavailable presence to contacts and
//! directed-presence recipients). Whenever a stream-management session ends
//! with unacknowledged stanzas (expiry, overflow, or any other close), they
//! are handled so that nothing is lost silently:
//!
//! * a `<message/>` of type `chat`, `normal` (or none) with a `<body/>` is
//!   delivered again to the account's bare JID: to its other available
//!   resources if any, otherwise to offline storage (the usual path);
//! * an `<iq/>` get or set gets the error `service-unavailable` (type
//!   `cancel`) to its sender — what the router answers for an iq to a
//!   resource that is not there (RFC 6120 §10.5.3.1), so it tells the
//!   sender nothing about the recipient's network availability, which
//!   `recipient-unavailable` would (RFC 6120 §8.3.3.13);
//! * everything else (presence, errors, results, groupchat, headlines,
//!   messages without a body) is dropped.
//!
//! A *connected* session that exceeds the queue bound keeps its stream: its
//! stanzas were written, so it only stops keeping them (counting goes on,
//! acknowledgements stay checked) and is no longer resumable; if its
//! transport then drops, it ends without hibernating and stanzas that were
//! in flight are not recovered — the guarantee of a session without stream
//! management.
//!
//! Tokens of ended resumable sessions are remembered (bounded by count and
//! age in `Config`) with their last `h`, so a late `<resume/>` gets
//! `<failed h=…><item-not-found/></failed>`.
//!
//! # Export seam (resume on another node)
//!
//! Everything a resume needs is the resource's bound state plus its
//! [`SmState`](crate::sm::SmState): the full JID, the stored presence (with
//! priority and stamp), `interested`, the directed-presence list, and the
//! stream-management state — token, resume timeout, `inbound`/`outbound`/
//! `acked` counters and the unacknowledged stanzas as bytes with their
//! kind — plus the hibernation deadline as a wall-clock time (an `Instant`
//! does not cross processes). None of it refers to other sessions or to
//! the manager's tables, so an export would serialise these values and an
//! import on another node would re-create the bound session in its
//! account record and continue at `<resumed/>`. The token would then have
//! to name the node (e.g. a prefix) so that the node receiving `<resume/>`
//! knows where to fetch the state from.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use jid::BareJid;
use minidom::Element;

use super::SessionManager;
use super::routing::{Origin, Target, Work};
use super::work::Task;
use crate::error::{StanzaError, StreamError, StreamErrorCondition};
use crate::ids::SessionId;
use crate::negotiation::Ctx;
use crate::ns::NS_STANZAS;
use crate::output::{Event, HibernationEnd, Output};
use crate::session::{Phase, SessionKind, Transport};
use crate::sm::{SmState, Unacked};
use crate::stanza::{IqType, MessageType, Stanza, StanzaType};
use crate::stream::{self, StreamEvent, StreamReader, XmlLimits};
use crate::xml::{self, NS_CLIENT, NS_SM, NS_STREAMS, StanzaKind};

/// The server's acknowledgement request.
const REQUEST: &[u8] = b"<r xmlns='urn:xmpp:sm:3'/>";

/// Characters of a resumption token (URL-safe base64, 144 bits).
const TOKEN_LEN: usize = 24;

/// A resumption token that is no longer valid, remembered for a while.
#[derive(Debug)]
pub(super) struct ExpiredToken {
    token: Box<str>,
    account: BareJid,
    h: u32,
    at: Instant,
}

impl SessionManager {
    /// **The** point where a stanza's bytes are handed to a session's
    /// output. With stream management it counts the stanza and keeps it
    /// until acknowledged (and while the session hibernates, only queues
    /// it); see the module docs for the seam in front of it.
    pub(super) fn deliver_to_session(&mut self, session: SessionId, data: Bytes, kind: StanzaKind) {
        if self.deferring() {
            self.defer(Task::Deliver {
                session,
                data,
                kind,
            });
        } else {
            self.deliver_now(session, data, kind);
        }
    }

    /// [`Task::Deliver`]: counts, queues and writes, in output order.
    pub(super) fn deliver_now(&mut self, session: SessionId, data: Bytes, kind: StanzaKind) {
        let max_queue = self.config.sm_max_queue;
        let ask_after = self.config.sm_request_ack_after;
        let Some(s) = self.sessions.get_mut(&session) else {
            self.push_transmit(session, data);
            return;
        };
        let Some(bound) = s.bound_mut() else {
            self.push_transmit(session, data);
            return;
        };
        let Some(sm) = bound.sm.as_deref_mut() else {
            self.push_transmit(session, data);
            return;
        };
        sm.sent(data.clone(), kind);
        let overflow = sm.unacked.len() > max_queue;
        let hibernating = sm.hibernating_until.is_some();
        if overflow && !hibernating {
            // Connected: the stanzas are written, only no longer kept (see
            // the module docs); the session stops being resumable.
            sm.unacked.clear();
            sm.overflowed = true;
        }
        if hibernating {
            let jid = bound.jid.clone();
            self.out
                .push_back(Output::Event(Event::StanzaQueued { session, jid, data }));
        } else {
            let ask = !sm.requested && usize::try_from(sm.pending()).is_ok_and(|p| p >= ask_after);
            if ask {
                sm.requested = true;
            }
            self.push_transmit(session, data);
            if ask {
                self.push_transmit(session, Bytes::from_static(REQUEST));
            }
        }
        if overflow && hibernating {
            self.defer(Task::SmQueueFull(session));
        }
    }

    /// Writes to the session now (in task order), framed for its transport.
    fn push_transmit(&mut self, session: SessionId, data: Bytes) {
        let output = self.framed(Output::Transmit { session, data });
        self.out.push_back(output);
    }

    /// One stanza from the client was taken from its stream: `h` + 1.
    pub(super) fn sm_handled(&mut self, id: SessionId) {
        if let Some(sm) = self.sessions.get_mut(&id).and_then(|s| s.sm_mut()) {
            sm.handled();
        }
    }

    /// A nonza for the session itself, never counted.
    fn send_nonza(&mut self, id: SessionId, el: &Element) {
        let data = stream::element_bytes(el);
        self.emit(Output::Transmit { session: id, data });
    }

    /// Sends `<failed/>` with a stanza error condition and, if known, `h`.
    fn sm_failed(&mut self, id: SessionId, condition: &str, h: Option<u32>) {
        self.send_nonza(id, &failed(condition, h));
    }

    /// A stream management nonza from an authenticated client.
    pub(super) fn handle_sm(&mut self, id: SessionId, el: Element, now: Instant) {
        match el.name() {
            "enable" => self.sm_enable(id, &el),
            "resume" => self.sm_resume(id, &el, now),
            "r" => match self.sessions.get(&id).and_then(|s| s.sm()) {
                Some(sm) => {
                    let mut a = Element::bare("a", NS_SM);
                    xml::set_attr(&mut a, "h", sm.inbound.to_string());
                    self.send_nonza(id, &a);
                }
                None => self.sm_failed(id, "unexpected-request", None),
            },
            "a" => self.sm_ack(id, &el, now),
            _ => self.close_session(
                id,
                Some(StreamError::new(
                    StreamErrorCondition::UnsupportedStanzaType,
                )),
                now,
            ),
        }
    }

    fn sm_enable(&mut self, id: SessionId, el: &Element) {
        let answer = self.sm_enable_answer(id, el);
        self.send_nonza(id, &answer);
    }

    /// Enables stream management on a bound session: `<enabled/>`, or
    /// `<failed/>` (as a nonza, or inside Bind2's `<bound/>`).
    pub(super) fn sm_enable_answer(&mut self, id: SessionId, el: &Element) -> Element {
        if !self.config.stream_management {
            return failed("feature-not-implemented", None);
        }
        let ok = self
            .sessions
            .get(&id)
            .is_some_and(|s| s.bound().is_some() && s.sm().is_none());
        if !ok {
            // Before bind, or a second time.
            return failed("unexpected-request", None);
        }
        let resume = matches!(el.attr("resume"), Some("true" | "1"));
        let mut timeout = self.config.resume_timeout;
        if let Some(max) = el.attr("max").and_then(|m| m.trim().parse::<u64>().ok())
            && max > 0
        {
            timeout = timeout.min(Duration::from_secs(max));
        }
        let token = if resume {
            match crate::random::random_id(self.rng.as_mut(), TOKEN_LEN) {
                Ok(t) => Some(t.into_boxed_str()),
                Err(_) => return failed("internal-server-error", None),
            }
        } else {
            None
        };
        let mut enabled = Element::bare("enabled", NS_SM);
        if let Some(token) = &token {
            xml::set_attr(&mut enabled, "id", token.to_string());
            xml::set_attr(&mut enabled, "resume", "true");
            xml::set_attr(&mut enabled, "max", timeout.as_secs().to_string());
        }
        if let Some(bound) = self.sessions.get_mut(&id).and_then(|s| s.bound_mut()) {
            bound.sm = Some(Box::new(SmState::new(token, timeout)));
        }
        enabled
    }

    fn sm_ack(&mut self, id: SessionId, el: &Element, now: Instant) {
        if self.sessions.get(&id).and_then(|s| s.sm()).is_none() {
            self.sm_failed(id, "unexpected-request", None);
            return;
        }
        let Some(h) = self.h_attr(id, el, now) else {
            return;
        };
        self.sm_ack_h(id, h, now);
    }

    /// The `h` of a nonza; without a valid one the stream is closed with
    /// `bad-format`.
    fn h_attr(&mut self, id: SessionId, el: &Element, now: Instant) -> Option<u32> {
        let h = el.attr("h").and_then(|h| h.parse::<u32>().ok());
        if h.is_none() {
            self.close_session(
                id,
                Some(StreamError::new(StreamErrorCondition::BadFormat)),
                now,
            );
        }
        h
    }

    /// The client acknowledged `h` stanzas (the byte path applies a valid
    /// one itself and comes here for the error).
    pub(super) fn sm_ack_h(&mut self, id: SessionId, h: u32, now: Instant) {
        let Some(sm) = self.sessions.get_mut(&id).and_then(|s| s.sm_mut()) else {
            return;
        };
        if sm.ack(h).is_err() {
            let sent = sm.outbound;
            self.close_session(id, Some(too_high(h, sent)), now);
        }
    }

    /// `<resume/>` as a nonza: `<resumed/>` and the retransmissions, or
    /// `<failed/>`.
    fn sm_resume(&mut self, id: SessionId, el: &Element, now: Instant) {
        match self.sm_try_resume(id, el, now) {
            Ok(Some(resumed)) => {
                self.send_nonza(id, &resumed.element);
                self.sm_finish_resume(id, resumed);
            }
            Ok(None) => {}
            Err(failed) => self.send_nonza(id, &failed),
        }
    }

    /// `<resume/>` (a nonza, or inline in SASL2): finds the account's
    /// session with this token and moves its resource onto this
    /// connection. `Ok(None)` when the stream was closed (bad `h`), `Err`
    /// with the `<failed/>` to send.
    pub(super) fn sm_try_resume(
        &mut self,
        id: SessionId,
        el: &Element,
        now: Instant,
    ) -> Result<Option<SmResumed>, Element> {
        let Some(new) = self.sessions.get(&id) else {
            return Ok(None);
        };
        if new.kind() != SessionKind::Authenticated || !self.config.stream_management {
            return Err(failed("unexpected-request", None));
        }
        let account = match (new.username(), new.host()) {
            (Some(u), Some(h)) => BareJid::new(&format!("{u}@{h}")).ok(),
            _ => None,
        };
        let Some(account) = account else {
            return Err(failed("internal-server-error", None));
        };
        let previd = el.attr("previd").unwrap_or_default();
        let Some(h) = self.h_attr(id, el, now) else {
            return Ok(None);
        };
        let old = self.bound_sessions(&account).iter().copied().find(|sid| {
            self.sessions
                .get(sid)
                .and_then(|s| s.sm())
                .and_then(|sm| sm.token.as_deref())
                == Some(previd)
        });
        let live = old.and_then(|sid| self.sessions.get(&sid)?.sm().map(|sm| (sid, sm)));
        let old = match live {
            Some((sid, sm)) if !sm.overflowed => sid,
            Some((_, sm)) => {
                // It stopped keeping stanzas: it cannot be resumed.
                return Err(failed("item-not-found", Some(sm.inbound)));
            }
            None => {
                let last = self.expired_h(&account, previd, now);
                return Err(failed("item-not-found", last));
            }
        };
        // Acknowledge first: a wrong `h` leaves the old session as it was.
        let Some(sm) = self.sessions.get_mut(&old).and_then(|s| s.sm_mut()) else {
            return Ok(None);
        };
        if sm.ack(h).is_err() {
            let sent = sm.outbound;
            self.close_session(id, Some(too_high(h, sent)), now);
            return Ok(None);
        }
        let Some(mut previous) = self.sessions.remove(&old) else {
            return Ok(None);
        };
        let was_hibernating = previous.hibernating();
        if previous.transport == Transport::Attached && !previous.closed() {
            let mut ctx = Ctx {
                config: &self.config,
                rng: self.rng.as_mut(),
                out: &mut self.out,
                features: &mut self.features,
            };
            previous.close(
                &mut ctx,
                Some(StreamError::with_text(
                    StreamErrorCondition::Conflict,
                    "Replaced by a resumed session",
                )),
            );
        }
        let mut phase = std::mem::replace(&mut previous.phase, Phase::Authenticated);
        let Phase::Bound(bound) = &mut phase else {
            return Ok(None);
        };
        let jid = bound.jid.clone();
        let mut resumed = Element::bare("resumed", NS_SM);
        xml::set_attr(&mut resumed, "previd", previd.to_owned());
        let mut retransmit: Vec<Bytes> = Vec::new();
        let mut ask = false;
        if let Some(sm) = bound.sm.as_deref_mut() {
            xml::set_attr(&mut resumed, "h", sm.inbound.to_string());
            sm.hibernating_until = None;
            retransmit = sm.unacked.iter().map(|u| u.data.clone()).collect();
            ask = !retransmit.is_empty() && retransmit.len() >= self.config.sm_request_ack_after;
            sm.requested = ask;
        }
        if let Some(new) = self.sessions.get_mut(&id) {
            new.phase = phase;
        }
        if let Some(acct) = self.accounts.get_mut(&account) {
            for sid in acct.sessions.iter_mut() {
                if *sid == old {
                    *sid = id;
                }
            }
            acct.blocked.retain(|s| *s != old);
        }
        self.pending
            .retain(|_, p| !matches!(p, super::Pending::Credentials(s) if *s == old));
        Ok(Some(SmResumed {
            element: resumed,
            jid,
            old,
            retransmit,
            ask,
            was_hibernating,
        }))
    }

    /// After `<resumed/>` went out: the retransmissions and the events.
    pub(super) fn sm_finish_resume(&mut self, id: SessionId, resumed: SmResumed) {
        let SmResumed {
            jid,
            old,
            retransmit,
            ask,
            was_hibernating,
            ..
        } = resumed;
        for data in retransmit {
            self.emit(Output::Transmit { session: id, data });
        }
        if ask {
            self.emit(Output::Transmit {
                session: id,
                data: Bytes::from_static(REQUEST),
            });
        }
        if was_hibernating {
            self.emit(Output::Event(Event::HibernationEnded {
                session: old,
                jid: jid.clone(),
                reason: HibernationEnd::Resumed,
            }));
        }
        self.emit(Output::Event(Event::Resumed {
            session: id,
            previous: old,
            jid,
        }));
        self.emit(Output::Event(Event::Closed { session: old }));
    }

    /// The last `h` of a recently ended session of `account` with `token`.
    fn expired_h(&mut self, account: &BareJid, token: &str, now: Instant) -> Option<u32> {
        self.prune_expired(now);
        self.expired_tokens
            .iter()
            .find(|t| &*t.token == token && t.account == *account)
            .map(|t| t.h)
    }

    fn prune_expired(&mut self, now: Instant) {
        let keep = self.config.sm_expired_token_retention;
        while let Some(front) = self.expired_tokens.front() {
            let stale = now
                .checked_duration_since(front.at)
                .is_some_and(|age| age > keep);
            if !stale && self.expired_tokens.len() <= self.config.sm_expired_tokens {
                break;
            }
            self.expired_tokens.pop_front();
        }
    }

    /// The transport of `id` is gone and its input is done: hibernate a
    /// resumable session, remove any other.
    pub(super) fn transport_gone(&mut self, id: SessionId, now: Instant) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        if session.hibernating() {
            return;
        }
        let jid = session.full_jid().cloned();
        let closed = session.closed();
        if let (Some(jid), false) = (jid, closed)
            && let Some(sm) = session.sm_mut()
            && sm.token.is_some()
            && !sm.overflowed
            && let Some(until) = now.checked_add(sm.resume_timeout)
        {
            sm.hibernating_until = Some(until);
            sm.requested = false;
            self.timers.push(std::cmp::Reverse((until, id)));
            self.emit(Output::Event(Event::Hibernating {
                session: id,
                jid,
                until,
            }));
            // XEP-0352: what was held for an inactive client joins the
            // queue for the resume (and the resumed stream starts active).
            self.set_client_state(id, true);
            return;
        }
        // Anything XEP-0352 still holds is dropped with the session: the
        // default classification holds no message with a body.
        session.mark_closed();
        self.remove_session(id, None, now);
    }

    /// Ends a hibernating session (expiry, overflow, the embedder).
    pub(super) fn end_hibernating(&mut self, id: SessionId, reason: HibernationEnd, now: Instant) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let Some(jid) = session.full_jid().cloned() else {
            return;
        };
        let Some(sm) = session.sm_mut() else {
            return;
        };
        if sm.hibernating_until.take().is_none() {
            return;
        }
        session.mark_closed();
        self.emit(Output::Event(Event::HibernationEnded {
            session: id,
            jid,
            reason,
        }));
        self.remove_session(id, None, now);
    }

    /// Ends a hibernating session now (e.g. at shutdown), as if it had
    /// expired: unavailable presence goes out and its unacknowledged
    /// stanzas are handled so that none is lost silently (messages with a
    /// body to another available resource or offline storage, iq get/set
    /// answered `service-unavailable`, the rest dropped). Returns `false`
    /// if `id` is not a hibernating session.
    pub fn end_hibernation(&mut self, id: SessionId, now: Instant) -> bool {
        let hibernating = self.sessions.get(&id).is_some_and(|s| s.hibernating());
        if hibernating {
            self.end_hibernating(id, HibernationEnd::Ended, now);
            self.run_tasks(now);
        }
        hibernating
    }

    /// A deadline for `id` passed: expire it if it is still hibernating
    /// until then.
    pub(super) fn sm_deadline(&mut self, id: SessionId, deadline: Instant, now: Instant) {
        let due = self
            .sessions
            .get(&id)
            .and_then(|s| s.hibernating_until())
            .is_some_and(|until| until == deadline);
        if due {
            self.end_hibernating(id, HibernationEnd::Expired, now);
        }
    }

    /// A session's stream management state (for the crate's tests).
    #[cfg(test)]
    pub(crate) fn sm_state_mut(&mut self, id: SessionId) -> Option<&mut SmState> {
        self.sessions.get_mut(&id).and_then(|s| s.sm_mut())
    }

    /// [`Task::SmQueueFull`]: more stanzas wait than allowed.
    pub(super) fn sm_queue_full(&mut self, id: SessionId, now: Instant) {
        let Some(session) = self.sessions.get(&id) else {
            return;
        };
        if session.removing() {
            return;
        }
        if session.hibernating() {
            self.end_hibernating(id, HibernationEnd::QueueFull, now);
        } else {
            self.close_session(
                id,
                Some(StreamError::with_text(
                    StreamErrorCondition::ResourceConstraint,
                    "Too many unacknowledged stanzas",
                )),
                now,
            );
        }
    }

    /// A session is being removed: takes what it still owes (the
    /// unacknowledged stanzas) and remembers its token.
    pub(super) fn sm_take_leftovers(&mut self, id: SessionId, now: Instant) -> VecDeque<Unacked> {
        let Some(session) = self.sessions.get_mut(&id) else {
            return VecDeque::new();
        };
        let account = session.bare_jid().cloned();
        let Some(sm) = session.sm_mut() else {
            return VecDeque::new();
        };
        let leftovers = std::mem::take(&mut sm.unacked);
        let token = sm.token.take();
        let h = sm.inbound;
        if let (Some(token), Some(account)) = (token, account)
            && self.config.sm_expired_tokens > 0
        {
            self.expired_tokens.push_back(ExpiredToken {
                token,
                account,
                h,
                at: now,
            });
            self.prune_expired(now);
        }
        leftovers
    }

    /// The expiry rule (module docs) for the stanzas an ended session had
    /// not acknowledged, after it left the routing index.
    pub(super) fn sm_dispose(
        &mut self,
        user: &BareJid,
        leftovers: VecDeque<Unacked>,
        now: Instant,
    ) {
        for item in leftovers {
            if item.kind == StanzaKind::Presence {
                continue;
            }
            let Some(stanza) = reparse(&item.data).and_then(Stanza::parse) else {
                continue;
            };
            match stanza.header.ty {
                StanzaType::Message(
                    MessageType::Chat | MessageType::Normal | MessageType::Other,
                ) if stanza.element.get_child("body", NS_CLIENT).is_some() => {
                    self.defer(Task::Submit {
                        user: user.clone(),
                        work: Work::Deliver {
                            stanza,
                            origin: Origin::External,
                            target: Target::Bare(user.clone()),
                        },
                    });
                }
                StanzaType::Iq(IqType::Get | IqType::Set) => {
                    self.bounce(&stanza.element, StanzaError::service_unavailable(), now);
                }
                _ => {}
            }
        }
    }
}

/// `<failed/>` with a stanza error condition and, if known, `h`.
fn failed(condition: &str, h: Option<u32>) -> Element {
    let mut failed = Element::bare("failed", NS_SM);
    if let Some(h) = h {
        xml::set_attr(&mut failed, "h", h.to_string());
    }
    failed.append_child(Element::bare(condition, NS_STANZAS));
    failed
}

/// A resume that succeeded: `<resumed/>` to send (as a nonza or inside
/// SASL2 `<success/>`), then [`SessionManager::sm_finish_resume`].
#[derive(Debug)]
pub(super) struct SmResumed {
    /// `<resumed previd h/>`.
    pub(super) element: Element,
    /// The resumed resource.
    pub(super) jid: jid::FullJid,
    old: SessionId,
    retransmit: Vec<Bytes>,
    ask: bool,
    was_hibernating: bool,
}

/// `undefined-condition` with `<handled-count-too-high/>` (§4).
fn too_high(h: u32, sent: u32) -> StreamError {
    let mut error = StreamError::with_text(
        StreamErrorCondition::UndefinedCondition,
        "You acknowledged more stanzas than were sent",
    );
    error.handled_count_too_high = Some((h, sent));
    error
}

/// A stanza we wrote, read back into an element.
fn reparse(data: &[u8]) -> Option<Element> {
    let mut reader = StreamReader::new(XmlLimits {
        max_stanza_bytes: data.len().saturating_add(1024),
        max_depth: 1024,
        max_attributes: 1024,
        max_text_bytes: data.len().saturating_add(1024),
    });
    let header = format!("<stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAMS}'>");
    reader.push(header.as_bytes());
    reader.push(data);
    loop {
        match reader.next_event() {
            Ok(Some(StreamEvent::Open(_))) => {}
            Ok(Some(StreamEvent::Stanza(el))) => return Some(el),
            _ => return None,
        }
    }
}
