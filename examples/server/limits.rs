//! Resource limits that protect the server (and the other clients) from a
//! single client or address, in the spirit of Prosody's `mod_limits` and
//! c2s settings. Each is a constant or a command-line flag with a
//! documented default; `0` turns a flag's limit off.
//!
//! * [`MAX_QUEUED_BYTES`]: output allowed to wait for a client that does not
//!   read (8 MiB). Past it the client is disconnected, so one slow reader
//!   cannot exhaust memory.
//! * `--max-connections` (default 10 000) and `--max-connections-per-ip`
//!   (default 100): connections beyond them are refused at accept time. A
//!   connection counts until its socket is closed, not until its session
//!   ends: a client that never reads keeps its slot while the server still
//!   tries to write to it (at most [`WRITE_TIMEOUT`]); see [`Slot`].
//! * `--logins-per-ip` (default 30) per `--login-window` (default 60 s):
//!   new connections from one address beyond it are refused until the
//!   window moves on. Every login attempt needs a connection and a
//!   connection gets at most three failed SASL attempts (the core's
//!   `max_auth_failures`), so this bounds login attempts per address too.
//! * `--read-rate` (default 65 536 bytes/s) with `--read-burst` (default
//!   262 144 bytes): a token bucket per connection. A client above it is
//!   slowed down (its socket is not read until the bucket refills, so TCP
//!   pushes back), never disconnected for it. See [`Bucket`].
//! * `--auth-timeout` (default 60 s) and `--pre-auth-bytes` (default 65 536):
//!   a stream must authenticate within that time and that many bytes read,
//!   or it is closed (`connection-timeout` from the core, `policy-violation`
//!   for the bytes). Before authentication one stanza is also limited to
//!   10 000 bytes by the core (`unauthenticated_limits`).
//! * `--ping-idle` (default 300 s) and `--ping-timeout` (default 60 s): a
//!   bound client silent for `--ping-idle` gets an XEP-0199 ping; if nothing
//!   at all arrives within `--ping-timeout` after it, the stream is closed
//!   with `connection-timeout`. See [`crate::liveness`].
//! * [`WRITE_TIMEOUT`]: how long one write may wait for a client (60 s).
//! * [`BATCH`]: inputs the core processes before it flushes outputs, which
//!   bounds the latency one busy client adds for the others.

use std::collections::HashMap;
use std::collections::VecDeque;
use std::collections::hash_map::Entry;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Output allowed to wait for a client that does not read.
pub const MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;

/// Inputs processed per batch before outputs are flushed.
pub const BATCH: usize = 256;

/// Time one write to a client may take before the client is dropped (a
/// client that stops reading must not hold its task and socket forever).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// Bytes asked of the socket per read.
pub const READ_CHUNK: usize = 16 * 1024;

/// The limits configured on the command line (`0` = off where noted).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open sockets in total.
    pub max_connections: usize,
    /// Open sockets per IP address (0 = off).
    pub max_per_ip: usize,
    /// New connections per IP address per [`Limits::login_window`] (0 = off).
    pub logins_per_ip: usize,
    /// The window of [`Limits::logins_per_ip`].
    pub login_window: Duration,
    /// Bytes per second read from one connection (0 = off).
    pub read_rate: u64,
    /// Bytes one connection may read at once above the rate.
    pub read_burst: u64,
    /// Bytes a connection may send before it authenticates (0 = off).
    pub pre_auth_bytes: usize,
    /// Silence after which a bound client is pinged (zero = never).
    pub ping_idle: Duration,
    /// Time a pinged client has to send anything.
    pub ping_timeout: Duration,
}

/// Counts of open sockets, shared by the core (which admits) and the
/// connection tasks (whose [`Slot`]s give them back).
#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Decides which connections are accepted.
#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    open: Arc<Mutex<Open>>,
    /// When each address's recent connections were accepted, oldest first.
    recent: HashMap<IpAddr, VecDeque<Instant>>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `--max-connections`.
    Total,
    /// `--max-connections-per-ip`.
    PerIp,
    /// `--logins-per-ip` in the current window.
    Rate,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::Total => "--max-connections reached",
            Refusal::PerIp => "--max-connections-per-ip reached",
            Refusal::Rate => "--logins-per-ip reached in this window",
        })
    }
}

impl Admission {
    /// No connection open yet.
    pub fn new(limits: Limits) -> Admission {
        Admission {
            limits,
            open: Arc::default(),
            recent: HashMap::new(),
        }
    }

    /// The configured limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A slot for a new connection from `peer` at `now`, or why not. The
    /// slot must live exactly as long as the socket.
    pub fn admit(&mut self, peer: SocketAddr, now: Instant) -> Result<Slot, Refusal> {
        let ip = peer.ip();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= self.limits.max_connections {
            return Err(Refusal::Total);
        }
        let from_ip = open.per_ip.get(&ip).copied().unwrap_or(0);
        if self.limits.max_per_ip > 0 && from_ip >= self.limits.max_per_ip {
            return Err(Refusal::PerIp);
        }
        if self.limits.logins_per_ip > 0 {
            let window = self.limits.login_window;
            let times = self.recent.entry(ip).or_default();
            while times
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= window)
            {
                times.pop_front();
            }
            if times.len() >= self.limits.logins_per_ip {
                return Err(Refusal::Rate);
            }
            times.push_back(now);
            // Keep the table small: forget addresses whose window is empty.
            if self.recent.len() > 4 * self.limits.max_connections.max(1) {
                self.recent.retain(|_, t| {
                    t.back()
                        .is_some_and(|last| now.saturating_duration_since(*last) < window)
                });
            }
        }
        open.total += 1;
        *open.per_ip.entry(ip).or_insert(0) += 1;
        Ok(Slot {
            ip,
            open: self.open.clone(),
        })
    }

    /// Sockets open now (in total, and from `ip`).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn open(&self, ip: IpAddr) -> (usize, usize) {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        (open.total, open.per_ip.get(&ip).copied().unwrap_or(0))
    }
}

/// One admitted socket. Dropping it (when the connection task ends, which
/// closes the socket) gives the place back.
#[derive(Debug)]
pub struct Slot {
    ip: IpAddr,
    open: Arc<Mutex<Open>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Entry::Occupied(mut e) = open.per_ip.entry(self.ip) {
            *e.get_mut() = e.get().saturating_sub(1);
            if *e.get() == 0 {
                e.remove();
            }
        }
    }
}

/// A token bucket for the bytes read from one connection.
#[derive(Debug, Clone)]
pub struct Bucket {
    /// Bytes per second (0 = unlimited).
    rate: u64,
    burst: u64,
    /// Bytes that may be read now; negative after a large read.
    tokens: i64,
    at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: u64, burst: u64, now: Instant) -> Bucket {
        let burst = burst.max(1);
        Bucket {
            rate,
            burst,
            tokens: i64::try_from(burst).unwrap_or(i64::MAX),
            at: now,
        }
    }

    /// Takes `n` bytes just read; returns how long to wait before the next
    /// read (zero when there is credit left).
    pub fn take(&mut self, n: usize, now: Instant) -> Duration {
        if self.rate == 0 {
            return Duration::ZERO;
        }
        self.refill(now);
        self.tokens = self
            .tokens
            .saturating_sub(i64::try_from(n).unwrap_or(i64::MAX));
        if self.tokens > 0 {
            return Duration::ZERO;
        }
        // Wait until at least one byte of credit is back.
        let owed = self.tokens.unsigned_abs().saturating_add(1);
        Duration::from_secs_f64(owed as f64 / self.rate as f64)
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at);
        self.at = now;
        let earned = (elapsed.as_secs_f64() * self.rate as f64).min(self.burst as f64) as i64;
        let cap = i64::try_from(self.burst).unwrap_or(i64::MAX);
        self.tokens = self.tokens.saturating_add(earned).min(cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_connections: 3,
            max_per_ip: 2,
            logins_per_ip: 3,
            login_window: Duration::from_secs(60),
            read_rate: 1000,
            read_burst: 2000,
            pre_auth_bytes: 0,
            ping_idle: Duration::ZERO,
            ping_timeout: Duration::ZERO,
        }
    }

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, last], 1000))
    }

    #[test]
    fn per_ip_and_total_caps_hold_until_the_slot_drops() {
        let now = Instant::now();
        let mut a = Admission::new(Limits {
            logins_per_ip: 0,
            ..limits()
        });
        let s1 = a.admit(addr(1), now).unwrap();
        let _s2 = a.admit(addr(1), now).unwrap();
        assert_eq!(a.admit(addr(1), now).unwrap_err(), Refusal::PerIp);
        let _s3 = a.admit(addr(2), now).unwrap();
        assert_eq!(a.admit(addr(3), now).unwrap_err(), Refusal::Total);
        drop(s1);
        assert_eq!(a.open(addr(1).ip()), (2, 1));
        assert!(a.admit(addr(1), now).is_ok());
    }

    #[test]
    fn connection_rate_per_ip_is_a_sliding_window() {
        let t0 = Instant::now();
        let mut a = Admission::new(Limits {
            max_connections: 100,
            max_per_ip: 0,
            ..limits()
        });
        for _ in 0..3 {
            drop(a.admit(addr(1), t0).unwrap());
        }
        assert_eq!(a.admit(addr(1), t0).unwrap_err(), Refusal::Rate);
        // Other addresses are not affected.
        assert!(a.admit(addr(2), t0).is_ok());
        assert_eq!(
            a.admit(addr(1), t0 + Duration::from_secs(59)).unwrap_err(),
            Refusal::Rate
        );
        assert!(a.admit(addr(1), t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn bucket_pauses_reading_above_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1000, 2000, t0);
        assert_eq!(b.take(1500, t0), Duration::ZERO);
        // 500 left; reading 1500 more leaves a debt of 1000 bytes: ~1 s.
        let wait = b.take(1500, t0);
        assert!(wait >= Duration::from_millis(1000) && wait < Duration::from_millis(1100));
        // After waiting, credit is back and reading resumes.
        assert_eq!(b.take(1, t0 + Duration::from_millis(1200)), Duration::ZERO);
        // Unlimited rate never waits.
        let mut free = Bucket::new(0, 0, t0);
        assert_eq!(free.take(usize::MAX, t0), Duration::ZERO);
    }
}
