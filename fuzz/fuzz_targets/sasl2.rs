//! SASL2 (XEP-0388), Bind2 (XEP-0386) and FAST (XEP-0484) on one
//! connection of a `TestServer` with all three on: a sequence of
//! `<authenticate/>` (PLAIN right or wrong, SCRAM starts, FAST with a real,
//! stale or made-up token, any user-agent id, inline Bind2 / SM enable /
//! SM resume / request-token / unknown children in any mix), `<response/>`,
//! `<abort/>`, raw bytes, clock advances and disconnects.
//!
//! Checks: no panic; the connection authenticates only after a right
//! password or a token the server issued to that user-agent id and still
//! valid; every SASL2 answer is one `<challenge/>`, `<success/>` or
//! `<failure/>`; a `<success/>` names the account; after a close nothing
//! more is received.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use base64::prelude::*;
use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;
use xmpp_session::testkit::TestServer;
use xmpp_session::{Element, SessionKind};

const SASL2: &str = "urn:xmpp:sasl:2";
const UAS: [&str; 2] = [
    "d4565fa7-4d72-4749-b3d3-740edbf87770",
    "0c1fd0a4-4a5f-4e8b-9d5a-3f1c2b7e8a90",
];

#[derive(Arbitrary, Debug)]
enum Inline {
    UserAgent(u8),
    BadUserAgent,
    Bind {
        tag: Option<String>,
        sm: bool,
        unknown: bool,
    },
    Resume(u8),
    RequestToken,
    Fast {
        invalidate: bool,
    },
    Unknown,
}

#[derive(Arbitrary, Debug)]
enum Auth {
    Plain {
        right: bool,
    },
    Scram,
    /// A token from the ones issued so far (index), or a made-up one.
    Token(Option<u8>),
    NoMechanism,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Authenticate { auth: Auth, inline: Vec<Inline> },
    Response(Vec<u8>),
    Abort,
    Raw(Vec<u8>),
    Advance(u16),
    Reconnect,
}

struct State {
    server: TestServer,
    id: xmpp_session::SessionId,
    /// Tokens seen in `<success/>`, with the user-agent id they were issued to.
    tokens: Vec<(String, u8)>,
    closed: bool,
}

fn hmac(key: &[u8], label: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(label);
    mac.finalize().into_bytes().to_vec()
}

fn render_inline(inline: &[Inline], tokens: &[(String, u8)]) -> String {
    let mut out = String::new();
    for item in inline.iter().take(8) {
        match item {
            Inline::UserAgent(n) => {
                out.push_str(&format!("<user-agent id='{}'/>", UAS[usize::from(*n % 2)]))
            }
            Inline::BadUserAgent => out.push_str("<user-agent id='nope'/>"),
            Inline::Bind { tag, sm, unknown } => {
                out.push_str("<bind xmlns='urn:xmpp:bind:0'>");
                if let Some(tag) = tag {
                    let tag: String = tag
                        .chars()
                        .filter(|c| !matches!(c, '<' | '&' | '\0'..='\u{1f}'))
                        .take(40)
                        .collect();
                    out.push_str(&format!("<tag>{tag}</tag>"));
                }
                if *sm {
                    out.push_str("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
                }
                if *unknown {
                    out.push_str("<enable xmlns='urn:xmpp:carbons:2'/>");
                }
                out.push_str("</bind>");
            }
            Inline::Resume(h) => out.push_str(&format!(
                "<resume xmlns='urn:xmpp:sm:3' previd='{}' h='{h}'/>",
                tokens.first().map_or("x", |t| t.0.as_str())
            )),
            Inline::RequestToken => {
                out.push_str("<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>")
            }
            Inline::Fast { invalidate } => out.push_str(&format!(
                "<fast xmlns='urn:xmpp:fast:0' invalidate='{invalidate}'/>"
            )),
            Inline::Unknown => out.push_str("<x xmlns='urn:fuzz'/>"),
        }
    }
    out
}

impl State {
    fn new() -> Self {
        let config = TestServer::config()
            .sasl2(true)
            .fast(Duration::from_secs(3600), 2)
            .build()
            .unwrap();
        let mut server = TestServer::with_config(config);
        server.add_user("alice", "pass");
        let id = server.connect();
        server.open_stream(id);
        server.take(id);
        State {
            server,
            id,
            tokens: Vec::new(),
            closed: false,
        }
    }

    fn reconnect(&mut self) {
        self.server.disconnect(self.id);
        self.id = self.server.connect();
        self.server.open_stream(self.id);
        self.server.take(self.id);
        self.closed = false;
    }

    fn authenticated(&self) -> bool {
        self.server
            .manager
            .session(self.id)
            .is_some_and(|s| s.kind() != SessionKind::Unauthenticated)
    }

    /// Sends, then checks what came back. `may_succeed`: the request
    /// carried a right password or a token the server issued.
    fn exchange(&mut self, xml: &str, may_succeed: bool) {
        let before = !self.authenticated();
        self.server.send(self.id, xml);
        let got: Vec<Element> = self.server.take(self.id);
        if self.closed {
            assert!(got.is_empty(), "received after close: {got:?}");
            return;
        }
        for el in &got {
            if el.is("success", SASL2) {
                assert!(before && may_succeed, "unexpected success: {el:?}");
                let aid = el.get_child("authorization-identifier", SASL2).unwrap();
                assert!(aid.text().starts_with("alice@localhost"), "{el:?}");
                if let Some(token) = el
                    .get_child("token", "urn:xmpp:fast:0")
                    .and_then(|t| t.attr("token"))
                {
                    self.tokens.push((token.to_owned(), 0));
                }
            }
        }
        if before && self.authenticated() {
            assert!(may_succeed, "authenticated without a secret: {xml}");
        }
        if self.server.is_closed(self.id) {
            self.closed = true;
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut state = State::new();
    for op in ops.into_iter().take(32) {
        match op {
            Op::Authenticate { auth, inline } => {
                let extra = render_inline(&inline, &state.tokens);
                let (mechanism, payload, may) = match auth {
                    Auth::Plain { right } => {
                        let password = if right { "pass" } else { "wrong" };
                        let payload = BASE64_STANDARD.encode(format!("\0alice\0{password}"));
                        ("PLAIN", payload, right)
                    }
                    Auth::Scram => (
                        "SCRAM-SHA-256",
                        BASE64_STANDARD.encode("n,,n=alice,r=fuzz"),
                        false,
                    ),
                    Auth::Token(index) => {
                        let token = index
                            .and_then(|i| state.tokens.get(usize::from(i)))
                            .map_or("made-up".to_owned(), |t| t.0.clone());
                        let mut response = b"alice\0".to_vec();
                        response.extend(hmac(token.as_bytes(), b"Initiator"));
                        // Issued tokens may succeed (if still valid for
                        // this user-agent id); made-up ones never.
                        let may = token != "made-up";
                        ("HT-SHA-256-NONE", BASE64_STANDARD.encode(response), may)
                    }
                    Auth::NoMechanism => ("", String::new(), false),
                };
                let xml = format!(
                    "<authenticate xmlns='{SASL2}' mechanism='{mechanism}'>\
                     <initial-response>{payload}</initial-response>{extra}</authenticate>"
                );
                state.exchange(&xml, may);
            }
            Op::Response(data) => {
                let xml = format!(
                    "<response xmlns='{SASL2}'>{}</response>",
                    BASE64_STANDARD.encode(data)
                );
                state.exchange(&xml, false);
            }
            Op::Abort => state.exchange(&format!("<abort xmlns='{SASL2}'/>"), false),
            Op::Raw(bytes) => {
                if state.closed {
                    continue;
                }
                state.server.send_bytes(state.id, &bytes);
                state.server.take(state.id);
                if state.server.is_closed(state.id) {
                    state.closed = true;
                }
            }
            Op::Advance(secs) => state
                .server
                .advance(Duration::from_secs(u64::from(secs) * 60)),
            Op::Reconnect => state.reconnect(),
        }
    }
});
