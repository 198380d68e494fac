//! Presence transcript tests (RFC 6121 §3–§4, Prosody §5): every
//! subscription transition on both sides, online and offline, pre-approval,
//! broadcast, probes, directed presence, disconnect cleanup, presence to the
//! server, the roster cache, and a store that answers late and out of order.

mod common_presence;

use common_presence::*;
use xmpp_session::testkit::{TestServer, account, parse_stanza};
use xmpp_session::{Element, Request, SessionId};

// ---------------------------------------------------------------- stanza builders

/// A roster push of one item (`state` as in `common_presence::item`).
fn push(ver: u64, contact: &str, state: &str) -> String {
    let mut parts = state.split('+');
    let sub = parts.next().unwrap();
    let mut attrs = String::new();
    for p in parts {
        match p {
            "ask" => attrs.push_str(" ask='subscribe'"),
            "approved" => attrs.push_str(" approved='true'"),
            other => panic!("{other}"),
        }
    }
    format!(
        "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='{ver}'>\
         <item jid='{contact}@localhost' subscription='{sub}'{attrs}/></query></iq>"
    )
}

/// A subscription stanza between bare JIDs of local users.
fn sub(ty: &str, from: &str, to: &str) -> String {
    format!("<presence type='{ty}' from='{from}@localhost' to='{to}@localhost'/>")
}

/// The stored presence of `from` (a full JID) sent to `to`: it carries the
/// `<delay/>` stamped when it was stored.
fn stored_presence(from: &str, to: &str) -> String {
    format!(
        "<presence from='{from}' to='{to}'>\
         <delay xmlns='urn:xmpp:delay' from='localhost' stamp='{STAMP}'/></presence>"
    )
}

fn unavailable(from: &str, to: &str) -> String {
    format!("<presence type='unavailable' from='{from}' to='{to}'/>")
}

#[track_caller]
fn expect_ctx(s: &mut TestServer, id: SessionId, want: &[String], ctx: &str) {
    let got = received(s, id);
    let want_el: Vec<Element> = want.iter().map(|x| parse_stanza(x)).collect();
    if got != want_el {
        let show = |v: &[Element]| {
            v.iter()
                .map(|e| {
                    format!(
                        "  {}",
                        String::from_utf8_lossy(&xmpp_session::stream::element_bytes(e))
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        panic!(
            "{ctx}: client {id} received:\n{}\nexpected:\n{}",
            show(&got),
            show(&want_el)
        );
    }
}

// ---------------------------------------------------------------- the state table

/// alice's item for bob, and whether alice holds a pending inbound request
/// from bob. bob's roster is the consistent mirror: `to`↔`from`, bob asks
/// iff alice has his request pending, bob holds alice's request iff she
/// asks. The three "stale" states (a pending request although bob already
/// sees alice) get bob's mirror without `ask`.
const STATES: [(&str, bool); 12] = [
    ("none", false),
    ("none", true),
    ("none+ask", false),
    ("none+ask", true),
    ("to", false),
    ("to", true),
    ("from", false),
    ("from+ask", false),
    ("both", false),
    ("from", true),
    ("from+ask", true),
    ("both", true),
];

fn mirror(state: &str, pending: bool) -> (String, bool) {
    let mut parts = state.split('+');
    let sub = match parts.next().unwrap() {
        "to" => "from",
        "from" => "to",
        other => other,
    };
    let ask = parts.any(|p| p == "ask");
    let bob_asks = pending && matches!(sub, "none" | "from");
    let state = if bob_asks {
        format!("{sub}+ask")
    } else {
        sub.to_owned()
    };
    (state, ask)
}

/// bob's server acknowledging alice's subscription request.
const ACK_FROM_BOB: &str =
    "<presence from='bob@localhost' to='alice@localhost' type='unavailable'/>";

fn label(state: &str, pending: bool) -> String {
    if pending {
        format!("{state} (+bob's request pending)")
    } else {
        state.to_owned()
    }
}

/// Stores both rosters; logs both in (interested, available) unless
/// `bob_online` is false; drains everything.
fn setup(
    state: &str,
    pending: bool,
    bob_online: bool,
) -> (TestServer, SessionId, Option<SessionId>) {
    let mut s = server(&["alice", "bob"]);
    store_item(&mut s, "alice", "bob@localhost", state);
    if pending {
        store_pending(&mut s, "alice", "bob@localhost");
    }
    let (bob_state, bob_pending) = mirror(state, pending);
    store_item(&mut s, "bob", "alice@localhost", &bob_state);
    if bob_pending {
        store_pending(&mut s, "bob", "alice@localhost");
    }
    let a = online(&mut s, "alice", "a");
    let b = bob_online.then(|| online(&mut s, "bob", "b"));
    let mut ids = vec![a];
    ids.extend(b);
    drain(&mut s, &ids);
    (s, a, b)
}

/// What alice and bob receive and what is stored when alice sends `event`
/// to bob, both online.
struct Outcome {
    alice: Vec<String>,
    bob: Vec<String>,
    alice_stored: Vec<&'static str>,
    bob_stored: Vec<&'static str>,
}

fn o(
    alice: Vec<String>,
    bob: Vec<String>,
    alice_stored: Vec<&'static str>,
    bob_stored: Vec<&'static str>,
) -> Outcome {
    Outcome {
        alice,
        bob,
        alice_stored,
        bob_stored,
    }
}

/// Runs one row of the table for every state, online, then again with bob
/// offline (his stored roster must end the same; what he would have been
/// sent is either stored as a pending request or lost as presence), then
/// bob logs in and must see exactly what his stored roster implies.
fn run_row(event: &str, outcome: impl Fn(&str, bool) -> Outcome) {
    for (state, pending) in STATES {
        let ctx = format!("alice sends {event} in state {}", label(state, pending));
        let want = outcome(state, pending);
        // Online.
        let (mut s, a, b) = setup(state, pending, true);
        let b = b.unwrap();
        s.send(a, &format!("<presence type='{event}' to='bob@localhost'/>"));
        expect_ctx(&mut s, a, &want.alice, &ctx);
        expect_ctx(&mut s, b, &want.bob, &ctx);
        assert!(
            s.take_routed().is_empty(),
            "{ctx}: nothing leaves the server"
        );
        assert_eq!(
            stored(&s, "alice"),
            want.alice_stored,
            "{ctx}: alice's stored roster"
        );
        assert_eq!(
            stored(&s, "bob"),
            want.bob_stored,
            "{ctx}: bob's stored roster"
        );

        // Offline: bob's stored roster ends the same; alice sees the same
        // minus what bob's resources would have sent.
        let ctx = format!("{ctx}, bob offline");
        let (mut s, a, _) = setup(state, pending, false);
        s.send(a, &format!("<presence type='{event}' to='bob@localhost'/>"));
        // A probe answered while bob is offline gets his server's
        // unavailable instead (only `subscribed` probes, see above).
        let alice_offline: Vec<String> = want
            .alice
            .iter()
            .filter_map(|x| {
                if !x.contains("from='bob@localhost/b'") {
                    Some(x.clone())
                } else if event == "subscribed" {
                    Some(
                        "<presence from='bob@localhost' to='alice@localhost' type='unavailable'/>"
                            .to_owned(),
                    )
                } else {
                    None
                }
            })
            .collect();
        expect_ctx(&mut s, a, &alice_offline, &ctx);
        assert!(
            s.take_routed().is_empty(),
            "{ctx}: nothing leaves the server"
        );
        assert_eq!(
            stored(&s, "alice"),
            want.alice_stored,
            "{ctx}: alice's stored roster"
        );
        assert_eq!(
            stored(&s, "bob"),
            want.bob_stored,
            "{ctx}: bob's stored roster"
        );

        // bob logs in: his roster and initial presence follow from what
        // was stored while he was away.
        let (b, result) = login_interested(&mut s, "bob", "b");
        let bob_item = want
            .bob_stored
            .iter()
            .find(|x| x.starts_with("alice@"))
            .unwrap();
        let bob_sub = bob_item.trim_start_matches("alice@localhost=");
        assert_eq!(
            items_of(&result),
            [bob_item.to_string()],
            "{ctx}: bob's roster result"
        );
        let alice_item = want
            .alice_stored
            .iter()
            .find(|x| x.starts_with("bob@"))
            .unwrap();
        let alice_sub = alice_item.trim_start_matches("bob@localhost=");
        let sees = |s: &str| s.starts_with("to") || s.starts_with("both");
        let shares = |s: &str| s.starts_with("from") || s.starts_with("both");
        s.send(b, "<presence/>");
        let mut bob_wants = vec!["<presence from='bob@localhost/b'/>".to_owned()];
        if sees(bob_sub) && shares(alice_sub) {
            bob_wants.push(stored_presence("alice@localhost/a", "bob@localhost/b"));
        }
        if want.bob_stored.contains(&"pending:alice@localhost") {
            bob_wants.push(sub("subscribe", "alice", "bob"));
        }
        expect_ctx(&mut s, b, &bob_wants, &format!("{ctx}, then bob logs in"));
        let alice_wants: Vec<String> = if shares(bob_sub) {
            vec!["<presence from='bob@localhost/b' to='alice@localhost'/>".to_owned()]
        } else {
            vec![]
        };
        expect_ctx(&mut s, a, &alice_wants, &format!("{ctx}, then bob logs in"));
    }
}

#[test]
fn state_table_subscribe() {
    run_row("subscribe", |state, pending| {
        let bob_avail = || vec![stored_presence("bob@localhost/b", "alice@localhost")];
        let mut outcome = match (state, pending) {
            ("none", false) => o(
                vec![push(2, "bob", "none+ask")],
                vec![sub("subscribe", "alice", "bob")],
                vec!["bob@localhost=none+ask"],
                vec!["alice@localhost=none", "pending:alice@localhost"],
            ),
            ("none", true) => o(
                vec![push(3, "bob", "none+ask")],
                vec![sub("subscribe", "alice", "bob")],
                vec!["bob@localhost=none+ask", "pending:bob@localhost"],
                vec!["alice@localhost=none+ask", "pending:alice@localhost"],
            ),
            // Already asked: no push for an unchanged item, and bob's
            // server does not deliver a request it already holds.
            ("none+ask", false) => o(
                vec![],
                vec![],
                vec!["bob@localhost=none+ask"],
                vec!["alice@localhost=none", "pending:alice@localhost"],
            ),
            ("none+ask", true) => o(
                vec![],
                vec![],
                vec!["bob@localhost=none+ask", "pending:bob@localhost"],
                vec!["alice@localhost=none+ask", "pending:alice@localhost"],
            ),
            // Already subscribed: bob's server answers `subscribed` (alice
            // has no ask, so it changes nothing) and sends bob's presence.
            ("to", false) => o(
                bob_avail(),
                vec![],
                vec!["bob@localhost=to"],
                vec!["alice@localhost=from"],
            ),
            ("to", true) => o(
                bob_avail(),
                vec![],
                vec!["bob@localhost=to", "pending:bob@localhost"],
                vec!["alice@localhost=from+ask"],
            ),
            ("from", false) => o(
                vec![push(2, "bob", "from+ask")],
                vec![sub("subscribe", "alice", "bob")],
                vec!["bob@localhost=from+ask"],
                vec!["alice@localhost=to", "pending:alice@localhost"],
            ),
            ("from+ask", false) => o(
                vec![],
                vec![],
                vec!["bob@localhost=from+ask"],
                vec!["alice@localhost=to", "pending:alice@localhost"],
            ),
            ("both", false) => o(
                bob_avail(),
                vec![],
                vec!["bob@localhost=both"],
                vec!["alice@localhost=both"],
            ),
            ("from", true) => o(
                vec![push(3, "bob", "from+ask")],
                vec![sub("subscribe", "alice", "bob")],
                vec!["bob@localhost=from+ask", "pending:bob@localhost"],
                vec!["alice@localhost=to", "pending:alice@localhost"],
            ),
            ("from+ask", true) => o(
                vec![],
                vec![],
                vec!["bob@localhost=from+ask", "pending:bob@localhost"],
                vec!["alice@localhost=to", "pending:alice@localhost"],
            ),
            ("both", true) => o(
                bob_avail(),
                vec![],
                vec!["bob@localhost=both", "pending:bob@localhost"],
                vec!["alice@localhost=both"],
            ),
            other => unreachable!("{other:?}"),
        };
        // bob's server acknowledges a request from a non-subscriber with
        // bob's unavailable presence (Prosody, reference §5.7 (c)).
        if !state.starts_with("to") && !state.starts_with("both") {
            outcome.alice.push(ACK_FROM_BOB.to_owned());
        }
        outcome
    });
}

#[test]
fn state_table_unsubscribe() {
    run_row("unsubscribe", |state, pending| {
        let bob_gone = || unavailable("bob@localhost/b", "alice@localhost");
        match (state, pending) {
            // Nothing to cancel: routed, and ignored by bob's server.
            ("none", false) => o(
                vec![],
                vec![],
                vec!["bob@localhost=none"],
                vec!["alice@localhost=none"],
            ),
            ("none", true) => o(
                vec![],
                vec![],
                vec!["bob@localhost=none", "pending:bob@localhost"],
                vec!["alice@localhost=none+ask"],
            ),
            // Withdrawing a request: bob's pending request goes, and his
            // interested resources are told.
            ("none+ask", false) => o(
                vec![push(2, "bob", "none")],
                vec![sub("unsubscribe", "alice", "bob")],
                vec!["bob@localhost=none"],
                vec!["alice@localhost=none"],
            ),
            ("none+ask", true) => o(
                vec![push(3, "bob", "none")],
                vec![sub("unsubscribe", "alice", "bob")],
                vec!["bob@localhost=none", "pending:bob@localhost"],
                vec!["alice@localhost=none+ask"],
            ),
            // Cancelling a subscription: bob's side moves and his resources
            // send alice unavailable.
            ("to", false) => o(
                vec![push(2, "bob", "none"), bob_gone()],
                vec![sub("unsubscribe", "alice", "bob"), push(2, "alice", "none")],
                vec!["bob@localhost=none"],
                vec!["alice@localhost=none"],
            ),
            ("to", true) => o(
                vec![push(3, "bob", "none"), bob_gone()],
                vec![
                    sub("unsubscribe", "alice", "bob"),
                    push(2, "alice", "none+ask"),
                ],
                vec!["bob@localhost=none", "pending:bob@localhost"],
                vec!["alice@localhost=none+ask"],
            ),
            ("from", false) => o(
                vec![],
                vec![],
                vec!["bob@localhost=from"],
                vec!["alice@localhost=to"],
            ),
            ("from+ask", false) => o(
                vec![push(2, "bob", "from")],
                vec![sub("unsubscribe", "alice", "bob")],
                vec!["bob@localhost=from"],
                vec!["alice@localhost=to"],
            ),
            ("both", false) => o(
                vec![push(2, "bob", "from"), bob_gone()],
                vec![sub("unsubscribe", "alice", "bob"), push(2, "alice", "to")],
                vec!["bob@localhost=from"],
                vec!["alice@localhost=to"],
            ),
            ("from", true) => o(
                vec![],
                vec![],
                vec!["bob@localhost=from", "pending:bob@localhost"],
                vec!["alice@localhost=to"],
            ),
            ("from+ask", true) => o(
                vec![push(3, "bob", "from")],
                vec![sub("unsubscribe", "alice", "bob")],
                vec!["bob@localhost=from", "pending:bob@localhost"],
                vec!["alice@localhost=to"],
            ),
            ("both", true) => o(
                vec![push(3, "bob", "from"), bob_gone()],
                vec![sub("unsubscribe", "alice", "bob"), push(2, "alice", "to")],
                vec!["bob@localhost=from", "pending:bob@localhost"],
                vec!["alice@localhost=to"],
            ),
            other => unreachable!("{other:?}"),
        }
    });
}

#[test]
fn state_table_subscribed() {
    run_row("subscribed", |state, pending| {
        let alice_avail = || stored_presence("alice@localhost/a", "bob@localhost");
        match (state, pending) {
            // No request from bob: a pre-approval, remembered and pushed
            // (with approved='true'), never sent to bob.
            ("none", false) => o(
                vec![push(2, "bob", "none+approved")],
                vec![],
                vec!["bob@localhost=none+approved"],
                vec!["alice@localhost=none"],
            ),
            // Approving bob's request: alice none→from, bob none+ask→to;
            // bob is told, pushed, and gets alice's presence.
            ("none", true) => o(
                vec![push(4, "bob", "from")],
                vec![
                    sub("subscribed", "alice", "bob"),
                    push(2, "alice", "to"),
                    alice_avail(),
                ],
                vec!["bob@localhost=from"],
                vec!["alice@localhost=to"],
            ),
            ("none+ask", false) => o(
                vec![push(2, "bob", "none+ask+approved")],
                vec![],
                vec!["bob@localhost=none+ask+approved"],
                vec!["alice@localhost=none", "pending:alice@localhost"],
            ),
            ("none+ask", true) => o(
                vec![push(4, "bob", "from+ask")],
                vec![
                    sub("subscribed", "alice", "bob"),
                    push(3, "alice", "to"),
                    alice_avail(),
                ],
                vec!["bob@localhost=from+ask"],
                vec!["alice@localhost=to", "pending:alice@localhost"],
            ),
            ("to", false) => o(
                vec![push(2, "bob", "to+approved")],
                vec![],
                vec!["bob@localhost=to+approved"],
                vec!["alice@localhost=from"],
            ),
            // alice already sees bob: she probes him again (Prosody).
            ("to", true) => o(
                vec![
                    push(4, "bob", "both"),
                    stored_presence("bob@localhost/b", "alice@localhost"),
                ],
                vec![
                    sub("subscribed", "alice", "bob"),
                    push(2, "alice", "both"),
                    alice_avail(),
                ],
                vec!["bob@localhost=both"],
                vec!["alice@localhost=both"],
            ),
            // bob is already subscribed: nothing happens.
            ("from", false) => o(
                vec![],
                vec![],
                vec!["bob@localhost=from"],
                vec!["alice@localhost=to"],
            ),
            ("from+ask", false) => o(
                vec![],
                vec![],
                vec!["bob@localhost=from+ask"],
                vec!["alice@localhost=to", "pending:alice@localhost"],
            ),
            ("both", false) => o(
                vec![],
                vec![],
                vec!["bob@localhost=both"],
                vec!["alice@localhost=both"],
            ),
            // A stale request: consumed; the subscription stays what it is
            // (from does not become both: alice never asked for bob's
            // presence); bob's server ignores the unsolicited `subscribed`
            // and bob gets alice's presence once more.
            ("from", true) => o(
                vec![push(4, "bob", "from")],
                vec![alice_avail()],
                vec!["bob@localhost=from"],
                vec!["alice@localhost=to"],
            ),
            ("from+ask", true) => o(
                vec![push(4, "bob", "from+ask")],
                vec![alice_avail()],
                vec!["bob@localhost=from+ask"],
                vec!["alice@localhost=to", "pending:alice@localhost"],
            ),
            ("both", true) => o(
                vec![
                    push(4, "bob", "both"),
                    stored_presence("bob@localhost/b", "alice@localhost"),
                ],
                vec![alice_avail()],
                vec!["bob@localhost=both"],
                vec!["alice@localhost=both"],
            ),
            other => unreachable!("{other:?}"),
        }
    });
}

#[test]
fn state_table_unsubscribed() {
    run_row("unsubscribed", |state, pending| {
        let alice_gone = || unavailable("alice@localhost/a", "bob@localhost");
        match (state, pending) {
            // A denial of nothing is swallowed.
            ("none", false) => o(
                vec![],
                vec![],
                vec!["bob@localhost=none"],
                vec!["alice@localhost=none"],
            ),
            // Denying bob's request: only the pending request goes on
            // alice's side; bob's ask is cleared.
            ("none", true) => o(
                vec![],
                vec![
                    sub("unsubscribed", "alice", "bob"),
                    push(2, "alice", "none"),
                ],
                vec!["bob@localhost=none"],
                vec!["alice@localhost=none"],
            ),
            ("none+ask", false) => o(
                vec![],
                vec![],
                vec!["bob@localhost=none+ask"],
                vec!["alice@localhost=none", "pending:alice@localhost"],
            ),
            ("none+ask", true) => o(
                vec![],
                vec![
                    sub("unsubscribed", "alice", "bob"),
                    push(3, "alice", "none"),
                ],
                vec!["bob@localhost=none+ask"],
                vec!["alice@localhost=none", "pending:alice@localhost"],
            ),
            ("to", false) => o(
                vec![],
                vec![],
                vec!["bob@localhost=to"],
                vec!["alice@localhost=from"],
            ),
            ("to", true) => o(
                vec![],
                vec![
                    sub("unsubscribed", "alice", "bob"),
                    push(2, "alice", "from"),
                ],
                vec!["bob@localhost=to"],
                vec!["alice@localhost=from"],
            ),
            // Cancelling bob's subscription: both sides move, bob is told,
            // and alice's resources send him unavailable.
            ("from", false) => o(
                vec![push(2, "bob", "none")],
                vec![
                    sub("unsubscribed", "alice", "bob"),
                    push(2, "alice", "none"),
                    alice_gone(),
                ],
                vec!["bob@localhost=none"],
                vec!["alice@localhost=none"],
            ),
            ("from+ask", false) => o(
                vec![push(2, "bob", "none+ask")],
                vec![
                    sub("unsubscribed", "alice", "bob"),
                    push(3, "alice", "none"),
                    alice_gone(),
                ],
                vec!["bob@localhost=none+ask"],
                vec!["alice@localhost=none", "pending:alice@localhost"],
            ),
            ("both", false) => o(
                vec![push(2, "bob", "to")],
                vec![
                    sub("unsubscribed", "alice", "bob"),
                    push(2, "alice", "from"),
                    alice_gone(),
                ],
                vec!["bob@localhost=to"],
                vec!["alice@localhost=from"],
            ),
            ("from", true) => o(
                vec![push(4, "bob", "none")],
                vec![
                    sub("unsubscribed", "alice", "bob"),
                    push(2, "alice", "none"),
                    alice_gone(),
                ],
                vec!["bob@localhost=none"],
                vec!["alice@localhost=none"],
            ),
            ("from+ask", true) => o(
                vec![push(4, "bob", "none+ask")],
                vec![
                    sub("unsubscribed", "alice", "bob"),
                    push(3, "alice", "none"),
                    alice_gone(),
                ],
                vec!["bob@localhost=none+ask"],
                vec!["alice@localhost=none", "pending:alice@localhost"],
            ),
            ("both", true) => o(
                vec![push(4, "bob", "to")],
                vec![
                    sub("unsubscribed", "alice", "bob"),
                    push(2, "alice", "from"),
                    alice_gone(),
                ],
                vec!["bob@localhost=to"],
                vec!["alice@localhost=from"],
            ),
            other => unreachable!("{other:?}"),
        }
    });
}

// ---------------------------------------------------------------- the whole flow

#[test]
fn mutual_subscription_from_scratch_ends_in_both_and_presence_flows() {
    let mut s = server(&["alice", "bob"]);
    let a = online(&mut s, "alice", "a");
    let b = online(&mut s, "bob", "b");
    drain(&mut s, &[a, b]);

    // alice asks; bob has no item at all and gets the request.
    s.send(a, "<presence type='subscribe' to='bob@localhost'/>");
    expect(&mut s, a, &[&push(1, "bob", "none+ask"), ACK_FROM_BOB]);
    expect(&mut s, b, &[&sub("subscribe", "alice", "bob")]);
    expect_stored(&s, "alice", &["bob@localhost=none+ask"]);
    expect_stored(&s, "bob", &["pending:alice@localhost"]);

    // bob approves: his item is created as `from`.
    s.send(b, "<presence type='subscribed' to='alice@localhost'/>");
    expect(&mut s, b, &[&push(3, "alice", "from")]);
    expect(
        &mut s,
        a,
        &[
            &sub("subscribed", "bob", "alice"),
            &push(2, "bob", "to"),
            &stored_presence("bob@localhost/b", "alice@localhost"),
        ],
    );

    // bob asks back.
    s.send(b, "<presence type='subscribe' to='alice@localhost'/>");
    expect(
        &mut s,
        b,
        &[
            &push(4, "alice", "from+ask"),
            "<presence from='alice@localhost' to='bob@localhost' type='unavailable'/>",
        ],
    );
    expect(&mut s, a, &[&sub("subscribe", "bob", "alice")]);

    // alice approves.
    s.send(a, "<presence type='subscribed' to='bob@localhost'/>");
    // Versions: 3 stored bob's request, 4 removed it, 5 is the item. alice
    // already saw bob: she probes him again (Prosody) and gets his presence.
    expect(
        &mut s,
        a,
        &[
            &push(5, "bob", "both"),
            &stored_presence("bob@localhost/b", "alice@localhost"),
        ],
    );
    expect(
        &mut s,
        b,
        &[
            &sub("subscribed", "alice", "bob"),
            &push(5, "alice", "both"),
            &stored_presence("alice@localhost/a", "bob@localhost"),
        ],
    );
    expect_stored(&s, "alice", &["bob@localhost=both"]);
    expect_stored(&s, "bob", &["alice@localhost=both"]);
    expect_no_route(&mut s);

    // Presence now flows both ways.
    s.send(a, "<presence><show>away</show></presence>");
    expect(
        &mut s,
        a,
        &["<presence from='alice@localhost/a'><show>away</show></presence>"],
    );
    expect(
        &mut s,
        b,
        &["<presence from='alice@localhost/a' to='bob@localhost'><show>away</show></presence>"],
    );
    let b2 = s.login("bob", "b2");
    s.send(b2, "<presence/>");
    expect(
        &mut s,
        b2,
        &[
            "<presence from='bob@localhost/b2'/>",
            "<presence from='alice@localhost/a' to='bob@localhost/b2'>\
             <show>away</show><delay xmlns='urn:xmpp:delay' from='localhost' stamp='2026-11-26T08:00:00Z'/></presence>",
            &stored_presence("bob@localhost/b", "bob@localhost/b2"),
        ],
    );
    expect(
        &mut s,
        a,
        &["<presence from='bob@localhost/b2' to='alice@localhost'/>"],
    );
    expect(
        &mut s,
        b,
        &["<presence from='bob@localhost/b2' to='bob@localhost/b'/>"],
    );
}

#[test]
fn subscription_stanzas_keep_their_payload_and_get_bare_addresses() {
    let mut s = server(&["alice", "bob"]);
    let a = online(&mut s, "alice", "a");
    let b = online(&mut s, "bob", "b");
    drain(&mut s, &[a, b]);
    s.send(
        a,
        "<presence type='subscribe' to='bob@localhost/b' id='s1'>\
         <status>It's me</status><nick xmlns='http://jabber.org/protocol/nick'>Al</nick></presence>",
    );
    expect(&mut s, a, &[&push(1, "bob", "none+ask"), ACK_FROM_BOB]);
    let request = "<presence type='subscribe' from='alice@localhost' to='bob@localhost' id='s1'>\
                   <status>It's me</status><nick xmlns='http://jabber.org/protocol/nick'>Al</nick></presence>";
    expect(&mut s, b, &[request]);
    // The stored request is what a later resource sees.
    let b2 = s.login("bob", "b2");
    s.send(b2, "<presence/>");
    expect(
        &mut s,
        b2,
        &[
            "<presence from='bob@localhost/b2'/>",
            &stored_presence("bob@localhost/b", "bob@localhost/b2"),
            request,
        ],
    );
}

// ---------------------------------------------------------------- pending requests

#[test]
fn a_request_to_an_offline_user_is_stored_and_delivered_at_each_initial_presence_once() {
    let mut s = server(&["alice", "bob"]);
    let a = online(&mut s, "alice", "a");
    s.send(a, "<presence type='subscribe' to='bob@localhost'/>");
    expect(&mut s, a, &[&push(1, "bob", "none+ask"), ACK_FROM_BOB]);
    expect_stored(&s, "bob", &["pending:alice@localhost"]);

    // bob connects: nothing until his initial presence.
    let (b1, result) = login_interested(&mut s, "bob", "b1");
    assert_eq!(items_of(&result), Vec::<String>::new());
    expect_nothing(&mut s, b1);
    s.send(b1, "<presence/>");
    expect(
        &mut s,
        b1,
        &[
            "<presence from='bob@localhost/b1'/>",
            &sub("subscribe", "alice", "bob"),
        ],
    );

    // Asking again while it is pending is not delivered again (only
    // acknowledged).
    s.send(a, "<presence type='subscribe' to='bob@localhost'/>");
    expect(&mut s, a, &[ACK_FROM_BOB]);
    expect_nothing(&mut s, b1);

    // Another resource gets it at its own initial presence; b1 gets b2's
    // presence only.
    let b2 = s.login("bob", "b2");
    s.send(b2, "<presence/>");
    expect(
        &mut s,
        b2,
        &[
            "<presence from='bob@localhost/b2'/>",
            &stored_presence("bob@localhost/b1", "bob@localhost/b2"),
            &sub("subscribe", "alice", "bob"),
        ],
    );
    expect(
        &mut s,
        b1,
        &["<presence from='bob@localhost/b2' to='bob@localhost/b1'/>"],
    );
    // A presence update is not initial: no re-delivery.
    s.send(b2, "<presence><show>chat</show></presence>");
    expect(
        &mut s,
        b2,
        &["<presence from='bob@localhost/b2'><show>chat</show></presence>"],
    );
    expect(
        &mut s,
        b1,
        &["<presence from='bob@localhost/b2' to='bob@localhost/b1'><show>chat</show></presence>"],
    );
    expect_nothing(&mut s, a);
    expect_no_route(&mut s);
}

#[test]
fn a_request_goes_to_available_resources_only_and_its_pushes_to_interested_ones() {
    let mut s = server(&["alice", "bob"]);
    let a = online(&mut s, "alice", "a");
    // b1 available, not interested; b2 interested, not available.
    let b1 = s.login("bob", "b1");
    s.send(b1, "<presence/>");
    s.take(b1);
    let (b2, _) = login_interested(&mut s, "bob", "b2");
    s.take(b1);
    s.send(a, "<presence type='subscribe' to='bob@localhost'/>");
    s.take(a);
    expect(&mut s, b1, &[&sub("subscribe", "alice", "bob")]);
    expect_nothing(&mut s, b2);
    // bob approves from b1: the push goes to b2 only.
    s.send(b1, "<presence type='subscribed' to='alice@localhost'/>");
    expect_nothing(&mut s, b1);
    expect(&mut s, b2, &[&push(3, "alice", "from")]);
    expect(
        &mut s,
        a,
        &[
            &sub("subscribed", "bob", "alice"),
            &push(2, "bob", "to"),
            &stored_presence("bob@localhost/b1", "alice@localhost"),
        ],
    );
}

#[test]
fn inbound_subscription_notices_go_to_interested_resources_only() {
    // alice's a1 is available but not interested; a2 is interested only.
    let mut s = server(&["alice", "bob"]);
    store_item(&mut s, "alice", "bob@localhost", "none+ask");
    store_pending(&mut s, "bob", "alice@localhost");
    let a1 = s.login("alice", "a1");
    s.send(a1, "<presence/>");
    s.take(a1);
    let (a2, _) = login_interested(&mut s, "alice", "a2");
    let b = online(&mut s, "bob", "b");
    drain(&mut s, &[a1, a2, b]);
    s.send(b, "<presence type='subscribed' to='alice@localhost'/>");
    expect(
        &mut s,
        a1,
        &[&stored_presence("bob@localhost/b", "alice@localhost")],
    );
    expect(
        &mut s,
        a2,
        &[&sub("subscribed", "bob", "alice"), &push(2, "bob", "to")],
    );
}

// ---------------------------------------------------------------- pre-approval

#[test]
fn a_pre_approval_is_not_sent_and_accepts_the_later_request_automatically() {
    let mut s = server(&["alice", "bob"]);
    let a = online(&mut s, "alice", "a");
    let b = online(&mut s, "bob", "b");
    drain(&mut s, &[a, b]);
    s.send(b, "<presence type='subscribed' to='alice@localhost'/>");
    expect(&mut s, b, &[&push(1, "alice", "none+approved")]);
    expect_nothing(&mut s, a);
    expect_no_route(&mut s);
    // Approving again changes nothing.
    s.send(b, "<presence type='subscribed' to='alice@localhost'/>");
    expect_nothing(&mut s, b);
    expect_stored(&s, "bob", &["alice@localhost=none+approved"]);

    s.send(a, "<presence type='subscribe' to='bob@localhost'/>");
    expect(
        &mut s,
        a,
        &[
            &push(1, "bob", "none+ask"),
            &sub("subscribed", "bob", "alice"),
            &push(2, "bob", "to"),
            &stored_presence("bob@localhost/b", "alice@localhost"),
        ],
    );
    // bob's clients never see the request, only the push.
    expect(&mut s, b, &[&push(2, "alice", "from")]);
    expect_stored(&s, "alice", &["bob@localhost=to"]);
    expect_stored(&s, "bob", &["alice@localhost=from"]);
}

#[test]
fn a_pre_approval_works_while_the_approver_is_offline() {
    let mut s = server(&["alice", "bob"]);
    let b = online(&mut s, "bob", "b");
    s.send(b, "<presence type='subscribed' to='alice@localhost'/>");
    expect(&mut s, b, &[&push(1, "alice", "none+approved")]);
    s.disconnect(b);
    let a = online(&mut s, "alice", "a");
    s.send(a, "<presence type='subscribe' to='bob@localhost'/>");
    // bob has no resources: no presence, just the approval.
    expect(
        &mut s,
        a,
        &[
            &push(1, "bob", "none+ask"),
            &sub("subscribed", "bob", "alice"),
            &push(2, "bob", "to"),
        ],
    );
    expect_stored(&s, "bob", &["alice@localhost=from"]);
}

#[test]
fn unsubscribed_cancels_a_pre_approval() {
    let mut s = server(&["alice", "bob"]);
    let a = online(&mut s, "alice", "a");
    let b = online(&mut s, "bob", "b");
    drain(&mut s, &[a, b]);
    s.send(b, "<presence type='subscribed' to='alice@localhost'/>");
    expect(&mut s, b, &[&push(1, "alice", "none+approved")]);
    s.send(b, "<presence type='unsubscribed' to='alice@localhost'/>");
    expect(&mut s, b, &[&push(2, "alice", "none")]);
    expect_nothing(&mut s, a);
    expect_no_route(&mut s);
    expect_stored(&s, "bob", &["alice@localhost=none"]);
    // The next request is an ordinary one again.
    s.send(a, "<presence type='subscribe' to='bob@localhost'/>");
    expect(&mut s, a, &[&push(1, "bob", "none+ask"), ACK_FROM_BOB]);
    expect(&mut s, b, &[&sub("subscribe", "alice", "bob")]);
    expect_stored(
        &s,
        "bob",
        &["alice@localhost=none", "pending:alice@localhost"],
    );
}

// ---------------------------------------------------------------- broadcast and probes

/// alice's roster: bob both, carol from, dave to, erin none; each contact
/// holds the mirror and is online and available.
fn contacts() -> (TestServer, [SessionId; 4]) {
    let mut s = server(&["alice", "bob", "carol", "dave", "erin"]);
    for (contact, mine, theirs) in [
        ("bob", "both", "both"),
        ("carol", "from", "to"),
        ("dave", "to", "from"),
        ("erin", "none", "none"),
    ] {
        store_item(&mut s, "alice", &format!("{contact}@localhost"), mine);
        store_item(&mut s, contact, "alice@localhost", theirs);
    }
    let ids = [
        online(&mut s, "bob", "b"),
        online(&mut s, "carol", "c"),
        online(&mut s, "dave", "d"),
        online(&mut s, "erin", "e"),
    ];
    drain(&mut s, &ids);
    (s, ids)
}

#[test]
fn initial_presence_goes_to_from_and_both_contacts_and_probes_to_and_both() {
    let (mut s, [b, c, d, e]) = contacts();
    let (a, _) = login_interested(&mut s, "alice", "a");
    s.send(
        a,
        "<presence><show>away</show><priority>5</priority></presence>",
    );
    expect(
        &mut s,
        a,
        &[
            "<presence from='alice@localhost/a'><show>away</show><priority>5</priority></presence>",
            &stored_presence("bob@localhost/b", "alice@localhost/a"),
            &stored_presence("dave@localhost/d", "alice@localhost/a"),
        ],
    );
    let copy = |to: &str| {
        format!(
            "<presence from='alice@localhost/a' to='{to}'><show>away</show><priority>5</priority></presence>"
        )
    };
    expect(&mut s, b, &[&copy("bob@localhost")]);
    expect(&mut s, c, &[&copy("carol@localhost")]);
    expect_nothing(&mut s, d);
    expect_nothing(&mut s, e);
    expect_no_route(&mut s);
    assert_eq!(s.manager.session(a).unwrap().priority(), Some(5));
    assert!(s.manager.session(a).unwrap().is_available());
}

#[test]
fn presence_updates_are_broadcast_without_probes() {
    let (mut s, [b, c, d, e]) = contacts();
    let a = online(&mut s, "alice", "a");
    drain(&mut s, &[b, c, d, e]);
    s.send(a, "<presence><show>dnd</show></presence>");
    expect(
        &mut s,
        a,
        &["<presence from='alice@localhost/a'><show>dnd</show></presence>"],
    );
    expect(
        &mut s,
        b,
        &["<presence from='alice@localhost/a' to='bob@localhost'><show>dnd</show></presence>"],
    );
    expect(
        &mut s,
        c,
        &["<presence from='alice@localhost/a' to='carol@localhost'><show>dnd</show></presence>"],
    );
    expect_nothing(&mut s, d);
    expect_nothing(&mut s, e);
    // A probe now returns the update, stamped when it was stored.
    s.advance(std::time::Duration::from_secs(60));
    s.send(b, "<presence type='probe' to='alice@localhost'/>");
    expect(
        &mut s,
        b,
        &[
            "<presence from='alice@localhost/a' to='bob@localhost/b'><show>dnd</show>\
           <delay xmlns='urn:xmpp:delay' from='localhost' stamp='2026-11-26T08:00:00Z'/></presence>",
        ],
    );
    expect_nothing(&mut s, a);
}

#[test]
fn unavailable_is_broadcast_and_the_next_available_is_initial_again() {
    let (mut s, [b, c, d, e]) = contacts();
    let a = online(&mut s, "alice", "a");
    drain(&mut s, &[b, c, d, e]);
    s.send(
        a,
        "<presence type='unavailable'><status>bye</status></presence>",
    );
    expect(
        &mut s,
        a,
        &["<presence type='unavailable' from='alice@localhost/a'><status>bye</status></presence>"],
    );
    expect(
        &mut s,
        b,
        &[
            "<presence type='unavailable' from='alice@localhost/a' to='bob@localhost'><status>bye</status></presence>",
        ],
    );
    expect(
        &mut s,
        c,
        &[
            "<presence type='unavailable' from='alice@localhost/a' to='carol@localhost'><status>bye</status></presence>",
        ],
    );
    expect_nothing(&mut s, d);
    expect_nothing(&mut s, e);
    assert!(!s.manager.session(a).unwrap().is_available());
    assert_eq!(s.manager.session(a).unwrap().priority(), None);
    // Probing alice now: unavailable from her bare JID.
    s.send(b, "<presence type='probe' to='alice@localhost'/>");
    expect(
        &mut s,
        b,
        &[&unavailable("alice@localhost", "bob@localhost/b")],
    );
    // Available again: initial, so the probes go out again.
    s.send(a, "<presence/>");
    expect(
        &mut s,
        a,
        &[
            "<presence from='alice@localhost/a'/>",
            &stored_presence("bob@localhost/b", "alice@localhost/a"),
            &stored_presence("dave@localhost/d", "alice@localhost/a"),
        ],
    );
    expect(
        &mut s,
        b,
        &["<presence from='alice@localhost/a' to='bob@localhost'/>"],
    );
    expect(
        &mut s,
        c,
        &["<presence from='alice@localhost/a' to='carol@localhost'/>"],
    );
}

#[test]
fn unavailable_from_a_resource_that_was_never_available_is_still_broadcast() {
    // As Prosody (reference §5.2 step 8): no check that it was available.
    let (mut s, [b, c, d, e]) = contacts();
    let a = s.login("alice", "a");
    s.send(a, "<presence type='unavailable'/>");
    expect(
        &mut s,
        a,
        &["<presence type='unavailable' from='alice@localhost/a'/>"],
    );
    expect(
        &mut s,
        b,
        &[&unavailable("alice@localhost/a", "bob@localhost")],
    );
    expect(
        &mut s,
        c,
        &[&unavailable("alice@localhost/a", "carol@localhost")],
    );
    expect_nothing(&mut s, d);
    expect_nothing(&mut s, e);
    // It did not make the session available: disconnecting says nothing.
    s.disconnect(a);
    for id in [b, c, d, e] {
        expect_nothing(&mut s, id);
    }
}

#[test]
fn probe_replies_come_from_every_available_resource_with_its_last_presence() {
    let mut s = server(&["alice", "bob"]);
    store_item(&mut s, "alice", "bob@localhost", "to");
    store_item(&mut s, "bob", "alice@localhost", "from");
    let b1 = s.login("bob", "b1");
    s.send(b1, "<presence><priority>1</priority></presence>");
    s.advance(std::time::Duration::from_secs(3600));
    let b2 = s.login("bob", "b2");
    s.send(b2, "<presence><show>xa</show></presence>");
    let _b3 = s.login("bob", "b3"); // connected, never available
    drain(&mut s, &[b1, b2]);
    let a = online(&mut s, "alice", "a");
    let _ = a;
    let (a2, _) = login_interested(&mut s, "alice", "a2");
    s.send(a2, "<presence/>");
    expect(
        &mut s,
        a2,
        &[
            "<presence from='alice@localhost/a2'/>",
            "<presence from='bob@localhost/b1' to='alice@localhost/a2'><priority>1</priority>\
             <delay xmlns='urn:xmpp:delay' from='localhost' stamp='2026-11-26T08:00:00Z'/></presence>",
            "<presence from='bob@localhost/b2' to='alice@localhost/a2'><show>xa</show>\
             <delay xmlns='urn:xmpp:delay' from='localhost' stamp='2026-11-26T09:00:00Z'/></presence>",
            "<presence from='alice@localhost/a' to='alice@localhost/a2'>\
             <delay xmlns='urn:xmpp:delay' from='localhost' stamp='2026-11-26T09:00:00Z'/></presence>",
        ],
    );
    // bob only gets a probe answered; alice's presence is not shared with him.
    expect_nothing(&mut s, b1);
    expect_nothing(&mut s, b2);
}

#[test]
fn a_probe_to_a_contact_without_available_resources_gets_unavailable_from_the_bare_jid() {
    for bob_connected in [false, true] {
        let mut s = server(&["alice", "bob"]);
        store_item(&mut s, "alice", "bob@localhost", "both");
        store_item(&mut s, "bob", "alice@localhost", "both");
        let b = bob_connected.then(|| login_interested(&mut s, "bob", "b").0);
        let (a, _) = login_interested(&mut s, "alice", "a");
        s.send(a, "<presence/>");
        expect(
            &mut s,
            a,
            &[
                "<presence from='alice@localhost/a'/>",
                &unavailable("bob@localhost", "alice@localhost/a"),
            ],
        );
        if let Some(b) = b {
            // Connected but not available: not a presence recipient.
            expect_nothing(&mut s, b);
        }
        expect_no_route(&mut s);
    }
}

#[test]
fn a_probe_from_a_non_subscriber_is_ignored() {
    let mut s = server(&["alice", "bob", "carol"]);
    store_item(&mut s, "bob", "alice@localhost", "to");
    let b = online(&mut s, "bob", "b");
    let a = online(&mut s, "alice", "a");
    let c = online(&mut s, "carol", "c");
    drain(&mut s, &[a, b, c]);
    // bob's item for alice is `to`: alice may not see bob. carol has none.
    s.send(a, "<presence type='probe' to='bob@localhost'/>");
    s.send(c, "<presence type='probe' to='bob@localhost'/>");
    s.send(c, "<presence type='probe' to='nobody@localhost'/>");
    expect_nothing(&mut s, a);
    expect_nothing(&mut s, c);
    expect_nothing(&mut s, b);
    expect_no_route(&mut s);
}

#[test]
fn sibling_resources_see_each_other() {
    let mut s = server(&["alice"]);
    let a1 = online(&mut s, "alice", "a1");
    let a2 = s.login("alice", "a2");
    expect_nothing(&mut s, a1);
    s.send(a2, "<presence><priority>3</priority></presence>");
    expect(
        &mut s,
        a2,
        &[
            "<presence from='alice@localhost/a2'><priority>3</priority></presence>",
            &stored_presence("alice@localhost/a1", "alice@localhost/a2"),
        ],
    );
    expect(
        &mut s,
        a1,
        &[
            "<presence from='alice@localhost/a2' to='alice@localhost/a1'><priority>3</priority></presence>",
        ],
    );
    // A connected, unavailable sibling gets nothing.
    let a3 = s.login("alice", "a3");
    s.send(a1, "<presence><show>away</show></presence>");
    expect(
        &mut s,
        a1,
        &["<presence from='alice@localhost/a1'><show>away</show></presence>"],
    );
    expect(
        &mut s,
        a2,
        &[
            "<presence from='alice@localhost/a1' to='alice@localhost/a2'><show>away</show></presence>",
        ],
    );
    expect_nothing(&mut s, a3);
    expect_no_route(&mut s);
}

#[test]
fn priority_is_parsed_clamped_and_negative_resources_are_not_top_resources() {
    let mut s = server(&["alice", "bob"]);
    let b = online(&mut s, "bob", "b");
    let a1 = s.login("alice", "a1");
    let a2 = s.login("alice", "a2");
    s.send(a1, "<presence><priority>-1</priority></presence>");
    s.send(a2, "<presence><priority>200</priority></presence>");
    drain(&mut s, &[a1, a2, b]);
    assert_eq!(s.manager.session(a1).unwrap().priority(), Some(-1));
    assert_eq!(s.manager.session(a2).unwrap().priority(), Some(127));
    for (text, want) in [("+4", 4), ("x", 0), ("", 0), (" 9 ", 9), ("-300", -128)] {
        s.send(
            a2,
            &format!("<presence><priority>{text}</priority></presence>"),
        );
        assert_eq!(
            s.manager.session(a2).unwrap().priority(),
            Some(want),
            "{text:?}"
        );
    }
    s.send(a2, "<presence><priority>0</priority></presence>");
    drain(&mut s, &[a1, a2, b]);
    // Messages to the bare JID go to non-negative resources only.
    s.send(
        b,
        "<message to='alice@localhost' type='chat'><body>1</body></message>",
    );
    expect_nothing(&mut s, a1);
    expect(
        &mut s,
        a2,
        &[
            "<message to='alice@localhost' type='chat' from='bob@localhost/b'><body>1</body></message>",
        ],
    );
    // Presence still reaches the negative one.
    s.send(b, "<presence to='alice@localhost'/>");
    expect(
        &mut s,
        a1,
        &["<presence from='bob@localhost/b' to='alice@localhost'/>"],
    );
    expect(
        &mut s,
        a2,
        &["<presence from='bob@localhost/b' to='alice@localhost'/>"],
    );
    // With only a negative resource left, a chat message is stored offline.
    s.send(a2, "<presence type='unavailable'/>");
    drain(&mut s, &[a1, a2]);
    s.send(
        b,
        "<message to='alice@localhost' type='chat'><body>2</body></message>",
    );
    expect_nothing(&mut s, a1);
    expect_nothing(&mut s, a2);
    assert_eq!(s.store.offline_messages(&account("alice")).len(), 1);
}

// ---------------------------------------------------------------- directed presence

#[test]
fn directed_presence_to_a_non_contact_is_undone_by_unavailable() {
    let (mut s, [b, c, d, e]) = contacts();
    let a = online(&mut s, "alice", "a");
    drain(&mut s, &[b, c, d, e]);
    s.send(
        a,
        "<presence to='erin@localhost'><show>chat</show></presence>",
    );
    s.send(a, "<presence to='dave@localhost/d'/>");
    expect_nothing(&mut s, a);
    expect(
        &mut s,
        e,
        &["<presence from='alice@localhost/a' to='erin@localhost'><show>chat</show></presence>"],
    );
    expect(
        &mut s,
        d,
        &["<presence from='alice@localhost/a' to='dave@localhost/d'/>"],
    );
    s.send(a, "<presence type='unavailable'/>");
    expect(
        &mut s,
        a,
        &["<presence type='unavailable' from='alice@localhost/a'/>"],
    );
    expect(
        &mut s,
        b,
        &[&unavailable("alice@localhost/a", "bob@localhost")],
    );
    expect(
        &mut s,
        c,
        &[&unavailable("alice@localhost/a", "carol@localhost")],
    );
    expect(
        &mut s,
        e,
        &[&unavailable("alice@localhost/a", "erin@localhost")],
    );
    expect(
        &mut s,
        d,
        &[&unavailable("alice@localhost/a", "dave@localhost/d")],
    );
    // Forgotten once sent.
    s.send(a, "<presence/>");
    s.send(a, "<presence type='unavailable'/>");
    drain(&mut s, &[a, b, c]);
    expect_nothing(&mut s, d);
    expect_nothing(&mut s, e);
}

#[test]
fn directed_unavailable_removes_the_target() {
    let (mut s, [b, c, d, e]) = contacts();
    let a = online(&mut s, "alice", "a");
    drain(&mut s, &[b, c, d, e]);
    s.send(a, "<presence to='erin@localhost'/>");
    s.send(a, "<presence type='unavailable' to='erin@localhost'/>");
    expect(
        &mut s,
        e,
        &[
            "<presence from='alice@localhost/a' to='erin@localhost'/>",
            &unavailable("alice@localhost/a", "erin@localhost"),
        ],
    );
    s.disconnect(a);
    expect_nothing(&mut s, e);
    expect(
        &mut s,
        b,
        &[&unavailable("alice@localhost/a", "bob@localhost")],
    );
}

#[test]
fn directed_presence_to_a_from_or_both_contact_is_not_tracked() {
    let (mut s, [b, c, d, e]) = contacts();
    let a = online(&mut s, "alice", "a");
    drain(&mut s, &[b, c, d, e]);
    s.send(
        a,
        "<presence to='bob@localhost'><show>away</show></presence>",
    );
    s.send(a, "<presence to='carol@localhost'/>");
    expect(
        &mut s,
        b,
        &["<presence from='alice@localhost/a' to='bob@localhost'><show>away</show></presence>"],
    );
    expect(
        &mut s,
        c,
        &["<presence from='alice@localhost/a' to='carol@localhost'/>"],
    );
    s.disconnect(a);
    // Exactly one unavailable each, from the broadcast.
    expect(
        &mut s,
        b,
        &[&unavailable("alice@localhost/a", "bob@localhost")],
    );
    expect(
        &mut s,
        c,
        &[&unavailable("alice@localhost/a", "carol@localhost")],
    );
    expect_nothing(&mut s, d);
    expect_nothing(&mut s, e);
}

#[test]
fn directed_presence_before_initial_presence_is_undone_on_disconnect() {
    let (mut s, [b, c, d, e]) = contacts();
    let a = s.login("alice", "a");
    s.send(a, "<presence to='erin@localhost'/>");
    expect(
        &mut s,
        e,
        &["<presence from='alice@localhost/a' to='erin@localhost'/>"],
    );
    s.disconnect(a);
    expect(
        &mut s,
        e,
        &[&unavailable("alice@localhost/a", "erin@localhost")],
    );
    // alice was never available: her contacts hear nothing.
    expect_nothing(&mut s, b);
    expect_nothing(&mut s, c);
    expect_nothing(&mut s, d);
    expect_no_route(&mut s);
}

// ---------------------------------------------------------------- disconnect

#[test]
fn disconnect_of_an_available_resource_sends_unavailable_to_contacts_and_siblings() {
    let (mut s, [b, c, d, e]) = contacts();
    let a = online(&mut s, "alice", "a");
    let a2 = online(&mut s, "alice", "a2");
    let a3 = s.login("alice", "a3"); // connected only
    drain(&mut s, &[a, a2, b, c, d, e]);
    s.disconnect(a);
    expect(
        &mut s,
        b,
        &[&unavailable("alice@localhost/a", "bob@localhost")],
    );
    expect(
        &mut s,
        c,
        &[&unavailable("alice@localhost/a", "carol@localhost")],
    );
    expect(
        &mut s,
        a2,
        &[&unavailable("alice@localhost/a", "alice@localhost/a2")],
    );
    expect_nothing(&mut s, a3);
    expect_nothing(&mut s, d);
    expect_nothing(&mut s, e);
    expect_no_route(&mut s);
    // A probe no longer sees the gone resource.
    s.send(b, "<presence type='probe' to='alice@localhost'/>");
    expect(
        &mut s,
        b,
        &[&stored_presence("alice@localhost/a2", "bob@localhost/b")],
    );
}

#[test]
fn a_clean_stream_close_sends_plain_unavailable() {
    let (mut s, [b, c, d, e]) = contacts();
    let a = online(&mut s, "alice", "a");
    drain(&mut s, &[b, c, d, e]);
    s.send(a, "</stream:stream>");
    expect(
        &mut s,
        b,
        &[&unavailable("alice@localhost/a", "bob@localhost")],
    );
    expect(
        &mut s,
        c,
        &[&unavailable("alice@localhost/a", "carol@localhost")],
    );
}

#[test]
fn a_session_closed_with_an_error_says_why() {
    let (mut s, [b, c, d, e]) = contacts();
    let a = online(&mut s, "alice", "a");
    let a2 = online(&mut s, "alice", "a2");
    drain(&mut s, &[a, a2, b, c, d, e]);
    // The same resource again: the old session is replaced.
    let a_new = s.login("alice", "a");
    assert!(s.is_closed(a));
    let gone = |to: &str| {
        format!(
            "<presence type='unavailable' from='alice@localhost/a' to='{to}'>\
             <status>Disconnected: Replaced by new connection</status></presence>"
        )
    };
    expect(&mut s, b, &[&gone("bob@localhost")]);
    expect(&mut s, c, &[&gone("carol@localhost")]);
    expect(&mut s, a2, &[&gone("alice@localhost/a2")]);
    expect_nothing(&mut s, a_new);
    expect_nothing(&mut s, d);
    expect_nothing(&mut s, e);
}

#[test]
fn a_session_that_never_sent_presence_leaves_silently() {
    let (mut s, [b, c, d, e]) = contacts();
    let (a, _) = login_interested(&mut s, "alice", "a");
    s.disconnect(a);
    for id in [b, c, d, e] {
        expect_nothing(&mut s, id);
    }
    expect_no_route(&mut s);
}

// ---------------------------------------------------------------- the server itself

#[test]
fn presence_to_the_server_domain() {
    let mut s = server(&["alice"]);
    let a = online(&mut s, "alice", "a");
    s.send(a, "<presence type='probe' to='localhost' id='p1'/>");
    expect(
        &mut s,
        a,
        &["<presence from='localhost' to='alice@localhost' id='p1'/>"],
    );
    s.send(a, "<presence type='subscribe' to='localhost'/>");
    expect(
        &mut s,
        a,
        &[
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='1'>\
             <item jid='localhost' subscription='none' ask='subscribe'/></query></iq>",
            "<presence type='subscribed' from='localhost' to='alice@localhost'/>",
            "<iq type='set' id='push'><query xmlns='jabber:iq:roster' ver='2'>\
             <item jid='localhost' subscription='to'/></query></iq>",
            "<presence from='localhost' to='alice@localhost'/>",
        ],
    );
    expect_stored(&s, "alice", &["localhost=to"]);
    // Other presence to the server is consumed.
    s.send(a, "<presence to='localhost'/>");
    s.send(a, "<presence type='unsubscribed' to='localhost'/>");
    expect_nothing(&mut s, a);
    // The next login probes the server like any `to` contact; as in
    // Prosody the server answers to the bare JID, so every available
    // resource hears it.
    let (a2, _) = login_interested(&mut s, "alice", "a2");
    s.send(a2, "<presence/>");
    expect(
        &mut s,
        a2,
        &[
            "<presence from='alice@localhost/a2'/>",
            "<presence from='localhost' to='alice@localhost'/>",
            &stored_presence("alice@localhost/a", "alice@localhost/a2"),
        ],
    );
    expect(
        &mut s,
        a,
        &[
            "<presence from='alice@localhost/a2' to='alice@localhost/a'/>",
            "<presence from='localhost' to='alice@localhost'/>",
        ],
    );
    expect_no_route(&mut s);
}

// ---------------------------------------------------------------- remote contacts

#[test]
fn subscription_and_presence_for_remote_contacts_are_routed_out() {
    let mut s = server(&["alice"]);
    store_item(&mut s, "alice", "romeo@remote.example", "both");
    let a = online(&mut s, "alice", "a");
    let routed = s.take_routed();
    let want: Vec<Element> = [
        "<presence from='alice@localhost/a' to='romeo@remote.example'/>",
        "<presence type='probe' from='alice@localhost/a' to='romeo@remote.example'/>",
    ]
    .iter()
    .map(|x| parse_stanza(x))
    .collect();
    assert_eq!(routed, want);
    s.send(a, "<presence type='subscribe' to='juliet@remote.example'/>");
    expect(
        &mut s,
        a,
        &[&push(2, "juliet@remote.example", "none+ask").replace("@localhost", "")],
    );
    assert_eq!(
        s.take_routed(),
        [parse_stanza(
            "<presence type='subscribe' from='alice@localhost' to='juliet@remote.example'/>"
        )]
    );
    // The remote server answers; alice's server delivers and pushes.
    let now = s.now();
    s.manager.handle_routed(
        parse_stanza(
            "<presence type='subscribed' from='juliet@remote.example' to='alice@localhost'/>",
        ),
        now,
    );
    s.pump();
    expect(
        &mut s,
        a,
        &[
            "<presence type='subscribed' from='juliet@remote.example' to='alice@localhost'/>",
            &push(3, "juliet@remote.example", "to").replace("@localhost", ""),
        ],
    );
    // A remote probe is answered by routing alice's presence out.
    s.manager.handle_routed(
        parse_stanza("<presence type='probe' from='romeo@remote.example/x' to='alice@localhost'/>"),
        now,
    );
    s.pump();
    assert_eq!(
        s.take_routed(),
        [parse_stanza(&stored_presence(
            "alice@localhost/a",
            "romeo@remote.example/x"
        ))]
    );
    expect_nothing(&mut s, a);
    // Removing the remote contact cancels both ways through s2s.
    s.send(
        a,
        "<iq type='set' id='rm'><query xmlns='jabber:iq:roster'>         <item jid='romeo@remote.example' subscription='remove'/></query></iq>",
    );
    expect(
        &mut s,
        a,
        &[
            "<iq type='result' id='rm' to='alice@localhost/a'/>",
            &push(4, "romeo@remote.example", "none")
                .replace("@localhost", "")
                .replace("subscription='none'", "subscription='remove'"),
        ],
    );
    let want: Vec<Element> = [
        "<presence type='unsubscribed' from='alice@localhost' to='romeo@remote.example'/>",
        "<presence type='unavailable' from='alice@localhost/a' to='romeo@remote.example'/>",
        "<presence type='unsubscribe' from='alice@localhost' to='romeo@remote.example'/>",
    ]
    .iter()
    .map(|x| parse_stanza(x))
    .collect();
    assert_eq!(s.take_routed(), want);
}

#[test]
fn stanzas_from_outside_for_other_domains_are_not_routed_back_out() {
    let mut s = server(&["alice"]);
    let now = s.now();
    s.manager.handle_routed(
        parse_stanza("<presence from='romeo@remote.example' to='juliet@elsewhere.example'/>"),
        now,
    );
    s.manager.handle_routed(
        parse_stanza("<presence from='alice@localhost' to='juliet@elsewhere.example'/>"),
        now,
    );
    s.pump();
    expect_no_route(&mut s);
}

// ---------------------------------------------------------------- odd requests

#[test]
fn subscription_stanzas_to_oneself_are_a_bad_request() {
    let mut s = server(&["alice"]);
    let a = online(&mut s, "alice", "a");
    s.send(
        a,
        "<presence type='subscribe' to='alice@localhost' id='x'/>",
    );
    s.send(a, "<presence type='subscribed' id='y'/>");
    let err = |id: &str| {
        format!(
            "<presence type='error' id='{id}' to='alice@localhost/a'><error type='modify'>\
             <bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Invalid presence type</text></error></presence>"
        )
    };
    expect(&mut s, a, &[&err("x"), &err("y")]);
    expect_stored(&s, "alice", &[]);
}

#[test]
fn a_request_to_a_user_that_does_not_exist_is_dropped() {
    let mut s = server(&["alice"]);
    let a = online(&mut s, "alice", "a");
    s.send(a, "<presence type='subscribe' to='nobody@localhost'/>");
    expect(&mut s, a, &[&push(1, "nobody", "none+ask")]);
    assert_eq!(s.store.stored_roster(&account("nobody")), None);
    expect_no_route(&mut s);
}

// ---------------------------------------------------------------- the roster cache

/// Held requests in a compact form: `load bob`, `exists bob`,
/// `write bob v2`, `offline+ alice`, `offline- alice`.
fn held(s: &TestServer) -> Vec<String> {
    s.held_requests()
        .iter()
        .map(|r| match r {
            Request::LoadRoster { account } => format!("load {}", account.user()),
            Request::LoadBlocklist { account } => format!("blocklist {}", account.user()),
            Request::UserExists { account } => format!("exists {}", account.user()),
            Request::RosterChanged {
                account, version, ..
            } => format!("write {} v{version}", account.user()),
            Request::StoreOffline { account, .. } => format!("offline+ {}", account.user()),
            Request::TakeOffline { account } => format!("offline- {}", account.user()),
            Request::Credentials { account } => format!("credentials {}", account.user()),
            Request::VerifyPassword { account, .. } => {
                format!("verify-password {}", account.user())
            }
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn an_offline_users_roster_is_loaded_on_demand_and_not_kept() {
    let mut s = server(&["alice", "bob"]);
    let a = online(&mut s, "alice", "a");
    s.hold_requests(true);
    s.send(a, "<presence type='subscribe' to='bob@localhost'/>");
    // bob's blocklist first (XEP-0191: is alice blocked?), then his roster.
    assert_eq!(held(&s), ["write alice v1", "blocklist bob"]);
    // alice's push does not wait for her write.
    expect(&mut s, a, &[&push(1, "bob", "none+ask")]);
    s.answer_held(&[1]);
    assert_eq!(held(&s), ["write alice v1", "load bob"]);
    s.answer_held(&[1]);
    assert_eq!(held(&s), ["write alice v1", "exists bob"]);
    s.answer_held(&[1]);
    assert_eq!(held(&s), ["write alice v1", "write bob v1"]);
    s.answer_all_held();
    expect_stored(&s, "bob", &["pending:alice@localhost"]);

    // bob's roster was dropped: the next request for him loads it again
    // (and sees what storage says now).
    store_item(&mut s, "bob", "carol@localhost", "both");
    s.send(a, "<presence type='subscribe' to='bob@localhost'/>");
    assert_eq!(held(&s), ["blocklist bob"]);
    s.answer_held(&[0]);
    assert_eq!(held(&s), ["load bob"]);
    s.answer_all_held();
    assert!(
        s.held_requests().is_empty(),
        "already pending: nothing to write"
    );
    // Both requests were acknowledged once bob's roster was there.
    expect(&mut s, a, &[ACK_FROM_BOB, ACK_FROM_BOB]);

    // bob logs in later and finds the request and what storage holds.
    s.hold_requests(false);
    let (b, result) = login_interested(&mut s, "bob", "b");
    assert_eq!(items_of(&result), ["carol@localhost=both"]);
    s.send(b, "<presence/>");
    expect(
        &mut s,
        b,
        &[
            // carol has no account, so nobody answers bob's probe.
            "<presence from='bob@localhost/b'/>",
            &sub("subscribe", "alice", "bob"),
        ],
    );
}

#[test]
fn an_online_users_roster_stays_loaded_while_it_has_sessions() {
    let mut s = server(&["alice", "bob"]);
    let a = online(&mut s, "alice", "a");
    let b = online(&mut s, "bob", "b");
    drain(&mut s, &[a, b]);
    s.hold_requests(true);
    s.send(a, "<presence type='subscribe' to='bob@localhost'/>");
    // Only writes: both rosters are in memory.
    assert_eq!(held(&s), ["write alice v1", "write bob v1"]);
    expect(&mut s, b, &[&sub("subscribe", "alice", "bob")]);
    // Unacknowledged writes hold nothing up; storage gets one write per
    // user at a time, in order.
    s.send(b, "<presence type='subscribed' to='alice@localhost'/>");
    expect(&mut s, b, &[&push(3, "alice", "from")]);
    assert_eq!(held(&s), ["write alice v1", "write bob v1"]);
    s.answer_held(&[1]);
    assert_eq!(held(&s), ["write alice v1", "write bob v2"]);
    s.answer_held(&[1]);
    assert_eq!(held(&s), ["write alice v1", "write bob v3"]);
    s.answer_held(&[0]);
    assert_eq!(held(&s), ["write bob v3", "write alice v2"]);
    s.answer_all_held();
    expect_stored(&s, "alice", &["bob@localhost=to"]);
    expect_stored(&s, "bob", &["alice@localhost=from"]);
    // Once bob is gone his roster is dropped.
    s.disconnect(b);
    s.answer_all_held();
    s.send(a, "<presence type='probe' to='bob@localhost'/>");
    assert_eq!(held(&s), ["blocklist bob"]);
    s.answer_held(&[0]);
    assert_eq!(held(&s), ["load bob"]);
}

#[test]
fn writes_answered_out_of_order_still_leave_the_right_roster() {
    let mut s = server(&["alice", "bob"]);
    let a = online(&mut s, "alice", "a");
    s.hold_requests(true);
    // Three changes to the same item of an offline contact's roster.
    s.send(a, "<presence type='subscribe' to='bob@localhost'/>");
    s.answer_all_held();
    s.send(a, "<presence type='unsubscribe' to='bob@localhost'/>");
    s.send(a, "<presence type='subscribe' to='bob@localhost'/>");
    s.send(a, "<presence type='unsubscribe' to='bob@localhost'/>");
    // Answer everything newest first.
    while !s.held_requests().is_empty() {
        let n = s.held_requests().len();
        s.answer_held(&(0..n).rev().collect::<Vec<_>>());
    }
    expect_stored(&s, "alice", &["bob@localhost=none"]);
    expect_stored(&s, "bob", &[]);
    assert_eq!(stored_version(&s, "alice"), 4);
    // A fresh load agrees with what alice's clients were told.
    s.disconnect(a);
    s.hold_requests(false);
    let (_, result) = login_interested(&mut s, "alice", "a2");
    assert_eq!(items_of(&result), ["bob@localhost=none"]);
    assert_eq!(
        result
            .get_child("query", "jabber:iq:roster")
            .unwrap()
            .attr("ver"),
        Some("4")
    );
}

// ---------------------------------------------------------------- an adversarial store

#[derive(Clone, Copy, Debug)]
enum Step {
    /// Log `user` in with `resource`; the session is called "user/resource".
    Login(&'static str, &'static str),
    /// The session sends XML.
    Send(&'static str, &'static str),
    /// The session's socket drops.
    Disconnect(&'static str),
}

use Step::{Disconnect, Login, Send};

/// Three users meet, subscribe, chat, come and go.
const SCENARIO: &[Step] = &[
    Login("alice", "a"),
    Login("bob", "b"),
    Send(
        "alice/a",
        "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>",
    ),
    Send("alice/a", "<presence/>"),
    Send("alice/a", "<presence type='subscribe' to='bob@localhost'/>"),
    Send(
        "alice/a",
        "<presence type='subscribe' to='carol@localhost'/>",
    ),
    Send("bob/b", "<presence><priority>1</priority></presence>"),
    Send(
        "bob/b",
        "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>",
    ),
    Send(
        "bob/b",
        "<presence type='subscribed' to='alice@localhost'/>",
    ),
    Send("bob/b", "<presence type='subscribe' to='alice@localhost'/>"),
    Send(
        "bob/b",
        "<message to='alice@localhost' type='chat'><body>hi alice</body></message>",
    ),
    Send(
        "alice/a",
        "<presence type='subscribed' to='bob@localhost'/>",
    ),
    Send(
        "alice/a",
        "<message to='carol@localhost' type='chat'><body>hi carol</body></message>",
    ),
    Send(
        "alice/a",
        "<iq type='set' id='n1'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob'/></query></iq>",
    ),
    Login("carol", "c"),
    Send("carol/c", "<presence/>"),
    Send(
        "carol/c",
        "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>",
    ),
    Send(
        "carol/c",
        "<presence type='subscribed' to='alice@localhost'/>",
    ),
    Send("carol/c", "<presence type='subscribe' to='bob@localhost'/>"),
    Send(
        "carol/c",
        "<presence type='subscribe' to='alice@localhost'/>",
    ),
    Send(
        "bob/b",
        "<presence><show>away</show><priority>1</priority></presence>",
    ),
    Disconnect("bob/b"),
    Send(
        "alice/a",
        "<presence type='subscribed' to='carol@localhost'/>",
    ),
    Send(
        "carol/c",
        "<message to='bob@localhost' type='chat'><body>hi bob</body></message>",
    ),
    Login("bob", "b2"),
    Send(
        "bob/b2",
        "<iq type='get' id='r2' ><query xmlns='jabber:iq:roster' ver='3'/></iq>",
    ),
    Send("bob/b2", "<presence/>"),
    Send(
        "bob/b2",
        "<presence type='unsubscribed' to='carol@localhost'/>",
    ),
    Send(
        "alice/a",
        "<iq type='set' id='rm'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' subscription='remove'/></query></iq>",
    ),
    Send("alice/a", "<presence to='bob@localhost/b2'/>"),
    Send("alice/a", "<presence type='unavailable'/>"),
    Send(
        "carol/c",
        "<message to='alice@localhost' type='chat'><body>you there?</body></message>",
    ),
    Login("alice", "a2"),
    Send(
        "alice/a2",
        "<iq type='get' id='r3'><query xmlns='jabber:iq:roster'/></iq>",
    ),
    Send("alice/a2", "<presence><priority>2</priority></presence>"),
    Send(
        "carol/c",
        "<presence type='unsubscribe' to='alice@localhost'/>",
    ),
    Disconnect("alice/a"),
    Disconnect("carol/c"),
    Send("alice/a2", "<presence type='unavailable'/>"),
];

/// Everything observable at the end of a run.
#[derive(Debug, PartialEq)]
struct Observed {
    transcripts: Vec<(String, Vec<Element>)>,
    rosters: Vec<(&'static str, Vec<String>, u64)>,
    offline: Vec<(&'static str, Vec<Element>)>,
}

fn user_of(request: &Request) -> String {
    request.account().user().to_owned()
}

/// Chooses which held requests to answer next, in order.
type Pick<'a> = Option<&'a mut dyn FnMut(&[Request]) -> Vec<usize>>;

/// The user acting in a step.
fn actor(step: &Step) -> &'static str {
    match *step {
        Login(user, _) => user,
        Send(label, _) | Disconnect(label) => label.split('/').next().unwrap(),
    }
}

/// Runs the scenario. Without `pick` storage answers at once. With it,
/// requests are held; after each step (unless `keep(step)` says to let
/// them pile up) `pick` chooses which held requests to answer next and in
/// which order, until none are left. Logins and disconnects are sync
/// points: what is held is answered first (input a client sent after a
/// stanza that waits on storage is still unread when its socket drops, and
/// is lost with the session).
///
/// Requests only pile up while the same user keeps acting. Inputs of two
/// users that both wait on storage have no defined order between them
/// (RFC 6120 §10.1 orders stanzas per sender only): alice removing bob
/// while bob's first presence waits for his roster may well overtake it,
/// and then alice rightly never sees that presence.
fn run_scenario(mut pick: Pick<'_>, keep: &dyn Fn(usize) -> bool) -> Observed {
    let mut s = server(&["alice", "bob", "carol"]);
    let mut ids: Vec<(String, SessionId)> = Vec::new();
    let mut transcripts: Vec<(String, Vec<Element>)> = Vec::new();
    let collect = |s: &mut TestServer,
                   ids: &[(String, SessionId)],
                   transcripts: &mut Vec<(String, Vec<Element>)>| {
        for (label, id) in ids {
            let got = received(s, *id);
            match transcripts.iter_mut().find(|(l, _)| l == label) {
                Some((_, t)) => t.extend(got),
                None => transcripts.push((label.clone(), got)),
            }
        }
    };
    let drain_held = |s: &mut TestServer, pick: &mut Pick<'_>| {
        if let Some(pick) = pick.as_mut() {
            let mut rounds = 0;
            while !s.held_requests().is_empty() {
                let order = pick(&s.held_requests());
                assert!(!order.is_empty());
                s.answer_held(&order);
                rounds += 1;
                assert!(rounds < 10_000, "storage never settles");
            }
        }
    };
    s.hold_requests(pick.is_some());
    for (i, step) in SCENARIO.iter().enumerate() {
        match *step {
            Login(user, resource) => {
                drain_held(&mut s, &mut pick);
                s.hold_requests(false);
                let id = s.login(user, resource);
                s.hold_requests(pick.is_some());
                ids.push((format!("{user}/{resource}"), id));
            }
            Send(label, xml) => {
                let id = ids.iter().find(|(l, _)| l == label).unwrap().1;
                s.send(id, xml);
            }
            Disconnect(label) => {
                drain_held(&mut s, &mut pick);
                let id = ids.iter().find(|(l, _)| l == label).unwrap().1;
                s.disconnect(id);
            }
        }
        let same_actor_next = SCENARIO
            .get(i + 1)
            .is_some_and(|next| actor(next) == actor(step));
        if !(keep(i) && same_actor_next) {
            drain_held(&mut s, &mut pick);
        }
        collect(&mut s, &ids, &mut transcripts);
    }
    drain_held(&mut s, &mut pick);
    collect(&mut s, &ids, &mut transcripts);
    assert!(s.take_routed().is_empty());
    let users = ["alice", "bob", "carol"];
    Observed {
        transcripts,
        rosters: users
            .iter()
            .map(|u| (*u, stored(&s, u), stored_version(&s, u)))
            .collect(),
        offline: users
            .iter()
            .map(|u| (*u, s.store.offline_messages(&account(u)).to_vec()))
            .collect(),
    }
}

fn at_once() -> Observed {
    run_scenario(None, &|_| false)
}

#[track_caller]
/// Whether a stanza is a server's acknowledgement of a subscription
/// request (unavailable presence from a bare JID). It answers a request on
/// the contact's side, so where it lands among the requester's own
/// stanzas depends on when the contact's storage answers; only how many
/// each contact sent is compared.
fn is_ack(e: &Element) -> bool {
    e.name() == "presence"
        && e.attr("type") == Some("unavailable")
        && e.attr("from").is_some_and(|f| !f.contains('/'))
}

fn assert_same(reference: &Observed, got: &Observed, how: &str) {
    for ((label, want), (label2, have)) in reference.transcripts.iter().zip(&got.transcripts) {
        assert_eq!(label, label2);
        let acks = |v: &[Element]| {
            let mut a: Vec<Element> = v.iter().filter(|e| is_ack(e)).cloned().collect();
            a.sort_by(|x, y| x.attr("from").cmp(&y.attr("from")));
            a
        };
        assert_eq!(acks(want), acks(have), "{how}: {label}: acknowledgements");
        let want: Vec<Element> = want.iter().filter(|e| !is_ack(e)).cloned().collect();
        let have: Vec<Element> = have.iter().filter(|e| !is_ack(e)).cloned().collect();
        let (want, have) = (&want, &have);
        if want != have {
            let show = |v: &[Element]| {
                v.iter()
                    .map(|e| {
                        format!(
                            "  {}",
                            String::from_utf8_lossy(&xmpp_session::stream::element_bytes(e))
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            panic!(
                "{how}: {label} received:\n{}\nbut with storage answering at once:\n{}",
                show(have),
                show(want)
            );
        }
    }
    assert_eq!(reference.transcripts.len(), got.transcripts.len(), "{how}");
    assert_eq!(reference.rosters, got.rosters, "{how}: stored rosters");
    assert_eq!(reference.offline, got.offline, "{how}: offline messages");
}

#[test]
fn the_scenario_itself_does_what_it_should() {
    let r = at_once();
    // alice and carol end mutual until carol unsubscribes; alice removed
    // bob; bob denied carol.
    assert_eq!(
        r.rosters,
        [
            ("alice", vec!["carol@localhost=to".to_owned()], 13),
            ("bob", vec!["alice@localhost=none".to_owned()], 9),
            (
                "carol",
                vec![
                    "alice@localhost=from".to_owned(),
                    "bob@localhost=none".to_owned()
                ],
                8
            ),
        ]
    );
    // carol's message reached bob after he came back; carol's last one
    // waited for alice's next resource.
    assert_eq!(r.offline.iter().map(|(_, m)| m.len()).sum::<usize>(), 0);
    let bob2 = &r.transcripts.iter().find(|(l, _)| l == "bob/b2").unwrap().1;
    assert!(bob2.iter().any(|e| e.name() == "message"));
    let alice2 = &r
        .transcripts
        .iter()
        .find(|(l, _)| l == "alice/a2")
        .unwrap()
        .1;
    assert!(alice2.iter().any(|e| e.name() == "message"));
}

#[test]
fn a_store_answering_late_in_any_fixed_order_changes_nothing() {
    let reference = at_once();
    type Picker = Box<dyn FnMut(&[Request]) -> Vec<usize>>;
    let strategies: Vec<(&str, Picker)> = vec![
        ("fifo one at a time", Box::new(|_: &[Request]| vec![0])),
        (
            "lifo one at a time",
            Box::new(|h: &[Request]| vec![h.len() - 1]),
        ),
        (
            "all, newest first",
            Box::new(|h: &[Request]| (0..h.len()).rev().collect()),
        ),
        (
            "all, oldest first",
            Box::new(|h: &[Request]| (0..h.len()).collect()),
        ),
        (
            "odd positions first",
            Box::new(|h: &[Request]| {
                (0..h.len())
                    .filter(|i| i % 2 == 1)
                    .chain((0..h.len()).filter(|i| i % 2 == 0))
                    .collect()
            }),
        ),
    ];
    for (name, mut pick) in strategies {
        for keep_every in [0usize, 2, 3, 5] {
            let keep = move |i: usize| keep_every != 0 && !i.is_multiple_of(keep_every);
            let got = run_scenario(Some(&mut *pick), &keep);
            assert_same(
                &reference,
                &got,
                &format!("{name}, piling up with period {keep_every}"),
            );
        }
    }
}

#[test]
fn a_store_that_favours_one_user_over_another_changes_nothing() {
    let reference = at_once();
    let users = ["alice", "bob", "carol"];
    let perms: [[usize; 3]; 6] = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for perm in perms {
        for newest_first in [false, true] {
            // Answer only the favourite user's requests while any are
            // held, then the next user's, and so on.
            let mut pick = |h: &[Request]| {
                for &u in &perm {
                    let mine: Vec<usize> = (0..h.len())
                        .filter(|&i| user_of(&h[i]) == users[u])
                        .collect();
                    if !mine.is_empty() {
                        return if newest_first {
                            mine.into_iter().rev().collect()
                        } else {
                            mine
                        };
                    }
                }
                (0..h.len()).collect()
            };
            for keep_every in [0usize, 4] {
                let keep = move |i: usize| keep_every != 0 && !i.is_multiple_of(keep_every);
                let got = run_scenario(Some(&mut pick), &keep);
                assert_same(
                    &reference,
                    &got,
                    &format!(
                        "favouring {:?}, newest first {newest_first}, period {keep_every}",
                        perm.map(|u| users[u])
                    ),
                );
            }
        }
    }
}

mod random_orders {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_answer_order_gives_the_same_transcripts_and_rosters(
            choices in proptest::collection::vec(any::<u32>(), 1..400),
            keep in proptest::collection::vec(any::<bool>(), SCENARIO.len()),
        ) {
            let reference = at_once();
            let mut n = 0usize;
            let mut pick = |h: &[Request]| {
                let c = choices[n % choices.len()] as usize;
                n += 1;
                vec![c % h.len()]
            };
            let keep = |i: usize| keep[i];
            let got = run_scenario(Some(&mut pick), &keep);
            assert_same(&reference, &got, "random order");
        }
    }
}
