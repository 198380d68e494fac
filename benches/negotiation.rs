//! Full in-process logins per second: stream open → SCRAM-SHA-256 → stream
//! restart → bind, through the public API, with the store answering at once;
//! the same login with SASL2 + Bind2 (one round trip less, no restart); and a
//! FAST token login (SASL2 `HT-SHA-256-NONE` + Bind2, rotating its token).
//!
//! The figure is meant to be the server's cost of a login, so the client does
//! only what a load client must do per login: its `ClientKey`/`StoredKey`
//! are derived once from the account's salt before timing, and it searches
//! the output bytes it needs instead of converting them to text. Every
//! server step still runs and is checked: SCRAM offered, the challenge's
//! salt and iteration count, `<success/>`, and the bound JID.

use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use xmpp_session::{Config, ConnectionInfo, MemoryStore, Output, SessionId, SessionManager, Store};

type HmacSha256 = hmac::Hmac<Sha256>;

const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream to='localhost' version='1.0' \
xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Where `needle` (non-empty) first occurs in `haystack`. The outputs are a
/// few hundred bytes: scanning for the first byte beats building a
/// `memmem::Finder` per search.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    memchr::memchr_iter(first, haystack)
        .find(|&i| haystack.get(i + 1..i + needle.len()) == Some(rest))
}

/// Drains outputs into `out` (cleared first), answering requests from the
/// store; keeps the bytes written to `session`.
///
/// Bytes, not text: a load client searches the bytes it needs and does not
/// convert every reply to a `String`.
fn drain(
    manager: &mut SessionManager,
    store: &mut MemoryStore,
    session: SessionId,
    now: Instant,
    out: &mut Vec<u8>,
) {
    out.clear();
    while let Some(output) = manager.poll_output_with(store, now) {
        if let Output::Transmit { session: s, data } = output
            && s == session
        {
            out.extend_from_slice(&data);
        }
    }
}

fn between<'a>(bytes: &'a [u8], start: &[u8], end: &[u8]) -> &'a [u8] {
    let from = find(bytes, start)
        .map(|i| i + start.len())
        .expect("start marker");
    let to = find(&bytes[from..], end)
        .map(|i| i + from)
        .expect("end marker");
    &bytes[from..to]
}

/// What a load client computes once per account (the salt is fixed): the
/// salted password's `ClientKey` and `StoredKey`. What depends on the
/// server's nonce (the `AuthMessage`, `ClientSignature`, proof) is computed
/// for every login.
struct Keys {
    salt_b64: Vec<u8>,
    iterations: u32,
    client_key: [u8; 32],
    stored_key: [u8; 32],
}

impl Keys {
    fn new(password: &str, salt: &[u8], iterations: u32) -> Self {
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Sha256::digest(client_key).into();
        Keys {
            salt_b64: B64.encode(salt).into_bytes(),
            iterations,
            client_key,
            stored_key,
        }
    }
}

struct Client {
    keys: Keys,
    /// Output of the current step (reused).
    out: Vec<u8>,
    /// Scratch buffers (reused).
    text: String,
    wire: String,
}

const CHALLENGE_OPEN: &[u8] = b"<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>";
const CHALLENGE2_OPEN: &[u8] = b"<challenge xmlns='urn:xmpp:sasl:2'>";
/// SASL2's inline part: the client's id and a Bind2 request.
const INLINE: &str = "<user-agent id='d4565fa7-4d72-4749-b3d3-740edbf87770'/>\
<bind xmlns='urn:xmpp:bind:0'><tag>bench</tag></bind>";

/// Legacy SASL + RFC 6120 bind, or SASL2 + Bind2.
#[derive(Clone, Copy, PartialEq)]
enum Proto {
    Legacy,
    Sasl2,
}

impl Client {
    fn login(
        &mut self,
        manager: &mut SessionManager,
        store: &mut MemoryStore,
        n: u64,
        now: Instant,
        proto: Proto,
    ) {
        use std::fmt::Write;
        let id = manager.connect(ConnectionInfo::direct_tls(), now);
        manager.handle_input(id, HEADER, now);
        drain(manager, store, id, now, &mut self.out);
        assert!(
            find(&self.out, b"SCRAM-SHA-256").is_some(),
            "no SCRAM offered"
        );

        // client-first-message: gs2 header `n,,` then the bare message
        // `n=juliet,r=<cnonce>`, which starts the AuthMessage.
        self.text.clear();
        write!(self.text, "n,,n=juliet,r=clientnonce{n}").expect("to a String");
        self.wire.clear();
        if proto == Proto::Legacy {
            self.wire.push_str(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>",
            );
            B64.encode_string(&self.text, &mut self.wire);
            self.wire.push_str("</auth>");
        } else {
            self.wire.push_str(
                "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-256'>\
                 <initial-response>",
            );
            B64.encode_string(&self.text, &mut self.wire);
            self.wire.push_str("</initial-response>");
            self.wire.push_str(INLINE);
            self.wire.push_str("</authenticate>");
        }
        manager.handle_input(id, self.wire.as_bytes(), now);
        drain(manager, store, id, now, &mut self.out);

        let open = match proto {
            Proto::Legacy => CHALLENGE_OPEN,
            Proto::Sasl2 => CHALLENGE2_OPEN,
        };
        let server_first = B64
            .decode(between(&self.out, open, b"</challenge>"))
            .expect("b64");
        let mut nonce: &[u8] = b"";
        let mut salt: &[u8] = b"";
        let mut iterations = 0u32;
        for part in server_first.split(|&b| b == b',') {
            match part.split_at(2) {
                (b"r=", v) => nonce = v,
                (b"s=", v) => salt = v,
                (b"i=", v) => {
                    iterations = std::str::from_utf8(v)
                        .expect("ascii")
                        .parse()
                        .expect("iterations")
                }
                _ => {}
            }
        }
        assert!(
            salt == self.keys.salt_b64 && iterations == self.keys.iterations,
            "unexpected salt or iteration count"
        );
        let Keys {
            client_key,
            stored_key,
            ..
        } = self.keys;

        // AuthMessage = client-first-bare "," server-first "," client-final-without-proof.
        self.text.push(',');
        self.text
            .push_str(std::str::from_utf8(&server_first).expect("ascii"));
        let final_start = self.text.len() + 1;
        self.text.push_str(",c=biws,r=");
        self.text
            .push_str(std::str::from_utf8(nonce).expect("ascii"));
        let signature = hmac(&stored_key, &self.text.as_bytes()[3..]);
        let mut proof = client_key;
        for (p, s) in proof.iter_mut().zip(signature.iter()) {
            *p ^= s;
        }
        self.text.push_str(",p=");
        B64.encode_string(proof, &mut self.text);
        self.wire.clear();
        self.wire.push_str(match proto {
            Proto::Legacy => "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>",
            Proto::Sasl2 => "<response xmlns='urn:xmpp:sasl:2'>",
        });
        B64.encode_string(&self.text[final_start..], &mut self.wire);
        self.wire.push_str("</response>");
        manager.handle_input(id, self.wire.as_bytes(), now);
        drain(manager, store, id, now, &mut self.out);
        assert!(
            self.out.starts_with(b"<success"),
            "login failed: {}",
            String::from_utf8_lossy(&self.out)
        );
        if proto == Proto::Sasl2 {
            assert!(
                find(
                    &self.out,
                    b"<authorization-identifier>juliet@localhost/bench."
                )
                .is_some(),
                "bind2 failed: {}",
                String::from_utf8_lossy(&self.out)
            );
            manager.handle_disconnect(id, now);
            drain(manager, store, id, now, &mut self.out);
            return;
        }

        manager.handle_input(id, HEADER, now);
        drain(manager, store, id, now, &mut self.out);
        manager.handle_input(
            id,
            b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
            now,
        );
        drain(manager, store, id, now, &mut self.out);
        assert!(
            find(&self.out, b"<jid>juliet@localhost/").is_some(),
            "bind failed: {}",
            String::from_utf8_lossy(&self.out)
        );
        manager.handle_disconnect(id, now);
        drain(manager, store, id, now, &mut self.out);
    }

    /// A FAST login with `token` (SASL2 `HT-SHA-256-NONE` + Bind2): returns
    /// the rotated token from `<success/>`, as a real client keeps it.
    fn fast_login(
        &mut self,
        manager: &mut SessionManager,
        store: &mut MemoryStore,
        token: &[u8],
        now: Instant,
    ) -> Vec<u8> {
        let id = manager.connect(ConnectionInfo::direct_tls(), now);
        manager.handle_input(id, HEADER, now);
        drain(manager, store, id, now, &mut self.out);
        let mut response = b"juliet\0".to_vec();
        response.extend_from_slice(&hmac(token, b"Initiator"));
        self.wire.clear();
        self.wire.push_str(
            "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'><initial-response>",
        );
        B64.encode_string(&response, &mut self.wire);
        self.wire
            .push_str("</initial-response><fast xmlns='urn:xmpp:fast:0'/>");
        self.wire.push_str(INLINE);
        self.wire.push_str("</authenticate>");
        manager.handle_input(id, self.wire.as_bytes(), now);
        drain(manager, store, id, now, &mut self.out);
        let expected = B64.encode(hmac(token, b"Responder"));
        assert_eq!(
            between(&self.out, b"<additional-data>", b"</additional-data>"),
            expected.as_bytes(),
            "FAST login failed: {}",
            String::from_utf8_lossy(&self.out)
        );
        // The token's text is the HMAC key.
        let next = between(&self.out, b" token='", b"'").to_vec();
        manager.handle_disconnect(id, now);
        drain(manager, store, id, now, &mut self.out);
        next
    }

    /// A SASL2 PLAIN login with Bind2 (the server checks the password with
    /// PBKDF2), asking for a FAST token if `request_token`: the token.
    fn plain_login(
        &mut self,
        manager: &mut SessionManager,
        store: &mut MemoryStore,
        now: Instant,
        request_token: bool,
    ) -> Option<Vec<u8>> {
        let id = manager.connect(ConnectionInfo::direct_tls(), now);
        manager.handle_input(id, HEADER, now);
        let request = format!(
            "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>{}\
             </initial-response>{INLINE}{}</authenticate>",
            B64.encode("\0juliet\0password"),
            if request_token {
                "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>"
            } else {
                ""
            }
        );
        manager.handle_input(id, request.as_bytes(), now);
        drain(manager, store, id, now, &mut self.out);
        assert!(
            find(
                &self.out,
                b"<authorization-identifier>juliet@localhost/bench."
            )
            .is_some(),
            "PLAIN login failed: {}",
            String::from_utf8_lossy(&self.out)
        );
        let token = request_token.then(|| between(&self.out, b" token='", b"'").to_vec());
        manager.handle_disconnect(id, now);
        drain(manager, store, id, now, &mut self.out);
        token
    }
}

fn logins(c: &mut Criterion) {
    let mut store = MemoryStore::new();
    store
        .add_user(&xmpp_session::testkit::account("juliet"), "password")
        .expect("the OS generator works");
    let config = Config::builder("localhost")
        .sasl2(true)
        .fast(std::time::Duration::from_secs(3600), 4)
        .build()
        .expect("valid config");
    let mut manager = SessionManager::new(config);
    let now = Instant::now();
    let account = xmpp_session::testkit::account("juliet");
    let keys = store
        .credentials(&account)
        .expect("the store works")
        .and_then(|c| c.sha256)
        .expect("SCRAM-SHA-256 keys");
    let mut client = Client {
        keys: Keys::new("password", &keys.salt, keys.iterations),
        out: Vec::new(),
        text: String::new(),
        wire: String::new(),
    };
    let mut n = 0u64;
    let mut group = c.benchmark_group("negotiation");
    group.throughput(Throughput::Elements(1));
    group.bench_function("login_scram_sha256_bind", |b| {
        b.iter(|| {
            n += 1;
            client.login(&mut manager, &mut store, n, now, Proto::Legacy);
        })
    });
    group.bench_function("login_sasl2_scram_sha256_bind2", |b| {
        b.iter(|| {
            n += 1;
            client.login(&mut manager, &mut store, n, now, Proto::Sasl2);
        })
    });
    group.bench_function("login_sasl2_plain_bind2", |b| {
        b.iter(|| client.plain_login(&mut manager, &mut store, now, false))
    });
    let mut token = client
        .plain_login(&mut manager, &mut store, now, true)
        .expect("a token");
    group.bench_function("login_fast_bind2", |b| {
        b.iter(|| {
            token = client.fast_login(&mut manager, &mut store, &token, now);
        })
    });
    group.finish();
}

criterion_group!(benches, logins);
criterion_main!(benches);
