//! Feeds arbitrary bytes to `StreamReader` in arbitrary chunks.
//!
//! Checks that the reader never panics, that it behaves exactly like the
//! rxml-based oracle it replaced (same events, errors and buffered lengths,
//! restarts included) up to the documented differences, which the oracle
//! models itself (see `xmpp_session::stream::reader`'s "Differences from
//! rxml"), that the chunking does not change the events, and that every
//! stanza read survives a write/read round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xmpp_session::stream::oracle::OracleReader;
use xmpp_session::stream::{ReadError, StreamEvent, StreamReader, XmlLimits, element_bytes};

const HEADER: &[u8] = b"<stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams'>";

/// Every call's result and the buffered length after it.
type Trace = Vec<(Result<Option<StreamEvent>, ReadError>, usize)>;

/// The operations both readers offer.
trait Reader {
    fn new(limits: XmlLimits) -> Self;
    fn push(&mut self, data: &[u8]);
    fn next_event(&mut self) -> Result<Option<StreamEvent>, ReadError>;
    fn restart(&mut self);
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
            fn buffered_len(&self) -> usize {
                <$t>::buffered_len(self)
            }
        }
    };
}

impl_reader!(StreamReader);
impl_reader!(OracleReader);

fn run<R: Reader>(
    input: &[u8],
    mut sizes: impl Iterator<Item = usize>,
    limits: XmlLimits,
) -> Trace {
    let mut reader = R::new(limits);
    let mut trace = Trace::new();
    let mut rest = input;
    while !rest.is_empty() {
        let size = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        reader.push(chunk);
        loop {
            let result = reader.next_event();
            // Exercise the SASL restart: a fresh parser keeps the bytes
            // that followed `<success/>`.
            let restart =
                matches!(&result, Ok(Some(StreamEvent::Stanza(el))) if el.name() == "success");
            let stop = !matches!(result, Ok(Some(_)));
            let failed = result.is_err();
            trace.push((result, reader.buffered_len()));
            if restart {
                reader.restart();
            }
            if failed {
                return trace;
            }
            if stop {
                break;
            }
        }
    }
    trace
}

/// The events alone, for comparisons across chunkings.
fn events(trace: &Trace) -> Vec<Result<StreamEvent, ReadError>> {
    trace
        .iter()
        .filter_map(|(result, _)| match result {
            Ok(Some(event)) => Some(Ok(event.clone())),
            Ok(None) => None,
            Err(e) => Some(Err(*e)),
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    // Small limits so that every limit is reachable.
    let limits = XmlLimits {
        max_stanza_bytes: 2048,
        max_depth: 8,
        max_attributes: 8,
        max_text_bytes: 512,
    };
    // Half the inputs get a valid header so that stanzas are reached.
    let owned;
    let input = if seed & 1 == 1 {
        owned = [HEADER, input].concat();
        &owned[..]
    } else {
        input
    };

    let step = usize::from(seed >> 1) % 17 + 1;
    let sizes = move || (0..).map(move |i: usize| (i.wrapping_mul(7).wrapping_add(step)) % 23 + 1);

    let whole = run::<StreamReader>(input, std::iter::empty(), limits);
    assert_eq!(
        whole,
        run::<OracleReader>(input, std::iter::empty(), limits),
        "differs from the oracle"
    );
    let chunked = run::<StreamReader>(input, sizes(), limits);
    assert_eq!(
        chunked,
        run::<OracleReader>(input, sizes(), limits),
        "differs from the oracle when chunked"
    );
    let bytewise = run::<StreamReader>(input, std::iter::repeat(1), limits);
    assert_eq!(
        bytewise,
        run::<OracleReader>(input, std::iter::repeat(1), limits),
        "differs from the oracle byte by byte"
    );
    assert_eq!(
        events(&chunked),
        events(&whole),
        "chunking changed the events"
    );
    assert_eq!(
        events(&bytewise),
        events(&whole),
        "byte-wise feeding changed the events"
    );

    for (result, _) in &whole {
        if let Ok(Some(StreamEvent::Stanza(el))) = result {
            let mut reader = StreamReader::default();
            reader.push(HEADER);
            reader.push(&element_bytes(el));
            assert!(matches!(
                reader.next_event(),
                Ok(Some(StreamEvent::Open(_)))
            ));
            match reader.next_event() {
                Ok(Some(StreamEvent::Stanza(back))) => assert_eq!(&back, el, "round trip"),
                other => panic!("written stanza did not read back: {other:?}"),
            }
        }
    }
});
