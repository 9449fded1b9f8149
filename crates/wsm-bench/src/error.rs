//! The tool's one error type: what failed, with the cause as its source so
//! that `main` can print the whole chain. A benchmark that cannot finish
//! reports why instead of hanging or printing a number that means nothing.

use std::{io, time::Duration};

/// Everything that can make a scenario fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum Error {
    /// The tokio runtime could not be built.
    #[error("cannot start the async runtime")]
    Runtime(#[source] io::Error),

    /// The machine refused its configuration (e.g. a bad URL).
    #[error("cannot start the machine")]
    Machine(#[source] ws_machine::Error),

    /// The machine stopped on its own (a final error) before the scenario
    /// was over.
    #[error("the machine stopped on its own")]
    MachineStopped(#[source] Option<ws_machine::Error>),

    /// The bare engine's URL does not parse.
    #[error("invalid URL {url:?}")]
    RawUrl {
        /// The URL as given.
        url: String,
        /// Why it does not parse.
        #[source]
        source: http::uri::InvalidUri,
    },

    /// The bare engine failed: connecting, reading or writing.
    #[error("the bare engine failed while {doing}")]
    Raw {
        /// What it was doing.
        doing: &'static str,
        /// The engine's error.
        #[source]
        source: tokio_websockets::Error,
    },

    /// Bare yawc failed: connecting, reading or writing.
    #[error("bare yawc failed while {doing}")]
    RawYawc {
        /// What it was doing.
        doing: &'static str,
        /// The engine's error.
        #[source]
        source: yawc::WebSocketError,
    },

    /// The scenario has no variant for this client.
    #[error("{0} is not measured with this client")]
    Unsupported(&'static str),

    /// The connection ended before the scenario was over.
    #[error("the connection ended before {0}")]
    Closed(&'static str),

    /// The machine reported the connection down before the server was due
    /// to freeze: something else ended it.
    #[error("the connection ended before the server froze")]
    EarlyDisconnect(#[source] Option<ws_machine::Error>),

    /// The echo is not what was sent.
    #[error("an echo of {got} bytes came back for a message of {expected} bytes")]
    BadEcho {
        /// The size sent.
        expected: usize,
        /// The size received.
        got: usize,
    },

    /// A step did not finish in time.
    #[error("{what} did not finish within {limit:?}")]
    Timeout {
        /// The step.
        what: &'static str,
        /// Its limit.
        limit: Duration,
    },

    /// A task of the scenario panicked or was cancelled.
    #[error("a connection task failed")]
    Task(#[source] tokio::task::JoinError),

    /// `/proc/self/status` could not be read or has no `VmRSS` line.
    #[error("cannot read the process's memory use from /proc/self/status")]
    Rss(#[source] io::Error),

    /// Writing the JSON line failed.
    #[error("cannot write the report")]
    Output(#[source] io::Error),
}

impl Error {
    /// A [`Error::Raw`] for the engine error `source` while `doing`.
    pub(crate) fn raw(doing: &'static str) -> impl FnOnce(tokio_websockets::Error) -> Self {
        move |source| Self::Raw { doing, source }
    }

    /// A [`Error::RawYawc`] for the engine error `source` while `doing`.
    pub(crate) fn raw_yawc(doing: &'static str) -> impl FnOnce(yawc::WebSocketError) -> Self {
        move |source| Self::RawYawc { doing, source }
    }

    /// Whether this error is stdout's reader going away, which ends the
    /// program normally.
    pub(crate) fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// Runs `future` for at most `limit`; [`Error::Timeout`] naming `what` after
/// that.
pub(crate) async fn within<T>(
    what: &'static str,
    limit: Duration,
    future: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout(limit, future)
        .await
        .map_err(|_| Error::Timeout { what, limit })?
}
