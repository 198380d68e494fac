//! Presence delivery transcripts (RFC 6121 §4.6, §8.5; Prosody reference
//! §4.7, §5.2, §5.8): directed presence to full and bare JIDs, broadcast to
//! the user's own resources, invalid types and probes of the server.
//! Subscriptions are covered elsewhere.

mod common;

use common::{Net, STAMP, STANZAS, error_reply};
use xmpp_session::testkit::parse_stanza;

const ALICE: &str = "alice@localhost/r";

fn net() -> Net {
    let mut net = Net::new(&["alice", "bob"]);
    net.online("alice", "r", Some(0));
    net
}

#[test]
fn directed_presence_to_a_full_jid_reaches_that_resource_whatever_its_state() {
    let mut net = net();
    let alice = net.id(ALICE);
    let one = net.connect("bob", "one");
    let two = net.online("bob", "two", Some(-1));
    let three = net.online("bob", "three", Some(9));
    for (res, sid) in [("one", one), ("two", two), ("three", three)] {
        net.send(
            alice,
            &format!("<presence to='bob@localhost/{res}'><show>dnd</show></presence>"),
        );
        let want = format!(
            "<presence from='{ALICE}' to='bob@localhost/{res}'><show>dnd</show></presence>"
        );
        net.expect_only(&[(sid, &[&want])]);
        net.send(
            alice,
            &format!("<presence to='bob@localhost/{res}' type='unavailable'/>"),
        );
        let want =
            format!("<presence from='{ALICE}' to='bob@localhost/{res}' type='unavailable'/>");
        net.expect_only(&[(sid, &[&want])]);
    }
}

#[test]
fn directed_presence_to_a_bare_jid_reaches_every_available_resource() {
    let mut net = net();
    let alice = net.id(ALICE);
    net.connect("bob", "idle");
    let neg = net.online("bob", "neg", Some(-7));
    let high = net.online("bob", "high", Some(7));
    net.send(
        alice,
        "<presence to='bob@localhost' id='d1'><status>here</status></presence>",
    );
    let want = format!(
        "<presence from='{ALICE}' to='bob@localhost' id='d1'><status>here</status></presence>"
    );
    net.expect_only(&[(neg, &[&want]), (high, &[&want])]);
    net.send(
        alice,
        "<presence to='BOB@localhost' type='unavailable' id='d2'/>",
    );
    let want = format!("<presence from='{ALICE}' to='bob@localhost' type='unavailable' id='d2'/>");
    net.expect_only(&[(neg, &[&want]), (high, &[&want])]);
}

#[test]
fn directed_presence_without_a_recipient_is_dropped() {
    let mut net = net();
    let alice = net.id(ALICE);
    // bob connected but not available: nothing for his bare JID.
    net.connect("bob", "idle");
    net.send(alice, "<presence to='bob@localhost'/>");
    net.quiet();
    // A resource that does not exist.
    net.online("bob", "one", Some(1));
    for to in [
        "bob@localhost/gone",
        "nobody@localhost",
        "nobody@localhost/x",
    ] {
        net.send(alice, &format!("<presence to='{to}'/>"));
        net.quiet();
        net.send(alice, &format!("<presence to='{to}' type='unavailable'/>"));
        net.quiet();
    }
}

#[test]
fn error_presence_is_delivered_to_a_full_jid_and_childless_ones_dropped() {
    let mut net = net();
    let alice = net.id(ALICE);
    let one = net.online("bob", "one", None);
    let err = format!("<error type='cancel'><remote-server-not-found xmlns='{STANZAS}'/></error>");
    net.send(
        alice,
        &format!("<presence to='bob@localhost/one' type='error'>{err}</presence>"),
    );
    let want =
        format!("<presence from='{ALICE}' to='bob@localhost/one' type='error'>{err}</presence>");
    net.expect_only(&[(one, &[&want])]);
    net.send(alice, "<presence to='bob@localhost/one' type='error'/>");
    net.quiet();
}

#[test]
fn initial_presence_is_reflected_and_sent_to_available_siblings() {
    let mut net = Net::new(&["alice"]);
    let r = net.online("alice", "r", Some(1));
    // Connected but unavailable: gets nothing.
    net.connect("alice", "idle");
    let t = net.online("alice", "t", Some(-2));
    let u = net.connect("alice", "u");
    net.send(
        u,
        "<presence id='i'><priority>2</priority><status>hi</status></presence>",
    );
    let own = "<presence from='alice@localhost/u' id='i'><priority>2</priority><status>hi</status></presence>";
    let r_presence = format!(
        "<presence from='alice@localhost/r' to='alice@localhost/u'><priority>1</priority><delay xmlns='urn:xmpp:delay' from='localhost' stamp='{STAMP}'/></presence>"
    );
    let t_presence = format!(
        "<presence from='alice@localhost/t' to='alice@localhost/u'><priority>-2</priority><delay xmlns='urn:xmpp:delay' from='localhost' stamp='{STAMP}'/></presence>"
    );
    net.expect_only(&[
        (u, &[own, &r_presence, &t_presence]),
        (r, &["<presence from='alice@localhost/u' to='alice@localhost/r' id='i'><priority>2</priority><status>hi</status></presence>"]),
        (t, &["<presence from='alice@localhost/u' to='alice@localhost/t' id='i'><priority>2</priority><status>hi</status></presence>"]),
    ]);
    // An update is reflected and broadcast, but the siblings' presence is
    // not sent again.
    net.send(u, "<presence><show>away</show></presence>");
    net.expect_only(&[
        (u, &["<presence from='alice@localhost/u'><show>away</show></presence>"]),
        (r, &["<presence from='alice@localhost/u' to='alice@localhost/r'><show>away</show></presence>"]),
        (t, &["<presence from='alice@localhost/u' to='alice@localhost/t'><show>away</show></presence>"]),
    ]);
    // The same through the own bare JID.
    net.send(
        u,
        "<presence to='alice@localhost'><show>xa</show></presence>",
    );
    net.expect_only(&[
        (u, &["<presence from='alice@localhost/u'><show>xa</show></presence>"]),
        (r, &["<presence from='alice@localhost/u' to='alice@localhost/r'><show>xa</show></presence>"]),
        (t, &["<presence from='alice@localhost/u' to='alice@localhost/t'><show>xa</show></presence>"]),
    ]);
    // Going unavailable: reflected and sent to the available siblings.
    net.send(u, "<presence type='unavailable'/>");
    net.expect_only(&[
        (
            u,
            &["<presence from='alice@localhost/u' type='unavailable'/>"],
        ),
        (
            r,
            &["<presence from='alice@localhost/u' to='alice@localhost/r' type='unavailable'/>"],
        ),
        (
            t,
            &["<presence from='alice@localhost/u' to='alice@localhost/t' type='unavailable'/>"],
        ),
    ]);
}

#[test]
fn subscription_types_and_probes_without_to_are_bad_requests() {
    let mut net = net();
    let alice = net.id(ALICE);
    for (ty, to) in [
        ("subscribe", None),
        ("subscribed", None),
        ("unsubscribe", None),
        ("unsubscribed", None),
        ("probe", None),
        ("bogus", None),
        ("subscribe", Some("alice@localhost")),
        ("probe", Some("Alice@localhost")),
    ] {
        let to_attr = to.map(|t| format!(" to='{t}'")).unwrap_or_default();
        net.send(alice, &format!("<presence{to_attr} type='{ty}' id='b'/>"));
        // The own bare JID is removed from `to`, so no reply `from`.
        let error = error_reply(
            "presence",
            None,
            ALICE,
            Some("b"),
            "modify",
            "bad-request",
            Some("Invalid presence type"),
        );
        net.expect_only(&[(alice, &[&error])]);
    }
    // An unknown type to someone else is refused the same way.
    net.online("bob", "one", None);
    net.send(alice, "<presence to='bob@localhost' type='bogus' id='c'/>");
    let error = error_reply(
        "presence",
        Some("bob@localhost"),
        ALICE,
        Some("c"),
        "modify",
        "bad-request",
        Some("Invalid presence type"),
    );
    net.expect_only(&[(alice, &[&error])]);
}

#[test]
fn probe_of_the_server_domain_is_answered_with_available_presence() {
    let mut net = net();
    let alice = net.id(ALICE);
    net.connect("alice", "idle");
    let s = net.online("alice", "s", Some(-1));
    net.send(alice, "<presence to='localhost' type='probe' id='pr'/>");
    // Sent to the bare JID: every available resource gets it.
    let want = "<presence from='localhost' to='alice@localhost' id='pr'/>";
    net.expect_only(&[(alice, &[want]), (s, &[want])]);
    // Other presence to the domain is swallowed.
    net.send(alice, "<presence to='localhost'/>");
    net.quiet();
    net.send(alice, "<presence to='localhost' type='unavailable'/>");
    net.quiet();
}

#[test]
fn presence_to_the_domain_can_be_claimed_by_the_embedder() {
    let mut net = net();
    let alice = net.id(ALICE);
    net.manager.register_presence_to_host();
    net.send(
        alice,
        "<presence to='localhost'><status>x</status></presence>",
    );
    assert_eq!(
        net.take_stanza_events(),
        vec![(
            Some(alice),
            parse_stanza(
                "<presence from='alice@localhost/r' to='localhost'><status>x</status></presence>"
            )
        )]
    );
    net.quiet();
    // Probes are still answered by the server.
    net.send(alice, "<presence to='localhost' type='probe'/>");
    net.expect_only(&[(
        alice,
        &["<presence from='localhost' to='alice@localhost'/>"],
    )]);
}

#[test]
fn directed_presence_is_withdrawn_when_going_unavailable() {
    let mut net = net();
    let alice = net.id(ALICE);
    let one = net.connect("bob", "one");
    net.send(alice, "<presence to='bob@localhost/one'/>");
    net.expect_only(&[(
        one,
        &["<presence from='alice@localhost/r' to='bob@localhost/one'/>"],
    )]);
    net.send(alice, "<presence type='unavailable'/>");
    net.expect_only(&[
        (
            alice,
            &["<presence from='alice@localhost/r' type='unavailable'/>"],
        ),
        (
            one,
            &["<presence from='alice@localhost/r' to='bob@localhost/one' type='unavailable'/>"],
        ),
    ]);
}

#[test]
fn presence_to_a_remote_domain_is_routed_out() {
    let mut net = net();
    let alice = net.id(ALICE);
    net.send(alice, "<presence to='Juliet@Remote.Example/Balcony'/>");
    net.expect_routed(&["<presence from='alice@localhost/r' to='juliet@remote.example/Balcony'/>"]);
    net.quiet();
}

#[test]
fn routed_presence_follows_the_same_rules() {
    let mut net = Net::new(&["bob"]);
    let idle = net.connect("bob", "idle");
    let one = net.online("bob", "one", Some(-1));
    let romeo = "romeo@remote.example/o";
    let now = net.now();
    let deliver = |net: &mut Net, xml: &str| {
        net.manager.handle_routed(parse_stanza(xml), now);
        net.server.pump();
    };
    deliver(
        &mut net,
        &format!("<presence from='{romeo}' to='bob@localhost/idle'/>"),
    );
    net.expect_only(&[(
        idle,
        &[&format!(
            "<presence from='{romeo}' to='bob@localhost/idle'/>"
        )],
    )]);
    deliver(
        &mut net,
        &format!("<presence from='{romeo}' to='bob@localhost'/>"),
    );
    net.expect_only(&[(
        one,
        &[&format!("<presence from='{romeo}' to='bob@localhost'/>")],
    )]);
    deliver(
        &mut net,
        &format!("<presence from='{romeo}' to='bob@localhost/gone' type='unavailable'/>"),
    );
    net.quiet();
    deliver(
        &mut net,
        &format!("<presence from='{romeo}' to='nobody@localhost'/>"),
    );
    net.quiet();
    deliver(
        &mut net,
        &format!("<presence from='{romeo}' to='x@elsewhere.example'/>"),
    );
    net.quiet();
}
