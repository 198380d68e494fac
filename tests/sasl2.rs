//! SASL2 (XEP-0388) with Bind2 (XEP-0386) and inline stream management
//! (XEP-0198) through the public API: the advertised features, PLAIN and
//! SCRAM inside `<authenticate/>`, Bind2's stable resource, inline SM
//! enable and resume, and bad inputs. Every test states exactly what each
//! client receives.

mod common;
mod scram_client;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::{opened, server_with_users};
use sha2::{Digest, Sha256};
use xmpp_session::testkit::TestServer;
use xmpp_session::{Config, Event, Request, SessionId, SessionKind};

const SASL2: &str = "urn:xmpp:sasl:2";
const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const BIND2: &str = "urn:xmpp:bind:0";
const SM: &str = "urn:xmpp:sm:3";
const CARBONS: &str = "urn:xmpp:carbons:2";
const CSI: &str = "urn:xmpp:csi:0";
const UA: &str = "d4565fa7-4d72-4749-b3d3-740edbf87770";
const UNSUPPORTED: &str = "<stream:error><unsupported-stanza-type \
     xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>";

fn config() -> xmpp_session::ConfigBuilder {
    TestServer::config().sasl2(true)
}

fn server_with(config: Config) -> TestServer {
    server_with_users(config, &["alice", "bob"])
}

fn server() -> TestServer {
    server_with(config().build().expect("valid config"))
}

/// A new connection of alice sending `<authenticate mechanism='PLAIN'>`
/// with these inline children.
fn alice_with(server: &mut TestServer, inline: &str) -> SessionId {
    let c = opened(server);
    server.send(c, &plain("alice", "pass", inline));
    c
}

/// A connection that has started a SASL2 SCRAM-SHA-256 exchange (its one
/// challenge drained).
fn scram_started(server: &mut TestServer) -> SessionId {
    let c = opened(server);
    server.send(
        c,
        &format!(
            "<authenticate xmlns='{SASL2}' mechanism='SCRAM-SHA-256'><initial-response>{}\
             </initial-response></authenticate>",
            BASE64.encode("n,,n=alice,r=abc")
        ),
    );
    let got = server.take(c);
    assert!(got.len() == 1 && got[0].is("challenge", SASL2), "{got:?}");
    server.take_raw(c);
    c
}

/// Sends `xml` and asserts that the stream closes with
/// `unsupported-stanza-type`.
#[track_caller]
fn expect_unsupported(server: &mut TestServer, c: SessionId, xml: &str) {
    server.send(c, xml);
    assert_eq!(server.take_raw(c), UNSUPPORTED);
    assert!(server.is_closed(c));
}

/// `<authenticate mechanism='PLAIN'>` for `user` with these inline children.
fn plain(user: &str, password: &str, inline: &str) -> String {
    let response = BASE64.encode(format!("\0{user}\0{password}"));
    format!(
        "<authenticate xmlns='{SASL2}' mechanism='PLAIN'>\
         <initial-response>{response}</initial-response>{inline}</authenticate>"
    )
}

fn user_agent(id: &str) -> String {
    format!("<user-agent id='{id}'><software>Test</software><device>Phone</device></user-agent>")
}

/// The Bind2 resource for tag `tag`: the tag, `.` and the first 4 bytes of
/// SHA-256 over the user-agent id, a zero byte and the account, in hex.
fn resource(tag: &str, ua: &str, account: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(ua.as_bytes());
    hash.update([0u8]);
    hash.update(account.as_bytes());
    let digest = hash.finalize();
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{tag}.{hex}")
}

/// alice's `<success/>` when nothing was bound inline.
fn success_without_bind() -> String {
    format!(
        "<success xmlns='{SASL2}'><authorization-identifier>alice@localhost\
         </authorization-identifier></success>"
    )
}

fn failure(condition: &str, text: Option<&str>) -> String {
    let text = text
        .map(|t| format!("<text>{t}</text>"))
        .unwrap_or_default();
    format!("<failure xmlns='{SASL2}'><{condition} xmlns='{SASL}'/>{text}</failure>")
}

/// The `id` of the `<enabled/>` inside the `<bound/>` of `success`.
fn token_of(success: &xmpp_session::Element) -> String {
    success
        .get_child("bound", BIND2)
        .and_then(|b| b.get_child("enabled", SM))
        .and_then(|e| e.attr("id"))
        .expect("an <enabled id/>")
        .to_owned()
}

/// alice logs in with SASL2 + Bind2 (tag `phone`) + SM enable with
/// resumption. Returns the session, its full JID and the SM token.
fn phone(server: &mut TestServer) -> (SessionId, String, String) {
    let c = opened(server);
    let inline = format!(
        "{}<bind xmlns='{BIND2}'><tag>phone</tag><enable xmlns='{SM}' resume='true'/></bind>",
        user_agent(UA)
    );
    server.send(c, &plain("alice", "pass", &inline));
    let got = server.take(c);
    server.take_raw(c);
    assert_eq!(got.len(), 1, "{got:?}");
    let token = token_of(&got[0]);
    let full = format!(
        "alice@localhost/{}",
        resource("phone", UA, "alice@localhost")
    );
    assert_eq!(
        got[0],
        xmpp_session::testkit::parse_stanza(&format!(
            "<success xmlns='{SASL2}'><authorization-identifier>{full}</authorization-identifier>\
             <bound xmlns='{BIND2}'><enabled xmlns='{SM}' id='{token}' resume='true' max='300'/>\
             </bound></success>"
        ))
    );
    server.take_events();
    (c, full, token)
}

// ------------------------------------------------------------ features

#[test]
fn sasl2_is_advertised_beside_legacy_mechanisms() {
    let mut server = server();
    let c = server.connect();
    server.open_stream(c);
    let raw = server.take_raw(c);
    let features = raw
        .split_once("<stream:features>")
        .map(|(_, f)| f)
        .expect("features");
    assert_eq!(
        features,
        format!(
            "<mechanisms xmlns='{SASL}'><mechanism>SCRAM-SHA-256</mechanism>\
             <mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms>\
             <authentication xmlns='{SASL2}'><mechanism>SCRAM-SHA-256</mechanism>\
             <mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism>\
             <inline><bind xmlns='{BIND2}'><inline><feature var='{SM}'/>\
             <feature var='{CARBONS}'/><feature var='{CSI}'/></inline></bind>\
             <sm xmlns='{SM}'/></inline></authentication>\
             <limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>10000</max-bytes></limits>\
             </stream:features>"
        )
    );
}

#[test]
fn without_stream_management_bind2_offers_carbons_and_csi_only() {
    let mut server = server_with(
        config()
            .stream_management(false)
            .build()
            .expect("valid config"),
    );
    let c = server.connect();
    server.open_stream(c);
    let raw = server.take_raw(c);
    assert!(
        raw.contains(&format!(
            "<inline><bind xmlns='{BIND2}'><inline><feature var='{CARBONS}'/>\
             <feature var='{CSI}'/></inline></bind></inline>"
        )),
        "{raw}"
    );
}

#[test]
fn off_by_default_and_then_not_accepted() {
    let mut server = server_with(TestServer::config().build().expect("valid config"));
    let c = server.connect();
    server.open_stream(c);
    assert!(!server.take_raw(c).contains(SASL2));
    expect_unsupported(&mut server, c, &plain("alice", "pass", ""));
}

// ------------------------------------------------------------ logins

#[test]
fn plain_login_with_bind2_and_sm_enable_in_one_round_trip() {
    let mut server = server();
    let (c, full, token) = phone(&mut server);
    assert_eq!(token.len(), 24);
    let s = server.manager.session(c).expect("session");
    assert_eq!(s.kind(), SessionKind::Bound);
    assert_eq!(s.full_jid().map(|j| j.to_string()), Some(full.clone()));
    assert!(s.sm_enabled() && s.resumable());
    // No stream restart: the next stanza is served on the same stream and
    // counted by stream management.
    server.send(
        c,
        "<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    server.send(c, "<r xmlns='urn:xmpp:sm:3'/>");
    server.expect(
        c,
        &[
            &format!("<iq type='result' id='p1' to='{full}'/>"),
            "<a xmlns='urn:xmpp:sm:3' h='1'/>",
        ],
    );
}

#[test]
fn bind2_applies_carbons_csi_and_sm_inline() {
    let mut server = server();
    let c = opened(&mut server);
    let inline = format!(
        "{}<bind xmlns='{BIND2}'><tag>phone</tag><enable xmlns='{CARBONS}'/>\
         <inactive xmlns='{CSI}'/><enable xmlns='{SM}'/></bind>",
        user_agent(UA)
    );
    server.send(c, &plain("alice", "pass", &inline));
    let full = format!(
        "alice@localhost/{}",
        resource("phone", UA, "alice@localhost")
    );
    // Carbons and CSI answer nothing inside <bound/>; SM answers <enabled/>.
    server.expect(
        c,
        &[&format!(
            "<success xmlns='{SASL2}'><authorization-identifier>{full}</authorization-identifier>\
             <bound xmlns='{BIND2}'><enabled xmlns='{SM}'/></bound></success>"
        )],
    );
    let desk = server.login("alice", "desk");
    let bob = server.login("bob", "b");
    server.take(desk);
    server.take(bob);
    // Inactive: a chat state for the phone is held.
    server.send(
        bob,
        &format!(
            "<message type='chat' to='{full}'><composing \
             xmlns='http://jabber.org/protocol/chatstates'/></message>"
        ),
    );
    assert!(server.take(c).is_empty());
    // Carbons: what the sibling sends comes back as a sent copy, and being
    // important (a body) it flushes the held chat state first.
    server.send(
        desk,
        "<message type='chat' to='bob@localhost/b'><body>hi</body></message>",
    );
    server.expect(
        c,
        &[
            &format!(
                "<message type='chat' to='{full}' from='bob@localhost/b'><composing \
                 xmlns='http://jabber.org/protocol/chatstates'/></message>"
            ),
            &format!(
                "<message from='alice@localhost' to='{full}' type='chat'>\
                 <sent xmlns='{CARBONS}'><forwarded xmlns='urn:xmpp:forward:0'>\
                 <message xmlns='jabber:client' type='chat' to='bob@localhost/b' \
                 from='alice@localhost/desk'><body>hi</body></message></forwarded></sent></message>"
            ),
        ],
    );
    // Both carbons copies and held stanzas count for stream management.
    server.send(c, "<r xmlns='urn:xmpp:sm:3'/>");
    server.expect(c, &["<a xmlns='urn:xmpp:sm:3' h='0'/>"]);
    server.send(c, "<a xmlns='urn:xmpp:sm:3' h='2'/>");
    assert!(!server.is_closed(c));
}

#[test]
fn events_of_a_sasl2_login() {
    let mut server = server();
    let c = alice_with(
        &mut server,
        &format!(
            "{}<bind xmlns='{BIND2}'><tag>web</tag></bind>",
            user_agent(UA)
        ),
    );
    let full = format!("alice@localhost/{}", resource("web", UA, "alice@localhost"));
    server.expect(
        c,
        &[&format!(
            "<success xmlns='{SASL2}'><authorization-identifier>{full}</authorization-identifier>\
             <bound xmlns='{BIND2}'/></success>"
        )],
    );
    let events = server.take_events();
    assert!(
        matches!(
            &events[..],
            [Event::Authenticated { session, username }, Event::Bound { session: s2, jid }]
                if *session == c && username == "alice" && *s2 == c && jid.to_string() == full
        ),
        "{events:?}"
    );
}

#[test]
fn the_bind2_resource_is_stable_per_client_and_replaces_the_old_session() {
    let mut server = server();
    let (old, full, _) = phone(&mut server);
    let (new, again, _) = phone(&mut server);
    assert_eq!(full, again);
    assert_eq!(
        server.take_raw(old),
        "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Replaced by new connection</text>\
         </stream:error></stream:stream>"
    );
    assert!(server.is_closed(old));
    assert_eq!(
        server
            .manager
            .session(new)
            .and_then(|s| s.resource().map(str::to_owned)),
        Some(resource("phone", UA, "alice@localhost"))
    );
    // Another account with the same client gets another suffix.
    assert_ne!(
        resource("phone", UA, "alice@localhost"),
        resource("phone", UA, "bob@localhost")
    );
}

#[test]
fn bind2_without_user_agent_id_gets_a_random_resource() {
    let mut server = server();
    let c = alice_with(
        &mut server,
        &format!("<bind xmlns='{BIND2}'><tag>x</tag></bind>"),
    );
    let got = server.take(c);
    assert_eq!(got.len(), 1, "{got:?}");
    let resource = server
        .manager
        .session(c)
        .and_then(|s| s.resource().map(str::to_owned))
        .expect("bound");
    assert_eq!(resource.len(), 12, "{resource}");
    assert_eq!(
        got[0],
        xmpp_session::testkit::parse_stanza(&format!(
            "<success xmlns='{SASL2}'><authorization-identifier>alice@localhost/{resource}\
             </authorization-identifier><bound xmlns='{BIND2}'/></success>"
        ))
    );
}

#[test]
fn without_bind2_the_client_binds_on_the_same_stream() {
    let mut server = server();
    let c = opened(&mut server);
    server.send(c, &plain("alice", "pass", &user_agent(UA)));
    server.expect(c, &[&success_without_bind()]);
    assert_eq!(
        server.manager.session(c).map(|s| s.kind()),
        Some(SessionKind::Authenticated)
    );
    assert_eq!(server.bind(c, Some("desk")), "alice@localhost/desk");
}

#[test]
fn plain_goes_through_the_password_check_request() {
    let mut server = server();
    let c = opened(&mut server);
    server.hold_requests(true);
    server.send(c, &plain("alice", "pass", ""));
    server.expect_nothing(c);
    assert!(matches!(
        &server.held_requests()[..],
        [Request::VerifyPassword { account, .. }] if account.to_string() == "alice@localhost"
    ));
    server.hold_requests(false);
    server.answer_all_held();
    server.expect(c, &[&success_without_bind()]);
}

#[test]
fn scram_challenge_and_response_are_wrapped_in_sasl2() {
    let mut server = server();
    let c = opened(&mut server);
    let first_bare = "n=alice,r=abcdefghijklmnop";
    server.send(
        c,
        &format!(
            "<authenticate xmlns='{SASL2}' mechanism='SCRAM-SHA-256'>\
             <initial-response>{}</initial-response></authenticate>",
            BASE64.encode(format!("n,,{first_bare}"))
        ),
    );
    let got = server.take(c);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].is("challenge", SASL2), "{got:?}");
    let server_first =
        String::from_utf8(BASE64.decode(got[0].text()).expect("base64")).expect("utf-8");
    let (client_final, server_final) =
        scram_client::client_final(false, "pass", first_bare, &server_first, b"n,,");
    server.send(
        c,
        &format!(
            "<response xmlns='{SASL2}'>{}</response>",
            BASE64.encode(client_final)
        ),
    );
    let additional = BASE64.encode(server_final);
    server.expect(
        c,
        &[&format!(
            "<success xmlns='{SASL2}'><additional-data>{additional}</additional-data>\
             <authorization-identifier>alice@localhost</authorization-identifier></success>"
        )],
    );
}

// ------------------------------------------------------------ resume

#[test]
fn inline_resume_of_a_hibernating_session() {
    let mut server = server();
    let (phone, full, token) = phone(&mut server);
    let bob = server.login("bob", "b");
    server.take(bob);
    server.send(
        bob,
        &format!("<message type='chat' to='{full}'><body>hi</body></message>"),
    );
    let message = format!(
        "<message type='chat' to='{full}' from='bob@localhost/b'><body>hi</body></message>"
    );
    server.expect(phone, &[&message]);
    server.disconnect(phone);
    assert!(
        server
            .manager
            .session(phone)
            .is_some_and(|s| s.hibernating_until().is_some())
    );
    server.take_events();

    let c = opened(&mut server);
    let inline = format!(
        "{}<resume xmlns='{SM}' previd='{token}' h='0'/>\
         <bind xmlns='{BIND2}'><tag>phone</tag></bind>",
        user_agent(UA)
    );
    server.send(c, &plain("alice", "pass", &inline));
    // The resume wins: no new bind, the unacknowledged message follows.
    server.expect(
        c,
        &[
            &format!(
                "<success xmlns='{SASL2}'><authorization-identifier>{full}</authorization-identifier>\
                 <resumed xmlns='{SM}' previd='{token}' h='0'/></success>"
            ),
            &message,
        ],
    );
    server.expect_nothing(bob);
    let events = server.take_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Resumed { session, previous, .. }
            if *session == c && *previous == phone)),
        "{events:?}"
    );
    assert!(server.manager.session(phone).is_none());
    let s = server.manager.session(c).expect("resumed session");
    assert_eq!(s.full_jid().map(|j| j.to_string()), Some(full));
    assert!(s.sm_enabled() && s.hibernating_until().is_none());
}

#[test]
fn a_failed_inline_resume_goes_on_to_bind2() {
    let mut server = server();
    let c = opened(&mut server);
    let inline = format!(
        "{}<resume xmlns='{SM}' previd='nope' h='3'/><bind xmlns='{BIND2}'><tag>phone</tag>\
         <enable xmlns='{SM}'/></bind>",
        user_agent(UA)
    );
    server.send(c, &plain("alice", "pass", &inline));
    let full = format!(
        "alice@localhost/{}",
        resource("phone", UA, "alice@localhost")
    );
    server.expect(
        c,
        &[&format!(
            "<success xmlns='{SASL2}'><authorization-identifier>{full}</authorization-identifier>\
             <failed xmlns='{SM}'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             </failed><bound xmlns='{BIND2}'><enabled xmlns='{SM}'/></bound></success>"
        )],
    );
}

// ------------------------------------------------------------ bad inputs

#[test]
fn a_bad_user_agent_id_is_malformed_request_and_counts() {
    let mut server = server();
    let c = opened(&mut server);
    server.send(c, &plain("alice", "pass", &user_agent("not-a-uuid")));
    assert_eq!(
        server.take_raw(c),
        failure(
            "malformed-request",
            Some("The user-agent id must be a UUID")
        )
    );
    assert_eq!(
        server.manager.session(c).map(|s| s.kind()),
        Some(SessionKind::Unauthenticated)
    );
    // Failures of both protocols share one count (3 by default).
    server.send(c, &plain("alice", "wrong", ""));
    assert_eq!(
        server.take_raw(c),
        failure(
            "not-authorized",
            Some("Unable to authorize you with the authentication credentials you've sent.")
        )
    );
    server.send(c, &format!("<auth xmlns='{SASL}' mechanism='NOPE'/>"));
    assert_eq!(
        server.take_raw(c),
        format!(
            "<failure xmlns='{SASL}'><invalid-mechanism/></failure>\
         <stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Too many failed authentication attempts</text>\
         </stream:error></stream:stream>"
        )
    );
    assert!(server.is_closed(c));
}

#[test]
fn unknown_inline_features_are_ignored() {
    let mut server = server();
    let c = opened(&mut server);
    let inline = format!(
        "{}<unknown xmlns='urn:example:x'/><bind xmlns='{BIND2}'><tag>t</tag>\
         <enable xmlns='urn:xmpp:carbons:2'/><inactive xmlns='urn:xmpp:csi:0'/>\
         <other xmlns='urn:example:y'/></bind>",
        user_agent(UA)
    );
    server.send(c, &plain("alice", "pass", &inline));
    let full = format!("alice@localhost/{}", resource("t", UA, "alice@localhost"));
    server.expect(
        c,
        &[&format!(
            "<success xmlns='{SASL2}'><authorization-identifier>{full}</authorization-identifier>\
             <bound xmlns='{BIND2}'/></success>"
        )],
    );
    assert!(!server.manager.session(c).expect("session").sm_enabled());
}

#[test]
fn authenticate_after_success_is_a_stream_error() {
    let mut server = server();
    let (c, _, _) = phone(&mut server);
    expect_unsupported(&mut server, c, &plain("alice", "pass", ""));
}

#[test]
fn a_second_authenticate_restarts_the_exchange() {
    let mut server = server();
    let c = scram_started(&mut server);
    server.send(c, &plain("alice", "pass", ""));
    server.expect(c, &[&success_without_bind()]);
}

#[test]
fn responses_of_the_other_protocol_are_out_of_order() {
    let mut server = server();
    let c = scram_started(&mut server);
    // Answered in the protocol of the element, and the exchange is gone.
    server.send(c, &format!("<response xmlns='{SASL}'>eA==</response>"));
    assert_eq!(
        server.take_raw(c),
        format!(
            "<failure xmlns='{SASL}'><not-authorized/><text>Out of order SASL element</text>\
             </failure>"
        )
    );
    server.send(c, &format!("<response xmlns='{SASL2}'>eA==</response>"));
    assert_eq!(
        server.take_raw(c),
        failure("not-authorized", Some("Out of order SASL element"))
    );
}

#[test]
fn bad_base64_in_the_initial_response_is_incorrect_encoding() {
    let mut server = server();
    let c = opened(&mut server);
    server.send(
        c,
        &format!(
            "<authenticate xmlns='{SASL2}' mechanism='PLAIN'><initial-response>!!\
             </initial-response></authenticate>"
        ),
    );
    assert_eq!(server.take_raw(c), failure("incorrect-encoding", None));
    server.send(c, &format!("<abort xmlns='{SASL2}'/>"));
    assert_eq!(server.take_raw(c), failure("aborted", None));
}

#[test]
fn a_refused_bind2_is_a_failure_and_close() {
    let mut server = server_with(
        config()
            .max_resources_per_user(1)
            .build()
            .expect("valid config"),
    );
    let _desk = server.login("alice", "desk");
    let c = alice_with(
        &mut server,
        &format!("<bind xmlns='{BIND2}'><tag>t</tag></bind>"),
    );
    assert_eq!(
        server.take_raw(c),
        format!(
            "{}</stream:stream>",
            failure("aborted", Some("Too many resources bound for this account"))
        )
    );
    assert!(server.is_closed(c));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn escape(text: &str) -> String {
        text.replace('&', "&amp;").replace('<', "&lt;")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any tag binds (the resource keeps only what resourceprep
        /// accepts), and the same client gets the same resource again.
        #[test]
        fn any_tag_binds_to_a_stable_resource(tag in "\\PC{0,48}", ua in "[0-9a-f]{8}") {
            let ua = format!("{ua}-4d72-4749-b3d3-740edbf87770");
            let inline = format!(
                "{}<bind xmlns='{BIND2}'><tag>{}</tag></bind>",
                user_agent(&ua),
                escape(&tag)
            );
            let mut server = server();
            let mut resources = Vec::new();
            for _ in 0..2 {
                let c = alice_with(&mut server, &inline);
                let got = server.take(c);
                prop_assert_eq!(got.len(), 1, "{:?}", got);
                prop_assert!(got[0].is("success", SASL2), "{:?}", got);
                let s = server.manager.session(c).expect("session");
                prop_assert_eq!(s.kind(), SessionKind::Bound);
                resources.push(s.resource().map(str::to_owned));
            }
            prop_assert_eq!(&resources[0], &resources[1]);
        }
    }
}

/// Found by the property above: a right-to-left tag followed by the ASCII
/// suffix breaks resourceprep's bidi rule, so the tag falls back to ASCII
/// (here nothing is left, so `client`).
#[test]
fn a_right_to_left_tag_still_binds() {
    let ua = "0aa0aa00-4d72-4749-b3d3-740edbf87770";
    let mut server = server();
    let c = alice_with(
        &mut server,
        &format!(
            "{}<bind xmlns='{BIND2}'><tag>\u{5d0}</tag></bind>",
            user_agent(ua)
        ),
    );
    let got = server.take(c);
    assert!(got.len() == 1 && got[0].is("success", SASL2), "{got:?}");
    let s = server.manager.session(c).expect("session");
    assert_eq!(
        s.resource(),
        Some(resource("client", ua, "alice@localhost").as_str())
    );
}

#[test]
fn an_inline_resume_acknowledging_too_much_closes_the_stream() {
    let mut server = server();
    let (phone, _, token) = phone(&mut server);
    server.disconnect(phone);
    let c = alice_with(
        &mut server,
        &format!("<resume xmlns='{SM}' previd='{token}' h='5'/>"),
    );
    assert_eq!(
        server.take_raw(c),
        "<stream:error><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>You acknowledged more stanzas than \
         were sent</text><handled-count-too-high xmlns='urn:xmpp:sm:3' h='5' send-count='0'/>\
         </stream:error></stream:stream>"
    );
    assert!(server.is_closed(c));
    // The hibernating session is untouched.
    assert!(
        server
            .manager
            .session(phone)
            .is_some_and(|s| s.hibernating_until().is_some())
    );
}

#[test]
fn an_inline_resume_takes_over_a_session_still_connected() {
    let mut server = server();
    let (phone, full, token) = phone(&mut server);
    let c = alice_with(
        &mut server,
        &format!("<resume xmlns='{SM}' previd='{token}' h='0'/>"),
    );
    server.expect(
        c,
        &[&format!(
            "<success xmlns='{SASL2}'><authorization-identifier>{full}</authorization-identifier>\
             <resumed xmlns='{SM}' previd='{token}' h='0'/></success>"
        )],
    );
    assert_eq!(
        server.take_raw(phone),
        "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Replaced by a resumed session</text>\
         </stream:error></stream:stream>"
    );
    assert!(server.is_closed(phone));
}

#[test]
fn sasl2_aborts_count_as_failed_attempts() {
    let mut server = server();
    let c = scram_started(&mut server);
    server.send(c, &format!("<abort xmlns='{SASL2}'/>"));
    assert_eq!(server.take_raw(c), failure("aborted", None));
    server.send(c, &format!("<abort xmlns='{SASL2}'/>"));
    assert_eq!(server.take_raw(c), failure("aborted", None));
    assert!(!server.is_closed(c));
    // The third (default limit 3) closes the stream.
    server.send(c, &format!("<abort xmlns='{SASL2}'/>"));
    assert_eq!(
        server.take_raw(c),
        format!(
            "{}<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Too many failed authentication \
             attempts</text></stream:error></stream:stream>",
            failure("aborted", None)
        )
    );
    assert!(server.is_closed(c));
}
