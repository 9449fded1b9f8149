//! What each command means in each phase, decided in one place.
//!
//! The match below lists every [`Command`] and, where the meaning depends on
//! the phase, every [`Phase`], without wildcard arms: adding a command does
//! not compile until each phase has been given a meaning for it.

use crate::types::{Command, Mode};

/// The phase the machine is in when a command arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// An attempt (TCP, TLS, upgrade) is under way.
    Connecting,
    /// Waiting before the next attempt.
    Waiting,
    /// The connection is open.
    Connected,
}

/// What the phase must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Stop the machine (closing the connection, if one is open).
    Quit,
    /// Connect again now: close the open connection, or end the wait.
    Reconnect,
    /// Send a ping.
    Ping,
    /// Send plain bytes in this mode from now on.
    Switch(Mode),
    /// Nothing: the command means nothing in this phase.
    Ignore,
}

/// What `command` means in `phase`; `None` (every command sender gone)
/// means quit.
pub(crate) fn decide(phase: Phase, command: Option<Command>) -> Action {
    let Some(command) = command else {
        return Action::Quit;
    };
    match command {
        Command::Quit => Action::Quit,
        Command::UseText => Action::Switch(Mode::Text),
        Command::UseBinary => Action::Switch(Mode::Binary),
        Command::Ping => match phase {
            Phase::Connected => Action::Ping,
            // A ping needs a connection.
            Phase::Connecting | Phase::Waiting => Action::Ignore,
        },
        Command::Reconnect => match phase {
            Phase::Connected | Phase::Waiting => Action::Reconnect,
            // A new connection is already being made.
            Phase::Connecting => Action::Ignore,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table() {
        use Action::{Ignore, Ping, Quit, Reconnect, Switch};
        use Phase::{Connected, Connecting, Waiting};
        let rows = [
            (Command::Quit, [Quit, Quit, Quit]),
            (Command::Ping, [Ignore, Ignore, Ping]),
            (
                Command::UseText,
                [Switch(Mode::Text), Switch(Mode::Text), Switch(Mode::Text)],
            ),
            (
                Command::UseBinary,
                [
                    Switch(Mode::Binary),
                    Switch(Mode::Binary),
                    Switch(Mode::Binary),
                ],
            ),
            (Command::Reconnect, [Ignore, Reconnect, Reconnect]),
        ];
        for (command, actions) in rows {
            for (phase, action) in [Connecting, Waiting, Connected].into_iter().zip(actions) {
                assert_eq!(
                    decide(phase, Some(command)),
                    action,
                    "{command:?} {phase:?}"
                );
            }
        }
        for phase in [Connecting, Waiting, Connected] {
            assert_eq!(decide(phase, None), Quit, "senders gone while {phase:?}");
        }
    }
}
