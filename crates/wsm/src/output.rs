//! Timestamped lines: `+0.012s   status   CONNECTED`.
//!
//! Every line carries the time since the printer was created, so the demo's
//! output reads as a timeline.

use std::{
    fmt,
    io::{self, Write},
    time::Instant,
};

use ws_machine::{Kind, Message};

/// Writes one line per event, prefixed with the time since the start.
#[derive(Debug)]
pub(crate) struct Printer<W> {
    out: W,
    start: Instant,
}

impl<W: Write> Printer<W> {
    /// A printer whose clock starts now.
    pub(crate) fn new(out: W) -> Self {
        Self {
            out,
            start: Instant::now(),
        }
    }

    /// Prints `+SECONDS  WHAT  TEXT` and flushes, so a reader of a pipe sees
    /// each event when it happens.
    ///
    /// # Errors
    ///
    /// The error of writing to the output.
    pub(crate) fn line(&mut self, what: &str, text: impl fmt::Display) -> io::Result<()> {
        let stamp = format!("+{:.3}s", self.start.elapsed().as_secs_f64());
        writeln!(self.out, "{stamp:<8}  {what:<8} {text}")?;
        self.out.flush()
    }

    /// The time since the start.
    pub(crate) fn elapsed(&self) -> std::time::Duration {
        self.start.elapsed()
    }
}

/// A message as one short line: `text "hello"`, `binary 4 bytes: de ad be ef`.
pub(crate) struct Show<'a>(pub(crate) &'a Message);

impl fmt::Display for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// Longer payloads are cut, the demo's messages are all short.
        const SHOWN: usize = 16;
        let message = self.0;
        let payload = message.payload();
        match (message.kind(), message.as_text()) {
            (Kind::Text, Some(text)) => return write!(f, "text {text:?}"),
            (Kind::Unspecified, _) => {
                // Plain bytes: their kind is chosen by the machine's mode.
                if let Ok(text) = std::str::from_utf8(payload) {
                    return write!(f, "bytes {text:?}");
                }
                f.write_str("bytes")?;
            }
            _ => f.write_str("binary")?,
        }
        write!(f, " {} bytes:", payload.len())?;
        for byte in payload.iter().take(SHOWN) {
            write!(f, " {byte:02x}")?;
        }
        if payload.len() > SHOWN {
            f.write_str(" ...")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_show_their_kind() {
        assert_eq!(Show(&Message::text("hi")).to_string(), r#"text "hi""#);
        assert_eq!(
            Show(&Message::binary(vec![0xde, 0xad])).to_string(),
            "binary 2 bytes: de ad"
        );
        assert_eq!(
            Show(&Message::from(b"raw".to_vec())).to_string(),
            r#"bytes "raw""#
        );
        assert_eq!(
            Show(&Message::from(vec![0xff; 20])).to_string(),
            format!("bytes 20 bytes:{} ...", " ff".repeat(16))
        );
    }

    #[test]
    fn lines_are_stamped_and_aligned() {
        let mut printer = Printer::new(Vec::new());
        printer.line("status", "CONNECTED").expect("write to a Vec");
        let text = String::from_utf8(printer.out).expect("UTF-8");
        assert!(text.starts_with("+0.0"), "{text}");
        assert!(text.ends_with("s   status   CONNECTED\n"), "{text:?}");
    }
}
