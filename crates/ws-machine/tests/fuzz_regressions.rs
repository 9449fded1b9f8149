//! The fuzz targets' inputs worth keeping, replayed on stable Rust: every
//! file under `fuzz/regressions/<target>/` (inputs that found a bug, and a
//! few seeds that reach deep) goes through the same checks as under
//! `cargo fuzz` (`fuzz/targets/`, included here as they are), so CI keeps
//! the bugs fixed without nightly. `fuzz/README.md` says how to fuzz, and
//! what each input found.

// Without compression only the `machine` target runs.
#[cfg_attr(not(feature = "deflate"), allow(dead_code))]
#[path = "../../../fuzz/targets/machine.rs"]
mod machine;
#[path = "../../../fuzz/targets/options.rs"]
mod options;
#[path = "../../../fuzz/targets/urls.rs"]
mod urls;

use std::{
    path::{Path, PathBuf},
    sync::mpsc,
    thread,
    time::Duration,
};

/// A target's body: panics when a property fails.
type Check = fn(&[u8]);

/// How long one input may take (real time; the machine targets run on a
/// paused clock and take milliseconds).
const BOUND: Duration = Duration::from_secs(60);

/// The inputs in `fuzz/regressions/<target>/`, in name order.
fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    files
}

/// Whether `check` passes on the input in `path`, on a thread of its own
/// within [`BOUND`] (a panic is a failure, and so is a hang).
fn passes(path: &Path, check: Check) -> bool {
    let data = std::fs::read(path).expect("readable");
    let (done, finished) = mpsc::channel();
    let worker = thread::spawn(move || {
        check(&data);
        let _ = done.send(());
    });
    match finished.recv_timeout(BOUND) {
        Ok(()) => worker.join().is_ok(),
        // The check panicked: its message is above.
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let _ = worker.join();
            false
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            eprintln!("{} takes more than {BOUND:?}", path.display());
            false
        }
    }
}

/// Runs every input kept for `target` through `check`; the first failure
/// names its file.
fn replay(target: &str, check: Check) {
    for path in inputs(target) {
        assert!(passes(&path, check), "{} fails", path.display());
    }
}

#[test]
fn urls() {
    replay("urls", urls::check);
}

#[test]
fn options() {
    replay("options", options::check);
}

#[test]
fn machine() {
    replay("machine", machine::plain);
}

#[cfg(feature = "deflate")]
#[test]
fn machine_deflate() {
    replay("machine_deflate", machine::deflate);
}

/// Half of these inputs offer compression.
#[cfg(feature = "deflate")]
#[test]
fn handshake() {
    replay("handshake", machine::handshake);
}
