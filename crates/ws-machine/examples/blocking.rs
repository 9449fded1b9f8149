//! The machine from plain threads, without an async runtime of your own:
//! one thread types lines, the main thread prints the echoes and the
//! statuses, then everything stops and hands back what was not delivered.
//!
//! The server is a local one (`wsm-server`) on a free port of 127.0.0.1,
//! so the example needs no network. It runs on a tokio runtime here only
//! because that server is async; the machine's side uses none.
//!
//! ```text
//! cargo run -p ws-machine --example blocking
//! ```

use std::{sync::mpsc::RecvTimeoutError, thread, time::Duration};

use ws_machine::{Machine, State};
use wsm_server::{Config, Server};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server_runtime = tokio::runtime::Runtime::new()?;
    let server = {
        let _in = server_runtime.enter();
        Server::start(Config::default())?
    };

    // The machine runs on a runtime of its own, on a thread of its own.
    let mut machine = Machine::builder(server.url()).spawn_blocking()?;

    // Another thread sends; messages wait in the queue until the machine
    // is connected.
    let sender = machine.sender();
    let count = 3;
    let typist = thread::spawn(move || {
        for i in 1..=count {
            if let Err(refused) = sender.send(format!("hello {i}")) {
                eprintln!("not sent, the machine stopped: {:?}", refused.0.as_text());
            }
        }
    });

    // Statuses until CONNECTED, each within 5 s.
    loop {
        let status = machine.status_timeout(Duration::from_secs(5))?;
        println!("status: {status}");
        if status.state == State::Connected {
            break;
        }
        if status.is_final() {
            return Err("the machine stopped".into());
        }
    }
    for _ in 0..count {
        match machine.recv_timeout(Duration::from_secs(5)) {
            Ok(message) => println!("echo:   {}", message.as_text().unwrap_or("<binary>")),
            Err(RecvTimeoutError::Timeout) => return Err("no echo within 5 s".into()),
            Err(RecvTimeoutError::Disconnected) => return Err("the machine stopped".into()),
        }
    }
    if typist.join().is_err() {
        return Err("the typing thread panicked".into());
    }

    // Closes the connection, stops the machine and its runtime.
    let leftovers = machine.shutdown();
    println!(
        "stopped; {} unsent, {} unread",
        leftovers.unsent.len(),
        leftovers.received.len()
    );
    drop(server);
    Ok(())
}
