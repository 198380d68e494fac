//! The session side of RFC 7395 (XMPP over WebSocket): `<open/>` and
//! `<close/>` in place of the stream root, and one message per output.

use bytes::{Bytes, BytesMut};
use minidom::Element;
use minidom::rxml::Namespace;

use super::{Ctx, Step};
use crate::error::{StreamError, StreamErrorCondition};
use crate::ns::{NS_CLIENT, NS_FRAMING};
use crate::output::Output;
use crate::session::Session;
use crate::stream::{self, FrameError, StreamHeader};

/// The stream error for a refused WebSocket message.
pub(crate) fn frame_error_to_stream_error(e: FrameError) -> StreamError {
    match e {
        FrameError::Read(e) => super::read_error_to_stream_error(&e),
        FrameError::NotOneElement => StreamError::with_text(
            StreamErrorCondition::NotWellFormed,
            "A WebSocket message must hold exactly one complete XML element",
        ),
        FrameError::StreamHeader => StreamError::with_text(
            StreamErrorCondition::InvalidNamespace,
            "Open a WebSocket stream with <open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
        ),
    }
}

impl Session {
    /// One element from a WebSocket message: `<open/>` where a stream
    /// header is due, `<close/>`, or anything a TCP stream carries.
    pub(super) fn handle_framed(&mut self, ctx: &mut Ctx<'_>, el: Element) -> Step {
        if self.notopen {
            return self.handle_header(ctx, open_header(&el));
        }
        if el.is("close", NS_FRAMING) {
            // The client closed its stream: answer with `<close/>`.
            self.close(ctx, None);
            return Step::Closed;
        }
        self.handle_element(ctx, el)
    }

    /// Our `<open/>` (RFC 7395), then the features if any, each its own
    /// message; without features the stream is closed as on TCP.
    pub(super) fn open_framed(
        &mut self,
        ctx: &mut Ctx<'_>,
        to: Option<&str>,
        features: Option<Bytes>,
    ) -> Step {
        let mut buf = BytesMut::with_capacity(160);
        stream::write_open(&mut buf, self.host.as_deref(), to, &self.stream_id);
        self.notopen = false;
        ctx.out.push_back(Output::Transmit {
            session: self.id,
            data: buf.freeze(),
        });
        match features {
            Some(features) => {
                ctx.out.push_back(Output::Transmit {
                    session: self.id,
                    data: stream::frame_bytes(&features),
                });
                Step::Continue
            }
            None => self.close_without_features(ctx),
        }
    }

    /// Closes a WebSocket stream: `<open/>` first if none was sent, the
    /// stream error if any, `<close/>` (each its own message), then
    /// [`Output::Close`].
    pub(super) fn close_framed(&mut self, ctx: &mut Ctx<'_>, reason: Option<StreamError>) {
        let open = self.notopen.then(|| {
            let id = self.closing_stream_id(ctx);
            let mut buf = BytesMut::with_capacity(160);
            stream::write_open(&mut buf, self.host.as_deref(), None, &id);
            buf.freeze()
        });
        let session = self.id;
        let mut send = |data: Bytes| ctx.out.push_back(Output::Transmit { session, data });
        if let Some(open) = open {
            send(open);
        }
        if let Some(reason) = &reason {
            send(stream::frame_bytes(&stream::element_bytes(
                &reason.to_element(),
            )));
        }
        send(Bytes::from_static(stream::FRAMING_CLOSE));
        ctx.out.push_back(Output::Close { session: self.id });
        self.mark_closed();
    }
}

/// The header checks' view of an `<open/>`: only an `open` element in the
/// framing namespace counts as a stream header, and its content namespace
/// is `jabber:client` by definition (RFC 7395).
fn open_header(el: &Element) -> StreamHeader {
    let name_ok = el.is("open", NS_FRAMING);
    let get = |name: &str| el.attr(name).map(str::to_owned);
    StreamHeader {
        name_ok,
        default_ns: Some(if name_ok {
            NS_CLIENT.to_owned()
        } else {
            el.ns()
        }),
        to: get("to"),
        from: get("from"),
        version: get("version"),
        lang: el.attrs().get(Namespace::xml(), "lang").cloned(),
        id: get("id"),
    }
}
