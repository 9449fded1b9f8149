//! Exit codes: what each one means, in one place, so `--help`, the README
//! and the code that picks them cannot disagree.

use std::process::ExitCode;

/// How `wsm` ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Done: the input ended, everything was delivered and the close was
    /// clean; or `-n` was reached; or stdout's reader went away.
    Success,
    /// Any other error.
    Failure,
    /// Bad usage: a flag, URL, header or file that cannot work.
    Usage,
    /// The server refused the handshake with a status that is not retried,
    /// or closed with a code of `--final-close`.
    Rejected,
    /// `--max-retries` attempts failed in a row.
    GaveUp,
    /// The input ended but some messages were not delivered.
    Undelivered,
    /// `--once`: the connection ended, or its attempt failed.
    Ended,
    /// Ctrl-C.
    Interrupted,
}

impl Exit {
    /// Every exit, in the order of the table.
    pub(crate) const ALL: [Exit; 8] = [
        Exit::Success,
        Exit::Failure,
        Exit::Usage,
        Exit::Rejected,
        Exit::GaveUp,
        Exit::Undelivered,
        Exit::Ended,
        Exit::Interrupted,
    ];

    /// The process's exit status. 2 is clap's own for bad flags; 130 is the
    /// shells' 128 + SIGINT.
    pub(crate) fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::Rejected => 3,
            Exit::GaveUp => 4,
            Exit::Undelivered => 5,
            Exit::Ended => 6,
            Exit::Interrupted => 130,
        }
    }

    fn meaning(self) -> &'static str {
        match self {
            Exit::Success => {
                "stdin ended, everything was delivered and the close was clean; or -n was \
                 reached; or stdout's reader went away (e.g. `| head`)"
            }
            Exit::Failure => "any other error (reading stdin, --header-cmd failing at start, TLS)",
            Exit::Usage => "bad usage: a bad flag, URL, header or file",
            Exit::Rejected => {
                "the server refused the handshake with an HTTP status that is not retried \
                 (401, 403, 404, ...), or closed with a code given to --final-close"
            }
            Exit::GaveUp => "gave up: --max-retries attempts failed in a row",
            Exit::Undelivered => {
                "the input ended but not everything was delivered (refused, or lost while \
                 closing); what is known is listed on stderr"
            }
            Exit::Ended => {
                "--once: the connection ended, or its attempt failed, before the input did \
                 (the last status line says why; with --status json, the server's close code)"
            }
            Exit::Interrupted => {
                "interrupted by Ctrl-C; what was not delivered is listed on stderr"
            }
        }
    }

    /// The table `--help` and the README show: `  CODE  meaning`, wrapped.
    pub(crate) fn table() -> String {
        let mut table = String::new();
        for exit in Self::ALL {
            let mut line = format!("  {:<4}", exit.code());
            for word in exit.meaning().split(' ') {
                if line.len() + 1 + word.len() > 78 {
                    table.push_str(&line);
                    table.push('\n');
                    // Under the text of the first line.
                    line = " ".repeat(7);
                } else {
                    line.push(' ');
                }
                line.push_str(word);
            }
            table.push_str(&line);
            table.push('\n');
        }
        table
    }

    /// The exit for a machine that stopped on its own with `error`.
    pub(crate) fn for_machine(error: &ws_machine::Error) -> Exit {
        use ws_machine::Error as E;
        match error {
            E::InvalidUrl { .. } | E::InvalidHeader { .. } | E::InvalidConfig { .. } => Exit::Usage,
            E::HandshakeRejected { .. }
            | E::Closed {
                retryable: false, ..
            } => Exit::Rejected,
            E::GaveUp { .. } => Exit::GaveUp,
            _ => Exit::Failure,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_the_table_lists_each_once() {
        let table = Exit::table();
        for exit in Exit::ALL {
            let code = exit.code();
            assert_eq!(Exit::ALL.iter().filter(|e| e.code() == code).count(), 1);
            assert_eq!(
                table.matches(&format!("\n  {code:<4} ")).count()
                    + usize::from(table.starts_with(&format!("  {code:<4} "))),
                1,
                "{table}"
            );
        }
        assert!(table.lines().all(|line| line.len() <= 78), "{table}");
    }

    #[test]
    fn the_readme_shows_the_same_table() {
        let readme = include_str!("../../../README.md");
        assert!(
            readme.contains(&format!("```text\n{}```", Exit::table())),
            "README.md's exit status section differs from:\n{}",
            Exit::table()
        );
    }

    #[test]
    fn machine_errors_map_to_their_codes() {
        let rejected = ws_machine::Error::HandshakeRejected {
            status: 401,
            retry_after: None,
            retryable: false,
            body: None,
        };
        assert_eq!(Exit::for_machine(&rejected), Exit::Rejected);
        let gave_up = ws_machine::Error::GaveUp {
            attempts: 3,
            last: Box::new(rejected),
        };
        assert_eq!(Exit::for_machine(&gave_up), Exit::GaveUp);
        assert_eq!(
            Exit::for_machine(&ws_machine::Error::PongTimeout(
                std::time::Duration::from_secs(1)
            )),
            Exit::Failure
        );
    }
}
