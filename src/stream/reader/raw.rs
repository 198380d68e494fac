//! Byte forwarding: a complete top-level `<message>` whose bytes are
//! already in the writer's canonical form, reported as byte ranges instead
//! of an element.
//!
//! [`StreamReader::peek_message`] looks at the buffered bytes without
//! changing the reader. It accepts a strict subset of what the tokenizer
//! accepts, chosen so that the writer, given the element the tokenizer
//! would build, writes the content (everything after the start tag's
//! attributes) byte for byte as received:
//!
//! * the stream's default namespace is `jabber:client`, the element is
//!   `<message` at the very start of the buffer (no keepalive before it),
//!   complete, within every [`XmlLimits`], and valid UTF-8;
//! * no prefixes anywhere (no `:` in any name), no CDATA, comments,
//!   processing instructions, character references or CRs;
//! * the message's own attributes: names without `:` other than `xmlns`,
//!   unique, values in canonical form as below; any quotes and white space
//!   (the attributes are written again, sorted, as the writer does);
//! * inside, the canonical form only: `<name` then ` attr='value'` with
//!   single spaces and quotes, an optional `xmlns` first (only when it
//!   changes the default namespace, never to `''` or a namespace the writer
//!   writes with a prefix), the other attributes in strictly increasing
//!   byte order, then `>` or `/>` (never `<x></x>`); end tags `</name>`;
//!   text and values that use only `&amp;`, `&lt;`, `&gt;` (and `&apos;` in
//!   values) and otherwise none of `& < >` (nor `'` in values), no control
//!   characters but tab and LF in text, and neither U+FFFE nor U+FFFF.
//!
//! Anything else is left to [`next_event`](StreamReader::next_event),
//! which builds the element as usual.
//!
//! [`StreamReader::peek_sm_ack`] does the same for the most frequent
//! stream-management nonza, `<a xmlns='urn:xmpp:sm:3' h='N'/>` (XEP-0198):
//! exactly `<a`, the two attributes `xmlns` (that namespace) and `h` (1 to
//! 10 ASCII digits) in either order, each after one space and quoted with
//! `'` or `"`, an optional space, `/>`. Its value is returned instead of an
//! element; anything else (other spacing, prefixes, children) is read as
//! usual.

use smallvec::SmallVec;

use super::{Doc, Lex, Phase, StreamReader, TOKEN_LIMIT, lookup};
use crate::stream::writer::plain_run;
use crate::stream::{NS_CLIENT, NS_STREAMS};

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// `name='value'` (or with `"`) at `i`: the name, the value and the index
/// after the closing quote. No references, no `<` in the value.
fn quoted_attr(s: &[u8], i: usize) -> Option<(&[u8], &[u8], usize)> {
    let eq = i + s.get(i..)?.iter().position(|&b| b == b'=')?;
    let name = s.get(i..eq)?;
    let quote = *s.get(eq + 1)?;
    if quote != b'\'' && quote != b'"' {
        return None;
    }
    let start = eq + 2;
    let end = start + s.get(start..)?.iter().position(|&b| b == quote)?;
    let value = s.get(start..end)?;
    if value.iter().any(|&b| b == b'&' || b == b'<') {
        return None;
    }
    Some((name, value, end + 1))
}

/// One attribute of the top-level element, as byte ranges of the element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawAttr {
    /// The name.
    pub(crate) name: (usize, usize),
    /// The value between the quotes (needs no escaping).
    pub(crate) value: (usize, usize),
}

/// A complete top-level `<message>` in canonical form (see the module
/// documentation), as ranges of [`StreamReader::raw_bytes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawMessage {
    /// Length of the element in bytes, from `<` to the last `>`.
    pub(crate) len: usize,
    /// Where the start tag's `>` or `/>` is: from there on the bytes are
    /// written as they are.
    pub(crate) rest: usize,
    /// The attributes in the order received.
    pub(crate) attrs: SmallVec<[RawAttr; 6]>,
}

impl RawMessage {
    /// The value of attribute `name`, if present.
    pub(crate) fn attr<'a>(&self, bytes: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
        self.attrs
            .iter()
            .find(|a| bytes.get(a.name.0..a.name.1) == Some(name))
            .and_then(|a| bytes.get(a.value.0..a.value.1))
    }
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n')
}

/// Length of the ASCII name at `s[i..]` (0 when none).
fn name_at(s: &[u8], i: usize) -> usize {
    match s.get(i) {
        Some(&b) if is_name_start(b) => {}
        _ => return 0,
    }
    s.get(i..)
        .map_or(0, |t| t.iter().take_while(|&&b| is_name_byte(b)).count())
}

/// The length of a canonical reference at `s[i..]` (which starts with `&`).
fn reference(s: &[u8], i: usize, attr: bool) -> Option<usize> {
    let t = s.get(i..)?;
    for r in [&b"&amp;"[..], b"&lt;", b"&gt;"] {
        if t.starts_with(r) {
            return Some(r.len());
        }
    }
    if attr && t.starts_with(b"&apos;") {
        return Some(6);
    }
    None
}

/// Scans a canonical run of text (or, with `attr`, of a single-quoted
/// attribute value; without references with `refs` false) from `s[i..]` up
/// to `stop`; returns the offset of `stop`. The writer copies what
/// [`plain_run`] passes; of the bytes it stops at, the canonical
/// references and a `0xEF` that does not start U+FFFE or U+FFFF are
/// written as they are too.
///
/// With `stop` `None`, the run goes to the end of `s`.
fn canonical_run(
    s: &[u8],
    mut i: usize,
    stop: Option<u8>,
    attr: bool,
    refs: bool,
) -> Option<usize> {
    loop {
        i = i.checked_add(plain_run(s.get(i..)?, attr))?;
        let Some(&b) = s.get(i) else {
            return if stop.is_none() { Some(i) } else { None };
        };
        match b {
            b if Some(b) == stop => return Some(i),
            b'&' if refs => i = i.checked_add(reference(s, i, attr)?)?,
            0xEF => {
                let next = s.get(i.checked_add(1)?..i.checked_add(3)?)?;
                if next == [0xBF, 0xBE] || next == [0xBF, 0xBF] {
                    return None;
                }
                i = i.checked_add(1)?;
            }
            _ => return None,
        }
    }
}

impl StreamReader {
    /// The bytes buffered and not yet consumed.
    pub(crate) fn raw_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// A complete canonical `<message>` at the start of the buffer, if
    /// there is one (see the module documentation). The reader is not
    /// changed: [`consume_raw`](Self::consume_raw) takes the bytes, or
    /// [`next_event`](Self::next_event) reads them as usual.
    pub(crate) fn peek_message(&self) -> Option<RawMessage> {
        if !self.between_stanzas()
            || !self.buf.starts_with(b"<message")
            || lookup(&self.bindings, &self.ns_arena, None) != Some(NS_CLIENT)
        {
            return None;
        }
        let limits = self.limits;
        let max = limits.max_stanza_bytes.min(self.buf.len());
        let s = self.buf.get(..max)?;
        // The start tag of the message.
        let mut i = 8usize;
        let mut attrs: SmallVec<[RawAttr; 6]> = SmallVec::new();
        let rest;
        let mut self_closing = false;
        loop {
            let blank = s.get(i..)?.iter().take_while(|&&b| is_space(b)).count();
            i = i.checked_add(blank)?;
            match *s.get(i)? {
                b'>' => {
                    rest = i;
                    i = i.checked_add(1)?;
                    break;
                }
                b'/' => {
                    if s.get(i.checked_add(1)?) != Some(&b'>') {
                        return None;
                    }
                    rest = i;
                    i = i.checked_add(2)?;
                    self_closing = true;
                    break;
                }
                _ if blank == 0 => return None,
                _ => {}
            }
            let n = name_at(s, i);
            if n == 0 || n > TOKEN_LIMIT {
                return None;
            }
            let name = (i, i.checked_add(n)?);
            let name_bytes = s.get(name.0..name.1)?;
            if name_bytes == b"xmlns" {
                return None;
            }
            if attrs
                .iter()
                .any(|a| s.get(a.name.0..a.name.1) == Some(name_bytes))
            {
                return None;
            }
            i = name.1;
            i = i.checked_add(s.get(i..)?.iter().take_while(|&&b| is_space(b)).count())?;
            if *s.get(i)? != b'=' {
                return None;
            }
            i = i.checked_add(1)?;
            i = i.checked_add(s.get(i..)?.iter().take_while(|&&b| is_space(b)).count())?;
            let quote = *s.get(i)?;
            if quote != b'\'' && quote != b'"' {
                return None;
            }
            let start = i.checked_add(1)?;
            let len = memchr::memchr(quote, s.get(start..)?)?;
            let end = start.checked_add(len)?;
            canonical_run(s.get(..end)?, start, None, true, true)?;
            if end.saturating_sub(start) > TOKEN_LIMIT {
                return None;
            }
            attrs.push(RawAttr {
                name,
                value: (start, end),
            });
            if attrs.len() > limits.max_attributes {
                return None;
            }
            i = end.checked_add(1)?;
        }
        if self_closing {
            std::str::from_utf8(s.get(..i)?).ok()?;
            return Some(RawMessage {
                len: i,
                rest,
                attrs,
            });
        }
        // The content. Each open element: name range, whether it changed
        // the default namespace, raw text bytes so far.
        struct Open {
            name: (usize, usize),
            pushed: bool,
            text: usize,
            empty: bool,
        }
        let mut stack: SmallVec<[Open; 8]> = SmallVec::new();
        stack.push(Open {
            name: (1, 8),
            pushed: false,
            text: 0,
            empty: true,
        });
        // Default namespaces declared inside, as ranges; empty: jabber:client.
        let mut defaults: SmallVec<[(usize, usize); 2]> = SmallVec::new();
        loop {
            let start = i;
            i = canonical_run(s, i, Some(b'<'), false, true)?;
            if i > start {
                let top = stack.last_mut()?;
                top.empty = false;
                top.text = top.text.saturating_add(i.saturating_sub(start));
                if top.text > limits.max_text_bytes {
                    return None;
                }
            }
            // At `<`.
            i = i.checked_add(1)?;
            if *s.get(i)? == b'/' {
                i = i.checked_add(1)?;
                let top = stack.pop()?;
                let n = top.name.1.saturating_sub(top.name.0);
                if top.empty || s.get(i..i.checked_add(n)?)? != s.get(top.name.0..top.name.1)? {
                    return None;
                }
                i = i.checked_add(n)?;
                if *s.get(i)? != b'>' {
                    return None;
                }
                i = i.checked_add(1)?;
                if top.pushed {
                    defaults.pop();
                }
                if stack.is_empty() {
                    std::str::from_utf8(s.get(..i)?).ok()?;
                    return Some(RawMessage {
                        len: i,
                        rest,
                        attrs,
                    });
                }
                continue;
            }
            // A child's start tag.
            if let Some(parent) = stack.last_mut() {
                parent.empty = false;
            }
            if stack.len() >= limits.max_depth {
                return None;
            }
            let n = name_at(s, i);
            if n == 0 || n > TOKEN_LIMIT {
                return None;
            }
            let name = (i, i.checked_add(n)?);
            i = name.1;
            let mut count = 0usize;
            let mut pushed = false;
            let mut previous: Option<(usize, usize)> = None;
            let closing = loop {
                match *s.get(i)? {
                    b'>' => {
                        i = i.checked_add(1)?;
                        break false;
                    }
                    b'/' => {
                        if s.get(i.checked_add(1)?) != Some(&b'>') {
                            return None;
                        }
                        i = i.checked_add(2)?;
                        break true;
                    }
                    b' ' => {}
                    _ => return None,
                }
                i = i.checked_add(1)?;
                let n = name_at(s, i);
                if n == 0 || n > TOKEN_LIMIT {
                    return None;
                }
                let attr = (i, i.checked_add(n)?);
                i = attr.1;
                if s.get(i..i.checked_add(2)?)? != b"='" {
                    return None;
                }
                let vstart = i.checked_add(2)?;
                let vend = canonical_run(s, vstart, Some(b'\''), true, true)?;
                if vend.saturating_sub(vstart) > TOKEN_LIMIT {
                    return None;
                }
                i = vend.checked_add(1)?;
                count = count.saturating_add(1);
                if count > limits.max_attributes {
                    return None;
                }
                let attr_name = s.get(attr.0..attr.1)?;
                if attr_name == b"xmlns" {
                    // Only first, and only as the writer would write it.
                    if count != 1 {
                        return None;
                    }
                    let ns = s.get(vstart..vend)?;
                    let current = match defaults.last() {
                        Some(&(a, b)) => s.get(a..b)?,
                        None => NS_CLIENT.as_bytes(),
                    };
                    if ns.is_empty()
                        || ns.contains(&b'&')
                        || ns.contains(&0xEF)
                        || ns == current
                        || ns == NS_STREAMS.as_bytes()
                        || ns == XML_NS.as_bytes()
                    {
                        return None;
                    }
                    defaults.push((vstart, vend));
                    pushed = true;
                    continue;
                }
                if let Some((a, b)) = previous
                    && s.get(a..b)? >= attr_name
                {
                    return None;
                }
                previous = Some(attr);
            };
            if closing {
                if pushed {
                    defaults.pop();
                }
            } else {
                stack.push(Open {
                    name,
                    pushed,
                    text: 0,
                    empty: true,
                });
            }
        }
    }

    /// Whether the reader is between two top-level elements of an open
    /// stream, with nothing of the next one read yet.
    fn between_stanzas(&self) -> bool {
        self.error.is_none()
            && self.phase == Phase::Open
            && self.doc == Doc::Content
            && self.lex == Lex::Text
            && !self.counting
            && !self.fresh
            && !self.root_close_pending
            && self.frames.is_empty()
            && self.seg.is_empty()
    }

    /// A complete canonical `<a xmlns='urn:xmpp:sm:3' h='N'/>` at the start
    /// of the buffer (see the module documentation): its `h` and length in
    /// bytes, for [`consume_raw`](Self::consume_raw). The reader is not
    /// changed.
    pub(crate) fn peek_sm_ack(&self) -> Option<(u32, usize)> {
        if !self.buf.starts_with(b"<a ") || !self.between_stanzas() {
            return None;
        }
        let s = self.buf.get(..self.buf.len().min(64))?;
        let mut i = 2usize;
        let (mut ns, mut h) = (false, None);
        for _ in 0..2 {
            if s.get(i) != Some(&b' ') {
                return None;
            }
            i += 1;
            let (name, value, next) = quoted_attr(s, i)?;
            match name {
                b"xmlns" if !ns && value == b"urn:xmpp:sm:3" => ns = true,
                b"h" if h.is_none()
                    && (1..=10).contains(&value.len())
                    && value.iter().all(u8::is_ascii_digit) =>
                {
                    h = std::str::from_utf8(value).ok()?.parse::<u32>().ok();
                    h?;
                }
                _ => return None,
            }
            i = next;
        }
        if s.get(i) == Some(&b' ') {
            i += 1;
        }
        if s.get(i..i + 2)? != b"/>" || !ns {
            return None;
        }
        Some((h?, i + 2))
    }

    /// Consumes the `len` bytes of a message reported by
    /// [`peek_message`](Self::peek_message), as reading it would.
    pub(crate) fn consume_raw(&mut self, len: usize) {
        use bytes::Buf;
        let len = len.min(self.buf.len());
        self.buf.advance(len);
        self.base = self.base.wrapping_add(super::as_u64(len));
        self.active = self.limits;
        self.finish_stanza();
        if self.buf.is_empty() {
            self.buf = bytes::BytesMut::new();
            self.release_idle(super::IDLE_SLACK);
        }
    }
}
