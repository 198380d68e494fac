//! XMPP over WebSocket (RFC 7395) on `--ws-listen`: web clients
//! (Converse.js, xmpp.js, Strophe.js) connect to
//! `ws://ADDR/xmpp-websocket` (plain, only with `--no-tls`) or
//! `wss://ADDR/xmpp-websocket` (TLS with the server's certificate).
//!
//! The handshake (tokio-tungstenite) accepts only the path [`PATH`] and
//! requires the subprotocol `xmpp`, which it echoes, as RFC 7395 says.
//! After that the task moves whole messages: each text message's payload
//! goes to the core as one [`ToCore::Input`] (the core passes it to
//! `SessionManager::handle_input`, which reads one frame on a WebSocket
//! session), and each buffer the core sends ([`ToConn::Data`], one
//! `Output::Transmit`) goes out as one text message. Binary messages are
//! refused (RFC 7395 uses text only); pings are answered by tungstenite.
//! When the core lets go, the task sends a WebSocket close and ends.

use std::net::SocketAddr;

use crate::tls::TlsSide;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{WebSocketStream, accept_hdr_async_with_config};
use tracing::{debug, warn};
use xmpp_session::{ConnectionInfo, Framing};

use crate::limits::{Slot, WRITE_TIMEOUT};
use crate::transport::{self, HANDSHAKE_TIMEOUT, Link, ToConn, ToCore};

/// The HTTP path of the WebSocket endpoint.
pub const PATH: &str = "/xmpp-websocket";

/// The WebSocket subprotocol RFC 7395 registers.
const SUBPROTOCOL: &str = "xmpp";

/// Largest WebSocket message accepted: the core's largest stanza
/// (256 KiB) plus room; bigger ones end the connection before the core
/// sees them.
const MAX_MESSAGE: usize = 512 * 1024;

/// The WebSocket listener and its TLS, if any (`wss://`).
pub struct WsListener {
    /// The socket.
    pub socket: TcpListener,
    /// `Some` for `wss://`: the server's certificate.
    pub tls: Option<TlsSide>,
}

impl WsListener {
    /// The facts the core needs about a connection accepted here.
    pub fn connection_info(&self) -> ConnectionInfo {
        let info = match self.tls {
            Some(_) => ConnectionInfo::direct_tls(),
            None => ConnectionInfo::plain(),
        };
        info.with_framing(Framing::WebSocket)
    }

    /// The URL clients use, for the start line.
    pub fn url(&self, local: SocketAddr) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{local}{PATH}")
    }
}

/// Accepts on `listener`, or never returns if there is none.
pub async fn accept(
    listener: Option<&WsListener>,
) -> std::io::Result<(TcpStream, SocketAddr, &WsListener)> {
    match listener {
        Some(l) => l.socket.accept().await.map(|(s, peer)| (s, peer, l)),
        None => std::future::pending().await,
    }
}

/// Starts the task for a connection accepted on the WebSocket listener.
pub fn spawn(
    stream: TcpStream,
    tls: Option<TlsSide>,
    rx: mpsc::UnboundedReceiver<ToConn>,
    link: Link,
    slot: Slot,
) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        let mut rx = rx;
        // Small messages go out at once.
        if let Err(e) = stream.set_nodelay(true) {
            log(&link, format_args!("TCP_NODELAY: {e}"));
        }
        let socket_ended = match tls {
            None => serve(stream, &mut rx, &link).await,
            Some(side) => {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, side.acceptor.accept(stream)).await {
                    // The channel-binding data goes to the core before any
                    // input (it is a direct-TLS connection).
                    Ok(Ok(tls)) => {
                        if transport::tls_established(&side, &tls, &link).await {
                            serve(tls, &mut rx, &link).await
                        } else {
                            false
                        }
                    }
                    Ok(Err(e)) => {
                        log(&link, format_args!("TLS handshake failed: {e}"));
                        true
                    }
                    Err(_) => {
                        log(&link, format_args!("TLS handshake timed out"));
                        true
                    }
                }
            }
        };
        // The socket is closed by now: give the admission slot back.
        drop(slot);
        if socket_ended {
            let _ = link.core.send(ToCore::Gone(link.id)).await;
        }
    })
    .abort_handle()
}

fn log(link: &Link, what: std::fmt::Arguments<'_>) {
    if link.verbose {
        debug!(session = ?link.id, peer = %link.peer, "{what}");
    }
}

/// The HTTP upgrade: the path must be [`PATH`] and the client must offer
/// the `xmpp` subprotocol, which the answer names.
#[allow(clippy::result_large_err)] // tungstenite's callback signature
fn check_upgrade(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    let refuse = |status: StatusCode, why: &str| {
        let mut refusal = ErrorResponse::new(Some(why.to_owned()));
        *refusal.status_mut() = status;
        refusal
    };
    if request.uri().path() != PATH {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "the XMPP WebSocket endpoint is /xmpp-websocket",
        ));
    }
    let offers_xmpp = request
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL);
    if !offers_xmpp {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "the WebSocket subprotocol 'xmpp' is required (RFC 7395)",
        ));
    }
    response.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    Ok(response)
}

/// Runs the upgrade, then moves messages both ways until the socket ends
/// (`true`: the core must be told) or the core lets go (`false`).
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    rx: &mut mpsc::UnboundedReceiver<ToConn>,
    link: &Link,
) -> bool {
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let upgrade = accept_hdr_async_with_config(stream, check_upgrade, Some(config));
    let mut ws = match tokio::time::timeout(HANDSHAKE_TIMEOUT, upgrade).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            log(link, format_args!("WebSocket upgrade failed: {e}"));
            return true;
        }
        Err(_) => {
            log(link, format_args!("WebSocket upgrade timed out"));
            return true;
        }
    };
    loop {
        tokio::select! {
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let payload = Bytes::from(text);
                    if link.core.send(ToCore::Input(link.id, payload)).await.is_err() {
                        return false; // the core has stopped
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    log(link, format_args!("binary WebSocket message: closing"));
                    let _ = ws.close(None).await;
                    return true;
                }
                Some(Ok(Message::Close(_))) | None => return true,
                // Pings are answered by tungstenite; pongs need nothing.
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    log(link, format_args!("WebSocket read failed: {e}"));
                    return true;
                }
            },
            msg = rx.recv() => match msg {
                Some(ToConn::Data(data)) => {
                    if !send(&mut ws, data, link).await {
                        return true;
                    }
                }
                Some(ToConn::StartTls(_)) => {
                    warn!(session = ?link.id, "STARTTLS on a WebSocket connection");
                    return true;
                }
                None => {
                    // The core closed the session: its `<close/>` went out.
                    let _ = tokio::time::timeout(WRITE_TIMEOUT, ws.close(None)).await;
                    return false;
                }
            },
        }
    }
}

/// Sends one core output as one text message; false if the socket failed.
async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    data: Bytes,
    link: &Link,
) -> bool {
    let len = data.len();
    let Ok(text) = Utf8Bytes::try_from(data) else {
        warn!(session = ?link.id, "output is not UTF-8");
        return false;
    };
    match tokio::time::timeout(WRITE_TIMEOUT, ws.send(Message::Text(text))).await {
        Ok(Ok(())) => {
            link.queued
                .fetch_sub(len, std::sync::atomic::Ordering::Relaxed);
            true
        }
        Ok(Err(e)) => {
            log(link, format_args!("WebSocket write failed: {e}"));
            false
        }
        Err(_) => {
            log(link, format_args!("the client has not read for too long"));
            false
        }
    }
}
