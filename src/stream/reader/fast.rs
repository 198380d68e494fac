//! The fast path: a top-level element that is complete in the buffer is
//! parsed in one pass over the bytes.
//!
//! It handles only well-formed input within the limits and without CDATA
//! sections, CRs or markup other than elements: on anything else, errors
//! included, it gives up without a trace and the incremental tokenizer reads
//! the element from its `<`. So it never decides an error, and whatever it
//! accepts, the tokenizer would have accepted with the same result.

use minidom::rxml::xml_map::Entry;

use super::*;

impl StreamReader {
    /// Parse the top-level element whose `<` is at `input[lt]`. Returns the
    /// element and the offset right after it, or `None` with the reader as
    /// before.
    pub(super) fn fast_stanza(&mut self, input: &[u8], lt: usize) -> Option<(Element, usize)> {
        let end = lt
            .saturating_add(self.limits.max_stanza_bytes)
            .min(input.len());
        let marks = (
            self.bindings.len(),
            self.ns_arena.len(),
            self.names.len(),
            self.name_ends.len(),
        );
        let result = self.fast_element(input.get(..end)?, lt.saturating_add(1));
        if result.is_none() {
            self.frames.clear();
            self.bindings.truncate(marks.0);
            self.ns_arena.truncate(marks.1);
            self.names.truncate(marks.2);
            self.name_ends.truncate(marks.3);
            self.attrs = AttrMap::new();
            self.head_attrs.clear();
            self.attr_names.clear();
            self.att.clear();
        }
        result
    }

    /// The element whose name starts at `s[i]`, with its descendants.
    fn fast_element(&mut self, s: &[u8], mut i: usize) -> Option<(Element, usize)> {
        let limits = self.limits;
        'element: loop {
            // The head: `<name attr='value' …>` or `…/>`.
            let start = i;
            let (n, colon) = xml::name_run(s.get(i..)?);
            i = i.saturating_add(n);
            let name = s.get(start..i)?;
            if n > TOKEN_LIMIT || self.frames.len() >= limits.max_depth {
                return None;
            }
            let colon = colon?;
            let mark = Mark {
                bindings: self.bindings.len(),
                arena: self.ns_arena.len(),
            };
            self.names.extend_from_slice(name);
            self.name_ends.push(self.names.len());
            self.attr_names.clear();
            let mut count = 0usize;
            let self_closing = loop {
                let blank = xml::run_while(s.get(i..)?, SPACE);
                i = i.saturating_add(blank);
                match *s.get(i)? {
                    b'>' => {
                        i = i.saturating_add(1);
                        break false;
                    }
                    b'/' if s.get(i.saturating_add(1)) == Some(&b'>') => {
                        i = i.saturating_add(2);
                        break true;
                    }
                    b if blank > 0 && xml::is(b, NAME) => {
                        count = count.saturating_add(1);
                        if count > limits.max_attributes {
                            return None;
                        }
                        i = self.fast_attribute(s, i, mark)?;
                    }
                    _ => return None,
                }
            };
            let (prefix, local) = parts(top(&self.names, &self.name_ends), colon);
            let ns = lookup(&self.bindings, &self.ns_arena, prefix)?;
            let mut el = element(local, ns).ok()?;
            if !self.attrs.is_empty() {
                *el.attrs_mut() = std::mem::replace(&mut self.attrs, AttrMap::new());
            }
            if !self.head_attrs.is_empty() {
                self.fast_prefixed(el.attrs_mut())?;
            }
            self.frames.push(Frame {
                el,
                text: String::new(),
                text_bytes: 0,
                mark,
            });
            if self_closing && let Some(done) = self.fast_close() {
                return Some((done, i));
            }
            // Content: text, references, child elements, the end tag.
            loop {
                let start = i;
                i = i.saturating_add(xml::text_run(s.get(i..)?));
                if i > start {
                    self.fast_text(xml::cdata(s.get(start..i)?)?)?;
                }
                match *s.get(i)? {
                    b'<' => {
                        let next = *s.get(i.saturating_add(1))?;
                        if next == b'/' {
                            let start = i.saturating_add(2);
                            i = start.saturating_add(xml::run_while(s.get(start..)?, NAME));
                            if s.get(start..i)? != top(&self.names, &self.name_ends) {
                                return None;
                            }
                            i = i.saturating_add(xml::run_while(s.get(i..)?, SPACE));
                            if *s.get(i)? != b'>' {
                                return None;
                            }
                            i = i.saturating_add(1);
                            if let Some(done) = self.fast_close() {
                                return Some((done, i));
                            }
                        } else if xml::is(next, NAME) {
                            i = i.saturating_add(1);
                            continue 'element;
                        } else {
                            return None;
                        }
                    }
                    b'&' => {
                        let (c, after) = reference(s, i)?;
                        let mut utf8 = [0u8; 4];
                        self.fast_text(c.encode_utf8(&mut utf8))?;
                        i = after;
                    }
                    b']' if !s.get(i..)?.starts_with(b"]]>") => {
                        self.fast_text("]")?;
                        i = i.saturating_add(1);
                    }
                    // CR, control characters, `]]>`.
                    _ => return None,
                }
            }
        }
    }

    /// The attribute whose name starts at `s[i]`; returns the offset after
    /// its closing quote.
    fn fast_attribute(&mut self, s: &[u8], mut i: usize, mark: Mark) -> Option<usize> {
        let start = i;
        let (n, colon) = xml::name_run(s.get(i..)?);
        i = i.saturating_add(n);
        let name = s.get(start..i)?;
        if n > TOKEN_LIMIT {
            return None;
        }
        let colon = colon?;
        i = i.saturating_add(xml::run_while(s.get(i..)?, SPACE));
        if *s.get(i)? != b'=' {
            return None;
        }
        i = i.saturating_add(1);
        i = i.saturating_add(xml::run_while(s.get(i..)?, SPACE));
        let quote = *s.get(i)?;
        if quote != b'\'' && quote != b'"' {
            return None;
        }
        i = i.saturating_add(1);
        let start = i;
        i = i.saturating_add(xml::value_run(s.get(i..)?, quote));
        if *s.get(i)? == quote {
            if i.saturating_sub(start) > TOKEN_LIMIT {
                return None;
            }
            let value = xml::cdata(s.get(start..i)?)?;
            self.fast_value(name, colon, value, mark)?;
            return Some(i.saturating_add(1));
        }
        // Replace references and normalise white space.
        let mut att = std::mem::take(&mut self.att);
        att.clear();
        att.extend_from_slice(s.get(start..i)?);
        let result = loop {
            match *s.get(i)? {
                b if b == quote => break Some(()),
                b'&' => {
                    let (c, after) = reference(s, i)?;
                    let mut utf8 = [0u8; 4];
                    att.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                    i = after;
                }
                b'\t' | b'\n' => {
                    att.push(b' ');
                    i = i.saturating_add(1);
                }
                // `<`, CR, control characters.
                _ => break None,
            }
            let start = i;
            i = i.saturating_add(xml::value_run(s.get(i..)?, quote));
            att.extend_from_slice(s.get(start..i)?);
        };
        let result = result
            .filter(|()| att.len() <= TOKEN_LIMIT)
            .and_then(|()| xml::cdata(&att))
            .and_then(|value| self.fast_value(name, colon, value, mark));
        self.att = att;
        result?;
        Some(i.saturating_add(1))
    }

    /// Record attribute `name` (a valid qualified name) with `value`.
    fn fast_value(
        &mut self,
        name: &[u8],
        colon: Option<usize>,
        value: &str,
        mark: Mark,
    ) -> Option<()> {
        let bound = match parts(name, colon) {
            (None, b"xmlns") if value != XML_NS => None,
            (Some(b"xmlns"), local)
                if local != b"xmlns"
                    && (local == b"xml") == (value == XML_NS)
                    && !value.is_empty() =>
            {
                Some(local)
            }
            (None | Some(b"xmlns"), b"xmlns") | (Some(b"xmlns"), _) => return None,
            (None, local) => {
                let local = xml::ncname(local)?;
                let old = self
                    .attrs
                    .insert(Namespace::none().clone(), local, value.to_owned());
                return old.is_none().then_some(());
            }
            (Some(prefix), local) => {
                let local = xml::ncname(local)?;
                let at = self.attr_names.len();
                self.attr_names.extend_from_slice(prefix);
                self.head_attrs.push(HeadAttr {
                    prefix: (at, self.attr_names.len()),
                    local,
                    value: value.to_owned(),
                });
                return Some(());
            }
        };
        let arena = &self.ns_arena;
        let declared = self.bindings.get(mark.bindings..)?;
        if declared.iter().any(|b| {
            b.prefix
                .map(|(x, y)| arena.as_bytes().get(x..y).unwrap_or_default())
                == bound
        }) {
            return None;
        }
        let prefix = match bound {
            None => None,
            Some(p) => {
                let at = self.ns_arena.len();
                self.ns_arena.push_str(std::str::from_utf8(p).ok()?);
                Some((at, self.ns_arena.len()))
            }
        };
        let at = self.ns_arena.len();
        self.ns_arena.push_str(value);
        self.bindings.push(Binding {
            prefix,
            ns: (at, self.ns_arena.len()),
        });
        Some(())
    }

    /// Add the prefixed attributes to `attrs`.
    fn fast_prefixed(&mut self, attrs: &mut AttrMap) -> Option<()> {
        for attr in self.head_attrs.drain(..) {
            let prefix = self.attr_names.get(attr.prefix.0..attr.prefix.1)?;
            let ns = if prefix == b"xml" {
                Namespace::xml().clone()
            } else {
                Namespace::from(lookup(&self.bindings, &self.ns_arena, Some(prefix))?.to_owned())
            };
            match attrs.entry(ns, attr.local) {
                Entry::Occupied(_) => return None,
                Entry::Vacant(slot) => {
                    slot.insert(attr.value);
                }
            }
        }
        Some(())
    }

    /// Character data in the innermost open element.
    fn fast_text(&mut self, text: &str) -> Option<()> {
        let frame = self.frames.last_mut()?;
        frame.text_bytes = frame.text_bytes.saturating_add(text.len());
        if frame.text_bytes > self.limits.max_text_bytes {
            return None;
        }
        frame.text.push_str(text);
        Some(())
    }

    /// Close the innermost open element; returns it if it was the
    /// top-level one.
    fn fast_close(&mut self) -> Option<Element> {
        let mut frame = self.frames.pop()?;
        self.bindings.truncate(frame.mark.bindings);
        self.ns_arena.truncate(frame.mark.arena);
        self.name_ends.pop();
        self.names
            .truncate(self.name_ends.last().copied().unwrap_or(0));
        if !frame.text.is_empty() {
            frame.el.append_text_node(frame.text);
        }
        match self.frames.last_mut() {
            Some(parent) => {
                if !parent.text.is_empty() {
                    parent.el.append_text_node(std::mem::take(&mut parent.text));
                }
                parent.el.append_node(Node::Element(frame.el));
                None
            }
            None => Some(frame.el),
        }
    }
}

/// The reference starting with the `&` at `s[i]` and the offset after its
/// `;`, if it is a predefined entity or a character reference to a `Char`.
fn reference(s: &[u8], i: usize) -> Option<(char, usize)> {
    let rest = s.get(i.saturating_add(1)..)?;
    let (body, radix) = match rest {
        [b'#', b'x', body @ ..] => (body, Some(16)),
        [b'#', body @ ..] => (body, Some(10)),
        body => (body, None),
    };
    let mask = match radix {
        Some(16) => HEX,
        Some(_) => DIGIT,
        None => NAME,
    };
    let n = xml::run_while(body, mask);
    if n == 0 || n > REF_LIMIT || body.get(n) != Some(&b';') {
        return None;
    }
    let token = body.get(..n)?;
    let c = match radix {
        Some(radix) => xml::char_reference(token, radix)?,
        None => char::from(xml::predefined_entity(token)?),
    };
    let used = rest.len().saturating_sub(body.len()).saturating_add(n);
    Some((c, i.saturating_add(used).saturating_add(2)))
}
