//! The fault proxy behind a Toxiproxy-compatible HTTP API: clients written
//! for [Toxiproxy](https://github.com/Shopify/toxiproxy) (its Go, Python,
//! Ruby or Node libraries, `toxiproxy-cli`, or plain HTTP) create proxies
//! and add toxics here, and a test written against this API runs against a
//! real Toxiproxy too.
//!
//! Each proxy of the API is a [`Proxy`](crate::proxy::Proxy); its toxics
//! are folded into that proxy's [`Faults`](crate::proxy::Faults), one set
//! per direction (`toxics`). The calls (`registry`) are Toxiproxy 2's:
//!
//! | Call | Does |
//! |---|---|
//! | `GET /version` | `{"version": ...}` |
//! | `GET /proxies` | every proxy, by name, with its toxics |
//! | `POST /proxies` | creates one: `{"name", "listen", "upstream", "enabled"}` (201) |
//! | `POST /populate` | creates a list, replacing any of the same name with other addresses (201) |
//! | `GET`, `POST`/`PATCH`, `DELETE /proxies/{proxy}` | shows, changes (`listen`, `upstream`, `enabled`), deletes (204) |
//! | `GET`, `POST /proxies/{proxy}/toxics` | lists, adds: `{"name", "type", "stream", "toxicity", "attributes"}` |
//! | `GET`, `POST`/`PATCH`, `DELETE /proxies/{proxy}/toxics/{toxic}` | shows, changes attributes, removes (204) |
//! | `POST /reset` | every proxy enabled, every toxic removed (204) |
//!
//! Errors are `{"error": ..., "status": ...}`: 400 for a bad body or a
//! toxic this proxy cannot apply, 404 for an unknown proxy or toxic, 405
//! for a method a path does not take, 409 for a name or port already
//! taken (by another proxy or another program).
//!
//! Toxics, and how each maps onto the proxy (times in milliseconds unless
//! said otherwise):
//!
//! | Toxic | Attributes | Here |
//! |---|---|---|
//! | `latency` | `latency`, `jitter` | [`Faults::latency`](crate::proxy::Faults::latency); several add up |
//! | `bandwidth` | `rate` (KB/s) | [`Faults::rate`](crate::proxy::Faults::rate) of `rate` × 1000 bytes/s (0: no limit) |
//! | `slow_close` | `delay` | [`Faults::slow_close`](crate::proxy::Faults::slow_close) |
//! | `timeout` | `timeout` (0 only) | [`Faults::black_hole`](crate::proxy::Faults::black_hole): nothing passes until it is removed (Toxiproxy drops what is sent meanwhile; this proxy holds it, as TCP would after a partition heals) |
//! | `reset_peer` | `timeout` (0 only) | every connection, open or to come, is reset |
//! | `slicer` | `average_size`, `size_variation` (0 only), `delay` (µs) | [`Faults::slicer`](crate::proxy::Faults::slicer) |
//! | `limit_data` | `bytes` | [`Faults::cut_after`](crate::proxy::Faults::cut_after): cut with a reset once that many bytes passed |
//!
//! What this proxy cannot do is refused with a 400 that says so, rather than
//! done differently: a `toxicity` other than 1, a `timeout` or `reset_peer`
//! with a timeout, a `slicer` with a size variation. So is what is surely a
//! mistake, where Toxiproxy lets it pass: an attribute the toxic does not
//! have (a misspelt `latncy` would otherwise do nothing), a time over a day.
//! A `stream` is read in any case, as Toxiproxy reads it. Disabling a proxy
//! refuses new connections (the port stays the proxy's) and resets the
//! open ones; Toxiproxy closes them. Like every proxy of this crate, it
//! listens and forwards on loopback addresses only.
//!
//! One task owns the listener and the registry: the connections' tasks
//! hand it their calls over a channel, so calls apply one at a time and no
//! lock is needed.

mod http;
mod registry;
mod toxics;

use std::{io, net::SocketAddr, time::Duration};

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::{
    net::TcpListener,
    sync::{mpsc, watch},
    task::{JoinHandle, JoinSet},
};
use tracing::{debug, info, warn};

use http::Envelope;
use registry::Registry;

/// Calls waiting for the registry.
const CALL_QUEUE: usize = 16;

/// Pause after a failed `accept`, so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// A running Toxiproxy-compatible API on a loopback address.
///
/// Created by [`Api::start`]; stopped by [`Api::stop`] or by dropping it,
/// which also stops every proxy it created.
///
/// # Example
///
/// ```
/// use tokio::{
///     io::{AsyncReadExt, AsyncWriteExt},
///     net::TcpStream,
/// };
/// use wsm_server::toxiproxy::Api;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let api = Api::start("127.0.0.1:0".parse().expect("an address")).await?;
/// let body = r#"{"name": "feed", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}"#;
/// let mut http = TcpStream::connect(api.addr()).await?;
/// http.write_all(
///     format!(
///         "POST /proxies HTTP/1.1\r\nHost: toxiproxy\r\nConnection: close\r\n\
///          Content-Length: {}\r\n\r\n{body}",
///         body.len()
///     )
///     .as_bytes(),
/// )
/// .await?;
/// let mut answer = String::new();
/// http.read_to_string(&mut answer).await?;
/// assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
/// assert!(answer.contains(r#""name":"feed""#), "{answer}");
/// api.stop().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Api {
    addr: SocketAddr,
    /// To the task's registry, for [`Api::populate`].
    calls: mpsc::Sender<Envelope>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Api {
    /// Starts the API on `addr` (a loopback address; port 0 lets the
    /// system choose one: Toxiproxy's is 8474).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `addr` is not a loopback address (the API creates
    /// proxies on this machine, for tests on this machine); otherwise the
    /// error of binding or listening (`AddrInUse` when the port is taken).
    ///
    /// # Panics
    ///
    /// Panics if called outside a Tokio runtime.
    pub async fn start(addr: SocketAddr) -> io::Result<Self> {
        if !addr.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the API only listens on loopback addresses, not {addr}"),
            ));
        }
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (shutdown, stopping) = watch::channel(false);
        let (calls, incoming) = mpsc::channel::<Envelope>(CALL_QUEUE);
        let task = tokio::spawn(serve(listener, calls.clone(), incoming, stopping));
        info!(%addr, "toxiproxy API listening");
        Ok(Self {
            addr,
            calls,
            shutdown,
            task: Some(task),
        })
    }

    /// Creates the proxies of `json`, a JSON array of
    /// `{"name", "listen", "upstream", "enabled"}` as `POST /populate` takes
    /// (and Toxiproxy's `-config` file holds); returns how many there are.
    ///
    /// # Errors
    ///
    /// `InvalidInput` with the API's reason if `json` is not such an array
    /// or a proxy cannot be created (those before it are created);
    /// `NotConnected` if the API has stopped.
    ///
    /// # Example
    ///
    /// ```
    /// use wsm_server::toxiproxy::Api;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let api = Api::start("127.0.0.1:0".parse().expect("an address")).await?;
    /// let created = api
    ///     .populate(r#"[{"name": "feed", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}]"#)
    ///     .await?;
    /// assert_eq!(created, 1);
    /// assert!(api.populate("not json").await.is_err());
    /// api.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn populate(&self, json: &str) -> io::Result<usize> {
        let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
        let proxies: Vec<registry::NewProxy> = serde_json::from_str(json)
            .map_err(|e| invalid(format!("not a JSON array of proxies: {e}")))?;
        let count = proxies.len();
        let stopped = || io::Error::new(io::ErrorKind::NotConnected, "the API has stopped");
        let (reply, replied) = tokio::sync::oneshot::channel();
        self.calls
            .send((registry::Call::Populate(proxies), reply))
            .await
            .map_err(|_| stopped())?;
        let reply = replied.await.map_err(|_| stopped())?;
        if reply.status == 201 {
            Ok(count)
        } else {
            let why = reply
                .body
                .as_ref()
                .and_then(|body| body["error"].as_str())
                .unwrap_or("the proxies could not be created")
                .to_owned();
            Err(invalid(why))
        }
    }

    /// The address the API listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API's base URL, e.g. `http://127.0.0.1:8474`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the API and every proxy it created.
    pub async fn stop(mut self) {
        self.shutdown.send_replace(true);
        if let Some(task) = self.task.take()
            && let Err(err) = task.await
        {
            warn!(cause = %err, "toxiproxy API task failed");
        }
    }
}

impl Drop for Api {
    /// Tells the task to stop; it stops the proxies shortly after.
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

/// Accepts connections and applies their calls until told to stop.
async fn serve(
    listener: TcpListener,
    calls: mpsc::Sender<Envelope>,
    mut incoming: mpsc::Receiver<Envelope>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut registry = Registry::default();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = async { let _ = stopping.wait_for(|&stop| stop).await; } => break,
            Some((call, reply)) = incoming.recv() => {
                // The caller may have gone: its reply has nowhere to go.
                let _ = reply.send(registry.apply(call).await);
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    debug!(%peer, "toxiproxy API connection");
                    let calls = calls.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |request| http::answer(request, calls.clone()));
                        if let Err(err) = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                        {
                            debug!(cause = %err, "toxiproxy API connection ended");
                        }
                    });
                }
                Err(err) => {
                    warn!(cause = %err, "toxiproxy API accept failed");
                    // Out of descriptors, say: do not spin.
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
            Some(_) = connections.join_next() => {}
        }
    }
    connections.shutdown().await;
    registry.stop().await;
}
