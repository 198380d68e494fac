//! The per-session state machine: stream header, features, STARTTLS, SASL,
//! resource binding, and what a session may send before it is bound.

mod auth;
mod bind;
mod fast;
mod framing;
mod header;
mod sasl2;

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use minidom::Element;

use crate::config::Config;
use crate::error::{StanzaError, StreamError, StreamErrorCondition};
use crate::output::{Framing, Output};
use crate::random::RandomSource;
use crate::session::{Session, SessionKind};
use crate::storage::Request;
use crate::stream::{self, ReadError, StreamEvent};
use crate::xml::{self, NS_CLIENT, NS_SASL, NS_STREAMS, NS_TLS, StanzaKind};

pub(crate) use bind::{BindReply, BindRequest};
pub(crate) use fast::client_key as fast_client_key;
pub(crate) use framing::frame_error_to_stream_error;
pub(crate) use header::FeaturesCache;
pub(crate) use sasl2::{
    Bind2Feature, Sasl2Bind, Sasl2Success, bind2_resource, failure as sasl2_failure,
    success_element,
};

/// What the manager must do after one step of a session.
#[derive(Debug)]
pub(crate) enum Step {
    /// Nothing more to do until more input or an answer arrives.
    Idle,
    /// Progress was made; step again.
    Continue,
    /// A stanza from a bound session, to be routed.
    Stanza(Element),
    /// SASL needs storage: SCRAM credentials ([`Request::Credentials`]) or a PLAIN
    /// password check ([`Request::VerifyPassword`]). The answer goes back through
    /// `Session::sasl_answer`.
    SaslRequest(Request),
    /// The client asks to bind a resource.
    Bind(BindRequest),
    /// SASL succeeded.
    Authenticated,
    /// SASL2 succeeded: the manager applies the inline requests and sends
    /// `<success/>`.
    Sasl2(Box<Sasl2Success>),
    /// A stream management nonza (XEP-0198) after authentication.
    Sm(Element),
    /// XEP-0352 `<active/>` or `<inactive/>` from a bound client.
    ClientState {
        /// `true` for `<active/>`.
        active: bool,
    },
    /// The session has closed itself (its closing bytes are queued).
    Closed,
}

/// What a session step may use from the manager.
pub(crate) struct Ctx<'a> {
    pub config: &'a Config,
    pub rng: &'a mut dyn RandomSource,
    pub out: &'a mut VecDeque<Output>,
    /// The serialised stream features, built once per combination.
    pub features: &'a mut FeaturesCache,
}

impl Session {
    /// Serializes `el` and queues it for this session (one WebSocket
    /// message on a WebSocket connection).
    pub(crate) fn send_element(&self, out: &mut VecDeque<Output>, el: &Element) {
        let mut buf = BytesMut::with_capacity(128);
        stream::write_element(el, &mut buf);
        self.transmit(out, buf.freeze());
    }

    /// Queues one top-level element, serialised for a TCP stream, for this
    /// session; on a WebSocket connection it becomes one message declaring
    /// its own namespace.
    pub(crate) fn transmit(&self, out: &mut VecDeque<Output>, data: Bytes) {
        let data = match self.framing {
            Framing::WebSocket => stream::frame_bytes(&data),
            _ => data,
        };
        out.push_back(Output::Transmit {
            session: self.id,
            data,
        });
    }

    /// Processes buffered input until one thing needs the manager.
    pub(crate) fn step(&mut self, ctx: &mut Ctx<'_>) -> Step {
        if self.closed() || self.blocked.is_some() || self.awaiting_tls() {
            return Step::Idle;
        }
        match self.reader.next_event() {
            Ok(None) => match self.frame_error.take() {
                // A bad WebSocket message, reached in order.
                Some(error) => {
                    self.close(ctx, Some(*error));
                    Step::Closed
                }
                None => Step::Idle,
            },
            Err(e) => {
                self.close(ctx, Some(read_error_to_stream_error(&e)));
                Step::Closed
            }
            Ok(Some(StreamEvent::Open(header))) => self.handle_header(ctx, header),
            Ok(Some(StreamEvent::Close)) => {
                // The client closed its stream: close ours, no error.
                self.close(ctx, None);
                Step::Closed
            }
            Ok(Some(StreamEvent::Stanza(el))) if self.framing == Framing::WebSocket => {
                self.handle_framed(ctx, el)
            }
            Ok(Some(StreamEvent::Stanza(el))) => self.handle_element(ctx, el),
        }
    }

    fn handle_element(&mut self, ctx: &mut Ctx<'_>, el: Element) -> Step {
        if el.has_ns(NS_CLIENT) && StanzaKind::of(&el).is_some() {
            return match self.kind() {
                SessionKind::Bound => Step::Stanza(el),
                // RFC 6120 §4.9.3.12: a stanza before authentication is a
                // stream error, never answered stanza by stanza.
                SessionKind::Unauthenticated => {
                    self.close(
                        ctx,
                        Some(StreamError::new(StreamErrorCondition::NotAuthorized)),
                    );
                    Step::Closed
                }
                _ => self.handle_unbound_stanza(ctx, el),
            };
        }
        if el.is("error", NS_STREAMS) {
            // The client reports a stream error: close without one of ours.
            self.close(ctx, None);
            return Step::Closed;
        }
        if el.has_ns(xml::NS_SM) && self.kind() != SessionKind::Unauthenticated {
            return Step::Sm(el);
        }
        if self.kind() == SessionKind::Bound && el.has_ns(xml::NS_CSI) {
            match el.name() {
                "active" => return Step::ClientState { active: true },
                "inactive" => return Step::ClientState { active: false },
                _ => {}
            }
        }
        if el.is("starttls", NS_TLS) {
            return self.handle_starttls(ctx);
        }
        if (el.has_ns(NS_SASL) || (el.has_ns(xml::NS_SASL2) && ctx.config.sasl2))
            && self.kind() == SessionKind::Unauthenticated
        {
            let abort = el.name() == "abort";
            let step = self.handle_sasl(ctx, el);
            if abort && matches!(step, Step::Continue) {
                return self.count_aborted_attempt(ctx);
            }
            return step;
        }
        self.close(
            ctx,
            Some(StreamError::new(
                StreamErrorCondition::UnsupportedStanzaType,
            )),
        );
        Step::Closed
    }

    /// An `<abort/>` counts as a failed authentication attempt, so that a
    /// client cannot start and abort exchanges without end; at
    /// [`Config::max_auth_failures`] the stream closes as after failures.
    fn count_aborted_attempt(&mut self, ctx: &mut Ctx<'_>) -> Step {
        let Some(n) = self.negotiating_mut() else {
            return Step::Continue;
        };
        n.failures = n.failures.saturating_add(1);
        if n.failures < ctx.config.max_auth_failures {
            return Step::Continue;
        }
        self.close(
            ctx,
            Some(StreamError::with_text(
                StreamErrorCondition::PolicyViolation,
                "Too many failed authentication attempts",
            )),
        );
        Step::Closed
    }

    /// RFC 6120 §7.1 / Prosody §2.9: before binding only the bind iq is
    /// served; other requests get `service-unavailable`, errors and results
    /// are dropped, and nothing is routed.
    fn handle_unbound_stanza(&mut self, ctx: &mut Ctx<'_>, el: Element) -> Step {
        let ty = xml::attr(&el, "type");
        if ty == Some("error") {
            return Step::Continue;
        }
        if el.name() == "iq" {
            if !matches!(ty, Some("get") | Some("set")) {
                return Step::Continue;
            }
            if el.get_child("bind", xml::NS_BIND).is_some() {
                return self.handle_bind_iq(ctx, el);
            }
        }
        self.reply_error(ctx, &el, &StanzaError::service_unavailable());
        Step::Continue
    }

    /// Sends the error reply to `original` back to this session (never to
    /// anybody else), unless `original` is an error itself.
    pub(crate) fn reply_error(&self, ctx: &mut Ctx<'_>, original: &Element, error: &StanzaError) {
        if let Some(mut reply) = error.reply_to(original) {
            // The reply goes to this session only; never echo a client's `from`.
            if self.kind() != SessionKind::Bound {
                xml::remove_attr(&mut reply, "to");
            }
            self.send_element(ctx.out, &reply);
        }
    }

    /// Closes the stream: our header first if none was sent, the stream
    /// error if any, `</stream:stream>`, then [`Output::Close`].
    pub(crate) fn close(&mut self, ctx: &mut Ctx<'_>, reason: Option<StreamError>) {
        if self.closed() {
            return;
        }
        if self.awaiting_tls() {
            // Mid-handshake: nothing we write could be read. Just close.
            ctx.out.push_back(Output::Close { session: self.id });
            self.mark_closed();
            return;
        }
        if self.framing == Framing::WebSocket {
            self.close_framed(ctx, reason);
            return;
        }
        let mut buf = BytesMut::with_capacity(256);
        if self.notopen {
            let id = self.closing_stream_id(ctx);
            stream::write_stream_header(
                &mut buf,
                self.host.as_deref(),
                None,
                &id,
                Some("1.0"),
                "en",
            );
        }
        if let Some(reason) = &reason {
            stream::write_element(&reason.to_element(), &mut buf);
        }
        buf.extend_from_slice(stream::STREAM_CLOSE);
        ctx.out.push_back(Output::Transmit {
            session: self.id,
            data: buf.freeze(),
        });
        ctx.out.push_back(Output::Close { session: self.id });
        self.mark_closed();
    }
}

impl Session {
    /// No stream feature lets the client go on: close the stream.
    fn close_without_features(&mut self, ctx: &mut Ctx<'_>) -> Step {
        self.close(
            ctx,
            Some(StreamError::with_text(
                StreamErrorCondition::UndefinedCondition,
                "No stream features to proceed with",
            )),
        );
        Step::Closed
    }

    /// The id for a stream opened only to be closed at once.
    fn closing_stream_id(&self, ctx: &mut Ctx<'_>) -> String {
        if self.stream_id.is_empty() {
            // This stream closes at once, so its id protects nothing;
            // without randomness it stays empty rather than predictable.
            crate::random::random_id(ctx.rng, 16).unwrap_or_default()
        } else {
            self.stream_id.clone()
        }
    }
}

/// The stream error for a reader failure (RFC 6120 §4.9.3).
pub(crate) fn read_error_to_stream_error(e: &ReadError) -> StreamError {
    match e {
        ReadError::NotWellFormed => StreamError::new(StreamErrorCondition::NotWellFormed),
        ReadError::RestrictedXml => StreamError::new(StreamErrorCondition::RestrictedXml),
        ReadError::StanzaTooBig => StreamError {
            condition: StreamErrorCondition::PolicyViolation,
            text: Some("XML stanza is too big".into()),
            stanza_too_big: true,
            handled_count_too_high: None,
        },
        ReadError::TooDeep => StreamError::with_text(
            StreamErrorCondition::PolicyViolation,
            "XML elements are nested too deeply",
        ),
        ReadError::TooManyAttributes => StreamError::with_text(
            StreamErrorCondition::PolicyViolation,
            "Too many attributes on one element",
        ),
        ReadError::TextTooBig => StreamError::with_text(
            StreamErrorCondition::PolicyViolation,
            "Text content is too big",
        ),
    }
}
