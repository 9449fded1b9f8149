//! The scenarios of the bench contract, one module each. Where `--raw`
//! applies (throughput, latency, idle), the module holds both variants side
//! by side, the machine's and the bare engine's, so that a reader can check
//! that they do the same work.

mod churn;
mod deadpeer;
mod idle;
mod latency;
mod throughput;

use std::time::Duration;

use crate::{cli::Command, error::Error, report::Report};

/// The longest a throughput or latency run may take once connected. The
/// benchmark's sizes take about a second; this only stops a stalled run.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// Runs the scenario `command` names and returns what it measured.
///
/// # Errors
///
/// Whatever stopped the scenario; see [`Error`].
pub(crate) async fn run(command: Command) -> Result<Report, Error> {
    match command {
        Command::Throughput(args) => throughput::run(&args).await,
        Command::Latency(args) => latency::run(&args).await,
        Command::Idle(args) => idle::run(&args).await,
        Command::Churn(args) => churn::run(&args).await,
        Command::Deadpeer(args) => deadpeer::run(&args).await,
    }
}

/// A payload of `size` bytes, allocated once and shared by every message.
fn payload(size: usize) -> bytes::Bytes {
    bytes::Bytes::from(vec![0xa5; size])
}

/// The payloads of a throughput run: one shared payload (the contract's),
/// or a pool of distinct JSON-like texts that compress as a feed's
/// messages do, taken in turn (far enough apart that deflate's 32 KiB
/// window never holds the previous use of the same payload).
pub(crate) struct Payloads {
    pool: Vec<bytes::Bytes>,
    size: usize,
    /// Sent as text messages (the pool is then UTF-8).
    text: bool,
}

impl Payloads {
    /// Payloads of `size` bytes of the given kind.
    pub(crate) fn new(size: usize, kind: crate::cli::PayloadKind) -> Self {
        let pool = match kind {
            crate::cli::PayloadKind::Same => vec![payload(size)],
            crate::cli::PayloadKind::Json | crate::cli::PayloadKind::JsonText => {
                // At least 128 KiB of distinct text, at least 4 payloads.
                let count = (128 * 1024 / size).clamp(4, 4096);
                let mut seed = 0x2545_f491_4f6c_dd1d_u64;
                (0..count)
                    .map(|_| bytes::Bytes::from(json_text(size, &mut seed)))
                    .collect()
            }
        };
        Self {
            pool,
            size,
            text: kind == crate::cli::PayloadKind::JsonText,
        }
    }

    /// Message `i` for a machine: its payload, as binary or text.
    pub(crate) fn message(&self, i: usize) -> ws_machine::Message {
        let payload = self.get(i);
        if self.text {
            // The pool is ASCII; a text message owns its String: a copy
            // per message, the same whatever the library does.
            ws_machine::Message::text(String::from_utf8_lossy(payload).into_owned())
        } else {
            ws_machine::Message::binary(payload.clone())
        }
    }

    /// The payload of message `i`.
    pub(crate) fn get(&self, i: usize) -> &bytes::Bytes {
        &self.pool[i % self.pool.len()]
    }

    /// The size of every payload.
    pub(crate) fn size(&self) -> usize {
        self.size
    }
}

/// `size` bytes of JSON-like records (a trade feed), varied by `seed`.
fn json_text(size: usize, seed: &mut u64) -> Vec<u8> {
    const SYMBOLS: [&str; 6] = ["BTC-USD", "ETH-USD", "SOL-USD", "EUR-USD", "AAPL", "MSFT"];
    let mut next = || {
        // xorshift64*: deterministic, the same text in every run.
        *seed ^= *seed >> 12;
        *seed ^= *seed << 25;
        *seed ^= *seed >> 27;
        seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut text = Vec::with_capacity(size + 128);
    while text.len() < size {
        let r = next();
        let symbol = SYMBOLS[(r % 6) as usize];
        let record = format!(
            r#"{{"type":"trade","symbol":"{symbol}","price":{}.{:02},"size":{}.{:03},"side":"{}","ts":{}}},"#,
            1000 + (r >> 8) % 60000,
            (r >> 24) % 100,
            (r >> 32) % 50,
            (r >> 40) % 1000,
            if r & 1 == 0 { "buy" } else { "sell" },
            1_733_450_000_000 + (r >> 20) % 1_000_000,
        );
        text.extend_from_slice(record.as_bytes());
    }
    text.truncate(size);
    text
}

/// Fails with [`Error::BadEcho`] unless `got` bytes came back for `expected`.
fn check_echo(expected: usize, got: usize) -> Result<(), Error> {
    if got == expected {
        Ok(())
    } else {
        Err(Error::BadEcho { expected, got })
    }
}
