//! How things look: received messages on stdout, statuses and notes on
//! stderr (human lines or JSON lines), undelivered messages at the end.

use std::{fmt::Write as _, time::Duration};

use base64::Engine as _;
use serde::Serialize;
use ws_machine::{Error, Kind, Message, State, Status};

use super::args::{BinaryOut, StatusFormat};

/// The local wall-clock time, `HH:MM:SS.mmm`.
pub(crate) fn clock() -> String {
    chrono::Local::now().format("%H:%M:%S%.3f").to_string()
}

/// Something to tell the user that is not a change of state.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Note<'a> {
    /// Nothing was lost, but something did not work (a refused line, a
    /// failed `--header-cmd` run).
    Warning(&'a str),
    /// An answer to the user (`/help`, `/ping`) or what happens next.
    Info(&'a str),
    /// The input ended; `queued` messages wait for the connection.
    InputEnded { queued: usize },
}

/// Formats for one session.
#[derive(Debug, Clone)]
pub(crate) struct Show {
    pub(crate) binary_out: BinaryOut,
    pub(crate) prefix: Option<String>,
    pub(crate) status: StatusFormat,
    pub(crate) url: String,
    /// With `--fallback-url`: which URL an attempt uses is known only from
    /// the status that ends it, so other lines name none.
    pub(crate) several_urls: bool,
}

/// One JSON status line; absent fields are left out.
#[derive(Serialize, Default)]
struct JsonLine<'a> {
    time: String,
    event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt: Option<u32>,
    #[serde(rename = "final", skip_serializing_if = "std::ops::Not::not")]
    last: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compression: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delay_ms: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retryable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    close_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    close_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    queued: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtt_ms: Option<f64>,
}

/// Whether a status reports a refused outgoing message rather than a change
/// of state.
pub(crate) fn is_refusal(status: &Status) -> bool {
    status
        .error
        .as_ref()
        .is_some_and(|error| error.refused_message().is_some())
}

/// The error that decided, looking through `GaveUp` to its last attempt's.
fn innermost(error: &Error) -> &Error {
    match error {
        Error::GaveUp { last, .. } => innermost(last),
        other => other,
    }
}

fn delay(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

impl Show {
    /// The bytes stdout gets for a received message: text and encoded
    /// binary end with a newline; raw binary is written as it is.
    pub(crate) fn message(&self, message: &Message) -> Vec<u8> {
        let payload = message.payload();
        let mut out = match (message.kind(), self.binary_out) {
            (Kind::Binary, BinaryOut::Raw) => return payload.to_vec(),
            (Kind::Binary, BinaryOut::Base64) => {
                let mut line = self.prefix.clone().unwrap_or_default();
                base64::engine::general_purpose::STANDARD.encode_string(payload, &mut line);
                line.into_bytes()
            }
            (Kind::Binary, BinaryOut::Hex) => {
                let mut line = String::with_capacity(payload.len() * 2);
                for byte in payload.iter() {
                    let _ = write!(line, "{byte:02x}");
                }
                line.into_bytes()
            }
            // Received messages are text or binary; plain bytes never arrive.
            (Kind::Text | Kind::Unspecified, _) => payload.to_vec(),
        };
        out.push(b'\n');
        out
    }

    /// A message that was not delivered, as a line that would send it again.
    pub(crate) fn undelivered(&self, message: &Message) -> String {
        match message.as_text() {
            Some(text) => text.to_owned(),
            None => {
                let mut line = self.prefix.clone().unwrap_or_else(|| "base64:".into());
                base64::engine::general_purpose::STANDARD
                    .encode_string(message.payload(), &mut line);
                line
            }
        }
    }

    /// The stderr line (without newline) for a status.
    pub(crate) fn status(&self, status: &Status, time: String) -> String {
        if let Some(rtt) = status.round_trip {
            return self.round_trip(rtt, time);
        }
        let refused = is_refusal(status);
        match self.status {
            StatusFormat::Human => {
                let mut line = time;
                line.push(' ');
                if refused {
                    line.push_str("REFUSED");
                } else {
                    let _ = write!(line, "{}", status.state);
                }
                match (status.state, &status.error) {
                    (_, Some(error)) => {
                        if let Some(url) = &status.url {
                            let _ = write!(line, " {url}");
                        }
                        let _ = write!(line, ": {error}");
                    }
                    (State::Connecting, None) if self.several_urls => {
                        let _ = write!(line, " (attempt {})", status.attempt);
                    }
                    (State::Connecting, None) => {
                        let _ = write!(line, " {} (attempt {})", self.url, status.attempt);
                    }
                    (State::Connected, None) => {
                        let url = status.url.as_deref().unwrap_or(&self.url);
                        let _ = write!(line, " {url}");
                        if let Some(protocol) = &status.protocol {
                            let _ = write!(line, " (subprotocol {protocol})");
                        }
                        if let Some(compression) = &status.compression {
                            let _ = write!(line, " ({compression})");
                        }
                    }
                    (State::Ready, None) if self.several_urls => {}
                    (State::Ready, None) => {
                        let _ = write!(line, " {}", self.url);
                    }
                    (State::Waiting, None) => {
                        let wait = status.delay.map(delay).unwrap_or_default();
                        let _ = write!(line, " {wait} before attempt {}", status.attempt + 1);
                    }
                    (State::Disconnected, None) => {}
                }
                line
            }
            StatusFormat::Json => {
                let error = status.error.as_ref();
                let decisive = error.map(innermost);
                let (close_code, close_reason) = match decisive {
                    Some(Error::Closed { code, reason, .. }) => {
                        (Some(*code), Some(reason.as_str()))
                    }
                    _ => (None, None),
                };
                let http_status = match decisive {
                    Some(Error::HandshakeRejected { status, .. }) => Some(*status),
                    _ => None,
                };
                let line = JsonLine {
                    time,
                    event: if refused { "refused" } else { "status" },
                    state: Some(status.state.to_string()),
                    attempt: Some(status.attempt),
                    last: status.is_final(),
                    url: status.url.as_deref().or_else(|| {
                        (!self.several_urls
                            && matches!(
                                status.state,
                                State::Connecting | State::Connected | State::Ready
                            ))
                        .then_some(self.url.as_str())
                    }),
                    protocol: status.protocol.as_deref(),
                    compression: status.compression.map(|c| c.to_string()),
                    delay_ms: status.delay.map(|d| d.as_millis()),
                    error: error.map(ToString::to_string),
                    retryable: error.map(Error::is_retryable),
                    close_code,
                    close_reason,
                    http_status,
                    ..JsonLine::default()
                };
                json(&line)
            }
        }
    }

    /// The stderr line (without newline) for a round trip (`--show-ping`).
    fn round_trip(&self, rtt: Duration, time: String) -> String {
        let ms = rtt.as_secs_f64() * 1000.0;
        match self.status {
            StatusFormat::Human => format!("{time} PONG {ms:.1}ms"),
            StatusFormat::Json => json(&JsonLine {
                time,
                event: "pong",
                rtt_ms: Some((ms * 1000.0).round() / 1000.0),
                ..JsonLine::default()
            }),
        }
    }

    /// The stderr line (without newline) for a note.
    pub(crate) fn note(&self, note: Note<'_>, time: String) -> String {
        match self.status {
            StatusFormat::Human => match note {
                Note::Warning(text) => format!("{time} WARNING {text}"),
                Note::Info(text) => format!("{time} {text}"),
                Note::InputEnded { queued: 0 } => format!("{time} INPUT ENDED"),
                Note::InputEnded { queued } => format!(
                    "{time} INPUT ENDED: {queued} message{} wait{} for the connection",
                    if queued == 1 { "" } else { "s" },
                    if queued == 1 { "s" } else { "" },
                ),
            },
            StatusFormat::Json => {
                let line = match note {
                    Note::Warning(text) => JsonLine {
                        time,
                        event: "warning",
                        message: Some(text),
                        ..JsonLine::default()
                    },
                    Note::Info(text) => JsonLine {
                        time,
                        event: "info",
                        message: Some(text),
                        ..JsonLine::default()
                    },
                    Note::InputEnded { queued } => JsonLine {
                        time,
                        event: "input_ended",
                        queued: Some(queued),
                        ..JsonLine::default()
                    },
                };
                json(&line)
            }
        }
    }
}

fn json(line: &JsonLine<'_>) -> String {
    // Strings, numbers and booleans only: serialising cannot fail.
    serde_json::to_string(line)
        .unwrap_or_else(|e| format!("{{\"event\":\"error\",\"error\":\"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(binary_out: BinaryOut, status: StatusFormat) -> Show {
        Show {
            binary_out,
            prefix: Some("base64:".into()),
            status,
            url: "ws://127.0.0.1:9/".into(),
            several_urls: false,
        }
    }

    #[test]
    fn binary_output_modes() {
        let m = Message::binary(vec![0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(
            show(BinaryOut::Base64, StatusFormat::Human).message(&m),
            b"base64:3q2+7w==\n"
        );
        assert_eq!(
            show(BinaryOut::Hex, StatusFormat::Human).message(&m),
            b"deadbeef\n"
        );
        assert_eq!(
            show(BinaryOut::Raw, StatusFormat::Human).message(&m),
            [0xde, 0xad, 0xbe, 0xef]
        );
        let t = Message::text("héllo");
        assert_eq!(
            show(BinaryOut::Raw, StatusFormat::Human).message(&t),
            "héllo\n".as_bytes()
        );
        let s = show(BinaryOut::Hex, StatusFormat::Human);
        assert_eq!(s.undelivered(&m), "base64:3q2+7w==");
        assert_eq!(s.undelivered(&t), "héllo");
    }

    #[test]
    fn the_clock_is_wall_time_with_milliseconds() {
        let time = clock();
        let parts: Vec<&str> = time.split([':', '.']).collect();
        assert_eq!(parts.len(), 4, "{time}");
        assert!(
            parts
                .iter()
                .zip([2, 2, 2, 3])
                .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_digit())),
            "{time}"
        );
    }

    #[test]
    fn notes() {
        let human = show(BinaryOut::Base64, StatusFormat::Human);
        assert_eq!(
            human.note(Note::InputEnded { queued: 2 }, "12:00:00.000".into()),
            "12:00:00.000 INPUT ENDED: 2 messages wait for the connection"
        );
        let json = show(BinaryOut::Base64, StatusFormat::Json);
        let line = json.note(
            Note::Warning("header command failed"),
            "12:00:00.000".into(),
        );
        let value: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(value["event"], "warning");
        assert_eq!(value["message"], "header command failed");
    }
}
