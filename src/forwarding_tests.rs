//! Differential tests for byte forwarding: the same client bytes into two
//! managers, one forwarding canonical messages as bytes and one building
//! every element, must give the same bytes out, byte for byte.

use proptest::prelude::*;

use crate::ids::SessionId;
use crate::testkit::TestServer;

/// Two servers with Alice (`laptop`) and Bob (`phone`) bound; the second
/// never forwards bytes.
fn pair() -> [(TestServer, SessionId, SessionId); 2] {
    [true, false].map(|on| {
        let mut server = TestServer::new();
        server.manager.set_byte_forwarding(on);
        server.add_user("alice", "pass");
        server.add_user("bob", "pass");
        let alice = server.login("alice", "laptop");
        let bob = server.login("bob", "phone");
        server.take_raw(alice);
        server.take_raw(bob);
        (server, alice, bob)
    })
}

/// What every party saw, as text.
fn seen(server: &mut TestServer, alice: SessionId, bob: SessionId) -> String {
    format!(
        "alice: {}\nbob: {}\nalice closed: {}\nrouted: {:?}\nevents: {:?}",
        server.take_raw(alice),
        server.take_raw(bob),
        server.is_closed(alice),
        std::mem::take(&mut server.routed)
            .iter()
            .map(String::from)
            .collect::<Vec<_>>(),
        std::mem::take(&mut server.events),
    )
}

/// Sends `chunks` from Alice in both servers; returns what each saw and
/// how many messages the first forwarded as bytes.
fn compare(chunks: &[&[u8]]) -> (String, String, u64) {
    let [(mut fast, fa, fb), (mut tree, ta, tb)] = pair();
    for chunk in chunks {
        fast.send_bytes(fa, chunk);
        tree.send_bytes(ta, chunk);
    }
    let forwarded = fast.manager.forwarded();
    (seen(&mut fast, fa, fb), seen(&mut tree, ta, tb), forwarded)
}

const BENCH: &str = "<message to='bob@localhost/phone' type='chat' id='m1'><body>Hello Bob, this is a \
chat message of a typical size for instant messaging.</body></message>";

#[test]
fn the_bench_message_is_forwarded_and_identical() {
    let batch = BENCH.repeat(3);
    let (fast, tree, forwarded) = compare(&[batch.as_bytes()]);
    assert_eq!(fast, tree);
    assert_eq!(forwarded, 3);
    assert!(fast.contains(
        "<message from='alice@localhost/laptop' id='m1' to='bob@localhost/phone' type='chat'>"
    ));
}

#[test]
fn canonical_forms_are_forwarded() {
    for (input, expect_forwarded) in [
        (BENCH, 1),
        ("<message to='bob@localhost/phone'/>", 1),
        (
            "<message to=\"bob@localhost/phone\" id = \"x\" ><b>x</b></message>",
            1,
        ),
        ("<message to='bob@localhost/phone'></message>", 0),
        (
            "<message to='bob@localhost/phone'><x xmlns='urn:a' a='1' b='&apos;&amp;'><y/>t&lt;&gt;&amp;\t\n</x></message>",
            1,
        ),
        // Not canonical, or not for this path: built as an element.
        ("<message to='bob@localhost/phone'><x></x></message>", 0),
        (
            "<message to='bob@localhost/phone'><x b='1' a='2'/></message>",
            0,
        ),
        (
            "<message to='bob@localhost/phone'><x xmlns='jabber:client'/></message>",
            0,
        ),
        ("<message to='bob@localhost/phone'>&quot;</message>", 0),
        ("<message to='bob@localhost/phone'>></message>", 0),
        ("<message to='bob@localhost/phone' xml:lang='en'/>", 0),
        ("<message to='BOB@localhost/phone'/>", 0),
        ("<message to='bob@localhost/phone' type='error'/>", 0),
        (
            "<message to='bob@localhost/phone' from='alice@localhost'/>",
            0,
        ),
        ("<message to='bob@localhost'/>", 0),
        ("<message to='bob@localhost/phone' id='&amp;&apos;'/>", 1),
        ("<message to='bob@localhost/phone' id=\"&apos;\"/>", 1),
        ("<message to='bob@localhost/phone' id=\"'\"/>", 0),
        (
            "<message to='bob@localhost/phone' id='\u{FF21}'>\u{FF21}</message>",
            1,
        ),
        (
            "<message to='bob@localhost/phone' id='\u{FFFD}'>\u{FFFD}</message>",
            1,
        ),
        ("<message to='bob@localhost/phone' id='&#38;'/>", 0),
        ("<message to='bob@localhost/ph&amp;one'/>", 0),
        (
            "<message to='bob@localhost/phone'><![CDATA[x]]></message>",
            0,
        ),
        (" <message to='bob@localhost/phone'/>", 0),
    ] {
        let (fast, tree, forwarded) = compare(&[input.as_bytes()]);
        assert_eq!(fast, tree, "{input}");
        assert_eq!(forwarded, expect_forwarded, "{input}");
    }
}

#[test]
fn split_and_trailing_bytes_stay_in_step() {
    let text = format!("{BENCH}<message to='bob@localhost/phone'><x>a</x></message>{BENCH}");
    let bytes = text.as_bytes();
    for cut in [1, 7, 60, BENCH.len(), BENCH.len() + 5, bytes.len() - 3] {
        let (first, second) = bytes.split_at(cut);
        let (fast, tree, _) = compare(&[first, second, b" ", BENCH.as_bytes()]);
        assert_eq!(fast, tree, "cut at {cut}");
    }
}

/// A character and the ways it may be written in text (`attr: None`) or
/// in an attribute value quoted with `q`.
fn encode(c: char, form: usize, quote: Option<char>) -> String {
    let forms: Vec<String> = match c {
        '&' => vec!["&amp;".into(), "&#38;".into(), "&#x26;".into()],
        '<' => vec!["&lt;".into(), "&#60;".into()],
        '>' => vec!["&gt;".into(), ">".into()],
        '\'' if quote == Some('\'') => vec!["&apos;".into(), "&#39;".into()],
        '\'' => vec!["'".into(), "&apos;".into()],
        '"' if quote == Some('"') => vec!["&quot;".into(), "&#34;".into()],
        '"' => vec!["\"".into(), "&quot;".into()],
        '\t' => vec!["\t".into(), "&#9;".into()],
        '\n' => vec!["\n".into(), "&#10;".into(), "\r\n".into()],
        'é' => vec!["é".into(), "&#233;".into()],
        c => vec![c.to_string()],
    };
    // Form 0 (the writer's) most of the time.
    let form = if form < 6 { 0 } else { form };
    forms.get(form % forms.len()).cloned().unwrap_or_default()
}

const CHARS: &[char] = &[
    'a', 'b', ' ', '&', '<', '>', '\'', '"', '\t', '\n', 'é', '\u{FFFD}', ']', '\u{FF21}',
];

fn arb_text(quote: Option<char>) -> impl Strategy<Value = String> {
    prop::collection::vec((0..CHARS.len() * 2, 0..9usize), 0..6).prop_map(move |v| {
        v.into_iter()
            .map(|(c, f)| encode(CHARS.get(c).copied().unwrap_or('a'), f, quote))
            .collect()
    })
}

fn arb_attr() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["a", "b", "id", "xmlns", "z"]),
        prop::bool::weighted(0.8),
        arb_text(Some('\'')),
        arb_text(Some('"')),
    )
        .prop_map(|(name, single, v1, v2)| {
            let value = match name {
                "xmlns" => ["urn:a", "urn:b", "jabber:client", ""]
                    .get(v1.len() % 4)
                    .copied()
                    .unwrap_or("urn:a")
                    .to_owned(),
                _ if single => v1,
                _ => v2,
            };
            if single || name == "xmlns" {
                format!(" {name}='{value}'")
            } else {
                format!(" {name}=\"{value}\"")
            }
        })
}

fn arb_content() -> impl Strategy<Value = String> {
    let leaf = arb_text(None);
    leaf.prop_recursive(3, 24, 4, |inner| {
        (
            prop::sample::select(vec!["body", "x", "thread"]),
            prop::collection::vec(arb_attr(), 0..3),
            prop::collection::vec(inner, 0..3),
            prop::bool::weighted(0.8),
            prop::bool::weighted(0.1),
            arb_text(None),
            prop::bool::weighted(0.7),
        )
            .prop_map(
                |(name, mut attrs, children, self_close, space, tail, sorted)| {
                    if sorted {
                        // The writer's order: xmlns first, then by name.
                        attrs.sort_by_key(|a| (!a.starts_with(" xmlns="), a.clone()));
                        attrs.dedup_by(|a, b| a.split('=').next() == b.split('=').next());
                    }
                    let attrs: String = attrs.concat();
                    let space = if space { " " } else { "" };
                    let inside = children.concat();
                    if inside.is_empty() && self_close {
                        format!("<{name}{attrs}{space}/>{tail}")
                    } else {
                        format!("<{name}{attrs}{space}>{inside}</{name}>{tail}")
                    }
                },
            )
    })
}

fn arb_message() -> impl Strategy<Value = String> {
    let to = prop::sample::select(vec![
        Some("bob@localhost/phone"),
        Some("bob@localhost/phone"),
        Some("bob@localhost/phone"),
        Some("BOB@localhost/phone"),
        Some("bob@localhost/other"),
        Some("bob@localhost"),
        Some("alice@localhost/laptop"),
        Some("nobody@localhost/x"),
        Some("bob@localhost./phone"),
        Some("bad@@x"),
        Some("bob@elsewhere.example/phone"),
        None,
    ]);
    let ty = prop::sample::select(vec![
        None,
        Some("chat"),
        Some("chat"),
        Some("normal"),
        Some("headline"),
        Some("groupchat"),
        Some("error"),
        Some("bogus"),
    ]);
    let from = prop::sample::select(vec![
        None,
        None,
        None,
        Some("alice@localhost/laptop"),
        Some("alice@localhost"),
        Some("eve@localhost/x"),
    ]);
    (
        to,
        ty,
        from,
        prop::option::of(arb_text(Some('\''))),
        prop::bool::weighted(0.05),
        prop::collection::vec(arb_content(), 1..3),
        prop::sample::subsequence(vec![0usize, 1, 2, 3, 4], 0..=5),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(to, ty, from, id, lang, content, order, dq, self_close)| {
            let mut attrs: Vec<String> = Vec::new();
            let mut push = |name: &str, value: Option<&str>| {
                if let Some(v) = value {
                    if dq {
                        attrs.push(format!("{name}=\"{v}\""));
                    } else {
                        attrs.push(format!("{name}='{v}'"));
                    }
                }
            };
            push("to", to);
            push("type", ty);
            push("from", from);
            push("id", id.as_deref());
            push("xml:lang", lang.then_some("en"));
            // Some order of the attributes (those not chosen follow).
            let mut ordered: Vec<String> = order
                .iter()
                .filter_map(|&i| attrs.get(i).cloned())
                .collect();
            for (i, a) in attrs.iter().enumerate() {
                if !order.contains(&i) {
                    ordered.push(a.clone());
                }
            }
            let head: String = ordered.iter().map(|a| format!(" {a}")).collect();
            let inside = content.concat();
            if inside.is_empty() && self_close {
                format!("<message{head}/>")
            } else {
                format!("<message{head}>{inside}</message>")
            }
        })
}

/// The generated messages take the byte path often enough for the
/// comparison to mean something.
#[test]
fn generated_messages_often_take_the_byte_path() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = arb_message();
    let (mut forwarded, mut total) = (0, 0u64);
    for _ in 0..300 {
        let Ok(tree) = strategy.new_tree(&mut runner) else {
            continue;
        };
        let text = tree.current();
        let (fast, slow, n) = compare(&[text.as_bytes()]);
        assert_eq!(fast, slow, "{text}");
        forwarded += n;
        total += 1;
    }
    // The generator favours non-canonical forms (they test the fallback),
    // so only some take the byte path.
    assert!(forwarded > 0, "{forwarded} of {total} forwarded");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Same bytes out with and without byte forwarding, also when the
    /// message arrives split, followed by another one.
    #[test]
    fn forwarding_matches_the_tree_path(
        messages in prop::collection::vec(arb_message(), 1..4),
        cut in 0usize..400,
    ) {
        let text = messages.concat();
        let bytes = text.as_bytes();
        let cut = cut.min(bytes.len());
        let (first, second) = bytes.split_at(cut);
        let (fast, tree, _) = compare(&[bytes, first, second, BENCH.as_bytes()]);
        prop_assert_eq!(fast, tree, "{}", text);
    }
}

/// Both servers with Alice (`laptop`, `other`) and Bob (`phone`, `other`)
/// bound and available, after `setup` ran in each; then `input` from
/// alice/laptop. Returns what every session saw in each, and how many
/// messages the fast server forwarded as bytes.
fn compare_with(setup: &[(&str, &str)], input: &str) -> (String, String, u64) {
    let run = |on: bool| {
        let mut server = TestServer::new();
        server.manager.set_byte_forwarding(on);
        server.add_user("alice", "pass");
        server.add_user("bob", "pass");
        let mut ids = Vec::new();
        for (user, res) in [
            ("alice", "laptop"),
            ("alice", "other"),
            ("bob", "phone"),
            ("bob", "other"),
        ] {
            let id = server.login(user, res);
            server.send(id, "<presence/>");
            ids.push((format!("{user}/{res}"), id));
        }
        for (who, xml) in setup {
            let id = ids.iter().find(|(n, _)| n == who).map(|(_, id)| *id);
            if let Some(id) = id {
                server.send(id, xml);
            }
        }
        for (_, id) in &ids {
            server.take_raw(*id);
        }
        let before = server.manager.forwarded();
        if let Some((_, laptop)) = ids.first() {
            server.send_bytes(*laptop, input.as_bytes());
        }
        let seen: String = ids
            .iter()
            .map(|(name, id)| format!("{name}: {}\n", server.take_raw(*id)))
            .collect();
        (seen, server.manager.forwarded() - before)
    };
    let (fast, forwarded) = run(true);
    let (tree, _) = run(false);
    (fast, tree, forwarded)
}

const ENABLE: &str = "<iq type='set' id='c'><enable xmlns='urn:xmpp:carbons:2'/></iq>";

#[test]
fn fast_path_still_copies_carbons_for_the_sender_and_the_recipient() {
    // Without carbons the bench message goes the fast path.
    let (fast, tree, forwarded) = compare_with(&[], BENCH);
    assert_eq!(fast, tree);
    assert_eq!(forwarded, 1);
    for (who, kind) in [("alice/other", "sent"), ("bob/other", "received")] {
        let (fast, tree, forwarded) = compare_with(&[(who, ENABLE)], BENCH);
        assert_eq!(fast, tree, "{who}");
        assert_eq!(forwarded, 0, "{who}");
        let line = fast
            .lines()
            .find(|l| l.starts_with(who))
            .unwrap_or_default();
        assert!(
            line.contains(&format!("<{kind} xmlns='urn:xmpp:carbons:2'>")),
            "{who}: {line}"
        );
    }
}

#[test]
fn fast_path_honours_blocking_both_ways() {
    for (who, target) in [
        ("bob/phone", "alice@localhost"),
        ("alice/laptop", "bob@localhost"),
    ] {
        let block = format!(
            "<iq type='set' id='b'><block xmlns='urn:xmpp:blocking'><item jid='{target}'/></block></iq>"
        );
        let (fast, tree, forwarded) = compare_with(&[(who, &block)], BENCH);
        assert_eq!(fast, tree, "{who}");
        assert_eq!(forwarded, 0, "{who}");
        let bob = fast
            .lines()
            .find(|l| l.starts_with("bob/phone"))
            .unwrap_or_default();
        assert!(!bob.contains("<body>"), "{who}: {bob}");
        let alice = fast
            .lines()
            .find(|l| l.starts_with("alice/laptop"))
            .unwrap_or_default();
        assert!(alice.contains("type='error'"), "{who}: {alice}");
    }
}

#[test]
fn fast_path_strips_private_and_holds_for_inactive_clients() {
    let private = BENCH.replace("</body>", "</body><private xmlns='urn:xmpp:carbons:2'/>");
    let (fast, tree, forwarded) = compare_with(&[], &private);
    assert_eq!(fast, tree);
    assert_eq!(forwarded, 0);
    assert!(!fast.contains("private"), "{fast}");
    let chatstate = "<message to='bob@localhost/phone' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>";
    let (fast, tree, forwarded) = compare_with(
        &[("bob/phone", "<inactive xmlns='urn:xmpp:csi:0'/>")],
        chatstate,
    );
    assert_eq!(fast, tree);
    assert_eq!(forwarded, 0);
    assert!(fast.contains("bob/phone: \n"), "held: {fast}");
}
