//! Storage that answers late or out of order must not change what clients
//! see: stanzas for one user are handled in arrival order whatever the
//! order in which storage answers requests for different users (RFC 6120
//! §10.1 in-order processing; DESIGN "per-user work queues").

mod common;

use std::collections::BTreeMap;

use common::{STAMP, render};
use proptest::prelude::*;
use xmpp_session::testkit::{TestServer, account, parse_stanza};
use xmpp_session::{Element, SessionId};

/// Decides which held requests to answer, and when.
struct Picker {
    /// `None`: storage answers every request at once.
    choices: Option<Vec<u8>>,
    at: usize,
}

impl Picker {
    fn next(&mut self) -> usize {
        let Some(choices) = &self.choices else {
            return 0;
        };
        if choices.is_empty() {
            return 0;
        }
        let c = choices[self.at % choices.len()];
        self.at += 1;
        usize::from(c)
    }

    fn holding(&self) -> bool {
        self.choices.is_some()
    }

    /// Answers a few held requests (possibly none), each picked among those
    /// currently held.
    fn step(&mut self, server: &mut TestServer) {
        if !self.holding() {
            return;
        }
        let count = self.next() % 4;
        for _ in 0..count {
            let held = server.held_requests().len();
            if held == 0 {
                break;
            }
            let pick = self.next() % held;
            server.answer_held(&[pick]);
        }
    }
}

/// Everything each session received, by full JID.
#[derive(Default)]
struct Transcripts {
    sessions: Vec<(String, SessionId)>,
    received: BTreeMap<String, Vec<Element>>,
}

impl Transcripts {
    fn collect(&mut self, server: &mut TestServer) {
        for (jid, id) in &self.sessions {
            let got = server.take(*id);
            self.received.entry(jid.clone()).or_default().extend(got);
        }
    }

    fn login(
        &mut self,
        server: &mut TestServer,
        picker: &Picker,
        user: &str,
        resource: &str,
    ) -> SessionId {
        // Credentials are answered at once; held work stays held.
        server.hold_requests(false);
        let id = server.login(user, resource);
        server.hold_requests(picker.holding());
        self.sessions
            .push((format!("{user}@localhost/{resource}"), id));
        id
    }
}

fn chat(id: &str, to: &str, ty: &str) -> String {
    format!("<message to='{to}' type='{ty}' id='{id}'><body>{id}</body></message>")
}

/// The scenario: messages for two offline users and a missing one, an iq
/// that needs to know whether the account exists, then the users come
/// online (one with negative priority first) while more messages arrive.
fn run(choices: Option<Vec<u8>>) -> BTreeMap<String, Vec<Element>> {
    let mut server = TestServer::new();
    for user in ["alice", "bob", "carol"] {
        server.add_user(user, "pass");
    }
    let mut picker = Picker { choices, at: 0 };
    let mut t = Transcripts::default();
    let alice = t.login(&mut server, &picker, "alice", "r");
    server.hold_requests(false);
    server.send(alice, "<presence/>");
    server.take(alice);
    server.hold_requests(picker.holding());

    let steps = [
        chat("m1", "bob@localhost", "chat"),
        chat("m2", "carol@localhost", "chat"),
        chat("m3", "bob@localhost", "normal"),
        "<iq to='bob@localhost' type='get' id='ping'><ping xmlns='urn:xmpp:ping'/></iq>".to_owned(),
        chat("m4", "nobody@localhost", "chat"),
        chat("m5", "bob@localhost/gone", "chat"),
        chat("m6", "carol@localhost", "normal"),
    ];
    for xml in &steps {
        server.send(alice, xml);
        picker.step(&mut server);
    }
    t.collect(&mut server);

    let bob = t.login(&mut server, &picker, "bob", "one");
    picker.step(&mut server);
    server.send(bob, "<presence/>");
    picker.step(&mut server);
    server.send(alice, &chat("m7", "bob@localhost", "chat"));
    picker.step(&mut server);

    let carol1 = t.login(&mut server, &picker, "carol", "one");
    server.send(carol1, "<presence><priority>-1</priority></presence>");
    picker.step(&mut server);
    server.send(alice, &chat("m8", "carol@localhost", "chat"));
    picker.step(&mut server);
    let carol2 = t.login(&mut server, &picker, "carol", "two");
    picker.step(&mut server);
    server.send(carol2, "<presence><priority>1</priority></presence>");
    picker.step(&mut server);
    server.send(alice, &chat("m9", "carol@localhost", "chat"));
    picker.step(&mut server);

    server.hold_requests(false);
    server.answer_all_held();
    t.collect(&mut server);
    assert!(server.take_routed().is_empty());
    t.received
}

fn stored(id: &str, to: &str, ty: &str) -> String {
    format!(
        "<message from='alice@localhost/r' to='{to}' type='{ty}' id='{id}'><body>{id}</body><delay xmlns='urn:xmpp:delay' from='localhost' stamp='{STAMP}'/></message>"
    )
}

fn live(id: &str, to: &str) -> String {
    format!(
        "<message from='alice@localhost/r' to='{to}' type='chat' id='{id}'><body>{id}</body></message>"
    )
}

/// What storage answering at once produces, written out in full.
fn expected() -> BTreeMap<String, Vec<Element>> {
    let parse = |v: Vec<String>| v.iter().map(|x| parse_stanza(x)).collect::<Vec<_>>();
    let mut want = BTreeMap::new();
    want.insert(
        "alice@localhost/r".to_owned(),
        parse(vec![
            "<iq from='bob@localhost' to='alice@localhost/r' type='result' id='ping'/>".to_owned(),
            "<message from='nobody@localhost' to='alice@localhost/r' type='error' id='m4'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>".to_owned(),
        ]),
    );
    want.insert(
        "bob@localhost/one".to_owned(),
        parse(vec![
            "<presence from='bob@localhost/one'/>".to_owned(),
            stored("m1", "bob@localhost", "chat"),
            stored("m3", "bob@localhost", "normal"),
            stored("m5", "bob@localhost/gone", "chat"),
            live("m7", "bob@localhost"),
        ]),
    );
    want.insert(
        "carol@localhost/one".to_owned(),
        parse(vec![
            "<presence from='carol@localhost/one'><priority>-1</priority></presence>".to_owned(),
            "<presence from='carol@localhost/two' to='carol@localhost/one'><priority>1</priority></presence>".to_owned(),
        ]),
    );
    want.insert(
        "carol@localhost/two".to_owned(),
        parse(vec![
            "<presence from='carol@localhost/two'><priority>1</priority></presence>".to_owned(),
            format!(
                "<presence from='carol@localhost/one' to='carol@localhost/two'><priority>-1</priority><delay xmlns='urn:xmpp:delay' from='localhost' stamp='{STAMP}'/></presence>"
            ),
            stored("m2", "carol@localhost", "chat"),
            stored("m6", "carol@localhost", "normal"),
            stored("m8", "carol@localhost", "chat"),
            live("m9", "carol@localhost"),
        ]),
    );
    want
}

/// Per sender, in order: what RFC 6120 §10.1 promises. Replies from
/// different entities (bob's account, the missing user) may interleave.
fn by_sender(stanzas: &[Element]) -> BTreeMap<String, Vec<Element>> {
    let mut out: BTreeMap<String, Vec<Element>> = BTreeMap::new();
    for s in stanzas {
        out.entry(s.attr("from").unwrap_or_default().to_owned())
            .or_default()
            .push(s.clone());
    }
    out
}

#[track_caller]
fn assert_same(
    got: &BTreeMap<String, Vec<Element>>,
    want: &BTreeMap<String, Vec<Element>>,
    label: &str,
) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{label}"
    );
    for (jid, want_list) in want {
        let got_list = &got[jid];
        if jid == "alice@localhost/r" {
            assert_eq!(
                by_sender(got_list),
                by_sender(want_list),
                "{label}: {jid}\n got: {}\nwant: {}",
                render(got_list),
                render(want_list)
            );
        } else {
            assert_eq!(
                got_list,
                want_list,
                "{label}: {jid}\n got: {}\nwant: {}",
                render(got_list),
                render(want_list)
            );
        }
    }
}

#[test]
fn storage_answering_at_once_gives_the_expected_transcripts() {
    let got = run(None);
    assert_same(&got, &expected(), "immediate");
    // Alice's replies in the order their requests were made.
    assert_eq!(got["alice@localhost/r"], expected()["alice@localhost/r"]);
}

#[test]
fn late_storage_answers_in_any_order_give_the_same_transcripts() {
    let want = expected();
    // Always the oldest, always the newest, and a spread of mixed orders.
    let mut orders: Vec<Vec<u8>> = vec![
        vec![0],
        vec![1, 0],
        vec![3, 0],
        vec![3, 255],
        vec![2, 7, 1, 9],
    ];
    let mut x: u32 = 0x1234_5678;
    for _ in 0..200 {
        let mut v = Vec::new();
        for _ in 0..16 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            v.push((x >> 16) as u8);
        }
        orders.push(v);
    }
    for order in orders {
        let label = format!("order {order:?}");
        let got = run(Some(order));
        assert_same(&got, &want, &label);
    }
}

#[test]
fn two_messages_to_one_offline_user_are_stored_in_order_whatever_the_answer_order() {
    // The held requests for bob and carol are answered in both orders.
    for order in [[0usize, 1], [1, 0]] {
        let mut server = TestServer::new();
        for user in ["alice", "bob", "carol"] {
            server.add_user(user, "pass");
        }
        let alice = server.login("alice", "r");
        server.hold_requests(true);
        server.send(alice, &chat("b1", "bob@localhost", "chat"));
        server.send(alice, &chat("c1", "carol@localhost", "chat"));
        server.send(alice, &chat("b2", "bob@localhost", "chat"));
        server.send(alice, &chat("c2", "carol@localhost", "chat"));
        // One request per user is outstanding; the rest waits its turn.
        // First each offline user's blocklist (XEP-0191), then the stores.
        assert_eq!(
            server.held_requests().len(),
            2,
            "{:?}",
            server.held_requests()
        );
        server.answer_held(&order);
        assert_eq!(server.held_requests().len(), 2);
        server.answer_held(&order);
        assert_eq!(server.held_requests().len(), 2);
        server.answer_held(&order);
        assert!(server.held_requests().is_empty());
        for (user, ids) in [("bob", ["b1", "b2"]), ("carol", ["c1", "c2"])] {
            let got: Vec<_> = server
                .store
                .offline_messages(&account(user))
                .iter()
                .map(|m| m.attr("id").unwrap_or_default().to_owned())
                .collect();
            assert_eq!(got, ids, "order {order:?}");
        }
        server.expect_nothing(alice);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_answer_order_gives_the_same_transcripts(order in proptest::collection::vec(any::<u8>(), 1..32)) {
        let got = run(Some(order));
        assert_same(&got, &expected(), "proptest");
    }
}
