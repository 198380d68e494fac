//! The whole `SessionManager`, driven by a fuzz-chosen sequence of
//! operations over a handful of sessions: connections, client bytes (random
//! bytes mixed with valid protocol fragments), TLS, disconnects, closes,
//! timeouts, routed stanzas and storage answers given late, out of order,
//! failed or of the wrong kind.
//!
//! After every step it checks that nothing panicked and that:
//! * every `Transmit`/`StartTls`/`Close` names a session that was connected,
//!   nothing is sent to a session after its `Close`, and each client's bytes
//!   parse as a well-formed XMPP stream;
//! * a removed session (`Event::Closed`) is gone from `session()`, a closed
//!   one is removed, and `session_count()` matches;
//! * `resources(bare)` lists only live bound sessions with a matching full
//!   JID, no full JID twice, at most `max_resources_per_user`, and every bound
//!   session is found by `resources` and `session_by_jid`;
//! * only the stored accounts authenticate, and only on sessions that were
//!   given the right password (or random bytes);
//! * stale handles (removed sessions, answered requests) do nothing;
//! * a disconnect removes an unbound session at once and silently; a bound
//!   one may finish the stanzas it already sent but is gone once every
//!   request is answered; timeouts only close unauthenticated sessions
//!   whose deadline passed;
//! * routed-out stanzas carry `from` and a `to` for a domain not served here.
//!
//! Then it reads the same operations again as stream-management (XEP-0198)
//! steps for `testkit::SmWorld` (stanzas to a resumable session, `<r/>` /
//! `<a/>`, dropped connections, resumes and timeouts, with a small queue
//! bound); the world checks that a resumed session never gets a stanza
//! twice and that nothing is lost without an error reply or offline
//! storage.
#![no_main]

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use arbitrary::Arbitrary;
use base64::prelude::*;
use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use xmpp_session::jid::{BareJid, Jid};
use xmpp_session::random::SeededRandom;
use xmpp_session::roster::Roster;
use xmpp_session::sasl::{Credentials, PasswordCheck};
use xmpp_session::stream::{StreamEvent, StreamReader, XmlLimits};
use xmpp_session::testkit::{SmOp, SmWorld, parse_stanza};
use xmpp_session::{
    AccountJid, Config, ConflictPolicy, ConnectionInfo, Event, MemoryStore, Output, Request,
    RequestId, Response, SessionId, SessionKind, SessionManager, StoreError, StreamError,
    StreamErrorCondition, TlsInfo,
};

const DOMAIN: &str = "localhost";
const PASSWORD: &str = "pass";
const USERS: [&str; 2] = ["romeo", "juliet"];
const SALT: &[u8] = b"fuzz-salt";
const ITERATIONS: u32 = 2;
const MAX_LIVE: usize = 4;
const MAX_CONNECTS: usize = 8;
const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
const EXT_NS: &str = "urn:fuzz:ext";

fn credentials() -> &'static Credentials {
    static CREDS: OnceLock<Credentials> = OnceLock::new();
    CREDS.get_or_init(|| Credentials::from_password(PASSWORD, SALT, ITERATIONS))
}

// ---------------------------------------------------------------- input --

#[derive(Arbitrary, Debug)]
struct Input {
    settings: Settings,
    ops: Vec<Op>,
}

/// The same operations read as stream-management steps for `SmWorld`
/// (so the seed corpus drives both parts and decodes as before).
fn sm_op(op: &Op) -> SmOp {
    match op {
        Op::Input { .. } => SmOp::Process,
        Op::Routed { .. } => SmOp::BobMessage,
        Op::Send { .. } => SmOp::BobIq,
        Op::Complete { .. } | Op::ScramFinal { .. } => SmOp::Ack,
        Op::Disconnect(_) | Op::Close { .. } => SmOp::Disconnect,
        Op::Connect(_) | Op::TlsEstablished(_) => SmOp::Resume,
        Op::Timeout { secs } => SmOp::Advance(u64::from(*secs % 700)),
    }
}

#[derive(Arbitrary, Debug)]
struct Settings {
    conflict: u8,
    require_tls: bool,
    allow_plain: bool,
    offline: bool,
    max_resources: u8,
    max_auth_failures: u8,
    max_parked: u8,
    auth_timeout_secs: u16,
    extensions: bool,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Connect(Info),
    Input {
        session: u8,
        parts: Vec<Part>,
        /// Feed in two calls, split here (modulo the length).
        split: u16,
    },
    TlsEstablished(u8),
    Disconnect(u8),
    Close {
        session: u8,
        clean: bool,
    },
    Timeout {
        secs: u16,
    },
    Routed {
        stanza: Stanza,
        from: Option<JidChoice>,
        server_ns: bool,
    },
    Complete {
        pick: u8,
        answer: Answer,
    },
    ScramFinal {
        session: u8,
        right: bool,
    },
    Send {
        session: u8,
        stanza: Stanza,
    },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Info {
    Plain,
    StartTls,
    DirectTls,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Answer {
    Store,
    Failed,
    /// A response of a fuzz-chosen (often wrong) kind.
    Other(u8),
    /// An id that was already answered.
    Stale,
}

#[derive(Arbitrary, Debug)]
enum Part {
    Raw(Vec<u8>),
    Frag(Frag),
}

#[derive(Arbitrary, Debug)]
enum Frag {
    Header(Header),
    StartTls,
    AuthPlain {
        user: User,
        right: bool,
        authz: bool,
    },
    AuthScram {
        sha256: bool,
        user: User,
    },
    AuthBad(u8),
    Abort,
    ResponseGarbage,
    Bind(Resource),
    Session,
    Stanza(Stanza),
    CloseStream,
    Whitespace,
    Unknown,
    Partial,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Header {
    Good,
    NoVersion,
    OtherHost,
    NoTo,
    WrongStreamNs,
    ServerNs,
    Upper,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum User {
    Romeo,
    Juliet,
    Nobody,
    Upper,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Resource {
    None,
    Orchard,
    Balcony,
    Suffixed,
    Invalid,
    Empty,
    Long,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum JidChoice {
    Romeo,
    Juliet,
    RomeoOrchard,
    JulietBalcony,
    JulietOther,
    Nobody,
    Domain,
    DomainResource,
    Remote,
    RemoteFull,
    Upper,
    Invalid,
    Empty,
}

#[derive(Arbitrary, Debug)]
enum Stanza {
    Presence {
        to: Option<JidChoice>,
        kind: PresenceKind,
        priority: Option<i8>,
        show: bool,
    },
    Message {
        to: Option<JidChoice>,
        kind: MessageKind,
        body: bool,
    },
    Iq {
        to: Option<JidChoice>,
        kind: IqKind,
        payload: Payload,
    },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum PresenceKind {
    Available,
    Unavailable,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
    Probe,
    Error,
    Bogus,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum MessageKind {
    None,
    Chat,
    Normal,
    Headline,
    Groupchat,
    Error,
    Bogus,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum IqKind {
    Get,
    Set,
    Result,
    Error,
    None,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Payload {
    None,
    Ping,
    DiscoInfo,
    DiscoItems,
    Version,
    Session,
    RosterGet {
        ver: Option<u8>,
    },
    RosterSet {
        jid: JidChoice,
        name: bool,
        remove: bool,
        groups: u8,
    },
    RosterTwoItems,
    Bind,
    Extension,
    Unknown,
    TwoChildren,
}

// ------------------------------------------------------------ rendering --

impl JidChoice {
    fn text(self) -> &'static str {
        match self {
            JidChoice::Romeo => "romeo@localhost",
            JidChoice::Juliet => "juliet@localhost",
            JidChoice::RomeoOrchard => "romeo@localhost/orchard",
            JidChoice::JulietBalcony => "juliet@localhost/balcony",
            JidChoice::JulietOther => "juliet@localhost/other",
            JidChoice::Nobody => "nobody@localhost",
            JidChoice::Domain => "localhost",
            JidChoice::DomainResource => "localhost/admin",
            JidChoice::Remote => "mercutio@example.org",
            JidChoice::RemoteFull => "mercutio@example.org/street",
            JidChoice::Upper => "JULIET@LOCALHOST/balcony",
            JidChoice::Invalid => "@@bad",
            JidChoice::Empty => "",
        }
    }
}

impl User {
    fn name(self) -> &'static str {
        match self {
            User::Romeo => "romeo",
            User::Juliet => "juliet",
            User::Nobody => "nobody",
            User::Upper => "ROMEO",
        }
    }
}

fn attr(name: &str, value: Option<&str>) -> String {
    value.map_or_else(String::new, |v| format!(" {name}='{v}'"))
}

fn render_stanza(stanza: &Stanza, from: Option<&str>, xmlns: Option<&str>) -> String {
    let from = attr("from", from);
    let xmlns = attr("xmlns", xmlns);
    match stanza {
        Stanza::Presence {
            to,
            kind,
            priority,
            show,
        } => {
            let ty = match kind {
                PresenceKind::Available => None,
                PresenceKind::Unavailable => Some("unavailable"),
                PresenceKind::Subscribe => Some("subscribe"),
                PresenceKind::Subscribed => Some("subscribed"),
                PresenceKind::Unsubscribe => Some("unsubscribe"),
                PresenceKind::Unsubscribed => Some("unsubscribed"),
                PresenceKind::Probe => Some("probe"),
                PresenceKind::Error => Some("error"),
                PresenceKind::Bogus => Some("bogus"),
            };
            let mut body = String::new();
            if let Some(p) = priority {
                body.push_str(&format!("<priority>{p}</priority>"));
            }
            if *show {
                body.push_str("<show>away</show><status>out</status>");
            }
            if matches!(kind, PresenceKind::Error) {
                body.push_str(ERROR_CHILD);
            }
            format!(
                "<presence{xmlns}{from}{}{}>{body}</presence>",
                attr("to", to.map(JidChoice::text)),
                attr("type", ty)
            )
        }
        Stanza::Message { to, kind, body } => {
            let ty = match kind {
                MessageKind::None => None,
                MessageKind::Chat => Some("chat"),
                MessageKind::Normal => Some("normal"),
                MessageKind::Headline => Some("headline"),
                MessageKind::Groupchat => Some("groupchat"),
                MessageKind::Error => Some("error"),
                MessageKind::Bogus => Some("bogus"),
            };
            let mut inner = String::new();
            if *body {
                inner.push_str("<body>hello &amp; bye</body>");
            }
            if matches!(kind, MessageKind::Error) {
                inner.push_str(ERROR_CHILD);
            }
            format!(
                "<message{xmlns}{from}{}{} id='m1'>{inner}</message>",
                attr("to", to.map(JidChoice::text)),
                attr("type", ty)
            )
        }
        Stanza::Iq { to, kind, payload } => {
            let ty = match kind {
                IqKind::Get => Some("get"),
                IqKind::Set => Some("set"),
                IqKind::Result => Some("result"),
                IqKind::Error => Some("error"),
                IqKind::None => None,
            };
            let mut inner = render_payload(*payload);
            if matches!(kind, IqKind::Error) {
                inner.push_str(ERROR_CHILD);
            }
            format!(
                "<iq{xmlns}{from}{}{} id='i1'>{inner}</iq>",
                attr("to", to.map(JidChoice::text)),
                attr("type", ty)
            )
        }
    }
}

const ERROR_CHILD: &str = "<error type='cancel'><service-unavailable \
    xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>";

fn render_payload(payload: Payload) -> String {
    match payload {
        Payload::None => String::new(),
        Payload::Ping => "<ping xmlns='urn:xmpp:ping'/>".into(),
        Payload::DiscoInfo => "<query xmlns='http://jabber.org/protocol/disco#info'/>".into(),
        Payload::DiscoItems => "<query xmlns='http://jabber.org/protocol/disco#items'/>".into(),
        Payload::Version => "<query xmlns='jabber:iq:version'/>".into(),
        Payload::Session => "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>".into(),
        Payload::RosterGet { ver } => format!(
            "<query xmlns='jabber:iq:roster'{}/>",
            attr("ver", ver.map(|v| v.to_string()).as_deref())
        ),
        Payload::RosterSet {
            jid,
            name,
            remove,
            groups,
        } => {
            let mut groups_xml = String::new();
            for g in 0..groups % 4 {
                // Every fourth roster set repeats a group.
                let g = if groups >= 128 { 0 } else { g };
                groups_xml.push_str(&format!("<group>g{g}</group>"));
            }
            format!(
                "<query xmlns='jabber:iq:roster'><item jid='{}'{}{}>{groups_xml}</item></query>",
                jid.text(),
                attr("name", name.then_some("Friend")),
                attr("subscription", remove.then_some("remove"))
            )
        }
        Payload::RosterTwoItems => "<query xmlns='jabber:iq:roster'><item jid='romeo@localhost'/>\
             <item jid='juliet@localhost'/></query>"
            .into(),
        Payload::Bind => "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>".into(),
        Payload::Extension => format!("<x xmlns='{EXT_NS}'/>"),
        Payload::Unknown => "<x xmlns='urn:fuzz:unknown'/>".into(),
        Payload::TwoChildren => "<ping xmlns='urn:xmpp:ping'/><x xmlns='urn:fuzz:unknown'/>".into(),
    }
}

fn render_header(header: Header) -> String {
    let (to, version, stream_ns, ns) = match header {
        Header::Good => (
            Some(DOMAIN),
            Some("1.0"),
            "http://etherx.jabber.org/streams",
            "jabber:client",
        ),
        Header::NoVersion => (
            Some(DOMAIN),
            None,
            "http://etherx.jabber.org/streams",
            "jabber:client",
        ),
        Header::OtherHost => (
            Some("example.org"),
            Some("1.0"),
            "http://etherx.jabber.org/streams",
            "jabber:client",
        ),
        Header::NoTo => (
            None,
            Some("1.0"),
            "http://etherx.jabber.org/streams",
            "jabber:client",
        ),
        Header::WrongStreamNs => (
            Some(DOMAIN),
            Some("1.0"),
            "urn:fuzz:streams",
            "jabber:client",
        ),
        Header::ServerNs => (
            Some(DOMAIN),
            Some("1.0"),
            "http://etherx.jabber.org/streams",
            "jabber:server",
        ),
        Header::Upper => (
            Some("LOCALHOST"),
            Some("1.0"),
            "http://etherx.jabber.org/streams",
            "jabber:client",
        ),
    };
    format!(
        "<?xml version='1.0'?><stream:stream{}{} xml:lang='en' xmlns='{ns}' xmlns:stream='{stream_ns}'>",
        attr("to", to),
        attr("version", version)
    )
}

/// Renders a client fragment; records what the client knows (SCRAM state,
/// whether it may have sent the password).
fn render_frag(frag: &Frag, client: &mut Client) -> String {
    match frag {
        Frag::Header(h) => render_header(*h),
        Frag::StartTls => format!("<starttls xmlns='{NS_TLS}'/>"),
        Frag::AuthPlain { user, right, authz } => {
            let password = if *right {
                client.may_know_password = true;
                PASSWORD
            } else {
                "wrong"
            };
            let authz = if *authz {
                format!("{}@{DOMAIN}", user.name())
            } else {
                String::new()
            };
            let payload = BASE64_STANDARD.encode(format!("{authz}\0{}\0{password}", user.name()));
            format!("<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{payload}</auth>")
        }
        Frag::AuthScram { sha256, user } => {
            let bare = format!("n={},r=fuzzclientnonce", user.name());
            client.scram = Some((*sha256, bare.clone()));
            let mechanism = if *sha256 {
                "SCRAM-SHA-256"
            } else {
                "SCRAM-SHA-1"
            };
            let payload = BASE64_STANDARD.encode(format!("n,,{bare}"));
            format!("<auth xmlns='{NS_SASL}' mechanism='{mechanism}'>{payload}</auth>")
        }
        Frag::AuthBad(n) => match n % 4 {
            0 => format!("<auth xmlns='{NS_SASL}' mechanism='DIGEST-MD5'>=</auth>"),
            1 => format!("<auth xmlns='{NS_SASL}' mechanism='PLAIN'>!!!</auth>"),
            2 => format!("<auth xmlns='{NS_SASL}' mechanism='PLAIN'/>"),
            _ => format!("<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-1'>=</auth>"),
        },
        Frag::Abort => format!("<abort xmlns='{NS_SASL}'/>"),
        Frag::ResponseGarbage => format!("<response xmlns='{NS_SASL}'>Zm9v</response>"),
        Frag::Bind(resource) => {
            let inner = match resource {
                Resource::None => String::new(),
                Resource::Orchard => "<resource>orchard</resource>".into(),
                Resource::Balcony => "<resource>balcony</resource>".into(),
                Resource::Suffixed => "<resource>orchard#1</resource>".into(),
                Resource::Invalid => "<resource>\u{E000}</resource>".into(),
                Resource::Empty => "<resource></resource>".into(),
                Resource::Long => format!("<resource>{}</resource>", "r".repeat(1100)),
            };
            format!(
                "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>{inner}</bind></iq>"
            )
        }
        Frag::Session => {
            "<iq type='set' id='sess1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"
                .into()
        }
        Frag::Stanza(s) => render_stanza(s, None, None),
        Frag::CloseStream => "</stream:stream>".into(),
        Frag::Whitespace => "\n  ".into(),
        Frag::Unknown => "<foo xmlns='urn:fuzz'/>".into(),
        Frag::Partial => "<message to='juliet@localhost'><body>hel".into(),
    }
}

// ----------------------------------------------------------- scram client --

fn hmac(sha256: bool, key: &[u8], data: &[u8]) -> Vec<u8> {
    if sha256 {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    } else {
        let mut mac = Hmac::<Sha1>::new_from_slice(key).unwrap();
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }
}

/// The client-final message for `password` after `server_first`.
fn scram_final(
    sha256: bool,
    password: &str,
    client_first_bare: &str,
    server_first: &str,
) -> String {
    let mut nonce = "";
    let mut salt = Vec::new();
    let mut iterations = 1u32;
    for a in server_first.split(',') {
        if let Some(r) = a.strip_prefix("r=") {
            nonce = r;
        } else if let Some(s) = a.strip_prefix("s=") {
            salt = BASE64_STANDARD.decode(s).unwrap_or_default();
        } else if let Some(i) = a.strip_prefix("i=") {
            iterations = i.parse().unwrap_or(1);
        }
    }
    // Never let a hostile server-first make us spin.
    let iterations = iterations.clamp(1, 16);
    let len = if sha256 { 32 } else { 20 };
    let mut salted = vec![0u8; len];
    if sha256 {
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iterations, &mut salted);
    } else {
        pbkdf2::pbkdf2_hmac::<Sha1>(password.as_bytes(), &salt, iterations, &mut salted);
    }
    let client_key = hmac(sha256, &salted, b"Client Key");
    let stored_key = if sha256 {
        Sha256::digest(&client_key).to_vec()
    } else {
        Sha1::digest(&client_key).to_vec()
    };
    let without_proof = format!("c={},r={nonce}", BASE64_STANDARD.encode("n,,"));
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = hmac(sha256, &stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(k, s)| k ^ s)
        .collect();
    format!("{without_proof},p={}", BASE64_STANDARD.encode(proof))
}

// ----------------------------------------------------------------- model --

/// What one simulated client has observed.
struct Client {
    id: SessionId,
    reader: StreamReader,
    /// `Output::Close` seen.
    closed: bool,
    /// `Event::Closed` seen.
    removed: bool,
    /// `Output::StartTls` seen and TLS not yet established.
    awaiting_tls: bool,
    /// `handle_disconnect` was called: the socket is gone.
    disconnected: bool,
    /// The account, between `Event::Bound` and `Event::Unbound`.
    bound: Option<BareJid>,
    /// The client may have sent the right password (or random bytes).
    may_know_password: bool,
    /// SCRAM: (SHA-256?, client-first-message-bare) of the last `<auth/>`.
    scram: Option<(bool, String)>,
    /// The last `<challenge/>` payload received.
    challenge: Option<String>,
}

impl Client {
    fn new(id: SessionId) -> Self {
        Self {
            id,
            reader: StreamReader::new(XmlLimits {
                max_stanza_bytes: usize::MAX,
                max_depth: 1024,
                max_attributes: 1024,
                max_text_bytes: usize::MAX,
            }),
            closed: false,
            removed: false,
            awaiting_tls: false,
            disconnected: false,
            bound: None,
            may_know_password: false,
            scram: None,
            challenge: None,
        }
    }

    /// The server's bytes must form a well-formed stream, and the server's
    /// own stanzas (not the embedder's `send`) must be for this client.
    fn receive(&mut self, data: &[u8], from_embedder: bool) {
        self.reader.push(data);
        loop {
            match self.reader.next_event() {
                Ok(Some(StreamEvent::Stanza(el))) => {
                    if !from_embedder {
                        self.check_addressed_to_me(&el);
                    }
                    if el.is("challenge", NS_SASL) {
                        let text = BASE64_STANDARD.decode(el.text().trim()).unwrap_or_default();
                        self.challenge = Some(String::from_utf8_lossy(&text).into_owned());
                    }
                    if el.is("success", NS_SASL) || el.is("proceed", NS_TLS) {
                        self.reader.restart();
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => panic!(
                    "session {} received bytes that are not a well-formed stream: {e} ({:?})",
                    self.id,
                    String::from_utf8_lossy(data)
                ),
            }
        }
    }

    /// Messages and presence (other than errors) only reach bound
    /// sessions, and no stanza addressed to another account reaches this
    /// one.
    fn check_addressed_to_me(&self, el: &xmpp_session::Element) {
        if !el.has_ns("jabber:client") {
            return;
        }
        // A message for a socket that is gone would be lost: it must go to
        // another resource or offline storage instead.
        if el.name() == "message" && el.attr("type") != Some("error") {
            assert!(
                !self.disconnected,
                "{} got a message after its disconnect: {el:?}",
                self.id
            );
        }
        // Before binding, only error replies to the client's own stanzas.
        if matches!(el.name(), "message" | "presence") && el.attr("type") != Some("error") {
            assert!(
                self.bound.is_some(),
                "{} got a stanza before binding: {el:?}",
                self.id
            );
        }
        if matches!(el.name(), "message" | "presence" | "iq")
            && let Some(bare) = &self.bound
            && let Some(to) = el.attr("to")
        {
            let to = Jid::new(to).unwrap_or_else(|e| panic!("{} got to='{to}' ({e})", self.id));
            assert_eq!(
                &to.to_bare(),
                bare,
                "{} got a stanza for someone else: {el:?}",
                self.id
            );
        }
    }
}

struct Harness {
    manager: SessionManager,
    store: MemoryStore,
    now: Instant,
    clients: Vec<Client>,
    pending: Vec<(RequestId, Request)>,
    answered: Vec<RequestId>,
    seen_requests: HashSet<RequestId>,
    bares: BTreeSet<BareJid>,
    max_resources: usize,
    auth_timeout: Duration,
    connects: usize,
    reached: BTreeSet<&'static str>,
}

/// What the current operation is allowed to do.
#[derive(Default)]
struct Expect {
    /// No output at all.
    silent: bool,
    /// No bytes and no close for this session (its socket is gone and it
    /// had no stanzas to finish).
    no_bytes_for: Option<SessionId>,
    /// Sessions that may be closed by a timeout (others may not).
    timeout: Option<HashSet<SessionId>>,
    /// The embedder's `send` to this session: any stanza may arrive.
    embedder_send: Option<SessionId>,
}

impl Harness {
    fn new(settings: &Settings) -> Self {
        let conflict = match settings.conflict % 3 {
            0 => ConflictPolicy::KickOld,
            1 => ConflictPolicy::RefuseNew,
            _ => ConflictPolicy::AddSuffix,
        };
        let max_resources = usize::from(settings.max_resources % 4) + 1;
        let auth_timeout = Duration::from_secs(u64::from(settings.auth_timeout_secs % 600) + 1);
        let config = Config::builder(DOMAIN)
            .require_tls(settings.require_tls)
            .allow_plain_without_tls(settings.allow_plain)
            .offline_storage(settings.offline)
            .conflict_policy(conflict)
            .max_resources_per_user(max_resources)
            .max_auth_failures(u32::from(settings.max_auth_failures % 4) + 1)
            .max_parked_per_user(usize::from(settings.max_parked % 8) + 1)
            .auth_timeout(auth_timeout)
            .build()
            .expect("a valid configuration");
        let now = Instant::now();
        let mut manager = SessionManager::with_random(config, Box::new(SeededRandom::new(7)));
        manager.set_wall_clock(
            now,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        );
        if settings.extensions {
            manager.register_iq_namespace(EXT_NS);
            manager.register_message_type("headline");
            manager.register_presence_to_host();
        }
        let mut store = MemoryStore::with_iterations(ITERATIONS);
        for user in USERS {
            let account = AccountJid::new(user, DOMAIN).expect("a valid account");
            store.add_credentials(&account, credentials().clone());
        }
        let bares = USERS
            .iter()
            .map(|u| BareJid::new(&format!("{u}@{DOMAIN}")).unwrap())
            .collect();
        Self {
            manager,
            store,
            now,
            clients: Vec::new(),
            pending: Vec::new(),
            answered: Vec::new(),
            seen_requests: HashSet::new(),
            bares,
            max_resources,
            auth_timeout,
            connects: 0,
            reached: BTreeSet::new(),
        }
    }

    fn client(&mut self, index: u8) -> Option<usize> {
        if self.clients.is_empty() {
            return None;
        }
        Some(usize::from(index) % self.clients.len())
    }

    fn client_by_id(&mut self, id: SessionId) -> &mut Client {
        self.clients
            .iter_mut()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("output for {id}, which was never connected"))
    }

    fn live(&self) -> usize {
        self.clients.iter().filter(|c| !c.removed).count()
    }

    fn apply(&mut self, op: &Op) {
        let mut expect = Expect::default();
        match op {
            Op::Connect(info) => {
                if self.live() >= MAX_LIVE || self.connects >= MAX_CONNECTS {
                    return;
                }
                self.connects += 1;
                let info = match info {
                    Info::Plain => ConnectionInfo::plain(),
                    Info::StartTls => ConnectionInfo::starttls(),
                    Info::DirectTls => ConnectionInfo::direct_tls(),
                };
                let id = self.manager.connect(info, self.now);
                assert!(
                    self.clients.iter().all(|c| c.id != id),
                    "session handle {id} reused"
                );
                self.clients.push(Client::new(id));
            }
            Op::Input {
                session,
                parts,
                split,
            } => {
                let Some(i) = self.client(*session) else {
                    return;
                };
                if self.clients[i].disconnected {
                    // No bytes come from a socket that is gone.
                    return;
                }
                let mut bytes = Vec::new();
                for part in parts {
                    match part {
                        Part::Raw(raw) => {
                            self.clients[i].may_know_password = true;
                            bytes.extend_from_slice(raw);
                        }
                        Part::Frag(frag) => bytes
                            .extend_from_slice(render_frag(frag, &mut self.clients[i]).as_bytes()),
                    }
                }
                let client = &self.clients[i];
                expect.silent = client.removed || client.awaiting_tls;
                let id = client.id;
                let at = if bytes.is_empty() {
                    0
                } else {
                    usize::from(*split) % (bytes.len() + 1)
                };
                let (a, b) = bytes.split_at(at);
                self.manager.handle_input(id, a, self.now);
                // Answer nothing in between: the second chunk arrives while
                // requests from the first may still be open.
                self.manager.handle_input(id, b, self.now);
            }
            Op::TlsEstablished(session) => {
                let Some(i) = self.client(*session) else {
                    return;
                };
                if self.clients[i].disconnected {
                    return;
                }
                let id = self.clients[i].id;
                self.clients[i].awaiting_tls = false;
                expect.silent = self.clients[i].removed;
                self.manager
                    .handle_tls_established(id, TlsInfo::default(), self.now);
            }
            Op::Disconnect(session) => {
                let Some(i) = self.client(*session) else {
                    return;
                };
                let id = self.clients[i].id;
                self.clients[i].disconnected = true;
                expect.silent = self.clients[i].removed;
                // A bound session first finishes the stanzas it already
                // sent (replies to it are dropped by the caller); any other
                // session goes at once, silently.
                let bound = self
                    .manager
                    .session(id)
                    .is_some_and(|s| s.kind() == SessionKind::Bound);
                if !bound {
                    expect.no_bytes_for = Some(id);
                }
                self.manager.handle_disconnect(id, self.now);
                if !bound {
                    assert!(
                        self.manager.session(id).is_none(),
                        "{id} survived a disconnect"
                    );
                }
            }
            Op::Close { session, clean } => {
                let Some(i) = self.client(*session) else {
                    return;
                };
                let id = self.clients[i].id;
                expect.silent = self.clients[i].removed;
                if *clean {
                    self.manager.close_cleanly(id, self.now);
                } else {
                    self.manager.close(
                        id,
                        StreamError::with_text(StreamErrorCondition::SystemShutdown, "fuzz"),
                        self.now,
                    );
                }
                assert!(self.manager.session(id).is_none(), "{id} survived close");
            }
            Op::Timeout { secs } => {
                self.now += Duration::from_secs(u64::from(*secs));
                let due: HashSet<SessionId> = self
                    .clients
                    .iter()
                    .filter_map(|c| self.manager.session(c.id))
                    .filter(|s| {
                        s.kind() == SessionKind::Unauthenticated
                            && self.now.duration_since(s.connected_at()) >= self.auth_timeout
                    })
                    .map(|s| s.id())
                    .collect();
                expect.timeout = Some(due);
                self.manager.handle_timeout(self.now);
            }
            Op::Routed {
                stanza,
                from,
                server_ns,
            } => {
                let ns = server_ns.then_some("jabber:server");
                let xml = render_stanza(stanza, from.map(JidChoice::text), ns);
                self.manager.handle_routed(parse_stanza(&xml), self.now);
            }
            Op::Complete { pick, answer } => {
                if let Answer::Stale = answer {
                    if self.answered.is_empty() {
                        return;
                    }
                    let id = self.answered[usize::from(*pick) % self.answered.len()];
                    expect.silent = true;
                    self.manager.complete(id, Response::Done, self.now);
                } else {
                    if self.pending.is_empty() {
                        return;
                    }
                    let (id, request) =
                        self.pending.remove(usize::from(*pick) % self.pending.len());
                    let response = match answer {
                        Answer::Failed => Response::Failed(StoreError("fuzz".into())),
                        Answer::Other(n) => other_response(*n, &request),
                        _ => self.store_answer(&request),
                    };
                    self.answered.push(id);
                    self.manager.complete(id, response, self.now);
                }
            }
            Op::ScramFinal { session, right } => {
                let Some(i) = self.client(*session) else {
                    return;
                };
                if self.clients[i].disconnected {
                    return;
                }
                let client = &mut self.clients[i];
                let payload = match (&client.scram, &client.challenge) {
                    (Some((sha256, bare)), Some(challenge)) => {
                        let password = if *right {
                            client.may_know_password = true;
                            PASSWORD
                        } else {
                            "wrong"
                        };
                        BASE64_STANDARD.encode(scram_final(*sha256, password, bare, challenge))
                    }
                    _ => BASE64_STANDARD.encode("c=biws,r=none,p=AAAA"),
                };
                let id = client.id;
                expect.silent = client.removed || client.awaiting_tls;
                let xml = format!("<response xmlns='{NS_SASL}'>{payload}</response>");
                self.manager.handle_input(id, xml.as_bytes(), self.now);
            }
            Op::Send { session, stanza } => {
                let Some(i) = self.client(*session) else {
                    return;
                };
                let id = self.clients[i].id;
                let open = self.manager.session(id).is_some_and(|s| s.is_open());
                let sent = self
                    .manager
                    .send(id, &parse_stanza(&render_stanza(stanza, None, None)));
                assert_eq!(sent, open, "send() result for {id}");
                expect.silent = !open;
                expect.embedder_send = Some(id);
            }
        }
        self.drain(&expect);
    }

    /// The in-memory store's answer to a request.
    fn store_answer(&mut self, request: &Request) -> Response {
        use xmpp_session::Store;
        self.store.answer(request)
    }

    /// Drains every output, checking each, then checks global invariants.
    fn drain(&mut self, expect: &Expect) {
        let before: HashMap<SessionId, SessionKind> = self
            .clients
            .iter()
            .filter_map(|c| self.manager.session(c.id).map(|s| (c.id, s.kind())))
            .collect();
        while let Some(output) = self.manager.poll_output() {
            assert!(
                !expect.silent,
                "output from an operation on a stale handle: {output:?}"
            );
            self.check_output(output, expect);
        }
        self.check_state(&before, expect);
    }

    fn check_output(&mut self, output: Output, expect: &Expect) {
        match output {
            Output::Transmit { session, data } => {
                assert_ne!(
                    expect.no_bytes_for,
                    Some(session),
                    "bytes for a disconnected socket"
                );
                let client = self.client_by_id(session);
                assert!(!client.closed, "{session} got bytes after its Close");
                client.receive(&data, expect.embedder_send == Some(session));
            }
            Output::StartTls { session } => {
                let client = self.client_by_id(session);
                assert!(!client.closed, "StartTls for {session} after its Close");
                client.awaiting_tls = true;
            }
            Output::Close { session } => {
                assert_ne!(
                    expect.no_bytes_for,
                    Some(session),
                    "Close for a disconnected socket"
                );
                if let Some(due) = &expect.timeout {
                    assert!(
                        due.contains(&session),
                        "timeout closed {session}, which was not due"
                    );
                }
                let client = self.client_by_id(session);
                assert!(!client.closed, "{session} closed twice");
                client.closed = true;
            }
            Output::Route { stanza } => {
                self.reached.insert("route");
                let from = stanza.attr("from").map(Jid::new);
                assert!(
                    matches!(from, Some(Ok(_))),
                    "routed without a valid from: {stanza:?}"
                );
                match stanza.attr("to").map(Jid::new) {
                    Some(Ok(to)) => assert!(
                        !self.manager.config().serves(to.domain().as_str()),
                        "routed out a stanza for a local domain: {stanza:?}"
                    ),
                    other => panic!("routed without a valid to ({other:?}): {stanza:?}"),
                }
            }
            Output::Request { id, request } => {
                self.reached.insert(match &request {
                    Request::Credentials { .. } => "req-credentials",
                    Request::VerifyPassword { .. } => "req-verify-password",
                    Request::UserExists { .. } => "req-user-exists",
                    Request::StoreOffline { .. } => "req-store-offline",
                    Request::LoadRoster { .. } => "req-load-roster",
                    Request::RosterChanged { .. } => "req-roster-changed",
                    Request::TakeOffline { .. } => "req-take-offline",
                    _ => "req-other",
                });
                assert!(self.seen_requests.insert(id), "request id {id} reused");
                self.pending.push((id, request));
            }
            Output::Event(event) => self.check_event(event),
            other => panic!("unknown output {other:?}"),
        }
    }

    fn check_event(&mut self, event: Event) {
        self.reached.insert(match &event {
            Event::Authenticated { .. } => "authenticated",
            Event::Bound { .. } => "bound",
            Event::Unbound { .. } => "unbound",
            Event::Closed { .. } => "closed",
            Event::Stanza { .. } => "stanza-event",
            _ => "other-event",
        });
        match event {
            Event::Authenticated { session, username } => {
                assert!(
                    USERS.contains(&username.as_str()),
                    "unknown account {username} authenticated"
                );
                let client = self.client_by_id(session);
                assert!(
                    client.may_know_password,
                    "{session} authenticated without the password"
                );
            }
            Event::Bound { session, jid } => {
                self.client_by_id(session);
                assert_eq!(jid.domain().as_str(), DOMAIN);
                let node = jid
                    .node()
                    .map(|n| n.as_str().to_owned())
                    .unwrap_or_default();
                assert!(
                    USERS.contains(&node.as_str()),
                    "bound {jid} for an unknown account"
                );
                self.bares.insert(jid.to_bare());
                let client = self.client_by_id(session);
                assert!(client.bound.is_none(), "{session} bound twice");
                client.bound = Some(jid.to_bare());
            }
            Event::Unbound { session, jid } => {
                let client = self.client_by_id(session);
                assert_eq!(client.bound.as_ref(), Some(&jid.to_bare()), "Unbound {jid}");
                client.bound = None;
            }
            Event::Closed { session } => {
                let client = self.client_by_id(session);
                assert!(!client.removed, "{session} removed twice");
                client.removed = true;
            }
            Event::Stanza { session, .. } => {
                if let Some(session) = session {
                    self.client_by_id(session);
                }
            }
            other => panic!("unknown event {other:?}"),
        }
    }

    fn check_state(&self, before: &HashMap<SessionId, SessionKind>, expect: &Expect) {
        let mut live = 0;
        for client in &self.clients {
            let session = self.manager.session(client.id);
            assert_eq!(
                session.is_none(),
                client.removed,
                "{}: session() disagrees with Event::Closed",
                client.id
            );
            if client.closed {
                assert!(client.removed, "{} closed but not removed", client.id);
            }
            if let Some(due) = &expect.timeout
                && client.removed
                && let Some(kind) = before.get(&client.id)
            {
                assert!(
                    due.contains(&client.id),
                    "timeout removed {} ({kind:?}), which was not due",
                    client.id
                );
            }
            let Some(session) = session else { continue };
            live += 1;
            assert_eq!(session.id(), client.id);
            match session.full_jid() {
                Some(full) => {
                    assert_eq!(session.kind(), SessionKind::Bound);
                    let bare = full.to_bare();
                    assert_eq!(session.bare_jid(), Some(&bare));
                    let listed = self
                        .manager
                        .resources(&bare)
                        .filter(|s| s.id() == client.id)
                        .count();
                    assert_eq!(listed, 1, "{full} listed {listed} times in resources()");
                    assert_eq!(
                        self.manager.session_by_jid(full).map(|s| s.id()),
                        Some(client.id),
                        "session_by_jid({full})"
                    );
                }
                None => assert_ne!(session.kind(), SessionKind::Bound, "bound without a JID"),
            }
        }
        assert_eq!(self.manager.session_count(), live, "session_count()");
        for bare in &self.bares {
            let mut fulls = HashSet::new();
            let mut count = 0;
            for s in self.manager.resources(bare) {
                count += 1;
                let full = s.full_jid().expect("resources() lists an unbound session");
                assert_eq!(&full.to_bare(), bare, "resources({bare}) lists {full}");
                assert!(fulls.insert(full.clone()), "{full} bound twice");
                assert!(s.is_connected());
                assert!(self.manager.session(s.id()).is_some());
            }
            assert!(count <= self.max_resources, "{count} resources for {bare}");
        }
    }

    /// Answers everything still open, in order, until nothing is left.
    fn finish(&mut self) {
        for _ in 0..10_000 {
            if self.pending.is_empty() {
                for client in &self.clients {
                    assert!(
                        !client.disconnected || client.removed,
                        "{} outlived its disconnect with nothing left to wait for",
                        client.id
                    );
                }
                return;
            }
            let (id, request) = self.pending.remove(0);
            let response = self.store_answer(&request);
            self.answered.push(id);
            self.manager.complete(id, response, self.now);
            self.drain(&Expect::default());
        }
        panic!("requests never settle");
    }
}

fn other_response(n: u8, request: &Request) -> Response {
    match n % 7 {
        0 => Response::Done,
        1 => Response::UserExists(n >= 128),
        2 => Response::Credentials(if n >= 128 {
            Some(credentials().clone())
        } else {
            None
        }),
        3 => {
            // Stored messages are for the user whose store is read.
            let to = match request {
                Request::TakeOffline { account } => account.user(),
                _ => "juliet",
            };
            Response::Offline(vec![parse_stanza(&format!(
                "<message from='mercutio@example.org/street' to='{to}@localhost' type='chat'>\
                 <body>stored</body></message>"
            ))])
        }
        4 => Response::Roster(Roster::default()),
        5 => Response::PasswordChecked(match n / 7 % 4 {
            0 => PasswordCheck::Valid,
            1 => PasswordCheck::WrongPassword,
            2 => PasswordCheck::UnknownUser,
            _ => PasswordCheck::AccountDisabled,
        }),
        _ => Response::Failed(StoreError(String::new())),
    }
}

/// `FUZZ_TRACE=1` prints what each input reached (to check seeds).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some())
}

fuzz_target!(|input: Input| {
    let mut harness = Harness::new(&input.settings);
    for op in &input.ops {
        harness.apply(op);
    }
    harness.finish();
    if trace() {
        eprintln!("TRACE {:?}", harness.reached);
    }
    // Bounded: a few hundred steps at most.
    let mut world = SmWorld::new(usize::from(input.settings.max_parked % 16) + 3);
    for op in input.ops.iter().take(256) {
        world.apply(&sm_op(op));
    }
    world.finish();
});
