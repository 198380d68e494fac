//! The previous [`StreamReader`](super::StreamReader), built on
//! [`minidom::rxml::RawParser`], kept as a test oracle.
//!
//! It is compiled only for the crate's unit tests and for fuzzing
//! (`--cfg fuzzing`), where the differential tests and the fuzz target
//! check that the hand-written reader produces exactly the same events and
//! errors for any input and any chunking.

use bytes::{Buf, BytesMut};
use minidom::rxml::error::EndOrError;
use minidom::rxml::{AttrMap, Namespace, NcName, Parse, RawEvent, RawParser};
use minidom::{Element, Node};

use super::NS_STREAMS;
use super::reader::{ReadError, StreamEvent, StreamHeader, XmlLimits};

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

/// The rxml-based reader: same API and semantics as [`StreamReader`](super::StreamReader).
#[derive(Debug)]
pub struct OracleReader {
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
    /// Bytes consumed by the parser since the reader was created.
    consumed: u64,
    /// Value of `consumed` right before the last `<` the parser consumed.
    lt_at: u64,
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

impl Default for OracleReader {
    fn default() -> Self {
        Self::new(XmlLimits::default())
    }
}

impl OracleReader {
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
            consumed: 0,
            lt_at: 0,
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
            let before = *input;
            let result = self.parser.parse(input, false);
            let used = before.len().saturating_sub(input.len());
            let chunk = before.get(..used).unwrap_or_default();
            if let Some(i) = chunk.iter().rposition(|b| *b == b'<') {
                self.lt_at = self.consumed.saturating_add(i as u64);
            }
            self.consumed = self.consumed.saturating_add(used as u64);
            self.pending = self.pending.saturating_add(used);
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
            // Documented difference (see the reader's "Differences from
            // rxml"): rxml never reports the bytes of an empty CDATA
            // section, so they stayed in `pending` and counted against every
            // later stanza. Here the element is charged exactly the bytes
            // consumed since its `<`: what this event did not cover stays
            // pending, anything older is forgotten.
            let since_lt =
                usize::try_from(self.consumed.saturating_sub(self.lt_at)).unwrap_or(usize::MAX);
            self.pending = since_lt.saturating_sub(len);
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
