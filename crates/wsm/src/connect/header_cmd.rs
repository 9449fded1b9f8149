//! `--header-cmd`: a command run before every connection attempt, whose
//! output lines are request headers (tokens that expire).
//!
//! The library asks for headers on the machine's task, right before each
//! attempt, and the answer must be fresh: a token fetched at the previous
//! attempt may be hours old and rejected with a final 401. So the command
//! runs right there, synchronously, bounded by [`LIMIT`] (killed beyond it).
//! The session runs on one thread, so nothing is printed or read while the
//! command runs; that is only ever between attempts, while no connection is
//! up, and typed lines wait in the terminal meanwhile. A run that fails
//! reuses the last good headers and says so in a warning.

use std::{
    io::Read,
    process::{Command, Stdio},
    sync::{Mutex, PoisonError, mpsc as sync_mpsc},
    thread,
    time::{Duration, Instant},
};

use tokio::sync::mpsc;
use wait_timeout::ChildExt as _;
use ws_machine::http::{HeaderMap, HeaderName, HeaderValue};

use crate::error::{Error, chain};

/// How long one run may take.
pub(crate) const LIMIT: Duration = Duration::from_secs(5);

/// The command, and what its runs produced.
pub(crate) struct HeaderCmd {
    command: String,
    /// The first run's headers (made at start, to fail early), for the
    /// first attempt.
    first: Mutex<Option<HeaderMap>>,
    /// The headers of the last run that worked.
    last_good: Mutex<HeaderMap>,
    /// Warnings for the session to print.
    notes: mpsc::UnboundedSender<String>,
}

impl HeaderCmd {
    /// Runs `command` once.
    ///
    /// # Errors
    ///
    /// The run's error: the command cannot start, fails, takes longer than
    /// [`LIMIT`], or prints something that is not a header.
    pub(crate) fn start(
        command: String,
        notes: mpsc::UnboundedSender<String>,
    ) -> Result<Self, Error> {
        let headers = run(&command, LIMIT)?;
        Ok(Self {
            command,
            first: Mutex::new(Some(headers.clone())),
            last_good: Mutex::new(headers),
            notes,
        })
    }

    /// The headers of the next attempt: the first run's for the first one,
    /// a new run's for every later one.
    pub(crate) fn headers(&self) -> HeaderMap {
        if let Some(first) = lock(&self.first).take() {
            return first;
        }
        match run(&self.command, LIMIT) {
            Ok(headers) => {
                lock(&self.last_good).clone_from(&headers);
                headers
            }
            Err(e) => {
                let _ = self.notes.send(format!(
                    "--header-cmd failed, so this attempt uses the headers of its last good run: {}",
                    chain(&e)
                ));
                lock(&self.last_good).clone()
            }
        }
    }
}

/// A lock that a panic elsewhere cannot make unusable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn shell(command: &str) -> Command {
    #[cfg(windows)]
    let mut shell = {
        let mut c = Command::new("cmd");
        c.arg("/C");
        c
    };
    #[cfg(not(windows))]
    let mut shell = {
        let mut c = Command::new("sh");
        c.arg("-c");
        c
    };
    shell.arg(command);
    shell
}

/// Reads a pipe to its end on a thread, so that neither pipe can fill up
/// and stall the command.
fn read_all(mut pipe: impl Read + Send + 'static) -> sync_mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = sync_mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = tx.send(bytes);
    });
    rx
}

/// Runs the command once, within `limit`.
fn run(command: &str, limit: Duration) -> Result<HeaderMap, Error> {
    let deadline = Instant::now() + limit;
    let mut child = shell(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Error::HeaderCmdStart)?;
    let stdout = child.stdout.take().map(read_all);
    let stderr = child.stderr.take().map(read_all);
    let status = match child.wait_timeout(limit).map_err(Error::HeaderCmdStart)? {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::HeaderCmdTimeout(limit));
        }
    };
    // The command has exited; a process it left behind may still hold the
    // pipes, so these waits are bounded too.
    let left = || deadline.saturating_duration_since(Instant::now());
    let stdout = stdout
        .and_then(|rx| rx.recv_timeout(left()).ok())
        .unwrap_or_default();
    if !status.success() {
        let stderr = stderr
            .and_then(|rx| rx.recv_timeout(left()).ok())
            .unwrap_or_default();
        let said = String::from_utf8_lossy(&stderr);
        return Err(Error::HeaderCmdFailed {
            status: status.to_string(),
            stderr: said.lines().last().unwrap_or_default().trim().to_owned(),
        });
    }
    parse(&stdout)
}

/// Each non-empty line is `Name: value`. Errors never include a value.
fn parse(output: &[u8]) -> Result<HeaderMap, Error> {
    let bad = |line: usize, reason: &str| Error::HeaderCmdOutput {
        line,
        reason: reason.to_owned(),
    };
    let text = std::str::from_utf8(output).map_err(|_| bad(0, "the output is not UTF-8"))?;
    let mut headers = HeaderMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad(n + 1, "expected 'Name: value'"))?;
        let name =
            HeaderName::try_from(name.trim()).map_err(|_| bad(n + 1, "not a valid header name"))?;
        let value = HeaderValue::try_from(value.trim())
            .map_err(|_| bad(n + 1, "the value has characters HTTP does not allow"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn output_lines_are_headers() {
        let headers = run("printf 'X-Token: t1\\r\\n\\nX-Other:two\\n'", LIMIT).expect("runs");
        assert_eq!(headers["x-token"], "t1");
        assert_eq!(headers["x-other"], "two");
    }

    #[test]
    fn failures_say_why_without_showing_values() {
        let err = run("echo 'X-Token secret-value'", LIMIT).expect_err("no colon");
        let text = chain(&err);
        assert!(text.contains("line 1: expected 'Name: value'"), "{text}");
        assert!(!text.contains("secret-value"), "{text}");

        let err = run("echo boom >&2; exit 3", LIMIT).expect_err("fails");
        let text = chain(&err);
        assert!(
            text.contains("exit status: 3") && text.contains("boom"),
            "{text}"
        );

        let err = run("sleep 5", Duration::from_millis(100)).expect_err("too slow");
        assert!(matches!(err, Error::HeaderCmdTimeout(_)), "{err}");
    }

    #[test]
    fn a_failed_run_reuses_the_last_good_headers_and_warns() {
        let dir = tempfile::tempdir().expect("temp dir");
        let flag = dir.path().join("fail");
        let command = format!(
            "if [ -e '{}' ]; then exit 1; fi; echo 'X-Token: good'",
            flag.display()
        );
        let (tx, mut rx) = mpsc::unbounded_channel();
        let cmd = HeaderCmd::start(command, tx).expect("first run works");
        assert_eq!(cmd.headers()["x-token"], "good");
        std::fs::write(&flag, "").expect("create the flag");
        assert_eq!(cmd.headers()["x-token"], "good");
        let note = rx.try_recv().expect("a warning");
        assert!(note.contains("--header-cmd failed"), "{note}");
    }
}
