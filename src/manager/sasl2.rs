//! SASL2 (XEP-0388) and Bind2 (XEP-0386), the manager's half: once the
//! exchange succeeded, the inline requests are applied in order — SM
//! resume, else Bind2 with its inline features — and one `<success/>`
//! carries the results. No stream restart.
//!
//! * **Resume** (`<resume xmlns='urn:xmpp:sm:3'/>` in `<authenticate/>`):
//!   the hibernating (or still connected) session moves onto this
//!   connection exactly as with the nonza; `<resumed/>` is inside
//!   `<success/>` (whose authorization identifier is the resumed full
//!   JID), the unacknowledged stanzas follow it. A resume that fails puts
//!   `<failed/>` into `<success/>` and the login goes on to Bind2 if asked.
//! * **Bind2**: the resource is derived from the tag and the user-agent id
//!   (`negotiation::bind2_resource`); the conflict policy and resource
//!   limit are those of RFC 6120 binding. The inline features' results go
//!   into `<bound xmlns='urn:xmpp:bind:0'/>`. If binding is refused, the
//!   client gets a SASL2 `<failure>` with `<aborted/>` and the error text,
//!   and the stream is closed (no stream error): it authenticated but has
//!   nothing to do.
//! * **Neither**: `<success/>` names the bare JID; the client may bind
//!   the RFC 6120 way on the same stream.

use std::time::Instant;

use jid::FullJid;
use minidom::Element;

use super::SessionManager;
use crate::error::StanzaError;
use crate::ids::SessionId;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use zeroize::Zeroizing;

use crate::account::AccountJid;
use crate::negotiation::{
    Bind2Feature, BindReply, BindRequest, Sasl2Bind, Sasl2Success, bind2_resource, fast_client_key,
    success_element,
};
use crate::output::{Event, Output};
use crate::sasl2::Sasl2Inline;
use crate::session::Blocked;
use crate::storage::{FastToken, FastTokens, Request};
use crate::xml::{self, NS_BIND2, NS_FAST};

/// Random bytes in a FAST token (sent as 44 characters of base64).
const TOKEN_BYTES: usize = 32;

impl SessionManager {
    /// [`crate::negotiation::Step::Sasl2`]: the client authenticated with
    /// `<authenticate/>`.
    pub(super) fn sasl2_success(&mut self, id: SessionId, success: Sasl2Success, now: Instant) {
        let Some(session) = self.sessions.get(&id) else {
            return;
        };
        let (Some(username), Some(host)) = (session.username.clone(), session.host.clone()) else {
            return;
        };
        let account = format!("{username}@{host}");
        self.emit(Output::Event(Event::Authenticated {
            session: id,
            username,
        }));
        let Sasl2Success {
            additional_data,
            mut inline,
        } = success;
        let mut results = Vec::new();
        if let Some(token) = self.fast_tokens_after_login(&account, &mut inline, now) {
            results.push(token);
        }
        if let Some(resume) = &inline.resume {
            match self.sm_try_resume(id, resume, now) {
                Ok(Some(resumed)) => {
                    let mut el = success_element(additional_data.as_deref(), resumed.jid.as_str());
                    for result in results {
                        el.append_child(result);
                    }
                    el.append_child(resumed.element.clone());
                    self.sasl2_send(id, &el);
                    self.sm_finish_resume(id, resumed);
                    return;
                }
                // The stream was closed (an `h` acknowledging too much).
                Ok(None) => return,
                Err(failed) => results.push(failed),
            }
        }
        if let Some(bind) = inline.bind {
            let resource =
                bind2_resource(bind.tag.as_deref(), inline.user_agent.as_deref(), &account);
            let reply = BindReply::Sasl2(Box::new(Sasl2Bind {
                additional_data,
                features: bind.features,
                results,
            }));
            self.bind(id, BindRequest { reply, resource }, now);
            return;
        }
        let mut el = success_element(additional_data.as_deref(), &account);
        for result in results {
            el.append_child(result);
        }
        self.sasl2_send(id, &el);
    }

    /// The Bind2 request was decided: `<success/>` with `<bound/>` and the
    /// inline features' results, or a failure and close.
    pub(super) fn sasl2_bound(
        &mut self,
        id: SessionId,
        pending: Sasl2Bind,
        result: Result<FullJid, StanzaError>,
        now: Instant,
    ) {
        let Sasl2Bind {
            additional_data,
            features,
            results,
        } = pending;
        match result {
            Ok(full) => {
                let mut bound = Element::bare("bound", NS_BIND2);
                for feature in features {
                    if let Some(answer) = self.apply_bind2_feature(id, feature) {
                        bound.append_child(answer);
                    }
                }
                let mut el = success_element(additional_data.as_deref(), full.as_str());
                for result in results {
                    el.append_child(result);
                }
                el.append_child(bound);
                self.sasl2_send(id, &el);
            }
            Err(error) => {
                let text = error
                    .text
                    .as_deref()
                    .unwrap_or(error.condition.as_str())
                    .to_owned();
                let failure = crate::negotiation::sasl2_failure("aborted", Some(&text));
                self.sasl2_send(id, &failure);
                self.close_session(id, None, now);
            }
        }
    }

    /// Applies one Bind2 inline feature to the freshly bound session; its
    /// answer goes into `<bound/>`.
    fn apply_bind2_feature(&mut self, id: SessionId, feature: Bind2Feature) -> Option<Element> {
        match feature {
            Bind2Feature::SmEnable(enable) => Some(self.sm_enable_answer(id, &enable)),
            Bind2Feature::Carbons => {
                self.set_carbons(id, true);
                None
            }
            Bind2Feature::Inactive => {
                self.set_client_state(id, false);
                None
            }
        }
    }

    /// FAST after a login: stores the client's tokens as the login left
    /// them and returns the `<token/>` to put into `<success/>` when one is
    /// issued. A token login rotates (a new token; the used one stays valid
    /// until the new one is used) unless it asked to invalidate its token;
    /// a password login issues one on `<request-token/>`.
    fn fast_tokens_after_login(
        &mut self,
        account: &str,
        inline: &mut Sasl2Inline,
        now: Instant,
    ) -> Option<Element> {
        if !self.config.fast_on() {
            return None;
        }
        let client = fast_client_key(inline.user_agent.as_deref()?);
        let account = AccountJid::from_user_jid(&jid::BareJid::new(account).ok()?);
        let verified = inline.fast_verified.take();
        let invalidate = inline.fast.is_some_and(|f| f.invalidate);
        // The new token's mechanism: the one asked for, else (rotation) the
        // one the used token was issued for.
        let mechanism = inline
            .request_token
            .map(str::to_owned)
            .or_else(|| verified.as_ref().map(|v| v.used.mechanism.clone()));
        let issue = !invalidate && mechanism.is_some();
        if verified.is_none() && !issue {
            return None;
        }
        let unix_now = self.clock.unix_seconds(now);
        let mut random = Zeroizing::new([0u8; TOKEN_BYTES]);
        let token = if let Some(mechanism) = mechanism.filter(|_| issue)
            && self.rng.fill(random.as_mut_slice()).is_ok()
        {
            // The token is the base64 text; its bytes are the HMAC key
            // (what clients use: XEP-0484 treats the token as opaque).
            Some(FastToken {
                secret: BASE64.encode(random.as_slice()).into_bytes(),
                expires: unix_now.saturating_add(self.config.fast_token_lifetime.as_secs()),
                mechanism,
            })
        } else {
            None
        };
        let tokens = match (&token, verified) {
            (Some(new), verified) => FastTokens {
                current: Some(new.clone()),
                previous: verified.map(|v| v.used),
            },
            (None, Some(_)) if invalidate => FastTokens::default(),
            (None, Some(v)) => v.after,
            (None, None) => return None,
        };
        let request = Request::StoreFastTokens {
            account,
            client,
            tokens,
            max_clients: self.config.fast_tokens_per_account,
        };
        self.new_request(super::Pending::Write, request);
        let token = token?;
        let mut el = Element::bare("token", NS_FAST);
        xml::set_attr(&mut el, "expiry", crate::clock::format_unix(token.expires));
        xml::set_attr(
            &mut el,
            "token",
            String::from_utf8_lossy(&token.secret).into_owned(),
        );
        Some(el)
    }

    /// Sends a SASL2 answer (through the session, like the bind result)
    /// and lets the session read on.
    fn sasl2_send(&mut self, id: SessionId, el: &Element) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        if session.blocked == Some(Blocked::Manager) {
            session.blocked = None;
        }
        session.send_element(&mut self.out, el);
    }
}
