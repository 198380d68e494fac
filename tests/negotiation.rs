//! Stream negotiation end to end: the exact header and features at each
//! stage, the session accessors as negotiation advances, whitespace
//! keepalives, and chunking invariance of a whole login transcript.
//!
//! Stream errors, SASL and binding have their own files
//! (`stream_errors.rs`, `sasl.rs`, `bind.rs`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use proptest::prelude::*;
use xmpp_session::testkit::TestServer;
use xmpp_session::{Config, ConnectionInfo, SessionId, SessionKind, SessionManager};

const NS_STREAMS: &str = "http://etherx.jabber.org/streams";
const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";

/// Our stream header as the server writes it.
fn server_header(id: &str, to: Option<&str>) -> String {
    let to = to.map(|t| format!(" to='{t}'")).unwrap_or_default();
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='{NS_STREAMS}' \
         xml:lang='en' id='{id}' from='localhost'{to} version='1.0'>"
    )
}

/// The stream id in a raw header, checked to be 16 URL-safe characters.
fn stream_id_of(raw: &str) -> String {
    let start = raw.find(" id='").expect("no id in header") + 5;
    let len = raw[start..].find('\'').expect("unterminated id");
    let id = &raw[start..start + len];
    assert_eq!(id.len(), 16, "stream id {id:?}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "stream id {id:?}"
    );
    id.to_owned()
}

fn limits(max_bytes: usize) -> String {
    format!(
        "<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>{max_bytes}</max-bytes>\
         </limits>"
    )
}

fn plain_auth(user: &str, password: &str) -> String {
    format!(
        "<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{}</auth>",
        BASE64.encode(format!("\0{user}\0{password}"))
    )
}

const BOUND_FEATURES: &str = "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><required/></bind>\
    <session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>\
    <ver xmlns='urn:xmpp:features:rosterver'/><sub xmlns='urn:xmpp:features:pre-approval'/>\
    <sm xmlns='urn:xmpp:sm:3'/><csi xmlns='urn:xmpp:csi:0'/>";

// --- header and features -----------------------------------------------------

#[test]
fn first_header_and_features_exact_bytes() {
    let mut server = TestServer::new();
    let c = server.connect();
    server.open_stream(c);
    let raw = server.take_raw(c);
    let id = stream_id_of(&raw);
    assert_eq!(
        raw,
        format!(
            "{}<stream:features><mechanisms xmlns='{NS_SASL}'><mechanism>SCRAM-SHA-256</mechanism>\
             <mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms>{}</stream:features>",
            server_header(&id, None),
            limits(10_000)
        )
    );
    assert_eq!(server.manager.session(c).unwrap().stream_id(), id);
}

#[test]
fn valid_client_from_is_echoed_as_to() {
    let mut server = TestServer::new();
    let c = server.connect();
    server.send(
        c,
        &format!(
            "<?xml version='1.0'?><stream:stream from='romeo@localhost' to='localhost' version='1.0' \
             xmlns='jabber:client' xmlns:stream='{NS_STREAMS}'>"
        ),
    );
    let raw = server.take_raw(c);
    let id = stream_id_of(&raw);
    assert!(
        raw.starts_with(&server_header(&id, Some("romeo@localhost"))),
        "{raw}"
    );

    // An invalid one is not.
    let c = server.connect();
    server.send(
        c,
        &format!(
            "<stream:stream from='a@b@c' to='localhost' version='1.0' xmlns='jabber:client' \
             xmlns:stream='{NS_STREAMS}'>"
        ),
    );
    let raw = server.take_raw(c);
    let id = stream_id_of(&raw);
    assert!(raw.starts_with(&server_header(&id, None)), "{raw}");
}

#[test]
fn features_after_authentication_exact_bytes() {
    let mut server = TestServer::new();
    server.add_user("romeo", "pass");
    let c = server.connect();
    server.open_stream(c);
    let first = stream_id_of(&server.take_raw(c));
    server.send(c, &plain_auth("romeo", "pass"));
    assert_eq!(server.take_raw(c), format!("<success xmlns='{NS_SASL}'/>"));
    server.open_stream(c);
    let raw = server.take_raw(c);
    let id = stream_id_of(&raw);
    assert_ne!(id, first, "a restarted stream gets a new id");
    assert_eq!(
        raw,
        format!(
            "{}<stream:features>{BOUND_FEATURES}{}</stream:features>",
            server_header(&id, None),
            limits(262_144)
        )
    );
}

#[test]
fn advertised_limits_follow_the_configuration() {
    let config = Config::builder("localhost")
        .require_tls(false)
        .allow_plain_without_tls(true)
        .unauthenticated_limits(xmpp_session::stream::XmlLimits {
            max_stanza_bytes: 4096,
            ..Default::default()
        })
        .limits(xmpp_session::stream::XmlLimits {
            max_stanza_bytes: 65536,
            ..Default::default()
        })
        .build()
        .expect("valid config");
    let mut server = TestServer::with_config(config);
    server.add_user("romeo", "pass");
    let c = server.connect();
    server.open_stream(c);
    assert!(
        server
            .take_raw(c)
            .ends_with(&format!("{}</stream:features>", limits(4096)))
    );
    server.send(c, &plain_auth("romeo", "pass"));
    server.open_stream(c);
    assert!(
        server
            .take_raw(c)
            .ends_with(&format!("{}</stream:features>", limits(65536)))
    );
}

#[test]
fn starttls_feature_exact_bytes() {
    for (require, starttls) in [
        (
            true,
            "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>",
        ),
        (false, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
    ] {
        let mut server = TestServer::with_config(
            Config::builder("localhost")
                .require_tls(require)
                .build()
                .expect("valid config"),
        );
        let c = server.connect_with(ConnectionInfo::starttls());
        server.open_stream(c);
        let raw = server.take_raw(c);
        let id = stream_id_of(&raw);
        // Without TLS, SASL is offered only when TLS is optional, and never PLAIN.
        let mechanisms = if require {
            String::new()
        } else {
            format!(
                "<mechanisms xmlns='{NS_SASL}'><mechanism>SCRAM-SHA-256</mechanism>\
                 <mechanism>SCRAM-SHA-1</mechanism></mechanisms>"
            )
        };
        assert_eq!(
            raw,
            format!(
                "{}<stream:features>{starttls}{mechanisms}{}</stream:features>",
                server_header(&id, None),
                limits(10_000)
            )
        );
    }
}

#[test]
fn after_starttls_the_new_header_gets_mechanisms() {
    let mut server =
        TestServer::with_config(Config::builder("localhost").build().expect("valid config"));
    let c = server.connect_with(ConnectionInfo::starttls());
    server.open_stream(c);
    server.take_raw(c);
    server.send(c, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert_eq!(
        server.take_raw(c),
        "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    );
    assert!(server.started_tls(c));
    server.tls_established(c);
    server.open_stream(c);
    let raw = server.take_raw(c);
    let id = stream_id_of(&raw);
    assert_eq!(
        raw,
        format!(
            "{}<stream:features><mechanisms xmlns='{NS_SASL}'><mechanism>SCRAM-SHA-256</mechanism>\
             <mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms>{}</stream:features>",
            server_header(&id, None),
            limits(10_000)
        )
    );
}

#[test]
fn required_tls_that_cannot_happen_is_undefined_condition() {
    let mut server = TestServer::with_config(
        Config::builder("localhost")
            .require_tls(true)
            .build()
            .expect("valid config"),
    );
    let c = server.connect_with(ConnectionInfo::plain());
    server.open_stream(c);
    let raw = server.take_raw(c);
    let id = stream_id_of(&raw);
    assert_eq!(
        raw,
        format!(
            "{}<stream:error><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>No stream features to proceed with</text>\
             </stream:error></stream:stream>",
            server_header(&id, None)
        )
    );
    assert!(server.is_closed(c));
}

#[test]
fn no_mechanism_left_is_undefined_condition() {
    // Only PLAIN configured, and PLAIN is not allowed without TLS.
    let mut server = TestServer::with_config(
        Config::builder("localhost")
            .require_tls(false)
            .mechanisms(&[xmpp_session::sasl::Mechanism::Plain])
            .build()
            .expect("valid config"),
    );
    let c = server.connect();
    server.open_stream(c);
    let raw = server.take_raw(c);
    let id = stream_id_of(&raw);
    assert_eq!(
        raw,
        format!(
            "{}<stream:error><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>No stream features to proceed with</text>\
             </stream:error></stream:stream>",
            server_header(&id, None)
        )
    );
}

#[test]
fn every_served_host_can_be_opened() {
    let mut server = TestServer::with_config(
        Config::builder("localhost")
            .host("example.net")
            .require_tls(false)
            .allow_plain_without_tls(true)
            .build()
            .expect("valid config"),
    );
    let c = server.connect();
    server.send(
        c,
        &format!(
            "<stream:stream to='example.net' version='1.0' xmlns='jabber:client' xmlns:stream='{NS_STREAMS}'>"
        ),
    );
    let raw = server.take_raw(c);
    assert!(raw.contains(" from='example.net' "), "{raw}");
    assert_eq!(
        server.manager.session(c).unwrap().host(),
        Some("example.net")
    );
}

// --- session accessors through negotiation ------------------------------------

#[test]
fn accessors_at_each_stage() {
    let mut server = TestServer::new();
    server.add_user("romeo", "pass");
    let c = server.connect();

    let s = server.manager.session(c).unwrap();
    assert_eq!(s.id(), c);
    assert_eq!(s.kind(), SessionKind::Unauthenticated);
    assert!(s.notopen());
    assert!(!s.is_open());
    assert!(!s.is_secure());
    assert_eq!(s.host(), None);
    assert_eq!(s.username(), None);
    assert_eq!(s.resource(), None);
    assert_eq!(s.full_jid(), None);
    assert_eq!(s.bare_jid(), None);
    assert!(!s.is_connected() && !s.is_available() && !s.is_interested());
    assert_eq!(s.connected_at(), server.now());

    server.open_stream(c);
    let s = server.manager.session(c).unwrap();
    assert!(!s.notopen());
    assert!(s.is_open());
    assert_eq!(s.host(), Some("localhost"));
    assert_eq!(s.kind(), SessionKind::Unauthenticated);
    assert_eq!(s.username(), None);

    server.send(c, &plain_auth("romeo", "pass"));
    let s = server.manager.session(c).unwrap();
    assert_eq!(s.kind(), SessionKind::Authenticated);
    assert_eq!(s.username(), Some("romeo"));
    assert!(s.notopen(), "waiting for the restart");
    assert!(!s.is_connected());

    server.open_stream(c);
    let s = server.manager.session(c).unwrap();
    assert!(!s.notopen());
    assert_eq!(s.kind(), SessionKind::Authenticated);
    assert_eq!(s.resource(), None);
    assert!(!s.is_connected() && !s.is_available() && !s.is_interested());

    server.bind(c, Some("orchard"));
    let s = server.manager.session(c).unwrap();
    assert_eq!(s.kind(), SessionKind::Bound);
    assert_eq!(s.resource(), Some("orchard"));
    assert_eq!(
        s.full_jid().map(|j| j.as_str()),
        Some("romeo@localhost/orchard")
    );
    assert_eq!(s.bare_jid().map(|j| j.as_str()), Some("romeo@localhost"));
    assert!(s.is_connected());
    assert!(!s.is_available());
    assert!(!s.is_interested());
    assert_eq!(s.presence(), None);
    assert_eq!(s.priority(), None);

    server.send(
        c,
        "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>",
    );
    let s = server.manager.session(c).unwrap();
    assert!(s.interested() && s.is_interested());
    assert!(!s.is_available());

    server.send(c, "<presence><priority>5</priority></presence>");
    let s = server.manager.session(c).unwrap();
    assert!(s.is_available());
    assert_eq!(s.priority(), Some(5));
    assert!(s.presence().is_some());

    server.send(c, "<presence type='unavailable'/>");
    let s = server.manager.session(c).unwrap();
    assert!(!s.is_available());
    assert!(s.is_connected());
    assert_eq!(s.priority(), None);

    server.send(c, "</stream:stream>");
    assert!(server.manager.session(c).is_none());
    assert!(server.is_closed(c));
}

#[test]
fn session_count_and_resources() {
    let mut server = TestServer::new();
    server.add_user("romeo", "pass");
    assert_eq!(server.manager.session_count(), 0);
    let a = server.login("romeo", "a");
    let unauthenticated = server.connect();
    let b = server.login("romeo", "b");
    assert_eq!(server.manager.session_count(), 3);
    let bare = xmpp_session::jid::BareJid::new("romeo@localhost").unwrap();
    let ids: Vec<SessionId> = server.manager.resources(&bare).map(|s| s.id()).collect();
    assert_eq!(ids, vec![a, b]);
    server.disconnect(unauthenticated);
    assert_eq!(server.manager.session_count(), 2);
}

// --- whitespace keepalives -----------------------------------------------------

#[test]
fn whitespace_is_accepted_at_every_stage() {
    let mut server = TestServer::new();
    server.add_user("romeo", "pass");
    server.add_user("juliet", "pass");
    let juliet = server.login("juliet", "balcony");
    server.take(juliet);
    let c = server.connect();
    let ws = " \n\t\r\n ";

    // Before the header.
    server.send(c, ws);
    assert_eq!(server.take_raw(c), "");
    server.open_stream(c);
    server.take(c);
    server.take_raw(c);
    // Before and between SASL steps.
    server.send(c, ws);
    assert_eq!(server.take_raw(c), "");
    server.send(c, &format!("{ws}{}{ws}", plain_auth("romeo", "wrong")));
    server.expect(
        c,
        &["<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/>\
           <text>Unable to authorize you with the authentication credentials you've sent.</text></failure>"],
    );
    server.send(c, ws);
    server.expect_nothing(c);
    server.send(c, &plain_auth("romeo", "pass"));
    server.expect(c, &["<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"]);
    server.take_raw(c);
    // Between <success/> and the restart.
    server.send(c, ws);
    assert_eq!(server.take_raw(c), "");
    server.open_stream(c);
    server.take(c);
    server.take_raw(c);
    // Before binding.
    server.send(c, ws);
    assert_eq!(server.take_raw(c), "");
    server.bind(c, Some("orchard"));
    server.take_raw(c);
    // Between stanzas after binding.
    for _ in 0..3 {
        server.send(c, ws);
        assert_eq!(server.take_raw(c), "");
    }
    server.send(
        c,
        &format!("{ws}<message to='juliet@localhost/balcony'><body>hi</body></message>{ws}"),
    );
    assert_eq!(server.take_raw(c), "");
    server.expect(
        juliet,
        &["<message from='romeo@localhost/orchard' to='juliet@localhost/balcony'><body>hi</body></message>"],
    );
    assert!(!server.is_closed(c));
    server.expect_nothing(c);
}

#[test]
fn a_lot_of_whitespace_does_not_hit_the_stanza_limit() {
    let mut server = TestServer::new();
    let c = server.connect();
    server.open_stream(c);
    server.take_raw(c);
    // Far more than the 10000-byte pre-authentication limit, in pieces.
    for _ in 0..50 {
        server.send(c, &" ".repeat(1000));
    }
    assert_eq!(server.take_raw(c), "");
    assert!(!server.is_closed(c));
}

// --- chunking invariance -------------------------------------------------------

/// What romeo sends: header, PLAIN, restart, bind, a message to juliet,
/// with keepalives in between.
fn transcript() -> Vec<u8> {
    let header = TestServer::stream_header();
    format!(
        "{header}\n{}{header} <iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
         <resource>orch\u{e4}rd</resource></bind></iq>\n<message to='juliet@localhost/balcony' type='chat' \
         id='m1'><body>Wherefore art thou? \u{1F319}</body></message> ",
        plain_auth("romeo", "pass")
    )
    .into_bytes()
}

/// Runs the transcript split at `cuts` on a fresh server; returns every
/// byte romeo and juliet received.
fn run_chunked(cuts: &[usize]) -> (String, String, bool) {
    let mut server = TestServer::new();
    server.add_user("romeo", "pass");
    server.add_user("juliet", "pass");
    let juliet = server.login("juliet", "balcony");
    let romeo = server.connect();
    let data = transcript();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&data.len())) {
        if cut > start {
            server.send_bytes(romeo, &data[start..cut]);
            start = cut;
        }
    }
    let closed = server.is_closed(romeo);
    (server.take_raw(romeo), server.take_raw(juliet), closed)
}

#[test]
fn whole_transcript_in_one_chunk_logs_in_and_delivers() {
    let (romeo, juliet, closed) = run_chunked(&[]);
    assert!(!closed);
    let first = stream_id_of(&romeo);
    let second_at = romeo.find("<success").unwrap();
    let second = stream_id_of(&romeo[second_at..]);
    assert_eq!(
        romeo,
        format!(
            "{}<stream:features><mechanisms xmlns='{NS_SASL}'><mechanism>SCRAM-SHA-256</mechanism>\
             <mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms>{}</stream:features>\
             <success xmlns='{NS_SASL}'/>\
             {}<stream:features>{BOUND_FEATURES}{}</stream:features>\
             <iq id='b1' type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
             <jid>romeo@localhost/orch\u{e4}rd</jid></bind></iq>",
            server_header(&first, None),
            limits(10_000),
            server_header(&second, None),
            limits(262_144)
        )
    );
    assert!(
        juliet.ends_with(
            "</iq><message from='romeo@localhost/orch\u{e4}rd' id='m1' to='juliet@localhost/balcony' \
             type='chat'><body>Wherefore art thou? \u{1F319}</body></message>"
        ),
        "{juliet}"
    );
}

#[test]
fn byte_by_byte_equals_one_chunk() {
    let all: Vec<usize> = (1..transcript().len()).collect();
    assert_eq!(run_chunked(&all), run_chunked(&[]));
}

proptest! {
    #[test]
    fn any_chunking_gives_identical_output(mut cuts in proptest::collection::vec(0usize..2000, 0..40)) {
        let len = transcript().len();
        for cut in &mut cuts {
            *cut %= len;
        }
        cuts.sort_unstable();
        cuts.dedup();
        prop_assert_eq!(run_chunked(&cuts), run_chunked(&[]));
    }
}

// --- crate-level properties ----------------------------------------------------

#[test]
fn session_manager_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<SessionManager>();
    assert_send::<xmpp_session::Output>();
}
