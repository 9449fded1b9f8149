//! Where a machine connects: its URL taken apart once, and the endpoint a
//! dialer is asked to reach.

use std::borrow::Cow;

use http::Uri;
use tokio_rustls::rustls;

use super::error::Error;

/// The machine's URL, taken apart once.
///
/// Kept compact (every machine holds one for its whole life): the URL as
/// text, parsed again into a [`Uri`] for each attempt (which costs far less
/// than the connection it is for), and where in it the host is.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    url: Box<str>,
    /// The host's place in `url` (without the brackets of an IPv6 address).
    host_start: u32,
    host_len: u32,
    port: u16,
    tls: bool,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Self, Error> {
        if !url.contains("://") {
            let lower = url.to_ascii_lowercase();
            let reason = if ["ws:/", "wss:/"].iter().any(|s| lower.starts_with(s)) {
                "it has one slash after the scheme: write two, as in ws://host/"
            } else if ["ws//", "wss//"].iter().any(|s| lower.starts_with(s)) {
                "the scheme has no colon: write ws:// or wss://"
            } else {
                "it has no scheme: start it with ws:// or wss://"
            };
            return Err(Error::invalid_url(url, reason));
        }
        let uri: Uri = url
            .parse()
            .map_err(|e| Error::invalid_url(url, format!("cannot parse it ({e})")))?;
        let tls = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("ws") => false,
            Some(s) if s.eq_ignore_ascii_case("wss") => true,
            Some(other) => {
                return Err(Error::invalid_url(
                    url,
                    format!("scheme {other:?} is not supported: use ws:// or wss://"),
                ));
            }
            None => {
                return Err(Error::invalid_url(
                    url,
                    "it has no scheme: start it with ws:// or wss://",
                ));
            }
        };
        let (host_start, host_len) = host_range(url, &uri)?;
        let host = &url[host_start..host_start + host_len];
        if tls && rustls::pki_types::ServerName::try_from(host).is_err() {
            return Err(Error::invalid_url(
                url,
                format!("{host:?} is not a valid TLS server name"),
            ));
        }
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let too_long = || Error::invalid_url(url, "it is longer than 4 GiB");
        Ok(Self {
            url: url.into(),
            host_start: u32::try_from(host_start).map_err(|_| too_long())?,
            host_len: u32::try_from(host_len).map_err(|_| too_long())?,
            port,
            tls,
        })
    }

    /// The URL as given.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The host, without the brackets of an IPv6 address.
    pub(crate) fn host(&self) -> &str {
        let start = self.host_start as usize;
        self.url
            .get(start..start + self.host_len as usize)
            .unwrap_or_default()
    }

    /// Whether the URL is `wss://`.
    pub(crate) fn tls(&self) -> bool {
        self.tls
    }

    /// What a dialer must reach for this URL.
    pub(crate) fn endpoint(&self) -> Endpoint {
        Endpoint::new(self.host().to_owned(), self.port)
    }

    /// The URL as a [`Uri`] for the upgrade request.
    pub(crate) fn uri(&self) -> Result<Uri, Error> {
        // `parse` accepted this URL, so this succeeds; a failure is still
        // reported, never a panic.
        self.url
            .parse()
            .map_err(|e| Error::invalid_url(&self.url, format!("cannot parse it ({e})")))
    }
}

/// `url` without the secrets it may carry, as the machine shows URLs in
/// `Debug`, errors, statuses and logs: the user name and password
/// (`wss://user:pass@host/` shows as `wss://***@host/`) and the values of
/// query parameters, where tokens often travel (`?token=abc&v=2` shows as
/// `?token=***&v=***`). A URL that does not parse (a password with `/`, `?`
/// or `#` in it, or no scheme) is masked up to its last `@`, which may hide
/// more than the user info, never less. A secret in the *path* (such as a
/// listen key, `/ws/<key>`) cannot be told from a path and is shown: put it
/// in the query, or keep such URLs out of logs.
///
/// ```
/// use ws_machine::redact_url;
///
/// assert_eq!(redact_url("wss://user:s3cret@feed.example.com/v1"), "wss://***@feed.example.com/v1");
/// assert_eq!(redact_url("wss://user:pa/ss@feed.example.com/"), "wss://***@feed.example.com/");
/// assert_eq!(redact_url("ws://127.0.0.1:8080/x@y"), "ws://127.0.0.1:8080/x@y");
/// assert_eq!(redact_url("wss://feed.example.com/v1?token=abc&v=2#top"), "wss://feed.example.com/v1?token=***&v=***#top");
/// ```
#[must_use]
pub fn redact_url(url: &str) -> Cow<'_, str> {
    match redact_user_info(url) {
        Cow::Borrowed(url) => redact_query(url),
        Cow::Owned(url) => Cow::Owned(redact_query(&url).into_owned()),
    }
}

/// `url` with the value of every query parameter replaced by `***` (a
/// parameter without `=` is replaced whole: it may be a bare token).
fn redact_query(url: &str) -> Cow<'_, str> {
    // A `?` after the fragment's `#` starts no query.
    let Some(start) = url.find(['?', '#']).filter(|&i| url[i..].starts_with('?')) else {
        return Cow::Borrowed(url);
    };
    let end = url[start..].find('#').map_or(url.len(), |i| start + i);
    let query = &url[start + 1..end];
    if query.is_empty() {
        return Cow::Borrowed(url);
    }
    let hidden: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if !value.is_empty() => format!("{name}=***"),
            Some(_) => pair.to_owned(),
            None if pair.is_empty() => String::new(),
            None => "***".to_owned(),
        })
        .collect();
    Cow::Owned(format!(
        "{}?{}{}",
        &url[..start],
        hidden.join("&"),
        &url[end..]
    ))
}

/// `url` without the user name and password it may carry.
fn redact_user_info(url: &str) -> Cow<'_, str> {
    // The authority starts after the scheme's `://`, or at the start of a
    // URL without a scheme. A `://` after a `/`, `?`, `#` or `@` is further
    // on (in the query of a URL whose scheme was left out:
    // `u:pw@host/?next=ws://x`), not the scheme's.
    let start = url
        .find("://")
        .filter(|&i| !url[..i].contains(['/', '?', '#', '@']))
        .map_or(0, |i| i + 3);
    let rest = &url[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    // What follows the authority's last `:` must be a port (or the end of
    // an IPv6 address); otherwise a password with `/`, `?` or `#` in it cut
    // the authority short, and the user info may be anywhere before the
    // URL's last `@`.
    let well_formed = authority.rfind(':').is_none_or(|colon| {
        authority.ends_with(']') || authority[colon + 1..].bytes().all(|b| b.is_ascii_digit())
    }) && url.parse::<Uri>().is_ok();
    let at = authority
        .rfind('@')
        .or_else(|| (!well_formed).then(|| rest.rfind('@')).flatten());
    match at {
        Some(at) => Cow::Owned(format!("{}***{}", &url[..start], &rest[at..])),
        None => Cow::Borrowed(url),
    }
}

/// Where the host of `url` (parsed as `uri`) is in `url`: its start and
/// length, without the brackets of an IPv6 address. (`uri` holds a copy of
/// the same text, so the host's offset in its authority is its offset after
/// the `://` of `url`.)
fn host_range(url: &str, uri: &Uri) -> Result<(usize, usize), Error> {
    let no_host = || Error::invalid_url(url, "it has no host");
    let authority = uri.authority().ok_or_else(no_host)?;
    let host = authority.host();
    let trimmed = host.trim_start_matches('[').trim_end_matches(']');
    if trimmed.is_empty() {
        return Err(no_host());
    }
    // A wrong offset (were `http` to return a copy) fails the check below.
    let in_authority = (host.as_ptr() as usize)
        .wrapping_sub(authority.as_str().as_ptr() as usize)
        .wrapping_add(usize::from(host.starts_with('[')));
    let start = url
        .find("://")
        .ok_or_else(no_host)?
        .saturating_add(3)
        .saturating_add(in_authority);
    match url.get(start..start.saturating_add(trimmed.len())) {
        Some(found) if found == trimmed => Ok((start, trimmed.len())),
        _ => Err(no_host()),
    }
}

/// The host and port a dialer must open a byte stream to (see
/// [`Builder::dialer`](crate::Builder::dialer)): those of the machine's URL,
/// the default port filled in (80 for `ws://`, 443 for `wss://`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ws_machine::Error> {
/// use ws_machine::{Endpoint, Machine};
///
/// let machine = Machine::builder("ws://127.0.0.1:9/feed")
///     .dialer(|to: Endpoint| async move {
///         tokio::net::TcpStream::connect((to.host(), to.port())).await
///     })
///     .spawn()?;
/// # drop(machine);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    host: String,
    port: u16,
}

impl Endpoint {
    pub(crate) fn new(host: String, port: u16) -> Self {
        Self { host, port }
    }

    /// The host name or IP address (an IPv6 address without brackets).
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_taken_apart() {
        let t = Target::parse("wss://example.com/feed?x=1").expect("valid");
        assert!(t.tls());
        assert_eq!(t.endpoint().port(), 443);
        assert_eq!(t.host(), "example.com");
        let t = Target::parse("ws://127.0.0.1:9001").expect("valid");
        assert!(!t.tls());
        assert_eq!(t.endpoint().port(), 9001);
        let t = Target::parse("ws://[::1]:80/").expect("valid");
        assert_eq!(t.host(), "::1");
        let t = Target::parse("wss://user:pw@host.example:8443/x?token=host").expect("valid");
        assert_eq!(t.host(), "host.example");
        let t = Target::parse("ws://[::1]@127.0.0.1/").expect("valid");
        assert_eq!(t.host(), "127.0.0.1");
        let endpoint = Target::parse("ws://[::1]/").expect("valid").endpoint();
        assert_eq!((endpoint.host(), endpoint.port()), ("::1", 80));
    }

    #[test]
    fn user_info_is_redacted() {
        assert_eq!(
            redact_url("wss://u:s3cret@h.test:1/p?q=a@b"),
            "wss://***@h.test:1/p?q=***"
        );
        assert_eq!(redact_url("ws://h.test/x@y"), "ws://h.test/x@y");
        assert_eq!(redact_url("no scheme"), "no scheme");
        // Passwords that break the URL, and no scheme at all: still hidden.
        for url in [
            "wss://u:pa/ss@h.test/",
            "wss://u:pa?ss@h.test/",
            "wss://u:pa#ss@h.test/",
            "u:s3cret@h.test/feed",
        ] {
            let shown = redact_url(url);
            assert!(
                !shown.contains("pa") && !shown.contains("s3cret"),
                "{url} -> {shown}"
            );
            assert!(
                shown.ends_with("@h.test/") || shown.ends_with("@h.test/feed"),
                "{shown}"
            );
        }
        let err = Target::parse("http://u:s3cret@h.test/").expect_err("bad scheme");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    /// Found by fuzzing (`fuzz/regressions/urls/redaction-scheme-in-query`):
    /// in a URL without a scheme, a `://` in the query was taken for the
    /// scheme's, so the user info before it was shown, in the error that
    /// says the scheme is missing too.
    #[test]
    fn a_scheme_in_the_query_is_not_the_urls() {
        let url = "u:s3cret@h.test/feed?next=ws://x";
        assert_eq!(redact_url(url), "***@h.test/feed?next=***");
        let err = Target::parse(url).expect_err("no scheme");
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert_eq!(
            redact_url("wss://u:pw@h.test/?next=ws://x"),
            "wss://***@h.test/?next=***"
        );
        // A scheme that is empty or not one is still a scheme's `://`.
        assert_eq!(redact_url("://u:pw@h.test/"), "://***@h.test/");
        assert_eq!(redact_url("w s://u:pw@h.test/"), "w s://***@h.test/");
    }

    #[test]
    fn query_values_are_redacted() {
        for (url, shown) in [
            ("ws://h.test/?token=s3cret", "ws://h.test/?token=***"),
            ("ws://h.test/p?a=s3cret&b=&c", "ws://h.test/p?a=***&b=&***"),
            ("ws://h.test/p?s3cret#frag", "ws://h.test/p?***#frag"),
            ("ws://h.test/p?", "ws://h.test/p?"),
            ("ws://h.test/p#a?s=1", "ws://h.test/p#a?s=1"),
            ("wss://u:pw@h.test/?k=s3cret", "wss://***@h.test/?k=***"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn bad_urls_say_what_to_fix() {
        let cases = [
            ("http://example.com/", "use ws:// or wss://"),
            ("example.com", "ws:// or wss://"),
            ("localhost:8080/feed", "start it with ws:// or wss://"),
            ("ws://", "cannot parse"),
            ("ws:// spaces /", "cannot parse"),
            ("wss://a..b/", "not a valid TLS server name"),
            ("wss:/feed.example.com/", "one slash after the scheme"),
            ("ws//feed.example.com/", "the scheme has no colon"),
        ];
        for (url, hint) in cases {
            let err = Target::parse(url).expect_err(url).to_string();
            assert!(err.contains(hint), "{url}: {err}");
        }
    }
}
