//! XEP-0280 message carbons transcripts: enabling and disabling, received
//! and sent copies with their exact wrappers, eligibility (§6) for every
//! message kind, and who receives nothing.

mod common;

use common::{Net, service_unavailable};

const CARBONS: &str = "urn:xmpp:carbons:2";

/// alice/a (priority 1), alice/b (priority 0), alice/c (connected, no
/// presence) and bob/r (priority 0).
fn net() -> Net {
    let mut net = Net::new(&["alice", "bob"]);
    net.online("alice", "a", Some(1));
    net.online("alice", "b", Some(0));
    net.connect("alice", "c");
    net.online("bob", "r", Some(0));
    net.settle();
    net
}

/// Enables carbons on `full`'s session and checks the answer.
fn enable(net: &mut Net, full: &str) {
    let id = net.id(full);
    net.send(
        id,
        &format!("<iq type='set' id='on'><enable xmlns='{CARBONS}'/></iq>"),
    );
    net.expect_only(&[(id, &[&format!("<iq id='on' to='{full}' type='result'/>")])]);
}

fn chat(from: &str, to: &str, id: &str) -> String {
    format!("<message from='{from}' to='{to}' type='chat' id='{id}'><body>hi</body></message>")
}

/// A carbon copy as sent to `to`: `kind` is `sent` or `received`.
fn carbon(kind: &str, account: &str, to: &str, ty: Option<&str>, inner: &str) -> String {
    let ty = ty.map(|t| format!(" type='{t}'")).unwrap_or_default();
    let inner = inner.replacen("<message ", "<message xmlns='jabber:client' ", 1);
    format!(
        "<message from='{account}' to='{to}'{ty}><{kind} xmlns='{CARBONS}'>\
         <forwarded xmlns='urn:xmpp:forward:0'>{inner}</forwarded></{kind}></message>"
    )
}

/// bob/r sends a chat message `hi` to `to`; returns it as delivered.
fn from_bob(net: &mut Net, to: &str, id: &str) -> String {
    let bob = net.id("bob@localhost/r");
    net.send(
        bob,
        &format!("<message to='{to}' type='chat' id='{id}'><body>hi</body></message>"),
    );
    chat("bob@localhost/r", to, id)
}

/// A copy of the chat message `original` for one of alice's resources.
fn alice_carbon(kind: &str, to: &str, original: &str) -> String {
    carbon(kind, "alice@localhost", to, Some("chat"), original)
}

#[test]
fn enable_and_disable_are_answered_to_the_session_only() {
    let mut net = net();
    let a = net.id("alice@localhost/a");
    net.send(
        a,
        &format!("<iq type='set' id='on' to='alice@localhost'><enable xmlns='{CARBONS}'/></iq>"),
    );
    // Addressed to the own bare JID, which is stripped as for the roster.
    net.expect_only(&[(a, &["<iq id='on' to='alice@localhost/a' type='result'/>"])]);
    net.send(
        a,
        &format!("<iq type='set' id='off'><disable xmlns='{CARBONS}'/></iq>"),
    );
    net.expect_only(&[(a, &["<iq id='off' to='alice@localhost/a' type='result'/>"])]);
    // Disabled: bob's message to alice/b is not copied to alice/a.
    let bob = net.id("bob@localhost/r");
    net.send(
        bob,
        &chat("", "alice@localhost/b", "m1").replace(" from=''", ""),
    );
    let b = net.id("alice@localhost/b");
    net.expect_only(&[(b, &[&chat("bob@localhost/r", "alice@localhost/b", "m1")])]);
}

#[test]
fn enabling_for_another_account_or_with_get_is_refused() {
    let mut net = net();
    let a = net.id("alice@localhost/a");
    net.send(
        a,
        &format!("<iq type='set' id='x' to='bob@localhost'><enable xmlns='{CARBONS}'/></iq>"),
    );
    net.expect_only(&[(
        a,
        &[&service_unavailable(
            "iq",
            Some("bob@localhost"),
            "alice@localhost/a",
            "x",
        )],
    )]);
    net.send(
        a,
        &format!("<iq type='get' id='g'><enable xmlns='{CARBONS}'/></iq>"),
    );
    net.expect_only(&[(
        a,
        &[&service_unavailable("iq", None, "alice@localhost/a", "g")],
    )]);
    // Nothing was enabled.
    let bob = net.id("bob@localhost/r");
    net.send(
        bob,
        "<message to='alice@localhost/b' type='chat' id='m'><body>hi</body></message>",
    );
    let b = net.id("alice@localhost/b");
    net.expect_only(&[(b, &[&chat("bob@localhost/r", "alice@localhost/b", "m")])]);
}

#[test]
fn a_message_to_a_full_jid_is_copied_to_the_other_enabled_resources() {
    let mut net = net();
    enable(&mut net, "alice@localhost/b");
    enable(&mut net, "alice@localhost/c");
    let (a, b, c) = (
        net.id("alice@localhost/a"),
        net.id("alice@localhost/b"),
        net.id("alice@localhost/c"),
    );

    let original = from_bob(&mut net, "alice@localhost/a", "m1");
    net.expect_only(&[
        (a, &[&original]),
        (
            b,
            &[&alice_carbon("received", "alice@localhost/b", &original)],
        ),
        (
            c,
            &[&alice_carbon("received", "alice@localhost/c", &original)],
        ),
    ]);
}

#[test]
fn a_message_to_the_bare_jid_is_not_copied_to_resources_that_got_it() {
    let mut net = net();
    enable(&mut net, "alice@localhost/a");
    enable(&mut net, "alice@localhost/b");
    let (a, b) = (net.id("alice@localhost/a"), net.id("alice@localhost/b"));

    // alice/a has the highest priority: it gets the message, alice/b a copy.
    let original = from_bob(&mut net, "alice@localhost", "m1");
    net.expect_only(&[
        (a, &[&original]),
        (
            b,
            &[&alice_carbon("received", "alice@localhost/b", &original)],
        ),
    ]);
    // Equal priorities: both get the message itself and no copy.
    net.send(b, "<presence><priority>1</priority></presence>");
    net.settle();
    let original = from_bob(&mut net, "alice@localhost", "m2");
    net.expect_only(&[(a, &[&original]), (b, &[&original])]);
}

#[test]
fn a_message_stored_offline_is_still_copied_to_enabled_resources() {
    let mut net = Net::new(&["alice", "bob"]);
    let low = net.online("alice", "low", Some(-1));
    net.online("bob", "r", Some(0));
    net.settle();
    enable(&mut net, "alice@localhost/low");
    let original = from_bob(&mut net, "alice@localhost", "m1");
    net.expect_only(&[(
        low,
        &[&alice_carbon("received", "alice@localhost/low", &original)],
    )]);
    net.expect_stored(
        "alice",
        &[&format!(
            "<message from='bob@localhost/r' to='alice@localhost' type='chat' id='m1'><body>hi</body>\
             <delay xmlns='urn:xmpp:delay' from='localhost' stamp='{}'/></message>",
            common::STAMP
        )],
    );
}

#[test]
fn a_sent_message_is_copied_to_the_senders_other_enabled_resources() {
    let mut net = net();
    enable(&mut net, "alice@localhost/a");
    enable(&mut net, "alice@localhost/b");
    let (a, b) = (net.id("alice@localhost/a"), net.id("alice@localhost/b"));
    let bob = net.id("bob@localhost/r");
    net.send(
        a,
        "<message to='bob@localhost' type='chat' id='s1'><body>hi</body></message>",
    );
    let original = chat("alice@localhost/a", "bob@localhost", "s1");
    net.expect_only(&[
        (bob, &[&original]),
        (b, &[&alice_carbon("sent", "alice@localhost/b", &original)]),
    ]);
    // Remote recipient: routed out, copied all the same.
    net.send(
        a,
        "<message to='juliet@example.org' type='chat' id='s2'><body>hi</body></message>",
    );
    let original = chat("alice@localhost/a", "juliet@example.org", "s2");
    let copy = alice_carbon("sent", "alice@localhost/b", &original);
    let got = net.take(b);
    assert_eq!(got, vec![xmpp_session::testkit::parse_stanza(&copy)]);
    net.expect_routed(&[&original]);
    net.expect_only(&[]);
}

/// Every message kind, received (bob → alice/a) and sent (alice/a → bob):
/// whether alice/b, with carbons on, gets a copy, and what alice/a or bob
/// receive.
#[test]
fn eligibility_follows_section_6() {
    struct Case {
        name: &'static str,
        /// Attributes and payload after `to`.
        rest: &'static str,
        /// As delivered (`None`: same as sent).
        delivered: Option<&'static str>,
        copied: bool,
    }
    let cases = [
        Case {
            name: "chat",
            rest: " type='chat'><body>x</body>",
            delivered: None,
            copied: true,
        },
        Case {
            name: "normal with body",
            rest: " type='normal'><body>x</body>",
            delivered: None,
            copied: true,
        },
        Case {
            name: "no type with body",
            rest: "><body>x</body>",
            delivered: None,
            copied: true,
        },
        Case {
            name: "normal without body",
            rest: " type='normal'><thread>t</thread>",
            delivered: None,
            copied: false,
        },
        Case {
            name: "chat without body",
            rest: " type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/>",
            delivered: None,
            copied: true,
        },
        Case {
            name: "headline",
            rest: " type='headline'><body>x</body>",
            delivered: None,
            copied: false,
        },
        Case {
            name: "groupchat",
            rest: " type='groupchat'><body>x</body>",
            delivered: None,
            copied: false,
        },
        Case {
            name: "error",
            rest: " type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
            delivered: None,
            copied: true,
        },
        Case {
            name: "private",
            rest: " type='chat'><body>x</body><private xmlns='urn:xmpp:carbons:2'/>",
            delivered: Some(" type='chat'><body>x</body>"),
            copied: false,
        },
        Case {
            name: "no-copy hint",
            rest: " type='chat'><body>x</body><no-copy xmlns='urn:xmpp:hints'/>",
            delivered: None,
            copied: false,
        },
        Case {
            name: "client-made received wrapper",
            rest: " type='chat'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='x@localhost/y' type='chat'><body>x</body></message></forwarded></received>",
            delivered: None,
            copied: false,
        },
        Case {
            name: "client-made sent wrapper",
            rest: " type='chat'><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='x@localhost/y' type='chat'><body>x</body></message></forwarded></sent>",
            delivered: None,
            copied: false,
        },
    ];
    for case in &cases {
        for (sender, sender_jid, recipient_to, direction) in [
            (
                "bob@localhost/r",
                "bob@localhost/r",
                "alice@localhost/a",
                "received",
            ),
            (
                "alice@localhost/a",
                "alice@localhost/a",
                "bob@localhost/r",
                "sent",
            ),
        ] {
            let mut net = net();
            enable(&mut net, "alice@localhost/b");
            let from = net.id(sender);
            let to = net.id(recipient_to);
            let b = net.id("alice@localhost/b");
            net.send(
                from,
                &format!("<message to='{recipient_to}' id='e'{}</message>", case.rest),
            );
            let delivered = format!(
                "<message from='{sender_jid}' to='{recipient_to}' id='e'{}</message>",
                case.delivered.unwrap_or(case.rest)
            );
            let ty = delivered
                .split("type='")
                .nth(1)
                .and_then(|t| t.split('\'').next())
                .filter(|_| !case.rest.starts_with('>'));
            let copy = carbon(
                direction,
                "alice@localhost",
                "alice@localhost/b",
                ty,
                &delivered,
            );
            let copies: &[&str] = if case.copied { &[&copy] } else { &[] };
            let got_b = net.take(b);
            let want_b: Vec<_> = copies
                .iter()
                .map(|x| xmpp_session::testkit::parse_stanza(x))
                .collect();
            assert_eq!(
                got_b, want_b,
                "{} ({direction}): copy to alice/b",
                case.name
            );
            let got = net.take(to);
            // A sent `<private/>` reaches a local recipient stripped too.
            assert_eq!(
                got,
                vec![xmpp_session::testkit::parse_stanza(&delivered)],
                "{} ({direction}): delivery",
                case.name
            );
            net.expect_only(&[]);
        }
    }
}

#[test]
fn a_muc_private_message_to_a_full_jid_is_not_copied() {
    let mut net = net();
    enable(&mut net, "alice@localhost/b");
    let (a, bob) = (net.id("alice@localhost/a"), net.id("bob@localhost/r"));
    let x = "<x xmlns='http://jabber.org/protocol/muc#user'/>";
    net.send(
        bob,
        &format!(
            "<message to='alice@localhost/a' type='chat' id='pm'><body>hi</body>{x}</message>"
        ),
    );
    net.expect_only(&[(
        a,
        &[&format!(
            "<message from='bob@localhost/r' to='alice@localhost/a' type='chat' id='pm'><body>hi</body>{x}</message>"
        )],
    )]);
    // Sent by alice (a PM through a room), it is copied as usual.
    net.send(
        a,
        &format!("<message to='bob@localhost/r' type='chat' id='pm2'><body>hi</body>{x}</message>"),
    );
    let original = format!(
        "<message from='alice@localhost/a' to='bob@localhost/r' type='chat' id='pm2'><body>hi</body>{x}</message>"
    );
    let b = net.id("alice@localhost/b");
    net.expect_only(&[
        (bob, &[&original]),
        (b, &[&alice_carbon("sent", "alice@localhost/b", &original)]),
    ]);
}

#[test]
fn private_is_only_stripped_for_local_recipients() {
    let mut net = net();
    enable(&mut net, "alice@localhost/b");
    let a = net.id("alice@localhost/a");
    net.send(
        a,
        "<message to='juliet@example.org' type='chat' id='p'><body>x</body><private xmlns='urn:xmpp:carbons:2'/></message>",
    );
    net.expect_routed(&[
        "<message from='alice@localhost/a' to='juliet@example.org' type='chat' id='p'><body>x</body><private xmlns='urn:xmpp:carbons:2'/></message>",
    ]);
    net.expect_only(&[]);
}

#[test]
fn a_session_that_went_away_gets_no_copies_and_others_still_do() {
    let mut net = net();
    enable(&mut net, "alice@localhost/b");
    enable(&mut net, "alice@localhost/c");
    let (a, c) = (net.id("alice@localhost/a"), net.id("alice@localhost/c"));
    let b = net.id("alice@localhost/b");
    net.disconnect(b);
    net.settle();

    let original = from_bob(&mut net, "alice@localhost/a", "m1");
    net.expect_only(&[
        (a, &[&original]),
        (
            c,
            &[&alice_carbon("received", "alice@localhost/c", &original)],
        ),
    ]);
}
