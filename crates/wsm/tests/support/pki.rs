//! Certificates made for a test (rcgen), written as PEM files in a
//! temporary folder: a CA, a server certificate for 127.0.0.1, and client
//! certificates.

use std::path::PathBuf;

/// A CA and the files of what it signed, in one temporary folder.
pub struct Pki {
    dir: tempfile::TempDir,
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl Pki {
    pub fn new(name: &str) -> Self {
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("CA certificate");
        let pki = Self {
            dir: tempfile::tempdir().expect("temp dir"),
            cert,
            key,
        };
        std::fs::write(pki.path("ca.pem"), pki.cert.pem()).expect("write the CA");
        pki
    }

    /// A file of the folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The CA's certificate file.
    pub fn ca(&self) -> String {
        text(self.path("ca.pem"))
    }

    /// Writes `NAME.pem` and `NAME.key`, a certificate for `names` signed
    /// by the CA; returns their paths.
    pub fn issue(
        &self,
        file: &str,
        names: &[&str],
        usage: rcgen::ExtendedKeyUsagePurpose,
    ) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("params");
        params.extended_key_usages = vec![usage];
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("signed");
        let (cert_path, key_path) = (
            self.path(&format!("{file}.pem")),
            self.path(&format!("{file}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).expect("write the certificate");
        std::fs::write(&key_path, key.serialize_pem()).expect("write the key");
        (text(cert_path), text(key_path))
    }

    /// A server certificate for 127.0.0.1.
    pub fn server(&self) -> (String, String) {
        self.issue(
            "server",
            &["127.0.0.1"],
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate.
    pub fn client(&self) -> (String, String) {
        self.issue(
            "client",
            &["client"],
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        )
    }
}

fn text(path: PathBuf) -> String {
    path.to_str().expect("a UTF-8 path").to_owned()
}
