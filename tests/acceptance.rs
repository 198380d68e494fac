//! Acceptance checks against the example server (`examples/server/`) over
//! real loopback sockets.
//!
//! * `raw_socket_login_and_chat`: std::net only, no Python. PLAIN login, bind,
//!   a chat message each way, a ping, a clean close, and a client that drops
//!   its socket in the middle of a stanza.
//! * `scansion_core_scripts`: the four core scansion scripts from
//!   `../shared/acceptance` (or `$XMPP_ACCEPTANCE_DIR`) with PLAIN,
//!   SCRAM-SHA-1 and SCRAM-SHA-256, one fresh server per script. Skipped
//!   with a message when the directory or `python3` is missing.
//! * `slixmpp_scram_login`: `tests/acceptance/slixmpp_login.py` (two SCRAM
//!   logins and a chat exchange with a real client library), run with
//!   `$SLIXMPP_PYTHON` (default `python3`). Skipped with a message when
//!   slixmpp cannot be imported.
//!
//! The server binary is `target/<profile>/examples/server`; the first test
//! to need it runs `cargo build --example server` (a no-op when `cargo test`
//! has already built the examples) so that it is never stale. Each test
//! starts its own servers on `127.0.0.1:0` and reads the port they print.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use base64::Engine;
use xmpp_session::Element;
use xmpp_session::stream::{StreamEvent, StreamReader, XmlLimits};
use xmpp_session::testkit::parse_stanza;

const SCRIPTS: &[&str] = &[
    "basic.scs",
    "basic_message.scs",
    "basic_roster.scs",
    "disco_self.scs",
];
const MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"];

/// The example binary, built (or brought up to date) once per test run.
fn server_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        // target/<profile>/deps/acceptance-<hash>
        let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
        let bin = profile_dir
            .join("examples")
            .join(format!("server{}", std::env::consts::EXE_SUFFIX));
        let mut cargo = Command::new(env!("CARGO"));
        cargo.current_dir(env!("CARGO_MANIFEST_DIR")).args([
            "build",
            "--quiet",
            "--example",
            "server",
        ]);
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => {}
            Some("release") => {
                cargo.arg("--release");
            }
            Some(other) => {
                cargo.args(["--profile", other]);
            }
        }
        if let Some(target_dir) = profile_dir.parent() {
            cargo.env("CARGO_TARGET_DIR", target_dir);
        }
        let built = cargo.status().is_ok_and(|s| s.success());
        assert!(
            built || bin.exists(),
            "`cargo build --example server` failed and {} does not exist",
            bin.display()
        );
        if !built {
            eprintln!(
                "warning: could not rebuild the example; using {}",
                bin.display()
            );
        }
        bin
    })
}

/// A running example server, killed on drop.
struct Server {
    child: Child,
    port: u16,
    // Kept open so that the server never writes to a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(server_binary())
            .args(["--listen", "127.0.0.1:0", "--no-tls"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let port = loop {
            line.clear();
            let n = stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "the server exited before listening");
            // "serving localhost on 127.0.0.1:PORT (plain TCP, no TLS)"
            if let Some(rest) = line.strip_prefix("serving localhost on 127.0.0.1:") {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                break digits.parse().unwrap();
            }
        };
        Server {
            child,
            port,
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

/// A raw XMPP client on a std socket, framing what it reads with the
/// crate's own stream reader.
struct Client {
    stream: TcpStream,
    reader: StreamReader,
}

impl Client {
    fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        let limits = XmlLimits {
            max_stanza_bytes: 1 << 20,
            max_depth: 64,
            max_attributes: 64,
            max_text_bytes: 1 << 20,
        };
        Client {
            stream,
            reader: StreamReader::new(limits),
        }
    }

    fn send(&mut self, xml: &str) {
        self.stream.write_all(xml.as_bytes()).unwrap();
    }

    fn open_stream(&mut self) {
        self.send(
            "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xml:lang='en' \
             xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
        );
    }

    fn next_event(&mut self) -> StreamEvent {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(event) = self.reader.next_event().unwrap() {
                return event;
            }
            let n = self.stream.read(&mut buf).unwrap();
            assert!(n > 0, "the server closed the connection");
            self.reader.push(&buf[..n]);
        }
    }

    /// The next top-level element, which must be exactly `expected`.
    #[track_caller]
    fn expect(&mut self, expected: &str) {
        let got = self.next_element();
        let want = parse_stanza(expected);
        assert!(
            got == want,
            "received {}\nexpected {}",
            String::from(&got),
            String::from(&want)
        );
    }

    fn next_element(&mut self) -> Element {
        match self.next_event() {
            StreamEvent::Stanza(el) => el,
            other => panic!("expected an element, got {other:?}"),
        }
    }

    /// Reads the server's stream header.
    fn expect_header(&mut self) {
        match self.next_event() {
            StreamEvent::Open(header) => assert_eq!(header.from.as_deref(), Some("localhost")),
            other => panic!("expected a stream header, got {other:?}"),
        }
    }

    /// Stream header, PLAIN, restart and bind of `user/resource`.
    fn login(port: u16, user: &str, resource: &str) -> Client {
        let mut c = Client::connect(port);
        c.open_stream();
        c.expect_header();
        c.expect(
            "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>\
             <mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-256</mechanism>\
             <mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms>\
             <limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>10000</max-bytes>\
             </limits>\
             </stream:features>",
        );
        let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0password"));
        c.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
        ));
        c.expect("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
        c.reader.restart();
        c.open_stream();
        c.expect_header();
        c.expect(
            "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>\
             <bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><required/></bind>\
             <session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>\
             <ver xmlns='urn:xmpp:features:rosterver'/><sub xmlns='urn:xmpp:features:pre-approval'/>\
             <limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>262144</max-bytes>\
             </limits></stream:features>",
        );
        c.send(&format!(
            "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
             <resource>{resource}</resource></bind></iq>"
        ));
        c.expect(&format!(
            "<iq type='result' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
             <jid>{user}@localhost/{resource}</jid></bind></iq>"
        ));
        c
    }
}

#[test]
fn raw_socket_login_and_chat() {
    let server = Server::start();
    let mut romeo = Client::login(server.port, "romeo", "balcony");
    let mut juliet = Client::login(server.port, "juliet", "garden");

    // The messages carry xml:lang themselves: Prosody would stamp the
    // stream's language on them, this library (so far) does not.

    juliet.send("<message to='romeo@localhost/balcony' type='chat' id='m1' xml:lang='en'><body>Art thou not Romeo?</body></message>");
    romeo.expect(
        "<message from='juliet@localhost/garden' to='romeo@localhost/balcony' type='chat' id='m1' \
         xml:lang='en'><body>Art thou not Romeo?</body></message>",
    );
    romeo.send("<message to='juliet@localhost/garden' type='chat' id='m2' xml:lang='en'><body>Neither, fair saint</body></message>");
    juliet.expect(
        "<message from='romeo@localhost/balcony' to='juliet@localhost/garden' type='chat' id='m2' \
         xml:lang='en'><body>Neither, fair saint</body></message>",
    );

    romeo.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    romeo.expect("<iq type='result' id='p1' from='localhost' to='romeo@localhost/balcony'/>");

    // A client that vanishes in the middle of a stanza ends only its own session.
    juliet.send("<message to='romeo@localhost/balcony' type='chat'><bo");
    drop(juliet);
    let mut nurse = Client::login(server.port, "nurse", "house");
    nurse.send("<message to='romeo@localhost/balcony' type='chat' id='m3' xml:lang='en'><body>Anon!</body></message>");
    romeo.expect(
        "<message from='nurse@localhost/house' to='romeo@localhost/balcony' type='chat' id='m3' \
         xml:lang='en'><body>Anon!</body></message>",
    );

    // A clean close is answered with the server's own close, then EOF.
    romeo.send("</stream:stream>");
    assert!(matches!(romeo.next_event(), StreamEvent::Close));
    let mut rest = Vec::new();
    romeo.stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "bytes after the close: {rest:?}");
}

/// `../shared/acceptance` (or `$XMPP_ACCEPTANCE_DIR`) if it holds the runner.
fn acceptance_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("XMPP_ACCEPTANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/acceptance"),
    };
    dir.join("scansion_runner.py").is_file().then_some(dir)
}

/// Printed even when libtest captures the test's output.
fn skip(message: &str) {
    let _ = writeln!(std::io::stderr(), "{message}");
}

fn python_can(python: &str, args: &[&str]) -> bool {
    Command::new(python)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn report(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn scansion_core_scripts() {
    let Some(dir) = acceptance_dir() else {
        skip(
            "SKIPPED scansion_core_scripts: no ../shared/acceptance/scansion_runner.py (set XMPP_ACCEPTANCE_DIR)",
        );
        return;
    };
    if !python_can("python3", &["--version"]) {
        skip("SKIPPED scansion_core_scripts: python3 not found");
        return;
    }
    server_binary();
    // One thread per mechanism; every script gets a fresh server.
    let threads: Vec<_> = MECHANISMS
        .iter()
        .map(|mech| {
            let dir = dir.clone();
            thread::spawn(move || {
                let mut failures = Vec::new();
                for script in SCRIPTS {
                    let server = Server::start();
                    let out = Command::new("python3")
                        .arg(dir.join("scansion_runner.py"))
                        .args(["--host", "127.0.0.1", "--port", &server.port.to_string()])
                        .args(["--sasl", mech, "-v"])
                        .arg(dir.join("scansion").join(script))
                        .output()
                        .unwrap();
                    if !out.status.success() {
                        failures.push(report(&format!("{script} with {mech}"), &out));
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(
        failures.is_empty(),
        "scansion failures:\n{}",
        failures.join("\n")
    );
}

#[test]
fn slixmpp_scram_login() {
    let python = std::env::var("SLIXMPP_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    if !python_can(&python, &["-c", "import slixmpp"]) {
        skip(&format!(
            "SKIPPED slixmpp_scram_login: `{python} -c 'import slixmpp'` failed (set SLIXMPP_PYTHON)"
        ));
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/acceptance/slixmpp_login.py");
    let server = Server::start();
    let out = Command::new(&python)
        .arg(script)
        .args(["--port", &server.port.to_string(), "--timeout", "10"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", report("slixmpp_login.py", &out));
}
