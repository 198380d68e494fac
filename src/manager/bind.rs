//! Resource binding, the manager's half (RFC 6120 §7): resourceprep,
//! the per-account limit and the conflict policy.

use std::time::Instant;

use jid::{BareJid, FullJid};

use super::SessionManager;
use super::work::Task;
use crate::config::ConflictPolicy;
use crate::error::{
    ErrorType, StanzaError, StanzaErrorCondition, StreamError, StreamErrorCondition,
};
use crate::ids::SessionId;
use crate::negotiation::{BindReply, BindRequest, Ctx};
use crate::output::{Event, Output};
use crate::random::random_id;
use crate::session::{Bound, Phase};

impl SessionManager {
    /// Resource binding, the manager's half: resourceprep, limits and the
    /// conflict policy.
    ///
    /// With [`ConflictPolicy::KickOld`] the session holding the resource is
    /// closed first; binding finishes after its removal has run (a task).
    pub(super) fn bind(&mut self, id: SessionId, request: BindRequest, now: Instant) {
        if let Some(old) = self.session_to_replace(id, request.resource.as_deref()) {
            self.close_session(
                old,
                Some(StreamError::with_text(
                    StreamErrorCondition::Conflict,
                    "Replaced by new connection",
                )),
                now,
            );
            if self.deferring() {
                self.defer(Task::Bind { id, request });
                return;
            }
        }
        let result = self.choose_resource(id, request.resource.as_deref());
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let mut ctx = Ctx {
            config: &self.config,
            rng: self.rng.as_mut(),
            out: &mut self.out,
            features: &mut self.features,
        };
        let pending = match request.reply {
            BindReply::Iq(iq) => {
                session.finish_bind(&mut ctx, &iq, result.clone());
                None
            }
            BindReply::Sasl2(pending) => {
                if let Ok(full) = &result {
                    session.phase = Phase::Bound(Bound::new(full.clone()));
                }
                Some(pending)
            }
        };
        if let Ok(full) = &result {
            let bare = full.to_bare();
            self.account_mut(&bare).sessions.push(id);
            self.emit(Output::Event(Event::Bound {
                session: id,
                jid: full.clone(),
            }));
            // XEP-0191: the account's blocklist is needed for what the
            // session sends; what it sends before the list is there waits
            // in the account's queue behind the load.
            if self.blocklist(&bare).is_none() {
                self.submit(bare, super::routing::Work::LoadBlocklist, now);
            }
        }
        if let Some(pending) = pending {
            self.sasl2_bound(id, *pending, result, now);
        }
    }

    /// Under [`ConflictPolicy::KickOld`], the bound session that holds the
    /// requested resource of this session's account.
    fn session_to_replace(&self, id: SessionId, requested: Option<&str>) -> Option<SessionId> {
        if self.config.conflict_policy != ConflictPolicy::KickOld {
            return None;
        }
        let resource = jid::ResourcePart::new(requested?).ok()?;
        let session = self.sessions.get(&id)?;
        let (Some(username), Some(host)) = (&session.username, &session.host) else {
            return None;
        };
        let bare = BareJid::new(&format!("{username}@{host}")).ok()?;
        self.bound_sessions(&bare).iter().copied().find(|sid| {
            self.sessions.get(sid).and_then(|s| s.resource()) == Some(resource.as_str())
        })
    }

    fn choose_resource(
        &mut self,
        id: SessionId,
        requested: Option<&str>,
    ) -> Result<FullJid, StanzaError> {
        let (username, host) = match self.sessions.get(&id) {
            Some(s) => match (&s.username, &s.host) {
                (Some(u), Some(h)) => (u.clone(), h.clone()),
                _ => {
                    return Err(StanzaError::with_text(
                        ErrorType::Auth,
                        StanzaErrorCondition::NotAuthorized,
                        "Cannot bind resource before authentication",
                    ));
                }
            },
            None => return Err(StanzaError::service_unavailable()),
        };
        let bare = BareJid::new(&format!("{username}@{host}")).map_err(|_| {
            StanzaError::new(ErrorType::Cancel, StanzaErrorCondition::InternalServerError)
        })?;
        let taken = |mgr: &Self, res: &str| {
            mgr.bound_sessions(&bare)
                .iter()
                .filter_map(|sid| mgr.sessions.get(sid))
                .any(|s| s.resource() == Some(res))
        };
        let mut resource = match requested {
            Some(r) => match jid::ResourcePart::new(r) {
                Ok(part) => part.as_str().to_owned(),
                Err(_) => {
                    return Err(StanzaError::bad_request(
                        "The requested resource is not valid",
                    ));
                }
            },
            None => loop {
                let Ok(candidate) = random_id(self.rng.as_mut(), 12) else {
                    return Err(StanzaError::new(
                        ErrorType::Wait,
                        StanzaErrorCondition::InternalServerError,
                    ));
                };
                if !taken(self, &candidate) {
                    break candidate;
                }
            },
        };
        if taken(self, &resource) {
            match self.config.conflict_policy {
                ConflictPolicy::RefuseNew => {
                    return Err(StanzaError::with_text(
                        ErrorType::Cancel,
                        StanzaErrorCondition::Conflict,
                        "Resource already exists",
                    ));
                }
                ConflictPolicy::AddSuffix => {
                    let mut n: u32 = 1;
                    loop {
                        let candidate = format!("{resource}#{n}");
                        if !taken(self, &candidate) {
                            resource = candidate;
                            break;
                        }
                        n = n.saturating_add(1);
                    }
                }
                ConflictPolicy::KickOld => {
                    // `bind` closed the holder first; if it is somehow still
                    // bound, refuse rather than bind the resource twice.
                    return Err(StanzaError::with_text(
                        ErrorType::Cancel,
                        StanzaErrorCondition::Conflict,
                        "Resource already exists",
                    ));
                }
            }
        }
        let count = self.bound_sessions(&bare).len();
        if count >= self.config.max_resources_per_user {
            return Err(StanzaError::with_text(
                ErrorType::Wait,
                StanzaErrorCondition::ResourceConstraint,
                "Too many resources bound for this account",
            ));
        }
        bare.with_resource_str(&resource)
            .map_err(|_| StanzaError::bad_request("The requested resource is not valid"))
    }
}
