//! TLS for `wss://`, over whatever stream the dialer (or a proxy's tunnel)
//! opened; and the reading of TLS failures, which say what failed.

use std::{io, sync::Arc};

use tokio_rustls::{
    TlsConnector,
    client::TlsStream,
    rustls::{self, AlertDescription, CertificateError, pki_types::ServerName},
};

use super::stream::Tracked;
use crate::{
    settings::{ByteStream, mozilla_roots, tls_client_config},
    types::{Error, TlsProblem, with_context},
};

/// The TLS side of a `wss://` machine: its configuration (a pointer; the
/// connector is made for each handshake).
#[derive(Clone)]
pub(crate) struct Tls {
    config: Arc<rustls::ClientConfig>,
}

impl Tls {
    /// With the caller's configuration, or the default one.
    pub(crate) fn new(config: Option<Arc<rustls::ClientConfig>>) -> Self {
        Self {
            config: config.unwrap_or_else(default_config),
        }
    }

    /// The TLS handshake over `stream`, checking the certificate against
    /// `name` (the URL's host, or the server name the caller set).
    pub(crate) async fn handshake<S: ByteStream>(
        &self,
        name: Result<ServerName<'static>, Error>,
        stream: Tracked<S>,
    ) -> Result<TlsStream<Tracked<S>>, Error> {
        TlsConnector::from(Arc::clone(&self.config))
            .connect(name?, stream)
            .await
            .map_err(handshake_error)
    }
}

/// The URL's host as a TLS server name. The URL's host was checked when
/// the machine was built; this is reported, never a panic, all the same.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(host.to_owned()).map_err(|e| Error::Tls {
        problem: TlsProblem::ServerName,
        source: Arc::new(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{host:?} is not a valid TLS server name ({e})"),
        )),
    })
}

/// The default TLS configuration: Mozilla's roots, verification on, ring.
fn default_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let config = tls_client_config(mozilla_roots(), None).unwrap_or_else(|_| {
                // ring supports the safe defaults; this branch is
                // unreachable in practice but must not panic.
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth()
            });
            Arc::new(config)
        })
        .clone()
}

/// Classifies a failed TLS handshake: certificate problems are final,
/// anything else (a reset in the middle) is retried.
fn handshake_error(error: io::Error) -> Error {
    match final_tls_error(error) {
        Ok(error) => error,
        Err(other) => Error::Handshake {
            source: with_context("TLS handshake failed", other),
        },
    }
}

/// A TLS failure that retrying will not fix, read from an I/O error that
/// carries rustls' error: a certificate the client rejects, or an alert
/// from the server saying it rejects the client's certificate (with TLS
/// 1.3 that alert comes after the client's side of the handshake is done,
/// so it surfaces during the upgrade). Anything else is handed back.
pub(crate) fn final_tls_error(error: io::Error) -> Result<Error, io::Error> {
    let Some(problem) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .and_then(problem)
    else {
        return Err(error);
    };
    // The rustls error itself is the cause, not the I/O error around it.
    Ok(match error.into_inner() {
        Some(rustls_error) => Error::Tls {
            problem,
            source: Arc::from(rustls_error),
        },
        None => Error::Tls {
            problem,
            source: Arc::new(io::Error::other("certificate rejected")),
        },
    })
}

/// What a rustls error says went wrong, if it is final.
fn problem(error: &rustls::Error) -> Option<TlsProblem> {
    match error {
        rustls::Error::InvalidCertificate(e) => Some(match e {
            CertificateError::UnknownIssuer => TlsProblem::UnknownIssuer,
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => TlsProblem::Expired,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsProblem::NameMismatch
            }
            _ => TlsProblem::Certificate,
        }),
        rustls::Error::NoCertificatesPresented | rustls::Error::UnsupportedNameType => {
            Some(TlsProblem::Certificate)
        }
        // Alerts a server sends when it rejects the client's certificate
        // (or needs one).
        rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied,
        ) => Some(TlsProblem::ClientCertificateRefused),
        rustls::Error::PeerIncompatible(_)
        | rustls::Error::AlertReceived(AlertDescription::ProtocolVersion) => {
            Some(TlsProblem::Incompatible)
        }
        // Transient, or not about the configuration: retried.
        _ => None,
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
        let Error::Tls { source, problem } = &error else {
            panic!("expected a TLS error, got {error:?}");
        };
        assert!(
            source.downcast_ref::<rustls::Error>().is_some(),
            "{source:?}"
        );
        assert_eq!(*problem, TlsProblem::UnknownIssuer);
        assert!(error.to_string().contains("UnknownIssuer"), "{error}");
        assert!(
            error.to_string().contains("not signed by a trusted CA"),
            "{error}"
        );
    }

    #[test]
    fn each_problem_is_named() {
        let cases = [
            (
                rustls::Error::InvalidCertificate(CertificateError::Expired),
                TlsProblem::Expired,
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
                TlsProblem::NameMismatch,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
                TlsProblem::ClientCertificateRefused,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::UnknownCA),
                TlsProblem::ClientCertificateRefused,
            ),
            (
                rustls::Error::PeerIncompatible(rustls::PeerIncompatible::NoCipherSuitesInCommon),
                TlsProblem::Incompatible,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::ProtocolVersion),
                TlsProblem::Incompatible,
            ),
        ];
        for (rustls_error, expected) in cases {
            let error = final_tls_error(io::Error::new(io::ErrorKind::InvalidData, rustls_error))
                .expect("final");
            assert!(
                matches!(error, Error::Tls { problem, .. } if problem == expected),
                "{error}"
            );
            assert!(!error.is_retryable());
        }
        let other = rustls::Error::AlertReceived(AlertDescription::InternalError);
        assert!(final_tls_error(io::Error::new(io::ErrorKind::InvalidData, other)).is_err());
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
