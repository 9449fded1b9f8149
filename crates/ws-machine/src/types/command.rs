//! What the caller can ask of a running machine.

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}
