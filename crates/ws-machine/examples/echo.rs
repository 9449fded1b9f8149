//! Send a few messages to an echo server, print the echoes, quit.
//!
//! The server is a local one (`wsm-server`) on a free port of 127.0.0.1, so
//! the example needs no network:
//!
//! ```text
//! cargo run -p ws-machine --example echo
//! ```

use std::time::Duration;

use ws_machine::{Command, Machine, Message, http::HeaderMap};
use wsm_server::{Config, Server};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::start(Config::default())?;
    let mut machine = Machine::new(&server.url(), HeaderMap::new())?;

    // No need to wait for the connection: messages put on `output` wait in
    // the machine's queue and are written once it is connected.
    let count = 3;
    for i in 1..=count {
        machine
            .output
            .send(Message::text(format!("hello {i}")))
            .await?;
    }

    let mut echoes = 0;
    // Bound the whole exchange, so a broken setup fails instead of hanging.
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            tokio::select! {
                // Statuses first, so that CONNECTED prints before the
                // messages that arrive on the connection.
                biased;
                Some(status) = machine.status.recv() => println!("status: {status}"),
                Some(message) = machine.input.recv() => {
                    println!("echo:   {}", message.as_text().unwrap_or("<binary>"));
                    echoes += 1;
                    if echoes == count {
                        // The machine closes the connection, reports a last
                        // DISCONNECTED and closes `status` and `input`.
                        machine.command.send(Command::Quit).await?;
                    }
                }
                // Both channels closed: the machine has stopped.
                else => break,
            }
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })
    .await??;

    server.stop().await;
    Ok(())
}
