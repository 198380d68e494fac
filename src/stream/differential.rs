//! Differential tests: the hand-written [`StreamReader`] against the
//! rxml-based [`OracleReader`] it replaced.
//!
//! Both readers get the same bytes in the same chunks, with the same
//! restarts and limit changes; their events, errors and
//! [`buffered_len`](StreamReader::buffered_len) after every call must be
//! identical.
//!
//! The reader's specification (its module docs) departs from rxml in a few
//! documented ways; the oracle models each of them at the one place where
//! it differs (look for "Documented difference" in `oracle.rs`), so every other divergence still fails
//! here. Today that is the accounting of empty CDATA sections, whose bytes
//! rxml charged to every later stanza. Everything else is compared as
//! rxml does it, including the 8 KiB limit on names and attribute values
//! and the handling of a CR inside an attribute value.

use proptest::prelude::*;

use super::oracle::OracleReader;
use super::reader::tests::{HEADER, arb_stream};
use super::{ReadError, StreamEvent, StreamReader, XmlLimits};

/// What the tests do with a reader.
trait Reader {
    fn new(limits: XmlLimits) -> Self;
    fn push(&mut self, data: &[u8]);
    fn next_event(&mut self) -> Result<Option<StreamEvent>, ReadError>;
    fn restart(&mut self);
    fn set_limits(&mut self, limits: XmlLimits);
    fn buffered_len(&self) -> usize;
}

macro_rules! impl_reader {
    ($t:ty) => {
        impl Reader for $t {
            fn new(limits: XmlLimits) -> Self {
                <$t>::new(limits)
            }
            fn push(&mut self, data: &[u8]) {
                <$t>::push(self, data)
            }
            fn next_event(&mut self) -> Result<Option<StreamEvent>, ReadError> {
                <$t>::next_event(self)
            }
            fn restart(&mut self) {
                <$t>::restart(self)
            }
            fn set_limits(&mut self, limits: XmlLimits) {
                <$t>::set_limits(self, limits)
            }
            fn buffered_len(&self) -> usize {
                <$t>::buffered_len(self)
            }
        }
    };
}

impl_reader!(StreamReader);
impl_reader!(OracleReader);

/// One observation: a call's result and the buffered length after it.
type Trace = Vec<(Result<Option<StreamEvent>, ReadError>, usize)>;

/// Feed `data` in chunks of `sizes` (the rest at once), calling
/// `next_event` until `Ok(None)` or an error after every chunk. A stanza
/// named `success` or `proceed` restarts the stream, as SASL and STARTTLS
/// do. Before chunk `i`, `limit_changes` may switch the limits.
fn trace<R: Reader>(
    data: &[u8],
    sizes: &[usize],
    limits: XmlLimits,
    limit_changes: &[(usize, XmlLimits)],
) -> Trace {
    let mut reader = R::new(limits);
    let mut out = Trace::new();
    let mut rest = data;
    let mut chunk = 0;
    while !rest.is_empty() {
        for (at, l) in limit_changes {
            if *at == chunk {
                reader.set_limits(*l);
            }
        }
        let size = sizes
            .get(chunk)
            .copied()
            .unwrap_or(rest.len())
            .clamp(1, rest.len());
        let (head, tail) = rest.split_at(size);
        rest = tail;
        chunk += 1;
        reader.push(head);
        loop {
            let result = reader.next_event();
            let restart = matches!(&result, Ok(Some(StreamEvent::Stanza(el)))
                if el.name() == "success" || el.name() == "proceed");
            let stop = !matches!(result, Ok(Some(_)));
            out.push((result, reader.buffered_len()));
            if restart {
                reader.restart();
            }
            if stop {
                break;
            }
        }
        if matches!(out.last(), Some((Err(_), _))) {
            break;
        }
    }
    out
}

fn compare(data: &[u8], sizes: &[usize], limits: XmlLimits, changes: &[(usize, XmlLimits)]) {
    let new = trace::<StreamReader>(data, sizes, limits, changes);
    let old = trace::<OracleReader>(data, sizes, limits, changes);
    assert_eq!(
        new,
        old,
        "input {:?} sizes {sizes:?} limits {limits:?} changes {changes:?}",
        String::from_utf8_lossy(data)
    );
}

/// Compare whole, byte by byte and in the given chunks.
fn compare_all(data: &[u8], sizes: &[usize], limits: XmlLimits) {
    compare(data, &[], limits, &[]);
    compare(data, &vec![1; data.len()], limits, &[]);
    compare(data, sizes, limits, &[]);
}

fn arb_limits() -> impl Strategy<Value = XmlLimits> {
    (20usize..400, 1usize..40, 0usize..5, 0usize..5).prop_map(
        |(max_stanza_bytes, max_text_bytes, max_depth, max_attributes)| XmlLimits {
            max_stanza_bytes,
            max_depth,
            max_attributes,
            max_text_bytes,
        },
    )
}

/// Bytes that matter to the tokenizer, for mutations.
const SPECIAL: &[u8] = b"<>&;]['\"=/?!-#x :\r\n\t\0\x01\x7f\x80\xbf\xc3\xef\xff\xfeaZ9_.";

fn arb_mutation() -> impl Strategy<Value = (prop::sample::Index, u8, u8)> {
    (
        any::<prop::sample::Index>(),
        0u8..4,
        prop::sample::select(SPECIAL.to_vec()),
    )
}

/// Overwrite, insert or delete bytes.
fn mutate(data: &mut Vec<u8>, edits: &[(prop::sample::Index, u8, u8)]) {
    for (index, op, byte) in edits {
        let at = index.index(data.len().saturating_add(1));
        match op {
            0 if at < data.len() => data[at] = *byte,
            1 => data.insert(at, *byte),
            2 if at < data.len() => {
                data.remove(at);
            }
            _ => {
                // Duplicate a slice, which repeats markup.
                let end = (at + 7).min(data.len());
                let copy = data[at..end].to_vec();
                data.splice(at..at, copy);
            }
        }
    }
}

/// A piece of XML that exercises one rule of the tokenizer.
fn arb_fragment() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec![
        "a",
        "b",
        "x:y",
        "p:q:r",
        "1a",
        ":a",
        "a:",
        "a:1",
        "xmlns",
        "xmlns:p",
        "xmlns:xml",
        "xmlns:xmlns",
        "xml:lang",
        "é",
        "a·b",
        "·a",
        "\u{fdf0}",
        "a\u{300}",
        "stream:stream",
        "stream",
        "success",
        "p:a",
        "-a",
        "a.b",
    ]);
    let value = prop::collection::vec(
        prop::sample::select(vec![
            "v",
            "",
            "&amp;",
            "&lt;",
            "&#x41;",
            "&#65;",
            "&#0;",
            "&#xFFFE;",
            "&#x10FFFF;",
            "&#x110000;",
            "&bogus;",
            "&amp",
            "&;",
            "&#;",
            "&#x;",
            "&#12a;",
            "&#xx;",
            "&#123456789;",
            "&abcdefghi;",
            "\t",
            "\n",
            "\r\n",
            "\r",
            "\r\r",
            "<",
            "&",
            "'",
            "\"",
            "urn:a",
            "urn:p",
            "http://www.w3.org/XML/1998/namespace",
            "😀",
            "\u{fffe}",
            "\u{1}",
            "]]>",
            " ",
        ]),
        0..4,
    )
    .prop_map(|v| v.concat());
    let text = prop::collection::vec(
        prop::sample::select(vec![
            "hi", " ", "\n", "]]>", "]]", "]", "]]]>", "\r\n", "\r", "\r\r\n", "&lt;", "&#10;",
            "&#13;", "&#x20;", "&amp;", "&bad;", "😀", "\u{fffe}", "\u{ffff}", "\u{0}", "\u{b}",
            ">", "\u{85}", "\t",
        ]),
        0..5,
    )
    .prop_map(|v| v.concat());
    let space = prop::sample::select(vec!["", " ", "\t", "\r\n", "  "]);
    let quote = prop::sample::select(vec!["'", "\""]);
    let attr = (name.clone(), space.clone(), space.clone(), quote, value)
        .prop_map(|(n, s1, s2, q, v)| format!(" {n}{s1}={s2}{q}{v}{q}"));
    prop_oneof![
        4 => (name.clone(), prop::collection::vec(attr, 0..4), space.clone(), any::<bool>())
            .prop_map(|(n, attrs, s, close)| {
                format!("<{n}{}{s}{}", attrs.concat(), if close { "/>" } else { ">" })
            }),
        3 => (name.clone(), space.clone()).prop_map(|(n, s)| format!("</{n}{s}>")),
        3 => text.clone(),
        1 => text.clone().prop_map(|t| format!("<![CDATA[{t}]]>")),
        1 => Just("<![CDATA[]]>".to_owned()),
        1 => prop::sample::select(vec![
            "<!-- c -->", "<!--", "<!-x", "<!DOCTYPE x>", "<!ENTITY x 'y'>", "<![CDAT", "<?foo?>",
            "<?xml version='1.0'?>", "<?xml-stylesheet?>", "<?x", "< a>", "<>", "<a b>", "<a b=>",
            "<a b='1'c='2'>", "<a/ >", "</a/>", "</a b='c'>", "</ a>", "</>", "<a\"x\">", "<a =>",
            "<a?>", "</stream:stream>", "<success xmlns='urn:s'/>", "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>",
        ])
        .prop_map(str::to_owned),
    ]
}

/// An optional XML declaration (valid or not) and header, then fragments.
fn arb_soup() -> impl Strategy<Value = Vec<u8>> {
    let decl = prop::sample::select(vec![
        "",
        "<?xml version='1.0'?>",
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n",
        "<?xml version='1.0' encoding='UTF-8' standalone='yes'?>",
        "<?xml version='1.0' standalone='yes'?>",
        "<?xml version='1.0' encoding='latin1'?>",
        "<?xml version='1.1'?>",
        "<?xml version='1.0' standalone='no'?>",
        "<?xml version='1.0' encoding='utf-8' standalone='no'?>",
        "<?xml encoding='utf-8'?>",
        "<?xml version='1.0' foo='bar'?>",
        "<?xml version='1.0'>",
        "<?xml?>",
        "<?xmlversion='1.0'?>",
        "<?xml version='1&#46;0'?>",
        "<?xml version='1.0' ?>  \r\n",
        "<?xml version='1.0'?><?xml version='1.0'?>",
        "<?xml version='1.0'?>x",
        "<?xml version='1.0'?><![CDATA[]]>",
        "<?xml version='1.0'?><!-- c -->",
        "  \t",
    ]);
    let header = prop::sample::select(vec![
        HEADER.trim_start_matches("<?xml version='1.0'?>"),
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
        "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>",
        "<stream xmlns='jabber:client' to='a' to='b'>",
        "<s:stream xmlns:s='urn:x' xmlns='' xml:lang='de' id='1'>",
        "<stream:stream>",
        "<a>",
        "",
    ]);
    (decl, header, prop::collection::vec(arb_fragment(), 0..12))
        .prop_map(|(d, h, f)| format!("{d}{h}{}", f.concat()).into_bytes())
}

fn arb_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..24, 0..80)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn valid_streams_match_the_oracle(data in arb_stream(), sizes in arb_sizes()) {
        compare_all(&data, &sizes, XmlLimits::default());
    }

    #[test]
    fn mutated_streams_match_the_oracle(
        data in arb_stream(),
        edits in prop::collection::vec(arb_mutation(), 1..6),
        sizes in arb_sizes(),
        limits in arb_limits(),
    ) {
        let mut data = data;
        mutate(&mut data, &edits);
        compare_all(&data, &sizes, limits);
        compare(&data, &sizes, XmlLimits::default(), &[]);
    }

    #[test]
    fn fragment_soup_matches_the_oracle(
        data in arb_soup(),
        edits in prop::collection::vec(arb_mutation(), 0..3),
        sizes in arb_sizes(),
        limits in arb_limits(),
    ) {
        compare_all(&data, &sizes, limits);
        compare(&data, &sizes, XmlLimits::default(), &[]);
        let mut data = data;
        mutate(&mut data, &edits);
        compare(&data, &sizes, limits, &[]);
    }

    #[test]
    fn arbitrary_bytes_match_the_oracle(
        data in prop::collection::vec(any::<u8>(), 0..200),
        sizes in arb_sizes(),
        with_header in any::<bool>(),
    ) {
        let data = if with_header { [HEADER.as_bytes(), &data].concat() } else { data };
        compare_all(&data, &sizes, XmlLimits::default());
    }

    #[test]
    fn limit_changes_match_the_oracle(
        data in arb_stream(),
        sizes in arb_sizes(),
        changes in prop::collection::vec((0usize..40, arb_limits()), 0..4),
        limits in arb_limits(),
    ) {
        compare(&data, &sizes, limits, &changes);
    }
}

/// A stanza whose text, attribute value or name is about `len` bytes, with
/// `special` inserted at `at`.
fn long_token(shape: u8, len: usize, at: usize, special: &str) -> Vec<u8> {
    let mut body = "y".repeat(len);
    body.insert_str(at.min(len), special);
    let stanza = match shape {
        0 => format!("<message><body>{body}</body></message>"),
        1 => format!("<message><body><![CDATA[{body}]]></body></message>"),
        2 => format!("<message a='{body}'/>"),
        3 => format!("<m{body}/>"),
        4 => format!("<m><a{body}/></m>"),
        5 => format!("<message a=\"{body}\"><x/></message>"),
        6 => format!("   {body}<presence/>"),
        _ => format!("<m>&{body};</m>"),
    };
    [HEADER.as_bytes(), stanza.as_bytes()].concat()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Around rxml's 8 KiB token limit, where text is reported in slices
    /// and names and values fail.
    #[test]
    fn long_tokens_match_the_oracle(
        shape in 0u8..8,
        len in prop_oneof![8170usize..8200, 0usize..12, 16370usize..16400],
        at in prop_oneof![8180usize..8200, 0usize..20, any::<usize>()],
        special in prop::sample::select(vec![
            "", "]", "]]", "]]]", "]]>", "\r", "\r\n", "&amp;", "&#x1F600;", "😀", "é", "\u{fffe}",
            "\u{1}", "\u{ff}", "\t", "\n", "<", "&", "&bad;", "\r\r",
        ]),
        invalid in prop::option::of((0usize..16400, prop::sample::select(vec![0xffu8, 0xc3, 0xef, 0x80]))),
        max_stanza in prop_oneof![Just(262_144usize), 8150usize..8250, 16350usize..16450],
        max_text in prop_oneof![Just(262_144usize), 8150usize..8250, 1usize..100],
        chunk in prop_oneof![Just(0usize), 1usize..5000],
    ) {
        let mut data = long_token(shape, len, at, special);
        if let Some((i, byte)) = invalid {
            let i = HEADER.len() + i % (data.len() - HEADER.len());
            data[i] = byte;
        }
        let limits = XmlLimits { max_stanza_bytes: max_stanza, max_text_bytes: max_text, ..XmlLimits::default() };
        let sizes: Vec<usize> = if chunk == 0 { Vec::new() } else { vec![chunk; data.len() / chunk + 1] };
        compare(&data, &sizes, limits, &[]);
        compare(&data, &[HEADER.len() + 8190, 1, 1, 1, 1, 1, 1], limits, &[]);
    }
}

/// Inputs that once differed, or that pin down rxml's corners.
#[test]
fn known_corners_match_the_oracle() {
    let corners: &[&str] = &[
        "<a x='1\r2'/>",
        "<a x='1\r'/>",
        "<a x='1\r\n2'/>",
        "<a x='1\r\r2'/>",
        "<a x='\r&amp;'/>",
        "<a x='\r\t'/>",
        "<a><![CDATA[]]></a><b/>",
        "<![CDATA[]]><message><body>0123456789</body></message>",
        "<a>]]]></a>",
        "<a>]]></a>",
        "<a>x]]y</a>",
        "<a>\r</a>",
        "<a>\r\r</a>",
        "<a>&#13;&#10;</a>",
        "  &#32;<a/>",
        "x&foo;",
        "  &foo;",
        "<a>&abcdefghi;</a>",
        "<a>&#000000065;</a>",
        "<a>&#00000065;</a>",
        "<a xmlns:p=''/>",
        "<a xmlns='http://www.w3.org/XML/1998/namespace'/>",
        "<a xmlns:xml='urn:x'/>",
        "<a xmlns:xml='http://www.w3.org/XML/1998/namespace'/>",
        "<a xmlns:p='http://www.w3.org/XML/1998/namespace'/>",
        "<xml:a/>",
        "<xmlns:a/>",
        "<a xml:lang='x' xml:lang='y'/>",
        "</stream:stream><![CDATA[ ]]>",
        "</stream:stream><![CDATA[x]]>",
        "</stream:stream><!-- -->",
        "</stream:stream><?xml version='1.0'?>",
        "</stream:stream><?foo?>",
        "</stream:stream>&#32;",
    ];
    let limits = [
        XmlLimits::default(),
        XmlLimits {
            max_stanza_bytes: 30,
            max_text_bytes: 5,
            max_depth: 1,
            max_attributes: 1,
        },
    ];
    for corner in corners {
        for prefix in [HEADER, ""] {
            let data = format!("{prefix}{corner}");
            for l in limits {
                compare_all(data.as_bytes(), &[3, 5, 7, 11], l);
            }
        }
    }
}
