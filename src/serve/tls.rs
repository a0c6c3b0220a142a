//! TLS: a rustls server configuration (HTTP/2 and HTTP/1.1 by ALPN) whose
//! certificate is swapped in place when its files change, as cert-manager
//! rotates them. Each handshake asks the resolver for the current
//! certificate, so new connections get the new one while established
//! connections carry on untouched: no restart, no dropped connection.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::metrics::Metrics;
use super::watch::{ChangeDetector, Fingerprint};

/// The certificate and key being served, replaced whole when the files change.
pub struct CertResolver {
    current: ArcSwap<CertifiedKey>,
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
}

impl std::fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertResolver").field("cert", &self.cert_path).field("key", &self.key_path).finish()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl CertResolver {
    /// Reads the PEM certificate chain and private key; any error (missing
    /// file, bad PEM, a key that does not match the certificate) is fatal
    /// at start-up.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<Self>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = read_certified_key(cert_path, key_path, &provider)?;
        Ok(Arc::new(Self {
            current: ArcSwap::from_pointee(key),
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            provider,
        }))
    }

    /// A server configuration that takes its certificate from this resolver
    /// and offers HTTP/2 and HTTP/1.1.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .context("the TLS library refused its default protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    fn paths(&self) -> Vec<PathBuf> {
        vec![self.cert_path.clone(), self.key_path.clone()]
    }

    /// Re-reads the files; on any error the certificate being served stays.
    fn reload(&self, metrics: &Metrics) {
        match read_certified_key(&self.cert_path, &self.key_path, &self.provider) {
            Ok(key) => {
                self.current.store(Arc::new(key));
                metrics.certificate_reload(true);
                tracing::info!(cert = %self.cert_path.display(), key = %self.key_path.display(), "TLS certificate reloaded: new connections get it");
            }
            Err(error) => {
                metrics.certificate_reload(false);
                tracing::error!(
                    error = format!("{error:#}"),
                    "TLS certificate not reloaded: the previous one is still served"
                );
            }
        }
    }

    /// Polls the two files every `interval` and reloads once a change has
    /// settled (cert-manager and the kubelet write both files at once).
    pub async fn watch(self: Arc<Self>, metrics: Arc<Metrics>, interval: Duration) {
        let paths = self.paths();
        let mut detector = ChangeDetector::new(Fingerprint::of(&paths));
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if detector.poll(Fingerprint::of(&paths)) {
                self.reload(&metrics);
            }
        }
    }
}

/// The certificate chain and its key, checked to belong together.
fn read_certified_key(cert_path: &Path, key_path: &Path, provider: &CryptoProvider) -> Result<CertifiedKey> {
    let pem =
        std::fs::read(cert_path).with_context(|| format!("cannot read TLS certificate {}", cert_path.display()))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("TLS certificate {} is not PEM", cert_path.display()))?;
    if chain.is_empty() {
        bail!(
            "TLS certificate {} holds no CERTIFICATE block: give a PEM certificate chain, server certificate first",
            cert_path.display()
        );
    }
    let pem = std::fs::read(key_path).with_context(|| format!("cannot read TLS key {}", key_path.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&pem)
        .with_context(|| format!("TLS key {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)", key_path.display()))?;
    CertifiedKey::from_der(chain, key, provider).with_context(|| {
        format!(
            "TLS key {} cannot serve certificate {} (unsupported key, or a key that does not match the certificate)",
            key_path.display(),
            cert_path.display()
        )
    })
}
