//! SASL (RFC 6120 §6) and STARTTLS (RFC 6120 §5) through the public API:
//! PLAIN and SCRAM done as a real client would, every failure condition with
//! its exact `<failure/>`, bounded attempts, late credentials.

use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use xmpp_session::roster::Roster;
use xmpp_session::sasl::{Credentials, Mechanism, Password, PasswordCheck};
use xmpp_session::testkit::{TestServer, account};
use xmpp_session::{
    AccountJid, Config, ConnectionInfo, Element, Event, MemoryStore, Output, Request, RequestId,
    Response, SessionId, SessionKind, SessionManager, Store, StoreError,
};

const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_STREAMS: &str = "http://etherx.jabber.org/streams";

fn failure(condition: &str, text: Option<&str>) -> String {
    let text = text
        .map(|t| format!("<text>{t}</text>"))
        .unwrap_or_default();
    format!("<failure xmlns='{NS_SASL}'><{condition}/>{text}</failure>")
}

const NOT_AUTHORIZED_TEXT: &str =
    "Unable to authorize you with the authentication credentials you've sent.";

fn auth(mechanism: &str, payload: &str) -> String {
    format!("<auth xmlns='{NS_SASL}' mechanism='{mechanism}'>{payload}</auth>")
}

fn plain_payload(user: &str, password: &str) -> String {
    BASE64.encode(format!("\0{user}\0{password}"))
}

/// Forgets everything the client received so far (elements and bytes).
fn drain(server: &mut TestServer, c: SessionId) {
    server.take(c);
    server.take_raw(c);
}

/// A connection whose stream is open, output drained.
fn opened(server: &mut TestServer) -> SessionId {
    let c = server.connect();
    server.open_stream(c);
    drain(server, c);
    c
}

fn server_with_romeo() -> TestServer {
    let mut server = TestServer::new();
    server.add_user("romeo", "pass");
    server
}

/// Our stream header as the server writes it.
fn server_header(id: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='{NS_STREAMS}' \
         xml:lang='en' id='{id}' from='localhost' version='1.0'>"
    )
}

/// The stream id in a raw header.
fn stream_id_of(raw: &str) -> String {
    let start = raw.find(" id='").expect("no id in header") + 5;
    let len = raw[start..].find('\'').expect("unterminated id");
    raw[start..start + len].to_owned()
}

fn too_many_failures() -> String {
    "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
     <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Too many failed authentication attempts</text>\
     </stream:error></stream:stream>"
        .to_owned()
}

// --- PLAIN -------------------------------------------------------------------

#[test]
fn plain_success() {
    let mut server = server_with_romeo();
    let c = opened(&mut server);
    server.send(c, &auth("PLAIN", &plain_payload("romeo", "pass")));
    assert_eq!(server.take_raw(c), format!("<success xmlns='{NS_SASL}'/>"));
    let session = server.manager.session(c).unwrap();
    assert_eq!(session.kind(), SessionKind::Authenticated);
    assert_eq!(session.username(), Some("romeo"));
    assert!(session.notopen());
    let events = server.take_events();
    assert!(
        events.contains(&Event::Authenticated {
            session: c,
            username: "romeo".to_owned()
        }),
        "{events:?}"
    );
}

#[test]
fn plain_with_own_authzid_succeeds() {
    for authzid in ["romeo", "romeo@localhost"] {
        let mut server = server_with_romeo();
        let c = opened(&mut server);
        server.send(
            c,
            &auth("PLAIN", &BASE64.encode(format!("{authzid}\0romeo\0pass"))),
        );
        assert_eq!(server.take_raw(c), format!("<success xmlns='{NS_SASL}'/>"));
    }
}

#[test]
fn plain_with_foreign_authzid_is_invalid_authzid() {
    let mut server = server_with_romeo();
    let c = opened(&mut server);
    server.send(
        c,
        &auth("PLAIN", &BASE64.encode("juliet@localhost\0romeo\0pass")),
    );
    assert_eq!(
        server.take_raw(c),
        failure(
            "invalid-authzid",
            Some("Authorization identity does not match the username")
        )
    );
}

#[test]
fn plain_username_is_prepared() {
    // The account is keyed by its nodeprepped name.
    let mut server = server_with_romeo();
    let c = opened(&mut server);
    server.send(c, &auth("PLAIN", &plain_payload("Romeo", "pass")));
    assert_eq!(server.take_raw(c), format!("<success xmlns='{NS_SASL}'/>"));
    assert_eq!(server.manager.session(c).unwrap().username(), Some("romeo"));
}

#[test]
fn accounts_created_with_unprepared_names_can_log_in() {
    // Issue 14: accounts given as `Romeo`, `Straße` or in full-width letters
    // are stored nodeprepped (by `AccountJid`, in `MemoryStore` and the
    // testkit helpers), so every form of the name logs in to one account.
    let mut server = TestServer::new();
    server.add_user("Romeo", "pass");
    server.add_user("Straße", "pass");
    server.add_user("\u{ff2a}\u{ff55}\u{ff4c}\u{ff49}\u{ff45}\u{ff54}", "pass");
    for account in ["romeo", "strasse", "juliet"] {
        assert!(
            server
                .store
                .has_user(&xmpp_session::testkit::account(account))
        );
    }
    for (login, user) in [
        ("Romeo", "romeo"),
        ("romeo", "romeo"),
        ("STRASSE", "strasse"),
        ("Straße", "strasse"),
        ("Juliet", "juliet"),
    ] {
        let c = opened(&mut server);
        server.send(c, &auth("PLAIN", &plain_payload(login, "pass")));
        assert_eq!(
            server.take_raw(c),
            format!("<success xmlns='{NS_SASL}'/>"),
            "{login}"
        );
        assert_eq!(server.manager.session(c).unwrap().username(), Some(user));
    }
    let c = server.connect();
    server.authenticate_scram(c, "strasse", "pass");
    assert_eq!(
        server.manager.session(c).unwrap().username(),
        Some("strasse")
    );
}

/// Sends PLAIN with a wrong password for romeo; checks the failure.
#[track_caller]
fn wrong_plain_password(server: &mut TestServer, c: SessionId) {
    server.send(c, &auth("PLAIN", &plain_payload("romeo", "wrong")));
    assert_eq!(
        server.take_raw(c),
        failure("not-authorized", Some(NOT_AUTHORIZED_TEXT))
    );
}

#[test]
fn wrong_password_is_not_authorized() {
    let mut server = server_with_romeo();
    let c = opened(&mut server);
    wrong_plain_password(&mut server, c);
    assert!(!server.is_closed(c));
    assert_eq!(
        server.manager.session(c).unwrap().kind(),
        SessionKind::Unauthenticated
    );
    // The client may retry at once.
    server.send(c, &auth("PLAIN", &plain_payload("romeo", "pass")));
    assert_eq!(server.take_raw(c), format!("<success xmlns='{NS_SASL}'/>"));
}

#[test]
fn unknown_user_is_not_authorized() {
    let mut server = server_with_romeo();
    let c = opened(&mut server);
    server.send(c, &auth("PLAIN", &plain_payload("mercutio", "pass")));
    assert_eq!(
        server.take_raw(c),
        failure("not-authorized", Some(NOT_AUTHORIZED_TEXT))
    );
}

#[test]
fn plain_without_initial_response_is_malformed_request() {
    let mut server = server_with_romeo();
    let c = opened(&mut server);
    server.send(c, &format!("<auth xmlns='{NS_SASL}' mechanism='PLAIN'/>"));
    assert_eq!(
        server.take_raw(c),
        failure("malformed-request", Some("Initial response required"))
    );
}

#[test]
fn bad_plain_format_is_malformed_request() {
    for message in ["romeo", "\0romeo", "\0romeo\0", "\0\0pass", "a\0b\0c\0d"] {
        let mut server = server_with_romeo();
        let c = opened(&mut server);
        server.send(c, &auth("PLAIN", &BASE64.encode(message)));
        assert_eq!(
            server.take_raw(c),
            failure("malformed-request", Some("Invalid message")),
            "{message:?}"
        );
    }
}

#[test]
fn empty_plain_response_is_malformed_request() {
    let mut server = server_with_romeo();
    let c = opened(&mut server);
    server.send(c, &auth("PLAIN", "="));
    assert_eq!(
        server.take_raw(c),
        failure("malformed-request", Some("Invalid message"))
    );
}

#[test]
fn unknown_mechanisms_are_invalid_mechanism() {
    for mechanism in ["DIGEST-MD5", "X-FOO", "plain", "SCRAM-SHA-1-PLUS"] {
        let mut server = server_with_romeo();
        let c = opened(&mut server);
        server.send(c, &auth(mechanism, &plain_payload("romeo", "pass")));
        assert_eq!(
            server.take_raw(c),
            failure("invalid-mechanism", None),
            "{mechanism}"
        );
    }
    // No mechanism attribute at all.
    let mut server = server_with_romeo();
    let c = opened(&mut server);
    server.send(
        c,
        &format!(
            "<auth xmlns='{NS_SASL}'>{}</auth>",
            plain_payload("romeo", "pass")
        ),
    );
    assert_eq!(server.take_raw(c), failure("invalid-mechanism", None));
}

#[test]
fn disabled_mechanism_is_invalid_mechanism() {
    let mut server = TestServer::with_config(
        Config::builder("localhost")
            .require_tls(false)
            .allow_plain_without_tls(true)
            .mechanisms(&[Mechanism::ScramSha256])
            .build()
            .expect("valid config"),
    );
    server.add_user("romeo", "pass");
    let c = server.connect();
    server.open_stream(c);
    let raw = server.take_raw(c);
    let id = stream_id_of(&raw);
    assert_eq!(
        raw,
        format!(
            "{}<stream:features><mechanisms xmlns='{NS_SASL}'><mechanism>SCRAM-SHA-256</mechanism></mechanisms>\
             <limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>10000</max-bytes>\
             </limits></stream:features>",
            server_header(&id)
        )
    );
    server.send(c, &auth("PLAIN", &plain_payload("romeo", "pass")));
    assert_eq!(server.take_raw(c), failure("invalid-mechanism", None));
}

#[test]
fn bad_base64_is_incorrect_encoding() {
    for payload in ["!!!", "AHJvbWVvAHBhc3M", "A=B="] {
        let mut server = server_with_romeo();
        let c = opened(&mut server);
        server.send(c, &auth("PLAIN", payload));
        assert_eq!(
            server.take_raw(c),
            failure("incorrect-encoding", None),
            "{payload}"
        );
    }
}

#[test]
fn bad_base64_in_response_is_incorrect_encoding() {
    let mut server = server_with_romeo();
    let c = opened(&mut server);
    server.send(
        c,
        &auth("SCRAM-SHA-1", &BASE64.encode("n,,n=romeo,r=abcdef")),
    );
    let got = server.take(c);
    assert_eq!(got.len(), 1);
    assert!(got[0].is("challenge", NS_SASL));
    drain(&mut server, c);
    server.send(c, &format!("<response xmlns='{NS_SASL}'>***</response>"));
    assert_eq!(server.take_raw(c), failure("incorrect-encoding", None));
}

#[test]
fn abort_is_aborted() {
    let mut server = server_with_romeo();
    let c = opened(&mut server);
    server.send(
        c,
        &auth("SCRAM-SHA-256", &BASE64.encode("n,,n=romeo,r=abcdef")),
    );
    drain(&mut server, c);
    server.send(c, &format!("<abort xmlns='{NS_SASL}'/>"));
    assert_eq!(server.take_raw(c), failure("aborted", None));
    // The exchange is gone: a response now is out of order.
    server.send(c, &format!("<response xmlns='{NS_SASL}'>AAAA</response>"));
    assert_eq!(
        server.take_raw(c),
        failure("not-authorized", Some("Out of order SASL element"))
    );
    // Abort without an exchange is answered the same way, and counts: this
    // is the third failed attempt (abort, out of order, abort).
    server.send(c, &format!("<abort xmlns='{NS_SASL}'/>"));
    assert_eq!(
        server.take_raw(c),
        format!("{}{}", failure("aborted", None), too_many_failures())
    );
    assert!(server.is_closed(c));
}

#[test]
fn response_without_exchange_is_out_of_order() {
    let mut server = server_with_romeo();
    let c = opened(&mut server);
    server.send(c, &format!("<response xmlns='{NS_SASL}'/>"));
    assert_eq!(
        server.take_raw(c),
        failure("not-authorized", Some("Out of order SASL element"))
    );
    // After a finished exchange too (the third failure also ends the stream).
    server.send(c, &auth("PLAIN", &plain_payload("romeo", "wrong")));
    drain(&mut server, c);
    server.send(c, &format!("<response xmlns='{NS_SASL}'>=</response>"));
    assert_eq!(
        server.take_raw(c),
        format!(
            "{}{}",
            failure("not-authorized", Some("Out of order SASL element")),
            too_many_failures()
        )
    );
}

#[test]
fn unknown_sasl_element_is_unsupported_stanza_type() {
    let mut server = server_with_romeo();
    let c = opened(&mut server);
    server.send(c, &format!("<success xmlns='{NS_SASL}'/>"));
    assert_eq!(
        server.take_raw(c),
        "<stream:error><unsupported-stanza-type xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>\
         </stream:stream>"
    );
    assert!(server.is_closed(c));
}

// --- encryption ----------------------------------------------------------------

#[test]
fn require_tls_refuses_auth_before_starttls() {
    let mut server = TestServer::with_config(
        Config::builder("localhost")
            .require_tls(true)
            .build()
            .expect("valid config"),
    );
    server.add_user("romeo", "pass");
    let c = server.connect_with(ConnectionInfo::starttls());
    server.open_stream(c);
    let raw = server.take_raw(c);
    let id = stream_id_of(&raw);
    assert_eq!(
        raw,
        format!(
            "{}<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>\
             <limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>10000</max-bytes>\
             </limits></stream:features>",
            server_header(&id)
        )
    );
    server.send(
        c,
        &auth("SCRAM-SHA-1", &BASE64.encode("n,,n=romeo,r=abcdef")),
    );
    assert_eq!(server.take_raw(c), failure("encryption-required", None));
    server.send(c, &auth("PLAIN", &plain_payload("romeo", "pass")));
    assert_eq!(server.take_raw(c), failure("encryption-required", None));
    assert_eq!(
        server.manager.session(c).unwrap().kind(),
        SessionKind::Unauthenticated
    );
}

#[test]
fn plain_is_not_offered_or_accepted_without_tls() {
    let mut server = TestServer::with_config(
        Config::builder("localhost")
            .require_tls(false)
            .build()
            .expect("valid config"),
    );
    server.add_user("romeo", "pass");
    let c = server.connect();
    server.open_stream(c);
    let raw = server.take_raw(c);
    let id = stream_id_of(&raw);
    assert_eq!(
        raw,
        format!(
            "{}<stream:features><mechanisms xmlns='{NS_SASL}'><mechanism>SCRAM-SHA-256</mechanism>\
             <mechanism>SCRAM-SHA-1</mechanism></mechanisms>\
             <limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>10000</max-bytes>\
             </limits></stream:features>",
            server_header(&id)
        )
    );
    server.send(c, &auth("PLAIN", &plain_payload("romeo", "pass")));
    assert_eq!(server.take_raw(c), failure("encryption-required", None));
}

#[test]
fn plain_is_offered_on_direct_tls() {
    let mut server =
        TestServer::with_config(Config::builder("localhost").build().expect("valid config"));
    server.add_user("romeo", "pass");
    let c = server.connect_with(ConnectionInfo::direct_tls());
    server.open_stream(c);
    server.expect(
        c,
        &["<stream:features xmlns:stream='http://etherx.jabber.org/streams'>\
           <mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-256</mechanism>\
           <mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms>\
           <limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>10000</max-bytes>\
           </limits></stream:features>"],
    );
    server.send(c, &auth("PLAIN", &plain_payload("romeo", "pass")));
    server.expect(c, &["<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"]);
    assert!(server.manager.session(c).unwrap().is_secure());
}

// --- STARTTLS ------------------------------------------------------------------

#[test]
fn starttls_then_authenticate() {
    let mut server =
        TestServer::with_config(Config::builder("localhost").build().expect("valid config"));
    server.add_user("romeo", "pass");
    let c = server.connect_with(ConnectionInfo::starttls());
    server.open_stream(c);
    drain(&mut server, c);
    assert!(!server.manager.session(c).unwrap().is_secure());

    // Plaintext injected after <starttls/> in the same read is discarded.
    server.send(
        c,
        &format!(
            "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>{}",
            auth("PLAIN", &plain_payload("romeo", "pass"))
        ),
    );
    assert_eq!(
        server.take_raw(c),
        "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    );
    assert!(server.started_tls(c));
    assert!(server.manager.session(c).unwrap().notopen());
    // Bytes before the handshake finished (the TLS handshake itself) are not parsed.
    server.send_bytes(c, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
    assert_eq!(server.take_raw(c), "");
    assert!(!server.is_closed(c));

    server.tls_established(c);
    assert!(server.manager.session(c).unwrap().is_secure());
    assert_eq!(server.take_raw(c), "");
    server.open_stream(c);
    let raw = server.take_raw(c);
    let id = stream_id_of(&raw);
    assert_eq!(
        raw,
        format!(
            "{}<stream:features><mechanisms xmlns='{NS_SASL}'><mechanism>SCRAM-SHA-256</mechanism>\
             <mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms>\
             <limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>10000</max-bytes>\
             </limits></stream:features>",
            server_header(&id)
        )
    );
    server.send(c, &auth("PLAIN", &plain_payload("romeo", "pass")));
    assert_eq!(server.take_raw(c), format!("<success xmlns='{NS_SASL}'/>"));
}

#[test]
fn starttls_offered_without_required_when_optional() {
    let mut server = TestServer::with_config(
        Config::builder("localhost")
            .require_tls(false)
            .build()
            .expect("valid config"),
    );
    let c = server.connect_with(ConnectionInfo::starttls());
    server.open_stream(c);
    server.expect(
        c,
        &["<stream:features xmlns:stream='http://etherx.jabber.org/streams'>\
           <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\
           <mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-256</mechanism>\
           <mechanism>SCRAM-SHA-1</mechanism></mechanisms>\
           <limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>10000</max-bytes>\
           </limits></stream:features>"],
    );
}

#[test]
fn starttls_not_offered_is_failure_and_close() {
    let mut server = server_with_romeo();
    let c = opened(&mut server);
    server.send(c, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert_eq!(
        server.take_raw(c),
        "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>"
    );
    assert!(server.is_closed(c));
    assert!(!server.started_tls(c));
    assert!(server.manager.session(c).is_none());
}

#[test]
fn starttls_twice_is_failure_and_close() {
    let mut server =
        TestServer::with_config(Config::builder("localhost").build().expect("valid config"));
    let c = server.connect_with(ConnectionInfo::starttls());
    server.open_stream(c);
    server.send(c, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    server.tls_established(c);
    server.open_stream(c);
    drain(&mut server, c);
    server.send(c, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert_eq!(
        server.take_raw(c),
        "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>"
    );
    assert!(server.is_closed(c));
}

#[test]
fn starttls_after_authentication_is_failure_and_close() {
    let mut server = TestServer::with_config(
        Config::builder("localhost")
            .require_tls(false)
            .allow_plain_without_tls(true)
            .build()
            .expect("valid config"),
    );
    server.add_user("romeo", "pass");
    let c = server.connect_with(ConnectionInfo::starttls());
    server.authenticate_plain(c, "romeo", "pass");
    drain(&mut server, c);
    server.send(c, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert_eq!(
        server.take_raw(c),
        "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>"
    );
    assert!(server.is_closed(c));
}

#[test]
fn required_tls_without_starttls_has_no_features() {
    let mut server =
        TestServer::with_config(Config::builder("localhost").build().expect("valid config"));
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
            server_header(&id)
        )
    );
    assert!(server.is_closed(c));
}

// --- bounded attempts --------------------------------------------------------

#[test]
fn third_failure_closes_the_stream() {
    let mut server = server_with_romeo();
    let c = opened(&mut server);
    for _ in 0..2 {
        server.send(c, &auth("PLAIN", &plain_payload("romeo", "wrong")));
        assert_eq!(
            server.take_raw(c),
            failure("not-authorized", Some(NOT_AUTHORIZED_TEXT))
        );
        assert!(!server.is_closed(c));
    }
    server.send(c, &auth("PLAIN", &plain_payload("romeo", "wrong")));
    assert_eq!(
        server.take_raw(c),
        format!(
            "{}{}",
            failure("not-authorized", Some(NOT_AUTHORIZED_TEXT)),
            too_many_failures()
        )
    );
    assert!(server.is_closed(c));
    assert!(server.manager.session(c).is_none());
}

#[test]
fn every_kind_of_failure_counts() {
    let mut server = server_with_romeo();
    let c = opened(&mut server);
    server.send(c, &auth("X-FOO", ""));
    assert_eq!(server.take_raw(c), failure("invalid-mechanism", None));
    server.send(c, &format!("<response xmlns='{NS_SASL}'/>"));
    assert_eq!(
        server.take_raw(c),
        failure("not-authorized", Some("Out of order SASL element"))
    );
    server.send(c, &auth("PLAIN", "!"));
    assert_eq!(
        server.take_raw(c),
        format!(
            "{}{}",
            failure("incorrect-encoding", None),
            too_many_failures()
        )
    );
    assert!(server.is_closed(c));
}

#[test]
fn aborts_count_as_failed_attempts() {
    let mut server = server_with_romeo();
    let c = opened(&mut server);
    for _ in 0..2 {
        server.send(
            c,
            &auth("SCRAM-SHA-256", &BASE64.encode("n,,n=romeo,r=abcdef")),
        );
        drain(&mut server, c);
        server.send(c, &format!("<abort xmlns='{NS_SASL}'/>"));
        assert_eq!(server.take_raw(c), failure("aborted", None));
        assert!(!server.is_closed(c));
    }
    // The third abort (default limit 3) closes the stream like a third
    // wrong password: no endless start-and-abort loop.
    server.send(c, &format!("<abort xmlns='{NS_SASL}'/>"));
    let closed = format!("{}{}", failure("aborted", None), too_many_failures());
    assert_eq!((server.take_raw(c), server.is_closed(c)), (closed, true));
    assert!(server.manager.session(c).is_none());
}

#[test]
fn aborts_and_failures_share_the_limit() {
    let mut server = server_with_romeo();
    let c = opened(&mut server);
    wrong_plain_password(&mut server, c);
    server.send(c, &format!("<abort xmlns='{NS_SASL}'/>"));
    assert_eq!(server.take_raw(c), failure("aborted", None));
    // Two attempts used: the third, right, password still succeeds.
    server.send(c, &auth("PLAIN", &plain_payload("romeo", "pass")));
    assert_eq!(server.take_raw(c), format!("<success xmlns='{NS_SASL}'/>"));
}

#[test]
fn configured_failure_limit() {
    let mut server = TestServer::with_config(
        Config::builder("localhost")
            .require_tls(false)
            .allow_plain_without_tls(true)
            .max_auth_failures(1)
            .build()
            .expect("valid config"),
    );
    server.add_user("romeo", "pass");
    let c = opened(&mut server);
    server.send(c, &auth("PLAIN", &plain_payload("romeo", "wrong")));
    assert_eq!(
        server.take_raw(c),
        format!(
            "{}{}",
            failure("not-authorized", Some(NOT_AUTHORIZED_TEXT)),
            too_many_failures()
        )
    );
    assert!(server.is_closed(c));
}

// --- storage answering late or failing ---------------------------------------

#[test]
fn credentials_answered_late_still_work_and_later_input_waits() {
    let mut server = server_with_romeo();
    let c = opened(&mut server);
    server.hold_requests(true);
    server.send(c, &auth("PLAIN", &plain_payload("romeo", "pass")));
    assert_eq!(server.take_raw(c), "");
    // PLAIN asks for a password check (it used to ask for the stored
    // credentials and run PBKDF2 inside `complete`).
    assert_eq!(
        server.held_requests(),
        vec![Request::VerifyPassword {
            account: account("romeo"),
            password: Password::from("pass"),
        }]
    );
    // The client pipelines its restart: it must not be read before <success/>.
    server.open_stream(c);
    assert_eq!(server.take_raw(c), "");
    assert!(!server.is_closed(c));
    assert_eq!(
        server.manager.session(c).unwrap().kind(),
        SessionKind::Unauthenticated
    );

    server.hold_requests(false);
    server.answer_all_held();
    let raw = server.take_raw(c);
    let success = format!("<success xmlns='{NS_SASL}'/>");
    assert!(raw.starts_with(&success), "{raw}");
    let rest = &raw[success.len()..];
    let id = stream_id_of(rest);
    assert_eq!(
        rest,
        format!(
            "{}<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><required/></bind>\
             <session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>\
             <ver xmlns='urn:xmpp:features:rosterver'/><sub xmlns='urn:xmpp:features:pre-approval'/>\
             <sm xmlns='urn:xmpp:sm:3'/><csi xmlns='urn:xmpp:csi:0'/><limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>262144</max-bytes>\
             </limits></stream:features>",
            server_header(&id)
        )
    );
    assert_eq!(
        server.manager.session(c).unwrap().kind(),
        SessionKind::Authenticated
    );
}

#[test]
fn late_credentials_for_a_gone_session_are_ignored() {
    let mut server = server_with_romeo();
    let c = opened(&mut server);
    server.hold_requests(true);
    server.send(c, &auth("PLAIN", &plain_payload("romeo", "pass")));
    server.disconnect(c);
    server.answer_all_held();
    assert_eq!(server.take_raw(c), "");
    assert!(server.manager.session(c).is_none());
}

/// A store whose credential lookups fail.
struct BrokenStore;

impl Store for BrokenStore {
    fn credentials(
        &mut self,
        _: &AccountJid,
    ) -> Result<Option<xmpp_session::sasl::Credentials>, StoreError> {
        Err(StoreError("database unreachable".to_owned()))
    }
    fn user_exists(&mut self, _: &AccountJid) -> Result<bool, StoreError> {
        Err(StoreError("database unreachable".to_owned()))
    }
    fn store_offline(
        &mut self,
        _: &AccountJid,
        _: &Element,
        _: usize,
        _: &xmpp_session::OfflineQuota,
    ) -> Result<xmpp_session::OfflineStored, StoreError> {
        Err(StoreError("database unreachable".to_owned()))
    }
    fn take_offline(&mut self, _: &AccountJid) -> Result<Vec<Element>, StoreError> {
        Err(StoreError("database unreachable".to_owned()))
    }
    fn load_roster(&mut self, _: &AccountJid) -> Result<Roster, StoreError> {
        Err(StoreError("database unreachable".to_owned()))
    }
    fn change_roster(
        &mut self,
        _: &AccountJid,
        _: u64,
        _: &xmpp_session::roster::RosterChange,
    ) -> Result<(), StoreError> {
        Err(StoreError("database unreachable".to_owned()))
    }
}

/// Feeds `input` and returns what was written to `id`, answering requests
/// from `store`.
fn exchange(
    manager: &mut SessionManager,
    store: &mut dyn Store,
    id: SessionId,
    input: &str,
    now: Instant,
) -> String {
    manager.handle_input(id, input.as_bytes(), now);
    let mut written = Vec::new();
    while let Some(output) = manager.poll_output_with(store, now) {
        if let Output::Transmit { session, data } = output {
            assert_eq!(session, id);
            written.extend_from_slice(&data);
        }
    }
    String::from_utf8(written).unwrap()
}

#[test]
fn failing_store_is_temporary_auth_failure() {
    let config = Config::builder("localhost")
        .require_tls(false)
        .allow_plain_without_tls(true)
        .build()
        .expect("valid config");
    let mut manager = SessionManager::new(config);
    let now = Instant::now();
    let c = manager.connect(ConnectionInfo::plain(), now);
    exchange(
        &mut manager,
        &mut BrokenStore,
        c,
        &TestServer::stream_header(),
        now,
    );
    for mechanism in ["PLAIN", "SCRAM-SHA-1"] {
        let payload = if mechanism == "PLAIN" {
            plain_payload("romeo", "pass")
        } else {
            BASE64.encode("n,,n=romeo,r=abcdef")
        };
        assert_eq!(
            exchange(
                &mut manager,
                &mut BrokenStore,
                c,
                &auth(mechanism, &payload),
                now
            ),
            failure("temporary-auth-failure", None)
        );
    }
    assert_eq!(
        manager.session(c).unwrap().kind(),
        SessionKind::Unauthenticated
    );
}

#[test]
fn wrong_answer_to_credentials_is_temporary_auth_failure() {
    let config = Config::builder("localhost")
        .require_tls(false)
        .allow_plain_without_tls(true)
        .build()
        .expect("valid config");
    let mut manager = SessionManager::new(config);
    let now = Instant::now();
    let c = manager.connect(ConnectionInfo::plain(), now);
    manager.handle_input(c, TestServer::stream_header().as_bytes(), now);
    manager.handle_input(
        c,
        auth("PLAIN", &plain_payload("romeo", "pass")).as_bytes(),
        now,
    );
    let mut request = None;
    while let Some(output) = manager.poll_output() {
        if let Output::Request { id, request: r } = output {
            request = Some((id, r));
        }
    }
    let (id, r) = request.expect("a password check request");
    // PLAIN asks for a password check (it used to ask for the credentials).
    assert_eq!(
        r,
        Request::VerifyPassword {
            account: account("romeo"),
            password: Password::from("pass"),
        }
    );
    manager.complete(id, xmpp_session::Response::Done, now);
    let mut written = Vec::new();
    while let Some(output) = manager.poll_output() {
        if let Output::Transmit { data, .. } = output {
            written.extend_from_slice(&data);
        }
    }
    assert_eq!(
        String::from_utf8(written).unwrap(),
        failure("temporary-auth-failure", None)
    );
    // Completing the same request again does nothing.
    manager.complete(id, xmpp_session::Response::Done, now);
    assert_eq!(manager.poll_output(), None);
}

// --- PLAIN checked by the embedder ---------------------------------------------

/// A manager for `localhost` allowing PLAIN without TLS, with an open stream on
/// `c` and its output drained.
fn manual() -> (SessionManager, SessionId, Instant) {
    let config = Config::builder("localhost")
        .require_tls(false)
        .allow_plain_without_tls(true)
        .build()
        .expect("valid config");
    let mut manager = SessionManager::new(config);
    let now = Instant::now();
    let c = open_manual(&mut manager, now);
    (manager, c, now)
}

fn open_manual(manager: &mut SessionManager, now: Instant) -> SessionId {
    let c = manager.connect(ConnectionInfo::plain(), now);
    manager.handle_input(c, TestServer::stream_header().as_bytes(), now);
    while manager.poll_output().is_some() {}
    c
}

/// Everything the manager wants done now: bytes per session, requests, events.
#[derive(Default)]
struct Drained {
    written: String,
    requests: Vec<(RequestId, Request)>,
    events: Vec<Event>,
    closed: bool,
}

fn drain_manual(manager: &mut SessionManager) -> Drained {
    let mut d = Drained::default();
    while let Some(output) = manager.poll_output() {
        match output {
            Output::Transmit { data, .. } => {
                d.written.push_str(std::str::from_utf8(&data).unwrap());
            }
            Output::Request { id, request } => d.requests.push((id, request)),
            Output::Event(event) => d.events.push(event),
            Output::Close { .. } => d.closed = true,
            other => panic!("unexpected output {other:?}"),
        }
    }
    d
}

/// Sends a PLAIN `<auth/>` and returns the one request it causes.
fn plain_request(
    manager: &mut SessionManager,
    c: SessionId,
    user: &str,
    password: &str,
    now: Instant,
) -> (RequestId, Request) {
    manager.handle_input(
        c,
        auth("PLAIN", &plain_payload(user, password)).as_bytes(),
        now,
    );
    let mut d = drain_manual(manager);
    // Nothing is decided before the answer: no bytes, no event, one request.
    assert_eq!(d.written, "");
    assert!(d.events.is_empty());
    assert_eq!(d.requests.len(), 1);
    assert_eq!(
        manager.session(c).unwrap().kind(),
        SessionKind::Unauthenticated
    );
    d.requests.remove(0)
}

#[test]
fn plain_success_waits_for_the_password_check() {
    let (mut manager, c, now) = manual();
    let (id, request) = plain_request(&mut manager, c, "romeo", "pass", now);
    assert_eq!(
        request,
        Request::VerifyPassword {
            account: account("romeo"),
            password: Password::from("pass"),
        }
    );
    manager.complete(id, Response::PasswordChecked(PasswordCheck::Valid), now);
    let d = drain_manual(&mut manager);
    assert_eq!(d.written, format!("<success xmlns='{NS_SASL}'/>"));
    assert!(d.requests.is_empty());
    assert_eq!(
        d.events,
        vec![Event::Authenticated {
            session: c,
            username: "romeo".to_owned()
        }]
    );
    assert_eq!(
        manager.session(c).unwrap().kind(),
        SessionKind::Authenticated
    );
}

#[test]
fn plain_failures_wait_for_the_password_check() {
    let (mut manager, c, now) = manual();
    let not_authorized = failure("not-authorized", Some(NOT_AUTHORIZED_TEXT));
    for (verdict, expected) in [
        (PasswordCheck::WrongPassword, not_authorized.clone()),
        // An unknown user looks exactly like a wrong password.
        (PasswordCheck::UnknownUser, not_authorized),
    ] {
        let (id, _) = plain_request(&mut manager, c, "romeo", "wrong", now);
        manager.complete(id, Response::PasswordChecked(verdict), now);
        let d = drain_manual(&mut manager);
        assert_eq!(d.written, expected, "{verdict:?}");
        assert!(d.events.is_empty());
    }
    // The third failure closes the stream, as before.
    let (id, _) = plain_request(&mut manager, c, "romeo", "pass", now);
    manager.complete(
        id,
        Response::PasswordChecked(PasswordCheck::AccountDisabled),
        now,
    );
    let d = drain_manual(&mut manager);
    assert_eq!(
        d.written,
        format!(
            "{}{}",
            failure("account-disabled", Some("Account disabled")),
            too_many_failures()
        )
    );
    assert!(d.closed);
    assert!(manager.session(c).is_none());
}

#[test]
fn plain_unknown_user_and_wrong_password_fail_alike_through_the_store() {
    let mut server = server_with_romeo();
    let mut seen = Vec::new();
    for (user, password) in [("romeo", "wrong"), ("mercutio", "pass")] {
        let c = opened(&mut server);
        server.hold_requests(true);
        server.send(c, &auth("PLAIN", &plain_payload(user, password)));
        assert_eq!(server.take_raw(c), "");
        let held = server.held_requests();
        assert!(
            matches!(&held[..], [Request::VerifyPassword { account, .. }] if account.user() == user),
            "{held:?}"
        );
        server.hold_requests(false);
        server.answer_all_held();
        seen.push(server.take_raw(c));
    }
    assert_eq!(
        seen[0],
        failure("not-authorized", Some(NOT_AUTHORIZED_TEXT))
    );
    assert_eq!(seen[0], seen[1]);
}

#[test]
fn plain_disabled_account_through_the_store() {
    let mut server = TestServer::new();
    let mut creds = Credentials::from_password("pass", b"salt", 2);
    creds.disabled = true;
    server.store.add_credentials(&account("romeo"), creds);
    let c = opened(&mut server);
    server.send(c, &auth("PLAIN", &plain_payload("romeo", "pass")));
    assert_eq!(
        server.take_raw(c),
        failure("account-disabled", Some("Account disabled"))
    );
}

#[test]
fn plain_checks_answered_out_of_order_from_other_threads() {
    let (mut manager, a, now) = manual();
    let b = open_manual(&mut manager, now);
    let mut store = MemoryStore::with_iterations(8);
    store.add_user(&account("romeo"), "pass").expect("salt");
    store.add_user(&account("juliet"), "balcony").expect("salt");
    let (id_a, req_a) = plain_request(&mut manager, a, "romeo", "pass", now);
    let (id_b, req_b) = plain_request(&mut manager, b, "juliet", "wrong", now);
    // The embedder checks each password on a worker thread, as a server would
    // with `spawn_blocking`, and answers the second request first.
    let mut check = |request: Request| {
        let Request::VerifyPassword { account, password } = request else {
            panic!("expected a password check, got {request:?}");
        };
        let credentials = store.credentials(&account).unwrap();
        std::thread::spawn(move || PasswordCheck::from_credentials(credentials.as_ref(), &password))
    };
    let (worker_a, worker_b) = (check(req_a), check(req_b));
    let verdict_b = worker_b.join().unwrap();
    assert_eq!(verdict_b, PasswordCheck::WrongPassword);
    manager.complete(id_b, Response::PasswordChecked(verdict_b), now);
    let d = drain_manual(&mut manager);
    assert_eq!(
        d.written,
        failure("not-authorized", Some(NOT_AUTHORIZED_TEXT))
    );
    assert_eq!(
        manager.session(a).unwrap().kind(),
        SessionKind::Unauthenticated
    );

    let verdict_a = worker_a.join().unwrap();
    assert_eq!(verdict_a, PasswordCheck::Valid);
    manager.complete(id_a, Response::PasswordChecked(verdict_a), now);
    let d = drain_manual(&mut manager);
    assert_eq!(d.written, format!("<success xmlns='{NS_SASL}'/>"));
    assert_eq!(
        manager.session(a).unwrap().kind(),
        SessionKind::Authenticated
    );
    assert_eq!(
        manager.session(b).unwrap().kind(),
        SessionKind::Unauthenticated
    );
    // Answering either again does nothing.
    manager.complete(id_a, Response::PasswordChecked(PasswordCheck::Valid), now);
    manager.complete(id_b, Response::PasswordChecked(PasswordCheck::Valid), now);
    assert_eq!(manager.poll_output(), None);
}

#[test]
fn plain_check_for_a_disconnected_session_is_dropped() {
    let (mut manager, c, now) = manual();
    let (id, _) = plain_request(&mut manager, c, "romeo", "pass", now);
    manager.handle_disconnect(c, now);
    let d = drain_manual(&mut manager);
    assert_eq!(d.written, "");
    assert_eq!(d.events, vec![Event::Closed { session: c }]);
    assert!(manager.session(c).is_none());
    // The late answer is ignored: no bytes, no event, no panic.
    manager.complete(id, Response::PasswordChecked(PasswordCheck::Valid), now);
    assert_eq!(manager.poll_output(), None);
    // And a new connection is not confused with it.
    let c2 = open_manual(&mut manager, now);
    manager.complete(id, Response::PasswordChecked(PasswordCheck::Valid), now);
    assert_eq!(manager.poll_output(), None);
    assert_eq!(
        manager.session(c2).unwrap().kind(),
        SessionKind::Unauthenticated
    );
}

#[test]
fn plain_check_for_a_timed_out_session_is_dropped() {
    let (mut manager, c, now) = manual();
    let (id, _) = plain_request(&mut manager, c, "romeo", "pass", now);
    let deadline = manager.poll_timeout().expect("an auth deadline");
    manager.handle_timeout(deadline);
    let d = drain_manual(&mut manager);
    assert!(d.written.contains("connection-timeout"), "{}", d.written);
    assert!(d.closed);
    assert!(manager.session(c).is_none());
    manager.complete(
        id,
        Response::PasswordChecked(PasswordCheck::Valid),
        deadline,
    );
    assert_eq!(manager.poll_output(), None);
}

#[test]
fn stored_credentials_are_no_answer_to_a_plain_check() {
    let (mut manager, c, now) = manual();
    let (id, _) = plain_request(&mut manager, c, "romeo", "pass", now);
    let creds = Credentials::from_password("pass", b"salt", 2);
    manager.complete(id, Response::Credentials(Some(creds)), now);
    assert_eq!(
        drain_manual(&mut manager).written,
        failure("temporary-auth-failure", None)
    );
    assert_eq!(
        manager.session(c).unwrap().kind(),
        SessionKind::Unauthenticated
    );
}

#[test]
fn scram_still_asks_for_stored_credentials() {
    let (mut manager, c, now) = manual();
    manager.handle_input(
        c,
        auth("SCRAM-SHA-256", &BASE64.encode("n,,n=romeo,r=abcdef")).as_bytes(),
        now,
    );
    let d = drain_manual(&mut manager);
    assert_eq!(d.written, "");
    let requests: Vec<Request> = d.requests.into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        requests,
        vec![Request::Credentials {
            account: account("romeo")
        }]
    );
}

#[test]
fn the_password_never_shows_in_debug_output() {
    let (mut manager, c, now) = manual();
    manager.handle_input(
        c,
        auth("PLAIN", &plain_payload("romeo", "s3cr3t-pw")).as_bytes(),
        now,
    );
    let mut text = String::new();
    while let Some(output) = manager.poll_output() {
        text.push_str(&format!("{output:?} {output:#?}"));
    }
    text.push_str(&format!("{manager:?} {:?}", manager.session(c)));
    assert!(text.contains("VerifyPassword"), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
    assert!(!text.contains("s3cr3t-pw"), "{text}");
    assert!(!text.contains(&BASE64.encode("s3cr3t-pw")), "{text}");
}

// --- SCRAM ---------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Hash {
    Sha1,
    Sha256,
}

impl Hash {
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => {
                let mut mac = Hmac::<Sha1>::new_from_slice(key).unwrap();
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            Hash::Sha256 => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => Sha1::digest(data).to_vec(),
            Hash::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

    fn salted_password(self, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Hash::Sha1 => {
                let mut out = vec![0; 20];
                pbkdf2::pbkdf2_hmac::<Sha1>(password.as_bytes(), salt, iterations, &mut out);
                out
            }
            Hash::Sha256 => {
                let mut out = vec![0; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
                out
            }
        }
    }
}

/// Text of the single SASL element the client received, which must be `name`.
fn sasl_text(server: &mut TestServer, c: SessionId, name: &str) -> String {
    let got = server.take(c);
    server.take_raw(c);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].is(name, NS_SASL), "{got:?}");
    got[0].text()
}

/// A SCRAM client-final message and the server signature the server must
/// send back, computed from the server-first message.
fn client_final(
    hash: Hash,
    password: &str,
    client_first_bare: &str,
    server_first: &str,
) -> (String, Vec<u8>) {
    let mut salt = None;
    let mut iterations = None;
    let mut nonce = None;
    for attr in server_first.split(',') {
        match attr.split_at(2) {
            ("r=", v) => nonce = Some(v.to_owned()),
            ("s=", v) => salt = Some(BASE64.decode(v).unwrap()),
            ("i=", v) => iterations = Some(v.parse::<u32>().unwrap()),
            other => panic!("unexpected attribute {other:?}"),
        }
    }
    let salted = hash.salted_password(password, &salt.unwrap(), iterations.unwrap());
    let client_key = hash.hmac(&salted, b"Client Key");
    let stored_key = hash.digest(&client_key);
    let without_proof = format!("c={},r={}", BASE64.encode("n,,"), nonce.unwrap());
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let client_signature = hash.hmac(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&client_signature)
        .map(|(k, s)| k ^ s)
        .collect();
    let server_key = hash.hmac(&salted, b"Server Key");
    let server_signature = hash.hmac(&server_key, auth_message.as_bytes());
    (
        format!("{without_proof},p={}", BASE64.encode(proof)),
        server_signature,
    )
}

fn scram_login(
    hash: Hash,
    mechanism: &str,
    password: &str,
) -> (TestServer, SessionId, Result<Vec<u8>, String>) {
    let mut server = server_with_romeo();
    let c = opened(&mut server);
    let client_nonce = "fyko+d2lbbFgONRv9qkxdawL";
    let client_first_bare = format!("n=romeo,r={client_nonce}");
    server.send(
        c,
        &auth(mechanism, &BASE64.encode(format!("n,,{client_first_bare}"))),
    );
    let server_first = String::from_utf8(
        BASE64
            .decode(sasl_text(&mut server, c, "challenge"))
            .unwrap(),
    )
    .unwrap();
    // The server's nonce extends ours.
    let nonce = server_first
        .strip_prefix("r=")
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    assert!(
        nonce.starts_with(client_nonce) && nonce.len() > client_nonce.len(),
        "{server_first}"
    );
    assert!(server_first.ends_with(",i=64"), "{server_first}");
    let (final_message, server_signature) =
        client_final(hash, password, &client_first_bare, &server_first);
    server.send(
        c,
        &format!(
            "<response xmlns='{NS_SASL}'>{}</response>",
            BASE64.encode(final_message)
        ),
    );
    let got = server.take(c);
    assert_eq!(got.len(), 1, "{got:?}");
    let result = if got[0].is("success", NS_SASL) {
        let additional = BASE64.decode(got[0].text()).unwrap();
        assert_eq!(
            String::from_utf8(additional).unwrap(),
            format!("v={}", BASE64.encode(&server_signature))
        );
        Ok(server_signature)
    } else {
        let mut raw = String::new();
        for el in &got {
            raw.push_str(&String::from(el));
        }
        Err(raw)
    };
    (server, c, result)
}

#[test]
fn scram_sha1_full_exchange() {
    let (server, c, result) = scram_login(Hash::Sha1, "SCRAM-SHA-1", "pass");
    assert_eq!(result.unwrap().len(), 20);
    let session = server.manager.session(c).unwrap();
    assert_eq!(session.kind(), SessionKind::Authenticated);
    assert_eq!(session.username(), Some("romeo"));
}

#[test]
fn scram_sha256_full_exchange() {
    let (mut server, c, result) = scram_login(Hash::Sha256, "SCRAM-SHA-256", "pass");
    assert_eq!(result.unwrap().len(), 32);
    assert_eq!(
        server.manager.session(c).unwrap().kind(),
        SessionKind::Authenticated
    );
    // The session goes on to bind like any other.
    server.take_raw(c);
    server.open_stream(c);
    server.take(c);
    assert_eq!(server.bind(c, Some("orchard")), "romeo@localhost/orchard");
}

#[test]
fn scram_wrong_password_is_not_authorized() {
    for (hash, mechanism) in [(Hash::Sha1, "SCRAM-SHA-1"), (Hash::Sha256, "SCRAM-SHA-256")] {
        let (mut server, c, result) = scram_login(hash, mechanism, "wrong");
        let _ = result.unwrap_err();
        assert_eq!(
            server.take_raw(c),
            failure("not-authorized", Some(NOT_AUTHORIZED_TEXT))
        );
        assert_eq!(
            server.manager.session(c).unwrap().kind(),
            SessionKind::Unauthenticated
        );
    }
}

#[test]
fn scram_unknown_user_is_not_authorized_without_a_challenge() {
    let mut server = server_with_romeo();
    let c = opened(&mut server);
    server.send(
        c,
        &auth("SCRAM-SHA-256", &BASE64.encode("n,,n=mercutio,r=abcdef")),
    );
    assert_eq!(
        server.take_raw(c),
        failure("not-authorized", Some(NOT_AUTHORIZED_TEXT))
    );
}

#[test]
fn scram_bad_messages_are_malformed_request() {
    // A bad client-first message.
    for first in [
        "",
        "x,,n=romeo,r=abc",
        "n,,r=abc",
        "p=,,n=romeo,r=abc",
        "n,,n=romeo",
    ] {
        let mut server = server_with_romeo();
        let c = opened(&mut server);
        let payload = if first.is_empty() {
            "=".to_owned()
        } else {
            BASE64.encode(first)
        };
        server.send(c, &auth("SCRAM-SHA-1", &payload));
        assert_eq!(
            server.take_raw(c),
            failure("malformed-request", Some("Invalid message")),
            "{first:?}"
        );
    }
    // A client-final message with a nonce that is not the combined one.
    let mut server = server_with_romeo();
    let c = opened(&mut server);
    server.send(
        c,
        &auth("SCRAM-SHA-1", &BASE64.encode("n,,n=romeo,r=abcdef")),
    );
    let _ = sasl_text(&mut server, c, "challenge");
    let final_message = format!(
        "c={},r=abcdef,p={}",
        BASE64.encode("n,,"),
        BASE64.encode([0u8; 20])
    );
    server.send(
        c,
        &format!(
            "<response xmlns='{NS_SASL}'>{}</response>",
            BASE64.encode(final_message)
        ),
    );
    assert_eq!(
        server.take_raw(c),
        failure("malformed-request", Some("Invalid message"))
    );
}

#[test]
fn new_auth_restarts_the_exchange() {
    let mut server = server_with_romeo();
    let c = opened(&mut server);
    server.send(
        c,
        &auth("SCRAM-SHA-1", &BASE64.encode("n,,n=romeo,r=abcdef")),
    );
    let _ = sasl_text(&mut server, c, "challenge");
    server.send(c, &auth("PLAIN", &plain_payload("romeo", "pass")));
    assert_eq!(server.take_raw(c), format!("<success xmlns='{NS_SASL}'/>"));
}
