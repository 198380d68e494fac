//! Sockets and TLS: one task per connection moves bytes between the socket
//! and the core.
//!
//! The task owns the whole stream. It reads into a buffer and forwards each
//! chunk to the core over the shared bounded channel ([`ToCore::Input`]);
//! it takes what the core sends on its own unbounded channel
//! ([`ToConn`]) and writes it, merging buffers that queued up while a write
//! was in flight (one write per socket per batch). When the core drops its
//! sender, the task writes whatever is still queued and shuts the socket
//! down; when the socket ends or fails it reports [`ToCore::Gone`].
//!
//! TLS: on a direct TLS listener (XEP-0368) the task runs the handshake
//! first. On the STARTTLS port the core sends [`ToConn::StartTls`] with the
//! `<proceed/>` bytes in it (one message, so that nothing the client sends
//! after `<proceed/>` can be read as XML); the task writes them, runs the
//! handshake on the same
//! TCP socket and reports [`ToCore::TlsEstablished`], and from then on the
//! same loop ([`serve`], generic over the stream) runs on the TLS stream. A
//! handshake has [`HANDSHAKE_TIMEOUT`] to finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{debug, warn};
use xmpp_session::{RequestId, Response, SessionId, TlsInfo};

use crate::limits::{Bucket, READ_CHUNK, Slot, WRITE_TIMEOUT};
use crate::tls::TlsSide;

/// Time allowed for a TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What connection and storage tasks tell the core.
pub enum ToCore {
    /// Bytes read from a client.
    Input(SessionId, Bytes),
    /// A TLS handshake finished (STARTTLS, or direct TLS before any input),
    /// with the connection's channel-binding data.
    TlsEstablished(SessionId, TlsInfo),
    /// The socket reached EOF or failed.
    Gone(SessionId),
    /// The answer to a request handled off the core task.
    Answer(RequestId, Response),
}

/// What the core tells a connection task.
pub enum ToConn {
    /// Bytes to write.
    Data(Bytes),
    /// Write these bytes (the `<proceed/>`), then run a STARTTLS handshake
    /// before reading anything more.
    StartTls(Bytes),
}

/// How a connection starts.
#[derive(Clone)]
pub enum Mode {
    /// Plain TCP throughout (`--no-tls`).
    Plain,
    /// Plain TCP that may be upgraded with STARTTLS.
    StartTls(TlsSide),
    /// TLS from the first byte (XEP-0368).
    DirectTls(TlsSide),
}

/// What a connection task needs besides its socket.
pub struct Link {
    /// The session this socket carries.
    pub id: SessionId,
    /// The peer's address, for logs.
    pub peer: SocketAddr,
    /// Bytes the core handed over and that are not yet written.
    pub queued: Arc<AtomicUsize>,
    /// The core's shared input channel.
    pub core: mpsc::Sender<ToCore>,
    /// Log handshake failures.
    pub verbose: bool,
    /// `--read-rate` (bytes/s, 0 = unlimited).
    pub read_rate: u64,
    /// `--read-burst` (bytes).
    pub read_burst: u64,
}

/// Starts the task for an accepted TCP connection.
pub fn spawn(
    stream: TcpStream,
    mode: Mode,
    rx: mpsc::UnboundedReceiver<ToConn>,
    link: Link,
    slot: Slot,
) -> tokio::task::AbortHandle {
    if let Err(e) = stream.set_nodelay(true) {
        warn!(peer = %link.peer, "TCP_NODELAY: {e}");
    }
    tokio::spawn(async move {
        let mut rx = rx;
        let end = run(stream, mode, &mut rx, &link).await;
        // The socket is closed by now (`run` owned it): give the slot back.
        drop(slot);
        if end == Ended::Socket {
            let _ = link.core.send(ToCore::Gone(link.id)).await;
        }
    })
    .abort_handle()
}

/// Why a connection task stopped.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The socket ended or failed: the core must be told.
    Socket,
    /// The core closed the connection (or stopped); it knows.
    Core,
}

async fn run(
    stream: TcpStream,
    mode: Mode,
    rx: &mut mpsc::UnboundedReceiver<ToConn>,
    link: &Link,
) -> Ended {
    match mode {
        Mode::Plain => match serve(stream, rx, link).await {
            End::StartTls(_) => {
                warn!(session = ?link.id, "STARTTLS without TLS configured");
                Ended::Socket
            }
            End::Socket => Ended::Socket,
            End::Core => Ended::Core,
        },
        Mode::DirectTls(side) => {
            let Some(tls) = handshake(&side.acceptor, stream, link).await else {
                return Ended::Socket;
            };
            // Before any input: the core records the channel-binding data.
            if !tls_established(&side, &tls, link).await {
                return Ended::Core;
            }
            after_tls(tls, rx, link).await
        }
        Mode::StartTls(side) => match serve(stream, rx, link).await {
            End::StartTls(tcp) => {
                let Some(tls) = handshake(&side.acceptor, tcp, link).await else {
                    return Ended::Socket;
                };
                if !tls_established(&side, &tls, link).await {
                    return Ended::Core;
                }
                after_tls(tls, rx, link).await
            }
            End::Socket => Ended::Socket,
            End::Core => Ended::Core,
        },
    }
}

/// Tells the core the handshake finished, with the channel-binding data;
/// `false` when the core has stopped.
pub async fn tls_established(side: &TlsSide, tls: &TlsStream<TcpStream>, link: &Link) -> bool {
    let info = side.info(tls.get_ref().1);
    link.core
        .send(ToCore::TlsEstablished(link.id, info))
        .await
        .is_ok()
}

/// The rest of a connection once TLS is up.
async fn after_tls(
    tls: TlsStream<TcpStream>,
    rx: &mut mpsc::UnboundedReceiver<ToConn>,
    link: &Link,
) -> Ended {
    match serve(tls, rx, link).await {
        End::StartTls(_) => {
            warn!(session = ?link.id, "STARTTLS on a TLS stream");
            Ended::Socket
        }
        End::Socket => Ended::Socket,
        End::Core => Ended::Core,
    }
}

/// A server handshake on `tcp`, bounded by [`HANDSHAKE_TIMEOUT`].
async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    link: &Link,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            if link.verbose {
                debug!(session = ?link.id, peer = %link.peer, "TLS handshake failed: {e}");
            }
            None
        }
        Err(_) => {
            if link.verbose {
                debug!(session = ?link.id, peer = %link.peer, "TLS handshake timed out");
            }
            None
        }
    }
}

/// Why [`serve`] stopped.
enum End<S> {
    /// The socket ended or failed.
    Socket,
    /// The core closed the connection or stopped.
    Core,
    /// The core asked for a STARTTLS handshake: here is the stream back.
    StartTls(S),
}

/// Moves bytes both ways until the socket ends, the core lets go or asks
/// for STARTTLS.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    rx: &mut mpsc::UnboundedReceiver<ToConn>,
    link: &Link,
) -> End<S> {
    let id = link.id;
    let mut buf = BytesMut::new();
    // --read-rate: after a read over the budget, the socket is not read
    // again until `paused` passes (writes go on meanwhile).
    let mut bucket = Bucket::new(link.read_rate, link.read_burst, Instant::now());
    let pause = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(pause);
    let mut paused = false;
    loop {
        if !paused {
            buf.reserve(READ_CHUNK);
        }
        tokio::select! {
            () = &mut pause, if paused => paused = false,
            read = stream.read_buf(&mut buf), if !paused => match read {
                Ok(0) => return End::Socket,
                Ok(n) => {
                    let wait = bucket.take(n, Instant::now());
                    if !wait.is_zero() {
                        pause.as_mut().reset(tokio::time::Instant::now() + wait);
                        paused = true;
                    }
                    let chunk = buf.split().freeze();
                    if link.core.send(ToCore::Input(id, chunk)).await.is_err() {
                        return End::Core; // the core has stopped
                    }
                }
                Err(e) => {
                    if link.verbose {
                        debug!(session = ?id, "read failed: {e}");
                    }
                    return End::Socket;
                }
            },
            msg = rx.recv() => match msg {
                Some(ToConn::Data(first)) => {
                    let (data, then_tls) = merge(first, rx);
                    if !write(&mut stream, &data, link).await {
                        return End::Socket;
                    }
                    if then_tls {
                        return End::StartTls(stream);
                    }
                }
                Some(ToConn::StartTls(data)) => {
                    if !write(&mut stream, &data, link).await {
                        return End::Socket;
                    }
                    return End::StartTls(stream);
                }
                None => {
                    // The core dropped the connection: everything queued has
                    // been written.
                    let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.shutdown()).await;
                    return End::Core;
                }
            },
        }
    }
}

/// Writes and flushes `data`; false (logged) if the socket failed.
async fn write<S: AsyncWrite + Unpin>(stream: &mut S, data: &[u8], link: &Link) -> bool {
    let written = async {
        stream.write_all(data).await?;
        stream.flush().await
    };
    let result = match tokio::time::timeout(WRITE_TIMEOUT, written).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the client has not read for too long",
        )),
    };
    match result {
        Ok(()) => {
            link.queued.fetch_sub(data.len(), Ordering::Relaxed);
            true
        }
        Err(e) => {
            if link.verbose {
                debug!(session = ?link.id, "write failed: {e}");
            }
            false
        }
    }
}

/// `first` plus the buffers already queued behind it, as one buffer, and
/// whether the last of them was a STARTTLS request (the core sends nothing
/// after one until the handshake is reported).
fn merge(first: Bytes, rx: &mut mpsc::UnboundedReceiver<ToConn>) -> (Bytes, bool) {
    let mut more: Option<BytesMut> = None;
    while let Ok(msg) = rx.try_recv() {
        let (next, starttls) = match msg {
            ToConn::Data(next) => (next, false),
            ToConn::StartTls(next) => (next, true),
        };
        more.get_or_insert_with(|| BytesMut::from(&first[..]))
            .extend_from_slice(&next);
        if starttls {
            return (more.map_or(first, BytesMut::freeze), true);
        }
    }
    (more.map_or(first, BytesMut::freeze), false)
}

/// One buffer out of several (no copy for the common single chunk).
pub fn concat(mut chunks: Vec<Bytes>) -> Bytes {
    if chunks.len() == 1 {
        return chunks.pop().unwrap_or_default();
    }
    let mut buf = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
    for chunk in &chunks {
        buf.extend_from_slice(chunk);
    }
    buf.freeze()
}
