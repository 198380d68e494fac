//! Byte classes and validity checks for the restricted XML 1.0 that
//! [`StreamReader`](super::StreamReader) accepts.
//!
//! The tokenizer finds token boundaries with the byte classes below (one
//! table lookup per byte) and validates whole tokens afterwards: UTF-8,
//! the `Name` production of XML 1.0 (fifth edition) and the `Char`
//! production for character data.

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
    let s = std::str::from_utf8(bytes).ok()?;
    // U+FFFE and U+FFFF are EF BF BE and EF BF BF.
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
