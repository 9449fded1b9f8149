//! `wss://` against a local TLS WebSocket server with a self-signed
//! certificate for 127.0.0.1: trusted through `tls_config`, it works; with
//! the default roots, the certificate is refused with a final error.

mod common;

use std::sync::Arc;

use common::{WAIT, connect, recv, shutdown};

use futures_util::{SinkExt, StreamExt};
use tokio::{net::TcpListener, time::timeout};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        self, RootCertStore, ServerConfig,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    },
};
use ws_machine::{Error, Machine, Message, State};

struct TlsEcho {
    url: String,
    certificate: CertificateDer<'static>,
}

/// A TLS echo server on 127.0.0.1 that serves connections until the test
/// ends.
async fn tls_echo_server() -> TlsEcho {
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("certificate");
    let certificate = cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![certificate.clone()], key)
            .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("wss://{}/", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok((_, mut ws)) = tokio_websockets::ServerBuilder::new().accept(tls).await
                else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
    TlsEcho { url, certificate }
}

#[tokio::test]
async fn wss_works_with_a_trusted_certificate() {
    let server = tls_echo_server().await;
    let mut roots = RootCertStore::empty();
    roots.add(server.certificate.clone()).expect("root");
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut machine = connect(Machine::builder(&server.url).tls_config(Arc::new(tls))).await;
    machine
        .output
        .send(Message::text("over TLS"))
        .await
        .expect("running");
    let echo = recv(&mut machine).await;
    assert_eq!(echo.as_text(), Some("over TLS"));
    let leftovers = shutdown(machine).await;
    assert!(leftovers.unsent.is_empty());
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_final_error() {
    let server = tls_echo_server().await;
    let mut machine = Machine::new(&server.url, http::HeaderMap::new()).expect("valid");
    let mut last = None;
    while let Some(status) = timeout(WAIT, machine.status.recv()).await.expect("in time") {
        last = Some(status);
    }
    let last = last.expect("statuses");
    assert_eq!(last.state, State::Disconnected);
    assert!(last.is_final());
    match last.error {
        Some(Error::Tls { source }) => {
            // The cause is rustls' own error, kept as the source.
            let rustls_error = source
                .downcast_ref::<ws_machine::rustls::Error>()
                .unwrap_or_else(|| panic!("not a rustls error: {source:?}"));
            assert!(
                rustls_error.to_string().contains("certificate"),
                "{rustls_error}"
            );
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
}
