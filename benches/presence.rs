//! Presence fan-out: one user with 1,000 contacts (subscription `both`),
//! each with 2 available resources, sends a presence update. Every update
//! produces 2,001 transmits (1 reflection + 2 per contact); the stanza is
//! serialized once per contact and the bytes are shared by its resources.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use xmpp_session::jid::BareJid;
use xmpp_session::roster::{RosterChange, RosterItem, Subscription};
use xmpp_session::testkit::{DOMAIN, TestServer, account};
use xmpp_session::{Output, Store};

const CONTACTS: usize = 1000;

fn fan_out(c: &mut Criterion) {
    let mut server = TestServer::new();
    server.add_user("star", "pass");
    for i in 0..CONTACTS {
        let name = format!("fan{i}");
        server.add_user(&name, "pass");
        let mut item = RosterItem::new(BareJid::new(&format!("{name}@{DOMAIN}")).expect("jid"));
        item.subscription = Subscription::Both;
        let version = u64::try_from(i + 1).expect("small");
        server
            .store
            .change_roster(&account("star"), version, &RosterChange::SetItem(item))
            .expect("memory store");
    }
    for i in 0..CONTACTS {
        for res in ["a", "b"] {
            let id = server.login(&format!("fan{i}"), res);
            server.send(id, "<presence/>");
        }
    }
    let star = server.login("star", "studio");
    server.send(star, "<presence/>");
    let now = server.now();
    let manager = &mut server.manager;
    while manager.poll_output().is_some() {}

    // Sanity: one update reaches every contact resource.
    manager.handle_input(star, b"<presence><show>away</show></presence>", now);
    let mut transmits = 0;
    while let Some(out) = manager.poll_output() {
        if matches!(out, Output::Transmit { .. }) {
            transmits += 1;
        }
    }
    assert_eq!(transmits, 1 + 2 * CONTACTS);

    let mut group = c.benchmark_group("presence");
    group.throughput(Throughput::Elements(
        u64::try_from(1 + 2 * CONTACTS).expect("small"),
    ));
    let mut flip = false;
    group.bench_function("update_to_1000_contacts_x2_resources", |b| {
        b.iter(|| {
            flip = !flip;
            let update: &[u8] = if flip {
                b"<presence><show>away</show></presence>"
            } else {
                b"<presence><show>dnd</show></presence>"
            };
            manager.handle_input(star, black_box(update), now);
            while let Some(out) = manager.poll_output() {
                black_box(out);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, fan_out);
criterion_main!(benches);
