//! A `wsm` process with its stdin to write to and its stdout and stderr
//! read line by line as they come, every wait bounded by a deadline.

use std::{
    io::{BufRead, BufReader, Read, Write},
    process::{ChildStdin, Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use super::process::Running;

/// The longest any single wait in these tests may take.
pub const LIMIT: Duration = Duration::from_secs(20);

/// The variables `wsm` takes a proxy from (as curl does).
pub const PROXY_VARIABLES: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// A `wsm` command with a clean environment for logging, and no proxy
/// from the environment (the tests' servers are local).
pub fn wsm(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsm"));
    command.args(args).env_remove("RUST_LOG");
    for name in PROXY_VARIABLES {
        command.env_remove(name);
    }
    command
}

/// Lines of one output stream, read on a thread as they come.
pub struct Lines {
    name: &'static str,
    rx: mpsc::Receiver<String>,
    /// Every line received so far.
    pub seen: Vec<String>,
    ended: bool,
}

impl Lines {
    pub fn read(name: &'static str, pipe: impl Read + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = Vec::new();
            while let Ok(n) = reader.read_until(b'\n', &mut line) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&line);
                if tx
                    .send(text.trim_end_matches(['\n', '\r']).to_owned())
                    .is_err()
                {
                    break;
                }
                line.clear();
            }
        });
        Self {
            name,
            rx,
            seen: Vec::new(),
            ended: false,
        }
    }

    /// Waits for the next line that matches, returning it; fails the test
    /// with everything seen if none comes within [`LIMIT`].
    pub fn wait_for(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        self.try_wait_for(matches).unwrap_or_else(|e| {
            panic!(
                "no {what} on {} ({e:?}); seen:\n{}",
                self.name,
                self.seen.join("\n")
            )
        })
    }

    /// Like [`Lines::wait_for`], with the reason as an error: the stream
    /// ended or [`LIMIT`] passed.
    pub fn try_wait_for(
        &mut self,
        matches: impl Fn(&str) -> bool,
    ) -> Result<String, mpsc::RecvTimeoutError> {
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.rx.recv_timeout(left)?;
            self.seen.push(line.clone());
            if matches(&line) {
                return Ok(line);
            }
        }
    }

    /// Reads to the end of the stream (the process has exited, or is about
    /// to), bounded by [`LIMIT`].
    pub fn rest(&mut self) -> &[String] {
        let deadline = Instant::now() + LIMIT;
        while !self.ended {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => self.ended = true,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("{} did not end; seen:\n{}", self.name, self.seen.join("\n"))
                }
            }
        }
        &self.seen
    }
}

/// A running `wsm`.
pub struct Wsm {
    pub child: Running,
    stdin: Option<ChildStdin>,
    pub out: Lines,
    pub err: Lines,
}

impl Wsm {
    /// Starts `wsm args` with all three streams piped.
    pub fn start(args: &[&str]) -> Self {
        let mut command = wsm(args);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = Running(command.spawn().expect("start wsm"));
        let stdin = child.0.stdin.take();
        let out = Lines::read("stdout", child.0.stdout.take().expect("piped stdout"));
        let err = Lines::read("stderr", child.0.stderr.take().expect("piped stderr"));
        Self {
            child,
            stdin,
            out,
            err,
        }
    }

    /// Types a line.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").expect("write to wsm's stdin");
        stdin.flush().expect("flush wsm's stdin");
    }

    /// Ends the input.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The process's id, to signal it.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// Waits for the process to exit, bounded by [`LIMIT`].
    pub fn wait(&mut self) -> ExitStatus {
        wait(&mut self.child, LIMIT)
    }
}

/// Waits for `child` to exit; fails the test if it takes longer than
/// `limit`.
pub fn wait(child: &mut Running, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.0.try_wait().expect("poll the child") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "wsm did not exit within {limit:?}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Sends SIGINT, as Ctrl-C in a terminal does.
#[cfg(unix)]
pub fn interrupt(pid: u32) {
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -INT {pid}: {status}");
}
