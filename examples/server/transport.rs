//! Sockets: one task per connection moves bytes between the socket and the
//! core.
//!
//! The task owns the whole stream. It reads into a buffer and forwards each
//! chunk to the core over the shared bounded channel ([`ToCore::Input`]);
//! it takes what the core sends on its own unbounded channel
//! ([`ToConn`]) and writes it, merging buffers that queued up while a write
//! was in flight (one write per socket per batch). When the core drops its
//! sender, the task writes whatever is still queued and shuts the socket
//! down; when the socket ends or fails it reports [`ToCore::Gone`].
//!
//! [`serve`] is generic over the stream, so the same loop runs on plain TCP
//! and, later, on TLS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use xmpp_session::{RequestId, Response, SessionId};

use crate::limits::READ_CHUNK;

/// What connection and storage tasks tell the core.
pub enum ToCore {
    /// Bytes read from a client.
    Input(SessionId, Bytes),
    /// The socket reached EOF or failed.
    Gone(SessionId),
    /// The answer to a request handled off the core task.
    Answer(RequestId, Response),
}

/// What the core tells a connection task.
pub enum ToConn {
    /// Bytes to write.
    Data(Bytes),
}

/// Starts the task for an accepted plain TCP connection.
pub fn spawn(
    id: SessionId,
    stream: TcpStream,
    peer: SocketAddr,
    rx: mpsc::UnboundedReceiver<ToConn>,
    queued: Arc<AtomicUsize>,
    core: mpsc::Sender<ToCore>,
) -> tokio::task::AbortHandle {
    if let Err(e) = stream.set_nodelay(true) {
        eprintln!("{peer}: TCP_NODELAY: {e}");
    }
    tokio::spawn(async move {
        let mut rx = rx;
        if serve(id, stream, &mut rx, &queued, &core).await == End::Socket {
            let _ = core.send(ToCore::Gone(id)).await;
        }
    })
    .abort_handle()
}

/// Why [`serve`] stopped.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The socket ended or failed (or the core is gone): report it.
    Socket,
    /// The core closed the connection; it knows.
    Closed,
}

/// Moves bytes both ways until the socket ends or the core lets go.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    id: SessionId,
    mut stream: S,
    rx: &mut mpsc::UnboundedReceiver<ToConn>,
    queued: &AtomicUsize,
    core: &mpsc::Sender<ToCore>,
) -> End {
    let mut buf = BytesMut::new();
    loop {
        buf.reserve(READ_CHUNK);
        tokio::select! {
            read = stream.read_buf(&mut buf) => match read {
                Ok(0) => return End::Socket,
                Ok(_) => {
                    let chunk = buf.split().freeze();
                    if core.send(ToCore::Input(id, chunk)).await.is_err() {
                        return End::Closed; // the core has stopped
                    }
                }
                Err(e) => {
                    eprintln!("{id:?}: read failed: {e}");
                    return End::Socket;
                }
            },
            msg = rx.recv() => match msg {
                Some(ToConn::Data(first)) => {
                    let data = merge(first, rx);
                    if let Err(e) = stream.write_all(&data).await {
                        eprintln!("{id:?}: write failed: {e}");
                        return End::Socket;
                    }
                    queued.fetch_sub(data.len(), Ordering::Relaxed);
                }
                None => {
                    // The core dropped the connection: everything queued has
                    // been written.
                    let _ = stream.shutdown().await;
                    return End::Closed;
                }
            },
        }
    }
}

/// `first` plus every buffer already queued behind it, as one buffer.
fn merge(first: Bytes, rx: &mut mpsc::UnboundedReceiver<ToConn>) -> Bytes {
    if rx.is_empty() {
        return first;
    }
    let mut more = BytesMut::from(&first[..]);
    while let Ok(ToConn::Data(next)) = rx.try_recv() {
        more.extend_from_slice(&next);
    }
    more.freeze()
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
