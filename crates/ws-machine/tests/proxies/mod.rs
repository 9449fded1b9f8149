//! Real proxies, started by the tests on 127.0.0.1 and stopped (killed)
//! when dropped: tinyproxy (HTTP CONNECT, Basic authentication) and
//! microsocks (SOCKS5, user name and password), from their Debian packages
//! (`.ci/run` installs them), and nginx as a WebSocket reverse proxy
//! ([`nginx`]). A missing binary fails the test, naming the package.

// Each test file is its own crate and uses a different subset of these.
#![allow(dead_code)]

pub mod nginx;

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    process::{Child, Command, Stdio},
    sync::{Arc, Condvar, Mutex, mpsc},
    time::Duration,
};

/// The user name and password the proxies accept.
pub const USER: &str = "alice";
pub const PASSWORD: &str = "pr0xy-s3cret";

/// A running proxy; killed when dropped.
pub struct Proxy {
    child: Child,
    pub port: u16,
    scheme: &'static str,
    /// What the proxy printed, line by line (tinyproxy's log).
    log: Arc<Log>,
    _dir: tempfile::TempDir,
}

impl Proxy {
    /// The proxy's URL with the right credentials.
    pub fn url(&self) -> String {
        self.url_with(USER, PASSWORD)
    }

    /// The proxy's URL with these credentials.
    pub fn url_with(&self, user: &str, password: &str) -> String {
        format!(
            "{}://{user}:{password}@127.0.0.1:{}",
            self.scheme, self.port
        )
    }

    /// The proxy's URL for another scheme it speaks (`socks5` or
    /// `socks5h` for microsocks).
    pub fn url_as(&self, scheme: &str) -> String {
        format!("{scheme}://{USER}:{PASSWORD}@127.0.0.1:{}", self.port)
    }

    /// The lines logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lines()
    }

    /// Waits (at most 5 s) until the log's lines that contain `needle`
    /// number at least `n`, and returns them; fails the test otherwise. The
    /// proxy writes its log on its own schedule, after it has served the
    /// request. (A blocking wait: the proxy is another process, nothing in
    /// the test needs to run meanwhile.)
    pub fn wait_for_lines(&self, needle: &str, n: usize) -> Vec<String> {
        self.log.wait_for_lines(needle, n)
    }

    /// Stops the proxy now: every tunnel through it breaks.
    pub fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child's output lines, and a signal for each one added.
#[derive(Default)]
struct Log {
    lines: Mutex<Vec<String>>,
    added: Condvar,
}

impl Log {
    /// The lines logged so far.
    fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// See [`Proxy::wait_for_lines`].
    fn wait_for_lines(&self, needle: &str, n: usize) -> Vec<String> {
        let matching = |lines: &Vec<String>| -> Vec<String> {
            lines
                .iter()
                .filter(|line| line.contains(needle))
                .cloned()
                .collect()
        };
        let Ok(lines) = self.lines.lock() else {
            panic!("the log's lock is poisoned");
        };
        let (lines, _) = self
            .added
            .wait_timeout_while(lines, Duration::from_secs(5), |lines| {
                matching(lines).len() < n
            })
            .unwrap_or_else(|_| panic!("the log's lock is poisoned"));
        let found = matching(&lines);
        assert!(
            found.len() >= n,
            "{n} line(s) with {needle:?} not logged within 5 s: {:?}",
            *lines
        );
        found
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

fn spawn(binary: &str, package: &str, args: &[&str]) -> Child {
    Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {binary} ({e}): install the Debian package `{package}` \
                 (apt-get install {package}; .ci/run does)"
            )
        })
}

/// Collects the child's output lines; `ready` gets a message when a line
/// contains `marker`.
fn collect(child: &mut Child, marker: Option<&'static str>) -> (Arc<Log>, mpsc::Receiver<()>) {
    let log = Arc::new(Log::default());
    let (ready, is_ready) = mpsc::channel();
    let streams: Vec<Box<dyn std::io::Read + Send>> = vec![
        Box::new(child.stdout.take().expect("stdout")),
        Box::new(child.stderr.take().expect("stderr")),
    ];
    for stream in streams {
        let (log, ready) = (Arc::clone(&log), ready.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if marker.is_some_and(|m| line.contains(m)) {
                    let _ = ready.send(());
                }
                if let Ok(mut lines) = log.lines.lock() {
                    lines.push(line);
                }
                log.added.notify_all();
            }
        });
    }
    (log, is_ready)
}

/// tinyproxy on `port`, requiring [`USER`] and [`PASSWORD`]; returns once
/// it accepts connections.
pub fn tinyproxy(port: u16) -> Proxy {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("tinyproxy.conf");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 64\nLogLevel Info\n\
             BasicAuth {USER} {PASSWORD}\nDisableViaHeader Yes\n"
        ),
    )
    .expect("write the configuration");
    let config = config.to_str().expect("a UTF-8 path").to_owned();
    let mut child = spawn("tinyproxy", "tinyproxy", &["-d", "-c", &config]);
    let (log, ready) = collect(&mut child, Some("Accepting connections"));
    let proxy = Proxy {
        child,
        port,
        scheme: "http",
        log,
        _dir: dir,
    };
    assert!(
        ready.recv_timeout(Duration::from_secs(5)).is_ok(),
        "tinyproxy did not start listening on 127.0.0.1:{port}: {:?}",
        proxy.log()
    );
    proxy
}

/// microsocks on `port`, requiring [`USER`] and [`PASSWORD`]. It prints
/// nothing when it is ready: the machines under test retry until it
/// answers.
pub fn microsocks(port: u16) -> Proxy {
    let dir = tempfile::tempdir().expect("temp dir");
    let port_text = port.to_string();
    let mut child = spawn(
        "microsocks",
        "microsocks",
        &[
            "-i",
            "127.0.0.1",
            "-p",
            &port_text,
            "-u",
            USER,
            "-P",
            PASSWORD,
        ],
    );
    let (log, _) = collect(&mut child, None);
    Proxy {
        child,
        port,
        scheme: "socks5h",
        log,
        _dir: dir,
    }
}

/// What tinyproxy logs for a CONNECT request.
pub const CONNECT: &str = "): CONNECT ";
