//! The waiting phase: the pause between attempts (a backoff, or the wait
//! for a reconnect budget's turn), served beside commands and the hand-over
//! to the caller.

use std::time::Duration;

use tokio::time::{Instant, sleep};

use super::{Driver, Feed, Flow};
use crate::{
    handoff::input::room,
    policy::command::{self, Waiting},
};

impl Driver {
    /// The wait between attempts; `Reconnect` ends a backoff early, not the
    /// wait for a budget's turn (that would break the budget's promise to
    /// the server).
    pub(super) async fn wait(&mut self, delay: Duration) -> Flow {
        let timer = sleep(delay);
        tokio::pin!(timer);
        loop {
            tokio::select! {
                () = &mut timer => break,
                command = self.commands.recv() => match command::waiting(command) {
                    Waiting::Quit => return Flow::Quit { deadline: self.close_deadline() },
                    Waiting::Reconnect if self.lifecycle.waits_for_turn() => {}
                    Waiting::Reconnect => break,
                    Waiting::Finish => Feed::finish(&mut self.output, &mut self.feed),
                    Waiting::Switch(mode) => self.mode = mode,
                    Waiting::Ignore => {}
                },
                () = self.status.drain_one(), if self.status.has_backlog() => {}
                permit = room(&self.inbox.tx), if self.inbox.is_held_up() => {
                    self.inbox.held.give(permit);
                }
            }
        }
        Flow::Go(
            self.lifecycle
                .wait_over(Instant::now(), &mut |s| self.status.emit(s)),
        )
    }
}
