//! Watching a machine: its stats, round trips as they are measured, and
//! connection numbers that tell a reader of `input` when to resynchronise.
//!
//! A feed connects to a local server (on 127.0.0.1, no network needed),
//! pings every 200 ms with its round trips reported, gets a few messages,
//! loses its connection after two round trips (the server drops it),
//! notices the new connection number on the next message, and prints its
//! stats at the end.
//! `RUST_LOG=ws_machine=debug` shows the machine's and the connection's
//! spans in the logs.
//!
//! ```text
//! cargo run -p ws-machine --example observe
//! ```

use std::time::Duration;

use ws_machine::{Machine, State};
use wsm_server::{Config, Server};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let server = Server::start(Config::default())?;
    let mut machine = Machine::builder(server.url())
        .ping_interval(Duration::from_millis(200))
        .report_round_trips(true)
        .min_uptime(Duration::ZERO)
        .spawn()?;
    // A dashboard elsewhere reads the same stats.
    let stats = machine.stats_handle();
    let dashboard = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(500));
        for _ in 0..4 {
            every.tick().await;
            let s = stats.get();
            println!(
                "  [dashboard] {} for {:?}, {} in / {} out, rtt {:?}",
                s.state,
                s.since.elapsed(),
                s.messages_in,
                s.messages_out,
                s.smoothed_rtt
            );
        }
    });

    let mut connection = 0;
    let mut sent = 0;
    let mut pongs = 0;
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            tokio::select! {
                Some(status) = machine.status.recv() => {
                    if let Some(rtt) = status.round_trip {
                        pongs += 1;
                        println!("round trip {rtt:?}");
                        if pongs == 2 {
                            // The server drops the connection, once.
                            server.drop_all();
                        }
                    } else if status.is_change() {
                        println!("{status} (connection {})", status.connection);
                        if status.state == State::Connected {
                            for _ in 0..3 {
                                sent += 1;
                                machine.output.send(format!("update {sent}").into()).await?;
                            }
                        }
                    }
                }
                Some(message) = machine.input.recv() => {
                    if message.connection() != connection {
                        // A reader of `input` alone sees the reconnect here.
                        println!("connection {}: reload the snapshot", message.connection());
                        connection = message.connection();
                    }
                    println!("got {:?}", message.as_text());
                    if message.as_text() == Some("update 6") {
                        break;
                    }
                }
                else => break,
            }
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })
    .await??;
    dashboard.await?;
    let s = machine.stats();
    println!(
        "connections {}, reconnects {}, failed attempts {}, messages in {} out {}, \
         bytes in {} out {}, connected for {:?}, last error: {}",
        s.connections,
        s.reconnects,
        s.failed_attempts,
        s.messages_in,
        s.messages_out,
        s.bytes_in,
        s.bytes_out,
        s.connected_for,
        s.last_error
            .map_or_else(|| "none".into(), |e| e.to_string()),
    );
    let leftovers = machine.shutdown().await;
    println!("left undelivered: {}", leftovers.unsent.len());
    Ok(())
}
