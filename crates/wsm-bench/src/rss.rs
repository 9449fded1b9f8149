//! The process's resident memory, as the idle scenario reports it: the
//! `VmRSS` line of `/proc/self/status` (Linux), in KiB.

use std::{fs, io};

use crate::error::Error;

/// The resident set size of this process in KiB.
///
/// # Errors
///
/// [`Error::Rss`] if `/proc/self/status` cannot be read or has no `VmRSS`
/// line (not Linux).
pub(crate) fn rss_kib() -> Result<u64, Error> {
    let status = fs::read_to_string("/proc/self/status").map_err(Error::Rss)?;
    parse_vm_rss(&status).ok_or_else(|| {
        Error::Rss(io::Error::new(
            io::ErrorKind::InvalidData,
            "no VmRSS line in kB",
        ))
    })
}

/// The value of the `VmRSS:  1234 kB` line.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib = line.trim().strip_suffix("kB")?;
    kib.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_vm_rss_line() {
        let status = "Name:\twsm-bench\nVmHWM:\t  9000 kB\nVmRSS:\t    8123 kB\nThreads:\t1\n";
        assert_eq!(parse_vm_rss(status), Some(8123));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_has_some_memory() {
        assert!(rss_kib().expect("Linux /proc") > 0);
    }
}
