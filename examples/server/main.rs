//! A small XMPP client-to-server example on tokio: plain TCP, accounts in
//! memory (`MemoryStore`), one domain.
//!
//! ```text
//! cargo run --example server -- --listen 127.0.0.1:5322
//! cargo run --example server -- --user alice:secret --users-file users.txt
//! ```
//!
//! One module per job, each readable on its own:
//!
//! * [`core`]: the task that owns the `SessionManager` and the listener;
//! * [`transport`]: one task per socket, bytes in and out;
//! * [`store`]: answers storage requests (password checks off the core task);
//! * [`limits`]: what one client may cost the server;
//! * [`admin`]: accounts from the command line.
//!
//! Plain TCP only: STARTTLS in this example is a later step, so the config
//! sets `require_tls(false)` and `allow_plain_without_tls(true)`. Keep it on
//! loopback. A peer that misbehaves or vanishes only ends its own session;
//! I/O errors are logged, never unwrapped. Not production-grade.

mod admin;
mod core;
mod limits;
mod store;
mod transport;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use clap::Parser;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use xmpp_session::{Config, SessionManager};

use crate::limits::Limits;
use crate::store::StoreHandle;

#[derive(Parser, Debug)]
#[command(
    about = "Example XMPP c2s server built on xmpp-session (plain TCP only)",
    long_about = "Example XMPP c2s server built on xmpp-session.\n\n\
        This version speaks plain TCP only (STARTTLS is not implemented in the example yet): \
        it sets require_tls(false) and allow_plain_without_tls(true), so SASL PLAIN passwords \
        cross the wire in clear text. Bind it to loopback only.\n\n\
        Without --user or --users-file, demo accounts with password 'password' are created \
        and printed at start."
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5222")]
    listen: SocketAddr,
    /// The domain served.
    #[arg(long, default_value = "localhost")]
    domain: String,
    /// An account, NAME:PASSWORD (repeatable).
    #[arg(long = "user", value_name = "NAME:PASSWORD")]
    users: Vec<String>,
    /// A file with one NAME:PASSWORD per line (blank lines and # comments skipped).
    #[arg(long, value_name = "PATH")]
    users_file: Option<PathBuf>,
    /// Plain TCP without TLS (accepted for clarity; this version never uses TLS).
    #[arg(long)]
    no_tls: bool,
    /// Refuse connections beyond this many.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Log connections, bindings and closes.
    #[arg(short, long)]
    verbose: bool,
}

/// Prints `error: ...` and exits with `code`.
fn fail(code: i32, message: impl std::fmt::Display) -> ! {
    eprintln!("error: {message}");
    std::process::exit(code);
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let accounts = admin::load_accounts(&args.users, args.users_file.as_deref())
        .unwrap_or_else(|e| fail(2, e));
    let memory = store::make_store(&args.domain, &accounts).unwrap_or_else(|e| fail(2, e));
    let config = Config::builder(args.domain.clone())
        .require_tls(false)
        .allow_plain_without_tls(true)
        .build()
        .unwrap_or_else(|e| fail(2, format!("invalid configuration: {e}")));
    let mut manager = SessionManager::new(config);
    manager.set_wall_clock(Instant::now(), SystemTime::now());

    let listener = TcpListener::bind(args.listen)
        .await
        .unwrap_or_else(|e| fail(1, format!("cannot listen on {}: {e}", args.listen)));
    // The real address, so `--listen 127.0.0.1:0` reports the port it got.
    let local = listener.local_addr().unwrap_or(args.listen);
    println!("serving {} on {local} (plain TCP, no TLS)", args.domain);

    let (to_core, from_conns) = mpsc::channel(4096);
    let store = StoreHandle::new(memory, to_core.clone());
    let limits = Limits {
        max_connections: args.max_connections,
    };
    core::run(
        manager,
        store,
        listener,
        to_core,
        from_conns,
        limits,
        args.verbose,
    )
    .await;
}
