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
/// Build it with [`Config::builder`]; every field has a documented default.
#[derive(Debug, Clone)]
pub struct Config {
    /// The domains this server serves (the first is the primary one).
    pub hosts: Vec<String>,
    /// Refuse SASL until the stream is encrypted. Default `true`.
    pub require_tls: bool,
    /// Offer PLAIN on an unencrypted stream. Default `false`.
    pub allow_plain_without_tls: bool,
    /// Mechanisms to offer, strongest first. Default SCRAM-SHA-256,
    /// SCRAM-SHA-1, PLAIN.
    pub mechanisms: Vec<Mechanism>,
    /// Failed SASL attempts allowed on one connection before it is closed
    /// with `policy-violation` (RFC 6120 §6.4.5 suggests 2 to 5). Default 3.
    pub max_auth_failures: u32,
    /// Limits for an authenticated stream. Default: 262144-byte stanzas
    /// (as Prosody), depth 64, 64 attributes per element, 262144-byte text.
    pub limits: XmlLimits,
    /// Limits before authentication. Default: 10000-byte stanzas (as
    /// Prosody 0.12), other limits as [`Config::limits`].
    pub unauthenticated_limits: XmlLimits,
    /// Close a connection that has not authenticated after this long with
    /// `connection-timeout`. Default 5 minutes (Prosody's `c2s_timeout`).
    pub auth_timeout: Duration,
    /// Resource conflict policy. Default [`ConflictPolicy::KickOld`].
    pub conflict_policy: ConflictPolicy,
    /// Connected resources allowed per account; binding beyond it gets
    /// `resource-constraint`. Default 64.
    pub max_resources_per_user: usize,
    /// Idle time advertised in XEP-0478 stream limits. Default 840 s.
    pub idle_seconds: u32,
    /// Store chat/normal messages for users without a top resource and
    /// deliver them at their next initial presence. Default `true`.
    pub offline_storage: bool,
    /// Stanzas parked per user while storage answers. Default 1024.
    pub max_parked_per_user: usize,
    /// Software name reported by XEP-0092 (`None` answers
    /// `service-unavailable`). Default `Some("xmpp-session")`.
    pub software_name: Option<String>,
    /// Software version reported by XEP-0092, if a name is set. Default the
    /// crate version.
    pub software_version: Option<String>,
    /// Operating system reported by XEP-0092. Default `None`.
    pub software_os: Option<String>,
    /// Iterations used when deriving SCRAM keys from passwords. Default 4096.
    pub scram_iterations: u32,
    /// Roster items plus pending inbound requests per account; a roster set
    /// beyond it gets `resource-constraint`, further inbound requests are
    /// dropped. Default 10000.
    pub max_roster_items: usize,
    /// Directed-presence recipients remembered per session; beyond it,
    /// directed presence is still delivered but no longer tracked for the
    /// unavailable on logout. Default 1000.
    pub max_directed_presence: usize,
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
                idle_seconds: 840,
                offline_storage: true,
                max_parked_per_user: 1024,
                software_name: Some("xmpp-session".to_owned()),
                software_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
                software_os: None,
                scram_iterations: 4096,
                max_roster_items: 10_000,
                max_directed_presence: 1000,
            },
        }
    }

    /// Whether `host` (already normalised) is served here.
    pub fn serves(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h == host)
    }
}

/// Builder for [`Config`].
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
    /// See [`Config::mechanisms`].
    pub fn mechanisms(mut self, mechanisms: &[Mechanism]) -> Self {
        self.config.mechanisms = mechanisms.to_vec();
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
    /// See [`Config::scram_iterations`].
    pub fn scram_iterations(mut self, n: u32) -> Self {
        self.config.scram_iterations = n;
        self
    }
    /// See [`Config::max_roster_items`].
    pub fn max_roster_items(mut self, n: usize) -> Self {
        self.config.max_roster_items = n;
        self
    }
    /// See [`Config::max_directed_presence`].
    pub fn max_directed_presence(mut self, n: usize) -> Self {
        self.config.max_directed_presence = n;
        self
    }
    /// The finished configuration.
    pub fn build(self) -> Config {
        self.config
    }
}
