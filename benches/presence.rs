//! Presence fan-out: one user with 1,000 contacts (subscription `both`),
//! each with 2 available resources, sends a presence update. Every update
//! produces 2,001 transmits (1 reflection + 2 per contact); the stanza is
//! serialized once per contact and the bytes are shared by its resources.
//!
//! `presence_csi`: a watcher with 200 contacts; each contact changes its
//! presence twice (400 updates). With the watcher inactive (XEP-0352) the
//! updates are held and coalesced to one per contact, then `<active/>`
//! flushes the 200 in one go (and `<inactive/>` starts over); compared with
//! the same updates to an active watcher (400 transmits).

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

const WATCHED: usize = 200;

fn csi_hold_and_flush(c: &mut Criterion) {
    let mut server = TestServer::new();
    server.add_user("watcher", "pass");
    let mut contacts = Vec::new();
    for i in 0..WATCHED {
        let name = format!("pal{i}");
        server.add_user(&name, "pass");
        for (user, other) in [("watcher", name.as_str()), (name.as_str(), "watcher")] {
            let mut item =
                RosterItem::new(BareJid::new(&format!("{other}@{DOMAIN}")).expect("jid"));
            item.subscription = Subscription::Both;
            let version = server
                .store
                .stored_roster(&account(user))
                .map_or(0, |r| r.version)
                + 1;
            server
                .store
                .change_roster(&account(user), version, &RosterChange::SetItem(item))
                .expect("memory store");
        }
    }
    let watcher = server.login("watcher", "phone");
    server.send(watcher, "<presence/>");
    for i in 0..WATCHED {
        let id = server.login(&format!("pal{i}"), "r");
        server.send(id, "<presence/>");
        contacts.push(id);
    }
    let now = server.now();
    let manager = &mut server.manager;
    while manager.poll_output().is_some() {}

    let round = |manager: &mut xmpp_session::SessionManager, inactive: bool| -> usize {
        if inactive {
            manager.handle_input(watcher, b"<inactive xmlns='urn:xmpp:csi:0'/>", now);
        }
        for update in [
            &b"<presence><show>away</show></presence>"[..],
            b"<presence><show>dnd</show></presence>",
        ] {
            for &id in &contacts {
                manager.handle_input(id, black_box(update), now);
            }
        }
        if inactive {
            manager.handle_input(watcher, b"<active xmlns='urn:xmpp:csi:0'/>", now);
        }
        let mut to_watcher = 0;
        while let Some(out) = manager.poll_output() {
            if matches!(out, Output::Transmit { session, .. } if session == watcher) {
                to_watcher += 1;
            }
            black_box(out);
        }
        to_watcher
    };
    // Sanity: held and coalesced to one per contact, or all delivered.
    assert_eq!(round(manager, true), WATCHED);
    assert_eq!(round(manager, false), 2 * WATCHED);

    let mut group = c.benchmark_group("presence_csi");
    group.throughput(Throughput::Elements(
        u64::try_from(2 * WATCHED).expect("small"),
    ));
    group.bench_function("400_updates_to_inactive_watcher_then_flush", |b| {
        b.iter(|| round(manager, true))
    });
    group.bench_function("400_updates_to_active_watcher", |b| {
        b.iter(|| round(manager, false))
    });
    group.finish();
}

criterion_group!(benches, fan_out, csi_hold_and_flush);
criterion_main!(benches);
