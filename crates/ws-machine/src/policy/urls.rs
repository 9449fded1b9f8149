//! Which URL each attempt connects to.
//!
//! Most machines have one. With fallback URLs
//! ([`Builder::fallback_urls`](crate::Builder::fallback_urls)) the machine
//! fails over: a failed attempt (or a connection that was not healthy)
//! moves on to the next URL (after the last, back to the first), while a
//! healthy connection that is lost is tried again at the same URL first,
//! since it worked. With a URL
//! function ([`Builder::url_fn`](crate::Builder::url_fn)) the URL is
//! computed afresh for every attempt (for tokens in the query string).

use std::sync::Arc;

use crate::{
    settings::UrlFn,
    types::{Error, Target, redact_url},
};

/// Where attempts connect, and where the current one does.
pub(crate) enum Urls {
    One(Target),
    /// The builder's URL, then the fallbacks (boxed: rare).
    Failover(Box<Failover>),
    /// Computed for every attempt (boxed: rare).
    Computed(Box<Computed>),
}

pub(crate) struct Failover {
    targets: Box<[Target]>,
    current: usize,
    /// How the current URL is shown in statuses.
    shown: Arc<str>,
}

pub(crate) struct Computed {
    url: UrlFn,
    /// The URL of the current attempt, once computed.
    current: Option<(Target, Arc<str>)>,
}

/// How a URL is shown in statuses: without user info and query values.
fn shown(target: &Target) -> Arc<str> {
    Arc::from(redact_url(target.url()))
}

impl Urls {
    /// The builder's URL, then `fallbacks`.
    pub(crate) fn failover(first: Target, fallbacks: Vec<Target>) -> Self {
        if fallbacks.is_empty() {
            return Self::One(first);
        }
        let shown = shown(&first);
        let targets = std::iter::once(first).chain(fallbacks).collect();
        Self::Failover(Box::new(Failover {
            targets,
            current: 0,
            shown,
        }))
    }

    pub(crate) fn computed(url: UrlFn) -> Self {
        Self::Computed(Box::new(Computed { url, current: None }))
    }

    /// The URL for the attempt about to start. A URL function is called
    /// here; what it returns must be a valid URL, or the attempt fails with
    /// [`Error::InvalidUrl`] (final: the function would need fixing).
    pub(crate) fn next(&mut self) -> Result<&Target, Error> {
        match self {
            Self::One(target) => Ok(target),
            Self::Failover(failover) => Ok(&failover.targets[failover.current]),
            Self::Computed(computed) => {
                let url = (computed.url)();
                // A URL that is not one is no attempt's URL: statuses then
                // show none.
                computed.current = None;
                let target = Target::parse(&url)?;
                let shown = shown(&target);
                Ok(&computed.current.insert((target, shown)).0)
            }
        }
    }

    /// The attempt failed, or the connection was not healthy: fail over to
    /// the next URL.
    pub(crate) fn attempt_failed(&mut self) {
        match self {
            Self::Failover(failover) => {
                failover.current = (failover.current + 1) % failover.targets.len();
                failover.shown = shown(&failover.targets[failover.current]);
            }
            Self::One(_) | Self::Computed(_) => {}
        }
    }

    /// The current URL as statuses show it; `None` with a single URL (the
    /// caller knows it).
    pub(crate) fn shown(&self) -> Option<Arc<str>> {
        match self {
            Self::One(_) => None,
            Self::Failover(failover) => Some(Arc::clone(&failover.shown)),
            Self::Computed(computed) => computed.current.as_ref().map(|(_, s)| Arc::clone(s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Target {
        Target::parse(url).expect("valid URL")
    }

    fn next_url(urls: &mut Urls) -> String {
        urls.next().expect("a URL").url().to_owned()
    }

    #[test]
    fn failed_attempts_move_on_and_wrap_around() {
        let mut urls = Urls::failover(
            target("ws://a.test/"),
            vec![target("ws://b.test/"), target("wss://c.test/")],
        );
        let mut tried = Vec::new();
        for _ in 0..4 {
            tried.push(next_url(&mut urls));
            urls.attempt_failed();
        }
        assert_eq!(
            tried,
            [
                "ws://a.test/",
                "ws://b.test/",
                "wss://c.test/",
                "ws://a.test/"
            ]
        );
        // A connection that was up is tried again where it was.
        assert_eq!(next_url(&mut urls), "ws://b.test/");
        assert_eq!(next_url(&mut urls), "ws://b.test/");
        assert_eq!(urls.shown().as_deref(), Some("ws://b.test/"));
    }

    #[test]
    fn one_url_is_not_shown() {
        let mut urls = Urls::failover(target("ws://a.test/"), Vec::new());
        assert_eq!(next_url(&mut urls), "ws://a.test/");
        urls.attempt_failed();
        assert_eq!(next_url(&mut urls), "ws://a.test/");
        assert!(urls.shown().is_none());
    }

    #[test]
    fn a_computed_url_is_asked_for_every_attempt_and_shown_without_its_token() {
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = Arc::clone(&calls);
        let mut urls = Urls::computed(Arc::new(move || {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            format!("wss://feed.test/v1?token=t{n}")
        }));
        assert!(urls.shown().is_none(), "nothing computed yet");
        assert_eq!(next_url(&mut urls), "wss://feed.test/v1?token=t0");
        assert_eq!(next_url(&mut urls), "wss://feed.test/v1?token=t1");
        assert_eq!(
            urls.shown().as_deref(),
            Some("wss://feed.test/v1?token=***")
        );

        let mut bad = Urls::computed(Arc::new(|| "feed.test/v1".to_owned()));
        let err = bad.next().expect_err("no scheme");
        assert!(matches!(err, Error::InvalidUrl { .. }), "{err}");
        assert!(!err.is_retryable());
    }
}
