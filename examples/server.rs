//! A small XMPP client-to-server example on tokio: plain TCP, accounts in
//! memory (`MemoryStore`), one domain.
//!
//! ```text
//! cargo run --example server -- --listen 127.0.0.1:5322
//! cargo run --example server -- --user alice:secret --users-file users.txt
//! ```
//!
//! Design. `SessionManager` is a single sans-IO object, so one *core* task
//! owns it together with the store and the listener. Every connection gets a
//! reader task (socket → core, over one bounded channel shared by all
//! readers) and a writer task (core → socket, one unbounded channel each).
//! This is faster than sharing the manager behind a `Mutex`: the manager
//! cannot run in parallel anyway, so a lock would only add contention, and a
//! stanza for another client needs a channel to that client's socket in
//! either design. Owning it also lets the core batch: it takes every input
//! already queued, then drains the outputs once and hands each socket all of
//! its bytes as one buffer (one write per socket per batch; the writer also
//! merges buffers that queue up while a write is in flight).
//!
//! Storage requests are answered from the `MemoryStore` inline, except the
//! PLAIN password check (`Request::VerifyPassword`): PBKDF2 costs about a
//! millisecond, so the core looks the stored credentials up, hands the check
//! to tokio's blocking pool (`spawn_blocking`) and goes on serving the other
//! clients; the verdict comes back as one more message on the core's channel
//! and is passed to `SessionManager::complete`. A connection that drops in the
//! meantime is no problem: the manager ignores the late answer.
//!
//! Plain TCP only: STARTTLS in this example is a later step, so the config
//! sets `require_tls(false)` and `allow_plain_without_tls(true)`. Keep it on
//! loopback. A peer that misbehaves or vanishes only ends its own session;
//! I/O errors are logged, never unwrapped. Not production-grade: a client
//! that stops reading is disconnected once more than 8 MiB of output waits
//! for it, so one slow reader cannot exhaust memory.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::sleep_until;
use xmpp_session::random::{OsRandom, RandomSource};
use xmpp_session::sasl::{Credentials, PasswordCheck};
use xmpp_session::{
    AccountJid, Config, ConnectionInfo, Event, MemoryStore, Output, Request, RequestId, Response,
    SessionId, SessionManager, Store, StoreError,
};

/// Accounts created when no `--user`/`--users-file` is given (password
/// `password`): the ones the acceptance scripts and load tests log in with.
const DEMO_USERS: &str = "user user2 romeo juliet nurse mercutio tybalt benvolio admin alice bob \
    discoverer blocker blockee";

/// Inputs processed per batch before outputs are flushed.
const BATCH: usize = 256;

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

/// What reader, writer and password-check tasks tell the core.
enum ToCore {
    Input(SessionId, Bytes),
    /// The socket reached EOF or failed.
    Gone(SessionId),
    /// The answer to a request handled off the core task.
    Answer(RequestId, Response),
}

/// The core's handle on one connection. Dropping it ends the writer (after
/// it has written what is queued) and the reader is aborted.
struct Conn {
    tx: mpsc::UnboundedSender<Bytes>,
    reader: AbortHandle,
    writer: AbortHandle,
    /// Bytes handed to the writer and not yet written.
    queued: Arc<AtomicUsize>,
    peer: SocketAddr,
}

/// Output allowed to wait for a client that does not read.
const MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;

struct Core {
    manager: SessionManager,
    store: MemoryStore,
    conns: HashMap<SessionId, Conn>,
    /// Bytes produced for each socket during the current batch.
    outbox: HashMap<SessionId, Vec<Bytes>>,
    to_core: mpsc::Sender<ToCore>,
    max_connections: usize,
    verbose: bool,
}

impl Core {
    fn accept(&mut self, stream: TcpStream, peer: SocketAddr) {
        if self.conns.len() >= self.max_connections {
            eprintln!("refusing {peer}: {} connections open", self.conns.len());
            return; // dropping the stream closes it
        }
        if let Err(e) = stream.set_nodelay(true) {
            eprintln!("{peer}: TCP_NODELAY: {e}");
        }
        let id = self
            .manager
            .connect(ConnectionInfo::plain(), Instant::now());
        let (read, write) = stream.into_split();
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let writer = tokio::spawn(writer(id, write, rx, queued.clone(), self.to_core.clone()))
            .abort_handle();
        let reader = tokio::spawn(reader(id, read, self.to_core.clone())).abort_handle();
        if self.verbose {
            eprintln!("{id:?} connected from {peer}");
        }
        self.conns.insert(
            id,
            Conn {
                tx,
                reader,
                writer,
                queued,
                peer,
            },
        );
    }

    fn handle(&mut self, msg: ToCore) {
        let now = Instant::now();
        match msg {
            ToCore::Input(id, data) => self.manager.handle_input(id, &data, now),
            ToCore::Gone(id) => self.manager.handle_disconnect(id, now),
            ToCore::Answer(id, response) => self.manager.complete(id, response, now),
        }
    }

    /// Answers a storage request: at once from the store, except a PLAIN
    /// password check, which runs PBKDF2 on the blocking pool and comes back
    /// as [`ToCore::Answer`].
    fn answer(&mut self, id: RequestId, request: Request, now: Instant) {
        let Request::VerifyPassword { account, password } = request else {
            let response = self.store.answer(&request);
            self.manager.complete(id, response, now);
            return;
        };
        // The lookup is cheap; only the key derivation leaves the core.
        let credentials = match self.store.credentials(&account) {
            Ok(credentials) => credentials,
            Err(e) => {
                self.manager.complete(id, Response::Failed(e), now);
                return;
            }
        };
        let to_core = self.to_core.clone();
        tokio::spawn(async move {
            let check = tokio::task::spawn_blocking(move || {
                // `password` is wiped when this closure drops it.
                PasswordCheck::from_credentials(credentials.as_ref(), &password)
            })
            .await;
            let response = match check {
                Ok(check) => Response::PasswordChecked(check),
                Err(e) => Response::Failed(StoreError(format!("password check failed: {e}"))),
            };
            // A send error means the core is shutting down.
            let _ = to_core.send(ToCore::Answer(id, response)).await;
        });
    }

    /// Drains every output, answering storage requests (see
    /// [`Core::answer`]), then hands each socket its bytes in one piece.
    fn flush(&mut self) {
        let now = Instant::now();
        while let Some(output) = self.manager.poll_output() {
            match output {
                Output::Transmit { session, data } => {
                    self.outbox.entry(session).or_default().push(data)
                }
                Output::Close { session } | Output::Event(Event::Closed { session }) => {
                    self.finish(session)
                }
                Output::StartTls { session } => {
                    // Never offered on a plain connection; refuse if it ever happens.
                    eprintln!("{session:?}: STARTTLS is not supported by this example");
                    self.finish(session);
                }
                Output::Route { stanza } => {
                    eprintln!(
                        "dropping stanza for a remote domain: to={:?}",
                        stanza.attr("to")
                    );
                }
                Output::Request { id, request } => self.answer(id, request, now),
                Output::Event(event) if self.verbose => eprintln!("{event:?}"),
                _ => {}
            }
        }
        let mut stuck = Vec::new();
        for (session, chunks) in self.outbox.drain() {
            if let Some(conn) = self.conns.get(&session) {
                let data = concat(chunks);
                let waiting = conn.queued.fetch_add(data.len(), Ordering::Relaxed) + data.len();
                if waiting > MAX_QUEUED_BYTES {
                    stuck.push(session);
                    continue;
                }
                // A send error means the writer already stopped; its Gone is on the way.
                let _ = conn.tx.send(data);
            }
        }
        // Clients that stopped reading: drop them (their unavailable presence
        // and the like go to the others in the next round).
        for session in stuck {
            if let Some(conn) = self.conns.remove(&session) {
                eprintln!("{session:?} ({}): not reading, disconnected", conn.peer);
                conn.reader.abort();
                conn.writer.abort();
            }
            self.manager.handle_disconnect(session, Instant::now());
            self.flush();
        }
    }

    /// Ends a connection: its pending bytes go out, then the socket closes.
    fn finish(&mut self, session: SessionId) {
        let Some(conn) = self.conns.remove(&session) else {
            return;
        };
        if let Some(chunks) = self.outbox.remove(&session) {
            let _ = conn.tx.send(concat(chunks));
        }
        conn.reader.abort();
        if self.verbose {
            eprintln!("{session:?} ({}) closed", conn.peer);
        }
    }
}

/// One buffer out of several (no copy for the common single chunk).
fn concat(mut chunks: Vec<Bytes>) -> Bytes {
    if chunks.len() == 1 {
        return chunks.pop().unwrap_or_default();
    }
    let mut buf = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
    for chunk in &chunks {
        buf.extend_from_slice(chunk);
    }
    buf.freeze()
}

async fn reader(id: SessionId, mut read: OwnedReadHalf, core: mpsc::Sender<ToCore>) {
    let mut buf = BytesMut::new();
    loop {
        buf.reserve(16 * 1024);
        match read.read_buf(&mut buf).await {
            Ok(0) => break,
            Ok(_) => {
                if core
                    .send(ToCore::Input(id, buf.split().freeze()))
                    .await
                    .is_err()
                {
                    return; // the core has stopped
                }
            }
            Err(e) => {
                eprintln!("{id:?}: read failed: {e}");
                break;
            }
        }
    }
    let _ = core.send(ToCore::Gone(id)).await;
}

async fn writer(
    id: SessionId,
    mut write: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    queued: Arc<AtomicUsize>,
    core: mpsc::Sender<ToCore>,
) {
    while let Some(first) = rx.recv().await {
        let mut data = first;
        if !rx.is_empty() {
            let mut more = BytesMut::from(&data[..]);
            while let Ok(next) = rx.try_recv() {
                more.extend_from_slice(&next);
            }
            data = more.freeze();
        }
        if let Err(e) = write.write_all(&data).await {
            eprintln!("{id:?}: write failed: {e}");
            let _ = core.send(ToCore::Gone(id)).await;
            return;
        }
        queued.fetch_sub(data.len(), Ordering::Relaxed);
    }
    // The core dropped the connection: everything queued has been written.
    let _ = write.shutdown().await;
}

/// Parses `name:password`.
fn parse_account(line: &str) -> Result<(String, String), String> {
    match line.split_once(':') {
        Some((name, password)) if !name.is_empty() => Ok((name.to_owned(), password.to_owned())),
        _ => Err(format!("expected NAME:PASSWORD, got {line:?}")),
    }
}

fn load_accounts(args: &Args) -> Result<Vec<(String, String)>, String> {
    let mut accounts = Vec::new();
    for user in &args.users {
        accounts.push(parse_account(user)?);
    }
    if let Some(path) = &args.users_file {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for line in text.lines().map(str::trim) {
            if !line.is_empty() && !line.starts_with('#') {
                accounts.push(parse_account(line)?);
            }
        }
    }
    Ok(accounts)
}

/// The store with the given accounts, or with the demo accounts if none.
fn make_store(domain: &str, accounts: &[(String, String)]) -> Result<MemoryStore, String> {
    let mut store = MemoryStore::new();
    for (name, password) in accounts {
        let account =
            AccountJid::new(name, domain).map_err(|e| format!("account {name}@{domain}: {e}"))?;
        store
            .add_user(&account, password)
            .map_err(|e| e.to_string())?;
    }
    if accounts.is_empty() {
        // One key derivation shared by all demo accounts keeps start-up fast.
        let mut salt = [0u8; 16];
        OsRandom.fill(&mut salt).map_err(|e| e.to_string())?;
        let credentials = Credentials::from_password("password", &salt, 4096);
        println!("demo accounts (password 'password'):");
        for name in DEMO_USERS.split_whitespace() {
            let account = AccountJid::new(name, domain)
                .map_err(|e| format!("account {name}@{domain}: {e}"))?;
            store.add_credentials(&account, credentials.clone());
            println!("  {account}");
        }
    }
    Ok(store)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let accounts = match load_accounts(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let store = make_store(&args.domain, &accounts).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2);
    });
    let config = Config::builder(args.domain.clone())
        .require_tls(false)
        .allow_plain_without_tls(true)
        .build()
        .unwrap_or_else(|e| {
            eprintln!("error: invalid configuration: {e}");
            std::process::exit(2);
        });
    let mut manager = SessionManager::new(config);
    manager.set_wall_clock(Instant::now(), SystemTime::now());

    let listener = match TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    // The real address, so `--listen 127.0.0.1:0` reports the port it got.
    let local = listener.local_addr().unwrap_or(args.listen);
    println!("serving {} on {local} (plain TCP, no TLS)", args.domain);

    let (to_core, mut from_conns) = mpsc::channel(4096);
    let mut core = Core {
        manager,
        store,
        conns: HashMap::new(),
        outbox: HashMap::new(),
        to_core,
        max_connections: args.max_connections,
        verbose: args.verbose,
    };
    let mut batch = Vec::with_capacity(BATCH);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let deadline = core
            .manager
            .poll_timeout()
            .map(tokio::time::Instant::from_std);
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => core.accept(stream, peer),
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    eprintln!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = from_conns.recv_many(&mut batch, BATCH) => {
                for msg in batch.drain(..) {
                    core.handle(msg);
                }
            }
            () = async { sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)).await },
                if deadline.is_some() => core.manager.handle_timeout(Instant::now()),
            _ = &mut ctrl_c => {
                println!("shutting down");
                return;
            }
        }
        core.flush();
    }
}
