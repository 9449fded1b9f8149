//! `latency`: one message at a time, N rounds; each round is timed from the
//! send to its echo, and the report gives nearest-rank percentiles.

use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio::time::Instant;
use ws_machine::Message;

use super::{RUN_LIMIT, check_echo, payload};
use crate::{
    cli::LatencyArgs,
    error::{Error, within},
    machine, raw,
    report::{Client, Report},
};

/// Runs the scenario with the client `args.raw` picks.
pub(crate) async fn run(args: &LatencyArgs) -> Result<Report, Error> {
    let client = Client::pick(args.raw, args.raw_engine, args.compression);
    let payload = payload(args.size);
    let mut rounds = match client {
        Client::Machine | Client::MachineDeflate => {
            let builder = machine::builder(&args.url, args.compression);
            rounds_machine(builder, &payload, args.rounds).await?
        }
        Client::Raw => rounds_engine(&args.url, &payload, args.rounds).await?,
        Client::RawYawc { .. } => return Err(Error::Unsupported("latency")),
    };
    rounds.sort_unstable();
    Ok(Report::Latency {
        client,
        rounds: args.rounds,
        size: args.size,
        p50: percentile(&rounds, 50),
        p99: percentile(&rounds, 99),
        max: percentile(&rounds, 100),
    })
}

/// Through a machine: `output.send`, then `input.recv`.
async fn rounds_machine(
    builder: ws_machine::Builder,
    payload: &Bytes,
    n: usize,
) -> Result<Vec<Duration>, Error> {
    let mut machine = machine::start(builder).await?;
    let mut rounds = Vec::with_capacity(n);
    let run = within("the latency run", RUN_LIMIT, async {
        for _ in 0..n {
            let started = Instant::now();
            if machine
                .output
                .send(Message::binary(payload.clone()))
                .await
                .is_err()
            {
                return Err(machine::why_stopped(&mut machine.status));
            }
            let Some(echo) = machine.input.recv().await else {
                return Err(machine::why_stopped(&mut machine.status));
            };
            rounds.push(started.elapsed());
            check_echo(payload.len(), echo.len())?;
        }
        Ok(())
    })
    .await;
    machine::stop(machine).await;
    run.map(|()| rounds)
}

/// On the bare engine: `send` (write and flush), then the next message.
async fn rounds_engine(url: &str, payload: &Bytes, n: usize) -> Result<Vec<Duration>, Error> {
    let mut socket = within("connecting", machine::CONNECT_LIMIT, raw::connect(url)).await?;
    let mut rounds = Vec::with_capacity(n);
    within("the latency run", RUN_LIMIT, async {
        for _ in 0..n {
            let started = Instant::now();
            socket
                .send(raw::binary(payload))
                .await
                .map_err(Error::raw("writing"))?;
            let len = raw::next_len(&mut socket).await?;
            rounds.push(started.elapsed());
            check_echo(payload.len(), len)?;
        }
        Ok(())
    })
    .await?;
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close()).await;
    Ok(rounds)
}

/// The nearest-rank `p`-th percentile of `sorted` (ascending): the smallest
/// value with at least `p`% of the values at or below it. Zero if empty.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    // ceil(p * len / 100), at least rank 1.
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().copied().map(Duration::from_millis).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let hundred: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&hundred, 50), Duration::from_millis(50));
        assert_eq!(percentile(&hundred, 99), Duration::from_millis(99));
        assert_eq!(percentile(&hundred, 100), Duration::from_millis(100));

        let five = ms(&[15, 20, 35, 40, 50]);
        assert_eq!(percentile(&five, 50), Duration::from_millis(35));
        assert_eq!(percentile(&five, 99), Duration::from_millis(50));
        assert_eq!(percentile(&ms(&[7]), 50), Duration::from_millis(7));
        assert_eq!(percentile(&[], 50), Duration::ZERO);
    }
}
