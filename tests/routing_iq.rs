//! IQ routing transcripts (RFC 6120 §8.2.3 and §10, RFC 6121 §8.5,
//! Prosody reference §4.1 and §4.6): delivery to full JIDs, server answers
//! for bare JIDs and the domain (ping, disco, version, legacy session),
//! validation, the extension seam and IQs from outside.

mod common;

use common::{Net, STANZAS, error_reply, service_unavailable};
use xmpp_session::testkit::parse_stanza;
use xmpp_session::{Config, Element};

const ALICE: &str = "alice@localhost/r";
const PING: &str = "<ping xmlns='urn:xmpp:ping'/>";
const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";

fn net() -> Net {
    let mut net = Net::new(&["alice", "bob"]);
    net.online("alice", "r", Some(0));
    net
}

fn result(from: Option<&str>, id: &str, payload: &str) -> String {
    let from = from.map(|f| format!(" from='{f}'")).unwrap_or_default();
    format!("<iq{from} to='{ALICE}' id='{id}' type='result'>{payload}</iq>")
}

fn routed(xml: &str) -> Element {
    parse_stanza(xml)
}

fn server_disco(features: &[&str], name: Option<&str>) -> String {
    let name = name.map(|n| format!(" name='{n}'")).unwrap_or_default();
    let features: String = features
        .iter()
        .map(|f| format!("<feature var='{f}'/>"))
        .collect();
    format!(
        "<query xmlns='{DISCO_INFO}'><identity category='server' type='im'{name}/>{features}</query>"
    )
}

const DEFAULT_FEATURES: &[&str] = &[
    DISCO_INFO,
    DISCO_ITEMS,
    "jabber:iq:roster",
    "jabber:iq:version",
    "msgoffline",
    "urn:xmpp:blocking",
    "urn:xmpp:carbons:2",
    "urn:xmpp:ping",
];

// ---------------------------------------------------------------------------
// Full JIDs.

#[test]
fn iq_of_every_type_to_a_connected_full_jid_is_delivered_as_is() {
    let mut net = net();
    let alice = net.id(ALICE);
    // One resource without presence, one available with negative priority:
    // neither matters for a full JID (RFC 6121 §8.5.3.1).
    let one = net.connect("bob", "one");
    let two = net.online("bob", "two", Some(-3));
    for (res, sid) in [("one", one), ("two", two)] {
        for (ty, payload) in [
            ("get", PING.to_owned()),
            ("set", "<query xmlns='urn:example:q'/>".to_owned()),
            ("result", String::new()),
            (
                "error",
                format!("<error type='cancel'><item-not-found xmlns='{STANZAS}'/></error>"),
            ),
        ] {
            net.send(
                alice,
                &format!("<iq to='bob@localhost/{res}' type='{ty}' id='i-{ty}'>{payload}</iq>"),
            );
            let want = format!(
                "<iq from='{ALICE}' to='bob@localhost/{res}' type='{ty}' id='i-{ty}'>{payload}</iq>"
            );
            net.expect_only(&[(sid, &[&want])]);
        }
    }
    // The sender's own full JID and a sibling work the same way.
    let s = net.connect("alice", "s");
    net.send(
        alice,
        &format!("<iq to='alice@localhost/s' type='get' id='sib'>{PING}</iq>"),
    );
    net.expect_only(&[(
        s,
        &[&format!(
            "<iq from='{ALICE}' to='alice@localhost/s' type='get' id='sib'>{PING}</iq>"
        )],
    )]);
    net.send(
        alice,
        &format!("<iq to='{ALICE}' type='get' id='me'>{PING}</iq>"),
    );
    net.expect_only(&[(
        alice,
        &[&format!(
            "<iq from='{ALICE}' to='{ALICE}' type='get' id='me'>{PING}</iq>"
        )],
    )]);
}

#[test]
fn iq_to_an_unconnected_full_jid_get_set_bounce_result_error_dropped() {
    let mut net = net();
    let alice = net.id(ALICE);
    net.online("bob", "one", Some(5));
    for to in [
        "bob@localhost/gone",
        "nobody@localhost/x",
        "alice@localhost/other",
    ] {
        for ty in ["get", "set"] {
            net.send(
                alice,
                &format!("<iq to='{to}' type='{ty}' id='q'>{PING}</iq>"),
            );
            let error = service_unavailable("iq", Some(to), ALICE, "q");
            net.expect_only(&[(alice, &[&error])]);
        }
        net.send(alice, &format!("<iq to='{to}' type='result' id='r'/>"));
        net.quiet();
        net.send(
            alice,
            &format!("<iq to='{to}' type='error' id='e'><error type='cancel'><gone xmlns='{STANZAS}'/></error></iq>"),
        );
        net.quiet();
    }
}

// ---------------------------------------------------------------------------
// Bare JIDs and the domain: XEP-0199 ping.

#[test]
fn ping_is_answered_for_the_server_and_existing_accounts() {
    let mut net = net();
    let alice = net.id(ALICE);
    let bob = net.online("bob", "one", Some(1));
    // The server itself.
    net.send(
        alice,
        &format!("<iq to='localhost' type='get' id='p1'>{PING}</iq>"),
    );
    net.expect_only(&[(alice, &[&result(Some("localhost"), "p1", "")])]);
    // Own account, without `to` and with the own bare JID (which is
    // removed, so the answer carries no `from`).
    net.send(alice, &format!("<iq type='get' id='p2'>{PING}</iq>"));
    net.expect_only(&[(alice, &[&result(None, "p2", "")])]);
    net.send(
        alice,
        &format!("<iq to='alice@localhost' type='get' id='p3'>{PING}</iq>"),
    );
    net.expect_only(&[(alice, &[&result(None, "p3", "")])]);
    // Another user's bare JID: answered by the server, bob sees nothing.
    net.send(
        alice,
        &format!("<iq to='bob@localhost' type='get' id='p4'>{PING}</iq>"),
    );
    net.expect_only(&[(alice, &[&result(Some("bob@localhost"), "p4", "")])]);
    // An existing account that is offline.
    net.disconnect(bob);
    net.settle();
    net.send(
        alice,
        &format!("<iq to='bob@localhost' type='get' id='p5'>{PING}</iq>"),
    );
    net.expect_only(&[(alice, &[&result(Some("bob@localhost"), "p5", "")])]);
    // No such account (RFC 6121 §8.5.1).
    net.send(
        alice,
        &format!("<iq to='nobody@localhost' type='get' id='p6'>{PING}</iq>"),
    );
    net.expect_only(&[(
        alice,
        &[&service_unavailable(
            "iq",
            Some("nobody@localhost"),
            ALICE,
            "p6",
        )],
    )]);
    // Ping is a get: a set is not understood.
    net.send(
        alice,
        &format!("<iq to='localhost' type='set' id='p7'>{PING}</iq>"),
    );
    net.expect_only(&[(
        alice,
        &[&service_unavailable("iq", Some("localhost"), ALICE, "p7")],
    )]);
}

#[test]
fn result_and_error_to_a_bare_jid_or_the_domain_are_dropped() {
    let mut net = net();
    let alice = net.id(ALICE);
    net.online("bob", "one", None);
    for to in [
        "bob@localhost",
        "nobody@localhost",
        "localhost",
        "alice@localhost",
    ] {
        net.send(alice, &format!("<iq to='{to}' type='result' id='r'/>"));
        net.quiet();
        net.send(
            alice,
            &format!("<iq to='{to}' type='error' id='e'><error type='cancel'><gone xmlns='{STANZAS}'/></error></iq>"),
        );
        net.quiet();
    }
}

// ---------------------------------------------------------------------------
// XEP-0030 service discovery.

#[test]
fn server_disco_info_and_items() {
    let mut net = net();
    let alice = net.id(ALICE);
    net.send(
        alice,
        &format!("<iq to='localhost' type='get' id='d1'><query xmlns='{DISCO_INFO}'/></iq>"),
    );
    let info = server_disco(DEFAULT_FEATURES, Some("xmpp-session"));
    net.expect_only(&[(alice, &[&result(Some("localhost"), "d1", &info)])]);
    net.send(
        alice,
        &format!("<iq to='localhost' type='get' id='d2'><query xmlns='{DISCO_ITEMS}'/></iq>"),
    );
    let items = format!("<query xmlns='{DISCO_ITEMS}'/>");
    net.expect_only(&[(alice, &[&result(Some("localhost"), "d2", &items)])]);
    // No nodes are served.
    net.send(
        alice,
        &format!(
            "<iq to='localhost' type='get' id='d3'><query xmlns='{DISCO_INFO}' node='x'/></iq>"
        ),
    );
    let error = error_reply(
        "iq",
        Some("localhost"),
        ALICE,
        Some("d3"),
        "cancel",
        "item-not-found",
        None,
    );
    net.expect_only(&[(alice, &[&error])]);
    // disco is a get.
    net.send(
        alice,
        &format!("<iq to='localhost' type='set' id='d4'><query xmlns='{DISCO_INFO}'/></iq>"),
    );
    net.expect_only(&[(
        alice,
        &[&service_unavailable("iq", Some("localhost"), ALICE, "d4")],
    )]);
}

#[test]
fn server_disco_lists_registered_features_and_namespaces() {
    let mut net = net();
    let alice = net.id(ALICE);
    net.manager.register_feature("urn:example:feature");
    net.manager.register_iq_namespace("urn:example:thing");
    net.send(
        alice,
        &format!("<iq to='localhost' type='get' id='d'><query xmlns='{DISCO_INFO}'/></iq>"),
    );
    let info = server_disco(
        &[
            DISCO_INFO,
            DISCO_ITEMS,
            "jabber:iq:roster",
            "jabber:iq:version",
            "msgoffline",
            "urn:example:feature",
            "urn:example:thing",
            "urn:xmpp:blocking",
            "urn:xmpp:carbons:2",
            "urn:xmpp:ping",
        ],
        Some("xmpp-session"),
    );
    net.expect_only(&[(alice, &[&result(Some("localhost"), "d", &info)])]);
}

#[test]
fn account_disco_for_oneself_and_refused_for_strangers() {
    let mut net = net();
    let alice = net.id(ALICE);
    let account = format!(
        "<query xmlns='{DISCO_INFO}'><identity category='account' type='registered'/><feature var='{DISCO_INFO}'/><feature var='{DISCO_ITEMS}'/><feature var='urn:xmpp:ping'/><feature var='urn:xmpp:blocking'/><feature var='urn:xmpp:carbons:2'/></query>"
    );
    net.send(
        alice,
        &format!("<iq type='get' id='a1'><query xmlns='{DISCO_INFO}'/></iq>"),
    );
    net.expect_only(&[(alice, &[&result(None, "a1", &account)])]);
    net.send(
        alice,
        &format!("<iq to='alice@localhost' type='get' id='a2'><query xmlns='{DISCO_ITEMS}'/></iq>"),
    );
    net.expect_only(&[(
        alice,
        &[&result(
            None,
            "a2",
            &format!("<query xmlns='{DISCO_ITEMS}'/>"),
        )],
    )]);
    // bob does not share his presence with alice.
    net.online("bob", "one", None);
    for (id, ns) in [("a3", DISCO_INFO), ("a4", DISCO_ITEMS)] {
        net.send(
            alice,
            &format!("<iq to='bob@localhost' type='get' id='{id}'><query xmlns='{ns}'/></iq>"),
        );
        net.expect_only(&[(
            alice,
            &[&service_unavailable("iq", Some("bob@localhost"), ALICE, id)],
        )]);
    }
}

// ---------------------------------------------------------------------------
// XEP-0092 software version.

#[test]
fn software_version_default() {
    let mut net = net();
    let alice = net.id(ALICE);
    net.send(
        alice,
        "<iq to='localhost' type='get' id='v'><query xmlns='jabber:iq:version'/></iq>",
    );
    let version = format!(
        "<query xmlns='jabber:iq:version'><name>xmpp-session</name><version>{}</version></query>",
        env!("CARGO_PKG_VERSION")
    );
    net.expect_only(&[(alice, &[&result(Some("localhost"), "v", &version)])]);
    // Accounts do not answer version queries on the server's behalf.
    net.send(
        alice,
        "<iq to='bob@localhost' type='get' id='v2'><query xmlns='jabber:iq:version'/></iq>",
    );
    net.expect_only(&[(
        alice,
        &[&service_unavailable(
            "iq",
            Some("bob@localhost"),
            ALICE,
            "v2",
        )],
    )]);
}

#[test]
fn software_version_configured() {
    let config = Config::builder("localhost")
        .require_tls(false)
        .allow_plain_without_tls(true)
        .software(
            Some("Example".into()),
            Some("2.5".into()),
            Some("Plan 9".into()),
        )
        .build()
        .expect("valid config");
    let mut net = Net::with_config(config, &["alice"]);
    let alice = net.online("alice", "r", None);
    net.send(
        alice,
        "<iq to='localhost' type='get' id='v'><query xmlns='jabber:iq:version'/></iq>",
    );
    let version = "<query xmlns='jabber:iq:version'><name>Example</name><version>2.5</version><os>Plan 9</os></query>";
    net.expect_only(&[(alice, &[&result(Some("localhost"), "v", version)])]);
    net.send(
        alice,
        &format!("<iq to='localhost' type='get' id='d'><query xmlns='{DISCO_INFO}'/></iq>"),
    );
    net.expect_only(&[(
        alice,
        &[&result(
            Some("localhost"),
            "d",
            &server_disco(DEFAULT_FEATURES, Some("Example")),
        )],
    )]);
}

#[test]
fn software_version_disabled() {
    let config = Config::builder("localhost")
        .require_tls(false)
        .allow_plain_without_tls(true)
        .software(None, None, None)
        .build()
        .expect("valid config");
    let mut net = Net::with_config(config, &["alice"]);
    let alice = net.online("alice", "r", None);
    net.send(
        alice,
        "<iq to='localhost' type='get' id='v'><query xmlns='jabber:iq:version'/></iq>",
    );
    net.expect_only(&[(
        alice,
        &[&service_unavailable("iq", Some("localhost"), ALICE, "v")],
    )]);
    // Neither the feature nor the identity name is advertised.
    net.send(
        alice,
        &format!("<iq to='localhost' type='get' id='d'><query xmlns='{DISCO_INFO}'/></iq>"),
    );
    let features: Vec<&str> = DEFAULT_FEATURES
        .iter()
        .copied()
        .filter(|f| *f != "jabber:iq:version")
        .collect();
    net.expect_only(&[(
        alice,
        &[&result(
            Some("localhost"),
            "d",
            &server_disco(&features, None),
        )],
    )]);
}

// ---------------------------------------------------------------------------
// Legacy session establishment and unknown payloads.

#[test]
fn legacy_session_is_acknowledged() {
    let mut net = net();
    let alice = net.id(ALICE);
    let session = "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>";
    net.send(alice, &format!("<iq type='set' id='s1'>{session}</iq>"));
    net.expect_only(&[(alice, &[&result(None, "s1", "")])]);
    net.send(
        alice,
        &format!("<iq to='localhost' type='set' id='s2'>{session}</iq>"),
    );
    net.expect_only(&[(alice, &[&result(Some("localhost"), "s2", "")])]);
    // Not on someone else's account.
    net.send(
        alice,
        &format!("<iq to='bob@localhost' type='set' id='s3'>{session}</iq>"),
    );
    net.expect_only(&[(
        alice,
        &[&service_unavailable(
            "iq",
            Some("bob@localhost"),
            ALICE,
            "s3",
        )],
    )]);
}

#[test]
fn unknown_payload_gets_service_unavailable_everywhere() {
    let mut net = net();
    let alice = net.id(ALICE);
    net.online("bob", "one", None);
    for (to, from) in [
        (None, None),
        (Some("alice@localhost"), None),
        (Some("bob@localhost"), Some("bob@localhost")),
        (Some("localhost"), Some("localhost")),
        (Some("localhost/res"), Some("localhost/res")),
    ] {
        for ty in ["get", "set"] {
            let to_attr = to.map(|t| format!(" to='{t}'")).unwrap_or_default();
            net.send(
                alice,
                &format!(
                    "<iq{to_attr} type='{ty}' id='u'><query xmlns='urn:example:unknown'/></iq>"
                ),
            );
            net.expect_only(&[(alice, &[&service_unavailable("iq", from, ALICE, "u")])]);
        }
    }
}

// ---------------------------------------------------------------------------
// Validation (Prosody §4.1; RFC 6120 §8.2.3).

#[test]
fn invalid_iqs_get_bad_request_and_are_not_forwarded() {
    let mut net = net();
    let alice = net.id(ALICE);
    let bob = net.online("bob", "one", None);
    let cases = [
        (
            format!("<iq to='bob@localhost/one' type='get'>{PING}</iq>"),
            None,
            "Missing required 'id' attribute",
        ),
        (
            format!("<iq to='bob@localhost/one' type='set'>{PING}</iq>"),
            None,
            "Missing required 'id' attribute",
        ),
        (
            format!("<iq to='bob@localhost/one' type='bogus' id='b1'>{PING}</iq>"),
            Some("b1"),
            "Invalid IQ type",
        ),
        (
            format!("<iq to='bob@localhost/one' id='b2'>{PING}</iq>"),
            Some("b2"),
            "Invalid IQ type",
        ),
        (
            "<iq to='bob@localhost/one' type='get' id='b3'/>".to_owned(),
            Some("b3"),
            "Incorrect number of children for IQ stanza",
        ),
        (
            format!("<iq to='bob@localhost/one' type='set' id='b4'>{PING}{PING}</iq>"),
            Some("b4"),
            "Incorrect number of children for IQ stanza",
        ),
    ];
    for (xml, id, text) in cases {
        net.send(alice, &xml);
        let error = error_reply(
            "iq",
            Some("bob@localhost/one"),
            ALICE,
            id,
            "modify",
            "bad-request",
            Some(text),
        );
        net.expect_only(&[(alice, &[&error])]);
    }
    // The same checks without `to`: the reply has no `from`.
    net.send(alice, "<iq type='get' id='b5'/>");
    let error = error_reply(
        "iq",
        None,
        ALICE,
        Some("b5"),
        "modify",
        "bad-request",
        Some("Incorrect number of children for IQ stanza"),
    );
    net.expect_only(&[(alice, &[&error])]);
    // A result or error without id is dropped, never answered.
    net.send(alice, "<iq to='bob@localhost/one' type='result'/>");
    net.quiet();
    net.send(
        alice,
        &format!("<iq to='bob@localhost/one' type='error'><error type='cancel'><gone xmlns='{STANZAS}'/></error></iq>"),
    );
    net.quiet();
    // A result may carry no child, or several.
    net.send(alice, "<iq to='bob@localhost/one' type='result' id='ok'/>");
    net.expect_only(&[(
        bob,
        &["<iq from='alice@localhost/r' to='bob@localhost/one' type='result' id='ok'/>"],
    )]);
    net.send(
        alice,
        &format!("<iq to='bob@localhost/one' type='result' id='ok2'>{PING}{PING}</iq>"),
    );
    net.expect_only(&[(
        bob,
        &[&format!("<iq from='alice@localhost/r' to='bob@localhost/one' type='result' id='ok2'>{PING}{PING}</iq>")],
    )]);
}

#[test]
fn every_local_iq_get_or_set_gets_exactly_one_reply() {
    let mut net = net();
    let alice = net.id(ALICE);
    net.online("bob", "one", Some(1));
    net.connect("bob", "idle");
    let payloads = [
        PING.to_owned(),
        format!("<query xmlns='{DISCO_INFO}'/>"),
        format!("<query xmlns='{DISCO_ITEMS}'/>"),
        "<query xmlns='jabber:iq:version'/>".to_owned(),
        "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>".to_owned(),
        "<query xmlns='jabber:iq:roster'/>".to_owned(),
        "<query xmlns='urn:example:unknown'/>".to_owned(),
        "<vCard xmlns='vcard-temp'/>".to_owned(),
    ];
    let targets = [
        None,
        Some("alice@localhost"),
        Some("alice@localhost/gone"),
        Some("bob@localhost"),
        Some("bob@localhost/gone"),
        Some("nobody@localhost"),
        Some("nobody@localhost/x"),
        Some("localhost"),
        Some("localhost/x"),
    ];
    let mut n = 0;
    for to in targets {
        for payload in &payloads {
            for ty in ["get", "set"] {
                n += 1;
                let id = format!("x{n}");
                let to_attr = to.map(|t| format!(" to='{t}'")).unwrap_or_default();
                net.send(
                    alice,
                    &format!("<iq{to_attr} type='{ty}' id='{id}'>{payload}</iq>"),
                );
                let got = net.take(alice);
                assert_eq!(
                    got.len(),
                    1,
                    "{ty} {payload} to {to:?}: {}",
                    common::render(&got)
                );
                let reply = &got[0];
                assert_eq!(reply.name(), "iq");
                assert_eq!(reply.attr("id"), Some(id.as_str()));
                assert!(
                    matches!(reply.attr("type"), Some("result" | "error")),
                    "{}",
                    common::render(&got)
                );
                assert_eq!(reply.attr("to"), Some(ALICE));
                // Nobody else hears about it.
                let bob_one = net.id("bob@localhost/one");
                let bob_idle = net.id("bob@localhost/idle");
                net.expect_nothing(bob_one);
                net.expect_nothing(bob_idle);
                assert!(net.take_routed().is_empty());
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Remote domains and stanzas from outside.

#[test]
fn iq_to_a_remote_domain_is_routed_out() {
    let mut net = net();
    let alice = net.id(ALICE);
    net.send(
        alice,
        &format!("<iq to='remote.example' type='get' id='r1'>{PING}</iq>"),
    );
    net.expect_routed(&[&format!(
        "<iq from='{ALICE}' to='remote.example' type='get' id='r1'>{PING}</iq>"
    )]);
    net.quiet();
    net.send(
        alice,
        "<iq to='juliet@remote.example/b' type='result' id='r2'/>",
    );
    net.expect_routed(&[&format!(
        "<iq from='{ALICE}' to='juliet@remote.example/b' type='result' id='r2'/>"
    )]);
    net.quiet();
}

#[test]
fn routed_iqs_follow_the_same_rules_and_answers_go_back_out() {
    let mut net = Net::new(&["bob"]);
    let bob = net.online("bob", "one", None);
    let now = net.now();
    let romeo = "romeo@remote.example/o";
    // To a connected full JID: delivered.
    net.manager.handle_routed(
        routed(&format!(
            "<iq from='{romeo}' to='bob@localhost/one' type='get' id='1'>{PING}</iq>"
        )),
        now,
    );
    net.server.pump();
    net.expect_only(&[(
        bob,
        &[&format!(
            "<iq from='{romeo}' to='bob@localhost/one' type='get' id='1'>{PING}</iq>"
        )],
    )]);
    // To a missing full JID: service-unavailable routed back to the sender.
    net.manager.handle_routed(
        routed(&format!(
            "<iq from='{romeo}' to='bob@localhost/gone' type='get' id='2'>{PING}</iq>"
        )),
        now,
    );
    net.server.pump();
    net.expect_routed(&[&error_reply(
        "iq",
        Some("bob@localhost/gone"),
        romeo,
        Some("2"),
        "cancel",
        "service-unavailable",
        None,
    )]);
    net.quiet();
    // A result to a missing full JID: dropped.
    net.manager.handle_routed(
        routed(&format!(
            "<iq from='{romeo}' to='bob@localhost/gone' type='result' id='3'/>"
        )),
        now,
    );
    net.server.pump();
    net.quiet();
    // Ping to the server and to bob's account: answered out.
    net.manager.handle_routed(
        routed(&format!(
            "<iq from='{romeo}' to='localhost' type='get' id='4'>{PING}</iq>"
        )),
        now,
    );
    net.server.pump();
    net.expect_routed(&[&format!(
        "<iq from='localhost' to='{romeo}' type='result' id='4'/>"
    )]);
    net.quiet();
    net.manager.handle_routed(
        routed(&format!(
            "<iq from='{romeo}' to='bob@localhost' type='get' id='5'>{PING}</iq>"
        )),
        now,
    );
    net.server.pump();
    net.expect_routed(&[&format!(
        "<iq from='bob@localhost' to='{romeo}' type='result' id='5'/>"
    )]);
    net.quiet();
    // To a user that does not exist.
    net.manager.handle_routed(
        routed(&format!(
            "<iq from='{romeo}' to='nobody@localhost' type='get' id='6'>{PING}</iq>"
        )),
        now,
    );
    net.server.pump();
    net.expect_routed(&[&error_reply(
        "iq",
        Some("nobody@localhost"),
        romeo,
        Some("6"),
        "cancel",
        "service-unavailable",
        None,
    )]);
    net.quiet();
    // For a domain not served here: dropped, nothing goes back out.
    net.manager.handle_routed(
        routed(&format!(
            "<iq from='{romeo}' to='someone@elsewhere.example' type='get' id='7'>{PING}</iq>"
        )),
        now,
    );
    net.server.pump();
    net.quiet();
    // In the jabber:server namespace: accepted the same way.
    let server_ns = routed(&format!(
        "<iq xmlns='jabber:server' from='{romeo}' to='bob@localhost/one' type='get' id='8'>{PING}</iq>"
    ));
    net.manager.handle_routed(server_ns, now);
    net.server.pump();
    net.expect_only(&[(
        bob,
        &[&format!(
            "<iq from='{romeo}' to='bob@localhost/one' type='get' id='8'>{PING}</iq>"
        )],
    )]);
}

// ---------------------------------------------------------------------------
// Extension seam.

#[test]
fn registered_iq_namespace_goes_to_the_embedder_who_answers() {
    let mut net = net();
    let alice = net.id(ALICE);
    let bob = net.online("bob", "one", None);
    net.manager.register_iq_namespace("urn:example:thing");
    let thing = "<thing xmlns='urn:example:thing'/>";
    for (to, id, answer_from) in [
        (Some("localhost"), "t1", Some("localhost")),
        (Some("bob@localhost"), "t2", Some("bob@localhost")),
        (None, "t3", Some("alice@localhost")),
    ] {
        let to_attr = to.map(|t| format!(" to='{t}'")).unwrap_or_default();
        net.send(
            alice,
            &format!("<iq{to_attr} type='get' id='{id}'>{thing}</iq>"),
        );
        // Handed over with `from` stamped; the server does not answer.
        let events = net.take_stanza_events();
        let want = parse_stanza(&format!(
            "<iq from='{ALICE}'{to_attr} type='get' id='{id}'>{thing}</iq>"
        ));
        assert_eq!(events, vec![(Some(alice), want)]);
        net.quiet();
        // The embedder answers through handle_routed.
        let answer_from = answer_from
            .map(|f| format!(" from='{f}'"))
            .unwrap_or_default();
        let answer = format!(
            "<iq{answer_from} to='{ALICE}' type='result' id='{id}'><thing xmlns='urn:example:thing'>ok</thing></iq>"
        );
        let now = net.now();
        net.manager.handle_routed(parse_stanza(&answer), now);
        net.server.pump();
        net.expect_only(&[(alice, &[&answer])]);
    }
    // Full JIDs are not intercepted.
    net.send(
        alice,
        &format!("<iq to='bob@localhost/one' type='get' id='t4'>{thing}</iq>"),
    );
    net.expect_only(&[(
        bob,
        &[&format!(
            "<iq from='{ALICE}' to='bob@localhost/one' type='get' id='t4'>{thing}</iq>"
        )],
    )]);
    // From outside, the event carries no session.
    let now = net.now();
    let remote = "<iq from='romeo@remote.example/o' to='localhost' type='set' id='t5'><thing xmlns='urn:example:thing'/></iq>";
    net.manager.handle_routed(parse_stanza(remote), now);
    net.server.pump();
    assert_eq!(net.take_stanza_events(), vec![(None, parse_stanza(remote))]);
    net.quiet();
    // Other namespaces are still answered by the server.
    net.send(
        alice,
        &format!("<iq to='localhost' type='get' id='t6'>{PING}</iq>"),
    );
    net.expect_only(&[(alice, &[&result(Some("localhost"), "t6", "")])]);
}
