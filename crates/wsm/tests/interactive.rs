//! `wsm` in a pseudo-terminal, typed at like a person would, with the
//! screen rendered by a terminal emulator (vt100) to check what a person
//! sees: typing works, slash commands work, and lines printed while
//! something is half-typed go above it without garbling it.
#![cfg(unix)]

mod support;

use std::{
    io::{Read, Write},
    num::NonZeroU16,
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use portable_pty::{Child, CommandBuilder, PtySize, native_pty_system};
use support::{child::LIMIT, local::Local};

const ROWS: u16 = 40;
const COLS: u16 = 120;

/// The terminal: what `wsm` wrote, rendered.
struct Screen {
    parser: vt100::Parser,
    output: mpsc::Receiver<Vec<u8>>,
}

impl Screen {
    /// The rows as text, trailing spaces removed.
    fn rows(&self) -> Vec<String> {
        self.parser
            .screen()
            .rows(0, COLS)
            .map(|row| row.trim_end().to_owned())
            .collect()
    }

    /// The row the cursor is on: the line being typed.
    fn cursor_row(&self) -> String {
        let (row, _) = self.parser.screen().cursor_position();
        self.rows()[usize::from(row)].clone()
    }

    /// Feeds output until `ready` holds for the screen; fails the test with
    /// the screen if that takes longer than [`LIMIT`].
    fn wait_until(&mut self, what: &str, ready: impl Fn(&Screen) -> bool) {
        let deadline = Instant::now() + LIMIT;
        while !ready(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.parser.process(&bytes),
                Err(e) => panic!("{what}: not on screen ({e:?}):\n{}", self.rows().join("\n")),
            }
        }
    }

    fn count(&self, needle: &str) -> usize {
        self.rows()
            .iter()
            .filter(|row| row.contains(needle))
            .count()
    }

    fn has_row(&self, row: &str) -> bool {
        self.rows().iter().any(|r| r == row)
    }
}

/// Kills `wsm` when the test ends, also when it fails.
struct Running(Box<dyn Child + Send + Sync>);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn typing_slash_commands_and_lines_printed_above_the_input() {
    let server = Local::start();
    let url = server.url();
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: ROWS,
            cols: COLS,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("open a pseudo-terminal");
    let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_wsm"));
    // The server is local: no proxy from the environment.
    for name in support::child::PROXY_VARIABLES {
        command.env_remove(name);
    }
    command.args([
        url.as_str(),
        // Only /ping sends pings here; an unanswered one is noticed quickly.
        "--ping-interval",
        "1h",
        "--pong-timeout",
        "300ms",
        "--min-uptime",
        "0s",
    ]);
    command.env("TERM", "xterm-256color");
    command.env_remove("RUST_LOG");
    let mut wsm = Running(pair.slave.spawn_command(command).expect("start wsm"));
    drop(pair.slave);

    let mut reader = pair.master.try_clone_reader().expect("read the terminal");
    let (tx, output) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut keyboard = pair.master.take_writer().expect("write to the terminal");
    let mut type_keys = |keys: &str| {
        keyboard.write_all(keys.as_bytes()).expect("type");
        keyboard.flush().expect("flush");
    };
    let mut screen = Screen {
        parser: vt100::Parser::new(
            NonZeroU16::new(ROWS).expect("rows"),
            NonZeroU16::new(COLS).expect("columns"),
            0,
        ),
        output,
    };

    screen.wait_until("CONNECTED and the prompt", |s| {
        s.count(&format!(" CONNECTED {url}")) == 1 && s.cursor_row() == ">"
    });

    // A line typed is sent; its echo is printed.
    type_keys("hello\r");
    screen.wait_until("the echo of hello", |s| s.has_row("hello"));

    // /binary: lines go out as binary and come back binary.
    type_keys("/binary\r");
    screen.wait_until("the mode note", |s| {
        s.count("lines are sent as binary") == 1
    });
    type_keys("abc\r");
    screen.wait_until("the binary echo", |s| s.has_row("base64:YWJj"));
    type_keys("/text\r");
    screen.wait_until("the mode note", |s| s.count("lines are sent as text") == 1);

    // Half a line typed, then the server pushes a message: it is printed
    // above, and the half-typed line is intact on the cursor's row.
    type_keys("half-typed");
    screen.wait_until("the typed text", |s| s.cursor_row() == "> half-typed");
    server.server().send_all("pushed by the server");
    screen.wait_until("the pushed message above the input", |s| {
        s.has_row("pushed by the server") && s.cursor_row() == "> half-typed"
    });
    // A status line while typing: the same.
    server.server().close_all();
    screen.wait_until("the reconnect above the input", |s| {
        s.count(" CONNECTED ") == 2 && s.cursor_row() == "> half-typed"
    });
    assert!(
        !screen
            .rows()
            .iter()
            .any(|row| row.contains("half-typed") && row != "> half-typed"),
        "garbled:\n{}",
        screen.rows().join("\n")
    );
    // Finishing the line sends all of it.
    type_keys(" line\r");
    screen.wait_until("the echo of the whole line", |s| {
        s.has_row("half-typed line")
    });

    // /ping: the server is frozen, so the ping goes unanswered and the
    // connection is declared dead (pings are otherwise an hour apart).
    server.server().freeze_all();
    type_keys("/ping\r");
    screen.wait_until("the dead connection", |s| {
        s.count("no answer to ping within 300ms") == 1 && s.count(" CONNECTED ") == 3
    });

    // /reconnect: a new connection at once.
    type_keys("/reconnect\r");
    screen.wait_until("the new connection", |s| s.count(" CONNECTED ") == 4);
    server.wait_for_connections(4);

    // An unknown command is not sent.
    type_keys("/nope\r");
    screen.wait_until("the warning", |s| s.count("unknown command /nope") == 1);

    // /quit: close cleanly and exit 0.
    type_keys("/quit\r");
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = wsm.0.try_wait().expect("poll wsm") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "wsm did not exit:\n{}",
            screen.rows().join("\n")
        );
        // Keep rendering, so that a failure shows the last screen.
        if let Ok(bytes) = screen.output.recv_timeout(Duration::from_millis(50)) {
            screen.parser.process(&bytes);
        }
    };
    assert!(
        status.success(),
        "{status:?}:\n{}",
        screen.rows().join("\n")
    );
    // Nothing typed reached the server as a message but the lines.
    let texts: Vec<String> = server
        .server()
        .received()
        .into_iter()
        .map(|r| String::from_utf8_lossy(r.data.as_bytes()).into_owned())
        .collect();
    assert_eq!(texts, ["hello", "abc", "half-typed line"]);
}
