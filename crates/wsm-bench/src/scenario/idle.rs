//! `idle`: the memory of N open, idle connections.
//!
//! `VmRSS` is read before anything is opened and again 2 s after the last
//! connection is up; the difference over N is the cost of one connection.
//! Both variants hold each connection as a user would: every machine is
//! kept, with all its channels, and every bare socket lives in its own task
//! with a read pending, which is the shape of a machine (one task per
//! connection), and holds nothing else (see [`open_sockets`]).
//! Connections are opened concurrently, at most [`IN_FLIGHT`] at a time for
//! both variants, so the server's listen backlog (1024) never overflows; an
//! attempt's task is only created when it starts.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::{
    task::{JoinHandle, JoinSet},
    time::Instant,
};
use ws_machine::{Machine, Message};

use crate::{
    cli::IdleArgs,
    error::{Error, within},
    machine, raw, raw_yawc,
    report::{Client, Report},
    rss::rss_kib,
};

/// Connection attempts under way at once.
const IN_FLIGHT: usize = 512;

/// The longest opening every connection may take.
const OPEN_LIMIT: Duration = Duration::from_secs(60);

/// The size of the message each machine exchanges with `--exchange`.
const EXCHANGED: usize = 1024;

/// How long the connections sit idle before memory is read.
const SETTLE: Duration = Duration::from_secs(2);

/// What keeps the open connections alive until memory has been read.
enum Held {
    /// Every machine, with all its channels.
    Machines(Vec<Machine>),
    /// The tasks owning the bare sockets.
    Sockets(Vec<JoinHandle<()>>),
}

/// Runs the scenario with the client `args.raw` picks.
pub(crate) async fn run(args: &IdleArgs) -> Result<Report, Error> {
    let client = Client::pick(args.raw, args.raw_engine, args.compression);
    let rss_kib_before = rss_kib()?;
    let started = Instant::now();
    let held = match client {
        Client::Machine | Client::MachineDeflate => Held::Machines(open_machines(args).await?),
        Client::Raw => Held::Sockets(open_sockets(&args.url, args.conns).await?),
        Client::RawYawc { deflate } => {
            Held::Sockets(open_yawc_sockets(&args.url, args.conns, deflate).await?)
        }
    };
    let connect = started.elapsed();
    tokio::time::sleep(SETTLE).await;
    let rss_kib_after = rss_kib()?;
    match held {
        // Dropping a machine's command sender makes it quit; whatever has not
        // stopped when the runtime ends is dropped with it.
        Held::Machines(machines) => drop(machines),
        Held::Sockets(tasks) => tasks.iter().for_each(JoinHandle::abort),
    }
    Ok(Report::Idle {
        client,
        conns: args.conns,
        rss_kib_before,
        rss_kib_after,
        connect,
    })
}

/// Runs `open(url)` `n` times, each in a task of its own, at most
/// [`IN_FLIGHT`] at once, and calls `opened` with each result as it comes.
/// A task is only created when there is room for it, so the attempts not
/// yet started take no memory (for either variant).
async fn open_gated<T, F>(
    url: &str,
    n: usize,
    open: impl Fn(String) -> F,
    mut opened: impl FnMut(T),
) -> Result<(), Error>
where
    T: Send + 'static,
    F: Future<Output = Result<T, Error>> + Send + 'static,
{
    // Dropping the set on a timeout or error aborts the rest.
    let mut opening = JoinSet::new();
    let mut started = 0;
    within("opening every connection", OPEN_LIMIT, async {
        loop {
            while started < n && opening.len() < IN_FLIGHT {
                opening.spawn(open(url.to_owned()));
                started += 1;
            }
            match opening.join_next().await {
                Some(result) => opened(result.map_err(Error::Task)??),
                None => return Ok(()),
            }
        }
    })
    .await
}

/// Spawns `args.conns` machines and waits until each has reported
/// `Connected` (and, with `--exchange`, has had one message echoed).
async fn open_machines(args: &IdleArgs) -> Result<Vec<Machine>, Error> {
    let mut machines = Vec::with_capacity(args.conns);
    let (compression, exchange) = (args.compression, args.exchange);
    let open = move |url: String| async move {
        let mut machine = machine::builder(&url, compression)
            .spawn()
            .map_err(Error::Machine)?;
        machine::connected(&mut machine).await?;
        if exchange {
            let text: String = (0..EXCHANGED / 32)
                .map(|i| format!("{{\"seq\":{i:08},\"px\":\"42.125\"}}    "))
                .collect();
            if machine.output.send(Message::text(text)).await.is_err()
                || machine.input.recv().await.is_none()
            {
                return Err(machine::why_stopped(&mut machine.status));
            }
        }
        Ok(machine)
    };
    open_gated(&args.url, args.conns, open, |machine| {
        machines.push(machine)
    })
    .await?;
    Ok(machines)
}

/// Connects `n` bare sockets, then gives each to a task of its own that
/// waits on its next message; returns once all are connected.
///
/// The connecting is done by separate tasks that hand the socket back, so
/// the task that holds it afterwards keeps only the socket and a pending
/// read: the least a connection costs on this engine, the baseline the
/// machine is held to.
async fn open_sockets(url: &str, n: usize) -> Result<Vec<JoinHandle<()>>, Error> {
    let mut tasks = Vec::with_capacity(n);
    let open = |url: String| async move { raw::connect(&url).await };
    let opened = open_gated(url, n, open, |mut socket| {
        // Idle, with a read pending, until aborted.
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(_)) = socket.next().await {}
        }));
    })
    .await;
    if opened.is_err() {
        tasks.iter().for_each(JoinHandle::abort);
    }
    opened.map(|()| tasks)
}

/// [`open_sockets`] for bare yawc.
async fn open_yawc_sockets(
    url: &str,
    n: usize,
    deflate: bool,
) -> Result<Vec<JoinHandle<()>>, Error> {
    let mut tasks = Vec::with_capacity(n);
    let open = move |url: String| async move { raw_yawc::connect(&url, deflate).await };
    let opened = open_gated(url, n, open, |mut socket| {
        tasks.push(tokio::spawn(async move {
            while socket.next().await.is_some() {}
        }));
    })
    .await;
    if opened.is_err() {
        tasks.iter().for_each(JoinHandle::abort);
    }
    opened.map(|()| tasks)
}
