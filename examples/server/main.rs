//! A small XMPP client-to-server example on tokio: STARTTLS (required
//! before authentication) and optional direct TLS with rustls, a SQLite
//! store (accounts, rosters, offline messages), one domain.
//!
//! ```text
//! cargo run --example server -- --listen 127.0.0.1:5322
//! cargo run --example server -- --tls-cert chain.pem --tls-key key.pem --tls-listen 127.0.0.1:5223
//! cargo run --example server -- --user alice:secret --users-file users.txt
//! cargo run --example server -- --no-tls   # plaintext, loopback only
//! cargo run --example server -- adduser alice   # password from stdin
//! cargo run --example server -- users
//! ```
//!
//! One module per job, each readable on its own:
//!
//! * [`core`]: the task that owns the `SessionManager` and the listener;
//! * [`transport`]: one task per socket, bytes in and out, TLS handshakes;
//! * [`tls`]: the certificate (PEM files or self-signed) and rustls settings;
//! * [`store`]: the SQLite database and its thread (password checks on the
//!   blocking pool);
//! * [`limits`]: what one client or address may cost the server
//!   (connections, connection rate, read rate, bytes before authentication);
//! * [`liveness`]: XEP-0199 pings to idle clients;
//! * [`admin`]: account commands (`adduser`, `deluser`, `passwd`, `users`)
//!   and accounts given at start.
//!
//! By default the config has `require_tls(true)`: the first stream offers
//! only STARTTLS, and SASL (PLAIN included) comes after the handshake.
//! `--no-tls` is the explicit plaintext switch (`require_tls(false)`,
//! `allow_plain_without_tls(true)`), meant for loopback tests. A peer that
//! misbehaves or vanishes only ends its own session; I/O errors are logged,
//! never unwrapped. Not production-grade.

mod admin;
mod core;
mod limits;
mod liveness;
mod store;
mod tls;
mod transport;
mod websocket;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use xmpp_session::{AccountJid, Config, SessionManager};

use crate::core::Listener;
use crate::limits::Limits;
use crate::store::{Db, StoreHandle};

/// The database file used without `--db`, in the working directory.
const DEFAULT_DB: &str = "xmpp-server.sqlite3";
use crate::transport::Mode;

#[derive(Parser, Debug)]
#[command(
    about = "Example XMPP c2s server built on xmpp-session",
    long_about = "Example XMPP c2s server built on xmpp-session.\n\n\
        TLS: STARTTLS is offered and required before authentication; --tls-listen adds a \
        direct TLS (XEP-0368) listener (off by default). The certificate comes from \
        --tls-cert/--tls-key (PEM); without them a self-signed certificate for the domain is \
        generated at start and its SHA-256 fingerprint printed (clients ask you to accept it). \
        --no-tls serves plaintext only, with SASL PLAIN in clear text: loopback only.\n\n\
        Storage: a SQLite file (--db, created on first run) or memory (--memory). Demo \
        accounts (password 'password') are created with --demo, and with --memory when no \
        --user/--users-file is given."
)]
struct Args {
    /// An account command instead of serving.
    #[command(subcommand)]
    command: Option<admin::Command>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5222")]
    listen: SocketAddr,
    /// The domain served.
    #[arg(long, global = true, default_value = "localhost")]
    domain: String,
    /// An account, NAME:PASSWORD (repeatable).
    #[arg(long = "user", value_name = "NAME:PASSWORD")]
    users: Vec<String>,
    /// A file with one NAME:PASSWORD per line (blank lines and # comments skipped).
    #[arg(long, value_name = "PATH")]
    users_file: Option<PathBuf>,
    /// Plaintext only: no STARTTLS, SASL PLAIN allowed in clear text (loopback only).
    #[arg(long, conflicts_with_all = ["tls_listen", "tls_cert", "tls_key"])]
    no_tls: bool,
    /// Also listen for direct TLS (XEP-0368) here, e.g. 127.0.0.1:5223 [default: off].
    #[arg(long, value_name = "ADDR")]
    tls_listen: Option<SocketAddr>,
    /// Also serve XMPP over WebSocket (RFC 7395) here, path /xmpp-websocket, subprotocol
    /// xmpp: wss:// with the TLS certificate, ws:// with --no-tls [default: off].
    #[arg(long, value_name = "ADDR")]
    ws_listen: Option<SocketAddr>,
    /// TLS certificate chain (PEM) [default: self-signed for the domain, generated at start].
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for --tls-cert.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The SQLite database (created on first run).
    #[arg(long, global = true, value_name = "PATH", default_value = DEFAULT_DB)]
    db: PathBuf,
    /// Keep everything in memory (a throwaway store) instead of --db.
    #[arg(long, conflicts_with = "db")]
    memory: bool,
    /// Create the demo accounts (password 'password') if missing.
    #[arg(long)]
    demo: bool,
    /// Refuse connections beyond this many.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Refuse connections from one IP address beyond this many open ones (0 = off).
    #[arg(long, default_value_t = 100)]
    max_connections_per_ip: usize,
    /// Refuse new connections (login attempts) from one IP address beyond
    /// this many per --login-window (0 = off).
    #[arg(long, default_value_t = 30)]
    logins_per_ip: usize,
    /// The window of --logins-per-ip, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    login_window: u64,
    /// Read at most this many bytes per second from one connection; a
    /// faster client is slowed down, not disconnected (0 = off).
    #[arg(long, value_name = "BYTES", default_value_t = 65_536)]
    read_rate: u64,
    /// Bytes one connection may send at once above --read-rate.
    #[arg(long, value_name = "BYTES", default_value_t = 262_144)]
    read_burst: u64,
    /// Close a stream that has not authenticated after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    auth_timeout: u64,
    /// Close a stream that sends more than this before authenticating (0 = off).
    #[arg(long, value_name = "BYTES", default_value_t = 65_536)]
    pre_auth_bytes: usize,
    /// Ping (XEP-0199) a bound client silent for this many seconds (0 = never).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    ping_idle: u64,
    /// Close the stream if nothing arrives this many seconds after a ping.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    ping_timeout: u64,
    /// Debug logs: each session's lifecycle (connect, TLS, bind, close).
    #[arg(short, long)]
    verbose: bool,
    /// How long a stream-management session (XEP-0198) waits for its
    /// client to resume after the connection drops.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    resume_timeout: u64,
    /// Offer SASL2 (XEP-0388) with Bind2 (XEP-0386) and FAST tokens
    /// (XEP-0484, 14 days, 16 clients per account) beside legacy SASL.
    #[arg(long)]
    sasl2: bool,
}

/// Prints `error: ...` and exits with `code`.
fn fail(code: i32, message: impl std::fmt::Display) -> ! {
    eprintln!("error: {message}");
    std::process::exit(code);
}

/// Binds `addr`, or exits saying why.
async fn bind(addr: SocketAddr) -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| fail(1, format!("cannot listen on {addr}: {e}")));
    // The real address, so `127.0.0.1:0` reports the port it got.
    let local = listener.local_addr().unwrap_or(addr);
    (listener, local)
}

#[tokio::main]
async fn main() {
    let mut args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(if args.verbose {
            tracing::Level::DEBUG
        } else {
            tracing::Level::INFO
        })
        .init();
    if let Some(command) = args.command.take() {
        let mut db = Db::open(Some(&args.db)).unwrap_or_else(|e| fail(2, e));
        match admin::run(command, &mut db, &args.domain) {
            Ok(message) => println!("{message}"),
            Err(e) => fail(1, e),
        }
        return;
    }
    let accounts = admin::load_accounts(&args.users, args.users_file.as_deref())
        .unwrap_or_else(|e| fail(2, e));
    let mut db =
        Db::open((!args.memory).then_some(args.db.as_path())).unwrap_or_else(|e| fail(2, e));
    for (name, password) in &accounts {
        let account = AccountJid::new(name, &args.domain)
            .unwrap_or_else(|e| fail(2, format!("account {name}@{}: {e}", args.domain)));
        db.set_password(&account, password)
            .unwrap_or_else(|e| fail(2, e));
    }
    if args.demo || (args.memory && accounts.is_empty()) {
        let demo = db
            .add_demo_users(&args.domain)
            .unwrap_or_else(|e| fail(2, e));
        println!("demo accounts (password 'password'):");
        for account in demo {
            println!("  {account}");
        }
    }
    let users = db.users().unwrap_or_else(|e| fail(2, e));
    if users.is_empty() {
        println!(
            "no accounts yet: add one with `cargo run --example server -- adduser NAME` \
             (or start with --demo for test accounts)"
        );
    }
    let config = Config::builder(args.domain.clone())
        .require_tls(!args.no_tls)
        .allow_plain_without_tls(args.no_tls)
        .stream_management(true)
        .resume_timeout(std::time::Duration::from_secs(args.resume_timeout))
        .auth_timeout(Duration::from_secs(args.auth_timeout))
        .sasl2(args.sasl2)
        .fast(std::time::Duration::from_secs(14 * 24 * 3600), 16)
        .build()
        .unwrap_or_else(|e| fail(2, format!("invalid configuration: {e}")));
    let mut manager = SessionManager::new(config);
    manager.set_wall_clock(Instant::now(), SystemTime::now());

    let tls = if args.no_tls {
        None
    } else {
        let tls = tls::setup(
            &args.domain,
            args.tls_cert.as_deref(),
            args.tls_key.as_deref(),
        )
        .unwrap_or_else(|e| fail(2, e));
        Some(tls)
    };

    let (socket, local) = bind(args.listen).await;
    let main = Listener {
        socket,
        mode: match &tls {
            Some(tls) => Mode::StartTls(tls.side.clone()),
            None => Mode::Plain,
        },
    };
    let mut direct_tls = None;
    let mut direct_at = String::new();
    if let (Some(addr), Some(tls)) = (args.tls_listen, &tls) {
        let (socket, local) = bind(addr).await;
        direct_at = format!(", direct TLS (XEP-0368) on {local}");
        direct_tls = Some(Listener {
            socket,
            mode: Mode::DirectTls(tls.side.clone()),
        });
    }
    let mut websocket = None;
    if let Some(addr) = args.ws_listen {
        let (socket, local) = bind(addr).await;
        let listener = websocket::WsListener {
            socket,
            tls: tls.as_ref().map(|tls| tls.side.clone()),
        };
        println!("WebSocket (RFC 7395) on {}", listener.url(local));
        websocket = Some(listener);
    }
    // One line: where, for which domain, with which certificate, how to connect.
    let how = format!(
        "connect as NAME@{} to host {} port {}",
        args.domain,
        local.ip(),
        local.port()
    );
    match &tls {
        None => println!(
            "serving {} on {local} (plain TCP, no TLS: loopback only); {how}",
            args.domain
        ),
        Some(tls) => println!(
            "serving {} on {local} (STARTTLS required{direct_at}; {}); {how}, accepting the \
             certificate if your client asks",
            args.domain, tls.describe
        ),
    }

    let (to_core, from_conns) = mpsc::channel(4096);
    let store = StoreHandle::spawn(db, to_core.clone()).unwrap_or_else(|e| fail(1, e));
    let limits = Limits {
        max_connections: args.max_connections,
        max_per_ip: args.max_connections_per_ip,
        logins_per_ip: args.logins_per_ip,
        login_window: Duration::from_secs(args.login_window),
        read_rate: args.read_rate,
        read_burst: args.read_burst,
        pre_auth_bytes: args.pre_auth_bytes,
        ping_idle: Duration::from_secs(args.ping_idle),
        ping_timeout: Duration::from_secs(args.ping_timeout),
    };
    let store = core::run(core::Setup {
        manager,
        store,
        main,
        direct_tls,
        websocket,
        to_core,
        from_conns,
        limits,
        verbose: args.verbose,
    })
    .await;
    store.close();
}
