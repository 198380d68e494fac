//! Exchange-level tests: RFC test vectors, every failure path, and fuzzing.

use super::*;
use proptest::prelude::*;

const SHA1_SALT: &str = "QSXCR+Q6sek8bf92";
const SHA256_SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";

fn b64d(s: &str) -> Vec<u8> {
    BASE64_STANDARD.decode(s).expect("test base64")
}

/// Credentials for "pencil" with the RFC salts (SHA-1 salt for SHA-1, RFC 7677 salt
/// for SHA-256).
fn pencil() -> Credentials {
    Credentials {
        sha1: Some(ScramKeys::derive(
            ScramHash::Sha1,
            "pencil",
            &b64d(SHA1_SALT),
            4096,
        )),
        sha256: Some(ScramKeys::derive(
            ScramHash::Sha256,
            "pencil",
            &b64d(SHA256_SALT),
            4096,
        )),
        disabled: false,
    }
}

/// Cheap credentials for tests that do not need RFC vectors.
fn cheap(password: &str) -> Credentials {
    Credentials::from_password(password, b"NaCl", 2)
}

fn failure(f: SaslFailure) -> impl Fn(&SaslStep) -> bool {
    move |s| matches!(s, SaslStep::Failure { failure, .. } if *failure == f)
}

#[track_caller]
fn assert_failure(step: &SaslStep, f: SaslFailure) {
    assert!(failure(f)(step), "expected {f:?}, got {step:?}");
}

fn need(user: &str) -> SaslStep {
    SaslStep::NeedCredentials {
        username: user.to_owned(),
    }
}

fn verify(user: &str, password: &str) -> SaslStep {
    SaslStep::VerifyPassword {
        username: user.to_owned(),
        password: Password::from(password),
    }
}

/// A client-side SCRAM proof computation, for driving exchanges in tests.
fn client_final(
    hash: ScramHash,
    password: &str,
    gs2_header: &str,
    client_first_bare: &str,
    server_first: &str,
) -> String {
    client_final_bound(
        hash,
        password,
        gs2_header.as_bytes(),
        client_first_bare,
        server_first,
    )
}

/// [`client_final`] with `c=` the base64 of `cbind_input` (the gs2 header
/// and, with channel binding, the binding data).
fn client_final_bound(
    hash: ScramHash,
    password: &str,
    cbind_input: &[u8],
    client_first_bare: &str,
    server_first: &str,
) -> String {
    let mut attrs = server_first.split(',');
    let nonce = attrs.next().and_then(|a| a.strip_prefix("r=")).expect("r");
    let salt = b64d(attrs.next().and_then(|a| a.strip_prefix("s=")).expect("s"));
    let iter: u32 = attrs
        .next()
        .and_then(|a| a.strip_prefix("i="))
        .expect("i")
        .parse()
        .expect("i number");
    let mut salted = vec![0u8; hash.output_len()];
    match hash {
        ScramHash::Sha1 => {
            pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password.as_bytes(), &salt, iter, &mut salted);
        }
        ScramHash::Sha256 => {
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), &salt, iter, &mut salted);
        }
    }
    let client_key = hash.hmac(&salted, b"Client Key");
    let stored_key = hash.digest(&client_key);
    let without_proof = format!("c={},r={}", BASE64_STANDARD.encode(cbind_input), nonce);
    let auth = format!("{client_first_bare},{server_first},{without_proof}");
    let sig = hash.hmac(&stored_key, auth.as_bytes());
    let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
    format!("{without_proof},p={}", BASE64_STANDARD.encode(proof))
}

/// Runs a SCRAM exchange up to the server-first challenge.
fn scram_to_challenge(
    mech: Mechanism,
    client_first: &str,
    creds: &Credentials,
) -> (SaslExchange, String) {
    let (mut ex, step) =
        SaslExchange::start(mech, Some(client_first.as_bytes()), b"0123456789abcdef");
    assert!(matches!(step, SaslStep::NeedCredentials { .. }), "{step:?}");
    match ex.provide_credentials(Some(creds)) {
        SaslStep::Challenge(c) => (ex, String::from_utf8(c).expect("utf8")),
        other => panic!("expected challenge, got {other:?}"),
    }
}

// ---------------------------------------------------------------- basic items

#[test]
fn mechanism_names() {
    assert_eq!(
        Mechanism::ALL,
        [
            Mechanism::ScramSha256Plus,
            Mechanism::ScramSha1Plus,
            Mechanism::ScramSha256,
            Mechanism::ScramSha1,
            Mechanism::Plain
        ]
    );
    assert_eq!(
        Mechanism::from_name("SCRAM-SHA-256-PLUS"),
        Some(Mechanism::ScramSha256Plus)
    );
    assert!(Mechanism::ScramSha1Plus.is_plus() && Mechanism::ScramSha256Plus.is_plus());
    assert!(!Mechanism::ScramSha1.is_plus() && !Mechanism::Plain.is_plus());
    assert_eq!(
        Mechanism::ScramSha256Plus.scram_hash(),
        Some(ScramHash::Sha256)
    );
    assert_eq!(Mechanism::ScramSha1Plus.scram_hash(), Some(ScramHash::Sha1));
    for m in Mechanism::ALL {
        assert_eq!(Mechanism::from_name(m.name()), Some(m));
        assert_eq!(m.to_string(), m.name());
    }
    assert_eq!(Mechanism::from_name("scram-sha-1"), None);
    assert_eq!(Mechanism::from_name("scram-sha-1-plus"), None);
    assert_eq!(Mechanism::from_name("DIGEST-MD5"), None);
    assert!(Mechanism::Plain.is_plaintext());
    assert!(!Mechanism::ScramSha1.is_plaintext());
    assert!(!Mechanism::ScramSha256.is_plaintext());
}

#[test]
fn failure_conditions() {
    use SaslFailure::*;
    let all = [
        (Aborted, "aborted"),
        (AccountDisabled, "account-disabled"),
        (CredentialsExpired, "credentials-expired"),
        (EncryptionRequired, "encryption-required"),
        (IncorrectEncoding, "incorrect-encoding"),
        (InvalidAuthzid, "invalid-authzid"),
        (InvalidMechanism, "invalid-mechanism"),
        (MalformedRequest, "malformed-request"),
        (MechanismTooWeak, "mechanism-too-weak"),
        (NotAuthorized, "not-authorized"),
        (TemporaryAuthFailure, "temporary-auth-failure"),
    ];
    for (f, name) in all {
        assert_eq!(f.condition(), name);
        assert_eq!(f.to_string(), name);
    }
}

#[test]
fn exchange_is_send_and_debug_hides_secrets() {
    fn is_send<T: Send>() {}
    is_send::<SaslExchange>();
    is_send::<SaslStep>();
    is_send::<Password>();
    let (ex, step) = SaslExchange::start(Mechanism::Plain, Some(b"\0user\0hunter2"), b"");
    let text = format!("{ex:?} {step:?} {step:#?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("await-password-check"), "{text}");
    let (ex, _) = SaslExchange::start(Mechanism::ScramSha1, Some(b"n,,n=user,r=abc"), b"n");
    assert!(format!("{ex:?}").contains("need-credentials"));
}

// ---------------------------------------------------------------- RFC vectors

#[test]
fn rfc5802_scram_sha1_vector() {
    let (mut ex, step) = SaslExchange::start_with_nonce_text(
        Mechanism::ScramSha1,
        Some(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"),
        "3rfcNHYJY1ZVvWVs7j",
    );
    assert_eq!(step, need("user"));
    assert!(!ex.is_finished());
    let step = ex.provide_credentials(Some(&pencil()));
    assert_eq!(
        step,
        SaslStep::Challenge(
            b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096".to_vec()
        )
    );
    let step = ex.respond(
        b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    );
    assert_eq!(
        step,
        SaslStep::Success {
            username: "user".into(),
            additional_data: Some(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=".to_vec()),
        }
    );
    assert!(ex.is_finished());
    assert_eq!(ex.mechanism(), Mechanism::ScramSha1);
}

#[test]
fn rfc7677_scram_sha256_vector() {
    let (mut ex, step) = SaslExchange::start_with_nonce_text(
        Mechanism::ScramSha256,
        Some(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"),
        "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    );
    assert_eq!(step, need("user"));
    let step = ex.provide_credentials(Some(&pencil()));
    assert_eq!(
        step,
        SaslStep::Challenge(
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
                .to_vec()
        )
    );
    let step = ex.respond(
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    );
    assert_eq!(
        step,
        SaslStep::Success {
            username: "user".into(),
            additional_data: Some(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec()),
        }
    );
    assert!(ex.is_finished());
}

#[test]
fn nonce_bytes_are_base64_encoded() {
    let (mut ex, _) = SaslExchange::start(
        Mechanism::ScramSha256,
        Some(b"n,,n=user,r=abc"),
        &[0xfb, 0xff, 0x00],
    );
    assert_eq!(
        ex.provide_credentials(Some(&cheap("x"))),
        SaslStep::Challenge(b"r=abc+/8A,s=TmFDbA==,i=2".to_vec())
    );
}

#[test]
fn nonce_text_is_sanitised() {
    let (mut ex, _) = SaslExchange::start_with_nonce_text(
        Mechanism::ScramSha1,
        Some(b"n,,n=u,r=a"),
        "b, c\u{e9}d",
    );
    assert_eq!(
        ex.provide_credentials(Some(&cheap("x"))),
        SaslStep::Challenge(b"r=abcd,s=TmFDbA==,i=2".to_vec())
    );
}

// ---------------------------------------------------------------- SCRAM round trips

#[test]
fn scram_round_trips() {
    for mech in [Mechanism::ScramSha1, Mechanism::ScramSha256] {
        let hash = mech.scram_hash().expect("scram");
        for (gs2, bare, user) in [
            ("n,,", "n=juliet,r=clientnonce", "juliet"),
            ("y,,", "n=juliet,r=clientnonce", "juliet"),
            ("n,a=juliet,", "n=juliet,r=clientnonce", "juliet"),
            ("n,,", "n=a=2Cb=3Dc,r=xyz,e=ignored", "a,b=c"),
            ("n,,", "n=I\u{AD}X,r=xyz", "IX"),
        ] {
            let (mut ex, server_first) =
                scram_to_challenge(mech, &format!("{gs2}{bare}"), &cheap("s3cret"));
            let cf = client_final(hash, "s3cret", gs2, bare, &server_first);
            match ex.respond(cf.as_bytes()) {
                SaslStep::Success {
                    username,
                    additional_data: Some(_),
                } => assert_eq!(username, user),
                other => panic!("{mech:?} {gs2}{bare}: {other:?}"),
            }
            assert!(ex.is_finished());
        }
    }
}

#[test]
fn scram_server_signature_is_checked_by_client_math() {
    // The server-final matches an independent computation of ServerSignature.
    let hash = ScramHash::Sha256;
    let bare = "n=user,r=nonce";
    let (mut ex, server_first) =
        scram_to_challenge(Mechanism::ScramSha256, &format!("n,,{bare}"), &cheap("pw"));
    let cf = client_final(hash, "pw", "n,,", bare, &server_first);
    let without_proof = cf.rsplit_once(",p=").expect("p").0;
    let keys = cheap("pw").sha256.expect("keys");
    let auth = format!("{bare},{server_first},{without_proof}");
    let expected = format!(
        "v={}",
        BASE64_STANDARD.encode(hash.hmac(&keys.server_key, auth.as_bytes()))
    );
    assert_eq!(
        ex.respond(cf.as_bytes()),
        SaslStep::Success {
            username: "user".into(),
            additional_data: Some(expected.into_bytes())
        }
    );
}

// ---------------------------------------------------------------- SCRAM failures

#[test]
fn scram_missing_or_empty_initial_response() {
    for mech in [Mechanism::ScramSha1, Mechanism::ScramSha256] {
        let (ex, step) = SaslExchange::start(mech, None, b"n");
        assert_failure(&step, SaslFailure::MalformedRequest);
        assert!(ex.is_finished());
        let (ex, step) = SaslExchange::start(mech, Some(b""), b"n");
        assert_failure(&step, SaslFailure::MalformedRequest);
        assert!(ex.is_finished());
    }
}

#[test]
fn scram_bad_client_first() {
    for bad in [
        "x,,n=user,r=abc",
        "n,n=user,r=abc",
        "p=,,n=user,r=abc",
        "p=tls_exporter,,n=user,r=abc",
        "n,,m=foo,n=user,r=abc",
        "n,,n=us=2xer,r=abc",
        "n,,n=user=,r=abc",
        "n,,n=,r=abc",
        "n,,n=user",
        "n,,n=user,r=",
        "n,,r=abc",
        "n,,n=user,r=a\u{e9}",
        "n,,n=u\u{7}ser,r=abc",
        "n,x=user,n=user,r=abc",
    ] {
        for mech in [Mechanism::ScramSha1, Mechanism::ScramSha256] {
            let (ex, step) = SaslExchange::start(mech, Some(bad.as_bytes()), b"n");
            assert_failure(&step, SaslFailure::MalformedRequest);
            assert!(ex.is_finished(), "{bad}");
        }
    }
    let (_, step) = SaslExchange::start(Mechanism::ScramSha1, Some(b"n,,n=u\xff,r=a"), b"n");
    assert_failure(&step, SaslFailure::MalformedRequest);
}

#[test]
fn scram_authzid() {
    let (_, step) =
        SaslExchange::start(Mechanism::ScramSha1, Some(b"n,a=admin,n=user,r=abc"), b"n");
    assert_failure(&step, SaslFailure::InvalidAuthzid);
    let (_, step) = SaslExchange::start(Mechanism::ScramSha1, Some(b"n,a=user,n=user,r=abc"), b"n");
    assert_eq!(step, need("user"));
    // The bare JID form needs the domain.
    let (_, step) = SaslExchange::start(
        Mechanism::ScramSha256,
        Some(b"n,a=user@example.com,n=user,r=abc"),
        b"n",
    );
    assert_failure(&step, SaslFailure::InvalidAuthzid);
    let (_, step) = SaslExchange::start_for_domain(
        Mechanism::ScramSha256,
        Some(b"n,a=user@Example.COM,n=user,r=abc"),
        b"n",
        "example.com",
    );
    assert_eq!(step, need("user"));
    let (_, step) = SaslExchange::start_for_domain(
        Mechanism::ScramSha256,
        Some(b"n,a=admin@example.com,n=user,r=abc"),
        b"n",
        "example.com",
    );
    assert_failure(&step, SaslFailure::InvalidAuthzid);
    let (_, step) = SaslExchange::start_for_domain(
        Mechanism::ScramSha256,
        Some(b"n,a=user@example.org,n=user,r=abc"),
        b"n",
        "example.com",
    );
    assert_failure(&step, SaslFailure::InvalidAuthzid);
}

#[test]
fn scram_unknown_user_disabled_and_missing_keys() {
    for mech in [Mechanism::ScramSha1, Mechanism::ScramSha256] {
        let (mut ex, _) = SaslExchange::start(mech, Some(b"n,,n=user,r=abc"), b"n");
        let step = ex.provide_credentials(None);
        assert_failure(&step, SaslFailure::NotAuthorized);
        assert!(ex.is_finished());

        let mut disabled = cheap("pw");
        disabled.disabled = true;
        let (mut ex, _) = SaslExchange::start(mech, Some(b"n,,n=user,r=abc"), b"n");
        assert_failure(
            &ex.provide_credentials(Some(&disabled)),
            SaslFailure::AccountDisabled,
        );
        assert!(ex.is_finished());
    }
    let mut only_sha1 = cheap("pw");
    only_sha1.sha256 = None;
    let (mut ex, _) = SaslExchange::start(Mechanism::ScramSha256, Some(b"n,,n=user,r=abc"), b"n");
    assert_failure(
        &ex.provide_credentials(Some(&only_sha1)),
        SaslFailure::NotAuthorized,
    );
    let (mut ex, _) = SaslExchange::start(Mechanism::ScramSha1, Some(b"n,,n=user,r=abc"), b"n");
    assert!(matches!(
        ex.provide_credentials(Some(&only_sha1)),
        SaslStep::Challenge(_)
    ));
}

#[test]
fn scram_unknown_user_same_text_as_bad_proof() {
    let (mut ex, _) = SaslExchange::start(Mechanism::ScramSha1, Some(b"n,,n=user,r=abc"), b"n");
    let unknown = ex.provide_credentials(None);
    let (mut ex, server_first) =
        scram_to_challenge(Mechanism::ScramSha1, "n,,n=user,r=abc", &cheap("right"));
    let cf = client_final(
        ScramHash::Sha1,
        "wrong",
        "n,,",
        "n=user,r=abc",
        &server_first,
    );
    let bad = ex.respond(cf.as_bytes());
    assert_eq!(unknown, bad);
}

/// Runs to server-first, then sends `mutate(valid client-final)`.
fn scram_final_with(
    mech: Mechanism,
    gs2: &str,
    mutate: impl Fn(&str, &str) -> String,
) -> (SaslExchange, SaslStep) {
    let bare = "n=user,r=abc";
    let (mut ex, server_first) = scram_to_challenge(mech, &format!("{gs2}{bare}"), &cheap("pw"));
    let cf = client_final(
        mech.scram_hash().expect("scram"),
        "pw",
        gs2,
        bare,
        &server_first,
    );
    let nonce = server_first
        .split(',')
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .expect("r")
        .to_owned();
    let step = ex.respond(mutate(&cf, &nonce).as_bytes());
    (ex, step)
}

#[test]
fn scram_wrong_proof() {
    for mech in [Mechanism::ScramSha1, Mechanism::ScramSha256] {
        let bare = "n=user,r=abc";
        let (mut ex, server_first) = scram_to_challenge(mech, &format!("n,,{bare}"), &cheap("pw"));
        let cf = client_final(
            mech.scram_hash().expect("scram"),
            "pW",
            "n,,",
            bare,
            &server_first,
        );
        assert_failure(&ex.respond(cf.as_bytes()), SaslFailure::NotAuthorized);
        assert!(ex.is_finished());

        // A proof of the wrong length.
        let (_, step) = scram_final_with(mech, "n,,", |cf, _| {
            format!("{},p=AAAA", cf.rsplit_once(",p=").expect("p").0)
        });
        assert_failure(&step, SaslFailure::NotAuthorized);

        // Flip one bit of the proof.
        let (_, step) = scram_final_with(mech, "n,,", |cf, _| {
            let (head, p) = cf.rsplit_once(",p=").expect("p");
            let mut proof = b64d(p);
            if let Some(b) = proof.first_mut() {
                *b ^= 1;
            }
            format!("{head},p={}", BASE64_STANDARD.encode(proof))
        });
        assert_failure(&step, SaslFailure::NotAuthorized);
    }
}

#[test]
fn scram_wrong_nonce() {
    for mech in [Mechanism::ScramSha1, Mechanism::ScramSha256] {
        // Only the client part of the nonce.
        let (ex, step) = scram_final_with(mech, "n,,", |cf, nonce| {
            cf.replace(&format!("r={nonce}"), "r=abc")
        });
        assert_failure(&step, SaslFailure::MalformedRequest);
        assert!(ex.is_finished());
        // Extra characters.
        let (_, step) = scram_final_with(mech, "n,,", |cf, nonce| {
            cf.replace(&format!("r={nonce}"), &format!("r={nonce}x"))
        });
        assert_failure(&step, SaslFailure::MalformedRequest);
        // Missing nonce attribute.
        let (_, step) = scram_final_with(mech, "n,,", |cf, nonce| {
            cf.replace(&format!(",r={nonce}"), "")
        });
        assert_failure(&step, SaslFailure::MalformedRequest);
    }
}

#[test]
fn scram_wrong_channel_binding() {
    for mech in [Mechanism::ScramSha1, Mechanism::ScramSha256] {
        // `y,,` header but `n,,` binding value.
        let (_, step) = scram_final_with(mech, "y,,", |cf, _| cf.replace("c=eSws", "c=biws"));
        assert_failure(&step, SaslFailure::MalformedRequest);
        // `n,,` header but `y,,` binding value.
        let (_, step) = scram_final_with(mech, "n,,", |cf, _| cf.replace("c=biws", "c=eSws"));
        assert_failure(&step, SaslFailure::MalformedRequest);
        // Authzid header but binding value without it.
        let (_, step) =
            scram_final_with(mech, "n,a=user,", |cf, _| cf.replacen("c=", "c=biws,x=", 1));
        assert_failure(&step, SaslFailure::MalformedRequest);
        // Binding value not base64 of anything sensible / missing.
        let (_, step) = scram_final_with(mech, "n,,", |cf, _| cf.replace("c=biws", "c=bi"));
        assert_failure(&step, SaslFailure::MalformedRequest);
        let (_, step) = scram_final_with(mech, "n,,", |cf, _| cf.replace("c=biws,", ""));
        assert_failure(&step, SaslFailure::MalformedRequest);
    }
}

#[test]
fn scram_bad_client_final_syntax() {
    for mutate in [
        (|_: &str, _: &str| String::new()) as fn(&str, &str) -> String,
        |cf, _| cf.replace(",p=", ",q="),
        |cf, _| format!("{cf},e=trailing"),
        |cf, _| cf.replace(",p=", ",p=!!"),
        |cf, _| format!("{cf}\u{0}"),
        |cf, _| cf.replace("c=", "C="),
        |cf, _| {
            let mut v = cf.as_bytes().to_vec();
            v.push(0xff);
            String::from_utf8_lossy(&v).into_owned()
        },
    ] {
        let (ex, step) = scram_final_with(Mechanism::ScramSha256, "n,,", mutate);
        assert_failure(&step, SaslFailure::MalformedRequest);
        assert!(ex.is_finished());
    }
    // Invalid UTF-8 in client-final.
    let (mut ex, _) = scram_to_challenge(Mechanism::ScramSha1, "n,,n=user,r=abc", &cheap("pw"));
    assert_failure(
        &ex.respond(b"c=biws,r=\xff,p=AAAA"),
        SaslFailure::MalformedRequest,
    );
}

#[test]
fn scram_client_final_extensions_are_allowed() {
    let bare = "n=user,r=abc";
    let (mut ex, server_first) =
        scram_to_challenge(Mechanism::ScramSha1, &format!("n,,{bare}"), &cheap("pw"));
    let nonce = server_first.split(',').next().expect("r").to_owned();
    // Build a proof over a client-final-without-proof that has an extension.
    let cf = client_final(ScramHash::Sha1, "pw", "n,,", bare, &server_first);
    // A valid proof covers the exact without-proof text, so an added extension
    // invalidates it (NotAuthorized), proving extensions are parsed, not rejected.
    let with_ext = cf.replacen(&nonce, &format!("{nonce},x=1"), 1);
    assert_failure(&ex.respond(with_ext.as_bytes()), SaslFailure::NotAuthorized);
}

#[test]
fn scram_out_of_order() {
    // respond before credentials are provided.
    let (mut ex, _) = SaslExchange::start(Mechanism::ScramSha1, Some(b"n,,n=user,r=abc"), b"n");
    assert_eq!(
        ex.respond(b"c=biws,r=abc,p=AAAA"),
        SaslStep::Failure {
            failure: SaslFailure::MalformedRequest,
            text: Some("Out of order SASL element"),
        }
    );
    assert!(ex.is_finished());
    // Credentials after that are unexpected.
    assert_failure(
        &ex.provide_credentials(Some(&cheap("pw"))),
        SaslFailure::TemporaryAuthFailure,
    );

    // Credentials twice.
    let (mut ex, _) = scram_to_challenge(Mechanism::ScramSha1, "n,,n=user,r=abc", &cheap("pw"));
    assert_failure(
        &ex.provide_credentials(Some(&cheap("pw"))),
        SaslFailure::TemporaryAuthFailure,
    );
    assert!(ex.is_finished());

    // respond after success.
    let bare = "n=user,r=abc";
    let (mut ex, server_first) =
        scram_to_challenge(Mechanism::ScramSha1, &format!("n,,{bare}"), &cheap("pw"));
    let cf = client_final(ScramHash::Sha1, "pw", "n,,", bare, &server_first);
    assert!(matches!(
        ex.respond(cf.as_bytes()),
        SaslStep::Success { .. }
    ));
    assert_failure(&ex.respond(cf.as_bytes()), SaslFailure::MalformedRequest);

    // respond after failure at start.
    let (mut ex, _) = SaslExchange::start(Mechanism::ScramSha256, None, b"n");
    assert_failure(
        &ex.respond(b"n,,n=user,r=abc"),
        SaslFailure::MalformedRequest,
    );
}

// ---------------------------------------------------------------- PLAIN

/// Runs the check an embedder would run for a PLAIN [`SaslStep::VerifyPassword`].
fn check(step: &SaslStep, creds: Option<&Credentials>) -> PasswordCheck {
    match step {
        SaslStep::VerifyPassword { password, .. } => {
            PasswordCheck::from_credentials(creds, password)
        }
        other => panic!("expected a password check, got {other:?}"),
    }
}

#[test]
fn plain_asks_for_a_password_check_not_credentials() {
    // PLAIN hands the password out (the embedder runs PBKDF2) and keeps none.
    let (ex, step) = SaslExchange::start(Mechanism::Plain, Some(b"\0juliet\0r0m30"), b"");
    assert_eq!(step, verify("juliet", "r0m30"));
    assert!(!ex.is_finished());
    let text = format!("{step:?} {ex:?}");
    assert!(!text.contains("r0m30"), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
    assert!(text.contains("await-password-check"), "{text}");
}

#[test]
fn plain_success() {
    let (mut ex, step) = SaslExchange::start(Mechanism::Plain, Some(b"\0juliet\0r0m30"), b"");
    assert_eq!(check(&step, Some(&cheap("r0m30"))), PasswordCheck::Valid);
    assert_eq!(
        ex.provide_password_check(PasswordCheck::Valid),
        SaslStep::Success {
            username: "juliet".into(),
            additional_data: None
        }
    );
    assert!(ex.is_finished());
    assert_eq!(ex.mechanism(), Mechanism::Plain);

    // Only SHA-1 keys stored.
    let mut creds = cheap("r0m30");
    creds.sha256 = None;
    let (_, step) = SaslExchange::start(Mechanism::Plain, Some(b"\0juliet\0r0m30"), b"");
    assert_eq!(check(&step, Some(&creds)), PasswordCheck::Valid);

    // SASLprep on the password: soft hyphen is mapped to nothing.
    let (_, step) = SaslExchange::start(
        Mechanism::Plain,
        Some("\0juliet\0r0\u{AD}m30".as_bytes()),
        b"",
    );
    assert_eq!(check(&step, Some(&cheap("r0m30"))), PasswordCheck::Valid);
}

#[test]
fn plain_not_authorized() {
    let (mut ex, step) = SaslExchange::start(Mechanism::Plain, Some(b"\0juliet\0wrong"), b"");
    let verdict = check(&step, Some(&cheap("r0m30")));
    assert_eq!(verdict, PasswordCheck::WrongPassword);
    let wrong = ex.provide_password_check(verdict);
    assert_failure(&wrong, SaslFailure::NotAuthorized);
    assert!(ex.is_finished());

    let (mut ex, step) = SaslExchange::start(Mechanism::Plain, Some(b"\0nobody\0wrong"), b"");
    let verdict = check(&step, None);
    assert_eq!(verdict, PasswordCheck::UnknownUser);
    let unknown = ex.provide_password_check(verdict);
    assert_eq!(
        unknown, wrong,
        "unknown user must look like a wrong password"
    );

    let no_keys = Credentials {
        sha1: None,
        sha256: None,
        disabled: false,
    };
    let (mut ex, step) = SaslExchange::start(Mechanism::Plain, Some(b"\0juliet\0x"), b"");
    let verdict = check(&step, Some(&no_keys));
    assert_eq!(
        ex.provide_password_check(verdict),
        wrong,
        "no keys must look like a wrong password"
    );
}

#[test]
fn plain_disabled() {
    let mut creds = cheap("r0m30");
    creds.disabled = true;
    let (mut ex, step) = SaslExchange::start(Mechanism::Plain, Some(b"\0juliet\0r0m30"), b"");
    let verdict = check(&step, Some(&creds));
    assert_eq!(verdict, PasswordCheck::AccountDisabled);
    assert_failure(
        &ex.provide_password_check(verdict),
        SaslFailure::AccountDisabled,
    );
    assert!(ex.is_finished());
}

#[test]
fn password_check_and_credentials_go_to_their_own_mechanism() {
    // Stored credentials are not an answer to a PLAIN exchange...
    let (mut ex, _) = SaslExchange::start(Mechanism::Plain, Some(b"\0juliet\0pw"), b"");
    assert_failure(
        &ex.provide_credentials(Some(&cheap("pw"))),
        SaslFailure::TemporaryAuthFailure,
    );
    assert!(ex.is_finished());
    // ...nor a verdict an answer to a SCRAM one.
    let (mut ex, _) = SaslExchange::start(Mechanism::ScramSha1, Some(b"n,,n=user,r=abc"), b"n");
    assert_failure(
        &ex.provide_password_check(PasswordCheck::Valid),
        SaslFailure::TemporaryAuthFailure,
    );
    assert!(ex.is_finished());
}

#[test]
fn plain_malformed() {
    let (ex, step) = SaslExchange::start(Mechanism::Plain, None, b"");
    assert_failure(&step, SaslFailure::MalformedRequest);
    assert!(ex.is_finished());
    for bad in [
        &b""[..],
        b"juliet",
        b"\0juliet",
        b"\0juliet\0",
        b"\0\0pw",
        b"\0juliet\0pw\0extra",
        b"\0jul\xffiet\0pw",
        "\0jul\u{7}iet\0pw".as_bytes(),
        "\0juliet\0p\u{0627}1".as_bytes(), // bidi violation in the password
    ] {
        let (ex, step) = SaslExchange::start(Mechanism::Plain, Some(bad), b"");
        assert_failure(&step, SaslFailure::MalformedRequest);
        assert!(ex.is_finished());
    }
}

#[test]
fn plain_authzid() {
    let (_, step) = SaslExchange::start(Mechanism::Plain, Some(b"juliet\0juliet\0pw"), b"");
    assert_eq!(step, verify("juliet", "pw"));
    let (_, step) = SaslExchange::start(Mechanism::Plain, Some(b"romeo\0juliet\0pw"), b"");
    assert_failure(&step, SaslFailure::InvalidAuthzid);
    let (_, step) = SaslExchange::start(
        Mechanism::Plain,
        Some(b"juliet@capulet.lit\0juliet\0pw"),
        b"",
    );
    assert_failure(&step, SaslFailure::InvalidAuthzid);
    let (_, step) = SaslExchange::start_for_domain(
        Mechanism::Plain,
        Some(b"juliet@capulet.lit\0juliet\0pw"),
        b"",
        "capulet.lit",
    );
    assert_eq!(step, verify("juliet", "pw"));
    let (_, step) = SaslExchange::start_for_domain(
        Mechanism::Plain,
        Some(b"juliet@capulet.lit/balcony\0juliet\0pw"),
        b"",
        "capulet.lit",
    );
    assert_failure(&step, SaslFailure::InvalidAuthzid);
    let (_, step) = SaslExchange::start_for_domain(
        Mechanism::Plain,
        Some(b"romeo@capulet.lit\0juliet\0pw"),
        b"",
        "capulet.lit",
    );
    assert_failure(&step, SaslFailure::InvalidAuthzid);
}

#[test]
fn plain_out_of_order() {
    let (mut ex, _) = SaslExchange::start(Mechanism::Plain, Some(b"\0juliet\0pw"), b"");
    assert_failure(&ex.respond(b"\0juliet\0pw"), SaslFailure::MalformedRequest);
    assert!(ex.is_finished());
    assert_failure(
        &ex.provide_password_check(PasswordCheck::Valid),
        SaslFailure::TemporaryAuthFailure,
    );

    let (mut ex, _) = SaslExchange::start(Mechanism::Plain, Some(b"\0juliet\0pw"), b"");
    assert!(matches!(
        ex.provide_password_check(PasswordCheck::Valid),
        SaslStep::Success { .. }
    ));
    assert_failure(&ex.respond(b""), SaslFailure::MalformedRequest);
    assert_failure(
        &ex.provide_password_check(PasswordCheck::Valid),
        SaslFailure::TemporaryAuthFailure,
    );
}

// ---------------------------------------------------------------- channel binding

const EXPORTER: [u8; 32] = [7; 32];
const END_POINT: [u8; 32] = [9; 32];

fn both_bindings() -> ChannelBindings {
    ChannelBindings::default()
        .with_tls_exporter(EXPORTER)
        .with_tls_server_end_point(END_POINT)
}

/// Starts an exchange with `bindings` and returns it with the first step.
fn start_bound(
    mech: Mechanism,
    client_first: &str,
    bindings: ChannelBindings,
) -> (SaslExchange, SaslStep) {
    SaslExchange::start_with_nonce_text_and_bindings(
        mech,
        Some(client_first.as_bytes()),
        "srv",
        bindings,
    )
}

/// Runs a bound exchange to the end; `cbind_input` is what the client puts
/// (base64) in `c=`.
fn bound_login(mech: Mechanism, header: &str, cbind_input: &[u8]) -> SaslStep {
    let bare = "n=user,r=cli";
    let (mut ex, step) = start_bound(mech, &format!("{header}{bare}"), both_bindings());
    assert_eq!(step, need("user"));
    let SaslStep::Challenge(server_first) = ex.provide_credentials(Some(&cheap("pw"))) else {
        panic!("no challenge");
    };
    let server_first = String::from_utf8(server_first).expect("utf8");
    let hash = mech.scram_hash().expect("scram");
    let cf = client_final_bound(hash, "pw", cbind_input, bare, &server_first);
    ex.respond(cf.as_bytes())
}

fn with_data(header: &str, data: &[u8]) -> Vec<u8> {
    let mut input = header.as_bytes().to_vec();
    input.extend_from_slice(data);
    input
}

#[test]
fn plus_succeeds_with_each_binding_type() {
    for mech in [Mechanism::ScramSha1Plus, Mechanism::ScramSha256Plus] {
        for (header, data) in [
            ("p=tls-exporter,,", &EXPORTER),
            ("p=tls-server-end-point,,", &END_POINT),
            ("p=tls-exporter,a=user,", &EXPORTER),
        ] {
            let step = bound_login(mech, header, &with_data(header, data));
            assert!(
                matches!(&step, SaslStep::Success { username, .. } if username == "user"),
                "{mech} {header}: {step:?}"
            );
        }
    }
}

#[test]
fn plus_with_wrong_binding_data_is_not_authorized() {
    for mech in [Mechanism::ScramSha1Plus, Mechanism::ScramSha256Plus] {
        let header = "p=tls-exporter,,";
        for input in [
            // The other type's data.
            with_data(header, &END_POINT),
            // The header alone, as without binding.
            header.as_bytes().to_vec(),
            // One byte short.
            with_data(header, &EXPORTER[1..]),
            // Another header.
            with_data("p=tls-server-end-point,,", &EXPORTER),
        ] {
            let step = bound_login(mech, header, &input);
            assert_failure(&step, SaslFailure::NotAuthorized);
        }
    }
}

#[track_caller]
fn assert_refused(step: &SaslStep, text: &'static str) {
    assert_eq!(
        step,
        &SaslStep::Failure {
            failure: SaslFailure::NotAuthorized,
            text: Some(text)
        }
    );
}

#[test]
fn plus_refuses_unsupported_types_and_missing_binding() {
    let exporter_only = ChannelBindings::default().with_tls_exporter(EXPORTER);
    for mech in [Mechanism::ScramSha1Plus, Mechanism::ScramSha256Plus] {
        for (first, bindings) in [
            ("p=tls-unique,,n=user,r=cli", both_bindings()),
            (
                "p=tls-server-end-point,,n=user,r=cli",
                exporter_only.clone(),
            ),
            ("p=tls-exporter,,n=user,r=cli", ChannelBindings::default()),
        ] {
            let (ex, step) = start_bound(mech, first, bindings);
            assert_refused(&step, "channel-binding-not-supported");
            assert!(ex.is_finished());
        }
        for first in ["n,,n=user,r=cli", "y,,n=user,r=cli"] {
            let (_, step) = start_bound(mech, first, both_bindings());
            assert_refused(&step, "A -PLUS mechanism requires channel binding");
        }
    }
}

#[test]
fn binding_with_a_mechanism_without_plus_is_not_authorized() {
    for mech in [Mechanism::ScramSha1, Mechanism::ScramSha256] {
        for bindings in [both_bindings(), ChannelBindings::default()] {
            for first in [
                "p=tls-exporter,,n=user,r=cli",
                "p=tls-unique,a=user,n=user,r=cli",
            ] {
                let (_, step) = start_bound(mech, first, bindings.clone());
                assert_refused(&step, "Channel binding requires a -PLUS mechanism");
            }
        }
    }
}

#[test]
fn y_is_a_downgrade_only_when_binding_is_offered() {
    for mech in [Mechanism::ScramSha1, Mechanism::ScramSha256] {
        let (_, step) = start_bound(mech, "y,,n=user,r=cli", both_bindings());
        assert_refused(&step, "server-does-support-channel-binding");
        let (_, step) = start_bound(mech, "y,,n=user,r=cli", ChannelBindings::default());
        assert_eq!(step, need("user"));
        // `n` is fine either way: the client cannot bind.
        let (_, step) = start_bound(mech, "n,,n=user,r=cli", both_bindings());
        assert_eq!(step, need("user"));
    }
}

#[test]
fn channel_bindings_values() {
    assert!(ChannelBindings::default().is_empty());
    assert!(ChannelBindings::default().with_tls_exporter([]).is_empty());
    let b = ChannelBindings::default().with_tls_server_end_point(END_POINT);
    assert_eq!(
        b.types().collect::<Vec<_>>(),
        [ChannelBindingType::TlsServerEndPoint]
    );
    assert_eq!(b.get(ChannelBindingType::TlsExporter), None);
    assert_eq!(
        b.get(ChannelBindingType::TlsServerEndPoint),
        Some(&END_POINT[..])
    );
    // Debug names the types, never the data.
    assert_eq!(
        format!("{:?}", both_bindings()),
        "[TlsExporter, TlsServerEndPoint]"
    );
    for t in ChannelBindingType::ALL {
        assert_eq!(ChannelBindingType::from_name(t.name()), Some(t));
    }
    assert_eq!(ChannelBindingType::from_name("tls-unique"), None);
}

// ---------------------------------------------------------------- fuzzing

fn any_mechanism() -> impl Strategy<Value = Mechanism> {
    prop_oneof![
        Just(Mechanism::Plain),
        Just(Mechanism::ScramSha1),
        Just(Mechanism::ScramSha256),
        Just(Mechanism::ScramSha1Plus),
        Just(Mechanism::ScramSha256Plus),
    ]
}

/// Bytes biased towards SCRAM/PLAIN syntax so the parsers get past the first checks.
fn saslish_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        "[nyp=a,r0c\\x00\u{AD}\u{e9}2CD3biws]{0,48}".prop_map(String::into_bytes),
        (
            "[ny]",
            "(a=[a-z=23CD]{0,4})?",
            "[a-z=23CD]{0,6}",
            "[!-~]{0,8}",
            "(,[a-z]=[a-z]{0,3}){0,2}"
        )
            .prop_map(|(f, a, n, r, e)| format!("{f},{a},n={n},r={r}{e}").into_bytes()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_input_never_panics(
        mech in any_mechanism(),
        initial in proptest::option::of(saslish_bytes()),
        nonce in proptest::collection::vec(any::<u8>(), 0..24),
        responses in proptest::collection::vec(saslish_bytes(), 0..4),
        user_exists in any::<bool>(),
        disabled in any::<bool>(),
        provide_early in any::<bool>(),
    ) {
        let mut creds = Credentials::from_password("pw", b"salt", 1);
        creds.disabled = disabled;
        let (mut ex, step) = SaslExchange::start(mech, initial.as_deref(), &nonce);
        prop_assert_eq!(
            ex.is_finished(),
            matches!(step, SaslStep::Failure { .. } | SaslStep::Success { .. })
        );
        if provide_early || matches!(step, SaslStep::NeedCredentials { .. }) {
            let _ = ex.provide_credentials(user_exists.then_some(&creds));
        }
        if let (false, SaslStep::VerifyPassword { password, .. }) = (provide_early, &step) {
            let verdict = PasswordCheck::from_credentials(user_exists.then_some(&creds), password);
            let step = ex.provide_password_check(verdict);
            let valid = verdict == PasswordCheck::Valid;
            prop_assert_eq!(matches!(step, SaslStep::Success { .. }), valid);
        }
        for r in &responses {
            let step = ex.respond(r);
            // A random client-final can never prove knowledge of the password.
            let is_success = matches!(step, SaslStep::Success { .. });
            prop_assert!(!is_success);
            prop_assert!(ex.is_finished());
        }
    }

    #[test]
    fn arbitrary_client_final_never_panics(
        mech in prop_oneof![Just(Mechanism::ScramSha1), Just(Mechanism::ScramSha256)],
        tail in saslish_bytes(),
        raw in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        for msg in [raw.clone(), [b"c=biws,r=abc".as_slice(), &tail].concat()] {
            let (mut ex, _) = SaslExchange::start(mech, Some(b"n,,n=user,r=abc"), b"");
            let step = ex.provide_credentials(Some(&Credentials::from_password("pw", b"s", 1)));
            prop_assert!(matches!(step, SaslStep::Challenge(_)));
            let step = ex.respond(&msg);
            let is_failure = matches!(step, SaslStep::Failure { .. });
            prop_assert!(is_failure);
            prop_assert!(ex.is_finished());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// A -PLUS login succeeds exactly when the echoed binding data is the
    /// connection's, whatever else the client sends in its place.
    #[test]
    fn plus_succeeds_only_with_the_exact_binding_data(
        data in prop_oneof![
            Just(EXPORTER.to_vec()),
            Just(END_POINT.to_vec()),
            proptest::collection::vec(any::<u8>(), 0..48),
            // The right data with one byte changed.
            (0usize..32, 1u8..).prop_map(|(i, x)| {
                let mut v = EXPORTER.to_vec();
                if let Some(b) = v.get_mut(i) {
                    *b ^= x;
                }
                v
            }),
        ],
        end_point in any::<bool>(),
    ) {
        let (header, right) = if end_point {
            ("p=tls-server-end-point,,", &END_POINT)
        } else {
            ("p=tls-exporter,,", &EXPORTER)
        };
        let step = bound_login(Mechanism::ScramSha256Plus, header, &with_data(header, &data));
        let succeeded = matches!(step, SaslStep::Success { .. });
        prop_assert_eq!(succeeded, data == right[..]);
        if !succeeded {
            prop_assert!(failure(SaslFailure::NotAuthorized)(&step), "{:?}", step);
        }
    }
}
