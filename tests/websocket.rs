//! XMPP over WebSocket (RFC 7395) through the public API: `<open/>` and
//! `<close/>`, one complete element per message in both directions, every
//! element carrying its own namespace, the errors for bad messages, and a
//! WebSocket client talking to a TCP client. Transcripts compare the exact
//! messages (one string per WebSocket message).

use xmpp_session::testkit::TestServer;
use xmpp_session::{ConnectionInfo, Framing, SessionId, StreamError, StreamErrorCondition};

const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
const CLOSE: &str = "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>";
const STREAMS: &str = "http://etherx.jabber.org/streams";
const ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";

fn server() -> TestServer {
    let mut server = TestServer::new();
    server.add_user("romeo", "pass");
    server.add_user("juliet", "pass");
    server
}

/// The `id` of the `<open/>` the server sent in `frame`.
fn open_id(frame: &str) -> String {
    let start = frame.find(" id='").expect("an id") + 5;
    let len = frame[start..].find('\'').expect("a closing quote");
    frame[start..start + len].to_owned()
}

fn server_open(id: &str) -> String {
    format!("<open xmlns='{FRAMING}' xml:lang='en' id='{id}' from='localhost' version='1.0'/>")
}

/// `<stream:error>` with the stream namespace declared on it.
fn stream_error(condition: &str, text: Option<&str>) -> String {
    let text = text
        .map(|t| format!("<text xmlns='{ERRORS}'>{t}</text>"))
        .unwrap_or_default();
    format!(
        "<stream:error xmlns:stream='{STREAMS}'><{condition} xmlns='{ERRORS}'/>{text}</stream:error>"
    )
}

/// A WebSocket client logged in with SCRAM-SHA-256 and bound to `resource`.
fn websocket_login(server: &mut TestServer, user: &str, resource: &str) -> SessionId {
    let c = server.connect_websocket();
    server.authenticate_scram(c, user, "pass");
    server.bind(c, Some(resource));
    server.take_frames(c);
    c
}

#[track_caller]
fn expect_frames(server: &mut TestServer, c: SessionId, expected: &[&str]) {
    assert_eq!(server.take_frames(c), expected);
    assert_eq!(server.client_errors(c), Vec::<String>::new());
}

/// The stream error, then `<close/>`, then the connection closes.
#[track_caller]
fn expect_stream_error(server: &mut TestServer, c: SessionId, condition: &str, text: Option<&str>) {
    expect_frames(server, c, &[&stream_error(condition, text), CLOSE]);
    assert!(server.is_closed(c));
}

#[test]
fn open_features_restart_and_close() {
    let mut server = server();
    let c = server.connect_websocket();
    assert_eq!(
        server.manager.session(c).map(|s| s.framing()),
        Some(Framing::WebSocket)
    );
    server.send_frame(c, &TestServer::open_frame());
    let frames = server.take_frames(c);
    let id = open_id(&frames[0]);
    assert_eq!(
        frames,
        [
            server_open(&id),
            format!(
                "<features xmlns='{STREAMS}'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
                 <mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism>\
                 </mechanisms><limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>10000</max-bytes></limits></features>"
            ),
        ]
    );
    // PLAIN, then the restart: a new <open/>, no <stream:stream>.
    server.send_frame(
        c,
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AHJvbWVvAHBhc3M=</auth>",
    );
    expect_frames(
        &mut server,
        c,
        &["<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"],
    );
    server.send_frame(c, &TestServer::open_frame());
    let frames = server.take_frames(c);
    let id2 = open_id(&frames[0]);
    assert_ne!(id, id2, "a restart gets a new stream id");
    assert_eq!(frames[0], server_open(&id2));
    assert!(
        frames[1].starts_with(&format!(
            "<features xmlns='{STREAMS}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><required/></bind>"
        )),
        "{frames:?}"
    );
    assert_eq!(frames.len(), 2);
    // The client closes: the server answers <close/> and closes.
    server.send_frame(c, &format!("<close xmlns='{FRAMING}'/>"));
    expect_frames(&mut server, c, &[CLOSE]);
    assert!(server.is_closed(c));
    assert!(server.manager.session(c).is_none());
    // Messages after the close are ignored.
    server.send_frame(c, &TestServer::open_frame());
    expect_frames(&mut server, c, &[]);
}

#[test]
fn open_echoes_a_valid_from_as_to() {
    let mut server = server();
    let c = server.connect_websocket();
    server.send_frame(
        c,
        &format!("<open xmlns='{FRAMING}' to='localhost' from='romeo@localhost' version='1.0'/>"),
    );
    let frames = server.take_frames(c);
    let id = open_id(&frames[0]);
    assert_eq!(
        frames[0],
        format!(
            "<open xmlns='{FRAMING}' xml:lang='en' id='{id}' from='localhost' to='romeo@localhost' version='1.0'/>"
        )
    );
}

#[test]
fn every_message_out_is_one_element_declaring_its_namespace() {
    let mut server = server();
    let ws = websocket_login(&mut server, "romeo", "web");
    let tcp = server.login("juliet", "balcony");
    server.take_raw(tcp);
    // TCP → WebSocket (the byte-forwarding path): the message gains its
    // namespace declaration.
    server.send(
        tcp,
        "<message to='romeo@localhost/web' type='chat' id='m1'><body>Hi</body></message>",
    );
    expect_frames(
        &mut server,
        ws,
        &[
            "<message xmlns='jabber:client' from='juliet@localhost/balcony' id='m1' \
           to='romeo@localhost/web' type='chat'><body>Hi</body></message>",
        ],
    );
    assert_eq!(server.take_raw(tcp), "");
    // WebSocket → TCP: nothing changes on the TCP stream.
    server.send_frame(
        ws,
        "<message xmlns='jabber:client' to='juliet@localhost/balcony' type='chat' id='m2'><body>Hello</body></message>",
    );
    assert_eq!(
        server.take_raw(tcp),
        "<message from='romeo@localhost/web' id='m2' to='juliet@localhost/balcony' type='chat'>\
         <body>Hello</body></message>"
    );
    expect_frames(&mut server, ws, &[]);
    // Presence: the broadcast to the WebSocket session is its own message.
    server.send_frame(
        ws,
        "<iq xmlns='jabber:client' type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>",
    );
    expect_frames(
        &mut server,
        ws,
        &[
            "<iq xmlns='jabber:client' id='r1' to='romeo@localhost/web' type='result'><query xmlns='jabber:iq:roster' ver='0'/></iq>",
        ],
    );
    server.send_frame(ws, "<presence xmlns='jabber:client'/>");
    expect_frames(
        &mut server,
        ws,
        &["<presence xmlns='jabber:client' from='romeo@localhost/web'/>"],
    );
    // An iq error from the server (an element built by the core).
    server.send_frame(
        ws,
        "<iq xmlns='jabber:client' type='get' id='x1' to='localhost'><x xmlns='urn:example:nothing'/></iq>",
    );
    expect_frames(
        &mut server,
        ws,
        &[
            "<iq xmlns='jabber:client' from='localhost' id='x1' to='romeo@localhost/web' type='error'>\
           <error type='cancel'>\
           <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
        ],
    );
}

#[test]
fn scram_login_bind_and_messages_between_websocket_and_tcp() {
    let mut server = server();
    let ws = server.connect_websocket();
    server.authenticate_scram(ws, "romeo", "pass");
    assert_eq!(server.bind(ws, Some("web")), "romeo@localhost/web");
    let tcp = server.connect();
    server.authenticate_scram(tcp, "juliet", "pass");
    assert_eq!(
        server.bind(tcp, Some("balcony")),
        "juliet@localhost/balcony"
    );
    assert!(server.client_errors(ws).is_empty());
    server.send_frame(
        ws,
        "<message xmlns='jabber:client' to='juliet@localhost/balcony' type='chat'><body>Wherefore?</body></message>",
    );
    server.expect(
        tcp,
        &["<message from='romeo@localhost/web' to='juliet@localhost/balcony' type='chat'><body>Wherefore?</body></message>"],
    );
    server.expect_nothing(ws);
    server.send(
        tcp,
        "<message to='romeo@localhost/web' type='chat'><body>Here</body></message>",
    );
    server.expect(
        ws,
        &["<message from='juliet@localhost/balcony' to='romeo@localhost/web' type='chat'><body>Here</body></message>"],
    );
    server.expect_nothing(tcp);
    assert!(server.client_errors(ws).is_empty());
}

#[test]
fn two_elements_in_one_message_close_the_stream() {
    let mut server = server();
    let ws = websocket_login(&mut server, "romeo", "web");
    let tcp = server.login("juliet", "balcony");
    server.send_frame(
        ws,
        "<message xmlns='jabber:client' to='juliet@localhost/balcony'><body>1</body></message>\
         <message xmlns='jabber:client' to='juliet@localhost/balcony'><body>2</body></message>",
    );
    let text = "A WebSocket message must hold exactly one complete XML element";
    expect_stream_error(&mut server, ws, "not-well-formed", Some(text));
    assert!(server.is_closed(ws));
    // Neither message was delivered.
    server.expect_nothing(tcp);
}

#[test]
fn a_partial_element_closes_the_stream() {
    for partial in [
        "<message xmlns='jabber:client' to='juliet@localhost'><body>1</body>",
        "<message xmlns='jabber:client'/><message",
        "",
    ] {
        let mut server = server();
        let ws = websocket_login(&mut server, "romeo", "web");
        server.send_frame(ws, partial);
        let text = "A WebSocket message must hold exactly one complete XML element";
        expect_stream_error(&mut server, ws, "not-well-formed", Some(text));
        assert!(server.is_closed(ws), "{partial:?}");
    }
}

#[test]
fn malformed_xml_in_a_message_is_not_well_formed() {
    let mut server = server();
    let ws = websocket_login(&mut server, "romeo", "web");
    server.send_frame(ws, "<message xmlns='jabber:client'></iq>");
    expect_stream_error(&mut server, ws, "not-well-formed", None);
}

#[test]
fn a_stream_header_on_a_websocket_connection_is_refused() {
    let mut server = server();
    let ws = server.connect_websocket();
    server.send_frame(ws, &TestServer::stream_header());
    let frames = server.take_frames(ws);
    let id = open_id(&frames[0]);
    assert_eq!(
        frames,
        [
            // No host was chosen: the <open/> has no `from`.
            format!("<open xmlns='{FRAMING}' xml:lang='en' id='{id}' version='1.0'/>"),
            stream_error(
                "invalid-namespace",
                Some(
                    "Open a WebSocket stream with &lt;open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/&gt;"
                )
            ),
            CLOSE.to_owned(),
        ]
    );
    assert!(server.is_closed(ws));
}

#[test]
fn open_in_the_wrong_namespace_is_invalid_namespace() {
    for open in [
        "<open xmlns='jabber:client' to='localhost' version='1.0'/>",
        "<open to='localhost' version='1.0'/>",
        "<message xmlns='jabber:client' to='localhost'/>",
    ] {
        let mut server = server();
        let ws = server.connect_websocket();
        server.send_frame(ws, open);
        let frames = server.take_frames(ws);
        let id = open_id(&frames[0]);
        assert_eq!(
            frames,
            [
                server_open(&id),
                stream_error("invalid-namespace", None),
                CLOSE.to_owned()
            ],
            "{open}"
        );
    }
}

#[test]
fn open_header_checks_apply() {
    let mut server = server();
    let ws = server.connect_websocket();
    server.send_frame(
        ws,
        &format!("<open xmlns='{FRAMING}' to='example.org' version='1.0'/>"),
    );
    let frames = server.take_frames(ws);
    assert_eq!(frames.len(), 3, "{frames:?}");
    assert_eq!(
        frames[1],
        stream_error(
            "host-unknown",
            Some("This server does not serve example.org")
        )
    );
    assert_eq!(frames[2], CLOSE);
}

#[test]
fn elements_without_a_namespace_are_not_stanzas() {
    let mut server = server();
    let ws = websocket_login(&mut server, "romeo", "web");
    server.send_frame(
        ws,
        "<message to='juliet@localhost'><body>1</body></message>",
    );
    expect_stream_error(&mut server, ws, "unsupported-stanza-type", None);
}

#[test]
fn a_stream_error_from_the_server_is_followed_by_close() {
    let mut server = server();
    let ws = websocket_login(&mut server, "romeo", "web");
    let now = server.now();
    server.manager.close(
        ws,
        StreamError::with_text(StreamErrorCondition::SystemShutdown, "Bye"),
        now,
    );
    server.pump();
    expect_stream_error(&mut server, ws, "system-shutdown", Some("Bye"));
    assert!(server.is_closed(ws));
}

#[test]
fn a_stream_error_from_the_client_closes_without_one_of_ours() {
    let mut server = server();
    let ws = websocket_login(&mut server, "romeo", "web");
    server.send_frame(
        ws,
        &format!(
            "<stream:error xmlns:stream='{STREAMS}'><conflict xmlns='{ERRORS}'/></stream:error>"
        ),
    );
    expect_frames(&mut server, ws, &[CLOSE]);
    assert!(server.is_closed(ws));
}

#[test]
fn messages_before_a_bad_one_are_processed_in_order() {
    let mut server = server();
    let ws = websocket_login(&mut server, "romeo", "web");
    server.hold_requests(true);
    // The roster get waits on storage; the bad message after it is only
    // acted on once the roster answer is out.
    server.send_frame(
        ws,
        "<iq xmlns='jabber:client' type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>",
    );
    server.send_frame(ws, "<a/><b/>");
    server.send_frame(ws, "<presence xmlns='jabber:client'/>");
    expect_frames(&mut server, ws, &[]);
    server.hold_requests(false);
    server.answer_all_held();
    let text = "A WebSocket message must hold exactly one complete XML element";
    expect_frames(
        &mut server,
        ws,
        &[
            "<iq xmlns='jabber:client' id='r1' to='romeo@localhost/web' type='result'><query xmlns='jabber:iq:roster' ver='0'/></iq>",
            &stream_error("not-well-formed", Some(text)),
            CLOSE,
        ],
    );
}

#[test]
fn limits_apply_per_message() {
    let config = TestServer::config().build().expect("valid");
    let mut server = TestServer::with_config(config);
    let ws = server.connect_websocket();
    // Before authentication the limit is 10 000 bytes.
    let big = format!(
        "<open xmlns='{FRAMING}' to='localhost' version='1.0' x='{}'/>",
        "a".repeat(10_001)
    );
    server.send_frame(ws, &big);
    let frames = server.take_frames(ws);
    assert_eq!(frames.len(), 3, "{frames:?}");
    assert!(frames[1].contains("<policy-violation"), "{frames:?}");
    assert_eq!(frames[2], CLOSE);
}

#[test]
fn handle_input_on_a_websocket_connection_reads_one_message() {
    let mut server = server();
    let ws = server.connect_websocket();
    server.send(ws, &TestServer::open_frame());
    assert_eq!(server.take_frames(ws).len(), 2);
    // And handle_frame on a TCP connection is handle_input.
    let tcp = server.connect_with(ConnectionInfo::plain());
    let now = server.now();
    server
        .manager
        .handle_frame(tcp, TestServer::stream_header().as_bytes(), now);
    server.pump();
    assert!(
        server
            .take_raw(tcp)
            .starts_with("<?xml version='1.0'?><stream:stream")
    );
}

#[test]
fn websocket_never_offers_starttls() {
    let info = ConnectionInfo::starttls().with_framing(Framing::WebSocket);
    assert!(!info.starttls_available());
    assert_eq!(info.framing(), Framing::WebSocket);
    assert_eq!(ConnectionInfo::plain().framing(), Framing::Tcp);
    let mut server = server();
    let ws = server.connect_with(info);
    server.send_frame(ws, &TestServer::open_frame());
    let frames = server.take_frames(ws);
    assert!(!frames[1].contains("starttls"), "{frames:?}");
}

mod properties {
    use proptest::prelude::*;
    use xmpp_session::testkit::TestServer;

    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(TestServer::open_frame()),
            Just("<open xmlns='jabber:client' to='localhost' version='1.0'/>".to_owned()),
            Just("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AHJvbWVvAHBhc3M=</auth>".to_owned()),
            Just("<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>".to_owned()),
            Just("<presence xmlns='jabber:client'/>".to_owned()),
            Just("<message xmlns='jabber:client' to='romeo@localhost'><body>x</body></message>".to_owned()),
            Just("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>".to_owned()),
            Just("<a/><b/>".to_owned()),
            Just("<message xmlns='jabber:client'>".to_owned()),
            Just(TestServer::stream_header()),
            "[ -~]{0,24}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Whatever a WebSocket client sends, every message the server
        /// sends is one element with its own namespace, the first is
        /// `<open/>`, the stream ends with `<close/>` and nothing follows.
        #[test]
        fn every_output_message_is_one_element(frames in proptest::collection::vec(fragment(), 0..12)) {
            let mut server = TestServer::new();
            server.add_user("romeo", "pass");
            let ws = server.connect_websocket();
            let mut all = Vec::new();
            for frame in &frames {
                let closed_before = server.is_closed(ws);
                server.send_frame(ws, frame);
                let got = server.take_frames(ws);
                prop_assert!(!closed_before || got.is_empty(), "{got:?} after close");
                all.extend(got);
            }
            prop_assert_eq!(server.client_errors(ws), Vec::<String>::new());
            if let Some(first) = all.first() {
                prop_assert!(first.starts_with("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'"), "{}", first);
            }
            if server.is_closed(ws) {
                prop_assert_eq!(all.last().map(String::as_str), Some(super::CLOSE));
            }
        }
    }
}

#[test]
fn carbon_copies_and_held_csi_stanzas_are_one_message_each() {
    let mut server = server();
    let ws = websocket_login(&mut server, "romeo", "web");
    let tcp = server.login("romeo", "desk");
    let juliet = server.login("juliet", "balcony");
    server.send_frame(
        ws,
        "<iq xmlns='jabber:client' type='set' id='c1'><enable xmlns='urn:xmpp:carbons:2'/></iq>",
    );
    expect_frames(
        &mut server,
        ws,
        &["<iq xmlns='jabber:client' id='c1' to='romeo@localhost/web' type='result'/>"],
    );
    // A message to the other resource: the WebSocket one gets a carbon.
    server.send(
        juliet,
        "<message to='romeo@localhost/desk' type='chat'><body>Hi</body></message>",
    );
    expect_frames(
        &mut server,
        ws,
        &[
            "<message xmlns='jabber:client' from='romeo@localhost' to='romeo@localhost/web' type='chat'>\
           <received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>\
           <message xmlns='jabber:client' from='juliet@localhost/balcony' to='romeo@localhost/desk' type='chat'>\
           <body>Hi</body></message></forwarded></received></message>",
        ],
    );
    server.take(tcp);
    // Inactive: chat states are held, then flushed one message each.
    server.send_frame(ws, "<inactive xmlns='urn:xmpp:csi:0'/>");
    for id in ["s1", "s2"] {
        server.send(
            juliet,
            &format!("<message to='romeo@localhost/web' id='{id}'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"),
        );
    }
    expect_frames(&mut server, ws, &[]);
    server.send_frame(ws, "<active xmlns='urn:xmpp:csi:0'/>");
    let held: Vec<String> = ["s1", "s2"]
        .iter()
        .map(|id| {
            format!(
                "<message xmlns='jabber:client' from='juliet@localhost/balcony' id='{id}' to='romeo@localhost/web'>\
                 <composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
            )
        })
        .collect();
    expect_frames(&mut server, ws, &[&held[0], &held[1]]);
}

/// XEP-0352 on a WebSocket connection: any message from the client flushes
/// what is held.
#[test]
fn client_input_flushes_held_stanzas_on_websocket_too() {
    let mut server = server();
    let ws = websocket_login(&mut server, "romeo", "web");
    let juliet = server.login("juliet", "balcony");
    server.send_frame(ws, "<inactive xmlns='urn:xmpp:csi:0'/>");
    server.send(
        juliet,
        "<message to='romeo@localhost/web' id='s1'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
    );
    expect_frames(&mut server, ws, &[]);
    // Directed presence: nothing comes back to romeo for it, so only the
    // flush rule can release the held chat state.
    server.send_frame(
        ws,
        "<presence xmlns='jabber:client' to='juliet@localhost/balcony'/>",
    );
    expect_frames(
        &mut server,
        ws,
        &[
            "<message xmlns='jabber:client' from='juliet@localhost/balcony' id='s1' to='romeo@localhost/web'>\
           <composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
        ],
    );
}
