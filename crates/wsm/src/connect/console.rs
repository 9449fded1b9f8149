//! Where lines come from and where output goes.
//!
//! With a terminal on stdin and stdout, a line editor (rustyline-async)
//! owns the terminal: it reads typed lines and prints everything else above
//! the line being typed, so status lines never garble it. Otherwise stdin is
//! read line by line on a thread of its own (a blocked read can neither
//! stall the session nor hold up the exit), and output is written straight
//! to stdout and stderr.

use std::{
    io::{self, BufRead, IsTerminal, Write},
    thread,
};

use rustyline_async::{Readline, ReadlineError, ReadlineEvent, SharedWriter};
use tokio::sync::mpsc;

/// Lines read ahead of the session; the stdin thread waits beyond that,
/// which passes the queue's backpressure on to the writer of stdin.
const READ_AHEAD: usize = 64;

/// What the input produced.
#[derive(Debug)]
pub(crate) enum InputEvent {
    /// A line, without its line ending.
    Line(Vec<u8>),
    /// The input ended (end of file, Ctrl-D).
    End,
    /// Ctrl-C typed in the line editor (which keeps the terminal in raw
    /// mode, so it is a key, not a signal).
    Interrupt,
    /// Reading failed.
    Failed(io::Error),
}

enum Input {
    /// `--no-stdin`.
    None,
    Piped(mpsc::Receiver<InputEvent>),
    Editor(Box<Readline>),
}

/// One output stream.
#[derive(Clone)]
enum Sink {
    Stdout,
    Stderr,
    /// Printed by the line editor above the line being typed.
    Editor(SharedWriter),
}

impl Sink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes)?;
                // At once, so `wsm ... | jq --unbuffered` sees each message.
                out.flush()
            }
            Self::Stderr => {
                let mut err = io::stderr().lock();
                err.write_all(bytes)?;
                err.flush()
            }
            Self::Editor(writer) => {
                let mut line = bytes.to_vec();
                // The editor prints whole lines only.
                if !line.ends_with(b"\n") {
                    line.push(b'\n');
                }
                match writer.write_all(&line) {
                    // Its buffer is full (it is read on every turn of the
                    // session's loop, so this is rare): print directly rather
                    // than lose the line.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        // A clone starts with an empty buffer, so the line
                        // is not printed twice.
                        *writer = writer.clone();
                        Sink::Stdout.write(&line)
                    }
                    other => other,
                }
            }
        }
    }
}

/// The session's terminal or pipes.
pub(crate) struct Console {
    input: Input,
    out: Sink,
    err: Sink,
    /// Whether the input is a person at a terminal.
    interactive: bool,
}

impl Console {
    /// Reads stdin (unless `read_stdin` is false) with a line editor when
    /// stdin and stdout are terminals, line by line otherwise.
    ///
    /// # Errors
    ///
    /// The error of starting the thread that reads stdin.
    pub(crate) fn open(read_stdin: bool) -> io::Result<Self> {
        let terminal = io::stdin().is_terminal();
        if !read_stdin {
            return Ok(Self::plain(Input::None, false));
        }
        if terminal && io::stdout().is_terminal() {
            // An unusable terminal (TERM=dumb, no size) falls back to
            // plain lines.
            if let Ok((mut editor, writer)) = Readline::new("> ".into()) {
                // Keep entered lines on screen; drop the half-typed one on
                // Ctrl-C (it would be left without a line end).
                editor.should_print_line_on(true, false);
                let err = if io::stderr().is_terminal() {
                    Sink::Editor(writer.clone())
                } else {
                    Sink::Stderr
                };
                return Ok(Self {
                    input: Input::Editor(Box::new(editor)),
                    out: Sink::Editor(writer),
                    err,
                    interactive: true,
                });
            }
        }
        Ok(Self::plain(Input::Piped(spawn_reader()?), terminal))
    }

    fn plain(input: Input, interactive: bool) -> Self {
        Self {
            input,
            out: Sink::Stdout,
            err: Sink::Stderr,
            interactive,
        }
    }

    /// Whether stdin is a terminal (slash commands are then on).
    pub(crate) fn is_interactive(&self) -> bool {
        self.interactive
    }

    /// Whether the line editor reads the input: it must be polled on every
    /// turn, since that is also when it prints.
    pub(crate) fn has_editor(&self) -> bool {
        matches!(self.input, Input::Editor(_))
    }

    /// Whether there is an input to read at all.
    pub(crate) fn has_input(&self) -> bool {
        !matches!(self.input, Input::None)
    }

    /// The next line or event of the input; never resolves without an
    /// input. Cancel-safe: the editor keeps what was typed, the channel
    /// keeps unread lines.
    pub(crate) async fn next_input(&mut self) -> InputEvent {
        match &mut self.input {
            Input::None => std::future::pending().await,
            Input::Piped(lines) => lines.recv().await.unwrap_or(InputEvent::End),
            Input::Editor(editor) => match editor.readline().await {
                Ok(ReadlineEvent::Line(line)) => {
                    if !line.trim().is_empty() {
                        editor.add_history_entry(line.clone());
                    }
                    InputEvent::Line(line.into_bytes())
                }
                Ok(ReadlineEvent::Eof) | Err(ReadlineError::Closed) => InputEvent::End,
                Ok(ReadlineEvent::Interrupted) => InputEvent::Interrupt,
                Err(ReadlineError::IO(e)) => InputEvent::Failed(e),
            },
        }
    }

    /// Writes a received message's bytes to stdout, flushed.
    ///
    /// # Errors
    ///
    /// The error of writing: `BrokenPipe` when stdout's reader went away.
    pub(crate) fn out(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write(bytes)
    }

    /// Writes one line to stderr. A failure is ignored: there is nowhere
    /// left to report it.
    pub(crate) fn err(&mut self, line: &str) {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        let _ = self.err.write(&bytes);
    }

    /// A writer for log lines, printed like status lines.
    pub(crate) fn log_writer(&self) -> LogWriter {
        LogWriter(self.err.clone())
    }

    /// Prints what the editor still holds and gives the terminal back
    /// (cooked mode); later output goes straight to stdout and stderr.
    pub(crate) fn finish(&mut self) {
        if let Input::Editor(editor) = &mut self.input {
            let _ = editor.flush();
        }
        // Dropping the editor restores the terminal.
        self.input = Input::None;
        self.out = Sink::Stdout;
        self.err = Sink::Stderr;
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Log lines go where status lines go.
#[derive(Clone)]
pub(crate) struct LogWriter(Sink);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Reads stdin line by line on its own thread.
fn spawn_reader() -> io::Result<mpsc::Receiver<InputEvent>> {
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    thread::Builder::new()
        .name("wsm-stdin".into())
        .spawn(move || {
            let mut stdin = io::stdin().lock();
            let mut line = Vec::new();
            loop {
                line.clear();
                let event = match stdin.read_until(b'\n', &mut line) {
                    Ok(0) => InputEvent::End,
                    Ok(_) => {
                        if line.ends_with(b"\n") {
                            line.pop();
                            if line.ends_with(b"\r") {
                                line.pop();
                            }
                        }
                        InputEvent::Line(line.clone())
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => InputEvent::Failed(e),
                };
                let last = !matches!(event, InputEvent::Line(_));
                // An error means the session is gone: stop reading.
                if tx.blocking_send(event).is_err() || last {
                    return;
                }
            }
        })?;
    Ok(rx)
}
