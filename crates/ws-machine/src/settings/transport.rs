//! The builder's options about how a connection is opened, beyond the
//! dialer: a proxy and its exceptions, TLS trust and a client certificate,
//! a TLS server name, subprotocols. [`TransportOptions::build`] checks them
//! once and produces the [`Extras`] the connector uses, boxed, so machines
//! that use none of them pay one pointer.

use std::{fmt, sync::Arc};

use http::HeaderMap;
use tokio_rustls::rustls::{self, pki_types::ServerName};

use super::{
    protocols::Protocols,
    proxy::{self, NoProxy, Proxy},
    tls::TlsOptions,
};
use crate::types::{Deflate, Error, Target};

/// Where the proxy comes from.
#[derive(Clone)]
pub(crate) enum ProxyChoice {
    /// [`Builder::proxy`](crate::Builder::proxy).
    Url(String),
    /// [`Builder::proxy_from_env`](crate::Builder::proxy_from_env).
    Env,
}

impl fmt::Debug for ProxyChoice {
    // The URL may hold a password: only the proxy's address is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(url) => match Proxy::parse(url) {
                Ok(proxy) => write!(f, "Url({})", proxy.name()),
                Err(_) => f.write_str("Url(<invalid>)"),
            },
            Self::Env => f.write_str("Env"),
        }
    }
}

/// The options as set on the builder.
#[derive(Debug, Clone, Default)]
pub(crate) struct TransportOptions {
    pub(crate) proxy: Option<ProxyChoice>,
    pub(crate) no_proxy: Option<String>,
    pub(crate) tls: TlsOptions,
    pub(crate) server_name: Option<String>,
    pub(crate) protocols: Vec<String>,
    pub(crate) require_protocol: bool,
    pub(crate) compression: Option<Deflate>,
}

/// What the connector needs beyond dialing, for machines that use it.
#[derive(Debug, Clone)]
pub(crate) struct Extras {
    /// Which proxy each URL goes through; `None` when none is set.
    pub(crate) proxy: Option<ProxyRoute>,
    /// The name TLS checks the certificate against, instead of the URL's
    /// host.
    pub(crate) server_name: Option<ServerName<'static>>,
    pub(crate) protocols: Option<Protocols>,
    /// permessage-deflate offered with these parameters.
    pub(crate) compression: Option<Deflate>,
}

/// Which schemes the machine's URLs may have: the builder's URL and the
/// fallbacks say; with a URL function, either.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schemes {
    pub(crate) plain: bool,
    pub(crate) secure: bool,
}

impl Schemes {
    /// The schemes of these URLs.
    pub(crate) fn of<'a>(targets: impl IntoIterator<Item = &'a Target>) -> Self {
        targets.into_iter().fold(
            Self {
                plain: false,
                secure: false,
            },
            |seen, target| Self {
                plain: seen.plain || !target.tls(),
                secure: seen.secure || target.tls(),
            },
        )
    }

    /// Both: the URLs are not known in advance.
    pub(crate) fn any() -> Self {
        Self {
            plain: true,
            secure: true,
        }
    }

    fn uses(self, tls: bool) -> bool {
        if tls { self.secure } else { self.plain }
    }
}

impl TransportOptions {
    /// Checks the options for URLs with `schemes`; a TLS configuration they
    /// make goes into `tls_config` (which must not be set already).
    pub(crate) fn build(
        self,
        schemes: Schemes,
        headers: &HeaderMap,
        tls_config: &mut Option<Arc<rustls::ClientConfig>>,
    ) -> Result<Option<Box<Extras>>, Error> {
        if let Some(config) = self.tls.build()? {
            if tls_config.is_some() {
                return Err(Error::InvalidConfig {
                    option: "tls_config",
                    reason: "it replaces ca_file, ca_pem, native_roots and client_cert_*: use either tls_config or those".into(),
                });
            }
            *tls_config = Some(config);
        }
        let server_name = self
            .server_name
            .map(|name| {
                ServerName::try_from(name.clone()).map_err(|e| Error::InvalidConfig {
                    option: "tls_server_name",
                    reason: format!("{name:?} is not a valid TLS server name ({e})"),
                })
            })
            .transpose()?;
        let proxy = self
            .proxy
            .map(|choice| ProxyRoute::new(choice, self.no_proxy, schemes))
            .transpose()?
            .flatten();
        let protocols = if self.protocols.is_empty() && !self.require_protocol {
            None
        } else {
            if headers.contains_key(http::header::SEC_WEBSOCKET_PROTOCOL) {
                return Err(Error::InvalidHeader {
                    name: http::header::SEC_WEBSOCKET_PROTOCOL.to_string(),
                    reason: "Builder::protocols sets it: remove the header".into(),
                });
            }
            Some(Protocols::new(self.protocols, self.require_protocol)?)
        };
        let compression = self.compression.map(Deflate::check).transpose()?;
        if compression.is_some() {
            if !cfg!(feature = "deflate") {
                return Err(Error::InvalidConfig {
                    option: "compression",
                    reason: "this build of ws-machine has no permessage-deflate: enable its `deflate` feature".into(),
                });
            }
            if headers.contains_key(http::header::SEC_WEBSOCKET_EXTENSIONS) {
                return Err(Error::InvalidHeader {
                    name: http::header::SEC_WEBSOCKET_EXTENSIONS.to_string(),
                    reason: "Builder::compression sets it: remove the header".into(),
                });
            }
        }
        if proxy.is_none() && server_name.is_none() && protocols.is_none() && compression.is_none()
        {
            return Ok(None);
        }
        Ok(Some(Box::new(Extras {
            proxy,
            server_name,
            protocols,
            compression,
        })))
    }
}

/// Which proxy a URL goes through, decided for each attempt's URL (a
/// machine may have several): the proxy for its scheme, unless its host is
/// one of the exceptions.
#[derive(Debug, Clone)]
pub(crate) struct ProxyRoute {
    /// For `ws://` URLs.
    plain: Option<Proxy>,
    /// For `wss://` URLs.
    secure: Option<Proxy>,
    /// Hosts reached directly.
    no_proxy: Option<NoProxy>,
}

impl ProxyRoute {
    /// The route for `choice`; `None` when the environment names no proxy.
    /// An explicit list of exceptions replaces the environment's, as curl's
    /// `--noproxy` does. A variable that is not a proxy URL is an error if
    /// the machine's URLs may have its scheme (`schemes`); for a scheme they
    /// never have, it is warned about and ignored.
    fn new(
        choice: ProxyChoice,
        no_proxy: Option<String>,
        schemes: Schemes,
    ) -> Result<Option<Self>, Error> {
        Self::with_env(choice, no_proxy, schemes, |name| std::env::var(name).ok())
    }

    /// [`ProxyRoute::new`], reading the environment through `var`.
    fn with_env(
        choice: ProxyChoice,
        no_proxy: Option<String>,
        schemes: Schemes,
        var: impl Fn(&str) -> Option<String> + Copy,
    ) -> Result<Option<Self>, Error> {
        let (plain, secure, no_proxy) = match choice {
            ProxyChoice::Url(url) => {
                let proxy = Proxy::parse(&url).map_err(|reason| Error::InvalidConfig {
                    option: "proxy",
                    reason,
                })?;
                (Some(proxy.clone()), Some(proxy), no_proxy)
            }
            ProxyChoice::Env => {
                let (plain, secure) = (proxy::from_env(false, var), proxy::from_env(true, var));
                let parse = |found: Option<(&'static str, String)>, tls: bool| {
                    let Some((name, url)) = found else {
                        return Ok(None);
                    };
                    match Proxy::parse(&url) {
                        Ok(proxy) => Ok(Some(proxy)),
                        Err(reason) if schemes.uses(tls) => Err(Error::InvalidConfig {
                            option: "proxy_from_env",
                            reason: format!("{name} is not a usable proxy URL: {reason}"),
                        }),
                        Err(reason) => {
                            tracing::warn!(variable = name, %reason, "not a usable proxy URL: ignored");
                            Ok(None)
                        }
                    }
                };
                let no_proxy = no_proxy.or(secure.no_proxy);
                (
                    parse(plain.proxy, false)?,
                    parse(secure.proxy, true)?,
                    no_proxy,
                )
            }
        };
        if plain.is_none() && secure.is_none() {
            return Ok(None);
        }
        Ok(Some(Self {
            plain,
            secure,
            no_proxy: no_proxy.as_deref().map(NoProxy::parse),
        }))
    }

    /// The proxy `target` goes through, if any.
    pub(crate) fn for_target(&self, target: &Target) -> Option<&Proxy> {
        let proxy = if target.tls() {
            self.secure.as_ref()
        } else {
            self.plain.as_ref()
        }?;
        if self
            .no_proxy
            .as_ref()
            .is_some_and(|list| list.matches(target.host()))
        {
            tracing::debug!(host = target.host(), "NO_PROXY: connecting directly");
            return None;
        }
        Some(proxy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(url: &str, options: TransportOptions) -> Result<Option<Box<Extras>>, Error> {
        let target = Target::parse(url).expect("valid URL");
        options.build(Schemes::of([&target]), &HeaderMap::new(), &mut None)
    }

    #[test]
    fn nothing_set_costs_nothing() {
        assert!(
            build("ws://a.test/", TransportOptions::default())
                .expect("valid")
                .is_none()
        );
    }

    #[test]
    fn no_proxy_decides_for_each_urls_host() {
        let options = TransportOptions {
            proxy: Some(ProxyChoice::Url("http://127.0.0.1:3128".into())),
            no_proxy: Some(".example.com".into()),
            ..TransportOptions::default()
        };
        let route = build("ws://feed.example.com/", options)
            .expect("valid")
            .and_then(|e| e.proxy)
            .expect("a route");
        let target = |url: &str| Target::parse(url).expect("valid URL");
        assert!(
            route
                .for_target(&target("ws://feed.example.com/"))
                .is_none()
        );
        assert!(
            route
                .for_target(&target("wss://backup.other.test/"))
                .is_some()
        );
    }

    /// A broken proxy variable is an error for every scheme the machine's
    /// URLs may have (a `wss://` fallback too), and ignored for the others.
    #[test]
    fn a_broken_proxy_variable_matters_for_the_schemes_in_use() {
        let env = |name: &str| (name == "https_proxy").then(|| "ftp://nope".to_owned());
        let route = |schemes| ProxyRoute::with_env(ProxyChoice::Env, None, schemes, env);
        let plain = Target::parse("ws://a.test/").expect("valid");
        let secure = Target::parse("wss://b.test/").expect("valid");
        assert!(route(Schemes::of([&plain])).expect("ignored").is_none());
        for schemes in [Schemes::of([&plain, &secure]), Schemes::any()] {
            let err = route(schemes).expect_err("in use");
            assert!(err.to_string().contains("https_proxy"), "{err}");
        }
    }

    #[test]
    fn a_bad_proxy_url_is_a_configuration_error_without_the_password() {
        let options = TransportOptions {
            proxy: Some(ProxyChoice::Url("https://me:s3cret@proxy.test".into())),
            ..TransportOptions::default()
        };
        let err = build("ws://a.test/", options.clone()).expect_err("refused");
        assert!(
            matches!(
                err,
                Error::InvalidConfig {
                    option: "proxy",
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert!(!format!("{options:?}").contains("s3cret"));
    }

    #[test]
    fn protocols_and_a_protocol_header_conflict() {
        let target = Target::parse("ws://a.test/").expect("valid");
        let mut headers = HeaderMap::new();
        headers.insert("sec-websocket-protocol", "chat".parse().expect("value"));
        let options = TransportOptions {
            protocols: vec!["chat".into()],
            ..TransportOptions::default()
        };
        let err = options
            .build(Schemes::of([&target]), &headers, &mut None)
            .expect_err("refused");
        assert!(matches!(err, Error::InvalidHeader { .. }), "{err}");
    }

    #[test]
    fn a_bad_server_name_is_refused() {
        let options = TransportOptions {
            server_name: Some("not a name".into()),
            ..TransportOptions::default()
        };
        let err = build("wss://a.test/", options).expect_err("refused");
        assert!(
            matches!(
                err,
                Error::InvalidConfig {
                    option: "tls_server_name",
                    ..
                }
            ),
            "{err}"
        );
    }
}
