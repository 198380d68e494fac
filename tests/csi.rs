//! XEP-0352 client state indication transcripts: what an inactive client's
//! output holds back, how presence is coalesced, and every flush trigger
//! (important stanza, queue bound, client input, `<active/>`, stream close).

mod common;

use common::Net;
use xmpp_session::csi::CsiClass;
use xmpp_session::testkit::TestServer;

const INACTIVE: &str = "<inactive xmlns='urn:xmpp:csi:0'/>";
const ACTIVE: &str = "<active xmlns='urn:xmpp:csi:0'/>";

/// alice/a and alice/b, bob/r (inactive); alice and bob see each other's
/// presence (they subscribed both ways).
fn net_with(config: xmpp_session::Config) -> Net {
    let mut net = Net::with_config(config, &["alice", "bob"]);
    let a = net.online("alice", "a", Some(0));
    let bob = net.online("bob", "r", Some(0));
    for (from, to, name) in [(a, "bob", "alice"), (bob, "alice", "bob")] {
        net.send(
            from,
            &format!("<presence type='subscribe' to='{to}@localhost'/>"),
        );
        let other = if from == a { bob } else { a };
        net.send(
            other,
            &format!("<presence type='subscribed' to='{name}@localhost'/>"),
        );
    }
    net.online("alice", "b", Some(0));
    // bob is interested: subscription stanzas and roster pushes reach him.
    net.send(
        bob,
        "<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>",
    );
    net.settle();
    net.send(bob, INACTIVE);
    net.settle();
    net
}

fn net() -> Net {
    net_with(TestServer::config().build().expect("valid config"))
}

fn composing(from: &str, id: &str) -> String {
    format!(
        "<message from='{from}' to='bob@localhost/r' type='chat' id='{id}'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
    )
}

fn body(from: &str, id: &str) -> String {
    format!(
        "<message from='{from}' to='bob@localhost/r' type='chat' id='{id}'><body>hi</body></message>"
    )
}

fn presence(from: &str, show: &str) -> String {
    format!("<presence from='{from}' to='bob@localhost'><show>{show}</show></presence>")
}

/// alice/a sends a chat state, alice/a and alice/b change presence twice
/// each: all held, nothing reaches bob.
fn hold_some(net: &mut Net) {
    let (a, b) = (net.id("alice@localhost/a"), net.id("alice@localhost/b"));
    net.send(a, "<message to='bob@localhost/r' type='chat' id='c1'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
    net.send(a, "<presence><show>away</show></presence>");
    net.send(b, "<presence><show>away</show></presence>");
    net.send(a, "<presence><show>xa</show></presence>");
    let bob = net.id("bob@localhost/r");
    assert!(net.take(bob).is_empty(), "held while inactive");
    net.settle();
}

/// What bob gets at a flush after [`hold_some`]: the chat state, alice/b's
/// presence, alice/a's latest presence (in the place of its newest).
fn held() -> Vec<String> {
    vec![
        composing("alice@localhost/a", "c1"),
        presence("alice@localhost/b", "away"),
        presence("alice@localhost/a", "xa"),
    ]
}

#[test]
fn a_message_with_a_body_flushes_everything_held_first() {
    let mut net = net();
    hold_some(&mut net);
    let (a, bob) = (net.id("alice@localhost/a"), net.id("bob@localhost/r"));
    net.send(
        a,
        "<message to='bob@localhost/r' type='chat' id='m1'><body>hi</body></message>",
    );
    let mut want = held();
    want.push(body("alice@localhost/a", "m1"));
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    net.expect_only(&[(bob, &want)]);
    // The queue is empty again: the next chat state is held anew.
    net.send(a, "<message to='bob@localhost/r' type='chat' id='c2'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>");
    net.expect_only(&[]);
}

#[test]
fn iqs_and_subscription_requests_are_important() {
    for important in [
        "<iq to='bob@localhost/r' type='get' id='i'><ping xmlns='urn:xmpp:ping'/></iq>",
        "<presence to='bob@localhost' type='unsubscribe'/>",
    ] {
        let mut net = net();
        hold_some(&mut net);
        let (a, bob) = (net.id("alice@localhost/a"), net.id("bob@localhost/r"));
        net.send(a, important);
        let got = net.take(bob);
        // The held three, then the important stanza (for the unsubscribe,
        // a roster push first).
        assert!(got.len() >= 4, "{important}: {got:?}");
        let held: Vec<_> = held()
            .iter()
            .map(|x| xmpp_session::testkit::parse_stanza(x))
            .collect();
        assert_eq!(&got[..3], &held[..], "{important}");
        net.settle();
    }
}

#[test]
fn client_input_and_active_flush() {
    for input in [
        " ",
        ACTIVE,
        "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>",
    ] {
        let mut net = net();
        hold_some(&mut net);
        let bob = net.id("bob@localhost/r");
        net.send(bob, input);
        let got = net.take(bob);
        let held: Vec<_> = held()
            .iter()
            .map(|x| xmpp_session::testkit::parse_stanza(x))
            .collect();
        assert_eq!(got.get(..3), Some(&held[..]), "{input:?}: {got:?}");
        net.settle();
    }
    // After <active/>, stanzas flow at once.
    let mut net = net();
    let (a, bob) = (net.id("alice@localhost/a"), net.id("bob@localhost/r"));
    net.send(bob, ACTIVE);
    net.send(a, "<message to='bob@localhost/r' type='chat' id='c'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
    net.expect_only(&[(bob, &[&composing("alice@localhost/a", "c")])]);
    // Inactive again: held again.
    net.send(bob, INACTIVE);
    net.send(a, "<message to='bob@localhost/r' type='chat' id='d'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
    net.expect_only(&[]);
}

#[test]
fn the_queue_bound_flushes() {
    let mut net = net_with(TestServer::config().csi_queue_max(3).build().unwrap());
    let (a, bob) = (net.id("alice@localhost/a"), net.id("bob@localhost/r"));
    for id in ["1", "2"] {
        net.send(a, &format!("<message to='bob@localhost/r' type='chat' id='{id}'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"));
    }
    net.expect_only(&[]);
    net.send(a, "<message to='bob@localhost/r' type='chat' id='3'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
    net.expect_only(&[(
        bob,
        &[
            &composing("alice@localhost/a", "1"),
            &composing("alice@localhost/a", "2"),
            &composing("alice@localhost/a", "3"),
        ],
    )]);
}

#[test]
fn the_embedder_can_replace_the_classification() {
    fn hold_all(_: &xmpp_session::Element) -> CsiClass {
        CsiClass::Hold
    }
    let mut net = net_with(
        TestServer::config()
            .csi_classifier(hold_all)
            .build()
            .unwrap(),
    );
    let (a, bob) = (net.id("alice@localhost/a"), net.id("bob@localhost/r"));
    net.send(
        a,
        "<message to='bob@localhost/r' type='chat' id='m1'><body>hi</body></message>",
    );
    net.expect_only(&[]);
    net.send(bob, ACTIVE);
    net.expect_only(&[(bob, &[&body("alice@localhost/a", "m1")])]);
}

#[test]
fn held_stanzas_go_out_before_the_stream_closes() {
    let mut net = net();
    let (a, bob) = (net.id("alice@localhost/a"), net.id("bob@localhost/r"));
    net.send(a, "<message to='bob@localhost/r' type='chat' id='c'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
    net.take_raw(bob);
    let now = net.server.now();
    net.server.manager.close_cleanly(bob, now);
    net.server.pump();
    let raw = net.take_raw(bob);
    let at_message = raw.find("<message").expect("held message sent");
    let at_close = raw.find("</stream:stream>").expect("stream closed");
    assert!(at_message < at_close, "{raw}");
}

#[test]
fn other_sessions_are_not_held() {
    let mut net = net();
    let (a, b) = (net.id("alice@localhost/a"), net.id("alice@localhost/b"));
    net.send(a, "<message to='alice@localhost/b' type='chat' id='c'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
    net.expect_only(&[(
        b,
        &["<message from='alice@localhost/a' to='alice@localhost/b' type='chat' id='c'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"],
    )]);
}

#[test]
fn carbons_for_an_inactive_resource_are_held_by_what_they_carry() {
    let mut net = net();
    let bob = net.id("bob@localhost/r");
    net.send(
        bob,
        "<iq type='set' id='c'><enable xmlns='urn:xmpp:carbons:2'/></iq>",
    );
    net.settle();
    let other = net.online("bob", "s", Some(0));
    net.settle();
    // A chat state sent from bob/s: its sent carbon waits.
    net.send(other, "<message to='alice@localhost/a' type='chat' id='c1'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
    assert!(net.take(bob).is_empty(), "held");
    net.settle();
    // A message with a body: its carbon flushes everything.
    net.send(
        other,
        "<message to='alice@localhost/a' type='chat' id='m1'><body>hi</body></message>",
    );
    let got = net.take(bob);
    let ids: Vec<_> = got
        .iter()
        .filter_map(|m| {
            let sent = m.get_child("sent", "urn:xmpp:carbons:2")?;
            let inner = sent
                .get_child("forwarded", "urn:xmpp:forward:0")?
                .get_child("message", "jabber:client")?;
            Some(inner.attr("id")?.to_owned())
        })
        .collect();
    assert_eq!(ids, ["c1", "m1"], "{got:?}");
}
