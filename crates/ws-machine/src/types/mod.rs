//! The leaf types: what the caller and the machine exchange, and the
//! machine's URL. Everything else in the crate builds on these; they build on
//! nothing of the crate.

mod command;
mod compression;
mod error;
mod leftovers;
mod message;
mod stats;
mod status;
mod target;

pub use command::{CloseFrame, Command};
pub use compression::Deflate;
pub(crate) use error::with_context;
pub use error::{Cause, Direction, Error, TlsProblem};
pub use leftovers::Leftovers;
pub(crate) use message::Mode;
pub use message::{Kind, Message};
pub use stats::Stats;
pub use status::{State, Status};
pub use target::Endpoint;
pub(crate) use target::Target;
pub use target::redact_url;
