//! Message routing transcripts (RFC 6121 §8.5, Prosody reference §4.5,
//! §4.8, §4.9): every message type against every addressing form and
//! recipient state, asserting what every session receives, what is stored
//! offline and that nothing else happens.

mod common;

use std::time::Duration;

use common::{Net, STAMP, STANZAS, error_reply, service_unavailable};
use xmpp_session::testkit::parse_stanza;

const ALICE: &str = "alice@localhost/r";

/// One recipient resource: connected without presence, or available with
/// a priority.
#[derive(Clone, Copy, Debug)]
enum Res {
    Unavailable,
    Prio(i8),
}

/// A state of the recipient `bob` (or of the non-existent `nobody`).
struct State {
    name: &'static str,
    /// The recipient's user name.
    user: &'static str,
    resources: &'static [(&'static str, Res)],
}

const STATES: &[State] = &[
    State {
        name: "no such user",
        user: "nobody",
        resources: &[],
    },
    State {
        name: "offline",
        user: "bob",
        resources: &[],
    },
    State {
        name: "connected but unavailable",
        user: "bob",
        resources: &[("one", Res::Unavailable)],
    },
    State {
        name: "priority -1",
        user: "bob",
        resources: &[("one", Res::Prio(-1))],
    },
    State {
        name: "priority 0",
        user: "bob",
        resources: &[("one", Res::Prio(0))],
    },
    State {
        name: "priority 5",
        user: "bob",
        resources: &[("one", Res::Prio(5))],
    },
    State {
        name: "equal priorities",
        user: "bob",
        resources: &[("one", Res::Prio(1)), ("two", Res::Prio(1))],
    },
    State {
        name: "different priorities",
        user: "bob",
        resources: &[
            ("one", Res::Prio(1)),
            ("two", Res::Prio(3)),
            ("three", Res::Prio(-1)),
        ],
    },
    State {
        name: "all negative",
        user: "bob",
        resources: &[("one", Res::Prio(-1)), ("two", Res::Prio(-2))],
    },
    State {
        name: "unavailable and available",
        user: "bob",
        resources: &[("one", Res::Unavailable), ("two", Res::Prio(0))],
    },
];

/// Message types under test; `None` is a message without `type`.
const TYPES: &[Option<&str>] = &[
    Some("chat"),
    Some("normal"),
    None,
    Some("headline"),
    Some("groupchat"),
    Some("error"),
];

/// What happens to one message.
#[derive(Clone, Copy, Debug)]
enum Outcome {
    /// Delivered unchanged (apart from the stamped `from`) to exactly
    /// these resources of the recipient.
    To(&'static [&'static str]),
    /// Stored offline for the recipient, nothing sent.
    Stored,
    /// The sender gets `service-unavailable` from the address it used.
    Bounce,
    /// Silently dropped.
    Drop,
}
use Outcome::{Bounce, Drop, Stored, To};

/// Outcomes for a message to the recipient's bare JID, by state, in the
/// order of [`TYPES`]: chat, normal, no type, headline, groupchat, error.
fn bare_outcomes(state: &str) -> [Outcome; 6] {
    match state {
        // RFC 6121 §8.5.1.
        "no such user" => [Bounce, Bounce, Bounce, Drop, Bounce, Drop],
        // §8.5.2.2: no available resource with a non-negative priority.
        "offline" | "connected but unavailable" | "priority -1" | "all negative" => {
            [Stored, Stored, Stored, Drop, Bounce, Drop]
        }
        // §8.5.2.1.1.
        "priority 0" | "priority 5" => [
            To(&["one"]),
            To(&["one"]),
            To(&["one"]),
            To(&["one"]),
            Bounce,
            Drop,
        ],
        "equal priorities" => [
            To(&["one", "two"]),
            To(&["one", "two"]),
            To(&["one", "two"]),
            To(&["one", "two"]),
            Bounce,
            Drop,
        ],
        // Only the highest priority gets chat/normal; headline goes to
        // every non-negative resource.
        "different priorities" => [
            To(&["two"]),
            To(&["two"]),
            To(&["two"]),
            To(&["one", "two"]),
            Bounce,
            Drop,
        ],
        "unavailable and available" => [
            To(&["two"]),
            To(&["two"]),
            To(&["two"]),
            To(&["two"]),
            Bounce,
            Drop,
        ],
        other => panic!("no table for {other}"),
    }
}

/// Outcomes for a message to a full JID whose resource is not connected
/// (RFC 6121 §8.5.3.2.1): chat is handled as if sent to the bare JID;
/// normal (and no type) and groupchat get `service-unavailable`; headline
/// and error are ignored.
fn unconnected_full_outcomes(state: &str) -> [Outcome; 6] {
    let bare = bare_outcomes(state);
    [bare[0], Bounce, Bounce, Drop, Bounce, Drop]
}

fn setup(state: &State) -> Net {
    let mut net = Net::new(&["alice", "bob"]);
    net.online("alice", "r", Some(0));
    for (res, kind) in state.resources {
        match kind {
            Res::Unavailable => net.connect(state.user, res),
            Res::Prio(p) => net.online(state.user, res, Some(*p)),
        };
    }
    net
}

fn type_attr(ty: Option<&str>) -> String {
    ty.map(|t| format!(" type='{t}'")).unwrap_or_default()
}

/// The payload of a test message (an error message carries its error).
fn payload(ty: Option<&str>) -> String {
    let mut p = "<body>hi</body>".to_owned();
    if ty == Some("error") {
        p.push_str(&format!(
            "<error type='cancel'><item-not-found xmlns='{STANZAS}'/></error>"
        ));
    }
    p
}

/// Sends one message from alice to `to` and checks `outcome`.
#[track_caller]
fn check(net: &mut Net, recipient: &str, to: &str, ty: Option<&str>, outcome: Outcome, cell: &str) {
    let id = "m1";
    let sent = format!(
        "<message to='{to}' id='{id}'{}>{}</message>",
        type_attr(ty),
        payload(ty)
    );
    let delivered = format!(
        "<message from='{ALICE}' to='{to}' id='{id}'{}>{}</message>",
        type_attr(ty),
        payload(ty)
    );
    let alice = net.id(ALICE);
    net.send(alice, &sent);
    match outcome {
        To(resources) => {
            let ids: Vec<_> = resources
                .iter()
                .map(|r| net.id(&format!("{recipient}@localhost/{r}")))
                .collect();
            let one = [delivered.as_str()];
            let deliveries: Vec<_> = ids.iter().map(|id| (*id, &one[..])).collect();
            expect_cell(net, &deliveries, cell);
            net.expect_stored(recipient, &[]);
        }
        Stored => {
            expect_cell(net, &[], cell);
            let stored = format!(
                "<message from='{ALICE}' to='{to}' id='{id}'{}>{}<delay xmlns='urn:xmpp:delay' from='localhost' stamp='{STAMP}'/></message>",
                type_attr(ty),
                payload(ty)
            );
            net.expect_stored(recipient, &[&stored]);
        }
        Bounce => {
            let error = service_unavailable("message", Some(to), ALICE, id);
            expect_cell(net, &[(alice, &[&error])], cell);
            net.expect_stored(recipient, &[]);
        }
        Drop => {
            expect_cell(net, &[], cell);
            net.expect_stored(recipient, &[]);
        }
    }
}

fn expect_cell(net: &mut Net, deliveries: &[(xmpp_session::SessionId, &[&str])], cell: &str) {
    eprintln!("cell: {cell}");
    net.expect_only(deliveries);
}

#[test]
fn message_to_bare_jid_in_every_recipient_state() {
    for state in STATES {
        for (ty, outcome) in TYPES.iter().zip(bare_outcomes(state.name)) {
            let mut net = setup(state);
            let to = format!("{}@localhost", state.user);
            let cell = format!("bare, {}, type {ty:?}", state.name);
            check(&mut net, state.user, &to, *ty, outcome, &cell);
        }
    }
}

#[test]
fn message_to_connected_full_jid_is_delivered_whatever_its_presence() {
    // RFC 6121 §8.5.3.1: a matching resource gets every type, whatever its
    // availability or priority.
    for state in STATES
        .iter()
        .filter(|s| s.resources.iter().any(|(r, _)| *r == "one"))
    {
        for ty in TYPES {
            let mut net = setup(state);
            let to = format!("{}@localhost/one", state.user);
            let cell = format!("full connected, {}, type {ty:?}", state.name);
            check(&mut net, state.user, &to, *ty, To(&["one"]), &cell);
        }
    }
}

#[test]
fn message_to_unconnected_full_jid_in_every_recipient_state() {
    for state in STATES {
        for (ty, outcome) in TYPES.iter().zip(unconnected_full_outcomes(state.name)) {
            let mut net = setup(state);
            let to = format!("{}@localhost/gone", state.user);
            let cell = format!("full not connected, {}, type {ty:?}", state.name);
            check(&mut net, state.user, &to, *ty, outcome, &cell);
        }
    }
}

#[test]
fn message_to_full_jid_of_a_user_who_never_logged_in() {
    // "offline" and "no such user" have no resource "one" at all.
    for (user, chat) in [("bob", Stored), ("nobody", Bounce)] {
        let state = STATES
            .iter()
            .find(|s| s.user == user && s.resources.is_empty())
            .expect("state exists");
        for (ty, outcome) in TYPES.iter().zip([chat, Bounce, Bounce, Drop, Bounce, Drop]) {
            let mut net = setup(state);
            let to = format!("{user}@localhost/one");
            check(
                &mut net,
                user,
                &to,
                *ty,
                outcome,
                &format!("{user}/one, type {ty:?}"),
            );
        }
    }
}

#[test]
fn error_reply_keeps_id_copies_no_payload_and_comes_from_the_target() {
    let mut net = Net::new(&["alice", "bob"]);
    let alice = net.online("alice", "r", None);
    net.send(
        alice,
        "<message to='bob@localhost' type='groupchat' id='g-17'><body>secret</body><thread>t1</thread></message>",
    );
    net.expect_only(&[(
        alice,
        &["<message from='bob@localhost' to='alice@localhost/r' type='error' id='g-17'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"],
    )]);
    // A message without id gets an error without id.
    net.send(
        alice,
        "<message to='nobody@localhost' type='chat'><body>x</body></message>",
    );
    net.expect_only(&[(
        alice,
        &["<message from='nobody@localhost' to='alice@localhost/r' type='error'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"],
    )]);
}

#[test]
fn errors_are_never_answered_with_errors() {
    let mut net = Net::new(&["alice", "bob"]);
    let alice = net.online("alice", "r", None);
    let err = format!("<error type='cancel'><item-not-found xmlns='{STANZAS}'/></error>");
    for to in [
        "nobody@localhost",
        "nobody@localhost/x",
        "bob@localhost",
        "bob@localhost/gone",
        "localhost",
        "@bad",
    ] {
        net.send(
            alice,
            &format!("<message to='{to}' type='error' id='e1'>{err}</message>"),
        );
        net.quiet();
        net.send(
            alice,
            &format!("<iq to='{to}' type='error' id='e2'>{err}</iq>"),
        );
        net.quiet();
    }
    net.expect_stored("bob", &[]);
}

#[test]
fn childless_error_message_is_dropped_even_to_a_connected_resource() {
    let mut net = Net::new(&["alice", "bob"]);
    let alice = net.online("alice", "r", None);
    let bob = net.online("bob", "one", None);
    net.send(
        alice,
        "<message to='bob@localhost/one' type='error' id='e'/>",
    );
    net.quiet();
    net.send(
        alice,
        "<message to='bob@localhost/one' type='error' id='e'><error type='cancel'/></message>",
    );
    net.expect_only(&[(
        bob,
        &["<message from='alice@localhost/r' to='bob@localhost/one' type='error' id='e'><error type='cancel'/></message>"],
    )]);
}

#[test]
fn unknown_message_type_is_handled_as_normal() {
    let mut net = Net::new(&["alice", "bob"]);
    let alice = net.online("alice", "r", None);
    // Offline bare: stored like normal.
    net.send(
        alice,
        "<message to='bob@localhost' type='bogus' id='u1'><body>x</body></message>",
    );
    net.quiet();
    net.expect_stored(
        "bob",
        &[&format!(
            "<message from='{ALICE}' to='bob@localhost' type='bogus' id='u1'><body>x</body><delay xmlns='urn:xmpp:delay' from='localhost' stamp='{STAMP}'/></message>"
        )],
    );
    // Unconnected full JID: refused like normal.
    net.send(
        alice,
        "<message to='bob@localhost/x' type='bogus' id='u2'><body>x</body></message>",
    );
    let error = service_unavailable("message", Some("bob@localhost/x"), ALICE, "u2");
    net.expect_only(&[(alice, &[&error])]);
}

// ---------------------------------------------------------------------------
// Own account: no `to`, own bare, own full (self and sibling).

#[test]
fn message_without_to_goes_to_own_top_resources() {
    let mut net = Net::new(&["alice"]);
    let r = net.online("alice", "r", Some(0));
    let s = net.online("alice", "s", Some(5));
    net.online("alice", "t", Some(-1));
    net.send(r, "<message type='chat' id='c'><body>note</body></message>");
    net.expect_only(&[(
        s,
        &["<message from='alice@localhost/r' type='chat' id='c'><body>note</body></message>"],
    )]);
    net.send(r, "<message id='n'><body>note</body></message>");
    net.expect_only(&[(
        s,
        &["<message from='alice@localhost/r' id='n'><body>note</body></message>"],
    )]);
    // RFC 6120 §10.3.1: no `to` means the sender's bare JID, so a headline
    // goes to every non-negative available resource, the sender included.
    net.send(
        r,
        "<message type='headline' id='h'><body>news</body></message>",
    );
    let headline =
        "<message from='alice@localhost/r' type='headline' id='h'><body>news</body></message>";
    // `t` (priority -1) gets neither chat nor headline.
    net.expect_only(&[(r, &[headline]), (s, &[headline])]);
    // Groupchat: refused; the reply has no `from` (the account itself).
    net.send(
        r,
        "<message type='groupchat' id='g'><body>x</body></message>",
    );
    let error = service_unavailable("message", None, "alice@localhost/r", "g");
    net.expect_only(&[(r, &[&error])]);
    let err = format!("<error type='cancel'><item-not-found xmlns='{STANZAS}'/></error>");
    net.send(r, &format!("<message type='error' id='e'>{err}</message>"));
    net.quiet();
}

#[test]
fn message_to_own_bare_jid_is_treated_like_no_to() {
    let mut net = Net::new(&["alice"]);
    let r = net.online("alice", "r", Some(2));
    let s = net.online("alice", "s", Some(2));
    // The own bare JID is removed from `to` (Prosody §4.2) and the message
    // reaches both top resources, the sender included.
    net.send(
        r,
        "<message to='alice@localhost' type='chat' id='c'><body>x</body></message>",
    );
    let m = "<message from='alice@localhost/r' type='chat' id='c'><body>x</body></message>";
    net.expect_only(&[(r, &[m]), (s, &[m])]);
    net.send(
        r,
        "<message to='Alice@LocalHost' type='headline' id='h'><body>x</body></message>",
    );
    let h = "<message from='alice@localhost/r' type='headline' id='h'><body>x</body></message>";
    net.expect_only(&[(r, &[h]), (s, &[h])]);
}

#[test]
fn message_to_self_with_only_negative_priority_is_stored() {
    let mut net = Net::new(&["alice"]);
    let r = net.online("alice", "r", Some(-1));
    net.send(
        r,
        "<message type='chat' id='c'><body>later</body></message>",
    );
    net.quiet();
    net.expect_stored(
        "alice",
        &[&format!(
            "<message from='alice@localhost/r' type='chat' id='c'><body>later</body><delay xmlns='urn:xmpp:delay' from='localhost' stamp='{STAMP}'/></message>"
        )],
    );
}

#[test]
fn message_to_own_full_jid_self_and_sibling() {
    let mut net = Net::new(&["alice"]);
    let r = net.online("alice", "r", Some(0));
    let s = net.connect("alice", "s");
    net.send(
        r,
        "<message to='alice@localhost/r' type='chat' id='1'><body>me</body></message>",
    );
    net.expect_only(&[(r, &["<message from='alice@localhost/r' to='alice@localhost/r' type='chat' id='1'><body>me</body></message>"])]);
    // A sibling gets it even though it is not available.
    net.send(
        r,
        "<message to='alice@localhost/s' type='headline' id='2'><body>sib</body></message>",
    );
    net.expect_only(&[(s, &["<message from='alice@localhost/r' to='alice@localhost/s' type='headline' id='2'><body>sib</body></message>"])]);
}

// ---------------------------------------------------------------------------
// The server domain and remote domains.

#[test]
fn message_to_the_server_domain() {
    let mut net = Net::new(&["alice"]);
    let alice = net.online("alice", "r", None);
    for to in ["localhost", "localhost/some-resource"] {
        for (ty, answered) in [
            (Some("chat"), true),
            (Some("normal"), true),
            (None, true),
            (Some("groupchat"), true),
            (Some("headline"), false),
        ] {
            net.send(
                alice,
                &format!(
                    "<message to='{to}' id='d'{}><body>hi</body></message>",
                    type_attr(ty)
                ),
            );
            if answered {
                let error = service_unavailable("message", Some(to), ALICE, "d");
                net.expect_only(&[(alice, &[&error])]);
            } else {
                net.quiet();
            }
        }
    }
}

#[test]
fn message_to_a_remote_domain_is_routed_out_with_from_stamped() {
    let mut net = Net::new(&["alice"]);
    let alice = net.online("alice", "r", None);
    for ty in TYPES {
        net.send(
            alice,
            &format!(
                "<message to='Juliet@Remote.Example/Balcony' id='x'{}>{}</message>",
                type_attr(*ty),
                payload(*ty)
            ),
        );
        let out = format!(
            "<message from='{ALICE}' to='juliet@remote.example/Balcony' id='x'{}>{}</message>",
            type_attr(*ty),
            payload(*ty)
        );
        net.expect_routed(&[&out]);
        net.quiet();
    }
    net.send(
        alice,
        "<message to='remote.example' type='chat' id='y'><body>x</body></message>",
    );
    net.expect_routed(&["<message from='alice@localhost/r' to='remote.example' type='chat' id='y'><body>x</body></message>"]);
    net.quiet();
}

// ---------------------------------------------------------------------------
// `from` stamping and checking (RFC 6120 §8.1.2.1).

#[test]
fn own_from_is_accepted_and_replaced_by_the_full_jid() {
    let mut net = Net::new(&["alice", "bob"]);
    let alice = net.online("alice", "r", None);
    let bob = net.online("bob", "one", None);
    for from in ["alice@localhost", "alice@localhost/r", "ALICE@localhost/r"] {
        net.send(alice, &format!("<message from='{from}' to='bob@localhost' type='chat' id='f'><body>x</body></message>"));
        net.expect_only(&[(
            bob,
            &["<message from='alice@localhost/r' to='bob@localhost' type='chat' id='f'><body>x</body></message>"],
        )]);
        assert!(!net.is_closed(alice));
    }
}

#[test]
fn a_trailing_dot_is_normalised_alike_in_from_and_to() {
    // RFC 7622 §3.2: `alice@localhost.` is alice@localhost, in `from` as in
    // `to` (it used to be invalid-from in `from` only).
    let mut net = Net::new(&["alice", "bob"]);
    let alice = net.online("alice", "r", None);
    let bob = net.online("bob", "one", None);
    for from in [
        "alice@localhost.",
        "alice@localhost./r",
        "Alice@LocalHost./r",
    ] {
        net.send(alice, &format!("<message from='{from}' to='bob@localhost./one' type='chat' id='f'><body>x</body></message>"));
        net.expect_only(&[(
            bob,
            &["<message from='alice@localhost/r' to='bob@localhost/one' type='chat' id='f'><body>x</body></message>"],
        )]);
        assert!(!net.is_closed(alice), "from={from}");
    }
    net.send(
        alice,
        "<iq from='alice@localhost./r' to='bob@localhost./one' type='get' id='q'><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    net.expect_only(&[(
        bob,
        &["<iq from='alice@localhost/r' to='bob@localhost/one' type='get' id='q'><ping xmlns='urn:xmpp:ping'/></iq>"],
    )]);
    net.send(
        alice,
        "<presence from='alice@localhost./r' to='bob@localhost./one'/>",
    );
    net.expect_only(&[(
        bob,
        &["<presence from='alice@localhost/r' to='bob@localhost/one'/>"],
    )]);
}

#[test]
fn foreign_from_closes_the_stream_with_invalid_from() {
    for from in [
        "bob@localhost",
        "bob@localhost/one",
        "alice@localhost/other",
        "localhost",
        "x@remote.example",
        "not a jid@@",
    ] {
        let mut net = Net::new(&["alice", "bob"]);
        let alice = net.online("alice", "r", None);
        let bob = net.online("bob", "one", None);
        net.send(alice, &format!("<message from='{from}' to='bob@localhost' type='chat' id='f'><body>x</body></message>"));
        net.expect(
            alice,
            &["<stream:error><invalid-from xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>The 'from' attribute must be your own address</text></stream:error>"],
        );
        assert!(net.is_closed(alice), "from={from}");
        // bob is not alice's contact: he sees nothing at all.
        net.expect_nothing(bob);
        net.expect_stored("bob", &[]);
        assert!(net.take_routed().is_empty());
    }
}

// ---------------------------------------------------------------------------
// `to` normalisation and invalid addresses.

#[test]
fn to_is_normalised_before_delivery() {
    let mut net = Net::new(&["alice", "juliet"]);
    let alice = net.online("alice", "r", None);
    let juliet = net.online("juliet", "Balcony", None);
    net.send(
        alice,
        "<message to='JULIET@LOCALHOST' type='chat' id='1'><body>x</body></message>",
    );
    net.expect_only(&[(juliet, &["<message from='alice@localhost/r' to='juliet@localhost' type='chat' id='1'><body>x</body></message>"])]);
    // Resources are case-sensitive: only the domain and node are folded.
    net.send(
        alice,
        "<message to='Juliet@LocalHost/Balcony' type='chat' id='2'><body>x</body></message>",
    );
    net.expect_only(&[(juliet, &["<message from='alice@localhost/r' to='juliet@localhost/Balcony' type='chat' id='2'><body>x</body></message>"])]);
    net.send(
        alice,
        "<message to='juliet@localhost/balcony' type='chat' id='3'><body>x</body></message>",
    );
    net.expect_only(&[(juliet, &["<message from='alice@localhost/r' to='juliet@localhost/balcony' type='chat' id='3'><body>x</body></message>"])]);
    // RFC 7622 §3.2: one trailing dot on the domain is not part of it.
    for (to, want) in [
        ("juliet@localhost.", "juliet@localhost"),
        ("Juliet@localhost./Balcony", "juliet@localhost/Balcony"),
    ] {
        net.send(
            alice,
            &format!("<message to='{to}' type='chat' id='4'><body>x</body></message>"),
        );
        let got = format!(
            "<message from='alice@localhost/r' to='{want}' type='chat' id='4'><body>x</body></message>"
        );
        net.expect_only(&[(juliet, &[&got])]);
    }
    net.send(
        alice,
        "<iq to='localhost.' type='get' id='5'><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    net.expect_only(&[(
        alice,
        &["<iq from='localhost' to='alice@localhost/r' type='result' id='5'/>"],
    )]);
}

#[test]
fn invalid_to_is_answered_with_jid_malformed() {
    let mut net = Net::new(&["alice"]);
    let alice = net.online("alice", "r", None);
    for to in ["@localhost", "a@b@c", "bob@localhost/"] {
        net.send(
            alice,
            &format!("<message to='{to}' type='chat' id='j'><body>x</body></message>"),
        );
        let text = format!("The destination address is invalid: {to}");
        let error = error_reply(
            "message",
            None,
            ALICE,
            Some("j"),
            "modify",
            "jid-malformed",
            Some(&text),
        );
        net.expect_only(&[(alice, &[&error])]);
        net.send(
            alice,
            &format!("<iq to='{to}' type='get' id='q'><ping xmlns='urn:xmpp:ping'/></iq>"),
        );
        let error = error_reply(
            "iq",
            None,
            ALICE,
            Some("q"),
            "modify",
            "jid-malformed",
            Some(&text),
        );
        net.expect_only(&[(alice, &[&error])]);
        // Never for result or error stanzas.
        net.send(alice, &format!("<iq to='{to}' type='result' id='q2'/>"));
        net.quiet();
        net.send(
            alice,
            &format!("<message to='{to}' type='error' id='e'><error type='cancel'><gone xmlns='{STANZAS}'/></error></message>"),
        );
        net.quiet();
    }
}

// ---------------------------------------------------------------------------
// Offline storage and delivery.

#[test]
fn offline_messages_are_delivered_in_order_at_the_first_non_negative_initial_presence() {
    let mut net = Net::new(&["alice", "bob"]);
    let alice = net.online("alice", "r", None);
    net.send(
        alice,
        "<message to='bob@localhost' type='chat' id='1'><body>one</body></message>",
    );
    net.quiet();
    net.advance(Duration::from_secs(61));
    // Normal, to a resource that is not connected: refused, not stored.
    net.send(
        alice,
        "<message to='bob@localhost/old' id='2'><body>two</body></message>",
    );
    let error = service_unavailable("message", Some("bob@localhost/old"), ALICE, "2");
    net.expect_only(&[(alice, &[&error])]);
    // Chat to the same address: handled as if sent to the bare JID.
    net.send(
        alice,
        "<message to='bob@localhost/old' type='chat' id='3'><body>three</body></message>",
    );
    net.quiet();
    let m1 = format!(
        "<message from='{ALICE}' to='bob@localhost' type='chat' id='1'><body>one</body><delay xmlns='urn:xmpp:delay' from='localhost' stamp='{STAMP}'/></message>"
    );
    let m3 = format!(
        "<message from='{ALICE}' to='bob@localhost/old' type='chat' id='3'><body>three</body><delay xmlns='urn:xmpp:delay' from='localhost' stamp='2026-11-26T08:01:01Z'/></message>"
    );
    net.expect_stored("bob", &[&m1, &m3]);

    // Connecting is not enough, and negative initial presence does not
    // take the messages either.
    let one = net.connect("bob", "one");
    net.send(one, "<presence><priority>-1</priority></presence>");
    net.expect_only(&[(
        one,
        &["<presence from='bob@localhost/one'><priority>-1</priority></presence>"],
    )]);
    net.expect_stored("bob", &[&m1, &m3]);
    // Raising the priority later is not an initial presence either.
    net.send(one, "<presence><priority>3</priority></presence>");
    net.expect_only(&[(
        one,
        &["<presence from='bob@localhost/one'><priority>3</priority></presence>"],
    )]);
    net.expect_stored("bob", &[&m1, &m3]);

    // A new resource with priority 0: it gets them, oldest first, once.
    let two = net.connect("bob", "two");
    net.send(two, "<presence/>");
    let sibling = "<presence from='bob@localhost/one' to='bob@localhost/two'><priority>3</priority><delay xmlns='urn:xmpp:delay' from='localhost' stamp='2026-11-26T08:01:01Z'/></presence>";
    net.expect_only(&[
        (
            one,
            &["<presence from='bob@localhost/two' to='bob@localhost/one'/>"],
        ),
        (
            two,
            &["<presence from='bob@localhost/two'/>", sibling, &m1, &m3],
        ),
    ]);
    net.expect_stored("bob", &[]);
    let three = net.connect("bob", "three");
    net.send(three, "<presence/>");
    let got = net.take(three);
    assert_eq!(
        got.len(),
        3,
        "reflection and two sibling presences only: {got:?}"
    );
}

#[test]
fn offline_storage_disabled_answers_service_unavailable() {
    let config = xmpp_session::Config::builder("localhost")
        .require_tls(false)
        .allow_plain_without_tls(true)
        .offline_storage(false)
        .build()
        .expect("valid config");
    let mut net = Net::with_config(config, &["alice", "bob", "carol"]);
    let alice = net.online("alice", "r", None);
    net.connect("carol", "c");
    net.online("carol", "d", Some(-5));
    for (to, ty) in [
        ("bob@localhost", "chat"),
        ("bob@localhost", "normal"),
        ("bob@localhost/x", "chat"),
        ("carol@localhost", "chat"),
        ("carol@localhost", "normal"),
        ("nobody@localhost", "chat"),
    ] {
        net.send(
            alice,
            &format!("<message to='{to}' type='{ty}' id='o'><body>x</body></message>"),
        );
        let error = service_unavailable("message", Some(to), ALICE, "o");
        net.expect_only(&[(alice, &[&error])]);
    }
    net.send(
        alice,
        "<message to='bob@localhost' type='headline' id='h'><body>x</body></message>",
    );
    net.quiet();
    net.expect_stored("bob", &[]);
    net.expect_stored("carol", &[]);
}

// ---------------------------------------------------------------------------
// Stanzas from outside (handle_routed).

#[test]
fn routed_messages_follow_the_same_rules() {
    let mut net = Net::new(&["bob", "carol"]);
    let carol = net.online("carol", "c", Some(1));
    let now = net.now();
    let routed = parse_stanza;
    // Chat to the bare JID of an offline user: stored.
    net.manager.handle_routed(
        routed("<message from='romeo@remote.example/o' to='bob@localhost' type='chat' id='r1'><body>hi</body></message>"),
        now,
    );
    net.server.pump();
    net.quiet();
    net.expect_stored(
        "bob",
        &[&format!(
            "<message from='romeo@remote.example/o' to='bob@localhost' type='chat' id='r1'><body>hi</body><delay xmlns='urn:xmpp:delay' from='localhost' stamp='{STAMP}'/></message>"
        )],
    );
    // To an available user: delivered.
    net.manager.handle_routed(
        routed("<message from='romeo@remote.example/o' to='carol@localhost' type='headline' id='r2'><body>hi</body></message>"),
        now,
    );
    net.server.pump();
    net.expect_only(&[(
        carol,
        &["<message from='romeo@remote.example/o' to='carol@localhost' type='headline' id='r2'><body>hi</body></message>"],
    )]);
    // Groupchat to a bare JID: the error goes back out to the remote sender.
    net.manager.handle_routed(
        routed("<message from='romeo@remote.example/o' to='carol@localhost' type='groupchat' id='r3'><body>hi</body></message>"),
        now,
    );
    net.server.pump();
    net.expect_routed(&[&service_unavailable(
        "message",
        Some("carol@localhost"),
        "romeo@remote.example/o",
        "r3",
    )]);
    net.quiet();
    // No such user: service-unavailable back out.
    net.manager.handle_routed(
        routed("<message from='romeo@remote.example/o' to='nobody@localhost/x' type='chat' id='r4'><body>hi</body></message>"),
        now,
    );
    net.server.pump();
    net.expect_routed(&[&service_unavailable(
        "message",
        Some("nobody@localhost/x"),
        "romeo@remote.example/o",
        "r4",
    )]);
    net.quiet();
    // For another domain: dropped, never sent back out (no loop).
    net.manager.handle_routed(
        routed("<message from='romeo@remote.example/o' to='someone@elsewhere.example' type='chat' id='r5'><body>hi</body></message>"),
        now,
    );
    net.server.pump();
    net.quiet();
}

// ---------------------------------------------------------------------------
// Extension seam for messages.

#[test]
fn registered_message_type_is_handed_to_the_embedder() {
    let mut net = Net::new(&["alice", "bob"]);
    let alice = net.online("alice", "r", None);
    let bob = net.online("bob", "one", None);
    net.manager.register_message_type("headline");
    net.send(
        alice,
        "<message to='localhost' type='headline' id='h1'><body>x</body></message>",
    );
    let events = net.take_stanza_events();
    assert_eq!(
        events,
        vec![(
            Some(alice),
            parse_stanza(
                "<message from='alice@localhost/r' to='localhost' type='headline' id='h1'><body>x</body></message>"
            )
        )]
    );
    net.quiet();
    net.send(
        alice,
        "<message to='bob@localhost' type='headline' id='h2'><body>x</body></message>",
    );
    let events = net.take_stanza_events();
    assert_eq!(
        events,
        vec![(
            Some(alice),
            parse_stanza(
                "<message from='alice@localhost/r' to='bob@localhost' type='headline' id='h2'><body>x</body></message>"
            )
        )]
    );
    net.quiet();
    // A connected full JID still gets it directly.
    net.send(
        alice,
        "<message to='bob@localhost/one' type='headline' id='h3'><body>x</body></message>",
    );
    net.expect_only(&[(
        bob,
        &["<message from='alice@localhost/r' to='bob@localhost/one' type='headline' id='h3'><body>x</body></message>"],
    )]);
    // Other types are unaffected.
    net.send(
        alice,
        "<message to='bob@localhost' type='chat' id='c'><body>x</body></message>",
    );
    net.expect_only(&[(
        bob,
        &["<message from='alice@localhost/r' to='bob@localhost' type='chat' id='c'><body>x</body></message>"],
    )]);
}
