//! The rustls configuration handed to reqwest. The workspace builds reqwest
//! without a crypto provider, so one is always given here (ring's), even for
//! plain http, where it is never used.

use crate::config::HttpSettings;
use rustls::ClientConfig;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

pub fn client_config(settings: &HttpSettings, https: bool) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let builder = match &settings.ca_file {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certificates("tls.ca_file", path)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("tls.ca_file {}: {e}", path.display()))?;
            }
            builder.with_root_certificates(roots)
        }
        // The system's roots are loaded only when needed: a machine without
        // any must still be able to talk plain http.
        None if https => {
            let verifier = rustls_platform_verifier::Verifier::new(provider)
                .map_err(|e| format!("cannot load the system's CA certificates: {e}"))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        }
        None => builder.with_root_certificates(RootCertStore::empty()),
    };
    match &settings.client_identity {
        Some((cert_path, key_path)) => {
            let chain = read_certificates("tls.client_cert_file", cert_path)?;
            let key = read_key(key_path)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("tls.client_cert_file / tls.client_key_file: {e}"))
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

fn read_certificates(field: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("{field}: cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{field}: {} is not PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{field}: {} holds no PEM certificate",
            path.display()
        ));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("tls.client_key_file: cannot read {}: {e}", path.display()))?;
    // The key itself never reaches the message.
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| {
        format!(
            "tls.client_key_file: {} holds no PEM private key",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use iggy_connector_common::RetryPolicy;
    use std::time::Duration;

    fn settings() -> HttpSettings {
        HttpSettings {
            request_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            auth: None,
            ca_file: None,
            client_identity: None,
            retry: RetryPolicy::default(),
        }
    }

    #[test]
    fn plain_http_needs_no_certificates() {
        assert!(client_config(&settings(), false).is_ok());
    }

    #[test]
    fn bad_ca_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut with_missing = settings();
        with_missing.ca_file = Some(dir.path().join("missing.pem"));
        let error = client_config(&with_missing, true).unwrap_err();
        assert!(error.starts_with("tls.ca_file: cannot read"), "{error}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").unwrap();
        let mut with_empty = settings();
        with_empty.ca_file = Some(empty);
        let error = client_config(&with_empty, true).unwrap_err();
        assert!(error.contains("holds no PEM certificate"), "{error}");
    }
}
