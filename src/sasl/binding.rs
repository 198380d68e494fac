//! Channel-binding data (RFC 5056) for the SCRAM `-PLUS` mechanisms.

use core::fmt;

/// A channel-binding type the server can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelBindingType {
    /// `tls-exporter` (RFC 9266): 32 bytes of TLS keying material exported
    /// with the label `EXPORTER-Channel-Binding` and an empty context. Only
    /// meaningful on TLS 1.3 (or TLS 1.2 with extended master secret).
    TlsExporter,
    /// `tls-server-end-point` (RFC 5929 §4): a hash of the server's leaf
    /// certificate (DER), with the certificate's signature hash, or SHA-256
    /// when that is MD5 or SHA-1.
    TlsServerEndPoint,
}

impl ChannelBindingType {
    /// Both types, in the order they are advertised.
    pub const ALL: [ChannelBindingType; 2] = [
        ChannelBindingType::TlsExporter,
        ChannelBindingType::TlsServerEndPoint,
    ];

    /// The registered name, as in a SCRAM gs2 header (`p=<name>`) and the
    /// XEP-0440 `<channel-binding type=…/>`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ChannelBindingType::TlsExporter => "tls-exporter",
            ChannelBindingType::TlsServerEndPoint => "tls-server-end-point",
        }
    }

    /// Looks a type up by its exact name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for ChannelBindingType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The channel-binding data of one TLS connection, supplied by the embedder
/// (the core never sees the TLS session). Empty by default: then no `-PLUS`
/// mechanism is offered.
///
/// `Debug` shows which types are present, not the data.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ChannelBindings {
    tls_exporter: Option<Vec<u8>>,
    tls_server_end_point: Option<Vec<u8>>,
}

impl fmt::Debug for ChannelBindings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.types()).finish()
    }
}

impl ChannelBindings {
    /// Sets the `tls-exporter` data (RFC 9266; 32 bytes). An empty value
    /// clears it.
    #[must_use]
    pub fn with_tls_exporter(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.tls_exporter = Some(data.into()).filter(|d| !d.is_empty());
        self
    }

    /// Sets the `tls-server-end-point` data (RFC 5929: the certificate
    /// hash). An empty value clears it.
    #[must_use]
    pub fn with_tls_server_end_point(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.tls_server_end_point = Some(data.into()).filter(|d| !d.is_empty());
        self
    }

    /// The data for `kind`, if supplied.
    #[must_use]
    pub fn get(&self, kind: ChannelBindingType) -> Option<&[u8]> {
        match kind {
            ChannelBindingType::TlsExporter => self.tls_exporter.as_deref(),
            ChannelBindingType::TlsServerEndPoint => self.tls_server_end_point.as_deref(),
        }
    }

    /// The types whose data is present.
    pub fn types(&self) -> impl Iterator<Item = ChannelBindingType> + '_ {
        ChannelBindingType::ALL
            .into_iter()
            .filter(|&t| self.get(t).is_some())
    }

    /// Whether no data is present.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tls_exporter.is_none() && self.tls_server_end_point.is_none()
    }
}
