//! Full in-process logins per second: stream open → SCRAM-SHA-256 → stream
//! restart → bind, through the public API, with the store answering at once.
//!
//! The client's PBKDF2 is computed once (the salt is fixed per account), so
//! the figure is the server's cost of a login, not the client's.

use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use xmpp_session::{Config, ConnectionInfo, MemoryStore, Output, SessionId, SessionManager};

type HmacSha256 = hmac::Hmac<Sha256>;

const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream to='localhost' version='1.0' \
xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Drains outputs, answering requests from the store; returns the text
/// written to `session`.
fn drain(
    manager: &mut SessionManager,
    store: &mut MemoryStore,
    session: SessionId,
    now: Instant,
) -> String {
    let mut text = String::new();
    while let Some(out) = manager.poll_output_with(store, now) {
        if let Output::Transmit { session: s, data } = out
            && s == session
        {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    text
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .map(|i| i + start.len())
        .expect("start marker");
    let to = text[from..]
        .find(end)
        .map(|i| i + from)
        .expect("end marker");
    &text[from..to]
}

struct Client {
    salted: Option<(String, Vec<u8>)>,
}

impl Client {
    fn login(
        &mut self,
        manager: &mut SessionManager,
        store: &mut MemoryStore,
        n: u64,
        now: Instant,
    ) {
        let id = manager.connect(ConnectionInfo::direct_tls(), now);
        manager.handle_input(id, HEADER, now);
        drain(manager, store, id, now);
        let cnonce = format!("clientnonce{n}");
        let client_first_bare = format!("n=juliet,r={cnonce}");
        let auth = format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>{}</auth>",
            B64.encode(format!("n,,{client_first_bare}"))
        );
        manager.handle_input(id, auth.as_bytes(), now);
        let challenge = drain(manager, store, id, now);
        let server_first = String::from_utf8(
            B64.decode(between(
                &challenge,
                "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>",
                "</challenge>",
            ))
            .expect("b64"),
        )
        .expect("utf8");
        let mut nonce = "";
        let mut salt = "";
        let mut iterations = 0u32;
        for part in server_first.split(',') {
            match part.split_at(2) {
                ("r=", v) => nonce = v,
                ("s=", v) => salt = v,
                ("i=", v) => iterations = v.parse().expect("iterations"),
                _ => {}
            }
        }
        let salted = match &self.salted {
            Some((s, key)) if s == salt => key.clone(),
            _ => {
                let mut key = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(
                    b"password",
                    &B64.decode(salt).expect("salt"),
                    iterations,
                    &mut key,
                );
                self.salted = Some((salt.to_owned(), key.to_vec()));
                key.to_vec()
            }
        };
        let client_final_bare = format!("c=biws,r={nonce}");
        let auth_message = format!("{client_first_bare},{server_first},{client_final_bare}");
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Sha256::digest(&client_key);
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        let response = format!(
            "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</response>",
            B64.encode(format!("{client_final_bare},p={}", B64.encode(proof)))
        );
        manager.handle_input(id, response.as_bytes(), now);
        let success = drain(manager, store, id, now);
        assert!(success.contains("<success"), "login failed: {success}");
        manager.handle_input(id, HEADER, now);
        drain(manager, store, id, now);
        manager.handle_input(
            id,
            b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
            now,
        );
        let bound = drain(manager, store, id, now);
        assert!(bound.contains("<jid>"), "bind failed: {bound}");
        manager.handle_disconnect(id, now);
        drain(manager, store, id, now);
    }
}

fn logins(c: &mut Criterion) {
    let mut store = MemoryStore::new();
    store
        .add_user(&xmpp_session::testkit::account("juliet"), "password")
        .expect("the OS generator works");
    let config = Config::builder("localhost").build().expect("valid config");
    let mut manager = SessionManager::new(config);
    let now = Instant::now();
    let mut client = Client { salted: None };
    let mut n = 0u64;
    let mut group = c.benchmark_group("negotiation");
    group.throughput(Throughput::Elements(1));
    group.bench_function("login_scram_sha256_bind", |b| {
        b.iter(|| {
            n += 1;
            client.login(&mut manager, &mut store, n, now);
        })
    });
    group.finish();
}

criterion_group!(benches, logins);
criterion_main!(benches);
