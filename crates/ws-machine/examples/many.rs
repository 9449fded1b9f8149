//! Many machines in one loop: a `StreamMap` merges their channels, keyed by
//! a name, so one `select!` serves any number of connections, added or
//! removed while it runs.
//!
//! Twenty feeds connect to a local server (on 127.0.0.1, no network needed),
//! each says hello, the server drops every connection once, every feed
//! reconnects by itself, and all quit.
//!
//! ```text
//! cargo run -p ws-machine --example many
//! ```

use std::{collections::HashMap, time::Duration};

use tokio_stream::{StreamExt, StreamMap};
use ws_machine::{Command, Machine, State};
use wsm_server::{Config, Server};

const FEEDS: usize = 20;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::start(Config::default())?;

    // The receivers go into the maps; the senders stay here, by name.
    let mut statuses = StreamMap::new();
    let mut inputs = StreamMap::new();
    let mut commands = HashMap::new();
    for n in 0..FEEDS {
        let name = format!("feed-{n:02}");
        let machine = Machine::builder(server.url())
            .on_connect([format!("hello from {name}")])
            .min_uptime(Duration::ZERO)
            .spawn()?;
        let Machine {
            status,
            input,
            command,
            ..
        } = machine;
        // Each receiver is a `Stream`: it goes into the map as it is.
        statuses.insert(name.clone(), status);
        inputs.insert(name.clone(), input);
        commands.insert(name, command);
    }

    let mut connects = 0;
    let mut hellos = 0;
    let mut dropped = false;
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            tokio::select! {
                Some((name, status)) = statuses.next() => {
                    if status.state == State::Connected {
                        connects += 1;
                    }
                    if status.is_final() {
                        println!("{name}: stopped");
                    }
                }
                Some((name, message)) = inputs.next() => {
                    hellos += 1;
                    println!("{name}: {}", message.as_text().unwrap_or("<binary>"));
                    if hellos == FEEDS && !dropped {
                        // Everyone said hello once: drop them all.
                        println!("server: dropping {} connections", server.drop_all());
                        dropped = true;
                    } else if hellos == 2 * FEEDS {
                        // Everyone is back (on_connect said hello again): quit.
                        for command in commands.values() {
                            command.send(Command::Quit).await?;
                        }
                    }
                }
                // Every channel of every machine closed: all have stopped.
                else => break,
            }
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })
    .await??;

    println!("{FEEDS} feeds, {connects} connections, {hellos} hellos echoed");
    assert_eq!(connects, 2 * FEEDS, "each feed connected twice");
    server.stop().await;
    Ok(())
}
