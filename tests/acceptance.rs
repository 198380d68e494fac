//! Acceptance checks against the example server (`examples/server/`) over
//! real loopback sockets.
//!
//! * `raw_socket_login_and_chat`: std::net only, no Python. PLAIN login, bind,
//!   a chat message each way, a ping, a clean close, and a client that drops
//!   its socket in the middle of a stanza.
//! * `scansion_core_scripts`: every core scansion script (each `*.scs` in
//!   `../shared/acceptance/scansion`, or `$XMPP_ACCEPTANCE_DIR`; the
//!   `extra/` ones need MUC, blocking or last activity) with PLAIN,
//!   SCRAM-SHA-1 and SCRAM-SHA-256 in plaintext, and with PLAIN over
//!   STARTTLS (`--starttls`), one fresh server per script. Skipped
//!   with a message when the directory or `python3` is missing.
//! * `slixmpp_scram_login`: `tests/acceptance/slixmpp_login.py` (two SCRAM
//!   logins and a chat exchange with a real client library), run with
//!   `$SLIXMPP_PYTHON` (default `python3`). Skipped with a message when
//!   slixmpp cannot be imported.
//! * `tls_starttls_and_direct_login`: the server with a certificate from a
//!   throwaway CA made in the test (rcgen); a rustls client that verifies it
//!   logs in over STARTTLS and over direct TLS (XEP-0368) and chats, and the
//!   plaintext stream offers STARTTLS only (no SASL before TLS).
//! * `tls_scram_sha_256_plus_login`: over STARTTLS the rustls client logs in
//!   with SCRAM-SHA-256-PLUS bound with `tls-exporter` (its own exported
//!   keying material) and binds; wrong binding data is `not-authorized`;
//!   over direct TLS it logs in with `tls-server-end-point`.
//! * `slixmpp_tls_login`: the slixmpp script over STARTTLS and over direct
//!   TLS, verifying the certificate against the same kind of test CA.
//! * `slixmpp_stream_resumption`: slixmpp's `xep_0198` plugin over STARTTLS
//!   (test CA) enables stream management with resumption, its TCP
//!   connection is cut, messages sent meanwhile arrive exactly once after
//!   it resumes (`slixmpp_login.py --scenario resume`).
//! * `slixmpp_full_flow`: `tests/acceptance/slixmpp_flow.py` over STARTTLS
//!   and direct TLS (certificate verified, a fresh server each): rosters,
//!   mutual subscription, presence both ways, chat both ways, and one client
//!   sees the other leave.
//! * `account_commands`: `adduser`, `passwd`, `deluser`, `users` on a
//!   database file, then logins against it.
//! * `store_survives_a_restart`: a roster item (name, group, version,
//!   pending `ask`), an inbound subscription request and an offline message
//!   are still there after a SIGTERM and a restart on the same `--db`.
//! * `sigterm_closes_streams_with_system_shutdown`.
//!
//! Servers run with `--memory` (demo accounts, nothing on disk) unless the
//! test passes `--db` with a file in a temporary directory.
//!
//! The server binary is `target/<profile>/examples/server`; the first test
//! to need it runs `cargo build --example server` (a no-op when `cargo test`
//! has already built the examples) so that it is never stale. Each test
//! starts its own servers on `127.0.0.1:0` and reads the port they print.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use base64::Engine;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use sha2::Digest;
use xmpp_session::Element;
use xmpp_session::stream::{StreamEvent, StreamReader, XmlLimits};
use xmpp_session::testkit::parse_stanza;

const MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"];

mod scram_client;
mod server_support;
use server_support::server_binary;

/// A running example server, killed on drop.
struct Server {
    child: Child,
    port: u16,
    /// The direct TLS port, with `--tls-listen`.
    tls_port: Option<u16>,
    // Kept open so that the server never writes to a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

/// The port in `PREFIX127.0.0.1:PORT...`, if `line` starts with `prefix`.
fn port_after(line: &str, prefix: &str) -> Option<u16> {
    let rest = line.strip_prefix(prefix)?.strip_prefix("127.0.0.1:")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl Server {
    /// A plaintext server (`--no-tls`) with the demo accounts.
    fn start() -> Server {
        Server::start_with(&["--no-tls"])
    }

    /// A server on a free port with extra arguments; waits until it
    /// listens (on both ports with `--tls-listen`).
    fn start_with(args: &[&str]) -> Server {
        // A throwaway in-memory store (with the demo accounts) unless the
        // test names a database.
        let store: &[&str] = if args.contains(&"--db") {
            &[]
        } else {
            &["--memory"]
        };
        let mut child = Command::new(server_binary())
            .args(["--listen", "127.0.0.1:0"])
            .args(store)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let wants_tls_port = args.contains(&"--tls-listen");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let (mut port, mut tls_port) = (None, None);
        while port.is_none() || (wants_tls_port && tls_port.is_none()) {
            line.clear();
            let n = stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "the server exited before listening");
            // "serving localhost on 127.0.0.1:PORT (...)"
            port = port.or(port_after(&line, "serving localhost on "));
            // "..., direct TLS (XEP-0368) on 127.0.0.1:PORT; ..."
            if let Some((_, rest)) = line.split_once("direct TLS (XEP-0368) on ") {
                tls_port = tls_port.or(port_after(rest, ""));
            }
        }
        Server {
            child,
            port: port.unwrap(),
            tls_port,
            _stdout: stdout,
        }
    }
}

/// A throwaway CA and a certificate for `localhost` signed by it, as PEM
/// files in a fresh temporary directory (removed on drop).
struct TestCa {
    dir: PathBuf,
    /// The CA certificate, DER, for rustls clients.
    ca_der: Vec<u8>,
}

impl TestCa {
    fn new() -> TestCa {
        use rcgen::{
            BasicConstraints, CertificateParams, DistinguishedName, DnType,
            ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
        };
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "xmpp-session-ca-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();

        // Distinct names (OpenSSL takes a leaf whose issuer is its own
        // subject for a self-signed certificate) and the extensions strict
        // verifiers (Python 3.13's OpenSSL settings) ask for.
        let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
        ca_params.distinguished_name = DistinguishedName::new();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "xmpp-session test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().unwrap();
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();

        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        leaf_params.distinguished_name = DistinguishedName::new();
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf_params.use_authority_key_identifier_extension = true;
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem()).unwrap();
        TestCa {
            dir,
            ca_der: ca.der().to_vec(),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }

    /// A server with this CA's certificate, STARTTLS on the main port and
    /// direct TLS on a second one.
    fn server(&self) -> Server {
        let (cert, key) = (self.path("cert.pem"), self.path("key.pem"));
        Server::start_with(&[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-listen",
            "127.0.0.1:0",
        ])
    }

    /// A rustls client configuration that trusts only this CA.
    fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone().into()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A client socket, plain or TLS (rustls, certificate verified).
enum Transport {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Transport {
    /// Runs a TLS handshake for `localhost` over a plain socket.
    fn into_tls(self, config: Arc<ClientConfig>) -> Transport {
        let Transport::Plain(tcp) = self else {
            panic!("TLS over TLS");
        };
        let name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(config, name).unwrap();
        let mut tls = StreamOwned::new(conn, tcp);
        // Drive the handshake now so that a certificate error shows here.
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).unwrap();
        }
        Transport::Tls(Box::new(tls))
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Transport::Plain(s) => s.flush(),
            Transport::Tls(s) => s.flush(),
        }
    }
}

impl Server {
    /// SIGTERM, then waits (at most 10 s) for a clean exit.
    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid} failed");
        for _ in 0..1000 {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "the server exited with {status}");
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        panic!("the server did not exit within 10 s of SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "xmpp-session-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `server ARGS...` (an account command) and returns its output.
fn server_command(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(server_binary())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// A raw XMPP client on a std socket, framing what it reads with the
/// crate's own stream reader.
struct Client {
    stream: Transport,
    reader: StreamReader,
}

impl Client {
    fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        let stream = Transport::Plain(stream);
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
        self.stream.flush().unwrap();
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
        c.authenticate(user, resource);
        c
    }

    /// STARTTLS (which must be the only feature offered), then [`Client::login`]'s steps.
    fn login_starttls(port: u16, ca: &TestCa, user: &str, resource: &str) -> Client {
        let mut c = Client::starttls(port, ca);
        c.authenticate(user, resource);
        c
    }

    /// The TLS connection's RFC 9266 `tls-exporter` and RFC 5929
    /// `tls-server-end-point` (SHA-256 of the server's certificate) data.
    fn channel_bindings(&self) -> ([u8; 32], Vec<u8>) {
        let Transport::Tls(tls) = &self.stream else {
            panic!("no TLS");
        };
        let exporter = tls
            .conn
            .export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", Some(b""))
            .unwrap();
        let cert = &tls.conn.peer_certificates().unwrap()[0];
        (exporter, sha2::Sha256::digest(cert.as_ref()).to_vec())
    }

    /// A SCRAM-SHA-256-PLUS exchange from the stream header on, with gs2
    /// header `header` and `data` as the binding data echoed back; `true`
    /// when it succeeds with the right server signature.
    fn scram_plus(&mut self, user: &str, header: &str, data: &[u8]) -> bool {
        let b64 = base64::engine::general_purpose::STANDARD;
        self.open_stream();
        self.expect_header();
        self.expect_sasl_features();
        let first_bare = format!("n={user},r=fyko+d2lbbFgONRv9qkxdawL");
        self.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256-PLUS'>{}</auth>",
            b64.encode(format!("{header}{first_bare}"))
        ));
        let challenge = self.next_element();
        assert_eq!(
            challenge.name(),
            "challenge",
            "{}",
            String::from(&challenge)
        );
        let server_first = String::from_utf8(b64.decode(challenge.text()).unwrap()).unwrap();
        let cbind = [header.as_bytes(), data].concat();
        let (client_final, server_final) =
            scram_client::client_final(false, "password", &first_bare, &server_first, &cbind);
        self.send(&format!(
            "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</response>",
            b64.encode(client_final)
        ));
        let answer = self.next_element();
        if answer.name() == "success" {
            assert_eq!(answer.text(), b64.encode(server_final));
            return true;
        }
        assert_eq!(
            answer,
            parse_stanza(
                "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/>\
                 <text>Unable to authorize you with the authentication credentials you&apos;ve \
                 sent.</text></failure>"
            )
        );
        false
    }

    /// Direct TLS (XEP-0368), then [`Client::login`]'s steps.
    fn login_direct_tls(port: u16, ca: &TestCa, user: &str, resource: &str) -> Client {
        let mut c = Client::connect(port);
        let plain = std::mem::replace(&mut c.stream, Transport::Plain(dummy_socket()));
        c.stream = plain.into_tls(ca.client_config());
        c.authenticate(user, resource);
        c
    }

    /// The pre-authentication features: over TLS (1.3) the example server
    /// passes channel-binding data, so SCRAM-*-PLUS and XEP-0440 appear.
    fn expect_sasl_features(&mut self) {
        let (plus, cb) = if matches!(self.stream, Transport::Tls(_)) {
            (
                "<mechanism>SCRAM-SHA-256-PLUS</mechanism><mechanism>SCRAM-SHA-1-PLUS</mechanism>",
                "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>\
                 <channel-binding type='tls-exporter'/>\
                 <channel-binding type='tls-server-end-point'/></sasl-channel-binding>",
            )
        } else {
            ("", "")
        };
        self.expect(&format!(
            "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>\
             <mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{plus}\
             <mechanism>SCRAM-SHA-256</mechanism>\
             <mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms>{cb}\
             <limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>10000</max-bytes>\
             </limits>\
             </stream:features>",
        ));
    }

    /// STARTTLS on a fresh connection to `port`, features checked.
    fn starttls(port: u16, ca: &TestCa) -> Client {
        let mut c = Client::connect(port);
        c.open_stream();
        c.expect_header();
        c.expect(
            "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>\
             <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>\
             <limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>10000</max-bytes></limits>\
             </stream:features>",
        );
        c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        c.expect("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        let plain = std::mem::replace(&mut c.stream, Transport::Plain(dummy_socket()));
        c.stream = plain.into_tls(ca.client_config());
        c.reader.restart();
        c
    }

    /// From the stream header on: PLAIN, restart, bind.
    fn authenticate(&mut self, user: &str, resource: &str) {
        let c = self;
        c.open_stream();
        c.expect_header();
        c.expect_sasl_features();
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
             <sm xmlns='urn:xmpp:sm:3'/><csi xmlns='urn:xmpp:csi:0'/><limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>262144</max-bytes>\
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
    }
}

/// A connected socket to stand in while a transport is being replaced.
fn dummy_socket() -> TcpStream {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    TcpStream::connect(listener.local_addr().unwrap()).unwrap()
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

#[test]
fn tls_starttls_and_direct_login() {
    let ca = TestCa::new();
    let server = ca.server();
    let tls_port = server.tls_port.unwrap();

    // Over STARTTLS and over direct TLS, both verified against the test CA.
    let mut romeo = Client::login_starttls(server.port, &ca, "romeo", "balcony");
    let mut juliet = Client::login_direct_tls(tls_port, &ca, "juliet", "garden");
    juliet.send("<message to='romeo@localhost/balcony' type='chat' id='t1' xml:lang='en'><body>Over TLS</body></message>");
    romeo.expect(
        "<message from='juliet@localhost/garden' to='romeo@localhost/balcony' type='chat' id='t1' \
         xml:lang='en'><body>Over TLS</body></message>",
    );
    romeo.send("<message to='juliet@localhost/garden' type='chat' id='t2' xml:lang='en'><body>And back</body></message>");
    juliet.expect(
        "<message from='romeo@localhost/balcony' to='juliet@localhost/garden' type='chat' id='t2' \
         xml:lang='en'><body>And back</body></message>",
    );

    // Without TLS, authentication is refused: the features offer STARTTLS
    // only (checked in login_starttls), and an <auth/> is not accepted.
    let mut eve = Client::connect(server.port);
    eve.open_stream();
    eve.expect_header();
    let _features = eve.next_element();
    let token = base64::engine::general_purpose::STANDARD.encode("\0romeo\0password");
    eve.send(&format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
    ));
    let answer = eve.next_event();
    assert!(
        !matches!(&answer, StreamEvent::Stanza(el) if el.name() == "success"),
        "PLAIN accepted without TLS: {answer:?}"
    );

    // A client that does not trust the certificate fails the handshake.
    let other = TestCa::new();
    let tcp = TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = ClientConnection::new(other.client_config(), name).unwrap();
    let mut sock = tcp;
    let mut failed = false;
    while conn.is_handshaking() {
        if conn.complete_io(&mut sock).is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed, "a certificate from another CA was accepted");
}

#[test]
fn tls_scram_sha_256_plus_login() {
    let ca = TestCa::new();
    let server = ca.server();

    // STARTTLS, then SCRAM-SHA-256-PLUS bound to the rustls client's
    // exported keying material, then bind.
    let mut romeo = Client::starttls(server.port, &ca);
    let (exporter, end_point) = romeo.channel_bindings();
    assert!(romeo.scram_plus("romeo", "p=tls-exporter,,", &exporter));
    romeo.reader.restart();
    romeo.open_stream();
    romeo.expect_header();
    let _features = romeo.next_element();
    romeo.send(
        "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
         <resource>plus</resource></bind></iq>",
    );
    romeo.expect(
        "<iq type='result' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
         <jid>romeo@localhost/plus</jid></bind></iq>",
    );

    // Binding data of another kind (what a TLS-terminating middlebox's
    // connection would give) is refused.
    let mut eve = Client::starttls(server.port, &ca);
    assert!(!eve.scram_plus("romeo", "p=tls-exporter,,", &end_point));

    // Direct TLS with tls-server-end-point: the hash of the certificate the
    // client saw.
    let mut juliet = Client::connect(server.tls_port.unwrap());
    let plain = std::mem::replace(&mut juliet.stream, Transport::Plain(dummy_socket()));
    juliet.stream = plain.into_tls(ca.client_config());
    let (_, end_point) = juliet.channel_bindings();
    assert!(juliet.scram_plus("juliet", "p=tls-server-end-point,,", &end_point));
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

/// `../shared/acceptance` (or `$XMPP_ACCEPTANCE_DIR`) when it and python3
/// are there, or `None` after saying that `test` is skipped.
fn scansion_dir(test: &str) -> Option<PathBuf> {
    let Some(dir) = acceptance_dir() else {
        skip(&format!(
            "SKIPPED {test}: no ../shared/acceptance/scansion_runner.py (set XMPP_ACCEPTANCE_DIR)"
        ));
        return None;
    };
    if !python_can("python3", &["--version"]) {
        skip(&format!("SKIPPED {test}: python3 not found"));
        return None;
    }
    Some(dir)
}

/// Runs one scansion script (a path under `scansion/`) against `server`
/// with SASL mechanism `mech`; the failure report, named `what`, if it
/// failed.
fn run_scansion(
    dir: &Path,
    script: &str,
    mech: &str,
    starttls: bool,
    server: &Server,
    what: &str,
) -> Option<String> {
    let mut runner = Command::new("python3");
    runner
        .arg(dir.join("scansion_runner.py"))
        .args(["--host", "127.0.0.1", "--port", &server.port.to_string()])
        .args(["--sasl", mech, "-v"]);
    if starttls {
        runner.arg("--starttls");
    }
    let out = runner
        .arg(dir.join("scansion").join(script))
        .output()
        .unwrap();
    (!out.status.success()).then(|| report(what, &out))
}

/// Runs `tests/acceptance/SCRIPT` with slixmpp against a plaintext server
/// and asserts that it passed (skipped without slixmpp).
fn slixmpp_plain(test: &str, script: &str) {
    let Some(python) = slixmpp_python(test) else {
        return;
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/acceptance")
        .join(script);
    let server = Server::start();
    let out = Command::new(&python)
        .arg(path)
        .args(["--port", &server.port.to_string(), "--timeout", "10"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", report(script, &out));
}

/// The Python that has slixmpp (`$SLIXMPP_PYTHON`, else `python3`), or
/// `None` after saying that `test` is skipped.
fn slixmpp_python(test: &str) -> Option<String> {
    let python = std::env::var("SLIXMPP_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    if python_can(&python, &["-c", "import slixmpp"]) {
        return Some(python);
    }
    skip(&format!(
        "SKIPPED {test}: `{python} -c 'import slixmpp'` failed (set SLIXMPP_PYTHON)"
    ));
    None
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

/// Every core script: each `*.scs` directly in `DIR/scansion` (not
/// `extra/`, whose scripts need MUC, blocking or last activity).
fn core_scripts(dir: &Path) -> Vec<String> {
    let mut scripts: Vec<String> = std::fs::read_dir(dir.join("scansion"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".scs"))
        .collect();
    scripts.sort();
    assert!(
        !scripts.is_empty(),
        "no core scansion scripts in {}",
        dir.display()
    );
    scripts
}

#[test]
fn scansion_core_scripts() {
    let Some(dir) = scansion_dir("scansion_core_scripts") else {
        return;
    };
    server_binary();
    let scripts = core_scripts(&dir);
    // One thread per mechanism; every script gets a fresh server.
    // Every mechanism in plaintext (`--no-tls`), and PLAIN over STARTTLS
    // against the default TLS-required server (self-signed certificate; the
    // runner does not verify it).
    let runs = MECHANISMS
        .iter()
        .map(|mech| (*mech, false))
        .chain([("PLAIN", true)]);
    let threads: Vec<_> = runs
        .map(|(mech, starttls)| {
            let dir = dir.clone();
            let scripts = scripts.clone();
            thread::spawn(move || {
                let mut failures = Vec::new();
                for script in &scripts {
                    let server = if starttls {
                        Server::start_with(&[])
                    } else {
                        Server::start()
                    };
                    let how = if starttls { " over STARTTLS" } else { "" };
                    failures.extend(run_scansion(
                        &dir,
                        script,
                        mech,
                        starttls,
                        &server,
                        &format!("{script} with {mech}{how}"),
                    ));
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
    slixmpp_plain("slixmpp_scram_login", "slixmpp_login.py");
}

#[test]
fn slixmpp_tls_login() {
    slixmpp_over_tls("slixmpp_tls_login", "slixmpp_login.py");
}

/// Two slixmpp clients over STARTTLS and over direct TLS, certificate
/// verified: rosters, mutual subscription, presence, chat both ways, and
/// one sees the other leave (`tests/acceptance/slixmpp_flow.py`).
#[test]
fn slixmpp_full_flow() {
    slixmpp_over_tls("slixmpp_full_flow", "slixmpp_flow.py");
}

/// Runs `tests/acceptance/SCRIPT` with `$SLIXMPP_PYTHON` against a server
/// with a test CA's certificate, over STARTTLS and over direct TLS.
fn slixmpp_over_tls(test: &str, script: &str) {
    let Some(python) = slixmpp_python(test) else {
        return;
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/acceptance")
        .join(script);
    let ca = TestCa::new();
    for mode in ["starttls", "direct"] {
        // A fresh server (empty rosters) for each.
        let server = ca.server();
        let port = match mode {
            "direct" => server.tls_port.unwrap(),
            _ => server.port,
        };
        let out = Command::new(&python)
            .arg(&path)
            .args(["--port", &port.to_string(), "--timeout", "10"])
            .args(["--tls", mode, "--ca", &ca.path("ca.pem")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            report(&format!("{script} --tls {mode}"), &out)
        );
    }
}

#[test]
fn slixmpp_stream_resumption() {
    let Some(python) = slixmpp_python("slixmpp_stream_resumption") else {
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/acceptance/slixmpp_login.py");
    let ca = TestCa::new();
    let server = ca.server();
    let out = Command::new(&python)
        .arg(&script)
        .args(["--port", &server.port.to_string(), "--timeout", "10"])
        .args(["--tls", "starttls", "--ca", &ca.path("ca.pem")])
        .args(["--scenario", "resume"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        report("slixmpp_login.py --scenario resume", &out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("each message arrived exactly once"),
        "{stdout}"
    );
}

/// The first child of `el` named `name`, if any.
fn child<'a>(el: &'a Element, name: &str) -> Option<&'a Element> {
    el.children().find(|c| c.name() == name)
}

/// Reads elements until one matches `pred` (the read timeout bounds it).
#[track_caller]
fn read_until(c: &mut Client, what: &str, pred: impl Fn(&Element) -> bool) -> Element {
    for _ in 0..50 {
        let el = c.next_element();
        if pred(&el) {
            return el;
        }
    }
    panic!("no {what} within 50 elements");
}

/// The roster result for `id` (skipping pushes and presence).
fn roster_result(c: &mut Client, id: &str) -> Element {
    read_until(c, "roster result", |el| {
        el.name() == "iq" && el.attr("id") == Some(id) && el.attr("type") == Some("result")
    })
}

#[test]
fn account_commands() {
    let dir = TempDir::new("accounts");
    let db = dir.path("accounts.sqlite3");
    let ok = |args: &[&str], stdin: &str| {
        let out = server_command(args, stdin);
        assert!(out.status.success(), "{}", report(&args.join(" "), &out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(&["--db", &db, "adduser", "alice"], "secret\n");
    ok(&["--db", &db, "adduser", "bob", "--password", "pw"], "");
    let again = server_command(&["--db", &db, "adduser", "alice", "--password", "x"], "");
    assert!(
        !again.status.success(),
        "adduser of an existing account succeeded"
    );
    assert_eq!(
        ok(&["--db", &db, "users"], ""),
        "2 account(s)\nalice@localhost\nbob@localhost\n"
    );
    ok(&["--db", &db, "passwd", "bob"], "new password\n");
    ok(&["--db", &db, "deluser", "alice"], "");
    let gone = server_command(&["--db", &db, "deluser", "alice"], "");
    assert!(
        !gone.status.success(),
        "deleting a missing account succeeded"
    );
    assert_eq!(
        ok(&["--db", &db, "users"], ""),
        "1 account(s)\nbob@localhost\n"
    );

    // The server logs bob in with the changed password; alice is gone.
    let server = Server::start_with(&["--no-tls", "--db", &db]);
    let mut c = Client::connect(server.port);
    c.open_stream();
    c.expect_header();
    let _features = c.next_element();
    let token = base64::engine::general_purpose::STANDARD.encode("\0bob\0new password");
    c.send(&format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
    ));
    c.expect("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    let mut c = Client::connect(server.port);
    c.open_stream();
    c.expect_header();
    let _features = c.next_element();
    let token = base64::engine::general_purpose::STANDARD.encode("\0alice\0secret");
    c.send(&format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
    ));
    assert_eq!(c.next_element().name(), "failure");
}

#[test]
fn store_survives_a_restart() {
    let dir = TempDir::new("restart");
    let db = dir.path("server.sqlite3");
    for name in ["romeo", "juliet", "nurse"] {
        let out = server_command(
            &["--db", &db, "adduser", name, "--password", "password"],
            "",
        );
        assert!(out.status.success(), "{}", report("adduser", &out));
    }

    let server = Server::start_with(&["--no-tls", "--db", &db]);
    let mut romeo = Client::login(server.port, "romeo", "balcony");
    romeo.send(
        "<iq type='set' id='r1'><query xmlns='jabber:iq:roster'>\
         <item jid='juliet@localhost' name='Juliet'><group>Capulets</group></item></query></iq>",
    );
    roster_result(&mut romeo, "r1");
    // A subscription request juliet (offline) must find after the restart,
    // and a message for nurse (offline).
    romeo.send("<presence to='juliet@localhost' type='subscribe'/>");
    romeo.send(
        "<message to='nurse@localhost' type='chat' id='off1' xml:lang='en'>\
         <body>Commend me to thy lady</body></message>",
    );
    romeo.send("<iq type='get' id='r2'><query xmlns='jabber:iq:roster'/></iq>");
    let before = roster_result(&mut romeo, "r2");
    let version = child(&before, "query")
        .and_then(|q| q.attr("ver"))
        .map(str::to_owned);
    drop(romeo);
    // Let the last writes reach the store, then stop cleanly (the store is
    // flushed before exit).
    thread::sleep(Duration::from_millis(300));
    server.terminate();

    let server = Server::start_with(&["--no-tls", "--db", &db]);
    let mut romeo = Client::login(server.port, "romeo", "balcony");
    romeo.send("<iq type='get' id='r3'><query xmlns='jabber:iq:roster'/></iq>");
    let after = roster_result(&mut romeo, "r3");
    let query = child(&after, "query").expect("a roster query");
    assert_eq!(
        query.attr("ver").map(str::to_owned),
        version,
        "roster version"
    );
    let item = child(query, "item").expect("juliet is still on the roster");
    assert_eq!(item.attr("jid"), Some("juliet@localhost"));
    assert_eq!(item.attr("name"), Some("Juliet"));
    assert_eq!(item.attr("ask"), Some("subscribe"));
    assert_eq!(
        child(item, "group").map(Element::text).as_deref(),
        Some("Capulets")
    );

    // The pending request reaches juliet at her initial presence.
    let mut juliet = Client::login(server.port, "juliet", "garden");
    juliet.send("<presence/>");
    let request = read_until(&mut juliet, "subscription request", |el| {
        el.name() == "presence" && el.attr("type") == Some("subscribe")
    });
    assert_eq!(request.attr("from"), Some("romeo@localhost"));

    // The offline message reaches the nurse at hers.
    let mut nurse = Client::login(server.port, "nurse", "house");
    nurse.send("<presence/>");
    let message = read_until(&mut nurse, "offline message", |el| el.name() == "message");
    assert_eq!(message.attr("from"), Some("romeo@localhost/balcony"));
    assert_eq!(
        child(&message, "body").map(Element::text).as_deref(),
        Some("Commend me to thy lady")
    );
}

#[test]
fn sigterm_closes_streams_with_system_shutdown() {
    let server = Server::start();
    let mut romeo = Client::login(server.port, "romeo", "balcony");
    server.terminate();
    romeo.expect(
        "<stream:error xmlns:stream='http://etherx.jabber.org/streams'>\
         <system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
    );
    assert!(matches!(romeo.next_event(), StreamEvent::Close));
}

// ---------------------------------------------------------------------------
// Carbons (XEP-0280) and blocking (XEP-0191), issue 12.

/// Extra scansion scripts for what the server now implements, from
/// `../shared/acceptance/scansion/extra`: Prosody's XEP-0191 script with
/// PLAIN and SCRAM-SHA-256 in plaintext, a fresh server each.
#[test]
fn scansion_extra_scripts() {
    let Some(dir) = scansion_dir("scansion_extra_scripts") else {
        return;
    };
    let mut failures = Vec::new();
    for script in ["blocking.scs"] {
        for mech in ["PLAIN", "SCRAM-SHA-256"] {
            let server = Server::start();
            let script = format!("extra/{script}");
            failures.extend(run_scansion(
                &dir,
                &script,
                mech,
                false,
                &server,
                &format!("{script} with {mech}"),
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "scansion failures:\n{}",
        failures.join("\n")
    );
}

/// `tests/acceptance/slixmpp_carbons.py`: two slixmpp sessions of one
/// account with `xep_0280` get a received carbon of a message to the bare
/// JID and a sent carbon of their sibling's message.
#[test]
fn slixmpp_carbons() {
    slixmpp_plain("slixmpp_carbons", "slixmpp_carbons.py");
}

/// tokio-xmpp (crates.io) logs in over STARTTLS, verifying the test CA's
/// certificate, and exchanges a message: `interop/tokio-xmpp`, its own
/// crate (not built by `cargo test`, to keep its dependency tree out of the
/// main build). `.ci/run` builds it and sets `$TOKIO_XMPP_INTEROP` to the
/// binary; without it the test is skipped with a message.
#[test]
fn tokio_xmpp_interop() {
    let Some(bin) = std::env::var_os("TOKIO_XMPP_INTEROP") else {
        skip(
            "SKIPPED tokio_xmpp_interop: set TOKIO_XMPP_INTEROP to the binary built by \
             `cargo build --manifest-path interop/tokio-xmpp/Cargo.toml` (as .ci/run does)",
        );
        return;
    };
    let ca = TestCa::new();
    let server = ca.server();
    let out = Command::new(bin)
        .arg(server.port.to_string())
        // rustls-native-certs reads the trusted roots from here alone.
        .env("SSL_CERT_FILE", ca.path("ca.pem"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        report("tokio-xmpp-interop", &out)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("juliet got the message"));
}
