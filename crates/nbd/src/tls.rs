//! TLS for `nbds://` and `nbds+unix://` (`docs/nbd.md` §3, §10): after the greeting the
//! client sends `NBD_OPT_STARTTLS`, and on the server's ACK runs a TLS handshake over the
//! same socket; every later option and all of transmission go through it. Certificates
//! are X.509 in PEM files laid out as QEMU's `tls-creds-x509` and libnbd expect them: the
//! directory named by `?tls-certificates=DIR` holds `ca-cert.pem` (the authority the
//! server's certificate must chain to) and, when the server checks its clients,
//! `client-cert.pem` and `client-key.pem`. The server's certificate must name the URI's
//! host (`localhost` for a Unix socket). rustls with the ring provider does the work.

use crate::error::{NbdError, Result};
use crate::wire::Transport;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::path::Path;
use std::sync::Arc;

/// The file of the certificate authority in the certificates directory.
pub const CA_CERT: &str = "ca-cert.pem";
/// The client's certificate (optional, with [`CLIENT_KEY`]).
pub const CLIENT_CERT: &str = "client-cert.pem";
/// The client's private key (optional, with [`CLIENT_CERT`]).
pub const CLIENT_KEY: &str = "client-key.pem";

/// What a TLS connection needs: the configuration built from the certificates directory
/// and the name the server's certificate must carry.
#[derive(Clone)]
pub struct Tls {
    config: Arc<ClientConfig>,
    hostname: String,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("hostname", &self.hostname)
            .finish()
    }
}

impl Tls {
    /// Reads the certificates in `dir` for a server called `hostname`.
    pub fn new(dir: &Path, hostname: &str) -> Result<Tls> {
        let bad = |reason: String| NbdError::Tls {
            during: format!("reading the certificates in {}", dir.display()),
            reason,
        };
        let ca = dir.join(CA_CERT);
        let mut roots = RootCertStore::empty();
        for cert in
            CertificateDer::pem_file_iter(&ca).map_err(|e| bad(format!("{}: {e}", ca.display())))?
        {
            let cert = cert.map_err(|e| bad(format!("{}: {e}", ca.display())))?;
            roots
                .add(cert)
                .map_err(|e| bad(format!("{}: {e}", ca.display())))?;
        }
        if roots.is_empty() {
            return Err(bad(format!("{} holds no certificate", ca.display())));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(e.to_string()))?
            .with_root_certificates(roots);
        let (cert, key) = (dir.join(CLIENT_CERT), dir.join(CLIENT_KEY));
        let config = if cert.exists() || key.exists() {
            let chain = CertificateDer::pem_file_iter(&cert)
                .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| bad(format!("{}: {e}", cert.display())))?;
            let key_der = PrivateKeyDer::from_pem_file(&key)
                .map_err(|e| bad(format!("{}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| bad(e.to_string()))?
        } else {
            builder.with_no_client_auth()
        };
        Ok(Tls {
            config: Arc::new(config),
            hostname: hostname.to_string(),
        })
    }

    /// Runs the TLS handshake over `io` (right after the server's ACK to
    /// `NBD_OPT_STARTTLS`) and returns the encrypted stream.
    pub fn wrap(&self, io: Box<dyn Transport>) -> Result<Box<dyn Transport>> {
        let during = || format!("TLS handshake with {}", self.hostname);
        let name = ServerName::try_from(self.hostname.clone()).map_err(|e| NbdError::Tls {
            during: during(),
            reason: format!("{:?} is not a server name: {e}", self.hostname),
        })?;
        let conn = ClientConnection::new(self.config.clone(), name).map_err(|e| NbdError::Tls {
            during: during(),
            reason: e.to_string(),
        })?;
        let mut stream = StreamOwned::new(conn, io);
        // Finish the handshake now, so a certificate the client refuses is said as such.
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::InvalidData => NbdError::Tls {
                        during: during(),
                        reason: e.to_string(),
                    },
                    _ => NbdError::io(during(), e),
                })?;
        }
        Ok(Box::new(stream))
    }
}

/// The TLS configuration of `diskray serve`: its certificate chain and key (PEM), and,
/// when given, the authority every client's certificate must chain to (clients without
/// one are refused); without it clients are not asked for certificates.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<rustls::ServerConfig>> {
    let bad = |file: &Path, reason: String| NbdError::Tls {
        during: format!("reading {}", file.display()),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| bad(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(bad(cert, "no certificate in it".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(cert, e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca).map_err(|e| bad(ca, e.to_string()))? {
                let c = c.map_err(|e| bad(ca, e.to_string()))?;
                roots.add(c).map_err(|e| bad(ca, e.to_string()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| bad(ca, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(chain, key_der)
        .map_err(|e| bad(key, e.to_string()))?;
    Ok(Arc::new(config))
}
