//! The XML stream layer of an XMPP c2s connection (RFC 6120 §4, §11).
//!
//! * [`StreamReader`] turns the bytes a client sends into [`StreamEvent`]s:
//!   the stream header, one [`minidom::Element`] per top-level element
//!   (stanza or nonza) and the end of the stream. It enforces
//!   [`XmlLimits`], rejects the XML that RFC 6120 §11 forbids and stops after
//!   every top-level element so that the caller can restart the stream at
//!   exactly the right byte (SASL success, STARTTLS).
//! * [`write_element`], [`element_bytes`] and [`write_stream_header`]
//!   serialise in the context of an open stream whose default namespace is
//!   [`NS_CLIENT`] and whose `stream` prefix is bound to [`NS_STREAMS`].
//! * [`write_open`], [`write_framed_element`] and [`FRAMING_CLOSE`] write
//!   the payloads of WebSocket messages (RFC 7395), where every element
//!   carries its own namespace declarations.
//!
//! Everything here is sans-IO: no sockets, no clock, no panics on input.

#[cfg(test)]
mod differential;
mod framing;
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod oracle;
mod reader;
mod writer;
mod xml;

pub use framing::{FRAMING_CLOSE, write_framed_element, write_open};
pub(crate) use framing::{FrameError, frame_bytes, read_frame};
pub(crate) use reader::RawMessage;
pub use reader::{ReadError, StreamEvent, StreamHeader, StreamReader, XmlLimits};
pub use writer::{STREAM_CLOSE, element_bytes, write_element, write_stream_header};
pub(crate) use writer::{
    carbon_copy, carbon_tail, write_forwarded, write_iq_result_open, write_text,
};

pub use crate::ns::{NS_CLIENT, NS_FRAMING, NS_STREAMS};
