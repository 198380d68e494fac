//! tokio-xmpp against the example server: romeo and juliet (demo password
//! `password`) log in over STARTTLS on 127.0.0.1:PORT, verifying the server
//! certificate for `localhost` against the CA in `$SSL_CERT_FILE` (read by
//! rustls-native-certs), and romeo sends juliet a chat message.
//!
//! Usage: `tokio-xmpp-interop PORT`. Exit status 0 and `PASS` on success,
//! 1 with the reason on any failure or after 30 s.

use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt;
use tokio_xmpp::connect::DnsConfig;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::message::{Lang, Message, MessageType};
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};
use tokio_xmpp::{Client, Event, Stanza};

/// Logs `name@localhost` in over STARTTLS; returns the client and its
/// bound JID.
async fn login(name: &str, port: u16) -> Result<(Client, Jid), String> {
    let jid: BareJid = format!("{name}@localhost")
        .parse()
        .map_err(|e| format!("{name}: {e}"))?;
    let dns = DnsConfig::addr(&format!("127.0.0.1:{port}"));
    let mut client = Client::new_starttls(jid, "password", dns, Default::default());
    loop {
        match client.next().await {
            Some(Event::Online { bound_jid, .. }) => {
                client
                    .send_stanza(Presence::new(PresenceType::None).into())
                    .await
                    .map_err(|e| format!("{name}: presence: {e}"))?;
                return Ok((client, bound_jid));
            }
            Some(Event::Disconnected(e)) => return Err(format!("{name}: disconnected: {e}")),
            Some(Event::Stanza(_)) => {}
            None => return Err(format!("{name}: stream ended")),
        }
    }
}

async fn run(port: u16) -> Result<(), String> {
    let (mut romeo, romeo_jid) = login("romeo", port).await?;
    let (mut juliet, juliet_jid) = login("juliet", port).await?;
    println!("logged in over STARTTLS: {romeo_jid} and {juliet_jid}");
    let mut message = Message::new(Some(juliet_jid.clone()));
    message.type_ = MessageType::Chat;
    message
        .bodies
        .insert(Lang::default(), "Hello from tokio-xmpp".to_owned());
    romeo
        .send_stanza(message.into())
        .await
        .map_err(|e| format!("romeo: send: {e}"))?;
    loop {
        match juliet.next().await {
            Some(Event::Stanza(Stanza::Message(m))) if m.type_ == MessageType::Chat => {
                let body = m.bodies.values().next().cloned().unwrap_or_default();
                if m.from.as_ref() != Some(&romeo_jid) || body != "Hello from tokio-xmpp" {
                    return Err(format!("juliet got {body:?} from {:?}", m.from));
                }
                println!("juliet got the message from {romeo_jid}");
                break;
            }
            Some(Event::Disconnected(e)) => return Err(format!("juliet: disconnected: {e}")),
            Some(_) => {}
            None => return Err("juliet: stream ended".to_owned()),
        }
    }
    let _ = romeo.send_end().await;
    let _ = juliet.send_end().await;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let Some(port) = std::env::args().nth(1).and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("usage: tokio-xmpp-interop PORT");
        return ExitCode::from(2);
    };
    // The `ring` provider (tokio-xmpp's `ring` feature); newer rustls marks
    // it deprecated for lacking post-quantum key exchange, which this
    // loopback check does not need.
    #[allow(deprecated)]
    let _ = tokio_xmpp::rustls::crypto::ring::default_provider().install_default();
    match tokio::time::timeout(Duration::from_secs(30), run(port)).await {
        Ok(Ok(())) => {
            println!("PASS");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("FAIL: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("FAIL: timed out after 30 s");
            ExitCode::FAILURE
        }
    }
}
