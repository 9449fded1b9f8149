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
use crate::types::{Error, Target};

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
}

/// What the connector needs beyond dialing, for machines that use it.
#[derive(Debug, Clone)]
pub(crate) struct Extras {
    /// The proxy to tunnel through; `None` when none is set or the host is
    /// one of the exceptions.
    pub(crate) proxy: Option<Proxy>,
    /// The name TLS checks the certificate against, instead of the URL's
    /// host.
    pub(crate) server_name: Option<ServerName<'static>>,
    pub(crate) protocols: Option<Protocols>,
}

impl TransportOptions {
    /// Checks the options for `target`; a TLS configuration they make goes
    /// into `tls_config` (which must not be set already).
    pub(crate) fn build(
        self,
        target: &Target,
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
            .map(|choice| proxy_for(target, choice, self.no_proxy))
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
        if proxy.is_none() && server_name.is_none() && protocols.is_none() {
            return Ok(None);
        }
        Ok(Some(Box::new(Extras {
            proxy,
            server_name,
            protocols,
        })))
    }
}

/// The proxy `target` goes through, if any.
fn proxy_for(
    target: &Target,
    choice: ProxyChoice,
    no_proxy: Option<String>,
) -> Result<Option<Proxy>, Error> {
    let (proxy, no_proxy) = match choice {
        ProxyChoice::Url(url) => {
            let proxy = Proxy::parse(&url).map_err(|reason| Error::InvalidConfig {
                option: "proxy",
                reason,
            })?;
            (proxy, no_proxy)
        }
        ProxyChoice::Env => {
            let found = proxy::from_env(target.tls(), |name| std::env::var(name).ok());
            let Some((name, url)) = found.proxy else {
                return Ok(None);
            };
            let proxy = Proxy::parse(&url).map_err(|reason| Error::InvalidConfig {
                option: "proxy_from_env",
                reason: format!("{name} is not a usable proxy URL: {reason}"),
            })?;
            // An explicit list replaces the environment's, as curl's
            // --noproxy does.
            (proxy, no_proxy.or(found.no_proxy))
        }
    };
    let bypass = no_proxy
        .as_deref()
        .is_some_and(|list| NoProxy::parse(list).matches(target.host()));
    if bypass {
        tracing::debug!(host = target.host(), "NO_PROXY: connecting directly");
    }
    Ok((!bypass).then_some(proxy))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(url: &str, options: TransportOptions) -> Result<Option<Box<Extras>>, Error> {
        let target = Target::parse(url).expect("valid URL");
        options.build(&target, &HeaderMap::new(), &mut None)
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
    fn no_proxy_decides_once_for_the_urls_host() {
        let options = |no_proxy: &str| TransportOptions {
            proxy: Some(ProxyChoice::Url("http://127.0.0.1:3128".into())),
            no_proxy: Some(no_proxy.into()),
            ..TransportOptions::default()
        };
        let via = build("ws://feed.example.com/", options("other.test")).expect("valid");
        assert!(via.and_then(|e| e.proxy).is_some());
        let direct = build("ws://feed.example.com/", options(".example.com")).expect("valid");
        assert!(direct.is_none());
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
            .build(&target, &headers, &mut None)
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
