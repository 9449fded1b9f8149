//! `wsm connect`: stdin lines out as messages, messages in on stdout,
//! statuses on stderr, through disconnects.
//!
//! It is ordinary user code of the library: the flags become a
//! [`Builder`](ws_machine::Builder), and one `select!` loop talks to the
//! machine through its four channels.
//!
//! - `args`: the flags, and the one step to [`settings::Settings`].
//! - `settings`: the checked settings and the builder they make.
//! - `values`: the flags' values clap takes as text (headers, durations,
//!   rates, sizes).
//! - `lines`: what a typed line means (a message, a slash command).
//! - `show`: how messages, statuses and notes look.
//! - `console`: the terminal's line editor, or stdin and stdout as pipes.
//! - `header_cmd`: `--header-cmd`, run before each attempt.
//! - `session`: the loop, and when to close.

pub(crate) mod args;
mod console;
mod header_cmd;
mod insecure;
mod lines;
mod session;
mod settings;
mod show;
mod values;

pub(crate) use session::Ending;

use crate::{error::Error, logging};

/// Runs `wsm connect` on a one-thread runtime (see `session` for why one
/// thread).
///
/// # Errors
///
/// The errors of [`args::ConnectArgs::settings`], of starting the runtime
/// or the stdin reader, and of the session.
pub(crate) fn run(args: args::ConnectArgs) -> Result<Ending, Error> {
    let settings = args.settings()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let console = console::Console::open(settings.read_stdin).map_err(Error::Stdin)?;
    // The library's warnings repeat what the status lines say.
    logging::init(console.log_writer(), "warn,ws_machine=error");
    runtime.block_on(session::run(settings, console))
}
