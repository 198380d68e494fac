//! FAST (XEP-0484) through the public API: the advertisement, a token
//! issued on request, `HT-SHA-256-NONE` logins, rotation (the previous
//! token stays valid until the new one is used, then never again), expiry,
//! invalidation (logout, password change), the per-account bound and bad
//! inputs. Every test states exactly what the client receives.

use std::time::Duration;

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::{opened, server_with_users};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use xmpp_session::testkit::{TestServer, account, parse_stanza};
use xmpp_session::{Config, ConnectionInfo, Element, SessionId, SessionKind, TlsInfo};

const SASL2: &str = "urn:xmpp:sasl:2";
const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const FAST: &str = "urn:xmpp:fast:0";
const UA: &str = "0c1fd0a4-4a5f-4e8b-9d5a-3f1c2b7e8a90";
const UA2: &str = "7b7c0f52-2b8e-4d1e-9a4f-6c3d2e1f0a9b";
const DAY: u64 = 24 * 3600;
/// The test server's wall clock at start plus the default lifetime (14 days).
const EXPIRY: &str = "2026-12-10T08:00:00Z";

fn config() -> xmpp_session::ConfigBuilder {
    TestServer::config()
        .sasl2(true)
        .fast(Duration::from_secs(14 * DAY), 3)
}

fn server_with(config: Config) -> TestServer {
    server_with_users(config, &["alice"])
}

fn server() -> TestServer {
    server_with(config().build().expect("valid config"))
}

fn user_agent(id: &str) -> String {
    format!("<user-agent id='{id}'><software>Test</software></user-agent>")
}

fn hmac(key: &[u8], label: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(label);
    mac.finalize().into_bytes().to_vec()
}

/// A password login of alice from `ua` asking for a token; returns it.
fn password_login_with_token(server: &mut TestServer, ua: &str) -> Vec<u8> {
    let c = opened(server);
    let got = [password_login_requesting(server, c, ua, "HT-SHA-256-NONE")];
    let token = token_in(&got[0]).expect("a token");
    assert_eq!(
        got[0],
        parse_stanza(&format!(
            "<success xmlns='{SASL2}'><authorization-identifier>alice@localhost\
             </authorization-identifier><token xmlns='{FAST}' expiry='{EXPIRY}' token='{}'/>\
             </success>",
            String::from_utf8_lossy(&token)
        ))
    );
    token
}

/// The token of `<success/>`: its text is the HMAC key.
fn token_in(success: &Element) -> Option<Vec<u8>> {
    let token = success.get_child("token", FAST)?.attr("token")?;
    assert_eq!(token.len(), 44, "32 random bytes in base64: {token}");
    Some(token.as_bytes().to_vec())
}

/// `<authenticate mechanism='HT-SHA-256-NONE'>` with the proof for `token`.
fn fast_authenticate(token: &[u8], ua: Option<&str>, fast: &str) -> String {
    let mut response = b"alice\0".to_vec();
    response.extend(hmac(token, b"Initiator"));
    format!(
        "<authenticate xmlns='{SASL2}' mechanism='HT-SHA-256-NONE'><initial-response>{}\
         </initial-response>{}{fast}</authenticate>",
        BASE64.encode(response),
        ua.map(user_agent).unwrap_or_default()
    )
}

/// A FAST login with `token`: the success (checked exactly) and the
/// rotated token it carries.
fn fast_login(server: &mut TestServer, token: &[u8], expiry: &str) -> (SessionId, Vec<u8>) {
    let c = opened(server);
    server.send(
        c,
        &fast_authenticate(token, Some(UA), &format!("<fast xmlns='{FAST}'/>")),
    );
    let next = expect_fast_success(server, c, token, &hmac(token, b"Responder"), expiry);
    (c, next)
}

/// `c` receives exactly a FAST `<success/>` with `responder` as its
/// additional data and a rotated token expiring at `expiry`; returns it.
#[track_caller]
fn expect_fast_success(
    server: &mut TestServer,
    c: SessionId,
    used: &[u8],
    responder: &[u8],
    expiry: &str,
) -> Vec<u8> {
    let got = server.take(c);
    assert_eq!(got.len(), 1, "{got:?}");
    let next = token_in(&got[0]).expect("a rotated token");
    assert_ne!(next, used);
    assert_eq!(
        got[0],
        parse_stanza(&format!(
            "<success xmlns='{SASL2}'><additional-data>{}</additional-data>\
             <authorization-identifier>alice@localhost</authorization-identifier>\
             <token xmlns='{FAST}' expiry='{expiry}' token='{}'/></success>",
            BASE64.encode(responder),
            String::from_utf8_lossy(&next)
        ))
    );
    assert_eq!(
        server.manager.session(c).map(|s| s.kind()),
        Some(SessionKind::Authenticated)
    );
    next
}

/// A FAST login of `ua` with `token` is refused with `not-authorized`.
#[track_caller]
fn refused(server: &mut TestServer, token: &[u8], ua: &str) {
    let c = opened(server);
    server.send(
        c,
        &fast_authenticate(token, Some(ua), &format!("<fast xmlns='{FAST}'/>")),
    );
    expect_failure(server, c, "not-authorized");
}

/// The client receives exactly this SASL2 failure.
#[track_caller]
fn expect_failure(server: &mut TestServer, c: SessionId, condition: &str) {
    assert_eq!(
        server.take_raw(c),
        format!("<failure xmlns='{SASL2}'><{condition} xmlns='{SASL}'/></failure>")
    );
    assert_eq!(
        server.manager.session(c).map(|s| s.kind()),
        Some(SessionKind::Unauthenticated)
    );
}

#[test]
fn fast_is_offered_inline_only_when_configured() {
    let mut server = server();
    let c = server.connect();
    server.open_stream(c);
    let raw = server.take_raw(c);
    assert!(
        raw.contains(&format!(
            "<sm xmlns='urn:xmpp:sm:3'/><fast xmlns='{FAST}'><mechanism>HT-SHA-256-NONE\
             </mechanism></fast></inline></authentication>"
        )),
        "{raw}"
    );
    // Never in the mechanism lists.
    assert_eq!(raw.matches("HT-SHA-256-NONE").count(), 1, "{raw}");
    let mut plain = server_with(
        TestServer::config()
            .sasl2(true)
            .build()
            .expect("valid config"),
    );
    let c = plain.connect();
    plain.open_stream(c);
    assert!(!plain.take_raw(c).contains(FAST));
}

#[test]
fn issue_use_and_rotate() {
    let mut server = server();
    let first = password_login_with_token(&mut server, UA);
    let (_, second) = fast_login(&mut server, &first, EXPIRY);
    // Until the new token is used, the previous one still works.
    let (_, third) = fast_login(&mut server, &first, EXPIRY);
    // Using the newest token retires the one before it for good.
    let (_, _fourth) = fast_login(&mut server, &third, EXPIRY);
    for stale in [&first, &second] {
        refused(&mut server, stale, UA);
    }
}

#[test]
fn tokens_expire() {
    let mut server = server();
    let token = password_login_with_token(&mut server, UA);
    server.advance(Duration::from_secs(14 * DAY - 1));
    let (_, next) = fast_login(&mut server, &token, "2026-12-24T07:59:59Z");
    server.advance(Duration::from_secs(14 * DAY));
    refused(&mut server, &next, UA);
}

#[test]
fn tokens_are_bound_to_the_user_agent() {
    let mut server = server();
    let token = password_login_with_token(&mut server, UA);
    refused(&mut server, &token, UA2);
}

#[test]
fn invalidate_logs_out_the_token() {
    let mut server = server();
    let token = password_login_with_token(&mut server, UA);
    let c = opened(&mut server);
    server.send(
        c,
        &fast_authenticate(
            &token,
            Some(UA),
            &format!("<fast xmlns='{FAST}' invalidate='true'/>"),
        ),
    );
    server.expect(
        c,
        &[&format!(
            "<success xmlns='{SASL2}'><additional-data>{}</additional-data>\
             <authorization-identifier>alice@localhost</authorization-identifier></success>",
            BASE64.encode(hmac(&token, b"Responder"))
        )],
    );
    assert_eq!(server.store.fast_clients(&account("alice")), 0);
    refused(&mut server, &token, UA);
}

#[test]
fn a_password_change_invalidates_every_token() {
    let mut server = server();
    let token = password_login_with_token(&mut server, UA);
    server.add_user("alice", "new password");
    refused(&mut server, &token, UA);
}

#[test]
fn clients_per_account_are_bounded() {
    let mut server = server();
    let uas = [
        UA,
        UA2,
        "11111111-2222-4333-8444-555555555555",
        "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
    ];
    let tokens: Vec<Vec<u8>> = uas
        .iter()
        .map(|ua| password_login_with_token(&mut server, ua))
        .collect();
    assert_eq!(server.store.fast_clients(&account("alice")), 3);
    // The first client's token was forgotten.
    refused(&mut server, &tokens[0], UA);
}

#[test]
fn bad_fast_requests() {
    let mut server = server();
    let token = password_login_with_token(&mut server, UA);
    // Without <fast/>: the mechanism is not usable.
    let c = opened(&mut server);
    server.send(c, &fast_authenticate(&token, Some(UA), ""));
    expect_failure(&mut server, c, "invalid-mechanism");
    // Without a user-agent id there is no client to look up.
    server.send(
        c,
        &fast_authenticate(&token, None, &format!("<fast xmlns='{FAST}'/>")),
    );
    expect_failure(&mut server, c, "malformed-request");
    // A third failure closes the stream, as for any mechanism.
    server.send(
        c,
        &format!(
            "<authenticate xmlns='{SASL2}' mechanism='HT-SHA-256-NONE'><initial-response>\
             YWxpY2U=</initial-response>{}<fast xmlns='{FAST}'/></authenticate>",
            user_agent(UA)
        ),
    );
    let raw = server.take_raw(c);
    assert!(
        raw.starts_with(&format!(
            "<failure xmlns='{SASL2}'><malformed-request xmlns='{SASL}'/></failure><stream:error>"
        )),
        "{raw}"
    );
    assert!(server.is_closed(c));
    // Not configured: not a mechanism at all.
    let mut off = server_with(TestServer::config().sasl2(true).build().expect("valid"));
    let c = opened(&mut off);
    off.send(
        c,
        &fast_authenticate(&token, Some(UA), &format!("<fast xmlns='{FAST}'/>")),
    );
    expect_failure(&mut off, c, "invalid-mechanism");
}

// ---- Channel binding: HT-SHA-256-EXPR and HT-SHA-256-ENDP ----

const EXPORTER: &[u8] = b"0123456789abcdef0123456789abcdef";
const END_POINT: &[u8] = b"end-point hash of the certificate";

/// A direct-TLS connection with this binding data (none: a plain one),
/// its stream open; returns the `<fast/>` mechanisms it was offered.
fn connection(server: &mut TestServer, info: Option<TlsInfo>) -> (SessionId, Vec<String>) {
    let c = match info {
        Some(info) => {
            let c = server.connect_with(ConnectionInfo::direct_tls());
            server.tls_established_with(c, info);
            c
        }
        None => server.connect(),
    };
    server.open_stream(c);
    let got = server.take(c);
    server.take_raw(c);
    assert_eq!(got.len(), 1, "{got:?}");
    let offered = got[0]
        .get_child("authentication", SASL2)
        .and_then(|a| a.get_child("inline", SASL2))
        .and_then(|i| i.get_child("fast", FAST))
        .map(|f| f.children().map(Element::text).collect())
        .unwrap_or_default();
    (c, offered)
}

fn both() -> TlsInfo {
    TlsInfo::default()
        .with_tls_exporter(EXPORTER)
        .with_tls_server_end_point(END_POINT)
}

/// `HMAC-SHA-256(token, label || cb)`.
fn bound_hmac(token: &[u8], label: &[u8], cb: &[u8]) -> Vec<u8> {
    hmac(token, &[label, cb].concat())
}

/// `<authenticate mechanism=mech>` with the proof for `token` over `cb`.
fn bound_authenticate(mech: &str, token: &[u8], cb: &[u8]) -> String {
    let mut response = b"alice\0".to_vec();
    response.extend(bound_hmac(token, b"Initiator", cb));
    format!(
        "<authenticate xmlns='{SASL2}' mechanism='{mech}'><initial-response>{}\
         </initial-response>{}<fast xmlns='{FAST}'/></authenticate>",
        BASE64.encode(response),
        user_agent(UA)
    )
}

/// A password login on `c` from `ua` asking for a token for `mech`;
/// returns the success.
fn password_login_requesting(
    server: &mut TestServer,
    c: SessionId,
    ua: &str,
    mech: &str,
) -> Element {
    let response = BASE64.encode("\0alice\0pass");
    server.send(
        c,
        &format!(
            "<authenticate xmlns='{SASL2}' mechanism='PLAIN'><initial-response>{response}\
             </initial-response>{}<request-token xmlns='{FAST}' mechanism='{mech}'/>\
             </authenticate>",
            user_agent(ua)
        ),
    );
    let mut got = server.take(c);
    assert_eq!(got.len(), 1, "{got:?}");
    got.remove(0)
}

/// A token for `mech` from a password login over TLS with both bindings.
fn bound_token(server: &mut TestServer, mech: &str) -> Vec<u8> {
    let (c, _) = connection(server, Some(both()));
    let success = password_login_requesting(server, c, UA, mech);
    token_in(&success).expect("a token")
}

/// A `mech` login with `token` over `cb` on a TLS connection with both
/// bindings succeeds with `HMAC(token, "Responder" || cb)`; returns the
/// rotated token.
fn bound_login(server: &mut TestServer, mech: &str, token: &[u8], cb: &[u8]) -> Vec<u8> {
    let (c, _) = connection(server, Some(both()));
    server.send(c, &bound_authenticate(mech, token, cb));
    let responder = bound_hmac(token, b"Responder", cb);
    expect_fast_success(server, c, token, &responder, EXPIRY)
}

/// A `mech` login with `token` over `cb` on a TLS connection with both
/// bindings fails with `not-authorized`.
#[track_caller]
fn bound_refused(server: &mut TestServer, mech: &str, token: &[u8], cb: &[u8]) {
    let (c, _) = connection(server, Some(both()));
    server.send(c, &bound_authenticate(mech, token, cb));
    expect_failure(server, c, "not-authorized");
}

#[test]
fn binding_mechanisms_are_offered_only_with_their_tls_data() {
    let mut server = server();
    let none = ["HT-SHA-256-NONE"];
    assert_eq!(connection(&mut server, None).1, none);
    assert_eq!(
        connection(&mut server, Some(TlsInfo::default())).1,
        none,
        "TLS without binding data"
    );
    assert_eq!(
        connection(&mut server, Some(both())).1,
        ["HT-SHA-256-EXPR", "HT-SHA-256-ENDP", "HT-SHA-256-NONE"]
    );
    let endp_only = TlsInfo::default().with_tls_server_end_point(END_POINT);
    assert_eq!(
        connection(&mut server, Some(endp_only)).1,
        ["HT-SHA-256-ENDP", "HT-SHA-256-NONE"]
    );
    let expr_only = TlsInfo::default().with_tls_exporter(EXPORTER);
    let (c, offered) = connection(&mut server, Some(expr_only));
    assert_eq!(offered, ["HT-SHA-256-EXPR", "HT-SHA-256-NONE"]);

    // A token for a mechanism not offered here is not issued (the login
    // itself succeeds), and -UNIQ never is.
    for mech in ["HT-SHA-256-ENDP", "HT-SHA-256-UNIQ"] {
        let c = if mech == "HT-SHA-256-ENDP" {
            c
        } else {
            connection(&mut server, Some(both())).0
        };
        assert_eq!(
            password_login_requesting(&mut server, c, UA, mech),
            parse_stanza(&format!(
                "<success xmlns='{SASL2}'><authorization-identifier>alice@localhost\
                 </authorization-identifier></success>"
            ))
        );
    }
    // Authenticating with one is refused as an unknown mechanism.
    let (c, _) = connection(&mut server, None);
    server.send(c, &bound_authenticate("HT-SHA-256-EXPR", b"token", b""));
    expect_failure(&mut server, c, "invalid-mechanism");
    let (c, _) = connection(
        &mut server,
        Some(TlsInfo::default().with_tls_exporter(EXPORTER)),
    );
    server.send(c, &bound_authenticate("HT-SHA-256-ENDP", b"token", b""));
    expect_failure(&mut server, c, "invalid-mechanism");
}

#[test]
fn issue_use_and_rotate_with_each_binding() {
    let mut server = server();
    for (mech, cb) in [
        ("HT-SHA-256-EXPR", EXPORTER),
        ("HT-SHA-256-ENDP", END_POINT),
    ] {
        let first = bound_token(&mut server, mech);
        let second = bound_login(&mut server, mech, &first, cb);
        // Rotation as for -NONE: the new token is for the same mechanism,
        // and once it is used the first one is gone.
        let third = bound_login(&mut server, mech, &second, cb);
        bound_refused(&mut server, mech, &first, cb);
        bound_login(&mut server, mech, &third, cb);
    }
}

#[test]
fn wrong_binding_data_is_not_authorized() {
    let mut server = server();
    for (mech, cb, other) in [
        ("HT-SHA-256-EXPR", EXPORTER, END_POINT),
        ("HT-SHA-256-ENDP", END_POINT, EXPORTER),
    ] {
        let token = bound_token(&mut server, mech);
        bound_refused(&mut server, mech, &token, other);
        bound_refused(&mut server, mech, &token, b"");
        // The server hashes its own connection's data: a client on another
        // TLS connection (a different exporter / certificate) is refused.
        let moved = TlsInfo::default()
            .with_tls_exporter(b"another connection's exporter 32")
            .with_tls_server_end_point(b"another certificate's hash");
        let (c, _) = connection(&mut server, Some(moved));
        server.send(c, &bound_authenticate(mech, &token, cb));
        expect_failure(&mut server, c, "not-authorized");
        // Failed attempts leave the token usable.
        bound_login(&mut server, mech, &token, cb);
    }
}

#[test]
fn tokens_are_bound_to_the_mechanism_they_were_issued_for() {
    let mut server = server();
    let endp = bound_token(&mut server, "HT-SHA-256-ENDP");
    // Right token, right proof for the mechanism tried, other mechanism.
    bound_refused(&mut server, "HT-SHA-256-NONE", &endp, b"");
    bound_refused(&mut server, "HT-SHA-256-EXPR", &endp, EXPORTER);
    let none = bound_token(&mut server, "HT-SHA-256-NONE");
    bound_refused(&mut server, "HT-SHA-256-ENDP", &none, END_POINT);
    bound_refused(&mut server, "HT-SHA-256-EXPR", &none, EXPORTER);
    // The -NONE token (the client's newest) still works for -NONE.
    bound_login(&mut server, "HT-SHA-256-NONE", &none, b"");
}
