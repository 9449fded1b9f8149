//! `wsm fault-proxy`: the fault proxy's Toxiproxy-compatible API, until
//! Ctrl-C.

use std::io::Write;

use wsm_server::toxiproxy::Api;

use crate::{cli::FaultProxyArgs, error::Error};

/// Runs the API on `args.api` until Ctrl-C, with the proxies of
/// `args.config` if given; prints `toxiproxy API on http://ADDR` to `out`
/// once it takes calls.
///
/// # Errors
///
/// [`Error::Bind`] if it cannot listen, [`Error::File`] or
/// [`Error::Populate`] if the proxies of `--config` cannot be read or
/// created, [`Error::Signal`] if Ctrl-C cannot be watched,
/// [`Error::Output`] if writing to `out` fails.
pub(crate) async fn run(args: &FaultProxyArgs, mut out: impl Write) -> Result<(), Error> {
    let api = Api::start(args.api).await.map_err(|source| Error::Bind {
        what: "fault proxy's API",
        addr: args.api,
        source,
    })?;
    if let Some(path) = &args.config {
        let json = std::fs::read_to_string(path).map_err(|source| Error::File {
            path: path.clone(),
            source,
        })?;
        let count = api
            .populate(&json)
            .await
            .map_err(|source| Error::Populate {
                path: path.clone(),
                source,
            })?;
        writeln!(out, "{count} proxies created from {}", path.display())?;
    }
    // Scripts wait for this line before calling: flush it at once.
    writeln!(out, "toxiproxy API on {}", api.url())?;
    out.flush()?;

    tokio::signal::ctrl_c().await.map_err(Error::Signal)?;
    api.stop().await;
    writeln!(out, "stopped")?;
    Ok(())
}
