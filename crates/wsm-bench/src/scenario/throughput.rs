//! `throughput`: N binary messages of one size, at most W in flight, and
//! their N echoes; the clock runs from the first send to the last echo.
//!
//! Both variants send one shared `Bytes` payload (cloned per message, never
//! copied) and check the length of every echo.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::{sync::Semaphore, time::Instant};

use super::{Payloads, RUN_LIMIT, check_echo};
use crate::{
    cli::{PayloadKind, ThroughputArgs},
    error::{Error, within},
    machine, raw, raw_yawc,
    report::{Client, Report},
};

/// Runs the scenario with the client `args.raw` picks.
pub(crate) async fn run(args: &ThroughputArgs) -> Result<Report, Error> {
    let client = Client::pick(args.raw, args.raw_engine, args.compression);
    let payload = Payloads::new(args.size, args.payload);
    if args.raw && args.payload == PayloadKind::JsonText {
        return Err(Error::Unsupported(
            "--payload json-text (text messages; the bare engines send binary)",
        ));
    }
    let elapsed = match client {
        Client::Machine | Client::MachineDeflate => {
            let builder = machine::builder(&args.url, args.compression);
            through_machine(builder, &payload, args.messages, args.window).await?
        }
        Client::Raw => through_engine(&args.url, &payload, args.messages, args.window).await?,
        Client::RawYawc { deflate } => {
            through_yawc(&args.url, deflate, &payload, args.messages, args.window).await?
        }
    };
    Ok(Report::Throughput {
        client,
        messages: args.messages,
        size: args.size,
        elapsed,
    })
}

/// One task, one `select!`: echoes are taken first (they open the window),
/// then a message is handed to `output` while the window has room.
async fn through_machine(
    builder: ws_machine::Builder,
    payload: &Payloads,
    n: usize,
    window: usize,
) -> Result<Duration, Error> {
    let mut machine = machine::start(builder).await?;
    let started = Instant::now();
    let (mut sent, mut received) = (0, 0);
    let run = within("the throughput run", RUN_LIMIT, async {
        while received < n {
            tokio::select! {
                biased;
                // Cancel-safe: a message is either returned or stays queued.
                message = machine.input.recv() => {
                    let Some(message) = message else {
                        return Err(machine::why_stopped(&mut machine.status));
                    };
                    check_echo(payload.size(), message.len())?;
                    received += 1;
                }
                // Cancel-safe: a slot not reserved is not lost, and the
                // message is only built once the slot is ours.
                permit = machine.output.reserve(), if sent < n && sent - received < window => {
                    let Ok(permit) = permit else {
                        return Err(machine::why_stopped(&mut machine.status));
                    };
                    if permit.send(payload.message(sent)).is_err() {
                        return Err(machine::why_stopped(&mut machine.status));
                    }
                    sent += 1;
                }
            }
        }
        Ok(())
    })
    .await;
    let elapsed = started.elapsed();
    machine::stop(machine).await;
    run.map(|()| elapsed)
}

/// The socket split in two halves driven side by side in this task: the
/// writer feeds messages while the window has room and flushes when it is
/// full or everything is sent (not per message, which would handicap the
/// engine); the reader counts echoes and opens the window again.
async fn through_engine(
    url: &str,
    payload: &Payloads,
    n: usize,
    window: usize,
) -> Result<Duration, Error> {
    let socket = within("connecting", machine::CONNECT_LIMIT, raw::connect(url)).await?;
    let (mut sink, mut stream) = socket.split();
    // One permit per message allowed in flight.
    let room = Semaphore::new(window);
    let started = Instant::now();
    let writer = async {
        let mut sent = 0;
        while sent < n {
            // Wait for room, then take all the room there is.
            room.acquire()
                .await
                .map_err(|_| Error::Closed("every message was sent"))?
                .forget();
            sink.feed(raw::binary(payload.get(sent)))
                .await
                .map_err(Error::raw("writing"))?;
            sent += 1;
            while sent < n {
                let Ok(permit) = room.try_acquire() else {
                    break;
                };
                permit.forget();
                sink.feed(raw::binary(payload.get(sent)))
                    .await
                    .map_err(Error::raw("writing"))?;
                sent += 1;
            }
            sink.flush().await.map_err(Error::raw("flushing"))?;
        }
        Ok(())
    };
    let reader = async {
        for _ in 0..n {
            check_echo(payload.size(), raw::next_len(&mut stream).await?)?;
            room.add_permits(1);
        }
        Ok(())
    };
    within("the throughput run", RUN_LIMIT, async {
        tokio::try_join!(writer, reader).map(|((), ())| ())
    })
    .await?;
    let elapsed = started.elapsed();
    // Not timed: a polite close, bounded.
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
    Ok(elapsed)
}

/// Bare yawc, the same way as [`through_engine`]: the socket split in two,
/// the writer feeding while the window has room and flushing when it is
/// full (yawc also flushes by itself once its write buffer passes its
/// backpressure boundary, 8 KiB by default).
async fn through_yawc(
    url: &str,
    deflate: bool,
    payload: &Payloads,
    n: usize,
    window: usize,
) -> Result<Duration, Error> {
    let socket = within(
        "connecting",
        machine::CONNECT_LIMIT,
        raw_yawc::connect(url, deflate),
    )
    .await?;
    let (mut sink, mut stream) = socket.split();
    let room = Semaphore::new(window);
    let started = Instant::now();
    let writer = async {
        let mut sent = 0;
        while sent < n {
            room.acquire()
                .await
                .map_err(|_| Error::Closed("every message was sent"))?
                .forget();
            sink.feed(raw_yawc::binary(payload.get(sent)))
                .await
                .map_err(Error::raw_yawc("writing"))?;
            sent += 1;
            while sent < n {
                let Ok(permit) = room.try_acquire() else {
                    break;
                };
                permit.forget();
                sink.feed(raw_yawc::binary(payload.get(sent)))
                    .await
                    .map_err(Error::raw_yawc("writing"))?;
                sent += 1;
            }
            sink.flush().await.map_err(Error::raw_yawc("flushing"))?;
        }
        Ok(())
    };
    let reader = async {
        for _ in 0..n {
            check_echo(payload.size(), raw_yawc::next_len(&mut stream).await?)?;
            room.add_permits(1);
        }
        Ok(())
    };
    within("the throughput run", RUN_LIMIT, async {
        tokio::try_join!(writer, reader).map(|((), ())| ())
    })
    .await?;
    let elapsed = started.elapsed();
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
    Ok(elapsed)
}
