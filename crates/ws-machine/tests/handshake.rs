//! The opening handshake against the real echo server on 127.0.0.1: which
//! rejections stop the machine and which are retried, `Retry-After`, request
//! headers, the handshake timeout, configuration errors and `max_attempts`.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use common::{
    closed_port_url, command, connect, fast, ms, next_status, show, states, wait_for_final,
    wait_for_state, wait_for_state_where,
};
use ws_machine::{
    Command, Error, Machine, State,
    http::{HeaderMap, HeaderValue, header},
};
use wsm_server::{Config, Rejection, Server};

fn server() -> Server {
    Server::start(Config::default()).expect("server starts")
}

#[tokio::test]
async fn unauthorized_forbidden_and_not_found_stop_the_machine() {
    for code in [401, 403, 404] {
        let server = server();
        server.reject_handshakes(Some(Rejection::new(code)));
        let mut machine = fast(server.url()).spawn().expect("valid options");

        assert_eq!(next_status(&mut machine).await.state, State::Connecting);
        let last = next_status(&mut machine).await;
        assert_eq!(last.state, State::Disconnected, "{code}: {last}");
        assert!(last.is_final(), "{code}: {last}");
        assert!(
            matches!(
                last.error,
                Some(Error::HandshakeRejected { status, retryable: false, .. }) if status == code
            ),
            "{code}: {last}"
        );
        // The machine stopped: both channels end, and it never asked again.
        common::expect_closed(&mut machine).await;
        assert_eq!(server.handshakes_seen(), 1, "{code} was retried");
    }
}

#[tokio::test]
async fn service_unavailable_is_retried_until_the_server_accepts() {
    let server = server();
    server.reject_handshakes(Some(Rejection::service_unavailable()));
    let mut machine = fast(server.url()).spawn().expect("valid options");

    for _ in 0..2 {
        let seen = wait_for_state(&mut machine, State::Disconnected).await;
        let rejected = seen.last().expect("a status");
        assert!(!rejected.is_final(), "503 must not stop the machine");
        assert!(
            matches!(
                rejected.error,
                Some(Error::HandshakeRejected {
                    status: 503,
                    retryable: true,
                    ..
                })
            ),
            "{rejected}"
        );
        assert_eq!(next_status(&mut machine).await.state, State::Waiting);
    }
    server.reject_handshakes(None);
    let seen = wait_for_state(&mut machine, State::Connected).await;
    assert_eq!(seen.last().map(|s| s.attempt), Some(3), "{}", show(&seen));
    assert_eq!(server.handshakes_seen(), 3);
    assert_eq!(server.connections_accepted(), 1);
}

#[tokio::test]
async fn retry_after_is_honoured_as_the_wait() {
    let server = server();
    server.reject_handshakes(Some(Rejection::too_many_requests(1)));
    let mut machine = fast(server.url()).spawn().expect("valid options");

    let seen = wait_for_state(&mut machine, State::Disconnected).await;
    let rejected = seen.last().expect("a status");
    assert!(
        matches!(
            rejected.error,
            Some(Error::HandshakeRejected {
                status: 429,
                retry_after: Some(after),
                retryable: true,
                ..
            }) if after == Duration::from_secs(1)
        ),
        "{rejected}"
    );
    let waiting = next_status(&mut machine).await;
    assert_eq!(waiting.state, State::Waiting);
    let delay = waiting.delay.expect("a waiting status carries its delay");
    // The backoff alone would wait 10 ms.
    assert!(delay >= Duration::from_secs(1), "{waiting}");
    command(&machine, Command::Quit).await;
    wait_for_final(&mut machine).await;
}

#[tokio::test]
async fn a_custom_retry_policy_decides_which_rejections_are_final() {
    fn only_unauthorized(status: u16) -> bool {
        status == 401
    }

    // 401 is retried under this policy...
    let server = server();
    server.reject_handshakes(Some(Rejection::unauthorized()));
    let mut machine = fast(server.url())
        .retry_status(only_unauthorized)
        .spawn()
        .expect("valid options");
    let seen = wait_for_state(&mut machine, State::Waiting).await;
    assert!(
        matches!(
            seen[seen.len() - 2].error,
            Some(Error::HandshakeRejected {
                status: 401,
                retryable: true,
                ..
            })
        ),
        "{}",
        show(&seen)
    );
    command(&machine, Command::Quit).await;
    wait_for_final(&mut machine).await;

    // ...and 503, retried by default, is final.
    let server = self::server();
    server.reject_handshakes(Some(Rejection::service_unavailable()));
    let mut machine = fast(server.url())
        .retry_status(only_unauthorized)
        .spawn()
        .expect("valid options");
    let last = wait_for_final(&mut machine).await;
    assert!(
        matches!(
            last.error,
            Some(Error::HandshakeRejected {
                status: 503,
                retryable: false,
                ..
            })
        ),
        "{last}"
    );
    assert_eq!(server.handshakes_seen(), 1);
}

#[tokio::test]
async fn builder_and_constructor_headers_reach_the_server() {
    let server = server();
    let mut machine = connect(fast(server.url()).header("x-token", "abc")).await;
    command(&machine, Command::Quit).await;
    wait_for_final(&mut machine).await;

    let mut headers = HeaderMap::new();
    headers.insert("x-client", HeaderValue::from_static("ws-machine-test"));
    let mut machine = Machine::new(&server.url(), headers).expect("valid URL and headers");
    wait_for_state(&mut machine, State::Connected).await;
    command(&machine, Command::Quit).await;
    wait_for_final(&mut machine).await;

    let seen = server.request_headers();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].get("x-token").map(HeaderValue::as_bytes),
        Some(&b"abc"[..])
    );
    assert_eq!(
        seen[1].get("x-client").map(HeaderValue::as_bytes),
        Some(&b"ws-machine-test"[..])
    );
}

/// Every value of a repeated header reaches the server: the engine keeps one
/// line per name, so the values are joined into it as HTTP allows.
#[tokio::test]
async fn repeated_headers_reach_the_server_with_every_value() {
    let server = server();
    let mut machine = connect(
        fast(server.url())
            .header("cookie", "session=1")
            .header("cookie", "theme=dark")
            .header("x-list", "a")
            .header("x-list", "b")
            .header("x-replaced", "fixed")
            .headers_fn(|| {
                let mut headers = HeaderMap::new();
                headers.append("x-replaced", HeaderValue::from_static("fresh-1"));
                headers.append("x-replaced", HeaderValue::from_static("fresh-2"));
                headers
            }),
    )
    .await;
    command(&machine, Command::Quit).await;
    wait_for_final(&mut machine).await;

    let seen = server.request_headers();
    let values = |name: &str| -> Vec<String> {
        seen[0]
            .get_all(name)
            .iter()
            .map(|v| v.to_str().expect("ASCII").to_owned())
            .collect()
    };
    assert_eq!(values("cookie"), ["session=1; theme=dark"]);
    assert_eq!(values("x-list"), ["a, b"]);
    assert_eq!(values("x-replaced"), ["fresh-1, fresh-2"]);
}

/// A headers function that fails fails only that attempt: the error (with
/// its cause) is reported and retried, and the machine connects once the
/// function succeeds.
#[tokio::test]
async fn a_failing_headers_fn_is_retried_until_it_succeeds() {
    let server = server();
    let calls = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&calls);
    let mut machine = fast(server.url())
        .try_headers_fn(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            if n < 3 {
                return Err(format!("no token yet ({n})"));
            }
            let mut headers = HeaderMap::new();
            headers.insert("authorization", HeaderValue::from_static("Bearer ok"));
            Ok(headers)
        })
        .spawn()
        .expect("valid options");
    for n in 1..=2 {
        let seen = wait_for_state(&mut machine, State::Disconnected).await;
        let failed = seen.last().expect("a status");
        match &failed.error {
            Some(error @ Error::Headers { source }) => {
                assert!(error.is_retryable());
                assert_eq!(source.to_string(), format!("no token yet ({n})"));
            }
            other => panic!("expected a headers error, got {other:?}"),
        }
    }
    wait_for_state(&mut machine, State::Connected).await;
    assert_eq!(server.handshakes_seen(), 1, "no request without headers");
    assert_eq!(
        server.request_headers()[0]
            .get("authorization")
            .map(HeaderValue::as_bytes),
        Some(&b"Bearer ok"[..])
    );
    command(&machine, Command::Quit).await;
    wait_for_final(&mut machine).await;
}

#[tokio::test]
async fn headers_fn_is_called_before_every_attempt() {
    let server = server();
    server.reject_handshakes(Some(Rejection::service_unavailable()));
    let calls = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&calls);
    let mut machine = fast(server.url())
        .header("x-attempt", "fixed")
        .header("x-fixed", "kept")
        .headers_fn(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            let mut headers = HeaderMap::new();
            headers.insert("x-attempt", HeaderValue::from(n));
            headers
        })
        .spawn()
        .expect("valid options");

    for _ in 0..2 {
        wait_for_state(&mut machine, State::Waiting).await;
    }
    server.reject_handshakes(None);
    wait_for_state(&mut machine, State::Connected).await;

    let seen = server.request_headers();
    let attempts: Vec<Vec<&[u8]>> = seen
        .iter()
        .map(|h| {
            h.get_all("x-attempt")
                .iter()
                .map(HeaderValue::as_bytes)
                .collect()
        })
        .collect();
    // A fresh value each attempt, replacing the fixed header of that name.
    assert_eq!(attempts, [[b"1"], [b"2"], [b"3"]]);
    assert!(
        seen.iter()
            .all(|h| h.get("x-fixed").map(HeaderValue::as_bytes) == Some(b"kept"))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn headers_fn_returning_a_handshake_header_stops_the_machine() {
    let server = server();
    let mut machine = fast(server.url())
        .headers_fn(|| {
            let mut headers = HeaderMap::new();
            headers.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static("x"));
            headers
        })
        .spawn()
        .expect("valid options");
    let last = wait_for_final(&mut machine).await;
    assert!(
        matches!(last.error, Some(Error::InvalidHeader { .. })),
        "{last}"
    );
    assert_eq!(server.handshakes_seen(), 0);
}

#[tokio::test]
async fn handshake_timeout_is_reported_and_retried() {
    let server = server();
    // TCP connects land in the backlog; the upgrade is never answered.
    server.pause_accepting(true);
    let limit = ms(150);
    let mut machine = fast(server.url())
        .handshake_timeout(limit)
        .spawn()
        .expect("valid options");

    let seen = wait_for_state(&mut machine, State::Disconnected).await;
    let timed_out = seen.last().expect("a status");
    assert!(
        matches!(timed_out.error, Some(Error::HandshakeTimeout(d)) if d == limit),
        "{timed_out}"
    );
    assert_eq!(next_status(&mut machine).await.state, State::Waiting);
    server.pause_accepting(false);
    wait_for_state(&mut machine, State::Connected).await;
}

#[tokio::test]
async fn bad_urls_and_headers_are_refused_before_anything_starts() {
    let server = server();
    for url in [
        "http://127.0.0.1:1/",
        "https://127.0.0.1:1/",
        "127.0.0.1:1",
        "ws://",
        "ws:///path",
        "not a url",
        "",
    ] {
        let result = Machine::new(url, HeaderMap::new());
        assert!(
            matches!(result, Err(Error::InvalidUrl { .. })),
            "{url:?}: {result:?}"
        );
    }

    let mut handshake_header = HeaderMap::new();
    handshake_header.insert(header::HOST, HeaderValue::from_static("elsewhere"));
    let results = [
        Machine::new(&server.url(), handshake_header),
        fast(server.url()).header("x-token", "a\r\nb").spawn(),
        fast(server.url()).header("bad name", "v").spawn(),
        fast(server.url())
            .header(header::UPGRADE.as_str(), "h2c")
            .spawn(),
    ];
    for result in results {
        assert!(
            matches!(result, Err(Error::InvalidHeader { .. })),
            "{result:?}"
        );
    }

    let invalid = [
        fast(server.url()).status_capacity(1).spawn(),
        fast(server.url()).ping_interval(Duration::ZERO).spawn(),
        fast(server.url()).max_attempts(0).spawn(),
        fast(server.url()).backoff(ms(20), ms(10)).spawn(),
    ];
    for result in invalid {
        assert!(
            matches!(result, Err(Error::InvalidConfig { .. })),
            "{result:?}"
        );
    }

    // None of those started a machine: the first handshake the server sees
    // is this valid machine's.
    let mut machine = connect(fast(server.url())).await;
    assert_eq!(server.handshakes_seen(), 1);
    command(&machine, Command::Quit).await;
    wait_for_final(&mut machine).await;
}

#[test]
fn starting_outside_a_runtime_is_an_error() {
    let result = Machine::new("ws://127.0.0.1:1/", HeaderMap::new());
    assert!(matches!(result, Err(Error::NoRuntime)), "{result:?}");
}

#[tokio::test]
async fn max_attempts_gives_up_after_exactly_that_many_attempts() {
    let url = closed_port_url().await;
    let mut machine = fast(url).max_attempts(3).spawn().expect("valid options");
    let seen = wait_for_state_where(&mut machine, |s| s.is_final()).await;

    let connecting = seen.iter().filter(|s| s.state == State::Connecting).count();
    assert_eq!(connecting, 3, "{}", show(&seen));
    assert_eq!(
        states(&seen),
        [
            State::Connecting,
            State::Disconnected,
            State::Waiting,
            State::Connecting,
            State::Disconnected,
            State::Waiting,
            State::Connecting,
            State::Disconnected,
        ]
    );
    let last = seen.last().expect("a final status");
    match &last.error {
        Some(Error::GaveUp { attempts: 3, last }) => {
            assert!(matches!(**last, Error::Connect { .. }), "{last}");
        }
        other => panic!("expected GaveUp after 3 attempts, got {other:?}"),
    }
    common::expect_closed(&mut machine).await;
}

#[tokio::test]
async fn an_answer_that_is_not_http_is_a_retried_handshake_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("address"));
    let peer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        // Two attempts, each answered with something that is not HTTP.
        for _ in 0..2 {
            let (mut stream, _) = listener.accept().await.expect("accept");
            stream
                .write_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
                .await
                .expect("write");
        }
    });
    let mut machine = fast(url).spawn().expect("valid options");
    for _ in 0..2 {
        let seen = wait_for_state(&mut machine, State::Disconnected).await;
        let failed = seen.last().expect("a status");
        assert!(
            matches!(failed.error, Some(Error::Handshake { .. })),
            "{failed}"
        );
        assert_eq!(next_status(&mut machine).await.state, State::Waiting);
    }
    peer.await.expect("peer ok");
    command(&machine, Command::Quit).await;
    wait_for_final(&mut machine).await;
}

/// tokio-websockets 0.13.3 panics on a `Sec-WebSocket-Accept` that decodes
/// to more than 20 bytes (found by fuzzing): the machine refuses such an
/// answer before the engine reads it, reports it, and tries again.
#[tokio::test]
async fn an_accept_that_is_no_digest_is_a_retried_handshake_error() {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("address"));
    // 27 bytes in Base64, then 21 in 28 characters (a digest's length).
    let answers = ["A".repeat(36), "A".repeat(28)];
    let peer = tokio::spawn(async move {
        for accept in answers {
            let (mut stream, _) = tokio::time::timeout(common::WAIT, listener.accept())
                .await
                .expect("an attempt in time")
                .expect("accept");
            common::raw_deflate::read_request(&mut stream).await;
            let answer = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            );
            stream.write_all(answer.as_bytes()).await.expect("write");
        }
        // The third attempt is answered as it should be.
        let (mut stream, _) = tokio::time::timeout(common::WAIT, listener.accept())
            .await
            .expect("an attempt in time")
            .expect("accept");
        common::raw_deflate::agree_plain(&mut stream).await;
        stream
    });
    let mut machine = fast(url).spawn().expect("valid options");
    for _ in 0..2 {
        let seen = wait_for_state(&mut machine, State::Disconnected).await;
        let failed = seen.last().expect("a status");
        match &failed.error {
            Some(error @ Error::Handshake { source }) => {
                assert!(error.is_retryable(), "{error}");
                let reason = source.to_string();
                assert!(
                    reason.contains("Sec-WebSocket-Accept") && reason.contains("SHA-1"),
                    "{reason}"
                );
            }
            other => panic!("expected a handshake error, got {other:?}"),
        }
    }
    wait_for_state(&mut machine, State::Connected).await;
    let _stream = tokio::time::timeout(common::WAIT, peer)
        .await
        .expect("the peer ends in time")
        .expect("peer ok");
    command(&machine, Command::Quit).await;
    wait_for_final(&mut machine).await;
}

#[tokio::test]
async fn an_endless_handshake_answer_is_cut_off() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("address"));
    let peer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let (mut stream, _) = listener.accept().await.expect("accept");
        stream
            .write_all(b"HTTP/1.1 101 Switching Protocols\r\nX-Padding: ")
            .await
            .expect("write");
        // A header that never ends, until the client hangs up.
        let chunk = vec![b'a'; 16 * 1024];
        let mut written = 0usize;
        while stream.write_all(&chunk).await.is_ok() {
            written += chunk.len();
        }
        written
    });
    // A long handshake timeout: the cut-off, not the timeout, must end it.
    let mut machine = fast(url)
        .handshake_timeout(Duration::from_secs(60))
        .spawn()
        .expect("valid options");
    let seen = wait_for_state(&mut machine, State::Disconnected).await;
    let failed = seen.last().expect("a status");
    match &failed.error {
        Some(Error::Handshake { source }) => {
            let reason = source.to_string();
            assert!(reason.contains("exceeds"), "{reason}");
        }
        other => panic!("expected a handshake error, got {other:?}"),
    }
    assert!(failed.error.as_ref().is_some_and(Error::is_retryable));
    let written = tokio::time::timeout(common::WAIT, peer)
        .await
        .expect("peer ends")
        .expect("peer ok");
    assert!(written < 4 * 1024 * 1024, "the client read {written} bytes");
    command(&machine, Command::Quit).await;
    wait_for_final(&mut machine).await;
}

/// A status's `attempt` is "which attempt this is": the disconnect that ends
/// attempt N should say N, as the `Connecting` before it did, and the final
/// status of `GaveUp { attempts: 3 }` should not say attempt 4.
#[tokio::test]
async fn a_failed_attempt_is_reported_with_its_own_number() {
    let url = closed_port_url().await;
    let mut machine = fast(url).max_attempts(3).spawn().expect("valid options");
    let seen = wait_for_state_where(&mut machine, |s| s.is_final()).await;
    let mut attempts = Vec::new();
    for pair in seen.windows(2) {
        if pair[0].state == State::Connecting && pair[1].state == State::Disconnected {
            assert_eq!(pair[1].attempt, pair[0].attempt, "{}", show(&seen));
            attempts.push(pair[1].attempt);
        }
    }
    assert_eq!(attempts, [1, 2, 3], "{}", show(&seen));
}
