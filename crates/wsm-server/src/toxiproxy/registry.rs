//! The proxies the API created, by name, and what each API call does to
//! them. Owned by the API's task: calls are applied one at a time, so no
//! lock is needed.

use std::{collections::BTreeMap, io, net::SocketAddr};

use serde::Deserialize;
use serde_json::{Value, json};
use tracing::debug;

use super::toxics::{self, NewToxic, Toxic, ToxicChange};
use crate::proxy::{Direction, Proxy};

/// A call of the API, parsed from its method, path and body.
#[derive(Debug)]
pub(crate) enum Call {
    Version,
    ListProxies,
    CreateProxy(NewProxy),
    Populate(Vec<NewProxy>),
    ShowProxy(String),
    UpdateProxy(String, ProxyChange),
    DeleteProxy(String),
    ListToxics(String),
    CreateToxic(String, NewToxic),
    ShowToxic(String, String),
    UpdateToxic(String, String, ToxicChange),
    DeleteToxic(String, String),
    Reset,
}

/// A proxy as a client sends it to `POST /proxies` (and `/populate`).
#[derive(Debug, Deserialize)]
pub(crate) struct NewProxy {
    #[serde(default)]
    name: String,
    #[serde(default)]
    listen: Option<String>,
    #[serde(default)]
    upstream: String,
    #[serde(default)]
    enabled: Option<bool>,
}

/// A change to a proxy, as a client sends it to `POST /proxies/{proxy}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ProxyChange {
    listen: Option<String>,
    upstream: Option<String>,
    enabled: Option<bool>,
}

/// The answer to a call: an HTTP status and, but for 204, a JSON body.
#[derive(Debug, PartialEq)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Option<Value>,
}

impl Reply {
    fn ok(body: Value) -> Self {
        Self {
            status: 200,
            body: Some(body),
        }
    }

    fn created(body: Value) -> Self {
        Self {
            status: 201,
            body: Some(body),
        }
    }

    fn no_content() -> Self {
        Self {
            status: 204,
            body: None,
        }
    }

    /// An error as Toxiproxy writes one: `{"error": ..., "status": ...}`.
    pub(crate) fn error(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            body: Some(json!({"error": message.into(), "status": status})),
        }
    }
}

/// One proxy of the API.
struct Entry {
    proxy: Proxy,
    /// What the client asked for as upstream (a host name stays one).
    upstream: String,
    enabled: bool,
    toxics: Vec<Toxic>,
}

impl Entry {
    fn view(&self, name: &str) -> Value {
        json!({
            "name": name,
            "listen": self.proxy.addr().to_string(),
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": self.toxics.iter().map(Toxic::view).collect::<Vec<_>>(),
        })
    }

    /// Applies the toxics to both directions of the proxy.
    fn apply_toxics(&self) {
        for direction in Direction::BOTH {
            self.proxy
                .set_faults(direction, toxics::faults(&self.toxics, direction));
        }
    }

    /// Takes the proxy down (refusing connections, those open reset) or
    /// brings it back up.
    async fn set_enabled(&mut self, enabled: bool) -> io::Result<()> {
        self.proxy.refuse_connections(!enabled).await?;
        if !enabled {
            self.proxy.reset();
        }
        self.enabled = enabled;
        Ok(())
    }
}

/// The proxies, by name.
#[derive(Default)]
pub(crate) struct Registry {
    proxies: BTreeMap<String, Entry>,
}

impl Registry {
    /// Applies `call`.
    pub(crate) async fn apply(&mut self, call: Call) -> Reply {
        debug!(?call, "toxiproxy API call");
        match call {
            Call::Version => Reply::ok(json!({
                "version": concat!("wsm-server ", env!("CARGO_PKG_VERSION"), " (Toxiproxy API 2)")
            })),
            Call::ListProxies => Reply::ok(Value::Object(
                self.proxies
                    .iter()
                    .map(|(name, entry)| (name.clone(), entry.view(name)))
                    .collect(),
            )),
            Call::CreateProxy(new) => match self.create(new).await {
                Ok(view) => Reply::created(view),
                Err(reply) => reply,
            },
            Call::Populate(list) => self.populate(list).await,
            Call::ShowProxy(name) => match self.proxies.get(&name) {
                Some(entry) => Reply::ok(entry.view(&name)),
                None => proxy_not_found(&name),
            },
            Call::UpdateProxy(name, change) => self.update(name, change).await,
            Call::DeleteProxy(name) => match self.proxies.remove(&name) {
                Some(entry) => {
                    entry.proxy.stop().await;
                    Reply::no_content()
                }
                None => proxy_not_found(&name),
            },
            Call::ListToxics(name) => match self.proxies.get(&name) {
                Some(entry) => Reply::ok(entry.toxics.iter().map(Toxic::view).collect()),
                None => proxy_not_found(&name),
            },
            Call::CreateToxic(name, new) => {
                let Some(entry) = self.proxies.get_mut(&name) else {
                    return proxy_not_found(&name);
                };
                let toxic = match new.into_toxic() {
                    Ok(toxic) => toxic,
                    Err(why) => return Reply::error(400, why),
                };
                if entry.toxics.iter().any(|t| t.name == toxic.name) {
                    return Reply::error(409, format!("toxic already exists: {}", toxic.name));
                }
                let view = toxic.view();
                let resets = toxic.effect == toxics::Effect::ResetPeer;
                entry.toxics.push(toxic);
                entry.apply_toxics();
                if resets {
                    // Open connections are reset too, not only new ones.
                    entry.proxy.reset();
                }
                Reply::ok(view)
            }
            Call::ShowToxic(name, toxic) => match self.toxic(&name, &toxic) {
                Ok((entry, at)) => Reply::ok(entry.toxics[at].view()),
                Err(reply) => reply,
            },
            Call::UpdateToxic(name, toxic, change) => {
                let (entry, at) = match self.toxic(&name, &toxic) {
                    Ok(found) => found,
                    Err(reply) => return reply,
                };
                match entry.toxics[at].changed(change) {
                    Ok(changed) => {
                        let view = changed.view();
                        entry.toxics[at] = changed;
                        entry.apply_toxics();
                        Reply::ok(view)
                    }
                    Err(why) => Reply::error(400, why),
                }
            }
            Call::DeleteToxic(name, toxic) => match self.toxic(&name, &toxic) {
                Ok((entry, at)) => {
                    entry.toxics.remove(at);
                    entry.apply_toxics();
                    Reply::no_content()
                }
                Err(reply) => reply,
            },
            Call::Reset => {
                for entry in self.proxies.values_mut() {
                    entry.toxics.clear();
                    entry.apply_toxics();
                    if !entry.enabled
                        && let Err(e) = entry.set_enabled(true).await
                    {
                        return Reply::error(500, format!("could not enable a proxy again: {e}"));
                    }
                }
                Reply::no_content()
            }
        }
    }

    /// Stops every proxy.
    pub(crate) async fn stop(self) {
        for entry in self.proxies.into_values() {
            entry.proxy.stop().await;
        }
    }

    async fn create(&mut self, new: NewProxy) -> Result<Value, Reply> {
        if self.proxies.contains_key(&new.name) {
            return Err(Reply::error(
                409,
                format!("proxy already exists: {}", new.name),
            ));
        }
        let entry = self.build(&new, None).await?;
        let view = entry.view(&new.name);
        self.proxies.insert(new.name, entry);
        Ok(view)
    }

    /// A running proxy as `new` describes it, enabled or not; `moving`
    /// names the proxy it is to replace (whose port it may share).
    async fn build(&self, new: &NewProxy, moving: Option<&str>) -> Result<Entry, Reply> {
        if new.name.is_empty() {
            return Err(Reply::error(400, "missing required field: name"));
        }
        if new.upstream.is_empty() {
            return Err(Reply::error(400, "missing required field: upstream"));
        }
        let listen = new.listen.as_deref().unwrap_or("127.0.0.1:0");
        let mut entry = self.start(listen, new.upstream.clone(), moving).await?;
        if new.enabled == Some(false)
            && let Err(e) = entry.set_enabled(false).await
        {
            entry.proxy.stop().await;
            return Err(Reply::error(
                500,
                format!("could not disable the proxy: {e}"),
            ));
        }
        Ok(entry)
    }

    /// Puts `entry` in the place of the proxy `name`, which stops.
    async fn replace(&mut self, name: String, entry: Entry) {
        if let Some(old) = self.proxies.insert(name, entry) {
            old.proxy.stop().await;
        }
    }

    /// Creates each proxy, replacing one of the same name whose addresses
    /// differ (a proxy with the same addresses is kept as it is).
    async fn populate(&mut self, list: Vec<NewProxy>) -> Reply {
        let mut views = Vec::new();
        for new in list {
            if let Some(entry) = self.proxies.get(&new.name) {
                let same = new.upstream == entry.upstream
                    && new
                        .listen
                        .as_deref()
                        .is_none_or(|l| l == entry.proxy.addr().to_string());
                if same {
                    views.push(entry.view(&new.name));
                    continue;
                }
            }
            // A replacement starts before its predecessor stops: if it
            // cannot, the predecessor stays as it was.
            match self.build(&new, Some(&new.name)).await {
                Ok(entry) => {
                    views.push(entry.view(&new.name));
                    self.replace(new.name, entry).await;
                }
                Err(mut reply) => {
                    if let Some(Value::Object(body)) = reply.body.as_mut() {
                        body.insert("proxies".to_owned(), Value::Array(views));
                    }
                    return reply;
                }
            }
        }
        Reply::created(json!({ "proxies": views }))
    }

    async fn update(&mut self, name: String, change: ProxyChange) -> Reply {
        let Some(entry) = self.proxies.get(&name) else {
            return proxy_not_found(&name);
        };
        let listen = change
            .listen
            .unwrap_or_else(|| entry.proxy.addr().to_string());
        let upstream = change.upstream.unwrap_or_else(|| entry.upstream.clone());
        let moved = listen != entry.proxy.addr().to_string() || upstream != entry.upstream;
        if moved {
            // A proxy's addresses are fixed: a new one takes its place, with
            // its toxics, once it listens (on the same port, if that does
            // not change: the sockets share it for that moment). If it
            // cannot start, the old one stays as it was.
            let mut moved = match self.start(&listen, upstream, Some(&name)).await {
                Ok(entry) => entry,
                Err(reply) => return reply,
            };
            moved.toxics = entry.toxics.clone();
            moved.apply_toxics();
            if !entry.enabled
                && let Err(e) = moved.set_enabled(false).await
            {
                moved.proxy.stop().await;
                return Reply::error(500, format!("could not disable the proxy: {e}"));
            }
            self.replace(name.clone(), moved).await;
        }
        let Some(entry) = self.proxies.get_mut(&name) else {
            return proxy_not_found(&name);
        };
        if let Some(enabled) = change.enabled
            && enabled != entry.enabled
            && let Err(e) = entry.set_enabled(enabled).await
        {
            return Reply::error(500, format!("could not change the proxy: {e}"));
        }
        Reply::ok(entry.view(&name))
    }

    /// Starts a proxy from `listen` to `upstream`, addresses as the API
    /// writes them (`host:port`); the port may be the one of the proxy
    /// `moving` only.
    async fn start(
        &self,
        listen: &str,
        upstream: String,
        moving: Option<&str>,
    ) -> Result<Entry, Reply> {
        let listen_addr = resolve(listen).await.map_err(|e| Reply::error(400, e))?;
        if listen_addr.port() != 0
            && self.proxies.iter().any(|(name, entry)| {
                entry.proxy.addr() == listen_addr && Some(name.as_str()) != moving
            })
        {
            return Err(Reply::error(
                409,
                format!("another proxy listens on {listen_addr}"),
            ));
        }
        let shared = self.proxies.iter().any(|(name, entry)| {
            entry.proxy.addr() == listen_addr && Some(name.as_str()) == moving
        });
        if listen_addr.port() != 0 && !shared {
            // The proxy's sockets share their port (SO_REUSEPORT, so that one
            // can take over from another); this socket does not, so it
            // fails where another program, or another API, listens.
            match std::net::TcpListener::bind(listen_addr) {
                Ok(probe) => drop(probe),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                    return Err(Reply::error(
                        409,
                        format!("{listen}: the address is in use by another program"),
                    ));
                }
                // Reported below, by the proxy's own bind.
                Err(_) => {}
            }
        }
        let upstream_addr = resolve(&upstream).await.map_err(|e| Reply::error(400, e))?;
        let proxy = Proxy::start_on(listen_addr, upstream_addr).map_err(|e| match e.kind() {
            io::ErrorKind::InvalidInput => Reply::error(400, e.to_string()),
            io::ErrorKind::AddrInUse => Reply::error(409, format!("{listen}: {e}")),
            _ => Reply::error(500, format!("could not listen on {listen}: {e}")),
        })?;
        Ok(Entry {
            proxy,
            upstream,
            enabled: true,
            toxics: Vec::new(),
        })
    }

    /// The proxy `name` and where its toxic `toxic` is.
    fn toxic(&mut self, name: &str, toxic: &str) -> Result<(&mut Entry, usize), Reply> {
        let Some(entry) = self.proxies.get_mut(name) else {
            return Err(proxy_not_found(name));
        };
        match entry.toxics.iter().position(|t| t.name == toxic) {
            Some(at) => Ok((entry, at)),
            None => Err(Reply::error(404, format!("toxic not found: {toxic}"))),
        }
    }
}

fn proxy_not_found(name: &str) -> Reply {
    Reply::error(404, format!("proxy not found: {name}"))
}

/// A `host:port` of the API as a socket address on this machine (the
/// proxy only works on loopback addresses: a name must resolve to one).
async fn resolve(address: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = address.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let found: Vec<SocketAddr> = tokio::net::lookup_host(address)
        .await
        .map_err(|e| format!("cannot resolve {address:?} (expected host:port): {e}"))?
        .collect();
    found
        .iter()
        .find(|addr| addr.is_ipv4() && addr.ip().is_loopback())
        .or_else(|| found.first())
        .copied()
        .ok_or_else(|| format!("{address:?} resolves to no address"))
}
