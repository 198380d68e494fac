//! [`SessionManager`]: all sessions of one server, their index, and the
//! `handle_*` / `poll_*` API.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use jid::{BareJid, FullJid};
use minidom::Element;
use smallvec::SmallVec;

use crate::clock::WallClock;
use crate::config::{Config, ConflictPolicy};
use crate::error::{
    ErrorType, StanzaError, StanzaErrorCondition, StreamError, StreamErrorCondition,
};
use crate::ids::{RequestId, SessionId};
use crate::iq::Extensions;
use crate::negotiation::{BindRequest, Ctx, Step};
use crate::random::{OsRandom, RandomSource, random_id};
use crate::roster::CachedRoster;
use crate::routing::{UserQueue, Work};
use crate::session::Blocked;
use crate::session::{Session, SessionKind};
use crate::storage::{Request, Response, Store};
use crate::stream::StreamReader;

/// What the caller must do. Drain with [`SessionManager::poll_output`] after
/// every `handle_*` call.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Output {
    /// Write these bytes to the session's socket. A stanza delivered to many
    /// sessions is serialized once: the same `Bytes` is shared.
    Transmit {
        /// The session to write to.
        session: SessionId,
        /// The bytes.
        data: Bytes,
    },
    /// `<proceed/>` went out: start TLS on the socket, then call
    /// [`SessionManager::handle_tls_established`].
    StartTls {
        /// The session whose transport must start TLS.
        session: SessionId,
    },
    /// The closing bytes went out: close the socket.
    Close {
        /// The session to close.
        session: SessionId,
    },
    /// A stanza for a domain this server does not serve (s2s, a component,
    /// another cluster node).
    Route {
        /// The stanza, with `from` and `to` set.
        stanza: Element,
    },
    /// Storage or credentials the caller must answer with
    /// [`SessionManager::complete`].
    Request {
        /// Echo this in `complete`.
        id: RequestId,
        /// What is needed.
        request: Request,
    },
    /// Something happened that an embedder may want to know or act on.
    Event(Event),
}

/// Notifications for the embedder.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// SASL succeeded.
    Authenticated {
        /// The session.
        session: SessionId,
        /// The account's user name.
        username: String,
    },
    /// A resource was bound: the session is a connected resource.
    Bound {
        /// The session.
        session: SessionId,
        /// Its full JID.
        jid: FullJid,
    },
    /// A bound session ended.
    Unbound {
        /// The session.
        session: SessionId,
        /// The full JID it had.
        jid: FullJid,
    },
    /// A session was removed (closed or disconnected); its handle is dead.
    Closed {
        /// The session.
        session: SessionId,
    },
    /// A stanza claimed by the embedder (see
    /// [`SessionManager::register_iq_namespace`]). Every iq get/set must be
    /// answered, e.g. with [`SessionManager::handle_routed`].
    Stanza {
        /// The sending session, if it came from a local client.
        session: Option<SessionId>,
        /// The stanza, `from` stamped.
        stanza: Element,
    },
}

/// Facts about a new connection. Build it with [`ConnectionInfo::plain`],
/// [`ConnectionInfo::starttls`] or [`ConnectionInfo::direct_tls`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    pub(crate) secure: bool,
    pub(crate) starttls_available: bool,
}

impl ConnectionInfo {
    /// The transport is already encrypted (direct TLS).
    pub fn is_secure(&self) -> bool {
        self.secure
    }
    /// The caller can run STARTTLS on this connection.
    pub fn starttls_available(&self) -> bool {
        self.starttls_available
    }
    /// Plain TCP without STARTTLS.
    pub fn plain() -> Self {
        Self {
            secure: false,
            starttls_available: false,
        }
    }
    /// Plain TCP that can be upgraded with STARTTLS.
    pub fn starttls() -> Self {
        Self {
            secure: false,
            starttls_available: true,
        }
    }
    /// Direct TLS.
    pub fn direct_tls() -> Self {
        Self {
            secure: true,
            starttls_available: false,
        }
    }
}

/// Facts about a finished TLS handshake. Nothing is read from it yet; it
/// has room for channel-binding data and the peer certificate. Build it
/// with [`TlsInfo::default`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsInfo {}

/// A user with at least one bound resource.
#[derive(Debug, Default)]
pub(crate) struct UserRecord {
    /// Bound sessions, in bind order.
    pub sessions: SmallVec<[SessionId; 4]>,
}

/// Work waiting for a [`Response`].
#[derive(Debug)]
pub(crate) enum Pending {
    /// A SASL answer for a session: SCRAM credentials or a PLAIN password check.
    Credentials(SessionId),
    /// The suspended head of a user's queue.
    User(BareJid),
    /// A roster write, acknowledged with [`Response::Done`].
    RosterWrite(BareJid),
}

/// All client sessions of one server process. See the crate docs.
pub struct SessionManager {
    pub(crate) config: Config,
    pub(crate) rng: Box<dyn RandomSource>,
    pub(crate) sessions: HashMap<SessionId, Session>,
    pub(crate) users: HashMap<BareJid, UserRecord>,
    pub(crate) pending: HashMap<RequestId, Pending>,
    pub(crate) out: VecDeque<Output>,
    pub(crate) queues: HashMap<BareJid, UserQueue>,
    pub(crate) rosters: HashMap<BareJid, CachedRoster>,
    pub(crate) clock: WallClock,
    pub(crate) extensions: Extensions,
    /// Sessions waiting for their own user's queue to drain.
    blocked_on_queue: HashMap<BareJid, SmallVec<[SessionId; 2]>>,
    timers: BinaryHeap<Reverse<(Instant, SessionId)>>,
    next_session: u64,
    next_request: u64,
}

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager")
            .field("sessions", &self.sessions.len())
            .field("users", &self.users.len())
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
            rng,
            sessions: HashMap::new(),
            users: HashMap::new(),
            pending: HashMap::new(),
            out: VecDeque::new(),
            queues: HashMap::new(),
            rosters: HashMap::new(),
            clock: WallClock::new(),
            extensions: Extensions::default(),
            blocked_on_queue: HashMap::new(),
            timers: BinaryHeap::new(),
            next_session: 1,
            next_request: 1,
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
        let reader = StreamReader::new(self.config.unauthenticated_limits);
        let session = Session::new(
            id,
            info.secure,
            info.starttls_available,
            reader,
            now,
            deadline,
        );
        self.sessions.insert(id, session);
        if let Some(d) = deadline {
            self.timers.push(Reverse((d, id)));
        }
        id
    }

    /// Bytes read from the session's socket, in any chunking.
    pub fn handle_input(&mut self, id: SessionId, data: &[u8], now: Instant) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        if session.closed || session.awaiting_tls {
            // Bytes after our close, or raw TLS handshake bytes before the
            // caller finished STARTTLS: not ours to parse.
            return;
        }
        session.reader.push(data);
        self.drive(id, now);
    }

    /// The transport finished STARTTLS; the client will send a new header.
    pub fn handle_tls_established(&mut self, id: SessionId, _info: TlsInfo, now: Instant) {
        if let Some(session) = self.sessions.get_mut(&id) {
            session.tls_established();
        }
        self.drive(id, now);
    }

    /// The socket closed or failed. The session is cleaned up as if closed.
    ///
    /// Stanzas the client sent before the socket dropped are still processed
    /// first; when some wait on storage, cleanup follows once they are done.
    pub fn handle_disconnect(&mut self, id: SessionId, now: Instant) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        session.disconnected = true;
        if session.kind == SessionKind::Bound && !session.closed {
            self.drive(id, now);
            return;
        }
        session.closed = true;
        self.remove_session(id, None, now);
    }

    /// A deadline from [`SessionManager::poll_timeout`] passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((deadline, id))) = self.timers.peek().copied() {
            if deadline > now {
                break;
            }
            self.timers.pop();
            let expired = self.sessions.get(&id).is_some_and(|s| {
                s.kind == SessionKind::Unauthenticated && s.auth_deadline == Some(deadline)
            });
            if expired {
                self.close(
                    id,
                    StreamError::new(StreamErrorCondition::ConnectionTimeout),
                    now,
                );
            }
        }
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
                };
                let step = session.sasl_answer(&mut ctx, response);
                self.after_step(session_id, step, now);
                self.drive(session_id, now);
            }
            Pending::User(user) => self.resume_user(user, id, response, now),
            Pending::RosterWrite(user) => {
                // The next queued write for this user goes out only now.
                let next = self.rosters.get_mut(&user).and_then(|cached| {
                    cached.writes_in_flight = cached.writes_in_flight.saturating_sub(1);
                    cached.queued_writes.pop_front()
                });
                if let Some(request) = next {
                    self.new_request(Pending::RosterWrite(user.clone()), request);
                }
                self.maybe_evict_roster(&user);
            }
        }
    }

    /// Drops a cached roster nobody needs any more.
    pub(crate) fn maybe_evict_roster(&mut self, user: &BareJid) {
        let idle = !self.users.contains_key(user)
            && !self.queues.contains_key(user)
            && self
                .rosters
                .get(user)
                .is_some_and(|c| c.writes_in_flight == 0);
        if idle {
            self.rosters.remove(user);
        }
    }

    /// A user's queue is empty: forget it and let its sessions read on.
    pub(crate) fn queue_drained(&mut self, user: BareJid, now: Instant) {
        self.queues.remove(&user);
        self.maybe_evict_roster(&user);
        if let Some(blocked) = self.blocked_on_queue.remove(&user) {
            for id in blocked {
                if let Some(s) = self.sessions.get_mut(&id)
                    && s.blocked == Some(Blocked::Manager)
                {
                    s.blocked = None;
                }
                self.drive(id, now);
            }
        }
    }

    /// Sends a stanza to a session as it is (Prosody's `session.send`).
    /// Returns `false` if the session does not exist, is closed, or has no
    /// open stream (before its header or during a restart), where a stanza
    /// would break the XML stream.
    pub fn send(&mut self, id: SessionId, stanza: &Element) -> bool {
        match self.sessions.get(&id) {
            Some(s) if s.is_open() => {
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
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let mut ctx = Ctx {
            config: &self.config,
            rng: self.rng.as_mut(),
            out: &mut self.out,
        };
        session.close(&mut ctx, reason.clone());
        self.remove_session(id, reason, now);
    }

    /// The read-only view of a session.
    pub fn session(&self, id: SessionId) -> Option<&Session> {
        self.sessions.get(&id)
    }

    /// Number of sessions (any state).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The bound sessions of an account, in bind order.
    pub fn resources<'a>(&'a self, jid: &BareJid) -> impl Iterator<Item = &'a Session> + 'a {
        self.users
            .get(jid)
            .into_iter()
            .flat_map(|u| u.sessions.iter())
            .filter_map(|id| self.sessions.get(id))
    }

    /// The roster of an account as cached in the manager (Prosody's
    /// `session.roster`, shared by all of the account's sessions), if loaded.
    pub fn cached_roster(&self, jid: &BareJid) -> Option<&crate::roster::Roster> {
        self.roster(jid)
    }

    /// The bound session with this full JID.
    pub fn session_by_jid(&self, jid: &FullJid) -> Option<&Session> {
        self.session_id(jid).and_then(|id| self.sessions.get(&id))
    }

    /// The handle of the bound session with this full JID.
    pub fn session_id(&self, jid: &FullJid) -> Option<SessionId> {
        self.resources(&jid.to_bare())
            .find(|s| s.full_jid.as_ref() == Some(jid))
            .map(|s| s.id)
    }

    pub(crate) fn new_request(&mut self, pending: Pending, request: Request) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request = self.next_request.saturating_add(1);
        self.pending.insert(id, pending);
        self.out.push_back(Output::Request { id, request });
        id
    }

    /// Runs a session until it needs more input or an answer.
    pub(crate) fn drive(&mut self, id: SessionId, now: Instant) {
        loop {
            let Some(session) = self.sessions.get_mut(&id) else {
                return;
            };
            let mut ctx = Ctx {
                config: &self.config,
                rng: self.rng.as_mut(),
                out: &mut self.out,
            };
            let step = session.step(&mut ctx);
            if matches!(step, Step::Idle) {
                // A dropped connection is cleaned up once its input is done.
                if session.disconnected && session.blocked.is_none() {
                    session.closed = true;
                    self.remove_session(id, None, now);
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
                self.handle_client_stanza(id, el, now);
                // Keep this client's stanzas in order: while its own
                // account has work waiting for storage, read no further.
                if !self.queues.is_empty() {
                    let user = self.sessions.get(&id).and_then(|s| s.bare_jid.clone());
                    if let Some(user) = user
                        && self.queues.contains_key(&user)
                    {
                        if let Some(s) = self.sessions.get_mut(&id) {
                            s.blocked = Some(Blocked::Manager);
                        }
                        let blocked = self.blocked_on_queue.entry(user).or_default();
                        if !blocked.contains(&id) {
                            blocked.push(id);
                        }
                    }
                }
            }
            Step::SaslRequest(request) => {
                self.new_request(Pending::Credentials(id), request);
            }
            Step::Bind(request) => self.bind(id, request, now),
            Step::Authenticated => {
                if let Some(username) = self.sessions.get(&id).and_then(|s| s.username.clone()) {
                    self.out.push_back(Output::Event(Event::Authenticated {
                        session: id,
                        username,
                    }));
                }
            }
            Step::Closed => self.remove_session(id, None, now),
        }
    }

    /// Resource binding, the manager's half: resourceprep, limits and the
    /// conflict policy.
    fn bind(&mut self, id: SessionId, request: BindRequest, now: Instant) {
        let result = self.choose_resource(id, request.resource.as_deref(), now);
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let mut ctx = Ctx {
            config: &self.config,
            rng: self.rng.as_mut(),
            out: &mut self.out,
        };
        session.finish_bind(&mut ctx, &request.iq, result.clone());
        if let Ok(full) = result {
            self.users
                .entry(full.to_bare())
                .or_default()
                .sessions
                .push(id);
            self.out.push_back(Output::Event(Event::Bound {
                session: id,
                jid: full,
            }));
        }
        self.drive(id, now);
    }

    fn choose_resource(
        &mut self,
        id: SessionId,
        requested: Option<&str>,
        now: Instant,
    ) -> Result<FullJid, StanzaError> {
        let (username, host) = match self.sessions.get(&id) {
            Some(s) => match (&s.username, &s.host) {
                (Some(u), Some(h)) => (u.clone(), h.clone()),
                _ => {
                    return Err(StanzaError::with_text(
                        ErrorType::Auth,
                        StanzaErrorCondition::NotAuthorized,
                        "Cannot bind resource before authentication",
                    ));
                }
            },
            None => return Err(StanzaError::service_unavailable()),
        };
        let bare = BareJid::new(&format!("{username}@{host}")).map_err(|_| {
            StanzaError::new(ErrorType::Cancel, StanzaErrorCondition::InternalServerError)
        })?;
        let taken = |mgr: &Self, res: &str| {
            mgr.users.get(&bare).is_some_and(|u| {
                u.sessions
                    .iter()
                    .filter_map(|sid| mgr.sessions.get(sid))
                    .any(|s| s.resource.as_deref() == Some(res))
            })
        };
        let mut resource = match requested {
            Some(r) => match jid::ResourcePart::new(r) {
                Ok(part) => part.as_str().to_owned(),
                Err(_) => {
                    return Err(StanzaError::bad_request(
                        "The requested resource is not valid",
                    ));
                }
            },
            None => loop {
                let Ok(candidate) = random_id(self.rng.as_mut(), 12) else {
                    return Err(StanzaError::new(
                        ErrorType::Wait,
                        StanzaErrorCondition::InternalServerError,
                    ));
                };
                if !taken(self, &candidate) {
                    break candidate;
                }
            },
        };
        if taken(self, &resource) {
            match self.config.conflict_policy {
                ConflictPolicy::RefuseNew => {
                    return Err(StanzaError::with_text(
                        ErrorType::Cancel,
                        StanzaErrorCondition::Conflict,
                        "Resource already exists",
                    ));
                }
                ConflictPolicy::AddSuffix => {
                    let mut n: u32 = 1;
                    loop {
                        let candidate = format!("{resource}#{n}");
                        if !taken(self, &candidate) {
                            resource = candidate;
                            break;
                        }
                        n = n.saturating_add(1);
                    }
                }
                ConflictPolicy::KickOld => {
                    let old = self.users.get(&bare).and_then(|u| {
                        u.sessions.iter().copied().find(|sid| {
                            self.sessions.get(sid).and_then(|s| s.resource.as_deref())
                                == Some(resource.as_str())
                        })
                    });
                    if let Some(old) = old {
                        self.close(
                            old,
                            StreamError::with_text(
                                StreamErrorCondition::Conflict,
                                "Replaced by new connection",
                            ),
                            now,
                        );
                    }
                }
            }
        }
        let count = self.users.get(&bare).map_or(0, |u| u.sessions.len());
        if count >= self.config.max_resources_per_user {
            return Err(StanzaError::with_text(
                ErrorType::Wait,
                StanzaErrorCondition::ResourceConstraint,
                "Too many resources bound for this account",
            ));
        }
        bare.with_resource_str(&resource)
            .map_err(|_| StanzaError::bad_request("The requested resource is not valid"))
    }

    /// Removes a closed or disconnected session from every table.
    pub(crate) fn remove_session(
        &mut self,
        id: SessionId,
        reason: Option<StreamError>,
        now: Instant,
    ) {
        let Some(session) = self.sessions.get(&id) else {
            return;
        };
        if let Some(full) = session.full_jid.clone() {
            self.unbind(id, &full, reason.as_ref(), now);
        }
        self.sessions.remove(&id);
        self.pending
            .retain(|_, p| !matches!(p, Pending::Credentials(s) if *s == id));
        self.out
            .push_back(Output::Event(Event::Closed { session: id }));
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
        let (was_available, directed) = match self.sessions.get_mut(&id) {
            Some(s) => {
                let was_available = s.presence.take().is_some();
                s.priority = None;
                (was_available, std::mem::take(&mut s.directed))
            }
            None => (false, Vec::new()),
        };
        if let Some(user) = self.users.get_mut(&bare) {
            user.sessions.retain(|s| *s != id);
            if user.sessions.is_empty() {
                self.users.remove(&bare);
            }
        }
        if let Some(blocked) = self.blocked_on_queue.get_mut(&bare) {
            blocked.retain(|s| *s != id);
        }
        self.out.push_back(Output::Event(Event::Unbound {
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
        self.maybe_evict_roster(&bare);
    }
}
