//! The CLI's one error type: what failed, with the cause as its source, and
//! the one-line report `main` prints.

use std::{io, net::SocketAddr, path::PathBuf, time::Duration};

use crate::exit::Exit;

/// Everything that can make a `wsm` command fail.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The tokio runtime could not be built.
    #[error("cannot start the async runtime")]
    Runtime(#[source] io::Error),

    /// A server (the echo server, the fault proxy's API) could not listen
    /// on its address.
    #[error("cannot start the {what} on {addr}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },

    /// The Ctrl-C handler could not be installed.
    #[error("cannot listen for Ctrl-C")]
    Signal(#[source] io::Error),

    /// The demo's machine refused its configuration.
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

    /// Flags that do not fit together, or a value clap cannot check.
    #[error("{0}")]
    Usage(String),

    /// The proxies of `wsm fault-proxy --config` cannot be created.
    #[error("cannot create the proxies of {path}")]
    Populate {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A file named by a flag cannot be read.
    #[error("cannot read {path}")]
    File {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// `wsm connect`'s URL, headers or options are not usable (the
    /// library's message says what to fix).
    #[error(transparent)]
    Settings(ws_machine::Error),

    /// The connection ended for good (a final error, or retries exhausted).
    #[error(transparent)]
    Stopped(ws_machine::Error),

    /// Reading stdin failed.
    #[error("cannot read stdin")]
    Stdin(#[source] io::Error),

    /// `--header-cmd` could not be started or waited for.
    #[error("--header-cmd cannot run")]
    HeaderCmdStart(#[source] io::Error),

    /// `--header-cmd` ran too long and was killed.
    #[error("--header-cmd did not finish within {0:?} and was stopped")]
    HeaderCmdTimeout(Duration),

    /// `--header-cmd` exited with a failure.
    #[error("--header-cmd failed ({status}){}", said(.stderr))]
    HeaderCmdFailed { status: String, stderr: String },

    /// `--header-cmd` printed something that is not a header.
    #[error("--header-cmd printed no usable header: line {line}: {reason}")]
    HeaderCmdOutput { line: usize, reason: String },
}

fn said(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

impl Error {
    /// Whether this error is stdout's reader going away (`wsm demo | head`),
    /// which ends the program normally.
    pub(crate) fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }

    /// The exit status this error ends the process with.
    pub(crate) fn exit(&self) -> Exit {
        match self {
            _ if self.is_broken_pipe() => Exit::Success,
            Self::Usage(_) | Self::File { .. } | Self::Populate { .. } => Exit::Usage,
            Self::Settings(e) | Self::Stopped(e) => Exit::for_machine(e),
            _ => Exit::Failure,
        }
    }
}

/// The error and its causes in one line, joined by `: `. A cause whose text
/// the line already contains is skipped: the library's messages include
/// their cause's text and also return it as `source()`.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_joined_once() {
        let io = io::Error::new(io::ErrorKind::ConnectionRefused, "refused");
        let library = ws_machine::Error::Connect {
            host: "127.0.0.1".into(),
            port: 1,
            source: io.into(),
        };
        // The library's text already holds its cause's: not repeated.
        assert_eq!(
            chain(&Error::Stopped(library)),
            "cannot connect to 127.0.0.1:1: refused"
        );
        let file = Error::File {
            path: "x.txt".into(),
            source: io::Error::new(io::ErrorKind::NotFound, "No such file"),
        };
        assert_eq!(chain(&file), "cannot read x.txt: No such file");
    }

    #[test]
    fn exits() {
        assert_eq!(Error::Usage("x".into()).exit(), Exit::Usage);
        assert_eq!(
            Error::Output(io::Error::from(io::ErrorKind::BrokenPipe)).exit(),
            Exit::Success
        );
        assert_eq!(
            Error::Settings(ws_machine::Error::InvalidConfig {
                option: "queue_capacity",
                reason: "must be at least 1".into()
            })
            .exit(),
            Exit::Usage
        );
    }
}
