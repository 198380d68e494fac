//! Serialisation inside an open c2s stream.
//!
//! The stream header written by [`write_stream_header`] binds the default
//! namespace to [`NS_CLIENT`] and the `stream` prefix to [`NS_STREAMS`], so
//! [`write_element`] omits `xmlns='jabber:client'` on stanzas and writes
//! `<stream:features>` and `<stream:error>` with the prefix.
//!
//! Output uses single quotes around attribute values, `<x/>` for empty
//! elements and the attribute order of [`minidom::rxml::AttrMap`]. Text and
//! attribute values are escaped so that they parse back unchanged: tabs,
//! newlines and carriage returns in attribute values and carriage returns in
//! text are written as character references. Characters XML 1.0 cannot
//! carry at all (most C0 controls, U+FFFE, U+FFFF) are replaced by U+FFFD,
//! so the output is always well-formed. Element names are written as given;
//! they are expected to be valid XML names (everything the reader and the
//! crate's own code build is).

use bytes::{BufMut, Bytes, BytesMut};
use minidom::rxml::Namespace;
use minidom::{Element, Node};
use smallvec::SmallVec;

use super::reader::RawMessage;
use super::{NS_CLIENT, NS_STREAMS};

/// The end of the stream: `</stream:stream>`.
pub const STREAM_CLOSE: &[u8] = b"</stream:stream>";

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// How an element's name is written.
#[derive(Clone, Copy)]
enum Prefix {
    None,
    Stream,
    Xml,
}

impl Prefix {
    fn as_bytes(self) -> &'static [u8] {
        match self {
            Prefix::None => b"",
            Prefix::Stream => b"stream:",
            Prefix::Xml => b"xml:",
        }
    }
}

/// An element whose children are being written.
struct Frame<'a> {
    el: &'a Element,
    nodes: std::slice::Iter<'a, Node>,
    prefix: Prefix,
    /// Whether this element pushed a new default namespace.
    pushed: bool,
}

/// Serialise `el` as a top-level element of a c2s stream into `out`.
///
/// An element in the namespace that is default at its position (at the top
/// level `jabber:client`) gets no `xmlns`; any other gets `xmlns='…'`;
/// elements in [`NS_STREAMS`] use the `stream:` prefix. Attributes in the
/// XML namespace are written as `xml:…`, attributes in other namespaces get
/// a prefix declared on the same element.
pub fn write_element(el: &Element, out: &mut BytesMut) {
    // Default namespaces declared on the way down; empty = jabber:client.
    let mut defaults: SmallVec<[String; 2]> = SmallVec::new();
    let mut stack: SmallVec<[Frame<'_>; 8]> = SmallVec::new();
    let first = open_tag(el, &mut defaults, out);
    if let Some(frame) = first {
        stack.push(frame);
    }
    while let Some(frame) = stack.last_mut() {
        match frame.nodes.next() {
            Some(Node::Text(text)) => escape(text.as_bytes(), false, out),
            Some(Node::Element(child)) => {
                if let Some(child_frame) = open_tag(child, &mut defaults, out) {
                    stack.push(child_frame);
                }
            }
            None => {
                out.put_slice(b"</");
                out.put_slice(frame.prefix.as_bytes());
                out.put_slice(frame.el.name().as_bytes());
                out.put_u8(b'>');
                if frame.pushed {
                    defaults.pop();
                }
                stack.pop();
            }
        }
    }
}

/// Serialise `el` as a top-level element (see [`write_element`]) into a new
/// buffer, ready to be shared between several outputs.
pub fn element_bytes(el: &Element) -> Bytes {
    let mut out = BytesMut::with_capacity(256);
    write_element(el, &mut out);
    out.freeze()
}

/// Write the XML declaration and the opening `<stream:stream>` tag of a
/// server's response stream:
///
/// `<?xml version='1.0'?><stream:stream xmlns='jabber:client'
/// xmlns:stream='http://etherx.jabber.org/streams' xml:lang='…' id='…'
/// from='…' to='…' version='…'>` (all on one line; `from`, `to` and
/// `version` only when given). Values are escaped.
pub fn write_stream_header(
    out: &mut BytesMut,
    from: Option<&str>,
    to: Option<&str>,
    id: &str,
    version: Option<&str>,
    lang: &str,
) {
    out.put_slice(b"<?xml version='1.0'?><stream:stream xmlns='");
    out.put_slice(NS_CLIENT.as_bytes());
    out.put_slice(b"' xmlns:stream='");
    out.put_slice(NS_STREAMS.as_bytes());
    out.put_u8(b'\'');
    write_header_attrs(
        out,
        [("xml:lang", Some(lang)), ("id", Some(id))],
        [from, to, version],
    );
    out.put_u8(b'>');
}

/// The attributes of a stream header or `<open/>`, in the order
/// [`write_stream_header`] documents: `first`, then `from`, `to` and
/// `version` when given.
fn write_header_attrs(
    out: &mut BytesMut,
    first: [(&str, Option<&str>); 2],
    [from, to, version]: [Option<&str>; 3],
) {
    let rest = [("from", from), ("to", to), ("version", version)];
    for (name, value) in first.into_iter().chain(rest) {
        if let Some(value) = value {
            write_attr(out, name.as_bytes(), value);
        }
    }
}

/// Writes the `<open/>` element a server answers an RFC 7395 (WebSocket)
/// client with, the whole payload of one message:
/// `<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' xml:lang='en' id='…'
/// from='…' to='…' version='1.0'/>` (`from` and `to` only when given).
/// Values are escaped.
pub fn write_open(out: &mut BytesMut, from: Option<&str>, to: Option<&str>, id: &str) {
    out.put_slice(b"<open xmlns='");
    out.put_slice(crate::ns::NS_FRAMING.as_bytes());
    out.put_u8(b'\'');
    write_header_attrs(
        out,
        [("xml:lang", Some("en")), ("id", Some(id))],
        [from, to, Some("1.0")],
    );
    out.put_slice(b"/>");
}

/// Writes a message forwarded as received (see
/// [`StreamReader::peek_message`](super::StreamReader::peek_message)):
/// `<message`, its attributes with `from` set to `from`, sorted by name as
/// [`write_element`] writes them, then the received bytes from the start
/// tag's `>` or `/>` on. `bytes` is the message as received.
pub(crate) fn write_forwarded(out: &mut BytesMut, bytes: &[u8], raw: &RawMessage, from: &str) {
    let mut attrs: SmallVec<[(&[u8], &[u8]); 8]> = SmallVec::new();
    for a in &raw.attrs {
        let (Some(name), Some(value)) = (
            bytes.get(a.name.0..a.name.1),
            bytes.get(a.value.0..a.value.1),
        ) else {
            continue;
        };
        if name != b"from" {
            attrs.push((name, value));
        }
    }
    attrs.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let at = attrs.partition_point(|a| a.0 < &b"from"[..]);
    out.reserve(bytes.len().saturating_add(from.len()).saturating_add(16));
    out.put_slice(b"<message");
    let write = |out: &mut BytesMut, (name, value): (&[u8], &[u8])| {
        out.put_u8(b' ');
        out.put_slice(name);
        out.put_slice(b"='");
        out.put_slice(value);
        out.put_u8(b'\'');
    };
    for &a in attrs.get(..at).unwrap_or_default() {
        write(out, a);
    }
    write_attr(out, b"from", from);
    for &a in attrs.get(at..).unwrap_or_default() {
        write(out, a);
    }
    out.put_slice(bytes.get(raw.rest..raw.len).unwrap_or_default());
}

/// A message carbon (XEP-0280): `<message from='…' to='…' type='…'>` (the
/// attributes in the order [`write_element`] sorts them, `type` only when
/// given) followed by `tail`, the serialised children and `</message>`
/// shared by every copy.
pub(crate) fn carbon_copy(from: &str, to: &str, ty: Option<&str>, tail: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(
        tail.len()
            .saturating_add(from.len())
            .saturating_add(to.len())
            .saturating_add(48),
    );
    out.put_slice(b"<message");
    write_attr(&mut out, b"from", from);
    write_attr(&mut out, b"to", to);
    if let Some(ty) = ty {
        write_attr(&mut out, b"type", ty);
    }
    out.put_u8(b'>');
    out.put_slice(tail);
    out.freeze()
}

/// Writes `<iq from='…' id='…' type='result'>` (`from` and `id` only when
/// given): the start tag [`write_element`] writes for such an iq, with the
/// attributes in the same (name) order. Values are escaped.
pub(crate) fn write_iq_result_open(out: &mut BytesMut, from: Option<&str>, id: Option<&str>) {
    out.put_slice(b"<iq");
    if let Some(from) = from {
        write_attr(out, b"from", from);
    }
    if let Some(id) = id {
        write_attr(out, b"id", id);
    }
    out.put_slice(b" type='result'>");
}

/// Writes `text` as element content, escaped as [`write_element`] escapes
/// a text node.
pub(crate) fn write_text(out: &mut BytesMut, text: &str) {
    escape(text.as_bytes(), false, out);
}

/// The part of a message carbon after its start tag: `<sent>` or
/// `<received>` (`kind`) with `<forwarded>` around `inner`, a message as
/// [`write_element`] writes it at the top level, given its
/// `xmlns='jabber:client'` there, then `</message>`. `None` if `inner` is
/// not such a message.
pub(crate) fn carbon_tail(kind: &str, inner: &[u8]) -> Option<Bytes> {
    let rest = inner
        .strip_prefix(b"<message")
        .filter(|r| !r.starts_with(b" xmlns="))?;
    let mut out = BytesMut::with_capacity(inner.len().saturating_add(128));
    out.put_u8(b'<');
    out.put_slice(kind.as_bytes());
    out.put_slice(b" xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>");
    out.put_slice(b"<message xmlns='jabber:client'");
    out.put_slice(rest);
    out.put_slice(b"</forwarded></");
    out.put_slice(kind.as_bytes());
    out.put_slice(b"></message>");
    Some(out.freeze())
}

/// ` name='escaped value'`
fn write_attr(out: &mut BytesMut, name: &[u8], value: &str) {
    out.put_u8(b' ');
    out.put_slice(name);
    out.put_slice(b"='");
    escape(value.as_bytes(), true, out);
    out.put_u8(b'\'');
}

/// Write the start tag of `el`; return a frame if it has children to write
/// (otherwise the tag was closed with `/>`).
fn open_tag<'a>(
    el: &'a Element,
    defaults: &mut SmallVec<[String; 2]>,
    out: &mut BytesMut,
) -> Option<Frame<'a>> {
    let current = defaults.last().map_or(NS_CLIENT, String::as_str);
    let mut pushed = false;
    // `current` is never NS_STREAMS or XML_NS: those get prefixes instead.
    let in_current = el.has_ns(current);
    let prefix = if in_current {
        Prefix::None
    } else if el.has_ns(NS_STREAMS) {
        Prefix::Stream
    } else if el.has_ns(XML_NS) {
        Prefix::Xml
    } else {
        Prefix::None
    };
    out.put_u8(b'<');
    out.put_slice(prefix.as_bytes());
    out.put_slice(el.name().as_bytes());
    if matches!(prefix, Prefix::None) && !in_current {
        let ns = el.ns();
        out.put_slice(b" xmlns='");
        escape(ns.as_bytes(), true, out);
        out.put_u8(b'\'');
        defaults.push(ns);
        pushed = true;
    }
    write_attrs(el, out);
    if el.nodes().len() == 0 {
        out.put_slice(b"/>");
        if pushed {
            defaults.pop();
        }
        return None;
    }
    out.put_u8(b'>');
    Some(Frame {
        el,
        nodes: el.nodes(),
        prefix,
        pushed,
    })
}

fn write_attrs(el: &Element, out: &mut BytesMut) {
    // Namespaces that need a prefix declared on this element.
    let mut declared: SmallVec<[&Namespace<'static>; 2]> = SmallVec::new();
    for ((ns, name), value) in el.attrs().iter() {
        out.put_u8(b' ');
        let ns_str = ns.as_str();
        if ns_str == XML_NS {
            out.put_slice(b"xml:");
        } else if ns_str == NS_STREAMS {
            out.put_slice(b"stream:");
        } else if !ns_str.is_empty() {
            let index = match declared.iter().position(|d| *d == ns) {
                Some(index) => index,
                None => {
                    declared.push(ns);
                    let index = declared.len().saturating_sub(1);
                    put_prefix(out, b"xmlns:", index);
                    out.put_slice(b"='");
                    escape(ns_str.as_bytes(), true, out);
                    out.put_slice(b"' ");
                    index
                }
            };
            put_prefix(out, b"", index);
            out.put_u8(b':');
        }
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b"='");
        escape(value.as_bytes(), true, out);
        out.put_u8(b'\'');
    }
}

/// `{before}ns{index}`
fn put_prefix(out: &mut BytesMut, before: &[u8], index: usize) {
    out.put_slice(before);
    out.put_slice(b"ns");
    let mut digits = [0u8; 20];
    let mut n = index;
    let mut pos = digits.len();
    loop {
        pos = pos.saturating_sub(1);
        if let Some(d) = digits.get_mut(pos) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || pos == 0 {
            break;
        }
    }
    out.put_slice(digits.get(pos..).unwrap_or_default());
}

/// Bytes that need a look in text: markup characters, C0 controls other
/// than tab and LF, and 0xEF (the lead byte of U+FFFE and U+FFFF).
/// Attribute values also need a look at `'`, tab and LF.
const fn special_table(attr: bool) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = attr || (i != b'\t' as usize && i != b'\n' as usize);
        i += 1;
    }
    t[b'&' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'\'' as usize] = attr;
    t[0xEF] = true;
    t
}
static TEXT_SPECIAL: [bool; 256] = special_table(false);
static ATTR_SPECIAL: [bool; 256] = special_table(true);

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether some byte of `x` may need a look (never a false negative).
#[inline(always)]
fn may_be_special(x: u64, attr: bool) -> bool {
    let zero = |v: u64| v.wrapping_sub(ONES) & !v;
    let eq = |b: u8| zero(x ^ ONES.wrapping_mul(u64::from(b)));
    let mut hits =
        (x.wrapping_sub(ONES.wrapping_mul(0x20)) & !x) | eq(b'&') | eq(b'<') | eq(b'>') | eq(0xEF);
    if attr {
        hits |= eq(b'\'');
    }
    hits & HIGHS != 0
}

/// Length of the prefix of `raw` that can be copied as it is.
#[inline]
pub(crate) fn plain_run(raw: &[u8], attr: bool) -> usize {
    let table = if attr { &ATTR_SPECIAL } else { &TEXT_SPECIAL };
    let mut i = 0usize;
    let mut words = raw.chunks_exact(8);
    for chunk in &mut words {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        if may_be_special(u64::from_le_bytes(word), attr)
            && let Some(p) = chunk.iter().position(|&b| table[usize::from(b)])
        {
            return i.saturating_add(p);
        }
        i = i.saturating_add(8);
    }
    let tail = words.remainder();
    i.saturating_add(
        tail.iter()
            .position(|&b| table[usize::from(b)])
            .unwrap_or(tail.len()),
    )
}

const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// Escape `raw` (valid UTF-8) for text content or, with `attr`, for a
/// single-quoted attribute value.
fn escape(raw: &[u8], attr: bool, out: &mut BytesMut) {
    let mut rest = raw;
    loop {
        let n = plain_run(rest, attr);
        let (run, tail) = rest.split_at(n.min(rest.len()));
        if !run.is_empty() {
            out.put_slice(run);
        }
        let Some((&b, after)) = tail.split_first() else {
            return;
        };
        rest = after;
        let replacement: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'\'' => b"&apos;",
            b'\t' => b"&#9;",
            b'\n' => b"&#10;",
            b'\r' => b"&#13;",
            0xEF => match after {
                [0xBF, 0xBE | 0xBF, tail @ ..] => {
                    rest = tail;
                    REPLACEMENT
                }
                _ => &[0xEF],
            },
            _ => REPLACEMENT,
        };
        out.put_slice(replacement);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::reader::tests::{HEADER, arb_element};
    use crate::stream::{StreamEvent, StreamReader};
    use minidom::rxml::NcName;
    use proptest::prelude::*;

    fn name(s: &str) -> NcName {
        NcName::try_from(s).expect("valid name")
    }

    fn el(name: &str, ns: &str) -> Element {
        Element::bare(name, ns)
    }

    fn written(el: &Element) -> String {
        let mut out = BytesMut::new();
        write_element(el, &mut out);
        String::from_utf8(out.to_vec()).expect("UTF-8")
    }

    fn read_back(bytes: &[u8]) -> Element {
        let mut reader = StreamReader::default();
        reader.push(HEADER.as_bytes());
        reader.push(bytes);
        assert!(matches!(
            reader.next_event(),
            Ok(Some(StreamEvent::Open(_)))
        ));
        match reader.next_event() {
            Ok(Some(StreamEvent::Stanza(el))) => el,
            other => panic!(
                "unexpected {other:?} for {}",
                String::from_utf8_lossy(bytes)
            ),
        }
    }

    #[test]
    fn message_in_default_namespace() {
        let msg = Element::builder("message", NS_CLIENT)
            .attr(name("to"), "romeo@example.net")
            .attr(name("type"), "chat")
            .attr_ns(Namespace::xml().clone(), name("lang"), "en")
            .append(Element::builder("body", NS_CLIENT).append("x & y").build())
            .append(el("x", "urn:other"))
            .build();
        assert_eq!(
            written(&msg),
            "<message to='romeo@example.net' type='chat' xml:lang='en'><body>x &amp; y</body>\
             <x xmlns='urn:other'/></message>"
        );
        assert_eq!(element_bytes(&msg), written(&msg).as_bytes());
        assert_eq!(written(&el("presence", NS_CLIENT)), "<presence/>");
    }

    #[test]
    fn stream_namespace_uses_prefix() {
        let features = Element::builder("features", NS_STREAMS)
            .append(
                Element::builder("starttls", "urn:ietf:params:xml:ns:xmpp-tls")
                    .append(el("required", "urn:ietf:params:xml:ns:xmpp-tls"))
                    .build(),
            )
            .append(el("bind", "urn:ietf:params:xml:ns:xmpp-bind"))
            .build();
        assert_eq!(
            written(&features),
            "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>\
             <bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
        );
        let streams_ns = "urn:ietf:params:xml:ns:xmpp-streams";
        let error = Element::builder("error", NS_STREAMS)
            .append(el("not-authorized", streams_ns))
            .append(
                Element::builder("text", streams_ns)
                    .attr_ns(Namespace::xml().clone(), name("lang"), "en")
                    .append("bye")
                    .build(),
            )
            .build();
        assert_eq!(
            written(&error),
            "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>bye</text></stream:error>"
        );
        // A jabber:client child of a stream:* element needs no declaration.
        let wrapped = Element::builder("features", NS_STREAMS)
            .append(el("iq", NS_CLIENT))
            .build();
        assert_eq!(
            written(&wrapped),
            "<stream:features><iq/></stream:features>"
        );
    }

    #[test]
    fn namespace_changes() {
        let nested = Element::builder("a", "urn:x")
            .append(
                Element::builder("b", "urn:x")
                    .append(el("c", NS_CLIENT))
                    .build(),
            )
            .append(el("d", ""))
            .append(el("e", "urn:x"))
            .build();
        assert_eq!(
            written(&nested),
            "<a xmlns='urn:x'><b><c xmlns='jabber:client'/></b><d xmlns=''/><e/></a>"
        );
        assert_eq!(written(&el("a", "")), "<a xmlns=''/>");
        assert_eq!(written(&el("a", "urn:it's")), "<a xmlns='urn:it&apos;s'/>");
    }

    #[test]
    fn prefixed_attributes() {
        let mut x = el("x", "urn:a");
        x.attrs_mut()
            .insert(Namespace::from("urn:p".to_owned()), name("b"), "2".into());
        x.attrs_mut()
            .insert(Namespace::from("urn:p".to_owned()), name("a"), "1".into());
        x.attrs_mut()
            .insert(Namespace::from("urn:q".to_owned()), name("a"), "3".into());
        x.attrs_mut()
            .insert(Namespace::from("urn:a".to_owned()), name("a"), "4".into());
        x.attrs_mut().insert(
            Namespace::from(NS_STREAMS.to_owned()),
            name("s"),
            "5".into(),
        );
        x.attrs_mut()
            .insert(Namespace::none().clone(), name("a"), "0".into());
        let out = written(&x);
        assert_eq!(
            out,
            "<x xmlns='urn:a' a='0' stream:s='5' xmlns:ns0='urn:a' ns0:a='4' xmlns:ns1='urn:p' \
             ns1:a='1' ns1:b='2' xmlns:ns2='urn:q' ns2:a='3'/>"
        );
        assert_eq!(read_back(out.as_bytes()), x);
    }

    #[test]
    fn escaping() {
        let mut e = el("body", NS_CLIENT);
        e.attrs_mut().insert(
            Namespace::none().clone(),
            name("v"),
            "'<&>\"\t\n\r ok".into(),
        );
        e.append_text("a<b>&'\"\r\n\t]]>c");
        let out = written(&e);
        assert_eq!(
            out,
            "<body v='&apos;&lt;&amp;&gt;\"&#9;&#10;&#13; ok'>a&lt;b&gt;&amp;'\"&#13;\n\t]]&gt;c</body>"
        );
        assert_eq!(read_back(out.as_bytes()), e);
    }

    #[test]
    fn characters_xml_cannot_carry_are_replaced() {
        let mut e = el("body", NS_CLIENT);
        e.attrs_mut().insert(
            Namespace::none().clone(),
            name("v"),
            "\u{1}x\u{FFFF}".into(),
        );
        e.append_text("\u{0}a\u{FFFE}b\u{1F}\u{FFFD}\u{F000}é😀\u{7F}");
        let out = written(&e);
        assert_eq!(
            out,
            "<body v='\u{FFFD}x\u{FFFD}'>\u{FFFD}a\u{FFFD}b\u{FFFD}\u{FFFD}\u{F000}é😀\u{7F}</body>"
        );
        let back = read_back(out.as_bytes());
        assert_eq!(
            back.text(),
            "\u{FFFD}a\u{FFFD}b\u{FFFD}\u{FFFD}\u{F000}é😀\u{7F}"
        );
    }

    #[test]
    fn xml_namespace_element() {
        let e = Element::builder("a", NS_CLIENT)
            .append(el("x", XML_NS))
            .build();
        let out = written(&e);
        assert_eq!(out, "<a><xml:x/></a>");
        assert_eq!(read_back(out.as_bytes()), e);
    }

    #[test]
    fn deep_nesting_is_iterative() {
        let mut e = el("x", "urn:deep");
        for _ in 0..10_000 {
            e = Element::builder("x", "urn:deep").append(e).build();
        }
        let out = written(&e);
        assert!(out.starts_with("<x xmlns='urn:deep'><x><x>"));
        assert!(out.ends_with("</x></x></x>"));
        // Drop iteratively as well: minidom's Drop recurses.
        let mut node = e;
        while let Some(child) = node.take_nodes().into_iter().find_map(|n| n.into_element()) {
            node = child;
        }
    }

    #[test]
    fn stream_header() {
        let mut out = BytesMut::new();
        write_stream_header(
            &mut out,
            Some("example.com"),
            Some("juliet@example.com"),
            "abc",
            Some("1.0"),
            "en",
        );
        assert_eq!(
            &out[..],
            b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
              xmlns:stream='http://etherx.jabber.org/streams' xml:lang='en' id='abc' \
              from='example.com' to='juliet@example.com' version='1.0'>"
        );
        let mut out = BytesMut::new();
        write_stream_header(&mut out, None, None, "x'<y", None, "e&n");
        assert_eq!(
            &out[..],
            b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
              xmlns:stream='http://etherx.jabber.org/streams' xml:lang='e&amp;n' id='x&apos;&lt;y'>"
        );
        // It parses back through the reader.
        let mut reader = StreamReader::default();
        let mut out = BytesMut::new();
        write_stream_header(
            &mut out,
            Some("example.com"),
            None,
            "i'd",
            Some("1.0"),
            "en",
        );
        out.extend_from_slice(STREAM_CLOSE);
        reader.push(&out);
        match reader.next_event() {
            Ok(Some(StreamEvent::Open(h))) => {
                assert!(h.name_ok);
                assert_eq!(h.default_ns.as_deref(), Some(NS_CLIENT));
                assert_eq!(h.id.as_deref(), Some("i'd"));
                assert_eq!(h.from.as_deref(), Some("example.com"));
                assert_eq!(h.to, None);
                assert_eq!(h.lang.as_deref(), Some("en"));
                assert_eq!(h.version.as_deref(), Some("1.0"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(reader.next_event(), Ok(Some(StreamEvent::Close)));
    }

    /// Escaping one character at a time, as the specification reads.
    fn escape_slowly(raw: &str, attr: bool) -> String {
        let mut out = String::new();
        for c in raw.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '\'' if attr => out.push_str("&apos;"),
                '\t' if attr => out.push_str("&#9;"),
                '\n' if attr => out.push_str("&#10;"),
                '\r' => out.push_str("&#13;"),
                '\t' | '\n' => out.push(c),
                '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
                c => out.push(c),
            }
        }
        out
    }

    proptest! {
        #[test]
        fn escaping_matches_the_specification(
            raw in "[a-z'\"<>&\t\n\r\u{0}\u{1}\u{7f}\u{e9}\u{fffd}\u{fffe}\u{ffff}\u{ef00}\u{1F600} ]{0,40}",
            attr in any::<bool>(),
        ) {
            let mut out = BytesMut::new();
            escape(raw.as_bytes(), attr, &mut out);
            prop_assert_eq!(String::from_utf8(out.to_vec()).unwrap(), escape_slowly(&raw, attr));
        }

        #[test]
        fn writer_output_reads_back_equal(el in arb_element(4)) {
            let bytes = element_bytes(&el);
            let back = read_back(&bytes);
            prop_assert_eq!(back, el);
        }
    }
}
