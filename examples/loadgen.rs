//! A loopback load client for XMPP c2s servers, used to compare the example
//! server with other servers (see BENCHMARKS.md). It speaks raw XMPP over
//! plain TCP, with no XMPP library, so it measures any server the same way.
//!
//! ```text
//! cargo run --release --example loadgen -- --port 5322 --users 500 --server-pid PID
//! cargo run --release --example loadgen -- --port 5322 --starttls --ca ca.pem
//! ```
//!
//! Phases, each ending with one `key=value` summary line on stdout:
//!
//! With `--starttls --ca PEM`, every connection negotiates STARTTLS first
//! (rustls, the server certificate verified for `--domain` against the CA in
//! the PEM file), then proceeds as below over TLS.
//!
//! 1. `login`: every account `<prefix><i>` logs in (stream open, SASL PLAIN,
//!    stream restart, resource binding, initial presence, until the server
//!    reflects that presence), at most `--login-concurrency` at a time. With
//!    `--server-pid`, the server's VmRSS is read before and after, so the line
//!    also gives the memory per idle bound connection.
//! 2. `messaging`: accounts are paired (1 with 2, 3 with 4, ...); both sides of
//!    a pair send chat messages to the other's full JID, with at most
//!    `--window` messages in flight per direction, for `--warmup` plus
//!    `--duration` seconds. Bodies carry the send time; deliveries during the
//!    `--duration` window give messages/s and the latency percentiles.
//!    With `--paced-rate R`, a `paced` phase comes first: the same pairs send
//!    R messages/s in total, evenly spread, so latency is measured at a fixed
//!    load rather than at saturation (where it mostly reflects the window).
//! 3. `close`: every stream is closed and the server's closing tag awaited.
//!
//! With `--server-pid`, each line also gives the server's CPU time (user +
//! system, from /proc/PID/stat) during the phase; `client_cpu_s` is this
//! process's own. Only loopback addresses are accepted, and every wait is
//! bounded by a timeout.

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

#[derive(Parser, Debug, Clone)]
#[command(about = "Loopback XMPP c2s load client: logins, paired chat messaging, close")]
struct Args {
    /// Server address (loopback only).
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Server port.
    #[arg(long, default_value_t = 5222)]
    port: u16,
    /// Domain to open streams to.
    #[arg(long, default_value = "localhost")]
    domain: String,
    /// Number of accounts (`<prefix>1` .. `<prefix>N`).
    #[arg(long, default_value_t = 500)]
    users: usize,
    /// Account name prefix.
    #[arg(long, default_value = "load")]
    user_prefix: String,
    /// Password of account i; `{i}` is replaced by i (no `{i}`: one fixed password).
    #[arg(long, default_value = "password{i}")]
    password_pattern: String,
    /// Logins in flight at once.
    #[arg(long, default_value_t = 50)]
    login_concurrency: usize,
    /// Messages in flight per direction of each pair.
    #[arg(long, default_value_t = 16)]
    window: usize,
    /// Seconds of measured messaging.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of messaging before the measured window (not counted).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Before the saturating phase, a `paced` phase at this many messages/s in
    /// total (0: none), for latency at a fixed load.
    #[arg(long, default_value_t = 0.0)]
    paced_rate: f64,
    /// Seconds of measured paced messaging.
    #[arg(long, default_value_t = 10.0)]
    paced_duration: f64,
    /// Size of each message body in bytes.
    #[arg(long, default_value_t = 100)]
    body_bytes: usize,
    /// Timeout in seconds for each login step and for closing.
    #[arg(long, default_value_t = 15.0)]
    step_timeout: f64,
    /// Seconds to wait after the logins before reading the server's RSS.
    #[arg(long, default_value_t = 1.0)]
    settle: f64,
    /// Server process to read CPU time and RSS from (/proc/PID).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Free text copied into every summary line as `label=...`.
    #[arg(long, default_value = "-")]
    label: String,
    /// Worker threads of this client.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Negotiate STARTTLS before logging in (needs --ca).
    #[arg(long, requires = "ca")]
    starttls: bool,
    /// PEM file with the CA certificate(s) that sign the server's certificate.
    #[arg(long, value_name = "PEM")]
    ca: Option<std::path::PathBuf>,
}

/// The client side of a connection: plain TCP, or TLS after STARTTLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// How logins reach the server: the address, and TLS settings with
/// `--starttls`.
#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    tls: Option<TlsConnector>,
}

/// A rustls connector trusting only the certificates in `ca` (PEM).
fn tls_connector(ca: &std::path::Path) -> Result<TlsConnector, String> {
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))? {
        let cert = cert.map_err(|e| format!("{}: {e}", ca.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Time base for message timestamps (one process sends and receives).
static BASE: OnceLock<Instant> = OnceLock::new();

fn micros_since_base() -> u64 {
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(base.elapsed().as_micros()).unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------------------
// Splitting the incoming byte stream into top-level elements.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `<stream:stream ...>` (the element stays open).
    Open,
    /// A complete child of the stream (a stanza or a nonza).
    Element,
    /// `</stream:stream>`.
    Close,
}

/// Finds complete top-level elements in a growing buffer. Not a validating
/// parser: it tracks tag nesting, skips declarations, comments and CDATA, and
/// honours quotes inside tags, which is all a load client needs.
#[derive(Default)]
struct Scanner {
    buf: Vec<u8>,
    /// Where scanning resumes.
    pos: usize,
    /// 0 outside the stream, 1 inside it, 2+ inside a stanza.
    depth: usize,
    /// Start of the stanza being collected.
    start: usize,
    /// Bytes before this have been handed out and can be dropped.
    done: usize,
}

impl Scanner {
    /// Drops handed-out bytes so the buffer does not grow without end.
    fn compact(&mut self) {
        if self.done > 0 {
            self.buf.drain(..self.done);
            self.pos -= self.done;
            self.start = self.start.saturating_sub(self.done);
            self.done = 0;
        }
    }

    /// Forgets the stream nesting (after SASL success the server opens a new stream).
    fn restart(&mut self) {
        self.depth = 0;
    }

    fn next(&mut self) -> Result<Option<(Kind, Range<usize>)>, String> {
        loop {
            let Some(lt) = find_byte(&self.buf, self.pos, b'<') else {
                self.pos = self.buf.len();
                return Ok(None);
            };
            let Some(&second) = self.buf.get(lt + 1) else {
                self.pos = lt;
                return Ok(None);
            };
            match second {
                b'?' => match find(&self.buf, lt, b"?>") {
                    Some(end) => self.pos = end + 2,
                    None => return self.wait(lt),
                },
                b'!' => {
                    let (close, skip): (&[u8], usize) = if self.buf[lt..].starts_with(b"<![CDATA[")
                    {
                        (b"]]>", 3)
                    } else if self.buf[lt..].starts_with(b"<!--") {
                        (b"-->", 3)
                    } else if self.buf.len() - lt < 9 {
                        return self.wait(lt);
                    } else {
                        return Err("unexpected markup declaration".into());
                    };
                    match find(&self.buf, lt + 2, close) {
                        Some(end) => self.pos = end + skip,
                        None => return self.wait(lt),
                    }
                }
                b'/' => {
                    let Some(gt) = find_byte(&self.buf, lt, b'>') else {
                        return self.wait(lt);
                    };
                    self.pos = gt + 1;
                    match self.depth {
                        0 => return Err("end tag outside the stream".into()),
                        1 => {
                            self.depth = 0;
                            self.done = self.pos;
                            return Ok(Some((Kind::Close, lt..self.pos)));
                        }
                        _ => {
                            self.depth -= 1;
                            if self.depth == 1 {
                                self.done = self.pos;
                                return Ok(Some((Kind::Element, self.start..self.pos)));
                            }
                        }
                    }
                }
                _ => {
                    let Some(gt) = tag_end(&self.buf, lt) else {
                        return self.wait(lt);
                    };
                    let empty = self.buf[gt - 1] == b'/';
                    self.pos = gt + 1;
                    match self.depth {
                        0 => {
                            self.depth = 1;
                            self.done = self.pos;
                            return Ok(Some((Kind::Open, lt..self.pos)));
                        }
                        1 if empty => {
                            self.done = self.pos;
                            return Ok(Some((Kind::Element, lt..self.pos)));
                        }
                        1 => {
                            self.start = lt;
                            self.depth = 2;
                        }
                        _ if empty => {}
                        _ => self.depth += 1,
                    }
                }
            }
        }
    }

    /// The construct at `lt` is incomplete: resume there after the next read.
    fn wait(&mut self, lt: usize) -> Result<Option<(Kind, Range<usize>)>, String> {
        self.pos = lt;
        Ok(None)
    }
}

/// Index of the `>` closing the tag that starts at `lt`, skipping quoted values.
fn tag_end(buf: &[u8], lt: usize) -> Option<usize> {
    let mut quote = None;
    for (i, &b) in buf.iter().enumerate().skip(lt + 1) {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if b == q => quote = None,
            (None, b'>') => return Some(i),
            _ => {}
        }
    }
    None
}

fn find_byte(buf: &[u8], from: usize, byte: u8) -> Option<usize> {
    buf.get(from..)?
        .iter()
        .position(|&b| b == byte)
        .map(|i| i + from)
}

fn find(buf: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    buf.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

fn contains(buf: &[u8], needle: &str) -> bool {
    find(buf, 0, needle.as_bytes()).is_some()
}

/// The value of attribute `name` in the start tag of `elem` (either quote style).
fn attr<'a>(elem: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let head = &elem[..tag_end(elem, 0)?];
    for quote in [b'\'', b'"'] {
        let mut pat = Vec::with_capacity(name.len() + 3);
        pat.push(b' ');
        pat.extend_from_slice(name.as_bytes());
        pat.push(b'=');
        pat.push(quote);
        if let Some(at) = find(head, 0, &pat) {
            let from = at + pat.len();
            let to = find_byte(head, from, quote)?;
            return Some(&head[from..to]);
        }
    }
    None
}

/// The text between `<tag>` and `</tag>` (first occurrence, no attributes on the tag).
fn child_text<'a>(elem: &'a [u8], tag: &str) -> Option<&'a [u8]> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let from = find(elem, 0, open.as_bytes())? + open.len();
    let to = find(elem, from, close.as_bytes())?;
    Some(&elem[from..to])
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// One client connection.

struct Conn {
    stream: Stream,
    scanner: Scanner,
    /// The full JID the server bound.
    jid: String,
}

impl Conn {
    /// The next top-level item, reading as needed, within `limit`.
    async fn item(&mut self, limit: Duration) -> Result<(Kind, Vec<u8>), String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some((kind, range)) = self.scanner.next()? {
                return Ok((kind, self.scanner.buf[range].to_vec()));
            }
            self.scanner.compact();
            self.scanner.buf.reserve(8192);
            let read =
                tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.scanner.buf))
                    .await
                    .map_err(|_| "timed out waiting for the server".to_owned())?
                    .map_err(|e| format!("read: {e}"))?;
            if read == 0 {
                return Err("server closed the connection".into());
            }
        }
    }

    /// The next complete element (a closed stream is an error).
    async fn element(&mut self, limit: Duration) -> Result<Vec<u8>, String> {
        match self.item(limit).await? {
            (Kind::Element, elem) => Ok(elem),
            (kind, data) => Err(format!(
                "expected an element, got {kind:?}: {}",
                String::from_utf8_lossy(&data)
            )),
        }
    }

    async fn send(&mut self, data: &str) -> Result<(), String> {
        self.stream
            .write_all(data.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))
    }

    /// Opens a stream and returns the features element.
    async fn open_stream(&mut self, domain: &str, limit: Duration) -> Result<Vec<u8>, String> {
        self.send(&format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' to='{domain}' version='1.0'>"
        ))
        .await?;
        match self.item(limit).await? {
            (Kind::Open, _) => {}
            (_, data) => {
                return Err(format!(
                    "expected a stream header: {}",
                    String::from_utf8_lossy(&data)
                ));
            }
        }
        let features = self.element(limit).await?;
        if !features.starts_with(b"<stream:features") {
            return Err(format!(
                "expected features: {}",
                String::from_utf8_lossy(&features)
            ));
        }
        Ok(features)
    }
}

/// A full login; returns the connection once the server has reflected the
/// initial presence.
async fn login(
    target: &Target,
    domain: &str,
    user: &str,
    password: &str,
    limit: Duration,
) -> Result<Conn, String> {
    let stream = timeout(limit, TcpStream::connect(target.addr))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("nodelay: {e}"))?;
    let mut conn = Conn {
        stream: Stream::Plain(stream),
        scanner: Scanner::default(),
        jid: String::new(),
    };

    let mut features = conn.open_stream(domain, limit).await?;
    if let Some(tls) = &target.tls {
        conn.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            .await?;
        let proceed = conn.element(limit).await?;
        if !proceed.starts_with(b"<proceed") {
            return Err(format!("STARTTLS: {}", String::from_utf8_lossy(&proceed)));
        }
        let Stream::Plain(tcp) = conn.stream else {
            return Err("STARTTLS twice".into());
        };
        let name = ServerName::try_from(domain.to_owned()).map_err(|e| format!("{domain}: {e}"))?;
        let tls = timeout(limit, tls.connect(name, tcp))
            .await
            .map_err(|_| "TLS handshake timed out".to_owned())?
            .map_err(|e| format!("TLS handshake: {e}"))?;
        conn.stream = Stream::Tls(Box::new(tls));
        conn.scanner.restart();
        features = conn.open_stream(domain, limit).await?;
    }
    if !contains(&features, ">PLAIN<") {
        return Err("PLAIN not offered".into());
    }
    let mut creds = Vec::with_capacity(user.len() + password.len() + 2);
    creds.push(0);
    creds.extend_from_slice(user.as_bytes());
    creds.push(0);
    creds.extend_from_slice(password.as_bytes());
    conn.send(&format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{}</auth>",
        base64(&creds)
    ))
    .await?;
    let outcome = conn.element(limit).await?;
    if !outcome.starts_with(b"<success") {
        return Err(format!("SASL: {}", String::from_utf8_lossy(&outcome)));
    }

    conn.scanner.restart();
    let features = conn.open_stream(domain, limit).await?;
    if !contains(&features, "urn:ietf:params:xml:ns:xmpp-bind") {
        return Err("bind not offered".into());
    }
    conn.send(
        "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
         <resource>lg</resource></bind></iq>",
    )
    .await?;
    loop {
        let elem = conn.element(limit).await?;
        if elem.starts_with(b"<iq") && attr(&elem, "id") == Some(b"bind1") {
            if attr(&elem, "type") != Some(b"result") {
                return Err(format!("bind: {}", String::from_utf8_lossy(&elem)));
            }
            let jid = child_text(&elem, "jid").ok_or("bind result without a jid")?;
            conn.jid = String::from_utf8_lossy(jid).into_owned();
            break;
        }
    }

    conn.send("<presence/>").await?;
    loop {
        let elem = conn.element(limit).await?;
        if elem.starts_with(b"<presence")
            && attr(&elem, "from").is_none_or(|f| f == conn.jid.as_bytes())
        {
            return Ok(conn);
        }
    }
}

// ---------------------------------------------------------------------------
// Measurements of the server process.

fn clock_ticks_per_s() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: &str, ticks: f64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces: fields are counted after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the file; `rest` starts at field 3.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks)
}

fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Server and client CPU seconds at one instant.
#[derive(Clone, Copy)]
struct CpuMark {
    server: Option<f64>,
    client: Option<f64>,
}

struct Probe {
    server_pid: Option<String>,
    ticks: f64,
}

impl Probe {
    fn mark(&self) -> CpuMark {
        CpuMark {
            server: self
                .server_pid
                .as_deref()
                .and_then(|p| cpu_seconds(p, self.ticks)),
            client: cpu_seconds("self", self.ticks),
        }
    }

    fn rss(&self) -> Option<u64> {
        self.server_pid.as_deref().and_then(rss_kib)
    }
}

/// `server_cpu_s=… client_cpu_s=…` between two marks.
fn cpu_fields(from: CpuMark, to: CpuMark) -> (Option<f64>, String) {
    let server = from.server.zip(to.server).map(|(a, b)| b - a);
    let client = from.client.zip(to.client).map(|(a, b)| b - a);
    let text = format!(
        "server_cpu_s={} client_cpu_s={}",
        opt(server, 2),
        opt(client, 2)
    );
    (server, text)
}

fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "na".to_owned(), |v| format!("{v:.decimals$}"))
}

/// The p-th percentile (0..=100) of sorted values, nearest rank.
fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn ms(micros: Option<u64>) -> String {
    opt(micros.map(|m| m as f64 / 1000.0), 3)
}

// ---------------------------------------------------------------------------
// Messaging.

/// One direction of a pair: the sender's window and counters.
struct Direction {
    window: Semaphore,
    sent: AtomicU64,
    received: AtomicU64,
    sender_done: AtomicBool,
}

impl Direction {
    fn new(window: usize) -> Arc<Self> {
        Arc::new(Self {
            window: Semaphore::new(window),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            sender_done: AtomicBool::new(false),
        })
    }
}

/// When a paced sender sends: every `period`, starting at `first`.
#[derive(Clone, Copy)]
struct Pace {
    first: tokio::time::Instant,
    period: Duration,
}

/// Timing of the messaging phase, in microseconds since `BASE`.
#[derive(Clone, Copy)]
struct Window {
    measure_from: u64,
    measure_to: u64,
    /// Senders stop at `measure_to`; receivers give up here.
    drain_until: u64,
}

/// Sends messages to `to` while the window allows, until `stop`.
async fn send_loop(
    mut write: WriteHalf<Stream>,
    to: String,
    out: Arc<Direction>,
    body_bytes: usize,
    window: usize,
    stop: tokio::time::Instant,
    pace: Option<Pace>,
) -> (WriteHalf<Stream>, Result<(), String>) {
    let mut ticker = pace.map(|p| {
        let mut t = tokio::time::interval_at(p.first, p.period);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        t
    });
    // Paced: one message per tick; otherwise as many as the window allows.
    let batch = if ticker.is_some() { 1 } else { window };
    let mut buf = String::new();
    let mut seq: u64 = 0;
    let result = loop {
        if let Some(t) = ticker.as_mut()
            && tokio::time::timeout_at(stop, t.tick()).await.is_err()
        {
            break Ok(());
        }
        let Ok(Ok(permit)) = tokio::time::timeout_at(stop, out.window.acquire()).await else {
            break Ok(());
        };
        permit.forget();
        let mut n = 1;
        while n < batch {
            match out.window.try_acquire() {
                Ok(p) => {
                    p.forget();
                    n += 1;
                }
                Err(_) => break,
            }
        }
        buf.clear();
        let stamp = micros_since_base();
        for _ in 0..n {
            seq += 1;
            let mut body = format!("T{stamp:020} S{seq:010} ");
            while body.len() < body_bytes {
                body.push('x');
            }
            buf.push_str("<message type='chat' to='");
            buf.push_str(&to);
            buf.push_str("'><body>");
            buf.push_str(&body);
            buf.push_str("</body></message>");
        }
        if let Err(e) = write.write_all(buf.as_bytes()).await {
            break Err(format!("write: {e}"));
        }
        out.sent.fetch_add(n as u64, Ordering::Relaxed);
        if tokio::time::Instant::now() >= stop {
            break Ok(());
        }
    };
    out.sender_done.store(true, Ordering::Release);
    (write, result)
}

/// What one receiver saw.
#[derive(Default)]
struct Received {
    /// Latencies (µs) of messages received inside the measured window.
    latencies: Vec<u64>,
    errors: u64,
    failure: Option<String>,
}

/// Receives the peer's messages (freeing the peer's window) until the peer
/// has stopped and everything it sent has arrived, or the drain time is up.
async fn receive_loop(
    mut read: ReadHalf<Stream>,
    mut scanner: Scanner,
    incoming: Arc<Direction>,
    own: Arc<Direction>,
    times: Window,
) -> (ReadHalf<Stream>, Scanner, Received) {
    let mut got = Received::default();
    loop {
        let mut from_peer = 0u64;
        let mut bounced = 0u64;
        loop {
            match scanner.next() {
                Ok(Some((Kind::Element, range))) => {
                    let elem = &scanner.buf[range];
                    if !elem.starts_with(b"<message") {
                        continue;
                    }
                    if attr(elem, "type") == Some(b"error") {
                        bounced += 1;
                        continue;
                    }
                    from_peer += 1;
                    let now = micros_since_base();
                    let stamp = child_text(elem, "body")
                        .and_then(|b| b.get(1..21))
                        .and_then(|t| std::str::from_utf8(t).ok())
                        .and_then(|t| t.parse::<u64>().ok());
                    if let Some(stamp) = stamp
                        && now >= times.measure_from
                        && now < times.measure_to
                    {
                        got.latencies.push(now.saturating_sub(stamp));
                    }
                }
                Ok(Some((kind, _))) => {
                    got.failure = Some(format!("unexpected {kind:?} while messaging"));
                    return (read, scanner, got);
                }
                Ok(None) => break,
                Err(e) => {
                    got.failure = Some(e);
                    return (read, scanner, got);
                }
            }
        }
        if from_peer > 0 {
            incoming.received.fetch_add(from_peer, Ordering::Relaxed);
            incoming
                .window
                .add_permits(usize::try_from(from_peer).unwrap_or(usize::MAX));
        }
        if bounced > 0 {
            got.errors += bounced;
            own.window
                .add_permits(usize::try_from(bounced).unwrap_or(usize::MAX));
        }
        if incoming.sender_done.load(Ordering::Acquire)
            && incoming.received.load(Ordering::Relaxed) >= incoming.sent.load(Ordering::Relaxed)
        {
            return (read, scanner, got);
        }
        let now = micros_since_base();
        if now >= times.drain_until {
            return (read, scanner, got);
        }
        scanner.compact();
        scanner.buf.reserve(16 * 1024);
        // Short reads so the end conditions above are re-checked regularly.
        match timeout(Duration::from_millis(100), read.read_buf(&mut scanner.buf)).await {
            Err(_) => {}
            Ok(Ok(0)) => {
                got.failure = Some("server closed the connection".into());
                return (read, scanner, got);
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                got.failure = Some(format!("read: {e}"));
                return (read, scanner, got);
            }
        }
    }
}

// ---------------------------------------------------------------------------

#[derive(Default)]
struct LoginStats {
    ok: usize,
    failed: usize,
    first_error: Option<String>,
    latencies: Vec<u64>,
}

async fn login_phase(args: &Args, probe: &Probe, target: &Target) -> Vec<Option<Conn>> {
    let limit = Duration::from_secs_f64(args.step_timeout);
    let rss_before = probe.rss();
    let gate = Arc::new(Semaphore::new(args.login_concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let cpu0 = probe.mark();
    let started = Instant::now();
    for i in 1..=args.users {
        let gate = Arc::clone(&gate);
        let domain = args.domain.clone();
        let user = format!("{}{i}", args.user_prefix);
        let password = args.password_pattern.replace("{i}", &i.to_string());
        let target = target.clone();
        tasks.spawn(async move {
            let Ok(_permit) = gate.acquire_owned().await else {
                return (i, Err("semaphore closed".to_owned()), 0);
            };
            let t = Instant::now();
            let result = login(&target, &domain, &user, &password, limit).await;
            (
                i,
                result,
                u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX),
            )
        });
    }
    let mut conns: Vec<Option<Conn>> = (0..args.users).map(|_| None).collect();
    let mut stats = LoginStats::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((i, Ok(conn), micros)) => {
                stats.ok += 1;
                stats.latencies.push(micros);
                if let Some(slot) = conns.get_mut(i - 1) {
                    *slot = Some(conn);
                }
            }
            Ok((i, Err(e), _)) => {
                stats.failed += 1;
                stats
                    .first_error
                    .get_or_insert(format!("{}{i}: {e}", args.user_prefix));
            }
            Err(e) => {
                stats.failed += 1;
                stats.first_error.get_or_insert(format!("task: {e}"));
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu1 = probe.mark();
    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    let rss_after = probe.rss();
    stats.latencies.sort_unstable();
    let (server_cpu, cpu_text) = cpu_fields(cpu0, cpu1);
    let per_conn = rss_before
        .zip(rss_after)
        .filter(|_| stats.ok > 0)
        .map(|(a, b)| (b as f64 - a as f64) / stats.ok as f64);
    println!(
        "phase=login label={} users={} ok={} failed={} elapsed_s={elapsed:.3} logins_per_s={:.1} \
         login_p50_ms={} login_p99_ms={} {cpu_text} server_cpu_ms_per_login={} \
         rss_before_kib={} rss_after_kib={} rss_per_conn_kib={}",
        args.label,
        args.users,
        stats.ok,
        stats.failed,
        stats.ok as f64 / elapsed,
        ms(percentile(&stats.latencies, 50.0)),
        ms(percentile(&stats.latencies, 99.0)),
        opt(
            server_cpu
                .filter(|_| stats.ok > 0)
                .map(|c| c * 1000.0 / stats.ok as f64),
            3
        ),
        opt(rss_before.map(|v| v as f64), 0),
        opt(rss_after.map(|v| v as f64), 0),
        opt(per_conn, 1),
    );
    if let Some(e) = stats.first_error {
        eprintln!("first login error: {e}");
    }
    conns
}

/// How one messaging phase sends.
struct Plan<'a> {
    /// `phase=` in the summary line.
    name: &'a str,
    /// Total messages/s over all pairs (`None`: as fast as the window allows).
    rate: Option<f64>,
    warmup: f64,
    duration: f64,
}

/// Runs one messaging phase on the pairs of logged-in connections (1 with 2,
/// 3 with 4, ...) and puts each connection back in its slot afterwards (a
/// connection that failed is dropped).
async fn messaging_phase(args: &Args, probe: &Probe, conns: &mut [Option<Conn>], plan: &Plan<'_>) {
    let pairs: Vec<(usize, usize)> = (0..conns.len() / 2)
        .map(|k| (2 * k, 2 * k + 1))
        .filter(|&(a, b)| conns[a].is_some() && conns[b].is_some())
        .collect();
    let directions_total = pairs.len() * 2;
    let start = micros_since_base();
    let warm = (plan.warmup * 1e6) as u64;
    let run = (plan.duration * 1e6) as u64;
    let times = Window {
        measure_from: start + warm,
        measure_to: start + warm + run,
        drain_until: start + warm + run + 5_000_000,
    };
    let base = *BASE.get_or_init(Instant::now);
    let at = |micros: u64| tokio::time::Instant::from_std(base + Duration::from_micros(micros));
    let stop = at(times.measure_to);
    let window = args.window.max(1);
    // Paced: every direction sends at rate / directions, staggered evenly.
    let period = plan
        .rate
        .filter(|r| *r > 0.0 && directions_total > 0)
        .map(|r| Duration::from_secs_f64(directions_total as f64 / r));

    let mut directions = Vec::new();
    let mut senders = JoinSet::new();
    let mut receivers = JoinSet::new();
    for &(a, b) in &pairs {
        let (Some(conn_a), Some(conn_b)) = (conns[a].take(), conns[b].take()) else {
            continue;
        };
        let a_to_b = Direction::new(window);
        let b_to_a = Direction::new(window);
        directions.push(Arc::clone(&a_to_b));
        directions.push(Arc::clone(&b_to_a));
        let (a_jid, b_jid) = (conn_a.jid.clone(), conn_b.jid.clone());
        // (slot, connection, where it sends, its outgoing direction, its incoming direction)
        for (slot, conn, to, out, incoming) in [
            (a, conn_a, b_jid, Arc::clone(&a_to_b), Arc::clone(&b_to_a)),
            (b, conn_b, a_jid, b_to_a, a_to_b),
        ] {
            let Conn {
                stream,
                scanner,
                jid,
            } = conn;
            let (read, write) = tokio::io::split(stream);
            let pace = period.map(|period| Pace {
                first: at(start) + period.mul_f64(slot as f64 / directions_total.max(1) as f64),
                period,
            });
            let sender_out = Arc::clone(&out);
            let body_bytes = args.body_bytes;
            senders.spawn(async move {
                (
                    slot,
                    send_loop(write, to, sender_out, body_bytes, window, stop, pace).await,
                )
            });
            receivers.spawn(async move {
                (
                    slot,
                    jid,
                    receive_loop(read, scanner, incoming, out, times).await,
                )
            });
        }
    }

    tokio::time::sleep_until(at(times.measure_from)).await;
    let cpu0 = probe.mark();
    tokio::time::sleep_until(at(times.measure_to)).await;
    let cpu1 = probe.mark();

    let mut writes: Vec<Option<WriteHalf<Stream>>> = (0..conns.len()).map(|_| None).collect();
    let mut first_error = None;
    while let Some(joined) = senders.join_next().await {
        match joined {
            Ok((slot, (write, result))) => {
                if let Err(e) = result {
                    first_error.get_or_insert(e);
                }
                writes[slot] = Some(write);
            }
            Err(e) => {
                first_error.get_or_insert(format!("sender task: {e}"));
            }
        }
    }
    let mut latencies = Vec::new();
    let mut errors = 0u64;
    let mut failed_conns = 0usize;
    while let Some(joined) = receivers.join_next().await {
        match joined {
            Ok((slot, jid, (read, scanner, got))) => {
                latencies.extend_from_slice(&got.latencies);
                errors += got.errors;
                match got.failure {
                    Some(e) => {
                        failed_conns += 1;
                        first_error.get_or_insert(e);
                    }
                    None => {
                        if let Some(write) = writes[slot].take()
                            && read.is_pair_of(&write)
                        {
                            conns[slot] = Some(Conn {
                                stream: read.unsplit(write),
                                scanner,
                                jid,
                            });
                        }
                    }
                }
            }
            Err(e) => {
                failed_conns += 1;
                first_error.get_or_insert(format!("receiver task: {e}"));
            }
        }
    }
    let sent: u64 = directions
        .iter()
        .map(|d| d.sent.load(Ordering::Relaxed))
        .sum();
    let received: u64 = directions
        .iter()
        .map(|d| d.received.load(Ordering::Relaxed))
        .sum();
    latencies.sort_unstable();
    let delivered = latencies.len();
    let (server_cpu, cpu_text) = cpu_fields(cpu0, cpu1);
    println!(
        "phase={} label={} pairs={} window={window} target_rate={} body_bytes={} duration_s={} \
         delivered={delivered} messages_per_s={:.0} p50_ms={} p90_ms={} p99_ms={} max_ms={} sent_total={sent} \
         received_total={received} lost={} bounced={errors} failed_conns={failed_conns} {cpu_text} \
         server_cpu_s_per_1000_msgs={}",
        plan.name,
        args.label,
        directions.len() / 2,
        opt(plan.rate, 0),
        args.body_bytes,
        plan.duration,
        delivered as f64 / plan.duration,
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 90.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last().copied()),
        sent.saturating_sub(received).saturating_sub(errors),
        opt(
            server_cpu
                .filter(|_| delivered > 0)
                .map(|c| c * 1000.0 / delivered as f64),
            4
        ),
    );
    if let Some(e) = first_error {
        eprintln!("first {} error: {e}", plan.name);
    }
}

async fn close_phase(args: &Args, probe: &Probe, conns: Vec<Option<Conn>>) {
    let limit = Duration::from_secs_f64(args.step_timeout);
    let cpu0 = probe.mark();
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    let conns: Vec<Conn> = conns.into_iter().flatten().collect();
    let total = conns.len();
    for mut conn in conns {
        tasks.spawn(async move {
            conn.send("</stream:stream>").await?;
            loop {
                match conn.item(limit).await {
                    Ok((Kind::Close, _)) => break,
                    Ok(_) => {}
                    Err(e) if e == "server closed the connection" => break,
                    Err(e) => return Err(e),
                }
            }
            let _ = conn.stream.shutdown().await;
            Ok::<(), String>(())
        });
    }
    let (mut ok, mut failed, mut first_error) = (0usize, 0usize, None);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => ok += 1,
            Ok(Err(e)) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(format!("task: {e}"));
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (_, cpu_text) = cpu_fields(cpu0, probe.mark());
    println!(
        "phase=close label={} connections={total} closed={ok} failed={failed} elapsed_s={elapsed:.3} {cpu_text}",
        args.label
    );
    if let Some(e) = first_error {
        eprintln!("first close error: {e}");
    }
}

fn main() {
    let args = Args::parse();
    if !args.host.is_loopback() {
        eprintln!(
            "error: --host must be a loopback address (got {})",
            args.host
        );
        std::process::exit(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: runtime: {e}");
            std::process::exit(1);
        }
    };
    BASE.get_or_init(Instant::now);
    let probe = Probe {
        server_pid: args.server_pid.map(|p| p.to_string()),
        ticks: clock_ticks_per_s(),
    };
    let tls = match (&args.ca, args.starttls) {
        (Some(ca), true) => match tls_connector(ca) {
            Ok(tls) => Some(tls),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(2);
            }
        },
        _ => None,
    };
    let target = Target {
        addr: SocketAddr::new(args.host, args.port),
        tls,
    };
    runtime.block_on(async {
        let mut conns = login_phase(&args, &probe, &target).await;
        if args.paced_rate > 0.0 {
            let plan = Plan {
                name: "paced",
                rate: Some(args.paced_rate),
                warmup: args.warmup,
                duration: args.paced_duration,
            };
            messaging_phase(&args, &probe, &mut conns, &plan).await;
        }
        let plan = Plan {
            name: "messaging",
            rate: None,
            warmup: args.warmup,
            duration: args.duration,
        };
        messaging_phase(&args, &probe, &mut conns, &plan).await;
        close_phase(&args, &probe, conns).await;
    });
}
