//! A real client on the modern login path: xmpp.js (`@xmpp/client`, pinned
//! in `tests/interop/xmppjs-sasl2/package.json` and its lock file) logs in
//! to the example server (`--sasl2`, plain TCP on loopback) with SASL2 +
//! Bind2 + inline stream management and a password, asking for a FAST
//! token; a second xmpp.js client with the same user-agent id then logs in
//! with that token and a wrong password, so only FAST can let it in. Each
//! sends itself a message and receives it (`login.js`).
//!
//! The test runs `npm install` into `tests/interop/xmppjs-sasl2/node_modules`
//! (ignored by git) and skips with a message when `node` or `npm` is
//! missing or the install fails (offline).

mod server_support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn script_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/xmppjs-sasl2")
}

/// Whether `program --version` runs.
fn available(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs xmpp.js from the lock file; the reason to skip otherwise.
fn install() -> Result<(), &'static str> {
    if !available("node") || !available("npm") {
        return Err("`node` or `npm` is not available");
    }
    let ok = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(script_dir())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err("`npm ci` failed in tests/interop/xmppjs-sasl2 (offline?)")
    }
}

/// The value of `"key":"…"` or `"key":true` in one line of JSON (the
/// script prints flat objects with no quotes inside values).
fn field<'a>(json: &'a str, object: &str, key: &str) -> &'a str {
    let (_, rest) = json
        .split_once(&format!("\"{object}\":{{"))
        .unwrap_or_else(|| panic!("no {object} in {json}"));
    let (_, value) = rest
        .split_once(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("no {object}.{key} in {json}"));
    let end = value.find([',', '}']).unwrap_or(value.len());
    value[..end].trim_matches('"')
}

#[test]
fn xmppjs_logs_in_with_sasl2_bind2_then_with_its_fast_token() {
    if let Err(reason) = install() {
        eprintln!("skipping the xmpp.js SASL2 test: {reason}");
        return;
    }
    let mut server = Command::new(server_support::server_binary())
        .args(["--memory", "--no-tls", "--sasl2", "--listen", "127.0.0.1:0"])
        .args(["--user", "alice:secret"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the example server starts");
    let mut out = BufReader::new(server.stdout.take().expect("piped"));
    let mut line = String::new();
    let port = loop {
        line.clear();
        let n = out.read_line(&mut line).expect("the server's output");
        assert!(n > 0, "the server exited before listening");
        // "serving localhost on 127.0.0.1:PORT (...)"
        if let Some(rest) = line.strip_prefix("serving localhost on 127.0.0.1:") {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            break digits;
        }
    };
    let run = Command::new("node")
        .arg("login.js")
        .arg(format!("xmpp://127.0.0.1:{port}"))
        .args(["alice", "secret"])
        .current_dir(script_dir())
        .output()
        .expect("node runs");
    let _ = server.kill();
    let _ = server.wait();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "login.js failed: {}{}",
        stdout,
        String::from_utf8_lossy(&run.stderr)
    );
    let json = stdout.trim();
    assert_eq!(field(json, "first", "mechanism"), "SCRAM-SHA-1");
    assert_eq!(field(json, "second", "mechanism"), "HT-SHA-256-NONE");
    let jid = field(json, "first", "jid");
    assert!(jid.starts_with("alice@localhost/interop."), "{json}");
    // The same client gets the same Bind2 resource.
    assert_eq!(field(json, "second", "jid"), jid);
    assert_eq!(field(json, "first", "sm"), "true");
    assert_eq!(field(json, "second", "sm"), "true");
    // The token login rotated the token.
    assert_ne!(
        field(json, "first", "token"),
        field(json, "second", "token")
    );
}
