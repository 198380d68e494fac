//! A real web client against the example server: xmpp.js (`@xmpp/client`,
//! pinned in `tests/interop/xmppjs/package.json` and its lock file) logs
//! in over WebSocket (RFC 7395, `--ws-listen`) as romeo, a second xmpp.js
//! client logs in over TCP as juliet, and they exchange a message each way
//! (`tests/interop/xmppjs/exchange.js`). Once without TLS (`ws://`, plain
//! TCP) and once with the generated certificate (`wss://`, STARTTLS; the
//! clients skip verification of the self-signed certificate).
//!
//! The test runs `npm install` into `tests/interop/xmppjs/node_modules`
//! (ignored by git; about 35 small packages) and skips with a message when
//! `node` or `npm` is missing or the install fails (no network).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

mod server_support;
use server_support::server_binary;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn xmppjs_dir() -> PathBuf {
    manifest_dir().join("tests").join("interop").join("xmppjs")
}

/// Runs a command quietly; whether it succeeded.
fn succeeds(command: &mut Command) -> bool {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The node arguments that give it a global `WebSocket` (Node 20 needs
/// `--experimental-websocket`, Node 22 has it by default), after
/// installing xmpp.js; `None` (with the reason printed) to skip.
fn xmppjs() -> Option<&'static [&'static str]> {
    static READY: OnceLock<Option<&'static [&'static str]>> = OnceLock::new();
    *READY.get_or_init(|| {
        const CHECK: &str = "process.exit(typeof WebSocket === 'function' ? 0 : 1)";
        let flags: &'static [&'static str] = if succeeds(Command::new("node").args(["-e", CHECK])) {
            &[]
        } else if succeeds(Command::new("node").args(["--experimental-websocket", "-e", CHECK])) {
            &["--experimental-websocket"]
        } else {
            eprintln!(
                "skipping the xmpp.js test: no `node` with WebSocket support (Node >= 20.10)"
            );
            return None;
        };
        if !succeeds(Command::new("npm").arg("--version")) {
            eprintln!("skipping the xmpp.js test: `npm` is not available");
            return None;
        }
        let installed = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(xmppjs_dir())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            eprintln!(
                "skipping the xmpp.js test: `npm install` failed in tests/interop/xmppjs (offline?)"
            );
            return None;
        }
        Some(flags)
    })
}

/// The example server on free loopback ports, killed on drop.
struct Server {
    child: Child,
    /// `ws://…/xmpp-websocket` or `wss://…`.
    ws_url: String,
    /// `xmpp://127.0.0.1:PORT`.
    tcp_url: String,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let mut child = Command::new(server_binary())
            .args([
                "--memory",
                "--listen",
                "127.0.0.1:0",
                "--ws-listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the example server starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let (mut ws_url, mut tcp_url) = (None, None);
        let mut line = String::new();
        while ws_url.is_none() || tcp_url.is_none() {
            line.clear();
            let n = stdout.read_line(&mut line).expect("the server's output");
            assert!(n > 0, "the server exited before listening");
            // "WebSocket (RFC 7395) on ws://127.0.0.1:PORT/xmpp-websocket"
            if let Some(url) = line.trim().strip_prefix("WebSocket (RFC 7395) on ") {
                ws_url = Some(url.to_owned());
            }
            // "serving localhost on 127.0.0.1:PORT (…"
            if let Some(rest) = line.strip_prefix("serving localhost on ") {
                let addr: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
                tcp_url = Some(format!("xmpp://{addr}"));
            }
        }
        Server {
            child,
            ws_url: ws_url.unwrap_or_default(),
            tcp_url: tcp_url.unwrap_or_default(),
            _stdout: stdout,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the exchange script against `server`; panics with its output
/// unless both messages arrived.
fn exchange(server: &Server, node_flags: &[&str], tls: bool) {
    let mut node = Command::new("node");
    node.args(node_flags)
        .arg("exchange.js")
        .args([&server.ws_url, &server.tcp_url, "localhost", "password"])
        .current_dir(xmppjs_dir());
    if tls {
        // The server's certificate is self-signed, generated at start.
        node.env("NODE_TLS_REJECT_UNAUTHORIZED", "0");
    }
    let mut child = node
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    // The script gives up after 20 s itself; this bounds a hung node.
    let mut waited = Duration::ZERO;
    while child.try_wait().ok().flatten().is_none() && waited < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
        waited += Duration::from_millis(50);
    }
    let _ = child.kill();
    let output = child.wait_with_output().expect("node's output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.lines().last() == Some("exchanged"),
        "xmpp.js failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "online: romeo@localhost/web (WebSocket), juliet@localhost/balcony (TCP)",
            "juliet got from romeo@localhost/web: Wherefore art thou?",
            "romeo got from juliet@localhost/balcony: Here!",
            "exchanged",
        ]
    );
}

#[test]
fn xmppjs_over_websocket_exchanges_messages_with_a_tcp_client() {
    let Some(flags) = xmppjs() else { return };
    let server = Server::start(&["--no-tls"]);
    assert!(
        server.ws_url.starts_with("ws://127.0.0.1:"),
        "{}",
        server.ws_url
    );
    exchange(&server, flags, false);
}

#[test]
fn xmppjs_over_secure_websocket_exchanges_messages_with_a_starttls_client() {
    let Some(flags) = xmppjs() else { return };
    let server = Server::start(&[]);
    assert!(
        server.ws_url.starts_with("wss://127.0.0.1:"),
        "{}",
        server.ws_url
    );
    exchange(&server, flags, true);
}
