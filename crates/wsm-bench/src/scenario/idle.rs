//! `idle`: the memory of N open, idle connections.
//!
//! `VmRSS` is read before anything is opened and again 2 s after the last
//! connection is up; the difference over N is the cost of one connection.
//! Both variants hold each connection as a user would: every machine is
//! kept, with all its channels, and every bare socket lives in its own task
//! with a read pending, which is the shape of a machine (one task per
//! connection), and holds nothing else (see [`open_sockets`]). Connections are opened concurrently, at most
//! [`IN_FLIGHT`] at a time for both variants, so the server's listen backlog
//! (1024) never overflows.

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;
use tokio::{
    sync::Semaphore,
    task::{JoinHandle, JoinSet},
    time::Instant,
};
use ws_machine::Machine;

use crate::{
    cli::IdleArgs,
    error::{Error, within},
    machine, raw,
    report::{Client, Report},
    rss::rss_kib,
};

/// Connection attempts under way at once.
const IN_FLIGHT: usize = 512;

/// The longest opening every connection may take.
const OPEN_LIMIT: Duration = Duration::from_secs(60);

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
    let client = Client::pick(args.raw);
    let rss_kib_before = rss_kib()?;
    let started = Instant::now();
    let held = match client {
        Client::Machine => Held::Machines(open_machines(&args.url, args.conns).await?),
        Client::Raw => Held::Sockets(open_sockets(&args.url, args.conns).await?),
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

/// Spawns `n` machines and waits until each has reported `Connected`.
async fn open_machines(url: &str, n: usize) -> Result<Vec<Machine>, Error> {
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut opening = JoinSet::new();
    for _ in 0..n {
        let gate = Arc::clone(&gate);
        let url = url.to_owned();
        opening.spawn(async move {
            // The semaphore is never closed; without a permit it would only
            // be unbounded.
            let _permit = gate.acquire_owned().await.ok();
            let mut machine = Machine::builder(url).spawn().map_err(Error::Machine)?;
            machine::connected(&mut machine).await?;
            Ok(machine)
        });
    }
    // Dropping the set on a timeout or error aborts the rest.
    within("opening every connection", OPEN_LIMIT, async {
        let mut machines = Vec::with_capacity(n);
        while let Some(opened) = opening.join_next().await {
            machines.push(opened.map_err(Error::Task)??);
        }
        Ok(machines)
    })
    .await
}

/// Connects `n` bare sockets, then gives each to a task of its own that
/// waits on its next message; returns once all are connected.
///
/// The connecting is done by separate tasks that hand the socket back, so
/// the task that holds it afterwards keeps only the socket and a pending
/// read: the least a connection costs on this engine, the baseline the
/// machine is held to.
async fn open_sockets(url: &str, n: usize) -> Result<Vec<JoinHandle<()>>, Error> {
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut opening = JoinSet::new();
    for _ in 0..n {
        let gate = Arc::clone(&gate);
        let url = url.to_owned();
        opening.spawn(async move {
            let _permit = gate.acquire_owned().await.ok();
            raw::connect(&url).await
        });
    }
    let mut tasks = Vec::with_capacity(n);
    let opened = within("opening every connection", OPEN_LIMIT, async {
        while let Some(opened) = opening.join_next().await {
            let mut socket = opened.map_err(Error::Task)??;
            // Idle, with a read pending, until aborted.
            tasks.push(tokio::spawn(async move {
                while let Some(Ok(_)) = socket.next().await {}
            }));
        }
        Ok(())
    })
    .await;
    if opened.is_err() {
        tasks.iter().for_each(JoinHandle::abort);
    }
    opened.map(|()| tasks)
}
