//! The bodies of the fuzz targets, one module per group of targets, each a
//! function from the fuzzer's bytes to nothing that panics when a property
//! fails.
//!
//! They are kept apart from `fuzz_targets/` (libFuzzer's entry points, one
//! line each) so that stable Rust can run them too: the integration tests
//! `crates/ws-machine/tests/fuzz_regressions.rs` and
//! `crates/wsm/tests/fuzz_regressions.rs` include these files with
//! `#[path]` and replay every input under `fuzz/regressions/<target>/`
//! through the same checks, on every CI run, without cargo-fuzz or nightly.
//! So each module depends only on crates those tests have too
//! (`ws-machine`, `tokio`, `base64`, `sha1_smol`, `humantime`), and on no
//! other module here.
//!
//! - `urls`: the `urls` target (the machine's URL, fallback and proxy URLs,
//!   `redact_url`).
//! - `options`: the `options` target (request headers, subprotocols,
//!   `NO_PROXY`, close frames).
//! - `cli`: the `cli` target (`wsm`'s typed lines and flag values).
//! - `machine`: the `machine`, `machine_deflate` and `handshake` targets
//!   (a whole machine against a server sending the fuzzer's bytes).

pub mod cli;
pub mod machine;
pub mod options;
pub mod urls;
