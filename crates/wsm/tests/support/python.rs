//! The independent peer: `tests/peers/echo.py`, on Python's `websockets`
//! (installed by `.ci/run`). A missing install fails the test and says how
//! to fix it; it never skips.

use std::process::{Command, Stdio};

use super::{child::Lines, process::Running};

/// The Python echo peer, stopped when dropped.
pub struct Peer {
    /// Dropped first: closing its stdin makes the peer exit.
    child: Running,
    pub url: String,
    pub port: u16,
    /// `closed CODE` lines, one per connection that ended.
    pub events: Lines,
}

impl Peer {
    pub fn start() -> Self {
        Self::script("echo.py", &[])
    }

    /// A peer of `tests/peers/`, with these arguments; it prints
    /// `listening PORT` when it is ready.
    pub fn script(name: &str, args: &[&str]) -> Self {
        let script = format!("{}/tests/peers/{name}", env!("CARGO_MANIFEST_DIR"));
        let mut child = Running(
            Command::new("python3")
                .arg(script)
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("python3 is needed for the independent peer (tests/peers/echo.py)"),
        );
        let mut events = Lines::read(
            "the Python peer's stdout",
            child.0.stdout.take().expect("piped"),
        );
        let mut errors = Lines::read(
            "the Python peer's stderr",
            child.0.stderr.take().expect("piped"),
        );
        let Ok(line) = events.try_wait_for(|l| l.starts_with("listening ")) else {
            let said = errors.rest().join("\n");
            if said.contains("No module named 'websockets'") {
                panic!(
                    "the Python package `websockets` is not installed: run \
                     `python3 -m pip install websockets` (.ci/run does)\n{said}"
                );
            }
            panic!("the Python peer did not start:\n{said}");
        };
        let port: u16 = line["listening ".len()..].parse().expect("a port number");
        Self {
            child,
            url: format!("ws://127.0.0.1:{port}/"),
            port,
            events,
        }
    }

    /// Waits for the next connection to end; its close code.
    pub fn next_close_code(&mut self) -> u16 {
        let line = self
            .events
            .wait_for("closed line", |l| l.starts_with("closed "));
        line["closed ".len()..].parse().expect("a close code")
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Closing stdin ends the peer; `Running` kills it if it lingers.
        drop(self.child.0.stdin.take());
    }
}
