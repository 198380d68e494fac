//! Randomness is an input too: nonces, stream ids, generated resources and
//! password salts come from a [`RandomSource`], so that tests can be
//! deterministic and production fails closed.
//!
//! A source that cannot produce random bytes returns [`RandomError`]; the
//! core never substitutes predictable bytes. A login that needs randomness
//! (stream id, SCRAM nonce) then fails with the stream error
//! `internal-server-error`.

/// A source of random bytes.
pub trait RandomSource: Send {
    /// Fills all of `buf` with random bytes, or fails without a usable
    /// result (the contents of `buf` must then not be used).
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError>;
}

/// A [`RandomSource`] could not produce random bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("random generator failed: {reason}")]
pub struct RandomError {
    reason: String,
}

impl RandomError {
    /// An error with a description of what failed.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }

    /// What failed.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// The operating system's generator (via `getrandom`). The default.
///
/// If the operating system cannot provide randomness, [`OsRandom::fill`]
/// fails: there is no fallback.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        getrandom::fill(buf).map_err(|e| RandomError::new(e.to_string()))
    }
}

/// A deterministic generator (xorshift64*), for tests and simulations only
/// (feature `testkit`). Never use it in production: its output is
/// predictable.
#[cfg(any(test, feature = "testkit"))]
#[derive(Debug, Clone)]
pub struct SeededRandom {
    state: u64,
}

#[cfg(any(test, feature = "testkit"))]
impl SeededRandom {
    /// A generator starting from `seed` (0 is replaced by a fixed constant).
    pub fn new(seed: u64) -> Self {
        Self {
            state: if seed == 0 {
                0x2545_f491_4f6c_dd1d
            } else {
                seed
            },
        }
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(any(test, feature = "testkit"))]
impl RandomSource for SeededRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            for (dst, src) in chunk.iter_mut().zip(bytes.iter()) {
                *dst = *src;
            }
        }
        Ok(())
    }
}

/// Random bytes as an id of `len` characters from the URL-safe base64 alphabet.
pub(crate) fn random_id(rng: &mut dyn RandomSource, len: usize) -> Result<String, RandomError> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = vec![0u8; len];
    rng.fill(&mut bytes)?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 63)]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_deterministic() {
        let a = random_id(&mut SeededRandom::new(7), 12).expect("seeded");
        let b = random_id(&mut SeededRandom::new(7), 12).expect("seeded");
        assert_eq!(a, b);
        assert_eq!(a.len(), 12);
        assert_ne!(a, random_id(&mut SeededRandom::new(8), 12).expect("seeded"));
    }

    struct Broken;
    impl RandomSource for Broken {
        fn fill(&mut self, _buf: &mut [u8]) -> Result<(), RandomError> {
            Err(RandomError::new("broken"))
        }
    }

    #[test]
    fn failure_gives_no_id() {
        assert_eq!(random_id(&mut Broken, 12), Err(RandomError::new("broken")));
    }

    #[test]
    fn os_random_fills() {
        let mut buf = [0u8; 32];
        OsRandom
            .fill(&mut buf)
            .expect("the OS generator works here");
        assert_ne!(buf, [0u8; 32]);
    }
}
