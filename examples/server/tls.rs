//! TLS settings: the certificate and the rustls server configuration.
//!
//! The certificate chain and key come from PEM files (`--tls-cert`,
//! `--tls-key`); without them a self-signed certificate for the domain is
//! generated at start with rcgen, and its SHA-256 fingerprint is printed so
//! that a person can compare it with what their client shows before
//! trusting it. rustls runs with its `ring` provider, TLS 1.2 and 1.3.
//!
//! The handshakes themselves happen in [`crate::transport`]: on a direct TLS
//! listener (XEP-0368) right after accept, on the STARTTLS port when the
//! core emits `Output::StartTls`. After each handshake [`TlsSide::info`]
//! gives the core the connection's channel-binding data, which enables
//! SCRAM-SHA-256-PLUS and SCRAM-SHA-1-PLUS.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;
use xmpp_session::TlsInfo;

/// The RFC 9266 exporter label for `tls-exporter` channel binding.
const EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

/// A ready acceptor and a description of its certificate for the start line.
pub struct Tls {
    /// The acceptor with what channel binding needs.
    pub side: TlsSide,
    /// E.g. "self-signed certificate for localhost, SHA-256 AB:CD:...".
    pub describe: String,
}

/// Loads `cert` and `key` (PEM), or generates a self-signed certificate for
/// `domain` when both are `None`.
pub fn setup(domain: &str, cert: Option<&Path>, key: Option<&Path>) -> Result<Tls, String> {
    let (chain, key, describe) = match (cert, key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("{}: {e}", cert.display()))?;
            if chain.is_empty() {
                return Err(format!("{}: no certificate in it", cert.display()));
            }
            let describe = format!(
                "certificate {} (SHA-256 {})",
                cert.display(),
                fingerprint(&chain[0])
            );
            let key =
                PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
            (chain, key, describe)
        }
        (None, None) => {
            let generated = rcgen::generate_simple_self_signed(vec![domain.to_owned()])
                .map_err(|e| format!("cannot generate a certificate for {domain}: {e}"))?;
            let der = generated.cert.der().clone();
            let describe = format!(
                "self-signed certificate for {domain} generated at start (SHA-256 {})",
                fingerprint(&der)
            );
            let key = PrivatePkcs8KeyDer::from(generated.signing_key.serialize_der());
            (vec![der], key.into(), describe)
        }
        _ => return Err("--tls-cert and --tls-key go together".to_owned()),
    };
    let end_point: Arc<[u8]> = Arc::from(Sha256::digest(chain[0].as_ref()).as_slice());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("TLS certificate: {e}"))?;
    Ok(Tls {
        side: TlsSide {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            end_point,
        },
        describe,
    })
}

/// The TLS side of a listener: the acceptor and the `tls-server-end-point`
/// hash of its certificate.
#[derive(Clone)]
pub struct TlsSide {
    /// Runs server handshakes.
    pub acceptor: TlsAcceptor,
    /// RFC 5929: SHA-256 of the leaf certificate's DER. SHA-256 is right
    /// for certificates signed with SHA-256 (the generated one, and most
    /// issued today); a certificate signed with SHA-384 or SHA-512 would
    /// need that hash instead.
    end_point: Arc<[u8]>,
}

impl TlsSide {
    /// The channel-binding data of a finished handshake: `tls-exporter`
    /// (RFC 9266, TLS 1.3 only) and `tls-server-end-point`.
    pub fn info(&self, conn: &rustls::ServerConnection) -> TlsInfo {
        let info = TlsInfo::default().with_tls_server_end_point(self.end_point.to_vec());
        if conn.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
            return info;
        }
        match conn.export_keying_material([0u8; 32], EXPORTER_LABEL, Some(b"")) {
            Ok(exported) => info.with_tls_exporter(exported.to_vec()),
            Err(_) => info,
        }
    }
}

/// The SHA-256 fingerprint of a certificate, as clients show it (AB:CD:...).
fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = Sha256::digest(cert.as_ref());
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}
