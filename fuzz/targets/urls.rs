//! The `urls` target: the URLs a user gives, read by the library itself.
//!
//! One text is tried three ways: as the machine's URL (and a fallback
//! URL), checked when the machine is built; as a proxy URL; and through
//! [`redact_url`], which hides the secrets a URL may carry before it is
//! shown anywhere. Nothing here needs a runtime: outside one,
//! [`Builder::spawn`](ws_machine::Builder::spawn) checks every option and
//! then fails with [`Error::NoRuntime`], so that error means "accepted".
//!
//! The properties:
//! - nothing panics;
//! - `redact_url` gives the same text when run again on its own output;
//!   for a URL that parses as an HTTP URI, its output parses too, with
//!   `***` as the whole user info (if there was one) and every query value
//!   `***`, and (unless the port is not a number, when more is masked) the
//!   same scheme, host, port and path;
//! - a URL is accepted only if it is `ws://` or `wss://` with a host, and
//!   the same whether it is the URL or a fallback URL;
//! - a refused URL's error shows it as `redact_url` does, and shows no
//!   secret `redact_url` hides; the builder's `Debug` is the same for the
//!   URL and for its redaction;
//! - a proxy URL's user name and password appear in neither the error nor
//!   the builder's `Debug` (where they would not show for the same URL
//!   with other credentials).

use ws_machine::{Builder, Error, Machine, http::Uri, redact_url};

/// The shortest secret looked for in what is shown: shorter ones turn up
/// by chance (in a host name, a port, a word of an error message).
const MIN_SECRET: usize = 6;

/// The target: `data` as UTF-8 (other inputs are skipped: every URL the
/// library takes is a `&str`).
pub fn check(data: &[u8]) {
    let Ok(url) = std::str::from_utf8(data) else {
        return;
    };
    redaction(url);
    validation(url);
    proxy(url);
}

/// What `redact_url` shows of `url`.
fn redaction(url: &str) {
    let shown = redact_url(url);
    assert_eq!(
        redact_url(&shown),
        shown,
        "redacting {url:?} again changes it"
    );
    let Ok(uri) = url.parse::<Uri>() else {
        return;
    };
    // `http` accepts an `@` between brackets (`ws://[@:1]:9/`, its host is
    // then ""), where RFC 3986 allows none; `redact_url` takes the
    // authority's last `@` for the end of the user info, as the RFC does,
    // and masks what comes before it: more than needed, and what is left
    // is no URI.
    let authority = uri.authority().map_or("", |a| a.as_str());
    if authority
        .find('[')
        .is_some_and(|bracket| authority[bracket..].contains('@'))
    {
        return;
    }
    // A port that is not a number means a password with `/`, `?` or `#` in
    // it cut the authority short (`wss://user:pa/ss@host/`): the URL is
    // then masked up to its last `@`, which hides more than the user info,
    // and what is left may be no URI (`wss://***@fo%40example.com/`).
    let well_formed = uri.authority().is_none_or(|a| {
        let a = a.as_str();
        a.rfind(':').is_none_or(|colon| {
            a.ends_with(']') || a[colon + 1..].bytes().all(|b| b.is_ascii_digit())
        })
    });
    let seen: Uri = match shown.parse() {
        Ok(seen) => seen,
        Err(e) if well_formed => panic!("{url:?} parses, {shown:?} does not: {e}"),
        Err(_) => return,
    };
    if well_formed {
        assert_eq!(
            (seen.scheme(), seen.host(), seen.port_u16(), seen.path()),
            (uri.scheme(), uri.host(), uri.port_u16(), uri.path()),
            "{url:?} shown as {shown:?}"
        );
    }
    let user_info = |uri: &Uri| {
        uri.authority()
            .and_then(|a| a.as_str().rsplit_once('@'))
            .map(|(info, _)| info.to_owned())
    };
    match user_info(&uri) {
        Some(_) => assert_eq!(
            user_info(&seen).as_deref(),
            Some("***"),
            "{url:?} shown as {shown:?}"
        ),
        None if well_formed => assert_eq!(user_info(&seen), None, "{url:?} shown as {shown:?}"),
        None => assert!(
            matches!(user_info(&seen).as_deref(), None | Some("***")),
            "{url:?} shown as {shown:?}"
        ),
    }
    if let Some(query) = seen.query() {
        for pair in query.split('&') {
            let value = pair.split_once('=').map_or(pair, |(_, value)| value);
            assert!(
                value.is_empty() || value == "***",
                "{url:?} shown as {shown:?}: the query value {value:?}"
            );
        }
    }
}

/// The secrets of `url` that `redact_url` hides: the user info and the
/// query values, as an HTTP URI parser reads them, that do not show in
/// its output (and are long enough not to turn up by chance).
fn hidden(url: &str) -> Vec<String> {
    let Ok(uri) = url.parse::<Uri>() else {
        return Vec::new();
    };
    let shown = redact_url(url);
    let user_info = uri
        .authority()
        .and_then(|a| a.as_str().rsplit_once('@'))
        .map(|(info, _)| info);
    let values = uri
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .map(|pair| pair.split_once('=').map_or(pair, |(_, value)| value));
    user_info
        .into_iter()
        .chain(values)
        .filter(|secret| secret.len() >= MIN_SECRET && !shown.contains(secret))
        .map(str::to_owned)
        .collect()
}

/// Fails if `text` shows `secret` where `baseline` (the same text for an
/// input without the secret) does not: an occurrence in both comes from
/// the fixed words, not from the secret.
fn assert_hidden(input: &str, secret: &str, text: &str, baseline: &str) {
    assert!(
        !text.contains(secret) || baseline.contains(secret),
        "{input:?}: {secret:?} shows in {text}"
    );
}

/// What building a machine with `url` says, and the builder's `Debug`.
fn build(url: &str) -> (Option<Error>, String) {
    let builder = Machine::builder(url);
    let debug = format!("{builder:?}");
    (builder.spawn().err(), debug)
}

/// The text of an error, both ways it is shown.
fn text(error: &Option<Error>) -> String {
    error
        .as_ref()
        .map(|e| format!("{e} {e:?}"))
        .unwrap_or_default()
}

/// `url` as the machine's URL, and as a fallback URL.
fn validation(url: &str) {
    let (verdict, debug) = build(url);
    let shown = redact_url(url);
    // The builder shows the URL as `redact_url` does, so it shows the same
    // for the URL and its redaction.
    let (baseline, baseline_debug) = build(&shown);
    assert_eq!(debug, baseline_debug, "{url:?}: the builder's Debug");
    match &verdict {
        Some(Error::NoRuntime) => {
            let uri: Uri = url
                .parse()
                .unwrap_or_else(|e| panic!("{url:?} accepted, but it does not parse: {e}"));
            let scheme = uri.scheme_str().map(str::to_ascii_lowercase);
            assert!(
                matches!(scheme.as_deref(), Some("ws" | "wss")),
                "{url:?} accepted with the scheme {scheme:?}"
            );
            assert!(
                uri.host()
                    .is_some_and(|h| !h.trim_matches(['[', ']']).is_empty()),
                "{url:?} accepted without a host"
            );
        }
        Some(Error::InvalidUrl { url: in_error, .. }) => {
            assert_eq!(*in_error, shown, "the error shows {url:?} as {in_error:?}");
            let (text, baseline) = (text(&verdict), text(&baseline));
            // The whole URL, if anything was hidden, and each secret.
            if shown != url {
                assert_hidden(url, url, &text, &baseline);
            }
            for secret in hidden(url) {
                // The same URL with a filler for the secret: the error is
                // the same, and says the same fixed words.
                let filler = url.replace(&secret, &"x".repeat(secret.len()));
                assert_hidden(url, &secret, &text, &self::text(&build(&filler).0));
            }
        }
        other => panic!("{url:?}: unexpected {other:?}"),
    }
    let fallback = Machine::builder("ws://fuzz.test/")
        .fallback_urls([url])
        .spawn()
        .err();
    let accepted = |e: &Option<Error>| matches!(e, Some(Error::NoRuntime));
    assert_eq!(
        accepted(&verdict),
        accepted(&fallback),
        "{url:?} as the URL: {verdict:?}; as a fallback: {fallback:?}"
    );
}

/// What building a machine with proxy `url` says, and the builder's
/// `Debug`.
fn build_proxy(url: &str) -> (String, String) {
    let builder: Builder = Machine::builder("ws://fuzz.test/").proxy(url);
    let debug = format!("{builder:?}");
    let error = builder.spawn().err();
    match &error {
        Some(Error::NoRuntime | Error::InvalidConfig { .. }) => {}
        other => panic!("proxy {url:?}: unexpected {other:?}"),
    }
    (text(&error), debug)
}

/// `url` as a proxy URL: its user name and password stay hidden.
fn proxy(url: &str) {
    let (error, debug) = build_proxy(url);
    // The user info as the proxy's parser finds it: before the last `@` of
    // the part after the scheme, up to the first `/`, `?` or `#`.
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some((user_info, _)) = rest[..authority_end].rsplit_once('@') else {
        return;
    };
    let start = url.len() - rest.len();
    let without = format!("{}u:p{}", &url[..start], &rest[user_info.len()..]);
    let (baseline, baseline_debug) = build_proxy(&without);
    for secret in user_info.split(':').filter(|s| s.len() >= MIN_SECRET) {
        assert_hidden(url, secret, &debug, &baseline_debug);
        assert_hidden(url, secret, &error, &baseline);
    }
}
