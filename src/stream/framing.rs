//! XMPP over WebSocket (RFC 7395): every WebSocket message holds exactly
//! one complete top-level element that carries its own namespace
//! declarations; `<open/>` and `<close/>` in [`NS_FRAMING`] replace the
//! `<stream:stream>` root.
//!
//! * [`read_frame`] checks that a message's payload is one complete element
//!   (parsed with only its own declarations) before the session's reader
//!   sees it, so frame boundaries never need to be remembered later.
//! * [`frame_bytes`] turns one element as [`write_element`](super::write_element)
//!   or the byte-forwarding path writes it inside a TCP stream into the
//!   payload of one message: `xmlns='jabber:client'` on stanzas,
//!   `<features xmlns='http://etherx.jabber.org/streams'>` for the stream
//!   features and `xmlns:stream` declared on `<stream:error>`.

use bytes::{BufMut, Bytes, BytesMut};

pub use super::writer::write_open;
use minidom::Element;

use super::{ReadError, StreamEvent, StreamReader, XmlLimits};
use crate::ns::{NS_CLIENT, NS_STREAMS};

/// The `<close/>` message that ends a WebSocket stream (RFC 7395).
pub const FRAMING_CLOSE: &[u8] = b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>";

/// Why a WebSocket message cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// The XML itself is bad or over a limit.
    Read(ReadError),
    /// No element, more than one, or an unfinished one.
    NotOneElement,
    /// A TCP stream header (`<stream:stream …>`) instead of `<open/>`.
    StreamHeader,
}

/// Reads one WebSocket message's payload: exactly one complete element,
/// optionally surrounded by white space, within `limits`.
pub(crate) fn read_frame(payload: &[u8], limits: XmlLimits) -> Result<Element, FrameError> {
    if is_stream_header(payload) {
        return Err(FrameError::StreamHeader);
    }
    let mut reader = StreamReader::new_framed(limits);
    reader.push(payload);
    let element = match reader.next_event() {
        Ok(Some(StreamEvent::Stanza(el))) => el,
        Err(e) => return Err(FrameError::Read(e)),
        // Nothing, or an element that does not end in this message.
        Ok(_) => return Err(FrameError::NotOneElement),
    };
    // The reader stops right after the element: what it left is the rest
    // of this payload.
    let rest = payload
        .get(payload.len().saturating_sub(reader.buffered_len())..)
        .unwrap_or_default();
    if rest
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        Ok(element)
    } else {
        Err(FrameError::NotOneElement)
    }
}

/// Whether the payload starts (after white space and an XML declaration)
/// with a `<stream:stream` start tag.
fn is_stream_header(payload: &[u8]) -> bool {
    let skip_space = |s: &[u8]| -> usize {
        s.iter()
            .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .count()
    };
    let mut rest = payload.get(skip_space(payload)..).unwrap_or_default();
    if rest.starts_with(b"<?xml") {
        let Some(end) = memchr::memmem::find(rest, b"?>") else {
            return false;
        };
        rest = rest.get(end.saturating_add(2)..).unwrap_or_default();
        rest = rest.get(skip_space(rest)..).unwrap_or_default();
    }
    rest.strip_prefix(b"<stream:stream").is_some_and(|after| {
        matches!(
            after.first(),
            None | Some(b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/')
        )
    })
}

/// Serialises `el` as the payload of one WebSocket message: the top-level
/// element declares its own namespace (see the module documentation).
pub fn write_framed_element(el: &Element, out: &mut BytesMut) {
    let tcp = super::element_bytes(el);
    out.put_slice(&frame_bytes(&tcp));
}

/// Turns one top-level element as written inside a TCP stream (by
/// [`write_element`](super::write_element) or byte forwarding) into the
/// payload of one WebSocket message.
pub(crate) fn frame_bytes(data: &Bytes) -> Bytes {
    let Some(after_lt) = data.strip_prefix(b"<") else {
        return data.clone();
    };
    let name_len = after_lt
        .iter()
        .take_while(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>'))
        .count();
    let name = after_lt.get(..name_len).unwrap_or_default();
    let rest = after_lt.get(name_len..).unwrap_or_default();
    let mut out = BytesMut::with_capacity(data.len().saturating_add(48));
    if name == b"stream:features" {
        out.put_slice(b"<features xmlns='");
        out.put_slice(NS_STREAMS.as_bytes());
        out.put_u8(b'\'');
        match rest.strip_suffix(b"</stream:features>") {
            Some(inner) => {
                out.put_slice(inner);
                out.put_slice(b"</features>");
            }
            None => out.put_slice(rest),
        }
    } else if name.starts_with(b"stream:") {
        declare(&mut out, name, "xmlns:stream", NS_STREAMS, rest);
    } else if rest.starts_with(b" xmlns='") {
        // The writer declares a namespace other than jabber:client first.
        return data.clone();
    } else {
        declare(&mut out, name, "xmlns", NS_CLIENT, rest);
    }
    out.freeze()
}

/// `<name attr='ns'` then `rest` (the start tag's other attributes on).
fn declare(out: &mut BytesMut, name: &[u8], attr: &str, ns: &str, rest: &[u8]) {
    out.put_u8(b'<');
    out.put_slice(name);
    out.put_u8(b' ');
    out.put_slice(attr.as_bytes());
    out.put_slice(b"='");
    out.put_slice(ns.as_bytes());
    out.put_u8(b'\'');
    out.put_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns::NS_FRAMING;

    fn frame(s: &str) -> Result<Element, FrameError> {
        read_frame(s.as_bytes(), XmlLimits::default())
    }

    #[test]
    fn one_element_with_its_own_namespace() {
        let el = frame("<message xmlns='jabber:client' to='a@b'><body>x</body></message>")
            .expect("one element");
        assert!(el.is("message", NS_CLIENT));
        assert!(el.get_child("body", NS_CLIENT).is_some());
        let el = frame(" <open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='b'/>\n")
            .expect("white space around is fine");
        assert!(el.is("open", NS_FRAMING));
        // Without a declaration an element is in no namespace.
        assert!(frame("<message/>").expect("one element").has_ns(""));
    }

    #[test]
    fn anything_but_one_complete_element_is_refused() {
        for bad in [
            "",
            "  ",
            "<a/><b/>",
            "<a>",
            "<a/><b",
            "<a/>text",
            "<frames>",
            "<frames/><x/>",
        ] {
            assert!(
                matches!(
                    frame(bad),
                    Err(FrameError::NotOneElement | FrameError::Read(_))
                ),
                "{bad:?} accepted"
            );
        }
        assert_eq!(frame("<a/><b/>"), Err(FrameError::NotOneElement));
        assert_eq!(frame("<a>"), Err(FrameError::NotOneElement));
        assert_eq!(frame("<a/>x"), Err(FrameError::NotOneElement));
        assert_eq!(frame("<a/><b"), Err(FrameError::NotOneElement));
        assert_eq!(
            frame("<a></b>"),
            Err(FrameError::Read(ReadError::NotWellFormed))
        );
        assert_eq!(
            frame("<p:a/>"),
            Err(FrameError::Read(ReadError::NotWellFormed))
        );
        assert_eq!(
            frame(
                "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='b'>"
            ),
            Err(FrameError::StreamHeader)
        );
        assert_eq!(frame("<stream:stream/>"), Err(FrameError::StreamHeader));
    }

    #[test]
    fn limits_apply() {
        let limits = XmlLimits {
            max_stanza_bytes: 20,
            ..XmlLimits::default()
        };
        assert_eq!(
            read_frame(b"<message xmlns='jabber:client'/>", limits),
            Err(FrameError::Read(ReadError::StanzaTooBig))
        );
    }

    #[test]
    fn tcp_forms_become_frames() {
        let f = |s: &str| {
            String::from_utf8(frame_bytes(&Bytes::copy_from_slice(s.as_bytes())).to_vec())
                .expect("utf-8")
        };
        assert_eq!(
            f("<message to='a'><body>x</body></message>"),
            "<message xmlns='jabber:client' to='a'><body>x</body></message>"
        );
        assert_eq!(f("<presence/>"), "<presence xmlns='jabber:client'/>");
        assert_eq!(
            f("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"),
            "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
        );
        assert_eq!(
            f(
                "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
            ),
            "<features xmlns='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></features>"
        );
        assert_eq!(
            f("<stream:features/>"),
            "<features xmlns='http://etherx.jabber.org/streams'/>"
        );
        assert_eq!(
            f(
                "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
            ),
            "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
        );
        assert_eq!(f(""), "");
    }

    #[test]
    fn open_header() {
        let mut out = BytesMut::new();
        write_open(&mut out, Some("localhost"), None, "abc");
        assert_eq!(
            &out[..],
            &b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' xml:lang='en' id='abc' from='localhost' version='1.0'/>"[..]
        );
    }
}
