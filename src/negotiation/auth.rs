//! STARTTLS as a signal (RFC 6120 §5) and SASL (RFC 6120 §6).
//!
//! SASL never blocks the core loop on crypto: SCRAM asks storage for the stored
//! keys ([`Request::Credentials`]) and does only cheap HMACs; PLAIN hands the
//! password to the embedder ([`Request::VerifyPassword`]), which runs PBKDF2
//! wherever it likes and answers with [`Response::PasswordChecked`].
//!
//! What is wiped (zeroized) on the way: a copy of the `<auth/>`/`<response/>`
//! base64 text (made only when it is split over several text nodes; otherwise
//! it is decoded in place), the decoded payload bytes, the text nodes of the
//! SASL element itself, the SASLprepped copy made to validate a PLAIN password,
//! and the [`Password`](crate::sasl::Password) in the request (on drop, wherever
//! the embedder drops it). Not wiped: the raw bytes in the stream reader's input
//! buffer (overwritten as later input arrives) and any temporary copies made
//! inside `stringprep`.

use std::collections::VecDeque;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{BufMut, BytesMut};
use minidom::Element;
use zeroize::{Zeroize, Zeroizing};

use super::{Ctx, Step};
use crate::account::AccountJid;
use crate::config::Config;
use crate::error::{StreamError, StreamErrorCondition};
use crate::ids::SessionId;
use crate::output::{Output, TlsInfo};
use crate::sasl::{ChannelBindings, Mechanism, SaslExchange, SaslFailure, SaslStep};
use crate::session::{Blocked, Phase, Session, SessionKind};
use crate::storage::{Request, Response};
use crate::xml::{self, NS_SASL, NS_SASL2, NS_TLS};

/// Bytes of randomness in a SCRAM server nonce.
const NONCE_BYTES: usize = 18;

impl Session {
    pub(super) fn handle_starttls(&mut self, ctx: &mut Ctx<'_>) -> Step {
        if self.kind() == SessionKind::Unauthenticated && !self.secure && self.starttls_available {
            self.send_element(ctx.out, &Element::bare("proceed", NS_TLS));
            ctx.out.push_back(Output::StartTls { session: self.id });
            // Anything the client sent after <starttls/> in plaintext is
            // dropped: processing it would allow command injection.
            self.reader.restart_discarding();
            self.set_awaiting_tls(true);
            self.notopen = true;
            return Step::Idle;
        }
        // RFC 6120 §5.4.2.2: <failure/> and close, with no stream error.
        self.send_element(ctx.out, &Element::bare("failure", NS_TLS));
        self.close(ctx, None);
        Step::Closed
    }

    /// The transport finished the TLS handshake (or, on direct TLS, tells
    /// its facts). The channel-binding data is kept while negotiating on a
    /// secure stream whose header has not been read yet.
    pub(crate) fn tls_established(&mut self, info: TlsInfo) {
        if self.awaiting_tls() {
            self.set_awaiting_tls(false);
            self.secure = true;
        }
        // Only before the stream header: features already sent without
        // -PLUS must not be followed by a check that assumes it was offered.
        if self.secure
            && self.notopen
            && let Some(negotiating) = self.negotiating_mut()
        {
            negotiating.channel_bindings = info.into_channel_bindings();
        }
    }

    /// The channel-binding data of this stream, if it is secure and still
    /// negotiating.
    pub(super) fn channel_bindings(&self) -> Option<&ChannelBindings> {
        match &self.phase {
            Phase::Negotiating(n) if self.secure && !n.channel_bindings.is_empty() => {
                Some(&n.channel_bindings)
            }
            _ => None,
        }
    }

    /// Mechanisms offered on this stream.
    pub(super) fn offered_mechanisms<'c>(
        &self,
        config: &'c Config,
    ) -> impl Iterator<Item = Mechanism> + 'c {
        let secure = self.secure;
        let binding = self.channel_bindings().is_some();
        config
            .mechanisms
            .iter()
            .copied()
            .filter(move |m| secure || !m.is_plaintext() || config.allow_plain_without_tls)
            .filter(move |m| binding || !m.is_plus())
    }

    /// Handles one SASL element, then wipes its text (the base64 payload, which
    /// for PLAIN is the password).
    pub(super) fn handle_sasl(&mut self, ctx: &mut Ctx<'_>, mut el: Element) -> Step {
        let step = self.handle_sasl_element(ctx, &el);
        for text in el.texts_mut() {
            text.zeroize();
        }
        // SASL2 carries the payload in `<initial-response/>`.
        for child in el.children_mut() {
            for text in child.texts_mut() {
                text.zeroize();
            }
        }
        step
    }

    fn handle_sasl_element(&mut self, ctx: &mut Ctx<'_>, el: &Element) -> Step {
        let sasl2 = el.has_ns(NS_SASL2);
        match el.name() {
            "auth" if !sasl2 => self.handle_auth(ctx, el),
            "authenticate" if sasl2 => self.handle_authenticate(ctx, el),
            "response" => {
                // A response continues only an exchange of its own protocol.
                let same_protocol = sasl2 == self.sasl2_active();
                let Some(exchange) = self.sasl_mut().filter(|_| same_protocol) else {
                    self.answer_in(sasl2);
                    return self.sasl_failure(
                        ctx,
                        SaslFailure::NotAuthorized,
                        Some("Out of order SASL element"),
                    );
                };
                let Some(data) = element_payload(el) else {
                    return self.sasl_failure(ctx, SaslFailure::IncorrectEncoding, None);
                };
                match exchange.respond_inline(data.as_ref().map_or(&[][..], |data| data.as_slice()))
                {
                    Ok((username, server_final)) => {
                        self.sasl_success(ctx, &username, Some(server_final.as_slice()))
                    }
                    Err(step) => self.apply_sasl_step(ctx, step),
                }
            }
            "abort" => {
                self.answer_in(sasl2);
                self.send_failure(ctx, SaslFailure::Aborted, None);
                self.set_sasl(None);
                self.set_sasl2(None);
                Step::Continue
            }
            _ => {
                self.close(
                    ctx,
                    Some(StreamError::new(
                        StreamErrorCondition::UnsupportedStanzaType,
                    )),
                );
                Step::Closed
            }
        }
    }

    /// Failures are answered in the protocol of the element being answered
    /// (forgetting any exchange of the other one).
    fn answer_in(&mut self, sasl2: bool) {
        if sasl2 != self.sasl2_active() {
            self.set_sasl(None);
            self.set_sasl2(sasl2.then(Box::default));
        }
    }

    fn handle_auth(&mut self, ctx: &mut Ctx<'_>, el: &Element) -> Step {
        // A new <auth/> discards any exchange in progress.
        self.set_sasl(None);
        self.set_sasl2(None);
        let Some(initial) = element_payload(el) else {
            return self.sasl_failure(ctx, SaslFailure::IncorrectEncoding, None);
        };
        self.start_exchange(ctx, xml::attr(el, "mechanism"), initial)
    }

    /// Starts the exchange for `<auth/>` or `<authenticate/>` (whose
    /// protocol is already recorded): mechanism checks, then the first step.
    pub(super) fn start_exchange(
        &mut self,
        ctx: &mut Ctx<'_>,
        mechanism: Option<&str>,
        initial: Option<Zeroizing<Vec<u8>>>,
    ) -> Step {
        if !self.secure && ctx.config.require_tls {
            return self.sasl_failure(ctx, SaslFailure::EncryptionRequired, None);
        }
        let Some(mechanism) = mechanism.and_then(Mechanism::from_name) else {
            return self.sasl_failure(ctx, SaslFailure::InvalidMechanism, None);
        };
        // A -PLUS mechanism needs this connection's binding data.
        if !ctx.config.mechanisms.contains(&mechanism)
            || (mechanism.is_plus() && self.channel_bindings().is_none())
        {
            return self.sasl_failure(ctx, SaslFailure::InvalidMechanism, None);
        }
        if !self.offered_mechanisms(ctx.config).any(|m| m == mechanism) {
            return self.sasl_failure(ctx, SaslFailure::EncryptionRequired, None);
        }
        let mut nonce = [0u8; NONCE_BYTES];
        if ctx.rng.fill(&mut nonce).is_err() {
            // Never a predictable nonce: no randomness, no login.
            self.close(
                ctx,
                Some(StreamError::new(StreamErrorCondition::InternalServerError)),
            );
            return Step::Closed;
        }
        let domain = self.host.clone().unwrap_or_default();
        // Binding is checked (and `y` refused) only when -PLUS was offered.
        let plus_offered = self.offered_mechanisms(ctx.config).any(Mechanism::is_plus);
        let bindings = self
            .channel_bindings()
            .filter(|_| plus_offered)
            .cloned()
            .unwrap_or_default();
        let (exchange, step) = SaslExchange::start_with_channel_binding(
            mechanism,
            initial.as_ref().map(|data| data.as_slice()),
            &nonce,
            &domain,
            bindings,
        );
        self.set_sasl(Some(exchange));
        self.apply_sasl_step(ctx, step)
    }

    /// The embedder's answer to this session's [`Step::SaslRequest`]: stored
    /// credentials for SCRAM, a password verdict for PLAIN. Any other answer
    /// (including [`Response::Failed`]) is `temporary-auth-failure`.
    pub(crate) fn sasl_answer(
        &mut self,
        ctx: &mut Ctx<'_>,
        response: Response,
        unix_now: u64,
    ) -> Step {
        if self.blocked != Some(Blocked::Credentials) {
            return Step::Continue;
        }
        self.blocked = None;
        if let Some(step) = self.fast_answer(ctx, &response, unix_now) {
            return step;
        }
        let id = self.id;
        let sasl2 = self.sasl2_active();
        let Some(exchange) = self.sasl_mut() else {
            return Step::Continue;
        };
        let plain = exchange.mechanism().is_plaintext();
        let ns = if sasl2 { NS_SASL2 } else { NS_SASL };
        let step = match response {
            Response::Credentials(creds) if !plain => {
                match exchange.offer_credentials(creds.as_ref()) {
                    Ok(challenge) => {
                        send_payload(ctx.out, id, ns, "challenge", Some(challenge));
                        return Step::Continue;
                    }
                    Err(step) => step,
                }
            }
            Response::PasswordChecked(check) if plain => exchange.provide_password_check(check),
            _ => SaslStep::Failure {
                failure: SaslFailure::TemporaryAuthFailure,
                text: None,
            },
        };
        self.apply_sasl_step(ctx, step)
    }

    fn apply_sasl_step(&mut self, ctx: &mut Ctx<'_>, step: SaslStep) -> Step {
        match step {
            SaslStep::Challenge(data) => {
                let ns = if self.sasl2_active() {
                    NS_SASL2
                } else {
                    NS_SASL
                };
                send_payload(ctx.out, self.id, ns, "challenge", Some(&data));
                Step::Continue
            }
            SaslStep::NeedCredentials { username } => {
                // Accounts are keyed by their nodeprepped name.
                let host = self.host.as_deref().unwrap_or_default();
                let Ok(account) = AccountJid::new(&username, host) else {
                    return self.sasl_failure(ctx, SaslFailure::NotAuthorized, None);
                };
                self.blocked = Some(Blocked::Credentials);
                Step::SaslRequest(Request::Credentials { account })
            }
            SaslStep::VerifyPassword { username, password } => {
                let host = self.host.as_deref().unwrap_or_default();
                let Ok(account) = AccountJid::new(&username, host) else {
                    // `password` is wiped as it drops here.
                    return self.sasl_failure(ctx, SaslFailure::NotAuthorized, None);
                };
                self.blocked = Some(Blocked::Credentials);
                Step::SaslRequest(Request::VerifyPassword { account, password })
            }
            SaslStep::Success {
                username,
                additional_data,
            } => self.sasl_success(ctx, &username, additional_data.as_deref()),
            SaslStep::Failure { failure, text } => self.sasl_failure(ctx, failure, text),
        }
    }

    /// Sends `<success/>` (with the additional data, if any) and restarts
    /// the stream as the authenticated `username`. After `<authenticate/>`
    /// (SASL2) nothing is sent yet and the stream is not restarted: the
    /// manager applies the inline requests and sends `<success/>`.
    pub(super) fn sasl_success(
        &mut self,
        ctx: &mut Ctx<'_>,
        username: &str,
        additional_data: Option<&[u8]>,
    ) -> Step {
        let Ok(node) = jid::NodePart::new(username) else {
            return self.sasl_failure(
                ctx,
                SaslFailure::NotAuthorized,
                Some("User authenticated successfully, but username was invalid"),
            );
        };
        let inline = self.negotiating_mut().and_then(|n| n.sasl2.take());
        self.set_sasl(None);
        self.username = Some(node.as_str().to_owned());
        self.phase = Phase::Authenticated;
        self.reader.set_limits(ctx.config.limits);
        if let Some(inline) = inline {
            // Nothing more is read until the manager has sent <success/>.
            self.blocked = Some(Blocked::Manager);
            return Step::Sasl2(Box::new(super::sasl2::Sasl2Success {
                additional_data: additional_data.map(<[u8]>::to_vec),
                inline: *inline,
            }));
        }
        send_payload(ctx.out, self.id, NS_SASL, "success", additional_data);
        self.notopen = true;
        self.reader.restart();
        Step::Authenticated
    }

    fn send_failure(&self, ctx: &mut Ctx<'_>, failure: SaslFailure, text: Option<&str>) {
        let el = if self.sasl2_active() {
            super::sasl2::failure(failure.condition(), text)
        } else {
            let mut el = Element::bare("failure", NS_SASL);
            el.append_child(Element::bare(failure.condition(), NS_SASL));
            if let Some(text) = text {
                el.append_child(xml::text_element("text", NS_SASL, text));
            }
            el
        };
        self.send_element(ctx.out, &el);
    }

    /// Sends `<failure/>`, forgets the exchange and counts the attempt;
    /// too many attempts close the stream.
    pub(super) fn sasl_failure(
        &mut self,
        ctx: &mut Ctx<'_>,
        failure: SaslFailure,
        text: Option<&str>,
    ) -> Step {
        self.set_sasl(None);
        self.send_failure(ctx, failure, text);
        self.set_sasl2(None);
        let failures = match self.negotiating_mut() {
            Some(n) => {
                n.failures = n.failures.saturating_add(1);
                n.failures
            }
            None => u32::MAX,
        };
        if failures >= ctx.config.max_auth_failures {
            self.close(
                ctx,
                Some(StreamError::with_text(
                    StreamErrorCondition::PolicyViolation,
                    "Too many failed authentication attempts",
                )),
            );
            return Step::Closed;
        }
        Step::Continue
    }
}

/// Queues `<name xmlns=ns>` (SASL or SASL2) with `data` in
/// base64 (`=` when empty), or the empty element when there is no data,
/// written directly: the same bytes the writer gives for such an element
/// (base64 needs no escaping).
pub(super) fn send_payload(
    out: &mut VecDeque<Output>,
    session: SessionId,
    ns: &str,
    name: &str,
    data: Option<&[u8]>,
) {
    let encoded = data.map_or(0, |data| {
        base64::encoded_len(data.len(), true).unwrap_or(0).max(1)
    });
    let mut buf = BytesMut::with_capacity(2 * name.len() + ns.len() + encoded + 16);
    buf.put_u8(b'<');
    buf.put_slice(name.as_bytes());
    buf.put_slice(b" xmlns='");
    buf.put_slice(ns.as_bytes());
    match data {
        None => buf.put_slice(b"'/>"),
        Some(data) => {
            buf.put_slice(b"'>");
            if data.is_empty() {
                buf.put_u8(b'=');
            } else {
                let start = buf.len();
                buf.resize(start.saturating_add(encoded), 0);
                let written = buf
                    .get_mut(start..)
                    .and_then(|tail| BASE64.encode_slice(data, tail).ok())
                    .unwrap_or(0);
                buf.truncate(start.saturating_add(written));
            }
            buf.put_slice(b"</");
            buf.put_slice(name.as_bytes());
            buf.put_u8(b'>');
        }
    }
    out.push_back(Output::Transmit {
        session,
        data: buf.freeze(),
    });
}

/// Decodes the payload of a SASL element (see [`decode_payload`]). Its one
/// text node is decoded where it is; only text split over several nodes is
/// first joined into a copy, wiped after use.
pub(super) fn element_payload(el: &Element) -> Option<Option<Zeroizing<Vec<u8>>>> {
    let mut texts = el.texts();
    match (texts.next(), texts.next()) {
        (None, _) => decode_payload(""),
        (Some(text), None) => decode_payload(text),
        (Some(_), Some(_)) => decode_payload(&Zeroizing::new(el.text())),
    }
}

/// Decodes a SASL payload: `None` on bad base64, `Some(None)` when there is
/// no data at all, `Some(Some(empty))` for `=`. The decoded bytes (a PLAIN
/// password among them) are wiped when dropped.
fn decode_payload(text: &str) -> Option<Option<Zeroizing<Vec<u8>>>> {
    let text = text.trim();
    if text.is_empty() {
        return Some(None);
    }
    if text == "=" {
        return Some(Some(Zeroizing::new(Vec::new())));
    }
    BASE64
        .decode(text)
        .ok()
        .map(|data| Some(Zeroizing::new(data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `send_payload` writes what serialising the element would.
    #[test]
    fn direct_payload_matches_the_writer() {
        let session = SessionId(7);
        for (name, data) in [
            ("challenge", Some(&b"r=abc,s=c2FsdA==,i=4096"[..])),
            ("challenge", Some(&b""[..])),
            ("success", Some(&b"v=\x00\xff\x10"[..])),
            ("success", None),
        ] {
            let mut out = VecDeque::new();
            send_payload(&mut out, session, NS_SASL, name, data);
            let mut el = Element::bare(name, NS_SASL);
            if let Some(data) = data {
                el.append_text_node(if data.is_empty() {
                    "=".to_owned()
                } else {
                    BASE64.encode(data)
                });
            }
            let expected = crate::stream::element_bytes(&el);
            assert_eq!(
                out.pop_front(),
                Some(Output::Transmit {
                    session,
                    data: expected
                })
            );
            assert!(out.is_empty());
        }
    }

    #[test]
    fn element_payload_joins_text_nodes() {
        let decoded = |el: &Element| element_payload(el).map(|data| data.map(|d| d.to_vec()));
        let mut el = Element::bare("auth", NS_SASL);
        assert_eq!(decoded(&el), Some(None));
        el.append_text_node("AGEA");
        assert_eq!(decoded(&el), Some(Some(b"\0a\0".to_vec())));
        el.append_child(Element::bare("x", NS_SASL));
        el.append_text_node("Yg==");
        assert_eq!(decoded(&el), Some(Some(b"\0a\0b".to_vec())));
    }

    #[test]
    fn payload_decoding() {
        let plain = |text: &str| decode_payload(text).map(|data| data.map(|data| data.to_vec()));
        assert_eq!(plain(""), Some(None));
        assert_eq!(plain(" = "), Some(Some(vec![])));
        assert_eq!(plain("AGEAYg=="), Some(Some(b"\0a\0b".to_vec())));
        assert_eq!(plain("!!"), None);
    }
}
