//! Server configuration with documented defaults.

use std::time::Duration;

use crate::sasl::Mechanism;
use crate::stream::XmlLimits;

/// What to do when a client binds a resource that another session of the
/// same account already holds (RFC 6120 §7.7.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConflictPolicy {
    /// Close the old session with the stream error `conflict`
    /// ("Replaced by new connection") and give the resource to the new one.
    /// Prosody's default, and ours.
    #[default]
    KickOld,
    /// Refuse the new bind with `<conflict/>` (type `cancel`).
    RefuseNew,
    /// Give the new session `resource#n` with the smallest free `n ≥ 1`.
    AddSuffix,
}

/// Configuration of a [`SessionManager`](crate::SessionManager).
///
/// Build it with [`Config::builder`] and [`ConfigBuilder::build`], which
/// validates every option and normalises the host names; every option has a
/// documented default, readable through the method of the same name.
///
/// ```
/// use xmpp_session::Config;
///
/// let config = Config::builder("Example.COM.").max_resources_per_user(8).build()?;
/// assert_eq!(config.hosts(), ["example.com"]);
/// assert!(config.serves("example.com"));
/// # Ok::<(), xmpp_session::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    pub(crate) hosts: Vec<String>,
    pub(crate) require_tls: bool,
    pub(crate) allow_plain_without_tls: bool,
    pub(crate) mechanisms: Vec<Mechanism>,
    pub(crate) max_auth_failures: u32,
    pub(crate) limits: XmlLimits,
    pub(crate) unauthenticated_limits: XmlLimits,
    pub(crate) auth_timeout: Duration,
    pub(crate) conflict_policy: ConflictPolicy,
    pub(crate) max_resources_per_user: usize,
    pub(crate) offline_storage: bool,
    pub(crate) max_parked_per_user: usize,
    pub(crate) max_offline_messages: usize,
    pub(crate) max_offline_bytes: usize,
    pub(crate) software_name: Option<String>,
    pub(crate) software_version: Option<String>,
    pub(crate) software_os: Option<String>,
    pub(crate) max_roster_items: usize,
    pub(crate) max_roster_name_bytes: usize,
    pub(crate) max_roster_group_bytes: usize,
    pub(crate) max_roster_groups_per_item: usize,
    pub(crate) max_directed_presence: usize,
    pub(crate) stream_management: bool,
    pub(crate) resume_timeout: Duration,
    pub(crate) sm_max_queue: usize,
    pub(crate) sm_request_ack_after: usize,
    pub(crate) sm_expired_tokens: usize,
    pub(crate) sm_expired_token_retention: Duration,
    pub(crate) max_blocklist_items: usize,
    pub(crate) csi_queue_max: usize,
    pub(crate) csi_classifier: crate::csi::CsiClassifier,
    pub(crate) sasl2: bool,
    pub(crate) fast_token_lifetime: Duration,
    pub(crate) fast_tokens_per_account: usize,
}

/// Smallest accepted `max_stanza_bytes`: a stream header with its namespace
/// declarations, or a SASL `<auth/>` with a SCRAM first message, is more
/// than 150 bytes.
pub const MIN_STANZA_BYTES: usize = 256;
/// Smallest accepted `max_depth`: an iq and its payload.
pub const MIN_DEPTH: usize = 2;
/// Smallest accepted `max_attributes`: a stream header carries `xmlns`,
/// `xmlns:stream`, `to`, `version` and usually `xml:lang`.
pub const MIN_ATTRIBUTES: usize = 5;

/// Why [`ConfigBuilder::build`] refused a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A host is not a valid domain (RFC 7622 domainpart: no `@`, no `/`,
    /// IDNA and nameprep must succeed).
    #[error("host {host:?} is not a valid domain")]
    InvalidHost {
        /// The host as given.
        host: String,
    },
    /// Two hosts are the same domain after normalisation.
    #[error("host {host:?} is listed twice")]
    DuplicateHost {
        /// The normalised host.
        host: String,
    },
    /// No SASL mechanism is enabled, so nobody could log in.
    #[error("no SASL mechanism is enabled")]
    NoMechanisms,
    /// An option is zero where zero makes no sense.
    #[error("{option} must not be zero")]
    Zero {
        /// The builder method that sets the option.
        option: &'static str,
    },
    /// `sm_request_ack_after` is above `sm_max_queue`: the queue would
    /// overflow before an acknowledgement is requested.
    #[error("sm_request_ack_after = {after} is above sm_max_queue = {queue}")]
    AckRequestAfterQueue {
        /// `sm_request_ack_after`.
        after: usize,
        /// `sm_max_queue`.
        queue: usize,
    },
    /// An XML limit is too small for a stream to be negotiated at all.
    #[error("{option}.{field} = {value} is below the minimum {min}")]
    LimitTooSmall {
        /// `limits` or `unauthenticated_limits`.
        option: &'static str,
        /// The [`XmlLimits`] field.
        field: &'static str,
        /// The value given.
        value: usize,
        /// The smallest accepted value.
        min: usize,
    },
}

impl Config {
    /// A builder for a server that serves `host`.
    pub fn builder(host: impl Into<String>) -> ConfigBuilder {
        ConfigBuilder {
            config: Config {
                hosts: vec![host.into()],
                require_tls: true,
                allow_plain_without_tls: false,
                mechanisms: Mechanism::ALL.to_vec(),
                max_auth_failures: 3,
                limits: XmlLimits::default(),
                unauthenticated_limits: XmlLimits {
                    max_stanza_bytes: 10_000,
                    ..XmlLimits::default()
                },
                auth_timeout: Duration::from_secs(300),
                conflict_policy: ConflictPolicy::KickOld,
                max_resources_per_user: 64,
                offline_storage: true,
                max_parked_per_user: 1024,
                max_offline_messages: 100,
                max_offline_bytes: 1 << 20,
                software_name: Some("xmpp-session".to_owned()),
                software_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
                software_os: None,
                max_roster_items: 10_000,
                max_roster_name_bytes: 256,
                max_roster_group_bytes: 256,
                max_roster_groups_per_item: 16,
                max_directed_presence: 1000,
                stream_management: true,
                resume_timeout: Duration::from_secs(300),
                sm_max_queue: 500,
                sm_request_ack_after: 5,
                sm_expired_tokens: 1000,
                sm_expired_token_retention: Duration::from_secs(3600),
                max_blocklist_items: 1000,
                csi_queue_max: 256,
                csi_classifier: crate::csi::default_classify,
                sasl2: false,
                fast_token_lifetime: Duration::from_secs(14 * 24 * 3600),
                fast_tokens_per_account: 0,
            },
        }
    }

    /// FAST is offered: SASL2 is on and clients may hold tokens.
    pub(crate) fn fast_on(&self) -> bool {
        self.sasl2 && self.fast_token_lifetime > Duration::ZERO && self.fast_tokens_per_account > 0
    }

    /// Whether `host` (already normalised) is served here.
    pub fn serves(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h == host)
    }

    /// The domains this server serves, normalised (lowercase, nameprep, no
    /// trailing dot); the first is the primary one.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// Refuse SASL until the stream is encrypted. Default `true`.
    pub fn require_tls(&self) -> bool {
        self.require_tls
    }

    /// Offer PLAIN on an unencrypted stream. Default `false`.
    pub fn allow_plain_without_tls(&self) -> bool {
        self.allow_plain_without_tls
    }

    /// Mechanisms to offer, strongest first. Default SCRAM-SHA-256,
    /// SCRAM-SHA-1, PLAIN. Never empty.
    pub fn mechanisms(&self) -> &[Mechanism] {
        &self.mechanisms
    }

    /// Failed SASL attempts allowed on one connection before it is closed
    /// with `policy-violation` (RFC 6120 §6.4.5 suggests 2 to 5). Default 3,
    /// at least 1.
    pub fn max_auth_failures(&self) -> u32 {
        self.max_auth_failures
    }

    /// Limits for an authenticated stream. Default: 262144-byte stanzas
    /// (as Prosody), depth 64, 64 attributes per element, 262144-byte text.
    pub fn limits(&self) -> XmlLimits {
        self.limits
    }

    /// Limits before authentication. Default: 10000-byte stanzas (as
    /// Prosody 0.12), other limits as [`Config::limits`].
    pub fn unauthenticated_limits(&self) -> XmlLimits {
        self.unauthenticated_limits
    }

    /// Close a connection that has not authenticated after this long with
    /// `connection-timeout`. Default 5 minutes (Prosody's `c2s_timeout`).
    pub fn auth_timeout(&self) -> Duration {
        self.auth_timeout
    }

    /// Resource conflict policy. Default [`ConflictPolicy::KickOld`].
    pub fn conflict_policy(&self) -> ConflictPolicy {
        self.conflict_policy
    }

    /// Offer XEP-0198 stream management (`<sm xmlns='urn:xmpp:sm:3'/>`
    /// after authentication): acknowledgements, and resumption when the
    /// client asks for it. Default `true`.
    pub fn stream_management(&self) -> bool {
        self.stream_management
    }

    /// Offer SASL2 (XEP-0388) beside legacy SASL, with Bind2 (XEP-0386)
    /// and inline stream management: `<authentication xmlns='urn:xmpp:sasl:2'>`
    /// in the pre-authentication features. Default `false` (opt in: the
    /// features every client sees change).
    pub fn sasl2(&self) -> bool {
        self.sasl2
    }

    /// How long a FAST token (XEP-0484) stays valid after it is issued.
    /// Default 14 days.
    pub fn fast_token_lifetime(&self) -> Duration {
        self.fast_token_lifetime
    }

    /// How many clients (user-agent ids) of one account may hold FAST
    /// tokens; the store forgets the least recently issued beyond that.
    /// `0` (the default) turns FAST off; it is offered only with
    /// [`Config::sasl2`].
    pub fn fast_tokens_per_account(&self) -> usize {
        self.fast_tokens_per_account
    }

    /// How long a resumable session hibernates after its transport is gone
    /// before it ends (the most a client's `max` can ask for, and the `max`
    /// of `<enabled/>`). Default 300 s (Prosody uses 600 s; Monal asks for at
    /// least an hour). Not zero.
    pub fn resume_timeout(&self) -> Duration {
        self.resume_timeout
    }

    /// Unacknowledged stanzas kept per stream-management session (also
    /// those queued while it hibernates). One more makes a hibernating
    /// session expire (its stanzas handled as on expiry); a connected one
    /// keeps the stream but stops keeping stanzas and is no longer
    /// resumable (closing it instead would send everything back to offline
    /// storage, and a large offline backlog would loop). Default 500
    /// (Prosody's `smacks_max_queue_size`), at least 1.
    pub fn sm_max_queue(&self) -> usize {
        self.sm_max_queue
    }

    /// The server asks for an acknowledgement (`<r/>`) once this many
    /// stanzas are unacknowledged and no request is outstanding. Default
    /// 5; at least 1 and at most [`Config::sm_max_queue`].
    pub fn sm_request_ack_after(&self) -> usize {
        self.sm_request_ack_after
    }

    /// Expired resumption tokens remembered (with their last `h`), so that a
    /// late `<resume/>` gets `<failed h=…>`. Default 1000; 0 remembers none.
    pub fn sm_expired_tokens(&self) -> usize {
        self.sm_expired_tokens
    }

    /// How long an expired token is remembered. Default 1 hour.
    pub fn sm_expired_token_retention(&self) -> Duration {
        self.sm_expired_token_retention
    }

    /// Connected resources allowed per account; binding beyond it gets
    /// `resource-constraint`. Default 64, at least 1.
    pub fn max_resources_per_user(&self) -> usize {
        self.max_resources_per_user
    }

    /// Store chat/normal messages for users without a top resource and
    /// deliver them at their next initial presence. Default `true`.
    pub fn offline_storage(&self) -> bool {
        self.offline_storage
    }

    /// Stanzas parked per user while storage answers. Default 1024, at
    /// least 1.
    pub fn max_parked_per_user(&self) -> usize {
        self.max_parked_per_user
    }

    /// Offline messages stored per user (ejabberd's
    /// `max_user_offline_messages`). Default 100, at least 1. A message
    /// beyond it is refused: the sender gets `resource-constraint` (type
    /// `wait`). Passed to the store in every [`Request::StoreOffline`](crate::Request::StoreOffline).
    pub fn max_offline_messages(&self) -> usize {
        self.max_offline_messages
    }

    /// Bytes of offline messages stored per user, counted as serialized
    /// stanzas (with their `<delay/>`). Default 1 MiB (1,048,576), at least
    /// 1. Enforced like [`Config::max_offline_messages`].
    pub fn max_offline_bytes(&self) -> usize {
        self.max_offline_bytes
    }

    /// The offline quota as the store receives it.
    pub(crate) fn offline_quota(&self) -> crate::storage::OfflineQuota {
        crate::storage::OfflineQuota::new(self.max_offline_messages, self.max_offline_bytes)
    }

    /// Software name reported by XEP-0092 (`None` answers
    /// `service-unavailable`). Default `Some("xmpp-session")`.
    pub fn software_name(&self) -> Option<&str> {
        self.software_name.as_deref()
    }

    /// Software version reported by XEP-0092, if a name is set. Default the
    /// crate version.
    pub fn software_version(&self) -> Option<&str> {
        self.software_version.as_deref()
    }

    /// Operating system reported by XEP-0092. Default `None`.
    pub fn software_os(&self) -> Option<&str> {
        self.software_os.as_deref()
    }

    /// Roster items plus pending inbound requests per account, whatever
    /// adds them: a roster set, an outbound `subscribe` or pre-approval
    /// (`subscribed`) beyond it gets `resource-constraint` (type `wait`),
    /// further inbound requests are dropped (after the usual unavailable
    /// acknowledgement, so the requester learns nothing). Default 10000,
    /// at least 1.
    pub fn max_roster_items(&self) -> usize {
        self.max_roster_items
    }

    /// Bytes (UTF-8) of a roster item's `name`. Default 256, at least 1. A
    /// roster set with a longer name gets `not-acceptable` (RFC 6121
    /// §2.3.3).
    pub fn max_roster_name_bytes(&self) -> usize {
        self.max_roster_name_bytes
    }

    /// Bytes (UTF-8) of one `<group/>` name in a roster item. Default 256,
    /// at least 1. Longer: `not-acceptable` (RFC 6121 §2.3.3).
    pub fn max_roster_group_bytes(&self) -> usize {
        self.max_roster_group_bytes
    }

    /// Groups one roster item may be in. Default 16, at least 1. More:
    /// `not-acceptable` (the request itself is at fault; retrying the same
    /// item cannot succeed).
    pub fn max_roster_groups_per_item(&self) -> usize {
        self.max_roster_groups_per_item
    }

    /// Directed-presence recipients remembered per session; beyond it,
    /// directed presence is still delivered but no longer tracked for the
    /// unavailable on logout. Default 1000; 0 tracks none.
    pub fn max_directed_presence(&self) -> usize {
        self.max_directed_presence
    }

    /// JIDs on one account's XEP-0191 blocklist; a block beyond it gets
    /// `resource-constraint`. Default 1000, at least 1.
    pub fn max_blocklist_items(&self) -> usize {
        self.max_blocklist_items
    }

    /// Stanzas held for an inactive (XEP-0352) session; the one that would
    /// exceed it flushes everything held. Default 256, at least 1.
    pub fn csi_queue_max(&self) -> usize {
        self.csi_queue_max
    }

    /// How stanzas for an inactive (XEP-0352) session are classified.
    /// Default [`csi::default_classify`](crate::csi::default_classify).
    pub fn csi_classifier(&self) -> crate::csi::CsiClassifier {
        self.csi_classifier
    }
}

/// Builder for [`Config`]. Setters take any value; [`ConfigBuilder::build`]
/// checks them.
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    config: Config,
}

impl ConfigBuilder {
    /// Serve another domain as well.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.config.hosts.push(host.into());
        self
    }
    /// See [`Config::require_tls`].
    pub fn require_tls(mut self, on: bool) -> Self {
        self.config.require_tls = on;
        self
    }
    /// See [`Config::allow_plain_without_tls`].
    pub fn allow_plain_without_tls(mut self, on: bool) -> Self {
        self.config.allow_plain_without_tls = on;
        self
    }
    /// See [`Config::mechanisms`]. Duplicates are dropped, order is kept.
    pub fn mechanisms(mut self, mechanisms: &[Mechanism]) -> Self {
        self.config.mechanisms.clear();
        for m in mechanisms {
            if !self.config.mechanisms.contains(m) {
                self.config.mechanisms.push(*m);
            }
        }
        self
    }
    /// See [`Config::max_auth_failures`].
    pub fn max_auth_failures(mut self, n: u32) -> Self {
        self.config.max_auth_failures = n;
        self
    }
    /// See [`Config::limits`].
    pub fn limits(mut self, limits: XmlLimits) -> Self {
        self.config.limits = limits;
        self
    }
    /// See [`Config::unauthenticated_limits`].
    pub fn unauthenticated_limits(mut self, limits: XmlLimits) -> Self {
        self.config.unauthenticated_limits = limits;
        self
    }
    /// See [`Config::auth_timeout`].
    pub fn auth_timeout(mut self, timeout: Duration) -> Self {
        self.config.auth_timeout = timeout;
        self
    }
    /// See [`Config::conflict_policy`].
    pub fn conflict_policy(mut self, policy: ConflictPolicy) -> Self {
        self.config.conflict_policy = policy;
        self
    }
    /// See [`Config::max_resources_per_user`].
    pub fn max_resources_per_user(mut self, n: usize) -> Self {
        self.config.max_resources_per_user = n;
        self
    }
    /// See [`Config::offline_storage`].
    pub fn offline_storage(mut self, on: bool) -> Self {
        self.config.offline_storage = on;
        self
    }
    /// See [`Config::max_parked_per_user`].
    pub fn max_parked_per_user(mut self, n: usize) -> Self {
        self.config.max_parked_per_user = n;
        self
    }
    /// See [`Config::max_offline_messages`].
    pub fn max_offline_messages(mut self, n: usize) -> Self {
        self.config.max_offline_messages = n;
        self
    }
    /// See [`Config::max_offline_bytes`].
    pub fn max_offline_bytes(mut self, n: usize) -> Self {
        self.config.max_offline_bytes = n;
        self
    }
    /// See [`Config::software_name`], [`Config::software_version`] and
    /// [`Config::software_os`].
    pub fn software(
        mut self,
        name: Option<String>,
        version: Option<String>,
        os: Option<String>,
    ) -> Self {
        self.config.software_name = name;
        self.config.software_version = version;
        self.config.software_os = os;
        self
    }
    /// See [`Config::max_roster_items`].
    pub fn max_roster_items(mut self, n: usize) -> Self {
        self.config.max_roster_items = n;
        self
    }
    /// See [`Config::max_roster_name_bytes`].
    pub fn max_roster_name_bytes(mut self, n: usize) -> Self {
        self.config.max_roster_name_bytes = n;
        self
    }
    /// See [`Config::max_roster_group_bytes`].
    pub fn max_roster_group_bytes(mut self, n: usize) -> Self {
        self.config.max_roster_group_bytes = n;
        self
    }
    /// See [`Config::max_roster_groups_per_item`].
    pub fn max_roster_groups_per_item(mut self, n: usize) -> Self {
        self.config.max_roster_groups_per_item = n;
        self
    }
    /// See [`Config::max_directed_presence`].
    pub fn max_directed_presence(mut self, n: usize) -> Self {
        self.config.max_directed_presence = n;
        self
    }
    /// See [`Config::stream_management`].
    pub fn stream_management(mut self, on: bool) -> Self {
        self.config.stream_management = on;
        self
    }
    /// See [`Config::sasl2`].
    pub fn sasl2(mut self, on: bool) -> Self {
        self.config.sasl2 = on;
        self
    }
    /// See [`Config::fast_token_lifetime`] and
    /// [`Config::fast_tokens_per_account`].
    pub fn fast(mut self, lifetime: Duration, per_account: usize) -> Self {
        self.config.fast_token_lifetime = lifetime;
        self.config.fast_tokens_per_account = per_account;
        self
    }
    /// See [`Config::resume_timeout`].
    pub fn resume_timeout(mut self, timeout: Duration) -> Self {
        self.config.resume_timeout = timeout;
        self
    }
    /// See [`Config::sm_max_queue`].
    pub fn sm_max_queue(mut self, n: usize) -> Self {
        self.config.sm_max_queue = n;
        self
    }
    /// See [`Config::sm_request_ack_after`].
    pub fn sm_request_ack_after(mut self, n: usize) -> Self {
        self.config.sm_request_ack_after = n;
        self
    }
    /// See [`Config::sm_expired_tokens`] and
    /// [`Config::sm_expired_token_retention`].
    pub fn sm_expired_tokens(mut self, count: usize, retention: Duration) -> Self {
        self.config.sm_expired_tokens = count;
        self.config.sm_expired_token_retention = retention;
        self
    }
    /// See [`Config::max_blocklist_items`].
    pub fn max_blocklist_items(mut self, n: usize) -> Self {
        self.config.max_blocklist_items = n;
        self
    }
    /// See [`Config::csi_queue_max`].
    pub fn csi_queue_max(mut self, n: usize) -> Self {
        self.config.csi_queue_max = n;
        self
    }
    /// See [`Config::csi_classifier`].
    pub fn csi_classifier(mut self, classify: crate::csi::CsiClassifier) -> Self {
        self.config.csi_classifier = classify;
        self
    }

    /// The finished configuration, or the first problem found:
    ///
    /// * every host must be a valid domain; hosts are normalised (lowercase,
    ///   nameprep, one trailing dot stripped) and must then be distinct;
    /// * at least one SASL mechanism;
    /// * `max_auth_failures`, `max_resources_per_user`,
    ///   `max_parked_per_user`, `max_offline_messages`, `max_offline_bytes`,
    ///   `max_roster_items`, `max_roster_name_bytes`,
    ///   `max_roster_group_bytes`, `max_roster_groups_per_item`,
    ///   `max_blocklist_items`,
    ///   `csi_queue_max`, `auth_timeout`, `resume_timeout`, `sm_max_queue`
    ///   and `sm_request_ack_after` must not be zero, and
    ///   `sm_request_ack_after` not above `sm_max_queue`;
    /// * both [`XmlLimits`] must allow at least [`MIN_STANZA_BYTES`],
    ///   [`MIN_DEPTH`], [`MIN_ATTRIBUTES`] and one byte of text.
    pub fn build(self) -> Result<Config, ConfigError> {
        let mut config = self.config;
        let mut hosts: Vec<String> = Vec::with_capacity(config.hosts.len());
        for host in &config.hosts {
            let normalised = normalise_host(host)
                .ok_or_else(|| ConfigError::InvalidHost { host: host.clone() })?;
            if hosts.contains(&normalised) {
                return Err(ConfigError::DuplicateHost { host: normalised });
            }
            hosts.push(normalised);
        }
        config.hosts = hosts;
        if config.mechanisms.is_empty() {
            return Err(ConfigError::NoMechanisms);
        }
        let zeros = [
            ("max_auth_failures", config.max_auth_failures == 0),
            ("max_resources_per_user", config.max_resources_per_user == 0),
            ("max_parked_per_user", config.max_parked_per_user == 0),
            ("max_offline_messages", config.max_offline_messages == 0),
            ("max_offline_bytes", config.max_offline_bytes == 0),
            ("max_roster_items", config.max_roster_items == 0),
            ("max_roster_name_bytes", config.max_roster_name_bytes == 0),
            ("max_roster_group_bytes", config.max_roster_group_bytes == 0),
            (
                "max_roster_groups_per_item",
                config.max_roster_groups_per_item == 0,
            ),
            ("max_blocklist_items", config.max_blocklist_items == 0),
            ("csi_queue_max", config.csi_queue_max == 0),
            ("auth_timeout", config.auth_timeout.is_zero()),
            ("resume_timeout", config.resume_timeout.is_zero()),
            ("sm_max_queue", config.sm_max_queue == 0),
            ("sm_request_ack_after", config.sm_request_ack_after == 0),
        ];
        if let Some((option, _)) = zeros.iter().find(|(_, zero)| *zero) {
            return Err(ConfigError::Zero { option });
        }
        if config.sm_request_ack_after > config.sm_max_queue {
            return Err(ConfigError::AckRequestAfterQueue {
                after: config.sm_request_ack_after,
                queue: config.sm_max_queue,
            });
        }
        check_limits("limits", &config.limits)?;
        check_limits("unauthenticated_limits", &config.unauthenticated_limits)?;
        Ok(config)
    }
}

/// A host as a normalised domain: a JID with neither localpart nor resource.
fn normalise_host(host: &str) -> Option<String> {
    let jid = jid::Jid::new(host).ok()?;
    if jid.node().is_some() || jid.resource().is_some() {
        return None;
    }
    Some(jid.domain().as_str().to_owned())
}

fn check_limits(option: &'static str, limits: &XmlLimits) -> Result<(), ConfigError> {
    let checks = [
        (
            "max_stanza_bytes",
            limits.max_stanza_bytes,
            MIN_STANZA_BYTES,
        ),
        ("max_depth", limits.max_depth, MIN_DEPTH),
        ("max_attributes", limits.max_attributes, MIN_ATTRIBUTES),
        ("max_text_bytes", limits.max_text_bytes, 1),
    ];
    for (field, value, min) in checks {
        if value < min {
            return Err(ConfigError::LimitTooSmall {
                option,
                field,
                value,
                min,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let config = Config::builder("localhost").build().expect("valid");
        assert_eq!(config.hosts(), ["localhost"]);
        assert_eq!(config.max_resources_per_user(), 64);
    }

    #[test]
    fn hosts_are_normalised_and_checked() {
        let config = Config::builder("Example.COM.")
            .host("xn--caf-dma.example")
            .host("CAFÉ.example.org")
            .build()
            .expect("valid");
        assert_eq!(
            config.hosts(),
            ["example.com", "xn--caf-dma.example", "café.example.org"]
        );
        for bad in [
            "",
            "user@example.com",
            "example.com/res",
            "exa mple.com",
            "a..b",
        ] {
            assert_eq!(
                Config::builder(bad).build().err(),
                Some(ConfigError::InvalidHost { host: bad.into() }),
                "{bad:?}"
            );
        }
        assert_eq!(
            Config::builder("example.com")
                .host("EXAMPLE.com.")
                .build()
                .err(),
            Some(ConfigError::DuplicateHost {
                host: "example.com".into()
            })
        );
    }

    #[test]
    fn stream_management_options_are_checked() {
        let c = Config::builder("a.example").build().expect("defaults");
        assert!(c.stream_management());
        assert_eq!(c.resume_timeout(), Duration::from_secs(300));
        assert_eq!((c.sm_max_queue(), c.sm_request_ack_after()), (500, 5));
        assert_eq!(
            (c.sm_expired_tokens(), c.sm_expired_token_retention()),
            (1000, Duration::from_secs(3600))
        );
        for (builder, option) in [
            (
                Config::builder("a.example").resume_timeout(Duration::ZERO),
                "resume_timeout",
            ),
            (Config::builder("a.example").sm_max_queue(0), "sm_max_queue"),
            (
                Config::builder("a.example").sm_request_ack_after(0),
                "sm_request_ack_after",
            ),
        ] {
            assert_eq!(builder.build().err(), Some(ConfigError::Zero { option }));
        }
        assert_eq!(
            Config::builder("a.example")
                .sm_max_queue(4)
                .sm_request_ack_after(5)
                .build()
                .err(),
            Some(ConfigError::AckRequestAfterQueue { after: 5, queue: 4 })
        );
        assert!(
            Config::builder("a.example")
                .sm_expired_tokens(0, Duration::ZERO)
                .build()
                .is_ok()
        );
    }

    #[test]
    fn zeros_and_small_limits_are_refused() {
        assert_eq!(
            Config::builder("a.example").mechanisms(&[]).build().err(),
            Some(ConfigError::NoMechanisms)
        );
        assert_eq!(
            Config::builder("a.example")
                .max_resources_per_user(0)
                .build()
                .err(),
            Some(ConfigError::Zero {
                option: "max_resources_per_user"
            })
        );
        assert_eq!(
            Config::builder("a.example")
                .max_auth_failures(0)
                .build()
                .err(),
            Some(ConfigError::Zero {
                option: "max_auth_failures"
            })
        );
        assert_eq!(
            Config::builder("a.example")
                .auth_timeout(Duration::ZERO)
                .build()
                .err(),
            Some(ConfigError::Zero {
                option: "auth_timeout"
            })
        );
        assert!(
            Config::builder("a.example")
                .max_directed_presence(0)
                .build()
                .is_ok()
        );
        let small = XmlLimits {
            max_stanza_bytes: 100,
            ..XmlLimits::default()
        };
        assert_eq!(
            Config::builder("a.example")
                .unauthenticated_limits(small)
                .build()
                .err(),
            Some(ConfigError::LimitTooSmall {
                option: "unauthenticated_limits",
                field: "max_stanza_bytes",
                value: 100,
                min: MIN_STANZA_BYTES,
            })
        );
    }
}
