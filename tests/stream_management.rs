//! XEP-0198 stream management transcripts: enabling, counting in both
//! directions, acknowledgements, hibernation, resumption, expiry and what
//! happens to stanzas a session never acknowledged. Every test says what
//! each session receives and who receives nothing.

mod common;

use std::time::Duration;

use common::{Net, STAMP, service_unavailable};
use xmpp_session::testkit::{SmOp, SmWorld, TestServer};
use xmpp_session::{Config, Event, HibernationEnd, SessionId};

const SM: &str = "urn:xmpp:sm:3";
const ENABLE: &str = "<enable xmlns='urn:xmpp:sm:3' resume='true'/>";

fn config() -> xmpp_session::ConfigBuilder {
    TestServer::config()
}

fn net(config: Config) -> Net {
    Net::with_config(config, &["alice", "bob"])
}

fn default_net() -> Net {
    net(config().build().expect("valid config"))
}

/// alice/phone (available, stream management with resumption) and bob/b
/// (available) on a server with this configuration: the net, both
/// sessions and the resumption token.
fn phone_and_bob(config: xmpp_session::ConfigBuilder) -> (Net, SessionId, SessionId, String) {
    let mut n = net(config.build().expect("valid config"));
    let phone = n.online("alice", "phone", None);
    let bob = n.online("bob", "b", None);
    let token = enable(&mut n, phone);
    (n, phone, bob, token)
}

/// Sends `<enable resume='true'/>` and returns the token of `<enabled/>`.
fn enable(n: &mut Net, id: SessionId) -> String {
    n.send(id, ENABLE);
    let got = n.take(id);
    assert_eq!(got.len(), 1, "{got:?}");
    let enabled = &got[0];
    assert!(enabled.is("enabled", SM), "{enabled:?}");
    assert_eq!(enabled.attr("resume"), Some("true"));
    assert_eq!(enabled.attr("max"), Some("300"));
    enabled.attr("id").expect("a token").to_owned()
}

/// A new connection of `user` that authenticates and sends `<resume/>`.
fn resume(n: &mut Net, user: &str, previd: &str, h: u32) -> SessionId {
    let id = n.server.connect();
    n.server.authenticate_plain(id, user, "pass");
    n.send(
        id,
        &format!("<resume xmlns='{SM}' previd='{previd}' h='{h}'/>"),
    );
    id
}

fn chat(from: &str, to: &str, body: &str) -> String {
    format!("<message type='chat' to='{to}' from='{from}'><body>{body}</body></message>")
}

fn send_chat(n: &mut Net, id: SessionId, to: &str, body: &str) {
    n.send(
        id,
        &format!("<message type='chat' to='{to}'><body>{body}</body></message>"),
    );
}

fn hibernation_events(events: &[Event]) -> Vec<Event> {
    events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Hibernating { .. }
                    | Event::HibernationEnded { .. }
                    | Event::Resumed { .. }
                    | Event::StanzaQueued { .. }
                    | Event::Unbound { .. }
                    | Event::Closed { .. }
            )
        })
        .cloned()
        .collect()
}

/// Asserts what `id` received, takes the lifecycle events, and asserts
/// that nobody else received anything.
#[track_caller]
fn expect_with_events(n: &mut Net, id: SessionId, expected: &[&str]) -> Vec<Event> {
    n.server.expect(id, expected);
    let events = hibernation_events(&n.take_events());
    n.quiet();
    events
}

const PHONE: &str = "alice@localhost/phone";
const BOB: &str = "bob@localhost/b";

// ------------------------------------------------------------ enabling

#[test]
fn enable_with_and_without_resumption() {
    let (mut n, a, b, token) = phone_and_bob(config());
    assert_eq!(token.len(), 24);
    let s = n.manager.session(a).expect("session");
    assert!(s.sm_enabled() && s.resumable() && s.hibernating_until().is_none());

    n.send(b, "<enable xmlns='urn:xmpp:sm:3'/>");
    n.expect_only(&[(b, &["<enabled xmlns='urn:xmpp:sm:3'/>"])]);
    let s = n.manager.session(b).expect("session");
    assert!(s.sm_enabled() && !s.resumable());

    // The client's max lowers the timeout, never raises it.
    let c = n.online("alice", "tablet", None);
    n.send(c, "<enable xmlns='urn:xmpp:sm:3' resume='1' max='60'/>");
    let got = n.take(c);
    assert_eq!(got[0].attr("max"), Some("60"));
    n.quiet();
}

#[test]
fn enable_twice_before_bind_and_r_or_a_before_enable_fail() {
    let mut n = default_net();
    let failed = "<failed xmlns='urn:xmpp:sm:3'>\
        <unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>";
    let a = n.online("alice", "phone", None);
    n.send(
        a,
        "<r xmlns='urn:xmpp:sm:3'/><a xmlns='urn:xmpp:sm:3' h='0'/>",
    );
    n.expect_only(&[(a, &[failed, failed])]);
    enable(&mut n, a);
    n.send(a, ENABLE);
    n.expect_only(&[(a, &[failed])]);
    assert!(!n.is_closed(a));

    // Authenticated, not bound: enable and a resume of a bound session.
    let c = n.server.connect();
    n.server.authenticate_plain(c, "bob", "pass");
    n.send(c, ENABLE);
    n.server.expect(c, &[failed]);
    let d = n.online("bob", "b", None);
    n.send(d, &format!("<resume xmlns='{SM}' previd='x' h='0'/>"));
    n.expect_only(&[(d, &[failed])]);
    assert!(!n.is_closed(c) && !n.is_closed(d));
}

#[test]
fn without_stream_management_nothing_is_offered() {
    let mut n = net(config()
        .stream_management(false)
        .build()
        .expect("valid config"));
    let id = n.server.connect();
    n.server.open_stream(id);
    n.server.take(id);
    let a = n.online("alice", "phone", None);
    n.send(a, ENABLE);
    n.expect_only(&[(
        a,
        &["<failed xmlns='urn:xmpp:sm:3'>\
           <feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"],
    )]);
    assert!(!n.manager.session(a).expect("session").sm_enabled());
}

#[test]
fn the_feature_is_offered_after_authentication_only() {
    let mut s = TestServer::new();
    s.add_user("alice", "pass");
    let id = s.connect();
    s.open_stream(id);
    let raw = s.take_raw(id);
    assert!(!raw.contains(SM), "{raw}");
    let id2 = s.connect();
    s.open_stream(id2);
    s.send(
        id2,
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHBhc3M=</auth>",
    );
    s.take_raw(id2);
    s.open_stream(id2);
    let raw = s.take_raw(id2);
    assert!(raw.contains("<sm xmlns='urn:xmpp:sm:3'/>"), "{raw}");
}

// ------------------------------------------------------------ counting

#[test]
fn inbound_h_counts_stanzas_not_nonzas_pipelined_across_restarts() {
    let mut n = default_net();
    let b = n.online("bob", "b", None);
    let a = n.server.connect();
    // Everything in one write: header, SASL, restart, bind, enable,
    // three stanzas with nonzas between them, and a request.
    let header = TestServer::stream_header();
    n.send(
        a,
        &format!(
            "{header}<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHBhc3M=</auth>\
             {header}<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>phone</resource></bind></iq>\
             <enable xmlns='urn:xmpp:sm:3'/>\
             <message type='chat' to='{BOB}'><body>1</body></message>\
             <r xmlns='urn:xmpp:sm:3'/>\
             <iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>\
             <a xmlns='urn:xmpp:sm:3' h='0'/>\
             <presence/>\
             <r xmlns='urn:xmpp:sm:3'/>"
        ),
    );
    let got = n.take(a);
    let names: Vec<&str> = got.iter().map(|e| e.name()).collect();
    assert_eq!(
        names,
        [
            "features", "success", "features", "iq", "enabled", "a", "iq", "presence", "a"
        ],
        "{got:?}"
    );
    assert_eq!(got[5].attr("h"), Some("1"));
    assert_eq!(got[8].attr("h"), Some("3"));
    // The ping result and the own presence were counted as sent: two
    // unacknowledged, fewer than the 5 that make the server ask.
    n.server.expect(b, &[&chat(PHONE, BOB, "1")]);
}

#[test]
fn the_server_requests_acks_and_a_too_high_h_closes_the_stream() {
    let (mut n, a, b, _) = phone_and_bob(config().sm_request_ack_after(2));
    send_chat(&mut n, b, PHONE, "1");
    n.expect_only(&[(a, &[&chat(BOB, PHONE, "1")])]);
    send_chat(&mut n, b, PHONE, "2");
    n.expect_only(&[(a, &[&chat(BOB, PHONE, "2"), "<r xmlns='urn:xmpp:sm:3'/>"])]);
    // Outstanding request: no second one.
    send_chat(&mut n, b, PHONE, "3");
    n.expect_only(&[(a, &[&chat(BOB, PHONE, "3")])]);
    n.send(a, "<a xmlns='urn:xmpp:sm:3' h='3'/>");
    n.quiet();
    // Acknowledging the same count again is fine; more than sent is not.
    n.send(a, "<a xmlns='urn:xmpp:sm:3' h='3'/>");
    n.quiet();
    n.send(a, "<a xmlns='urn:xmpp:sm:3' h='5'/>");
    n.expect_only(&[(
        a,
        &["<stream:error xmlns:stream='http://etherx.jabber.org/streams'>\
           <undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
           <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>You acknowledged more stanzas than were sent</text>\
           <handled-count-too-high xmlns='urn:xmpp:sm:3' h='5' send-count='3'/></stream:error>"],
    )]);
    assert!(n.is_closed(a));
    // A stream error ends the session: it does not hibernate.
    assert!(n.manager.session(a).is_none());
}

// ------------------------------------------------------------ hibernation

/// alice/phone (stream management, resumable, available) and alice/desk
/// (available), bob/b (available). Returns (phone, desk, bob, token).
fn hibernating_setup(n: &mut Net) -> (SessionId, SessionId, SessionId, String) {
    let phone = n.online("alice", "phone", None);
    let desk = n.online("alice", "desk", Some(-1));
    let bob = n.online("bob", "b", None);
    let token = enable(n, phone);
    n.settle();
    n.disconnect(phone);
    (phone, desk, bob, token)
}

#[test]
fn a_lost_transport_hibernates_silently_and_queues() {
    let mut n = default_net();
    let start = n.now();
    let (phone, desk, bob, _) = hibernating_setup(&mut n);
    let until = start + Duration::from_secs(300);
    assert_eq!(
        hibernation_events(&n.take_events()),
        [Event::Hibernating {
            session: phone,
            jid: PHONE.parse().expect("jid"),
            until
        }]
    );
    let s = n.manager.session(phone).expect("still there");
    assert!(s.is_available() && s.hibernating_until() == Some(until));
    // Nobody sees it go: no unavailable presence to the sibling.
    n.quiet();
    // A message for it is queued, not refused and not sent anywhere else.
    send_chat(&mut n, bob, PHONE, "while away");
    let events = hibernation_events(&n.take_events());
    n.quiet();
    assert!(
        matches!(&events[..], [Event::StanzaQueued { session, .. }] if *session == phone),
        "{events:?}"
    );
    // To the bare JID: phone (priority 0) beats desk (-1), so it queues too.
    send_chat(&mut n, bob, "alice@localhost", "bare");
    n.quiet();
    let _ = desk;
}

#[test]
fn resume_retransmits_unacked_and_queued_stanzas_exactly_once() {
    let (mut n, phone, bob, token) = phone_and_bob(config().sm_request_ack_after(10));
    send_chat(&mut n, bob, PHONE, "1");
    send_chat(&mut n, bob, PHONE, "2");
    n.expect_only(&[(phone, &[&chat(BOB, PHONE, "1"), &chat(BOB, PHONE, "2")])]);
    // The client handled one message and one... then the socket drops.
    n.send(
        phone,
        "<message type='chat' to='bob@localhost/b'><body>up</body></message>",
    );
    n.expect_only(&[(bob, &[&chat(PHONE, BOB, "up")])]);
    n.disconnect(phone);
    send_chat(&mut n, bob, PHONE, "3");
    n.quiet();
    n.take_events();
    let new = resume(&mut n, "alice", &token, 1);
    let events = expect_with_events(
        &mut n,
        new,
        &[
            &format!("<resumed xmlns='{SM}' previd='{token}' h='1'/>"),
            &chat(BOB, PHONE, "2"),
            &chat(BOB, PHONE, "3"),
        ],
    );
    assert_eq!(
        events,
        [
            Event::HibernationEnded {
                session: phone,
                jid: PHONE.parse().expect("jid"),
                reason: HibernationEnd::Resumed
            },
            Event::Resumed {
                session: new,
                previous: phone,
                jid: PHONE.parse().expect("jid")
            },
            Event::Closed { session: phone },
        ]
    );
    // The resource lives on under the new handle; counting continues.
    assert!(n.manager.session(phone).is_none());
    let s = n.manager.session(new).expect("resumed");
    assert!(s.is_available() && s.resumable() && s.hibernating_until().is_none());
    assert_eq!(
        n.manager.session_id(&PHONE.parse().expect("jid")),
        Some(new)
    );
    send_chat(&mut n, bob, PHONE, "4");
    n.server.expect(new, &[&chat(BOB, PHONE, "4")]);
    n.send(new, "<r xmlns='urn:xmpp:sm:3'/>");
    n.server.expect(new, &["<a xmlns='urn:xmpp:sm:3' h='1'/>"]);
    // h counts 2, 3 and 4 as sent after the resume point: acknowledging 4
    // stanzas (1 before + 3) is right, 5 would be too many.
    n.send(new, "<a xmlns='urn:xmpp:sm:3' h='4'/>");
    assert!(!n.is_closed(new));
    // A second drop and resume with the same token: nothing to resend.
    n.disconnect(new);
    let third = resume(&mut n, "alice", &token, 4);
    n.server.expect(
        third,
        &[&format!("<resumed xmlns='{SM}' previd='{token}' h='1'/>")],
    );
    n.quiet();
}

#[test]
fn resume_while_the_old_transport_is_open_closes_it_with_conflict() {
    let (mut n, phone, bob, token) = phone_and_bob(config());
    send_chat(&mut n, bob, PHONE, "1");
    n.expect_only(&[(phone, &[&chat(BOB, PHONE, "1")])]);
    let new = resume(&mut n, "alice", &token, 0);
    n.server.expect(
        phone,
        &["<stream:error xmlns:stream='http://etherx.jabber.org/streams'>\
           <conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
           <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Replaced by a resumed session</text></stream:error>"],
    );
    assert!(n.is_closed(phone));
    let events = expect_with_events(
        &mut n,
        new,
        &[
            &format!("<resumed xmlns='{SM}' previd='{token}' h='0'/>"),
            &chat(BOB, PHONE, "1"),
        ],
    );
    assert_eq!(
        events,
        [
            Event::Resumed {
                session: new,
                previous: phone,
                jid: PHONE.parse().expect("jid")
            },
            Event::Closed { session: phone },
        ]
    );
    // The old socket closing later changes nothing.
    n.disconnect(phone);
    assert!(n.manager.session(new).is_some_and(|s| s.is_available()));
    n.quiet();
}

#[test]
fn unknown_foreign_and_expired_tokens_fail() {
    let mut n = default_net();
    let (phone, desk, bob, token) = hibernating_setup(&mut n);
    let not_found = |h: Option<u32>| {
        let h = h.map(|h| format!(" h='{h}'")).unwrap_or_default();
        format!(
            "<failed xmlns='urn:xmpp:sm:3'{h}>\
             <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"
        )
    };
    let x = resume(&mut n, "alice", "no-such-token", 0);
    n.server.expect(x, &[&not_found(None)]);
    // bob cannot take alice's session.
    let y = resume(&mut n, "bob", &token, 0);
    n.server.expect(y, &[&not_found(None)]);
    assert!(
        n.manager
            .session(phone)
            .is_some_and(|s| s.hibernating_until().is_some())
    );
    n.quiet();
    n.take_events();
    // Expiry: like a disconnect.
    n.server.advance(Duration::from_secs(300));
    let events = hibernation_events(&n.take_events());
    n.expect_only(&[(
        desk,
        &["<presence type='unavailable' from='alice@localhost/phone' to='alice@localhost/desk'/>"],
    )]);
    assert_eq!(
        events,
        [
            Event::HibernationEnded {
                session: phone,
                jid: PHONE.parse().expect("jid"),
                reason: HibernationEnd::Expired
            },
            Event::Unbound {
                session: phone,
                jid: PHONE.parse().expect("jid")
            },
            Event::Closed { session: phone },
        ]
    );
    // A late resume learns the last h (0 stanzas were handled).
    let z = resume(&mut n, "alice", &token, 0);
    n.server.expect(z, &[&not_found(Some(0))]);
    let _ = bob;
}

#[test]
fn remembered_tokens_are_bounded_by_age() {
    let mut n = net(config()
        .sm_expired_tokens(1, Duration::from_secs(10))
        .build()
        .expect("valid config"));
    let (_, _, _, token) = hibernating_setup(&mut n);
    n.server.advance(Duration::from_secs(300));
    n.server.advance(Duration::from_secs(11));
    let z = resume(&mut n, "alice", &token, 0);
    n.server.expect(
        z,
        &["<failed xmlns='urn:xmpp:sm:3'>\
           <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"],
    );
}

// ------------------------------------------------------------ expiry rule

#[test]
fn expiry_sends_body_messages_to_another_resource_errors_iqs_drops_the_rest() {
    let mut n = default_net();
    let (phone, desk, bob, _) = hibernating_setup(&mut n);
    // desk has priority -1: it only gets what is addressed to it, but a
    // message re-delivered to the bare JID... goes offline instead (RFC
    // 6121: negative priority receives no bare-JID messages). Make it 0.
    n.send(desk, "<presence><priority>0</priority></presence>");
    n.settle();
    send_chat(&mut n, bob, PHONE, "keep me");
    n.send(bob, &format!("<message type='chat' to='{PHONE}'><active xmlns='http://jabber.org/protocol/chatstates'/></message>"));
    n.send(
        bob,
        &format!("<message type='headline' to='{PHONE}'><body>news</body></message>"),
    );
    n.send(
        bob,
        &format!("<iq type='get' id='v1' to='{PHONE}'><query xmlns='jabber:iq:version'/></iq>"),
    );
    n.send(bob, &format!("<iq type='result' id='r1' to='{PHONE}'/>"));
    n.send(bob, &format!("<presence to='{PHONE}'/>"));
    n.quiet();
    n.take_events();
    let now = n.now();
    assert!(n.manager.end_hibernation(phone, now));
    assert!(!n.manager.end_hibernation(phone, now));
    n.server.pump();
    let events = hibernation_events(&n.take_events());
    n.expect_only(&[
        (
            desk,
            &[
                "<presence type='unavailable' from='alice@localhost/phone' to='alice@localhost/desk'/>",
                &chat(BOB, PHONE, "keep me"),
            ],
        ),
        // bob is no contact: no presence for him, only the iq error.
        (bob, &[&service_unavailable("iq", Some(PHONE), BOB, "v1")]),
    ]);
    assert!(matches!(
        events.first(),
        Some(Event::HibernationEnded {
            reason: HibernationEnd::Ended,
            ..
        })
    ));
}

#[test]
fn queue_overflow_expires_and_stores_body_messages_offline() {
    let (mut n, phone, bob, _) = phone_and_bob(config().sm_max_queue(2).sm_request_ack_after(2));
    n.disconnect(phone);
    n.take_events();
    for i in 1..=3 {
        send_chat(&mut n, bob, PHONE, &i.to_string());
    }
    // The third overflows the queue: the session ends, and all three
    // messages are stored offline, in order; bob (no contact) gets nothing.
    let events = hibernation_events(&n.take_events());
    n.quiet();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::HibernationEnded {
                reason: HibernationEnd::QueueFull,
                ..
            }
        )),
        "{events:?}"
    );
    assert!(n.manager.session(phone).is_none());
    let id = n.server.login("alice", "again");
    n.send(id, "<presence/>");
    let got = n.take(id);
    let bodies: Vec<String> = got
        .iter()
        .filter(|e| e.name() == "message")
        .map(|e| {
            assert!(
                e.get_child("delay", "urn:xmpp:delay")
                    .is_some_and(|d| d.attr("stamp") == Some(STAMP))
            );
            e.get_child("body", "jabber:client")
                .map(|b| b.text())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(bodies, ["1", "2", "3"], "{got:?}");
}

#[test]
fn a_connected_session_over_the_bound_keeps_its_stream_but_not_resumption() {
    let (mut n, phone, bob, token) =
        phone_and_bob(config().sm_max_queue(2).sm_request_ack_after(2));
    for i in 1..=3 {
        send_chat(&mut n, bob, PHONE, &i.to_string());
    }
    n.expect_only(&[(
        phone,
        &[
            &chat(BOB, PHONE, "1"),
            &chat(BOB, PHONE, "2"),
            "<r xmlns='urn:xmpp:sm:3'/>",
            &chat(BOB, PHONE, "3"),
        ],
    )]);
    assert!(!n.is_closed(phone));
    let s = n.manager.session(phone).expect("session");
    assert!(s.sm_enabled() && !s.resumable());
    // Acknowledgements are still checked against what was sent.
    n.send(phone, "<a xmlns='urn:xmpp:sm:3' h='3'/>");
    assert!(!n.is_closed(phone));
    let x = resume(&mut n, "alice", &token, 3);
    n.server.expect(
        x,
        &["<failed xmlns='urn:xmpp:sm:3' h='0'>\
           <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"],
    );
    n.take_events();
    n.disconnect(phone);
    assert!(n.manager.session(phone).is_none(), "no hibernation");
    let events = hibernation_events(&n.take_events());
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Hibernating { .. })),
        "{events:?}"
    );
}

#[test]
fn a_clean_close_does_not_hibernate_and_unacked_messages_go_offline() {
    let (mut n, phone, bob, _) = phone_and_bob(config());
    send_chat(&mut n, bob, PHONE, "unacked");
    n.expect_only(&[(phone, &[&chat(BOB, PHONE, "unacked")])]);
    n.send(phone, "</stream:stream>");
    assert!(n.manager.session(phone).is_none());
    n.expect_only(&[(phone, &[])]);
    let _ = bob;
    let id = n.server.login("alice", "later");
    n.send(id, "<presence/>");
    let got = n.take(id);
    let bodies: Vec<String> = got
        .iter()
        .filter(|e| e.name() == "message")
        .filter_map(|e| e.get_child("body", "jabber:client").map(|b| b.text()))
        .collect();
    assert_eq!(bodies, ["unacked"]);
}

#[test]
fn closing_a_hibernating_session_ends_it_without_writing() {
    let mut n = default_net();
    let (phone, desk, _bob, _) = hibernating_setup(&mut n);
    n.take_events();
    let now = n.now();
    n.manager.close_cleanly(phone, now);
    n.server.pump();
    assert!(n.manager.session(phone).is_none());
    n.server.expect_nothing(phone);
    let _ = desk;
    let events = hibernation_events(&n.take_events());
    assert!(matches!(
        events.first(),
        Some(Event::HibernationEnded {
            reason: HibernationEnd::Ended,
            ..
        })
    ));
}

// ------------------------------------------------------------ property

fn sm_op() -> impl proptest::strategy::Strategy<Value = SmOp> {
    use proptest::prelude::*;
    prop_oneof![
        4 => Just(SmOp::BobMessage),
        1 => Just(SmOp::BobIq),
        3 => Just(SmOp::Process),
        2 => Just(SmOp::Ack),
        1 => Just(SmOp::Disconnect),
        1 => Just(SmOp::Resume),
        1 => (0u64..400).prop_map(SmOp::Advance),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// Random stanzas, acknowledgements, drops, resumes and timeouts: a
    /// resumed session never gets a stanza twice, and nothing bob sends is
    /// lost without an error reply or offline storage.
    #[test]
    fn nothing_is_lost_or_delivered_twice(ops in proptest::collection::vec(sm_op(), 0..40)) {
        let mut world = SmWorld::new(6);
        for op in &ops {
            world.apply(op);
        }
        world.finish();
    }
}

// ------------------------------------------------- with client state indication

const CHAT_STATE: &str = "<message type='chat' to='alice@localhost/phone'>\
    <composing xmlns='http://jabber.org/protocol/chatstates'/></message>";

fn held_chat_state() -> String {
    format!(
        "<message type='chat' to='{PHONE}' from='{BOB}'>\
         <composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
    )
}

/// alice/phone (resumable) goes inactive and bob sends it a chat state,
/// which is held (XEP-0352): not written, so not yet sent for stream
/// management. Returns the net, the phone and its resumption token.
fn inactive_phone_with_a_held_chat_state() -> (Net, SessionId, String) {
    let (mut n, phone, bob, token) = phone_and_bob(config());
    n.send(phone, "<inactive xmlns='urn:xmpp:csi:0'/>");
    n.send(bob, CHAT_STATE);
    n.quiet();
    (n, phone, token)
}

#[test]
fn stanzas_held_for_an_inactive_client_are_queued_for_resumption() {
    let (mut n, phone, token) = inactive_phone_with_a_held_chat_state();
    n.disconnect(phone);
    n.take_events();
    n.quiet();
    let new = resume(&mut n, "alice", &token, 0);
    n.server.expect(
        new,
        &[
            &format!("<resumed xmlns='{SM}' previd='{token}' h='0'/>"),
            &held_chat_state(),
        ],
    );
    n.take_events();
    n.quiet();
    // Exactly once: acknowledging it is right, a second one would be too many.
    n.send(new, "<a xmlns='urn:xmpp:sm:3' h='1'/>");
    assert!(!n.is_closed(new));
    n.quiet();
}

#[test]
fn a_held_stanza_counts_once_it_is_flushed() {
    let (mut n, phone, _) = inactive_phone_with_a_held_chat_state();
    // The client asks for the count: its input flushes the held stanza
    // first, which then counts as sent (h=1 is acknowledged, not too high).
    n.send(phone, "<a xmlns='urn:xmpp:sm:3' h='1'/>");
    n.server.expect(phone, &[&held_chat_state()]);
    assert!(!n.is_closed(phone));
    n.quiet();
}

#[test]
fn what_is_held_for_an_inactive_client_ends_with_a_session_that_cannot_resume() {
    // Stream management without resumption: the session ends with its
    // transport; a held chat state (no body) is dropped, not written to the
    // dead transport or anywhere else.
    let mut n = default_net();
    let phone = n.online("alice", "phone", None);
    let bob = n.online("bob", "b", None);
    n.send(phone, "<enable xmlns='urn:xmpp:sm:3'/>");
    n.server
        .expect(phone, &["<enabled xmlns='urn:xmpp:sm:3'/>"]);
    n.send(phone, "<inactive xmlns='urn:xmpp:csi:0'/>");
    n.send(bob, CHAT_STATE);
    n.quiet();
    n.disconnect(phone);
    n.take_events();
    n.quiet();
    // The chat state is dropped with the session (no body); nothing was
    // refused to bob, and nothing reached anybody else.
    let again = n.online("alice", "phone", None);
    n.quiet();
    let _ = again;
}
