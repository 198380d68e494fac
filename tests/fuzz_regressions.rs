//! Regressions found by the cargo-fuzz targets in `fuzz/`, each reproduced
//! through the public API.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use xmpp_session::testkit::{TestServer, account, parse_stanza};

const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";

/// Fuzz target `manager`: `SessionManager::send` to a session whose stream
/// was not open wrote a bare stanza before the server's stream header, so
/// the client saw a `<message/>` as its root element and everything after
/// it as junk. `send` now refuses (returns `false`, writes nothing) until
/// the stream is open, and again while it restarts after SASL.
#[test]
fn send_waits_for_an_open_stream() {
    let mut server = TestServer::new();
    server.add_user("romeo", "pass");
    let stanza =
        parse_stanza("<message to='romeo@localhost' type='chat'><body>Hi</body></message>");

    let c = server.connect();
    assert!(!server.manager.send(c, &stanza), "no stream header yet");
    server.pump();
    assert_eq!(server.take_raw(c), "");

    server.open_stream(c);
    server.take(c);
    assert!(server.manager.send(c, &stanza));
    server.pump();
    server.expect(
        c,
        &["<message to='romeo@localhost' type='chat'><body>Hi</body></message>"],
    );

    // SASL success: the stream restarts and is closed for stanzas until the
    // client's new header.
    let payload = BASE64.encode("\0romeo\0pass");
    server.send(
        c,
        &format!("<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{payload}</auth>"),
    );
    server.expect(c, &[&format!("<success xmlns='{NS_SASL}'/>")]);
    assert!(!server.manager.send(c, &stanza), "stream restarting");
    server.pump();
    server.expect_nothing(c);

    server.open_stream(c);
    server.take(c);
    assert!(server.manager.send(c, &stanza));
    server.pump();
    server.expect(
        c,
        &["<message to='romeo@localhost' type='chat'><body>Hi</body></message>"],
    );
}

/// Fuzz target `manager`: a bound session whose socket dropped while its
/// initial presence waited for the roster lingered (to finish that presence)
/// and, once available, received messages from others on the dead socket:
/// they were lost instead of stored offline. Offline messages could be
/// flushed to it the same way. A disconnected session now receives nothing
/// new: messages fall back to other resources or offline storage, and an
/// iq to its full JID bounces.
#[test]
fn nothing_new_is_delivered_to_a_dropped_socket() {
    let mut server = TestServer::new();
    server.add_user("romeo", "pass");
    server.add_user("juliet", "pass");
    let juliet = server.login("juliet", "balcony");
    server.send(juliet, "<presence/>");
    server.take(juliet);
    let romeo = server.login("romeo", "orchard");

    // Romeo's initial presence waits for his roster; then his socket drops.
    server.hold_requests(true);
    server.send(romeo, "<presence/>");
    server.disconnect(romeo);
    server.take_raw(romeo);
    server.send(
        juliet,
        "<message to='romeo@localhost' type='chat'><body>bare</body></message>",
    );
    server.send(
        juliet,
        "<message to='romeo@localhost/orchard' type='chat'><body>full</body></message>",
    );
    server.send(
        juliet,
        "<iq to='romeo@localhost/orchard' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    server.answer_all_held();

    let raw = server.take_raw(romeo);
    assert!(
        !raw.contains("<message"),
        "delivered to a dead socket: {raw}"
    );
    assert!(server.manager.session(romeo).is_none());
    server.expect(
        juliet,
        &[
            "<iq from='romeo@localhost/orchard' to='juliet@localhost/balcony' type='error' id='p1'>\
           <error type='cancel'><service-unavailable \
           xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
        ],
    );
    let stored: Vec<String> = server
        .store
        .offline_messages(&account("romeo"))
        .iter()
        .map(|m| {
            m.get_child("body", "jabber:client")
                .map(|b| b.text())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(stored, ["bare", "full"]);
}
