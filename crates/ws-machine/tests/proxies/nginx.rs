//! nginx as a WebSocket reverse proxy on 127.0.0.1, started by the test as
//! a process of its own (no system service, no root needed) and killed when
//! dropped: a temporary directory is its prefix and holds its configuration,
//! its pid file and its temporary paths; its error log goes to stderr and is
//! collected line by line. From the Debian package `nginx` (`.ci/run`
//! installs it); a missing binary fails the test, naming the package.

use std::{
    net::TcpStream,
    path::PathBuf,
    process::Child,
    sync::{Arc, mpsc},
    time::Duration,
};

use super::{Log, collect, free_port, spawn};

/// What nginx logs (at notice level) once its listening sockets are open:
/// the last line of its start-up report, which it prints after binding and
/// before it writes its pid file and starts serving.
const LISTENING: &str = "getrlimit(RLIMIT_NOFILE)";

/// What nginx logs when `proxy_read_timeout` (or `proxy_send_timeout`)
/// ends a proxied WebSocket connection.
pub const UPSTREAM_TIMED_OUT: &str = "upstream timed out";

/// A running nginx; killed (and waited for) when dropped.
pub struct Nginx {
    child: Child,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    /// The configuration it runs, as written.
    pub config: String,
    log: Arc<Log>,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// The WebSocket URL to connect to through nginx.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }

    /// Its error log so far, line by line.
    pub fn log(&self) -> Vec<String> {
        self.log.lines()
    }

    /// Waits (at most 5 s) until at least `n` lines of its log contain
    /// `needle`, and returns them; fails the test otherwise.
    pub fn wait_for_lines(&self, needle: &str, n: usize) -> Vec<String> {
        self.log.wait_for_lines(needle, n)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The nginx binary: on the `PATH`, else where Debian puts it
/// (`/usr/sbin`, which is not on a non-root user's `PATH`).
fn binary() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("nginx"))
        .find(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"))
}

/// The configuration: one process in the foreground, everything it writes
/// inside `dir`, one server on 127.0.0.1:`port` proxying WebSocket
/// connections to 127.0.0.1:`upstream` with these timeouts.
fn config(dir: &str, port: u16, upstream: u16, read: Duration, send: Duration) -> String {
    let (read, send) = (read.as_millis(), send.as_millis());
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log stderr info;

events {{
    worker_connections 256;
}}

http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

    server {{
        listen 127.0.0.1:{port};

        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout {read}ms;
            proxy_send_timeout {send}ms;
        }}
    }}
}}
"#
    )
}

/// nginx on a free port of 127.0.0.1, proxying WebSocket connections to
/// 127.0.0.1:`upstream`, with `proxy_read_timeout` `read` (it drops a
/// connection on which nothing moved for that long) and
/// `proxy_send_timeout` `send`. Returns once it listens (within 5 s, or
/// the test fails with its log).
pub fn nginx(upstream: u16, read: Duration, send: Duration) -> Nginx {
    let binary = binary();
    let binary = binary.to_str().expect("a UTF-8 path");
    // The port was free a moment ago; should another process take it
    // first, nginx says so and exits: try another.
    for _ in 0..3 {
        let dir = tempfile::tempdir().expect("temp dir");
        let prefix = dir.path().to_str().expect("a UTF-8 path").to_owned();
        let port = free_port();
        let config = config(&prefix, port, upstream, read, send);
        let file = format!("{prefix}/nginx.conf");
        std::fs::write(&file, &config).expect("write the configuration");
        // -e: the error log before the configuration is read (the default,
        // /var/log/nginx/error.log, is not writable without root).
        let mut child = spawn(
            binary,
            "nginx",
            &["-p", &prefix, "-c", &file, "-e", "stderr"],
        );
        let (log, ready) = collect(&mut child, Some(LISTENING));
        let mut nginx = Nginx {
            child,
            port,
            config,
            log,
            _dir: dir,
        };
        match ready.recv_timeout(Duration::from_secs(5)) {
            Ok(()) => {
                // Listening already: one connection shows it.
                if let Err(e) = TcpStream::connect_timeout(
                    &([127, 0, 0, 1], port).into(),
                    Duration::from_secs(5),
                ) {
                    panic!(
                        "nginx does not accept on 127.0.0.1:{port}: {e}: {:?}",
                        nginx.log()
                    );
                }
                return nginx;
            }
            // It exited (its output ended without the line).
            Err(mpsc::RecvTimeoutError::Disconnected)
                if nginx
                    .log()
                    .iter()
                    .any(|l| l.contains("Address already in use")) =>
            {
                nginx.stop();
            }
            Err(_) => {
                nginx.stop();
                panic!(
                    "nginx did not start listening on 127.0.0.1:{port}: {:?}",
                    nginx.log()
                );
            }
        }
    }
    panic!("nginx found no free port on 127.0.0.1 in 3 tries");
}
