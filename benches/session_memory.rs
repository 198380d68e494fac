//! Heap held per idle, available, bound session, measured with a counting
//! global allocator (issue 10's "≤ 2 KiB heap per idle session" target).
//!
//! ```text
//! cargo bench --bench session_memory -- 100000
//! cargo bench --bench session_memory -- 1000000
//! ```
//!
//! N accounts `u0` … `u{N-1}` are created in a [`MemoryStore`] (SCRAM keys
//! derived with 1 PBKDF2 iteration, so that N PLAIN logins take seconds;
//! the iteration count changes no size). Then, through the public API only
//! and phase by phase for all N sessions at once, each session opens a
//! plaintext stream (`require_tls(false)`, `allow_plain_without_tls(true)`),
//! logs in with PLAIN, restarts the stream, binds a resource and sends
//! initial presence; its roster is empty. All output is drained and every
//! request answered by the store at once after each step. The live heap is
//! read after each phase, so the per-session figure of each phase is the
//! growth it caused divided by N; the store's own heap is measured before
//! the first connection and excluded.
//!
//! "Requested" bytes are what the program asked the allocator for;
//! "chunk" bytes estimate what glibc's malloc really uses for those blocks
//! (8 bytes of header, 16-byte granularity, 32 bytes at least).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use xmpp_session::stream::{StreamEvent, StreamReader, XmlLimits};
use xmpp_session::{
    AccountJid, Config, ConnectionInfo, Element, MemoryStore, Output, Session, SessionId,
    SessionManager,
};

/// Counts live blocks and bytes.
struct Counting;

static BYTES: AtomicIsize = AtomicIsize::new(0);
static CHUNK_BYTES: AtomicIsize = AtomicIsize::new(0);
static BLOCKS: AtomicIsize = AtomicIsize::new(0);
/// Calls to `alloc`, `alloc_zeroed` and `realloc`.
static ALLOCS: AtomicIsize = AtomicIsize::new(0);

/// What glibc's malloc takes for a block of `size` bytes.
fn chunk(size: usize) -> isize {
    let c = (size + 8).div_ceil(16) * 16;
    isize::try_from(c.max(32)).unwrap_or(isize::MAX)
}

fn size(layout: Layout) -> isize {
    isize::try_from(layout.size()).unwrap_or(isize::MAX)
}

// SAFETY: every call is forwarded to `System` unchanged; the counters are
// only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        ALLOCS.fetch_add(1, Relaxed);
        if !p.is_null() {
            BYTES.fetch_add(size(layout), Relaxed);
            CHUNK_BYTES.fetch_add(chunk(layout.size()), Relaxed);
            BLOCKS.fetch_add(1, Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        ALLOCS.fetch_add(1, Relaxed);
        if !p.is_null() {
            BYTES.fetch_add(size(layout), Relaxed);
            CHUNK_BYTES.fetch_add(chunk(layout.size()), Relaxed);
            BLOCKS.fetch_add(1, Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        BYTES.fetch_sub(size(layout), Relaxed);
        CHUNK_BYTES.fetch_sub(chunk(layout.size()), Relaxed);
        BLOCKS.fetch_sub(1, Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        ALLOCS.fetch_add(1, Relaxed);
        if !p.is_null() {
            let new = isize::try_from(new_size).unwrap_or(isize::MAX);
            BYTES.fetch_add(new - size(layout), Relaxed);
            CHUNK_BYTES.fetch_add(chunk(new_size) - chunk(layout.size()), Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Live heap at one moment.
#[derive(Debug, Clone, Copy)]
struct Heap {
    bytes: isize,
    chunk: isize,
    blocks: isize,
}

fn heap() -> Heap {
    Heap {
        bytes: BYTES.load(Relaxed),
        chunk: CHUNK_BYTES.load(Relaxed),
        blocks: BLOCKS.load(Relaxed),
    }
}

impl std::ops::Sub for Heap {
    type Output = Heap;
    fn sub(self, rhs: Heap) -> Heap {
        Heap {
            bytes: self.bytes - rhs.bytes,
            chunk: self.chunk - rhs.chunk,
            blocks: self.blocks - rhs.blocks,
        }
    }
}

impl Heap {
    /// `requested B / chunk B / blocks` per unit.
    fn per(self, n: usize) -> String {
        let n = n as f64;
        format!(
            "{:>8.1} B requested {:>8.1} B malloc chunks {:>6.2} blocks",
            self.bytes as f64 / n,
            self.chunk as f64 / n,
            self.blocks as f64 / n
        )
    }
}

const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream to='localhost' version='1.0' \
xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";
const BIND: &[u8] = b"<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
<resource>phone</resource></bind></iq>";
const PRESENCE: &[u8] = b"<presence/>";

/// Drains every output, answering requests from the store; returns whether
/// `<success` was written (for the login step).
fn drain(manager: &mut SessionManager, store: &mut MemoryStore, now: Instant) -> bool {
    let mut success = false;
    while let Some(out) = manager.poll_output_with(store, now) {
        if let Output::Transmit { data, .. } = out
            && data.windows(8).any(|w| w == b"<success")
        {
            success = true;
        }
    }
    success
}

/// The heap a reader keeps after the bytes an idle session's reader has
/// seen since its SASL restart, and its inline size.
fn reader_figures() {
    let read_all = |reader: &mut StreamReader| {
        for chunk in [HEADER, BIND, PRESENCE] {
            reader.push(chunk);
            while let Ok(Some(_)) = reader.next_event() {}
        }
    };
    // The first reader on a thread fills the thread's element prototypes.
    read_all(&mut StreamReader::new(XmlLimits::default()));
    let before = heap();
    let mut reader = StreamReader::new(XmlLimits::default());
    read_all(&mut reader);
    let idle = heap() - before;
    println!(
        "StreamReader: size_of {} B, heap when idle after header + bind + presence: {} B requested, {} B malloc chunks, {} blocks",
        std::mem::size_of::<StreamReader>(),
        idle.bytes,
        idle.chunk,
        idle.blocks
    );
    drop(reader);

    // A stored `<presence/>` as read: its namespace is shared with the
    // thread's prototype, so a copy costs what the manager's copy costs.
    let mut reader = StreamReader::new(XmlLimits::default());
    reader.push(HEADER);
    reader.push(PRESENCE);
    let _ = reader.next_event();
    let Ok(Some(StreamEvent::Stanza(read))) = reader.next_event() else {
        panic!("no presence");
    };
    let before = heap();
    let stored = read.clone();
    let el = heap() - before;
    println!(
        "<presence/> Element: size_of {} B, heap {} B requested, {} B malloc chunks, {} blocks",
        std::mem::size_of::<Element>(),
        el.bytes,
        el.chunk,
        el.blocks
    );
    drop(stored);
    println!("Session: size_of {} B", std::mem::size_of::<Session>());
}

/// Allocations and time per stanza of a reader alone in a hot stream, one
/// stanza per push and 64 stanzas per push: what releasing buffers when
/// idle costs.
fn reader_hot_path() {
    const MESSAGE: &[u8] = b"<message to='romeo@example.net/orchard' type='chat' id='m1'>\
<body>Art thou not Romeo, and a Montague?</body></message>";
    let batch: Vec<u8> = MESSAGE.repeat(64);
    for (label, chunk, per_push) in [
        ("1 stanza per push", MESSAGE, 1),
        ("64 stanzas per push", &batch[..], 64),
    ] {
        let mut reader = StreamReader::new(XmlLimits::default());
        reader.push(HEADER);
        let _ = reader.next_event();
        let pushes = 20_000 / per_push;
        let mut count = 0usize;
        let mut run = |reader: &mut StreamReader| {
            for _ in 0..pushes {
                reader.push(chunk);
                while let Ok(Some(ev)) = reader.next_event() {
                    std::hint::black_box(ev);
                    count += 1;
                }
            }
        };
        run(&mut reader); // warm up
        let calls = ALLOCS.load(Relaxed);
        let t = Instant::now();
        run(&mut reader);
        let elapsed = t.elapsed();
        let calls = ALLOCS.load(Relaxed) - calls;
        let stanzas = (pushes * per_push) as f64;
        assert_eq!(count, 2 * pushes * per_push);
        println!(
            "reader hot path, {label:<20} {:>6.2} allocations and {:>6.0} ns per stanza",
            calls as f64 / stanzas,
            elapsed.as_nanos() as f64 / stanzas
        );
    }
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.replace('_', "").parse().ok())
        .unwrap_or(100_000);
    println!("session_memory: N = {n}");
    reader_figures();
    reader_hot_path();

    let now = Instant::now();
    let t0 = Instant::now();
    let mut store = MemoryStore::with_iterations(1);
    let names: Vec<String> = (0..n).map(|i| format!("u{i}")).collect();
    for name in &names {
        let account = AccountJid::new(name, "localhost").expect("valid account");
        store.add_user(&account, "pass").expect("random salt");
    }
    let auths: Vec<Vec<u8>> = names
        .iter()
        .map(|name| {
            format!(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{}</auth>",
                B64.encode(format!("\0{name}\0pass"))
            )
            .into_bytes()
        })
        .collect();
    let config = Config::builder("localhost")
        .require_tls(false)
        .allow_plain_without_tls(true)
        .build()
        .expect("valid config");
    let mut manager = SessionManager::new(config);
    let mut ids: Vec<SessionId> = Vec::with_capacity(n);
    println!("store and inputs ready in {:.1?}", t0.elapsed());

    let mut mark = heap();
    let mut total = Heap {
        bytes: 0,
        chunk: 0,
        blocks: 0,
    };
    let mut phase = |name: &str, total: &mut Heap, t: Instant| {
        let now_heap = heap();
        let grew = now_heap - mark;
        mark = now_heap;
        total.bytes += grew.bytes;
        total.chunk += grew.chunk;
        total.blocks += grew.blocks;
        println!("{name:<34} {} ({:.1?})", grew.per(n), t.elapsed());
    };

    // `ids` was allocated before the first mark, so it is not counted.
    let t = Instant::now();
    for _ in 0..n {
        let id = manager.connect(ConnectionInfo::plain(), now);
        manager.handle_input(id, HEADER, now);
        drain(&mut manager, &mut store, now);
        ids.push(id);
    }
    phase("connect + stream header", &mut total, t);

    let t = Instant::now();
    for (id, auth) in ids.iter().zip(&auths) {
        manager.handle_input(*id, auth, now);
        assert!(drain(&mut manager, &mut store, now), "login failed");
        manager.handle_input(*id, HEADER, now);
        drain(&mut manager, &mut store, now);
    }
    phase("PLAIN auth + stream restart", &mut total, t);

    let t = Instant::now();
    for id in &ids {
        manager.handle_input(*id, BIND, now);
        drain(&mut manager, &mut store, now);
    }
    phase("bind", &mut total, t);

    let t = Instant::now();
    for id in &ids {
        manager.handle_input(*id, PRESENCE, now);
        drain(&mut manager, &mut store, now);
    }
    phase("initial presence (empty roster)", &mut total, t);

    assert_eq!(manager.session_count(), n);
    let available = ids
        .iter()
        .filter(|id| {
            manager
                .session(**id)
                .is_some_and(|s| s.presence().is_some())
        })
        .count();
    assert_eq!(available, n, "every session is available");
    println!("{:<34} {}", "total per idle session", total.per(n));
    drop(auths);
    // Exit without tearing down N sessions: quicker, and under a heap
    // profiler (heaptrack) what the sessions hold shows up as not freed,
    // by allocation site.
    std::mem::forget(manager);
    std::mem::forget(store);
}
