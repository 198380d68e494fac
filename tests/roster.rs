//! Roster transcript tests (RFC 6121 §2, Prosody §6): get, versioning,
//! set, remove and its side effects, errors, pushes, and work parked while
//! a roster loads.

mod common_presence;

use common_presence::*;
use xmpp_session::Request;
use xmpp_session::testkit::account;

const GET: &str = "<iq type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>";

fn set(id: &str, item: &str) -> String {
    format!("<iq type='set' id='{id}'><query xmlns='jabber:iq:roster'>{item}</query></iq>")
}

fn error(id: &str, to: &str, kind: &str, condition: &str, text: Option<&str>) -> String {
    let text = text
        .map(|t| format!("<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>{t}</text>"))
        .unwrap_or_default();
    format!(
        "<iq type='error' id='{id}' to='{to}'><error type='{kind}'>\
         <{condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>{text}</error></iq>"
    )
}

// ---------------------------------------------------------------- get

#[test]
fn get_returns_every_item_with_the_version_and_marks_the_session_interested() {
    let mut s = server(&["alice"]);
    store_item(&mut s, "alice", "bob@localhost", "both");
    store_item(&mut s, "alice", "carol@localhost", "none+ask");
    store_item(&mut s, "alice", "erin@localhost", "none+approved");
    store_pending(&mut s, "alice", "dave@localhost");
    let a = s.login("alice", "a");
    assert!(!s.manager.session(a).unwrap().is_interested());
    s.send(a, GET);
    // Pending inbound requests are not items; approved is shown (RFC 6121 §3.4).
    expect(
        &mut s,
        a,
        &[
            "<iq type='result' id='g' to='alice@localhost/a'><query xmlns='jabber:iq:roster' ver='4'>\
           <item jid='bob@localhost' subscription='both'/>\
           <item jid='carol@localhost' subscription='none' ask='subscribe'/>\
           <item jid='erin@localhost' subscription='none' approved='true'/>\
           </query></iq>",
        ],
    );
    assert!(s.manager.session(a).unwrap().is_interested());
    expect_no_route(&mut s);
}

#[test]
fn get_of_an_empty_roster_and_to_the_own_bare_jid() {
    let mut s = server(&["alice"]);
    let a = s.login("alice", "a");
    s.send(
        a,
        "<iq type='get' id='g1' to='alice@localhost'><query xmlns='jabber:iq:roster'/></iq>",
    );
    expect(
        &mut s,
        a,
        &[
            "<iq type='result' id='g1' to='alice@localhost/a'><query xmlns='jabber:iq:roster' ver='0'/></iq>",
        ],
    );
    assert!(s.manager.session(a).unwrap().is_interested());
}

#[test]
fn get_with_items_in_the_request_ignores_them() {
    let mut s = server(&["alice"]);
    store_item(&mut s, "alice", "bob@localhost", "to");
    let a = s.login("alice", "a");
    s.send(
        a,
        "<iq type='get' id='g'><query xmlns='jabber:iq:roster'><item jid='x@localhost'/></query></iq>",
    );
    expect(
        &mut s,
        a,
        &[
            "<iq type='result' id='g' to='alice@localhost/a'><query xmlns='jabber:iq:roster' ver='1'>\
           <item jid='bob@localhost' subscription='to'/></query></iq>",
        ],
    );
}

// ---------------------------------------------------------------- versioning

#[test]
fn get_with_the_current_version_is_an_empty_result() {
    let mut s = server(&["alice"]);
    store_item(&mut s, "alice", "bob@localhost", "both");
    store_item(&mut s, "alice", "carol@localhost", "from");
    let a = s.login("alice", "a");
    s.send(
        a,
        "<iq type='get' id='v'><query xmlns='jabber:iq:roster' ver='2'/></iq>",
    );
    expect(
        &mut s,
        a,
        &["<iq type='result' id='v' to='alice@localhost/a'/>"],
    );
    // Still interested: pushes follow.
    assert!(s.manager.session(a).unwrap().is_interested());
    s.send(a, &set("s", "<item jid='dave@localhost'/>"));
    expect(
        &mut s,
        a,
        &[
            "<iq type='result' id='s' to='alice@localhost/a'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='3'>\
             <item jid='dave@localhost' subscription='none'/></query></iq>",
        ],
    );
}

#[test]
fn get_with_a_stale_or_unknown_version_returns_the_full_roster() {
    let mut s = server(&["alice"]);
    store_item(&mut s, "alice", "bob@localhost", "both");
    store_item(&mut s, "alice", "carol@localhost", "from");
    let a = s.login("alice", "a");
    let full = "<iq type='result' id='v' to='alice@localhost/a'><query xmlns='jabber:iq:roster' ver='2'>\
                <item jid='bob@localhost' subscription='both'/>\
                <item jid='carol@localhost' subscription='from'/></query></iq>";
    for ver in ["1", "3", "", "ver2", "-2"] {
        s.send(
            a,
            &format!("<iq type='get' id='v'><query xmlns='jabber:iq:roster' ver='{ver}'/></iq>"),
        );
        expect(&mut s, a, &[full]);
    }
}

#[test]
fn every_change_increments_the_version_and_pushes_carry_it() {
    let mut s = server(&["alice"]);
    let (a, result) = login_interested(&mut s, "alice", "a");
    assert_eq!(
        result
            .get_child("query", "jabber:iq:roster")
            .unwrap()
            .attr("ver"),
        Some("0")
    );
    s.send(a, &set("1", "<item jid='bob@localhost'/>"));
    expect(
        &mut s,
        a,
        &[
            "<iq type='result' id='1' to='alice@localhost/a'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='1'>\
             <item jid='bob@localhost' subscription='none'/></query></iq>",
        ],
    );
    s.send(a, &set("2", "<item jid='bob@localhost' name='Bob'/>"));
    expect(
        &mut s,
        a,
        &[
            "<iq type='result' id='2' to='alice@localhost/a'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='2'>\
             <item jid='bob@localhost' subscription='none' name='Bob'/></query></iq>",
        ],
    );
    s.send(a, "<presence type='subscribe' to='carol@localhost'/>");
    expect(
        &mut s,
        a,
        &[
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='3'>\
           <item jid='carol@localhost' subscription='none' ask='subscribe'/></query></iq>",
        ],
    );
    s.send(
        a,
        &set("3", "<item jid='bob@localhost' subscription='remove'/>"),
    );
    expect(
        &mut s,
        a,
        &[
            "<iq type='result' id='3' to='alice@localhost/a'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='4'>\
             <item jid='bob@localhost' subscription='remove'/></query></iq>",
        ],
    );
    assert_eq!(stored_version(&s, "alice"), 4);
    s.send(
        a,
        "<iq type='get' id='v4'><query xmlns='jabber:iq:roster' ver='4'/></iq>",
    );
    expect(
        &mut s,
        a,
        &["<iq type='result' id='v4' to='alice@localhost/a'/>"],
    );
    s.send(
        a,
        "<iq type='get' id='v3'><query xmlns='jabber:iq:roster' ver='3'/></iq>",
    );
    expect(
        &mut s,
        a,
        &[
            "<iq type='result' id='v3' to='alice@localhost/a'><query xmlns='jabber:iq:roster' ver='4'>\
           <item jid='carol@localhost' subscription='none' ask='subscribe'/></query></iq>",
        ],
    );
}

#[test]
fn the_version_survives_logout_and_a_fresh_load() {
    let mut s = server(&["alice"]);
    let (a, _) = login_interested(&mut s, "alice", "a");
    s.send(a, &set("1", "<item jid='bob@localhost'/>"));
    s.send(a, &set("2", "<item jid='carol@localhost'/>"));
    s.disconnect(a);
    let a2 = s.login("alice", "a2");
    s.send(
        a2,
        "<iq type='get' id='v'><query xmlns='jabber:iq:roster' ver='2'/></iq>",
    );
    expect(
        &mut s,
        a2,
        &["<iq type='result' id='v' to='alice@localhost/a2'/>"],
    );
    s.send(a2, &set("3", "<item jid='dave@localhost'/>"));
    expect(
        &mut s,
        a2,
        &[
            "<iq type='result' id='3' to='alice@localhost/a2'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='3'>\
             <item jid='dave@localhost' subscription='none'/></query></iq>",
        ],
    );
}

// ---------------------------------------------------------------- set

#[test]
fn set_answers_the_requester_then_pushes_to_every_interested_resource_only() {
    let mut s = server(&["alice", "bob"]);
    let (a, _) = login_interested(&mut s, "alice", "a");
    let b = s.login("alice", "b");
    s.send(b, "<presence/>");
    s.take(b);
    let (c, _) = login_interested(&mut s, "alice", "c");
    let bob = online(&mut s, "bob", "x");
    s.send(
        a,
        &set(
            "s1",
            "<item jid='bob@localhost' name='Bob'><group>Friends</group></item>",
        ),
    );
    let push = "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='1'>\
                <item jid='bob@localhost' subscription='none' name='Bob'><group>Friends</group></item></query></iq>";
    expect(
        &mut s,
        a,
        &["<iq type='result' id='s1' to='alice@localhost/a'/>", push],
    );
    expect(&mut s, c, &[push]);
    expect_nothing(&mut s, b);
    expect_nothing(&mut s, bob);
    expect_no_route(&mut s);
    // A set from a resource that is not interested: result only there.
    s.send(b, &set("s2", "<item jid='bob@localhost'/>"));
    let push = "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='2'>\
                <item jid='bob@localhost' subscription='none'/></query></iq>";
    expect(
        &mut s,
        b,
        &["<iq type='result' id='s2' to='alice@localhost/b'/>"],
    );
    expect(&mut s, a, &[push]);
    expect(&mut s, c, &[push]);
    expect_nothing(&mut s, bob);
    expect_stored(&s, "alice", &["bob@localhost=none"]);
}

#[test]
fn the_same_push_is_shared_by_all_interested_resources() {
    let mut s = server(&["alice"]);
    let (a, _) = login_interested(&mut s, "alice", "a");
    let (c, _) = login_interested(&mut s, "alice", "c");
    s.send(a, &set("s", "<item jid='bob@localhost'/>"));
    let on_a = s.take(a);
    let on_c = s.take(c);
    assert_eq!(on_a.len(), 2);
    assert_eq!(on_c.len(), 1);
    assert_eq!(on_a[1], on_c[0], "one push, one id");
}

#[test]
fn name_and_groups_are_stored_replaced_and_cleared() {
    let mut s = server(&["alice"]);
    let (a, _) = login_interested(&mut s, "alice", "a");
    s.send(
        a,
        &set(
            "1",
            "<item jid='bob@localhost' name='Bob'><group>Work</group><group>Friends</group></item>",
        ),
    );
    expect(
        &mut s,
        a,
        &[
            "<iq type='result' id='1' to='alice@localhost/a'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='1'>\
             <item jid='bob@localhost' subscription='none' name='Bob'><group>Friends</group><group>Work</group></item>\
             </query></iq>",
        ],
    );
    assert_eq!(
        stored(&s, "alice"),
        ["bob@localhost=none name=\"Bob\" groups={\"Friends\", \"Work\"}"]
    );
    // An update replaces name and groups; an empty name means none.
    s.send(
        a,
        &set(
            "2",
            "<item jid='bob@localhost' name=''><group>Family</group></item>",
        ),
    );
    expect(
        &mut s,
        a,
        &[
            "<iq type='result' id='2' to='alice@localhost/a'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='2'>\
             <item jid='bob@localhost' subscription='none'><group>Family</group></item></query></iq>",
        ],
    );
    s.send(a, &set("3", "<item jid='bob@localhost'/>"));
    expect(
        &mut s,
        a,
        &[
            "<iq type='result' id='3' to='alice@localhost/a'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='3'>\
             <item jid='bob@localhost' subscription='none'/></query></iq>",
        ],
    );
    expect_stored(&s, "alice", &["bob@localhost=none"]);
}

#[test]
fn client_subscription_and_ask_values_are_ignored() {
    let mut s = server(&["alice"]);
    store_item(&mut s, "alice", "bob@localhost", "to");
    let (a, _) = login_interested(&mut s, "alice", "a");
    s.send(
        a,
        &set(
            "1",
            "<item jid='carol@localhost' subscription='both' ask='subscribe'/>",
        ),
    );
    expect(
        &mut s,
        a,
        &[
            "<iq type='result' id='1' to='alice@localhost/a'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='2'>\
             <item jid='carol@localhost' subscription='none'/></query></iq>",
        ],
    );
    // RFC 6121 §2.1.2.5: every value but "remove" is ignored, even nonsense.
    s.send(
        a,
        &set(
            "2",
            "<item jid='bob@localhost' subscription='bogus' name='B'/>",
        ),
    );
    expect(
        &mut s,
        a,
        &[
            "<iq type='result' id='2' to='alice@localhost/a'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='3'>\
             <item jid='bob@localhost' subscription='to' name='B'/></query></iq>",
        ],
    );
    s.send(
        a,
        &set("3", "<item jid='bob@localhost' subscription='none'/>"),
    );
    expect(
        &mut s,
        a,
        &[
            "<iq type='result' id='3' to='alice@localhost/a'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='4'>\
             <item jid='bob@localhost' subscription='to'/></query></iq>",
        ],
    );
    expect_stored(&s, "alice", &["bob@localhost=to", "carol@localhost=none"]);
}

#[test]
fn an_update_keeps_the_subscription_state_and_the_pre_approval() {
    let mut s = server(&["alice"]);
    store_item(&mut s, "alice", "bob@localhost", "from+ask");
    store_item(&mut s, "alice", "carol@localhost", "none+approved");
    let (a, _) = login_interested(&mut s, "alice", "a");
    s.send(a, &set("1", "<item jid='bob@localhost' name='Bob'/>"));
    s.send(a, &set("2", "<item jid='carol@localhost' name='Carol'/>"));
    expect(
        &mut s,
        a,
        &[
            "<iq type='result' id='1' to='alice@localhost/a'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='3'>\
             <item jid='bob@localhost' subscription='from' ask='subscribe' name='Bob'/></query></iq>",
            "<iq type='result' id='2' to='alice@localhost/a'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='4'>\
             <item jid='carol@localhost' subscription='none' approved='true' name='Carol'/></query></iq>",
        ],
    );
}

// ---------------------------------------------------------------- errors

#[track_caller]
fn expect_set_error(item_xml: &str, kind: &str, condition: &str, text: Option<&str>) {
    let mut s = server(&["alice"]);
    store_item(&mut s, "alice", "bob@localhost", "both");
    let (a, _) = login_interested(&mut s, "alice", "a");
    let (c, _) = login_interested(&mut s, "alice", "c");
    s.send(a, &set("e", item_xml));
    expect(
        &mut s,
        a,
        &[&error("e", "alice@localhost/a", kind, condition, text)],
    );
    expect_nothing(&mut s, c);
    expect_no_route(&mut s);
    expect_stored(&s, "alice", &["bob@localhost=both"]);
    assert_eq!(stored_version(&s, "alice"), 1);
}

#[test]
fn duplicate_groups_are_a_bad_request() {
    expect_set_error(
        "<item jid='carol@localhost'><group>A</group><group>A</group></item>",
        "modify",
        "bad-request",
        Some("Duplicate group"),
    );
}

#[test]
fn an_empty_group_is_not_acceptable() {
    expect_set_error(
        "<item jid='carol@localhost'><group>A</group><group/></item>",
        "modify",
        "not-acceptable",
        None,
    );
}

#[test]
fn two_items_are_a_bad_request() {
    expect_set_error(
        "<item jid='carol@localhost'/><item jid='dave@localhost'/>",
        "modify",
        "bad-request",
        Some("A roster set must contain exactly one item"),
    );
}

#[test]
fn no_item_is_a_bad_request() {
    expect_set_error(
        "",
        "modify",
        "bad-request",
        Some("A roster set must contain exactly one item"),
    );
}

#[test]
fn an_item_without_jid_is_a_bad_request() {
    expect_set_error(
        "<item name='x'/>",
        "modify",
        "bad-request",
        Some("The item has no 'jid'"),
    );
}

#[test]
fn a_full_jid_is_a_bad_request() {
    expect_set_error(
        "<item jid='carol@localhost/phone'/>",
        "modify",
        "bad-request",
        Some("The item's 'jid' is not a valid bare JID"),
    );
}

#[test]
fn an_invalid_jid_is_a_bad_request() {
    for jid in ["@localhost", "carol@", "a@b@c", ""] {
        expect_set_error(
            &format!("<item jid='{jid}'/>"),
            "modify",
            "bad-request",
            Some("The item's 'jid' is not a valid bare JID"),
        );
    }
}

#[test]
fn the_own_jid_is_not_allowed() {
    expect_set_error(
        "<item jid='alice@localhost'/>",
        "cancel",
        "not-allowed",
        None,
    );
    expect_set_error(
        "<item jid='alice@localhost' subscription='remove'/>",
        "cancel",
        "not-allowed",
        None,
    );
}

#[test]
fn removing_a_missing_item_is_item_not_found() {
    expect_set_error(
        "<item jid='carol@localhost' subscription='remove'/>",
        "modify",
        "item-not-found",
        None,
    );
}

#[test]
fn removing_a_contact_that_only_asked_is_item_not_found() {
    let mut s = server(&["alice"]);
    store_pending(&mut s, "alice", "carol@localhost");
    let (a, _) = login_interested(&mut s, "alice", "a");
    s.send(
        a,
        &set("e", "<item jid='carol@localhost' subscription='remove'/>"),
    );
    expect(
        &mut s,
        a,
        &[&error(
            "e",
            "alice@localhost/a",
            "modify",
            "item-not-found",
            None,
        )],
    );
    expect_stored(&s, "alice", &["pending:carol@localhost"]);
}

#[test]
fn roster_get_to_another_users_jid_is_service_unavailable_and_a_set_is_forbidden() {
    let mut s = server(&["alice", "bob"]);
    store_item(&mut s, "bob", "carol@localhost", "both");
    let a = s.login("alice", "a");
    let bob = online(&mut s, "bob", "x");
    s.send(
        a,
        "<iq type='get' id='g' to='bob@localhost'><query xmlns='jabber:iq:roster'/></iq>",
    );
    s.send(
        a,
        "<iq type='get' id='n' to='nobody@localhost'><query xmlns='jabber:iq:roster'/></iq>",
    );
    // RFC 6121 §2.3.3: a roster set to another JID is `forbidden`, alike
    // for an existing account, a missing one, a full JID and a domain.
    for (id, to) in [
        ("s", "bob@localhost"),
        ("s2", "nobody@localhost"),
        ("s3", "bob@localhost/x"),
        ("s4", "remote.example"),
    ] {
        s.send(
            a,
            &format!(
                "<iq type='set' id='{id}' to='{to}'><query xmlns='jabber:iq:roster'>\
                 <item jid='dave@localhost'/></query></iq>"
            ),
        );
    }
    let unavailable = |id: &str, from: &str| {
        format!(
            "<iq type='error' id='{id}' from='{from}' to='alice@localhost/a'><error type='cancel'>\
             <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
        )
    };
    let forbidden = |id: &str, from: &str| {
        format!(
            "<iq type='error' id='{id}' from='{from}' to='alice@localhost/a'><error type='auth'>\
             <forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
        )
    };
    expect(
        &mut s,
        a,
        &[
            &unavailable("g", "bob@localhost"),
            &unavailable("n", "nobody@localhost"),
            &forbidden("s", "bob@localhost"),
            &forbidden("s2", "nobody@localhost"),
            &forbidden("s3", "bob@localhost/x"),
            &forbidden("s4", "remote.example"),
        ],
    );
    assert!(s.take_routed().is_empty());
    assert!(!s.manager.session(a).unwrap().is_interested());
    expect_nothing(&mut s, bob);
    expect_stored(&s, "bob", &["carol@localhost=both"]);
    assert!(
        s.store
            .stored_roster(&xmpp_session::testkit::account("alice"))
            .is_none()
    );
}

// ---------------------------------------------------------------- remove

#[test]
fn removing_an_item_with_no_subscription_answers_and_pushes_remove() {
    let mut s = server(&["alice", "bob"]);
    store_item(&mut s, "alice", "bob@localhost", "none");
    let (a, _) = login_interested(&mut s, "alice", "a");
    s.send(a, "<presence/>");
    s.take(a);
    let bob = online(&mut s, "bob", "x");
    s.send(
        a,
        &set("r", "<item jid='bob@localhost' subscription='remove'/>"),
    );
    expect(
        &mut s,
        a,
        &[
            "<iq type='result' id='r' to='alice@localhost/a'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='2'>\
             <item jid='bob@localhost' subscription='remove'/></query></iq>",
        ],
    );
    expect_nothing(&mut s, bob);
    expect_stored(&s, "alice", &[]);
}

/// Sets up alice and bob online, interested and available, with alice's
/// item for bob in `alice_state` and bob's for alice in `bob_state`.
fn pair(
    alice_state: &str,
    bob_state: &str,
) -> (
    xmpp_session::testkit::TestServer,
    [xmpp_session::SessionId; 2],
) {
    let mut s = server(&["alice", "bob"]);
    if alice_state != "-" {
        store_item(&mut s, "alice", "bob@localhost", alice_state);
    }
    if bob_state != "-" {
        store_item(&mut s, "bob", "alice@localhost", bob_state);
    }
    let a = online(&mut s, "alice", "a");
    let b = online(&mut s, "bob", "b");
    drain(&mut s, &[a, b]);
    (s, [a, b])
}

#[test]
fn removing_a_mutual_contact_cancels_both_ways_from_the_remover() {
    let (mut s, [a, b]) = pair("both", "both");
    s.send(
        a,
        &set("r", "<item jid='bob@localhost' subscription='remove'/>"),
    );
    expect(
        &mut s,
        a,
        &[
            "<iq type='result' id='r' to='alice@localhost/a'/>",
            // bob's server cancels its side: bob's resources go unavailable for alice.
            "<presence type='unavailable' from='bob@localhost/b' to='alice@localhost'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='2'>\
             <item jid='bob@localhost' subscription='remove'/></query></iq>",
        ],
    );
    expect(
        &mut s,
        b,
        &[
            "<presence type='unsubscribed' from='alice@localhost' to='bob@localhost'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='2'>\
             <item jid='alice@localhost' subscription='from'/></query></iq>",
            "<presence type='unavailable' from='alice@localhost/a' to='bob@localhost'/>",
            "<presence type='unsubscribe' from='alice@localhost' to='bob@localhost'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='3'>\
             <item jid='alice@localhost' subscription='none'/></query></iq>",
        ],
    );
    expect_no_route(&mut s);
    expect_stored(&s, "alice", &[]);
    expect_stored(&s, "bob", &["alice@localhost=none"]);
}

#[test]
fn removing_a_to_contact_unsubscribes() {
    let (mut s, [a, b]) = pair("to", "from");
    s.send(
        a,
        &set("r", "<item jid='bob@localhost' subscription='remove'/>"),
    );
    expect(
        &mut s,
        a,
        &[
            "<iq type='result' id='r' to='alice@localhost/a'/>",
            "<presence type='unavailable' from='bob@localhost/b' to='alice@localhost'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='2'>\
             <item jid='bob@localhost' subscription='remove'/></query></iq>",
        ],
    );
    expect(
        &mut s,
        b,
        &[
            // As Prosody (reference §6.6): a `to` item also makes every
            // available resource of the remover send unavailable.
            "<presence type='unavailable' from='alice@localhost/a' to='bob@localhost'/>",
            "<presence type='unsubscribe' from='alice@localhost' to='bob@localhost'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='2'>\
             <item jid='alice@localhost' subscription='none'/></query></iq>",
        ],
    );
    expect_stored(&s, "alice", &[]);
    expect_stored(&s, "bob", &["alice@localhost=none"]);
}

#[test]
fn removing_a_from_contact_cancels_its_subscription() {
    let (mut s, [a, b]) = pair("from", "to");
    s.send(
        a,
        &set("r", "<item jid='bob@localhost' subscription='remove'/>"),
    );
    expect(
        &mut s,
        a,
        &[
            "<iq type='result' id='r' to='alice@localhost/a'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='2'>\
             <item jid='bob@localhost' subscription='remove'/></query></iq>",
        ],
    );
    expect(
        &mut s,
        b,
        &[
            "<presence type='unsubscribed' from='alice@localhost' to='bob@localhost'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='2'>\
             <item jid='alice@localhost' subscription='none'/></query></iq>",
            "<presence type='unavailable' from='alice@localhost/a' to='bob@localhost'/>",
        ],
    );
    expect_stored(&s, "alice", &[]);
    expect_stored(&s, "bob", &["alice@localhost=none"]);
}

#[test]
fn removing_an_item_with_a_pending_request_both_ways_cancels_both() {
    // alice asked bob, and bob asked alice: both requests are pending.
    let mut s = server(&["alice", "bob"]);
    store_item(&mut s, "alice", "bob@localhost", "none+ask");
    store_pending(&mut s, "alice", "bob@localhost");
    store_item(&mut s, "bob", "alice@localhost", "none+ask");
    store_pending(&mut s, "bob", "alice@localhost");
    let a = online(&mut s, "alice", "a");
    let b = online(&mut s, "bob", "b");
    drain(&mut s, &[a, b]);
    s.send(
        a,
        &set("r", "<item jid='bob@localhost' subscription='remove'/>"),
    );
    expect(
        &mut s,
        a,
        &[
            "<iq type='result' id='r' to='alice@localhost/a'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='4'>\
             <item jid='bob@localhost' subscription='remove'/></query></iq>",
        ],
    );
    expect(
        &mut s,
        b,
        &[
            "<presence type='unsubscribed' from='alice@localhost' to='bob@localhost'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='3'>\
             <item jid='alice@localhost' subscription='none'/></query></iq>",
            // alice had asked (`ask`): unavailable, then unsubscribe.
            "<presence type='unavailable' from='alice@localhost/a' to='bob@localhost'/>",
            "<presence type='unsubscribe' from='alice@localhost' to='bob@localhost'/>",
        ],
    );
    // The pending inbound request went with the item.
    expect_stored(&s, "alice", &[]);
    expect_stored(&s, "bob", &["alice@localhost=none"]);
}

#[test]
fn removing_a_contact_while_offline_from_another_resource() {
    // The contact is offline: its stored roster is updated all the same.
    let mut s = server(&["alice", "bob"]);
    store_item(&mut s, "alice", "bob@localhost", "both");
    store_item(&mut s, "bob", "alice@localhost", "both");
    let a = online(&mut s, "alice", "a");
    s.send(
        a,
        &set("r", "<item jid='bob@localhost' subscription='remove'/>"),
    );
    expect(
        &mut s,
        a,
        &[
            "<iq type='result' id='r' to='alice@localhost/a'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='2'>\
             <item jid='bob@localhost' subscription='remove'/></query></iq>",
        ],
    );
    expect_stored(&s, "alice", &[]);
    expect_stored(&s, "bob", &["alice@localhost=none"]);
    let (b, result) = login_interested(&mut s, "bob", "b");
    assert_eq!(items_of(&result), ["alice@localhost=none"]);
    s.send(b, "<presence/>");
    expect(&mut s, b, &["<presence from='bob@localhost/b'/>"]);
    expect_nothing(&mut s, a);
}

// ---------------------------------------------------------------- parked work

#[test]
fn work_waiting_for_the_roster_is_run_in_order_once_it_loads() {
    let run = |hold: bool| {
        let mut s = server(&["alice", "bob"]);
        store_item(&mut s, "alice", "bob@localhost", "both");
        store_item(&mut s, "bob", "alice@localhost", "both");
        let b = online(&mut s, "bob", "b");
        let a = s.login("alice", "a");
        s.hold_requests(hold);
        // Initial presence first, then the roster get, in one read.
        s.send(
            a,
            "<presence/><iq type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>\
             <iq type='set' id='s'><query xmlns='jabber:iq:roster'><item jid='carol@localhost'/></query></iq>",
        );
        if hold {
            // Nothing happens before alice's roster is there.
            assert_eq!(
                s.held_requests(),
                [Request::LoadRoster {
                    account: account("alice")
                }]
            );
            assert!(s.take(a).is_empty());
            assert!(s.take(b).is_empty());
            s.answer_all_held();
        }
        let on_a = received(&mut s, a);
        let on_b = received(&mut s, b);
        (on_a, on_b, stored(&s, "alice"), stored(&s, "bob"))
    };
    let at_once = run(false);
    let later = run(true);
    assert_eq!(at_once, later);
    let want_a: Vec<_> = [
        "<presence from='alice@localhost/a'/>",
        &format!(
            "<presence from='bob@localhost/b' to='alice@localhost/a'>\
             <delay xmlns='urn:xmpp:delay' from='localhost' stamp='{STAMP}'/></presence>"
        ),
        "<iq type='result' id='g' to='alice@localhost/a'><query xmlns='jabber:iq:roster' ver='1'>\
         <item jid='bob@localhost' subscription='both'/></query></iq>",
        "<iq type='result' id='s' to='alice@localhost/a'/>",
        "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='2'>\
         <item jid='carol@localhost' subscription='none'/></query></iq>",
    ]
    .iter()
    .map(|x| xmpp_session::testkit::parse_stanza(x))
    .collect();
    assert_eq!(at_once.0, want_a);
    assert_eq!(
        at_once.1,
        [xmpp_session::testkit::parse_stanza(
            "<presence from='alice@localhost/a' to='bob@localhost'/>"
        )]
    );
}

#[test]
fn a_roster_set_behind_stored_work_is_answered_before_its_push() {
    // alice is interested but not available, so bob's message is stored
    // offline; her roster set waits behind that write.
    let run = |hold: bool| {
        let mut s = server(&["alice", "bob"]);
        let (a, _) = login_interested(&mut s, "alice", "a");
        let (c, _) = login_interested(&mut s, "alice", "c");
        let b = s.login("bob", "b");
        s.hold_requests(hold);
        s.send(
            b,
            "<message to='alice@localhost' type='chat'><body>hi</body></message>",
        );
        s.send(a, &set("s", "<item jid='carol@localhost'/>"));
        s.answer_all_held();
        (received(&mut s, a), received(&mut s, c))
    };
    let want_a = [
        "<iq type='result' id='s' to='alice@localhost/a'/>",
        "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='1'>\
         <item jid='carol@localhost' subscription='none'/></query></iq>",
    ];
    let want_c = [
        "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='1'>\
                   <item jid='carol@localhost' subscription='none'/></query></iq>",
    ];
    for hold in [false, true] {
        let (a, c) = run(hold);
        let parse = |xs: &[&str]| -> Vec<_> {
            xs.iter()
                .map(|x| xmpp_session::testkit::parse_stanza(x))
                .collect()
        };
        assert_eq!(a, parse(&want_a), "hold={hold}");
        assert_eq!(c, parse(&want_c), "hold={hold}");
    }
}
