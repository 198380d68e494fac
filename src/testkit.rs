//! Drive a [`SessionManager`] from unit tests, without sockets.
//!
//! [`TestServer`] owns a manager, a [`MemoryStore`] and a simulated clock.
//! It logs clients in with one call, sends them XML, and collects what each
//! client received, parsed back into elements, so tests can assert on exact
//! stanzas and on "nothing else was sent".
//!
//! ```
//! use xmpp_session::testkit::TestServer;
//!
//! let mut server = TestServer::new();
//! server.add_user("romeo", "pass");
//! server.add_user("juliet", "pass");
//! let romeo = server.login("romeo", "orchard");
//! let juliet = server.login("juliet", "balcony");
//! server.send(romeo, "<message to='juliet@localhost/balcony' type='chat'><body>Hi</body></message>");
//! server.expect(juliet, &["<message to='juliet@localhost/balcony' type='chat' \
//!     from='romeo@localhost/orchard'><body>Hi</body></message>"]);
//! server.expect_nothing(romeo);
//! ```
//!
//! Helpers panic with a clear message when an expectation fails: they are
//! assertions for tests.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use minidom::Element;

use crate::account::AccountJid;
use crate::config::{Config, ConfigBuilder};
use crate::ids::{RequestId, SessionId};
use crate::manager::SessionManager;
use crate::ns::NS_FRAMING;
use crate::output::Framing;
use crate::output::{ConnectionInfo, Event, Output, TlsInfo};
use crate::random::{RandomError, RandomSource, SeededRandom};
use crate::sasl::ScramHash;
use crate::storage::{MemoryStore, Request, Store};
use crate::stream::{StreamEvent, StreamReader, XmlLimits};
use crate::xml::{NS_CLIENT, NS_SASL, NS_STREAMS, NS_TLS};

mod sm_world;
pub use sm_world::{SmOp, SmWorld};

/// The domain a [`TestServer`] serves by default.
pub const DOMAIN: &str = "localhost";

/// The account `user@`[`DOMAIN`]. Panics if `user` is not a valid
/// localpart (a test helper).
pub fn account(user: &str) -> AccountJid {
    AccountJid::new(user, DOMAIN).expect("a valid user name")
}

/// A [`RandomSource`] that gives `ok` fills from a [`SeededRandom`], then
/// fails every time: for testing that the core fails closed.
#[derive(Debug, Clone)]
pub struct FailingRandom {
    inner: SeededRandom,
    ok: usize,
}

impl FailingRandom {
    /// Fails from the first fill on.
    pub fn always() -> Self {
        Self::after(0)
    }

    /// Succeeds `ok` times, then fails.
    pub fn after(ok: usize) -> Self {
        Self {
            inner: SeededRandom::new(42),
            ok,
        }
    }
}

impl RandomSource for FailingRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        if self.ok == 0 {
            return Err(RandomError::new("the test generator is broken"));
        }
        self.ok -= 1;
        self.inner.fill(buf)
    }
}

/// What one simulated client has seen.
#[derive(Debug)]
struct Client {
    /// RFC 7395: every transmit is one message holding one element.
    websocket: bool,
    /// The messages received, as text (WebSocket clients).
    frames: Vec<String>,
    reader: StreamReader,
    received: VecDeque<Element>,
    raw: Vec<u8>,
    headers: usize,
    closed: bool,
    start_tls: bool,
    errors: Vec<String>,
}

impl Client {
    fn new() -> Self {
        Self {
            websocket: false,
            frames: Vec::new(),
            reader: StreamReader::new(LOOSE),
            received: VecDeque::new(),
            raw: Vec::new(),
            headers: 0,
            closed: false,
            start_tls: false,
            errors: Vec::new(),
        }
    }

    fn websocket() -> Self {
        Self {
            websocket: true,
            ..Self::new()
        }
    }

    fn feed(&mut self, data: &[u8]) {
        self.raw.extend_from_slice(data);
        if self.websocket {
            // Each message alone must be one element with its namespaces.
            self.frames.push(String::from_utf8_lossy(data).into_owned());
            match crate::stream::read_frame(data, LOOSE) {
                Ok(el) if el.ns().is_empty() => self
                    .errors
                    .push(format!("WebSocket message without a namespace: {data:?}")),
                Ok(el) => {
                    if el.is("open", NS_FRAMING) {
                        self.headers += 1;
                    }
                    self.received.push_back(el);
                }
                Err(e) => self
                    .errors
                    .push(format!("bad WebSocket message {data:?}: {e:?}")),
            }
            return;
        }
        self.reader.push(data);
        loop {
            match self.reader.next_event() {
                Ok(Some(StreamEvent::Open(_))) => self.headers += 1,
                Ok(Some(StreamEvent::Stanza(el))) => {
                    // The server restarts its stream after these.
                    if el.is("success", NS_SASL) || el.is("proceed", NS_TLS) {
                        self.reader.restart();
                    }
                    self.received.push_back(el);
                }
                Ok(Some(StreamEvent::Close)) => {}
                Ok(None) => break,
                Err(e) => {
                    self.errors.push(e.to_string());
                    break;
                }
            }
        }
    }
}

/// No limits to speak of, for what the server sends.
const LOOSE: XmlLimits = XmlLimits {
    max_stanza_bytes: usize::MAX,
    max_depth: 1024,
    max_attributes: 1024,
    max_text_bytes: usize::MAX,
};

/// A manager, a store, a clock and simulated clients.
pub struct TestServer {
    /// The manager under test.
    pub manager: SessionManager,
    /// The store answering requests.
    pub store: MemoryStore,
    now: Instant,
    clients: HashMap<SessionId, Client>,
    hold: bool,
    held: VecDeque<(RequestId, Request)>,
    /// Every [`Output::Route`] stanza, in order.
    pub routed: Vec<Element>,
    /// Every [`Output::Event`], in order.
    pub events: Vec<Event>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("manager", &self.manager)
            .field("clients", &self.clients.len())
            .finish()
    }
}

impl Default for TestServer {
    fn default() -> Self {
        Self::new()
    }
}

impl TestServer {
    /// A server for [`DOMAIN`] that allows PLAIN without TLS (so tests need
    /// no TLS), with a fixed seed and wall clock.
    pub fn new() -> Self {
        Self::with_config(
            Self::config()
                .build()
                .expect("the test configuration is valid"),
        )
    }

    /// The configuration [`TestServer::new`] uses, to adjust and build.
    pub fn config() -> ConfigBuilder {
        Config::builder(DOMAIN)
            .require_tls(false)
            .allow_plain_without_tls(true)
    }

    /// A server with this configuration.
    pub fn with_config(config: Config) -> Self {
        Self::with_random(config, Box::new(SeededRandom::new(42)))
    }

    /// A server with this configuration and source of randomness for the
    /// manager (the store keeps its own seeded salts).
    pub fn with_random(config: Config, rng: Box<dyn RandomSource>) -> Self {
        let now = Instant::now();
        let mut manager = SessionManager::with_random(config, rng);
        manager.set_wall_clock(
            now,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_680_000),
        );
        Self {
            manager,
            store: MemoryStore::with_random(Box::new(SeededRandom::new(43)), 64),
            now,
            clients: HashMap::new(),
            hold: false,
            held: VecDeque::new(),
            routed: Vec::new(),
            events: Vec::new(),
        }
    }

    /// The simulated current time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Moves the clock forward and fires due timeouts.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.manager.handle_timeout(self.now);
        self.pump();
    }

    /// Adds an account `username@`[`DOMAIN`] to the store.
    pub fn add_user(&mut self, username: &str, password: &str) {
        self.store
            .add_user(&account(username), password)
            .expect("seeded salts never fail");
    }

    /// While on, requests are kept for [`TestServer::answer_held`] instead of
    /// being answered at once (to test storage that answers late).
    pub fn hold_requests(&mut self, on: bool) {
        self.hold = on;
    }

    /// Requests held so far.
    pub fn held_requests(&self) -> Vec<Request> {
        self.held.iter().map(|(_, r)| r.clone()).collect()
    }

    /// Answers the held requests, in the order `order` picks from them
    /// (indices into the held list at call time; others stay held).
    pub fn answer_held(&mut self, order: &[usize]) {
        let held: Vec<(RequestId, Request)> = self.held.drain(..).collect();
        let mut keep = Vec::new();
        let mut answer = Vec::new();
        for &i in order {
            if let Some(item) = held.get(i) {
                answer.push(item.clone());
            }
        }
        for (i, item) in held.iter().enumerate() {
            if !order.contains(&i) {
                keep.push(item.clone());
            }
        }
        self.held.extend(keep);
        for (id, request) in answer {
            let response = self.store.answer(&request);
            self.manager.complete(id, response, self.now);
        }
        self.pump();
    }

    /// Answers every held request (and those they cause) in arrival order.
    pub fn answer_all_held(&mut self) {
        while !self.held.is_empty() {
            let n = self.held.len();
            let all: Vec<usize> = (0..n).collect();
            self.answer_held(&all);
        }
    }

    /// Drains the manager's outputs into the clients.
    pub fn pump(&mut self) {
        while let Some(output) = self.manager.poll_output() {
            match output {
                Output::Transmit { session, data } => {
                    self.clients
                        .entry(session)
                        .or_insert_with(Client::new)
                        .feed(&data);
                }
                Output::StartTls { session } => {
                    self.clients
                        .entry(session)
                        .or_insert_with(Client::new)
                        .start_tls = true;
                }
                Output::Close { session } => {
                    self.clients
                        .entry(session)
                        .or_insert_with(Client::new)
                        .closed = true;
                }
                Output::Route { stanza } => self.routed.push(stanza),
                Output::Request { id, request } => {
                    if self.hold {
                        self.held.push_back((id, request));
                    } else {
                        let response = self.store.answer(&request);
                        self.manager.complete(id, response, self.now);
                    }
                }
                Output::Event(event) => self.events.push(event),
            }
        }
    }

    /// A new plain connection.
    pub fn connect(&mut self) -> SessionId {
        self.connect_with(ConnectionInfo::plain())
    }

    /// A new connection with these transport facts.
    pub fn connect_with(&mut self, info: ConnectionInfo) -> SessionId {
        let id = self.manager.connect(info, self.now);
        let client = match info.framing() {
            Framing::WebSocket => Client::websocket(),
            _ => Client::new(),
        };
        self.clients.insert(id, client);
        id
    }

    /// A new plain WebSocket connection (RFC 7395): the client's
    /// [`TestServer::send`] sends one message, and each message the server
    /// transmits must hold exactly one element with its own namespace
    /// declarations (see [`TestServer::take_frames`],
    /// [`TestServer::client_errors`]). `<open/>` and `<close/>` are received
    /// like any element.
    pub fn connect_websocket(&mut self) -> SessionId {
        self.connect_with(ConnectionInfo::plain().with_framing(Framing::WebSocket))
    }

    /// Sends one WebSocket message's payload as the client.
    pub fn send_frame(&mut self, id: SessionId, payload: &str) {
        self.manager.handle_frame(id, payload.as_bytes(), self.now);
        self.pump();
    }

    /// The `<open/>` a WebSocket client sends to [`DOMAIN`].
    pub fn open_frame() -> String {
        format!("<open xmlns='{NS_FRAMING}' to='{DOMAIN}' version='1.0'/>")
    }

    /// The messages a WebSocket client received since the last call, as
    /// text, one entry per message.
    pub fn take_frames(&mut self, id: SessionId) -> Vec<String> {
        self.clients
            .get_mut(&id)
            .map(|c| std::mem::take(&mut c.frames))
            .unwrap_or_default()
    }

    /// What the client could not read (a message that was not one element,
    /// XML errors), since the start.
    pub fn client_errors(&self, id: SessionId) -> Vec<String> {
        self.clients
            .get(&id)
            .map(|c| c.errors.clone())
            .unwrap_or_default()
    }

    /// Sends raw bytes as the client.
    pub fn send_bytes(&mut self, id: SessionId, data: &[u8]) {
        self.manager.handle_input(id, data, self.now);
        self.pump();
    }

    /// Sends XML text as the client.
    pub fn send(&mut self, id: SessionId, xml: &str) {
        self.send_bytes(id, xml.as_bytes());
    }

    /// Sends a stanza element as the client (serialized as on the wire).
    pub fn send_element(&mut self, id: SessionId, stanza: &Element) {
        let bytes = crate::stream::element_bytes(stanza);
        self.send_bytes(id, &bytes);
    }

    /// The standard stream header to [`DOMAIN`].
    pub fn stream_header() -> String {
        format!(
            "<?xml version='1.0'?><stream:stream to='{DOMAIN}' version='1.0' xml:lang='en' \
             xmlns='jabber:client' xmlns:stream='{NS_STREAMS}'>"
        )
    }

    /// Opens the stream (or reopens it after a restart): `<open/>` on a
    /// WebSocket connection.
    pub fn open_stream(&mut self, id: SessionId) {
        let websocket = self.clients.get(&id).is_some_and(|c| c.websocket);
        let header = if websocket {
            Self::open_frame()
        } else {
            Self::stream_header()
        };
        self.send(id, &header);
    }

    /// The transport finished TLS.
    pub fn tls_established(&mut self, id: SessionId) {
        self.tls_established_with(id, TlsInfo::default());
    }

    /// The transport finished TLS with these facts (channel-binding data);
    /// on a direct-TLS connection, call it before [`TestServer::open_stream`].
    pub fn tls_established_with(&mut self, id: SessionId, info: TlsInfo) {
        self.manager.handle_tls_established(id, info, self.now);
        self.pump();
    }

    /// The client's socket dropped.
    pub fn disconnect(&mut self, id: SessionId) {
        self.manager.handle_disconnect(id, self.now);
        self.pump();
    }

    /// Connects, authenticates with PLAIN and binds `resource`; drains what
    /// the client received during negotiation.
    pub fn login(&mut self, username: &str, resource: &str) -> SessionId {
        let id = self.connect();
        self.authenticate_plain(id, username, "pass");
        self.bind(id, Some(resource));
        id
    }

    /// Like [`TestServer::login`], with a password.
    pub fn login_with_password(
        &mut self,
        username: &str,
        password: &str,
        resource: &str,
    ) -> SessionId {
        let id = self.connect();
        self.authenticate_plain(id, username, password);
        self.bind(id, Some(resource));
        id
    }

    /// Opens the stream and authenticates with PLAIN, then restarts the
    /// stream; panics unless it succeeds.
    pub fn authenticate_plain(&mut self, id: SessionId, username: &str, password: &str) {
        self.open_stream(id);
        let payload = BASE64.encode(format!("\0{username}\0{password}"));
        self.send(
            id,
            &format!("<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{payload}</auth>"),
        );
        let got = self.take(id);
        assert!(
            got.iter().any(|e| e.is("success", NS_SASL)),
            "login of {username} failed: {got:?}"
        );
        self.open_stream(id);
        self.take(id);
    }

    /// Opens the stream and authenticates with SCRAM-SHA-256 as a real
    /// client does (nonce, salted password, proof, server signature
    /// checked), then restarts the stream; panics unless it succeeds.
    pub fn authenticate_scram(&mut self, id: SessionId, username: &str, password: &str) {
        let hash = ScramHash::Sha256;
        self.open_stream(id);
        self.take(id);
        let client_first_bare = format!("n={username},r=rOprNGfwEbeRWgbNEkqO");
        self.send(
            id,
            &format!(
                "<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-256'>{}</auth>",
                BASE64.encode(format!("n,,{client_first_bare}"))
            ),
        );
        let server_first = self.sasl_payload(id, "challenge");
        let (mut nonce, mut salt, mut iterations) = ("", Vec::new(), 0);
        for part in server_first.split(',') {
            match part.split_once('=') {
                Some(("r", v)) => nonce = v,
                Some(("s", v)) => salt = BASE64.decode(v).expect("base64 salt"),
                Some(("i", v)) => iterations = v.parse().expect("an iteration count"),
                _ => panic!("unexpected server-first {server_first:?}"),
            }
        }
        let salted = hash.salted_password(password.as_bytes(), &salt, iterations);
        let client_key = hash.hmac(&salted, b"Client Key");
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hash.hmac(&hash.digest(&client_key), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        self.send(
            id,
            &format!(
                "<response xmlns='{NS_SASL}'>{}</response>",
                BASE64.encode(format!("{without_proof},p={}", BASE64.encode(proof)))
            ),
        );
        let server_key = hash.hmac(&salted, b"Server Key");
        let expected = format!(
            "v={}",
            BASE64.encode(hash.hmac(&server_key, auth_message.as_bytes()))
        );
        assert_eq!(
            self.sasl_payload(id, "success"),
            expected,
            "server signature"
        );
        self.open_stream(id);
        self.take(id);
    }

    /// The decoded text of the one SASL element `name` the client got.
    fn sasl_payload(&mut self, id: SessionId, name: &str) -> String {
        let got = self.take(id);
        match got.as_slice() {
            [el] if el.is(name, NS_SASL) => {
                String::from_utf8(BASE64.decode(el.text()).expect("base64")).expect("utf-8")
            }
            _ => panic!("expected one <{name}/>, got {got:?}"),
        }
    }

    /// Binds a resource (`None`: server-generated); panics unless it works.
    /// Returns the bound full JID.
    pub fn bind(&mut self, id: SessionId, resource: Option<&str>) -> String {
        let body = match resource {
            Some(r) => format!("<resource>{r}</resource>"),
            None => String::new(),
        };
        // A WebSocket message declares its own namespace.
        let websocket = self.clients.get(&id).is_some_and(|c| c.websocket);
        let xmlns = if websocket {
            " xmlns='jabber:client'"
        } else {
            ""
        };
        self.send(
            id,
            &format!("<iq{xmlns} type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>{body}</bind></iq>"),
        );
        let got = self.take(id);

        got.iter()
            .find_map(|e| {
                e.get_child("bind", crate::xml::NS_BIND)
                    .and_then(|b| b.get_child("jid", crate::xml::NS_BIND))
                    .map(|j| j.text())
            })
            .unwrap_or_else(|| panic!("bind failed: {got:?}"))
    }

    /// Takes every element the client received since the last call.
    pub fn take(&mut self, id: SessionId) -> Vec<Element> {
        self.clients
            .get_mut(&id)
            .map(|c| c.received.drain(..).collect())
            .unwrap_or_default()
    }

    /// Takes the raw bytes the client received since the last call, as text.
    pub fn take_raw(&mut self, id: SessionId) -> String {
        let raw = self
            .clients
            .get_mut(&id)
            .map(|c| std::mem::take(&mut c.raw))
            .unwrap_or_default();
        String::from_utf8_lossy(&raw).into_owned()
    }

    /// Whether the server closed the client's connection.
    pub fn is_closed(&self, id: SessionId) -> bool {
        self.clients.get(&id).is_some_and(|c| c.closed)
    }

    /// Whether the server asked the transport to start TLS.
    pub fn started_tls(&self, id: SessionId) -> bool {
        self.clients.get(&id).is_some_and(|c| c.start_tls)
    }

    /// Asserts that the client received exactly these stanzas, in order,
    /// and nothing else, since the last check.
    #[track_caller]
    pub fn expect(&mut self, id: SessionId, expected: &[&str]) {
        let got = self.take(id);
        let want: Vec<Element> = expected.iter().map(|x| parse_stanza(x)).collect();
        if got != want {
            panic!(
                "client {id} received:\n{}\nexpected:\n{}",
                render(&got),
                render(&want)
            );
        }
    }

    /// Asserts that the client received nothing since the last check.
    #[track_caller]
    pub fn expect_nothing(&mut self, id: SessionId) {
        self.expect(id, &[]);
    }

    /// Takes the [`Output::Route`] stanzas collected so far.
    pub fn take_routed(&mut self) -> Vec<Element> {
        std::mem::take(&mut self.routed)
    }

    /// Takes the events collected so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }
}

fn render(elements: &[Element]) -> String {
    if elements.is_empty() {
        return "  (nothing)".to_owned();
    }
    elements
        .iter()
        .map(|e| {
            format!(
                "  {}",
                String::from_utf8_lossy(&crate::stream::element_bytes(e))
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses one stanza written as it would appear inside a c2s stream (the
/// default namespace is `jabber:client`). Panics on invalid XML.
pub fn parse_stanza(xml: &str) -> Element {
    let mut reader = StreamReader::new(LOOSE);
    reader.push(
        format!("<stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAMS}'>{xml}").as_bytes(),
    );
    loop {
        match reader.next_event() {
            Ok(Some(StreamEvent::Open(_))) => {}
            Ok(Some(StreamEvent::Stanza(el))) => return el,
            other => panic!("not a stanza: {xml:?} ({other:?})"),
        }
    }
}
