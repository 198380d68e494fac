//! A model of a stream-management client for property tests and fuzzing:
//! see [`SmWorld`].

use std::collections::BTreeMap;
use std::time::Duration;

use minidom::Element;

use super::TestServer;
use crate::ids::SessionId;

const SM: &str = "urn:xmpp:sm:3";
const ENABLE: &str = "<enable xmlns='urn:xmpp:sm:3' resume='true'/>";
const PHONE: &str = "alice@localhost/phone";

/// One step of the model.
#[derive(Debug, Clone)]
pub enum SmOp {
    /// bob sends a chat message with a fresh body to alice/phone.
    BobMessage,
    /// bob sends an iq get with a fresh id to alice/phone.
    BobIq,
    /// alice's client handles what arrived (and answers `<r/>`).
    Process,
    /// alice's client acknowledges what it handled.
    Ack,
    /// alice's connection drops; what it had not handled is lost.
    Disconnect,
    /// alice connects again and resumes (or logs in afresh if that fails).
    Resume,
    /// The clock moves on this many seconds.
    Advance(u64),
}

enum Alice {
    Attached(SessionId),
    Hibernating(SessionId),
    Gone,
}

/// A server with bob and alice/phone, and alice's client as a model: what
/// the server writes arrives in an inbox, [`SmOp::Process`] handles it
/// (counting `h`), a dropped connection loses whatever was not handled.
/// [`SmWorld::finish`] checks that a resumed session never got a stanza
/// twice and that every stanza bob sent reached alice, or came back to bob
/// as an error (or was in flight on a session that had stopped keeping
/// stanzas, see `Config::sm_max_queue`). Used by the property test and the
/// manager fuzz target.
pub struct SmWorld {
    s: TestServer,
    bob: SessionId,
    alice: Alice,
    token: String,
    inbox: Vec<Element>,
    /// Stanzas processed in the current stream-management lifetime.
    processed: Vec<Option<String>>,
    acked: usize,
    sent: Vec<String>,
    /// How often each message body / iq id reached alice.
    delivered: BTreeMap<String, usize>,
    /// Iq ids bob got an error for.
    bounced: BTreeMap<String, usize>,
    /// Processed but never acknowledged when their session expired:
    /// XEP-0198 cannot tell the server about them.
    maybe_twice: Vec<String>,
    /// In flight when the connection of a session that had overflowed
    /// its queue (and so stopped keeping stanzas) dropped.
    maybe_lost: Vec<String>,
    next: usize,
}

fn key_of(e: &Element) -> Option<String> {
    match e.name() {
        "message" => e.get_child("body", "jabber:client").map(|b| b.text()),
        "iq" => e.attr("id").map(str::to_owned),
        _ => None,
    }
}

impl SmWorld {
    /// A world whose server keeps at most `max_queue` unacknowledged
    /// stanzas and asks for acknowledgements after 3.
    pub fn new(max_queue: usize) -> Self {
        let mut s = TestServer::with_config(
            TestServer::config()
                .sm_max_queue(max_queue)
                .sm_request_ack_after(3)
                .build()
                .expect("valid config"),
        );
        s.add_user("alice", "pass");
        s.add_user("bob", "pass");
        let bob = s.login("bob", "b");
        s.send(bob, "<presence/>");
        s.take(bob);
        let mut w = Self {
            s,
            bob,
            alice: Alice::Gone,
            token: String::new(),
            inbox: Vec::new(),
            processed: Vec::new(),
            acked: 0,
            sent: Vec::new(),
            delivered: BTreeMap::new(),
            bounced: BTreeMap::new(),
            maybe_twice: Vec::new(),
            maybe_lost: Vec::new(),
            next: 0,
        };
        w.fresh_login();
        w
    }

    fn fresh_login(&mut self) {
        let id = self.s.login("alice", "phone");
        self.s.send(id, ENABLE);
        let enabled = self.s.take(id);
        self.token = enabled
            .first()
            .and_then(|e| e.attr("id"))
            .expect("enabled")
            .to_owned();
        self.processed.clear();
        self.acked = 0;
        self.alice = Alice::Attached(id);
        self.s.send(id, "<presence/>");
        self.collect();
    }

    fn collect(&mut self) {
        if let Alice::Attached(id) = self.alice {
            let got = self.s.take(id);
            self.inbox.extend(got);
        }
        for e in self.s.take(self.bob) {
            if e.attr("type") == Some("error") {
                let id = e.attr("id").unwrap_or_default().to_owned();
                *self.bounced.entry(id).or_default() += 1;
            }
        }
        // The session may have expired (timeout or overflow).
        if let Alice::Hibernating(id) = self.alice
            && self.s.manager.session(id).is_none()
        {
            self.expired();
        }
        if let Alice::Attached(id) = self.alice
            && self.s.manager.session(id).is_none()
        {
            self.inbox.clear();
            self.expired();
        }
    }

    fn expired(&mut self) {
        let unacked: Vec<String> = self.processed[self.acked.min(self.processed.len())..]
            .iter()
            .flatten()
            .cloned()
            .collect();
        self.maybe_twice.extend(unacked);
        self.alice = Alice::Gone;
    }

    fn process(&mut self) {
        let Alice::Attached(id) = self.alice else {
            return;
        };
        let mut asked = false;
        for e in std::mem::take(&mut self.inbox) {
            match e.name() {
                "message" | "iq" | "presence" => {
                    let key = key_of(&e);
                    if let Some(k) = &key {
                        *self.delivered.entry(k.clone()).or_default() += 1;
                    }
                    self.processed.push(key);
                }
                "r" if e.ns() == SM => asked = true,
                _ => {}
            }
        }
        if asked {
            self.ack_now(id);
        }
    }

    fn ack_now(&mut self, id: SessionId) {
        let h = self.processed.len();
        self.s.send(id, &format!("<a xmlns='{SM}' h='{h}'/>"));
        self.acked = h;
    }

    /// Runs one step.
    pub fn apply(&mut self, op: &SmOp) {
        match op {
            SmOp::BobMessage => {
                let body = format!("m{}", self.next);
                self.next += 1;
                self.s.send(
                    self.bob,
                    &format!("<message type='chat' to='{PHONE}'><body>{body}</body></message>"),
                );
                self.sent.push(body);
            }
            SmOp::BobIq => {
                let id = format!("q{}", self.next);
                self.next += 1;
                self.s.send(
                    self.bob,
                    &format!(
                        "<iq type='get' id='{id}' to='{PHONE}'><ping xmlns='urn:xmpp:ping'/></iq>"
                    ),
                );
                self.sent.push(id);
            }
            SmOp::Process => self.process(),
            SmOp::Ack => {
                if let Alice::Attached(id) = self.alice {
                    self.ack_now(id);
                }
            }
            SmOp::Disconnect => {
                if let Alice::Attached(id) = self.alice {
                    let kept = self.s.manager.session(id).is_some_and(|s| s.resumable());
                    for e in self.inbox.drain(..) {
                        if !kept && let Some(k) = key_of(&e) {
                            self.maybe_lost.push(k);
                        }
                    }
                    self.s.disconnect(id);
                    self.alice = Alice::Hibernating(id);
                }
            }
            SmOp::Resume => {
                let degraded = match self.alice {
                    Alice::Attached(id) => {
                        self.s.manager.session(id).is_some_and(|s| !s.resumable())
                    }
                    _ => false,
                };
                for e in self.inbox.drain(..) {
                    if degraded && let Some(k) = key_of(&e) {
                        self.maybe_lost.push(k);
                    }
                }
                let id = self.s.connect();
                self.s.authenticate_plain(id, "alice", "pass");
                let h = self.processed.len();
                self.s.send(
                    id,
                    &format!("<resume xmlns='{SM}' previd='{}' h='{h}'/>", self.token),
                );
                let got = self.s.take(id);
                match got.first().map(|e| e.name()) {
                    Some("resumed") => {
                        // The server now knows what was processed.
                        self.acked = h;
                        self.alice = Alice::Attached(id);
                        self.inbox.extend(got.into_iter().skip(1));
                    }
                    Some("failed") => {
                        assert!(
                            degraded || matches!(self.alice, Alice::Gone),
                            "failed while resumable: {got:?}"
                        );
                        self.s.disconnect(id);
                        self.fresh_login();
                    }
                    _ => panic!("unexpected answer to resume: {got:?}"),
                }
            }
            SmOp::Advance(secs) => self.s.advance(Duration::from_secs(*secs)),
        }
        self.collect();
    }

    /// Ends the run so that everything is accounted for, then checks;
    /// panics on a violation.
    pub fn finish(mut self) {
        if let Alice::Hibernating(_) = self.alice {
            self.s.advance(Duration::from_secs(301));
            self.collect();
        }
        if let Alice::Gone = self.alice {
            self.fresh_login();
        }
        self.process();
        self.collect();
        self.process();
        for (key, n) in &self.delivered {
            let allowed = if self.maybe_twice.contains(key) { 2 } else { 1 };
            assert!(*n <= allowed, "{key} delivered {n} times");
        }
        for key in &self.sent {
            let reached = self.delivered.get(key).copied().unwrap_or(0)
                + self.bounced.get(key).copied().unwrap_or(0);
            if self.maybe_lost.contains(key) {
                continue;
            }
            assert!(
                reached >= 1,
                "{key} was lost (sent {:?}, delivered {:?}, bounced {:?})",
                self.sent,
                self.delivered,
                self.bounced
            );
            if !self.maybe_twice.contains(key) {
                assert_eq!(reached, 1, "{key} reached alice or bob {reached} times");
            }
        }
    }
}
