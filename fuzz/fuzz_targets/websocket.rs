//! RFC 7395 framing through the whole `SessionManager`: WebSocket sessions
//! (and one TCP session to talk to) fed fuzz-chosen messages, raw bytes
//! mixed with valid fragments (`<open/>`, SASL PLAIN, bind, stanzas,
//! `<close/>`), through `handle_frame` and `handle_input`.
//!
//! After every step it checks that nothing panicked and that every
//! `Transmit` to a WebSocket session is exactly one complete element that
//! declares its own namespace, the first is an `<open/>`, a `<close/>` is
//! the last, and nothing follows `Output::Close`.
#![no_main]

use std::collections::HashMap;
use std::time::Instant;

use arbitrary::Arbitrary;
use base64::prelude::*;
use libfuzzer_sys::fuzz_target;
use xmpp_session::random::SeededRandom;
use xmpp_session::stream::{StreamEvent, StreamReader, XmlLimits};
use xmpp_session::{
    AccountJid, Config, ConnectionInfo, Framing, MemoryStore, Output, SessionId, SessionManager,
};

const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";

#[derive(Arbitrary, Debug)]
enum Op {
    Connect { secure: bool },
    Frame { session: u8, frame: Frame, as_input: bool },
    Disconnect(u8),
    TcpMessage(u8),
}

#[derive(Arbitrary, Debug)]
enum Frame {
    Raw(Vec<u8>),
    Open { to_ok: bool, ns_ok: bool },
    Plain { right: bool },
    Bind,
    Message { to: u8, body: String },
    Presence,
    Close,
    Two,
    Partial,
    StreamHeader,
}

impl Frame {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Frame::Raw(raw) => raw.clone(),
            Frame::Open { to_ok, ns_ok } => format!(
                "<open xmlns='{}' to='{}' version='1.0'/>",
                if *ns_ok { FRAMING } else { "jabber:client" },
                if *to_ok { "localhost" } else { "example.org" }
            )
            .into_bytes(),
            Frame::Plain { right } => {
                let password = if *right { "pass" } else { "wrong" };
                let payload = BASE64_STANDARD.encode(format!("\0romeo\0{password}"));
                format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{payload}</auth>")
                    .into_bytes()
            }
            Frame::Bind => b"<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>".to_vec(),
            Frame::Message { to, body } => {
                let to = if to % 2 == 0 { "juliet@localhost/tcp" } else { "romeo@localhost" };
                let mut body_el = xmpp_session::minidom::Element::bare("body", "jabber:client");
                body_el.append_text_node(body.as_str());
                let mut el = xmpp_session::minidom::Element::bare("message", "jabber:client");
                el.append_child(body_el);
                let mut out = bytes::BytesMut::new();
                xmpp_session::stream::write_framed_element(&el, &mut out);
                // Address it: `<message xmlns='jabber:client'` + ` to='…'`.
                let head = b"<message xmlns='jabber:client'".len();
                let mut bytes = out.to_vec();
                let rest = bytes.split_off(head.min(bytes.len()));
                bytes.extend_from_slice(format!(" to='{to}'").as_bytes());
                bytes.extend_from_slice(&rest);
                bytes
            }
            Frame::Presence => b"<presence xmlns='jabber:client'/>".to_vec(),
            Frame::Close => format!("<close xmlns='{FRAMING}'/>").into_bytes(),
            Frame::Two => b"<presence xmlns='jabber:client'/><presence xmlns='jabber:client'/>".to_vec(),
            Frame::Partial => b"<message xmlns='jabber:client'><body>".to_vec(),
            Frame::StreamHeader => b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>".to_vec(),
        }
    }
}

/// Exactly one complete element, in a namespace it declares itself.
fn one_element(data: &[u8]) -> Option<xmpp_session::minidom::Element> {
    let mut reader = StreamReader::new(XmlLimits {
        max_stanza_bytes: usize::MAX,
        max_depth: 1024,
        max_attributes: 1024,
        max_text_bytes: usize::MAX,
    });
    reader.push(b"<m>");
    reader.push(data);
    reader.push(b"</m>");
    let mut element = None;
    loop {
        match reader.next_event() {
            Ok(Some(StreamEvent::Open(_))) => {}
            Ok(Some(StreamEvent::Stanza(el))) if element.is_none() => element = Some(el),
            Ok(Some(StreamEvent::Close)) => break,
            _ => return None,
        }
    }
    element.filter(|el| !el.ns().is_empty())
}

#[derive(Default)]
struct Seen {
    frames: usize,
    closed: bool,
    last_was_close: bool,
}

fuzz_target!(|ops: Vec<Op>| {
    let config = Config::builder("localhost")
        .require_tls(false)
        .allow_plain_without_tls(true)
        .build()
        .expect("valid");
    let mut manager = SessionManager::with_random(config, Box::new(SeededRandom::new(7)));
    // One PBKDF2 iteration: logins cost nothing, the stored keys look the same.
    let mut store = MemoryStore::with_iterations(1);
    for user in ["romeo", "juliet"] {
        let jid = AccountJid::new(user, "localhost").expect("valid");
        store.add_user(&jid, "pass").expect("stored");
    }
    let now = Instant::now();
    // A bound TCP session for messages to go to and come from.
    let tcp = manager.connect(ConnectionInfo::plain(), now);
    let login = format!(
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'><auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{}</auth>",
        BASE64_STANDARD.encode("\0juliet\0pass")
    );
    manager.handle_input(tcp, login.as_bytes(), now);
    while manager.poll_output_with(&mut store, now).is_some() {}
    manager.handle_input(tcp, b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'><iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>tcp</resource></bind></iq>", now);
    while manager.poll_output_with(&mut store, now).is_some() {}

    let mut sessions: Vec<SessionId> = Vec::new();
    let mut seen: HashMap<SessionId, Seen> = HashMap::new();
    for op in ops.into_iter().take(64) {
        match op {
            Op::Connect { secure } => {
                if sessions.len() < 4 {
                    let info = if secure { ConnectionInfo::direct_tls() } else { ConnectionInfo::plain() };
                    let id = manager.connect(info.with_framing(Framing::WebSocket), now);
                    sessions.push(id);
                    seen.insert(id, Seen::default());
                }
            }
            Op::Frame { session, frame, as_input } => {
                let Some(&id) = sessions.get(usize::from(session) % sessions.len().max(1)) else {
                    continue;
                };
                let bytes = frame.bytes();
                if as_input {
                    manager.handle_input(id, &bytes, now);
                } else {
                    manager.handle_frame(id, &bytes, now);
                }
            }
            Op::Disconnect(session) => {
                if let Some(&id) = sessions.get(usize::from(session) % sessions.len().max(1)) {
                    manager.handle_disconnect(id, now);
                }
            }
            Op::TcpMessage(to) => {
                let stanza = format!(
                    "<message to='romeo@localhost{}' type='chat'><body>{to}</body></message>",
                    if to % 2 == 0 { "" } else { "/x" }
                );
                manager.handle_input(tcp, stanza.as_bytes(), now);
            }
        }
        while let Some(output) = manager.poll_output_with(&mut store, now) {
            match output {
                Output::Transmit { session, data } => {
                    let Some(s) = seen.get_mut(&session) else { continue };
                    assert!(!s.closed, "a message after Close");
                    assert!(!s.last_was_close, "a message after <close/>");
                    let el = one_element(&data).unwrap_or_else(|| {
                        panic!("not one element with its namespace: {:?}", String::from_utf8_lossy(&data))
                    });
                    if s.frames == 0 {
                        assert!(el.is("open", FRAMING), "first message {el:?}");
                    }
                    s.last_was_close = el.is("close", FRAMING);
                    s.frames += 1;
                }
                Output::Close { session } => {
                    if let Some(s) = seen.get_mut(&session) {
                        assert!(s.frames == 0 || s.last_was_close, "closed without <close/>");
                        s.closed = true;
                    }
                }
                _ => {}
            }
        }
    }
});
