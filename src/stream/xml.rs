//! Byte classes and validity checks for the restricted XML 1.0 that
//! [`StreamReader`](super::StreamReader) accepts.
//!
//! The tokenizer finds token boundaries with the byte classes below (one
//! table lookup per byte) and validates whole tokens afterwards: UTF-8,
//! the `Name` production of XML 1.0 (fifth edition) and the `Char`
//! production for character data.

use std::sync::OnceLock;

use minidom::rxml::NcName;

/// A byte that ends a run of character data: `<`, `&`, `]`, CR and the C0
/// controls other than tab and LF.
pub(super) const TEXT_STOP: u8 = 1;
/// A byte that ends a run inside a CDATA section: `]`, CR and the C0
/// controls other than tab and LF.
pub(super) const CDATA_STOP: u8 = 2;
/// A byte that ends a run of an attribute value quoted with `'`.
pub(super) const APOS_STOP: u8 = 4;
/// A byte that ends a run of an attribute value quoted with `"`.
pub(super) const QUOT_STOP: u8 = 8;
/// A byte that may be part of a name: ASCII letters, digits, `:`, `.`,
/// `_`, `-` and every byte of a multi-byte UTF-8 sequence.
pub(super) const NAME: u8 = 16;
/// XML white space: space, tab, CR, LF.
pub(super) const SPACE: u8 = 32;
/// An ASCII decimal digit.
pub(super) const DIGIT: u8 = 64;
/// An ASCII hexadecimal digit.
pub(super) const HEX: u8 = 128;

const fn class_of(b: u8) -> u8 {
    let mut c = 0;
    let control = b < 0x20 && b != b'\t' && b != b'\n';
    if control || matches!(b, b'<' | b'&' | b']' | b'\r') {
        c |= TEXT_STOP;
    }
    if control || matches!(b, b']' | b'\r') {
        c |= CDATA_STOP;
    }
    if b < 0x20 || matches!(b, b'&' | b'<' | b'\'') {
        c |= APOS_STOP;
    }
    if b < 0x20 || matches!(b, b'&' | b'<' | b'"') {
        c |= QUOT_STOP;
    }
    if b >= 0x80 || b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'_' | b'-') {
        c |= NAME;
    }
    if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
        c |= SPACE;
    }
    if b.is_ascii_digit() {
        c |= DIGIT;
    }
    if b.is_ascii_hexdigit() {
        c |= HEX;
    }
    c
}

const fn build_classes() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = class_of(i as u8);
        i += 1;
    }
    table
}

static CLASSES: [u8; 256] = build_classes();

/// Whether `b` belongs to any of the classes in `mask`.
#[inline(always)]
pub(super) fn is(b: u8, mask: u8) -> bool {
    CLASSES[usize::from(b)] & mask != 0
}

/// Length of the longest prefix of `bytes` without a byte of `mask`.
#[inline(always)]
pub(super) fn run_until(bytes: &[u8], mask: u8) -> usize {
    bytes
        .iter()
        .position(|&b| is(b, mask))
        .unwrap_or(bytes.len())
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether a byte of `x` may be below 0x20 or equal to `a`, `b` or `c`
/// (never a false negative).
#[inline(always)]
fn may_stop(x: u64, a: u8, b: u8, c: u8) -> bool {
    let zero = |v: u64| v.wrapping_sub(ONES) & !v;
    let hits = zero(x ^ ONES.wrapping_mul(u64::from(a)))
        | zero(x ^ ONES.wrapping_mul(u64::from(b)))
        | zero(x ^ ONES.wrapping_mul(u64::from(c)))
        | (x.wrapping_sub(ONES.wrapping_mul(0x20)) & !x);
    hits & HIGHS != 0
}

/// [`run_until`] for a `mask` made of the C0 controls (or some of them)
/// and `a`, `b`, `c`, eight bytes at a time.
#[inline(always)]
fn run_until_wide(bytes: &[u8], mask: u8, a: u8, b: u8, c: u8) -> usize {
    let mut i = 0usize;
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        if may_stop(u64::from_le_bytes(word), a, b, c)
            && let Some(p) = chunk.iter().position(|&x| is(x, mask))
        {
            return i.saturating_add(p);
        }
        i = i.saturating_add(8);
    }
    let tail = words.remainder();
    i.saturating_add(run_until(tail, mask))
}

/// Length of the run of character data at the start of `bytes`: up to
/// the first byte of [`TEXT_STOP`].
#[inline]
pub(super) fn text_run(bytes: &[u8]) -> usize {
    run_until_wide(bytes, TEXT_STOP, b'<', b'&', b']')
}

/// Length of the run of attribute value quoted with `quote` at the start
/// of `bytes`: up to the first byte of [`APOS_STOP`] or [`QUOT_STOP`].
#[inline]
pub(super) fn value_run(bytes: &[u8], quote: u8) -> usize {
    if quote == b'\'' {
        run_until_wide(bytes, APOS_STOP, b'<', b'&', b'\'')
    } else {
        run_until_wide(bytes, QUOT_STOP, b'<', b'&', b'"')
    }
}

/// Length of the name at the start of `bytes` and, if it is a valid
/// qualified name, its colon's position (see [`qname`]).
#[inline]
pub(super) fn name_run(bytes: &[u8]) -> (usize, Option<Option<usize>>) {
    let mut n = 0usize;
    let mut colon = None;
    let mut colons = 0u32;
    let mut ascii = true;
    for &b in bytes {
        if !is(b, NAME) {
            break;
        }
        if b == b':' {
            colons = colons.saturating_add(1);
            colon = colon.or(Some(n));
        }
        ascii &= b < 0x80;
        n = n.saturating_add(1);
    }
    let name = bytes.get(..n).unwrap_or_default();
    if !ascii {
        return (n, qname(name));
    }
    let start = |b: Option<&u8>| b.is_some_and(|&b| b.is_ascii_alphabetic() || b == b'_');
    let valid = start(name.first())
        && match colon {
            None => true,
            Some(c) => colons == 1 && start(name.get(c.saturating_add(1))),
        };
    (n, valid.then_some(colon))
}

/// Length of the longest prefix of `bytes` made of bytes of `mask`.
#[inline(always)]
pub(super) fn run_while(bytes: &[u8], mask: u8) -> usize {
    bytes
        .iter()
        .position(|&b| !is(b, mask))
        .unwrap_or(bytes.len())
}

/// A byte that can never appear in XML 1.0 character data.
pub(super) fn is_nonchar_byte(b: u8) -> bool {
    b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')
}

/// Whether `c` is a `Char` of XML 1.0.
pub(super) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// Validate character data: UTF-8 without U+FFFE or U+FFFF. The C0
/// controls are kept out by the tokenizer before data gets here.
pub(super) fn cdata(bytes: &[u8]) -> Option<&str> {
    chars(std::str::from_utf8(bytes).ok()?)
}

/// `s` if it has no U+FFFE or U+FFFF.
#[inline]
pub(super) fn chars(s: &str) -> Option<&str> {
    if s.is_ascii() {
        return Some(s);
    }
    // U+FFFE and U+FFFF are EF BF BE and EF BF BF.
    let bytes = s.as_bytes();
    for at in memchr::memchr_iter(0xef, bytes) {
        if let Some([0xbf, 0xbe | 0xbf]) = bytes.get(at.saturating_add(1)..at.saturating_add(3)) {
            return None;
        }
    }
    Some(s)
}

const NAME_START: &[(char, char)] = &[
    (':', ':'),
    ('A', 'Z'),
    ('_', '_'),
    ('a', 'z'),
    ('\u{c0}', '\u{d6}'),
    ('\u{d8}', '\u{f6}'),
    ('\u{f8}', '\u{2ff}'),
    ('\u{370}', '\u{37d}'),
    ('\u{37f}', '\u{1fff}'),
    ('\u{200c}', '\u{200d}'),
    ('\u{2070}', '\u{218f}'),
    ('\u{2c00}', '\u{2fef}'),
    ('\u{3001}', '\u{d7ff}'),
    ('\u{f900}', '\u{fdcf}'),
    ('\u{10000}', '\u{effff}'),
];

/// `NameStartChar` of XML 1.0 (fifth edition), without `#xFDF0-#xFFFD`
/// (rxml, which this reader replaced, never accepted those).
fn is_name_start(c: char) -> bool {
    NAME_START.iter().any(|&(lo, hi)| lo <= c && c <= hi)
}

/// `NameChar` of XML 1.0 (fifth edition).
fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{b7}' | '\u{300}'..='\u{36f}' | '\u{203f}'..='\u{2040}')
}

/// Validate a name: UTF-8 and the `Name` production (colons anywhere).
pub(super) fn name(bytes: &[u8]) -> Option<&str> {
    let (&first, _) = bytes.split_first()?;
    if bytes.is_ascii() {
        // The ASCII bytes of class NAME are exactly the ASCII NameChars.
        let start = first.is_ascii_alphabetic() || first == b'_' || first == b':';
        if start && bytes.iter().all(|&b| is(b, NAME)) {
            return std::str::from_utf8(bytes).ok();
        }
        return None;
    }
    let s = std::str::from_utf8(bytes).ok()?;
    let mut chars = s.chars();
    if !chars.next().is_some_and(is_name_start) {
        return None;
    }
    chars.all(is_name_char).then_some(s)
}

/// Split a valid name into prefix and local part as Namespaces in XML 1.0
/// requires: at most one colon, neither part empty, the local part starting
/// with a `NameStartChar`. Returns the colon's position, if any.
pub(super) fn split(name: &str) -> Option<Option<usize>> {
    let Some(colon) = name.find(':') else {
        return Some(None);
    };
    let local = name.get(colon.saturating_add(1)..)?;
    if colon == 0 || local.is_empty() || local.contains(':') {
        return None;
    }
    local
        .chars()
        .next()
        .is_some_and(is_name_start)
        .then_some(Some(colon))
}

/// Validate a qualified name (the `Name` production, at most one colon,
/// neither part empty, the local part starting with a `NameStartChar`) and
/// return its colon's position, if any.
pub(super) fn qname(bytes: &[u8]) -> Option<Option<usize>> {
    let (&first, rest) = bytes.split_first()?;
    if first < 0x80 {
        if !(first.is_ascii_alphabetic() || first == b'_') {
            return None;
        }
        let mut colon = None;
        let mut ascii = true;
        for (i, &b) in rest.iter().enumerate() {
            if b >= 0x80 {
                ascii = false;
                break;
            }
            if !is(b, NAME) {
                return None;
            }
            if b == b':' {
                if colon.is_some() {
                    return None;
                }
                colon = Some(i.saturating_add(1));
            }
        }
        if ascii {
            if let Some(c) = colon {
                let next = *bytes.get(c.saturating_add(1))?;
                if !(next.is_ascii_alphabetic() || next == b'_') {
                    return None;
                }
            }
            return Some(colon);
        }
    }
    name(bytes).and_then(split)
}

/// Attribute names common in XMPP, kept ready as [`NcName`]s.
const COMMON_NAMES: [&str; 16] = [
    "to",
    "from",
    "type",
    "id",
    "version",
    "lang",
    "name",
    "jid",
    "node",
    "var",
    "ver",
    "hash",
    "subscription",
    "ask",
    "code",
    "category",
];

/// `local` (a valid local part of a qualified name) as an [`NcName`].
pub(super) fn ncname(local: &[u8]) -> Option<NcName> {
    static COMMON: OnceLock<Vec<Option<NcName>>> = OnceLock::new();
    let index = match local {
        b"to" => Some(0),
        b"from" => Some(1),
        b"type" => Some(2),
        b"id" => Some(3),
        b"version" => Some(4),
        b"lang" => Some(5),
        b"name" => Some(6),
        b"jid" => Some(7),
        b"node" => Some(8),
        b"var" => Some(9),
        b"ver" => Some(10),
        b"hash" => Some(11),
        b"subscription" => Some(12),
        b"ask" => Some(13),
        b"code" => Some(14),
        b"category" => Some(15),
        _ => None,
    };
    if let Some(i) = index {
        let common = COMMON.get_or_init(|| {
            COMMON_NAMES
                .iter()
                .map(|n| NcName::try_from(*n).ok())
                .collect()
        });
        if let Some(Some(name)) = common.get(i) {
            return Some(name.clone());
        }
    }
    NcName::try_from(std::str::from_utf8(local).ok()?).ok()
}

/// The replacement text of a predefined entity.
pub(super) fn predefined_entity(name: &[u8]) -> Option<u8> {
    match name {
        b"amp" => Some(b'&'),
        b"lt" => Some(b'<'),
        b"gt" => Some(b'>'),
        b"apos" => Some(b'\''),
        b"quot" => Some(b'"'),
        _ => None,
    }
}

/// The character of a numeric character reference: at most eight digits of
/// `radix`, naming an XML `Char`.
pub(super) fn char_reference(digits: &[u8], radix: u32) -> Option<char> {
    let mut value: u32 = 0;
    for &d in digits {
        let digit = char::from(d).to_digit(radix)?;
        value = value.checked_mul(radix)?.checked_add(digit)?;
    }
    char::from_u32(value).filter(|&c| is_xml_char(c))
}

/// Whether `s` is XML white space only.
pub(super) fn is_space(s: &[u8]) -> bool {
    s.iter().all(|&b| is(b, SPACE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        for b in 0..=255u8 {
            assert_eq!(is(b, SPACE), matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
            assert_eq!(
                is(b, NAME),
                b >= 0x80 || b.is_ascii_alphanumeric() || b":._-".contains(&b)
            );
            assert_eq!(
                is(b, TEXT_STOP),
                is_nonchar_byte(b) || b"<&]\r".contains(&b)
            );
            assert_eq!(is(b, CDATA_STOP), is_nonchar_byte(b) || b"]\r".contains(&b));
            assert_eq!(is(b, APOS_STOP), b < 0x20 || b"&<'".contains(&b));
            assert_eq!(is(b, QUOT_STOP), b < 0x20 || b"&<\"".contains(&b));
        }
    }

    #[test]
    fn wide_runs() {
        let samples: &[&[u8]] = &[
            b"",
            b"a",
            b"abcdefgh<",
            b"abcdefghijklmnop&x",
            b"0123456789abcdef0123]",
            b"\t\nabc\rdef",
            b"hello world, this is text without stops at all....",
            "é😀ü<".as_bytes(),
            b"x\x7fy\x1fz",
            b"0123456789abcdef0123456789abcdef\t\n0123456789abcdef\r",
            b"0123456789abcdef0123456789abcdef]",
            b"aaaaaaa'bbbbbbbb\"c",
            b"aaaaaaaaaaaaaaa\x00",
        ];
        for s in samples {
            assert_eq!(text_run(s), run_until(s, TEXT_STOP), "{s:?}");
            assert_eq!(value_run(s, b'\''), run_until(s, APOS_STOP), "{s:?}");
            assert_eq!(value_run(s, b'"'), run_until(s, QUOT_STOP), "{s:?}");
            for start in 0..s.len() {
                let t = &s[start..];
                assert_eq!(text_run(t), run_until(t, TEXT_STOP), "{t:?}");
            }
        }
        for b in 0..=255u8 {
            for at in 0..40 {
                let mut v = vec![b'a'; 40];
                v[at] = b;
                assert_eq!(text_run(&v), run_until(&v, TEXT_STOP));
                assert_eq!(value_run(&v, b'\''), run_until(&v, APOS_STOP));
                assert_eq!(value_run(&v, b'"'), run_until(&v, QUOT_STOP));
            }
        }
    }

    #[test]
    fn names() {
        assert_eq!(name(b"stream:stream"), Some("stream:stream"));
        assert_eq!(name(b"_a.b-c9"), Some("_a.b-c9"));
        assert_eq!(name(b"9a"), None);
        assert_eq!(name(b"-a"), None);
        assert_eq!(name(b""), None);
        assert_eq!(name("é·x".as_bytes()), Some("é·x"));
        assert_eq!(name("·x".as_bytes()), None);
        assert_eq!(name(b"a\xff"), None);
        assert_eq!(split("a:b"), Some(Some(1)));
        assert_eq!(split("ab"), Some(None));
        assert_eq!(split(":b"), None);
        assert_eq!(split("a:"), None);
        assert_eq!(split("a:b:c"), None);
        assert_eq!(split("a:9"), None);
        assert_eq!(split("a:-"), None);
    }

    #[test]
    fn qnames() {
        for s in [
            "a",
            "a:b",
            "_:_",
            "a-b.c:d9",
            "é:à",
            "a:é",
            "stream:stream",
            "xml:lang",
        ] {
            assert_eq!(
                qname(s.as_bytes()),
                name(s.as_bytes()).and_then(split),
                "{s}"
            );
            assert!(qname(s.as_bytes()).is_some(), "{s}");
        }
        for s in [
            "", ":", ":a", "a:", "a:b:c", "a:1", "a:-", "1", "-a", "a b", "a\u{0}", "é:1", "a:·",
        ] {
            assert_eq!(qname(s.as_bytes()), None, "{s:?}");
        }
        assert_eq!(qname(b"p:q"), Some(Some(1)));
        for s in [
            "a", "a:b", "_:_", "a-b.c:d9", "é:à", "a:é", "", ":", ":a", "a:", "a:b:c", "a:1", "1",
            "-a", "é:1",
        ] {
            for tail in ["", " ", ">", "/>", "='"] {
                let full = format!("{s}{tail}");
                assert_eq!(
                    name_run(full.as_bytes()),
                    (s.len(), qname(s.as_bytes())),
                    "{full:?}"
                );
            }
        }
        assert_eq!(qname(b"\xff"), None);
        assert_eq!(ncname(b"to").map(|n| n.to_string()), Some("to".to_owned()));
        assert_eq!(
            ncname(b"other").map(|n| n.to_string()),
            Some("other".to_owned())
        );
        assert_eq!(
            ncname("é".as_bytes()).map(|n| n.to_string()),
            Some("é".to_owned())
        );
        assert_eq!(COMMON_NAMES.len(), 16);
        for (i, n) in COMMON_NAMES.iter().enumerate() {
            assert_eq!(
                ncname(n.as_bytes()).map(|x| x.to_string()).as_deref(),
                Some(*n),
                "{i}"
            );
        }
    }

    #[test]
    fn validation_matches_rxml() {
        use minidom::rxml::Name;
        for c in [
            '\u{0}',
            'a',
            ':',
            '-',
            '·',
            '\u{300}',
            '\u{2ff}',
            '\u{37e}',
            '\u{fdd0}',
            '\u{fdf0}',
            '\u{effff}',
            '\u{f0000}',
            '\u{203f}',
            '\u{2070}',
            '\u{3000}',
            '\u{d7ff}',
            '\u{e000}',
            '\u{f8ff}',
        ] {
            for s in [format!("{c}"), format!("a{c}")] {
                assert_eq!(
                    name(s.as_bytes()).is_some(),
                    Name::try_from(s.as_str()).is_ok(),
                    "{s:?}"
                );
            }
        }
        assert_eq!(char_reference(b"263A", 16), Some('☺'));
        assert_eq!(char_reference(b"0", 10), None);
        assert_eq!(char_reference(b"FFFE", 16), None);
        assert_eq!(char_reference(b"D800", 16), None);
        assert_eq!(char_reference(b"110000", 16), None);
        assert_eq!(char_reference(b"FFFFFFFF", 16), None);
        assert_eq!(char_reference(b"99999999", 10), None);
        assert_eq!(char_reference(b"13", 10), Some('\r'));
        assert_eq!(cdata("a\u{fffe}".as_bytes()), None);
        assert_eq!(cdata("a\u{ffff}".as_bytes()), None);
        assert_eq!(cdata("a\u{fffd}".as_bytes()), Some("a\u{fffd}"));
        assert_eq!(cdata(b"\xef\xbf"), None);
    }
}
