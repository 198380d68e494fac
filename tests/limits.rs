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

fn chat(server: &mut TestServer, from: SessionId, to: &str, id: &str, body: &str) {
    server.send(
        from,
        &format!("<message to='{to}' type='chat' id='{id}'><body>{body}</body></message>"),
    );
}

/// The sender's error for a message refused by a full offline store.
fn offline_full(id: &str) -> String {
    format!(
        "<message from='bob@localhost' to='alice@localhost/r' type='error' id='{id}'>\
         <error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>The recipient's offline storage is full</text>\
         </error></message>"
    )
}

fn stored_bodies(server: &TestServer, user: &str) -> Vec<String> {
    server
        .store
        .offline_messages(&account(user))
        .iter()
        .map(|m| {
            m.get_child("body", "jabber:client")
                .map(|b| b.text())
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn offline_messages_beyond_the_count_quota_are_refused_with_resource_constraint() {
    let config = TestServer::config()
        .max_offline_messages(2)
        .build()
        .expect("valid config");
    let mut server = server_with(config, &["alice", "bob"]);
    let alice = server.login("alice", "r");
    server.take(alice);
    chat(&mut server, alice, "bob@localhost", "m1", "one");
    chat(&mut server, alice, "bob@localhost", "m2", "two");
    server.expect_nothing(alice);
    chat(&mut server, alice, "bob@localhost", "m3", "three");
    server.expect(alice, &[&offline_full("m3")]);
    assert_eq!(stored_bodies(&server, "bob"), ["one", "two"]);

    // Once bob has taken his messages the quota is free again.
    let bob = server.login("bob", "b");
    server.send(bob, "<presence/>");
    let got = server.take(bob);
    let bodies: Vec<String> = got
        .iter()
        .filter_map(|e| e.get_child("body", "jabber:client").map(|b| b.text()))
        .collect();
    assert_eq!(bodies, ["one", "two"]);
    server.disconnect(bob);
    server.take(alice);
    chat(&mut server, alice, "bob@localhost", "m4", "four");
    server.expect_nothing(alice);
    assert_eq!(stored_bodies(&server, "bob"), ["four"]);
}

#[test]
fn offline_messages_beyond_the_byte_quota_are_refused() {
    // A stored chat here is about 200 bytes (with its <delay/>): 500 bytes
    // take two small ones, not a third, but a big one never.
    let config = TestServer::config()
        .max_offline_bytes(500)
        .build()
        .expect("valid config");
    let mut server = server_with(config, &["alice", "bob"]);
    let alice = server.login("alice", "r");
    server.take(alice);
    chat(&mut server, alice, "bob@localhost", "big", &"x".repeat(400));
    server.expect(alice, &[&offline_full("big")]);
    assert!(stored_bodies(&server, "bob").is_empty());
    chat(&mut server, alice, "bob@localhost", "m1", "one");
    chat(&mut server, alice, "bob@localhost", "m2", "two");
    server.expect_nothing(alice);
    let held = server.store.offline_bytes(&account("bob"));
    let serialized: usize = server
        .store
        .offline_messages(&account("bob"))
        .iter()
        .map(|m| xmpp_session::stream::element_bytes(m).len())
        .sum();
    assert_eq!(held, serialized, "the store counts serialized bytes");
    assert!(held > 250 && held <= 500, "{held}");
    chat(&mut server, alice, "bob@localhost", "m3", "three");
    server.expect(alice, &[&offline_full("m3")]);
    assert_eq!(stored_bodies(&server, "bob"), ["one", "two"]);
}

#[test]
fn offline_quota_defaults_and_zero_is_refused() {
    let config = TestServer::config().build().expect("valid config");
    assert_eq!(config.max_offline_messages(), 100);
    assert_eq!(config.max_offline_bytes(), 1 << 20);
    for config in [
        TestServer::config().max_offline_messages(0).build(),
        TestServer::config().max_offline_bytes(0).build(),
    ] {
        assert!(matches!(
            config,
            Err(xmpp_session::ConfigError::Zero { .. })
        ));
    }
}

fn small_roster_server(users: &[&str]) -> TestServer {
    let config = TestServer::config()
        .max_roster_items(2)
        .build()
        .expect("valid config");
    server_with(config, users)
}

const ROSTER_FULL: &str = "<error type='wait'><resource-constraint \
    xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text \
    xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>The roster is full</text></error>";

#[test]
fn outbound_subscribe_and_pre_approval_beyond_the_roster_bound_are_refused() {
    let mut server = small_roster_server(&["alice"]);
    let alice = server.login("alice", "r");
    roster_set(&mut server, alice, 1, "a@example.org");
    roster_set(&mut server, alice, 2, "b@example.org");
    server.take(alice);
    server.take_routed();
    for (ty, id) in [("subscribe", "p1"), ("subscribed", "p2")] {
        server.send(
            alice,
            &format!("<presence to='c@example.org' type='{ty}' id='{id}'/>"),
        );
        server.expect(
            alice,
            &[&format!(
                "<presence from='c@example.org' to='alice@localhost/r' type='error' \
                 id='{id}'>{ROSTER_FULL}</presence>"
            )],
        );
        assert!(server.take_routed().is_empty(), "{ty} routed");
    }
    let stored = server
        .store
        .stored_roster(&account("alice"))
        .expect("stored");
    assert_eq!(stored.items.len(), 2);
    // A subscription to a contact already on the roster adds nothing: sent.
    server.send(alice, "<presence to='a@example.org' type='subscribe'/>");
    let routed = server.take_routed();
    assert_eq!(routed.len(), 1, "{routed:?}");
    assert_eq!(routed[0].attr("type"), Some("subscribe"));
}

#[test]
fn inbound_requests_count_against_the_roster_bound_and_are_dropped_beyond_it() {
    let mut server = small_roster_server(&["alice", "bob", "carol", "dave"]);
    let alice = server.login("alice", "r");
    server.send(alice, "<presence/>");
    roster_set(&mut server, alice, 1, "a@example.org");
    server.take(alice);
    let bob = server.login("bob", "r");
    server.send(bob, "<presence to='alice@localhost' type='subscribe'/>");
    server.expect(
        alice,
        &["<presence from='bob@localhost' to='alice@localhost' type='subscribe'/>"],
    );
    // One item and one pending request: full. Carol's request is dropped.
    let carol = server.login("carol", "r");
    server.send(carol, "<presence to='alice@localhost' type='subscribe'/>");
    server.expect_nothing(alice);
    let stored = server
        .store
        .stored_roster(&account("alice"))
        .expect("stored");
    assert_eq!(stored.items.len(), 1);
    assert_eq!(stored.pending_in.len(), 1);
    // And the pending request counts against roster sets too.
    roster_set(&mut server, alice, 2, "dave@localhost");
    server.expect(
        alice,
        &[&format!(
            "<iq type='error' id='s2' to='alice@localhost/r'>{ROSTER_FULL}</iq>"
        )],
    );
}

fn roster_set_raw(server: &mut TestServer, id: SessionId, item: &str) {
    server.send(
        id,
        &format!("<iq type='set' id='b'><query xmlns='jabber:iq:roster'>{item}</query></iq>"),
    );
}

fn not_acceptable(text: &str) -> String {
    format!(
        "<iq type='error' id='b' to='alice@localhost/r'><error type='modify'><not-acceptable \
         xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text \
         xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>{text}</text></error></iq>"
    )
}

#[test]
fn roster_item_names_and_groups_are_bounded_in_bytes_and_count() {
    let config = TestServer::config()
        .max_roster_name_bytes(8)
        .max_roster_group_bytes(6)
        .max_roster_groups_per_item(2)
        .build()
        .expect("valid config");
    let mut server = server_with(config, &["alice"]);
    let alice = server.login("alice", "r");
    server.take(alice);
    let refused: [(&str, &str); 4] = [
        (
            "<item jid='a@example.org' name='123456789'/>",
            "Name too long",
        ),
        // Bytes, not characters: four two-byte characters are 8 bytes, five
        // are 10.
        ("<item jid='a@example.org' name='ééééé'/>", "Name too long"),
        (
            "<item jid='a@example.org'><group>1234567</group></item>",
            "Group name too long",
        ),
        (
            "<item jid='a@example.org'><group>a</group><group>b</group><group>c</group></item>",
            "Too many groups",
        ),
    ];
    for (item, text) in refused {
        roster_set_raw(&mut server, alice, item);
        server.expect(alice, &[&not_acceptable(text)]);
    }
    assert!(
        server.store.stored_roster(&account("alice")).is_none(),
        "a refused item was stored"
    );
    // At the bounds: accepted.
    roster_set_raw(
        &mut server,
        alice,
        "<item jid='a@example.org' name='éééé'><group>123456</group><group>b</group></item>",
    );
    let got = server.take(alice);
    assert_eq!(got.first().and_then(|e| e.attr("type")), Some("result"));
    let stored = server
        .store
        .stored_roster(&account("alice"))
        .expect("stored");
    assert_eq!(stored.items.len(), 1);
}

#[test]
fn roster_byte_bounds_have_documented_defaults() {
    let config = TestServer::config().build().expect("valid config");
    assert_eq!(config.max_roster_name_bytes(), 256);
    assert_eq!(config.max_roster_group_bytes(), 256);
    assert_eq!(config.max_roster_groups_per_item(), 16);
}

/// The bytes a stored chat from alice to bob with id `mNN` and a body of
/// `len` (at least 1) plain letters takes: measured with a one-letter body.
fn stored_chat_size(len: usize) -> usize {
    let mut server = server_with(
        TestServer::config().build().expect("valid config"),
        &["alice", "bob"],
    );
    let alice = server.login("alice", "r");
    chat(&mut server, alice, "bob@localhost", "m00", "b");
    server.store.offline_bytes(&account("bob")) - 1 + len
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Whatever the quota and the message sizes, the store never holds more
    /// than the quota, and a message is refused exactly when it would not
    /// fit; the sender then gets resource-constraint.
    #[test]
    fn the_offline_quota_is_never_exceeded_and_refuses_only_what_does_not_fit(
        max_messages in 1usize..6,
        max_bytes in 200usize..1500,
        bodies in proptest::collection::vec(1usize..600, 1..12),
    ) {
        let config = TestServer::config()
            .max_offline_messages(max_messages)
            .max_offline_bytes(max_bytes)
            .build()
            .expect("valid config");
        let mut server = server_with(config, &["alice", "bob"]);
        let alice = server.login("alice", "r");
        server.take(alice);
        for (i, len) in bodies.iter().enumerate() {
            let count = server.store.offline_messages(&account("bob")).len();
            let bytes = server.store.offline_bytes(&account("bob"));
            let size = stored_chat_size(*len);
            let fits = count < max_messages && bytes + size <= max_bytes;
            let id = format!("m{i:02}");
            chat(&mut server, alice, "bob@localhost", &id, &"b".repeat(*len));
            let after = server.store.offline_messages(&account("bob")).len();
            let after_bytes = server.store.offline_bytes(&account("bob"));
            proptest::prop_assert!(after <= max_messages && after_bytes <= max_bytes);
            let got: Vec<String> = server.take(alice).iter().map(String::from).collect();
            if fits {
                proptest::prop_assert!(got.is_empty(), "{:?}", got);
                proptest::prop_assert_eq!((after, after_bytes), (count + 1, bytes + size));
            } else {
                let want = String::from(&xmpp_session::testkit::parse_stanza(&offline_full(&id)));
                proptest::prop_assert_eq!(got, vec![want]);
                proptest::prop_assert_eq!((after, after_bytes), (count, bytes));
            }
        }
    }
}
