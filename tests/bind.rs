//! Resource binding (RFC 6120 §7): chosen and generated resources,
//! resourceprep, every conflict policy, the per-account limit, the legacy
//! `<session/>` iq, and what an unbound session may send.

use xmpp_session::testkit::TestServer;
use xmpp_session::{Config, ConflictPolicy, Event, SessionId, SessionKind};

const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";

/// Forgets everything the client received so far (elements and bytes).
fn drain(server: &mut TestServer, c: SessionId) {
    server.take(c);
    server.take_raw(c);
}

/// Connects and authenticates `user`, ready to bind; output drained.
fn authenticated(server: &mut TestServer, user: &str) -> SessionId {
    let c = server.connect();
    server.authenticate_plain(c, user, "pass");
    drain(server, c);
    c
}

fn bind_iq(id: &str, resource: Option<&str>) -> String {
    let body = resource
        .map(|r| format!("<resource>{r}</resource>"))
        .unwrap_or_default();
    format!("<iq type='set' id='{id}'><bind xmlns='{NS_BIND}'>{body}</bind></iq>")
}

fn bind_result(id: &str, jid: &str) -> String {
    format!("<iq type='result' id='{id}'><bind xmlns='{NS_BIND}'><jid>{jid}</jid></bind></iq>")
}

fn bind_error(id: &str, kind: &str, condition: &str, text: &str) -> String {
    format!(
        "<iq type='error' id='{id}'><error type='{kind}'><{condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>{text}</text></error></iq>"
    )
}

fn server_with(policy: ConflictPolicy) -> TestServer {
    let mut server = TestServer::with_config(
        Config::builder("localhost")
            .require_tls(false)
            .allow_plain_without_tls(true)
            .conflict_policy(policy)
            .build()
            .expect("valid config"),
    );
    server.add_user("romeo", "pass");
    server.add_user("juliet", "pass");
    server
}

/// The resource part of the `<jid/>` in a single bind result.
fn bound_resource(server: &mut TestServer, c: SessionId, iq_id: &str) -> String {
    let got = server.take(c);
    assert_eq!(got.len(), 1, "{got:?}");
    let jid = got[0]
        .get_child("bind", NS_BIND)
        .and_then(|b| b.get_child("jid", NS_BIND))
        .map(|j| j.text())
        .unwrap_or_else(|| panic!("not a bind result: {got:?}"));
    assert_eq!(got[0].attr("id"), Some(iq_id));
    assert_eq!(got[0].attr("type"), Some("result"));
    jid.strip_prefix("romeo@localhost/")
        .expect("romeo's JID")
        .to_owned()
}

#[test]
fn client_chosen_resource() {
    let mut server = server_with(ConflictPolicy::KickOld);
    let c = authenticated(&mut server, "romeo");
    server.take_events();
    server.send(c, &bind_iq("b1", Some("orchard")));
    server.expect(c, &[&bind_result("b1", "romeo@localhost/orchard")]);
    let session = server.manager.session(c).unwrap();
    assert_eq!(session.kind(), SessionKind::Bound);
    assert_eq!(session.resource(), Some("orchard"));
    assert_eq!(
        session.full_jid().map(|j| j.as_str()),
        Some("romeo@localhost/orchard")
    );
    let events = server.take_events();
    assert!(
        events.iter().any(|e| matches!(e, Event::Bound { session, jid } if *session == c && jid.as_str() == "romeo@localhost/orchard")),
        "{events:?}"
    );
}

#[test]
fn request_from_and_to_are_not_echoed() {
    let mut server = server_with(ConflictPolicy::KickOld);
    let c = authenticated(&mut server, "romeo");
    server.send(
        c,
        &format!(
            "<iq type='set' id='b1' from='mallory@evil.example' to='localhost'><bind xmlns='{NS_BIND}'>\
             <resource>orchard</resource></bind></iq>"
        ),
    );
    server.expect(
        c,
        &[&format!(
            "<iq type='result' id='b1' from='localhost'><bind xmlns='{NS_BIND}'><jid>romeo@localhost/orchard</jid>\
             </bind></iq>"
        )],
    );
}

#[test]
fn server_generated_resources_are_unique() {
    let mut server = server_with(ConflictPolicy::KickOld);
    let mut seen = Vec::new();
    for (i, body) in ["", "<resource/>", "<resource></resource>"]
        .iter()
        .enumerate()
    {
        let c = authenticated(&mut server, "romeo");
        let id = format!("g{i}");
        server.send(
            c,
            &format!("<iq type='set' id='{id}'><bind xmlns='{NS_BIND}'>{body}</bind></iq>"),
        );
        let resource = bound_resource(&mut server, c, &id);
        assert_eq!(resource.len(), 12, "{resource}");
        assert!(
            resource
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{resource}"
        );
        assert!(!seen.contains(&resource), "{resource} handed out twice");
        assert_eq!(
            server.manager.session(c).unwrap().resource(),
            Some(resource.as_str())
        );
        seen.push(resource);
    }
}

#[test]
fn resource_is_resourceprepped() {
    let mut server = server_with(ConflictPolicy::KickOld);
    for (requested, prepared) in [
        // Fullwidth letters are mapped to their ASCII forms (NFKC).
        ("\u{FF2C}\u{FF41}\u{FF50}\u{FF54}\u{FF4F}\u{FF50}", "Laptop"),
        // Compatibility ligature and Roman numeral.
        ("\u{FB01}eld\u{2163}", "fieldIV"),
        // Soft hyphen is mapped to nothing.
        ("or\u{AD}chard", "orchard"),
    ] {
        let c = authenticated(&mut server, "romeo");
        server.send(c, &bind_iq("p1", Some(requested)));
        assert_eq!(bound_resource(&mut server, c, "p1"), prepared);
    }
}

#[test]
fn prepared_resources_conflict_with_their_canonical_form() {
    let mut server = server_with(ConflictPolicy::RefuseNew);
    let first = authenticated(&mut server, "romeo");
    server.send(first, &bind_iq("b1", Some("Laptop")));
    server.expect(first, &[&bind_result("b1", "romeo@localhost/Laptop")]);
    let second = authenticated(&mut server, "romeo");
    server.send(
        second,
        &bind_iq(
            "b2",
            Some("\u{FF2C}\u{FF41}\u{FF50}\u{FF54}\u{FF4F}\u{FF50}"),
        ),
    );
    server.expect(
        second,
        &[&bind_error(
            "b2",
            "cancel",
            "conflict",
            "Resource already exists",
        )],
    );
}

#[test]
fn invalid_resources_are_bad_request() {
    let mut server = server_with(ConflictPolicy::KickOld);
    for bad in [
        "\u{E000}private".to_owned(),
        "left\u{200E}mark".to_owned(),
        "\u{80}control".to_owned(),
        "a".repeat(1024),
    ] {
        let c = authenticated(&mut server, "romeo");
        server.send(c, &bind_iq("x1", Some(&bad)));
        server.expect(
            c,
            &[&bind_error(
                "x1",
                "modify",
                "bad-request",
                "The requested resource is not valid",
            )],
        );
        assert_eq!(
            server.manager.session(c).unwrap().kind(),
            SessionKind::Authenticated
        );
        // The session may try again.
        server.send(c, &bind_iq("x2", Some("fine")));
        assert_eq!(bound_resource(&mut server, c, "x2"), "fine");
        server.disconnect(c);
    }
}

#[test]
fn longest_valid_resource_is_accepted() {
    let mut server = server_with(ConflictPolicy::KickOld);
    let c = authenticated(&mut server, "romeo");
    let long = "a".repeat(1023);
    server.send(c, &bind_iq("l1", Some(&long)));
    assert_eq!(bound_resource(&mut server, c, "l1"), long);
}

#[test]
fn resource_with_child_elements_is_bad_request() {
    let mut server = server_with(ConflictPolicy::KickOld);
    let c = authenticated(&mut server, "romeo");
    server.send(
        c,
        &format!(
            "<iq type='set' id='e1'><bind xmlns='{NS_BIND}'><resource>a<b/></resource></bind></iq>"
        ),
    );
    server.expect(
        c,
        &[&bind_error(
            "e1",
            "modify",
            "bad-request",
            "Invalid resource element",
        )],
    );
}

/// A stanza before authentication: the `not-authorized` stream error
/// (RFC 6120 §4.9.3.12), the stream closes, nothing is answered or routed.
#[track_caller]
fn assert_pre_auth_close(server: &mut TestServer, c: SessionId, witness: SessionId) {
    assert_eq!(
        server.take_raw(c),
        "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
         </stream:error></stream:stream>"
    );
    assert!(server.is_closed(c));
    assert!(server.manager.session(c).is_none());
    assert_nothing_escaped(server, witness);
}

/// The witness received nothing, nothing was routed, and no stanza reached
/// the embedder.
#[track_caller]
fn assert_nothing_escaped(server: &mut TestServer, witness: SessionId) {
    server.expect_nothing(witness);
    assert!(server.take_routed().is_empty());
    assert!(
        !server
            .take_events()
            .iter()
            .any(|e| matches!(e, Event::Stanza { .. })),
        "a stanza from an unbound session reached the embedder"
    );
}

#[test]
fn bind_before_authentication_closes_with_not_authorized() {
    let mut server = server_with(ConflictPolicy::KickOld);
    let witness = server.login("juliet", "balcony");
    drain(&mut server, witness);
    server.take_events();
    let c = server.connect();
    server.open_stream(c);
    drain(&mut server, c);
    server.send(c, &bind_iq("b1", Some("orchard")));
    assert_pre_auth_close(&mut server, c, witness);
}

#[test]
fn bind_with_type_get_is_bad_request() {
    let mut server = server_with(ConflictPolicy::KickOld);
    let c = authenticated(&mut server, "romeo");
    server.send(
        c,
        &format!("<iq type='get' id='g1'><bind xmlns='{NS_BIND}'><resource>orchard</resource></bind></iq>"),
    );
    server.expect(
        c,
        &[&bind_error(
            "g1",
            "modify",
            "bad-request",
            "Resource binding uses an iq of type 'set'",
        )],
    );
    assert_eq!(
        server.manager.session(c).unwrap().kind(),
        SessionKind::Authenticated
    );
}

// --- conflict policies -------------------------------------------------------

#[test]
fn kick_old_replaces_the_old_session() {
    let mut server = server_with(ConflictPolicy::KickOld);
    let old = server.login("romeo", "orchard");
    drain(&mut server, old);
    let new = authenticated(&mut server, "romeo");
    server.take_events();
    server.send(new, &bind_iq("b1", Some("orchard")));
    server.expect(new, &[&bind_result("b1", "romeo@localhost/orchard")]);
    assert_eq!(
        server.take_raw(old),
        "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Replaced by new connection</text></stream:error>\
         </stream:stream>"
    );
    assert!(server.is_closed(old));
    assert!(!server.is_closed(new));
    assert!(server.manager.session(old).is_none());
    let jid = xmpp_session::jid::FullJid::new("romeo@localhost/orchard").unwrap();
    assert_eq!(
        server.manager.session_by_jid(&jid).map(|s| s.id()),
        Some(new)
    );
    let events = server.take_events();
    let unbound = events
        .iter()
        .position(|e| matches!(e, Event::Unbound { session, jid } if *session == old && jid.as_str() == "romeo@localhost/orchard"))
        .unwrap_or_else(|| panic!("no Unbound for the old session: {events:?}"));
    let bound = events
        .iter()
        .position(|e| matches!(e, Event::Bound { session, .. } if *session == new))
        .unwrap_or_else(|| panic!("no Bound for the new session: {events:?}"));
    assert!(unbound < bound, "{events:?}");
    assert!(
        events.contains(&Event::Closed { session: old }),
        "{events:?}"
    );
    let resources: Vec<SessionId> = server
        .manager
        .resources(&jid.to_bare())
        .map(|s| s.id())
        .collect();
    assert_eq!(resources, vec![new]);
}

#[test]
fn refuse_new_keeps_the_old_session() {
    let mut server = server_with(ConflictPolicy::RefuseNew);
    let old = server.login("romeo", "orchard");
    drain(&mut server, old);
    let new = authenticated(&mut server, "romeo");
    server.send(new, &bind_iq("b1", Some("orchard")));
    server.expect(
        new,
        &[&bind_error(
            "b1",
            "cancel",
            "conflict",
            "Resource already exists",
        )],
    );
    server.expect_nothing(old);
    assert!(!server.is_closed(old));
    assert_eq!(
        server.manager.session(new).unwrap().kind(),
        SessionKind::Authenticated
    );
    // Another resource still works.
    server.send(new, &bind_iq("b2", Some("balcony")));
    server.expect(new, &[&bind_result("b2", "romeo@localhost/balcony")]);
}

#[test]
fn add_suffix_numbers_the_new_sessions() {
    let mut server = server_with(ConflictPolicy::AddSuffix);
    let first = server.login("romeo", "res");
    drain(&mut server, first);
    let mut sessions = Vec::new();
    for (i, expected) in ["res#1", "res#2"].iter().enumerate() {
        let c = authenticated(&mut server, "romeo");
        let id = format!("s{i}");
        server.send(c, &bind_iq(&id, Some("res")));
        server.expect(
            c,
            &[&bind_result(&id, &format!("romeo@localhost/{expected}"))],
        );
        assert_eq!(
            server.manager.session(c).unwrap().resource(),
            Some(*expected)
        );
        sessions.push(c);
    }
    server.expect_nothing(first);
    assert!(!server.is_closed(first));
    // The smallest free number is reused.
    server.disconnect(sessions[0]);
    let c = authenticated(&mut server, "romeo");
    server.send(c, &bind_iq("s9", Some("res")));
    server.expect(c, &[&bind_result("s9", "romeo@localhost/res#1")]);
}

#[test]
fn max_resources_per_user_is_resource_constraint() {
    let mut server = TestServer::with_config(
        Config::builder("localhost")
            .require_tls(false)
            .allow_plain_without_tls(true)
            .max_resources_per_user(2)
            .build()
            .expect("valid config"),
    );
    server.add_user("romeo", "pass");
    server.add_user("juliet", "pass");
    server.login("romeo", "one");
    server.login("romeo", "two");
    let c = authenticated(&mut server, "romeo");
    server.send(c, &bind_iq("b3", Some("three")));
    server.expect(
        c,
        &[&bind_error(
            "b3",
            "wait",
            "resource-constraint",
            "Too many resources bound for this account",
        )],
    );
    // A generated resource is refused the same way.
    server.send(c, &bind_iq("b4", None));
    server.expect(
        c,
        &[&bind_error(
            "b4",
            "wait",
            "resource-constraint",
            "Too many resources bound for this account",
        )],
    );
    // Replacing an existing resource is not an extra one.
    server.send(c, &bind_iq("b5", Some("two")));
    server.expect(c, &[&bind_result("b5", "romeo@localhost/two")]);
    // Other accounts are not affected.
    let j = authenticated(&mut server, "juliet");
    server.send(j, &bind_iq("j1", Some("balcony")));
    server.expect(j, &[&format!(
        "<iq type='result' id='j1'><bind xmlns='{NS_BIND}'><jid>juliet@localhost/balcony</jid></bind></iq>"
    )]);
}

// --- after binding -------------------------------------------------------------

#[test]
fn legacy_session_iq_gets_an_empty_result() {
    let mut server = server_with(ConflictPolicy::KickOld);
    let c = server.login("romeo", "orchard");
    drain(&mut server, c);
    server.send(
        c,
        "<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>",
    );
    server.expect(
        c,
        &["<iq type='result' id='s1' to='romeo@localhost/orchard'/>"],
    );
    server.send(
        c,
        "<iq type='set' id='s2' to='localhost'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>",
    );
    server.expect(
        c,
        &["<iq type='result' id='s2' from='localhost' to='romeo@localhost/orchard'/>"],
    );
}

#[test]
fn legacy_session_iq_before_bind_is_service_unavailable() {
    let mut server = server_with(ConflictPolicy::KickOld);
    let c = authenticated(&mut server, "romeo");
    server.send(
        c,
        "<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>",
    );
    server.expect(
        c,
        &["<iq type='error' id='s1'><error type='cancel'>\
           <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"],
    );
}

/// Sends each stanza a session may not send before binding, and checks the
/// replies; `witness` is a bound session that must receive nothing.
fn check_unbound_stanzas(server: &mut TestServer, c: SessionId, witness: SessionId) {
    let unavailable = "<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>";
    server.send(
        c,
        "<message to='juliet@localhost/balcony' id='m1' type='chat'><body>hi</body></message>",
    );
    server.expect(
        c,
        &[&format!(
            "<message from='juliet@localhost/balcony' id='m1' type='error'>{unavailable}</message>"
        )],
    );
    server.send(c, "<presence/>");
    server.expect(
        c,
        &[&format!("<presence type='error'>{unavailable}</presence>")],
    );
    server.send(c, "<presence to='juliet@localhost' type='subscribe'/>");
    server.expect(
        c,
        &[&format!(
            "<presence from='juliet@localhost' type='error'>{unavailable}</presence>"
        )],
    );
    server.send(
        c,
        "<iq type='get' id='q1' to='juliet@localhost/balcony'><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    server.expect(
        c,
        &[&format!(
            "<iq from='juliet@localhost/balcony' id='q1' type='error'>{unavailable}</iq>"
        )],
    );
    server.send(
        c,
        "<iq type='get' id='q2'><query xmlns='jabber:iq:roster'/></iq>",
    );
    server.expect(
        c,
        &[&format!("<iq id='q2' type='error'>{unavailable}</iq>")],
    );
    // Results and errors are dropped silently.
    server.send(
        c,
        "<iq type='result' id='q3' to='juliet@localhost/balcony'/>",
    );
    server.send(
        c,
        "<iq type='error' id='q4' to='juliet@localhost/balcony'><error type='cancel'>\
         <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
    );
    server.send(c, "<message type='error' to='juliet@localhost/balcony'/>");
    server.send(c, "<iq type='bogus' id='q5'/>");
    server.expect_nothing(c);
    assert!(!server.is_closed(c));
    assert_nothing_escaped(server, witness);
}

#[test]
fn stanzas_before_bind_are_refused_and_never_routed() {
    let mut server = server_with(ConflictPolicy::KickOld);
    let juliet = server.login("juliet", "balcony");
    drain(&mut server, juliet);
    server.take_events();
    let c = authenticated(&mut server, "romeo");
    check_unbound_stanzas(&mut server, c, juliet);
    // The session can still bind afterwards.
    server.send(c, &bind_iq("b1", Some("orchard")));
    server.expect(c, &[&bind_result("b1", "romeo@localhost/orchard")]);
}

#[test]
fn stanzas_before_authentication_close_the_stream() {
    // Every kind, including results and errors that an unbound but
    // authenticated session may send and have dropped.
    for stanza in [
        "<message to='juliet@localhost/balcony' id='m1' type='chat'><body>hi</body></message>",
        "<presence/>",
        "<presence to='juliet@localhost' type='subscribe'/>",
        "<iq type='get' id='q1' to='juliet@localhost/balcony'><ping xmlns='urn:xmpp:ping'/></iq>",
        "<iq type='get' id='q2'><query xmlns='jabber:iq:roster'/></iq>",
        "<iq type='result' id='q3' to='juliet@localhost/balcony'/>",
        "<message type='error' to='juliet@localhost/balcony'/>",
        "<iq type='bogus' id='q5'/>",
    ] {
        let mut server = server_with(ConflictPolicy::KickOld);
        let juliet = server.login("juliet", "balcony");
        drain(&mut server, juliet);
        server.take_events();
        let c = server.connect();
        server.open_stream(c);
        drain(&mut server, c);
        server.send(c, stanza);
        assert_pre_auth_close(&mut server, c, juliet);
    }
}

#[test]
fn remote_addressees_are_not_routed_before_bind() {
    let mut server = server_with(ConflictPolicy::KickOld);
    let c = authenticated(&mut server, "romeo");
    server.send(
        c,
        "<message to='someone@remote.example' id='r1'><body>hi</body></message>",
    );
    server.expect(
        c,
        &[
            "<message from='someone@remote.example' id='r1' type='error'><error type='cancel'>\
           <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
        ],
    );
    assert!(server.take_routed().is_empty());
}

#[test]
fn unbind_on_disconnect() {
    let mut server = server_with(ConflictPolicy::KickOld);
    let c = server.login("romeo", "orchard");
    server.take_events();
    server.disconnect(c);
    let events = server.take_events();
    assert!(
        events.iter().any(|e| matches!(e, Event::Unbound { session, jid } if *session == c && jid.as_str() == "romeo@localhost/orchard")),
        "{events:?}"
    );
    assert!(events.contains(&Event::Closed { session: c }), "{events:?}");
    assert!(server.manager.session(c).is_none());
    let bare = xmpp_session::jid::BareJid::new("romeo@localhost").unwrap();
    assert_eq!(server.manager.resources(&bare).count(), 0);
    // The resource is free again.
    let again = authenticated(&mut server, "romeo");
    server.send(again, &bind_iq("b1", Some("orchard")));
    server.expect(again, &[&bind_result("b1", "romeo@localhost/orchard")]);
}
