//! Incremental, pull-based reader for one never-closed `<stream:stream>`
//! document.
//!
//! The reader is a hand-written tokenizer for the restricted XML 1.0 of
//! RFC 6120 §11 (UTF-8 only, no DTD, no processing instructions, no
//! comments, only the predefined entities). It does its own namespace
//! resolution, which lets it report the header's default namespace, reject
//! duplicate attributes and undeclared prefixes, and apply [`XmlLimits`]
//! token by token before anything large is built.
//!
//! It works in two ways:
//!
//! * When a top-level element is complete in the buffer (the usual case), a
//!   fast path parses it in one pass straight into a [`minidom::Element`].
//!   It accepts only well-formed input within the limits and without
//!   CDATA sections or CRs; on anything else it gives up without a trace.
//! * Otherwise a resumable state machine reads the bytes as they come,
//!   keeping only the unfinished token (a name, an attribute value, a run of
//!   text) between calls, so no byte is scanned twice whatever the chunking.
//!   It decides every error.
//!
//! # Specification
//!
//! This section is the reader's contract. The earlier reader built on
//! rxml's `RawParser` is kept as a test oracle; the differential tests
//! check that both agree, events, errors and
//! [`buffered_len`](StreamReader::buffered_len) included, for random inputs,
//! chunkings, restarts and limit changes, except for the differences listed
//! at the end, which the tests model explicitly.
//!
//! ## What is accepted
//!
//! * The document is UTF-8. White space (space, tab, CR, LF) before the
//!   first markup is skipped, at the start and after every restart.
//! * An optional XML declaration `<?xml version='1.0' …?>`, whose optional
//!   `encoding` must be `UTF-8` and optional `standalone` must be `yes`
//!   (both case-insensitive); `standalone` needs `encoding` before it.
//! * The root element's head yields [`StreamEvent::Open`] as soon as its `>`
//!   is read. A self-closing root yields `Open` and then
//!   [`StreamEvent::Close`].
//! * Inside the root, every top-level element (stanza or nonza) yields one
//!   [`StreamEvent::Stanza`] when its end tag's `>` (or its `/>`) is read,
//!   and `</…>` of the root yields [`StreamEvent::Close`]. White space
//!   between top-level elements (keepalives), whether literal, character
//!   references or CDATA sections, is dropped; any other text there is an
//!   error. After the root has closed, only white space may follow.
//! * Inside a top-level element: child elements, text with the five
//!   predefined entities and character references to any XML `Char`, and
//!   CDATA sections. Line ends are normalised (CR LF and a lone CR become
//!   LF in text; tab, LF and CR LF become a space in attribute values).
//!   Namespaces follow Namespaces in XML 1.0: the `xml` prefix is bound to
//!   its namespace and cannot be rebound, `xmlns` is reserved, a prefix
//!   cannot be undeclared (`xmlns:p=''`), and attributes must be unique
//!   after resolution. Prefixes declared on the header stay in scope for
//!   every stanza.
//!
//! ## Errors
//!
//! Every error is final ([`ReadError`] lists them):
//!
//! * [`ReadError::NotWellFormed`]: bad syntax, invalid UTF-8 or a
//!   character that is not an XML `Char`, a mismatched end tag, an
//!   undeclared prefix, a duplicate attribute, text or a second element
//!   outside the root, anything but white space after the root, a
//!   reference that is not closed by `;` or refers to a non-`Char`, a
//!   misspelt `<![CDATA[`, `]]>` in text, and — kept from rxml as a strict
//!   rule — a CR in an attribute value followed by anything but LF or CR.
//! * [`ReadError::RestrictedXml`]: `<!DOCTYPE`, `<!ENTITY` and other
//!   markup declarations, comments, processing instructions (an XML
//!   declaration anywhere but at the very start is one), a reference to an
//!   entity other than `amp`, `lt`, `gt`, `apos`, `quot`, a reference whose
//!   name or number is longer than 8 bytes (leading zeros included), and
//!   an XML declaration that breaks the rules above.
//! * [`ReadError::StanzaTooBig`]: a top-level element or the header longer
//!   than [`XmlLimits::max_stanza_bytes`], or a single element name,
//!   attribute name or attribute value (after references are replaced)
//!   longer than 8192 bytes, whatever `max_stanza_bytes` is.
//! * [`ReadError::TooDeep`], [`ReadError::TooManyAttributes`],
//!   [`ReadError::TextTooBig`]: the other [`XmlLimits`], see below.
//!
//! After an error the reader drops its buffered bytes, ignores
//! [`push`](StreamReader::push) and returns the same error until a
//! restart.
//!
//! ## Limits and how bytes are counted
//!
//! * `max_stanza_bytes` counts raw bytes as received, before references
//!   are replaced or line ends normalised. A top-level element is counted
//!   from its `<` to its final `>`; the header from the first byte after
//!   the skipped leading white space (so an XML declaration counts with
//!   the header) to its `>`. Bytes between top-level elements, keepalive
//!   white space included, count against nothing, and no byte ever counts
//!   against more than one element. The error fires as soon as byte
//!   `max_stanza_bytes + 1` of an unfinished element is buffered, so an
//!   element that never ends is caught too, with one exception: a
//!   top-level element's own name is measured once it is complete (it is
//!   at most 8192 bytes, see above). Bytes beyond the limit never become
//!   part of an event; in two corners the first of them decides which
//!   error is reported, as in rxml: after a reference name or number of
//!   the maximum 8 bytes (a ninth name byte makes it
//!   [`ReadError::RestrictedXml`]), and when text reaches the limit exactly
//!   at an 8 KiB slice boundary (the slice is checked for
//!   [`ReadError::TextTooBig`] and UTF-8 first).
//! * `max_depth`: the top-level element has depth 1. Opening an element
//!   deeper than the limit is [`ReadError::TooDeep`] once its name is read.
//! * `max_attributes` counts every attribute of one element, namespace
//!   declarations included; the first one over the limit fails once its
//!   value is read.
//! * `max_text_bytes` counts the character data directly inside one
//!   element (not inside its children), CDATA sections included, after
//!   references are replaced and line ends normalised, summed over all of
//!   that element's text.
//! * [`set_limits`](StreamReader::set_limits) applies from the next
//!   top-level element, or to the header if no byte of it has been read;
//!   the element being read keeps the limits it started with.
//!
//! ## Restarts
//!
//! The reader never consumes a byte beyond the event it returns.
//! [`restart`](StreamReader::restart) starts a fresh document (a new
//! header is expected, leading white space is skipped again, counting
//! starts afresh) and keeps the bytes that are buffered but not consumed,
//! such as a header the client pipelined after its SASL response.
//! [`restart_discarding`](StreamReader::restart_discarding) drops them too.
//! Both keep the limits set by `set_limits` and clear any error.
//!
//! ## Memory between stanzas
//!
//! Whenever the input buffer is empty after a call, it is released: the
//! next [`push`](StreamReader::push) allocates what it brings. When a
//! top-level element (or the header) is complete and nothing is buffered,
//! the session may stay idle for hours, so the reader also frees its empty
//! scratch buffers (partial tokens, open elements, attributes) and trims
//! the ones that keep the root's name and the header's namespace
//! declarations to at most 64 spare bytes each (none after the header).
//! It then holds a few hundred bytes of heap. While more bytes are
//! buffered the stream is busy and the scratch buffers keep their capacity
//! (those that grew beyond 16 KiB are shrunk after each top-level element).
//! The element prototypes that let parsed elements share namespace strings
//! are kept per thread, not per reader.
//!
//! ## Differences from rxml
//!
//! The oracle reader is rxml's behaviour with these deliberate
//! differences, modelled in the oracle itself (`src/stream/oracle.rs`,
//! marked "Documented difference") so that the differential tests and the
//! fuzz target still compare everything else:
//!
//! * rxml never reported the bytes of an empty CDATA section
//!   (`<![CDATA[]]>`, or the `]]>` after a section that ended exactly at
//!   its 8 KiB token boundary) and counted them against the current *and
//!   every later* top-level element, so a client sending empty CDATA
//!   sections between stanzas slowly shrank its own stanza limit to zero.
//!   Here they count only against the element that contains them, and
//!   between elements against nothing.
//! * rxml rejected white space before the root; it is skipped (the oracle
//!   skips it before rxml sees it).
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

use std::cell::RefCell;

use bytes::{Buf, BytesMut};
use minidom::rxml::{AttrMap, Namespace, NcName};
use minidom::{Element, Node};

use super::NS_STREAMS;
use super::xml::{self, CDATA_STOP, DIGIT, HEX, NAME, SPACE, TEXT_STOP};

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

mod fast;
mod raw;

pub(crate) use raw::RawMessage;

/// Longest name, attribute value or run of character data held as one
/// token (rxml's limit): longer names and values are
/// [`ReadError::StanzaTooBig`], longer text is checked in slices.
const TOKEN_LIMIT: usize = 8192;
/// Longest entity name or number in a reference.
const REF_LIMIT: usize = 8;
/// Bindings longer than this are shrunk between stanzas.
const KEEP_SCRATCH: usize = 16;
/// An emptied input buffer or scratch buffer with more capacity than this
/// is freed.
const KEEP_BUFFER: usize = 16 * 1024;
/// Spare capacity, in bytes, that a buffer holding the header's names or
/// namespaces may keep between stanzas when nothing is buffered.
const IDLE_SLACK: usize = 64;
/// The namespace bound to the `xml` prefix.
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

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

/// What kind of markup a name, blank or attribute value belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `<name …>`
    Head,
    /// `</name …>`
    Foot,
    /// `<?xml …?>`
    Decl,
}

/// What a reference is being read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Radix {
    /// `&name;`
    Entity,
    /// `&#123;`
    Decimal,
    /// `&#x7B;`
    Hex,
}

/// Where the replacement text of a reference goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefIn {
    Text,
    Attr(Kind, u8),
}

/// The tokenizer's position inside the markup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    /// Character data.
    Text,
    /// Inside `<![CDATA[…]]>`.
    Cdata,
    /// After one or two `]` in text or CDATA.
    Brackets { cdata: bool, n: u8 },
    /// After a CR in text or CDATA.
    Cr { cdata: bool },
    /// After `<`.
    Lt,
    /// After `<?` and `n - 2` bytes of `xml`.
    Pi(u8),
    /// After `<!`.
    Bang,
    /// After `<!-`.
    CommentDash,
    /// After `n` bytes of `<![CDATA[`.
    CdataOpen(u8),
    /// After the XML declaration: white space, then `<`.
    AfterDecl,
    /// Reading an element name (`attr: false`) or an attribute name.
    Name { kind: Kind, attr: bool },
    /// White space inside markup; `required` right after a value.
    Blank { kind: Kind, required: bool },
    /// Inside an attribute value; `cr` right after a CR.
    AttVal { kind: Kind, quote: u8, cr: bool },
    /// After `?` in the XML declaration.
    DeclEnd,
    /// After `/` in an element head.
    HeadEnd,
    /// After `&`.
    Ref { into: RefIn, radix: Radix },
}

/// What follows a name or white space inside markup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Blank,
    Quote(u8),
    Eq,
    Close,
    DeclEnd,
    HeadEnd,
    Name,
}

/// Position inside the XML declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeclSt {
    VersionName,
    VersionEq,
    VersionValue,
    EncodingName,
    EncodingEq,
    EncodingValue,
    StandaloneName,
    StandaloneEq,
    StandaloneValue,
    Close,
}

/// Which token the document structure allows next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Doc {
    /// Nothing read yet: the XML declaration or the root.
    Initial,
    Decl(DeclSt),
    /// After the XML declaration: the root.
    Expected,
    /// In an element head: an attribute name or the end of the head.
    AttrName,
    AttrEq,
    AttrValue,
    /// Inside an element: text, child elements, the element's end.
    Content,
    /// After `</name`: the closing `>`.
    Foot,
    /// After the root closed.
    End,
}

/// Lengths of `bindings` and `ns_arena` before an element's declarations.
#[derive(Debug, Clone, Copy)]
struct Mark {
    bindings: usize,
    arena: usize,
}

/// A namespace declaration in scope; ranges index `ns_arena`.
#[derive(Debug, Clone, Copy)]
struct Binding {
    /// `None` for the default namespace.
    prefix: Option<(usize, usize)>,
    ns: (usize, usize),
}

/// An element whose head (`<name attr='…'`) is being read. Its name is the
/// top of `names`; its unprefixed attributes are in `attrs`, the prefixed
/// ones in `head_attrs`.
#[derive(Debug)]
struct Head {
    colon: Option<usize>,
    mark: Mark,
    /// Attributes seen so far, namespace declarations included.
    count: usize,
}

/// A prefixed attribute of `head`, resolved when the head is complete.
///
/// In the stream header the unprefixed attributes wait here too, with an
/// empty prefix range (a real prefix is never empty): `finish_header` reads
/// the few it needs once, so they never go through an [`AttrMap`].
#[derive(Debug)]
struct HeadAttr {
    /// Range of the prefix in `attr_names`; empty for an unprefixed
    /// attribute of the stream header.
    prefix: (usize, usize),
    local: NcName,
    value: String,
}

impl HeadAttr {
    /// An unprefixed attribute of the stream header.
    fn is_unprefixed(&self) -> bool {
        self.prefix.0 == self.prefix.1
    }
}

/// The attribute whose value is being read.
#[derive(Debug, Default)]
enum CurAttr {
    #[default]
    None,
    /// `name='…'`
    Plain(NcName),
    /// `p:name='…'`; the prefix's range in `attr_names`.
    Prefixed((usize, usize), NcName),
    /// `xmlns='…'`
    DeclDefault,
    /// `xmlns:p='…'`; the prefix's range in `attr_names`.
    DeclPrefix((usize, usize)),
}

/// How many distinct (name, namespace) element prototypes a thread keeps.
const PROTOTYPES: usize = 16;
/// Longest name plus namespace of a kept prototype.
const PROTOTYPE_BYTES: usize = 128;

/// An open element inside a stanza.
#[derive(Debug)]
struct Frame {
    el: Element,
    /// Character data since the last child.
    text: String,
    text_bytes: usize,
    mark: Mark,
}

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
    /// Stream offset of `buf[0]`.
    base: u64,
    /// Limits for the element being read.
    active: XmlLimits,
    /// Limits for the next top-level element.
    limits: XmlLimits,
    phase: Phase,
    /// No byte has reached the tokenizer yet (leading whitespace is skipped).
    fresh: bool,
    /// Whether the current top-level element (or header) is being measured.
    counting: bool,
    /// Stream offset of the first byte the measured element may not use.
    lim_abs: u64,
    /// Stream offset of the last `<` in content.
    lt_abs: u64,
    lex: Lex,
    doc: Doc,
    /// A self-closing root: its end is reported by the next call.
    root_close_pending: bool,
    /// A name split across reads.
    tok: Vec<u8>,
    /// Where the name being read starts in the current input.
    tok_start: usize,
    /// An attribute value split across reads or needing replacement.
    att: Vec<u8>,
    /// Character data not yet reported.
    seg: Vec<u8>,
    refbuf: [u8; REF_LIMIT],
    ref_len: usize,
    /// Names of the open elements, root included, concatenated.
    names: Vec<u8>,
    name_ends: Vec<usize>,
    /// Namespace declarations in scope.
    bindings: Vec<Binding>,
    ns_arena: String,
    head: Option<Head>,
    /// Unprefixed attributes of `head`.
    attrs: AttrMap,
    /// Two unprefixed attributes of `head` had the same name.
    dup: bool,
    /// Prefixes used by `head`'s attributes, concatenated.
    attr_names: Vec<u8>,
    cur_attr: CurAttr,
    head_attrs: Vec<HeadAttr>,
    frames: Vec<Frame>,
    error: Option<ReadError>,
    /// RFC 7395 framing: the reader starts inside a synthetic root (see
    /// [`FRAMED_ROOT`]) whose `Open` event is not reported, so that every
    /// frame's element is read with only its own namespace declarations.
    framed: bool,
}

/// The synthetic root a framed reader starts in: no namespace bound, so a
/// frame's element without `xmlns` is in no namespace.
pub(crate) const FRAMED_ROOT: &[u8] = b"<frames>";

impl Default for StreamReader {
    fn default() -> Self {
        Self::new(XmlLimits::default())
    }
}

const NWF: ReadError = ReadError::NotWellFormed;
const RESTRICTED: ReadError = ReadError::RestrictedXml;
const TOO_BIG: ReadError = ReadError::StanzaTooBig;

/// `max_stanza_bytes` as a stream offset difference.
fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Where markup goes after a name or white space ended at byte `b`.
fn after_blank(kind: Kind, b: u8) -> Result<Next, ReadError> {
    match b {
        b' ' | b'\t' | b'\r' | b'\n' => Ok(Next::Blank),
        b'"' | b'\'' => Ok(Next::Quote(b)),
        b'=' => Ok(Next::Eq),
        b'>' if kind != Kind::Decl => Ok(Next::Close),
        b'?' if kind == Kind::Decl => Ok(Next::DeclEnd),
        b'/' if kind == Kind::Head => Ok(Next::HeadEnd),
        b if xml::is(b, NAME) => Ok(Next::Name),
        _ => Err(NWF),
    }
}

/// The namespace bound to `prefix` (`None`: the default namespace).
fn lookup<'a>(bindings: &[Binding], arena: &'a str, prefix: Option<&[u8]>) -> Option<&'a str> {
    let slice = |(a, b): (usize, usize)| arena.get(a..b).unwrap_or_default();
    match prefix {
        None => Some(
            bindings
                .iter()
                .rev()
                .find(|b| b.prefix.is_none())
                .map_or("", |b| slice(b.ns)),
        ),
        Some(b"xml") => Some(XML_NS),
        Some(p) => bindings
            .iter()
            .rev()
            .find(|b| b.prefix.is_some_and(|r| slice(r).as_bytes() == p))
            .map(|b| slice(b.ns)),
    }
}

/// Split a qualified name at `colon`.
fn parts(name: &[u8], colon: Option<usize>) -> (Option<&[u8]>, &[u8]) {
    match colon {
        None => (None, name),
        Some(c) => (
            name.get(..c),
            name.get(c.saturating_add(1)..).unwrap_or_default(),
        ),
    }
}

/// The last of the names concatenated in `names` that end at `ends`.
fn top<'a>(names: &'a [u8], ends: &[usize]) -> &'a [u8] {
    let end = ends.last().copied().unwrap_or(0);
    let start = ends
        .len()
        .checked_sub(2)
        .and_then(|i| ends.get(i))
        .copied()
        .unwrap_or(0);
    names.get(start..end).unwrap_or_default()
}

/// Empty elements with recently seen names and namespaces.
struct Prototypes {
    els: Vec<Element>,
    /// The slot to replace next once `els` is full.
    next: usize,
}

thread_local! {
    /// Prototypes shared by every reader on the thread: cloning one shares
    /// its namespace instead of allocating it again, so elements read on
    /// one thread share a handful of namespace strings, and an idle reader
    /// holds none of them. Bounded: at most [`PROTOTYPES`] elements of at
    /// most [`PROTOTYPE_BYTES`] of name and namespace.
    static PROTOS: RefCell<Prototypes> = const {
        RefCell::new(Prototypes {
            els: Vec::new(),
            next: 0,
        })
    };
}

/// An empty element `{ns}local`, cloned from the thread's prototypes when
/// one matches.
fn element(local: &[u8], ns: &str) -> Result<Element, ReadError> {
    let hit = PROTOS.try_with(|cell| {
        let protos = cell.try_borrow().ok()?;
        protos
            .els
            .iter()
            .find(|p| p.name().as_bytes() == local && p.has_ns(ns))
            .cloned()
    });
    if let Ok(Some(el)) = hit {
        return Ok(el);
    }
    let name = std::str::from_utf8(local).map_err(|_| NWF)?;
    let el = Element::bare(name, ns);
    if name.len().saturating_add(ns.len()) <= PROTOTYPE_BYTES {
        // During thread teardown, or if the cache is busy: not kept.
        let _ = PROTOS.try_with(|cell| {
            if let Ok(mut protos) = cell.try_borrow_mut() {
                if protos.els.len() < PROTOTYPES {
                    protos.els.push(el.clone());
                } else {
                    let next = protos.next;
                    if let Some(slot) = protos.els.get_mut(next) {
                        *slot = el.clone();
                    }
                    protos.next = next.wrapping_add(1) % PROTOTYPES;
                }
            }
        });
    }
    Ok(el)
}

/// Whether the thread's prototypes include an element named `name`.
#[cfg(test)]
fn prototype_named(name: &str) -> bool {
    PROTOS.with(|cell| cell.borrow().els.iter().any(|p| p.name() == name))
}

impl StreamReader {
    /// A reader expecting a stream header, with the given limits.
    pub fn new(limits: XmlLimits) -> Self {
        Self {
            buf: BytesMut::new(),
            base: 0,
            active: limits,
            limits,
            phase: Phase::Prolog,
            fresh: true,
            counting: true,
            lim_abs: 0,
            lt_abs: 0,
            lex: Lex::Text,
            doc: Doc::Initial,
            root_close_pending: false,
            tok: Vec::new(),
            tok_start: 0,
            att: Vec::new(),
            seg: Vec::new(),
            refbuf: [0; REF_LIMIT],
            ref_len: 0,
            names: Vec::new(),
            name_ends: Vec::new(),
            bindings: Vec::new(),
            ns_arena: String::new(),
            head: None,
            attrs: AttrMap::new(),
            dup: false,
            attr_names: Vec::new(),
            cur_attr: CurAttr::None,
            head_attrs: Vec::new(),
            frames: Vec::new(),
            error: None,
            framed: false,
        }
    }

    /// A reader for RFC 7395 frames already checked to hold one complete
    /// element each (see `stream::framing`): it reports no header, only a
    /// [`StreamEvent::Stanza`] per element, and stays framed across
    /// restarts.
    pub(crate) fn new_framed(limits: XmlLimits) -> Self {
        let mut reader = Self::new(limits);
        reader.framed = true;
        reader.buf.extend_from_slice(FRAMED_ROOT);
        reader
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
        if self.framed {
            *self = Self::new_framed(limits);
            self.buf.extend_from_slice(&buf);
        } else {
            *self = Self::new(limits);
            self.buf = buf;
        }
    }

    /// Start over with a fresh parser and drop every buffered byte (after
    /// `<proceed/>` for STARTTLS: plaintext sent before the TLS handshake
    /// must never be read as part of the encrypted stream).
    pub fn restart_discarding(&mut self) {
        let limits = self.limits;
        *self = if self.framed {
            Self::new_framed(limits)
        } else {
            Self::new(limits)
        };
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
        let mut result = self.step();
        if self.framed && matches!(result, Ok(Some(StreamEvent::Open(_)))) {
            // The synthetic root: not the peer's.
            result = self.step();
        }
        match &result {
            Err(e) => {
                let limits = self.limits;
                *self = Self::new(limits);
                self.error = Some(*e);
            }
            Ok(event) => {
                if self.buf.is_empty() {
                    // Nothing waits: hold no input buffer (a fully
                    // consumed `BytesMut` may report no capacity yet still
                    // hold its allocation). The next push allocates what
                    // it brings.
                    self.buf = BytesMut::new();
                    match event {
                        Some(StreamEvent::Stanza(_)) => self.release_idle(IDLE_SLACK),
                        // The header's names and namespaces are kept for
                        // the whole stream: hold them without slack.
                        Some(StreamEvent::Open(_)) => self.release_idle(0),
                        _ => {}
                    }
                }
            }
        }
        result
    }

    /// Between top-level elements with nothing buffered (the session may
    /// stay idle for hours): free the scratch buffers that are empty and
    /// trim the ones holding the header's names and namespaces.
    ///
    /// Buffers that keep data are shrunk only when more than `slack` bytes
    /// are spare, so that a busy stream does not reallocate for every
    /// stanza.
    fn release_idle(&mut self, slack: usize) {
        fn free<T>(v: &mut Vec<T>) {
            if v.is_empty() && v.capacity() > 0 {
                *v = Vec::new();
            }
        }
        let trim = |spare: usize, size: usize| spare.saturating_mul(size) > slack;
        macro_rules! trim {
            ($v:expr, $t:ty) => {
                if trim(
                    $v.capacity().saturating_sub($v.len()),
                    std::mem::size_of::<$t>(),
                ) {
                    $v.shrink_to_fit();
                }
            };
        }
        free(&mut self.tok);
        free(&mut self.att);
        free(&mut self.seg);
        free(&mut self.attr_names);
        free(&mut self.head_attrs);
        free(&mut self.frames);
        trim!(self.names, u8);
        trim!(self.name_ends, usize);
        trim!(self.bindings, Binding);
        trim!(self.ns_arena, u8);
    }

    fn step(&mut self) -> Result<Option<StreamEvent>, ReadError> {
        if self.root_close_pending {
            self.root_close_pending = false;
            return self.on_foot();
        }
        if self.fresh {
            // XML allows whitespace before the root; rxml did not.
            let ws = xml::run_while(&self.buf, SPACE);
            self.buf.advance(ws);
            self.base = self.base.wrapping_add(as_u64(ws));
            if self.buf.is_empty() {
                return Ok(None);
            }
            self.fresh = false;
            self.lim_abs = self
                .base
                .saturating_add(as_u64(self.active.max_stanza_bytes));
        }
        // Parse from a local view and consume from the buffer once at the end.
        let mut buf = std::mem::take(&mut self.buf);
        let mut pos = 0;
        let result = self.run(&buf, &mut pos);
        let consumed = pos.min(buf.len());
        buf.advance(consumed);
        self.base = self.base.wrapping_add(as_u64(consumed));
        self.buf = buf;
        result
    }

    /// End of the bytes that may be consumed now: the input, or less while
    /// an element is being measured.
    #[inline(always)]
    fn hard(&self, len: usize) -> usize {
        if self.counting {
            let room = self.lim_abs.saturating_sub(self.base);
            usize::try_from(room).map_or(len, |r| r.min(len))
        } else {
            len
        }
    }

    /// The byte at `pos` if it may be consumed, `None` at the end of input.
    #[inline(always)]
    fn byte(&self, input: &[u8], pos: usize) -> Result<Option<u8>, ReadError> {
        if pos < self.hard(input.len()) {
            Ok(input.get(pos).copied())
        } else if pos < input.len() {
            Err(TOO_BIG)
        } else {
            Ok(None)
        }
    }

    fn abs(&self, pos: usize) -> u64 {
        self.base.wrapping_add(as_u64(pos))
    }

    /// Tokenize `input` from `pos` until one event is complete (`pos` then
    /// points right after it) or the input is used up (`Ok(None)`).
    fn run(&mut self, input: &[u8], pos: &mut usize) -> Result<Option<StreamEvent>, ReadError> {
        self.tok_start = 0;
        loop {
            match self.lex {
                Lex::Text | Lex::Cdata => {
                    let cdata = self.lex == Lex::Cdata;
                    let mask = if cdata { CDATA_STOP } else { TEXT_STOP };
                    if self.seg.len() > TOKEN_LIMIT {
                        self.flush_limit()?;
                        continue;
                    }
                    let room = TOKEN_LIMIT.saturating_sub(self.seg.len());
                    let hard = self.hard(input.len());
                    let start = *pos;
                    let rest = input.get(start..hard).unwrap_or_default();
                    let n = if cdata {
                        xml::run_until(rest, mask)
                    } else {
                        xml::text_run(rest)
                    };
                    if n > room {
                        // rxml's token limit: report what is there first.
                        self.seg
                            .extend_from_slice(rest.get(..room).unwrap_or_default());
                        *pos = start.saturating_add(room);
                        self.flush_limit()?;
                        continue;
                    }
                    let run = rest.get(..n).unwrap_or_default();
                    let at = start.saturating_add(n);
                    let Some(&b) = input.get(at) else {
                        self.seg.extend_from_slice(run);
                        *pos = at;
                        return Ok(None);
                    };
                    if at >= hard {
                        self.seg.extend_from_slice(run);
                        *pos = at;
                        if n == room && !xml::is(b, mask) {
                            self.flush_limit()?;
                            continue;
                        }
                        return Err(TOO_BIG);
                    }
                    *pos = at.saturating_add(1);
                    match b {
                        b'<' if !cdata => {
                            self.text_then_flush(run)?;
                            self.lt_abs = self.abs(at);
                            self.lex = Lex::Lt;
                        }
                        b'&' if !cdata => {
                            self.text_then_flush(run)?;
                            self.ref_len = 0;
                            self.lex = Lex::Ref {
                                into: RefIn::Text,
                                radix: Radix::Entity,
                            };
                        }
                        b']' => {
                            self.seg.extend_from_slice(run);
                            self.lex = Lex::Brackets { cdata, n: 1 };
                        }
                        b'\r' => {
                            self.seg.extend_from_slice(run);
                            self.lex = Lex::Cr { cdata };
                        }
                        _ => return Err(NWF),
                    }
                }
                Lex::Brackets { cdata, n } => {
                    let Some(b) = self.byte(input, *pos)? else {
                        return Ok(None);
                    };
                    let at = *pos;
                    *pos = at.saturating_add(1);
                    if n == 1 && b == b']' {
                        self.lex = Lex::Brackets { cdata, n: 2 };
                    } else if n == 2 && b == b'>' {
                        if !cdata {
                            // `]]>` is not allowed in text.
                            return Err(NWF);
                        }
                        self.lex = Lex::Text;
                        self.flush_text(true)?;
                    } else if b == b']' {
                        self.seg.push(b']');
                        self.flush_full()?;
                    } else {
                        self.seg
                            .extend_from_slice(if n == 1 { b"]" } else { b"]]" });
                        if cdata {
                            if xml::is_nonchar_byte(b) {
                                return Err(NWF);
                            }
                            self.seg.push(b);
                            self.lex = Lex::Cdata;
                            self.flush_full()?;
                        } else {
                            self.resume_text(b, at)?;
                        }
                    }
                }
                Lex::Cr { cdata } => {
                    let Some(b) = self.byte(input, *pos)? else {
                        return Ok(None);
                    };
                    let at = *pos;
                    *pos = at.saturating_add(1);
                    self.seg.push(b'\n');
                    match b {
                        b'\n' => self.lex = if cdata { Lex::Cdata } else { Lex::Text },
                        b'\r' => {}
                        _ if !cdata => self.resume_text(b, at)?,
                        b']' => self.lex = Lex::Brackets { cdata, n: 1 },
                        _ if xml::is_nonchar_byte(b) => return Err(NWF),
                        _ => {
                            self.seg.push(b);
                            self.lex = Lex::Cdata;
                        }
                    }
                }
                Lex::Lt => {
                    if self.frames.is_empty()
                        && self.doc == Doc::Content
                        && self.phase == Phase::Open
                        && !self.counting
                    {
                        // A stanza starts: try it in one pass.
                        let lt = self
                            .lt_abs
                            .checked_sub(self.base)
                            .and_then(|d| usize::try_from(d).ok());
                        if let Some((el, end)) = lt.and_then(|lt| self.fast_stanza(input, lt)) {
                            *pos = end;
                            self.lex = Lex::Text;
                            self.active = self.limits;
                            self.finish_stanza();
                            return Ok(Some(StreamEvent::Stanza(el)));
                        }
                    }
                    let Some(b) = self.byte(input, *pos)? else {
                        return Ok(None);
                    };
                    let at = *pos;
                    *pos = at.saturating_add(1);
                    match b {
                        b'?' => self.lex = Lex::Pi(2),
                        b'!' => self.lex = Lex::Bang,
                        b'/' => {
                            self.tok_start = *pos;
                            self.lex = Lex::Name {
                                kind: Kind::Foot,
                                attr: false,
                            };
                        }
                        b if xml::is(b, NAME) => {
                            self.tok_start = at;
                            self.lex = Lex::Name {
                                kind: Kind::Head,
                                attr: false,
                            };
                        }
                        _ => return Err(NWF),
                    }
                }
                Lex::Pi(i) => {
                    let Some(b) = self.byte(input, *pos)? else {
                        return Ok(None);
                    };
                    *pos = pos.saturating_add(1);
                    if b"<?xml".get(usize::from(i)) != Some(&b) {
                        return Err(RESTRICTED);
                    }
                    if i == 4 {
                        self.tok_decl_start()?;
                        self.lex = Lex::Blank {
                            kind: Kind::Decl,
                            required: true,
                        };
                    } else {
                        self.lex = Lex::Pi(i.saturating_add(1));
                    }
                }
                Lex::Bang => {
                    let Some(b) = self.byte(input, *pos)? else {
                        return Ok(None);
                    };
                    *pos = pos.saturating_add(1);
                    self.lex = match b {
                        b'-' => Lex::CommentDash,
                        b'[' => Lex::CdataOpen(3),
                        // `<!DOCTYPE`, `<!ENTITY` and other declarations.
                        _ => return Err(RESTRICTED),
                    };
                }
                Lex::CommentDash => {
                    let Some(b) = self.byte(input, *pos)? else {
                        return Ok(None);
                    };
                    *pos = pos.saturating_add(1);
                    if b != b'-' {
                        return Err(NWF);
                    }
                    // A comment: forbidden wherever it is.
                    return Err(match self.doc {
                        Doc::Initial | Doc::Expected | Doc::Content => RESTRICTED,
                        _ => NWF,
                    });
                }
                Lex::CdataOpen(i) => {
                    let Some(b) = self.byte(input, *pos)? else {
                        return Ok(None);
                    };
                    *pos = pos.saturating_add(1);
                    if b"<![CDATA[".get(usize::from(i)) != Some(&b) {
                        return Err(NWF);
                    }
                    if i == 8 {
                        self.lex = Lex::Cdata;
                    } else {
                        self.lex = Lex::CdataOpen(i.saturating_add(1));
                    }
                }
                Lex::AfterDecl => {
                    let hard = self.hard(input.len());
                    let start = *pos;
                    let at = start.saturating_add(xml::run_while(
                        input.get(start..hard).unwrap_or_default(),
                        SPACE,
                    ));
                    *pos = at;
                    let Some(&b) = input.get(at) else {
                        return Ok(None);
                    };
                    if at >= hard {
                        return Err(TOO_BIG);
                    }
                    *pos = at.saturating_add(1);
                    if b != b'<' {
                        return Err(NWF);
                    }
                    self.lt_abs = self.abs(at);
                    self.lex = Lex::Lt;
                }
                Lex::Name { kind, attr } => {
                    let hard = self.hard(input.len());
                    let start = *pos;
                    let n = xml::run_while(input.get(start..hard).unwrap_or_default(), NAME);
                    let at = start.saturating_add(n);
                    let total = self
                        .tok
                        .len()
                        .saturating_add(at.saturating_sub(self.tok_start));
                    if total > TOKEN_LIMIT {
                        return Err(TOO_BIG);
                    }
                    let Some(&b) = input.get(at) else {
                        let part = input.get(self.tok_start..at).unwrap_or_default();
                        self.tok.extend_from_slice(part);
                        self.tok_start = 0;
                        *pos = at;
                        return Ok(None);
                    };
                    if at >= hard {
                        return Err(TOO_BIG);
                    }
                    *pos = at.saturating_add(1);
                    let next = after_blank(kind, b)?;
                    let tail = input.get(self.tok_start..at).unwrap_or_default();
                    let end_abs = self.abs(at).wrapping_add(1);
                    let result = if self.tok.is_empty() {
                        self.name_token(kind, attr, tail, end_abs)
                    } else {
                        // The name was split across reads.
                        self.tok.extend_from_slice(tail);
                        let tok = std::mem::take(&mut self.tok);
                        let result = self.name_token(kind, attr, &tok, end_abs);
                        self.tok = tok;
                        result
                    };
                    self.tok.clear();
                    result?;
                    if let Some(ev) = self.transition(kind, next, at)? {
                        return Ok(Some(ev));
                    }
                }
                Lex::Blank { kind, required } => {
                    let hard = self.hard(input.len());
                    let start = *pos;
                    let n = xml::run_while(input.get(start..hard).unwrap_or_default(), SPACE);
                    let at = start.saturating_add(n);
                    let required = required && n == 0;
                    *pos = at;
                    let Some(&b) = input.get(at) else {
                        self.lex = Lex::Blank { kind, required };
                        return Ok(None);
                    };
                    if at >= hard {
                        return Err(TOO_BIG);
                    }
                    *pos = at.saturating_add(1);
                    let next = after_blank(kind, b)?;
                    if required && next == Next::Name {
                        // `a='1'b='2'`
                        return Err(NWF);
                    }
                    if let Some(ev) = self.transition(kind, next, at)? {
                        return Ok(Some(ev));
                    }
                }
                Lex::AttVal {
                    kind,
                    quote,
                    cr: true,
                } => {
                    let Some(b) = self.byte(input, *pos)? else {
                        return Ok(None);
                    };
                    *pos = pos.saturating_add(1);
                    if b == b'\r' {
                        self.att.push(b' ');
                    } else {
                        self.attval_delimiter(kind, quote, b)?;
                    }
                }
                Lex::AttVal {
                    kind,
                    quote,
                    cr: false,
                } => {
                    if self.att.len() > TOKEN_LIMIT {
                        return Err(TOO_BIG);
                    }
                    let room = TOKEN_LIMIT.saturating_sub(self.att.len());
                    let hard = self.hard(input.len());
                    let start = *pos;
                    let rest = input.get(start..hard).unwrap_or_default();
                    let n = xml::value_run(rest, quote);
                    if n > room {
                        return Err(TOO_BIG);
                    }
                    let run = rest.get(..n).unwrap_or_default();
                    let at = start.saturating_add(n);
                    let Some(&b) = input.get(at) else {
                        self.att.extend_from_slice(run);
                        *pos = at;
                        return Ok(None);
                    };
                    if at >= hard {
                        return Err(TOO_BIG);
                    }
                    *pos = at.saturating_add(1);
                    if b == quote && self.att.is_empty() {
                        // The whole value in one piece: no copy.
                        self.attval_token(run)?;
                        self.lex = Lex::Blank {
                            kind,
                            required: true,
                        };
                    } else {
                        self.att.extend_from_slice(run);
                        self.attval_delimiter(kind, quote, b)?;
                    }
                }
                Lex::Ref { into, radix } => {
                    let mask = match radix {
                        Radix::Entity => NAME,
                        Radix::Decimal => DIGIT,
                        Radix::Hex => HEX,
                    };
                    let room = REF_LIMIT.saturating_sub(self.ref_len);
                    let hard = self.hard(input.len());
                    let start = *pos;
                    let rest = input.get(start..hard).unwrap_or_default();
                    let n = xml::run_while(rest, mask);
                    if n > room {
                        // Longer than any predefined entity or valid number.
                        return Err(RESTRICTED);
                    }
                    if let (Some(dst), Some(src)) = (
                        self.refbuf
                            .get_mut(self.ref_len..self.ref_len.saturating_add(n)),
                        rest.get(..n),
                    ) {
                        dst.copy_from_slice(src);
                    }
                    self.ref_len = self.ref_len.saturating_add(n);
                    let at = start.saturating_add(n);
                    *pos = at;
                    let Some(&b) = input.get(at) else {
                        return Ok(None);
                    };
                    if at >= hard {
                        // rxml looked at a ninth byte without consuming it.
                        if self.ref_len == REF_LIMIT && xml::is(b, mask) {
                            return Err(RESTRICTED);
                        }
                        return Err(TOO_BIG);
                    }
                    *pos = at.saturating_add(1);
                    match b {
                        b'#' if self.ref_len == 0 && radix == Radix::Entity => {
                            self.lex = Lex::Ref {
                                into,
                                radix: Radix::Decimal,
                            };
                        }
                        b'x' if self.ref_len == 0 && radix == Radix::Decimal => {
                            self.lex = Lex::Ref {
                                into,
                                radix: Radix::Hex,
                            };
                        }
                        b';' => self.resolve_reference(into, radix)?,
                        _ => return Err(NWF),
                    }
                }
                Lex::DeclEnd => {
                    let Some(b) = self.byte(input, *pos)? else {
                        return Ok(None);
                    };
                    *pos = pos.saturating_add(1);
                    if b != b'>' {
                        return Err(NWF);
                    }
                    self.tok_decl_end()?;
                    self.lex = Lex::AfterDecl;
                }
                Lex::HeadEnd => {
                    let Some(b) = self.byte(input, *pos)? else {
                        return Ok(None);
                    };
                    *pos = pos.saturating_add(1);
                    if b != b'>' {
                        return Err(NWF);
                    }
                    self.lex = Lex::Text;
                    if let Some(ev) = self.tok_head_close()? {
                        return Ok(Some(ev));
                    }
                }
            }
        }
    }

    /// Go on after a name or white space inside markup that ended at
    /// input byte `at`.
    fn transition(
        &mut self,
        kind: Kind,
        next: Next,
        at: usize,
    ) -> Result<Option<StreamEvent>, ReadError> {
        self.lex = match next {
            Next::Blank => Lex::Blank {
                kind,
                required: false,
            },
            Next::Quote(quote) => {
                self.att.clear();
                Lex::AttVal {
                    kind,
                    quote,
                    cr: false,
                }
            }
            Next::Eq => {
                self.tok_eq()?;
                Lex::Blank {
                    kind,
                    required: false,
                }
            }
            Next::Close => {
                self.lex = Lex::Text;
                return self.tok_hf_end();
            }
            Next::DeclEnd => Lex::DeclEnd,
            Next::HeadEnd => Lex::HeadEnd,
            Next::Name => {
                self.tok_start = at;
                Lex::Name { kind, attr: true }
            }
        };
        Ok(None)
    }

    /// A complete name that ended at stream offset `end_abs`.
    fn name_token(
        &mut self,
        kind: Kind,
        attr: bool,
        name: &[u8],
        end_abs: u64,
    ) -> Result<(), ReadError> {
        match (kind, attr) {
            (_, true) => self.tok_name(name),
            (Kind::Head, false) => self.tok_head_start(name, end_abs),
            (Kind::Foot, false) => self.tok_foot_start(name),
            (Kind::Decl, false) => Err(NWF),
        }
    }

    /// After a character data byte that ended a `]` or CR sequence.
    fn resume_text(&mut self, b: u8, at: usize) -> Result<(), ReadError> {
        match b {
            b'<' => {
                self.flush_text(true)?;
                self.lt_abs = self.abs(at);
                self.lex = Lex::Lt;
            }
            b']' => self.lex = Lex::Brackets { cdata: false, n: 1 },
            b'&' => {
                self.flush_text(true)?;
                self.ref_len = 0;
                self.lex = Lex::Ref {
                    into: RefIn::Text,
                    radix: Radix::Entity,
                };
            }
            b'\r' => self.lex = Lex::Cr { cdata: false },
            b if xml::is_nonchar_byte(b) => return Err(NWF),
            b => {
                self.seg.push(b);
                self.lex = Lex::Text;
            }
        }
        Ok(())
    }

    /// Report the run `run` of character data that ends at `<` or `&`,
    /// together with anything not yet reported.
    #[inline]
    fn text_then_flush(&mut self, run: &[u8]) -> Result<(), ReadError> {
        if self.seg.is_empty() {
            if run.is_empty() {
                return Ok(());
            }
            let text = xml::cdata(run).ok_or(NWF)?;
            self.tok_text(text)
        } else {
            self.seg.extend_from_slice(run);
            self.flush_text(true).map(|_| ())
        }
    }

    /// The token limit was reached in text or CDATA: report what is valid.
    fn flush_limit(&mut self) -> Result<(), ReadError> {
        self.flush_text(false).map(|_| ())
    }

    /// Report unreported character data if it reached the token limit.
    fn flush_full(&mut self) -> Result<(), ReadError> {
        if self.seg.len() >= TOKEN_LIMIT {
            self.flush_limit()?;
        }
        Ok(())
    }

    /// Report unreported character data: all of it (`complete`) or as much
    /// as is valid UTF-8 (a trailing partial character waits). Returns
    /// whether anything was reported.
    fn flush_text(&mut self, complete: bool) -> Result<bool, ReadError> {
        if self.seg.is_empty() {
            return Ok(false);
        }
        let mut seg = std::mem::take(&mut self.seg);
        let valid = if complete {
            seg.len()
        } else {
            match std::str::from_utf8(&seg) {
                Ok(_) => seg.len(),
                Err(e) => e.valid_up_to(),
            }
        };
        if valid == 0 {
            return Err(NWF);
        }
        let text = xml::cdata(seg.get(..valid).unwrap_or_default()).ok_or(NWF)?;
        self.tok_text(text)?;
        seg.drain(..valid);
        self.seg = seg;
        Ok(true)
    }

    /// An attribute value delimiter other than a closing quote that ends
    /// the value at once.
    fn attval_delimiter(&mut self, kind: Kind, quote: u8, b: u8) -> Result<(), ReadError> {
        self.lex = match b {
            b'&' => {
                self.ref_len = 0;
                Lex::Ref {
                    into: RefIn::Attr(kind, quote),
                    radix: Radix::Entity,
                }
            }
            b'\t' | b'\n' => {
                self.att.push(b' ');
                Lex::AttVal {
                    kind,
                    quote,
                    cr: false,
                }
            }
            b'\r' => Lex::AttVal {
                kind,
                quote,
                cr: true,
            },
            b if b == quote => {
                let att = std::mem::take(&mut self.att);
                let result = self.attval_token(&att);
                self.att = att;
                self.att.clear();
                result?;
                Lex::Blank {
                    kind,
                    required: true,
                }
            }
            // `<`, control characters, and (as in rxml) any character right
            // after a CR.
            _ => return Err(NWF),
        };
        Ok(())
    }

    fn attval_token(&mut self, bytes: &[u8]) -> Result<(), ReadError> {
        let value = xml::cdata(bytes).ok_or(NWF)?;
        self.tok_attval(value)
    }

    /// `;` closed a reference.
    fn resolve_reference(&mut self, into: RefIn, radix: Radix) -> Result<(), ReadError> {
        let digits = self.refbuf.get(..self.ref_len).unwrap_or_default();
        if digits.is_empty() {
            return Err(NWF);
        }
        let mut utf8 = [0u8; 4];
        let replacement: &[u8] = match radix {
            Radix::Entity => {
                let b = xml::predefined_entity(digits).ok_or(RESTRICTED)?;
                utf8[0] = b;
                &utf8[..1]
            }
            Radix::Decimal | Radix::Hex => {
                let base = if radix == Radix::Hex { 16 } else { 10 };
                let c = xml::char_reference(digits, base).ok_or(NWF)?;
                c.encode_utf8(&mut utf8).as_bytes()
            }
        };
        match into {
            RefIn::Text => {
                self.seg.extend_from_slice(replacement);
                self.lex = Lex::Text;
            }
            RefIn::Attr(kind, quote) => {
                self.att.extend_from_slice(replacement);
                self.lex = Lex::AttVal {
                    kind,
                    quote,
                    cr: false,
                };
            }
        }
        Ok(())
    }

    // Document structure: which token may come where.

    fn tok_decl_start(&mut self) -> Result<(), ReadError> {
        match self.doc {
            Doc::Initial => {
                self.doc = Doc::Decl(DeclSt::VersionName);
                Ok(())
            }
            // `<?xml-stylesheet …?>` and friends.
            Doc::Expected | Doc::Content => Err(RESTRICTED),
            _ => Err(NWF),
        }
    }

    fn tok_decl_end(&mut self) -> Result<(), ReadError> {
        match self.doc {
            Doc::Decl(DeclSt::EncodingName | DeclSt::StandaloneName | DeclSt::Close) => {
                self.doc = Doc::Expected;
                Ok(())
            }
            _ => Err(NWF),
        }
    }

    fn tok_head_start(&mut self, name: &[u8], end_abs: u64) -> Result<(), ReadError> {
        if !matches!(self.doc, Doc::Initial | Doc::Expected | Doc::Content) {
            return Err(NWF);
        }
        let colon = xml::qname(name).ok_or(NWF)?;
        self.names.extend_from_slice(name);
        self.name_ends.push(self.names.len());
        self.doc = Doc::AttrName;
        self.on_head_open(colon, end_abs)
    }

    fn tok_foot_start(&mut self, name: &[u8]) -> Result<(), ReadError> {
        // Equal to the (valid) name of the open element or not well-formed
        // either way, so the name itself needs no check.
        if self.doc != Doc::Content || self.top_name() != name {
            return Err(NWF);
        }
        self.doc = Doc::Foot;
        Ok(())
    }

    fn tok_name(&mut self, name: &[u8]) -> Result<(), ReadError> {
        if let Doc::Decl(st) = self.doc {
            xml::name(name).ok_or(NWF)?;
            self.doc = match (st, name) {
                (DeclSt::VersionName, b"version") => Doc::Decl(DeclSt::VersionEq),
                (DeclSt::EncodingName, b"encoding") => Doc::Decl(DeclSt::EncodingEq),
                // `<?xml version='1.0' standalone='…'?>` without an encoding.
                (DeclSt::EncodingName, _) => return Err(RESTRICTED),
                (DeclSt::StandaloneName, b"standalone") => Doc::Decl(DeclSt::StandaloneEq),
                _ => return Err(NWF),
            };
            return Ok(());
        }
        if self.doc != Doc::AttrName {
            return Err(NWF);
        }
        let colon = xml::qname(name).ok_or(NWF)?;
        let mut keep = |bytes: &[u8]| {
            let at = self.attr_names.len();
            self.attr_names.extend_from_slice(bytes);
            (at, self.attr_names.len())
        };
        self.cur_attr = match parts(name, colon) {
            (Some(b"xmlns"), b"xmlns") => return Err(NWF),
            (Some(b"xmlns"), local) => CurAttr::DeclPrefix(keep(local)),
            (None, b"xmlns") => CurAttr::DeclDefault,
            (Some(prefix), local) => {
                let local = xml::ncname(local).ok_or(NWF)?;
                CurAttr::Prefixed(keep(prefix), local)
            }
            (None, local) => CurAttr::Plain(xml::ncname(local).ok_or(NWF)?),
        };
        self.doc = Doc::AttrEq;
        Ok(())
    }

    fn tok_eq(&mut self) -> Result<(), ReadError> {
        self.doc = match self.doc {
            Doc::Decl(DeclSt::VersionEq) => Doc::Decl(DeclSt::VersionValue),
            Doc::Decl(DeclSt::EncodingEq) => Doc::Decl(DeclSt::EncodingValue),
            Doc::Decl(DeclSt::StandaloneEq) => Doc::Decl(DeclSt::StandaloneValue),
            Doc::AttrEq => Doc::AttrValue,
            _ => return Err(NWF),
        };
        Ok(())
    }

    fn tok_attval(&mut self, value: &str) -> Result<(), ReadError> {
        match self.doc {
            Doc::AttrValue => {
                // Namespaces in XML: reserved prefixes and names, no
                // undeclaring of prefixes.
                match &self.cur_attr {
                    CurAttr::DeclPrefix((a, b)) => {
                        let xml = self.attr_names.get(*a..*b) == Some(b"xml");
                        if xml != (value == XML_NS) || value.is_empty() {
                            return Err(NWF);
                        }
                    }
                    CurAttr::DeclDefault if value == XML_NS => return Err(NWF),
                    _ => {}
                }
                self.doc = Doc::AttrName;
                self.on_attr(value)
            }
            Doc::Decl(DeclSt::VersionValue) if value == "1.0" => {
                self.doc = Doc::Decl(DeclSt::EncodingName);
                Ok(())
            }
            Doc::Decl(DeclSt::EncodingValue) if value.eq_ignore_ascii_case("utf-8") => {
                self.doc = Doc::Decl(DeclSt::StandaloneName);
                Ok(())
            }
            Doc::Decl(DeclSt::StandaloneValue) if value.eq_ignore_ascii_case("yes") => {
                self.doc = Doc::Decl(DeclSt::Close);
                Ok(())
            }
            Doc::Decl(DeclSt::VersionValue | DeclSt::EncodingValue | DeclSt::StandaloneValue) => {
                Err(RESTRICTED)
            }
            _ => Err(NWF),
        }
    }

    /// `/>`
    fn tok_head_close(&mut self) -> Result<Option<StreamEvent>, ReadError> {
        if self.doc != Doc::AttrName {
            return Err(NWF);
        }
        let opened = self.on_head_close()?;
        self.pop_name();
        if opened.is_some() {
            self.root_close_pending = true;
            return Ok(opened);
        }
        self.on_foot()
    }

    /// `>` of a head or a foot.
    fn tok_hf_end(&mut self) -> Result<Option<StreamEvent>, ReadError> {
        match self.doc {
            Doc::AttrName => {
                self.doc = Doc::Content;
                self.on_head_close()
            }
            Doc::Foot => {
                self.pop_name();
                self.on_foot()
            }
            _ => Err(NWF),
        }
    }

    fn tok_text(&mut self, text: &str) -> Result<(), ReadError> {
        match self.doc {
            Doc::Content => self.on_text(text),
            // Whitespace after the root is allowed.
            Doc::End if xml::is_space(text.as_bytes()) => Ok(()),
            _ => Err(NWF),
        }
    }

    fn top_name(&self) -> &[u8] {
        top(&self.names, &self.name_ends)
    }

    fn pop_name(&mut self) {
        self.name_ends.pop();
        self.names
            .truncate(self.name_ends.last().copied().unwrap_or(0));
        self.doc = if self.name_ends.is_empty() {
            Doc::End
        } else {
            Doc::Content
        };
    }

    // The stream: header, stanzas, limits.

    fn on_head_open(&mut self, colon: Option<usize>, end_abs: u64) -> Result<(), ReadError> {
        if !self.counting && self.phase == Phase::Open {
            // A new top-level element starts.
            self.counting = true;
            self.active = self.limits;
            self.lim_abs = self
                .lt_abs
                .saturating_add(as_u64(self.active.max_stanza_bytes));
        }
        if self.counting && end_abs > self.lim_abs {
            return Err(TOO_BIG);
        }
        match self.phase {
            Phase::Prolog => {}
            Phase::Open => {
                if self.frames.len() >= self.active.max_depth {
                    return Err(ReadError::TooDeep);
                }
            }
            Phase::Closed => return Err(NWF),
        }
        if self.head.is_some() {
            return Err(NWF);
        }
        self.head = Some(Head {
            colon,
            mark: Mark {
                bindings: self.bindings.len(),
                arena: self.ns_arena.len(),
            },
            count: 0,
        });
        self.dup = false;
        self.attr_names.clear();
        self.head_attrs.clear();
        Ok(())
    }

    fn on_attr(&mut self, value: &str) -> Result<(), ReadError> {
        let Some(head) = self.head.as_mut() else {
            return Err(NWF);
        };
        head.count = head.count.saturating_add(1);
        if head.count > self.active.max_attributes {
            return Err(ReadError::TooManyAttributes);
        }
        let mark = head.mark;
        // `xmlns='…'` binds the default namespace, `xmlns:p='…'` p.
        let bound = match std::mem::take(&mut self.cur_attr) {
            CurAttr::Plain(local) if self.phase == Phase::Prolog => {
                // The stream header (see `HeadAttr`); the count is bounded
                // by `max_attributes` above.
                self.dup |= self
                    .head_attrs
                    .iter()
                    .any(|a| a.is_unprefixed() && a.local == local);
                self.head_attrs.push(HeadAttr {
                    prefix: (0, 0),
                    local,
                    value: value.to_owned(),
                });
                return Ok(());
            }
            CurAttr::Plain(local) => {
                let old = self
                    .attrs
                    .insert(Namespace::none().clone(), local, value.to_owned());
                self.dup |= old.is_some();
                return Ok(());
            }
            CurAttr::Prefixed(prefix, local) => {
                self.head_attrs.push(HeadAttr {
                    prefix,
                    local,
                    value: value.to_owned(),
                });
                return Ok(());
            }
            CurAttr::DeclDefault => None,
            CurAttr::DeclPrefix((a, b)) => Some(self.attr_names.get(a..b).unwrap_or_default()),
            CurAttr::None => return Err(NWF),
        };
        let arena = &self.ns_arena;
        let declared = self.bindings.get(mark.bindings..).unwrap_or_default();
        if declared.iter().any(|b| {
            b.prefix
                .map(|(x, y)| arena.as_bytes().get(x..y).unwrap_or_default())
                == bound
        }) {
            return Err(NWF);
        }
        let prefix = match bound {
            None => None,
            Some(p) => {
                let p = std::str::from_utf8(p).map_err(|_| NWF)?;
                let at = self.ns_arena.len();
                self.ns_arena.push_str(p);
                Some((at, self.ns_arena.len()))
            }
        };
        let at = self.ns_arena.len();
        self.ns_arena.push_str(value);
        self.bindings.push(Binding {
            prefix,
            ns: (at, self.ns_arena.len()),
        });
        Ok(())
    }

    fn on_head_close(&mut self) -> Result<Option<StreamEvent>, ReadError> {
        let Some(head) = self.head.take() else {
            return Err(NWF);
        };
        match self.phase {
            Phase::Prolog => self.finish_header(&head).map(Some),
            Phase::Open => {
                let el = self.build_element(&head)?;
                self.frames.push(Frame {
                    el,
                    text: String::new(),
                    text_bytes: 0,
                    mark: head.mark,
                });
                Ok(None)
            }
            Phase::Closed => Err(NWF),
        }
    }

    fn on_text(&mut self, text: &str) -> Result<(), ReadError> {
        match self.frames.last_mut() {
            None if xml::is_space(text.as_bytes()) => Ok(()),
            None => Err(NWF),
            Some(frame) => {
                frame.text_bytes = frame.text_bytes.saturating_add(text.len());
                if frame.text_bytes > self.active.max_text_bytes {
                    return Err(ReadError::TextTooBig);
                }
                frame.text.push_str(text);
                Ok(())
            }
        }
    }

    fn on_foot(&mut self) -> Result<Option<StreamEvent>, ReadError> {
        if self.phase != Phase::Open {
            return Err(NWF);
        }
        let Some(mut frame) = self.frames.pop() else {
            // </stream:stream>
            self.phase = Phase::Closed;
            self.counting = false;
            self.bindings = Vec::new();
            self.ns_arena = String::new();
            return Ok(Some(StreamEvent::Close));
        };
        self.bindings.truncate(frame.mark.bindings);
        self.ns_arena.truncate(frame.mark.arena);
        if !frame.text.is_empty() {
            frame.el.append_text_node(frame.text);
        }
        match self.frames.last_mut() {
            Some(parent) => {
                if !parent.text.is_empty() {
                    parent.el.append_text_node(std::mem::take(&mut parent.text));
                }
                parent.el.append_node(Node::Element(frame.el));
                Ok(None)
            }
            None => {
                self.finish_stanza();
                Ok(Some(StreamEvent::Stanza(frame.el)))
            }
        }
    }

    /// Housekeeping after a top-level element completed.
    fn finish_stanza(&mut self) {
        self.counting = false;
        if self.head_attrs.capacity() > KEEP_SCRATCH {
            self.head_attrs = Vec::new();
        }
        if self.frames.capacity() > KEEP_SCRATCH {
            self.frames = Vec::new();
        }
        if self.bindings.capacity() > KEEP_SCRATCH {
            self.bindings.shrink_to(KEEP_SCRATCH);
        }
        for scratch in [
            &mut self.tok,
            &mut self.att,
            &mut self.seg,
            &mut self.attr_names,
            &mut self.names,
        ] {
            if scratch.capacity() > KEEP_BUFFER {
                scratch.shrink_to(KEEP_SCRATCH);
            }
        }
        if self.ns_arena.capacity() > KEEP_BUFFER {
            self.ns_arena.shrink_to(KEEP_SCRATCH);
        }
        if self.name_ends.capacity() > KEEP_SCRATCH {
            self.name_ends.shrink_to(KEEP_SCRATCH);
        }
    }

    fn finish_header(&mut self, head: &Head) -> Result<StreamEvent, ReadError> {
        let (prefix, local) = parts(self.top_name(), head.colon);
        let ns = lookup(&self.bindings, &self.ns_arena, prefix).ok_or(NWF)?;
        let name_ok = ns == NS_STREAMS && local == b"stream";
        if self.dup {
            return Err(NWF);
        }
        let mut header = StreamHeader {
            name_ok,
            ..StreamHeader::default()
        };
        // The unprefixed attributes, moved out in one pass (no map, no
        // copies); then the prefixed ones as for any element.
        for attr in self.head_attrs.extract_if(.., |a| a.is_unprefixed()) {
            let slot = match attr.local.as_str() {
                "to" => &mut header.to,
                "from" => &mut header.from,
                "version" => &mut header.version,
                "id" => &mut header.id,
                _ => continue,
            };
            *slot = Some(attr.value);
        }
        let mut attrs = std::mem::replace(&mut self.attrs, AttrMap::new());
        self.resolve_prefixed(&mut attrs)?;
        header.lang = attrs.remove(Namespace::xml(), "lang");
        let arena = &self.ns_arena;
        header.default_ns = self
            .bindings
            .get(head.mark.bindings..)
            .unwrap_or_default()
            .iter()
            .find(|b| b.prefix.is_none())
            .map(|b| arena.get(b.ns.0..b.ns.1).unwrap_or_default().to_owned());
        self.phase = Phase::Open;
        self.counting = false;
        Ok(StreamEvent::Open(header))
    }

    fn build_element(&mut self, head: &Head) -> Result<Element, ReadError> {
        let (prefix, local) = parts(top(&self.names, &self.name_ends), head.colon);
        let ns = lookup(&self.bindings, &self.ns_arena, prefix).ok_or(NWF)?;
        let mut el = element(local, ns)?;
        if !self.attrs.is_empty() {
            *el.attrs_mut() = std::mem::replace(&mut self.attrs, AttrMap::new());
        }
        if self.dup || !self.head_attrs.is_empty() {
            self.resolve_prefixed(el.attrs_mut())?;
        }
        Ok(el)
    }

    /// Add the prefixed attributes of `head` to `attrs` with resolved
    /// namespaces; a duplicate after resolution is not well-formed.
    fn resolve_prefixed(&mut self, attrs: &mut AttrMap) -> Result<(), ReadError> {
        if self.dup {
            return Err(NWF);
        }
        for attr in self.head_attrs.drain(..) {
            let prefix = self
                .attr_names
                .get(attr.prefix.0..attr.prefix.1)
                .unwrap_or_default();
            let ns = if prefix == b"xml" {
                Namespace::xml().clone()
            } else {
                let ns = lookup(&self.bindings, &self.ns_arena, Some(prefix)).ok_or(NWF)?;
                Namespace::from(ns.to_owned())
            };
            match attrs.entry(ns, attr.local) {
                minidom::rxml::xml_map::Entry::Occupied(_) => return Err(NWF),
                minidom::rxml::xml_map::Entry::Vacant(slot) => {
                    slot.insert(attr.value);
                }
            }
        }
        Ok(())
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

    /// The header's unprefixed attributes bypass the attribute map: a
    /// duplicate is still not well-formed, and a prefixed attribute of the
    /// same local name is a different attribute.
    #[test]
    fn header_attributes_without_the_map() {
        let open = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' \
            xmlns:a='urn:a' ";
        let read =
            |attrs: &str| read_all(format!("{open}{attrs}>").as_bytes(), XmlLimits::default());
        assert_eq!(
            read("to='x' version='1.0' to='y'"),
            vec![Err(ReadError::NotWellFormed)]
        );
        assert_eq!(
            read("a:to='x' a:to='y'"),
            vec![Err(ReadError::NotWellFormed)]
        );
        let expected = StreamHeader {
            name_ok: true,
            to: Some("y".into()),
            lang: Some("de".into()),
            ..StreamHeader::default()
        };
        assert_eq!(
            read("a:to='x' to='y' xml:lang='de' a:lang='fr'"),
            vec![Ok(StreamEvent::Open(expected))]
        );
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

    /// Once a top-level element is complete and nothing is buffered, the
    /// reader holds no input buffer and no empty scratch buffer; the
    /// header's names and namespaces are held without slack after the
    /// header and with at most `IDLE_SLACK` bytes spare after a stanza.
    #[test]
    fn idle_reader_releases_its_buffers() {
        let mut reader = StreamReader::default();
        reader.push(HEADER.as_bytes());
        assert!(matches!(
            reader.next_event(),
            Ok(Some(StreamEvent::Open(_)))
        ));
        assert_eq!(reader.buf.capacity(), 0);
        assert_eq!(reader.names.capacity(), reader.names.len());
        assert_eq!(reader.ns_arena.capacity(), reader.ns_arena.len());
        assert_eq!(reader.bindings.capacity(), reader.bindings.len());
        let header = (reader.names.len(), reader.ns_arena.len());
        // Byte by byte, so that every scratch buffer is used.
        let stanza = "<iq type='set' id='a&amp;b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'                       xmlns:p='urn:p' p:x='1'><resource>ph\r\none<![CDATA[x]]></resource></bind></iq>";
        let mut got = None;
        for b in stanza.as_bytes() {
            reader.push(std::slice::from_ref(b));
            if let Ok(Some(ev)) = reader.next_event() {
                got = Some(ev);
            }
        }
        assert!(matches!(got, Some(StreamEvent::Stanza(ref el)) if el.name() == "iq"));
        assert_eq!(reader.buf.capacity(), 0);
        for (name, cap) in [
            ("tok", reader.tok.capacity()),
            ("att", reader.att.capacity()),
            ("seg", reader.seg.capacity()),
            ("attr_names", reader.attr_names.capacity()),
            ("head_attrs", reader.head_attrs.capacity()),
            ("frames", reader.frames.capacity()),
        ] {
            assert_eq!(cap, 0, "{name}");
        }
        assert_eq!((reader.names.len(), reader.ns_arena.len()), header);
        assert!(reader.names.capacity() - reader.names.len() <= IDLE_SLACK);
        assert!(reader.ns_arena.capacity() - reader.ns_arena.len() <= IDLE_SLACK);
        assert!(
            (reader.bindings.capacity() - reader.bindings.len()) * size_of::<Binding>()
                <= IDLE_SLACK
        );
        // With more bytes buffered the stream is busy: scratch is kept.
        reader.push(b"<message><body>1</body></message><message><body>2</body></message>");
        assert!(matches!(
            reader.next_event(),
            Ok(Some(StreamEvent::Stanza(_)))
        ));
        assert!(reader.buf.capacity() > 0);
        assert!(reader.frames.capacity() > 0);
        assert!(matches!(
            reader.next_event(),
            Ok(Some(StreamEvent::Stanza(_)))
        ));
        assert_eq!(reader.buf.capacity(), 0);
        assert_eq!(reader.frames.capacity(), 0);
    }

    #[test]
    fn big_names_are_not_kept_after_the_stanza() {
        let name = "n".repeat(8000);
        let ns = "urn:".repeat(2000);
        let stanza = format!(
            "<{name} xmlns='{ns}' xmlns:p='{ns}' p:{name}='1'><{name}>{}</{name}></{name}>",
            "t".repeat(20_000)
        );
        for chunk in [stanza.len(), 7] {
            let mut reader = StreamReader::default();
            reader.push(HEADER.as_bytes());
            assert!(matches!(
                reader.next_event(),
                Ok(Some(StreamEvent::Open(_)))
            ));
            let mut out = Vec::new();
            for piece in stanza.as_bytes().chunks(chunk) {
                reader.push(piece);
                drain(&mut reader, &mut out);
            }
            assert!(
                matches!(out.as_slice(), [Ok(StreamEvent::Stanza(el))] if el.name() == name),
                "{out:?}"
            );
            assert!(!prototype_named(&name));
            assert!(reader.names.capacity() <= KEEP_BUFFER);
            assert!(reader.ns_arena.capacity() <= KEEP_BUFFER);
            assert!(reader.seg.capacity() <= KEEP_BUFFER);
            assert!(reader.tok.capacity() <= KEEP_BUFFER);
            assert!(reader.attr_names.capacity() <= KEEP_BUFFER);
            assert!(reader.buf.capacity() <= KEEP_BUFFER);
            assert!(reader.frames.is_empty() && reader.head.is_none());
        }
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

    /// rxml never reported the bytes of an empty CDATA section and counted
    /// them against every later stanza; they count only against the
    /// element that contains them.
    #[test]
    fn empty_cdata_counts_only_against_its_own_element() {
        let big = Some(ReadError::StanzaTooBig);
        // Between stanzas: keepalive-like, counted against nothing. Before
        // the change, 3 × 12 leaked bytes + 11 exceeded 30.
        let between = "<![CDATA[]]><![CDATA[]]><![CDATA[]]><presence/>";
        assert_eq!(
            first_error(between, limits(|l| l.max_stanza_bytes = 30)),
            None
        );
        let many = "<![CDATA[]]>".repeat(1000) + "<presence/>";
        let events = stanza_events(&many, limits(|l| l.max_stanza_bytes = 11));
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(events[0].is_ok());
        // Inside a stanza: counted against that stanza only.
        let inside = "<a><![CDATA[]]></a>"; // 19 bytes
        assert_eq!(
            first_error(inside, limits(|l| l.max_stanza_bytes = 19)),
            None
        );
        assert_eq!(
            first_error(inside, limits(|l| l.max_stanza_bytes = 18)),
            big
        );
        let twice = format!("{inside}{inside}<presence/>");
        let events = stanza_events(&twice, limits(|l| l.max_stanza_bytes = 19));
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(events.iter().all(Result::is_ok), "{events:?}");
        // Byte by byte too (the incremental path, not the fast path).
        let data = format!("{HEADER}{twice}");
        let bytewise = read_bytewise(data.as_bytes(), limits(|l| l.max_stanza_bytes = 200));
        assert_eq!(bytewise.len(), 4, "{bytewise:?}");
        assert!(bytewise.iter().all(Result::is_ok), "{bytewise:?}");
    }

    /// A CDATA section whose text was reported in full at the 8 KiB text
    /// slice boundary just before its `]]>`: rxml left those three bytes
    /// unreported and charged them to every later stanza.
    #[test]
    fn cdata_ending_at_a_text_slice_boundary_does_not_leak() {
        let body = format!("{}]", "x".repeat(TOKEN_LIMIT - 1));
        let stanza = format!("<a><![CDATA[{body}]]></a>");
        let exact = limits(|l| l.max_stanza_bytes = stanza.len());
        let events = stanza_events(&format!("{stanza}{stanza}"), exact);
        assert_eq!(events.len(), 2, "{events:?}");
        for event in &events {
            match event {
                Ok(StreamEvent::Stanza(el)) => assert_eq!(el.text(), body),
                other => panic!("unexpected {other:?}"),
            }
        }
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

    pub(crate) fn arb_stream() -> impl Strategy<Value = Vec<u8>> {
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
