//! Toxics as the Toxiproxy API writes them (JSON), checked against what the
//! proxy can do, and folded into the [`Faults`] of each direction. Pure:
//! the registry and the HTTP layer only move them.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::proxy::{Direction, Faults};

/// The longest time a toxic may set, in milliseconds: a day (longer ones
/// are surely mistakes, and would overflow the proxy's clocks if added up).
const MAX_MS: u64 = 24 * 60 * 60 * 1000;

/// Which way a toxic acts, in Toxiproxy's words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Stream {
    /// From the client to the upstream server.
    Upstream,
    /// From the upstream server back to the client (Toxiproxy's default).
    #[default]
    Downstream,
}

impl Stream {
    pub(crate) fn direction(self) -> Direction {
        match self {
            Stream::Upstream => Direction::ToServer,
            Stream::Downstream => Direction::ToClient,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
        }
    }

    /// Reads a stream as Toxiproxy does: in any case, downstream when
    /// absent or empty.
    fn read(stream: Option<&str>) -> Result<Stream, String> {
        match stream.map(str::to_ascii_lowercase).as_deref() {
            None | Some("" | "downstream") => Ok(Stream::Downstream),
            Some("upstream") => Ok(Stream::Upstream),
            Some(other) => Err(format!(
                "stream {other:?} was invalid, can be either upstream or downstream"
            )),
        }
    }
}

/// What a toxic does: Toxiproxy's types, with their attributes (times in
/// milliseconds unless named otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    /// `latency`: each piece of data is delayed `latency`, give or take
    /// `jitter`.
    Latency { latency: u64, jitter: u64 },
    /// `bandwidth`: at most `rate` KB/s (0: no limit).
    Bandwidth { rate: u64 },
    /// `slow_close`: the close is passed on `delay` late.
    SlowClose { delay: u64 },
    /// `timeout` with `timeout` 0: nothing passes and nothing is closed
    /// until the toxic is removed (a longer timeout is refused).
    Timeout,
    /// `reset_peer` with `timeout` 0: every connection, open or to come, is
    /// reset (a longer timeout is refused).
    ResetPeer,
    /// `slicer`: data written in slices of `average_size` bytes, `delay`
    /// microseconds apart (`size_variation` must be 0).
    Slicer { average_size: u64, delay: u64 },
    /// `limit_data`: each connection is cut once it carried `bytes`.
    LimitData { bytes: u64 },
}

/// A toxic of a proxy.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Toxic {
    pub(crate) name: String,
    pub(crate) stream: Stream,
    pub(crate) effect: Effect,
}

/// A toxic as a client sends it to `POST /proxies/{proxy}/toxics`.
#[derive(Debug, Deserialize)]
pub(crate) struct NewToxic {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    stream: Option<String>,
    toxicity: Option<f64>,
    #[serde(default)]
    attributes: Map<String, Value>,
}

/// A change to a toxic, as a client sends it to
/// `POST /proxies/{proxy}/toxics/{toxic}`: new attribute values.
#[derive(Debug, Deserialize)]
pub(crate) struct ToxicChange {
    toxicity: Option<f64>,
    #[serde(default)]
    attributes: Map<String, Value>,
}

impl NewToxic {
    /// The toxic, or why the proxy cannot apply it.
    pub(crate) fn into_toxic(self) -> Result<Toxic, String> {
        check_toxicity(self.toxicity)?;
        let stream = Stream::read(self.stream.as_deref())?;
        let effect = Effect::read(&self.kind, &self.attributes)?;
        let name = self
            .name
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| format!("{}_{}", self.kind, stream.name()));
        Ok(Toxic {
            name,
            stream,
            effect,
        })
    }
}

impl Toxic {
    /// The toxic with `change` applied (attributes not named keep their
    /// values), or why the proxy cannot apply it.
    pub(crate) fn changed(&self, change: ToxicChange) -> Result<Toxic, String> {
        check_toxicity(change.toxicity)?;
        let mut attributes = self.effect.attributes();
        attributes.extend(change.attributes);
        Ok(Toxic {
            effect: Effect::read(self.effect.kind(), &attributes)?,
            ..self.clone()
        })
    }

    /// The toxic as the API shows it.
    pub(crate) fn view(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.effect.kind(),
            "stream": self.stream,
            "toxicity": 1.0,
            "attributes": self.effect.attributes(),
        })
    }
}

/// Only toxics that act on every connection are supported.
fn check_toxicity(toxicity: Option<f64>) -> Result<(), String> {
    match toxicity {
        None => Ok(()),
        Some(1.0) => Ok(()),
        Some(t) => Err(format!(
            "toxicity {t} is not supported: this proxy applies a toxic to every connection (toxicity 1.0)"
        )),
    }
}

impl Effect {
    /// Reads a toxic of type `kind` from its attributes (missing ones are
    /// 0, as in Toxiproxy).
    fn read(kind: &str, attributes: &Map<String, Value>) -> Result<Effect, String> {
        let known: &[&str] = match kind {
            "latency" => &["latency", "jitter"],
            "bandwidth" => &["rate"],
            "slow_close" => &["delay"],
            "timeout" | "reset_peer" => &["timeout"],
            "slicer" => &["average_size", "size_variation", "delay"],
            "limit_data" => &["bytes"],
            other => {
                return Err(format!(
                    "unknown toxic type {other:?}: this proxy has latency, bandwidth, slow_close, timeout, reset_peer, slicer and limit_data"
                ));
            }
        };
        if let Some(unknown) = attributes.keys().find(|key| !known.contains(&key.as_str())) {
            return Err(format!(
                "a {kind} toxic has no attribute {unknown:?} (it has: {})",
                known.join(", ")
            ));
        }
        let get = |name: &str| -> Result<u64, String> {
            match attributes.get(name) {
                None => Ok(0),
                Some(value) => value.as_u64().ok_or_else(|| {
                    format!(
                        "the {kind} toxic's {name} must be a whole number of 0 or more, not {value}"
                    )
                }),
            }
        };
        // A time, in milliseconds (`per_ms` units of it: 1000 for µs).
        let time = |name: &str, per_ms: u64| -> Result<u64, String> {
            let value = get(name)?;
            let most = MAX_MS * per_ms;
            if value > most {
                return Err(format!(
                    "the {kind} toxic's {name} must be at most {most} (a day), not {value}"
                ));
            }
            Ok(value)
        };
        Ok(match kind {
            "latency" => Effect::Latency {
                latency: time("latency", 1)?,
                jitter: time("jitter", 1)?,
            },
            "bandwidth" => Effect::Bandwidth { rate: get("rate")? },
            "slow_close" => Effect::SlowClose {
                delay: time("delay", 1)?,
            },
            "timeout" | "reset_peer" => {
                if get("timeout")? != 0 {
                    return Err(format!(
                        "a {kind} toxic with a timeout other than 0 is not supported by this proxy"
                    ));
                }
                if kind == "timeout" {
                    Effect::Timeout
                } else {
                    Effect::ResetPeer
                }
            }
            "slicer" => {
                if get("size_variation")? != 0 {
                    return Err(
                        "a slicer toxic's size_variation must be 0: this proxy writes slices of average_size bytes"
                            .to_owned(),
                    );
                }
                Effect::Slicer {
                    average_size: get("average_size")?,
                    delay: time("delay", 1000)?,
                }
            }
            _ => Effect::LimitData {
                bytes: get("bytes")?,
            },
        })
    }

    /// Toxiproxy's name of the toxic's type.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Effect::Latency { .. } => "latency",
            Effect::Bandwidth { .. } => "bandwidth",
            Effect::SlowClose { .. } => "slow_close",
            Effect::Timeout => "timeout",
            Effect::ResetPeer => "reset_peer",
            Effect::Slicer { .. } => "slicer",
            Effect::LimitData { .. } => "limit_data",
        }
    }

    /// Its attributes, every one named, as the API shows them.
    fn attributes(&self) -> Map<String, Value> {
        let value = match *self {
            Effect::Latency { latency, jitter } => json!({"latency": latency, "jitter": jitter}),
            Effect::Bandwidth { rate } => json!({"rate": rate}),
            Effect::SlowClose { delay } => json!({"delay": delay}),
            Effect::Timeout | Effect::ResetPeer => json!({"timeout": 0}),
            Effect::Slicer {
                average_size,
                delay,
            } => json!({"average_size": average_size, "size_variation": 0, "delay": delay}),
            Effect::LimitData { bytes } => json!({"bytes": bytes}),
        };
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }
}

/// What `toxics` do to `direction`, together: latencies add up (Toxiproxy
/// chains them), the lowest rate and data limit win, the longest
/// slow close wins, the last slicer wins, and any `timeout` is a black
/// hole; a `reset_peer` cuts every connection at once (`cut_after` 0).
pub(crate) fn faults(toxics: &[Toxic], direction: Direction) -> Faults {
    let ms = Duration::from_millis;
    let mut faults = Faults::default();
    for toxic in toxics.iter().filter(|t| t.stream.direction() == direction) {
        faults = match toxic.effect {
            Effect::Latency { latency, jitter } => {
                let (delay, spread) = faults
                    .latency
                    .map_or((Duration::ZERO, Duration::ZERO), |l| (l.delay, l.jitter));
                faults.latency(
                    delay.saturating_add(ms(latency)),
                    spread.saturating_add(ms(jitter)),
                )
            }
            Effect::Bandwidth { rate: 0 } => faults,
            Effect::Bandwidth { rate } => {
                let bytes = rate.saturating_mul(1000);
                let lowest = faults.rate.map_or(bytes, |r| r.get().min(bytes));
                faults.rate(Some(lowest))
            }
            Effect::SlowClose { delay } => {
                let longest = faults.slow_close.map_or(ms(delay), |d| d.max(ms(delay)));
                faults.slow_close(Some(longest))
            }
            Effect::Timeout => faults.black_hole(true),
            Effect::ResetPeer => faults.cut_after(Some(0)),
            Effect::Slicer {
                average_size,
                delay,
            } => faults.slicer(
                usize::try_from(average_size).unwrap_or(usize::MAX),
                Duration::from_micros(delay),
            ),
            Effect::LimitData { bytes } => {
                let lowest = faults.cut_after.map_or(bytes, |b| b.min(bytes));
                faults.cut_after(Some(lowest))
            }
        };
    }
    faults
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toxic(body: Value) -> Result<Toxic, String> {
        serde_json::from_value::<NewToxic>(body)
            .map_err(|e| e.to_string())?
            .into_toxic()
    }

    #[test]
    fn a_toxic_is_named_after_its_type_and_stream_by_default() {
        let latency = toxic(json!({"type": "latency", "attributes": {"latency": 100}}))
            .expect("a latency toxic");
        assert_eq!(latency.name, "latency_downstream");
        assert_eq!(
            latency.effect,
            Effect::Latency {
                latency: 100,
                jitter: 0
            }
        );
        assert_eq!(
            latency.view(),
            json!({"name": "latency_downstream", "type": "latency", "stream": "downstream",
                   "toxicity": 1.0, "attributes": {"latency": 100, "jitter": 0}})
        );
        let named = toxic(json!({"name": "x", "type": "timeout", "stream": "Upstream"}))
            .expect("a timeout toxic");
        assert_eq!((named.name.as_str(), named.stream), ("x", Stream::Upstream));
    }

    #[test]
    fn what_the_proxy_cannot_do_is_refused_with_the_reason() {
        for (body, says) in [
            (json!({"type": "poison"}), "unknown toxic type"),
            (json!({"type": "latency", "toxicity": 0.5}), "toxicity 0.5"),
            (
                json!({"type": "latency", "attributes": {"latncy": 1}}),
                "no attribute \"latncy\"",
            ),
            (
                json!({"type": "latency", "attributes": {"latency": -1}}),
                "whole number",
            ),
            (
                json!({"type": "timeout", "attributes": {"timeout": 500}}),
                "timeout other than 0",
            ),
            (
                json!({"type": "slicer", "attributes": {"average_size": 8, "size_variation": 2}}),
                "size_variation",
            ),
            (
                json!({"type": "latency", "stream": "sideways"}),
                "can be either upstream or downstream",
            ),
            (
                json!({"type": "latency", "attributes": {"latency": 86_400_001}}),
                "at most 86400000",
            ),
            (
                json!({"type": "slicer", "attributes": {"delay": 86_400_000_001_u64}}),
                "at most 86400000000",
            ),
        ] {
            let refused = toxic(body.clone()).expect_err("refused");
            assert!(refused.contains(says), "{body}: {refused}");
        }
    }

    #[test]
    fn toxics_fold_into_each_directions_faults() {
        let ms = Duration::from_millis;
        let toxics = [
            toxic(json!({"name": "a", "type": "latency", "attributes": {"latency": 100, "jitter": 10}})),
            toxic(json!({"name": "b", "type": "latency", "attributes": {"latency": 50}})),
            toxic(json!({"name": "c", "type": "bandwidth", "attributes": {"rate": 20}})),
            toxic(json!({"name": "d", "type": "bandwidth", "attributes": {"rate": 5}})),
            toxic(json!({"type": "timeout", "stream": "upstream"})),
            toxic(json!({"type": "limit_data", "stream": "upstream", "attributes": {"bytes": 64}})),
            toxic(json!({"type": "slicer", "stream": "upstream", "attributes": {"average_size": 8, "delay": 1500}})),
        ]
        .map(|t| t.expect("a toxic"));
        let down = faults(&toxics, Direction::ToClient);
        assert_eq!(
            down,
            Faults::default().latency(ms(150), ms(10)).rate(Some(5_000))
        );
        let up = faults(&toxics, Direction::ToServer);
        assert_eq!(
            up,
            Faults::default()
                .black_hole(true)
                .cut_after(Some(64))
                .slicer(8, Duration::from_micros(1500))
        );
        assert_eq!(faults(&[], Direction::ToServer), Faults::default());
    }

    #[test]
    fn a_change_keeps_the_attributes_it_does_not_name() {
        let latency =
            toxic(json!({"type": "latency", "attributes": {"latency": 100, "jitter": 5}}))
                .expect("a toxic");
        let change: ToxicChange =
            serde_json::from_value(json!({"attributes": {"latency": 300}})).expect("a change");
        let changed = latency.changed(change).expect("changed");
        assert_eq!(
            changed.effect,
            Effect::Latency {
                latency: 300,
                jitter: 5
            }
        );
        assert_eq!(changed.name, latency.name);
    }
}
