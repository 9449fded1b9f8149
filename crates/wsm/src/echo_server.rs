//! `wsm echo-server`: the local echo server, until Ctrl-C.

use std::io::Write;

use wsm_server::Server;

use crate::{cli::EchoServerArgs, error::Error};

/// Runs the server on `args.addr` until Ctrl-C; prints
/// `listening on ws://ADDR/` to `out` once it accepts connections.
///
/// # Errors
///
/// [`Error::Bind`] if it cannot listen, [`Error::Signal`] if Ctrl-C cannot be
/// watched, [`Error::Output`] if writing to `out` fails.
pub(crate) async fn run(args: &EchoServerArgs, mut out: impl Write) -> Result<(), Error> {
    let server = Server::bind(args.addr, args.config()).map_err(|source| Error::Bind {
        what: "echo server",
        addr: args.addr,
        source,
    })?;
    // Scripts wait for this line before connecting: flush it at once.
    writeln!(out, "listening on {}", server.url())?;
    out.flush()?;

    tokio::signal::ctrl_c().await.map_err(Error::Signal)?;
    let (connections, messages) = (server.connections_accepted(), server.messages_received());
    server.stop().await;
    writeln!(
        out,
        "stopped after {connections} connections and {messages} messages"
    )?;
    Ok(())
}
