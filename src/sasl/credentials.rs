//! Stored credentials: SCRAM salted keys (RFC 5802 §3) and the primitives behind them.

use core::fmt;
use std::sync::{Arc, OnceLock};

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use super::password::{Password, PasswordCheck};

/// Hash function underlying a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScramHash {
    /// SHA-1 (`SCRAM-SHA-1`, RFC 5802).
    Sha1,
    /// SHA-256 (`SCRAM-SHA-256`, RFC 7677).
    Sha256,
}

impl ScramHash {
    /// Output length of the hash in bytes.
    #[must_use]
    pub fn output_len(self) -> usize {
        match self {
            ScramHash::Sha1 => 20,
            ScramHash::Sha256 => 32,
        }
    }

    /// `H(data)`.
    pub(crate) fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => Sha1::digest(data).to_vec(),
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

    /// `HMAC(key, data)`.
    pub(crate) fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail; the
        // fallback is unreachable but keeps this function panic-free.
        match self {
            ScramHash::Sha1 => match Hmac::<Sha1>::new_from_slice(key) {
                Ok(mut mac) => {
                    mac.update(data);
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
            ScramHash::Sha256 => match Hmac::<Sha256>::new_from_slice(key) {
                Ok(mut mac) => {
                    mac.update(data);
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
        }
    }

    /// `H(data)`, held inline (no allocation).
    pub(crate) fn digest_inline(self, data: &[u8]) -> HashBytes {
        match self {
            ScramHash::Sha1 => HashBytes::new(&Sha1::digest(data)),
            ScramHash::Sha256 => HashBytes::new(&Sha256::digest(data)),
        }
    }

    /// `Hi(password, salt, iterations)`, i.e. PBKDF2 with HMAC of this hash.
    pub(crate) fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.output_len()];
        match self {
            ScramHash::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, &mut out),
            ScramHash::Sha256 => {
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
            }
        }
        out
    }
}

/// A hash or HMAC output of up to [`HashBytes::MAX`] bytes, held inline.
#[derive(Clone, Copy)]
pub(crate) struct HashBytes {
    bytes: [u8; HashBytes::MAX],
    len: usize,
}

impl HashBytes {
    /// The longest output of a supported hash (SHA-256).
    pub(crate) const MAX: usize = 32;

    const EMPTY: HashBytes = HashBytes {
        bytes: [0; HashBytes::MAX],
        len: 0,
    };

    /// The first [`HashBytes::MAX`] bytes of `bytes` (all of them for a
    /// supported hash).
    pub(crate) fn new(bytes: &[u8]) -> Self {
        let mut out = Self::EMPTY;
        let len = bytes.len().min(Self::MAX);
        out.bytes[..len].copy_from_slice(&bytes[..len]);
        out.len = len;
        out
    }

    /// The output.
    pub(crate) fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

/// Applies SASLprep (RFC 4013) to a password, falling back to the raw text if it fails.
fn prep_password(password: &str) -> std::borrow::Cow<'_, str> {
    stringprep::saslprep(password).unwrap_or(std::borrow::Cow::Borrowed(password))
}

/// Constant-time equality of two byte strings (lengths are not secret).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// HMAC states already keyed with `StoredKey` and `ServerKey`: the key
/// blocks (RFC 2104's inner and outer pads) are hashed once, so a login
/// runs only the compressions of its own `AuthMessage` and the outer hash.
pub(crate) enum KeyedMacs {
    /// SCRAM-SHA-1.
    Sha1 {
        stored: Hmac<Sha1>,
        server: Hmac<Sha1>,
    },
    /// SCRAM-SHA-256.
    Sha256 {
        stored: Hmac<Sha256>,
        server: Hmac<Sha256>,
    },
}

impl KeyedMacs {
    /// Keys both states (`None` is unreachable: HMAC takes keys of any
    /// length).
    fn new(hash: ScramHash, stored_key: &[u8], server_key: &[u8]) -> Option<Self> {
        Some(match hash {
            ScramHash::Sha1 => KeyedMacs::Sha1 {
                stored: KeyInit::new_from_slice(stored_key).ok()?,
                server: KeyInit::new_from_slice(server_key).ok()?,
            },
            ScramHash::Sha256 => KeyedMacs::Sha256 {
                stored: KeyInit::new_from_slice(stored_key).ok()?,
                server: KeyInit::new_from_slice(server_key).ok()?,
            },
        })
    }

    fn hash(&self) -> ScramHash {
        match self {
            KeyedMacs::Sha1 { .. } => ScramHash::Sha1,
            KeyedMacs::Sha256 { .. } => ScramHash::Sha256,
        }
    }

    /// `HMAC(StoredKey, parts[0] || parts[1] || ...)` (the `ClientSignature`
    /// when the parts make up the `AuthMessage`).
    pub(crate) fn client_signature(&self, parts: &[&[u8]]) -> HashBytes {
        match self {
            KeyedMacs::Sha1 { stored, .. } => mac_parts(stored.clone(), parts),
            KeyedMacs::Sha256 { stored, .. } => mac_parts(stored.clone(), parts),
        }
    }

    /// `HMAC(ServerKey, parts[0] || parts[1] || ...)` (the `ServerSignature`).
    pub(crate) fn server_signature(&self, parts: &[&[u8]]) -> HashBytes {
        match self {
            KeyedMacs::Sha1 { server, .. } => mac_parts(server.clone(), parts),
            KeyedMacs::Sha256 { server, .. } => mac_parts(server.clone(), parts),
        }
    }
}

/// Feeds `parts` to a keyed `mac` and returns the tag inline.
fn mac_parts<M: Mac>(mut mac: M, parts: &[&[u8]]) -> HashBytes {
    for part in parts {
        mac.update(part);
    }
    HashBytes::new(&mac.finalize().into_bytes())
}

/// [`KeyedMacs`] for the keys they were made from (the same allocations).
struct MacCache {
    stored_key: Arc<[u8]>,
    server_key: Arc<[u8]>,
    macs: Option<Arc<KeyedMacs>>,
}

/// SCRAM salted keys for one hash (RFC 5802 §3): what a store keeps instead of a password.
///
/// The byte strings are shared (`Arc<[u8]>`), so a store hands out a clone of its
/// [`Credentials`] for every login without copying them. The HMAC states keyed
/// with `stored_key` and `server_key` are made at the first login and shared by
/// every clone, so later logins skip the HMAC key schedule. They belong to the
/// key allocations they were made from: a field replaced after that is used
/// as it is, without the shared states.
///
/// Build keys with [`ScramKeys::derive`] (from a password) or
/// [`ScramKeys::new`] (as stored). `Debug` output redacts the keys; equality
/// compares the four fields.
#[derive(Clone)]
pub struct ScramKeys {
    /// Salt used to derive the salted password.
    pub salt: Arc<[u8]>,
    /// PBKDF2 iteration count.
    pub iterations: u32,
    /// `StoredKey = H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: Arc<[u8]>,
    /// `ServerKey = HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Arc<[u8]>,
    /// Keyed HMAC states, made on first use and shared by clones.
    macs: Arc<OnceLock<MacCache>>,
}

impl PartialEq for ScramKeys {
    fn eq(&self, other: &Self) -> bool {
        self.salt == other.salt
            && self.iterations == other.iterations
            && self.stored_key == other.stored_key
            && self.server_key == other.server_key
    }
}

impl Eq for ScramKeys {}

impl fmt::Debug for ScramKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramKeys")
            .field("salt_len", &self.salt.len())
            .field("iterations", &self.iterations)
            .field("stored_key", &"<redacted>")
            .field("server_key", &"<redacted>")
            .finish()
    }
}

impl ScramKeys {
    /// Keys as a store kept them: the salt, the iteration count, `StoredKey`
    /// and `ServerKey` (e.g. read back from a database).
    #[must_use]
    pub fn new(
        salt: impl Into<Arc<[u8]>>,
        iterations: u32,
        stored_key: impl Into<Arc<[u8]>>,
        server_key: impl Into<Arc<[u8]>>,
    ) -> Self {
        ScramKeys {
            salt: salt.into(),
            iterations,
            stored_key: stored_key.into(),
            server_key: server_key.into(),
            macs: Arc::default(),
        }
    }

    /// HMAC states keyed with `stored_key` and `server_key` for `hash`: the
    /// shared ones when they were made from these very keys, else new ones.
    pub(crate) fn keyed_macs(&self, hash: ScramHash) -> Option<Arc<KeyedMacs>> {
        let cache = self.macs.get_or_init(|| MacCache {
            stored_key: Arc::clone(&self.stored_key),
            server_key: Arc::clone(&self.server_key),
            macs: KeyedMacs::new(hash, &self.stored_key, &self.server_key).map(Arc::new),
        });
        match &cache.macs {
            Some(macs)
                if macs.hash() == hash
                    && Arc::ptr_eq(&cache.stored_key, &self.stored_key)
                    && Arc::ptr_eq(&cache.server_key, &self.server_key) =>
            {
                Some(Arc::clone(macs))
            }
            _ => KeyedMacs::new(hash, &self.stored_key, &self.server_key).map(Arc::new),
        }
    }

    /// Derives the keys for `password` (SASLprepped; the raw text is used if SASLprep
    /// fails). An iteration count of 0 is treated as 1.
    ///
    /// The intermediate secrets (a SASLprepped copy of the password, the salted
    /// password and the client key) are wiped before returning.
    #[must_use]
    pub fn derive(hash: ScramHash, password: &str, salt: &[u8], iterations: u32) -> Self {
        let iterations = iterations.max(1);
        let mut password = prep_password(password);
        let mut salted = hash.salted_password(password.as_bytes(), salt, iterations);
        if let std::borrow::Cow::Owned(prepped) = &mut password {
            prepped.zeroize();
        }
        let mut client_key = hash.hmac(&salted, b"Client Key");
        let stored_key = hash.digest(&client_key);
        let server_key = hash.hmac(&salted, b"Server Key");
        salted.zeroize();
        client_key.zeroize();
        ScramKeys::new(salt, iterations, stored_key, server_key)
    }

    /// Checks `password` against these keys in constant time.
    #[must_use]
    pub fn verify_password(&self, hash: ScramHash, password: &str) -> bool {
        let candidate = ScramKeys::derive(hash, password, &self.salt, self.iterations);
        let stored = ct_eq(&candidate.stored_key, &self.stored_key);
        let server = ct_eq(&candidate.server_key, &self.server_key);
        stored & server
    }
}

/// Everything stored for an account. Never plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Keys for `SCRAM-SHA-1`, if stored.
    pub sha1: Option<ScramKeys>,
    /// Keys for `SCRAM-SHA-256`, if stored.
    pub sha256: Option<ScramKeys>,
    /// The account exists but may not log in.
    pub disabled: bool,
}

impl Credentials {
    /// Derives keys for both hashes from a password (an enabled account).
    #[must_use]
    pub fn from_password(password: &str, salt: &[u8], iterations: u32) -> Self {
        Credentials {
            sha1: Some(ScramKeys::derive(
                ScramHash::Sha1,
                password,
                salt,
                iterations,
            )),
            sha256: Some(ScramKeys::derive(
                ScramHash::Sha256,
                password,
                salt,
                iterations,
            )),
            disabled: false,
        }
    }

    /// Keys stored for `hash`, if any.
    #[must_use]
    pub fn keys(&self, hash: ScramHash) -> Option<&ScramKeys> {
        match hash {
            ScramHash::Sha1 => self.sha1.as_ref(),
            ScramHash::Sha256 => self.sha256.as_ref(),
        }
    }

    /// The verdict on a PLAIN password for this account: what an embedder answers
    /// to [`Request::VerifyPassword`](crate::Request::VerifyPassword).
    ///
    /// A disabled account is [`PasswordCheck::AccountDisabled`] without any key
    /// derivation; otherwise the password is checked as by
    /// [`Credentials::verify_password`] (PBKDF2 with the stored iteration count,
    /// compared in constant time), so run this off the core loop.
    #[must_use]
    pub fn check_plain(&self, password: &Password) -> PasswordCheck {
        if self.disabled {
            PasswordCheck::AccountDisabled
        } else if self.verify_password(password.expose()) {
            PasswordCheck::Valid
        } else {
            PasswordCheck::WrongPassword
        }
    }

    /// Checks a plaintext password (as sent with PLAIN) against the SHA-256 keys if
    /// present, else the SHA-1 keys, comparing the derived keys in constant time.
    /// Ignores [`Credentials::disabled`]; see [`Credentials::check_plain`].
    #[must_use]
    pub fn verify_password(&self, password: &str) -> bool {
        if let Some(keys) = &self.sha256 {
            keys.verify_password(ScramHash::Sha256, password)
        } else if let Some(keys) = &self.sha1 {
            keys.verify_password(ScramHash::Sha1, password)
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::prelude::*;

    #[test]
    fn rfc5802_keys() {
        let salt = BASE64_STANDARD
            .decode("QSXCR+Q6sek8bf92")
            .unwrap_or_default();
        let keys = ScramKeys::derive(ScramHash::Sha1, "pencil", &salt, 4096);
        assert_eq!(keys.iterations, 4096);
        assert_eq!(keys.stored_key.len(), 20);
        assert_eq!(keys.server_key.len(), 20);
        assert!(keys.verify_password(ScramHash::Sha1, "pencil"));
        assert!(!keys.verify_password(ScramHash::Sha1, "pencil2"));
        assert!(!keys.verify_password(ScramHash::Sha256, "pencil"));
    }

    /// The shared keyed HMAC states give the plain HMACs, and never
    /// outlive the keys they were made from.
    #[test]
    fn keyed_macs_follow_the_keys() {
        let parts: [&[u8]; 3] = [b"client-first-bare", b",", b"server-first"];
        let message = parts.concat();
        for hash in [ScramHash::Sha1, ScramHash::Sha256] {
            let keys = ScramKeys::derive(hash, "pencil", b"salt", 2);
            let check = |keys: &ScramKeys| {
                let macs = keys.keyed_macs(hash).expect("any key length");
                assert_eq!(
                    macs.client_signature(&parts).as_slice(),
                    hash.hmac(&keys.stored_key, &message)
                );
                assert_eq!(
                    macs.server_signature(&parts).as_slice(),
                    hash.hmac(&keys.server_key, &message)
                );
            };
            check(&keys);
            // Made once, then shared by clones.
            let clone = keys.clone();
            check(&clone);
            // A replaced key is used as it is, not the shared states.
            let mut replaced = keys.clone();
            replaced.stored_key = hash.hmac(b"other", b"key").into();
            replaced.server_key = hash.hmac(b"another", b"key").into();
            check(&replaced);
            check(&keys);
            assert_ne!(replaced, keys);
            // States keyed for one hash are not used for the other.
            let other = match hash {
                ScramHash::Sha1 => ScramHash::Sha256,
                ScramHash::Sha256 => ScramHash::Sha1,
            };
            let macs = keys.keyed_macs(other).expect("any key length");
            assert_eq!(
                macs.client_signature(&parts).as_slice(),
                other.hmac(&keys.stored_key, &message)
            );
            // Equality ignores the shared states.
            let fresh = ScramKeys::new(
                keys.salt.to_vec(),
                keys.iterations,
                keys.stored_key.to_vec(),
                keys.server_key.to_vec(),
            );
            assert_eq!(fresh, keys);
        }
    }

    #[test]
    fn zero_iterations_is_one() {
        let a = ScramKeys::derive(ScramHash::Sha256, "pw", b"salt", 0);
        let b = ScramKeys::derive(ScramHash::Sha256, "pw", b"salt", 1);
        assert_eq!(a, b);
        assert_eq!(a.iterations, 1);
    }

    #[test]
    fn saslprep_applied_to_password() {
        // U+00AD SOFT HYPHEN is mapped to nothing by SASLprep.
        let keys = ScramKeys::derive(ScramHash::Sha1, "pen\u{AD}cil", b"s", 2);
        assert!(keys.verify_password(ScramHash::Sha1, "pencil"));
        // A prohibited character (U+0007) makes SASLprep fail: raw text is used.
        let raw = ScramKeys::derive(ScramHash::Sha1, "bell\u{7}", b"s", 2);
        assert!(raw.verify_password(ScramHash::Sha1, "bell\u{7}"));
        assert!(!raw.verify_password(ScramHash::Sha1, "bell"));
    }

    #[test]
    fn credentials_verify_prefers_sha256() {
        let mut creds = Credentials::from_password("secret", b"salty", 16);
        assert!(creds.verify_password("secret"));
        assert!(!creds.verify_password("Secret"));
        // Only SHA-1 keys.
        creds.sha256 = None;
        assert!(creds.verify_password("secret"));
        // SHA-256 keys for a different password take precedence.
        creds.sha256 = Some(ScramKeys::derive(ScramHash::Sha256, "other", b"x", 1));
        assert!(!creds.verify_password("secret"));
        assert!(creds.verify_password("other"));
        // No keys at all.
        let empty = Credentials {
            sha1: None,
            sha256: None,
            disabled: false,
        };
        assert!(!empty.verify_password(""));
    }

    #[test]
    fn debug_redacts_keys() {
        let creds = Credentials::from_password("secret", b"salty", 1);
        let text = format!("{creds:?}");
        assert!(text.contains("<redacted>"));
        let keys = creds
            .sha1
            .unwrap_or_else(|| ScramKeys::derive(ScramHash::Sha1, "", b"", 1));
        assert!(!text.contains(&format!("{:?}", keys.stored_key)));
    }
}
