//! Stanza delivery (RFC 6120 §10, RFC 6121 §8; Prosody §4.8–§4.9).
//!
//! Every stanza, from a local client or from outside, goes through
//! [`SessionManager::route`]. Stanzas for a local user that need storage
//! (does the user exist? store offline?) are queued per user and resumed in
//! order when the answer arrives, so the outcome never depends on how fast
//! or in which order storage answers.

use std::time::Instant;

use bytes::Bytes;
use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use smallvec::SmallVec;

use super::account::CachedRoster;
use super::work::Task;
use super::{Pending, SessionManager};
use crate::error::{
    ErrorType, StanzaError, StanzaErrorCondition, StreamError, StreamErrorCondition,
};
use crate::ids::{RequestId, SessionId};
use crate::output::Output;
use crate::stanza::{Header, IqType, MessageType, PresenceType, Stanza, StanzaType};
use crate::storage::{Request, Response};
use crate::stream;
use crate::xml::{self, NS_CLIENT, StanzaKind};

/// Most entries in the byte-forwarding hint table before it is cleared.
const FAST_ROUTES_MAX: usize = 1 << 16;

/// Where a stanza came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// A bound local session (its `from` is already stamped).
    Client(SessionId),
    /// Outside: s2s, a component, another node, the embedder, or the server
    /// itself (errors, roster side effects).
    External,
}

/// Whom a stanza is for, once `to` is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// The sender's own account (no `to`, or the sender's bare JID).
    OwnAccount(BareJid),
    /// A local account by bare JID.
    Bare(BareJid),
    /// A local resource by full JID.
    Full(FullJid),
    /// A served domain itself.
    Host(String),
    /// Not served here.
    Remote,
}

/// Work for one local user, run in order.
#[derive(Debug)]
pub(super) enum Work {
    /// Deliver (or answer) a stanza addressed to the user.
    Deliver {
        stanza: Stanza,
        origin: Origin,
        target: Target,
    },
    /// Waiting to learn whether the user exists before delivering.
    AfterExists {
        stanza: Stanza,
        origin: Origin,
        target: Target,
    },
    /// Waiting for an offline message to be stored.
    AfterStore { stanza: Stanza },
    /// Waiting for the user's stored messages, for this session.
    AfterTakeOffline { session: SessionId },
    /// Fetch stored messages for a session that just became available.
    FlushOffline { session: SessionId },
    /// A presence sent by one of the user's sessions.
    Outbound { session: SessionId, stanza: Stanza },
    /// One of the user's resources went away.
    Unbound {
        full: FullJid,
        was_available: bool,
        directed: Vec<String>,
        status: Option<String>,
    },
    /// Waiting for the user's roster before running the inner work.
    RosterLoaded(Box<Work>),
    /// Load the user's blocklist (a resource just bound).
    LoadBlocklist,
    /// A message or iq from one of the user's sessions that arrived before
    /// the user's blocklist was loaded.
    Send { session: SessionId, stanza: Stanza },
    /// Waiting for the user's blocklist before running the inner work.
    BlocklistLoaded(Box<Work>),
}

/// Whether a client's stanza is a roster set (`jabber:iq:roster`)
/// addressed to another account or domain than the user's own.
fn is_foreign_roster_set(stanza: &Stanza, user: &BareJid) -> bool {
    stanza.header.ty == StanzaType::Iq(IqType::Set)
        && matches!(&stanza.header.to, Some(Ok(to)) if to.to_bare() != *user)
        && xml::first_child(&stanza.element).is_some_and(|c| c.is("query", xml::NS_ROSTER))
}

/// What running a piece of work led to. A short-lived return value, so
/// its size does not matter.
#[allow(clippy::large_enum_variant)]
pub(super) enum Flow {
    Done,
    Wait(Request, Work),
}

impl SessionManager {
    /// A stanza from a bound client: parse its header once, validate,
    /// check and stamp `from`, route.
    pub(super) fn handle_client_stanza(&mut self, id: SessionId, element: Element, now: Instant) {
        let Some(session) = self.sessions.get(&id) else {
            return;
        };
        let Some(bound) = session.bound() else {
            return;
        };
        let Some(mut stanza) = Stanza::parse(element) else {
            return;
        };
        let header = &stanza.header;
        // An error without any child says nothing: drop it (Prosody).
        if header.is_error() && xml::child_count(&stanza.element) == 0 {
            return;
        }
        if let StanzaType::Iq(ty) = header.ty {
            let problem = match ty {
                IqType::Get | IqType::Set => {
                    if !header.has_id {
                        Some("Missing required 'id' attribute")
                    } else if xml::child_count(&stanza.element) != 1 {
                        Some("Incorrect number of children for IQ stanza")
                    } else {
                        None
                    }
                }
                IqType::Result | IqType::Error => {
                    if !header.has_id {
                        Some("Missing required 'id' attribute")
                    } else {
                        None
                    }
                }
                IqType::Other => Some("Invalid IQ type"),
            };
            if let Some(text) = problem {
                if !header.is_error_or_result() {
                    let mut err_to = stanza.element.clone();
                    xml::set_attr(&mut err_to, "from", bound.jid.as_str());
                    self.send_error_to_session(id, &err_to, StanzaError::bad_request(text));
                }
                return;
            }
        }
        // RFC 6120 §8.1.2.1: a client may only name itself as the sender.
        if let Some(from) = &header.from {
            let own = match from {
                Ok(j) => *j == bound.jid || *j == bound.bare,
                Err(()) => false,
            };
            if !own {
                self.close_session(
                    id,
                    Some(StreamError::with_text(
                        StreamErrorCondition::InvalidFrom,
                        "The 'from' attribute must be your own address",
                    )),
                    now,
                );
                return;
            }
        }
        let full = Jid::from(bound.jid.clone());
        let user = bound.bare.clone();
        stanza.set_from(full);
        if is_foreign_roster_set(&stanza, &user) {
            // RFC 6121 §2.3.3: a roster set addressed to any JID but the
            // user's own is refused with `forbidden`, whether or not that
            // account exists (nothing is routed or looked up).
            self.send_error_to_session(
                id,
                &stanza.element,
                StanzaError::new(ErrorType::Auth, StanzaErrorCondition::Forbidden),
            );
            return;
        }
        if stanza.header.kind() == StanzaKind::Presence {
            self.outbound_presence(id, stanza, now);
            return;
        }
        if self.blocklist(&user).is_none() {
            // Still loading (XEP-0191): wait behind the load, in order.
            self.submit(
                user,
                Work::Send {
                    session: id,
                    stanza,
                },
                now,
            );
            return;
        }
        if self.outbound_checks(id, &user, &stanza) {
            // A direct call: routing never drives a session, so this cannot nest.
            self.route_stanza(stanza, Origin::Client(id), now);
        }
    }

    /// What a message or iq from a client passes before routing: the
    /// user's blocklist (XEP-0191; `false` when refused, already answered)
    /// and sent carbons (XEP-0280).
    fn outbound_checks(&mut self, id: SessionId, user: &BareJid, stanza: &Stanza) -> bool {
        if self.nonempty_blocklists > 0
            && let Some(Ok(to)) = &stanza.header.to
        {
            let to = to.clone();
            if self.refuse_outbound(id, user, &to, stanza) {
                return false;
            }
        }
        if self.carbons_enabled > 0 && stanza.header.kind() == StanzaKind::Message {
            self.sent_carbons(id, user, stanza);
        }
        true
    }

    /// Byte forwarding: a canonical `<message>` (see
    /// [`StreamReader::peek_message`](crate::stream::StreamReader)) of type
    /// `chat`, `normal`, `headline` or `groupchat` (or none), without
    /// `from`, whose `to` is written exactly as the full JID of a local
    /// session that can receive. The tree path would stamp `from`, keep
    /// `to` as it is and transmit the element to that session at once: this
    /// writes the same bytes without building the element. Returns `false`
    /// (reader untouched) for anything else.
    pub(super) fn forward_message(&mut self, id: SessionId, raw: &stream::RawMessage) -> bool {
        let Some(session) = self.sessions.get(&id) else {
            return false;
        };
        if session.bound().is_none() {
            return false;
        }
        let bytes = session.reader.raw_bytes();
        if raw.attr(bytes, b"from").is_some() {
            return false;
        }
        match raw.attr(bytes, b"type") {
            None | Some(b"chat" | b"normal" | b"headline" | b"groupchat") => {}
            Some(_) => return false,
        }
        // Written as received: a reference would need decoding first.
        let Some(to) = raw
            .attr(bytes, b"to")
            .filter(|t| !t.contains(&b'&'))
            .and_then(|t| std::str::from_utf8(t).ok())
        else {
            return false;
        };
        let hit = self
            .fast_routes
            .get(to)
            .copied()
            .filter(|&sid| self.is_receiving_full(sid, to));
        let target = match hit {
            Some(sid) => sid,
            None => {
                let to: Box<str> = to.into();
                match self.fast_target_miss(to) {
                    Some(sid) => sid,
                    None => return false,
                }
            }
        };
        if self.needs_element_path(id, target) {
            return false;
        }
        let Some(session) = self.sessions.get(&id) else {
            return false;
        };
        let Some(bound) = session.bound() else {
            return false;
        };
        let bytes = session.reader.raw_bytes();
        if self
            .carbons_markup
            .find(bytes.get(..raw.len).unwrap_or(bytes))
            .is_some()
        {
            return false;
        }
        let mut out = bytes::BytesMut::new();
        stream::write_forwarded(&mut out, bytes, raw, bound.jid.as_str());
        if let Some(session) = self.sessions.get_mut(&id) {
            session.reader.consume_raw(raw.len);
            // Stream management counts it as handled (`h`).
            if let Some(sm) = session.sm_mut() {
                sm.handled();
            }
        }
        // Not inactive (checked above): straight to the send point.
        self.deliver_to_session(target, out.freeze(), StanzaKind::Message);
        self.forwarded = self.forwarded.wrapping_add(1);
        true
    }

    /// Whether a message the fast path could forward from `sender` to
    /// `target` needs the element path after all: carbons to copy (either
    /// account has a carbons-enabled resource), a blocklist to check (either
    /// account blocks anybody), an inactive recipient (XEP-0352 hold
    /// stage). Each check costs nothing while its feature is unused. Carbons
    /// markup (`<private/>` to strip, a client-made wrapper) is looked for
    /// in the bytes by the caller.
    fn needs_element_path(&self, sender: SessionId, target: SessionId) -> bool {
        if self.carbons_enabled > 0 || self.nonempty_blocklists > 0 {
            let bare = |id: SessionId| self.sessions.get(&id).and_then(|s| s.bare_jid());
            for user in [bare(sender), bare(target)].into_iter().flatten() {
                if self.has_carbons(user) || self.blocks_anyone(user) {
                    return true;
                }
            }
        }
        if self.is_inactive(target) {
            return true;
        }
        false
    }

    /// Turns byte forwarding on or off (the differential tests compare).
    #[cfg(test)]
    pub(crate) fn set_byte_forwarding(&mut self, on: bool) {
        self.byte_forwarding = on;
    }

    /// Messages forwarded as bytes so far.
    #[cfg(test)]
    pub(crate) fn forwarded(&self) -> u64 {
        self.forwarded
    }

    /// The receiving session whose full JID is written exactly `to`, as
    /// [`Self::receiving_session`] finds it after parsing `to`, when the
    /// hint table does not know it: parse once, remember only JIDs already
    /// in normal form.
    fn fast_target_miss(&mut self, to: Box<str>) -> Option<SessionId> {
        let jid = crate::stanza::parse_jid(&to).ok()?;
        if jid.as_str() != &*to || !self.config.serves(jid.domain().as_str()) {
            return None;
        }
        let full = jid.try_into_full().ok()?;
        let sid = self.receiving_session(&full)?;
        if self.fast_routes.len() >= FAST_ROUTES_MAX {
            self.fast_routes.clear();
        }
        self.fast_routes.insert(to, sid);
        Some(sid)
    }

    /// Whether `sid` is the session [`Self::receiving_session`] finds for
    /// the full JID written `to`.
    fn is_receiving_full(&self, sid: SessionId, to: &str) -> bool {
        let Some(session) = self.sessions.get(&sid) else {
            return false;
        };
        let (Some(full), Some(bare)) = (session.full_jid(), session.bare_jid()) else {
            return false;
        };
        full.as_str() == to
            && self
                .resources(bare)
                .find(|s| s.full_jid() == Some(full))
                .is_some_and(|s| s.id == sid)
            && self.can_receive(sid)
    }

    /// Sends an error reply to a stanza straight back to the session.
    pub(super) fn send_error_to_session(
        &mut self,
        id: SessionId,
        original: &Element,
        error: StanzaError,
    ) {
        if let Some(reply) = error.reply_to(original)
            && self.sessions.contains_key(&id)
        {
            self.transmit_element(id, &reply);
        }
    }

    /// Resolves `to` from the parsed header. `Err(())` when it is not a
    /// valid JID (already answered).
    pub(super) fn resolve_target(
        &mut self,
        stanza: &mut Stanza,
        origin: Origin,
        now: Instant,
    ) -> Result<Target, ()> {
        let jid = match &stanza.header.to {
            None => {
                return match origin {
                    Origin::Client(id) => self
                        .sessions
                        .get(&id)
                        .and_then(|s| s.bare_jid().cloned())
                        .map(Target::OwnAccount)
                        .ok_or(()),
                    Origin::External => Err(()),
                };
            }
            Some(Err(())) => {
                if !stanza.header.is_error_or_result() {
                    let to = stanza.element.attr("to").unwrap_or_default();
                    let text = format!("The destination address is invalid: {to}");
                    let error = StanzaError::with_text(
                        ErrorType::Modify,
                        StanzaErrorCondition::JidMalformed,
                        text,
                    );
                    let mut original = stanza.element.clone();
                    xml::remove_attr(&mut original, "to");
                    self.bounce(&original, error, now);
                }
                return Err(());
            }
            Some(Ok(jid)) => jid,
        };
        if stanza.element.attr("to") != Some(jid.as_str()) {
            // Normalised (case, trailing dot): send the normal form on.
            xml::set_attr(&mut stanza.element, "to", jid.as_str());
        }
        if !self.config.serves(jid.domain().as_str()) {
            return Ok(Target::Remote);
        }
        if jid.node().is_none() {
            // The resource of a domain JID is ignored for routing.
            return Ok(Target::Host(jid.domain().as_str().to_owned()));
        }
        // Presence handlers read `to` again; messages and iqs only need the
        // target, so theirs moves into it instead of being copied.
        let jid = if stanza.header.kind() == StanzaKind::Presence {
            jid.clone()
        } else {
            match stanza.header.to.take() {
                Some(Ok(jid)) => jid,
                _ => return Err(()),
            }
        };
        Ok(match jid.try_into_full() {
            Ok(full) => Target::Full(full),
            Err(bare) => {
                let own = match origin {
                    Origin::Client(id) => self
                        .sessions
                        .get(&id)
                        .and_then(|s| s.bare_jid())
                        .is_some_and(|own| *own == bare),
                    Origin::External => false,
                };
                if own {
                    // Prosody strips the sender's own bare JID.
                    stanza.remove_to();
                    Target::OwnAccount(bare)
                } else {
                    Target::Bare(bare)
                }
            }
        })
    }

    /// Routes one stanza whose `from` is trustworthy, as a task after the
    /// current handler.
    pub(super) fn route(&mut self, stanza: Element, origin: Origin, _now: Instant) {
        self.defer(Task::Route { stanza, origin });
    }

    /// Routes a stanza whose target is already resolved: at once while the
    /// current handler has deferred nothing, else as a task after that work.
    ///
    /// Running it at once cannot nest: only a user's own outbound presence
    /// or unbind work calls this, and delivering to a local user never
    /// leads back here (its own routing goes through [`Self::route`]).
    pub(super) fn route_to(
        &mut self,
        stanza: Stanza,
        origin: Origin,
        target: Target,
        now: Instant,
    ) {
        if self.deferring() {
            self.defer(Task::RouteTo {
                stanza,
                origin,
                target,
            });
        } else {
            self.route_to_now(stanza, origin, target, now);
        }
    }

    /// [`Task::Route`]: parses the header, then routes.
    pub(super) fn route_now(&mut self, element: Element, origin: Origin, now: Instant) {
        if let Some(stanza) = Stanza::parse(element) {
            self.route_stanza(stanza, origin, now);
        }
    }

    /// Routes a stanza whose header is parsed.
    pub(super) fn route_stanza(&mut self, mut stanza: Stanza, origin: Origin, now: Instant) {
        let Ok(target) = self.resolve_target(&mut stanza, origin, now) else {
            return;
        };
        self.route_to_now(stanza, origin, target, now);
    }

    /// [`Task::RouteTo`].
    pub(super) fn route_to_now(
        &mut self,
        stanza: Stanza,
        origin: Origin,
        target: Target,
        now: Instant,
    ) {
        match &target {
            Target::Remote => {
                // Outside traffic is never sent back outside (no loops), but
                // what the server sends for its own users and domains
                // (presence broadcasts, probes, subscription stanzas,
                // replies) is.
                if origin == Origin::External && !self.sender_is_local(&stanza.header) {
                    return;
                }
                self.emit(Output::Route {
                    stanza: stanza.element,
                });
            }
            Target::Host(_) => self.deliver_to_host(stanza, origin, now),
            Target::OwnAccount(_) | Target::Bare(_) | Target::Full(_) => {
                let user = match &target {
                    Target::Full(full) => full.to_bare(),
                    Target::OwnAccount(user) | Target::Bare(user) => user.clone(),
                    Target::Host(_) | Target::Remote => return,
                };
                let work = Work::Deliver {
                    stanza,
                    origin,
                    target,
                };
                self.submit(user, work, now);
            }
        }
    }

    /// Whether the stanza's `from` is an address on a served domain.
    fn sender_is_local(&self, header: &Header) -> bool {
        header
            .sender()
            .is_some_and(|j| self.config.serves(j.domain().as_str()))
    }

    /// Stanzas for the server itself (Prosody's `*/host` handlers).
    fn deliver_to_host(&mut self, stanza: Stanza, origin: Origin, now: Instant) {
        match stanza.header.ty {
            StanzaType::Iq(ty) => self.server_iq(ty, stanza.element, origin, now),
            StanzaType::Presence(ty) => self.presence_to_host(ty, stanza, origin, now),
            StanzaType::Message(ty) => {
                if self.extension_claims_message(&stanza) {
                    self.emit_stanza_event(origin, stanza.element);
                    return;
                }
                match ty {
                    MessageType::Error | MessageType::Headline => {}
                    _ => self.bounce(&stanza.element, StanzaError::service_unavailable(), now),
                }
            }
        }
    }

    /// Sends the error reply for `original` to its sender, wherever it is.
    pub(super) fn bounce(&mut self, original: &Element, error: StanzaError, now: Instant) {
        if let Some(reply) = error.reply_to(original)
            && reply.attr("to").is_some()
        {
            self.route(reply, Origin::External, now);
        }
    }

    /// Queues work for a user, or runs it at once when nothing is queued.
    pub(super) fn submit(&mut self, user: BareJid, work: Work, now: Instant) {
        let cap = self.config.max_parked_per_user;
        if let Some(queue) = self.queue_mut(&user) {
            if queue.backlog.len() >= cap {
                if let Work::Deliver { stanza, .. } = work {
                    self.bounce(
                        &stanza.element,
                        StanzaError::with_text(
                            ErrorType::Wait,
                            StanzaErrorCondition::ResourceConstraint,
                            "Too many stanzas waiting for this user",
                        ),
                        now,
                    );
                }
                return;
            }
            queue.backlog.push_back(work);
            return;
        }
        self.run_queue(user, work, now);
    }

    /// Runs `work`, then the user's backlog, until something must wait.
    fn run_queue(&mut self, user: BareJid, first: Work, now: Instant) {
        let flow = self.run_work(&user, first, now);
        self.after_work(user, flow, now);
    }

    /// What follows a piece of a user's work: park it, or run the backlog
    /// on — after whatever the work deferred.
    fn after_work(&mut self, user: BareJid, flow: Flow, now: Instant) {
        match flow {
            Flow::Wait(request, work) => {
                if self.deferring() {
                    self.defer(Task::Park {
                        user,
                        request,
                        work,
                    });
                } else {
                    self.park(user, request, work);
                }
            }
            // Fast path: nothing was queued for this user before or since.
            Flow::Done if !self.has_queue(&user) && !self.deferring() => {}
            Flow::Done => {
                if self.deferring() {
                    self.defer(Task::ContinueQueue(user));
                } else {
                    self.continue_queue(user, now);
                }
            }
        }
    }

    /// Suspends work until `request` is answered.
    pub(super) fn park(&mut self, user: BareJid, request: Request, suspended: Work) {
        let id = self.new_request(Pending::User(user.clone()), request);
        self.open_queue(&user).waiting.push((id, suspended));
    }

    /// Runs the backlog while nothing is outstanding; forgets an empty queue.
    /// A loop, not recursion: when an item defers work, the rest of the
    /// backlog follows it as a task.
    pub(super) fn continue_queue(&mut self, user: BareJid, now: Instant) {
        loop {
            let next = match self.queue_mut(&user) {
                None => return,
                Some(q) if !q.waiting.is_empty() => return,
                Some(q) => q.backlog.pop_front(),
            };
            let Some(work) = next else {
                self.queue_drained(user);
                return;
            };
            let flow = self.run_work(&user, work, now);
            if self.deferring() || matches!(flow, Flow::Wait(..)) {
                self.after_work(user, flow, now);
                return;
            }
        }
    }

    /// The answer for suspended work: resume it, then the backlog.
    pub(super) fn resume_user(
        &mut self,
        user: BareJid,
        request: RequestId,
        response: Response,
        now: Instant,
    ) {
        let work = self.queue_mut(&user).and_then(|q| {
            let at = q.waiting.iter().position(|(id, _)| *id == request)?;
            Some(q.waiting.remove(at).1)
        });
        let Some(work) = work else {
            return;
        };
        let flow = self.resume_work(&user, work, response, now);
        match flow {
            Flow::Done if !self.deferring() => self.continue_queue(user, now),
            flow => self.after_work(user, flow, now),
        }
    }

    /// Whether this work reads the user's roster.
    fn needs_roster(work: &Work) -> bool {
        match work {
            Work::Outbound { .. } | Work::Unbound { .. } => true,
            Work::Deliver { stanza, target, .. } => match stanza.header.ty {
                StanzaType::Presence(ty) => ty.is_subscription() || ty == PresenceType::Probe,
                StanzaType::Iq(_) => {
                    !matches!(target, Target::Full(_))
                        && xml::first_child(&stanza.element).is_some_and(|c| {
                            c.has_ns(xml::NS_ROSTER)
                                || c.has_ns(xml::NS_BLOCKING)
                                || c.has_ns(xml::NS_DISCO_INFO)
                                || c.has_ns(xml::NS_DISCO_ITEMS)
                        })
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// Whether this work reads the user's blocklist: anything from another
    /// account, the user's own blocking iqs, and the load at bind.
    fn needs_blocklist(user: &BareJid, work: &Work) -> bool {
        match work {
            Work::LoadBlocklist | Work::Send { .. } => true,
            Work::Deliver { stanza, target, .. } => {
                let from_other = stanza
                    .header
                    .sender()
                    .is_some_and(|s| s.node() != user.node() || s.domain() != user.domain());
                from_other
                    || (matches!(target, Target::OwnAccount(_))
                        && xml::first_child(&stanza.element)
                            .is_some_and(|c| c.has_ns(xml::NS_BLOCKING)))
            }
            _ => false,
        }
    }

    fn run_work(&mut self, user: &BareJid, work: Work, now: Instant) -> Flow {
        if Self::needs_blocklist(user, &work) && self.blocklist(user).is_none() {
            return Flow::Wait(
                Request::LoadBlocklist {
                    account: crate::storage::account_of(user),
                },
                Work::BlocklistLoaded(Box::new(work)),
            );
        }
        if Self::needs_roster(&work) && self.cached(user).is_none() {
            return Flow::Wait(
                Request::LoadRoster {
                    account: crate::storage::account_of(user),
                },
                Work::RosterLoaded(Box::new(work)),
            );
        }
        match work {
            Work::Outbound { session, stanza } => {
                self.run_outbound_presence(user, session, stanza, now);
                Flow::Done
            }
            Work::Unbound {
                full,
                was_available,
                directed,
                status,
            } => {
                self.run_unavailable_on_unbind(user, &full, was_available, directed, status, now);
                Flow::Done
            }
            Work::Deliver {
                stanza,
                origin,
                target,
            } => self.deliver_local(user, stanza, origin, target, false, now),
            Work::FlushOffline { session } => {
                if !self.can_receive(session) {
                    return Flow::Done;
                }
                Flow::Wait(
                    self.take_offline_request(user),
                    Work::AfterTakeOffline { session },
                )
            }
            Work::LoadBlocklist => Flow::Done,
            Work::Send { session, stanza } => {
                if self.sessions.contains_key(&session)
                    && self.outbound_checks(session, user, &stanza)
                {
                    // Deferred: routing may queue work for this same user.
                    self.defer(Task::Route {
                        stanza: stanza.element,
                        origin: Origin::Client(session),
                    });
                }
                Flow::Done
            }
            // Suspended states are only ever resumed, never run.
            Work::AfterExists { .. }
            | Work::AfterStore { .. }
            | Work::AfterTakeOffline { .. }
            | Work::RosterLoaded(_)
            | Work::BlocklistLoaded(_) => Flow::Done,
        }
    }

    fn resume_work(
        &mut self,
        user: &BareJid,
        work: Work,
        response: Response,
        now: Instant,
    ) -> Flow {
        match work {
            Work::AfterExists {
                stanza,
                origin,
                target,
            } => match response {
                Response::UserExists(true) => {
                    self.deliver_local(user, stanza, origin, target, true, now)
                }
                Response::UserExists(false) => {
                    self.no_such_user(stanza, now);
                    Flow::Done
                }
                _ => {
                    self.storage_failed(&stanza, now);
                    Flow::Done
                }
            },
            Work::AfterStore { stanza } => {
                match response {
                    Response::Done => {}
                    Response::UserExists(false) => self.no_such_user(stanza, now),
                    // RFC 6120 §8.3.3.18: the recipient lacks the resources
                    // to take it now; a later retry may succeed (`wait`).
                    Response::OverQuota => self.bounce(
                        &stanza.element,
                        StanzaError::with_text(
                            ErrorType::Wait,
                            StanzaErrorCondition::ResourceConstraint,
                            "The recipient's offline storage is full",
                        ),
                        now,
                    ),
                    _ => self.storage_failed(&stanza, now),
                }
                Flow::Done
            }
            Work::RosterLoaded(inner) => {
                let cached = match response {
                    Response::Roster(roster) => CachedRoster {
                        roster,
                        ..CachedRoster::default()
                    },
                    // A roster that failed to load is used empty and never
                    // written back, so storage is not overwritten.
                    _ => CachedRoster {
                        broken: true,
                        ..CachedRoster::default()
                    },
                };
                self.account_mut(user).roster = Some(cached);
                self.run_work(user, *inner, now)
            }
            Work::BlocklistLoaded(inner) => {
                // A list that failed to load is used empty and never
                // written back, so storage is not overwritten.
                let jids = match response {
                    Response::Blocklist(jids) => Some(jids),
                    _ => None,
                };
                self.cache_blocklist(user, super::blocking::CachedBlocklist::loaded(jids));
                self.run_work(user, *inner, now)
            }
            Work::AfterTakeOffline { session } => {
                if let Response::Offline(messages) = response {
                    self.deliver_offline(user, session, messages);
                }
                Flow::Done
            }
            other => self.run_work(user, other, now),
        }
    }

    fn take_offline_request(&self, user: &BareJid) -> Request {
        Request::TakeOffline {
            account: crate::storage::account_of(user),
        }
    }

    fn deliver_offline(&mut self, user: &BareJid, session: SessionId, messages: Vec<Element>) {
        if self.can_receive(session) {
            for m in &messages {
                self.transmit_element(session, m);
            }
        } else {
            // The session went away (or lost its socket) meanwhile: keep
            // the messages.
            for stanza in messages.into_iter().filter_map(Stanza::parse) {
                self.defer(Task::Submit {
                    user: user.clone(),
                    work: Work::Deliver {
                        stanza,
                        origin: Origin::External,
                        target: Target::Bare(user.clone()),
                    },
                });
            }
        }
    }

    /// RFC 6121 §8.5.1: the account does not exist.
    fn no_such_user(&mut self, stanza: Stanza, now: Instant) {
        match stanza.header.ty {
            StanzaType::Message(MessageType::Headline | MessageType::Error) => {}
            StanzaType::Message(_) => {
                self.bounce(&stanza.element, StanzaError::service_unavailable(), now);
            }
            StanzaType::Iq(_) => {
                if !stanza.header.is_error_or_result() {
                    self.bounce(&stanza.element, StanzaError::service_unavailable(), now);
                }
            }
            // Presence to nobody is dropped.
            StanzaType::Presence(_) => {}
        }
    }

    fn storage_failed(&mut self, stanza: &Stanza, now: Instant) {
        if !stanza.header.is_error_or_result() && stanza.header.kind() != StanzaKind::Presence {
            self.bounce(
                &stanza.element,
                StanzaError::with_text(
                    ErrorType::Wait,
                    StanzaErrorCondition::InternalServerError,
                    "Storage failed",
                ),
                now,
            );
        }
    }

    /// Whether `user` is known to exist without asking storage.
    fn known_user(&self, user: &BareJid) -> bool {
        self.has_sessions(user)
    }

    /// Delivery to a local account (RFC 6121 §8.5.2–§8.5.3).
    fn deliver_local(
        &mut self,
        user: &BareJid,
        stanza: Stanza,
        origin: Origin,
        target: Target,
        exists: bool,
        now: Instant,
    ) -> Flow {
        if self.refuse_inbound(user, &stanza, now) {
            return Flow::Done;
        }
        match stanza.header.ty {
            StanzaType::Message(ty) => {
                self.deliver_message(user, ty, stanza, origin, target, exists, now)
            }
            StanzaType::Iq(_) => self.deliver_iq(user, stanza, origin, target, exists, now),
            StanzaType::Presence(ty) => {
                self.deliver_presence(user, ty, stanza, origin, target, exists, now)
            }
        }
    }

    /// Suspends `stanza` until storage says whether `user` exists.
    pub(super) fn ask_exists_for(
        &self,
        user: &BareJid,
        stanza: Stanza,
        origin: Origin,
        target: Target,
    ) -> Flow {
        Flow::Wait(
            Request::UserExists {
                account: crate::storage::account_of(user),
            },
            Work::AfterExists {
                stanza,
                origin,
                target,
            },
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn deliver_message(
        &mut self,
        user: &BareJid,
        ty: MessageType,
        stanza: Stanza,
        origin: Origin,
        target: Target,
        exists: bool,
        now: Instant,
    ) -> Flow {
        let mut stanza = stanza;
        // XEP-0280: decided before `<private/>` is stripped.
        let copy = self.carbons_enabled > 0 && super::carbons::eligible(&stanza);
        super::carbons::strip_private(&mut stanza.element);
        if let Target::Full(full) = &target
            && let Some(sid) = self.receiving_session(full)
        {
            self.transmit_element(sid, &stanza.element);
            let copy = copy && !super::carbons::is_muc_private(&stanza.element);
            self.received_carbons(user, &stanza.element, &[sid], copy);
            return Flow::Done;
        }
        if self.extension_claims_message(&stanza) {
            self.emit_stanza_event(origin, stanza.element);
            return Flow::Done;
        }
        // RFC 6121 §8.5.3.2.1: to a full JID with no such resource, only
        // chat falls back to the bare JID; normal (and unknown types, RFC
        // 6121 §5.2.2) and groupchat are refused, headline is ignored.
        if matches!(target, Target::Full(_))
            && !matches!(
                ty,
                MessageType::Chat | MessageType::Error | MessageType::Headline
            )
        {
            self.bounce(&stanza.element, StanzaError::service_unavailable(), now);
            return Flow::Done;
        }
        match ty {
            MessageType::Error => Flow::Done,
            MessageType::Groupchat => {
                self.bounce(&stanza.element, StanzaError::service_unavailable(), now);
                Flow::Done
            }
            MessageType::Headline => {
                // To a bare JID (including the sender's own, RFC 6120
                // §10.3.1), only to non-negative available resources;
                // otherwise (an unconnected full JID) silently dropped.
                if matches!(target, Target::Bare(_) | Target::OwnAccount(_)) {
                    let targets: SmallVec<[SessionId; 4]> = self
                        .resources(user)
                        .filter(|s| {
                            s.presence().is_some() && s.priority().unwrap_or(0) >= 0 && s.receives()
                        })
                        .map(|s| s.id)
                        .collect();
                    self.transmit_many(&targets, &stanza.element);
                }
                Flow::Done
            }
            MessageType::Normal | MessageType::Chat | MessageType::Other => {
                let tops = self.top_resources(user);
                if !tops.is_empty() {
                    self.transmit_many(&tops, &stanza.element);
                    self.received_carbons(user, &stanza.element, &tops, copy);
                    return Flow::Done;
                }
                if !self.config.offline_storage {
                    if exists || self.known_user(user) {
                        self.bounce(&stanza.element, StanzaError::service_unavailable(), now);
                        return Flow::Done;
                    }
                    return self.ask_exists_for(user, stanza, origin, target);
                }
                self.received_carbons(user, &stanza.element, &[], copy);
                let Stanza {
                    header,
                    element: mut stored,
                } = stanza;
                let mut delay = Element::bare("delay", xml::NS_DELAY);
                xml::set_attr(&mut delay, "from", user.domain().as_str());
                xml::set_attr(&mut delay, "stamp", self.clock.stamp(now));
                stored.append_child(delay);
                let size = crate::stream::element_bytes(&stored).len();
                Flow::Wait(
                    Request::StoreOffline {
                        account: crate::storage::account_of(user),
                        stanza: stored.clone(),
                        size,
                        quota: self.config.offline_quota(),
                    },
                    Work::AfterStore {
                        stanza: Stanza {
                            header,
                            element: strip_delay(stored),
                        },
                    },
                )
            }
        }
    }

    fn deliver_iq(
        &mut self,
        user: &BareJid,
        stanza: Stanza,
        origin: Origin,
        target: Target,
        exists: bool,
        now: Instant,
    ) -> Flow {
        if let Target::Full(full) = &target {
            match self.receiving_session(full) {
                Some(sid) => self.transmit_element(sid, &stanza.element),
                None => {
                    if !stanza.header.is_error_or_result() {
                        self.bounce(&stanza.element, StanzaError::service_unavailable(), now);
                    }
                }
            }
            return Flow::Done;
        }
        // To a bare JID: the server answers on the account's behalf.
        if stanza.header.is_error_or_result() {
            return Flow::Done;
        }
        if !exists && !self.known_user(user) && matches!(target, Target::Bare(_)) {
            return self.ask_exists_for(user, stanza, origin, target);
        }
        self.account_iq(user, stanza, origin, target, now);
        Flow::Done
    }

    /// Whether stanzas sent to this session can still reach its client: it
    /// exists and its socket has not dropped (a disconnected session may
    /// linger to finish its own parked stanzas, but receives nothing new).
    fn can_receive(&self, session: SessionId) -> bool {
        self.sessions.get(&session).is_some_and(|s| s.receives())
    }

    /// The bound session with this full JID, if it can receive.
    fn receiving_session(&self, full: &FullJid) -> Option<SessionId> {
        self.session_id(full).filter(|&sid| self.can_receive(sid))
    }

    /// Available resources with the highest non-negative priority, leaving
    /// out sessions whose socket has dropped.
    pub(super) fn top_resources(&self, user: &BareJid) -> SmallVec<[SessionId; 4]> {
        let mut best: Option<i8> = None;
        let mut tops = SmallVec::new();
        for s in self.resources(user) {
            let (Some(_), Some(p)) = (s.presence(), s.priority()) else {
                continue;
            };
            if !s.receives() {
                continue;
            }
            if p < 0 {
                continue;
            }
            match best {
                Some(b) if p < b => {}
                Some(b) if p == b => tops.push(s.id),
                _ => {
                    best = Some(p);
                    tops.clear();
                    tops.push(s.id);
                }
            }
        }
        tops
    }

    /// Serializes once and sends to one session.
    pub(super) fn transmit_element(&mut self, session: SessionId, stanza: &Element) {
        let data = stream::element_bytes(stanza);
        self.deliver_bytes(session, data, stanza);
    }

    /// Serializes once and shares the bytes between sessions.
    pub(super) fn transmit_many(&mut self, sessions: &[SessionId], stanza: &Element) {
        if sessions.is_empty() {
            return;
        }
        let data: Bytes = stream::element_bytes(stanza);
        for &session in sessions {
            self.deliver_bytes(session, data.clone(), stanza);
        }
    }

    /// Flushes offline messages to a session that just became available
    /// with a non-negative priority (XEP-0160).
    /// Called while the initial presence runs at the head of the user's
    /// queue: the stored messages go before anything queued behind it, so
    /// they arrive first however late storage answers.
    pub(super) fn flush_offline(&mut self, session: SessionId, user: &BareJid) {
        if !self.config.offline_storage {
            return;
        }
        match self.queue_mut(user) {
            Some(queue) => queue.backlog.push_front(Work::FlushOffline { session }),
            None => self.defer(Task::Submit {
                user: user.clone(),
                work: Work::FlushOffline { session },
            }),
        }
    }

    /// A stanza from outside this server (s2s, a component, another node,
    /// or the embedder). It must carry valid `from` and `to`; it is delivered
    /// to local sessions with the same rules as stanzas from clients.
    /// Stanzas for domains not served here are dropped (no loops).
    pub fn handle_routed(&mut self, stanza: Element, now: Instant) {
        if !stanza.has_ns(NS_CLIENT) && !stanza.has_ns(xml::NS_SERVER) {
            return;
        }
        let Some(mut stanza) = Stanza::parse(stanza) else {
            return;
        };
        if !matches!(stanza.header.from, Some(Ok(_))) {
            return;
        }
        // Not for a domain served here: dropped, never routed back out.
        if let Some(to) = stanza.header.recipient()
            && !self.config.serves(to.domain().as_str())
        {
            return;
        }
        if stanza.element.has_ns(xml::NS_SERVER) {
            let element = std::mem::replace(&mut stanza.element, Element::bare("iq", NS_CLIENT));
            stanza.element = rename_ns(element, xml::NS_SERVER, NS_CLIENT);
        }
        self.route_stanza(stanza, Origin::External, now);
        self.run_tasks(now);
    }
}

/// The stored copy without its `<delay/>` (for error replies).
fn strip_delay(mut stanza: Element) -> Element {
    stanza.remove_child("delay", xml::NS_DELAY);
    stanza
}

/// Moves an element and its descendants from one namespace to another.
///
/// Iterative, so stack depth does not grow with the depth of the tree (the
/// element comes from the embedder through
/// [`SessionManager::handle_routed`]); heap use grows with it instead.
fn rename_ns(el: Element, from: &str, to: &str) -> Element {
    struct Frame {
        out: Element,
        rest: std::vec::IntoIter<minidom::Node>,
    }
    let open = |mut el: Element| -> Frame {
        let mut out = Element::bare(el.name(), to);
        for ((ns, name), value) in el.attrs().iter() {
            out.attrs_mut()
                .insert(ns.clone(), name.clone(), value.clone());
        }
        let nodes: Vec<minidom::Node> = el.take_nodes();
        Frame {
            out,
            rest: nodes.into_iter(),
        }
    };
    if !el.has_ns(from) {
        return el;
    }
    let mut stack = vec![open(el)];
    loop {
        let Some(top) = stack.last_mut() else {
            // Not reached: the loop returns when it pops the root.
            return Element::bare("presence", to);
        };
        match top.rest.next() {
            Some(minidom::Node::Element(child)) => {
                if child.has_ns(from) {
                    stack.push(open(child));
                } else {
                    top.out.append_child(child);
                }
            }
            Some(minidom::Node::Text(text)) => {
                top.out.append_text_node(text);
            }
            None => {
                let Some(done) = stack.pop() else {
                    return Element::bare("presence", to);
                };
                match stack.last_mut() {
                    Some(parent) => {
                        parent.out.append_child(done.out);
                    }
                    None => return done.out,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::rename_ns;
    use minidom::Element;

    #[test]
    fn rename_ns_renames_every_level() {
        // Built by hand: minidom's own parser would refuse this depth.
        let mut leaf = Element::bare("x", "jabber:server");
        leaf.append_text_node("t");
        let mut el = leaf;
        for _ in 1..100 {
            let mut parent = Element::bare("x", "jabber:server");
            parent.append_child(el);
            el = parent;
        }
        let mut root = Element::bare("message", "jabber:server");
        root.append_child(el);
        let renamed = rename_ns(root, "jabber:server", "jabber:client");
        assert!(renamed.has_ns("jabber:client"));
        let mut cur = &renamed;
        let mut seen = 0;
        while let Some(child) = cur.children().next() {
            assert!(child.has_ns("jabber:client"));
            cur = child;
            seen += 1;
        }
        assert_eq!(seen, 100);
        assert_eq!(cur.text(), "t");
    }
}
