//! Independent peers on Node's `ws` (`tests/peers/*.js`, installed with
//! `npm ci` in `tests/peers` by `.ci/run`). A missing install fails the
//! test and says how to fix it; it never skips.

use std::process::Stdio;

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader},
    process::{Child, Command},
    time::timeout,
};

use super::WAIT;

/// A running Node peer, killed when dropped.
pub struct NodePeer {
    _child: Child,
    pub url: String,
}

impl NodePeer {
    /// Starts `tests/peers/{script}` on a free port of 127.0.0.1 and waits
    /// until it listens.
    pub async fn start(script: &str) -> Self {
        let peers = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers");
        assert!(
            std::path::Path::new(peers).join("node_modules/ws").is_dir(),
            "Node's `ws` is not installed for the test peers: run `npm ci --prefix {peers}` \
             (.ci/run does)"
        );
        let mut child = Command::new("node")
            .arg(format!("{peers}/{script}"))
            .arg("0")
            .current_dir(peers)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node is needed for the Node test peers (.ci/run installs it)");
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        let read = timeout(WAIT, BufReader::new(stdout).read_line(&mut line)).await;
        let Some(port) = line.trim().strip_prefix("listening ") else {
            let mut said = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = timeout(WAIT, stderr.read_to_string(&mut said)).await;
            }
            panic!("the Node peer {script} did not start ({read:?}, {line:?}):\n{said}");
        };
        let port: u16 = port.parse().expect("a port number");
        Self {
            _child: child,
            url: format!("ws://127.0.0.1:{port}/"),
        }
    }
}
