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
/// Bytes are read from the operating system in blocks of
/// [`OsRandom::BLOCK`] bytes into a per-thread buffer and handed out once
/// each: every byte returned is operating-system CSPRNG output that was
/// never returned before, and each is wiped from the buffer as it is handed
/// out. A request larger than a block goes to the operating system
/// directly. This saves a system call per nonce, stream id and resource.
///
/// If the operating system cannot provide randomness, [`OsRandom::fill`]
/// fails: there is no fallback.
///
/// The buffer is per thread and per process image: a process that `fork`s
/// without `exec` and draws randomness in both parent and child must not
/// rely on `OsRandom` output already buffered before the fork (the child
/// inherits a copy). Call [`OsRandom::discard_buffered`] in the child.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

/// Unused operating-system bytes for this thread: `bytes[next..]` has not
/// been handed out; `bytes[..next]` is zeros.
struct Buffered {
    bytes: [u8; OsRandom::BLOCK],
    next: usize,
}

std::thread_local! {
    static BUFFERED: core::cell::RefCell<Buffered> = const {
        core::cell::RefCell::new(Buffered {
            bytes: [0; OsRandom::BLOCK],
            next: OsRandom::BLOCK,
        })
    };
}

impl OsRandom {
    /// How many bytes one operating-system call reads ahead.
    pub const BLOCK: usize = 4096;

    /// Wipes this thread's buffered bytes, so that the next fill reads the
    /// operating system again (e.g. in a child process after `fork`).
    pub fn discard_buffered() {
        BUFFERED.with(|cell| {
            if let Ok(mut buffered) = cell.try_borrow_mut() {
                buffered.bytes = [0; Self::BLOCK];
                buffered.next = Self::BLOCK;
            }
        });
    }
}

fn os_fill(buf: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(buf).map_err(|e| RandomError::new(e.to_string()))
}

impl Buffered {
    /// Copies the next `buf.len()` (at most [`OsRandom::BLOCK`]) unused
    /// bytes to `buf`, refilling from the operating system first if too few
    /// are left. On failure nothing is handed out and the buffer is empty.
    fn take(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        if OsRandom::BLOCK - self.next < buf.len() {
            // Whatever is left is dropped (wiped) rather than combined with
            // the next block: simpler, and costs at most a few bytes.
            self.bytes = [0; OsRandom::BLOCK];
            self.next = OsRandom::BLOCK;
            if let Err(e) = os_fill(&mut self.bytes) {
                self.bytes = [0; OsRandom::BLOCK];
                return Err(e);
            }
            self.next = 0;
        }
        let end = self.next + buf.len();
        let Some(fresh) = self.bytes.get_mut(self.next..end) else {
            return Err(RandomError::new("random buffer out of range"));
        };
        buf.copy_from_slice(fresh);
        fresh.fill(0);
        self.next = end;
        Ok(())
    }
}

impl RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        if buf.len() > Self::BLOCK {
            return os_fill(buf);
        }
        BUFFERED.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buffered) => buffered.take(buf),
            // Only reachable through re-entrance from a thread-local
            // destructor; go to the operating system.
            Err(_) => os_fill(buf),
        })
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
    let mut id = String::with_capacity(len);
    let mut bytes = [0u8; 32];
    let mut left = len;
    while left > 0 {
        let chunk = bytes.get_mut(..left.min(32)).unwrap_or_default();
        rng.fill(chunk)?;
        id.extend(
            chunk
                .iter()
                .map(|b| char::from(ALPHABET[usize::from(b & 63)])),
        );
        left -= chunk.len();
    }
    Ok(id)
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
    fn os_random_hands_out_each_byte_once_and_wipes_it() {
        OsRandom::discard_buffered();
        let mut seen = Vec::new();
        // Several blocks' worth, in odd sizes that do not divide the block.
        for _ in 0..100 {
            let mut buf = [0u8; 24];
            OsRandom
                .fill(&mut buf)
                .expect("the OS generator works here");
            seen.push(buf);
            BUFFERED.with(|cell| {
                let b = cell.borrow();
                assert!(b.bytes[..b.next].iter().all(|&x| x == 0));
            });
        }
        let mut unique = seen.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), seen.len());
        // Larger than a block: straight from the OS.
        let mut big = [0u8; OsRandom::BLOCK + 1];
        OsRandom
            .fill(&mut big)
            .expect("the OS generator works here");
        assert!(big.iter().any(|&b| b != 0));
        OsRandom::discard_buffered();
        BUFFERED.with(|cell| {
            let b = cell.borrow();
            assert_eq!(b.next, OsRandom::BLOCK);
            assert!(b.bytes.iter().all(|&x| x == 0));
        });
    }

    #[test]
    fn long_ids_use_every_byte() {
        let id = random_id(&mut SeededRandom::new(3), 70).expect("seeded");
        assert_eq!(id.len(), 70);
        let short = random_id(&mut SeededRandom::new(3), 32).expect("seeded");
        assert!(id.starts_with(&short));
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
