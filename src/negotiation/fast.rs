//! FAST (XEP-0484), the session's half: the `HT-SHA-256-NONE` mechanism
//! (draft-schmaltz-hashed-token) inside SASL2.
//!
//! The client sends `authcid NUL HMAC-SHA-256(token, "Initiator")` as its
//! initial response with `<fast xmlns='urn:xmpp:fast:0'/>` and its
//! user-agent id. The session asks storage for that client's tokens
//! ([`Request::FastTokens`]) and checks the HMAC against the current and
//! the previous token (constant time; expired tokens never match). The
//! success data is `HMAC-SHA-256(token, "Responder")`. No PBKDF2 anywhere.
//!
//! Channel-binding variants (`-ENDP`, `-EXPR`, `-UNIQ`) are not offered
//! yet, although a TLS connection's binding data may now be known (see
//! [`TlsInfo`](crate::TlsInfo)); SCRAM-*-PLUS uses it.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{Ctx, Step};
use crate::account::AccountJid;
use crate::sasl::SaslFailure;
use crate::sasl2::{FastAttempt, FastVerified, Sasl2Inline};
use crate::session::{Blocked, Session};
use crate::storage::{FastToken, FastTokens, Request, Response};

/// The one FAST mechanism offered.
pub(crate) const HT_SHA_256_NONE: &str = "HT-SHA-256-NONE";

/// The storage key of a client: SHA-256 of its user-agent id, in hex.
pub(crate) fn client_key(user_agent: &str) -> String {
    Sha256::digest(user_agent.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `HMAC-SHA-256(secret, label)`.
pub(crate) fn token_hmac(secret: &[u8], label: &[u8]) -> Option<Vec<u8>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(label);
    Some(mac.finalize().into_bytes().to_vec())
}

/// Whether `proof` is the client's HMAC for an unexpired `token`.
fn matches(token: Option<&FastToken>, proof: &[u8], unix_now: u64) -> bool {
    let Some(token) = token.filter(|t| t.expires > unix_now) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&token.secret) else {
        return false;
    };
    mac.update(b"Initiator");
    mac.verify_slice(proof).is_ok()
}

impl Session {
    /// `<authenticate mechanism='HT-SHA-256-NONE'>`: reads the initial
    /// response and asks storage for the client's tokens.
    pub(super) fn start_fast(
        &mut self,
        ctx: &mut Ctx<'_>,
        mut inline: Sasl2Inline,
        initial: Option<Zeroizing<Vec<u8>>>,
    ) -> Step {
        let user_agent = inline.user_agent.clone();
        let usable = ctx.config.fast_on() && inline.fast.is_some();
        let parsed = initial.as_deref().and_then(|data| {
            let split = data.iter().position(|b| *b == 0)?;
            let (name, proof) = (data.get(..split)?, data.get(split.saturating_add(1)..)?);
            Some((std::str::from_utf8(name).ok()?.to_owned(), proof.to_vec()))
        });
        self.set_sasl2(Some(Box::default()));
        if !usable {
            return self.sasl_failure(ctx, SaslFailure::InvalidMechanism, None);
        }
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
        inline.fast_attempt = Some(FastAttempt { username, proof });
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
        let verified = if matches(tokens.current.as_ref(), &attempt.proof, unix_now) {
            // The newest token is in use: the one before it is no longer valid.
            tokens.current.clone().map(|used| FastVerified {
                after: FastTokens {
                    current: Some(used.clone()),
                    previous: None,
                },
                used,
            })
        } else if matches(tokens.previous.as_ref(), &attempt.proof, unix_now) {
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
        let Some(responder) = token_hmac(&verified.used.secret, b"Responder") else {
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

    #[test]
    fn expired_and_wrong_tokens_never_match() {
        let token = FastToken {
            secret: b"secret".to_vec(),
            expires: 100,
        };
        let proof = token_hmac(b"secret", b"Initiator").unwrap_or_default();
        assert!(matches(Some(&token), &proof, 99));
        assert!(!matches(Some(&token), &proof, 100));
        assert!(!matches(Some(&token), &proof[1..], 99));
        assert!(!matches(None, &proof, 0));
        assert_eq!(client_key("a").len(), 64);
    }
}
