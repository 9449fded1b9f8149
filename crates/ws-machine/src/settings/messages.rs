//! One message or several, wherever the builder takes messages.

use crate::types::Message;

/// One message, or a list of them: what [`Builder::on_connect`] takes.
///
/// A `&str`, `String` or [`Message`] is one message; an array, a `Vec` or a
/// slice of anything that converts into a message is several. Collect an
/// iterator into a `Vec` first.
///
/// [`Builder::on_connect`]: crate::Builder::on_connect
///
/// ```
/// use ws_machine::{IntoMessages, Message};
///
/// assert_eq!("subscribe".into_messages().len(), 1);
/// assert_eq!(["auth", "subscribe"].into_messages().len(), 2);
/// let topics = vec!["a".to_owned(), "b".to_owned()];
/// assert_eq!(topics.into_messages(), [Message::text("a"), Message::text("b")]);
/// ```
///
/// An iterator is not taken as it is (collect it first):
///
/// ```compile_fail
/// let topics = ["a", "b"];
/// let builder = ws_machine::Machine::builder("ws://127.0.0.1:9/")
///     .on_connect(topics.iter().map(|t| format!("subscribe:{t}")));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not one message or a list of messages",
    note = "pass a `&str`, a `String` or a `Message`, or an array, `Vec` or slice of them; collect an iterator into a `Vec` first"
)]
pub trait IntoMessages {
    /// The messages, in order.
    fn into_messages(self) -> Vec<Message>;
}

impl IntoMessages for Message {
    fn into_messages(self) -> Vec<Message> {
        vec![self]
    }
}

impl IntoMessages for &str {
    fn into_messages(self) -> Vec<Message> {
        vec![Message::text(self)]
    }
}

impl IntoMessages for String {
    fn into_messages(self) -> Vec<Message> {
        vec![Message::text(self)]
    }
}

impl<M: Into<Message>, const N: usize> IntoMessages for [M; N] {
    fn into_messages(self) -> Vec<Message> {
        self.into_iter().map(Into::into).collect()
    }
}

impl<M: Into<Message>> IntoMessages for Vec<M> {
    fn into_messages(self) -> Vec<Message> {
        self.into_iter().map(Into::into).collect()
    }
}

impl<M: Into<Message> + Clone> IntoMessages for &[M] {
    fn into_messages(self) -> Vec<Message> {
        self.iter().cloned().map(Into::into).collect()
    }
}
