//! What each command means in each phase, decided in one place (the table
//! is in `docs/design.md`, "Commands mean one thing per phase"; the test
//! below checks it row by row).
//!
//! Each phase has its own answer type, listing only what can happen in that
//! phase, and each function below matches every [`Command`] without a
//! wildcard arm: adding a command does not compile until every phase has
//! been given a meaning for it, and a phase cannot be handed an answer it
//! does not handle.

use crate::types::{CloseFrame, Command, Mode};

/// While an attempt (TCP, TLS, upgrade) is under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Connecting {
    Quit,
    /// Deliver what was sent, then stop (once connected).
    Finish,
    Switch(Mode),
    Ignore,
}

/// While waiting before the next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waiting {
    Quit,
    Finish,
    /// End the wait: connect now.
    Reconnect,
    Switch(Mode),
    Ignore,
}

/// While the connection is open: every command means something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Connected {
    /// Close, then stop.
    Quit,
    /// Close with this code and reason, then stop.
    Close(CloseFrame),
    /// Deliver what was sent, then close and stop.
    Finish,
    /// Close, then connect again at once.
    Reconnect,
    Ping,
    Switch(Mode),
}

/// While the connection is being closed or a failed one flushes its close
/// frame (its deadline is already set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closing {
    /// Stop once the close is over, within the deadline already set.
    Quit,
    /// Deliver what was sent on the next connection, then stop.
    Finish,
    Switch(Mode),
    Ignore,
}

/// A command while connecting; `None` (every command sender gone) means
/// quit, in this and every other phase.
pub(crate) fn connecting(command: Option<Command>) -> Connecting {
    match command {
        // Nothing to close: a close is a quit.
        None | Some(Command::Quit | Command::Close(_)) => Connecting::Quit,
        Some(Command::Finish) => Connecting::Finish,
        Some(Command::UseText) => Connecting::Switch(Mode::Text),
        Some(Command::UseBinary) => Connecting::Switch(Mode::Binary),
        Some(Command::Ping | Command::Reconnect) => Connecting::Ignore,
    }
}

/// A command while waiting.
pub(crate) fn waiting(command: Option<Command>) -> Waiting {
    match command {
        None | Some(Command::Quit | Command::Close(_)) => Waiting::Quit,
        Some(Command::Finish) => Waiting::Finish,
        Some(Command::Reconnect) => Waiting::Reconnect,
        Some(Command::UseText) => Waiting::Switch(Mode::Text),
        Some(Command::UseBinary) => Waiting::Switch(Mode::Binary),
        Some(Command::Ping) => Waiting::Ignore,
    }
}

/// A command while connected.
pub(crate) fn connected(command: Option<Command>) -> Connected {
    match command {
        None | Some(Command::Quit) => Connected::Quit,
        Some(Command::Close(frame)) => Connected::Close(frame),
        Some(Command::Finish) => Connected::Finish,
        Some(Command::Reconnect) => Connected::Reconnect,
        Some(Command::Ping) => Connected::Ping,
        Some(Command::UseText) => Connected::Switch(Mode::Text),
        Some(Command::UseBinary) => Connected::Switch(Mode::Binary),
    }
}

/// A command while closing.
pub(crate) fn closing(command: Option<Command>) -> Closing {
    match command {
        // A close frame is already on its way: a close is a quit.
        None | Some(Command::Quit | Command::Close(_)) => Closing::Quit,
        Some(Command::Finish) => Closing::Finish,
        Some(Command::UseText) => Closing::Switch(Mode::Text),
        Some(Command::UseBinary) => Closing::Switch(Mode::Binary),
        Some(Command::Ping | Command::Reconnect) => Closing::Ignore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table of `docs/design.md`, row by row.
    #[test]
    fn the_table() {
        let text = Mode::Text;
        let binary = Mode::Binary;
        let leaving = CloseFrame::new(1001, "bye").expect("a valid frame");
        let rows = [
            (
                Some(Command::Quit),
                (
                    Connecting::Quit,
                    Waiting::Quit,
                    Connected::Quit,
                    Closing::Quit,
                ),
            ),
            (
                None,
                (
                    Connecting::Quit,
                    Waiting::Quit,
                    Connected::Quit,
                    Closing::Quit,
                ),
            ),
            (
                Some(Command::Finish),
                (
                    Connecting::Finish,
                    Waiting::Finish,
                    Connected::Finish,
                    Closing::Finish,
                ),
            ),
            (
                Some(Command::Reconnect),
                (
                    Connecting::Ignore,
                    Waiting::Reconnect,
                    Connected::Reconnect,
                    Closing::Ignore,
                ),
            ),
            (
                Some(Command::Ping),
                (
                    Connecting::Ignore,
                    Waiting::Ignore,
                    Connected::Ping,
                    Closing::Ignore,
                ),
            ),
            (
                Some(Command::UseText),
                (
                    Connecting::Switch(text),
                    Waiting::Switch(text),
                    Connected::Switch(text),
                    Closing::Switch(text),
                ),
            ),
            (
                Some(Command::Close(leaving.clone())),
                (
                    Connecting::Quit,
                    Waiting::Quit,
                    Connected::Close(leaving.clone()),
                    Closing::Quit,
                ),
            ),
            (
                Some(Command::UseBinary),
                (
                    Connecting::Switch(binary),
                    Waiting::Switch(binary),
                    Connected::Switch(binary),
                    Closing::Switch(binary),
                ),
            ),
        ];
        for (command, expected) in rows {
            let answers = (
                connecting(command.clone()),
                waiting(command.clone()),
                connected(command.clone()),
                closing(command.clone()),
            );
            assert_eq!(answers, expected, "{command:?}");
        }
    }
}
