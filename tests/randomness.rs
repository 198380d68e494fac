//! Randomness fails closed: without random bytes there is no stream id, no
//! SCRAM nonce, no generated resource and no password salt, and the core
//! never substitutes predictable bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use xmpp_session::random::{RandomSource, SeededRandom};
use xmpp_session::testkit::{FailingRandom, TestServer, account};
use xmpp_session::{MemoryStore, Store};

const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";

fn server(rng: FailingRandom) -> TestServer {
    let config = TestServer::config().build().expect("valid config");
    let mut server = TestServer::with_random(config, Box::new(rng));
    server.add_user("romeo", "pass");
    server
}

#[test]
fn no_stream_id_closes_with_internal_server_error() {
    let mut server = server(FailingRandom::always());
    let c = server.connect();
    server.open_stream(c);
    assert_eq!(
        server.take_raw(c),
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' xml:lang='en' id='' from='localhost' \
         version='1.0'><stream:error><internal-server-error \
         xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
    );
    assert!(server.is_closed(c));
    assert!(server.manager.session(c).is_none());
}

#[test]
fn no_scram_nonce_fails_the_login_with_a_stream_error() {
    // The stream id takes the one good fill; the nonce finds none.
    let mut server = server(FailingRandom::after(1));
    let c = server.connect();
    server.open_stream(c);
    server.take_raw(c);
    let first = BASE64.encode("n,,n=romeo,r=clientnonce");
    server.send(
        c,
        &format!("<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-256'>{first}</auth>"),
    );
    assert_eq!(
        server.take_raw(c),
        "<stream:error><internal-server-error \
         xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
    );
    assert!(server.is_closed(c));
    assert!(server.manager.session(c).is_none());
    assert!(
        server
            .take_events()
            .iter()
            .all(|e| !matches!(e, xmpp_session::Event::Authenticated { .. }))
    );
}

#[test]
fn no_generated_resource_refuses_the_bind() {
    // Stream id, nonce, and the stream id after SASL: three good fills.
    let mut server = server(FailingRandom::after(3));
    let c = server.connect();
    server.authenticate_plain(c, "romeo", "pass");
    server.send(
        c,
        "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
    );
    server.expect(
        c,
        &[
            "<iq type='error' id='b1'><error type='wait'><internal-server-error \
           xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
        ],
    );
    // A resource the client names needs no randomness.
    assert_eq!(server.bind(c, Some("orchard")), "romeo@localhost/orchard");
}

#[test]
fn a_user_name_that_is_no_jid_localpart_is_not_authorized() {
    let mut server = server(FailingRandom::after(usize::MAX));
    for name in ["a b", "x@y", "\u{7f}"] {
        let c = server.connect();
        server.open_stream(c);
        server.take(c);
        let payload = BASE64.encode(format!("\0{name}\0pass"));
        server.send(
            c,
            &format!("<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{payload}</auth>"),
        );
        let got = server.take(c);
        assert!(
            got.iter().any(|e| e.is("failure", NS_SASL)),
            "{name:?}: {got:?}"
        );
        assert!(!server.is_closed(c));
    }
}

#[test]
fn memory_store_salts_come_from_its_source() {
    let romeo = account("romeo");
    let mut a = MemoryStore::with_random(Box::new(SeededRandom::new(5)), 1);
    let mut b = MemoryStore::with_random(Box::new(SeededRandom::new(5)), 1);
    a.add_user(&romeo, "pass").expect("seeded");
    b.add_user(&romeo, "pass").expect("seeded");
    assert_eq!(a.credentials(&romeo), b.credentials(&romeo));
    let mut seeded = SeededRandom::new(5);
    let mut salt = [0u8; 16];
    seeded.fill(&mut salt).expect("seeded");
    let expected = xmpp_session::sasl::Credentials::from_password("pass", &salt, 1);
    assert_eq!(a.credentials(&romeo), Ok(Some(expected)));

    let mut broken = MemoryStore::with_random(Box::new(FailingRandom::always()), 1);
    assert!(broken.add_user(&romeo, "pass").is_err());
    assert!(!broken.has_user(&romeo));
}
