//! Stream management (XEP-0198) tests that look at the counters and the
//! queue inside the manager; the transcripts are in
//! `tests/stream_management.rs`.

use crate::ids::SessionId;
use crate::testkit::TestServer;

fn server() -> (TestServer, SessionId, SessionId) {
    let mut s = TestServer::new();
    s.add_user("alice", "pass");
    s.add_user("bob", "pass");
    let a = s.login("alice", "a");
    let b = s.login("bob", "b");
    for id in [a, b] {
        s.send(id, "<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
        s.take(id);
        s.take_raw(id);
    }
    (s, a, b)
}

fn sm(s: &mut TestServer, id: SessionId) -> &mut crate::sm::SmState {
    s.manager.sm_state_mut(id).expect("stream management is on")
}

#[test]
fn counters_wrap_at_two_to_the_32() {
    let (mut s, a, b) = server();
    sm(&mut s, a).inbound = u32::MAX;
    s.send(a, "<presence/><r xmlns='urn:xmpp:sm:3'/>");
    s.expect(
        a,
        &[
            "<presence from='alice@localhost/a'/>",
            "<a xmlns='urn:xmpp:sm:3' h='0'/>",
        ],
    );
    let st = sm(&mut s, b);
    st.outbound = u32::MAX - 1;
    st.acked = u32::MAX - 1;
    for body in ["1", "2", "3"] {
        s.send(
            a,
            &format!("<message type='chat' to='bob@localhost/b'><body>{body}</body></message>"),
        );
    }
    assert_eq!(s.take(b).len(), 3);
    assert_eq!(sm(&mut s, b).outbound, 1);
    // h = 0 acknowledges the first two (MAX, then 0 after wrapping).
    s.send(b, "<a xmlns='urn:xmpp:sm:3' h='0'/>");
    assert_eq!(sm(&mut s, b).unacked.len(), 1);
    s.send(b, "<a xmlns='urn:xmpp:sm:3' h='1'/>");
    assert!(sm(&mut s, b).unacked.is_empty());
    s.send(b, "<a xmlns='urn:xmpp:sm:3' h='2'/>");
    assert!(s.is_closed(b));
}

#[test]
fn acks_in_any_form_are_applied_alike() {
    let forms = [
        "<a xmlns='urn:xmpp:sm:3' h='1'/>",
        "<a xmlns=\"urn:xmpp:sm:3\" h=\"1\" />",
        "<a h='1' xmlns='urn:xmpp:sm:3'/>",
        "<a  xmlns='urn:xmpp:sm:3' h='1'/>",
        "<a xmlns='urn:xmpp:sm:3' h='1'></a>",
        "<sm:a xmlns:sm='urn:xmpp:sm:3' h='1'/>",
        "<a xmlns='urn:xmpp:sm:3' h='0001'/>",
    ];
    for form in forms {
        let (mut s, a, b) = server();
        s.send(
            a,
            "<message to='bob@localhost/b' type='chat'><body>x</body></message>",
        );
        s.send(
            a,
            "<message to='bob@localhost/b' type='chat'><body>y</body></message>",
        );
        s.take(b);
        s.send(b, form);
        assert_eq!(sm(&mut s, b).unacked.len(), 1, "{form}");
        assert_eq!(sm(&mut s, b).acked, 1, "{form}");
        assert!(!s.is_closed(b), "{form}");
    }
    for bad in [
        "<a xmlns='urn:xmpp:sm:3' h='4294967296'/>",
        "<a xmlns='urn:xmpp:sm:3' h='x'/>",
        "<a xmlns='urn:xmpp:sm:3'/>",
    ] {
        let (mut s, _, b) = server();
        s.send(b, bad);
        let got = s.take(b);
        assert!(
            got.first()
                .and_then(|e| e.children().next())
                .is_some_and(|c| c.name() == "bad-format"),
            "{bad}: {got:?}"
        );
        assert!(s.is_closed(b), "{bad}");
    }
}

#[test]
fn forwarded_bytes_are_counted_and_queued_on_both_ends() {
    let (mut s, a, b) = server();
    let before = s.manager.forwarded();
    s.send(
        a,
        "<message to='bob@localhost/b' type='chat'><body>fast</body></message>",
    );
    assert_eq!(s.manager.forwarded(), before + 1);
    assert_eq!(sm(&mut s, a).inbound, 1);
    let st = sm(&mut s, b);
    assert_eq!((st.outbound, st.unacked.len()), (1, 1));
    let queued = st.unacked.front().map(|u| u.data.clone()).expect("queued");
    assert_eq!(
        &queued[..],
        s.take_raw(b).as_bytes(),
        "the queue keeps exactly the bytes written"
    );
}
