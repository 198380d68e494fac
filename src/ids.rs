//! Small copyable handles.

use std::fmt;

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
