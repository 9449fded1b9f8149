//! The CLI's one error type: what failed, with the cause as its source so
//! that `main` can print the whole chain.

use std::{io, net::SocketAddr, time::Duration};

/// Everything that can make a `wsm` command fail.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The tokio runtime could not be built.
    #[error("cannot start the async runtime")]
    Runtime(#[source] io::Error),

    /// The echo server could not listen on its address.
    #[error("cannot start the echo server on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },

    /// The Ctrl-C handler could not be installed.
    #[error("cannot listen for Ctrl-C")]
    Signal(#[source] io::Error),

    /// The machine refused its configuration.
    #[error("cannot start the machine")]
    Machine(#[source] ws_machine::Error),

    /// The machine stopped before the demo told it to.
    #[error("the machine stopped on its own")]
    MachineStopped(#[source] Option<ws_machine::Error>),

    /// The demo did not reach its end in time.
    #[error("the demo did not finish within {0:?}")]
    Timeout(Duration),

    /// Writing to stdout failed (a broken pipe is not reported: see `main`).
    #[error("cannot write the output")]
    Output(#[from] io::Error),
}

impl Error {
    /// Whether this error is stdout's reader going away (`wsm demo | head`),
    /// which ends the program normally.
    pub(crate) fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}
