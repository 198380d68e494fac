//! Every stream error the negotiation and the reader can produce, with the
//! exact bytes the client receives: our header first when none was sent yet,
//! then `<stream:error/>`, then `</stream:stream>`, then the socket closes.

use std::time::Duration;

use xmpp_session::stream::XmlLimits;
use xmpp_session::testkit::TestServer;
use xmpp_session::{Config, Event, SessionId};

const NS_STREAMS: &str = "http://etherx.jabber.org/streams";
const STREAM_CLOSE: &str = "</stream:stream>";

/// Our stream header as the server writes it.
fn server_header(id: &str, from: Option<&str>) -> String {
    let from = from.map(|f| format!(" from='{f}'")).unwrap_or_default();
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='{NS_STREAMS}' \
         xml:lang='en' id='{id}'{from} version='1.0'>"
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

/// `<stream:error>` with a condition and optional text, as serialized.
fn stream_error(condition: &str, text: Option<&str>) -> String {
    let text = text
        .map(|t| format!("<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>{t}</text>"))
        .unwrap_or_default();
    format!(
        "<stream:error><{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>{text}</stream:error>"
    )
}

/// The stream error for a stanza sent before authentication (RFC 6120
/// §4.9.3.12), then the stream's end.
fn pre_auth_stanza() -> String {
    format!("{}{STREAM_CLOSE}", stream_error("not-authorized", None))
}

/// Asserts the client received exactly `rest` (nothing before it) and was
/// disconnected, and that the manager forgot the session.
#[track_caller]
fn assert_closed_with(server: &mut TestServer, c: SessionId, rest: &str) {
    assert_eq!(server.take_raw(c), rest);
    assert!(server.is_closed(c), "connection not closed");
    assert!(server.manager.session(c).is_none(), "session still known");
    assert!(
        server
            .take_events()
            .iter()
            .any(|e| matches!(e, Event::Closed { session } if *session == c)),
        "no Closed event"
    );
}

/// Asserts the client received our header (with `from`) and then `rest`,
/// and was disconnected.
#[track_caller]
fn assert_header_then_closed(
    server: &mut TestServer,
    c: SessionId,
    from: Option<&str>,
    rest: &str,
) {
    let raw = server.take_raw(c);
    let id = stream_id_of(&raw);
    assert_eq!(raw, format!("{}{rest}", server_header(&id, from)));
    assert!(server.is_closed(c), "connection not closed");
    assert!(server.manager.session(c).is_none(), "session still known");
}

/// Forgets everything the client received so far (elements and bytes).
fn drain(server: &mut TestServer, c: SessionId) {
    server.take(c);
    server.take_raw(c);
}

/// A connection whose stream is open (header and features drained).
fn opened(server: &mut TestServer) -> SessionId {
    let c = server.connect();
    server.open_stream(c);
    drain(server, c);
    c
}

/// Logs in and forgets the negotiation output.
fn login(server: &mut TestServer, user: &str, resource: &str) -> SessionId {
    let c = server.login(user, resource);
    drain(server, c);
    c
}

fn header_with(attrs: &str) -> String {
    format!("<?xml version='1.0'?><stream:stream {attrs}>")
}

// --- stream header checks ---------------------------------------------------

#[test]
fn wrong_root_element_is_invalid_namespace() {
    let mut server = TestServer::new();
    let c = server.connect();
    server.send(
        c,
        "<?xml version='1.0'?><stream:session to='localhost' version='1.0' xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams'>",
    );
    let expected = format!("{}{STREAM_CLOSE}", stream_error("invalid-namespace", None));
    assert_header_then_closed(&mut server, c, Some("localhost"), &expected);
}

#[test]
fn root_in_wrong_namespace_is_invalid_namespace() {
    let mut server = TestServer::new();
    let c = server.connect();
    server.send(
        c,
        "<stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='urn:example:streams'>",
    );
    let expected = format!("{}{STREAM_CLOSE}", stream_error("invalid-namespace", None));
    assert_header_then_closed(&mut server, c, Some("localhost"), &expected);
}

#[test]
fn non_stream_root_without_to_gets_header_without_from() {
    let mut server = TestServer::new();
    let c = server.connect();
    server.send(c, "<presence/>");
    let expected = format!("{}{STREAM_CLOSE}", stream_error("invalid-namespace", None));
    assert_header_then_closed(&mut server, c, None, &expected);
}

#[test]
fn wrong_default_namespace_is_invalid_namespace() {
    for ns in ["jabber:server", "jabber:component:accept", ""] {
        let mut server = TestServer::new();
        let c = server.connect();
        server.send(
            c,
            &header_with(&format!(
                "to='localhost' version='1.0' xmlns='{ns}' xmlns:stream='{NS_STREAMS}'"
            )),
        );
        let expected = format!(
            "{}{STREAM_CLOSE}",
            stream_error(
                "invalid-namespace",
                Some("The default namespace must be jabber:client")
            )
        );
        assert_header_then_closed(&mut server, c, Some("localhost"), &expected);
    }
    // No default namespace declaration at all.
    let mut server = TestServer::new();
    let c = server.connect();
    server.send(
        c,
        &header_with(&format!(
            "to='localhost' version='1.0' xmlns:stream='{NS_STREAMS}'"
        )),
    );
    let expected = format!(
        "{}{STREAM_CLOSE}",
        stream_error(
            "invalid-namespace",
            Some("The default namespace must be jabber:client")
        )
    );
    assert_header_then_closed(&mut server, c, Some("localhost"), &expected);
}

#[test]
fn missing_to_is_improper_addressing() {
    let mut server = TestServer::new();
    let c = server.connect();
    server.send(
        c,
        &header_with(&format!(
            "version='1.0' xmlns='jabber:client' xmlns:stream='{NS_STREAMS}'"
        )),
    );
    let expected = format!(
        "{}{STREAM_CLOSE}",
        stream_error(
            "improper-addressing",
            Some("A 'to' attribute is required on stream headers")
        )
    );
    assert_header_then_closed(&mut server, c, None, &expected);
}

#[test]
fn invalid_to_is_improper_addressing() {
    for to in [
        "",
        "local host",
        "user@localhost",
        "localhost/resource",
        "@localhost",
    ] {
        let mut server = TestServer::new();
        let c = server.connect();
        server.send(
            c,
            &header_with(&format!(
                "to='{to}' version='1.0' xmlns='jabber:client' xmlns:stream='{NS_STREAMS}'"
            )),
        );
        let expected = format!(
            "{}{STREAM_CLOSE}",
            stream_error(
                "improper-addressing",
                Some("A valid 'to' attribute is required on stream headers")
            )
        );
        assert_header_then_closed(&mut server, c, None, &expected);
    }
}

#[test]
fn unknown_host_is_host_unknown() {
    let mut server = TestServer::new();
    let c = server.connect();
    server.send(
        c,
        &header_with(&format!(
            "to='example.org' version='1.0' xmlns='jabber:client' xmlns:stream='{NS_STREAMS}'"
        )),
    );
    let expected = format!(
        "{}{STREAM_CLOSE}",
        stream_error(
            "host-unknown",
            Some("This server does not serve example.org")
        )
    );
    assert_header_then_closed(&mut server, c, None, &expected);
}

#[test]
fn host_is_normalised_before_lookup() {
    let mut server = TestServer::new();
    let c = server.connect();
    server.send(
        c,
        &header_with(&format!(
            "to='LocalHost' version='1.0' xmlns='jabber:client' xmlns:stream='{NS_STREAMS}'"
        )),
    );
    let raw = server.take_raw(c);
    let id = stream_id_of(&raw);
    assert!(
        raw.starts_with(&server_header(&id, Some("localhost"))),
        "{raw}"
    );
    assert!(!server.is_closed(c));
    assert_eq!(
        server.manager.session(c).and_then(|s| s.host()),
        Some("localhost")
    );
}

#[test]
fn restart_to_another_host_is_not_authorized() {
    let mut server = TestServer::with_config(
        Config::builder("localhost")
            .host("example.net")
            .require_tls(false)
            .allow_plain_without_tls(true)
            .build()
            .expect("valid config"),
    );
    server.add_user("romeo", "pass");
    let c = opened(&mut server);
    server.send(
        c,
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AHJvbWVvAHBhc3M=</auth>",
    );
    assert_eq!(
        server.take_raw(c),
        "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
    );
    server.send(
        c,
        &header_with(&format!(
            "to='example.net' version='1.0' xmlns='jabber:client' xmlns:stream='{NS_STREAMS}'"
        )),
    );
    let expected = format!(
        "{}{STREAM_CLOSE}",
        stream_error(
            "not-authorized",
            Some("The 'to' attribute must remain the same across stream restarts")
        )
    );
    // The error comes in a new stream from the host the session started with.
    assert_header_then_closed(&mut server, c, Some("localhost"), &expected);
}

#[test]
fn unsupported_versions() {
    for version in [None, Some("0.9"), Some("2.0"), Some("1"), Some("")] {
        let mut server = TestServer::new();
        let c = server.connect();
        let attr = version
            .map(|v| format!(" version='{v}'"))
            .unwrap_or_default();
        server.send(
            c,
            &header_with(&format!(
                "to='localhost'{attr} xmlns='jabber:client' xmlns:stream='{NS_STREAMS}'"
            )),
        );
        let expected = format!(
            "{}{STREAM_CLOSE}",
            stream_error(
                "unsupported-version",
                Some("Only XMPP version 1.0 is supported")
            )
        );
        assert_header_then_closed(&mut server, c, Some("localhost"), &expected);
    }
}

#[test]
fn minor_versions_above_zero_are_accepted() {
    let mut server = TestServer::new();
    let c = server.connect();
    server.send(
        c,
        &header_with(&format!(
            "to='localhost' version='1.1' xmlns='jabber:client' xmlns:stream='{NS_STREAMS}'"
        )),
    );
    let raw = server.take_raw(c);
    let id = stream_id_of(&raw);
    assert!(
        raw.starts_with(&server_header(&id, Some("localhost"))),
        "{raw}"
    );
    assert!(raw.ends_with("</stream:features>"), "{raw}");
    assert!(!server.is_closed(c));
}

// --- XML-level errors --------------------------------------------------------

#[test]
fn malformed_xml_is_not_well_formed() {
    for bad in [
        "<message><body>hi</message>",
        "<message to='a' to='b'/>",
        "<x:message/>",
        "<message>&bogus</message>",
        "</nothing>",
    ] {
        let mut server = TestServer::new();
        let c = opened(&mut server);
        server.send(c, bad);
        let expected = format!("{}{STREAM_CLOSE}", stream_error("not-well-formed", None));
        assert_closed_with(&mut server, c, &expected);
    }
}

#[test]
fn malformed_header_is_not_well_formed_inside_a_new_stream() {
    let mut server = TestServer::new();
    let c = server.connect();
    server.send(c, "<stream:stream to='localhost' <<");
    let expected = format!("{}{STREAM_CLOSE}", stream_error("not-well-formed", None));
    assert_header_then_closed(&mut server, c, None, &expected);
}

#[test]
fn doctype_is_restricted_xml() {
    let mut server = TestServer::new();
    let c = server.connect();
    server.send(c, "<?xml version='1.0'?><!DOCTYPE stream:stream>");
    let expected = format!("{}{STREAM_CLOSE}", stream_error("restricted-xml", None));
    assert_header_then_closed(&mut server, c, None, &expected);
}

#[test]
fn comment_is_restricted_xml() {
    let mut server = TestServer::new();
    let c = opened(&mut server);
    server.send(c, "<!-- hello -->");
    let expected = format!("{}{STREAM_CLOSE}", stream_error("restricted-xml", None));
    assert_closed_with(&mut server, c, &expected);

    // Inside a stanza too.
    let mut server = TestServer::new();
    let c = opened(&mut server);
    server.send(c, "<presence><!-- hello --></presence>");
    assert_closed_with(&mut server, c, &expected);
}

#[test]
fn processing_instruction_is_restricted_xml() {
    let mut server = TestServer::new();
    let c = opened(&mut server);
    server.send(c, "<?php echo 1; ?>");
    let expected = format!("{}{STREAM_CLOSE}", stream_error("restricted-xml", None));
    assert_closed_with(&mut server, c, &expected);
}

#[test]
fn non_utf8_declaration_is_restricted_xml() {
    let mut server = TestServer::new();
    let c = server.connect();
    server.send(
        c,
        &format!(
            "<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream to='localhost' version='1.0' \
             xmlns='jabber:client' xmlns:stream='{NS_STREAMS}'>"
        ),
    );
    let expected = format!("{}{STREAM_CLOSE}", stream_error("restricted-xml", None));
    assert_header_then_closed(&mut server, c, None, &expected);
}

// --- limits ----------------------------------------------------------------

fn too_big() -> String {
    "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
     <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>XML stanza is too big</text>\
     <stanza-too-big xmlns='urn:xmpp:errors'/></stream:error></stream:stream>"
        .to_owned()
}

/// `<presence>` padded with a `<status>` to exactly `len` bytes.
fn presence_of_len(len: usize) -> String {
    let overhead = "<presence><status></status></presence>".len();
    format!(
        "<presence><status>{}</status></presence>",
        "a".repeat(len - overhead)
    )
}

#[test]
fn pre_auth_stanza_limit_is_10000_bytes() {
    // Exactly at the limit: read whole, then refused as a stanza before
    // authentication (not-authorized rather than policy-violation).
    let mut server = TestServer::new();
    let c = opened(&mut server);
    server.send(c, &presence_of_len(10_000));
    assert_closed_with(&mut server, c, &pre_auth_stanza());

    // One byte more: closed.
    let mut server = TestServer::new();
    let c = opened(&mut server);
    server.send(c, &presence_of_len(10_001));
    assert_closed_with(&mut server, c, &too_big());
}

#[test]
fn pre_auth_limit_catches_an_element_that_never_ends() {
    let mut server = TestServer::new();
    let c = opened(&mut server);
    server.send(c, "<presence><status>");
    for _ in 0..20 {
        if server.is_closed(c) {
            break;
        }
        server.send(c, &"a".repeat(1000));
    }
    assert_closed_with(&mut server, c, &too_big());
}

#[test]
fn pre_auth_limit_applies_to_the_header_too() {
    let mut server = TestServer::new();
    let c = server.connect();
    server.send(
        c,
        &header_with(&format!(
            "to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='{NS_STREAMS}' x='{}'",
            "a".repeat(7000)
        )),
    );
    // One 7000-byte attribute keeps the header under the 10000-byte limit;
    // two of them exceed it.
    let c2 = server.connect();
    server.send(
        c2,
        &header_with(&format!(
            "to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='{NS_STREAMS}' x='{a}' y='{a}'",
            a = "a".repeat(7000)
        )),
    );
    assert!(!server.is_closed(c));
    drain(&mut server, c);
    assert_header_then_closed(&mut server, c2, None, &too_big());
}

#[test]
fn post_auth_stanza_limit_defaults_to_262144_bytes() {
    let mut server = TestServer::new();
    server.add_user("romeo", "pass");
    let c = login(&mut server, "romeo", "orchard");
    server.send(c, &presence_of_len(262_144));
    assert!(!server.is_closed(c), "a stanza at the limit is accepted");
    drain(&mut server, c);
    server.send(c, &presence_of_len(262_145));
    assert_closed_with(&mut server, c, &too_big());
}

#[test]
fn configured_stanza_limits_before_and_after_auth() {
    let config = Config::builder("localhost")
        .require_tls(false)
        .allow_plain_without_tls(true)
        .unauthenticated_limits(XmlLimits {
            max_stanza_bytes: 300,
            ..XmlLimits::default()
        })
        .limits(XmlLimits {
            max_stanza_bytes: 600,
            ..XmlLimits::default()
        })
        .build()
        .expect("valid config");

    // Before authentication the smaller limit applies.
    let mut server = TestServer::with_config(config.clone());
    let c = opened(&mut server);
    server.send(c, &presence_of_len(300));
    // Read whole, then refused as a stanza before authentication.
    assert_closed_with(&mut server, c, &pre_auth_stanza());
    let c = opened(&mut server);
    server.send(c, &presence_of_len(301));
    assert_closed_with(&mut server, c, &too_big());

    // After authentication the larger one does.
    let mut server = TestServer::with_config(config);
    server.add_user("romeo", "pass");
    let c = login(&mut server, "romeo", "orchard");
    server.send(c, &presence_of_len(600));
    assert!(!server.is_closed(c));
    drain(&mut server, c);
    server.send(c, &presence_of_len(601));
    assert_closed_with(&mut server, c, &too_big());
}

fn small_limits() -> Config {
    Config::builder("localhost")
        .require_tls(false)
        .allow_plain_without_tls(true)
        .unauthenticated_limits(XmlLimits {
            max_stanza_bytes: 10_000,
            max_depth: 3,
            // The stream header carries five.
            max_attributes: 6,
            max_text_bytes: 10,
        })
        .build()
        .expect("valid config")
}

#[test]
fn depth_limit_is_policy_violation() {
    let mut server = TestServer::with_config(small_limits());
    let c = opened(&mut server);
    // Depth 3 is fine.
    server.send(c, "<presence><a xmlns='urn:x'><b/></a></presence>");
    // Read whole, then refused as a stanza before authentication.
    assert_closed_with(&mut server, c, &pre_auth_stanza());
    let c = opened(&mut server);
    server.send(c, "<presence><a xmlns='urn:x'><b><c/></b></a></presence>");
    let expected = format!(
        "{}{STREAM_CLOSE}",
        stream_error(
            "policy-violation",
            Some("XML elements are nested too deeply")
        )
    );
    assert_closed_with(&mut server, c, &expected);
}

#[test]
fn default_depth_limit_is_64() {
    let mut server = TestServer::new();
    let c = opened(&mut server);
    let nested = |depth: usize| {
        format!(
            "<presence>{}{}</presence>",
            "<x xmlns='urn:x'>".repeat(depth - 1),
            "</x>".repeat(depth - 1)
        )
    };
    server.send(c, &nested(64));
    // Read whole, then refused as a stanza before authentication.
    assert_closed_with(&mut server, c, &pre_auth_stanza());
    let c = opened(&mut server);
    server.send(c, &nested(65));
    let expected = format!(
        "{}{STREAM_CLOSE}",
        stream_error(
            "policy-violation",
            Some("XML elements are nested too deeply")
        )
    );
    assert_closed_with(&mut server, c, &expected);
}

#[test]
fn attribute_limit_is_policy_violation() {
    let mut server = TestServer::with_config(small_limits());
    let c = opened(&mut server);
    server.send(c, "<presence a='1' b='2' c='3' d='4' e='5' f='6'/>");
    // Read whole, then refused as a stanza before authentication.
    assert_closed_with(&mut server, c, &pre_auth_stanza());
    let c = opened(&mut server);
    server.send(c, "<presence a='1' b='2' c='3' d='4' e='5' f='6' g='7'/>");
    let expected = format!(
        "{}{STREAM_CLOSE}",
        stream_error(
            "policy-violation",
            Some("Too many attributes on one element")
        )
    );
    assert_closed_with(&mut server, c, &expected);
}

#[test]
fn text_limit_is_policy_violation() {
    let mut server = TestServer::with_config(small_limits());
    let c = opened(&mut server);
    server.send(c, "<presence><status>0123456789</status></presence>");
    // Read whole, then refused as a stanza before authentication.
    assert_closed_with(&mut server, c, &pre_auth_stanza());
    let c = opened(&mut server);
    server.send(c, "<presence><status>0123456789a</status></presence>");
    let expected = format!(
        "{}{STREAM_CLOSE}",
        stream_error("policy-violation", Some("Text content is too big"))
    );
    assert_closed_with(&mut server, c, &expected);
}

// --- unsupported elements --------------------------------------------------

#[test]
fn unknown_top_level_elements_are_unsupported_stanza_type() {
    for el in [
        "<foo/>",
        "<query xmlns='jabber:iq:roster'/>",
        "<enable xmlns='urn:xmpp:sm:3'/>",
        "<message xmlns='jabber:server'/>",
    ] {
        let mut server = TestServer::new();
        let c = opened(&mut server);
        server.send(c, el);
        let expected = format!(
            "{}{STREAM_CLOSE}",
            stream_error("unsupported-stanza-type", None)
        );
        assert_closed_with(&mut server, c, &expected);
    }
}

#[test]
fn unknown_element_after_bind_is_unsupported_stanza_type() {
    let mut server = TestServer::new();
    server.add_user("romeo", "pass");
    let c = login(&mut server, "romeo", "orchard");
    server.send(c, "<bar xmlns='urn:example'/>");
    let expected = format!(
        "{}{STREAM_CLOSE}",
        stream_error("unsupported-stanza-type", None)
    );
    assert_closed_with(&mut server, c, &expected);
}

#[test]
fn auth_after_authentication_is_unsupported_stanza_type() {
    let mut server = TestServer::new();
    server.add_user("romeo", "pass");
    let c = server.connect();
    server.authenticate_plain(c, "romeo", "pass");
    drain(&mut server, c);
    server.send(
        c,
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AHJvbWVvAHBhc3M=</auth>",
    );
    let expected = format!(
        "{}{STREAM_CLOSE}",
        stream_error("unsupported-stanza-type", None)
    );
    assert_closed_with(&mut server, c, &expected);

    // After binding as well.
    let c = login(&mut server, "romeo", "orchard");
    server.send(
        c,
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AHJvbWVvAHBhc3M=</auth>",
    );
    assert_closed_with(&mut server, c, &expected);
}

// --- timeouts --------------------------------------------------------------

#[test]
fn unauthenticated_connection_times_out() {
    let mut server = TestServer::with_config(
        Config::builder("localhost")
            .require_tls(false)
            .allow_plain_without_tls(true)
            .auth_timeout(Duration::from_secs(30))
            .build()
            .expect("valid config"),
    );
    let c = opened(&mut server);
    assert_eq!(
        server.manager.poll_timeout(),
        Some(server.now() + Duration::from_secs(30))
    );
    server.advance(Duration::from_secs(29));
    assert_eq!(server.take_raw(c), "");
    assert!(!server.is_closed(c));
    server.advance(Duration::from_secs(1));
    let expected = format!("{}{STREAM_CLOSE}", stream_error("connection-timeout", None));
    assert_closed_with(&mut server, c, &expected);
}

#[test]
fn default_auth_timeout_is_five_minutes_and_sends_a_header_first() {
    let mut server = TestServer::new();
    let c = server.connect();
    server.advance(Duration::from_secs(299));
    assert!(!server.is_closed(c));
    server.advance(Duration::from_secs(1));
    let expected = format!("{}{STREAM_CLOSE}", stream_error("connection-timeout", None));
    assert_header_then_closed(&mut server, c, None, &expected);
}

#[test]
fn timeout_does_not_close_authenticated_sessions() {
    let mut server = TestServer::new();
    server.add_user("romeo", "pass");
    server.add_user("juliet", "pass");
    // Authenticated but not bound yet.
    let unbound = server.connect();
    server.authenticate_plain(unbound, "juliet", "pass");
    drain(&mut server, unbound);
    let bound = login(&mut server, "romeo", "orchard");
    drain(&mut server, bound);
    server.advance(Duration::from_secs(3600));
    assert_eq!(server.take_raw(unbound), "");
    assert_eq!(server.take_raw(bound), "");
    assert!(!server.is_closed(unbound));
    assert!(!server.is_closed(bound));
    assert!(server.manager.session(unbound).is_some());
    assert!(server.manager.session(bound).is_some());
}

// --- addressing after bind ---------------------------------------------------

#[test]
fn foreign_from_is_invalid_from() {
    let mut server = TestServer::new();
    server.add_user("romeo", "pass");
    server.add_user("juliet", "pass");
    let romeo = login(&mut server, "romeo", "orchard");
    let juliet = login(&mut server, "juliet", "balcony");
    server.take_events();
    server.send(
        romeo,
        "<message from='someone@else' to='juliet@localhost/balcony'><body>hi</body></message>",
    );
    let expected = format!(
        "{}{STREAM_CLOSE}",
        stream_error(
            "invalid-from",
            Some("The 'from' attribute must be your own address")
        )
    );
    assert_closed_with(&mut server, romeo, &expected);
    server.expect_nothing(juliet);
    assert!(server.take_routed().is_empty());
}

#[test]
fn own_from_is_accepted() {
    let mut server = TestServer::new();
    server.add_user("romeo", "pass");
    server.add_user("juliet", "pass");
    let romeo = login(&mut server, "romeo", "orchard");
    let juliet = login(&mut server, "juliet", "balcony");
    for from in ["romeo@localhost/orchard", "romeo@localhost"] {
        server.send(
            romeo,
            &format!(
                "<message from='{from}' to='juliet@localhost/balcony'><body>hi</body></message>"
            ),
        );
        server.expect(
            juliet,
            &["<message from='romeo@localhost/orchard' to='juliet@localhost/balcony'><body>hi</body></message>"],
        );
    }
    assert!(!server.is_closed(romeo));
}

// --- conflict --------------------------------------------------------------

#[test]
fn replaced_session_gets_conflict() {
    let mut server = TestServer::new();
    server.add_user("romeo", "pass");
    let old = login(&mut server, "romeo", "orchard");
    drain(&mut server, old);
    let new = login(&mut server, "romeo", "orchard");
    let expected = format!(
        "{}{STREAM_CLOSE}",
        stream_error("conflict", Some("Replaced by new connection"))
    );
    assert_eq!(server.take_raw(old), expected);
    assert!(server.is_closed(old));
    assert!(!server.is_closed(new));
}

// --- closing by the client -------------------------------------------------

#[test]
fn client_close_is_answered_with_a_close() {
    let mut server = TestServer::new();
    let c = opened(&mut server);
    server.send(c, "</stream:stream>");
    assert_closed_with(&mut server, c, STREAM_CLOSE);

    // A bound session too.
    server.add_user("romeo", "pass");
    let c = login(&mut server, "romeo", "orchard");
    server.take_events();
    server.send(c, "</stream:stream>");
    let events = server.take_events();
    assert!(
        events.iter().any(|e| matches!(e, Event::Unbound { session, jid } if *session == c && jid.as_str() == "romeo@localhost/orchard")),
        "{events:?}"
    );
    assert_eq!(server.take_raw(c), STREAM_CLOSE);
    assert!(server.is_closed(c));
}

#[test]
fn client_stream_error_closes_without_an_error_of_ours() {
    let mut server = TestServer::new();
    let c = opened(&mut server);
    server.send(
        c,
        "<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
    );
    assert_closed_with(&mut server, c, STREAM_CLOSE);
}

#[test]
fn nothing_is_read_after_close() {
    let mut server = TestServer::new();
    let c = opened(&mut server);
    server.send(c, "<foo/><presence/>");
    let expected = format!(
        "{}{STREAM_CLOSE}",
        stream_error("unsupported-stanza-type", None)
    );
    assert_closed_with(&mut server, c, &expected);
    server.send(c, "<presence/>");
    assert_eq!(server.take_raw(c), "");
}
