//! The per-session state of XEP-0198 stream management, as plain data.
//!
//! Kept in the bound part of a [`Session`](crate::Session) (it exists only
//! while a resource is bound) and driven by the manager's `sm` module. It
//! holds no handles into the manager, so a session's whole resumable state
//! (this plus the bound resource) can be moved between sessions on resume,
//! and later be exported to another node.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::xml::StanzaKind;

/// One stanza sent (or queued) to the client and not yet acknowledged.
#[derive(Debug, Clone)]
pub(crate) struct Unacked {
    /// The stanza exactly as written to the client (retransmitted as is).
    pub(crate) data: Bytes,
    /// What the expiry rule needs before reparsing: presence is dropped
    /// without looking, messages and iqs are parsed from `data`.
    pub(crate) kind: StanzaKind,
}

/// Stream management state of one bound session.
#[derive(Debug)]
pub(crate) struct SmState {
    /// The resumption token (`id` of `<enabled/>`), when resumable.
    pub(crate) token: Option<Box<str>>,
    /// How long the session hibernates once its transport is gone.
    pub(crate) resume_timeout: Duration,
    /// Stanzas handled from the client (`h` of our `<a/>`), mod 2^32.
    pub(crate) inbound: u32,
    /// Stanzas sent to the client so far, mod 2^32.
    pub(crate) outbound: u32,
    /// The last `h` the client acknowledged.
    pub(crate) acked: u32,
    /// Sent and not acknowledged, oldest first: `outbound - acked` items,
    /// or none once `overflowed`.
    pub(crate) unacked: VecDeque<Unacked>,
    /// A connected session had more unacknowledged stanzas than the queue
    /// bound: they are counted but no longer kept, and the session is no
    /// longer resumable.
    pub(crate) overflowed: bool,
    /// Our `<r/>` is outstanding (no further one until an `<a/>`).
    pub(crate) requested: bool,
    /// While hibernating: when the session expires.
    pub(crate) hibernating_until: Option<Instant>,
}

impl SmState {
    /// Fresh state after `<enable/>`.
    pub(crate) fn new(token: Option<Box<str>>, resume_timeout: Duration) -> Self {
        Self {
            token,
            resume_timeout,
            inbound: 0,
            outbound: 0,
            acked: 0,
            unacked: VecDeque::new(),
            overflowed: false,
            requested: false,
            hibernating_until: None,
        }
    }

    /// Counts one stanza handed to the client's output and keeps it until
    /// acknowledged.
    pub(crate) fn sent(&mut self, data: Bytes, kind: StanzaKind) {
        self.outbound = self.outbound.wrapping_add(1);
        if !self.overflowed {
            self.unacked.push_back(Unacked { data, kind });
        }
    }

    /// Counts one stanza taken from the client's stream (`h` + 1).
    pub(crate) fn handled(&mut self) {
        self.inbound = self.inbound.wrapping_add(1);
    }

    /// Sent and not acknowledged (kept or not).
    pub(crate) fn pending(&self) -> u32 {
        self.outbound.wrapping_sub(self.acked)
    }

    /// Applies the client's `h`: drops what it acknowledges. `Err` (nothing
    /// changed) when `h` acknowledges more than was sent.
    pub(crate) fn ack(&mut self, h: u32) -> Result<(), ()> {
        let n = h.wrapping_sub(self.acked);
        if n > self.pending() {
            return Err(());
        }
        let n = usize::try_from(n).map_err(|_| ())?;
        self.unacked.drain(..n.min(self.unacked.len()));
        self.acked = h;
        self.requested = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st() -> SmState {
        SmState::new(None, Duration::from_secs(1))
    }

    #[test]
    fn acks_trim_in_order_and_wrap() {
        let mut s = st();
        s.outbound = u32::MAX - 1;
        s.acked = u32::MAX - 1;
        for i in 0..4u8 {
            s.sent(Bytes::from(vec![i]), StanzaKind::Message);
        }
        assert_eq!(s.outbound, 2);
        assert_eq!(s.ack(u32::MAX), Ok(()));
        assert_eq!(
            s.unacked.front().map(|u| u.data.clone()),
            Some(Bytes::from(vec![1u8]))
        );
        assert_eq!(s.ack(3), Err(()));
        assert_eq!(s.ack(1), Ok(()));
        assert_eq!(s.unacked.len(), 1);
        assert_eq!(s.ack(2), Ok(()));
        assert!(s.unacked.is_empty());
        // Going back is "too high" too: it would wrap around.
        assert_eq!(s.ack(1), Err(()));
    }
}
