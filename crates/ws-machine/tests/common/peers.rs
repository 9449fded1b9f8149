//! Independent peers run as processes: Node's `ws` (`tests/peers/*.js`,
//! installed with `npm ci` in `tests/peers` by `.ci/run`) and Python's
//! `websockets` (installed with pip by `.ci/run`). Each prints `listening
//! PORT` once it listens on 127.0.0.1, and may print more lines later. A
//! missing install fails the test and says how to fix it; it never skips.

use std::process::Stdio;

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines},
    process::{Child, ChildStdout, Command},
    time::timeout,
};

use super::WAIT;

/// A running peer process, killed when dropped.
pub struct PeerProcess {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    pub url: String,
    pub port: u16,
}

impl PeerProcess {
    /// Starts `tests/peers/{script}` on a free port of 127.0.0.1, with
    /// `args` after the port, and waits until it listens.
    pub async fn node(script: &str, args: &[&str]) -> Self {
        Self::node_on(script, 0, args).await
    }

    /// [`PeerProcess::node`] on `port` (0: a free one).
    pub async fn node_on(script: &str, port: u16, args: &[&str]) -> Self {
        let peers = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers");
        assert!(
            std::path::Path::new(peers).join("node_modules/ws").is_dir(),
            "Node's `ws` is not installed for the test peers: run `npm ci --prefix {peers}` \
             (.ci/run does)"
        );
        let mut command = Command::new("node");
        command
            .arg(format!("{peers}/{script}"))
            .arg(port.to_string())
            .args(args)
            .current_dir(peers);
        Self::spawn(
            script,
            command,
            "node is needed for the Node test peers (.ci/run installs it)",
        )
        .await
    }

    /// Runs Python `code` (a server on Python's `websockets`) with `args`.
    pub async fn python(what: &str, code: &str, args: &[&str]) -> Self {
        let mut command = Command::new("python3");
        command.arg("-c").arg(code).args(args);
        Self::spawn(
            what,
            command,
            "python3 with websockets is needed (.ci/run installs it: pip install websockets)",
        )
        .await
    }

    async fn spawn(what: &str, mut command: Command, missing: &str) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect(missing);
        let mut stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        let read = timeout(WAIT, stdout.next_line()).await;
        let line = match &read {
            Ok(Ok(Some(line))) => line.clone(),
            _ => String::new(),
        };
        let Some(port) = line.trim().strip_prefix("listening ") else {
            let mut said = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = timeout(WAIT, stderr.read_to_string(&mut said)).await;
            }
            panic!("the peer {what} did not start ({read:?}):\n{said}");
        };
        let port: u16 = port.parse().expect("a port number");
        Self {
            child,
            stdout,
            url: format!("ws://127.0.0.1:{port}/"),
            port,
        }
    }

    /// Sends the process a signal (`STOP`, `CONT`, ...).
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("the peer runs");
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid}: {status}");
    }

    /// Kills the process and waits until it is gone (its port is free).
    pub async fn kill(mut self) {
        let _ = timeout(WAIT, self.child.kill()).await;
    }

    /// The next line the peer prints, within [`WAIT`].
    pub async fn line(&mut self) -> String {
        match timeout(WAIT, self.stdout.next_line()).await {
            Ok(Ok(Some(line))) => line,
            other => panic!("the peer printed no line within {WAIT:?}: {other:?}"),
        }
    }
}
