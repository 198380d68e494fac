//! Incremental, pull-based reader for one never-closed `<stream:stream>`
//! document.
//!
//! The reader sits on [`minidom::rxml::RawParser`] (restricted XML 1.0, UTF-8
//! only, no DTD, no processing instructions, no comments) and does its own
//! namespace resolution, which lets it report the header's default namespace,
//! reject duplicate attributes and undeclared prefixes, and apply
//! [`XmlLimits`] event by event before anything large is built.
//!
//! ```
//! use xmpp_session::stream::{StreamEvent, StreamReader, XmlLimits};
//!
//! let mut reader = StreamReader::new(XmlLimits::default());
//! reader.push(b"<stream:stream xmlns='jabber:client' \
//!     xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>\
//!     <presence/> ");
//! match reader.next_event() {
//!     Ok(Some(StreamEvent::Open(header))) => assert_eq!(header.to.as_deref(), Some("example.com")),
//!     other => panic!("unexpected {other:?}"),
//! }
//! match reader.next_event() {
//!     Ok(Some(StreamEvent::Stanza(el))) => assert!(el.is("presence", "jabber:client")),
//!     other => panic!("unexpected {other:?}"),
//! }
//! assert_eq!(reader.next_event(), Ok(None)); // the keepalive space is dropped
//! ```

use bytes::{Buf, BytesMut};
use minidom::rxml::error::EndOrError;
use minidom::rxml::{AttrMap, Namespace, NcName, Parse, RawEvent, RawParser};
use minidom::{Element, Node};

use super::NS_STREAMS;

/// Limits applied to everything a peer sends.
///
/// The defaults follow Prosody's `c2s_stanza_size_limit` (256 KiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XmlLimits {
    /// Largest top-level element (and largest stream header), in raw bytes
    /// as received, from its `<` to its closing `>`. Bytes of an element
    /// that is still open count as soon as the parser has consumed them, so
    /// a stanza that never closes is caught too. Default: 262 144.
    pub max_stanza_bytes: usize,
    /// Deepest nesting inside a top-level element; the top-level element
    /// itself is depth 1 (the stream root is not counted). Default: 64.
    pub max_depth: usize,
    /// Most attributes on one element, namespace declarations included.
    /// Default: 64.
    pub max_attributes: usize,
    /// Most character data directly inside one element, in bytes after
    /// entity expansion. Default: 262 144.
    pub max_text_bytes: usize,
}

impl Default for XmlLimits {
    /// 256 KiB per stanza, depth 64, 64 attributes per element, 256 KiB of
    /// text per element.
    fn default() -> Self {
        Self {
            max_stanza_bytes: 262_144,
            max_depth: 64,
            max_attributes: 64,
            max_text_bytes: 262_144,
        }
    }
}

/// The attributes of a `<stream:stream>` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamHeader {
    /// Whether the root is `{http://etherx.jabber.org/streams}stream`.
    pub name_ok: bool,
    /// The default namespace (`xmlns='…'`) declared on the header itself,
    /// if any (`Some("")` for `xmlns=''`).
    pub default_ns: Option<String>,
    /// The `to` attribute.
    pub to: Option<String>,
    /// The `from` attribute.
    pub from: Option<String>,
    /// The `version` attribute.
    pub version: Option<String>,
    /// The `xml:lang` attribute.
    pub lang: Option<String>,
    /// The `id` attribute.
    pub id: Option<String>,
}

/// One complete piece of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The stream header is complete.
    Open(StreamHeader),
    /// A complete top-level element (stanza or nonza).
    Stanza(Element),
    /// The peer closed the stream (`</stream:stream>`).
    Close,
}

/// Why the stream cannot be read any further.
///
/// Every error is final: the reader keeps returning it until
/// [`StreamReader::restart`] or [`StreamReader::restart_discarding`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Malformed XML: bad syntax or UTF-8, an undeclared prefix, a duplicate
    /// attribute, text or an element outside the root, or anything but
    /// whitespace after the root closed.
    #[error("XML is not well-formed")]
    NotWellFormed,
    /// XML that RFC 6120 §11 forbids: a DTD or DOCTYPE, a processing
    /// instruction, a comment, an entity declaration or a reference to an
    /// entity other than the five predefined ones, or an XML declaration
    /// with a version other than 1.0, an encoding other than UTF-8 or
    /// `standalone='no'`.
    #[error("restricted XML (RFC 6120 §11)")]
    RestrictedXml,
    /// A top-level element (or the header) exceeded
    /// [`XmlLimits::max_stanza_bytes`], or a single name or attribute value
    /// exceeded the parser's 8 KiB token limit.
    #[error("stanza too big")]
    StanzaTooBig,
    /// Nesting exceeded [`XmlLimits::max_depth`].
    #[error("elements nested too deeply")]
    TooDeep,
    /// An element carried more than [`XmlLimits::max_attributes`].
    #[error("too many attributes on one element")]
    TooManyAttributes,
    /// An element's text exceeded [`XmlLimits::max_text_bytes`].
    #[error("too much text in one element")]
    TextTooBig,
}

/// Where the reader is in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the root's head has closed.
    Prolog,
    /// Inside the root: stanzas are read.
    Open,
    /// After `</stream:stream>`: only whitespace may follow.
    Closed,
}

/// An element whose head (`<name attr='…'`) is being read.
#[derive(Debug)]
struct Head {
    prefix: Option<NcName>,
    local: NcName,
    /// Length of `bindings` before this element's declarations.
    mark: usize,
    /// Attributes seen so far, namespace declarations included.
    count: usize,
}

/// An open element inside a stanza.
#[derive(Debug)]
struct Frame {
    el: Element,
    text_bytes: usize,
    /// Length of `bindings` before this element's declarations.
    mark: usize,
}

/// Bindings longer than this are shrunk between stanzas.
const KEEP_SCRATCH: usize = 16;
/// An emptied input buffer with more capacity than this is freed.
const KEEP_BUFFER: usize = 16 * 1024;

/// Incremental reader for one `<stream:stream>` document.
///
/// Feed it bytes with [`push`](Self::push), then call
/// [`next_event`](Self::next_event) until it returns `Ok(None)`. It parses
/// only as far as needed for one event, so bytes after a stanza that
/// triggers a stream restart stay buffered for the fresh parser.
///
/// Feeding the same bytes in any chunking yields the same events.
#[derive(Debug)]
pub struct StreamReader {
    buf: BytesMut,
    parser: RawParser,
    /// Limits for the element being read.
    active: XmlLimits,
    /// Limits for the next top-level element.
    limits: XmlLimits,
    phase: Phase,
    /// No byte has reached the parser yet (leading whitespace is skipped).
    fresh: bool,
    /// Bytes consumed by the parser but not yet reported in an event.
    pending: usize,
    /// Raw bytes of the current top-level element (or header) so far.
    elem_bytes: usize,
    /// Whether `elem_bytes` is being counted (inside header or stanza).
    counting: bool,
    /// Namespace declarations in scope: `(prefix, namespace)`, `None` for
    /// the default namespace.
    bindings: Vec<(Option<NcName>, Namespace<'static>)>,
    head: Option<Head>,
    /// Attributes of `head` that are not namespace declarations.
    head_attrs: Vec<(Option<NcName>, NcName, String)>,
    frames: Vec<Frame>,
    error: Option<ReadError>,
}

impl Default for StreamReader {
    fn default() -> Self {
        Self::new(XmlLimits::default())
    }
}

impl StreamReader {
    /// A reader expecting a stream header, with the given limits.
    pub fn new(limits: XmlLimits) -> Self {
        Self {
            buf: BytesMut::new(),
            parser: RawParser::new(),
            active: limits,
            limits,
            phase: Phase::Prolog,
            fresh: true,
            pending: 0,
            elem_bytes: 0,
            counting: true,
            bindings: Vec::new(),
            head: None,
            head_attrs: Vec::new(),
            frames: Vec::new(),
            error: None,
        }
    }

    /// Change the limits. They apply from the next top-level element (or
    /// stream header) on; the element being read keeps the old ones.
    pub fn set_limits(&mut self, limits: XmlLimits) {
        self.limits = limits;
        if !self.counting || (self.phase == Phase::Prolog && self.fresh) {
            self.active = limits;
        }
    }

    /// The limits that apply from the next top-level element on.
    pub fn limits(&self) -> XmlLimits {
        self.limits
    }

    /// Append received bytes to the internal buffer. Nothing is parsed until
    /// [`next_event`](Self::next_event).
    ///
    /// Once the reader has failed, data is dropped.
    pub fn push(&mut self, data: &[u8]) {
        if self.error.is_some() {
            return;
        }
        self.buf.extend_from_slice(data);
    }

    /// Number of received bytes not yet consumed by the parser.
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the reader has failed (every further call returns the error).
    pub fn error(&self) -> Option<ReadError> {
        self.error
    }

    /// Start over with a fresh parser expecting a new stream header, keeping
    /// buffered bytes that were not consumed yet (after SASL success, the
    /// client may already have sent its new header).
    pub fn restart(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        let limits = self.limits;
        *self = Self::new(limits);
        self.buf = buf;
    }

    /// Start over with a fresh parser and drop every buffered byte (after
    /// `<proceed/>` for STARTTLS: plaintext sent before the TLS handshake
    /// must never be read as part of the encrypted stream).
    pub fn restart_discarding(&mut self) {
        let limits = self.limits;
        *self = Self::new(limits);
    }

    /// Parse buffered bytes until one event is complete.
    ///
    /// `Ok(None)` means more data is needed. The reader stops right after
    /// each event, leaving later bytes buffered. After an error it keeps
    /// returning that error.
    pub fn next_event(&mut self) -> Result<Option<StreamEvent>, ReadError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let result = self.step();
        match &result {
            Err(e) => {
                self.error = Some(*e);
                self.frames = Vec::new();
                self.bindings = Vec::new();
                self.head = None;
                self.head_attrs = Vec::new();
                self.buf = BytesMut::new();
                self.parser.release_temporaries();
            }
            Ok(_) => {
                if self.buf.is_empty() && self.buf.capacity() > KEEP_BUFFER {
                    self.buf = BytesMut::new();
                }
            }
        }
        result
    }

    fn step(&mut self) -> Result<Option<StreamEvent>, ReadError> {
        if self.fresh {
            // XML allows whitespace before the root; rxml does not.
            let ws = self.buf.iter().take_while(|b| is_xml_space(**b)).count();
            self.buf.advance(ws);
            if self.buf.is_empty() {
                return Ok(None);
            }
            self.fresh = false;
        }
        // Parse from a local view and consume from the buffer once at the end.
        let mut buf = std::mem::take(&mut self.buf);
        let mut input: &[u8] = &buf;
        let result = self.pump(&mut input);
        let consumed = buf.len().saturating_sub(input.len());
        buf.advance(consumed);
        self.buf = buf;
        result
    }

    /// Feed `input` to the parser until one event is complete.
    fn pump(&mut self, input: &mut &[u8]) -> Result<Option<StreamEvent>, ReadError> {
        loop {
            let before = input.len();
            let result = self.parser.parse(input, false);
            self.pending = self
                .pending
                .saturating_add(before.saturating_sub(input.len()));
            match result {
                Ok(Some(ev)) => {
                    if let Some(out) = self.handle(ev)? {
                        return Ok(Some(out));
                    }
                }
                // Only returned at end of file, which is never signalled.
                Ok(None) => return Ok(None),
                Err(EndOrError::NeedMoreData) => {
                    self.check_size()?;
                    return Ok(None);
                }
                Err(EndOrError::Error(e)) => {
                    // A size violation seen by now wins, whatever the chunking.
                    self.check_size()?;
                    return Err(map_error(e));
                }
            }
        }
    }

    fn check_size(&self) -> Result<(), ReadError> {
        if self.counting
            && self.elem_bytes.saturating_add(self.pending) > self.active.max_stanza_bytes
        {
            return Err(ReadError::StanzaTooBig);
        }
        Ok(())
    }

    fn handle(&mut self, ev: RawEvent) -> Result<Option<StreamEvent>, ReadError> {
        let len = ev.metrics().len();
        self.pending = self.pending.saturating_sub(len);
        if !self.counting
            && matches!(ev, RawEvent::ElementHeadOpen(..))
            && self.phase == Phase::Open
        {
            // A new top-level element starts.
            self.counting = true;
            self.elem_bytes = 0;
            self.active = self.limits;
        }
        if self.counting {
            self.elem_bytes = self.elem_bytes.saturating_add(len);
        }
        self.check_size()?;

        match ev {
            RawEvent::XmlDeclaration(..) => Ok(None),
            RawEvent::ElementHeadOpen(_, (prefix, local)) => {
                match self.phase {
                    Phase::Prolog => {}
                    Phase::Open => {
                        if self.frames.len() >= self.active.max_depth {
                            return Err(ReadError::TooDeep);
                        }
                    }
                    Phase::Closed => return Err(ReadError::NotWellFormed),
                }
                if self.head.is_some() {
                    return Err(ReadError::NotWellFormed);
                }
                self.head = Some(Head {
                    prefix,
                    local,
                    mark: self.bindings.len(),
                    count: 0,
                });
                Ok(None)
            }
            RawEvent::Attribute(_, (prefix, local), value) => {
                let Some(head) = self.head.as_mut() else {
                    return Err(ReadError::NotWellFormed);
                };
                head.count = head.count.saturating_add(1);
                if head.count > self.active.max_attributes {
                    return Err(ReadError::TooManyAttributes);
                }
                let decl = match &prefix {
                    None => local.as_str() == "xmlns",
                    Some(p) => p.as_str() == "xmlns",
                };
                if decl {
                    // `xmlns='…'` binds the default namespace, `xmlns:p='…'` p.
                    let bound = prefix.map(|_| local);
                    let declared = self.bindings.get(head.mark..).unwrap_or_default();
                    if declared.iter().any(|(p, _)| *p == bound) {
                        return Err(ReadError::NotWellFormed);
                    }
                    let ns = if value.is_empty() {
                        Namespace::none().clone()
                    } else {
                        Namespace::from(value)
                    };
                    self.bindings.push((bound, ns));
                } else {
                    self.head_attrs.push((prefix, local, value));
                }
                Ok(None)
            }
            RawEvent::ElementHeadClose(_) => {
                let Some(head) = self.head.take() else {
                    return Err(ReadError::NotWellFormed);
                };
                match self.phase {
                    Phase::Prolog => self.finish_header(head).map(Some),
                    Phase::Open => {
                        let el = self.build_element(&head)?;
                        self.frames.push(Frame {
                            el,
                            text_bytes: 0,
                            mark: head.mark,
                        });
                        Ok(None)
                    }
                    Phase::Closed => Err(ReadError::NotWellFormed),
                }
            }
            RawEvent::Text(_, text) => match self.frames.last_mut() {
                None => {
                    if text.bytes().all(is_xml_space) {
                        Ok(None)
                    } else {
                        Err(ReadError::NotWellFormed)
                    }
                }
                Some(frame) => {
                    frame.text_bytes = frame.text_bytes.saturating_add(text.len());
                    if frame.text_bytes > self.active.max_text_bytes {
                        return Err(ReadError::TextTooBig);
                    }
                    if !text.is_empty() {
                        frame.el.append_text(text);
                    }
                    Ok(None)
                }
            },
            RawEvent::ElementFoot(_) => {
                if self.phase != Phase::Open {
                    return Err(ReadError::NotWellFormed);
                }
                let Some(frame) = self.frames.pop() else {
                    // </stream:stream>
                    self.phase = Phase::Closed;
                    self.counting = false;
                    self.bindings = Vec::new();
                    self.parser.release_temporaries();
                    return Ok(Some(StreamEvent::Close));
                };
                self.bindings.truncate(frame.mark);
                match self.frames.last_mut() {
                    Some(parent) => {
                        parent.el.append_node(Node::Element(frame.el));
                        Ok(None)
                    }
                    None => {
                        self.finish_stanza();
                        Ok(Some(StreamEvent::Stanza(frame.el)))
                    }
                }
            }
        }
    }

    /// Housekeeping after a top-level element completed.
    fn finish_stanza(&mut self) {
        self.counting = false;
        self.elem_bytes = 0;
        self.parser.release_temporaries();
        if self.head_attrs.capacity() > KEEP_SCRATCH {
            self.head_attrs = Vec::new();
        }
        if self.frames.capacity() > KEEP_SCRATCH {
            self.frames = Vec::new();
        }
        if self.bindings.capacity() > KEEP_SCRATCH {
            self.bindings.shrink_to(KEEP_SCRATCH);
        }
    }

    fn finish_header(&mut self, head: Head) -> Result<StreamEvent, ReadError> {
        let (ns, attrs) = self.resolve(&head)?;
        let default_ns = self
            .bindings
            .get(head.mark..)
            .unwrap_or_default()
            .iter()
            .find(|(p, _)| p.is_none())
            .map(|(_, ns)| ns.as_str().to_owned());
        let get = |name: &str| attrs.get(Namespace::none(), name).cloned();
        let header = StreamHeader {
            name_ok: ns.as_str() == NS_STREAMS && head.local.as_str() == "stream",
            default_ns,
            to: get("to"),
            from: get("from"),
            version: get("version"),
            lang: attrs.get(Namespace::xml(), "lang").cloned(),
            id: get("id"),
        };
        self.phase = Phase::Open;
        self.counting = false;
        self.elem_bytes = 0;
        self.parser.release_temporaries();
        Ok(StreamEvent::Open(header))
    }

    fn build_element(&mut self, head: &Head) -> Result<Element, ReadError> {
        let (ns, attrs) = self.resolve(head)?;
        let mut el = Element::bare(head.local.as_str(), String::from(ns));
        if !attrs.is_empty() {
            *el.attrs_mut() = attrs;
        }
        Ok(el)
    }

    /// Resolve the element's namespace and its attributes' namespaces.
    fn resolve(&mut self, head: &Head) -> Result<(Namespace<'static>, AttrMap), ReadError> {
        let ns = lookup(&self.bindings, head.prefix.as_ref())
            .ok_or(ReadError::NotWellFormed)?
            .clone();
        let mut attrs = AttrMap::new();
        for (prefix, local, value) in self.head_attrs.drain(..) {
            let attr_ns = match &prefix {
                None => Namespace::none(),
                Some(_) => {
                    lookup(&self.bindings, prefix.as_ref()).ok_or(ReadError::NotWellFormed)?
                }
            };
            match attrs.entry(attr_ns.clone(), local) {
                minidom::rxml::xml_map::Entry::Occupied(_) => {
                    return Err(ReadError::NotWellFormed);
                }
                minidom::rxml::xml_map::Entry::Vacant(slot) => {
                    slot.insert(value);
                }
            }
        }
        Ok((ns, attrs))
    }
}

/// The namespace bound to `prefix` (`None`: the default namespace).
fn lookup<'a>(
    bindings: &'a [(Option<NcName>, Namespace<'static>)],
    prefix: Option<&NcName>,
) -> Option<&'a Namespace<'static>> {
    match prefix {
        None => Some(
            bindings
                .iter()
                .rev()
                .find(|(p, _)| p.is_none())
                .map_or(Namespace::none(), |(_, ns)| ns),
        ),
        Some(p) if p.as_str() == "xml" => Some(Namespace::xml()),
        Some(p) => bindings
            .iter()
            .rev()
            .find(|(bound, _)| bound.as_ref() == Some(p))
            .map(|(_, ns)| ns),
    }
}

fn is_xml_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Sort rxml's errors into the stream error conditions of RFC 6120.
fn map_error(e: minidom::rxml::Error) -> ReadError {
    use minidom::rxml::Error;
    match e {
        Error::RestrictedXml("long name or reference" | "event too long") => {
            ReadError::StanzaTooBig
        }
        Error::RestrictedXml(_) | Error::UndeclaredEntity => ReadError::RestrictedXml,
        // `<!DOCTYPE`, `<!ENTITY` and other markup declarations.
        Error::InvalidSyntax(msg) if msg.starts_with("malformed cdata or comment") => {
            ReadError::RestrictedXml
        }
        // `<?xml version='1.0' standalone='…'?>` without an encoding.
        Error::InvalidSyntax(msg) if msg.starts_with("'version' attribute must be followed") => {
            ReadError::RestrictedXml
        }
        _ => ReadError::NotWellFormed,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::stream::{NS_CLIENT, write_element};
    use proptest::prelude::*;

    pub(crate) const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' to='example.com' \
        version='1.0' xml:lang='en'>";

    type Events = Vec<Result<StreamEvent, ReadError>>;

    /// Drain events until more data is needed or an error occurs.
    fn drain(reader: &mut StreamReader, out: &mut Events) {
        loop {
            match reader.next_event() {
                Ok(Some(ev)) => out.push(Ok(ev)),
                Ok(None) => return,
                Err(e) => {
                    out.push(Err(e));
                    return;
                }
            }
        }
    }

    fn read_chunked(
        data: &[u8],
        chunks: impl IntoIterator<Item = usize>,
        limits: XmlLimits,
    ) -> Events {
        let mut reader = StreamReader::new(limits);
        let mut out = Vec::new();
        let mut rest = data;
        for size in chunks {
            if rest.is_empty() || matches!(out.last(), Some(Err(_))) {
                break;
            }
            let (chunk, tail) = rest.split_at(size.clamp(1, rest.len()));
            reader.push(chunk);
            drain(&mut reader, &mut out);
            rest = tail;
        }
        if !rest.is_empty() && !matches!(out.last(), Some(Err(_))) {
            reader.push(rest);
            drain(&mut reader, &mut out);
        }
        out
    }

    fn read_all(data: &[u8], limits: XmlLimits) -> Events {
        read_chunked(data, [data.len()], limits)
    }

    fn read_bytewise(data: &[u8], limits: XmlLimits) -> Events {
        read_chunked(data, std::iter::repeat_n(1, data.len()), limits)
    }

    /// Parse `stanzas` inside a stream opened with default limits, then
    /// `limits`; return the events after the header.
    fn stanza_events(stanzas: &str, limits: XmlLimits) -> Events {
        let mut reader = StreamReader::default();
        reader.push(HEADER.as_bytes());
        assert!(matches!(
            reader.next_event(),
            Ok(Some(StreamEvent::Open(_)))
        ));
        reader.set_limits(limits);
        reader.push(stanzas.as_bytes());
        let mut events = Vec::new();
        drain(&mut reader, &mut events);
        events
    }

    fn first_error(stanzas: &str, limits: XmlLimits) -> Option<ReadError> {
        stanza_events(stanzas, limits)
            .into_iter()
            .find_map(Result::err)
    }

    fn only_stanza(stanza: &str) -> Element {
        match stanza_events(stanza, XmlLimits::default()).as_slice() {
            [Ok(StreamEvent::Stanza(el))] => el.clone(),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn limits(f: impl FnOnce(&mut XmlLimits)) -> XmlLimits {
        let mut l = XmlLimits::default();
        f(&mut l);
        l
    }

    #[test]
    fn default_limits() {
        let l = XmlLimits::default();
        assert_eq!(
            (
                l.max_stanza_bytes,
                l.max_depth,
                l.max_attributes,
                l.max_text_bytes
            ),
            (262_144, 64, 64, 262_144)
        );
    }

    #[test]
    fn header_fields() {
        let data = "<?xml version='1.0' encoding='UTF-8'?>\n<stream:stream \
            xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
            to='example.com' from='juliet@example.com' version='1.0' xml:lang='en' id='abc' \
            other='ignored'>";
        let events = read_all(data.as_bytes(), XmlLimits::default());
        let expected = StreamHeader {
            name_ok: true,
            default_ns: Some(NS_CLIENT.to_owned()),
            to: Some("example.com".into()),
            from: Some("juliet@example.com".into()),
            version: Some("1.0".into()),
            lang: Some("en".into()),
            id: Some("abc".into()),
        };
        assert_eq!(events, vec![Ok(StreamEvent::Open(expected))]);
    }

    #[test]
    fn header_minimal_and_wrong_name() {
        let events = read_all(
            b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>",
            XmlLimits::default(),
        );
        assert_eq!(
            events,
            vec![Ok(StreamEvent::Open(StreamHeader {
                name_ok: true,
                ..Default::default()
            }))]
        );
        let events = read_all(b"<stream xmlns='jabber:client'>", XmlLimits::default());
        assert_eq!(
            events,
            vec![Ok(StreamEvent::Open(StreamHeader {
                name_ok: false,
                default_ns: Some(NS_CLIENT.into()),
                ..Default::default()
            }))]
        );
        // Right local name, wrong namespace.
        let events = read_all(
            b"<s:stream xmlns:s='urn:other' xmlns=''>",
            XmlLimits::default(),
        );
        assert_eq!(
            events,
            vec![Ok(StreamEvent::Open(StreamHeader {
                name_ok: false,
                default_ns: Some(String::new()),
                ..Default::default()
            }))]
        );
    }

    #[test]
    fn leading_whitespace_and_self_closing_root() {
        let data = " \r\n\t<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>  ";
        let events = read_bytewise(data.as_bytes(), XmlLimits::default());
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(matches!(events[0], Ok(StreamEvent::Open(ref h)) if h.name_ok));
        assert_eq!(events[1], Ok(StreamEvent::Close));
    }

    #[test]
    fn stanza_namespaces_attributes_and_lang() {
        let el = only_stanza(
            "<message to='romeo@example.net' type='chat' xml:lang='fr'>\
             <body>hi &amp; &lt;bye&gt; &#x263A;<![CDATA[<raw>]]></body>\
             <x xmlns='urn:x'><y a='1'/><z xmlns=''/></x>\
             <p:z xmlns:p='urn:p' p:attr='v' attr='w'/>\
             </message>",
        );
        assert!(el.is("message", NS_CLIENT));
        assert_eq!(el.attr("to"), Some("romeo@example.net"));
        assert_eq!(el.attr("type"), Some("chat"));
        assert_eq!(el.attr_ns(Namespace::xml(), "lang"), Some("fr"));
        assert_eq!(el.attr("lang"), None);
        assert_eq!(
            el.get_child("body", NS_CLIENT)
                .map(Element::text)
                .as_deref(),
            Some("hi & <bye> ☺<raw>")
        );
        let x = el.get_child("x", "urn:x").expect("x");
        assert_eq!(
            x.get_child("y", "urn:x").and_then(|y| y.attr("a")),
            Some("1")
        );
        assert!(x.get_child("z", "").is_some());
        let z = el.get_child("z", "urn:p").expect("p:z");
        assert_eq!(z.attr_ns("urn:p", "attr"), Some("v"));
        assert_eq!(z.attr("attr"), Some("w"));
        assert_eq!(z.attrs().len(), 2);
        // The prefix declaration went out of scope with p:z.
        assert_eq!(
            first_error("<a><p:z xmlns:p='urn:p'/><p:y/></a>", XmlLimits::default()),
            Some(ReadError::NotWellFormed)
        );
    }

    #[test]
    fn header_prefixes_stay_in_scope() {
        let el = only_stanza(
            "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>",
        );
        assert!(el.is("features", NS_STREAMS));
        assert!(el.has_child("starttls", "urn:ietf:params:xml:ns:xmpp-tls"));
    }

    #[test]
    fn emoji_split_across_chunks() {
        let stanza = "<message><body>héllo 😀 wörld ✓</body><thread a='😀é'/></message>";
        let data = format!("{HEADER}{stanza}");
        let whole = read_all(data.as_bytes(), XmlLimits::default());
        assert_eq!(whole.len(), 2);
        match &whole[1] {
            Ok(StreamEvent::Stanza(el)) => {
                assert_eq!(
                    el.get_child("body", NS_CLIENT)
                        .map(Element::text)
                        .as_deref(),
                    Some("héllo 😀 wörld ✓")
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(read_bytewise(data.as_bytes(), XmlLimits::default()), whole);
        for size in 2..9 {
            assert_eq!(
                read_chunked(
                    data.as_bytes(),
                    std::iter::repeat(size),
                    XmlLimits::default()
                ),
                whole
            );
        }
    }

    #[test]
    fn keepalives_do_not_accumulate() {
        let mut reader = StreamReader::default();
        let mut out = Vec::new();
        reader.push(HEADER.as_bytes());
        drain(&mut reader, &mut out);
        let spaces = [b' '; 4096];
        for i in 0..300 {
            reader.push(&spaces);
            if i % 3 == 0 {
                reader.push(b"\n\t\r\n");
            }
            drain(&mut reader, &mut out);
            assert_eq!(reader.buffered_len(), 0);
            assert!(reader.buf.capacity() <= KEEP_BUFFER);
        }
        assert!(reader.frames.is_empty() && reader.head.is_none());
        reader.push(b"<presence/>   ");
        drain(&mut reader, &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(matches!(&out[1], Ok(StreamEvent::Stanza(el)) if el.is("presence", NS_CLIENT)));
        // More than max_stanza_bytes of whitespace is fine.
        let mut reader = StreamReader::default();
        reader.push(HEADER.as_bytes());
        assert!(matches!(
            reader.next_event(),
            Ok(Some(StreamEvent::Open(_)))
        ));
        reader.set_limits(limits(|l| l.max_stanza_bytes = 100));
        reader.push(&spaces);
        assert_eq!(reader.next_event(), Ok(None));
    }

    #[test]
    fn stream_close() {
        let events = stanza_events("<presence/> </stream:stream> \n", XmlLimits::default());
        assert_eq!(events.len(), 2);
        assert_eq!(events[1], Ok(StreamEvent::Close));
        let events = stanza_events("</stream:stream><presence/>", XmlLimits::default());
        assert_eq!(
            events,
            vec![Ok(StreamEvent::Close), Err(ReadError::NotWellFormed)]
        );
        let events = stanza_events("</stream:stream>text<", XmlLimits::default());
        assert_eq!(
            events,
            vec![Ok(StreamEvent::Close), Err(ReadError::NotWellFormed)]
        );
    }

    #[test]
    fn not_well_formed() {
        let nwf = Some(ReadError::NotWellFormed);
        let d = XmlLimits::default();
        assert_eq!(first_error("<a></b>", d), nwf, "mismatched tags");
        assert_eq!(
            first_error("<foo:bar/>", d),
            nwf,
            "undeclared element prefix"
        );
        assert_eq!(
            first_error("<a foo:x='1'/>", d),
            nwf,
            "undeclared attribute prefix"
        );
        assert_eq!(
            first_error("<message to='a@b' to='c@d'/>", d),
            nwf,
            "duplicate attribute"
        );
        assert_eq!(
            first_error("<m xmlns:a='urn:u' xmlns:b='urn:u' a:x='1' b:x='2'/>", d),
            nwf,
            "duplicate after namespace resolution"
        );
        assert_eq!(
            first_error("<m xmlns='urn:a' xmlns='urn:b'/>", d),
            nwf,
            "duplicate xmlns"
        );
        assert_eq!(
            first_error("<m xmlns:a='urn:a' xmlns:a='urn:b'/>", d),
            nwf,
            "duplicate xmlns:a"
        );
        assert_eq!(first_error("hello<presence/>", d), nwf, "text at depth 1");
        assert_eq!(first_error("<a>\u{0}</a>", d), nwf, "NUL");
        assert_eq!(first_error("<a x='1' x='1'>", d), nwf);
        let mut bad_utf8 = HEADER.as_bytes().to_vec();
        bad_utf8.extend_from_slice(b"<a>\xff\xfe</a>");
        assert_eq!(
            read_all(&bad_utf8, d).pop(),
            Some(Err(ReadError::NotWellFormed))
        );
        assert_eq!(read_all(b"hello<", d), vec![Err(ReadError::NotWellFormed)]);
        assert_eq!(
            read_all(b"<a></a><b>", d).pop(),
            Some(Err(ReadError::NotWellFormed))
        );
    }

    #[test]
    fn restricted_xml() {
        let r = Some(ReadError::RestrictedXml);
        let d = XmlLimits::default();
        assert_eq!(
            read_all(b"<!DOCTYPE stream>", d),
            vec![Err(ReadError::RestrictedXml)]
        );
        assert_eq!(
            read_all(b"<?xml version='1.0' encoding='ISO-8859-1'?>", d),
            vec![Err(ReadError::RestrictedXml)]
        );
        assert_eq!(
            read_all(b"<?xml version='1.0' encoding='UTF-8' standalone='no'?>", d),
            vec![Err(ReadError::RestrictedXml)]
        );
        assert_eq!(
            read_all(b"<?xml version='1.0' standalone='no'?>", d),
            vec![Err(ReadError::RestrictedXml)]
        );
        assert_eq!(
            read_all(b"<?xml version='1.1'?>", d),
            vec![Err(ReadError::RestrictedXml)]
        );
        assert_eq!(first_error("<?foo bar?>", d), r, "processing instruction");
        assert_eq!(first_error("<a><!-- hi --></a>", d), r, "comment");
        assert_eq!(first_error("<!ENTITY x 'y'>", d), r, "entity declaration");
        assert_eq!(first_error("<a>&foo;</a>", d), r, "undeclared entity");
    }

    #[test]
    fn stanza_too_big() {
        let big = Some(ReadError::StanzaTooBig);
        let small = limits(|l| l.max_stanza_bytes = 100);
        let body = "x".repeat(500);
        assert_eq!(
            first_error(&format!("<message><body>{body}</body></message>"), small),
            big
        );
        // A stanza that never closes is caught before it completes.
        assert_eq!(
            first_error(&format!("<message><body>{}", "y".repeat(101)), small),
            big
        );
        assert_eq!(first_error("<message><body>", small), None);
        // Counted exactly: `<presence/>` is 11 bytes.
        assert_eq!(
            first_error("<presence/>", limits(|l| l.max_stanza_bytes = 11)),
            None
        );
        assert_eq!(
            first_error("<presence/>", limits(|l| l.max_stanza_bytes = 10)),
            big
        );
        let stanza = "<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>";
        assert_eq!(
            first_error(stanza, limits(|l| l.max_stanza_bytes = stanza.len())),
            None
        );
        assert_eq!(
            first_error(stanza, limits(|l| l.max_stanza_bytes = stanza.len() - 1)),
            big
        );
        // The header has the same limit.
        let events = read_all(HEADER.as_bytes(), limits(|l| l.max_stanza_bytes = 50));
        assert_eq!(events, vec![Err(ReadError::StanzaTooBig)]);
        // A single attribute value above rxml's 8 KiB token limit.
        assert_eq!(
            first_error(
                &format!("<a x='{}'/>", "v".repeat(9000)),
                XmlLimits::default()
            ),
            big
        );
        // Many small stanzas in one push are fine.
        let many = "<presence/>".repeat(100);
        let events = stanza_events(&many, limits(|l| l.max_stanza_bytes = 11));
        assert_eq!(events.len(), 100);
        assert!(events.iter().all(Result::is_ok));
    }

    #[test]
    fn too_deep_too_many_attributes_text_too_big() {
        let four = limits(|l| l.max_depth = 4);
        assert_eq!(first_error("<a><b><c><d/></c></b></a>", four), None);
        assert_eq!(
            first_error("<a><b><c><d><e/></d></c></b></a>", four),
            Some(ReadError::TooDeep)
        );
        let two = limits(|l| l.max_attributes = 2);
        assert_eq!(first_error("<a x='1' y='2'/>", two), None);
        assert_eq!(
            first_error("<a x='1' y='2' z='3'/>", two),
            Some(ReadError::TooManyAttributes)
        );
        assert_eq!(
            first_error("<a xmlns='urn:a' x='1' y='2'/>", two),
            Some(ReadError::TooManyAttributes)
        );
        let ten = limits(|l| l.max_text_bytes = 10);
        assert_eq!(
            first_error("<a>0123456789<b>0123456789</b>&amp;</a>", ten),
            Some(ReadError::TextTooBig)
        );
        assert_eq!(first_error("<a>0123456789<b>0123456789</b></a>", ten), None);
        assert_eq!(
            first_error("<a>01234567890</a>", ten),
            Some(ReadError::TextTooBig)
        );
    }

    #[test]
    fn errors_are_sticky() {
        let mut reader = StreamReader::default();
        reader.push(HEADER.as_bytes());
        reader.push(b"<a></b>");
        assert!(matches!(
            reader.next_event(),
            Ok(Some(StreamEvent::Open(_)))
        ));
        assert_eq!(reader.next_event(), Err(ReadError::NotWellFormed));
        reader.push(b"<presence/>");
        assert_eq!(reader.next_event(), Err(ReadError::NotWellFormed));
        assert_eq!(reader.error(), Some(ReadError::NotWellFormed));
        assert_eq!(reader.buffered_len(), 0);
        reader.restart();
        reader.push(HEADER.as_bytes());
        assert!(matches!(
            reader.next_event(),
            Ok(Some(StreamEvent::Open(_)))
        ));
    }

    #[test]
    fn restart_keeps_pipelined_header() {
        let auth =
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldABy</auth>";
        let second = "<stream:stream xmlns='jabber:client' \
            xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";
        let mut reader = StreamReader::default();
        reader.push(format!("{HEADER}{auth}{second}<iq type='set' id='b'/>").as_bytes());
        assert!(matches!(
            reader.next_event(),
            Ok(Some(StreamEvent::Open(_)))
        ));
        match reader.next_event() {
            Ok(Some(StreamEvent::Stanza(el))) => {
                assert!(el.is("auth", "urn:ietf:params:xml:ns:xmpp-sasl"));
                assert_eq!(el.text(), "AGp1bGlldABy");
            }
            other => panic!("unexpected {other:?}"),
        }
        // Nothing after </auth> was consumed.
        assert_eq!(
            reader.buffered_len(),
            second.len() + "<iq type='set' id='b'/>".len()
        );
        reader.restart();
        match reader.next_event() {
            Ok(Some(StreamEvent::Open(h))) => {
                assert!(h.name_ok);
                assert_eq!(h.lang, None);
                assert_eq!(h.to.as_deref(), Some("example.com"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            matches!(reader.next_event(), Ok(Some(StreamEvent::Stanza(el))) if el.is("iq", NS_CLIENT))
        );
        assert_eq!(reader.next_event(), Ok(None));
    }

    #[test]
    fn restart_after_self_closing_element() {
        let mut reader = StreamReader::default();
        reader.push(
            format!("{HEADER}<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>{HEADER}")
                .as_bytes(),
        );
        assert!(matches!(
            reader.next_event(),
            Ok(Some(StreamEvent::Open(_)))
        ));
        assert!(matches!(
            reader.next_event(),
            Ok(Some(StreamEvent::Stanza(_)))
        ));
        assert_eq!(reader.buffered_len(), HEADER.len());
        reader.restart();
        assert!(matches!(
            reader.next_event(),
            Ok(Some(StreamEvent::Open(_)))
        ));
    }

    #[test]
    fn without_restart_a_new_header_is_just_an_element() {
        let mut reader = StreamReader::default();
        reader.push(
            format!("{HEADER}<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>{HEADER}")
                .as_bytes(),
        );
        let mut out = Vec::new();
        drain(&mut reader, &mut out);
        // The XML declaration inside the root is a processing instruction.
        assert_eq!(out.last(), Some(&Err(ReadError::RestrictedXml)));
    }

    #[test]
    fn restart_discarding_drops_injected_plaintext() {
        let mut reader = StreamReader::default();
        reader.push(HEADER.as_bytes());
        reader
            .push(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><iq type='set' id='evil'/>");
        assert!(matches!(
            reader.next_event(),
            Ok(Some(StreamEvent::Open(_)))
        ));
        assert!(
            matches!(reader.next_event(), Ok(Some(StreamEvent::Stanza(el))) if el.name() == "starttls")
        );
        assert!(reader.buffered_len() > 0);
        reader.restart_discarding();
        assert_eq!(reader.buffered_len(), 0);
        assert_eq!(reader.next_event(), Ok(None));
        reader.push(HEADER.as_bytes());
        assert!(matches!(
            reader.next_event(),
            Ok(Some(StreamEvent::Open(_)))
        ));
        assert_eq!(reader.next_event(), Ok(None));
    }

    #[test]
    fn set_limits_applies_from_next_stanza() {
        let mut reader = StreamReader::default();
        reader.push(HEADER.as_bytes());
        reader.push(b"<message><body>");
        assert!(matches!(
            reader.next_event(),
            Ok(Some(StreamEvent::Open(_)))
        ));
        assert_eq!(reader.next_event(), Ok(None));
        reader.set_limits(limits(|l| l.max_stanza_bytes = 20));
        assert_eq!(reader.limits().max_stanza_bytes, 20);
        reader.push(b"a fairly long body text</body></message>");
        assert!(matches!(
            reader.next_event(),
            Ok(Some(StreamEvent::Stanza(_)))
        ));
        reader.push(b"<presence/>");
        assert!(matches!(
            reader.next_event(),
            Ok(Some(StreamEvent::Stanza(_)))
        ));
        reader.push(b"<message><body>too long now</body></message>");
        assert_eq!(reader.next_event(), Err(ReadError::StanzaTooBig));
        // Limits survive a restart.
        reader.restart();
        assert_eq!(reader.limits().max_stanza_bytes, 20);
    }

    #[test]
    fn set_limits_before_header() {
        let mut reader = StreamReader::default();
        reader.set_limits(limits(|l| l.max_stanza_bytes = 50));
        reader.push(HEADER.as_bytes());
        assert_eq!(reader.next_event(), Err(ReadError::StanzaTooBig));
    }

    fn sample_stream() -> String {
        let mut s = String::from(HEADER);
        s.push_str(
            "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features> ",
        );
        s.push_str("<message to='a@b/c' xml:lang='de'><body>Grüße 😀 &amp; &lt;tags&gt;</body></message>\n");
        s.push_str("<iq type='set' id='x'><query xmlns='jabber:iq:roster'><item jid='a@b' name='Ä'><group>G</group></item></query></iq>");
        s.push_str("\t<presence><show>away</show><status xml:lang='en'>  spaced  </status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v='/></presence>");
        s.push_str(
            "<a xmlns='urn:a' xmlns:p='urn:p'><p:b p:c='d'><![CDATA[x<y]]>&#x1F600;</p:b></a>   ",
        );
        s.push_str("</stream:stream>  ");
        s
    }

    #[test]
    fn chunking_invariance_fixed() {
        let data = sample_stream();
        let whole = read_all(data.as_bytes(), XmlLimits::default());
        assert_eq!(whole.len(), 7, "{whole:?}");
        assert!(whole.iter().all(Result::is_ok));
        assert_eq!(read_bytewise(data.as_bytes(), XmlLimits::default()), whole);
    }

    pub(crate) fn arb_element(depth: u32) -> impl Strategy<Value = Element> {
        let leaf = (
            prop::sample::select(vec!["message", "body", "x", "a-b", "q_1", "features"]),
            prop::sample::select(vec![NS_CLIENT, "urn:a", "urn:b", NS_STREAMS, ""]),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "",
                        "http://www.w3.org/XML/1998/namespace",
                        "urn:a",
                        "urn:c",
                        NS_STREAMS,
                    ]),
                    prop::sample::select(vec!["to", "from", "lang", "id", "type"]),
                    "[a-z&<>'\" \\t\\r\\n\u{e9}\u{1F600}]{0,8}",
                ),
                0..4,
            ),
            prop::option::of("[a-z&<>'\"\\r\\n \u{e9}\u{1F600}\\]]{1,12}"),
        )
            .prop_map(|(name, ns, attrs, text)| {
                let mut el = Element::bare(name, ns);
                for (ans, aname, value) in attrs {
                    let aname = NcName::try_from(aname).expect("valid name");
                    el.attrs_mut()
                        .insert(Namespace::from(ans.to_owned()), aname, value);
                }
                if let Some(text) = text {
                    el.append_text(text);
                }
                el
            });
        leaf.prop_recursive(depth, 24, 4, |inner| {
            (
                inner.clone(),
                prop::collection::vec((inner, prop::option::of("[a-z &<]{1,6}")), 0..4),
            )
                .prop_map(|(mut parent, children)| {
                    for (child, text) in children {
                        parent.append_child(child);
                        if let Some(text) = text {
                            parent.append_text(text);
                        }
                    }
                    parent
                })
        })
    }

    fn arb_stream() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::collection::vec((arb_element(3), "[ \\t\\r\\n]{0,3}"), 0..6),
            any::<bool>(),
        )
            .prop_map(|(stanzas, close)| {
                let mut out = BytesMut::from(HEADER.as_bytes());
                for (el, ws) in stanzas {
                    write_element(&el, &mut out);
                    out.extend_from_slice(ws.as_bytes());
                }
                if close {
                    out.extend_from_slice(b"</stream:stream>");
                }
                out.to_vec()
            })
    }

    proptest! {
        #[test]
        fn random_chunkings_give_identical_events(
            data in arb_stream(),
            chunks in prop::collection::vec(1usize..40, 0..200),
        ) {
            let whole = read_all(&data, XmlLimits::default());
            prop_assert!(whole.iter().all(Result::is_ok), "{:?}", whole);
            prop_assert_eq!(&read_chunked(&data, chunks, XmlLimits::default()), &whole);
            prop_assert_eq!(&read_bytewise(&data, XmlLimits::default()), &whole);
        }

        #[test]
        fn chunking_invariance_holds_for_errors_too(
            data in arb_stream(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            chunks in prop::collection::vec(1usize..20, 0..200),
            max_stanza in 20usize..400,
            max_text in 1usize..40,
            max_depth in 1usize..5,
            max_attributes in 0usize..4,
        ) {
            let mut data = data;
            for (index, byte) in edits {
                if !data.is_empty() {
                    let at = index.index(data.len());
                    data[at] = byte;
                }
            }
            let limits = XmlLimits { max_stanza_bytes: max_stanza, max_depth, max_attributes, max_text_bytes: max_text };
            let whole = read_all(&data, limits);
            prop_assert_eq!(&read_chunked(&data, chunks, limits), &whole);
            prop_assert_eq!(&read_bytewise(&data, limits), &whole);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            data in prop::collection::vec(any::<u8>(), 0..300),
            chunks in prop::collection::vec(1usize..20, 0..50),
        ) {
            let with_header = [HEADER.as_bytes(), &data].concat();
            let _ = read_chunked(&data, chunks.clone(), XmlLimits::default());
            let _ = read_chunked(&with_header, chunks, XmlLimits::default());
        }
    }
}
