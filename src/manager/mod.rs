//! [`SessionManager`]: all sessions of one server, their index, and the
//! `handle_*` / `poll_*` API.
//!
//! The child modules each add one concern to `SessionManager` and reach its
//! private fields through module privacy: [`account`] (the per-user record),
//! [`bind`] (resource binding), [`routing`] (delivery rules and per-user
//! queues), [`presence`], [`roster`] and [`iq`] (server-handled IQs and the
//! extension registry), and the session-level XEPs [`carbons`] (XEP-0280),
//! [`blocking`] (XEP-0191) and [`csi`] (XEP-0352, the hold stage in front
//! of every session's output).

mod account;
mod bind;
mod blocking;
mod carbons;
mod csi;
mod iq;
mod presence;
mod roster;
mod routing;
mod sasl2;
mod sm;
mod work;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Instant;

use jid::{BareJid, FullJid};
use minidom::Element;

use crate::clock::WallClock;
use crate::config::Config;
use crate::error::{StreamError, StreamErrorCondition};
use crate::ids::{IdMap, RequestId, SessionId};
use crate::negotiation::{Ctx, FeaturesCache, Step, frame_error_to_stream_error};
use crate::output::{ConnectionInfo, Event, Framing, Output, TlsInfo};
use crate::random::{OsRandom, RandomSource};
use crate::session::Blocked;
use crate::session::{Session, SessionKind};
use crate::storage::{Request, Response, Store};
use crate::stream::{self, StreamReader};
use account::Account;
use iq::Extensions;
use routing::Work;
use work::Task;

/// Work waiting for a [`Response`].
#[derive(Debug)]
enum Pending {
    /// A SASL answer for a session: SCRAM credentials or a PLAIN password check.
    Credentials(SessionId),
    /// The suspended head of a user's queue.
    User(BareJid),
    /// A roster write, acknowledged with [`Response::Done`].
    RosterWrite(BareJid),
    /// A blocklist write, acknowledged with [`Response::Done`].
    BlocklistWrite(BareJid),
    /// A write whose answer changes nothing (FAST tokens).
    Write,
}

/// All client sessions of one server process. See the crate docs.
pub struct SessionManager {
    config: Config,
    /// Serialised stream features (they depend on `config`, which never changes).
    features: FeaturesCache,
    rng: Box<dyn RandomSource>,
    /// Boxed: the table holds a pointer per bucket, not a whole session
    /// (hashbrown rounds buckets up to a power of two).
    sessions: IdMap<SessionId, Box<Session>>,
    /// One record per account with anything to keep (see [`account`]).
    accounts: HashMap<BareJid, Account>,
    /// How many accounts have work waiting on storage.
    open_queues: usize,
    pending: IdMap<RequestId, Pending>,
    out: VecDeque<Output>,
    clock: WallClock,
    extensions: Extensions,
    /// The work list drained by [`work`]'s loop (a stack: last is next).
    tasks: Vec<Task>,
    /// What the running task deferred, moved onto `tasks` when it returns.
    batch: Vec<Task>,
    timers: BinaryHeap<Reverse<(Instant, SessionId)>>,
    next_session: u64,
    next_request: u64,
    /// Full JIDs as clients write them, mapped to the session last bound
    /// to them: a hint for byte forwarding, checked on every use.
    fast_routes: HashMap<Box<str>, SessionId>,
    /// Whether byte forwarding is on (tests compare with it off).
    byte_forwarding: bool,
    /// Messages forwarded as bytes so far.
    forwarded: u64,
    /// Resumption tokens of ended sessions, oldest first (bounded by
    /// `Config::sm_expired_tokens` and its retention).
    expired_tokens: VecDeque<sm::ExpiredToken>,
    /// Bound sessions with message carbons enabled (XEP-0280).
    carbons_enabled: usize,
    /// Cached blocklists that block anybody (XEP-0191).
    nonempty_blocklists: usize,
    /// Bound sessions whose client is inactive (XEP-0352).
    inactive_sessions: usize,
    /// Finds `urn:xmpp:carbons:2` in a message the fast path would forward
    /// (built once).
    carbons_markup: memchr::memmem::Finder<'static>,
    /// A WebSocket connection was accepted once: outputs may need framing.
    websocket: bool,
}

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager")
            .field("sessions", &self.sessions.len())
            .field("accounts", &self.accounts.len())
            .field("pending", &self.pending.len())
            .field("queued_outputs", &self.out.len())
            .finish()
    }
}

impl SessionManager {
    /// A manager using the operating system's random generator.
    pub fn new(config: Config) -> Self {
        Self::with_random(config, Box::new(OsRandom))
    }

    /// A manager with its own source of randomness (nonces, ids). Tests use
    /// `SeededRandom` (feature `testkit`) for reproducible output.
    pub fn with_random(config: Config, rng: Box<dyn RandomSource>) -> Self {
        Self {
            config,
            features: FeaturesCache::default(),
            rng,
            sessions: IdMap::default(),
            accounts: HashMap::new(),
            open_queues: 0,
            pending: IdMap::default(),
            out: VecDeque::new(),
            clock: WallClock::new(),
            extensions: Extensions::default(),
            tasks: Vec::new(),
            batch: Vec::new(),
            timers: BinaryHeap::new(),
            next_session: 1,
            next_request: 1,
            fast_routes: HashMap::new(),
            byte_forwarding: true,
            forwarded: 0,
            expired_tokens: VecDeque::new(),
            carbons_enabled: 0,
            nonempty_blocklists: 0,
            inactive_sessions: 0,
            carbons_markup: memchr::memmem::Finder::new(crate::xml::NS_CARBONS),
            websocket: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// States which wall-clock time `now` is, for XEP-0203 delay stamps on
    /// offline messages and stored presence. The core never reads a clock;
    /// without this call the first instant seen counts as 1970-01-01.
    pub fn set_wall_clock(&mut self, now: Instant, wall: std::time::SystemTime) {
        self.clock.set(now, wall);
    }

    /// A new connection: returns its handle. The session starts
    /// unauthenticated and waits for the client's stream header.
    pub fn connect(&mut self, info: ConnectionInfo, now: Instant) -> SessionId {
        let id = SessionId(self.next_session);
        self.next_session = self.next_session.saturating_add(1);
        let deadline = now.checked_add(self.config.auth_timeout);
        let websocket = info.framing == Framing::WebSocket;
        let reader = if websocket {
            self.websocket = true;
            StreamReader::new_framed(self.config.unauthenticated_limits)
        } else {
            StreamReader::new(self.config.unauthenticated_limits)
        };
        let mut session = Session::new(
            id,
            info.secure,
            info.starttls_available,
            reader,
            now,
            deadline,
        );
        session.framing = info.framing;
        self.sessions.insert(id, Box::new(session));
        if let Some(d) = deadline {
            self.timers.push(Reverse((d, id)));
        }
        id
    }

    /// Bytes read from the session's socket, in any chunking. On a
    /// [`Framing::WebSocket`] connection `data` is one message's payload,
    /// as for [`SessionManager::handle_frame`].
    pub fn handle_input(&mut self, id: SessionId, data: &[u8], now: Instant) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        if session.framing == Framing::WebSocket {
            self.handle_frame(id, data, now);
            return;
        }
        if session.closed() || session.awaiting_tls() || session.transport_lost() {
            // Bytes after our close, or raw TLS handshake bytes before the
            // caller finished STARTTLS: not ours to parse.
            return;
        }
        self.client_activity(id, data);
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        session.reader.push(data);
        self.drive(id, now);
        self.run_tasks(now);
    }

    /// The payload of one WebSocket text message from a
    /// [`Framing::WebSocket`] connection (RFC 7395). It must hold exactly
    /// one complete element (white space around it is ignored) with its
    /// own namespace declarations; anything else (two elements, a partial
    /// one, a `<stream:stream>` header) closes the stream with a stream
    /// error once the messages before it are processed. Each
    /// [`Output::Transmit`] for the session is then one message to send.
    /// On a TCP connection this is [`SessionManager::handle_input`].
    pub fn handle_frame(&mut self, id: SessionId, payload: &[u8], now: Instant) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        if session.framing != Framing::WebSocket {
            self.handle_input(id, payload, now);
            return;
        }
        if session.closed() || session.frame_error.is_some() || session.transport_lost() {
            return;
        }
        self.client_activity(id, payload);
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        match stream::read_frame(payload, session.reader.limits()) {
            Ok(_) => session.reader.push(payload),
            Err(e) => {
                session.frame_error = Some(Box::new(frame_error_to_stream_error(e)));
            }
        }
        self.drive(id, now);
        self.run_tasks(now);
    }

    /// The transport finished STARTTLS; the client will send a new header.
    ///
    /// On a direct-TLS connection, calling it before any input only records
    /// the [`TlsInfo`] (its channel-binding data); see there.
    pub fn handle_tls_established(&mut self, id: SessionId, info: TlsInfo, now: Instant) {
        if let Some(session) = self.sessions.get_mut(&id) {
            session.tls_established(info);
        }
        self.drive(id, now);
        self.run_tasks(now);
    }

    /// The socket closed or failed (also for a read error or the embedder's
    /// own read timeout). The session is cleaned up as if closed — unless
    /// it is resumable (XEP-0198): then it hibernates (see
    /// [`Event::Hibernating`]) and its handle stays valid until it is
    /// resumed or expires.
    ///
    /// Stanzas the client sent before the socket dropped are still processed
    /// first; when some wait on storage, cleanup follows once they are done.
    pub fn handle_disconnect(&mut self, id: SessionId, now: Instant) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        session.transport = crate::session::Transport::Lost;
        if session.kind() == SessionKind::Bound && !session.closed() {
            self.drive(id, now);
        } else {
            session.mark_closed();
            self.remove_session(id, None, now);
        }
        self.run_tasks(now);
    }

    /// A deadline from [`SessionManager::poll_timeout`] passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((deadline, id))) = self.timers.peek().copied() {
            if deadline > now {
                break;
            }
            self.timers.pop();
            self.sm_deadline(id, deadline, now);
            let expired = self.sessions.get(&id).is_some_and(|s| {
                s.kind() == SessionKind::Unauthenticated && s.auth_deadline() == Some(deadline)
            });
            if expired {
                self.close(
                    id,
                    StreamError::new(StreamErrorCondition::ConnectionTimeout),
                    now,
                );
            }
        }
        self.run_tasks(now);
    }

    /// The next deadline at which [`SessionManager::handle_timeout`] must be
    /// called, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((d, _))| *d)
    }

    /// The next thing to do, `None` when there is nothing left.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Like [`SessionManager::poll_output`], but answers every
    /// [`Output::Request`] from `store` at once instead of returning it.
    pub fn poll_output_with<S: Store + ?Sized>(
        &mut self,
        store: &mut S,
        now: Instant,
    ) -> Option<Output> {
        loop {
            match self.out.pop_front()? {
                Output::Request { id, request } => {
                    let response = store.answer(&request);
                    self.complete(id, response, now);
                }
                other => return Some(other),
            }
        }
    }

    /// The answer to a [`Output::Request`]. Unknown ids are ignored.
    pub fn complete(&mut self, id: RequestId, response: Response, now: Instant) {
        let Some(pending) = self.pending.remove(&id) else {
            return;
        };
        match pending {
            Pending::Credentials(session_id) => {
                let Some(session) = self.sessions.get_mut(&session_id) else {
                    return;
                };
                let mut ctx = Ctx {
                    config: &self.config,
                    rng: self.rng.as_mut(),
                    out: &mut self.out,
                    features: &mut self.features,
                };
                let unix_now = self.clock.unix_seconds(now);
                let step = session.sasl_answer(&mut ctx, response, unix_now);
                self.after_step(session_id, step, now);
                self.drive_later(session_id, now);
            }
            Pending::User(user) => self.resume_user(user, id, response, now),
            Pending::Write => {}
            Pending::RosterWrite(user) => {
                // The next queued write for this user goes out only now.
                let next = self.cached_mut(&user).and_then(|cached| {
                    cached.writes_in_flight = cached.writes_in_flight.saturating_sub(1);
                    cached.queued_writes.pop_front()
                });
                if let Some(request) = next {
                    self.new_request(Pending::RosterWrite(user.clone()), request);
                }
                self.tidy_account(&user);
            }
            Pending::BlocklistWrite(user) => self.blocklist_written(&user),
        }
        self.run_tasks(now);
    }

    /// A user's queue is empty: forget it and let its sessions read on.
    fn queue_drained(&mut self, user: BareJid) {
        let blocked = self.close_queue(&user);
        self.tidy_account(&user);
        for id in blocked {
            self.defer(Task::Unblock(id));
        }
    }

    /// Lets a session held for its account's queue read on.
    fn unblock(&mut self, id: SessionId) {
        if let Some(s) = self.sessions.get_mut(&id)
            && s.blocked == Some(Blocked::Manager)
        {
            s.blocked = None;
        }
    }

    /// Keeps a client's stanzas in order: while its own account has work
    /// waiting for storage, it reads no further.
    fn hold_for_queue(&mut self, id: SessionId) {
        if self.open_queues == 0 {
            return;
        }
        let user = self.sessions.get(&id).and_then(|s| s.bare_jid().cloned());
        if let Some(user) = user
            && let Some(account) = self.accounts.get_mut(&user)
            && account.queue.is_some()
        {
            if !account.blocked.contains(&id) {
                account.blocked.push(id);
            }
            if let Some(s) = self.sessions.get_mut(&id) {
                s.blocked = Some(Blocked::Manager);
            }
        }
    }

    /// Sends a stanza to a session as it is (Prosody's `session.send`).
    /// Returns `false` if the session does not exist, is closed, or has no
    /// open stream (before its header or during a restart), where a stanza
    /// would break the XML stream.
    ///
    /// A stanza to a bound session goes through stream management like any
    /// other (counted; queued while the session hibernates).
    pub fn send(&mut self, id: SessionId, stanza: &Element) -> bool {
        match self.sessions.get(&id) {
            // A bound session's stanzas pass its output seam: the XEP-0352
            // hold stage, then the send point where XEP-0198 counts them
            // (see `csi` and `sm`). An overflow this causes is handled by the
            // next `handle_*` call (this one has no `now`).
            Some(s) if s.is_open() && s.bound().is_some() && s.receives() => {
                self.transmit_element(id, stanza);
                true
            }
            Some(s) if s.is_open() && !s.transport_lost() => {
                s.send_element(&mut self.out, stanza);
                true
            }
            _ => false,
        }
    }

    /// Closes a session with a stream error (Prosody's `session.close`):
    /// the error, `</stream:stream>` and [`Output::Close`], then cleanup.
    pub fn close(&mut self, id: SessionId, reason: StreamError, now: Instant) {
        self.close_with(id, Some(reason), now);
    }

    /// Closes a session cleanly, without a stream error.
    pub fn close_cleanly(&mut self, id: SessionId, now: Instant) {
        self.close_with(id, None, now);
    }

    fn close_with(&mut self, id: SessionId, reason: Option<StreamError>, now: Instant) {
        self.close_session(id, reason, now);
        self.run_tasks(now);
    }

    /// Closes a session's stream and removes it (after the work deferred so
    /// far, if any).
    fn close_session(&mut self, id: SessionId, reason: Option<StreamError>, now: Instant) {
        if self.deferring() {
            self.defer(Task::Close { id, reason });
            return;
        }
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        if session.removing() {
            return;
        }
        if session.hibernating() {
            // No transport to write the error to.
            self.end_hibernating(id, crate::output::HibernationEnd::Ended, now);
            return;
        }
        // XEP-0352: what an inactive client has not seen yet goes first.
        self.flush_held(id);
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let mut ctx = Ctx {
            config: &self.config,
            rng: self.rng.as_mut(),
            out: &mut self.out,
            features: &mut self.features,
        };
        session.close(&mut ctx, reason.clone());
        self.remove_session(id, reason, now);
    }

    /// The read-only view of a session.
    pub fn session(&self, id: SessionId) -> Option<&Session> {
        self.sessions.get(&id).map(|s| &**s)
    }

    /// Number of sessions (any state).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The bound sessions of an account, in bind order.
    pub fn resources<'a>(&'a self, jid: &BareJid) -> impl Iterator<Item = &'a Session> + 'a {
        self.bound_sessions(jid)
            .iter()
            .filter_map(|id| self.session(*id))
    }

    /// The roster of an account as cached in the manager (Prosody's
    /// `session.roster`, shared by all of the account's sessions), if loaded.
    pub fn cached_roster(&self, jid: &BareJid) -> Option<&crate::roster::Roster> {
        self.roster(jid)
    }

    /// The bound session with this full JID.
    pub fn session_by_jid(&self, jid: &FullJid) -> Option<&Session> {
        self.session_id(jid).and_then(|id| self.session(id))
    }

    /// The handle of the bound session with this full JID.
    pub fn session_id(&self, jid: &FullJid) -> Option<SessionId> {
        self.resources(&jid.to_bare())
            .find(|s| s.full_jid() == Some(jid))
            .map(|s| s.id)
    }

    fn new_request(&mut self, pending: Pending, request: Request) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request = self.next_request.saturating_add(1);
        self.pending.insert(id, pending);
        self.out.push_back(Output::Request { id, request });
        id
    }

    /// Runs a session until it needs more input or an answer, or until a
    /// step defers work (then the rest follows that work as a task).
    fn drive(&mut self, id: SessionId, now: Instant) {
        loop {
            if self.deferring() {
                self.defer(Task::Drive {
                    id,
                    after_stanza: false,
                });
                return;
            }
            let Some(session) = self.sessions.get_mut(&id) else {
                return;
            };
            if session.removing() {
                return;
            }
            if session.blocked.is_none()
                && !session.closed()
                && session.sm().is_some()
                && let Some((h, len)) = session.reader.peek_sm_ack()
            {
                // The most frequent nonza, without building an element.
                session.reader.consume_raw(len);
                if let Some(sm) = session.sm_mut()
                    && sm.ack(h).is_ok()
                {
                    continue;
                }
                self.sm_ack_h(id, h, now);
                continue;
            }
            if self.byte_forwarding
                && self.open_queues == 0
                && session.blocked.is_none()
                && !session.closed()
                && !session.awaiting_tls()
                && session.bound().is_some()
                && let Some(raw) = session.reader.peek_message()
                && self.forward_message(id, &raw)
            {
                continue;
            }
            let Some(session) = self.sessions.get_mut(&id) else {
                return;
            };
            let mut ctx = Ctx {
                config: &self.config,
                rng: self.rng.as_mut(),
                out: &mut self.out,
                features: &mut self.features,
            };
            let step = session.step(&mut ctx);
            if matches!(step, Step::Idle) {
                // A dropped connection is cleaned up once its input is done.
                if session.transport_lost() && session.blocked.is_none() {
                    self.transport_gone(id, now);
                }
                return;
            }
            self.after_step(id, step, now);
        }
    }

    fn after_step(&mut self, id: SessionId, step: Step, now: Instant) {
        match step {
            Step::Idle | Step::Continue => {}
            Step::Stanza(el) => {
                self.sm_handled(id);
                self.handle_client_stanza(id, el, now);
                if self.deferring() {
                    self.defer(Task::Drive {
                        id,
                        after_stanza: true,
                    });
                } else {
                    self.hold_for_queue(id);
                }
            }
            Step::SaslRequest(request) => {
                self.request(Pending::Credentials(id), request);
            }
            Step::Bind(request) => self.bind(id, request, now),
            Step::ClientState { active } => self.set_client_state(id, active),
            Step::Authenticated => {
                if let Some(username) = self.sessions.get(&id).and_then(|s| s.username.clone()) {
                    self.emit(Output::Event(Event::Authenticated {
                        session: id,
                        username,
                    }));
                }
            }
            Step::Sasl2(success) => self.sasl2_success(id, *success, now),
            Step::Sm(el) => self.handle_sm(id, el, now),
            Step::Closed => self.remove_session(id, None, now),
        }
    }

    /// Removes a closed or disconnected session from every table.
    fn remove_session(&mut self, id: SessionId, reason: Option<StreamError>, now: Instant) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        if session.removing() {
            return;
        }
        session.lifecycle = crate::session::Lifecycle::Removing;
        let leftovers = self.sm_take_leftovers(id, now);
        if let Some(full) = self.sessions.get(&id).and_then(|s| s.full_jid().cloned()) {
            self.unbind(id, &full, reason.as_ref(), now);
            if !leftovers.is_empty() {
                self.sm_dispose(&full.to_bare(), leftovers, now);
            }
        }
        if self.deferring() {
            self.defer(Task::Forget(id));
        } else {
            self.forget_session(id);
        }
    }

    /// The end of [`SessionManager::remove_session`]: the handle dies.
    fn forget_session(&mut self, id: SessionId) {
        self.sessions.remove(&id);
        self.pending
            .retain(|_, p| !matches!(p, Pending::Credentials(s) if *s == id));
        self.emit(Output::Event(Event::Closed { session: id }));
    }

    /// Takes a bound session out of the index (before it is dropped) and
    /// broadcasts its unavailable presence (Prosody §5.9).
    fn unbind(
        &mut self,
        id: SessionId,
        full: &FullJid,
        reason: Option<&StreamError>,
        now: Instant,
    ) {
        let bare = full.to_bare();
        let (was_available, directed, carbons, csi) =
            match self.sessions.get_mut(&id).and_then(|s| s.bound_mut()) {
                Some(bound) => (
                    bound.presence.take().is_some(),
                    std::mem::take(&mut bound.directed),
                    std::mem::take(&mut bound.carbons),
                    bound.csi.take(),
                ),
                None => (false, Vec::new(), false, None),
            };
        self.carbons_unbound(carbons);
        self.csi_unbound(csi);
        if let Some(account) = self.accounts.get_mut(&bare) {
            account.sessions.retain(|s| *s != id);
            account.blocked.retain(|s| *s != id);
        }
        self.emit(Output::Event(Event::Unbound {
            session: id,
            jid: full.clone(),
        }));
        if was_available || !directed.is_empty() {
            let status = reason.map(|r| match &r.text {
                Some(t) => t.to_string(),
                None => r.condition.as_str().to_owned(),
            });
            self.submit(
                bare.clone(),
                Work::Unbound {
                    full: full.clone(),
                    was_available,
                    directed,
                    status,
                },
                now,
            );
        }
        if self.deferring() {
            self.defer(Task::TidyAccount(bare));
        } else {
            self.tidy_account(&bare);
        }
    }
}
