//! permessage-deflate (RFC 7692): the parameters a machine offers, and the
//! ones the server agreed to, in one small value.
//!
//! The same type serves both sides of the negotiation so that a caller can
//! compare what it asked for with what it got
//! ([`Status::compression`](crate::Status::compression)).

use std::fmt;

use super::error::Error;

/// The extension's name in `Sec-WebSocket-Extensions`.
const NAME: &str = "permessage-deflate";

/// The LZ77 window sizes accepted. RFC 7692 allows 8, which zlib cannot
/// use for raw deflate streams (it silently takes 9), so 9 is the least.
const WINDOW_BITS: std::ops::RangeInclusive<u8> = 9..=15;

/// permessage-deflate parameters (RFC 7692, section 7.1).
///
/// Given to [`Builder::compression`](crate::Builder::compression), it is the
/// offer; in [`Status::compression`](crate::Status::compression) on
/// `Connected`, it is what the server agreed to. `client_*` parameters are
/// about what this machine compresses, `server_*` about what the server
/// compresses.
///
/// Defaults ([`Deflate::new`]): context takeover both ways (the dictionary
/// is kept from one message to the next: the best ratio for feeds of
/// similar messages) and 15-bit windows (32 KiB, the most). Smaller windows
/// and no context takeover cost less memory per connection and compress
/// less; see the figures in `BENCHMARKS.md`.
///
/// ```
/// use ws_machine::{Deflate, Machine};
///
/// let offer = Deflate::new()
///     .server_max_window_bits(12) // the server keeps 4 KiB of history
///     .client_no_context_takeover(); // we keep none between messages
/// assert_eq!(
///     offer.to_string(),
///     "permessage-deflate; server_max_window_bits=12; client_no_context_takeover"
/// );
/// let machine = Machine::builder("ws://127.0.0.1:9/").compression(offer);
/// # drop(machine);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Deflate {
    client_no_context_takeover: bool,
    server_no_context_takeover: bool,
    client_max_window_bits: u8,
    server_max_window_bits: u8,
}

impl Default for Deflate {
    fn default() -> Self {
        Self::new()
    }
}

impl Deflate {
    /// Context takeover both ways, 15-bit windows both ways.
    pub const fn new() -> Self {
        Self {
            client_no_context_takeover: false,
            server_no_context_takeover: false,
            client_max_window_bits: 15,
            server_max_window_bits: 15,
        }
    }

    /// Asks to compress each outgoing message on its own (no dictionary
    /// kept between them: less memory, a lower ratio).
    #[must_use]
    pub const fn client_no_context_takeover(mut self) -> Self {
        self.client_no_context_takeover = true;
        self
    }

    /// Asks the server to compress each message on its own (the machine
    /// then keeps no dictionary between incoming messages either).
    #[must_use]
    pub const fn server_no_context_takeover(mut self) -> Self {
        self.server_no_context_takeover = true;
        self
    }

    /// The window for what this machine compresses, 9 to 15 bits (checked
    /// at [`spawn`](crate::Builder::spawn)).
    #[must_use]
    pub const fn client_max_window_bits(mut self, bits: u8) -> Self {
        self.client_max_window_bits = bits;
        self
    }

    /// The window the server may use for what it compresses, 9 to 15 bits
    /// (checked at [`spawn`](crate::Builder::spawn)). The machine's
    /// decompressor keeps a window of this size.
    #[must_use]
    pub const fn server_max_window_bits(mut self, bits: u8) -> Self {
        self.server_max_window_bits = bits;
        self
    }

    /// Whether this machine keeps its dictionary between outgoing messages.
    pub const fn client_context_takeover(&self) -> bool {
        !self.client_no_context_takeover
    }

    /// Whether the server keeps its dictionary between messages.
    pub const fn server_context_takeover(&self) -> bool {
        !self.server_no_context_takeover
    }

    /// The window, in bits, for what this machine compresses.
    pub const fn client_window_bits(&self) -> u8 {
        self.client_max_window_bits
    }

    /// The window, in bits, for what the server compresses.
    pub const fn server_window_bits(&self) -> u8 {
        self.server_max_window_bits
    }

    /// Checks the window sizes.
    pub(crate) fn check(self) -> Result<Self, Error> {
        for (name, bits) in [
            ("client_max_window_bits", self.client_max_window_bits),
            ("server_max_window_bits", self.server_max_window_bits),
        ] {
            if !WINDOW_BITS.contains(&bits) {
                return Err(Error::InvalidConfig {
                    option: "compression",
                    reason: format!("{name} is {bits}: it must be 9 to 15"),
                });
            }
        }
        Ok(self)
    }

    /// What the server agreed to, from its `Sec-WebSocket-Extensions`
    /// answer to `self` (the offer): `Ok(None)` without an answer (it
    /// declined). An answer a client must refuse (RFC 7692, 5 and 7.1) is
    /// an error saying why: another extension, an unknown, repeated or
    /// malformed parameter, a server window larger than offered or missing
    /// when one was offered, a client window of 8 bits (zlib compresses
    /// with 9 at least). The parameters are read as the engine reads them
    /// (the extension's name in lower case, values as plain digits), so
    /// that what is reported is what runs.
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub(crate) fn agreed(self, answer: Option<&str>) -> Result<Option<Self>, String> {
        let Some(answer) = answer.map(str::trim).filter(|a| !a.is_empty()) else {
            return Ok(None);
        };
        let refused = |why: &str| Err(format!("{why} in its answer {answer:?}"));
        let params = answer.strip_prefix(NAME).map(str::trim_start);
        let Some(params) = params.filter(|p| p.is_empty() || p.starts_with(';')) else {
            return refused("the server agreed to an extension that was not offered");
        };
        let mut agreed = Self::new();
        let mut seen: Vec<&str> = Vec::new();
        let mut server_window = None;
        for param in params.split(';').skip(1).map(str::trim) {
            let (key, value) = match param.split_once('=') {
                Some((key, value)) => (key.trim(), Some(value.trim())),
                None => (param, None),
            };
            if seen.contains(&key) {
                return refused(&format!("{key} is repeated"));
            }
            seen.push(key);
            if value.is_some() && !key.ends_with("_max_window_bits") {
                return refused(&format!("{param} is not a parameter the offer allows"));
            }
            let bits = match value {
                None => None,
                Some(v) => match v.parse::<u8>() {
                    Ok(bits @ 8..=15) if v.bytes().all(|b| b.is_ascii_digit()) => Some(bits),
                    _ => return refused(&format!("{key}={v} is not a window size")),
                },
            };
            match (key, bits) {
                ("client_no_context_takeover", None) => agreed.client_no_context_takeover = true,
                ("server_no_context_takeover", None) => agreed.server_no_context_takeover = true,
                ("client_max_window_bits", Some(8)) => {
                    return refused("a client window of 8 bits cannot be used (zlib needs 9)");
                }
                ("client_max_window_bits", Some(bits)) if bits <= self.client_max_window_bits => {
                    agreed.client_max_window_bits = bits;
                }
                ("server_max_window_bits", Some(bits)) if bits <= self.server_max_window_bits => {
                    server_window = Some(bits);
                }
                ("server_max_window_bits", Some(_)) => {
                    return refused("server_max_window_bits is larger than offered");
                }
                _ => return refused(&format!("{param} is not a parameter the offer allows")),
            }
        }
        match server_window {
            Some(bits) => agreed.server_max_window_bits = bits,
            None if self.server_max_window_bits < 15 => {
                return refused("server_max_window_bits was offered and is missing");
            }
            None => {}
        }
        Ok(Some(agreed))
    }
}

impl fmt::Display for Deflate {
    /// As in `Sec-WebSocket-Extensions`, naming only what differs from the
    /// defaults.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(NAME)?;
        if self.server_max_window_bits != 15 {
            write!(
                f,
                "; server_max_window_bits={}",
                self.server_max_window_bits
            )?;
        }
        if self.client_max_window_bits != 15 {
            write!(
                f,
                "; client_max_window_bits={}",
                self.client_max_window_bits
            )?;
        }
        if self.server_no_context_takeover {
            f.write_str("; server_no_context_takeover")?;
        }
        if self.client_no_context_takeover {
            f.write_str("; client_no_context_takeover")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_rfcs() {
        let d = Deflate::new();
        assert!(d.client_context_takeover() && d.server_context_takeover());
        assert_eq!((d.client_window_bits(), d.server_window_bits()), (15, 15));
        assert_eq!(d.to_string(), "permessage-deflate");
        assert_eq!(Deflate::default(), d);
    }

    #[test]
    fn window_sizes_out_of_range_are_refused() {
        for bits in [0, 8, 16, 255] {
            let err = Deflate::new()
                .server_max_window_bits(bits)
                .check()
                .expect_err("refused");
            assert!(
                err.to_string().contains("server_max_window_bits is"),
                "{err}"
            );
            assert!(!err.is_retryable());
            assert!(Deflate::new().client_max_window_bits(bits).check().is_err());
        }
        for bits in 9..=15 {
            assert!(Deflate::new().client_max_window_bits(bits).check().is_ok());
        }
    }

    #[test]
    fn the_agreement_is_read_from_the_answer() {
        let offer = Deflate::new();
        let agreed = offer
            .agreed(Some(
                "permessage-deflate; server_no_context_takeover; client_max_window_bits=12",
            ))
            .expect("valid")
            .expect("agreed");
        assert!(agreed.client_context_takeover());
        assert!(!agreed.server_context_takeover());
        assert_eq!(agreed.client_window_bits(), 12);
        assert_eq!(agreed.server_window_bits(), 15);
        assert_eq!(offer.agreed(None), Ok(None));
        assert_eq!(offer.agreed(Some("  ")), Ok(None));
        // A server may ask for no context takeover either way unasked.
        let asked = offer
            .agreed(Some("permessage-deflate;client_no_context_takeover"))
            .expect("valid")
            .expect("agreed");
        assert!(!asked.client_context_takeover());
        // A smaller server window than offered, 8 bits included.
        let small = Deflate::new().server_max_window_bits(12);
        let agreed = small
            .agreed(Some("permessage-deflate; server_max_window_bits=8"))
            .expect("valid")
            .expect("agreed");
        assert_eq!(agreed.server_window_bits(), 8);
    }

    #[test]
    fn answers_a_client_must_refuse_are_errors() {
        let offer = Deflate::new().server_max_window_bits(10);
        for (answer, why) in [
            ("x-webkit-deflate-frame", "not offered"),
            ("permessage-deflate, x-other", "not offered"),
            (
                "Permessage-Deflate; server_max_window_bits=10",
                "not offered",
            ),
            ("permessage-deflatex", "not offered"),
            (
                "permessage-deflate; server_max_window_bits=12",
                "larger than offered",
            ),
            ("permessage-deflate", "offered and is missing"),
            (
                "permessage-deflate; server_max_window_bits=10; mystery",
                "not a parameter",
            ),
            (
                "permessage-deflate; server_max_window_bits=\"10\"",
                "not a window size",
            ),
            (
                "permessage-deflate; server_max_window_bits=16",
                "not a window size",
            ),
            (
                "permessage-deflate; server_max_window_bits=10; server_max_window_bits=9",
                "repeated",
            ),
            (
                "permessage-deflate; server_max_window_bits=10; client_max_window_bits",
                "not a parameter",
            ),
            (
                "permessage-deflate; server_max_window_bits=10; client_max_window_bits=8",
                "8 bits",
            ),
            (
                "permessage-deflate; server_max_window_bits=10; client_no_context_takeover=1",
                "not a parameter",
            ),
        ] {
            let err = offer.agreed(Some(answer)).expect_err(answer);
            assert!(err.contains(why), "{answer}: {err}");
            assert!(err.contains(&format!("{answer:?}")), "{answer}: {err}");
        }
    }

    #[test]
    fn display_and_agreed_round_trip() {
        let offer = Deflate::new()
            .client_no_context_takeover()
            .server_no_context_takeover()
            .client_max_window_bits(10)
            .server_max_window_bits(11);
        assert_eq!(offer.agreed(Some(&offer.to_string())), Ok(Some(offer)));
    }
}
