//! Resource limits that protect the server from a single client.
//!
//! Each limit is a constant or a command-line flag with a documented default:
//!
//! * [`MAX_QUEUED_BYTES`]: output allowed to wait for a client that does not
//!   read (8 MiB). Past it the client is disconnected, so one slow reader
//!   cannot exhaust memory.
//! * `--max-connections` (default 10 000): connections beyond it are
//!   refused at accept time; see [`Limits::admit`].
//! * [`WRITE_TIMEOUT`]: how long one write may wait for a client (60 s).
//! * [`BATCH`]: inputs the core processes before it flushes outputs, which
//!   bounds the latency one busy client adds for the others.

use std::net::SocketAddr;
use std::time::Duration;

/// Output allowed to wait for a client that does not read.
pub const MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;

/// Inputs processed per batch before outputs are flushed.
pub const BATCH: usize = 256;

/// Time one write to a client may take before the client is dropped (a
/// client that stops reading must not hold its task and socket forever).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// Bytes asked of the socket per read.
pub const READ_CHUNK: usize = 16 * 1024;

/// The limits configured on the command line.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Refuse connections beyond this many.
    pub max_connections: usize,
}

impl Limits {
    /// Whether a new connection from `peer` may be accepted while `open`
    /// connections exist; logs the refusal otherwise.
    pub fn admit(&self, peer: SocketAddr, open: usize) -> bool {
        if open >= self.max_connections {
            tracing::warn!(%peer, open, "refusing a connection: --max-connections reached");
            return false;
        }
        true
    }
}
