//! SASL2 (XEP-0388), Bind2 (XEP-0386) and FAST (XEP-0484) requests as
//! plain data: what a client asked for inline in `<authenticate/>`, kept
//! in the negotiating session until the exchange ends. Read by
//! `negotiation::sasl2`, applied by the manager.

use minidom::Element;

use crate::storage::{FastToken, FastTokens};

/// What a client asked for inline in `<authenticate/>`, applied once it
/// has authenticated.
#[derive(Debug, Default)]
pub(crate) struct Sasl2Inline {
    /// `<user-agent id>`: a UUID, lowercased.
    pub user_agent: Option<String>,
    /// `<bind xmlns='urn:xmpp:bind:0'>`.
    pub bind: Option<Bind2Request>,
    /// `<resume xmlns='urn:xmpp:sm:3'>`.
    pub resume: Option<Element>,
    /// `<fast xmlns='urn:xmpp:fast:0'/>`: this login uses a FAST token.
    pub fast: Option<FastUse>,
    /// `<request-token xmlns='urn:xmpp:fast:0' mechanism=…/>` with a
    /// mechanism offered on this connection: its name.
    pub request_token: Option<&'static str>,
    /// A FAST login waiting for the client's tokens from storage.
    pub fast_attempt: Option<FastAttempt>,
    /// A FAST login that succeeded: the token used and the client's
    /// tokens after it (the previous one dropped once the current is used).
    pub fast_verified: Option<FastVerified>,
}

/// `<fast/>` in `<authenticate/>`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastUse {
    /// `invalidate='true'`: forget the token after this login (logout).
    pub invalidate: bool,
}

/// An `HT-SHA-256-*` initial response, until the tokens arrive.
#[derive(Debug)]
pub(crate) struct FastAttempt {
    /// The SASL user name.
    pub username: String,
    /// The client's HMAC over `Initiator` and the binding data.
    pub proof: Vec<u8>,
    /// The name of the `HT-SHA-256-*` mechanism used.
    pub mechanism: &'static str,
    /// The connection's channel-binding data for it (empty for `-NONE`).
    pub cb_data: Vec<u8>,
}

/// A successful FAST login.
#[derive(Debug)]
pub(crate) struct FastVerified {
    /// The token the client used.
    pub used: FastToken,
    /// The client's tokens after this use.
    pub after: FastTokens,
}

/// A Bind2 request.
#[derive(Debug, Default)]
pub(crate) struct Bind2Request {
    /// `<tag/>`, reduced to the characters kept in a resource.
    pub tag: Option<String>,
    /// The inline features, in the client's order.
    pub features: Vec<Bind2Feature>,
}

/// One inline feature of a Bind2 request. A feature is one variant, one
/// arm in `Bind2Feature::parse`, one entry in `negotiation::sasl2::BIND2_INLINE` and one
/// arm in the manager's `apply_bind2_feature`.
#[derive(Debug)]
pub(crate) enum Bind2Feature {
    /// `<enable xmlns='urn:xmpp:sm:3'/>`: stream management, answered with
    /// `<enabled/>` (or `<failed/>`) inside `<bound/>`.
    SmEnable(Element),
    /// `<enable xmlns='urn:xmpp:carbons:2'/>`: message carbons (XEP-0280)
    /// on for the new session; nothing goes into `<bound/>`.
    Carbons,
    /// `<inactive xmlns='urn:xmpp:csi:0'/>`: the new session starts
    /// inactive (XEP-0352); nothing goes into `<bound/>`.
    Inactive,
}
