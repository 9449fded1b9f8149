//! Capturing what this thread logs, for tests that look at the logs.

use std::sync::{Arc, Mutex};

use tracing_subscriber::filter::LevelFilter;

/// A writer into a shared buffer, for the logs.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut logs) = self.0.lock() {
            logs.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Captures what this thread logs at `level` and above, from `targets`
    /// (all crates when empty), until the guard is dropped.
    pub fn capture(&self, level: LevelFilter, targets: &str) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let filter = if targets.is_empty() {
            tracing_subscriber::EnvFilter::new(level.to_string())
        } else {
            tracing_subscriber::EnvFilter::new(format!("{targets}={level}"))
        };
        tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish(),
        )
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("logs")).into_owned()
    }
}
