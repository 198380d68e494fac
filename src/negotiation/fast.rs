//! FAST (XEP-0484), the session's half: the `HT-SHA-256-*` mechanisms
//! (draft-schmaus-kitten-sasl-ht) inside SASL2.
//!
//! The client sends `authcid NUL HMAC-SHA-256(token, "Initiator" || cb)`
//! as its initial response with `<fast xmlns='urn:xmpp:fast:0'/>` and its
//! user-agent id, where `cb` is the connection's channel-binding data of
//! the mechanism's type (`-EXPR`: tls-exporter, `-ENDP`:
//! tls-server-end-point, `-NONE`: empty). The session asks storage for that
//! client's tokens ([`Request::FastTokens`]) and checks the HMAC against
//! the current and the previous token (constant time; expired tokens and
//! tokens issued for another mechanism never match). The success data is
//! `HMAC-SHA-256(token, "Responder" || cb)`. No PBKDF2 anywhere.
//!
//! A binding mechanism is offered only when the connection's
//! [`TlsInfo`](crate::TlsInfo) carries its data. `-UNIQ` is never offered:
//! tls-unique does not exist in TLS 1.3, and rustls does not expose it.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{Ctx, Step};
use crate::account::AccountJid;
use crate::sasl::{ChannelBindingType, ChannelBindings, SaslFailure};
use crate::sasl2::{FastAttempt, FastVerified, Sasl2Inline};
use crate::session::{Blocked, Session};
use crate::storage::{FastToken, FastTokens, Request, Response};

/// The FAST mechanism without channel binding (the default of a stored
/// token).
pub(crate) const HT_SHA_256_NONE: &str = "HT-SHA-256-NONE";

/// A FAST (`HT-SHA-256-*`) mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FastMechanism {
    /// `HT-SHA-256-EXPR`: bound to tls-exporter.
    Expr,
    /// `HT-SHA-256-ENDP`: bound to tls-server-end-point.
    Endp,
    /// `HT-SHA-256-NONE`: no channel binding.
    None,
}

impl FastMechanism {
    /// All, in the order they are offered.
    const ALL: [FastMechanism; 3] = [Self::Expr, Self::Endp, Self::None];

    /// The registered name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Expr => "HT-SHA-256-EXPR",
            Self::Endp => "HT-SHA-256-ENDP",
            Self::None => HT_SHA_256_NONE,
        }
    }

    /// The channel-binding type it needs, if any.
    fn binding(self) -> Option<ChannelBindingType> {
        match self {
            Self::Expr => Some(ChannelBindingType::TlsExporter),
            Self::Endp => Some(ChannelBindingType::TlsServerEndPoint),
            Self::None => None,
        }
    }

    /// The mechanism named `name`.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The mechanism named `name`, if it is offered with `bindings`.
    pub(crate) fn offered(name: &str, bindings: Option<&ChannelBindings>) -> Option<Self> {
        Self::from_name(name).filter(|m| m.cb_data(bindings).is_some())
    }

    /// The mechanisms offered with `bindings` (the connection's data, if
    /// any), in order.
    pub(crate) fn offered_all(
        bindings: Option<&ChannelBindings>,
    ) -> impl Iterator<Item = Self> + '_ {
        Self::ALL
            .into_iter()
            .filter(move |m| m.cb_data(bindings).is_some())
    }

    /// The channel-binding data it hashes: empty for `-NONE`, `None` when
    /// the connection lacks its type.
    fn cb_data(self, bindings: Option<&ChannelBindings>) -> Option<Vec<u8>> {
        match self.binding() {
            None => Some(Vec::new()),
            Some(kind) => bindings?.get(kind).map(<[u8]>::to_vec),
        }
    }
}

/// The storage key of a client: SHA-256 of its user-agent id, in hex.
pub(crate) fn client_key(user_agent: &str) -> String {
    Sha256::digest(user_agent.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `HMAC-SHA-256(secret, label || cb)`.
fn labelled_hmac(secret: &[u8], label: &[u8], cb: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(label);
    mac.update(cb);
    Some(mac)
}

/// Whether `attempt`'s proof is the client's HMAC for an unexpired `token`
/// issued for the attempt's mechanism.
fn matches(token: Option<&FastToken>, attempt: &FastAttempt, unix_now: u64) -> bool {
    let Some(token) = token.filter(|t| t.expires > unix_now && t.mechanism == attempt.mechanism)
    else {
        return false;
    };
    labelled_hmac(&token.secret, b"Initiator", &attempt.cb_data)
        .is_some_and(|mac| mac.verify_slice(&attempt.proof).is_ok())
}

impl Session {
    /// `<authenticate mechanism='HT-SHA-256-*'>`: reads the initial
    /// response and asks storage for the client's tokens.
    pub(super) fn start_fast(
        &mut self,
        ctx: &mut Ctx<'_>,
        mechanism: FastMechanism,
        mut inline: Sasl2Inline,
        initial: Option<Zeroizing<Vec<u8>>>,
    ) -> Step {
        let cb_data = mechanism.cb_data(self.channel_bindings());
        let user_agent = inline.user_agent.clone();
        let usable = ctx.config.fast_on() && inline.fast.is_some();
        let parsed = initial.as_deref().and_then(|data| {
            let split = data.iter().position(|b| *b == 0)?;
            let (name, proof) = (data.get(..split)?, data.get(split.saturating_add(1)..)?);
            Some((std::str::from_utf8(name).ok()?.to_owned(), proof.to_vec()))
        });
        self.set_sasl2(Some(Box::default()));
        let Some(cb_data) = cb_data.filter(|_| usable) else {
            return self.sasl_failure(ctx, SaslFailure::InvalidMechanism, None);
        };
        if !self.secure && ctx.config.require_tls {
            return self.sasl_failure(ctx, SaslFailure::EncryptionRequired, None);
        }
        let (Some(user_agent), Some((username, proof))) = (user_agent, parsed) else {
            return self.sasl_failure(ctx, SaslFailure::MalformedRequest, None);
        };
        let host = self.host.as_deref().unwrap_or_default();
        let Ok(account) = AccountJid::new(&username, host) else {
            return self.sasl_failure(ctx, SaslFailure::NotAuthorized, None);
        };
        inline.fast_attempt = Some(FastAttempt {
            username,
            proof,
            mechanism: mechanism.name(),
            cb_data,
        });
        self.set_sasl2(Some(Box::new(inline)));
        self.blocked = Some(Blocked::Credentials);
        Step::SaslRequest(Request::FastTokens {
            account,
            client: client_key(&user_agent),
        })
    }

    /// The client's tokens arrived: check the proof. `None` when this
    /// session is not waiting for FAST tokens.
    pub(crate) fn fast_answer(
        &mut self,
        ctx: &mut Ctx<'_>,
        response: &Response,
        unix_now: u64,
    ) -> Option<Step> {
        let inline = self.negotiating_mut()?.sasl2.as_mut()?;
        let attempt = inline.fast_attempt.take()?;
        let Response::FastTokens(tokens) = response else {
            return Some(self.sasl_failure(ctx, SaslFailure::TemporaryAuthFailure, None));
        };
        let verified = if matches(tokens.current.as_ref(), &attempt, unix_now) {
            // The newest token is in use: the one before it is no longer valid.
            tokens.current.clone().map(|used| FastVerified {
                after: FastTokens {
                    current: Some(used.clone()),
                    previous: None,
                },
                used,
            })
        } else if matches(tokens.previous.as_ref(), &attempt, unix_now) {
            tokens.previous.clone().map(|used| FastVerified {
                used,
                after: tokens.clone(),
            })
        } else {
            None
        };
        let Some(verified) = verified else {
            return Some(self.sasl_failure(ctx, SaslFailure::NotAuthorized, None));
        };
        let responder = labelled_hmac(&verified.used.secret, b"Responder", &attempt.cb_data)
            .map(|mac| mac.finalize().into_bytes().to_vec());
        let Some(responder) = responder else {
            return Some(self.sasl_failure(ctx, SaslFailure::TemporaryAuthFailure, None));
        };
        if let Some(inline) = self.negotiating_mut().and_then(|n| n.sasl2.as_mut()) {
            inline.fast_verified = Some(verified);
        }
        Some(self.sasl_success(ctx, &attempt.username, Some(&responder)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(mechanism: FastMechanism, cb: &[u8]) -> FastAttempt {
        let proof = labelled_hmac(b"secret", b"Initiator", cb)
            .map(|mac| mac.finalize().into_bytes().to_vec())
            .unwrap_or_default();
        FastAttempt {
            username: "u".into(),
            proof,
            mechanism: mechanism.name(),
            cb_data: cb.to_vec(),
        }
    }

    #[test]
    fn expired_wrong_and_other_mechanism_tokens_never_match() {
        let token = FastToken {
            secret: b"secret".to_vec(),
            expires: 100,
            mechanism: HT_SHA_256_NONE.into(),
        };
        let good = attempt(FastMechanism::None, b"");
        assert!(matches(Some(&token), &good, 99));
        assert!(!matches(Some(&token), &good, 100));
        let mut short = attempt(FastMechanism::None, b"");
        short.proof.pop();
        assert!(!matches(Some(&token), &short, 99));
        assert!(!matches(None, &good, 0));
        // Right secret and binding data, but the token is for -NONE.
        assert!(!matches(
            Some(&token),
            &attempt(FastMechanism::Endp, b""),
            99
        ));
        let mut bound = token.clone();
        bound.mechanism = "HT-SHA-256-ENDP".into();
        assert!(matches(
            Some(&bound),
            &attempt(FastMechanism::Endp, b"cb"),
            99
        ));
        let mut other_cb = attempt(FastMechanism::Endp, b"cb");
        other_cb.cb_data = b"bc".to_vec();
        assert!(!matches(Some(&bound), &other_cb, 99));
        assert_eq!(client_key("a").len(), 64);
    }

    #[test]
    fn binding_mechanisms_are_offered_with_their_data_only() {
        let names = |b: Option<&ChannelBindings>| {
            FastMechanism::offered_all(b)
                .map(FastMechanism::name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(None), ["HT-SHA-256-NONE"]);
        let endp = ChannelBindings::default().with_tls_server_end_point(vec![1]);
        assert_eq!(names(Some(&endp)), ["HT-SHA-256-ENDP", "HT-SHA-256-NONE"]);
        let both = endp.with_tls_exporter(vec![2]);
        assert_eq!(
            names(Some(&both)),
            ["HT-SHA-256-EXPR", "HT-SHA-256-ENDP", "HT-SHA-256-NONE"]
        );
        assert_eq!(FastMechanism::offered("HT-SHA-256-EXPR", None), None);
        assert_eq!(FastMechanism::offered("HT-SHA-256-UNIQ", Some(&both)), None);
    }
}
