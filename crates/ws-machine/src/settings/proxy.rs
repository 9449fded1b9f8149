//! Which proxy a machine goes through, if any: a proxy URL taken apart
//! (with its credentials kept out of every `Debug` and message), the
//! `NO_PROXY` exceptions, and the environment variables curl reads.
//!
//! Everything here is decided once, when the machine is built: the URL's
//! host never changes, so whether it bypasses the proxy is known then.

use std::{fmt, net::IpAddr};

use crate::types::Endpoint;

/// How a proxy opens the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// An HTTP proxy: `CONNECT host:port`.
    Http,
    /// SOCKS5, the server's name resolved here.
    Socks5,
    /// SOCKS5, the server's name resolved by the proxy.
    Socks5h,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Socks5 => "socks5",
            Self::Socks5h => "socks5h",
        }
    }
}

/// A proxy's user name and password. Never shown.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) user: String,
    pub(crate) password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(<hidden>)")
    }
}

/// A proxy, parsed from its URL.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Proxy {
    pub(crate) scheme: Scheme,
    host: String,
    port: u16,
    pub(crate) credentials: Option<Credentials>,
}

/// Shows the proxy as [`Proxy::name`] does: never its credentials.
impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("url", &self.name())
            .field("credentials", &self.credentials.is_some())
            .finish()
    }
}

impl Proxy {
    /// Parses `scheme://[user:password@]host[:port][/]`. Without a scheme
    /// the proxy is an HTTP one (as curl takes it). Default ports: 80 for
    /// `http`, 1080 for SOCKS. The user name and password may be
    /// percent-encoded. The error never repeats the URL (it may hold a
    /// password).
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let (scheme, rest) = match url.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("http".to_owned(), url),
        };
        let scheme = match scheme.as_str() {
            "http" => Scheme::Http,
            "socks5" => Scheme::Socks5,
            "socks5h" => Scheme::Socks5h,
            "https" => {
                return Err(
                    "https:// proxies (TLS to the proxy) are not supported: use http://, socks5:// or socks5h://".into(),
                );
            }
            other => {
                return Err(format!(
                    "the scheme {other:?} is not supported: use http://, socks5:// or socks5h://"
                ));
            }
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if !(tail.is_empty() || tail == "/") {
            return Err("a proxy URL has no path: give scheme://host:port".into());
        }
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let credentials = userinfo
            .map(|userinfo| {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                Ok::<_, String>(Credentials {
                    user: percent_decode(user)
                        .ok_or("the user name is not valid percent-encoded UTF-8")?,
                    password: percent_decode(password)
                        .ok_or("the password is not valid percent-encoded UTF-8")?,
                })
            })
            .transpose()?;
        let (host, port) = split_host_port(host_port)?;
        if host.is_empty() {
            return Err("it has no host".into());
        }
        if host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "@/\\".contains(c))
        {
            return Err("its host has characters a host name cannot have".into());
        }
        let port = match port {
            Some(port) => port,
            None if scheme == Scheme::Http => 80,
            None => 1080,
        };
        Ok(Self {
            scheme,
            host: host.to_owned(),
            port,
            credentials,
        })
    }

    /// Where to dial: the proxy's host and port.
    pub(crate) fn endpoint(&self) -> Endpoint {
        Endpoint::new(self.host.clone(), self.port)
    }

    /// The proxy as `scheme://host:port`, for messages: without the
    /// credentials.
    pub(crate) fn name(&self) -> Box<str> {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{}://{host}:{}", self.scheme.name(), self.port).into()
    }
}

/// `host[:port]`, with an IPv6 address in brackets.
fn split_host_port(text: &str) -> Result<(&str, Option<u16>), String> {
    let bad_port = || "its port is not a number from 1 to 65535".to_owned();
    let parse_port = |p: &str| match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad_port()),
        Ok(port) => Ok(port),
    };
    if let Some(inner) = text.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or("an IPv6 address lacks its closing bracket")?;
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(parse_port(port)?))),
                None => Err(bad_port()),
            },
        };
    }
    match text.rsplit_once(':') {
        Some((host, port)) => Ok((host, Some(parse_port(port)?))),
        None => Ok((text, None)),
    }
}

/// Decodes `%XX` escapes; `None` for a broken escape or bytes that are not
/// UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Hosts that are reached without the proxy, as curl reads `NO_PROXY`: a
/// comma- (or space-) separated list of host names, each matching itself
/// and every name under it (`example.com` and `.example.com` both match
/// `example.com` and `api.example.com`, not `notexample.com`); IP
/// addresses, matching themselves, or networks in CIDR notation
/// (`10.0.0.0/8`, `fd00::/8`); and `*`, matching every host. Names are
/// compared without regard to case or a trailing dot; a `:port` after a
/// name is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NoProxy {
    all: bool,
    names: Vec<String>,
    networks: Vec<(IpAddr, u8)>,
}

impl NoProxy {
    pub(crate) fn parse(list: &str) -> Self {
        let mut no_proxy = Self::default();
        for token in list
            .split([',', ' ', '\t'])
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            if token == "*" {
                no_proxy.all = true;
            } else if let Some(network) = network(without_port(token)) {
                no_proxy.networks.push(network);
            } else {
                // `*.example.com` (as Go writes it) means `.example.com`.
                let name = token.strip_prefix("*.").unwrap_or(token);
                let name = name.strip_prefix('.').unwrap_or(name);
                let name = without_port(name);
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if !name.is_empty() {
                    no_proxy.names.push(name);
                }
            }
        }
        no_proxy
    }

    /// Whether `host` (a name, or an IP address without brackets) is
    /// reached directly.
    pub(crate) fn matches(&self, host: &str) -> bool {
        if self.all {
            return true;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self
                .networks
                .iter()
                .any(|&(net, bits)| in_network(ip, net, bits));
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.names.iter().any(|name| {
            host == *name
                || host
                    .strip_suffix(name.as_str())
                    .is_some_and(|head| head.ends_with('.'))
        })
    }
}

/// `token` without a `:port` after it: `127.0.0.1:8080`, `[::1]:8080` and
/// `name:8080` lose the port; a bare IPv6 address (`::1`) is kept whole.
fn without_port(token: &str) -> &str {
    if let Some(rest) = token.strip_prefix('[') {
        // `[address]` or `[address]:port`: the address, brackets kept.
        return rest.find(']').map_or(token, |end| &token[..end + 2]);
    }
    match token.rsplit_once(':') {
        Some((head, port)) if !head.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            head
        }
        _ => token,
    }
}

/// An IP address (optionally in brackets) or a CIDR network.
fn network(token: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match token.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits.parse::<u8>().ok()?)),
        None => (token, None),
    };
    let addr: IpAddr = addr
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((addr, bits))
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// The proxy settings found in the environment, as curl reads them.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct FromEnv {
    /// The variable that named the proxy, and its value.
    pub(crate) proxy: Option<(&'static str, String)>,
    /// `no_proxy` or `NO_PROXY`.
    pub(crate) no_proxy: Option<String>,
}

/// Reads the proxy variables through `var` (the process environment, or a
/// test's map): for `wss://`, `https_proxy` then `HTTPS_PROXY`; for `ws://`,
/// `http_proxy`, then `HTTP_PROXY` except in a CGI program (where
/// `REQUEST_METHOD` is set, a request's `Proxy:` header can arrive as
/// `HTTP_PROXY`: "httpoxy"); then `all_proxy`, `ALL_PROXY`. Exceptions from
/// `no_proxy`, then `NO_PROXY`. Empty values count as unset.
pub(crate) fn from_env(tls: bool, var: impl Fn(&str) -> Option<String>) -> FromEnv {
    let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    let cgi = get("REQUEST_METHOD").is_some();
    let names: &[&'static str] = match (tls, cgi) {
        (true, _) => &["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"],
        (false, false) => &["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"],
        (false, true) => &["http_proxy", "all_proxy", "ALL_PROXY"],
    };
    FromEnv {
        proxy: names
            .iter()
            .find_map(|&name| get(name).map(|value| (name, value))),
        no_proxy: get("no_proxy").or_else(|| get("NO_PROXY")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn proxy_urls_are_taken_apart() {
        let p = Proxy::parse("http://user:p%40ss@proxy.example:3128/").expect("valid");
        assert_eq!(p.scheme, Scheme::Http);
        assert_eq!(p.endpoint(), Endpoint::new("proxy.example".into(), 3128));
        let c = p.credentials.clone().expect("credentials");
        assert_eq!((c.user.as_str(), c.password.as_str()), ("user", "p@ss"));
        assert_eq!(&*p.name(), "http://proxy.example:3128");

        let p = Proxy::parse("proxy.example").expect("valid");
        assert_eq!((p.scheme, p.endpoint().port()), (Scheme::Http, 80));
        let p = Proxy::parse("SOCKS5H://[::1]").expect("valid");
        assert_eq!(p.scheme, Scheme::Socks5h);
        assert_eq!(p.endpoint(), Endpoint::new("::1".into(), 1080));
        assert_eq!(&*p.name(), "socks5h://[::1]:1080");
        let p = Proxy::parse("socks5://u@127.0.0.1:1081").expect("valid");
        assert_eq!(p.credentials.expect("user").password, "");
    }

    #[test]
    fn bad_proxy_urls_say_why_without_the_password() {
        let cases = [
            ("https://u:s3cret@proxy:443", "not supported"),
            ("ftp://u:s3cret@proxy", "not supported"),
            ("http://u:s3cret@proxy:99999", "port"),
            ("http://u:s3cret@proxy:0", "port"),
            ("http://u:s3cret@:8080", "no host"),
            ("http://u:s3cret@proxy/path", "no path"),
            ("http://u:s3cr%zzet@proxy", "percent-encoded"),
            ("http://u:s3cret@[::1:80", "bracket"),
        ];
        for (url, hint) in cases {
            let err = Proxy::parse(url).expect_err(url);
            assert!(err.contains(hint), "{url}: {err}");
            assert!(!err.contains("s3cr"), "{url}: {err}");
        }
    }

    #[test]
    fn debug_and_name_never_show_credentials() {
        let p = Proxy::parse("socks5://alice:s3cret@127.0.0.1:1080").expect("valid");
        let shown = format!("{p:?} {} {:?}", p.name(), p.credentials);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("alice"), "{shown}");
    }

    #[test]
    fn no_proxy_matches_as_curl_does() {
        let list = NoProxy::parse(
            "example.com, .internal.test,10.0.0.0/8 ::1 192.168.1.7,fd00::/8, other.test:8080",
        );
        let direct = [
            "example.com",
            "api.example.com",
            "EXAMPLE.COM.",
            "internal.test",
            "a.b.internal.test",
            "10.1.2.3",
            "::1",
            "[::1]",
            "192.168.1.7",
            "fd12::1",
            "other.test",
        ];
        for host in direct {
            assert!(list.matches(host), "{host} should bypass the proxy");
        }
        let proxied = [
            "notexample.com",
            "example.com.evil",
            "11.0.0.1",
            "192.168.1.8",
            "::2",
            "fe80::1",
            "localhost",
        ];
        for host in proxied {
            assert!(!list.matches(host), "{host} should use the proxy");
        }
        assert!(NoProxy::parse("*").matches("anything.example"));
        assert!(NoProxy::parse("a.test, *").matches("b.test"));
        assert!(!NoProxy::parse("").matches("a.test"));
        assert!(NoProxy::parse("0.0.0.0/0").matches("8.8.8.8"));
        assert!(!NoProxy::parse("10.0.0.0/99").matches("10.0.0.1"));
    }

    #[test]
    fn no_proxy_entries_with_a_port_or_a_star_match_too() {
        let list = NoProxy::parse("127.0.0.1:8080, [::1]:8080, localhost:8080, *.corp.test");
        for host in [
            "127.0.0.1",
            "::1",
            "[::1]",
            "localhost",
            "api.corp.test",
            "corp.test",
        ] {
            assert!(list.matches(host), "{host} should bypass the proxy");
        }
        for host in ["127.0.0.2", "::2", "corp.test.evil"] {
            assert!(!list.matches(host), "{host} should use the proxy");
        }
        assert_eq!(without_port("::1"), "::1");
        assert_eq!(without_port("[::1]:8080"), "[::1]");
        assert_eq!(without_port("name:80"), "name");
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn the_environment_is_read_as_curl_reads_it() {
        let vars = env(&[
            ("https_proxy", "http://secure:3128"),
            ("HTTP_PROXY", "http://plain:3128"),
            ("ALL_PROXY", "socks5h://all:1080"),
            ("NO_PROXY", "localhost"),
        ]);
        let wss = from_env(true, &vars);
        assert_eq!(
            wss.proxy,
            Some(("https_proxy", "http://secure:3128".to_owned()))
        );
        assert_eq!(wss.no_proxy.as_deref(), Some("localhost"));
        let ws = from_env(false, &vars);
        assert_eq!(
            ws.proxy,
            Some(("HTTP_PROXY", "http://plain:3128".to_owned()))
        );

        // Lower case first; an empty value is unset.
        let vars = env(&[
            ("http_proxy", "http://lower:1"),
            ("HTTP_PROXY", "http://upper:1"),
            ("no_proxy", ""),
            ("NO_PROXY", "a.test"),
        ]);
        let ws = from_env(false, &vars);
        assert_eq!(ws.proxy, Some(("http_proxy", "http://lower:1".to_owned())));
        assert_eq!(ws.no_proxy.as_deref(), Some("a.test"));

        // In a CGI program HTTP_PROXY may come from a request: ignored.
        let vars = env(&[
            ("REQUEST_METHOD", "GET"),
            ("HTTP_PROXY", "http://attacker:1"),
            ("ALL_PROXY", "http://all:1"),
        ]);
        assert_eq!(
            from_env(false, &vars).proxy,
            Some(("ALL_PROXY", "http://all:1".to_owned()))
        );
        assert_eq!(from_env(true, env(&[])), FromEnv::default());
    }
}
