//! The `options` target: the other texts a user gives the builder (request
//! headers, subprotocol names, a `NO_PROXY` list) and a close frame.
//!
//! The input is split at its NUL bytes into fields: a header name, a header
//! value, a second value for the same name, subprotocol names (separated
//! by `,`), a `NO_PROXY` list, and a close code (two bytes, big-endian)
//! followed by its reason. Missing fields are empty. As in the `urls`
//! target, [`Builder::spawn`](ws_machine::Builder::spawn) outside a runtime
//! checks every option and then fails with [`Error::NoRuntime`]:
//! "accepted".
//!
//! The properties:
//! - nothing panics;
//! - a header is accepted exactly when HTTP allows its name and values and
//!   the handshake does not set it itself; a refusal shows the name, never
//!   a value (its text is the same for any other invalid value), and the
//!   builder's `Debug` does not change with the values;
//! - subprotocol names are accepted exactly when each is an HTTP token,
//!   offered once;
//! - a `NO_PROXY` list is never an error;
//! - `CloseFrame::new` accepts exactly the codes a client may send with a
//!   reason of at most 123 bytes, and keeps both as given.

use ws_machine::{
    Builder, CloseFrame, Error, Machine,
    http::{HeaderName, HeaderValue},
};

/// Headers the handshake writes itself: a builder refuses them.
const HANDSHAKE_HEADERS: [&str; 5] = [
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
];

/// The target.
pub fn check(data: &[u8]) {
    let mut fields = data.split(|&b| b == 0);
    let mut next = || fields.next().unwrap_or_default();
    let (name, value, second, protocols, no_proxy, close) =
        (next(), next(), next(), next(), next(), next());
    header(name, value, second);
    subprotocols(protocols);
    bypass(no_proxy);
    close_frame(close);
}

/// What building a machine with these headers says, both ways an error is
/// shown, and the builder's `Debug`.
fn build(name: &[u8], values: &[&[u8]]) -> (Option<Error>, String, String) {
    let mut builder = Machine::builder("ws://fuzz.test/");
    for value in values {
        builder = match std::str::from_utf8(name) {
            // As most callers write it: a `&str`.
            Ok(name) => builder.header(name, *value),
            Err(_) => builder.header(name, *value),
        };
    }
    let debug = format!("{builder:?}");
    let error = builder.spawn().err();
    let text = error
        .as_ref()
        .map(|e| format!("{e} {e:?}"))
        .unwrap_or_default();
    (error, text, debug)
}

/// A request header, given once, then twice.
fn header(name: &[u8], value: &[u8], second: &[u8]) {
    let valid_name = HeaderName::from_bytes(name).ok();
    let valid = |v: &[u8]| HeaderValue::from_bytes(v).is_ok();
    // Another value, invalid if `value` is and valid if it is: a refusal
    // must not tell them apart.
    let other = |v: &[u8]| -> &'static [u8] { if valid(v) { b"v" } else { b"\n" } };
    for values in [vec![value], vec![value, second]] {
        let (error, text, debug) = build(name, &values);
        let expected = valid_name
            .as_ref()
            .is_some_and(|n| !HANDSHAKE_HEADERS.contains(&n.as_str()))
            && values.iter().all(|v| valid(v));
        match &error {
            Some(Error::NoRuntime) => assert!(expected, "{name:?}: {values:?} accepted"),
            Some(Error::InvalidHeader { .. }) => {
                assert!(!expected, "{name:?}: {values:?} refused: {text}");
            }
            other => panic!("{name:?}: {values:?}: unexpected {other:?}"),
        }
        let others: Vec<&[u8]> = values.iter().map(|v| other(v)).collect();
        let (_, other_text, other_debug) = build(name, &others);
        assert_eq!(text, other_text, "{name:?}: the error shows a value");
        assert_eq!(
            debug, other_debug,
            "{name:?}: the builder's Debug shows a value"
        );
    }
}

/// Subprotocol names, separated by `,`.
fn subprotocols(field: &[u8]) {
    if field.is_empty() {
        return;
    }
    let text = String::from_utf8_lossy(field);
    let names: Vec<&str> = text.split(',').collect();
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let expected = names
        .iter()
        .enumerate()
        .all(|(i, n)| !n.is_empty() && n.bytes().all(tchar) && !names[..i].contains(n));
    let builder: Builder = Machine::builder("ws://fuzz.test/").protocols(names.iter().copied());
    match builder.spawn().err() {
        Some(Error::NoRuntime) => assert!(expected, "{names:?} accepted"),
        Some(Error::InvalidConfig { .. }) => assert!(!expected, "{names:?} refused"),
        other => panic!("{names:?}: unexpected {other:?}"),
    }
}

/// A `NO_PROXY` list, with a proxy to bypass, for a name and an address.
fn bypass(field: &[u8]) {
    let list = String::from_utf8_lossy(field);
    for url in [
        "ws://fuzz.test:8080/",
        "ws://[::1]:8080/",
        "wss://10.1.2.3/",
    ] {
        let error = Machine::builder(url)
            .proxy("http://proxy.test:3128")
            .no_proxy(list.as_ref())
            .spawn()
            .err();
        assert!(
            matches!(error, Some(Error::NoRuntime)),
            "NO_PROXY {list:?} for {url}: {error:?}"
        );
    }
}

/// A close code (the first two bytes) and its reason (the rest).
fn close_frame(field: &[u8]) {
    let (code, reason) = match field {
        [high, low, reason @ ..] => (u16::from_be_bytes([*high, *low]), reason),
        _ => return,
    };
    let reason = String::from_utf8_lossy(reason);
    let expected = matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999) && reason.len() <= 123;
    match CloseFrame::new(code, reason.as_ref()) {
        Ok(frame) => {
            assert!(expected, "{code} {reason:?} accepted");
            assert_eq!((frame.code(), frame.reason()), (code, reason.as_ref()));
        }
        Err(Error::InvalidConfig { .. }) => assert!(!expected, "{code} {reason:?} refused"),
        Err(other) => panic!("{code} {reason:?}: unexpected {other:?}"),
    }
}
