//! Talk to a server that expects text, while handing the machine plain
//! bytes.
//!
//! Plain bytes (`Message::from(Vec<u8>)`) go out in the machine's current
//! mode: binary by default, text after `Command::UseText`. Switching once
//! at the start suits a text-only server (many JSON feeds close the
//! connection on a binary frame). The local echo server answers with the
//! opcode it received, so the echoes show how the messages went out.
//!
//! ```text
//! cargo run -p ws-machine --example text
//! ```

use std::time::Duration;

use ws_machine::{Command, Machine, Message, State, http::HeaderMap};
use wsm_server::{Config, Server};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::start(Config::default())?;
    let mut machine = Machine::new(&server.url(), HeaderMap::new())?;

    // Switch before sending. Commands and messages travel on different
    // channels, so a switch only applies for sure to messages sent once the
    // machine has taken it: here, while it is still connecting (it reads
    // `output` only when connected), it surely has by the time it connects.
    machine.command.send(Command::UseText).await?;

    let lines = [r#"{"op":"ping"}"#, "plain bytes, sent as text"];
    let mut echoes = 0;
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            tokio::select! {
                // Statuses first, so that CONNECTED prints before the
                // messages that arrive on the connection.
                biased;
                Some(status) = machine.status.recv() => {
                    println!("status: {status}");
                    if status.state == State::Connected {
                        for line in lines {
                            // Bytes of no particular kind: the mode decides.
                            let bytes: Vec<u8> = line.as_bytes().to_vec();
                            machine.output.send(Message::from(bytes)).await?;
                        }
                    }
                }
                Some(message) = machine.input.recv() => {
                    let kind = if message.is_text() { "text" } else { "binary" };
                    println!("echo:   {kind} {:?}", String::from_utf8_lossy(message.as_ref()));
                    echoes += 1;
                    if echoes == lines.len() {
                        machine.command.send(Command::Quit).await?;
                    }
                }
                else => break,
            }
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })
    .await??;

    server.stop().await;
    Ok(())
}
