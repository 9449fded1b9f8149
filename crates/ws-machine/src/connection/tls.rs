//! TLS for `wss://`, over whatever stream the dialer opened.

use std::{io, sync::Arc};

use tokio_rustls::{TlsConnector, client::TlsStream, rustls};

use super::stream::Tracked;
use crate::{
    settings::ByteStream,
    types::{Error, with_context},
};

/// The TLS side of a `wss://` machine.
#[derive(Clone)]
pub(crate) struct Tls {
    connector: TlsConnector,
}

impl Tls {
    /// With the caller's configuration, or the default one.
    pub(crate) fn new(config: Option<Arc<rustls::ClientConfig>>) -> Self {
        Self {
            connector: TlsConnector::from(config.unwrap_or_else(default_config)),
        }
    }

    /// The TLS handshake with `host` over `stream`.
    pub(crate) async fn handshake<S: ByteStream>(
        &self,
        host: &str,
        stream: Tracked<S>,
    ) -> Result<TlsStream<Tracked<S>>, Error> {
        // The URL's host was checked when the machine was built; this is
        // reported, never a panic, all the same.
        let name =
            rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| Error::Tls {
                source: Arc::new(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{host:?} is not a valid TLS server name ({e})"),
                )),
            })?;
        self.connector
            .connect(name, stream)
            .await
            .map_err(handshake_error)
    }
}

/// The default TLS configuration: Mozilla's roots, verification on, ring.
fn default_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = match rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
            {
                Ok(builder) => builder.with_root_certificates(roots).with_no_client_auth(),
                // ring supports the safe defaults; this branch is unreachable in
                // practice but must not panic.
                Err(_) => rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            };
            Arc::new(config)
        })
        .clone()
}

/// Classifies a failed TLS handshake: certificate problems are final,
/// anything else (a reset in the middle) is retried.
fn handshake_error(error: io::Error) -> Error {
    let is_certificate_problem = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|e| {
            matches!(
                e,
                rustls::Error::InvalidCertificate(_)
                    | rustls::Error::NoCertificatesPresented
                    | rustls::Error::UnsupportedNameType
            )
        });
    if is_certificate_problem {
        // The rustls error itself is the cause, not the I/O error around it.
        match error.into_inner() {
            Some(rustls_error) => Error::Tls {
                source: Arc::from(rustls_error),
            },
            None => Error::Tls {
                source: Arc::new(io::Error::other("certificate rejected")),
            },
        }
    } else {
        Error::Handshake {
            source: with_context("TLS handshake failed", error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_problems_are_final_and_keep_the_rustls_error() {
        let bad = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let error = handshake_error(bad);
        assert!(!error.is_retryable(), "{error}");
        let Error::Tls { source } = &error else {
            panic!("expected a TLS error, got {error:?}");
        };
        assert!(
            source.downcast_ref::<rustls::Error>().is_some(),
            "{source:?}"
        );
        assert!(error.to_string().contains("UnknownIssuer"), "{error}");
    }

    #[test]
    fn other_failures_are_retried_with_their_cause() {
        let error = handshake_error(io::Error::from(io::ErrorKind::ConnectionReset));
        assert!(error.is_retryable(), "{error}");
        assert!(
            error.to_string().contains("TLS handshake failed"),
            "{error}"
        );
        let io = std::error::Error::source(&error)
            .and_then(std::error::Error::source)
            .and_then(|e| e.downcast_ref::<io::Error>())
            .expect("the I/O error in the chain");
        assert_eq!(io.kind(), io::ErrorKind::ConnectionReset);
    }
}
