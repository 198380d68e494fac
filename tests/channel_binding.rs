//! SCRAM-SHA-1-PLUS and SCRAM-SHA-256-PLUS (RFC 5802 §6, RFC 9266, RFC
//! 5929) on legacy SASL and SASL2 through the public API: the mechanisms
//! and the XEP-0440 advert appear only with the embedder's channel-binding
//! data, each binding type logs in, and wrong data, a downgrade (`y`),
//! `p=` with a mechanism without -PLUS and an unknown type are refused.
//! Client proofs are computed here, independently of the library.

mod common;
mod scram_client;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::server_with_users;
use scram_client::client_final;
use xmpp_session::testkit::{TestServer, parse_stanza};
use xmpp_session::{ConnectionInfo, Element, SessionId, SessionKind, TlsInfo};

const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const SASL2: &str = "urn:xmpp:sasl:2";
const SASL_CB: &str = "urn:xmpp:sasl-cb:0";
const EXPORTER: [u8; 32] = [0x5a; 32];
const END_POINT: [u8; 32] = [0xc3; 32];
const NOT_AUTHORIZED_TEXT: &str =
    "Unable to authorize you with the authentication credentials you&apos;ve sent.";

fn server() -> TestServer {
    let config = TestServer::config()
        .sasl2(true)
        .build()
        .expect("valid config");
    server_with_users(config, &["alice"])
}

fn both() -> TlsInfo {
    TlsInfo::default()
        .with_tls_exporter(EXPORTER)
        .with_tls_server_end_point(END_POINT)
}

/// A direct-TLS connection with `info`, its stream open; returns the
/// `<stream:features/>` it got.
fn direct_tls(server: &mut TestServer, info: TlsInfo) -> (SessionId, Element) {
    let c = server.connect_with(ConnectionInfo::direct_tls());
    server.tls_established_with(c, info);
    server.open_stream(c);
    let mut got = server.take(c);
    server.take_raw(c);
    assert_eq!(got.len(), 1, "{got:?}");
    (c, got.remove(0))
}

/// The `<mechanism/>` texts of `parent`'s `name` child.
fn mechanisms(features: &Element, name: &str, ns: &str) -> Vec<String> {
    features
        .get_child(name, ns)
        .map(|m| m.children().map(Element::text).collect())
        .unwrap_or_default()
}

const ALL_MECHS: [&str; 5] = [
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1",
    "PLAIN",
];
const PLAIN_MECHS: [&str; 3] = ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"];

#[test]
fn plus_and_the_xep_0440_advert_come_with_binding_data() {
    let mut server = server();
    let (_, features) = direct_tls(&mut server, both());
    assert_eq!(mechanisms(&features, "mechanisms", SASL), ALL_MECHS);
    let auth = features.get_child("authentication", SASL2).expect("sasl2");
    let sasl2: Vec<String> = auth
        .children()
        .filter(|c| c.is("mechanism", SASL2))
        .map(Element::text)
        .collect();
    assert_eq!(sasl2, ALL_MECHS);
    assert_eq!(
        features.get_child("sasl-channel-binding", SASL_CB),
        Some(&parse_stanza(&format!(
            "<sasl-channel-binding xmlns='{SASL_CB}'><channel-binding type='tls-exporter'/>\
             <channel-binding type='tls-server-end-point'/></sasl-channel-binding>"
        )))
    );

    // Only the types supplied are advertised.
    let (_, features) = direct_tls(
        &mut server,
        TlsInfo::default().with_tls_server_end_point(END_POINT),
    );
    assert_eq!(
        features.get_child("sasl-channel-binding", SASL_CB),
        Some(&parse_stanza(&format!(
            "<sasl-channel-binding xmlns='{SASL_CB}'>\
             <channel-binding type='tls-server-end-point'/></sasl-channel-binding>"
        )))
    );
}

#[test]
fn plus_comes_with_the_data_passed_after_starttls() {
    let mut server = server();
    let c = server.connect_with(ConnectionInfo::starttls());
    server.open_stream(c);
    let got = server.take(c);
    assert_eq!(mechanisms(&got[0], "mechanisms", SASL), PLAIN_MECHS);
    assert!(got[0].get_child("sasl-channel-binding", SASL_CB).is_none());
    server.send(c, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    server.take(c);
    server.tls_established_with(c, TlsInfo::default().with_tls_exporter(EXPORTER));
    server.open_stream(c);
    let got = server.take(c);
    assert_eq!(mechanisms(&got[0], "mechanisms", SASL), ALL_MECHS);
    assert!(got[0].get_child("sasl-channel-binding", SASL_CB).is_some());
}

#[test]
fn plus_is_not_offered_or_accepted_without_tls_data() {
    let mut server = server();
    // TLS without binding data.
    let (c, features) = direct_tls(&mut server, TlsInfo::default());
    assert_eq!(mechanisms(&features, "mechanisms", SASL), PLAIN_MECHS);
    assert!(
        features
            .get_child("sasl-channel-binding", SASL_CB)
            .is_none()
    );
    server.send(
        c,
        &auth("SCRAM-SHA-256-PLUS", "p=tls-exporter,,n=alice,r=abc"),
    );
    server.expect(
        c,
        &[&format!(
            "<failure xmlns='{SASL}'><invalid-mechanism/></failure>"
        )],
    );

    // Binding data given after the stream header is ignored: the features
    // went out without -PLUS, so `y` stays acceptable.
    let c = server.connect_with(ConnectionInfo::direct_tls());
    server.open_stream(c);
    server.take(c);
    server.tls_established_with(c, both());
    server.send(c, &auth("SCRAM-SHA-256", "y,,n=alice,r=abc"));
    let got = server.take(c);
    assert!(got.len() == 1 && got[0].is("challenge", SASL), "{got:?}");

    // Binding data on a connection that is not encrypted is ignored.
    let c = server.connect_with(ConnectionInfo::plain());
    server.tls_established_with(c, both());
    server.open_stream(c);
    let got = server.take(c);
    assert_eq!(mechanisms(&got[0], "mechanisms", SASL), PLAIN_MECHS);
    assert!(got[0].get_child("sasl-channel-binding", SASL_CB).is_none());
}

fn auth(mechanism: &str, client_first: &str) -> String {
    format!(
        "<auth xmlns='{SASL}' mechanism='{mechanism}'>{}</auth>",
        BASE64.encode(client_first)
    )
}

fn authenticate(mechanism: &str, client_first: &str) -> String {
    format!(
        "<authenticate xmlns='{SASL2}' mechanism='{mechanism}'><initial-response>{}\
         </initial-response></authenticate>",
        BASE64.encode(client_first)
    )
}

/// How a transcript ends.
enum Outcome {
    Success,
    /// `<failure/>` with `not-authorized` after the challenge.
    RefusedFinal,
}

/// Runs a SCRAM exchange on `c`: `header` is the gs2 header, `cbind` what
/// the client echoes in `c=` (after the header).
fn exchange(
    server: &mut TestServer,
    c: SessionId,
    sasl2: bool,
    mechanism: &str,
    header: &str,
    cbind_data: &[u8],
    outcome: Outcome,
) {
    let ns = if sasl2 { SASL2 } else { SASL };
    let first_bare = "n=alice,r=0123456789abcdef";
    let first = format!("{header}{first_bare}");
    server.send(
        c,
        &if sasl2 {
            authenticate(mechanism, &first)
        } else {
            auth(mechanism, &first)
        },
    );
    let got = server.take(c);
    assert!(got.len() == 1 && got[0].is("challenge", ns), "{got:?}");
    let server_first =
        String::from_utf8(BASE64.decode(got[0].text()).expect("base64")).expect("utf-8");
    let mut cbind = header.as_bytes().to_vec();
    cbind.extend_from_slice(cbind_data);
    let sha1 = mechanism.starts_with("SCRAM-SHA-1");
    let (final_message, server_final) =
        client_final(sha1, "pass", first_bare, &server_first, &cbind);
    server.send(
        c,
        &format!(
            "<response xmlns='{ns}'>{}</response>",
            BASE64.encode(final_message)
        ),
    );
    let additional = BASE64.encode(server_final);
    match outcome {
        Outcome::Success if sasl2 => {
            let got = server.take(c);
            assert_eq!(got.len(), 1, "{got:?}");
            assert!(got[0].is("success", SASL2), "{got:?}");
            assert_eq!(
                got[0]
                    .get_child("additional-data", SASL2)
                    .map(Element::text),
                Some(additional)
            );
            assert_eq!(
                server.manager.session(c).map(|s| s.kind()),
                Some(SessionKind::Authenticated)
            );
        }
        Outcome::Success => {
            server.expect(
                c,
                &[&format!("<success xmlns='{SASL}'>{additional}</success>")],
            );
        }
        Outcome::RefusedFinal => server.expect(c, &[&failure(sasl2, NOT_AUTHORIZED_TEXT)]),
    }
}

fn failure(sasl2: bool, text: &str) -> String {
    if sasl2 {
        format!(
            "<failure xmlns='{SASL2}'><not-authorized xmlns='{SASL}'/><text>{text}</text></failure>"
        )
    } else {
        format!("<failure xmlns='{SASL}'><not-authorized/><text>{text}</text></failure>")
    }
}

#[test]
fn each_binding_type_logs_in_on_both_paths() {
    for sasl2 in [false, true] {
        for (mechanism, header, data) in [
            ("SCRAM-SHA-256-PLUS", "p=tls-exporter,,", &EXPORTER),
            ("SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,", &END_POINT),
            ("SCRAM-SHA-1-PLUS", "p=tls-exporter,,", &EXPORTER),
            ("SCRAM-SHA-1-PLUS", "p=tls-server-end-point,,", &END_POINT),
        ] {
            let mut server = server();
            let (c, _) = direct_tls(&mut server, both());
            exchange(
                &mut server,
                c,
                sasl2,
                mechanism,
                header,
                data,
                Outcome::Success,
            );
        }
    }
}

#[test]
fn wrong_binding_data_is_not_authorized() {
    for sasl2 in [false, true] {
        for (header, data) in [
            // The other type's data.
            ("p=tls-exporter,,", &END_POINT[..]),
            ("p=tls-server-end-point,,", &EXPORTER[..]),
            // No data, as without binding.
            ("p=tls-exporter,,", &[][..]),
        ] {
            let mut server = server();
            let (c, _) = direct_tls(&mut server, both());
            exchange(
                &mut server,
                c,
                sasl2,
                "SCRAM-SHA-256-PLUS",
                header,
                data,
                Outcome::RefusedFinal,
            );
            assert_eq!(
                server.manager.session(c).map(|s| s.kind()),
                Some(SessionKind::Unauthenticated)
            );
        }
    }
}

/// Sends a client-first that is refused at once with `text`.
#[track_caller]
fn refused_first(info: TlsInfo, sasl2: bool, mechanism: &str, first: &str, text: &str) {
    let mut server = server();
    let (c, _) = direct_tls(&mut server, info);
    server.send(
        c,
        &if sasl2 {
            authenticate(mechanism, first)
        } else {
            auth(mechanism, first)
        },
    );
    server.expect(c, &[&failure(sasl2, text)]);
    assert_eq!(
        server.manager.session(c).map(|s| s.kind()),
        Some(SessionKind::Unauthenticated)
    );
}

#[test]
fn y_with_binding_available_is_a_downgrade() {
    for sasl2 in [false, true] {
        for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-1"] {
            refused_first(
                both(),
                sasl2,
                mechanism,
                "y,,n=alice,r=abc",
                "server-does-support-channel-binding",
            );
        }
        // Without binding data the server offers no -PLUS: `y` is fine.
        let mut server = server();
        let (c, _) = direct_tls(&mut server, TlsInfo::default());
        exchange(
            &mut server,
            c,
            sasl2,
            "SCRAM-SHA-256",
            "y,,",
            &[],
            Outcome::Success,
        );
    }
}

#[test]
fn binding_with_a_mechanism_without_plus_is_refused() {
    for sasl2 in [false, true] {
        for info in [both(), TlsInfo::default()] {
            refused_first(
                info,
                sasl2,
                "SCRAM-SHA-256",
                "p=tls-exporter,,n=alice,r=abc",
                "Channel binding requires a -PLUS mechanism",
            );
        }
    }
}

#[test]
fn unsupported_binding_types_are_refused() {
    for sasl2 in [false, true] {
        refused_first(
            both(),
            sasl2,
            "SCRAM-SHA-256-PLUS",
            "p=tls-unique,,n=alice,r=abc",
            "channel-binding-not-supported",
        );
        refused_first(
            TlsInfo::default().with_tls_exporter(EXPORTER),
            sasl2,
            "SCRAM-SHA-1-PLUS",
            "p=tls-server-end-point,,n=alice,r=abc",
            "channel-binding-not-supported",
        );
        refused_first(
            both(),
            sasl2,
            "SCRAM-SHA-256-PLUS",
            "n,,n=alice,r=abc",
            "A -PLUS mechanism requires channel binding",
        );
    }
}
