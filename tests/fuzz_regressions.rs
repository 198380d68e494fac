//! Regressions found by the cargo-fuzz targets in `fuzz/`, each reproduced
//! through the public API.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use xmpp_session::testkit::{TestServer, parse_stanza};

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
    let stanza = parse_stanza("<message to='romeo@localhost' type='chat'><body>Hi</body></message>");

    let c = server.connect();
    assert!(!server.manager.send(c, &stanza), "no stream header yet");
    server.pump();
    assert_eq!(server.take_raw(c), "");

    server.open_stream(c);
    server.take(c);
    assert!(server.manager.send(c, &stanza));
    server.pump();
    server.expect(c, &["<message to='romeo@localhost' type='chat'><body>Hi</body></message>"]);

    // SASL success: the stream restarts and is closed for stanzas until the
    // client's new header.
    let payload = BASE64.encode("\0romeo\0pass");
    server.send(c, &format!("<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{payload}</auth>"));
    server.expect(c, &[&format!("<success xmlns='{NS_SASL}'/>")]);
    assert!(!server.manager.send(c, &stanza), "stream restarting");
    server.pump();
    server.expect_nothing(c);

    server.open_stream(c);
    server.take(c);
    assert!(server.manager.send(c, &stanza));
    server.pump();
    server.expect(c, &["<message to='romeo@localhost' type='chat'><body>Hi</body></message>"]);
}
