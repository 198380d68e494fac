//! Routed chat messages per second: two bound sessions, A sends chat
//! messages to B's full JID as bytes in, and B's bytes come out. Compared
//! with a raw minidom parse + serialize of the same stanza, and with stream
//! management (XEP-0198) on both sessions: B acknowledges every 5 stanzas.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use xmpp_session::Output;
use xmpp_session::minidom::Element;
use xmpp_session::testkit::TestServer;

const MESSAGE: &str = "<message to='bob@localhost/phone' type='chat' id='m1'><body>Hello Bob, this is a \
chat message of a typical size for instant messaging.</body></message>";

fn routing(c: &mut Criterion) {
    let mut server = TestServer::new();
    server.add_user("alice", "pass");
    server.add_user("bob", "pass");
    let alice = server.login("alice", "laptop");
    let bob = server.login("bob", "phone");
    let now = server.now();
    let manager = &mut server.manager;

    // Sanity: the message arrives at Bob.
    manager.handle_input(alice, MESSAGE.as_bytes(), now);
    let mut delivered = 0;
    while let Some(out) = manager.poll_output() {
        if let Output::Transmit { session, data } = out {
            assert_eq!(session, bob);
            assert!(data.starts_with(b"<message"));
            delivered += 1;
        }
    }
    assert_eq!(delivered, 1);

    let mut group = c.benchmark_group("routing");
    group.throughput(Throughput::Elements(1));
    group.bench_function("chat_full_jid_bytes_in_bytes_out", |b| {
        b.iter(|| {
            manager.handle_input(alice, black_box(MESSAGE.as_bytes()), now);
            while let Some(out) = manager.poll_output() {
                black_box(out);
            }
        })
    });
    // A batch of 64 messages in one read, as a busy socket delivers them.
    let batch: String = std::iter::repeat_n(MESSAGE, 64).collect();
    group.throughput(Throughput::Elements(64));
    group.bench_function("chat_full_jid_batch_of_64", |b| {
        b.iter(|| {
            manager.handle_input(alice, black_box(batch.as_bytes()), now);
            while let Some(out) = manager.poll_output() {
                black_box(out);
            }
        })
    });
    group.throughput(Throughput::Elements(1));
    let wrapped = MESSAGE.replace("<message ", "<message xmlns='jabber:client' ");
    group.bench_function("minidom_parse_and_serialize_same_stanza", |b| {
        b.iter(|| {
            let el: Element = black_box(wrapped.as_str()).parse().expect("valid");
            black_box(String::from(&el));
        })
    });
    group.finish();
}

/// Five messages A → B per iteration, each its own read; with stream
/// management on both sessions B also sends `<a h=…/>` (the server asks
/// with `<r/>` after 5 unacknowledged stanzas, its default).
fn routing_sm(c: &mut Criterion) {
    let mut group = c.benchmark_group("routing_sm");
    group.throughput(Throughput::Elements(5));
    for sm in [false, true] {
        let mut server = TestServer::new();
        server.add_user("alice", "pass");
        server.add_user("bob", "pass");
        let alice = server.login("alice", "laptop");
        let bob = server.login("bob", "phone");
        if sm {
            for id in [alice, bob] {
                server.send(id, "<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
                server.take(id);
            }
        }
        let now = server.now();
        let manager = &mut server.manager;
        let mut h: u32 = 0;
        let mut ack = String::with_capacity(64);
        let name = if sm {
            "sm_on_5_messages_and_ack"
        } else {
            "sm_off_5_messages"
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..5 {
                    manager.handle_input(alice, black_box(MESSAGE.as_bytes()), now);
                }
                if sm {
                    h = h.wrapping_add(5);
                    ack.clear();
                    ack.push_str("<a xmlns='urn:xmpp:sm:3' h='");
                    ack.push_str(&h.to_string());
                    ack.push_str("'/>");
                    manager.handle_input(bob, black_box(ack.as_bytes()), now);
                }
                while let Some(out) = manager.poll_output() {
                    black_box(out);
                }
            })
        });
        let b = server.manager.session(bob).expect("bob is still connected");
        assert_eq!(b.sm_enabled(), sm);
    }
    group.finish();
}

criterion_group!(benches, routing, routing_sm);
criterion_main!(benches);
