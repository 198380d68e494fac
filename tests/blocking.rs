//! XEP-0191 blocking command transcripts: the blocklist iqs and their
//! pushes, routing in both directions with XEP-0016 JID matching, presence
//! on block and unblock, storage (loaded on demand, written in order) and
//! the size bound.

mod common;

use common::{Net, STANZAS, service_unavailable};
use xmpp_session::jid::BareJid;
use xmpp_session::roster::{RosterChange, RosterItem, Subscription};
use xmpp_session::testkit::{account, parse_stanza};
use xmpp_session::{Element, Request, Store};

const NS: &str = "urn:xmpp:blocking";

/// alice/a and alice/b (both available), bob/r (available); alice and bob
/// share presence both ways (roster `both`).
fn net() -> Net {
    let mut net = Net::new(&["alice", "bob", "carol"]);
    both(&mut net, "alice", "bob");
    net.online("alice", "a", Some(0));
    net.online("alice", "b", Some(0));
    net.online("bob", "r", Some(0));
    net.settle();
    net
}

/// Stores a mutual `both` subscription between two accounts.
fn both(net: &mut Net, user: &str, contact: &str) {
    for (u, c) in [(user, contact), (contact, user)] {
        let mut item = RosterItem::new(BareJid::new(&format!("{c}@localhost")).unwrap());
        item.subscription = Subscription::Both;
        let version = net
            .server
            .store
            .stored_roster(&account(u))
            .map_or(0, |r| r.version)
            + 1;
        net.server
            .store
            .change_roster(&account(u), version, &RosterChange::SetItem(item))
            .unwrap();
    }
}

fn iq(ty: &str, id: &str, payload: &str) -> String {
    format!("<iq type='{ty}' id='{id}'>{payload}</iq>")
}

fn block(jids: &[&str]) -> String {
    let items: String = jids.iter().map(|j| format!("<item jid='{j}'/>")).collect();
    format!("<block xmlns='{NS}'>{items}</block>")
}

fn unblock(jids: &[&str]) -> String {
    let items: String = jids.iter().map(|j| format!("<item jid='{j}'/>")).collect();
    format!("<unblock xmlns='{NS}'>{items}</unblock>")
}

fn result(to: &str, id: &str, payload: &str) -> String {
    format!("<iq id='{id}' to='{to}' type='result'>{payload}</iq>")
}

/// What a session received, serialised, with the random ids of pushes
/// replaced by `push`.
fn take_pushes(net: &mut Net, full: &str) -> Vec<String> {
    let id = net.id(full);
    net.take(id).iter().map(text).collect()
}

fn text(e: &Element) -> String {
    let s = String::from_utf8_lossy(&xmpp_session::stream::element_bytes(e)).into_owned();
    match s.find("id='push") {
        Some(at) => {
            let end = s[at + 4..].find('\'').map_or(s.len(), |e| at + 4 + e);
            format!("{}id='push{}", &s[..at], &s[end..])
        }
        None => s,
    }
}

fn push(to: &str, payload: &str) -> String {
    // Like roster pushes, blocklist pushes carry no `to`.
    let _ = to;
    text(&parse_stanza(&format!(
        "<iq id='push' type='set'>{payload}</iq>"
    )))
}

fn norm(xml: &str) -> String {
    text(&parse_stanza(xml))
}

/// The `not-acceptable` reply to a stanza for a blocked JID.
fn blocked_error(name: &str, from: &str, to: &str, id: &str) -> String {
    format!(
        "<{name} from='{from}' to='{to}' id='{id}' type='error'><error type='cancel'>\
         <not-acceptable xmlns='{STANZAS}'/><text xmlns='{STANZAS}'>You have blocked this JID</text>\
         <blocked xmlns='urn:xmpp:blocking:errors'/></error></{name}>"
    )
}

/// [`net`] after alice/a blocked `item`: the net, alice/a and bob/r.
fn blocking(item: &str) -> (Net, xmpp_session::SessionId, xmpp_session::SessionId) {
    let mut net = net();
    let (a, bob) = (net.id("alice@localhost/a"), net.id("bob@localhost/r"));
    net.send(a, &iq("set", "b1", &block(&[item])));
    net.settle();
    (net, a, bob)
}

/// `from` sends `sent`; it gets `reply` (if any) and nobody gets anything
/// else.
#[track_caller]
fn exchange(net: &mut Net, from: xmpp_session::SessionId, sent: &str, reply: Option<&str>) {
    net.send(from, sent);
    match reply {
        Some(r) => net.expect_only(&[(from, &[r])]),
        None => net.expect_only(&[]),
    }
}

#[test]
fn an_empty_blocklist_is_returned_and_only_the_asker_gets_the_answer() {
    let mut net = net();
    let a = net.id("alice@localhost/a");
    net.send(a, &iq("get", "g", &format!("<blocklist xmlns='{NS}'/>")));
    net.expect_only(&[(
        a,
        &[&result(
            "alice@localhost/a",
            "g",
            &format!("<blocklist xmlns='{NS}'/>"),
        )],
    )]);
}

#[test]
fn block_and_unblock_push_to_the_sessions_that_fetched_the_list() {
    let mut net = net();
    let (a, b) = (net.id("alice@localhost/a"), net.id("alice@localhost/b"));
    net.send(a, &iq("get", "g", &format!("<blocklist xmlns='{NS}'/>")));
    net.settle();
    // alice/b (which never fetched the list) blocks carol and a domain.
    net.send(
        b,
        &iq("set", "b1", &block(&["carol@localhost", "example.org"])),
    );
    assert_eq!(
        take_pushes(&mut net, "alice@localhost/b"),
        vec![norm(&result("alice@localhost/b", "b1", ""))]
    );
    assert_eq!(
        take_pushes(&mut net, "alice@localhost/a"),
        vec![push(
            "alice@localhost/a",
            &block(&["carol@localhost", "example.org"])
        )]
    );
    net.expect_only(&[]);
    // The list, in blocking order; alice/b now gets pushes too.
    net.send(b, &iq("get", "g2", &format!("<blocklist xmlns='{NS}'/>")));
    net.expect_only(&[(
        b,
        &[&result(
            "alice@localhost/b",
            "g2",
            &format!(
                "<blocklist xmlns='{NS}'><item jid='carol@localhost'/><item jid='example.org'/></blocklist>"
            ),
        )],
    )]);
    // Blocking what is already blocked: a result, no push.
    net.send(a, &iq("set", "b2", &block(&["carol@localhost"])));
    net.expect_only(&[(a, &[&result("alice@localhost/a", "b2", "")])]);
    // Unblocking one.
    net.send(a, &iq("set", "u1", &unblock(&["example.org"])));
    assert_eq!(
        take_pushes(&mut net, "alice@localhost/a"),
        vec![
            norm(&result("alice@localhost/a", "u1", "")),
            push("alice@localhost/a", &unblock(&["example.org"]))
        ]
    );
    assert_eq!(
        take_pushes(&mut net, "alice@localhost/b"),
        vec![push("alice@localhost/b", &unblock(&["example.org"]))]
    );
    // Unblocking everything: an empty unblock push.
    net.send(a, &iq("set", "u2", &unblock(&[])));
    assert_eq!(
        take_pushes(&mut net, "alice@localhost/a"),
        vec![
            norm(&result("alice@localhost/a", "u2", "")),
            push("alice@localhost/a", &unblock(&[]))
        ]
    );
    assert_eq!(
        take_pushes(&mut net, "alice@localhost/b"),
        vec![push("alice@localhost/b", &unblock(&[]))]
    );
    net.expect_only(&[]);
    assert!(
        net.server
            .store
            .stored_blocklist(&account("alice"))
            .is_empty()
    );
}

#[test]
fn invalid_requests_are_refused() {
    let mut net = Net::with_config(
        xmpp_session::testkit::TestServer::config()
            .max_blocklist_items(2)
            .build()
            .unwrap(),
        &["alice"],
    );
    let a = net.online("alice", "a", Some(0));
    net.settle();
    for (payload, error) in [
        (
            block(&[]),
            format!(
                "<error type='modify'><bad-request xmlns='{STANZAS}'/><text xmlns='{STANZAS}'>No JID to block</text></error>"
            ),
        ),
        (
            block(&["a@b@c"]),
            format!("<error type='modify'><jid-malformed xmlns='{STANZAS}'/></error>"),
        ),
        (
            unblock(&["@"]),
            format!("<error type='modify'><jid-malformed xmlns='{STANZAS}'/></error>"),
        ),
        (
            block(&["x@localhost", "y@localhost", "z@localhost"]),
            format!(
                "<error type='wait'><resource-constraint xmlns='{STANZAS}'/><text xmlns='{STANZAS}'>Too many blocked JIDs</text></error>"
            ),
        ),
    ] {
        net.send(a, &iq("set", "e", &payload));
        net.expect_only(&[(
            a,
            &[&format!(
                "<iq id='e' to='alice@localhost/a' type='error'>{error}</iq>"
            )],
        )]);
    }
    // Two fit.
    net.send(a, &iq("set", "ok", &block(&["x@localhost", "y@localhost"])));
    net.expect_only(&[(a, &[&result("alice@localhost/a", "ok", "")])]);
    // Someone else's blocklist is not served.
    net.send(
        a,
        &format!("<iq type='get' id='o' to='bob@localhost'><blocklist xmlns='{NS}'/></iq>"),
    );
    net.expect_only(&[(
        a,
        &[&service_unavailable(
            "iq",
            Some("bob@localhost"),
            "alice@localhost/a",
            "o",
        )],
    )]);
}

#[test]
fn blocking_sends_unavailable_and_unblocking_sends_current_presence() {
    let mut net = net();
    let (a, bob) = (net.id("alice@localhost/a"), net.id("bob@localhost/r"));
    let b = net.id("alice@localhost/b");
    net.send(a, &iq("set", "b1", &block(&["bob@localhost"])));
    net.expect_only(&[
        (a, &[&result("alice@localhost/a", "b1", "")]),
        (
            bob,
            &[
                "<presence type='unavailable' from='alice@localhost/a' to='bob@localhost'/>",
                "<presence type='unavailable' from='alice@localhost/b' to='bob@localhost'/>",
            ],
        ),
    ]);
    // alice's presence changes no longer reach bob (but reach alice/a).
    net.send(b, "<presence><show>away</show></presence>");
    net.expect_only(&[
        (b, &["<presence from='alice@localhost/b'><show>away</show></presence>"]),
        (
            a,
            &["<presence from='alice@localhost/b' to='alice@localhost/a'><show>away</show></presence>"],
        ),
    ]);
    // bob's presence no longer reaches alice.
    net.send(bob, "<presence><show>dnd</show></presence>");
    net.expect_only(&[(
        bob,
        &["<presence from='bob@localhost/r'><show>dnd</show></presence>"],
    )]);
    net.send(a, &iq("set", "u1", &unblock(&["bob@localhost"])));
    net.expect_only(&[
        (a, &[&result("alice@localhost/a", "u1", "")]),
        (
            bob,
            &[
                &format!(
                    "<presence from='alice@localhost/a' to='bob@localhost'><priority>0</priority><delay xmlns='urn:xmpp:delay' from='localhost' stamp='{}'/></presence>",
                    common::STAMP
                ),
                &format!(
                    "<presence from='alice@localhost/b' to='bob@localhost'><show>away</show><delay xmlns='urn:xmpp:delay' from='localhost' stamp='{}'/></presence>",
                    common::STAMP
                ),
            ],
        ),
    ]);
}

#[test]
fn blocking_someone_who_does_not_see_the_users_presence_sends_nothing_to_them() {
    let mut net = net();
    let (a, carol) = (
        net.id("alice@localhost/a"),
        net.online("carol", "r", Some(0)),
    );
    net.settle();
    net.send(a, &iq("set", "b1", &block(&["carol@localhost"])));
    net.expect_only(&[(a, &[&result("alice@localhost/a", "b1", "")])]);
    net.send(a, &iq("set", "u1", &unblock(&["carol@localhost"])));
    net.expect_only(&[(a, &[&result("alice@localhost/a", "u1", "")])]);
    let _ = carol;
}

#[test]
fn the_user_cannot_send_to_a_blocked_jid() {
    let (mut net, a, bob) = blocking("bob@localhost");
    for (sent, reply) in [
        (
            "<message to='bob@localhost' type='chat' id='m1'><body>hi</body></message>",
            Some(blocked_error(
                "message",
                "bob@localhost",
                "alice@localhost/a",
                "m1",
            )),
        ),
        (
            "<message to='bob@localhost/r' id='m2'><body>hi</body></message>",
            Some(blocked_error(
                "message",
                "bob@localhost/r",
                "alice@localhost/a",
                "m2",
            )),
        ),
        (
            "<iq to='bob@localhost/r' type='get' id='i1'><ping xmlns='urn:xmpp:ping'/></iq>",
            Some(blocked_error(
                "iq",
                "bob@localhost/r",
                "alice@localhost/a",
                "i1",
            )),
        ),
        ("<iq to='bob@localhost/r' type='result' id='i2'/>", None),
        (
            "<message to='bob@localhost' type='error' id='e'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
            None,
        ),
        ("<presence to='bob@localhost/r'/>", None),
        ("<presence to='bob@localhost' type='probe'/>", None),
    ] {
        exchange(&mut net, a, sent, reply.as_deref());
    }
    let _ = bob;
}

#[test]
fn nothing_from_a_blocked_jid_reaches_the_user() {
    let (mut net, a, bob) = blocking("bob@localhost/r");
    for (sent, reply) in [
        (
            "<message to='alice@localhost' type='chat' id='m1'/>",
            Some(service_unavailable(
                "message",
                Some("alice@localhost"),
                "bob@localhost/r",
                "m1",
            )),
        ),
        (
            "<message to='alice@localhost/a' type='headline' id='m2'><body>x</body></message>",
            Some(service_unavailable(
                "message",
                Some("alice@localhost/a"),
                "bob@localhost/r",
                "m2",
            )),
        ),
        (
            "<iq to='alice@localhost/a' type='get' id='i1'><ping xmlns='urn:xmpp:ping'/></iq>",
            Some(service_unavailable(
                "iq",
                Some("alice@localhost/a"),
                "bob@localhost/r",
                "i1",
            )),
        ),
        (
            "<iq to='alice@localhost' type='get' id='i2'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
            Some(service_unavailable(
                "iq",
                Some("alice@localhost"),
                "bob@localhost/r",
                "i2",
            )),
        ),
        ("<iq to='alice@localhost/a' type='result' id='i3'/>", None),
        ("<presence to='alice@localhost/a'/>", None),
    ] {
        exchange(&mut net, bob, sent, reply.as_deref());
    }
    // The item names bob/r only: subscription stanzas (sent from the bare
    // JID) and another resource of bob's get through.
    let other = net.online("bob", "s", Some(0));
    net.settle();
    net.send(
        other,
        "<message to='alice@localhost/a' type='chat' id='ok'><body>hi</body></message>",
    );
    net.expect_only(&[(
        a,
        &["<message from='bob@localhost/s' to='alice@localhost/a' type='chat' id='ok'><body>hi</body></message>"],
    )]);
}

#[test]
fn a_domain_item_blocks_everyone_there_and_routed_stanzas_too() {
    let mut net = net();
    let a = net.id("alice@localhost/a");
    net.send(a, &iq("set", "b1", &block(&["example.org"])));
    net.settle();
    net.send(
        a,
        "<message to='juliet@example.org/x' type='chat' id='m1'><body>hi</body></message>",
    );
    net.expect_only(&[(
        a,
        &[&blocked_error(
            "message",
            "juliet@example.org/x",
            "alice@localhost/a",
            "m1",
        )],
    )]);
    net.server.manager.handle_routed(
        parse_stanza("<message from='juliet@example.org/x' to='alice@localhost/a' type='chat' id='r1'><body>hi</body></message>"),
        net.server.now(),
    );
    net.server.pump();
    net.expect_routed(&[&service_unavailable(
        "message",
        Some("alice@localhost/a"),
        "juliet@example.org/x",
        "r1",
    )]);
    net.expect_only(&[]);
}

#[test]
fn the_list_is_stored_and_loaded_for_offline_users() {
    let mut net = net();
    let (a, b, bob) = (
        net.id("alice@localhost/a"),
        net.id("alice@localhost/b"),
        net.id("bob@localhost/r"),
    );
    net.send(a, &iq("set", "b1", &block(&["bob@localhost"])));
    net.settle();
    assert_eq!(
        net.server
            .store
            .stored_blocklist(&account("alice"))
            .iter()
            .map(|j| j.as_str())
            .collect::<Vec<_>>(),
        ["bob@localhost"]
    );
    // alice goes offline: bob's message is refused, not stored.
    net.disconnect(a);
    net.disconnect(b);
    net.settle();
    net.send(
        bob,
        "<message to='alice@localhost' type='chat' id='m1'><body>hi</body></message>",
    );
    net.expect_only(&[(
        bob,
        &[&service_unavailable(
            "message",
            Some("alice@localhost"),
            "bob@localhost/r",
            "m1",
        )],
    )]);
    net.expect_stored("alice", &[]);
}

#[test]
fn writes_go_to_storage_one_at_a_time_in_order() {
    let mut net = net();
    let a = net.id("alice@localhost/a");
    net.server.hold_requests(true);
    net.send(a, &iq("set", "b1", &block(&["x@localhost"])));
    net.send(a, &iq("set", "b2", &block(&["y@localhost"])));
    net.send(a, &iq("set", "u1", &unblock(&["x@localhost"])));
    let held = |net: &Net| -> Vec<String> {
        net.server
            .held_requests()
            .iter()
            .map(|r| match r {
                Request::BlocklistChanged { change, .. } => format!("{change:?}"),
                other => format!("{other:?}"),
            })
            .collect()
    };
    assert_eq!(held(&net).len(), 1, "{:?}", held(&net));
    // The answers went out at once: writes hold nothing up.
    assert_eq!(net.take(a).len(), 3);
    for _ in 0..3 {
        assert_eq!(held(&net).len(), 1);
        net.server.answer_held(&[0]);
    }
    assert!(held(&net).is_empty());
    assert_eq!(
        net.server
            .store
            .stored_blocklist(&account("alice"))
            .iter()
            .map(|j| j.as_str())
            .collect::<Vec<_>>(),
        ["y@localhost"]
    );
}

#[test]
fn what_a_client_sends_before_its_blocklist_is_loaded_waits_for_it() {
    let mut net = Net::new(&["alice", "bob"]);
    let bob = net.online("bob", "r", Some(0));
    net.server
        .store
        .change_blocklist(
            &account("alice"),
            &xmpp_session::BlocklistChange::Block(vec![
                xmpp_session::jid::Jid::new("bob@localhost").unwrap(),
            ]),
        )
        .unwrap();
    let a = net.server.connect();
    net.server.authenticate_plain(a, "alice", "pass");
    net.server.hold_requests(true);
    net.server.bind(a, Some("a"));
    // The bind asked for the blocklist; alice's message waits behind it.
    assert!(
        matches!(
            net.server.held_requests().as_slice(),
            [Request::LoadBlocklist { .. }]
        ),
        "{:?}",
        net.server.held_requests()
    );
    net.server.send(
        a,
        "<message to='bob@localhost' type='chat' id='early'><body>hi</body></message>",
    );
    assert!(net.server.take(a).is_empty());
    assert!(net.server.take(bob).is_empty());
    net.server.hold_requests(false);
    net.server.answer_all_held();
    let got = net.server.take(a);
    assert_eq!(
        got,
        vec![parse_stanza(&blocked_error(
            "message",
            "bob@localhost",
            "alice@localhost/a",
            "early"
        ))]
    );
    assert!(net.server.take(bob).is_empty());
}
