//! `native_roots`: the operating system's trust store, which on Linux
//! `rustls-native-certs` reads from the file `SSL_CERT_FILE` names. This
//! binary holds one test, which sets that variable before any thread is
//! started (the store is read once per process) and restores it after.

mod common;
mod pki;

use common::{echo, fast, shutdown, wait_for_state};
use pki::{Ca, tls_echo};
use ws_machine::State;

#[test]
fn the_systems_trust_store_is_used() {
    let ca = Ca::new("system CA");
    let dir = tempfile::tempdir().expect("temp dir");
    let bundle = dir.path().join("bundle.pem");
    std::fs::write(&bundle, ca.pem()).expect("write the bundle");
    let before = std::env::var_os("SSL_CERT_FILE");
    // SAFETY: the only test of this binary, before its runtime starts: no
    // other thread reads the environment meanwhile.
    unsafe { std::env::set_var("SSL_CERT_FILE", &bundle) };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let port = tls_echo(&ca.server(&["127.0.0.1"]), None).await;
        let url = format!("wss://127.0.0.1:{port}/");
        // The Mozilla roots alone do not know this CA: the store does.
        let mut machine = fast(&url)
            .native_roots(true)
            .spawn()
            .expect("valid options");
        wait_for_state(&mut machine, State::Connected).await;
        echo(&mut machine, "trusted by the system").await;
        shutdown(machine).await;
    });
    drop(runtime);

    // SAFETY: as above; the runtime and its threads are gone.
    unsafe {
        match before {
            Some(value) => std::env::set_var("SSL_CERT_FILE", value),
            None => std::env::remove_var("SSL_CERT_FILE"),
        }
    }
}
