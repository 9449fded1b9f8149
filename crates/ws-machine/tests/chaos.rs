//! Stopping at random moments: thousands of machines, each stopped (quit,
//! close, shutdown, dropped, or its command sender dropped) after a random
//! delay while it is connecting, waiting between attempts, writing large
//! messages, closing towards a server that froze, or writing again what a
//! closed connection left unacknowledged. Every machine stops within the
//! bound, no task panics, and afterwards the process holds as many file
//! descriptors and tasks as before. On 127.0.0.1 only.
//!
//! CI runs 2,000 rounds; `WSM_SOAK_FULL=1` runs 20,000.

mod common;

use std::{
    sync::{
        OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use common::{WAIT, closed_port_url, fast, ms};
use tokio::{runtime::Handle, task::JoinSet, time::timeout};
use ws_machine::{CloseFrame, Command, Machine, Message};
use wsm_server::{Config, Server};

/// Panics on the runtime's worker threads, where the machines run.
static WORKER_PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_worker_panics() {
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current()
                .name()
                .is_some_and(|name| name.starts_with("tokio-runtime-worker"))
            {
                WORKER_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

/// Where a machine is when it is stopped.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// The server does not accept: the attempt is under way.
    Connecting,
    /// Nothing listens: between refused attempts.
    Waiting,
    /// Large messages are being written.
    Writing,
    /// A reconnect closes a connection whose server froze: the close
    /// handshake waits for an answer that never comes.
    Closing,
    /// The server closes after a few messages; unacknowledged ones are
    /// written again on the next connection.
    Replaying,
}

/// How a machine is stopped.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Quit,
    Close,
    Shutdown,
    DropAll,
    DropCommand,
}

struct Servers {
    paused: Server,
    refused: String,
    echo: Server,
    freezing: Server,
    closing: Server,
}

impl Servers {
    async fn start() -> Self {
        let paused = Server::start(Config::default().record_limit(0)).expect("server");
        paused.pause_accepting(true);
        Self {
            paused,
            refused: closed_port_url().await,
            echo: Server::start(Config::default().record_limit(0)).expect("server"),
            freezing: Server::start(Config::default().freeze_after(Some(ms(5))).record_limit(0))
                .expect("server"),
            closing: Server::start(Config::default().close_after(Some(5)).record_limit(0))
                .expect("server"),
        }
    }
}

/// One round: a machine at `moment`, stopped by `stop` after `delay`.
/// Returns whether it stopped within the bound.
async fn round(urls: [String; 5], moment: Moment, stop: Stop, delay: Duration) -> bool {
    let [paused, refused, echo, freezing, closing] = urls;
    let builder = match moment {
        Moment::Connecting => fast(paused),
        Moment::Waiting => fast(refused),
        Moment::Writing => fast(echo),
        Moment::Closing => fast(freezing),
        Moment::Replaying => fast(closing)
            .min_uptime(Duration::ZERO)
            .ack_key(|m: &Message| m.as_text()?.parse().ok()),
    };
    let machine = builder.spawn().expect("valid options");
    let messages: Vec<Message> = match moment {
        Moment::Writing => (0..4)
            .map(|_| Message::binary(vec![7u8; 256 * 1024]))
            .collect(),
        _ => (0..20).map(|n| Message::text(n.to_string())).collect(),
    };
    for message in messages {
        // A full queue is fine: the point is a machine with work to do.
        let _ = machine.output.try_send(message);
    }
    if let Moment::Closing = moment {
        tokio::time::sleep(delay / 2).await;
        let _ = machine.command.try_send(Command::Reconnect);
        tokio::time::sleep(delay / 2).await;
    } else {
        tokio::time::sleep(delay).await;
    }
    let bound = WAIT;
    match stop {
        Stop::Shutdown => timeout(bound, machine.shutdown()).await.is_ok(),
        Stop::Quit | Stop::Close | Stop::DropAll | Stop::DropCommand => {
            let Machine {
                input,
                output,
                status,
                command,
                stopped,
                ..
            } = machine;
            match stop {
                Stop::Quit => {
                    let _ = command.try_send(Command::Quit);
                }
                Stop::Close => {
                    let frame = CloseFrame::new(4000, "bye").expect("a valid close frame");
                    let _ = command.try_send(Command::Close(frame));
                }
                Stop::DropAll => {
                    drop((input, output, status, command));
                    return timeout(bound, stopped).await.is_ok();
                }
                Stop::DropCommand | Stop::Shutdown => {}
            }
            drop(command);
            // `input`, `output` and `status` stay alive, unread.
            let stopped_in_time = timeout(bound, stopped).await.is_ok();
            drop((input, output, status));
            stopped_in_time
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_at_random_moments_never_hangs_panics_or_leaks() {
    count_worker_panics();
    let rounds: u64 = if std::env::var_os("WSM_SOAK_FULL").is_some_and(|v| v == "1") {
        20_000
    } else {
        2_000
    };
    let start = (open_fds(), Handle::current().metrics().num_alive_tasks());
    let servers = Servers::start().await;
    let moments = [
        Moment::Connecting,
        Moment::Waiting,
        Moment::Writing,
        Moment::Closing,
        Moment::Replaying,
    ];
    let stops = [
        Stop::Quit,
        Stop::Close,
        Stop::Shutdown,
        Stop::DropAll,
        Stop::DropCommand,
    ];
    let mut rng = fastrand::Rng::with_seed(20_261_206);
    let mut stuck = Vec::new();
    let batch = 50;
    for first in (0..rounds).step_by(batch) {
        let mut set = JoinSet::new();
        for n in first..(first + batch as u64).min(rounds) {
            let moment = moments[rng.usize(..moments.len())];
            let stop = stops[rng.usize(..stops.len())];
            let delay = Duration::from_micros(rng.u64(0..10_000));
            let urls = [
                servers.paused.url(),
                servers.refused.clone(),
                servers.echo.url(),
                servers.freezing.url(),
                servers.closing.url(),
            ];
            set.spawn(async move { (n, moment, stop, round(urls, moment, stop, delay).await) });
        }
        while let Some(done) = set.join_next().await {
            let (n, moment, stop, stopped) = done.expect("a round does not panic");
            if !stopped {
                stuck.push((n, moment, stop));
            }
        }
    }
    assert!(stuck.is_empty(), "did not stop in time: {stuck:?}");
    assert_eq!(WORKER_PANICS.load(Ordering::SeqCst), 0, "a task panicked");
    // Everything the rounds and the servers opened is closed again. The
    // servers' tasks end a moment after they are dropped, and nothing
    // signals that: the counts are looked at every 10 ms, within WAIT.
    drop(servers);
    let settled = timeout(WAIT, async {
        loop {
            let now = (open_fds(), Handle::current().metrics().num_alive_tasks());
            if now == start {
                return now;
            }
            tokio::time::sleep(ms(10)).await;
        }
    })
    .await;
    assert!(
        settled.is_ok(),
        "{:?} descriptors and tasks after {rounds} rounds, {start:?} before",
        (open_fds(), Handle::current().metrics().num_alive_tasks())
    );
    println!(
        "{rounds} rounds stopped at random moments: none stuck, no panic, {start:?} descriptors and tasks before and after"
    );
}

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd lists this process's descriptors")
        .count()
}
