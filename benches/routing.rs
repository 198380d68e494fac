//! Routed chat messages per second: two bound sessions, A sends chat
//! messages to B's full JID as bytes in, and B's bytes come out. Compared
//! with a raw minidom parse + serialize of the same stanza, and with stream
//! management (XEP-0198) on both sessions: B acknowledges every 5 stanzas.
//!
//! `routing_carbons`: the same message with message carbons (XEP-0280)
//! enabled on two resources of each account: each message is delivered and
//! copied twice (a sent copy to the sender's other resource, a received
//! copy to the recipient's), so copies/s is twice the messages/s.

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

fn routing_carbons(c: &mut Criterion) {
    let mut server = TestServer::new();
    server.add_user("alice", "pass");
    server.add_user("bob", "pass");
    let alice = server.login("alice", "laptop");
    let alice2 = server.login("alice", "tablet");
    let bob = server.login("bob", "phone");
    let bob2 = server.login("bob", "tablet");
    for id in [alice, alice2, bob, bob2] {
        server.send(
            id,
            "<iq type='set' id='c'><enable xmlns='urn:xmpp:carbons:2'/></iq>",
        );
        server.take(id);
    }
    let now = server.now();
    let manager = &mut server.manager;
    while manager.poll_output().is_some() {}

    // Sanity: the message and its two copies.
    manager.handle_input(alice, MESSAGE.as_bytes(), now);
    let mut to = Vec::new();
    while let Some(out) = manager.poll_output() {
        if let Output::Transmit { session, .. } = out {
            to.push(session);
        }
    }
    to.sort();
    let mut want = vec![bob, alice2, bob2];
    want.sort();
    assert_eq!(to, want);

    let mut group = c.benchmark_group("routing_carbons");
    group.throughput(Throughput::Elements(1));
    group.bench_function("chat_full_jid_two_copies", |b| {
        b.iter(|| {
            manager.handle_input(alice, black_box(MESSAGE.as_bytes()), now);
            while let Some(out) = manager.poll_output() {
                black_box(out);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, routing, routing_sm, routing_carbons);
criterion_main!(benches);
