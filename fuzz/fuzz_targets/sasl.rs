//! Drives one server-side `SaslExchange` with a fuzz-chosen mechanism,
//! initial response, sequence of responses and credential answers.
//!
//! Checks that nothing panics, that the exchange follows its state machine
//! (a finished exchange only ever fails again), and that success happens
//! exactly when the client proved knowledge of the password the provided
//! credentials were derived from: PLAIN with the right password, SCRAM with
//! the right proof over the real server-first message. A random proof never
//! succeeds. On SCRAM success the server signature is verified client-side.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use base64::prelude::*;
use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use xmpp_session::sasl::{
    Credentials, Mechanism, Password as SentPassword, PasswordCheck, SaslExchange, SaslFailure,
    SaslStep, ScramHash, ScramKeys,
};

const PASSWORD: &str = "pencil";
const OTHER: &str = "crayon";
const SALT: &[u8] = b"fuzz-salt";
const ITERATIONS: u32 = 2;
const DOMAIN: &str = "example.com";
const CLIENT_NONCE: &str = "fyko+d2lbbFgONRv9qkxdawL";

/// Stored credentials, derived once per process.
struct Stored {
    right: Credentials,
    other: Credentials,
    sha1_only: Credentials,
    sha256_only: Credentials,
    disabled: Credentials,
    no_keys: Credentials,
}

fn stored() -> &'static Stored {
    static STORED: OnceLock<Stored> = OnceLock::new();
    STORED.get_or_init(|| {
        let right = Credentials::from_password(PASSWORD, SALT, ITERATIONS);
        Stored {
            other: Credentials::from_password(OTHER, SALT, ITERATIONS),
            sha1_only: Credentials {
                sha1: Some(ScramKeys::derive(
                    ScramHash::Sha1,
                    PASSWORD,
                    SALT,
                    ITERATIONS,
                )),
                sha256: None,
                disabled: false,
            },
            sha256_only: Credentials {
                sha1: None,
                sha256: Some(ScramKeys::derive(
                    ScramHash::Sha256,
                    PASSWORD,
                    SALT,
                    ITERATIONS,
                )),
                disabled: false,
            },
            disabled: Credentials {
                disabled: true,
                ..right.clone()
            },
            no_keys: Credentials {
                sha1: None,
                sha256: None,
                disabled: false,
            },
            right,
        }
    })
}

/// Which account answer the "store" gives.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum CredChoice {
    Missing,
    Right,
    Other,
    Sha1Only,
    Sha256Only,
    Disabled,
    NoKeys,
}

impl CredChoice {
    fn get(self) -> Option<&'static Credentials> {
        let s = stored();
        match self {
            CredChoice::Missing => None,
            CredChoice::Right => Some(&s.right),
            CredChoice::Other => Some(&s.other),
            CredChoice::Sha1Only => Some(&s.sha1_only),
            CredChoice::Sha256Only => Some(&s.sha256_only),
            CredChoice::Disabled => Some(&s.disabled),
            CredChoice::NoKeys => Some(&s.no_keys),
        }
    }

    /// The password a client must know to log in against these
    /// credentials with `mechanism`, or `None` if nobody can.
    fn password_for(self, mechanism: Mechanism) -> Option<&'static str> {
        let password = match self {
            CredChoice::Missing | CredChoice::Disabled | CredChoice::NoKeys => return None,
            CredChoice::Other => OTHER,
            CredChoice::Right | CredChoice::Sha1Only | CredChoice::Sha256Only => PASSWORD,
        };
        let has_keys = match mechanism {
            // PLAIN checks whichever keys are stored.
            Mechanism::Plain => true,
            Mechanism::ScramSha1 | Mechanism::ScramSha1Plus => self != CredChoice::Sha256Only,
            Mechanism::ScramSha256 | Mechanism::ScramSha256Plus => self != CredChoice::Sha1Only,
        };
        has_keys.then_some(password)
    }
}

#[derive(Arbitrary, Debug)]
enum Name {
    User,
    /// SASLprep maps the soft hyphen to nothing: still "user".
    SoftHyphen,
    /// Needs saslname escaping in SCRAM.
    Comma,
    Raw(String),
}

impl Name {
    fn text(&self) -> &str {
        match self {
            Name::User => "user",
            Name::SoftHyphen => "us\u{AD}er",
            Name::Comma => "us,er=x",
            Name::Raw(s) => s,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Authz {
    None,
    Same,
    AtDomain,
    AtDomainUpper,
    AtOtherDomain,
    Raw(String),
}

impl Authz {
    fn text(&self, authcid: &str) -> String {
        match self {
            Authz::None => String::new(),
            Authz::Same => authcid.to_owned(),
            Authz::AtDomain => format!("{authcid}@{DOMAIN}"),
            Authz::AtDomainUpper => format!("{authcid}@{}", DOMAIN.to_ascii_uppercase()),
            Authz::AtOtherDomain => format!("{authcid}@other.example"),
            Authz::Raw(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Password {
    Right,
    Other,
    /// Equal to `PASSWORD` after SASLprep.
    SoftHyphen,
    Raw(String),
}

impl Password {
    fn text(&self) -> &str {
        match self {
            Password::Right => PASSWORD,
            Password::Other => OTHER,
            Password::SoftHyphen => "pen\u{AD}cil",
            Password::Raw(s) => s,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Gs2Flag {
    N,
    Y,
    P,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum ClientNonce {
    Fixed,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Cbind {
    Right,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum NonceEcho {
    Right,
    ClientOnly,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Proof {
    Right,
    Other,
    Bytes(Vec<u8>),
    Text(String),
}

#[derive(Arbitrary, Debug)]
enum Msg {
    Raw(Vec<u8>),
    Plain {
        authz: Authz,
        authcid: Name,
        password: Password,
    },
    ScramFirst {
        flag: Gs2Flag,
        authz: Authz,
        user: Name,
        nonce: ClientNonce,
        ext: Option<String>,
    },
    ScramFinal {
        cbind: Cbind,
        nonce: NonceEcho,
        ext: Option<String>,
        proof: Proof,
    },
}

#[derive(Arbitrary, Debug)]
enum Action {
    Respond(Msg),
    Provide(CredChoice),
}

#[derive(Arbitrary, Debug)]
struct Input {
    mechanism: u8,
    for_domain: bool,
    server_nonce: Vec<u8>,
    initial: Option<Msg>,
    actions: Vec<Action>,
}

/// SCRAM `saslname` encoding.
fn saslname(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

fn hmac(hash: ScramHash, key: &[u8], data: &[u8]) -> Vec<u8> {
    match hash {
        ScramHash::Sha1 => {
            let mut mac = Hmac::<Sha1>::new_from_slice(key).unwrap();
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        ScramHash::Sha256 => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
    }
}

fn digest(hash: ScramHash, data: &[u8]) -> Vec<u8> {
    match hash {
        ScramHash::Sha1 => Sha1::digest(data).to_vec(),
        ScramHash::Sha256 => Sha256::digest(data).to_vec(),
    }
}

/// Client-side SCRAM: `(ClientProof, ServerSignature)` for `password`.
fn scram_client(
    hash: ScramHash,
    password: &str,
    salt: &[u8],
    iterations: u32,
    auth_message: &str,
) -> (Vec<u8>, Vec<u8>) {
    let mut salted = vec![0u8; hash.output_len()];
    match hash {
        ScramHash::Sha1 => {
            pbkdf2::pbkdf2_hmac::<Sha1>(password.as_bytes(), salt, iterations, &mut salted)
        }
        ScramHash::Sha256 => {
            pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut salted)
        }
    }
    let client_key = hmac(hash, &salted, b"Client Key");
    let stored_key = digest(hash, &client_key);
    let signature = hmac(hash, &stored_key, auth_message.as_bytes());
    let proof = client_key
        .iter()
        .zip(&signature)
        .map(|(k, s)| k ^ s)
        .collect();
    let server_key = hmac(hash, &salted, b"Server Key");
    let server_signature = hmac(hash, &server_key, auth_message.as_bytes());
    (proof, server_signature)
}

/// The authorization identity rule: empty, the authcid or username itself,
/// or (domain mode) `name@domain`.
fn authz_ok(authz: &str, authcid: &str, username: &str, for_domain: bool) -> bool {
    if authz.is_empty() || authz == authcid || authz == username {
        return true;
    }
    for_domain
        && authz.split_once('@').is_some_and(|(local, domain)| {
            (local == authcid || local == username) && domain.eq_ignore_ascii_case(DOMAIN)
        })
}

/// What the client knows about its side of a SCRAM exchange.
#[derive(Default)]
struct ScramClient {
    gs2_header: String,
    client_first_bare: String,
    /// The server-first message received, if any.
    server_first: Option<String>,
}

/// The client's own record of the first message it sent.
struct FirstSent {
    /// `Some((authz, authcid))` when it was built from parts.
    identity: Option<(String, String)>,
    /// PLAIN: the password sent.
    plain_password: Option<String>,
    /// All parts are the well-formed, expected values.
    canonical: bool,
}

struct Run {
    mechanism: Mechanism,
    scram: ScramClient,
    first: Option<FirstSent>,
    /// Username from `NeedCredentials` / `VerifyPassword`.
    username: Option<String>,
    /// PLAIN: the password from `VerifyPassword`, checked as an embedder would.
    password: Option<SentPassword>,
    /// Credentials given when the exchange was waiting for them.
    provided: Option<CredChoice>,
    finished: bool,
    succeeded: bool,
}

impl Run {
    /// Encodes a message and records what the client sent.
    fn encode(&mut self, msg: &Msg, first: bool) -> (Vec<u8>, Option<FinalSent>) {
        match msg {
            Msg::Raw(bytes) => {
                if first {
                    self.record_raw_first(bytes);
                }
                (bytes.clone(), None)
            }
            Msg::Plain {
                authz,
                authcid,
                password,
            } => {
                let authcid = authcid.text();
                let authz = authz.text(authcid);
                let bytes = format!("{authz}\0{authcid}\0{}", password.text()).into_bytes();
                if first {
                    self.record_raw_first(&bytes);
                }
                (bytes, None)
            }
            Msg::ScramFirst {
                flag,
                authz,
                user,
                nonce,
                ext,
            } => {
                let authcid = user.text();
                let authz_text = authz.text(authcid);
                let flag_text = match flag {
                    Gs2Flag::N => "n",
                    Gs2Flag::Y => "y",
                    Gs2Flag::P => "p=tls-unique",
                    Gs2Flag::Raw(s) => s,
                };
                let authz_field = if authz_text.is_empty() {
                    String::new()
                } else {
                    format!("a={}", saslname(&authz_text))
                };
                let nonce_text = match nonce {
                    ClientNonce::Fixed => CLIENT_NONCE,
                    ClientNonce::Raw(s) => s,
                };
                let mut bare = format!("n={},r={nonce_text}", saslname(authcid));
                if let Some(ext) = ext {
                    bare.push(',');
                    bare.push_str(ext);
                }
                let bytes = format!("{flag_text},{authz_field},{bare}").into_bytes();
                if first {
                    self.record_raw_first(&bytes);
                    let scram = self.mechanism.scram_hash().is_some();
                    let known_flag = !matches!(flag, Gs2Flag::Raw(_));
                    if scram
                        && known_flag
                        && let Some(f) = self.first.as_mut()
                    {
                        f.identity = Some((authz_text.clone(), authcid.to_owned()));
                        f.canonical = matches!(flag, Gs2Flag::N | Gs2Flag::Y)
                            && matches!(authz, Authz::None | Authz::Same)
                            && matches!(user, Name::User | Name::SoftHyphen)
                            && matches!(nonce, ClientNonce::Fixed)
                            && ext.is_none();
                    }
                }
                (bytes, None)
            }
            Msg::ScramFinal {
                cbind,
                nonce,
                ext,
                proof,
            } => {
                let server_first = self.scram.server_first.clone().unwrap_or_default();
                let combined = server_first
                    .split(',')
                    .next()
                    .and_then(|a| a.strip_prefix("r="))
                    .unwrap_or_default()
                    .to_owned();
                let cbind_text = match cbind {
                    Cbind::Right => BASE64_STANDARD.encode(&self.scram.gs2_header),
                    Cbind::Raw(s) => s.clone(),
                };
                let nonce_text = match nonce {
                    NonceEcho::Right => combined.clone(),
                    NonceEcho::ClientOnly => CLIENT_NONCE.to_owned(),
                    NonceEcho::Raw(s) => s.clone(),
                };
                let mut without_proof = format!("c={cbind_text},r={nonce_text}");
                if let Some(ext) = ext {
                    without_proof.push(',');
                    without_proof.push_str(ext);
                }
                let auth_message = format!(
                    "{},{server_first},{without_proof}",
                    self.scram.client_first_bare
                );
                let hash = self.mechanism.scram_hash().unwrap_or(ScramHash::Sha1);
                let (salt, iterations) = parse_salt_iterations(&server_first);
                let proof_text = match proof {
                    Proof::Right => BASE64_STANDARD
                        .encode(scram_client(hash, PASSWORD, &salt, iterations, &auth_message).0),
                    Proof::Other => BASE64_STANDARD
                        .encode(scram_client(hash, OTHER, &salt, iterations, &auth_message).0),
                    Proof::Bytes(b) => BASE64_STANDARD.encode(b),
                    Proof::Text(s) => s.clone(),
                };
                let bytes = format!("{without_proof},p={proof_text}").into_bytes();
                let sent = FinalSent {
                    cbind_ok: cbind_text == BASE64_STANDARD.encode(&self.scram.gs2_header),
                    nonce_ok: self.scram.server_first.is_some() && nonce_text == combined,
                    proof_text,
                    auth_message,
                    salt,
                    iterations,
                    // Extensions in client-final are not checked by the
                    // server, so any accepted first message plus these
                    // must succeed.
                    canonical: matches!(cbind, Cbind::Right) && matches!(nonce, NonceEcho::Right),
                    proof_choice: match proof {
                        Proof::Right => Some(PASSWORD),
                        Proof::Other => Some(OTHER),
                        _ => None,
                    },
                };
                (bytes, Some(sent))
            }
        }
    }

    fn record_raw_first(&mut self, bytes: &[u8]) {
        let mut sent = FirstSent {
            identity: None,
            plain_password: None,
            canonical: false,
        };
        match self.mechanism {
            Mechanism::Plain => {
                let parts: Vec<&[u8]> = bytes.split(|&b| b == 0).collect();
                if let [authz, authcid, password] = parts[..]
                    && let (Ok(authz), Ok(authcid), Ok(password)) = (
                        std::str::from_utf8(authz),
                        std::str::from_utf8(authcid),
                        std::str::from_utf8(password),
                    )
                {
                    sent.identity = Some((authz.to_owned(), authcid.to_owned()));
                    sent.plain_password = Some(password.to_owned());
                    sent.canonical = (authz.is_empty() || authz == authcid)
                        && matches!(authcid, "user" | "us\u{AD}er");
                }
            }
            Mechanism::ScramSha1
            | Mechanism::ScramSha256
            | Mechanism::ScramSha1Plus
            | Mechanism::ScramSha256Plus => {
                if let Ok(text) = std::str::from_utf8(bytes) {
                    let mut parts = text.splitn(3, ',');
                    if let (Some(flag), Some(authz), Some(bare)) =
                        (parts.next(), parts.next(), parts.next())
                    {
                        self.scram.gs2_header = format!("{flag},{authz},");
                        self.scram.client_first_bare = bare.to_owned();
                    }
                }
            }
        }
        self.first = Some(sent);
    }
}

/// What the client sent as its SCRAM client-final message.
struct FinalSent {
    cbind_ok: bool,
    nonce_ok: bool,
    proof_text: String,
    auth_message: String,
    salt: Vec<u8>,
    iterations: u32,
    canonical: bool,
    proof_choice: Option<&'static str>,
}

fn parse_salt_iterations(server_first: &str) -> (Vec<u8>, u32) {
    let mut salt = Vec::new();
    let mut iterations = 1;
    for attr in server_first.split(',') {
        if let Some(s) = attr.strip_prefix("s=") {
            salt = BASE64_STANDARD.decode(s).unwrap_or_default();
        } else if let Some(i) = attr.strip_prefix("i=") {
            iterations = i.parse().unwrap_or(1);
        }
    }
    (salt, iterations.max(1))
}

fn saslprep(s: &str) -> Option<String> {
    stringprep::saslprep(s).ok().map(|c| c.into_owned())
}

fn is_failure(step: &SaslStep) -> bool {
    matches!(step, SaslStep::Failure { .. })
}

/// `FUZZ_TRACE=1` prints how each input ended (to check seeds).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some())
}

fuzz_target!(|input: Input| {
    let mechanism = match input.mechanism % 3 {
        0 => Mechanism::Plain,
        1 => Mechanism::ScramSha1,
        _ => Mechanism::ScramSha256,
    };
    let mut run = Run {
        mechanism,
        scram: ScramClient::default(),
        first: None,
        username: None,
        password: None,
        provided: None,
        finished: false,
        succeeded: false,
    };

    let initial = input.initial.as_ref().map(|m| run.encode(m, true).0);
    let (mut exchange, step) = if input.for_domain {
        SaslExchange::start_for_domain(mechanism, initial.as_deref(), &input.server_nonce, DOMAIN)
    } else {
        SaslExchange::start(mechanism, initial.as_deref(), &input.server_nonce)
    };
    assert_eq!(exchange.mechanism(), mechanism);
    if initial.is_none() {
        assert!(is_failure(&step), "no initial response must fail: {step:?}");
    }
    match &step {
        SaslStep::NeedCredentials { username } | SaslStep::VerifyPassword { username, .. } => {
            let plain = matches!(step, SaslStep::VerifyPassword { .. });
            assert_eq!(plain, mechanism == Mechanism::Plain, "{step:?}");
            if let SaslStep::VerifyPassword { password, .. } = &step {
                let sent = run.first.as_ref().and_then(|f| f.plain_password.as_deref());
                if let Some(sent) = sent {
                    assert_eq!(password.expose(), sent, "the password as sent");
                }
                run.password = Some(password.clone());
            }
            if let Some(first) = &run.first
                && let Some((authz, authcid)) = &first.identity
            {
                let prepped = saslprep(authcid);
                assert_eq!(
                    prepped.as_deref(),
                    Some(username.as_str()),
                    "username is SASLprep(authcid)"
                );
                assert!(
                    authz_ok(authz, authcid, username, input.for_domain),
                    "authzid {authz:?} accepted for {authcid:?}"
                );
            }
            run.username = Some(username.clone());
        }
        SaslStep::Failure { .. } => {
            run.finished = true;
            // A well-formed first message is accepted.
            if let Some(first) = &run.first {
                let plain_ok = first
                    .plain_password
                    .as_deref()
                    .is_none_or(|p| saslprep(p).is_some_and(|p| !p.is_empty()));
                assert!(
                    !(first.canonical && plain_ok),
                    "canonical first message refused: {step:?}"
                );
            }
        }
        other => panic!("unexpected first step {other:?}"),
    }
    assert_eq!(exchange.is_finished(), run.finished);

    for action in &input.actions {
        let was_finished = run.finished;
        let waiting_for_credentials =
            run.username.is_some() && run.provided.is_none() && !run.finished;
        let awaiting_final = run.scram.server_first.is_some() && !run.finished;
        let step = match action {
            Action::Respond(msg) => {
                let (bytes, sent) = run.encode(msg, false);
                let step = exchange.respond(&bytes);
                if !awaiting_final {
                    assert!(
                        is_failure(&step),
                        "response out of order accepted: {step:?}"
                    );
                }
                match &step {
                    SaslStep::Success {
                        username,
                        additional_data,
                    } => {
                        assert!(
                            mechanism.scram_hash().is_some(),
                            "PLAIN succeeded on a response"
                        );
                        let sent = sent.expect("success on a message that is not a client-final");
                        let creds = run.provided.expect("success without credentials");
                        let password = creds
                            .password_for(mechanism)
                            .expect("success with credentials nobody can use");
                        assert!(sent.cbind_ok, "wrong channel binding accepted");
                        assert!(sent.nonce_ok, "wrong nonce accepted");
                        let hash = mechanism.scram_hash().unwrap_or(ScramHash::Sha1);
                        let (proof, server_signature) = scram_client(
                            hash,
                            password,
                            &sent.salt,
                            sent.iterations,
                            &sent.auth_message,
                        );
                        assert_eq!(
                            BASE64_STANDARD.decode(&sent.proof_text).ok(),
                            Some(proof),
                            "success without the right proof"
                        );
                        let expected =
                            format!("v={}", BASE64_STANDARD.encode(server_signature)).into_bytes();
                        assert_eq!(
                            additional_data.as_ref(),
                            Some(&expected),
                            "server signature"
                        );
                        assert_eq!(Some(username), run.username.as_ref());
                    }
                    SaslStep::Failure { failure, .. } => {
                        if awaiting_final
                            && let Some(sent) = &sent
                            && sent.canonical
                            && let Some(creds) = run.provided
                            && creds.password_for(mechanism).is_some()
                            && sent.proof_choice == creds.password_for(mechanism)
                        {
                            panic!("the right proof was refused: {failure:?}");
                        }
                    }
                    other => panic!("unexpected step after a response: {other:?}"),
                }
                step
            }
            Action::Provide(choice) => {
                // PLAIN: check the password as an embedder would.
                let step = if mechanism == Mechanism::Plain {
                    let password = run.password.clone().unwrap_or_default();
                    exchange.provide_password_check(PasswordCheck::from_credentials(
                        choice.get(),
                        &password,
                    ))
                } else {
                    exchange.provide_credentials(choice.get())
                };
                if waiting_for_credentials {
                    run.provided = Some(*choice);
                    match choice {
                        CredChoice::Missing => assert!(
                            matches!(
                                step,
                                SaslStep::Failure {
                                    failure: SaslFailure::NotAuthorized,
                                    ..
                                }
                            ),
                            "{step:?}"
                        ),
                        CredChoice::Disabled => assert!(
                            matches!(
                                step,
                                SaslStep::Failure {
                                    failure: SaslFailure::AccountDisabled,
                                    ..
                                }
                            ),
                            "{step:?}"
                        ),
                        _ => {}
                    }
                } else {
                    assert!(
                        matches!(
                            step,
                            SaslStep::Failure {
                                failure: SaslFailure::TemporaryAuthFailure,
                                ..
                            }
                        ),
                        "credentials out of order: {step:?}"
                    );
                }
                match &step {
                    SaslStep::Challenge(data) => {
                        assert!(mechanism.scram_hash().is_some(), "PLAIN challenge");
                        assert!(
                            choice.password_for(mechanism).is_some(),
                            "challenge with unusable credentials"
                        );
                        let text = String::from_utf8(data.clone()).expect("server-first is UTF-8");
                        let combined = text
                            .split(',')
                            .next()
                            .and_then(|a| a.strip_prefix("r="))
                            .expect("server-first starts with r=");
                        let client_nonce = run
                            .scram
                            .client_first_bare
                            .split(',')
                            .find_map(|a| a.strip_prefix("r="))
                            .unwrap_or_default();
                        assert!(
                            combined.starts_with(client_nonce),
                            "nonce extends the client's"
                        );
                        // An empty server nonce is the caller's choice
                        // (the manager always passes random bytes).
                        if !input.server_nonce.is_empty() {
                            assert!(combined.len() > client_nonce.len(), "server adds nonce");
                        }
                        let (salt, iterations) = parse_salt_iterations(&text);
                        assert_eq!((salt.as_slice(), iterations), (SALT, ITERATIONS));
                        run.scram.server_first = Some(text);
                    }
                    SaslStep::Success {
                        username,
                        additional_data,
                    } => {
                        assert_eq!(mechanism, Mechanism::Plain, "SCRAM success without a proof");
                        assert!(additional_data.is_none());
                        assert_eq!(Some(username), run.username.as_ref());
                        let password = choice
                            .password_for(mechanism)
                            .expect("success with credentials nobody can use");
                        let first = run.first.as_ref().expect("first message");
                        let sent = first.plain_password.as_deref().expect("PLAIN password");
                        assert_eq!(
                            saslprep(sent).as_deref(),
                            Some(password),
                            "PLAIN succeeded with the wrong password"
                        );
                    }
                    SaslStep::Failure { .. } => {
                        if waiting_for_credentials
                            && mechanism == Mechanism::Plain
                            && let Some(password) = choice.password_for(mechanism)
                            && let Some(first) = &run.first
                            && first.canonical
                            && first
                                .plain_password
                                .as_deref()
                                .and_then(saslprep)
                                .as_deref()
                                == Some(password)
                        {
                            panic!("PLAIN with the right password refused: {step:?}");
                        }
                    }
                    SaslStep::NeedCredentials { .. } | SaslStep::VerifyPassword { .. } => {
                        panic!("credentials asked twice")
                    }
                }
                if !matches!(step, SaslStep::Challenge(_)) {
                    run.scram.server_first = None;
                }
                step
            }
        };
        if was_finished {
            assert!(is_failure(&step), "finished exchange went on: {step:?}");
        }
        match &step {
            SaslStep::Success { .. } => {
                assert!(!run.succeeded);
                run.succeeded = true;
                run.finished = true;
            }
            SaslStep::Failure { .. } => run.finished = true,
            _ => {}
        }
        if run.finished {
            run.scram.server_first = None;
        }
        assert_eq!(exchange.is_finished(), run.finished);
        let debug = format!("{exchange:?}");
        assert!(
            !debug.contains(PASSWORD) && !debug.contains(OTHER),
            "Debug leaks a password"
        );
        if trace() {
            eprintln!("TRACE {mechanism} {step:?}");
        }
    }
});
