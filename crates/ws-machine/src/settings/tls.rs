//! The TLS options of the builder (trusted CAs, the system's trust store, a
//! client certificate) and the rustls configuration they make.
//!
//! Files are read and PEM is parsed once, when the machine is built, so a
//! missing file or a key that does not fit its certificate is an error the
//! caller sees at once, never a loop of failing attempts.

use std::{
    fmt,
    path::PathBuf,
    sync::{Arc, OnceLock},
};

use tokio_rustls::rustls::{
    self, RootCertStore,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};

use crate::types::Error;

/// PEM text, given as bytes or as a file to read.
#[derive(Clone)]
pub(crate) enum Pem {
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl fmt::Debug for Pem {
    // A private key's PEM is a secret: only where it comes from is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "File({})", path.display()),
            Self::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
        }
    }
}

impl Pem {
    fn read(&self, option: &'static str) -> Result<Vec<u8>, Error> {
        match self {
            Self::Bytes(bytes) => Ok(bytes.clone()),
            Self::File(path) => std::fs::read(path).map_err(|e| Error::InvalidConfig {
                option,
                reason: format!("cannot read {}: {e}", path.display()),
            }),
        }
    }

    /// Where it comes from, for messages.
    fn origin(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Bytes(_) => "the PEM given".to_owned(),
        }
    }
}

/// The TLS options set on the builder.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsOptions {
    /// CAs to trust, each PEM with one or more certificates.
    pub(crate) cas: Vec<Pem>,
    /// Trust the operating system's store too.
    pub(crate) native_roots: bool,
    /// A client certificate chain and its private key.
    pub(crate) client_cert: Option<(Pem, Pem)>,
}

impl TlsOptions {
    fn is_set(&self) -> bool {
        !self.cas.is_empty() || self.native_roots || self.client_cert.is_some()
    }

    /// The configuration these options make; `None` when none is set (the
    /// default configuration applies).
    ///
    /// Roots: the CAs given and, with `native_roots`, the system's store;
    /// the Mozilla roots only when neither is given (a CA of one's own
    /// replaces them, as curl's `--cacert` does).
    pub(crate) fn build(&self) -> Result<Option<Arc<rustls::ClientConfig>>, Error> {
        if !self.is_set() {
            return Ok(None);
        }
        if self.cas.is_empty() && self.native_roots && self.client_cert.is_none() {
            // The same for every machine: built once per process.
            static NATIVE: OnceLock<Result<Arc<rustls::ClientConfig>, Error>> = OnceLock::new();
            return NATIVE
                .get_or_init(|| Ok(Arc::new(config(native_roots()?, None)?)))
                .clone()
                .map(Some);
        }
        let mut roots = if self.native_roots {
            native_roots()?
        } else {
            RootCertStore::empty()
        };
        for ca in &self.cas {
            add_cas(&mut roots, ca)?;
        }
        if roots.is_empty() {
            roots = mozilla_roots();
        }
        let client = self
            .client_cert
            .as_ref()
            .map(|(cert, key)| client_cert(cert, key))
            .transpose()?;
        Ok(Some(Arc::new(config(roots, client)?)))
    }
}

type ClientCert = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// A client configuration with ring, the safe protocol versions, these
/// roots and, if given, a client certificate.
pub(crate) fn config(
    roots: RootCertStore,
    client: Option<ClientCert>,
) -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::InvalidConfig {
            option: "tls",
            reason: format!("the TLS provider refuses the default versions ({e})"),
        })?
        .with_root_certificates(roots);
    match client {
        None => Ok(builder.with_no_client_auth()),
        Some((chain, key)) => {
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::InvalidConfig {
                    option: "client_cert_files",
                    reason: format!("the client certificate and key cannot be used ({e})"),
                })
        }
    }
}

/// Mozilla's roots, from `webpki-roots`.
pub(crate) fn mozilla_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// The operating system's trust store (`rustls-native-certs`; on Linux it
/// honours `SSL_CERT_FILE` and `SSL_CERT_DIR`).
fn native_roots() -> Result<RootCertStore, Error> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map_or_else(|| "it is empty".to_owned(), ToString::to_string);
        return Err(Error::InvalidConfig {
            option: "native_roots",
            reason: format!("no usable certificate in the system's trust store ({why})"),
        });
    }
    Ok(roots)
}

fn add_cas(roots: &mut RootCertStore, pem: &Pem) -> Result<(), Error> {
    let option = if matches!(pem, Pem::File(_)) {
        "ca_file"
    } else {
        "ca_pem"
    };
    let bytes = pem.read(option)?;
    let invalid = |reason: String| Error::InvalidConfig { option, reason };
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("{} is not valid PEM ({e})", pem.origin())))?;
    if certs.is_empty() {
        return Err(invalid(format!(
            "{} holds no certificate (expected -----BEGIN CERTIFICATE-----)",
            pem.origin()
        )));
    }
    for cert in certs {
        roots.add(cert).map_err(|e| {
            invalid(format!(
                "{} holds a certificate rustls cannot use as a CA ({e})",
                pem.origin()
            ))
        })?;
    }
    Ok(())
}

fn client_cert(cert: &Pem, key: &Pem) -> Result<ClientCert, Error> {
    let option = "client_cert_files";
    let invalid = |reason: String| Error::InvalidConfig { option, reason };
    let cert_bytes = cert.read(option)?;
    let chain = CertificateDer::pem_slice_iter(&cert_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("{} is not valid PEM ({e})", cert.origin())))?;
    if chain.is_empty() {
        return Err(invalid(format!(
            "{} holds no certificate (expected -----BEGIN CERTIFICATE-----)",
            cert.origin()
        )));
    }
    let key_bytes = key.read(option)?;
    // The parser's error may quote the input: it is not repeated.
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|_| {
        invalid(format!(
            "{} holds no usable private key (expected PEM: PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
            key.origin()
        ))
    })?;
    Ok((chain, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> (String, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("CA");
        (cert.pem(), key)
    }

    #[test]
    fn nothing_set_means_the_default_configuration() {
        assert!(TlsOptions::default().build().expect("valid").is_none());
    }

    #[test]
    fn a_ca_from_pem_bytes_and_a_client_certificate_make_a_configuration() {
        let (ca_pem, key) = ca();
        let options = TlsOptions {
            cas: vec![Pem::Bytes(ca_pem.clone().into_bytes())],
            native_roots: false,
            client_cert: Some((
                Pem::Bytes(ca_pem.into_bytes()),
                Pem::Bytes(key.serialize_pem().into_bytes()),
            )),
        };
        let config = options.build().expect("valid").expect("a configuration");
        assert!(config.client_auth_cert_resolver.has_certs());
    }

    #[test]
    fn bad_pem_is_a_configuration_error_that_names_the_file() {
        let dir = std::env::temp_dir().join(format!("wsm-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not pem").expect("write");
        let cases = [
            (Pem::File(dir.join("missing.pem")), "cannot read"),
            (Pem::File(empty.clone()), "holds no certificate"),
        ];
        for (pem, hint) in cases {
            let options = TlsOptions {
                cas: vec![pem],
                ..TlsOptions::default()
            };
            let err = options.build().expect_err("refused").to_string();
            assert!(err.contains("ca_file") && err.contains(hint), "{err}");
        }
        let (ca_pem, _) = ca();
        let secret_key = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n";
        let options = TlsOptions {
            client_cert: Some((
                Pem::Bytes(ca_pem.into_bytes()),
                Pem::Bytes(secret_key.into()),
            )),
            ..TlsOptions::default()
        };
        let err = options.build().expect_err("refused").to_string();
        assert!(err.contains("client certificate"), "{err}");
        assert!(!err.contains("c2VjcmV0"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn pem_debug_hides_the_bytes() {
        let shown = format!(
            "{:?}",
            Pem::Bytes(b"-----BEGIN PRIVATE KEY-----s3cret".to_vec())
        );
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
