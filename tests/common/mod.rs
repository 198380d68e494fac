//! Shared setup for the routing transcript tests.
//!
//! [`Net`] wraps a [`TestServer`] and remembers every session it logged in,
//! so a test can assert what each session received and that every other
//! session, the route output and the embedder events stayed silent.

#![allow(dead_code)]

use std::ops::{Deref, DerefMut};

use xmpp_session::testkit::{TestServer, account, parse_stanza};
use xmpp_session::{Config, Element, Event, SessionId};

/// Stanza error namespace.
pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// The wall-clock time of a fresh [`TestServer`], as an XEP-0082 stamp.
pub const STAMP: &str = "2026-11-26T08:00:00Z";

/// A test server plus the sessions logged in through it.
pub struct Net {
    /// The server under test.
    pub server: TestServer,
    sessions: Vec<(String, SessionId)>,
}

impl Deref for Net {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.server
    }
}

impl DerefMut for Net {
    fn deref_mut(&mut self) -> &mut TestServer {
        &mut self.server
    }
}

impl Net {
    /// A default test server with these accounts (password "pass").
    pub fn new(users: &[&str]) -> Self {
        Self::with_config(TestServer::config().build().expect("valid config"), users)
    }

    /// A server with this configuration and these accounts.
    pub fn with_config(config: Config, users: &[&str]) -> Self {
        let mut server = TestServer::with_config(config);
        for user in users {
            server.add_user(user, "pass");
        }
        Self {
            server,
            sessions: Vec::new(),
        }
    }

    /// Logs `user/resource` in without sending presence: connected, not
    /// available. Everything the login caused is drained.
    pub fn connect(&mut self, user: &str, resource: &str) -> SessionId {
        let id = self.server.login(user, resource);
        self.sessions
            .push((format!("{user}@localhost/{resource}"), id));
        self.settle();
        id
    }

    /// Logs `user/resource` in and sends initial presence (with
    /// `<priority/>` when given). Everything it caused is drained.
    pub fn online(&mut self, user: &str, resource: &str, priority: Option<i8>) -> SessionId {
        let id = self.connect(user, resource);
        let presence = match priority {
            Some(p) => format!("<presence><priority>{p}</priority></presence>"),
            None => "<presence/>".to_owned(),
        };
        self.server.send(id, &presence);
        self.settle();
        id
    }

    /// The session logged in as this full JID.
    pub fn id(&self, full: &str) -> SessionId {
        self.sessions
            .iter()
            .find(|(jid, _)| jid == full)
            .map(|(_, id)| *id)
            .unwrap_or_else(|| panic!("no session {full}"))
    }

    /// Every session logged in so far, with its full JID.
    pub fn all(&self) -> Vec<(String, SessionId)> {
        self.sessions.clone()
    }

    /// Forgets everything received, routed or emitted so far.
    pub fn settle(&mut self) {
        for (_, id) in self.sessions.clone() {
            self.server.take(id);
        }
        self.server.take_routed();
        self.server.take_events();
    }

    /// Asserts that each listed session received exactly its stanzas and
    /// that every other session received nothing, nothing was routed out
    /// and no stanza was handed to the embedder.
    #[track_caller]
    pub fn expect_only(&mut self, deliveries: &[(SessionId, &[&str])]) {
        for (jid, id) in self.sessions.clone() {
            let want: &[&str] = deliveries
                .iter()
                .find(|(d, _)| *d == id)
                .map(|(_, w)| *w)
                .unwrap_or(&[]);
            let got = self.server.take(id);
            let want_el: Vec<Element> = want.iter().map(|x| parse_stanza(x)).collect();
            assert_eq!(
                got,
                want_el,
                "session {jid} received {} stanza(s), expected {}:\n got: {}\nwant: {}",
                got.len(),
                want_el.len(),
                render(&got),
                render(&want_el)
            );
        }
        let routed = self.server.take_routed();
        assert!(
            routed.is_empty(),
            "unexpected routed stanzas: {}",
            render(&routed)
        );
        self.expect_no_stanza_events();
    }

    /// Asserts that no session received anything, nothing was routed and
    /// no stanza event was emitted.
    #[track_caller]
    pub fn quiet(&mut self) {
        self.expect_only(&[]);
    }

    /// Asserts that no [`Event::Stanza`] was emitted (other events are
    /// discarded).
    #[track_caller]
    pub fn expect_no_stanza_events(&mut self) {
        let stanzas: Vec<Event> = self
            .server
            .take_events()
            .into_iter()
            .filter(|e| matches!(e, Event::Stanza { .. }))
            .collect();
        assert!(stanzas.is_empty(), "unexpected stanza events: {stanzas:?}");
    }

    /// Asserts the stanzas routed out ([`xmpp_session::Output::Route`]).
    #[track_caller]
    pub fn expect_routed(&mut self, expected: &[&str]) {
        let got = self.server.take_routed();
        let want: Vec<Element> = expected.iter().map(|x| parse_stanza(x)).collect();
        assert_eq!(
            got,
            want,
            "routed:\n got: {}\nwant: {}",
            render(&got),
            render(&want)
        );
    }

    /// Asserts the messages stored offline for `user`, oldest first.
    #[track_caller]
    pub fn expect_stored(&self, user: &str, expected: &[&str]) {
        let got = self.server.store.offline_messages(&account(user)).to_vec();
        let want: Vec<Element> = expected.iter().map(|x| parse_stanza(x)).collect();
        assert_eq!(
            got,
            want,
            "offline store of {user}:\n got: {}\nwant: {}",
            render(&got),
            render(&want)
        );
    }

    /// Takes the [`Event::Stanza`] events emitted so far.
    pub fn take_stanza_events(&mut self) -> Vec<(Option<SessionId>, Element)> {
        self.server
            .take_events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Stanza { session, stanza } => Some((session, stanza)),
                _ => None,
            })
            .collect()
    }
}

/// Serializes elements for failure messages.
pub fn render(elements: &[Element]) -> String {
    if elements.is_empty() {
        return "(nothing)".to_owned();
    }
    elements
        .iter()
        .map(String::from)
        .collect::<Vec<_>>()
        .join("\n      ")
}

/// A stanza error reply as the server writes it: `from`/`to` swapped,
/// `id` kept, no payload.
pub fn error_reply(
    name: &str,
    from: Option<&str>,
    to: &str,
    id: Option<&str>,
    kind: &str,
    condition: &str,
    text: Option<&str>,
) -> String {
    let from = from.map(|f| format!(" from='{f}'")).unwrap_or_default();
    let id = id.map(|i| format!(" id='{i}'")).unwrap_or_default();
    let text = text
        .map(|t| format!("<text xmlns='{STANZAS}'>{t}</text>"))
        .unwrap_or_default();
    format!(
        "<{name}{from} to='{to}'{id} type='error'><error type='{kind}'><{condition} xmlns='{STANZAS}'/>{text}</error></{name}>"
    )
}

/// `cancel`/`service-unavailable` for a stanza `id` sent by `to` to `from`.
pub fn service_unavailable(name: &str, from: Option<&str>, to: &str, id: &str) -> String {
    error_reply(
        name,
        from,
        to,
        Some(id),
        "cancel",
        "service-unavailable",
        None,
    )
}

/// A test server with this configuration and these accounts (password
/// "pass").
pub fn server_with_users(config: Config, users: &[&str]) -> TestServer {
    let mut server = TestServer::with_config(config);
    for user in users {
        server.add_user(user, "pass");
    }
    server
}

/// A new connection of `server` with its stream open and everything it
/// received so far (header, features) drained.
pub fn opened(server: &mut TestServer) -> SessionId {
    let c = server.connect();
    server.open_stream(c);
    server.take(c);
    server.take_raw(c);
    c
}
