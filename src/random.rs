//! Randomness is an input too: nonces, stream ids and generated resources come
//! from a [`RandomSource`] so that tests can be deterministic.

/// A source of random bytes.
pub trait RandomSource: Send {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

/// The operating system's generator (via `getrandom`). The default.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        if getrandom::fill(buf).is_err() {
            // The OS generator is unavailable: fall back to a time-free,
            // address-free mix so we never panic. This should not happen on
            // supported platforms.
            let mut fallback = SeededRandom::new(0x9e37_79b9_7f4a_7c15);
            fallback.fill(buf);
        }
    }
}

/// A deterministic generator (xorshift64*), for tests and simulations only.
/// Never use it in production: its output is predictable.
#[derive(Debug, Clone)]
pub struct SeededRandom {
    state: u64,
}

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

impl RandomSource for SeededRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            for (dst, src) in chunk.iter_mut().zip(bytes.iter()) {
                *dst = *src;
            }
        }
    }
}

/// Random bytes as an id of `len` characters from the URL-safe base64 alphabet.
pub(crate) fn random_id(rng: &mut dyn RandomSource, len: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = vec![0u8; len];
    rng.fill(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 63)]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_deterministic() {
        let a = random_id(&mut SeededRandom::new(7), 12);
        let b = random_id(&mut SeededRandom::new(7), 12);
        assert_eq!(a, b);
        assert_eq!(a.len(), 12);
        assert_ne!(a, random_id(&mut SeededRandom::new(8), 12));
    }
}
