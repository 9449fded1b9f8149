//! Hostile servers: a server written byte by byte accepts the upgrade, then
//! sends what no honest server sends. For each, the machine reports a clear
//! error, answers with the close code RFC 6455 names (when the connection
//! can still carry one), reconnects as its policy says, and never panics.
//! `.ci/run` runs this on both engines (`WSM_TEST_COMPRESSION=1`: the
//! machine offers compression, the server declines, and the connection
//! runs on the compression engine).
//!
//! (Garbage after the handshake, an endless or non-HTTP handshake answer,
//! and oversized messages are in `faults.rs` and `handshake.rs`; what a
//! 2^63 length or an endless fragmented message costs in memory is in
//! `allocation_limit.rs`.)

mod common;

use std::time::Duration;

use common::{
    WAIT, fast,
    raw_deflate::{agree_plain, client_frame},
    wait_for_state, wait_for_state_where,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    time::timeout,
};
use ws_machine::{Error, State, Status};

/// The machine's limit in these tests.
const LIMIT: usize = 64 * 1024;

/// What a hostile server saw and the machine said.
struct Seen {
    /// The `Disconnected` that ended the connection.
    lost: Status,
    /// The close code the machine sent, if it sent a close frame.
    close_code: Option<u16>,
}

/// The close code of the machine's close frame, if one comes before the
/// connection ends (other frames are skipped).
async fn close_code(socket: &mut TcpStream) -> Option<u16> {
    let mut first = [0u8; 1];
    loop {
        // The connection may end without a close frame.
        match timeout(WAIT, socket.peek(&mut first)).await {
            Ok(Ok(1..)) => {}
            _ => return None,
        }
        let (head, payload) = client_frame(socket).await;
        if head & 0x0f == 0x8 {
            return payload
                .get(..2)
                .map(|code| u16::from_be_bytes([code[0], code[1]]));
        }
    }
}

/// Accepts a connection, agrees to the upgrade, sends `bytes`; the close
/// code of the machine's answer, if it sent a close frame.
async fn send_after_the_upgrade(listener: &TcpListener, bytes: &[u8]) -> Option<u16> {
    let (mut socket, _) = timeout(WAIT, listener.accept())
        .await
        .expect("a connection in time")
        .expect("accept");
    agree_plain(&mut socket).await;
    socket.write_all(bytes).await.expect("write");
    close_code(&mut socket).await
}

/// Serves one connection that sends `bytes` after the upgrade, and a second
/// one that behaves (to see the machine reconnect); returns what the
/// machine reported and the close code it sent.
async fn after_the_upgrade(bytes: Vec<u8>) -> Seen {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("address"));
    let server = tokio::spawn(async move {
        let code = send_after_the_upgrade(&listener, &bytes).await;
        // The next attempt: accepted, and kept open until the test ends.
        let (mut next, _) = timeout(WAIT, listener.accept())
            .await
            .expect("the machine came back")
            .expect("accept");
        agree_plain(&mut next).await;
        (code, next)
    });
    let mut machine = fast(url)
        .max_message_size(LIMIT)
        .spawn()
        .expect("valid options");
    wait_for_state(&mut machine, State::Connected).await;
    let seen = wait_for_state_where(&mut machine, |s| s.state == State::Disconnected).await;
    let lost = seen.last().cloned().expect("a status");
    wait_for_state(&mut machine, State::Connected).await;
    let (close_code, mut next) = timeout(WAIT, server)
        .await
        .expect("the server ends in time")
        .expect("the server task");
    // The second connection works: a message crosses it.
    common::send(&machine, "after").await;
    let (head, payload) = client_frame(&mut next).await;
    assert_eq!((head & 0x0f, payload.as_slice()), (0x1, &b"after"[..]));
    let _ = next.shutdown().await;
    let mut rest = Vec::new();
    let _ = timeout(Duration::from_millis(100), next.read_to_end(&mut rest)).await;
    Seen { lost, close_code }
}

/// A frame from the server: first byte, then the payload length in the
/// shortest form, unmasked.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    match payload.len() {
        n @ 0..=125 => out.push(u8::try_from(n).expect("small")),
        n @ 126..=0xffff => {
            out.push(126);
            out.extend_from_slice(&u16::try_from(n).expect("16 bits").to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

fn is_protocol_error(error: &Option<Error>) -> bool {
    matches!(error, Some(Error::Protocol { .. }))
}

/// The checks of a protocol violation: the connection ended with a retried
/// protocol error that says what was wrong, and the machine closed with
/// `code`.
fn protocol_error_closed_with(seen: &Seen, says: &str, code: u16) {
    assert!(is_protocol_error(&seen.lost.error), "{}", seen.lost);
    clear_and_retried(seen, says);
    assert_eq!(seen.close_code, Some(code), "{}", seen.lost);
}

/// The checks of a message over the limit: `MessageTooLarge` with the
/// machine's limit, and the close code that says so.
fn too_large_closed_with_1009(seen: &Seen) {
    assert!(
        matches!(
            seen.lost.error,
            Some(Error::MessageTooLarge { max: LIMIT, .. })
        ),
        "{}",
        seen.lost
    );
    assert_eq!(seen.close_code, Some(1009), "{}", seen.lost);
}

/// The checks every case shares: the connection ended with a retried error
/// that says what was wrong.
fn clear_and_retried(seen: &Seen, says: &str) {
    let error = seen.lost.error.as_ref().expect("an error");
    assert!(error.is_retryable(), "{error}");
    let text = error.to_string();
    assert!(
        text.to_lowercase().contains(says),
        "{says:?} not in: {text}"
    );
}

#[tokio::test]
async fn reserved_bits_without_an_extension_are_a_protocol_error() {
    // FIN, RSV1, text "hi": no extension was agreed that gives RSV1 a
    // meaning.
    let seen = after_the_upgrade(frame(0xc1, b"hi")).await;
    protocol_error_closed_with(&seen, "protocol", 1002);
}

#[tokio::test]
async fn an_unknown_opcode_is_a_protocol_error() {
    let seen = after_the_upgrade(frame(0x83, b"??")).await;
    protocol_error_closed_with(&seen, "opcode", 1002);
}

#[tokio::test]
async fn invalid_utf8_in_a_text_message_is_answered_with_1007() {
    let seen = after_the_upgrade(frame(0x81, &[0x68, 0xff, 0xfe, 0x69])).await;
    protocol_error_closed_with(&seen, "utf-8", 1007);
}

/// A fragmented text message whose last fragment is empty, cut inside a
/// character: tokio-websockets 0.13.3 hands it over (found by fuzzing).
#[tokio::test]
async fn text_cut_inside_a_character_by_an_empty_final_fragment_is_answered_with_1007() {
    // A text fragment holding the first byte of a three-byte character,
    // then an empty final continuation.
    let mut bytes = frame(0x01, &[0xe7]);
    bytes.extend(frame(0x80, &[]));
    let seen = after_the_upgrade(bytes).await;
    protocol_error_closed_with(&seen, "utf-8", 1007);
}

/// After such a message, tokio-websockets 0.13.3 also reads the next one
/// as the rest of the character: continuation bytes alone would pass as
/// text. The first message fails the connection, so nothing of either is
/// handed over.
#[tokio::test]
async fn text_after_a_message_cut_inside_a_character_is_not_handed_over() {
    let mut bytes = frame(0x01, &[0xe7]);
    bytes.extend(frame(0x80, &[]));
    bytes.extend(frame(0x81, &[0x80, 0x80]));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("address"));
    let server = tokio::spawn(async move { send_after_the_upgrade(&listener, &bytes).await });
    let mut machine = fast(url).spawn().expect("valid options");
    wait_for_state(&mut machine, State::Connected).await;
    let seen = wait_for_state_where(&mut machine, |s| s.state == State::Disconnected).await;
    let lost = seen.last().expect("a status");
    assert!(is_protocol_error(&lost.error), "{lost}");
    let code = timeout(WAIT, server)
        .await
        .expect("the server ends in time")
        .expect("the server task");
    assert_eq!(code, Some(1007), "{lost}");
    common::command(&machine, ws_machine::Command::Quit).await;
    wait_for_state_where(&mut machine, Status::is_final).await;
    let handed_over = timeout(WAIT, async {
        let mut messages = Vec::new();
        while let Some(message) = machine.input.recv().await {
            messages.push(message);
        }
        messages
    })
    .await
    .expect("input closes once the machine stopped");
    assert!(handed_over.is_empty(), "handed over: {handed_over:?}");
}

#[tokio::test]
async fn a_masked_server_frame_is_a_protocol_error() {
    // FIN text, MASK bit, length 2, a mask key, the masked payload.
    let bytes = vec![0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
    let seen = after_the_upgrade(bytes).await;
    protocol_error_closed_with(&seen, "mask", 1002);
}

#[tokio::test]
async fn a_close_frame_with_an_invalid_code_is_a_protocol_error() {
    // 1005 may never be sent in a close frame.
    let seen = after_the_upgrade(frame(0x88, &1005u16.to_be_bytes())).await;
    protocol_error_closed_with(&seen, "close", 1002);
}

#[tokio::test]
async fn a_control_frame_over_125_bytes_is_a_protocol_error() {
    let seen = after_the_upgrade(frame(0x89, &[0u8; 126])).await;
    assert!(is_protocol_error(&seen.lost.error), "{}", seen.lost);
    assert_eq!(seen.close_code, Some(1002), "{}", seen.lost);
}

#[tokio::test]
async fn a_fragmented_message_that_never_ends_stops_at_the_limit() {
    // A text message begun and continued past the limit, never finished.
    let mut bytes = frame(0x01, &[b'a'; 1024]);
    for _ in 0..(2 * LIMIT / 1024) {
        bytes.extend(frame(0x00, &[b'a'; 1024]));
    }
    too_large_closed_with_1009(&after_the_upgrade(bytes).await);
}

#[tokio::test]
async fn a_length_of_2_to_the_63_is_refused_without_reading_it() {
    // A binary frame claiming 2^63 - 1 bytes (the largest length RFC 6455
    // allows), followed by a few.
    let mut bytes = vec![0x82, 127];
    bytes.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
    bytes.extend_from_slice(b"not that many");
    too_large_closed_with_1009(&after_the_upgrade(bytes).await);
}

#[tokio::test]
async fn a_continuation_without_a_message_is_a_protocol_error() {
    let seen = after_the_upgrade(frame(0x80, b"orphan")).await;
    assert!(is_protocol_error(&seen.lost.error), "{}", seen.lost);
    assert_eq!(seen.close_code, Some(1002), "{}", seen.lost);
}
