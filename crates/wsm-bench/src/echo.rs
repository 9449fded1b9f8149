//! `wsm-bench-echo`: an echo server on yawc 0.5 that accepts
//! permessage-deflate (RFC 7692) when the client offers it, for the engine
//! comparison of issue 8. `wsm echo-server` (tokio-websockets) cannot
//! compress, so the compression-on runs need this one, and the other runs of
//! the same comparison use it too, so that every client meets one server.
//!
//!     wsm-bench-echo [--addr 127.0.0.1:0] [--verbose]
//!
//! `--verbose` prints each connection's agreed extensions on stderr.
//!
//! Prints `listening on ws://ADDR/` (what `bench/run.sh` waits for), then
//! echoes every text and binary message with its opcode, answers pings
//! (yawc does), and gathers its echoes: it reads every frame that is ready,
//! up to [`BATCH`], before it flushes, as `wsm echo-server` does, so that the
//! server's writes do not set the pace. One thread, like `wsm echo-server`.
//! The handshake is written here (a few lines over httparse), because yawc's
//! own server side needs hyper's server.

use std::{
    future::poll_fn,
    io,
    pin::Pin,
    process::ExitCode,
    task::{Poll, ready},
};

use base64::Engine as _;
use futures_util::Sink;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use yawc::{Frame, OpCode, Options, Role, WebSocket};

/// Most echoes queued before a flush.
const BATCH: usize = 256;

/// Largest request head read.
const MAX_HEAD: usize = 16 * 1024;

/// Largest message accepted (as the machine's default).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

fn main() -> ExitCode {
    let mut addr = "127.0.0.1:0".to_owned();
    let mut verbose = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--verbose" => verbose = true,
            "--addr" => match args.next() {
                Some(value) => addr = value,
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("wsm-bench-echo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(&addr, verbose)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsm-bench-echo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: wsm-bench-echo [--addr IP:PORT] [--verbose]");
    ExitCode::from(2)
}

async fn serve(addr: &str, verbose: bool) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("listening on ws://{}/", listener.local_addr()?);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("wsm-bench-echo: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            if let Err(e) = connection(stream, verbose).await {
                eprintln!("wsm-bench-echo: connection: {e}");
            }
        });
    }
}

/// One connection: the upgrade, then echoes until it ends.
async fn connection(mut stream: TcpStream, verbose: bool) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let Some(extensions) = handshake(&mut stream).await? else {
        return Ok(());
    };
    if verbose {
        eprintln!("connection: extensions {extensions:?}");
    }
    let mut options = Options::default()
        .with_max_payload_read(MAX_MESSAGE)
        .with_max_read_buffer(MAX_MESSAGE);
    if extensions.is_some() {
        options = options.with_balanced_compression();
    }
    let mut ws = WebSocket::from_stream_with_extensions(
        stream,
        Role::Server,
        extensions.as_deref(),
        options,
    )
    .map_err(io::Error::other)?;
    echo(&mut ws).await;
    Ok(())
}

/// Reads the upgrade request and answers `101`, agreeing to
/// permessage-deflate (without parameters) if it was offered. `None` when
/// the request is not an upgrade (answered with 400); inside, the agreed
/// extensions.
async fn handshake(stream: &mut TcpStream) -> io::Result<Option<Option<String>>> {
    let mut head = Vec::with_capacity(1024);
    // The client sends nothing after its request until it has the answer,
    // so reading in chunks takes nothing of the WebSocket stream.
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_HEAD {
            return Err(io::Error::other("request head too long"));
        }
        let mut chunk = [0u8; 2048];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    let parsed = request.parse(&head).map_err(io::Error::other)?;
    let find = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    let Some(key) = find("sec-websocket-key").filter(|_| parsed.is_complete()) else {
        stream
            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await?;
        return Ok(None);
    };
    let deflate = find("sec-websocket-extensions").is_some_and(|offer| {
        offer
            .split(',')
            .any(|ext| ext.trim().starts_with("permessage-deflate"))
    });
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key.trim().as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let accept = base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes());
    let extensions = deflate.then(|| "permessage-deflate".to_owned());
    let mut answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
    );
    if let Some(extensions) = &extensions {
        answer.push_str(&format!("Sec-WebSocket-Extensions: {extensions}\r\n"));
    }
    answer.push_str("\r\n");
    stream.write_all(answer.as_bytes()).await?;
    Ok(Some(extensions))
}

/// Echoes until the connection ends: every frame that is ready is read and
/// its echo queued (up to [`BATCH`] between flushes), then one flush.
async fn echo(ws: &mut WebSocket<TcpStream>) {
    let mut queued = 0usize;
    let _ = poll_fn(|cx| -> Poll<Result<(), ()>> {
        loop {
            // Reading stops while a full batch waits to be written.
            while queued < BATCH {
                match ws.poll_next_frame(cx) {
                    Poll::Ready(Ok(frame)) => match frame.opcode() {
                        OpCode::Text | OpCode::Binary => {
                            if frame.payload().as_ref() == b"/CLOSE" {
                                return Poll::Ready(Ok(()));
                            }
                            let (opcode, _, payload) = frame.into_parts();
                            let echo = if opcode == OpCode::Text {
                                Frame::text(payload)
                            } else {
                                Frame::binary(payload)
                            };
                            if Pin::new(&mut *ws).start_send(echo).is_err() {
                                return Poll::Ready(Err(()));
                            }
                            queued += 1;
                        }
                        OpCode::Close => return Poll::Ready(Ok(())),
                        OpCode::Ping | OpCode::Pong | OpCode::Continuation => {}
                    },
                    Poll::Ready(Err(_)) => return Poll::Ready(Err(())),
                    Poll::Pending => break,
                }
            }
            if queued == 0 {
                return Poll::Pending;
            }
            let mut ws = Pin::new(&mut *ws);
            if ready!(ws.as_mut().poll_ready(cx)).is_err()
                || ready!(ws.as_mut().poll_flush(cx)).is_err()
            {
                return Poll::Ready(Err(()));
            }
            queued = 0;
        }
    })
    .await;
    // A polite end: whatever close frames yawc queued go out (its
    // `poll_ready` writes those, `poll_flush` the rest).
    let _ = poll_fn(|cx| {
        let mut ws = Pin::new(&mut *ws);
        ready!(ws.as_mut().poll_ready(cx))?;
        ws.poll_flush(cx)
    })
    .await;
}
