//! Micro-benchmarks of the machine's per-message path, each beside the
//! baseline it replaces or wraps, measured in the same run:
//!
//! - `handoff`: passing messages between the caller and the machine's task
//!   through the crate's channels, and polling one with nothing in it (as a
//!   machine's task does every turn for the channels that are idle),
//!   against tokio's `mpsc` (which they replace to save memory: this shows
//!   what that costs in speed);
//! - `message`: building a [`Message`] from the caller's buffer (a `Bytes`
//!   clone: no copy of the payload);
//! - `round_trip`: 1,000 messages of 64 bytes through a machine to an echo
//!   server on 127.0.0.1 and back (queue, encode, write, read, hand-off),
//!   against the bare engine (tokio-websockets) on the same server.
//!
//! ```text
//! cargo bench -p ws-machine --bench per_message
//! ```

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::{SinkExt, StreamExt};
use tokio::runtime::Runtime;
use ws_machine::{Machine, Message, State, channel};
use wsm_server::{Config, Server};

/// Messages per iteration of the batch benchmarks.
const BATCH: usize = 1_000;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// The hand-off benchmarks for one kind of channel: `$make(capacity)`
/// returns `(sender, receiver)` with the `send`/`try_send`/`recv`/`try_recv`/
/// `poll_recv` of tokio's `mpsc`. (A macro because the two kinds share no
/// trait.)
macro_rules! handoff_benches {
    ($group:expr, $rt:expr, $payload:expr, $name:literal, $make:path) => {
        // What a machine's task does on every turn of its loop for the
        // channels with nothing in them: poll, find nothing, keep the
        // waker stored by the first poll. In a spawned task, as a
        // machine's is (`block_on`'s waker differs from its clones).
        $group.bench_function(concat!($name, ", poll an empty channel"), |b| {
            b.to_async($rt).iter(|| async {
                tokio::spawn(async {
                    let (_tx, mut rx) = $make(64);
                    for _ in 0..BATCH {
                        let polled = std::future::poll_fn(|cx| {
                            std::task::Poll::Ready(rx.poll_recv(cx).is_pending())
                        })
                        .await;
                        assert!(std::hint::black_box(polled), "nothing was sent");
                    }
                })
                .await
                .expect("no panic");
            });
        });
        $group.bench_function(concat!($name, ", try_send/try_recv"), |b| {
            let (tx, mut rx) = $make(BATCH);
            b.iter(|| {
                for _ in 0..BATCH {
                    tx.try_send(Message::binary($payload.clone()))
                        .expect("room for the batch");
                }
                for _ in 0..BATCH {
                    std::hint::black_box(rx.try_recv().expect("a message"));
                }
            });
        });
        $group.bench_function(concat!($name, ", two tasks, capacity 64"), |b| {
            b.to_async($rt).iter(|| {
                let payload = $payload.clone();
                async move {
                    let (tx, mut rx) = $make(64);
                    let sender = tokio::spawn(async move {
                        for _ in 0..BATCH {
                            tx.send(Message::binary(payload.clone()))
                                .await
                                .expect("receiver alive");
                        }
                    });
                    for _ in 0..BATCH {
                        std::hint::black_box(rx.recv().await.expect("a message"));
                    }
                    sender.await.expect("sender ok");
                }
            });
        });
    };
}

/// Polling a channel with nothing in it, filling a channel with a batch and
/// emptying it, and the same between two tasks with waiting
/// (`send().await` against `recv().await`).
fn handoff(c: &mut Criterion) {
    let payload = Bytes::from_static(&[7; 64]);
    let rt = runtime();
    let mut group = c.benchmark_group("handoff");
    group.throughput(Throughput::Elements(BATCH as u64));
    handoff_benches!(
        group,
        &rt,
        payload,
        "ws-machine channel",
        channel::channel::<Message>
    );
    handoff_benches!(
        group,
        &rt,
        payload,
        "tokio mpsc",
        tokio::sync::mpsc::channel::<Message>
    );
    group.finish();
}

/// Building messages from the caller's data.
fn message(c: &mut Criterion) {
    let mut group = c.benchmark_group("message");
    for size in [64usize, 16 * 1024] {
        let payload = Bytes::from(vec![7u8; size]);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(
            BenchmarkId::new("binary from Bytes", size),
            &payload,
            |b, payload| b.iter(|| Message::binary(std::hint::black_box(payload.clone()))),
        );
        let text = "x".repeat(size);
        group.bench_with_input(
            BenchmarkId::new("text from &str (one copy)", size),
            &text,
            |b, text| b.iter(|| Message::text(std::hint::black_box(text.as_str()))),
        );
    }
    group.finish();
}

/// Messages in flight in `round_trip`.
const WINDOW: usize = 100;

/// One batch through a machine: at most `WINDOW` in flight.
async fn machine_batch(machine: &mut Machine, payload: &Bytes) {
    let (mut sent, mut received) = (0, 0);
    while received < BATCH {
        while sent < BATCH && sent - received < WINDOW {
            machine
                .output
                .send(Message::binary(payload.clone()))
                .await
                .expect("machine running");
            sent += 1;
        }
        std::hint::black_box(machine.input.recv().await.expect("an echo"));
        received += 1;
    }
}

type Bare =
    tokio_websockets::WebSocketStream<tokio_websockets::MaybeTlsStream<tokio::net::TcpStream>>;

/// One batch on the bare engine, written the way its docs suggest: `feed`
/// while the window allows, one `flush`, then read.
async fn bare_batch(ws: &mut Bare, payload: &Bytes) {
    let (mut sent, mut received) = (0, 0);
    while received < BATCH {
        while sent < BATCH && sent - received < WINDOW {
            ws.feed(tokio_websockets::Message::binary(payload.clone()))
                .await
                .expect("fed");
            sent += 1;
        }
        ws.flush().await.expect("flushed");
        std::hint::black_box(ws.next().await.expect("an echo").expect("ok"));
        received += 1;
    }
}

/// Messages through a machine and back, against the bare engine.
fn round_trip(c: &mut Criterion) {
    let rt = runtime();
    let server = rt
        .block_on(async { Server::start(Config::default()) })
        .expect("a local server");
    let url = server.url();
    let payload = Bytes::from_static(&[7; 64]);

    let mut group = c.benchmark_group("round_trip");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.measurement_time(Duration::from_secs(5));

    let mut machine = rt.block_on(async {
        let mut machine = Machine::builder(url.clone()).spawn().expect("valid");
        while let Some(status) = machine.status.recv().await {
            if status.state == State::Connected {
                break;
            }
        }
        machine
    });
    group.bench_function("ws-machine, 64 B", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    machine_batch(&mut machine, &payload).await;
                }
                start.elapsed()
            })
        });
    });

    let mut bare = rt.block_on(async {
        let (ws, _) = tokio_websockets::ClientBuilder::new()
            .uri(&url)
            .expect("valid")
            .connect()
            .await
            .expect("connected");
        ws
    });
    group.bench_function("tokio-websockets bare, 64 B", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    bare_batch(&mut bare, &payload).await;
                }
                start.elapsed()
            })
        });
    });
    group.finish();
    drop((machine, bare));
    rt.block_on(server.stop());
}

criterion_group!(benches, handoff, message, round_trip);
criterion_main!(benches);
