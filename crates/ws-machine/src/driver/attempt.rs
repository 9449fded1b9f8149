//! The attempt phase: one connection attempt, served beside commands and
//! the hand-over to the caller.

use tokio::time::{Instant, timeout};

use super::{Driver, Feed, Flow, about};
use crate::{
    connection::engine::Socket,
    handoff::input::room,
    policy::{
        after,
        command::{self, Connecting},
    },
    types::{Error, redact_url},
};

impl Driver {
    /// One connection attempt, and the connection it opens.
    pub(super) async fn attempt(&mut self) -> Flow {
        let socket = match self.handshake().await {
            Ok(socket) => socket,
            Err(flow) => return flow,
        };
        self.connected(socket).await
    }

    /// Opens a connection; how the phase goes on if that fails.
    async fn handshake(&mut self) -> Result<Socket, Flow> {
        let result = match self.request.headers() {
            Ok(headers) => Box::pin(self.open(headers)).await,
            Err(e) => Ok(Err(e)),
        };
        match result {
            Err(flow) => Err(flow),
            Ok(Ok(socket)) => Ok(socket),
            Ok(Err(error)) => {
                tracing::debug!(%error, "attempt failed");
                let url = self.urls.shown();
                let next = self
                    .lifecycle
                    .attempt_failed(error, Instant::now(), &mut |s| {
                        self.status.emit(about(url.as_ref(), s));
                    });
                self.urls.attempt_failed();
                Err(Flow::Go(next))
            }
        }
    }

    /// Opens a connection, bounded by the handshake timeout, while serving
    /// commands; `Err` if told to quit meanwhile.
    async fn open(&mut self, headers: http::HeaderMap) -> Result<Result<Socket, Error>, Flow> {
        // A copy (the attempt's future is boxed): the phase serves commands
        // meanwhile, which needs the whole driver.
        let target = match self.urls.next() {
            Ok(target) => target.clone(),
            Err(error) => return Ok(Err(error)),
        };
        tracing::debug!(url = %redact_url(target.url()), "connecting");
        let limit = self.timeouts.handshake.get();
        let deadline = after(Instant::now(), limit);
        let connector = &self.connector;
        let connect = timeout(limit, connector.connect(&target, &headers, deadline));
        tokio::pin!(connect);
        loop {
            tokio::select! {
                result = &mut connect => {
                    return Ok(result.unwrap_or(Err(Error::HandshakeTimeout(limit))));
                }
                command = self.commands.recv() => match command::connecting(command) {
                    Connecting::Quit => return Err(Flow::Quit { deadline: self.close_deadline() }),
                    Connecting::Finish => Feed::finish(&mut self.output, &mut self.feed),
                    Connecting::Switch(mode) => self.mode = mode,
                    Connecting::Ignore => {}
                },
                () = self.status.drain_one(), if self.status.has_backlog() => {}
                permit = room(&self.inbox.tx), if self.inbox.is_held_up() => {
                    self.inbox.held.give(permit);
                }
            }
        }
    }
}
