//! Stopping: everything the machine still has goes to the caller or back
//! in the [`Leftovers`], within one deadline.

use tokio::time::{Instant, timeout_at};

use super::Driver;
use crate::{channel::TryRecvError, types::Leftovers};

impl Driver {
    /// Stops the machine by `deadline`. Received messages still held go to
    /// `input` as far as the caller makes room; `quit` says whether the
    /// caller asked for the stop (its final status is reported here; a final
    /// error's was reported already).
    pub(super) async fn stop(mut self, deadline: Instant, quit: bool) -> Leftovers {
        self.inbox.hand_over_held(deadline).await;
        if quit {
            let last = self.lifecycle.quit();
            self.status.emit(last);
        }
        // After `close`, a sender that already holds a slot may still
        // complete its send. What is queued is taken whatever the time; only
        // such a slot is waited for, until the deadline.
        self.output.close();
        let mut queued = Vec::new();
        loop {
            match self.output.try_recv() {
                Ok(message) => queued.push(message),
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => match timeout_at(deadline, self.output.recv()).await {
                    Ok(Some(message)) => queued.push(message),
                    Ok(None) => break,
                    Err(_) => {
                        tracing::debug!("a reserved output slot was never used");
                        break;
                    }
                },
            }
        }
        let undelivered = self.outbox.into_undelivered();
        let mut unsent = undelivered.unsent;
        unsent.extend(queued);
        Leftovers {
            unsent,
            unacknowledged: undelivered.unacknowledged,
            received: self.inbox.into_leftovers(),
            refused: self.status.into_refused(),
        }
    }
}
