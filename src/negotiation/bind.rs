//! Resource binding (RFC 6120 §7, Prosody §2.7), the session's half: reading
//! the request and answering it. The manager decides conflicts.

use jid::FullJid;
use minidom::Element;

use super::{Ctx, Step};
use crate::error::{ErrorType, StanzaError, StanzaErrorCondition};
use crate::session::{Blocked, Bound, Phase, Session, SessionKind};
use crate::xml::{self, NS_BIND};

/// A client's bind request, handed to the manager.
#[derive(Debug)]
pub(crate) struct BindRequest {
    /// The iq, to answer.
    pub iq: Element,
    /// The requested resource (not yet prepared), `None` to generate one.
    pub resource: Option<String>,
}

impl Session {
    pub(super) fn handle_bind_iq(
        &mut self,
        ctx: &mut Ctx<'_>,
        iq: &Element,
        bind: &Element,
    ) -> Step {
        if self.kind() == SessionKind::Unauthenticated {
            self.reply_error(
                ctx,
                iq,
                &StanzaError::with_text(
                    ErrorType::Auth,
                    StanzaErrorCondition::NotAuthorized,
                    "Cannot bind resource before authentication",
                ),
            );
            return Step::Continue;
        }
        if iq.attr("type") != Some("set") {
            self.reply_error(
                ctx,
                iq,
                &StanzaError::bad_request("Resource binding uses an iq of type 'set'"),
            );
            return Step::Continue;
        }
        let resource = match bind.get_child("resource", NS_BIND) {
            None => None,
            Some(r) if r.children().next().is_some() => {
                self.reply_error(
                    ctx,
                    iq,
                    &StanzaError::bad_request("Invalid resource element"),
                );
                return Step::Continue;
            }
            Some(r) => {
                let text = r.text();
                if text.is_empty() { None } else { Some(text) }
            }
        };
        self.blocked = Some(Blocked::Manager);
        Step::Bind(BindRequest {
            iq: iq.clone(),
            resource,
        })
    }

    /// The manager's decision on a bind request.
    pub(crate) fn finish_bind(
        &mut self,
        ctx: &mut Ctx<'_>,
        iq: &Element,
        result: Result<FullJid, StanzaError>,
    ) {
        self.blocked = None;
        match result {
            Ok(full) => {
                let mut bind = Element::bare("bind", NS_BIND);
                bind.append_child(xml::text_element("jid", NS_BIND, full.as_str()));
                let mut reply = xml::iq_result(iq, Some(bind));
                // The request's `from` is the client's own word: never echo it.
                xml::remove_attr(&mut reply, "to");
                self.phase = Phase::Bound(Bound::new(full));
                self.send_element(ctx.out, &reply);
            }
            Err(error) => {
                if let Some(mut reply) = error.reply_to(iq) {
                    xml::remove_attr(&mut reply, "to");
                    self.send_element(ctx.out, &reply);
                }
            }
        }
    }
}
