//! A feed that needs a subscribe message on every connection.
//!
//! `Builder::on_connect` messages are written first on every connection,
//! before anything queued, so a subscription survives reconnects without
//! any code in the caller. The local server echoes the subscription, which
//! makes it visible here: it arrives once per connection. The example forces
//! two reconnects, one from each side:
//!
//! 1. the server drops every connection (a crash as the client sees it);
//! 2. after a price arrives, the client asks for a fresh connection with
//!    `Command::Reconnect`.
//!
//! ```text
//! cargo run -p ws-machine --example subscribe
//! ```

use std::time::Duration;

use ws_machine::{Command, Machine};
use wsm_server::{Config, Server};

const SUBSCRIBE: &str = "subscribe:BTC-USD";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::start(Config::default())?;
    let mut machine = Machine::builder(server.url())
        .on_connect([SUBSCRIBE])
        .spawn()?;

    let mut subscriptions = 0;
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            tokio::select! {
                // Statuses first, so that CONNECTED prints before the
                // messages that arrive on the connection.
                biased;
                // The first connection's drop is followed by a short WAITING:
                // it lived less than `min_uptime` (default 5 s), so it counts
                // as a failed attempt and gets a backoff delay.
                Some(status) = machine.status.recv() => println!("status:  {status}"),
                Some(message) = machine.input.recv() => {
                    let text = message.as_text().unwrap_or("<binary>");
                    if text != SUBSCRIBE {
                        println!("message: {text}");
                        println!("-- the client asks to reconnect");
                        machine.command.send(Command::Reconnect).await?;
                        continue;
                    }
                    subscriptions += 1;
                    println!("subscribed (connection {subscriptions})");
                    match subscriptions {
                        1 => {
                            println!("-- the server drops every connection");
                            server.drop_all();
                        }
                        // The feed works on the new connection: the server
                        // pushes a price.
                        2 => {
                            server.send_all("BTC-USD 97000.00");
                        }
                        _ => machine.command.send(Command::Quit).await?,
                    }
                }
                else => break,
            }
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })
    .await??;

    println!(
        "the server saw {} connections and {} messages",
        server.connections_accepted(),
        server.messages_received()
    );
    server.stop().await;
    Ok(())
}
