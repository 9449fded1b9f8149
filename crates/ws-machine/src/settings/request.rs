//! The request headers of the upgrade: the fixed ones and those computed for
//! each attempt, merged, with every value of a repeated header kept.

use std::sync::Arc;

use http::{HeaderMap, HeaderName};

use crate::types::{Cause, Error};

/// Computes the request headers of one connection attempt, or says why it
/// cannot.
pub(crate) type HeadersFn = Arc<dyn Fn() -> Result<HeaderMap, Cause> + Send + Sync>;

/// Headers the WebSocket handshake sets itself.
const HANDSHAKE_HEADERS: [HeaderName; 5] = [
    http::header::HOST,
    http::header::UPGRADE,
    http::header::CONNECTION,
    http::header::SEC_WEBSOCKET_KEY,
    http::header::SEC_WEBSOCKET_VERSION,
];

/// The request headers of a machine.
#[derive(Clone, Default)]
pub(crate) struct Request {
    /// The fixed headers; boxed, and `None` when there are none (most
    /// machines), to keep every machine small.
    fixed: Option<Box<HeaderMap>>,
    computed: Option<HeadersFn>,
}

impl Request {
    pub(crate) fn new(fixed: HeaderMap, computed: Option<HeadersFn>) -> Self {
        Self {
            fixed: (!fixed.is_empty()).then(|| Box::new(fixed)),
            computed,
        }
    }

    /// Whether the headers are computed for each attempt (so credentials in
    /// them may be fresh).
    pub(crate) fn is_computed(&self) -> bool {
        self.computed.is_some()
    }

    /// The headers of the next attempt: the fixed ones, where the computed
    /// ones replace every value of the names they set. Repeated headers keep
    /// all their values.
    pub(crate) fn headers(&self) -> Result<HeaderMap, Error> {
        let mut headers = self.fixed.as_deref().cloned().unwrap_or_default();
        if let Some(computed) = self.computed.as_ref().map(|f| f()) {
            let computed = computed.map_err(|source| Error::Headers { source })?;
            for name in computed.keys() {
                headers.remove(name);
                for value in computed.get_all(name) {
                    headers.append(name.clone(), value.clone());
                }
            }
        }
        check_headers(&headers)?;
        Ok(headers)
    }
}

/// Rejects headers the handshake sets itself.
pub(crate) fn check_headers(headers: &HeaderMap) -> Result<(), Error> {
    match headers.keys().find(|name| HANDSHAKE_HEADERS.contains(name)) {
        Some(name) => Err(Error::InvalidHeader {
            name: name.to_string(),
            reason: "the WebSocket handshake sets this header itself: remove it".into(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn values(headers: &HeaderMap, name: &str) -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().expect("ASCII").to_owned())
            .collect()
    }

    #[test]
    fn handshake_headers_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, HeaderValue::from_static("x"));
        assert!(matches!(
            check_headers(&headers),
            Err(Error::InvalidHeader { .. })
        ));
    }

    #[test]
    fn computed_headers_replace_every_value_of_their_names_and_keep_their_own() {
        let mut fixed = HeaderMap::new();
        fixed.append("x-trace", HeaderValue::from_static("old-1"));
        fixed.append("x-trace", HeaderValue::from_static("old-2"));
        fixed.append("cookie", HeaderValue::from_static("a=1"));
        fixed.append("cookie", HeaderValue::from_static("b=2"));
        fixed.append("x-fixed", HeaderValue::from_static("kept"));
        fixed.append("authorization", HeaderValue::from_static("old"));
        let request = Request::new(
            fixed,
            Some(Arc::new(|| {
                let mut fresh = HeaderMap::new();
                fresh.append("authorization", HeaderValue::from_static("new"));
                fresh.append("x-trace", HeaderValue::from_static("1"));
                fresh.append("x-trace", HeaderValue::from_static("2"));
                Ok(fresh)
            })),
        );
        let headers = request.headers().expect("valid");
        assert_eq!(values(&headers, "cookie"), ["a=1", "b=2"]);
        assert_eq!(values(&headers, "x-fixed"), ["kept"]);
        assert_eq!(values(&headers, "authorization"), ["new"]);
        assert_eq!(values(&headers, "x-trace"), ["1", "2"]);
    }

    #[test]
    fn a_failing_headers_fn_fails_the_attempt_with_its_cause() {
        let request = Request::new(
            HeaderMap::new(),
            Some(Arc::new(|| {
                Err(Arc::new(std::io::Error::other("token service down")) as Cause)
            })),
        );
        match request.headers() {
            Err(error @ Error::Headers { .. }) => {
                assert!(error.is_retryable());
                assert!(error.to_string().contains("token service down"), "{error}");
            }
            other => panic!("expected a headers error, got {other:?}"),
        }
    }

    #[test]
    fn a_computed_handshake_header_is_an_error() {
        let request = Request::new(
            HeaderMap::new(),
            Some(Arc::new(|| {
                let mut fresh = HeaderMap::new();
                fresh.insert(http::header::UPGRADE, HeaderValue::from_static("x"));
                Ok(fresh)
            })),
        );
        assert!(matches!(
            request.headers(),
            Err(Error::InvalidHeader { .. })
        ));
    }
}
