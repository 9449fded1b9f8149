//! A compressed message is limited by its inflated size: a 1 MB frame that
//! inflates to 1 GiB is stopped at `max_message_size` with a 1009 close,
//! and the process never holds much more than the limit (the heap's peak is
//! measured by dhat; this binary has one test, so nothing else allocates
//! meanwhile).
//!
//! The server is written here, byte by byte: an independent server would
//! compress the gigabyte itself, holding it in memory. It answers the
//! upgrade agreeing to permessage-deflate and sends one frame of 1 GiB of
//! zeros compressed by Python's zlib (raw deflate, as RFC 7692 sends it).
#![cfg(feature = "deflate")]

mod common;

use std::process::Stdio;

use tokio::{io::AsyncWriteExt, net::TcpListener, process::Command, time::timeout};
use ws_machine::{Deflate, Direction, Error};

use common::{
    WAIT, fast,
    raw_deflate::{agree_to_deflate, client_frame},
    wait_for_final,
};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// The inflated size of the bomb.
const INFLATED: usize = 1 << 30;

/// The machine's limit.
const LIMIT: usize = 4 << 20;

/// 1 GiB of zeros, raw deflate, sync-flushed, its last four bytes
/// (`00 00 ff ff`) removed as RFC 7692 says.
async fn bomb() -> Vec<u8> {
    let code = format!(
        "import zlib, sys\n\
         c = zlib.compressobj(9, zlib.DEFLATED, -15)\n\
         z = bytes(1 << 20)\n\
         out = b''.join(c.compress(z) for _ in range({})) + c.flush(zlib.Z_SYNC_FLUSH)\n\
         assert out.endswith(b'\\x00\\x00\\xff\\xff')\n\
         sys.stdout.buffer.write(out[:-4])\n",
        INFLATED >> 20
    );
    let output = timeout(
        WAIT * 4,
        Command::new("python3")
            .arg("-c")
            .arg(code)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("zlib compresses 1 GiB of zeros in time")
    .expect("python3 runs");
    assert!(output.status.success(), "{:?}", output.status);
    output.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_inflating_to_a_gigabyte_is_stopped_at_the_limit_without_holding_it() {
    let bomb = bomb().await;
    assert!(bomb.len() < LIMIT, "the frame itself is under the limit");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("address"));

    let profiler = dhat::Profiler::builder().testing().build();
    let before = dhat::HeapStats::get();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let offer = agree_to_deflate(&mut socket).await;
        assert!(offer.starts_with("permessage-deflate"), "{offer}");
        // FIN, RSV1 (compressed), binary; a 64-bit length; not masked.
        let mut frame = vec![0xc2, 127];
        frame.extend_from_slice(&(bomb.len() as u64).to_be_bytes());
        frame.extend_from_slice(&bomb);
        socket.write_all(&frame).await.expect("write the frame");
        let (head, payload) = client_frame(&mut socket).await;
        assert_eq!(head & 0x0f, 0x8, "a close frame");
        u16::from_be_bytes([payload[0], payload[1]])
    });
    let mut machine = fast(url)
        .compression(Deflate::new())
        .max_message_size(LIMIT)
        .reconnect(false)
        .spawn()
        .expect("valid options");
    let last = wait_for_final(&mut machine).await;
    match &last.error {
        Some(Error::MessageTooLarge {
            direction: Direction::Incoming,
            max,
            ..
        }) => assert_eq!(*max, LIMIT),
        other => panic!("expected an incoming message too large, got {other:?}"),
    }
    let code = timeout(WAIT, server)
        .await
        .expect("the server in time")
        .expect("the server task");
    assert_eq!(code, 1009);
    let after = dhat::HeapStats::get();
    drop(profiler);

    // The frame as read (about 1 MB), the inflated part up to the limit,
    // growth of the buffer that holds it, the inflater: a few times the
    // limit, never near the gigabyte.
    let peak = after.max_bytes.saturating_sub(before.curr_bytes);
    assert!(
        peak < 4 * LIMIT,
        "the heap peaked {peak} bytes above its start, over 4 x the {LIMIT}-byte limit \
         (the message inflates to {INFLATED})"
    );
}
