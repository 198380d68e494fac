//! Idle clients: XEP-0199 pings and a disconnect when nothing answers.
//!
//! The core knows when each connection last sent bytes. A bound client that
//! has been silent for `--ping-idle` is sent
//! `<iq type='get' from='DOMAIN' to='FULL-JID'><ping xmlns='urn:xmpp:ping'/></iq>`
//! through [`SessionManager::send`](xmpp_session::SessionManager::send).
//! Any bytes that arrive afterwards count as the answer: the reply to the
//! ping is such bytes (a client without XEP-0199 answers with an error,
//! which also proves it is there), and so is any other stanza or a
//! whitespace keepalive. If nothing arrives within `--ping-timeout`, the
//! stream is closed with `connection-timeout`. A client that authenticated
//! but never bound a resource cannot be pinged; it is closed after
//! `--ping-idle` plus `--ping-timeout` of silence.
//!
//! The core checks every connection on a timer ([`Liveness::tick`]).

use std::time::{Duration, Instant};

use xmpp_session::Element;
use xmpp_session::jid::FullJid;
use xmpp_session::minidom::rxml::xml_ncname;

/// The iq id of the server's pings (replies to it are never routed).
pub const PING_ID: &str = "server-ping";

/// The liveness state of one connection.
#[derive(Debug, Clone)]
pub struct Liveness {
    last_input: Instant,
    pinged: Option<Instant>,
}

/// What [`Liveness::due`] asks the core to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Send a ping now.
    Ping,
    /// Close the stream: the client did not answer.
    Close,
}

impl Liveness {
    /// A connection that has just opened.
    pub fn new(now: Instant) -> Liveness {
        Liveness {
            last_input: now,
            pinged: None,
        }
    }

    /// Bytes arrived from the client.
    pub fn input(&mut self, now: Instant) {
        self.last_input = now;
        self.pinged = None;
    }

    /// What to do at `now` with an authenticated connection (`bound` if it
    /// has a resource to ping), given `idle` and `timeout`; `None` when
    /// pings are off (`idle` zero) or nothing is due.
    pub fn due(
        &mut self,
        bound: bool,
        idle: Duration,
        timeout: Duration,
        now: Instant,
    ) -> Option<Due> {
        if idle.is_zero() {
            return None;
        }
        let silent = now.saturating_duration_since(self.last_input);
        match self.pinged {
            Some(at) if now.saturating_duration_since(at) >= timeout => Some(Due::Close),
            Some(_) => None,
            None if silent < idle => None,
            None if bound => {
                self.pinged = Some(now);
                Some(Due::Ping)
            }
            None if silent >= idle.saturating_add(timeout) => Some(Due::Close),
            None => None,
        }
    }

    /// How often the core should call [`Liveness::due`]: a quarter of the
    /// shorter timer, between 100 ms and 10 s.
    pub fn tick(idle: Duration, timeout: Duration) -> Duration {
        (idle.min(timeout) / 4).clamp(Duration::from_millis(100), Duration::from_secs(10))
    }
}

/// The ping for `to`, from the server's `domain`.
pub fn ping(domain: &str, to: &FullJid) -> Element {
    Element::builder("iq", "jabber:client")
        .attr(xml_ncname!("type").into(), "get")
        .attr(xml_ncname!("id").into(), PING_ID)
        .attr(xml_ncname!("from").into(), domain)
        .attr(xml_ncname!("to").into(), to.to_string())
        .append(Element::builder("ping", "urn:xmpp:ping").build())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// Runs `steps` on a fresh connection with a 10 s idle limit and a 5 s
    /// timeout: (second, input arrives then, bound, expected answer).
    fn script(steps: &[(u64, bool, bool, Option<Due>)]) {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0);
        for &(at, input, bound, want) in steps {
            let now = t0 + Duration::from_secs(at);
            if input {
                l.input(now);
            }
            assert_eq!(l.due(bound, 10 * S, 5 * S, now), want, "at {at} s");
        }
    }

    #[test]
    fn silent_bound_client_is_pinged_then_closed() {
        // One ping only while waiting for the answer.
        script(&[
            (9, false, true, None),
            (10, false, true, Some(Due::Ping)),
            (12, false, true, None),
            (15, false, true, Some(Due::Close)),
        ]);
    }

    #[test]
    fn any_input_answers_the_ping() {
        script(&[
            (10, false, true, Some(Due::Ping)),
            (11, true, true, None),
            (16, false, true, None),
            (21, false, true, Some(Due::Ping)),
        ]);
    }

    #[test]
    fn unbound_clients_are_closed_without_a_ping() {
        script(&[
            (14, false, false, None),
            (15, false, false, Some(Due::Close)),
        ]);
    }

    #[test]
    fn zero_idle_limit_turns_pings_off() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0);
        assert_eq!(l.due(true, Duration::ZERO, S, t0 + 1000 * S), None);
    }

    #[test]
    fn ping_stanza() {
        let to: FullJid = "a@localhost/r".parse().unwrap();
        assert_eq!(
            String::from(&ping("localhost", &to)),
            "<iq xmlns='jabber:client' from='localhost' id='server-ping' to='a@localhost/r' \
             type='get'><ping xmlns='urn:xmpp:ping'/></iq>"
        );
    }
}
