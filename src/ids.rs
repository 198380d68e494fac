//! Small copyable handles.

use std::fmt;
#[cfg(test)]
use std::hash::Hash;
use std::hash::{BuildHasher, Hasher};

/// Handle of one client session inside a [`SessionManager`](crate::SessionManager).
///
/// Handles are never reused within one manager, so a stale handle simply
/// finds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub(crate) u64);

impl SessionId {
    /// The raw number, e.g. for logs or as a map key in the caller.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c2s{}", self.0)
    }
}

/// Handle of one storage or credential [`Request`](crate::Request), echoed
/// back in [`SessionManager::complete`](crate::SessionManager::complete).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub(crate) u64);

impl RequestId {
    /// The raw number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "req{}", self.0)
    }
}

/// Builds [`IdHasher`]s for maps keyed by the handles the manager numbers
/// itself ([`SessionId`], [`RequestId`]). Their values are sequential and
/// never chosen by a client, so one multiplication spreads them well and
/// flooding resistance (SipHash, the std default) buys nothing; maps keyed
/// by anything a client sends (JIDs) keep the std hasher.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct IdHash;

impl BuildHasher for IdHash {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

/// Fibonacci hashing of a `u64` handle (see [`IdHash`]).
#[derive(Debug, Default)]
pub(crate) struct IdHasher(u64);

/// 2^64 divided by the golden ratio, odd: multiplying by it is a bijection
/// that moves every input bit into the high bits.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(GOLDEN);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(GOLDEN);
    }
}

/// A map keyed by manager-numbered handles.
pub(crate) type IdMap<K, V> = std::collections::HashMap<K, V, IdHash>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_handles_spread_over_buckets() {
        // hashbrown indexes buckets by the low bits and tags by the top 7.
        let mut low = std::collections::HashSet::new();
        let mut top = std::collections::HashSet::new();
        for n in 0..1024u64 {
            let v = IdHash.hash_one(SessionId(n));
            low.insert(v & 1023);
            top.insert(v >> 57);
        }
        assert_eq!(low.len(), 1024);
        assert_eq!(top.len(), 128);
    }
}
