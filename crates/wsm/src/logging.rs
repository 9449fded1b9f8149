//! Logs to stderr (or where a command prints its status lines), filtered by
//! `RUST_LOG`.

use std::io::{self, IsTerminal};

use tracing_subscriber::{EnvFilter, fmt::MakeWriter};

/// Installs the subscriber: `RUST_LOG` if set and valid, `default`
/// otherwise; colour only when stderr is a terminal.
pub(crate) fn init<W>(writer: W, default: &str)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let (filter, bad_filter) = match std::env::var("RUST_LOG") {
        Ok(spec) => match EnvFilter::try_new(&spec) {
            Ok(filter) => (filter, None),
            Err(e) => (EnvFilter::new(default), Some((spec, e))),
        },
        Err(_) => (EnvFilter::new(default), None),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(io::stderr().is_terminal())
        .init();
    if let Some((spec, e)) = bad_filter {
        eprintln!("wsm: warning: ignoring RUST_LOG={spec:?} ({e}); using {default:?}");
    }
}
