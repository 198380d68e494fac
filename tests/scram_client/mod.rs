//! A SCRAM client computed here with hmac/sha1/sha2/pbkdf2, independently
//! of the library, for tests that drive SCRAM and SCRAM-PLUS logins.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hmac1(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Client side of SCRAM (SHA-1 or SHA-256): the client-final message with
/// `c=` the base64 of `cbind` (gs2 header, then any channel-binding data),
/// and the server-final the server must answer with.
pub fn client_final(
    sha1: bool,
    password: &str,
    first_bare: &str,
    server_first: &str,
    cbind: &[u8],
) -> (String, String) {
    let mut parts = server_first.split(',');
    let nonce = parts.next().and_then(|p| p.strip_prefix("r=")).expect("r=");
    let salt = parts
        .next()
        .and_then(|p| p.strip_prefix("s="))
        .map(|s| BASE64.decode(s).expect("salt"))
        .expect("s=");
    let iterations: u32 = parts
        .next()
        .and_then(|p| p.strip_prefix("i="))
        .and_then(|i| i.parse().ok())
        .expect("i=");
    let without_proof = format!("c={},r={nonce}", BASE64.encode(cbind));
    let auth_message = format!("{first_bare},{server_first},{without_proof}");
    let (client_key, signature, server_signature) = if sha1 {
        let mut salted = [0u8; 20];
        pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password.as_bytes(), &salt, iterations, &mut salted);
        let client_key = hmac1(&salted, b"Client Key");
        let stored_key = sha1::Sha1::digest(&client_key);
        let signature = hmac1(&stored_key, auth_message.as_bytes());
        let server_key = hmac1(&salted, b"Server Key");
        (
            client_key,
            signature,
            hmac1(&server_key, auth_message.as_bytes()),
        )
    } else {
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iterations, &mut salted);
        let client_key = hmac256(&salted, b"Client Key");
        let stored_key = Sha256::digest(&client_key);
        let signature = hmac256(&stored_key, auth_message.as_bytes());
        let server_key = hmac256(&salted, b"Server Key");
        (
            client_key,
            signature,
            hmac256(&server_key, auth_message.as_bytes()),
        )
    };
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(k, s)| k ^ s)
        .collect();
    (
        format!("{without_proof},p={}", BASE64.encode(proof)),
        format!("v={}", BASE64.encode(server_signature)),
    )
}
