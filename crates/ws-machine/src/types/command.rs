//! What the caller can ask of a running machine.

use super::error::Error;

/// What the caller can ask of a running machine, on
/// [`Machine::command`](crate::Machine::command).
///
/// What each command means in each phase (connecting, waiting, connected) is
/// decided in one place; `docs/design.md` has the table.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ws_machine::Error> {
/// use ws_machine::{Command, Machine};
///
/// let machine = Machine::builder("ws://127.0.0.1:9/").spawn()?;
/// machine.command.send(Command::UseText).await.expect("the machine runs");
/// machine.command.send(Command::Quit).await.expect("the machine runs");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Close the connection (with a close handshake), report
    /// [`State::Disconnected`](crate::State::Disconnected) and stop, all
    /// within [`Builder::close_timeout`](crate::Builder::close_timeout).
    /// Dropping every command sender does the same.
    Quit,
    /// Send a ping now. If nothing arrives within the pong timeout, the
    /// connection is declared dead. Ignored while not connected.
    Ping,
    /// Send plain-bytes messages ([`Kind::Unspecified`](crate::Kind::Unspecified))
    /// as text from now on.
    ///
    /// Commands and messages travel on different channels. The machine
    /// serves commands before it takes messages, so a switch sent (and
    /// awaited) before a message applies to that message; a switch sent
    /// after a message may or may not apply to it. To fix the kind of a
    /// particular message, build it with
    /// [`Message::text`](crate::Message::text) or
    /// [`Message::binary`](crate::Message::binary).
    UseText,
    /// Send plain-bytes messages as binary from now on (the default).
    UseBinary,
    /// Close the current connection and connect again at once, or skip the
    /// wait if the machine is waiting between attempts. Ignored while an
    /// attempt is under way.
    Reconnect,
    /// Deliver what was sent, then stop: once the machine takes this
    /// command, `output` takes no new messages (a send fails and hands the
    /// message back); everything
    /// already on it, and everything written but not yet confirmed, is
    /// delivered (flushed, or with [`Builder::ack_key`](crate::Builder::ack_key)
    /// acknowledged), reconnecting as usual if the connection is lost; then
    /// the machine closes and stops as for [`Command::Quit`]. A `Quit` sent
    /// meanwhile stops it at once, handing back what was not delivered.
    Finish,
    /// Like [`Command::Quit`], with this close code and reason in the close
    /// frame instead of 1000 (normal closure) and none: for example 1001
    /// (going away), or a code of the application's. Without a connection,
    /// the same as `Quit`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// use ws_machine::{CloseFrame, Command, Machine};
    ///
    /// let machine = Machine::builder("ws://127.0.0.1:9/").spawn()?;
    /// let leaving = CloseFrame::new(1001, "client shutting down")?;
    /// machine.command.send(Command::Close(leaving)).await.expect("the machine runs");
    /// # Ok(())
    /// # }
    /// ```
    Close(CloseFrame),
}

/// The code and reason of a close frame the client sends
/// ([`Command::Close`]), checked: a code a client may send (1000 to 1003,
/// 1007 to 1011, or 3000 to 4999, the last for applications) and a reason
/// of at most 123 bytes (RFC 6455, section 5.5.1).
///
/// ```
/// use ws_machine::CloseFrame;
///
/// let frame = CloseFrame::new(4000, "done")?;
/// assert_eq!((frame.code(), frame.reason()), (4000, "done"));
/// assert!(CloseFrame::new(1006, "").is_err(), "1006 is never sent");
/// assert!(CloseFrame::new(1000, "x".repeat(124)).is_err(), "too long");
/// # Ok::<(), ws_machine::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    code: u16,
    reason: Box<str>,
}

/// The longest reason a close frame holds: 125 bytes of control frame
/// payload, less the code's two.
const MAX_REASON: usize = 123;

impl CloseFrame {
    /// A close frame with `code` and `reason`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if a client may not send `code`, or if
    /// `reason` is longer than 123 bytes.
    pub fn new(code: u16, reason: impl Into<String>) -> Result<Self, Error> {
        let reason = reason.into();
        if !matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999) {
            return Err(Error::InvalidConfig {
                option: "close frame",
                reason: format!(
                    "{code} is not a close code a client may send: use 1000 to 1003, 1007 to 1011, or 3000 to 4999"
                ),
            });
        }
        if reason.len() > MAX_REASON {
            return Err(Error::InvalidConfig {
                option: "close frame",
                reason: format!(
                    "the reason is {} bytes; a close frame holds at most {MAX_REASON}",
                    reason.len()
                ),
            });
        }
        Ok(Self {
            code,
            reason: reason.into_boxed_str(),
        })
    }

    /// The close code.
    #[must_use]
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The reason, possibly empty.
    #[must_use]
    pub fn reason(&self) -> &str {
        &self.reason
    }
}
