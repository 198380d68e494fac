//! Stream header checks (RFC 6120 §4.7, Prosody §2.3) and stream features
//! (RFC 6120 §4.3, Prosody §2.4).

use bytes::{Bytes, BytesMut};
use minidom::Element;

use super::{Ctx, Step};
use crate::config::Config;
use crate::error::{StreamError, StreamErrorCondition};
use crate::output::{Framing, Output};
use crate::sasl::Mechanism;
use crate::session::{Session, SessionKind};
use crate::stream::{self, StreamHeader};
use crate::xml::{self, NS_CLIENT, NS_STREAMS};

impl Session {
    pub(super) fn handle_header(&mut self, ctx: &mut Ctx<'_>, header: StreamHeader) -> Step {
        match self.check_header(ctx, &header) {
            Ok(host) => {
                self.host = Some(host);
            }
            Err(error) => {
                self.close(ctx, Some(error));
                return Step::Closed;
            }
        }
        let Ok(stream_id) = crate::random::random_id(ctx.rng, 16) else {
            // Never a predictable stream id: no randomness, no login.
            self.close(
                ctx,
                Some(StreamError::new(StreamErrorCondition::InternalServerError)),
            );
            return Step::Closed;
        };
        self.stream_id = stream_id;
        // Echo the client's `from` only if it is a valid JID.
        let to = header
            .from
            .as_deref()
            .and_then(|f| jid::Jid::new(f).ok())
            .map(|j| j.to_string());
        // With channel binding the features name this connection's binding
        // types, so they are built for it rather than cached.
        let features = if self.channel_bindings().is_some() {
            serialise(self.features(ctx.config))
        } else {
            ctx.features
                .get(self.kind(), self.secure, self.starttls_available, || {
                    self.features(ctx.config)
                })
        };
        if self.framing == Framing::WebSocket {
            return self.open_framed(ctx, to.as_deref(), features);
        }
        let mut buf = BytesMut::with_capacity(
            HEADER_CAPACITY + features.as_ref().map_or(0, |features| features.len()),
        );
        stream::write_stream_header(
            &mut buf,
            self.host.as_deref(),
            to.as_deref(),
            &self.stream_id,
            Some("1.0"),
            "en",
        );
        self.notopen = false;
        match features {
            Some(features) => {
                buf.extend_from_slice(&features);
                ctx.out.push_back(Output::Transmit {
                    session: self.id,
                    data: buf.freeze(),
                });
                Step::Continue
            }
            None => {
                ctx.out.push_back(Output::Transmit {
                    session: self.id,
                    data: buf.freeze(),
                });
                self.close_without_features(ctx)
            }
        }
    }

    /// The checks, in order; returns the normalised host.
    fn check_header(
        &mut self,
        ctx: &Ctx<'_>,
        header: &StreamHeader,
    ) -> Result<String, StreamError> {
        // Prepare the host early so that an error is sent in a stream from it.
        // On a stream restart `to` is normally the host already chosen, which
        // is normalised: taken as it is, it needs no parsing again.
        let requested = match (&self.host, header.to.as_deref()) {
            (Some(host), Some(to)) if host == to => Some(host.clone()),
            _ => requested_host(header.to.as_deref()),
        };
        if self.host.is_none()
            && let Some(host) = &requested
            && ctx.config.serves(host)
        {
            self.host = Some(host.clone());
        }
        if !header.name_ok {
            return Err(StreamError::new(StreamErrorCondition::InvalidNamespace));
        }
        if header.default_ns.as_deref() != Some(NS_CLIENT) {
            return Err(StreamError::with_text(
                StreamErrorCondition::InvalidNamespace,
                "The default namespace must be jabber:client",
            ));
        }
        let Some(_) = header.to.as_deref() else {
            return Err(StreamError::with_text(
                StreamErrorCondition::ImproperAddressing,
                "A 'to' attribute is required on stream headers",
            ));
        };
        let Some(host) = requested else {
            return Err(StreamError::with_text(
                StreamErrorCondition::ImproperAddressing,
                "A valid 'to' attribute is required on stream headers",
            ));
        };
        if let Some(current) = &self.host
            && *current != host
        {
            return Err(StreamError::with_text(
                StreamErrorCondition::NotAuthorized,
                "The 'to' attribute must remain the same across stream restarts",
            ));
        }
        if !ctx.config.serves(&host) {
            return Err(StreamError::with_text(
                StreamErrorCondition::HostUnknown,
                format!("This server does not serve {host}"),
            ));
        }
        if !version_supported(header.version.as_deref()) {
            return Err(StreamError::with_text(
                StreamErrorCondition::UnsupportedVersion,
                "Only XMPP version 1.0 is supported",
            ));
        }
        Ok(host)
    }

    /// The `<stream:features/>` for the current stage, or `None` when there
    /// is nothing the client could do.
    ///
    /// It depends only on the session's kind, `secure` and
    /// `starttls_available` and on the configuration, so the manager keeps it
    /// serialised in a [`FeaturesCache`] — except on a connection with
    /// channel-binding data, whose features are built each time.
    fn features(&self, config: &Config) -> Option<Element> {
        let mut features = Element::bare("features", NS_STREAMS);
        match self.kind() {
            SessionKind::Unauthenticated => {
                if !self.secure && self.starttls_available {
                    let mut starttls = Element::bare("starttls", xml::NS_TLS);
                    if config.require_tls {
                        starttls.append_child(Element::bare("required", xml::NS_TLS));
                    }
                    features.append_child(starttls);
                }
                if self.secure || !config.require_tls {
                    let mut mechanisms = Element::bare("mechanisms", xml::NS_SASL);
                    for m in self.offered_mechanisms(config) {
                        mechanisms.append_child(xml::text_element(
                            "mechanism",
                            xml::NS_SASL,
                            m.name(),
                        ));
                    }
                    if xml::child_count(&mechanisms) > 0 {
                        features.append_child(mechanisms);
                        if let Some(bindings) = self.channel_bindings()
                            && self.offered_mechanisms(config).any(Mechanism::is_plus)
                        {
                            // XEP-0440: the types the -PLUS mechanisms accept.
                            let mut cb = Element::bare("sasl-channel-binding", xml::NS_SASL_CB);
                            for kind in bindings.types() {
                                let mut el = Element::bare("channel-binding", xml::NS_SASL_CB);
                                xml::set_attr(&mut el, "type", kind.name());
                                cb.append_child(el);
                            }
                            features.append_child(cb);
                        }
                        if config.sasl2 {
                            features.append_child(super::sasl2::authentication_feature(
                                config,
                                self.offered_mechanisms(config).map(|m| m.name()),
                                self.channel_bindings(),
                            ));
                        }
                    }
                }
            }
            SessionKind::Authenticated => {
                let mut bind = Element::bare("bind", xml::NS_BIND);
                bind.append_child(Element::bare("required", xml::NS_BIND));
                features.append_child(bind);
                let mut session = Element::bare("session", xml::NS_SESSION);
                session.append_child(Element::bare("optional", xml::NS_SESSION));
                features.append_child(session);
                features.append_child(Element::bare("ver", xml::NS_ROSTER_VER));
                features.append_child(Element::bare("sub", xml::NS_PRE_APPROVAL));
                if config.stream_management {
                    features.append_child(Element::bare("sm", xml::NS_SM));
                }
                features.append_child(Element::bare("csi", xml::NS_CSI));
            }
            SessionKind::Bound => {}
        }
        if xml::child_count(&features) == 0 && self.kind() != SessionKind::Bound {
            return None;
        }
        // XEP-0478: advertise the limit this stream enforces, which is the
        // smaller pre-authentication one until SASL succeeds.
        let limits = if self.kind() == SessionKind::Unauthenticated {
            &config.unauthenticated_limits
        } else {
            &config.limits
        };
        let mut advert = Element::bare("limits", xml::NS_STREAM_LIMITS);
        advert.append_child(xml::text_element(
            "max-bytes",
            xml::NS_STREAM_LIMITS,
            &limits.max_stanza_bytes.to_string(),
        ));
        features.append_child(advert);
        Some(features)
    }
}

/// The normalised domain a stream header's `to` names, if it is a bare domain.
fn requested_host(to: Option<&str>) -> Option<String> {
    to.and_then(|to| jid::Jid::new(to).ok())
        .filter(|j| j.node().is_none() && j.resource().is_none())
        .map(|j| j.domain().as_str().to_owned())
}

/// Room for our stream header: the fixed text, a 16-character id and the host.
const HEADER_CAPACITY: usize = 256;

/// The serialised `<stream:features/>` for each combination of what they
/// depend on besides the immutable [`Config`]: the session's kind, and for an
/// unauthenticated session whether the stream is secure and whether STARTTLS
/// is available. Each is built the first time it is needed, then shared.
#[derive(Debug, Default)]
pub(crate) struct FeaturesCache {
    /// Indexed by [`FeaturesCache::slot`]; the inner `None` records that
    /// there were no features to offer.
    slots: [Option<Option<Bytes>>; FeaturesCache::SLOTS],
}

impl FeaturesCache {
    const SLOTS: usize = 6;

    fn slot(kind: SessionKind, secure: bool, starttls_available: bool) -> usize {
        match kind {
            SessionKind::Unauthenticated => {
                usize::from(secure) * 2 + usize::from(starttls_available)
            }
            SessionKind::Authenticated => 4,
            SessionKind::Bound => 5,
        }
    }

    /// The features for this combination, serialising `build`'s element the
    /// first time.
    fn get(
        &mut self,
        kind: SessionKind,
        secure: bool,
        starttls_available: bool,
        build: impl FnOnce() -> Option<Element>,
    ) -> Option<Bytes> {
        let Some(slot) = self
            .slots
            .get_mut(Self::slot(kind, secure, starttls_available))
        else {
            return serialise(build());
        };
        slot.get_or_insert_with(|| serialise(build())).clone()
    }
}

fn serialise(features: Option<Element>) -> Option<Bytes> {
    features.map(|features| {
        let mut buf = BytesMut::with_capacity(512);
        stream::write_element(&features, &mut buf);
        buf.freeze()
    })
}

/// Only major version 1 is accepted (RFC 6120 §4.7.5). A missing version
/// means a pre-RFC 3920 client, which cannot negotiate SASL here.
fn version_supported(version: Option<&str>) -> bool {
    let Some(v) = version else { return false };
    let mut parts = v.trim().splitn(2, '.');
    let major = parts.next().and_then(|m| m.parse::<u32>().ok());
    let minor_ok = parts
        .next()
        .map(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or(false);
    major == Some(1) && minor_ok
}

#[cfg(test)]
mod tests {
    use super::version_supported;

    #[test]
    fn versions() {
        assert!(version_supported(Some("1.0")));
        assert!(version_supported(Some("1.1")));
        assert!(!version_supported(None));
        assert!(!version_supported(Some("0.9")));
        assert!(!version_supported(Some("2.0")));
        assert!(!version_supported(Some("1")));
        assert!(!version_supported(Some("one")));
        assert!(!version_supported(Some("1.x")));
    }
}
