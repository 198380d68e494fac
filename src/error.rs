//! Stream and stanza errors (RFC 6120 §4.9 and §8.3), as enums.

use std::borrow::Cow;

use minidom::Element;

use crate::ns::{NS_CLIENT, NS_STANZAS, NS_STREAMS, NS_STREAMS_ERR, NS_XMPP_ERRORS};
use crate::xml;

macro_rules! conditions {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }
        impl $name {
            /// The element name defined by RFC 6120.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text,)* }
            }
            /// Parses an element name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($text => Some(Self::$variant),)* _ => None }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

conditions! {
    /// Stream error conditions (RFC 6120 §4.9.3).
    StreamErrorCondition {
        /// `bad-format`
        BadFormat => "bad-format",
        /// `bad-namespace-prefix`
        BadNamespacePrefix => "bad-namespace-prefix",
        /// `conflict`
        Conflict => "conflict",
        /// `connection-timeout`
        ConnectionTimeout => "connection-timeout",
        /// `host-gone`
        HostGone => "host-gone",
        /// `host-unknown`
        HostUnknown => "host-unknown",
        /// `improper-addressing`
        ImproperAddressing => "improper-addressing",
        /// `internal-server-error`
        InternalServerError => "internal-server-error",
        /// `invalid-from`
        InvalidFrom => "invalid-from",
        /// `invalid-namespace`
        InvalidNamespace => "invalid-namespace",
        /// `invalid-xml`
        InvalidXml => "invalid-xml",
        /// `not-authorized`
        NotAuthorized => "not-authorized",
        /// `not-well-formed`
        NotWellFormed => "not-well-formed",
        /// `policy-violation`
        PolicyViolation => "policy-violation",
        /// `remote-connection-failed`
        RemoteConnectionFailed => "remote-connection-failed",
        /// `reset`
        Reset => "reset",
        /// `resource-constraint`
        ResourceConstraint => "resource-constraint",
        /// `restricted-xml`
        RestrictedXml => "restricted-xml",
        /// `see-other-host`
        SeeOtherHost => "see-other-host",
        /// `system-shutdown`
        SystemShutdown => "system-shutdown",
        /// `undefined-condition`
        UndefinedCondition => "undefined-condition",
        /// `unsupported-encoding`
        UnsupportedEncoding => "unsupported-encoding",
        /// `unsupported-feature`
        UnsupportedFeature => "unsupported-feature",
        /// `unsupported-stanza-type`
        UnsupportedStanzaType => "unsupported-stanza-type",
        /// `unsupported-version`
        UnsupportedVersion => "unsupported-version",
    }
}

conditions! {
    /// Stanza error conditions (RFC 6120 §8.3.3).
    StanzaErrorCondition {
        /// `bad-request`
        BadRequest => "bad-request",
        /// `conflict`
        Conflict => "conflict",
        /// `feature-not-implemented`
        FeatureNotImplemented => "feature-not-implemented",
        /// `forbidden`
        Forbidden => "forbidden",
        /// `gone`
        Gone => "gone",
        /// `internal-server-error`
        InternalServerError => "internal-server-error",
        /// `item-not-found`
        ItemNotFound => "item-not-found",
        /// `jid-malformed`
        JidMalformed => "jid-malformed",
        /// `not-acceptable`
        NotAcceptable => "not-acceptable",
        /// `not-allowed`
        NotAllowed => "not-allowed",
        /// `not-authorized`
        NotAuthorized => "not-authorized",
        /// `policy-violation`
        PolicyViolation => "policy-violation",
        /// `recipient-unavailable`
        RecipientUnavailable => "recipient-unavailable",
        /// `redirect`
        Redirect => "redirect",
        /// `registration-required`
        RegistrationRequired => "registration-required",
        /// `remote-server-not-found`
        RemoteServerNotFound => "remote-server-not-found",
        /// `remote-server-timeout`
        RemoteServerTimeout => "remote-server-timeout",
        /// `resource-constraint`
        ResourceConstraint => "resource-constraint",
        /// `service-unavailable`
        ServiceUnavailable => "service-unavailable",
        /// `subscription-required`
        SubscriptionRequired => "subscription-required",
        /// `undefined-condition`
        UndefinedCondition => "undefined-condition",
        /// `unexpected-request`
        UnexpectedRequest => "unexpected-request",
    }
}

/// A stream error: the stream is closed after it is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stream error {condition}{}", text.as_deref().map(|t| format!(": {t}")).unwrap_or_default())]
pub struct StreamError {
    /// The defined condition.
    pub condition: StreamErrorCondition,
    /// Optional human-readable text.
    pub text: Option<Cow<'static, str>>,
    /// Add `<stanza-too-big xmlns='urn:xmpp:errors'/>` (with `policy-violation`).
    pub stanza_too_big: bool,
    /// Add `<handled-count-too-high xmlns='urn:xmpp:sm:3' h=… send-count=…/>`
    /// (XEP-0198 §4, with `undefined-condition`): `(h, send_count)`.
    pub handled_count_too_high: Option<(u32, u32)>,
}

impl StreamError {
    /// An error with a condition and no text.
    pub fn new(condition: StreamErrorCondition) -> Self {
        Self {
            condition,
            text: None,
            stanza_too_big: false,
            handled_count_too_high: None,
        }
    }

    /// An error with a condition and text.
    pub fn with_text(condition: StreamErrorCondition, text: impl Into<Cow<'static, str>>) -> Self {
        Self {
            condition,
            text: Some(text.into()),
            stanza_too_big: false,
            handled_count_too_high: None,
        }
    }

    /// The `<stream:error/>` element.
    pub fn to_element(&self) -> Element {
        let mut el = Element::bare("error", NS_STREAMS);
        el.append_child(Element::bare(self.condition.as_str(), NS_STREAMS_ERR));
        if let Some(text) = &self.text {
            let mut t = Element::bare("text", NS_STREAMS_ERR);
            t.append_text_node(text.as_ref());
            el.append_child(t);
        }
        if self.stanza_too_big {
            el.append_child(Element::bare("stanza-too-big", NS_XMPP_ERRORS));
        }
        if let Some((h, sent)) = self.handled_count_too_high {
            let mut too_high = Element::bare("handled-count-too-high", crate::ns::NS_SM);
            xml::set_attr(&mut too_high, "h", h.to_string());
            xml::set_attr(&mut too_high, "send-count", sent.to_string());
            el.append_child(too_high);
        }
        el
    }
}

/// The `type` of a stanza error (RFC 6120 §8.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// Retry after providing credentials.
    Auth,
    /// Do not retry.
    Cancel,
    /// Proceed; the condition was only a warning.
    Continue,
    /// Retry after changing the data sent.
    Modify,
    /// Retry after waiting.
    Wait,
}

impl ErrorType {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Cancel => "cancel",
            Self::Continue => "continue",
            Self::Modify => "modify",
            Self::Wait => "wait",
        }
    }
}

/// A stanza error, sent back in a stanza of `type='error'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stanza error {kind:?}/{condition}{}", text.as_deref().map(|t| format!(": {t}")).unwrap_or_default())]
pub struct StanzaError {
    /// The error type.
    pub kind: ErrorType,
    /// The defined condition.
    pub condition: StanzaErrorCondition,
    /// Optional human-readable text.
    pub text: Option<Cow<'static, str>>,
    /// The entity that produced the error (`by`), if stated.
    pub by: Option<String>,
}

impl StanzaError {
    /// An error with no text.
    pub fn new(kind: ErrorType, condition: StanzaErrorCondition) -> Self {
        Self {
            kind,
            condition,
            text: None,
            by: None,
        }
    }

    /// An error with text.
    pub fn with_text(
        kind: ErrorType,
        condition: StanzaErrorCondition,
        text: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            kind,
            condition,
            text: Some(text.into()),
            by: None,
        }
    }

    /// `cancel` / `service-unavailable`, the most common answer.
    pub fn service_unavailable() -> Self {
        Self::new(ErrorType::Cancel, StanzaErrorCondition::ServiceUnavailable)
    }

    /// `modify` / `bad-request` with text.
    pub fn bad_request(text: impl Into<Cow<'static, str>>) -> Self {
        Self::with_text(ErrorType::Modify, StanzaErrorCondition::BadRequest, text)
    }

    /// The error reply to `original` (RFC 6120 §8.3.1): same name and `id`,
    /// `from` and `to` swapped, `type='error'`, no payload copied, this
    /// error as its child. `None` when `original` is itself an error (never
    /// answer an error with an error).
    pub fn reply_to(&self, original: &Element) -> Option<Element> {
        if original.attr("type") == Some("error") {
            return None;
        }
        let mut reply = xml::reply_skeleton(original, original.name(), "error");
        reply.append_child(self.to_element());
        Some(reply)
    }

    /// The `<error/>` child element.
    pub fn to_element(&self) -> Element {
        let mut el = Element::bare("error", NS_CLIENT);
        xml::set_attr(&mut el, "type", self.kind.as_str());
        if let Some(by) = &self.by {
            xml::set_attr(&mut el, "by", by.as_str());
        }
        el.append_child(Element::bare(self.condition.as_str(), NS_STANZAS));
        if let Some(text) = &self.text {
            let mut t = Element::bare("text", NS_STANZAS);
            t.append_text_node(text.as_ref());
            el.append_child(t);
        }
        el
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_names_round_trip() {
        for c in [
            StreamErrorCondition::HostUnknown,
            StreamErrorCondition::RestrictedXml,
            StreamErrorCondition::UnsupportedVersion,
        ] {
            assert_eq!(StreamErrorCondition::from_name(c.as_str()), Some(c));
        }
        assert_eq!(
            StanzaErrorCondition::from_name("service-unavailable"),
            Some(StanzaErrorCondition::ServiceUnavailable)
        );
        assert_eq!(StanzaErrorCondition::from_name("nope"), None);
    }

    #[test]
    fn stream_error_element() {
        let e = StreamError::with_text(StreamErrorCondition::HostUnknown, "no");
        let el = e.to_element();
        assert!(el.is("error", NS_STREAMS));
        assert!(el.has_child("host-unknown", NS_STREAMS_ERR));
        assert_eq!(
            el.get_child("text", NS_STREAMS_ERR).map(|t| t.text()),
            Some("no".into())
        );
    }

    #[test]
    fn error_reply_swaps_and_drops_payload() {
        let mut m = Element::builder("message", NS_CLIENT)
            .append(xml::text_element("body", NS_CLIENT, "hi"))
            .build();
        xml::set_attr(&mut m, "to", "a@b");
        xml::set_attr(&mut m, "from", "c@d/e");
        xml::set_attr(&mut m, "id", "1");
        let err = StanzaError::new(ErrorType::Cancel, StanzaErrorCondition::ServiceUnavailable);
        let r = err.reply_to(&m).expect("reply");
        assert_eq!(r.attr("to"), Some("c@d/e"));
        assert_eq!(r.attr("from"), Some("a@b"));
        assert_eq!(r.attr("type"), Some("error"));
        assert_eq!(r.attr("id"), Some("1"));
        assert!(!r.has_child("body", NS_CLIENT));
        xml::set_attr(&mut m, "type", "error");
        assert!(err.reply_to(&m).is_none());
    }
}
