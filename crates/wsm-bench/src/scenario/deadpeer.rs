//! `deadpeer`: how long after a server freezes (TCP still open) the machine
//! reports the connection down.
//!
//! The server freezes F ms after the upgrade; the machine reports
//! `Connected` right after it, so the freeze is taken to happen F ms after
//! `Connected` arrives. A small message goes out every 100 ms (its echoes
//! keep the connection busy until the freeze); the clock stops at the first
//! `Disconnected`. If none comes within [`GIVE_UP`], the result is `null`.

use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior, interval, sleep_until};
use ws_machine::{Machine, Message, State};

use crate::{
    cli::DeadpeerArgs,
    error::Error,
    machine,
    report::{Client, Report},
};

/// The contract's limit: no `Disconnected` within this time means the dead
/// peer was not detected.
const GIVE_UP: Duration = Duration::from_secs(120);

/// Time between two messages.
const TICK: Duration = Duration::from_millis(100);

/// Runs the scenario.
pub(crate) async fn run(args: &DeadpeerArgs) -> Result<Report, Error> {
    let mut builder = Machine::builder(&args.url);
    if let Some(interval) = args.ping_interval() {
        builder = builder.ping_interval(interval);
    }
    if let Some(timeout) = args.pong_timeout() {
        builder = builder.pong_timeout(timeout);
    }
    let mut machine = machine::start(builder).await?;
    let connected = Instant::now();
    let frozen = connected + args.freeze_after();

    let give_up = sleep_until(connected + GIVE_UP);
    tokio::pin!(give_up);
    let mut tick = interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let detected = loop {
        tokio::select! {
            biased;
            status = machine.status.recv() => {
                let Some(status) = status else {
                    break Err(Error::MachineStopped(None));
                };
                if status.state == State::Disconnected {
                    let now = Instant::now();
                    if now < frozen {
                        break Err(Error::EarlyDisconnect(status.error));
                    }
                    break Ok(Some(now - frozen));
                }
            }
            // Echoes are read and dropped, so `input` never fills up.
            Some(_) = machine.input.recv() => {}
            _ = tick.tick() => {
                // A full queue (the link is down) skips a message; the
                // scenario is about the status, not the messages.
                let _ = machine.output.try_send(Message::binary(&b"tick"[..]));
            }
            () = &mut give_up => break Ok(None),
        }
    };
    machine::stop(machine).await;
    Ok(Report::Deadpeer {
        client: Client::Machine,
        detect: detected?,
    })
}
