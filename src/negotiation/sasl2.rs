//! SASL2 (XEP-0388) and the session's half of Bind2 (XEP-0386): reading
//! `<authenticate/>` and what it asks for inline, and the elements the
//! manager answers with.
//!
//! The exchange itself is the legacy one ([`super::auth`]): the same
//! mechanisms, storage requests, failure accounting and limits; only the
//! wrapping differs (`<challenge/>`/`<response/>` in `urn:xmpp:sasl:2`,
//! `<failure/>` with the RFC 6120 condition inside). On success the stream
//! is **not** restarted: the session becomes authenticated and hands the
//! inline requests to the manager ([`Step::Sasl2`]), which resumes or binds
//! and sends `<success/>`.
//!
//! # Inline features
//!
//! Each inline feature of Bind2 is one [`Bind2Feature`] variant: parsed in
//! [`Bind2Feature::parse`], advertised in [`BIND2_INLINE`], applied by the
//! manager (`manager::sasl2`). Unknown or unadvertised children of
//! `<authenticate/>` and `<bind/>` are ignored (they get no result).

use minidom::Element;
use sha2::{Digest, Sha256};

pub(crate) use crate::sasl2::{Bind2Feature, Bind2Request, Sasl2Inline};

use super::auth::element_payload;
use super::fast::FastMechanism;
use super::{Ctx, Step};
use crate::config::Config;
use crate::sasl::{ChannelBindings, SaslFailure};
use crate::sasl2::FastUse;
use crate::session::Session;
use crate::xml::{self, NS_BIND2, NS_FAST, NS_SASL, NS_SASL2, NS_SM};

/// The namespaces of the inline features Bind2 offers (`<feature var/>`),
/// given the configuration.
pub(crate) fn bind2_inline(config: &Config) -> impl Iterator<Item = &'static str> {
    BIND2_INLINE
        .iter()
        .filter(move |(_, needs_sm)| !needs_sm || config.stream_management)
        .map(|(var, _)| *var)
}

/// Every inline feature Bind2 can offer, and whether it needs stream
/// management to be on.
const BIND2_INLINE: &[(&str, bool)] = &[
    (NS_SM, true),
    (crate::ns::NS_CARBONS, false),
    (crate::ns::NS_CSI, false),
];

impl Bind2Feature {
    /// The feature a child of `<bind/>` asks for, if it is one we offer.
    fn parse(el: &Element, config: &Config) -> Option<Self> {
        if el.is("enable", NS_SM) && config.stream_management {
            return Some(Self::SmEnable(el.clone()));
        }
        if el.is("enable", crate::ns::NS_CARBONS) {
            return Some(Self::Carbons);
        }
        if el.is("inactive", crate::ns::NS_CSI) {
            return Some(Self::Inactive);
        }
        None
    }
}

/// What [`Step::Sasl2`] carries to the manager.
#[derive(Debug)]
pub(crate) struct Sasl2Success {
    /// The mechanism's additional data (the SCRAM server-final message).
    pub additional_data: Option<Vec<u8>>,
    /// The inline requests.
    pub inline: Sasl2Inline,
}

/// A SASL2 login waiting for its Bind2 request to be decided
/// ([`super::BindReply::Sasl2`]).
#[derive(Debug)]
pub(crate) struct Sasl2Bind {
    /// The mechanism's additional data.
    pub additional_data: Option<Vec<u8>>,
    /// The inline features to apply once bound.
    pub features: Vec<Bind2Feature>,
    /// Results gathered so far (e.g. a failed inline resume).
    pub results: Vec<Element>,
}

/// `<success xmlns='urn:xmpp:sasl:2'>` with the additional data and the
/// authorization identifier; the manager appends the inline results.
pub(crate) fn success_element(
    additional_data: Option<&[u8]>,
    authorization_identifier: &str,
) -> Element {
    use base64::Engine;
    let mut success = Element::bare("success", NS_SASL2);
    if let Some(data) = additional_data {
        let text = if data.is_empty() {
            "=".to_owned()
        } else {
            base64::engine::general_purpose::STANDARD.encode(data)
        };
        success.append_child(xml::text_element("additional-data", NS_SASL2, &text));
    }
    success.append_child(xml::text_element(
        "authorization-identifier",
        NS_SASL2,
        authorization_identifier,
    ));
    success
}

/// `<failure xmlns='urn:xmpp:sasl:2'>` with the RFC 6120 condition.
pub(crate) fn failure(condition: &str, text: Option<&str>) -> Element {
    let mut el = Element::bare("failure", NS_SASL2);
    el.append_child(Element::bare(condition, NS_SASL));
    if let Some(text) = text {
        el.append_child(xml::text_element("text", NS_SASL2, text));
    }
    el
}

/// `<authentication xmlns='urn:xmpp:sasl:2'>` for the stream features: the
/// mechanisms and the inline features (Bind2 with its own, SM resume).
pub(crate) fn authentication_feature<'a>(
    config: &Config,
    mechanisms: impl Iterator<Item = &'a str>,
    bindings: Option<&ChannelBindings>,
) -> Element {
    let mut auth = Element::bare("authentication", NS_SASL2);
    for m in mechanisms {
        auth.append_child(xml::text_element("mechanism", NS_SASL2, m));
    }
    let mut inline = Element::bare("inline", NS_SASL2);
    let mut bind = Element::bare("bind", NS_BIND2);
    let mut bind_inline = Element::bare("inline", NS_BIND2);
    for var in bind2_inline(config) {
        let mut feature = Element::bare("feature", NS_BIND2);
        xml::set_attr(&mut feature, "var", var);
        bind_inline.append_child(feature);
    }
    bind.append_child(bind_inline);
    inline.append_child(bind);
    if config.stream_management {
        inline.append_child(Element::bare("sm", NS_SM));
    }
    if config.fast_on() {
        let mut fast = Element::bare("fast", NS_FAST);
        for m in FastMechanism::offered_all(bindings) {
            fast.append_child(xml::text_element("mechanism", NS_FAST, m.name()));
        }
        inline.append_child(fast);
    }
    auth.append_child(inline);
    auth
}

/// Characters of a Bind2 tag kept in the resource.
const MAX_TAG_CHARS: usize = 32;

/// The resource for a Bind2 request: the tag (only letters, digits and
/// `-_.`, at most 32 characters; only ASCII ones if resourceprep refuses
/// the others; `client` when none is left) and, when the
/// client sent a user-agent id, `.` and 8 hex digits of SHA-256 over the id
/// and the account (stable per client and account; reveals nothing linking
/// one client's accounts). Without an id the manager picks a random one.
pub(crate) fn bind2_resource(
    tag: Option<&str>,
    user_agent: Option<&str>,
    account: &str,
) -> Option<String> {
    let id = user_agent?;
    let keep = |ascii: bool| -> String {
        tag.unwrap_or_default()
            .chars()
            .filter(|c| {
                (c.is_alphanumeric() && (c.is_ascii() || !ascii)) || matches!(c, '-' | '_' | '.')
            })
            .take(MAX_TAG_CHARS)
            .collect()
    };
    let mut hash = Sha256::new();
    hash.update(id.as_bytes());
    hash.update([0u8]);
    hash.update(account.as_bytes());
    let mut suffix = String::with_capacity(9);
    suffix.push('.');
    for byte in hash.finalize().iter().take(4) {
        suffix.push_str(&format!("{byte:02x}"));
    }
    let with_suffix = |mut tag: String| {
        if tag.is_empty() {
            tag.push_str("client");
        }
        tag.push_str(&suffix);
        tag
    };
    // Resourceprep judges the whole resource: a letter newer than its
    // tables, or a right-to-left tag followed by the ASCII suffix (the bidi
    // rule), is refused; an ASCII-only tag always passes.
    let mut resource = with_suffix(keep(false));
    if jid::ResourcePart::new(&resource).is_err() {
        resource = with_suffix(keep(true));
    }
    Some(resource)
}

/// XEP-0388 §4.3: the user-agent id is a UUID (8-4-4-4-12 hex digits).
pub(crate) fn valid_uuid(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8usize, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl Session {
    /// `<authenticate mechanism=…>`: records the inline requests and starts
    /// the exchange with `<initial-response/>`.
    pub(super) fn handle_authenticate(&mut self, ctx: &mut Ctx<'_>, el: &Element) -> Step {
        // A new <authenticate/> discards any exchange in progress.
        self.set_sasl(None);
        // From here on failures are answered the SASL2 way.
        self.set_sasl2(Some(Box::default()));
        let mut inline = Sasl2Inline::default();
        for child in el.children() {
            if child.is("user-agent", NS_SASL2) {
                match xml::attr(child, "id") {
                    Some(id) if valid_uuid(id) => inline.user_agent = Some(id.to_ascii_lowercase()),
                    Some(_) => {
                        return self.sasl_failure(
                            ctx,
                            SaslFailure::MalformedRequest,
                            Some("The user-agent id must be a UUID"),
                        );
                    }
                    None => {}
                }
            } else if child.is("bind", NS_BIND2) {
                let mut bind = Bind2Request::default();
                for item in child.children() {
                    if item.is("tag", NS_BIND2) {
                        bind.tag = Some(item.text());
                    } else if let Some(feature) = Bind2Feature::parse(item, ctx.config) {
                        bind.features.push(feature);
                    }
                }
                inline.bind = Some(bind);
            } else if child.is("resume", NS_SM) && ctx.config.stream_management {
                inline.resume = Some(child.clone());
            } else if child.is("fast", NS_FAST) {
                let invalidate = matches!(xml::attr(child, "invalidate"), Some("true" | "1"));
                inline.fast = Some(FastUse { invalidate });
            } else if child.is("request-token", NS_FAST)
                && let Some(m) = xml::attr(child, "mechanism")
                    .and_then(|m| FastMechanism::offered(m, self.channel_bindings()))
            {
                inline.request_token = Some(m.name());
            }
        }
        let initial = match el.get_child("initial-response", NS_SASL2) {
            None => None,
            Some(response) => match element_payload(response) {
                Some(data) => data,
                None => {
                    return self.sasl_failure(ctx, SaslFailure::IncorrectEncoding, None);
                }
            },
        };
        if let Some(m) = xml::attr(el, "mechanism").and_then(FastMechanism::from_name) {
            return self.start_fast(ctx, m, inline, initial);
        }
        self.set_sasl2(Some(Box::new(inline)));
        self.start_exchange(ctx, xml::attr(el, "mechanism"), initial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids() {
        assert!(valid_uuid("d4565fa7-4d72-4749-b3d3-740edbf87770"));
        assert!(valid_uuid("D4565FA7-4D72-4749-B3D3-740EDBF87770"));
        assert!(!valid_uuid("d4565fa7-4d72-4749-b3d3-740edbf8777"));
        assert!(!valid_uuid("d4565fa74d724749b3d3740edbf87770"));
        assert!(!valid_uuid("g4565fa7-4d72-4749-b3d3-740edbf87770"));
        assert!(!valid_uuid(""));
    }

    #[test]
    fn resources_are_stable_per_client_and_account() {
        let id = Some("d4565fa7-4d72-4749-b3d3-740edbf87770");
        let a = bind2_resource(Some("Conversations"), id, "a@x");
        assert_eq!(a, bind2_resource(Some("Conversations"), id, "a@x"));
        assert_ne!(a, bind2_resource(Some("Conversations"), id, "b@x"));
        let a = a.unwrap_or_default();
        assert!(a.starts_with("Conversations.") && a.len() == "Conversations.".len() + 8);
        let odd = bind2_resource(Some("a/b c@d"), id, "a@x").unwrap_or_default();
        assert!(odd.starts_with("abcd."), "{odd}");
        let none = bind2_resource(None, id, "a@x").unwrap_or_default();
        assert!(none.starts_with("client."), "{none}");
        assert_eq!(bind2_resource(Some("x"), None, "a@x"), None);
    }
}
