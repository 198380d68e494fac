//! Bounds on per-user state, and input that waits on storage when the
//! client's connection drops.

use xmpp_session::testkit::{TestServer, account};
use xmpp_session::{Request, SessionId};

fn server_with(config: xmpp_session::Config, users: &[&str]) -> TestServer {
    let mut server = TestServer::with_config(config);
    for u in users {
        server.add_user(u, "pass");
    }
    server
}

fn roster_set(server: &mut TestServer, id: SessionId, n: usize, jid: &str) {
    server.send(
        id,
        &format!("<iq type='set' id='s{n}'><query xmlns='jabber:iq:roster'><item jid='{jid}'/></query></iq>"),
    );
}

#[test]
fn a_full_roster_refuses_new_items_but_updates_existing_ones() {
    let config = TestServer::config()
        .max_roster_items(2)
        .build()
        .expect("valid config");
    let mut server = server_with(config, &["alice"]);
    let alice = server.login("alice", "r");
    roster_set(&mut server, alice, 1, "a@example.org");
    roster_set(&mut server, alice, 2, "b@example.org");
    server.take(alice);
    roster_set(&mut server, alice, 3, "c@example.org");
    server.expect(
        alice,
        &["<iq type='error' id='s3' to='alice@localhost/r'><error type='wait'><resource-constraint \
           xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text \
           xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>The roster is full</text></error></iq>"],
    );
    // Updating an existing item still works: a result, no error.
    server.send(
        alice,
        "<iq type='set' id='s4'><query xmlns='jabber:iq:roster'><item jid='a@example.org' name='A'/></query></iq>",
    );
    let got = server.take(alice);
    assert_eq!(got.first().and_then(|e| e.attr("type")), Some("result"));
    assert_eq!(got.first().and_then(|e| e.attr("id")), Some("s4"));
    let stored = server
        .store
        .stored_roster(&account("alice"))
        .expect("stored");
    assert_eq!(stored.items.len(), 2);
}

#[test]
fn directed_presence_tracking_is_bounded_but_delivery_is_not() {
    let config = TestServer::config()
        .max_directed_presence(1)
        .build()
        .expect("valid config");
    let mut server = server_with(config, &["alice", "bob", "carol"]);
    let alice = server.login("alice", "r");
    let bob = server.login("bob", "r");
    let carol = server.login("carol", "r");
    server.send(alice, "<presence to='bob@localhost/r'/>");
    server.send(alice, "<presence to='carol@localhost/r'/>");
    server.expect(
        bob,
        &["<presence from='alice@localhost/r' to='bob@localhost/r'/>"],
    );
    server.expect(
        carol,
        &["<presence from='alice@localhost/r' to='carol@localhost/r'/>"],
    );
    server.disconnect(alice);
    // Only the first, tracked recipient hears the goodbye.
    server.expect(
        bob,
        &["<presence type='unavailable' from='alice@localhost/r' to='bob@localhost/r'/>"],
    );
    server.expect_nothing(carol);
}

#[test]
fn input_waiting_on_storage_is_still_processed_after_a_disconnect() {
    let mut server = server_with(
        TestServer::config().build().expect("valid config"),
        &["alice", "bob"],
    );
    let alice = server.login("alice", "r");
    let bob = server.login("bob", "r");
    server.send(bob, "<presence/>");
    server.take(bob);
    server.hold_requests(true);
    // Alice's presence needs her roster; the message behind it must wait.
    server.send(
        alice,
        "<presence/><message to='bob@localhost' type='chat'><body>bye</body></message>",
    );
    assert!(matches!(
        server.held_requests().as_slice(),
        [Request::LoadRoster { .. }]
    ));
    server.disconnect(alice);
    server.expect_nothing(bob);
    server.hold_requests(false);
    server.answer_all_held();
    server.expect(
        bob,
        &["<message to='bob@localhost' type='chat' from='alice@localhost/r'><body>bye</body></message>"],
    );
    assert!(
        server.manager.session(alice).is_none(),
        "cleaned up once its input was done"
    );
}

#[test]
fn elements_can_be_sent_and_the_cached_roster_is_visible() {
    let mut server = server_with(
        TestServer::config().build().expect("valid config"),
        &["alice"],
    );
    let alice = server.login("alice", "r");
    let bare = xmpp_session::jid::BareJid::new("alice@localhost").unwrap();
    assert!(
        server.manager.cached_roster(&bare).is_none(),
        "loaded on first need"
    );
    let get = xmpp_session::testkit::parse_stanza(
        "<iq type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>",
    );
    server.send_element(alice, &get);
    server.expect(
        alice,
        &["<iq type='result' id='g' to='alice@localhost/r'><query xmlns='jabber:iq:roster' ver='0'/></iq>"],
    );
    let roster = server
        .manager
        .cached_roster(&bare)
        .expect("cached while bound");
    assert!(roster.items.is_empty());
}
