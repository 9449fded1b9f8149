//! `wss://` against a local TLS WebSocket server with a certificate from a
//! CA made in the test: trusted through `tls_config`, it works; with the
//! default roots, the certificate is refused with a final error.

mod common;
mod pki;

use std::sync::Arc;

use common::{WAIT, connect, recv, shutdown};

use tokio::time::timeout;
use tokio_rustls::rustls::{self, RootCertStore};
use ws_machine::{Error, Machine, Message, State};

struct TlsEcho {
    url: String,
    ca: pki::Ca,
}

/// A TLS echo server on 127.0.0.1 that serves connections until the test
/// ends, with a certificate for 127.0.0.1.
async fn tls_echo_server() -> TlsEcho {
    tls_echo_server_for("127.0.0.1").await
}

/// The same, with a certificate for `name`.
async fn tls_echo_server_for(name: &str) -> TlsEcho {
    let ca = pki::Ca::new("test CA");
    let port = pki::tls_echo(&ca.server(&[name]), None).await;
    TlsEcho {
        url: format!("wss://127.0.0.1:{port}/"),
        ca,
    }
}

/// A client configuration that trusts the server's certificate.
fn trusting(server: &TlsEcho) -> Arc<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(server.ca.der()).expect("root");
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(tls)
}

#[tokio::test]
async fn wss_works_with_a_trusted_certificate() {
    let server = tls_echo_server().await;
    let mut machine = connect(Machine::builder(&server.url).tls_config(trusting(&server))).await;
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
        Some(Error::Tls { source, .. }) => {
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

/// TLS runs over whatever the dialer opened, and checks the certificate
/// against the URL's host, not against where the dialer connected.
#[tokio::test]
async fn wss_runs_over_a_custom_dialer_and_verifies_the_url_host() {
    let server = tls_echo_server_for("feed.test").await;
    let port: u16 = server
        .url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port in the URL");
    let dial = |to: ws_machine::Endpoint| tokio::net::TcpStream::connect(("127.0.0.1", to.port()));
    let mut machine = connect(
        Machine::builder(format!("wss://feed.test:{port}/"))
            .tls_config(trusting(&server))
            .dialer(dial),
    )
    .await;
    machine
        .output
        .send(Message::text("dialed, then TLS"))
        .await
        .expect("running");
    assert_eq!(recv(&mut machine).await.as_text(), Some("dialed, then TLS"));
    shutdown(machine).await;

    // The same server under another name: its certificate does not match.
    let mut wrong_name = Machine::builder(format!("wss://other.test:{port}/"))
        .tls_config(trusting(&server))
        .dialer(dial)
        .spawn()
        .expect("valid options");
    let mut last = None;
    while let Some(status) = timeout(WAIT, wrong_name.status.recv())
        .await
        .expect("in time")
    {
        last = Some(status);
    }
    let last = last.expect("statuses");
    assert!(last.is_final(), "{last}");
    assert!(matches!(last.error, Some(Error::Tls { .. })), "{last}");
}
