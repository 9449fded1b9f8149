//! The tunnel through a proxy, opened over the stream dialed to it: an HTTP
//! `CONNECT` (written here: a request line, two headers and a status line
//! to read) or SOCKS5 (`tokio-socks`). Either way the stream comes back as
//! it was, now carrying bytes to the server, so TLS and the upgrade run
//! over it unchanged.

use std::{io, sync::Arc};

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_socks::tcp::Socks5Stream;

use crate::{
    settings::{ByteStream, Proxy, ProxyScheme, default_retry_status},
    types::{Endpoint, Error},
};

/// Most bytes of a proxy's answer to `CONNECT`.
const MAX_ANSWER: usize = 16 * 1024;

/// Opens the tunnel to `to` over `stream`, dialed to `proxy`.
pub(crate) async fn tunnel<S: ByteStream>(
    proxy: &Proxy,
    mut stream: S,
    to: &Endpoint,
) -> Result<S, Error> {
    tracing::debug!(proxy = %proxy.name(), to = %format_args!("{}:{}", to.host(), to.port()), "opening the tunnel");
    match proxy.scheme {
        ProxyScheme::Http => {
            http_connect(proxy, &mut stream, to).await?;
            Ok(stream)
        }
        ProxyScheme::Socks5 => socks5(proxy, stream, to, Resolve::Here).await,
        ProxyScheme::Socks5h => socks5(proxy, stream, to, Resolve::ByProxy).await,
    }
}

/// `CONNECT host:port` and its answer.
async fn http_connect<S: ByteStream>(
    proxy: &Proxy,
    stream: &mut S,
    to: &Endpoint,
) -> Result<(), Error> {
    let authority = if to.host().contains(':') {
        format!("[{}]:{}", to.host(), to.port())
    } else {
        format!("{}:{}", to.host(), to.port())
    };
    // Holds the credentials: never logged.
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(credentials) = &proxy.credentials {
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", credentials.user, credentials.password));
        request.push_str("Proxy-Authorization: Basic ");
        request.push_str(&token);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    let io_error = |e: io::Error| Error::Proxy {
        proxy: proxy.name(),
        source: Arc::new(e),
    };
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(io_error)?;
    stream.flush().await.map_err(io_error)?;
    let answer = read_answer(stream).await.map_err(io_error)?;
    let (status, reason) = status_line(&answer).ok_or_else(|| {
        io_error(io::Error::new(
            io::ErrorKind::InvalidData,
            "the proxy's answer to CONNECT is not HTTP",
        ))
    })?;
    if (200..300).contains(&status) {
        return Ok(());
    }
    Err(Error::ProxyRefused {
        proxy: proxy.name(),
        answer: format!("HTTP {status} {reason}").trim_end().into(),
        // 407 (credentials) and 403 are final; 5xx (the proxy could not
        // reach the server), 408 and 429 are retried.
        retryable: default_retry_status(status),
        source: None,
    })
}

/// Reads the answer up to its blank line, one byte at a time (as curl
/// does), so nothing after it (the server's first bytes) is taken from the
/// stream.
async fn read_answer<S: ByteStream>(stream: &mut S) -> io::Result<Vec<u8>> {
    let mut answer = Vec::with_capacity(128);
    while !answer.ends_with(b"\r\n\r\n") {
        if answer.len() >= MAX_ANSWER {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the proxy's answer to CONNECT exceeds {MAX_ANSWER} bytes"),
            ));
        }
        match stream.read_u8().await {
            Ok(byte) => answer.push(byte),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the proxy closed the connection before answering CONNECT",
                ));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(answer)
}

/// The status code and reason phrase (printable ASCII, at most 100
/// characters: it comes from the network).
fn status_line(answer: &[u8]) -> Option<(u16, String)> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    response.parse(answer).ok()?;
    let reason: String = response
        .reason
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(100)
        .collect();
    Some((response.code?, reason))
}

/// Where the server's name is resolved.
enum Resolve {
    /// Here (`socks5://`); the first address is used, as curl does.
    Here,
    /// By the proxy (`socks5h://`).
    ByProxy,
}

/// The SOCKS5 handshake.
async fn socks5<S: ByteStream>(
    proxy: &Proxy,
    stream: S,
    to: &Endpoint,
    resolve: Resolve,
) -> Result<S, Error> {
    let target = match resolve {
        Resolve::ByProxy => tokio_socks::TargetAddr::Domain(to.host().into(), to.port()),
        Resolve::Here => {
            let address = tokio::net::lookup_host((to.host(), to.port()))
                .await
                .and_then(|mut found| {
                    found.next().ok_or_else(|| {
                        io::Error::new(io::ErrorKind::NotFound, "the name has no address")
                    })
                })
                .map_err(|e| Error::Connect {
                    host: to.host().to_owned(),
                    port: to.port(),
                    source: Arc::new(e),
                })?;
            tokio_socks::TargetAddr::Ip(address)
        }
    };
    // An IP address in a domain target is sent as an address.
    let target = match target {
        tokio_socks::TargetAddr::Domain(host, port) => match host.parse() {
            Ok(ip) => tokio_socks::TargetAddr::Ip(std::net::SocketAddr::new(ip, port)),
            Err(_) => tokio_socks::TargetAddr::Domain(host, port),
        },
        ip => ip,
    };
    let opened = match &proxy.credentials {
        Some(c) => {
            Socks5Stream::connect_with_password_and_socket(stream, target, &c.user, &c.password)
                .await
        }
        None => Socks5Stream::connect_with_socket(stream, target).await,
    };
    match opened {
        Ok(tunnel) => Ok(tunnel.into_inner()),
        Err(tokio_socks::Error::Io(e)) => Err(Error::Proxy {
            proxy: proxy.name(),
            source: Arc::new(e),
        }),
        Err(e) => Err(Error::ProxyRefused {
            proxy: proxy.name(),
            answer: format!("SOCKS5: {e}").into(),
            retryable: socks_retryable(&e),
            source: Some(Arc::new(e)),
        }),
    }
}

/// Whether asking again may help: yes when the proxy could not reach the
/// server; no for rejected credentials, rules and what the proxy does not
/// support.
fn socks_retryable(error: &tokio_socks::Error) -> bool {
    use tokio_socks::Error as E;
    match error {
        E::Io(_)
        | E::ProxyServerUnreachable
        | E::GeneralSocksServerFailure
        | E::NetworkUnreachable
        | E::HostUnreachable
        | E::ConnectionRefused
        | E::TtlExpired
        | E::UnknownError
        | E::InvalidResponseVersion
        | E::InvalidReservedByte
        | E::UnknownAddressType => true,
        E::ParseError(_)
        | E::InvalidTargetAddress(_)
        | E::NoAcceptableAuthMethods
        | E::UnknownAuthMethod
        | E::ConnectionNotAllowedByRuleset
        | E::CommandNotSupported
        | E::AddressTypeNotSupported
        | E::InvalidAuthValues(_)
        | E::PasswordAuthFailure(_)
        | E::AuthorizationRequired
        | E::IdentdAuthFailure
        | E::InvalidUserIdAuthFailure => false,
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncBufReadExt, BufReader};

    use super::*;

    /// A scripted HTTP proxy on an in-memory pipe: reads the request,
    /// answers `answer`, and returns the request it saw.
    async fn scripted(answer: &'static [u8]) -> (Result<(), Error>, String) {
        let (client, server) = tokio::io::duplex(4096);
        let proxy = Proxy::parse("http://alice:s3cret@127.0.0.1:3128").expect("valid");
        let peer = tokio::spawn(async move {
            let (read, mut write) = tokio::io::split(server);
            let mut read = BufReader::new(read);
            let mut request = String::new();
            loop {
                let mut line = String::new();
                if read.read_line(&mut line).await.expect("read") == 0 || line == "\r\n" {
                    break;
                }
                request.push_str(&line);
            }
            write.write_all(answer).await.expect("write");
            request
        });
        let mut client = client;
        let result = http_connect(&proxy, &mut client, &Endpoint::new("::1".into(), 9001)).await;
        (result, peer.await.expect("peer"))
    }

    #[tokio::test]
    async fn connect_sends_the_target_and_basic_credentials() {
        let (result, request) = scripted(b"HTTP/1.1 200 Connection established\r\n\r\n").await;
        assert!(result.is_ok(), "{result:?}");
        assert!(
            request.starts_with("CONNECT [::1]:9001 HTTP/1.1\r\n"),
            "{request}"
        );
        let token = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        assert!(
            request.contains(&format!("Proxy-Authorization: Basic {token}\r\n")),
            "{request}"
        );
    }

    #[tokio::test]
    async fn a_refusal_names_the_proxy_and_what_it_said() {
        let (result, _) = scripted(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n",
        )
        .await;
        let err = result.expect_err("refused");
        assert!(!err.is_retryable());
        let text = err.to_string();
        assert_eq!(
            text,
            "proxy http://127.0.0.1:3128 refused the tunnel: HTTP 407 Proxy Authentication Required (not retried: check the proxy URL and its credentials)"
        );
        let debug = format!("{err:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("alice"),
            "{debug}"
        );
        let (result, _) = scripted(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        assert!(result.expect_err("refused").is_retryable());
    }

    #[tokio::test]
    async fn a_broken_answer_is_retried() {
        let (result, _) = scripted(b"SSH-2.0-OpenSSH\r\n\r\n").await;
        let err = result.expect_err("not HTTP");
        assert!(matches!(err, Error::Proxy { .. }), "{err}");
        assert!(err.is_retryable());
        let (result, _) = scripted(b"HTTP/1.1 200 OK\r\n").await;
        let err = result.expect_err("closed before the blank line");
        assert!(err.to_string().contains("closed the connection"), "{err}");
        assert!(matches!(err, Error::Proxy { .. }), "{err}");
        assert!(err.is_retryable());
    }

    #[test]
    fn socks_credentials_and_rules_are_final() {
        assert!(!socks_retryable(&tokio_socks::Error::PasswordAuthFailure(
            1
        )));
        assert!(!socks_retryable(
            &tokio_socks::Error::ConnectionNotAllowedByRuleset
        ));
        assert!(socks_retryable(&tokio_socks::Error::ConnectionRefused));
        assert!(socks_retryable(&tokio_socks::Error::HostUnreachable));
    }
}
