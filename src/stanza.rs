//! A stanza with its header parsed once: kind, `type` as an enum per kind,
//! whether it has an `id`, and `from` / `to` as JIDs. Routing reads the
//! header, never the attribute strings again.

use jid::Jid;
use minidom::Element;

use crate::xml::{self, StanzaKind};

/// `type` of a `<message/>` (RFC 6121 §5.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MessageType {
    /// No `type`, or `normal`.
    Normal,
    /// `chat`
    Chat,
    /// `groupchat`
    Groupchat,
    /// `headline`
    Headline,
    /// `error`
    Error,
    /// Anything else (handled like `normal`, RFC 6121 §5.2.2).
    Other,
}

/// `type` of a `<presence/>` (RFC 6121 §4.7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PresenceType {
    /// No `type`.
    Available,
    /// `unavailable`
    Unavailable,
    /// `subscribe`
    Subscribe,
    /// `subscribed`
    Subscribed,
    /// `unsubscribe`
    Unsubscribe,
    /// `unsubscribed`
    Unsubscribed,
    /// `probe`
    Probe,
    /// `error`
    Error,
    /// Anything else (invalid).
    Other,
}

impl PresenceType {
    /// One of the four subscription types.
    pub(crate) fn is_subscription(self) -> bool {
        matches!(
            self,
            Self::Subscribe | Self::Subscribed | Self::Unsubscribe | Self::Unsubscribed
        )
    }
}

/// `type` of an `<iq/>` (RFC 6120 §8.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IqType {
    /// `get`
    Get,
    /// `set`
    Set,
    /// `result`
    Result,
    /// `error`
    Error,
    /// Missing or anything else (invalid).
    Other,
}

/// The `type` of a stanza, per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StanzaType {
    /// A message.
    Message(MessageType),
    /// A presence.
    Presence(PresenceType),
    /// An iq.
    Iq(IqType),
}

/// The parsed header of a stanza.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    /// Kind and type.
    pub(crate) ty: StanzaType,
    /// Whether the stanza has an `id`.
    pub(crate) has_id: bool,
    /// `from`: `None` when absent, `Some(Err(()))` when not a valid JID.
    pub(crate) from: Option<Result<Jid, ()>>,
    /// `type='result'` on any kind (treated like an iq result: never
    /// answered with an error).
    pub(crate) result: bool,
    /// `to`: `None` when absent, `Some(Err(()))` when not a valid JID.
    /// Routing moves a message's or iq's local `to` into its target, so
    /// after routing only the target (and the element) say where it goes.
    pub(crate) to: Option<Result<Jid, ()>>,
}

impl Header {
    /// The stanza kind.
    pub(crate) fn kind(&self) -> StanzaKind {
        match self.ty {
            StanzaType::Message(_) => StanzaKind::Message,
            StanzaType::Presence(_) => StanzaKind::Presence,
            StanzaType::Iq(_) => StanzaKind::Iq,
        }
    }

    /// `type='error'` or an iq `result`: never answered with an error.
    pub(crate) fn is_error_or_result(&self) -> bool {
        self.result || self.is_error()
    }

    /// `from` as a valid JID.
    pub(crate) fn sender(&self) -> Option<&Jid> {
        self.from.as_ref().and_then(|f| f.as_ref().ok())
    }

    /// `to` as a valid JID.
    pub(crate) fn recipient(&self) -> Option<&Jid> {
        self.to.as_ref().and_then(|t| t.as_ref().ok())
    }

    /// `type='error'`.
    pub(crate) fn is_error(&self) -> bool {
        matches!(
            self.ty,
            StanzaType::Message(MessageType::Error)
                | StanzaType::Presence(PresenceType::Error)
                | StanzaType::Iq(IqType::Error)
        )
    }
}

/// A stanza and its parsed header, carried together through routing.
#[derive(Debug, Clone)]
pub(crate) struct Stanza {
    /// The header, parsed once.
    pub(crate) header: Header,
    /// The element (attributes kept in step with the header by the methods
    /// that change addressing).
    pub(crate) element: Element,
}

impl Stanza {
    /// Parses the header of a `message`, `presence` or `iq`; `None` for any
    /// other element.
    pub(crate) fn parse(element: Element) -> Option<Self> {
        let kind = StanzaKind::of(&element)?;
        let raw = element.attr("type");
        let ty = match kind {
            StanzaKind::Message => StanzaType::Message(match raw {
                None | Some("normal") => MessageType::Normal,
                Some("chat") => MessageType::Chat,
                Some("groupchat") => MessageType::Groupchat,
                Some("headline") => MessageType::Headline,
                Some("error") => MessageType::Error,
                Some(_) => MessageType::Other,
            }),
            StanzaKind::Presence => StanzaType::Presence(match raw {
                None => PresenceType::Available,
                Some("unavailable") => PresenceType::Unavailable,
                Some("subscribe") => PresenceType::Subscribe,
                Some("subscribed") => PresenceType::Subscribed,
                Some("unsubscribe") => PresenceType::Unsubscribe,
                Some("unsubscribed") => PresenceType::Unsubscribed,
                Some("probe") => PresenceType::Probe,
                Some("error") => PresenceType::Error,
                Some(_) => PresenceType::Other,
            }),
            StanzaKind::Iq => StanzaType::Iq(match raw {
                Some("get") => IqType::Get,
                Some("set") => IqType::Set,
                Some("result") => IqType::Result,
                Some("error") => IqType::Error,
                _ => IqType::Other,
            }),
        };
        let header = Header {
            ty,
            has_id: element.attr("id").is_some(),
            from: element.attr("from").map(|f| parse_jid(f).map_err(|_| ())),
            result: raw == Some("result"),
            to: element.attr("to").map(|t| parse_jid(t).map_err(|_| ())),
        };
        Some(Self { header, element })
    }

    /// Sets `from` in the element and the header.
    pub(crate) fn set_from(&mut self, from: Jid) {
        xml::set_attr(&mut self.element, "from", from.as_str());
        self.header.from = Some(Ok(from));
    }

    /// Sets `to` in the element and the header.
    pub(crate) fn set_to(&mut self, to: Jid) {
        xml::set_attr(&mut self.element, "to", to.as_str());
        self.header.to = Some(Ok(to));
    }

    /// Removes `to` from the element and the header.
    pub(crate) fn remove_to(&mut self) {
        xml::remove_attr(&mut self.element, "to");
        self.header.to = None;
    }
}

/// Parses a JID and drops one trailing dot from its domain (RFC 7622
/// §3.2). The `jid` crate keeps the dot for some inputs (`a@host.`, and
/// `a@host./r` when nothing else needed normalising), so the dot is
/// removed from the text and the rest parsed again.
pub(crate) fn parse_jid(text: &str) -> Result<Jid, jid::Error> {
    let jid = Jid::new(text)?;
    // Neither node nor domain may contain '/': the bare part ends at the
    // first one, and the domain ends the bare part.
    let (bare, resource) = text.split_at(text.find('/').unwrap_or(text.len()));
    let Some(bare) = bare.strip_suffix('.') else {
        return Ok(jid);
    };
    let mut fixed = String::with_capacity(text.len());
    fixed.push_str(bare);
    fixed.push_str(resource);
    Jid::new(&fixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_jid_drops_one_trailing_dot_whatever_else_is_normalised() {
        for (text, want) in [
            ("bob@localhost./one", "bob@localhost/one"),
            ("Bob@LocalHost./one", "bob@localhost/one"),
            ("bob@localhost.", "bob@localhost"),
            ("localhost./a@b.", "localhost/a@b."),
            ("localhost.", "localhost"),
            ("bob@localhost/one.", "bob@localhost/one."),
        ] {
            assert_eq!(
                parse_jid(text).map(|j| j.to_string()).as_deref(),
                Ok(want),
                "{text}"
            );
        }
    }

    fn el(xml_text: &str) -> Element {
        xml_text.parse().expect("test element")
    }

    #[test]
    fn headers() {
        let s = Stanza::parse(el(
            "<message xmlns='jabber:client' type='chat' id='1' from='a@b/c' to='d@e.'/>",
        ))
        .expect("a stanza");
        assert_eq!(s.header.ty, StanzaType::Message(MessageType::Chat));
        assert!(s.header.has_id);
        assert_eq!(s.header.sender().map(|j| j.as_str()), Some("a@b/c"));
        assert_eq!(s.header.recipient().map(|j| j.as_str()), Some("d@e"));
        let p = Stanza::parse(el("<presence xmlns='jabber:client' type='bogus' to='@'/>"))
            .expect("a stanza");
        assert_eq!(p.header.ty, StanzaType::Presence(PresenceType::Other));
        assert_eq!(p.header.to, Some(Err(())));
        let i = Stanza::parse(el("<iq xmlns='jabber:client'/>")).expect("a stanza");
        assert_eq!(i.header.ty, StanzaType::Iq(IqType::Other));
        assert!(!i.header.is_error_or_result());
        assert!(Stanza::parse(el("<foo xmlns='jabber:client'/>")).is_none());
    }
}
