//! The `cli` fuzz target's inputs worth keeping, replayed on stable Rust:
//! every file under `fuzz/regressions/cli/` goes through the same checks
//! as under `cargo fuzz` (`fuzz/targets/cli.rs`, included here as it is,
//! with the CLI's modules it includes), so CI keeps the bugs it found
//! fixed without nightly. `fuzz/README.md` says how to fuzz.

#[path = "../../../fuzz/targets/cli.rs"]
mod cli;

use std::path::{Path, PathBuf};

/// The inputs kept for the `cli` target, in name order.
fn inputs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/cli");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    files
}

/// Each input is parsed at once (no I/O, no loop on the input's size), so
/// no bound is needed beyond the test's.
#[test]
fn cli() {
    for path in inputs() {
        eprintln!("{}", path.display());
        cli::check(&std::fs::read(&path).expect("readable"));
    }
}
