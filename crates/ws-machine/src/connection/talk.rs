//! The conversation's state on one open connection: the heartbeat's
//! instants and the ready gate.
//!
//! The settings say what the application says on every connection
//! ([`Conversation`]); this is what one connection has done of it: when the
//! next heartbeat is due and whether the last one was answered, and whether
//! the server has said it is ready. The link asks it what a received message
//! is ([`Talk::heard`]) and what the timer means ([`Talk::on_timer`]). A
//! link holds it boxed, and only when there is a heartbeat or a ready gate.

use tokio::time::Instant;

use crate::{
    policy::{
        heartbeat::{Beat, Heartbeat, Period},
        ready::Gate,
    },
    settings::{self, Conversation, Timeouts},
    types::{Error, Message},
};

/// What a received data message is to the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Heard {
    /// Data for the caller.
    Data,
    /// Data for the caller that made the connection ready.
    Ready,
    /// A reply to the heartbeat: delivered to the caller only if asked;
    /// `sent` is when the heartbeat it answers went out, if one was awaited.
    Reply {
        deliver: bool,
        sent: Option<Instant>,
    },
}

/// One connection's part of the conversation.
#[derive(Debug)]
pub(crate) struct Talk {
    heartbeat: Option<Heartbeat>,
    gate: Gate,
}

fn period(beat: &settings::Heartbeat, timeouts: &Timeouts) -> Period {
    Period {
        every: beat.every,
        timeout: timeouts.pong_timeout.get(),
    }
}

impl Talk {
    /// The state of a connection established at `now`; `None` when there
    /// is neither a heartbeat nor a ready gate.
    pub(crate) fn new(now: Instant, talk: &Conversation, timeouts: &Timeouts) -> Option<Box<Self>> {
        if talk.heartbeat.is_none() && talk.ready.is_none() {
            return None;
        }
        Some(Box::new(Self {
            heartbeat: talk
                .heartbeat
                .as_ref()
                .map(|beat| Heartbeat::new(now, period(beat, timeouts))),
            gate: talk
                .ready
                .as_ref()
                .map_or(Gate::Open, |ready| Gate::closed(now, ready.timeout)),
        }))
    }

    /// Whether the caller's messages may go out.
    pub(crate) fn is_ready(&self) -> bool {
        self.gate.is_open()
    }

    /// When the timer must fire for the heartbeat or the gate.
    pub(crate) fn deadline(&self, talk: &Conversation, timeouts: &Timeouts) -> Option<Instant> {
        let beat = self
            .heartbeat
            .as_ref()
            .zip(talk.heartbeat.as_ref())
            .map(|(state, beat)| state.deadline(period(beat, timeouts)));
        match (beat, self.gate.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The timer fired at `now`: the heartbeat to send, if one is due, or
    /// why the connection is of no use. `reading` is false while the caller
    /// is behind on `input`: an unread reply is not the server's fault.
    pub(crate) fn on_timer<'a>(
        &mut self,
        now: Instant,
        reading: bool,
        talk: &'a Conversation,
        timeouts: &Timeouts,
    ) -> Result<Option<&'a Message>, Error> {
        if let Some(ready) = &talk.ready {
            if !reading && !self.gate.is_open() {
                // The answer may be among what the caller has not read yet:
                // the wait starts again once reading does.
                self.gate = Gate::closed(now, ready.timeout);
            } else if self.gate.expired(now) {
                return Err(Error::ReadyTimeout(ready.timeout));
            }
        }
        let (Some(state), Some(beat)) = (&mut self.heartbeat, &talk.heartbeat) else {
            return Ok(None);
        };
        if !reading {
            state.answered();
        }
        let period = period(beat, timeouts);
        match state.on_timer(now, period) {
            Beat::Rearm(_) => Ok(None),
            Beat::Dead => Err(Error::HeartbeatTimeout(period.timeout)),
            Beat::Send => {
                state.sent(now, period);
                Ok(Some(&beat.message))
            }
        }
    }

    /// A data message arrived: what it is.
    pub(crate) fn heard(&mut self, message: &Message, talk: &Conversation) -> Heard {
        if let (Some(state), Some(beat)) = (&mut self.heartbeat, &talk.heartbeat)
            && let Some(is_reply) = &beat.reply
            && is_reply(message)
        {
            return Heard::Reply {
                deliver: beat.deliver_replies,
                sent: state.answered(),
            };
        }
        if let Some(ready) = &talk.ready
            && !self.gate.is_open()
            && (ready.is_ready)(message)
        {
            self.gate = Gate::Open;
            return Heard::Ready;
        }
        Heard::Data
    }

    /// Something arrived (any frame): without a matcher, it answers the
    /// heartbeat.
    pub(crate) fn received(&mut self, talk: &Conversation) {
        if let (Some(state), Some(beat)) = (&mut self.heartbeat, &talk.heartbeat)
            && beat.reply.is_none()
        {
            state.answered();
        }
    }
}
