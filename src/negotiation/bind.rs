//! Resource binding (RFC 6120 §7, Prosody §2.7), the session's half: reading
//! the request and answering it. The manager decides conflicts.

use bytes::{BufMut, Bytes, BytesMut};
use jid::FullJid;
use minidom::Element;

use super::{Ctx, Step};
use crate::error::{ErrorType, StanzaError, StanzaErrorCondition};
use crate::session::{Blocked, Bound, Phase, Session, SessionKind};
use crate::stream;
use crate::xml::{self, NS_BIND};

/// A client's bind request, handed to the manager.
#[derive(Debug)]
pub(crate) struct BindRequest {
    /// Where the answer goes.
    pub reply: BindReply,
    /// The requested resource (not yet prepared), `None` to generate one.
    pub resource: Option<String>,
}

/// Where a bind request is answered.
#[derive(Debug)]
pub(crate) enum BindReply {
    /// RFC 6120 resource binding: the iq, to answer.
    Iq(Element),
    /// Bind2 inside SASL2: the answer is part of `<success/>`.
    Sasl2(Box<super::Sasl2Bind>),
}

impl Session {
    /// `iq` is a get or set with a `<bind/>` child.
    pub(super) fn handle_bind_iq(&mut self, ctx: &mut Ctx<'_>, request: Element) -> Step {
        let iq = &request;
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
        if xml::attr(iq, "type") != Some("set") {
            self.reply_error(
                ctx,
                iq,
                &StanzaError::bad_request("Resource binding uses an iq of type 'set'"),
            );
            return Step::Continue;
        }
        let resource = match iq
            .get_child("bind", NS_BIND)
            .and_then(|bind| bind.get_child("resource", NS_BIND))
        {
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
            reply: BindReply::Iq(request),
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
                let data = bind_result(iq, full.as_str());
                self.phase = Phase::Bound(Bound::new(full));
                self.transmit(ctx.out, data);
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

/// The bytes of the bind result for `iq`: the iq result with `<bind/>` and
/// `<jid/>`, written directly (no element tree) exactly as
/// [`stream::write_element`] would write it. The request's `from` is the
/// client's own word and is never echoed (no `to`); its `to` becomes `from`.
fn bind_result(iq: &Element, jid: &str) -> Bytes {
    let (mut id, mut to) = (None, None);
    for ((ns, name), value) in iq.attrs().iter() {
        if ns.as_str().is_empty() {
            match name.as_str() {
                "id" => id = Some(value.as_str()),
                "to" => to = Some(value.as_str()),
                _ => {}
            }
        }
    }
    let mut out = BytesMut::with_capacity(128);
    stream::write_iq_result_open(&mut out, to, id);
    out.put_slice(b"<bind xmlns='");
    out.put_slice(NS_BIND.as_bytes());
    out.put_slice(b"'><jid>");
    stream::write_text(&mut out, jid);
    out.put_slice(b"</jid></bind></iq>");
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bind result as an element tree serialised by the writer: what
    /// [`bind_result`] must equal byte for byte.
    fn through_element(iq: &Element, jid: &str) -> Bytes {
        let mut bind = Element::bare("bind", NS_BIND);
        bind.append_child(xml::text_element("jid", NS_BIND, jid));
        let mut reply = xml::iq_result(iq, Some(bind));
        xml::remove_attr(&mut reply, "to");
        stream::element_bytes(&reply)
    }

    #[test]
    fn direct_bind_result_matches_the_writer() {
        let jids = ["juliet@localhost/balcony", "a@b/x&y<z>'\"\r\t\u{1}\u{FFFE}"];
        let mut iqs = vec![Element::bare("iq", xml::NS_CLIENT)];
        for attrs in [
            &[("id", "b")][..],
            &[("id", "1'&<>\t\n\r"), ("type", "set")],
            &[
                ("to", "localhost"),
                ("from", "juliet@localhost"),
                ("id", "x"),
            ],
            &[("to", "o'x&"), ("type", "get"), ("xmlns", "ignored")],
        ] {
            let mut iq = Element::bare("iq", xml::NS_CLIENT);
            for (name, value) in attrs {
                xml::set_attr(&mut iq, name, *value);
            }
            iqs.push(iq);
        }
        for iq in &iqs {
            for jid in jids {
                assert_eq!(
                    bind_result(iq, jid),
                    through_element(iq, jid),
                    "{iq:?} {jid}"
                );
            }
        }
        assert_eq!(
            &bind_result(&iqs[1], jids[0])[..],
            b"<iq id='b' type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
<jid>juliet@localhost/balcony</jid></bind></iq>"
        );
    }
}
