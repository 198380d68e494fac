//! Feeds arbitrary bytes to `StreamReader` in arbitrary chunks.
//!
//! Checks that the reader never panics, that the chunking does not change
//! the events, and that every stanza read survives a write/read round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xmpp_session::stream::{StreamEvent, StreamReader, XmlLimits, element_bytes};

const HEADER: &[u8] = b"<stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams'>";

type Events = Vec<Result<StreamEvent, xmpp_session::stream::ReadError>>;

fn run(input: &[u8], mut sizes: impl Iterator<Item = usize>, limits: XmlLimits) -> Events {
    let mut reader = StreamReader::new(limits);
    let mut events = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let size = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        reader.push(chunk);
        loop {
            match reader.next_event() {
                Ok(Some(event)) => {
                    // Exercise the SASL restart: a fresh parser keeps the
                    // bytes that followed `<success/>`.
                    let restart =
                        matches!(&event, StreamEvent::Stanza(el) if el.name() == "success");
                    events.push(Ok(event));
                    if restart {
                        reader.restart();
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    events.push(Err(e));
                    return events;
                }
            }
        }
    }
    events
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

    let whole = run(input, std::iter::empty(), limits);
    let step = usize::from(seed >> 1) % 17 + 1;
    let sizes = (0..).map(move |i: usize| (i.wrapping_mul(7).wrapping_add(step)) % 23 + 1);
    assert_eq!(
        run(input, sizes, limits),
        whole,
        "chunking changed the events"
    );
    assert_eq!(
        run(input, std::iter::repeat(1), limits),
        whole,
        "byte-wise feeding changed the events"
    );

    for event in &whole {
        if let Ok(StreamEvent::Stanza(el)) = event {
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
