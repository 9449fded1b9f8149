//! A whole machine against a server that sends what the fuzzer chose: the
//! `machine`, `machine_deflate` and `handshake` targets.
//!
//! The server is the other end of an in-memory pipe, handed to the machine
//! by its dialer ([`Builder::dialer`](ws_machine::Builder::dialer)), so no
//! socket is opened and each run is a few hundred microseconds. The runtime
//! has one thread and a paused clock: tokio jumps to the next timer as soon
//! as every task waits, so the machine's timeouts (handshake, pong, close)
//! cost nothing, and a run that would wait forever shows as [`BOUND`] of
//! virtual time passing: a failure, like a panic.
//!
//! The properties, whatever the server sends:
//! - nothing panics (libFuzzer aborts on any panic, in any task);
//! - the machine reports `Connecting` first, and a last status, a
//!   `Disconnected` (it does not reconnect), then closes `status` and
//!   `input`, within [`BOUND`];
//! - after a valid upgrade it reports `Connected`, with the compression
//!   agreed;
//! - every message handed over is at most [`MAX_MESSAGE_SIZE`] bytes, text
//!   is UTF-8, and all came on the first connection;
//! - the stats count the messages handed over.

use std::{
    io,
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, DuplexStream};
use ws_machine::{Deflate, Kind, Machine, Message, State, Status};

/// The machine's limit on incoming messages: small, so that the fuzzer
/// reaches it (and, compressed, goes beyond it) with small inputs.
pub const MAX_MESSAGE_SIZE: usize = 1024;

/// The longest a run may take, in virtual time (the clock is paused). Far
/// more than every timeout of the machine added up (handshake 10 s, close
/// 1 s, pong 10 s after a ping every 30 s).
const BOUND: Duration = Duration::from_secs(3600);

/// Set, this variable has each run print what the machine reported (to
/// see what an input does: `WSM_FUZZ_SHOW=1 cargo fuzz run machine FILE`).
const SHOW: &str = "WSM_FUZZ_SHOW";

/// The most of the upgrade request the server reads (the machine's is a
/// few hundred bytes).
const MAX_REQUEST: usize = 16 * 1024;

/// The pipe's buffer each way.
const PIPE: usize = 64 * 1024;

/// One offer of the `machine_deflate` target: what the machine offers, the
/// server's `Sec-WebSocket-Extensions` answer, and what the machine must
/// report it agreed to (written out here, not read by the library's
/// parser, so that a fault of the parser shows).
struct Agreement {
    offer: Deflate,
    answer: Option<&'static str>,
    agreed: Option<Deflate>,
}

/// The offers of the `machine_deflate` target (its first byte picks one):
/// every window and context takeover the inflater can be set up with, and a
/// server that declines (the connection then runs uncompressed on the
/// compression engine).
const AGREEMENTS: [Agreement; 7] = [
    Agreement {
        offer: Deflate::new(),
        answer: Some("permessage-deflate"),
        agreed: Some(Deflate::new()),
    },
    Agreement {
        offer: Deflate::new(),
        answer: Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
        agreed: Some(
            Deflate::new()
                .server_no_context_takeover()
                .client_no_context_takeover(),
        ),
    },
    Agreement {
        offer: Deflate::new().server_max_window_bits(9),
        answer: Some("permessage-deflate; server_max_window_bits=9"),
        agreed: Some(Deflate::new().server_max_window_bits(9)),
    },
    Agreement {
        offer: Deflate::new().server_max_window_bits(12),
        answer: Some("permessage-deflate; server_max_window_bits=8"),
        agreed: Some(Deflate::new().server_max_window_bits(8)),
    },
    Agreement {
        offer: Deflate::new(),
        answer: Some("permessage-deflate; client_max_window_bits=9"),
        agreed: Some(Deflate::new().client_max_window_bits(9)),
    },
    Agreement {
        offer: Deflate::new().server_no_context_takeover(),
        answer: Some("permessage-deflate; server_no_context_takeover"),
        agreed: Some(Deflate::new().server_no_context_takeover()),
    },
    Agreement {
        offer: Deflate::new(),
        answer: None,
        agreed: None,
    },
];

/// Where `{accept}` in a `handshake` input is replaced by the
/// `Sec-WebSocket-Accept` the request calls for.
const ACCEPT: &[u8] = b"{accept}";

/// The `machine` target: a valid upgrade without compression (the
/// tokio-websockets engine), then `data`, then the end of the stream.
pub fn plain(data: &[u8]) {
    run(
        None,
        Answer::Upgrade {
            extension: None,
            agreed: None,
            frames: data.to_vec(),
        },
    );
}

/// The `machine_deflate` target: the first byte picks an offer and the
/// server's agreement ([`AGREEMENTS`]), then a valid upgrade (the yawc
/// engine), the rest of `data`, and the end of the stream.
pub fn deflate(data: &[u8]) {
    let Some((&pick, frames)) = data.split_first() else {
        return;
    };
    let Agreement {
        offer,
        answer,
        agreed,
    } = &AGREEMENTS[usize::from(pick) % AGREEMENTS.len()];
    run(
        Some(*offer),
        Answer::Upgrade {
            extension: *answer,
            agreed: *agreed,
            frames: frames.to_vec(),
        },
    );
}

/// The `handshake` target: the first byte's lowest bit says whether the
/// machine offers compression (the yawc engine) or not (tokio-websockets);
/// the rest is the whole answer to the upgrade request (and whatever
/// follows it), with `{accept}` replaced by the right
/// `Sec-WebSocket-Accept`, so that the fuzzer can write a valid answer.
pub fn handshake(data: &[u8]) {
    let Some((&flags, answer)) = data.split_first() else {
        return;
    };
    let offer = (flags & 1 == 1).then(Deflate::new);
    run(offer, Answer::Raw(answer.to_vec()));
}

/// What the server sends once it has read the upgrade request.
enum Answer {
    /// `101 Switching Protocols`, with this `Sec-WebSocket-Extensions`
    /// (which agrees to `agreed`), then these bytes.
    Upgrade {
        extension: Option<&'static str>,
        agreed: Option<Deflate>,
        frames: Vec<u8>,
    },
    /// These bytes, `{accept}` replaced.
    Raw(Vec<u8>),
}

impl Answer {
    /// The bytes to send, for a request with this `Sec-WebSocket-Key`.
    fn bytes(&self, key: &str) -> Vec<u8> {
        let accept = accept(key);
        match self {
            Self::Upgrade {
                extension, frames, ..
            } => {
                let extension = extension
                    .map(|e| format!("Sec-WebSocket-Extensions: {e}\r\n"))
                    .unwrap_or_default();
                let mut bytes = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{extension}\r\n"
                )
                .into_bytes();
                bytes.extend_from_slice(frames);
                bytes
            }
            Self::Raw(template) => replace(template, ACCEPT, accept.as_bytes()),
        }
    }

    /// With a valid upgrade, the compression the machine must report on
    /// `Connected`; `None` when the answer is the fuzzer's.
    fn agreed(&self) -> Option<Option<Deflate>> {
        match self {
            Self::Upgrade { agreed, .. } => Some(*agreed),
            Self::Raw(_) => None,
        }
    }
}

/// Runs one machine against a server answering `answer`, and checks what
/// it reports (see the module's documentation).
fn run(offer: Option<Deflate>, answer: Answer) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let (client, server) = tokio::io::duplex(PIPE);
        let agreed = answer.agreed();
        let server = tokio::spawn(serve(server, answer));
        let mut machine = machine(client, offer);
        let seen = tokio::time::timeout(BOUND, watch(&mut machine))
            .await
            .unwrap_or_else(|_| panic!("the machine did not stop within {BOUND:?}"));
        check(&seen, offer, agreed, &machine);
        let leftovers = tokio::time::timeout(BOUND, machine.shutdown())
            .await
            .expect("a stopped machine's shutdown returns at once");
        assert!(
            leftovers.received.is_empty(),
            "every message was read from input: {} left",
            leftovers.received.len()
        );
        server.abort();
    });
}

/// A machine whose one connection is `client`, that does not reconnect.
fn machine(client: DuplexStream, offer: Option<Deflate>) -> Machine {
    let client = Arc::new(Mutex::new(Some(client)));
    Machine::builder("ws://fuzz.test/feed")
        .dialer(move |_| {
            let next = client.lock().ok().and_then(|mut c| c.take());
            async move { next.ok_or_else(|| io::Error::from(io::ErrorKind::ConnectionRefused)) }
        })
        .reconnect(false)
        .max_message_size(MAX_MESSAGE_SIZE)
        .compression(offer)
        .spawn()
        .expect("valid options")
}

/// What the machine reported and handed over.
struct Seen {
    statuses: Vec<Status>,
    received: u64,
}

/// Reads `status` and `input` until both close, checking each message, and
/// sends one message once connected (so that writes mix with the reads).
async fn watch(machine: &mut Machine) -> Seen {
    let mut seen = Seen {
        statuses: Vec::new(),
        received: 0,
    };
    let (mut status_open, mut input_open) = (true, true);
    while status_open || input_open {
        tokio::select! {
            status = machine.status.recv(), if status_open => match status {
                Some(status) => {
                    if status.state == State::Connected {
                        // Refused once the connection is gone: that is fine.
                        let _ = machine.output.try_send(Message::text("from the machine"));
                    }
                    seen.statuses.push(status);
                }
                None => status_open = false,
            },
            message = machine.input.recv(), if input_open => match message {
                Some(message) => {
                    check_message(&message);
                    seen.received += 1;
                }
                None => input_open = false,
            },
        }
    }
    seen
}

/// A message the machine handed over.
fn check_message(message: &Message) {
    assert!(
        message.len() <= MAX_MESSAGE_SIZE,
        "a message of {} bytes, over the limit of {MAX_MESSAGE_SIZE}",
        message.len()
    );
    match message.kind() {
        Kind::Text => assert!(message.as_text().is_some(), "text that is not UTF-8"),
        Kind::Binary => {}
        Kind::Unspecified => panic!("a received message of no kind"),
    }
    assert_eq!(message.connection(), 1, "a message of another connection");
}

/// What the machine reported, against what the server did.
/// `agreed` is the compression the machine must report on `Connected`
/// after a valid upgrade, `None` when the answer is the fuzzer's.
fn check(seen: &Seen, offer: Option<Deflate>, agreed: Option<Option<Deflate>>, machine: &Machine) {
    let statuses = &seen.statuses;
    let shown = || {
        statuses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" | ")
    };
    if std::env::var_os(SHOW).is_some() {
        eprintln!("{} message(s); {}", seen.received, shown());
    }
    assert_eq!(
        statuses.first().map(|s| s.state),
        Some(State::Connecting),
        "{}",
        shown()
    );
    let last = statuses.last().expect("a status");
    assert!(
        last.is_final() && last.state == State::Disconnected,
        "the last status: {}",
        shown()
    );
    assert_eq!(
        statuses.iter().filter(|s| s.is_final()).count(),
        1,
        "{}",
        shown()
    );
    let connected = statuses.iter().find(|s| s.state == State::Connected);
    if let Some(agreed) = agreed {
        let connected = connected.unwrap_or_else(|| panic!("a valid upgrade: {}", shown()));
        assert_eq!(connected.compression, agreed, "{}", shown());
    }
    if let (Some(connected), Some(offer)) = (connected, offer)
        && let Some(agreed) = connected.compression
    {
        assert!(
            agreed.server_window_bits() <= offer.server_window_bits()
                && (8..=15).contains(&agreed.server_window_bits())
                && (9..=offer.client_window_bits()).contains(&agreed.client_window_bits()),
            "agreed {agreed} to {offer}"
        );
    }
    if connected.is_none() {
        assert_eq!(seen.received, 0, "messages without a connection");
    }
    let stats = machine.stats();
    assert_eq!(
        stats.messages_in, seen.received,
        "the stats count every message handed over"
    );
}

/// The server: reads the upgrade request, sends `answer` and ends its side
/// of the stream, and reads what the machine sends until the machine ends
/// its side (so that the machine's writes never wait on a full pipe).
async fn serve(server: DuplexStream, answer: Answer) -> io::Result<()> {
    let (mut from_machine, mut to_machine) = tokio::io::split(server);
    let request = read_request(&mut from_machine).await?;
    let key = request_header(&request, "sec-websocket-key").unwrap_or_default();
    let bytes = answer.bytes(&key);
    let send = async {
        to_machine.write_all(&bytes).await?;
        to_machine.shutdown().await
    };
    let drain = async {
        let mut sink = tokio::io::sink();
        tokio::io::copy(&mut from_machine, &mut sink).await
    };
    let (sent, _) = tokio::join!(send, drain);
    sent
}

/// The upgrade request, up to its blank line.
async fn read_request(from: &mut (impl AsyncRead + Unpin)) -> io::Result<Vec<u8>> {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = from.read(&mut buf).await?;
        if n == 0 || request.len() > MAX_REQUEST {
            return Err(io::ErrorKind::InvalidData.into());
        }
        request.extend_from_slice(&buf[..n]);
    }
    Ok(request)
}

/// The value of header `name` (lower case) in `request`.
fn request_header(request: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(request)
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim().to_owned())
}

/// `Sec-WebSocket-Accept` for `key` (RFC 6455, section 4.2.2).
fn accept(key: &str) -> String {
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    STANDARD.encode(sha1.digest().bytes())
}

/// `bytes` with every `from` replaced by `to`.
fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.starts_with(from) {
            out.extend_from_slice(to);
            rest = &rest[from.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}
