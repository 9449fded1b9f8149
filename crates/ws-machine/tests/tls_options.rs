//! The TLS options against a local TLS server whose certificates come from
//! a CA made in the test: the CA trusted from PEM bytes or a file, a server
//! name override, mutual TLS, and each failure named (unknown issuer,
//! expired, name mismatch, client certificate refused: all final), and a
//! `ws://` URL pointed at the TLS port told that TLS may be needed.

mod common;
mod pki;

use common::{connect, echo, fast, shutdown, wait_for_final};
use pki::{Ca, tls_echo};
use ws_machine::{Error, Machine, Status, TlsProblem};

/// The final status of a machine that cannot connect.
async fn final_status(mut machine: Machine) -> Status {
    wait_for_final(&mut machine).await
}

fn problem(status: &Status) -> TlsProblem {
    match &status.error {
        Some(Error::Tls { problem, source }) => {
            assert!(
                source.downcast_ref::<ws_machine::rustls::Error>().is_some(),
                "the cause is rustls' error: {source:?}"
            );
            *problem
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_ca_from_pem_bytes_or_a_file_is_trusted() {
    let ca = Ca::new("test CA");
    let port = tls_echo(&ca.server(&["127.0.0.1"]), None).await;
    let url = format!("wss://127.0.0.1:{port}/");

    let mut machine = connect(fast(&url).ca_pem(ca.pem())).await;
    echo(&mut machine, "trusted from PEM").await;
    shutdown(machine).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("ca.pem");
    std::fs::write(&file, ca.pem()).expect("write the CA");
    let mut machine = connect(fast(&url).ca_file(&file)).await;
    echo(&mut machine, "trusted from a file").await;
    shutdown(machine).await;
}

#[tokio::test]
async fn an_unknown_issuer_is_named_and_final() {
    let ca = Ca::new("test CA");
    let port = tls_echo(&ca.server(&["127.0.0.1"]), None).await;
    // The Mozilla roots, then another CA: neither signed the certificate.
    for builder in [
        fast(format!("wss://127.0.0.1:{port}/")),
        fast(format!("wss://127.0.0.1:{port}/")).ca_pem(Ca::new("other CA").pem()),
    ] {
        let last = final_status(builder.spawn().expect("valid options")).await;
        assert_eq!(problem(&last), TlsProblem::UnknownIssuer, "{last}");
        assert!(
            last.to_string().contains("not signed by a trusted CA"),
            "{last}"
        );
    }
}

#[tokio::test]
async fn an_expired_certificate_is_named_and_final() {
    let ca = Ca::new("test CA");
    let port = tls_echo(&ca.expired_server(&["127.0.0.1"]), None).await;
    let machine = fast(format!("wss://127.0.0.1:{port}/"))
        .ca_pem(ca.pem())
        .spawn()
        .expect("valid options");
    let last = final_status(machine).await;
    assert_eq!(problem(&last), TlsProblem::Expired, "{last}");
    assert!(last.to_string().contains("expired"), "{last}");
}

#[tokio::test]
async fn a_name_mismatch_is_named_and_the_server_name_can_be_set() {
    let ca = Ca::new("test CA");
    let port = tls_echo(&ca.server(&["feed.internal.test"]), None).await;
    let url = format!("wss://127.0.0.1:{port}/");
    let machine = fast(&url).ca_pem(ca.pem()).spawn().expect("valid options");
    let last = final_status(machine).await;
    assert_eq!(problem(&last), TlsProblem::NameMismatch, "{last}");
    assert!(
        last.to_string().contains("not valid for this host name"),
        "{last}"
    );

    // The certificate's name, checked instead of the URL's address.
    let mut machine = connect(
        fast(&url)
            .ca_pem(ca.pem())
            .tls_server_name("feed.internal.test"),
    )
    .await;
    echo(&mut machine, "by name").await;
    shutdown(machine).await;
}

#[tokio::test]
async fn mutual_tls_works_and_a_refused_client_certificate_is_final() {
    let ca = Ca::new("test CA");
    let port = tls_echo(&ca.server(&["127.0.0.1"]), Some(&ca)).await;
    let url = format!("wss://127.0.0.1:{port}/");

    let client = ca.client("client-1");
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = (dir.path().join("client.pem"), dir.path().join("client.key"));
    std::fs::write(&cert, &client.cert_pem).expect("write");
    std::fs::write(&key, &client.key_pem).expect("write");
    let mut machine = connect(fast(&url).ca_pem(ca.pem()).client_cert_files(&cert, &key)).await;
    echo(&mut machine, "mutual").await;
    shutdown(machine).await;

    // No certificate, or one from a CA the server does not trust.
    let stranger = Ca::new("stranger CA").client("client-2");
    for builder in [
        fast(&url).ca_pem(ca.pem()),
        fast(&url)
            .ca_pem(ca.pem())
            .client_cert_pem(stranger.cert_pem.clone(), stranger.key_pem.clone()),
    ] {
        let last = final_status(builder.spawn().expect("valid options")).await;
        assert_eq!(
            problem(&last),
            TlsProblem::ClientCertificateRefused,
            "{last}"
        );
        assert!(
            last.to_string().contains("refused the client certificate"),
            "{last}"
        );
    }
}

#[tokio::test]
async fn ws_to_a_tls_port_says_tls_may_be_needed() {
    let ca = Ca::new("test CA");
    let port = tls_echo(&ca.server(&["127.0.0.1"]), None).await;
    let machine = fast(format!("ws://127.0.0.1:{port}/"))
        .reconnect(false)
        .spawn()
        .expect("valid options");
    let last = final_status(machine).await;
    assert!(
        matches!(last.error, Some(Error::Handshake { .. })),
        "{last}"
    );
    assert!(
        last.to_string()
            .contains("the server answered in TLS: use a wss:// URL"),
        "{last}"
    );
}

#[tokio::test]
async fn tls_options_and_a_whole_configuration_do_not_mix() {
    let ca = Ca::new("test CA");
    let config = ws_machine::rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        ws_machine::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(ws_machine::rustls::RootCertStore::empty())
    .with_no_client_auth();
    let err = Machine::builder("wss://127.0.0.1:9/")
        .ca_pem(ca.pem())
        .tls_config(std::sync::Arc::new(config))
        .spawn()
        .expect_err("refused");
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                option: "tls_config",
                ..
            }
        ),
        "{err}"
    );
}
