//! What a stopped machine hands back.

use super::message::Message;

/// What a stopped machine never delivered, handed back by
/// [`Machine::shutdown`](crate::Machine::shutdown) and
/// [`Machine::stopped`](crate::Machine::stopped) so that nothing vanishes
/// unseen.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ws_machine::Error> {
/// // Nothing listens on this port: the message is never written.
/// let machine = ws_machine::Machine::builder("ws://127.0.0.1:9/").spawn()?;
/// machine.output.send("hello".into()).await.expect("the machine runs");
/// let leftovers = machine.shutdown().await;
/// assert_eq!(leftovers.unsent[0].as_text(), Some("hello"));
/// assert!(leftovers.unacknowledged.is_empty() && leftovers.received.is_empty());
/// assert!(leftovers.refused.is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Leftovers {
    /// Messages from `output` that were never written, or whose write was
    /// not confirmed, oldest first.
    pub unsent: Vec<Message>,
    /// With [`Builder::ack_key`](crate::Builder::ack_key): messages written
    /// but never acknowledged. The server may or may not have received them.
    pub unacknowledged: Vec<Message>,
    /// Messages received from the server that the caller had not read from
    /// `input` yet.
    pub received: Vec<Message>,
    /// Outgoing messages the machine refused (too large, not text in text
    /// mode, past their deadline, or not written again after their
    /// connection ended) whose status never reached the caller: the
    /// `status` channel overflowed, or nobody read it. (The others came back in their
    /// status, see [`Error::refused_message`](crate::Error::refused_message).)
    pub refused: Vec<Message>,
}
