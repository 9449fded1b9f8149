//! `wsm connect`'s proxy and TLS flags, run as a process: a real TLS peer
//! (Python `websockets` over OpenSSL) with a CA made in the test, a
//! subprotocol it chooses, mutual TLS, `--insecure` and its warning; and
//! real proxies (tinyproxy), from `--proxy` and from the environment, with
//! `--noproxy` and `NO_PROXY`.

mod support;

#[path = "../../ws-machine/tests/proxies/mod.rs"]
mod proxies;

use proxies::{CONNECT, PASSWORD, free_port, tinyproxy};
use support::{
    child::{LIMIT, wsm},
    local::Local,
    pki::Pki,
    process::{Finished, run_to_end},
    python::Peer,
};

/// Sends one line and waits for its echo: `-x LINE -n 1 --no-stdin`.
fn one_echo(flags: &[&str], url: &str, env: &[(&str, &str)]) -> Finished {
    let mut args = flags.to_vec();
    args.extend([
        "-x",
        "hello",
        "-n",
        "1",
        "--no-stdin",
        "--max-retries",
        "3",
        url,
    ]);
    let mut command = wsm(&args);
    command.envs(env.iter().copied());
    run_to_end(command, LIMIT)
}

fn echoed(out: &Finished) {
    assert!(
        out.status.success(),
        "exit {:?}\nstderr:\n{}",
        out.status,
        out.stderr
    );
    assert_eq!(out.stdout, "hello\n", "stderr:\n{}", out.stderr);
}

/// A failed run: exit code and stderr.
fn failed(out: &Finished, code: i32, says: &str) {
    assert_eq!(out.status.code(), Some(code), "stderr:\n{}", out.stderr);
    assert!(
        out.stderr.contains(says),
        "expected {says:?} in:\n{}",
        out.stderr
    );
}

fn tls_peer(pki: &Pki, extra: &[&str]) -> (Peer, String) {
    let (cert, key) = pki.server();
    let mut args = vec![cert.as_str(), key.as_str()];
    args.extend(extra);
    let peer = Peer::script("tls_echo.py", &args);
    let url = format!("wss://127.0.0.1:{}/", peer.port);
    (peer, url)
}

#[test]
fn a_tls_peer_with_a_ca_from_a_file_and_its_choice_of_subprotocol() {
    let pki = Pki::new("test CA");
    // The peer prefers chat.v2; the offer lists chat.v1 first.
    let (_peer, url) = tls_peer(&pki, &["--protocol", "chat.v2", "--protocol", "chat.v1"]);
    let ca = pki.ca();
    let flags = [
        "--cacert",
        &ca,
        "--protocol",
        "chat.v1",
        "--protocol",
        "chat.v2",
    ];
    let out = one_echo(&flags, &url, &[]);
    echoed(&out);
    assert!(
        out.stderr
            .contains(&format!("CONNECTED {url} (subprotocol chat.v2)")),
        "{}",
        out.stderr
    );
    let mut json = flags.to_vec();
    json.extend(["--status", "json"]);
    let out = one_echo(&json, &url, &[]);
    echoed(&out);
    assert!(
        out.stderr.contains(r#""protocol":"chat.v2""#),
        "{}",
        out.stderr
    );

    // A peer that needs a subprotocol it is not offered refuses the
    // upgrade; with --require-protocol, a peer that chooses none fails.
    let out = one_echo(&["--cacert", &ca, "--protocol", "other"], &url, &[]);
    failed(&out, 3, "HTTP 400");
    let (_plain, plain_url) = tls_peer(&pki, &[]);
    let out = one_echo(
        &[
            "--cacert",
            &ca,
            "--protocol",
            "chat.v1",
            "--require-protocol",
        ],
        &plain_url,
        &[],
    );
    failed(&out, 1, "server chose no subprotocol, but one is required");
}

#[test]
fn an_untrusted_certificate_fails_and_insecure_connects_with_a_warning() {
    let pki = Pki::new("test CA");
    let (_peer, url) = tls_peer(&pki, &[]);
    let out = one_echo(&[], &url, &[]);
    failed(&out, 1, "not signed by a trusted CA");
    let out = one_echo(&["--insecure"], &url, &[]);
    echoed(&out);
    assert!(
        out.stderr
            .contains("WARNING --insecure: the server's certificate is NOT checked"),
        "{}",
        out.stderr
    );
}

#[test]
fn mutual_tls_with_cert_and_key() {
    let pki = Pki::new("test CA");
    let (_peer, url) = tls_peer(&pki, &["--client-ca", &pki.ca()]);
    let (cert, key) = pki.client();
    let ca = pki.ca();
    echoed(&one_echo(
        &["--cacert", &ca, "--cert", &cert, "--key", &key],
        &url,
        &[],
    ));
    // Also with --insecure, which keeps the client certificate.
    echoed(&one_echo(
        &["--insecure", "--cert", &cert, "--key", &key],
        &url,
        &[],
    ));
    // OpenSSL resets the connection with the upgrade request unread, so
    // its alert is usually lost: then the error says what is likely, and
    // is retried (exit 4 after --max-retries); when the alert arrives, the
    // error is certain and final (exit 1). The library's tests show the
    // final error against a peer whose alert always arrives.
    let out = one_echo(&["--cacert", &ca], &url, &[]);
    assert!(
        matches!(out.status.code(), Some(1 | 4)) && out.stderr.contains("client certificate"),
        "exit {:?}, stderr:\n{}",
        out.status,
        out.stderr
    );
    // --cert without --key is a usage error.
    let out = one_echo(&["--cacert", &ca, "--cert", &cert], &url, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
}

#[test]
fn ws_to_a_tls_port_says_to_use_wss() {
    let pki = Pki::new("test CA");
    let (peer, _) = tls_peer(&pki, &[]);
    let url = format!("ws://127.0.0.1:{}/", peer.port);
    let out = run_to_end(wsm(&["--once", "--no-stdin", &url]), LIMIT);
    failed(&out, 6, "wss://");
}

#[test]
fn through_a_proxy_from_the_flag_or_the_environment() {
    let server = Local::start();
    let url = server.url();
    let proxy = tinyproxy(free_port());
    let out = one_echo(&["--proxy", &proxy.url()], &url, &[]);
    echoed(&out);
    assert!(!out.stderr.contains(PASSWORD), "{}", out.stderr);
    assert_eq!(
        proxy.wait_for_lines(CONNECT, 1).len(),
        1,
        "{:?}",
        proxy.log()
    );

    // User info in the server's URL is not shown either.
    let with_user = url.replacen("ws://", "ws://wsuser:ws-s3cret@", 1);
    let out = one_echo(&["--proxy", &proxy.url()], &with_user, &[]);
    echoed(&out);
    assert!(
        out.stderr.contains("CONNECTED ws://***@127.0.0.1:"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("ws-s3cret"), "{}", out.stderr);

    // From the environment, as curl reads it.
    echoed(&one_echo(&[], &url, &[("http_proxy", &proxy.url())]));
    echoed(&one_echo(&[], &url, &[("ALL_PROXY", &proxy.url())]));
    assert_eq!(
        proxy.wait_for_lines(CONNECT, 4).len(),
        4,
        "{:?}",
        proxy.log()
    );

    // An empty --proxy, NO_PROXY and --noproxy go direct (the proxy they
    // would use is down).
    let dead = format!("http://127.0.0.1:{}", free_port());
    echoed(&one_echo(&["--proxy", ""], &url, &[("http_proxy", &dead)]));
    echoed(&one_echo(
        &[],
        &url,
        &[("http_proxy", &dead), ("NO_PROXY", "localhost,127.0.0.1")],
    ));
    echoed(&one_echo(
        &["--proxy", &dead, "--noproxy", "127.0.0.0/8"],
        &url,
        &[],
    ));
    assert_eq!(
        proxy.wait_for_lines(CONNECT, 4).len(),
        4,
        "{:?}",
        proxy.log()
    );

    // A proxy URL that cannot be used is a usage error, from the flag or
    // the environment, and never repeats the password.
    let out = one_echo(
        &["--proxy", "https://alice:s3cr3t-url@127.0.0.1:1"],
        &url,
        &[],
    );
    failed(&out, 2, "not supported");
    let out = one_echo(
        &[],
        &url,
        &[("http_proxy", "ftp://alice:s3cr3t-url@127.0.0.1:1")],
    );
    failed(&out, 2, "http_proxy is not a usable proxy URL");
    assert!(!out.stderr.contains("s3cr3t-url"), "{}", out.stderr);

    // Wrong credentials: final, naming the proxy, never the password.
    let out = one_echo(
        &["--proxy", &proxy.url_with("alice", "nope-nope")],
        &url,
        &[],
    );
    failed(
        &out,
        1,
        &format!("proxy http://127.0.0.1:{} refused the tunnel", proxy.port),
    );
    assert!(!out.stderr.contains("nope-nope"), "{}", out.stderr);
}
