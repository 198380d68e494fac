//! The core loop: one task owns the [`SessionManager`], the store handle
//! and the listener.
//!
//! `SessionManager` is a single sans-IO object, so one *core* task drives
//! it. Every connection has its own task (see [`crate::transport`]) that
//! sends what it reads over one bounded channel shared by all connections
//! and writes what the core sends it on its own unbounded channel. This is
//! faster than sharing the manager behind a `Mutex`: the manager cannot run
//! in parallel anyway, so a lock would only add contention, and a stanza for
//! another client needs a channel to that client's socket in either design.
//! Owning it also lets the core batch: it takes every input already queued,
//! then drains the outputs once and hands each socket all of its bytes as
//! one buffer.
//!
//! Storage requests go to [`crate::store`]'s thread, which answers later
//! through [`ToCore::Answer`]; the manager orders requests per
//! user, so answers may arrive in any order. A connection that drops in the
//! meantime is no problem: the manager ignores the late answer.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::sleep_until;
use xmpp_session::jid::FullJid;
use xmpp_session::{
    ConnectionInfo, Event, Framing, Output, SessionId, SessionManager, StreamError,
    StreamErrorCondition,
};

use tracing::{debug, info, warn};

use crate::limits::{Admission, BATCH, Limits, MAX_QUEUED_BYTES, Slot};
use crate::liveness::{self, Due, Liveness};
use crate::store::StoreHandle;
use crate::transport::{self, Link, Mode, ToConn, ToCore, concat};
use crate::websocket::{self, WsListener};

/// The core's handle on one connection. Dropping it lets the connection
/// task write what is queued and close the socket.
struct Conn {
    tx: mpsc::UnboundedSender<ToConn>,
    task: AbortHandle,
    /// Bytes handed to the task and not yet written.
    queued: Arc<AtomicUsize>,
    peer: SocketAddr,
    /// When the client last sent bytes, and whether a ping is out.
    liveness: Liveness,
    /// Bytes read before authentication (`None` once authenticated).
    pre_auth: Option<usize>,
    /// The bound resource, to ping.
    jid: Option<FullJid>,
    /// RFC 7395: every output is its own WebSocket message, never merged.
    websocket: bool,
}

impl Conn {
    /// Hands the task what the core produced for it in this batch: one
    /// buffer, or one message per output on a WebSocket connection.
    /// Returns the number of bytes handed over.
    fn hand_over(&self, chunks: Vec<Bytes>) -> usize {
        let len = chunks.iter().map(Bytes::len).sum();
        self.queued.fetch_add(len, Ordering::Relaxed);
        // A send error means the task already stopped; its Gone is on the way.
        if self.websocket {
            for chunk in chunks {
                let _ = self.tx.send(ToConn::Data(chunk));
            }
        } else {
            let _ = self.tx.send(ToConn::Data(concat(chunks)));
        }
        len
    }
}

/// Everything the core task owns.
pub struct Core {
    manager: SessionManager,
    store: StoreHandle,
    conns: HashMap<SessionId, Conn>,
    /// Bytes produced for each socket during the current batch.
    outbox: HashMap<SessionId, Vec<Bytes>>,
    to_core: mpsc::Sender<ToCore>,
    admission: Admission,
    verbose: bool,
    /// Sessions that lost their socket and wait for a resume (XEP-0198):
    /// their `SessionId` stays valid in the manager without a connection.
    hibernating: HashSet<SessionId>,
}

impl Core {
    fn accept(&mut self, stream: TcpStream, peer: SocketAddr, mode: &Mode) {
        let info = match mode {
            Mode::Plain => ConnectionInfo::plain(),
            Mode::StartTls(_) => ConnectionInfo::starttls(),
            Mode::DirectTls(_) => ConnectionInfo::direct_tls(),
        };
        let mode = mode.clone();
        self.register(info, peer, move |rx, link, slot| {
            transport::spawn(stream, mode, rx, link, slot)
        });
    }

    /// A connection on the WebSocket listener (RFC 7395).
    fn accept_websocket(&mut self, stream: TcpStream, peer: SocketAddr, listener: &WsListener) {
        let tls = listener.tls.clone();
        self.register(listener.connection_info(), peer, move |rx, link, slot| {
            websocket::spawn(stream, tls, rx, link, slot)
        });
    }

    /// Admits a connection from `peer` (or refuses it: dropping `spawn`
    /// drops the stream, which closes it), connects its session and starts
    /// its connection task with `spawn`, which owns the admission slot.
    fn register(
        &mut self,
        info: ConnectionInfo,
        peer: SocketAddr,
        spawn: impl FnOnce(mpsc::UnboundedReceiver<ToConn>, Link, Slot) -> AbortHandle,
    ) {
        let now = Instant::now();
        let slot = match self.admission.admit(peer, now) {
            Ok(slot) => slot,
            Err(why) => {
                let kind = match info.framing() {
                    Framing::WebSocket => "a WebSocket connection",
                    _ => "a connection",
                };
                warn!(%peer, "refusing {kind}: {why}");
                return;
            }
        };
        let id = self.manager.connect(info, now);
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let link = Link {
            id,
            peer,
            queued: queued.clone(),
            core: self.to_core.clone(),
            verbose: self.verbose,
            read_rate: self.admission.limits().read_rate,
            read_burst: self.admission.limits().read_burst,
        };
        let task = spawn(rx, link, slot);
        if self.verbose {
            debug!(session = ?id, %peer, "connected");
        }
        self.conns.insert(
            id,
            Conn {
                tx,
                task,
                queued,
                peer,
                liveness: Liveness::new(now),
                pre_auth: Some(0),
                jid: None,
                websocket: info.framing() == Framing::WebSocket,
            },
        );
    }

    fn handle(&mut self, msg: ToCore) {
        let now = Instant::now();
        match msg {
            ToCore::Input(id, data) => {
                if self.over_pre_auth(id, data.len(), now) {
                    return;
                }
                self.manager.handle_input(id, &data, now)
            }
            ToCore::TlsEstablished(id, info) => self.manager.handle_tls_established(id, info, now),
            ToCore::Gone(id) => {
                // The socket is gone; a resumable session lives on in the
                // manager under the same id (until `Event::Closed`).
                self.conns.remove(&id);
                self.manager.handle_disconnect(id, now)
            }
            ToCore::Answer(id, response) => self.manager.complete(id, response, now),
        }
    }

    /// Drains every output, handing storage requests to the store, then
    /// gives each socket its bytes in one piece.
    fn flush(&mut self) {
        while let Some(output) = self.manager.poll_output() {
            match output {
                Output::Transmit { session, data } => {
                    self.outbox.entry(session).or_default().push(data)
                }
                Output::Close { session } | Output::Event(Event::Closed { session }) => {
                    self.finish(session)
                }
                Output::StartTls { session } => self.start_tls(session),
                Output::Event(Event::Authenticated { session, username }) => {
                    if self.verbose {
                        debug!(?session, %username, "authenticated");
                    }
                    if let Some(conn) = self.conns.get_mut(&session) {
                        conn.pre_auth = None;
                    }
                }
                Output::Event(Event::Bound { session, jid }) => {
                    if self.verbose {
                        debug!(?session, %jid, "bound");
                    }
                    if let Some(conn) = self.conns.get_mut(&session) {
                        conn.jid = Some(jid);
                    }
                }
                Output::Route { stanza } => {
                    warn!(
                        "dropping stanza for a remote domain: to={:?}",
                        stanza.attr("to")
                    );
                }
                Output::Request { id, request } => self.store.submit(id, request),
                Output::Event(event) => {
                    match &event {
                        Event::Hibernating { session, .. } => {
                            self.hibernating.insert(*session);
                        }
                        Event::HibernationEnded { session, .. } => {
                            self.hibernating.remove(session);
                        }
                        _ => {}
                    }
                    if self.verbose {
                        debug!("{event:?}");
                    }
                }
                _ => {}
            }
        }
        let mut stuck = Vec::new();
        for (session, chunks) in self.outbox.drain() {
            if let Some(conn) = self.conns.get(&session) {
                let len: usize = chunks.iter().map(Bytes::len).sum();
                if conn.queued.load(Ordering::Relaxed) + len > MAX_QUEUED_BYTES {
                    stuck.push(session);
                    continue;
                }
                conn.hand_over(chunks);
            }
        }
        // Clients that stopped reading: drop them (their unavailable presence
        // and the like go to the others in the next round).
        for session in stuck {
            if let Some(conn) = self.conns.remove(&session) {
                warn!(?session, peer = %conn.peer, "not reading: disconnected");
                conn.task.abort();
            }
            self.manager.handle_disconnect(session, Instant::now());
            self.flush();
        }
    }

    /// Counts `n` bytes from `id`: true (and the stream closed with
    /// `policy-violation`) if it passed `--pre-auth-bytes` before
    /// authenticating. Also notes the input for liveness.
    fn over_pre_auth(&mut self, id: SessionId, n: usize, now: Instant) -> bool {
        let cap = self.admission.limits().pre_auth_bytes;
        let Some(conn) = self.conns.get_mut(&id) else {
            return false;
        };
        conn.liveness.input(now);
        let Some(read) = conn.pre_auth.as_mut() else {
            return false;
        };
        *read = read.saturating_add(n);
        if cap == 0 || *read <= cap {
            return false;
        }
        warn!(session = ?id, peer = %conn.peer, "--pre-auth-bytes reached: closing");
        conn.pre_auth = None;
        self.manager.close(
            id,
            StreamError::new(StreamErrorCondition::PolicyViolation),
            now,
        );
        true
    }

    /// Pings silent clients and closes those that did not answer (see
    /// [`crate::liveness`]).
    fn check_liveness(&mut self) {
        let now = Instant::now();
        let limits = self.admission.limits();
        let (idle, timeout) = (limits.ping_idle, limits.ping_timeout);
        let domain = self
            .manager
            .config()
            .hosts()
            .first()
            .cloned()
            .unwrap_or_default();
        let mut close = Vec::new();
        for (id, conn) in &mut self.conns {
            if conn.pre_auth.is_some() {
                continue; // the core's auth timeout covers these
            }
            match conn.liveness.due(conn.jid.is_some(), idle, timeout, now) {
                Some(Due::Ping) => {
                    if let Some(jid) = &conn.jid {
                        if self.verbose {
                            debug!(session = ?id, "idle: ping");
                        }
                        self.manager.send(*id, &liveness::ping(&domain, jid));
                    }
                }
                Some(Due::Close) => close.push(*id),
                None => {}
            }
        }
        for id in close {
            info!(session = ?id, "no answer to a ping: closing");
            self.manager.close(
                id,
                StreamError::new(StreamErrorCondition::ConnectionTimeout),
                now,
            );
        }
    }

    /// Hands the connection its `<proceed/>` (and anything before it) with
    /// the order to run the TLS handshake.
    fn start_tls(&mut self, session: SessionId) {
        let Some(conn) = self.conns.get(&session) else {
            return;
        };
        let data = self.outbox.remove(&session).map(concat).unwrap_or_default();
        conn.queued.fetch_add(data.len(), Ordering::Relaxed);
        // A send error means the task already stopped; its Gone is on the way.
        let _ = conn.tx.send(ToConn::StartTls(data));
    }

    /// Closes every stream with `system-shutdown` and waits (at most
    /// [`SHUTDOWN_GRACE`]) until the connection tasks have written it.
    async fn shutdown(&mut self) {
        let now = Instant::now();
        // Hibernating sessions end as if they expired: contacts see them go
        // and what they never acknowledged goes to offline storage.
        for id in std::mem::take(&mut self.hibernating) {
            self.manager.end_hibernation(id, now);
        }
        let ids: Vec<SessionId> = self.conns.keys().copied().collect();
        let mut tasks: Vec<AbortHandle> = self.conns.values().map(|c| c.task.clone()).collect();
        for id in ids {
            self.manager.close(
                id,
                StreamError::new(StreamErrorCondition::SystemShutdown),
                now,
            );
        }
        self.flush();
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while tokio::time::Instant::now() < deadline {
            tasks.retain(|t| !t.is_finished());
            if tasks.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Ends a connection: its pending bytes go out, then the socket closes.
    fn finish(&mut self, session: SessionId) {
        let Some(conn) = self.conns.remove(&session) else {
            return;
        };
        if let Some(chunks) = self.outbox.remove(&session) {
            conn.hand_over(chunks);
        }
        if self.verbose {
            debug!(?session, peer = %conn.peer, "closed");
        }
    }
}

/// Time given to connections to receive their `system-shutdown`.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A listening socket and how its connections start.
pub struct Listener {
    /// The socket.
    pub socket: TcpListener,
    /// Plain, STARTTLS or direct TLS.
    pub mode: Mode,
}

/// Accepts on `listener`, or never returns if there is none.
async fn accept(
    listener: Option<&Listener>,
) -> std::io::Result<(TcpStream, SocketAddr, &Listener)> {
    match listener {
        Some(l) => l.socket.accept().await.map(|(s, peer)| (s, peer, l)),
        None => std::future::pending().await,
    }
}

/// Everything the core loop starts with.
pub struct Setup {
    /// The session manager, configured.
    pub manager: SessionManager,
    /// The store thread.
    pub store: StoreHandle,
    /// The main (plain or STARTTLS) listener.
    pub main: Listener,
    /// The direct TLS listener, if any.
    pub direct_tls: Option<Listener>,
    /// The WebSocket listener (`--ws-listen`), if any.
    pub websocket: Option<WsListener>,
    /// The sending side of the core's input channel (for new connections).
    pub to_core: mpsc::Sender<ToCore>,
    /// The core's input channel.
    pub from_conns: mpsc::Receiver<ToCore>,
    /// Resource limits.
    pub limits: Limits,
    /// Log each session's events.
    pub verbose: bool,
}

/// Runs the server until Ctrl-C or SIGTERM, then closes every stream with
/// `system-shutdown`; returns the store to be closed (flushed).
pub async fn run(setup: Setup) -> StoreHandle {
    let Setup {
        manager,
        store,
        main,
        direct_tls,
        websocket,
        to_core,
        mut from_conns,
        limits,
        verbose,
    } = setup;
    let mut core = Core {
        manager,
        store,
        conns: HashMap::new(),
        outbox: HashMap::new(),
        to_core,
        admission: Admission::new(limits),
        verbose,
        hibernating: HashSet::new(),
    };
    let tick = Liveness::tick(
        core.admission.limits().ping_idle,
        core.admission.limits().ping_timeout,
    );
    let mut liveness_timer = tokio::time::interval(tick);
    liveness_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let pings = !core.admission.limits().ping_idle.is_zero();
    let mut batch = Vec::with_capacity(BATCH);
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        let deadline = core
            .manager
            .poll_timeout()
            .map(tokio::time::Instant::from_std);
        tokio::select! {
            accepted = accept(Some(&main)) => match accepted {
                Ok((stream, peer, l)) => core.accept(stream, peer, &l.mode),
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            accepted = accept(direct_tls.as_ref()) => match accepted {
                Ok((stream, peer, l)) => core.accept(stream, peer, &l.mode),
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            accepted = websocket::accept(websocket.as_ref()) => match accepted {
                Ok((stream, peer, l)) => core.accept_websocket(stream, peer, l),
                Err(e) => {
                    warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = from_conns.recv_many(&mut batch, BATCH) => {
                for msg in batch.drain(..) {
                    core.handle(msg);
                }
            }
            () = async { sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)).await },
                if deadline.is_some() => core.manager.handle_timeout(Instant::now()),
            _ = liveness_timer.tick(), if pings => core.check_liveness(),
            () = &mut stop => {
                info!("shutting down: closing every stream with system-shutdown");
                core.shutdown().await;
                return core.store;
            }
        }
        core.flush();
    }
}
