//! What a line of input means: a message to send (text, binary, or binary
//! from Base64 after the binary prefix), or a slash command.

use base64::Engine as _;
use ws_machine::{CloseFrame, Message};

/// How plain lines are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Text,
    Binary,
}

/// A slash command typed by the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Slash {
    /// `/ping`: a ping now.
    Ping,
    /// `/reconnect`: a new connection at once.
    Reconnect,
    /// `/text`: lines go out as text.
    Text,
    /// `/binary`: lines go out as binary.
    Binary,
    /// `/close [CODE [REASON]]`: close now (with that code and reason)
    /// and exit.
    Close(Option<CloseFrame>),
    /// `/quit`: like the end of input.
    Quit,
    /// `/help`: list the commands.
    Help,
}

/// The one-line summary `/help` and an unknown command print.
pub(crate) const SLASH_HELP: &str = "commands: /ping /reconnect /text /binary \
     /close [CODE [REASON]] /quit /help (//text sends \"/text\")";

/// What a line is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    Send(Message),
    Command(Slash),
    /// A message that cannot be sent (bad Base64, not UTF-8); the text says
    /// why.
    Refused(String),
    /// A slash command that does not exist, or whose arguments are wrong.
    Unknown(String),
}

/// Turns lines into messages and commands.
#[derive(Debug, Clone)]
pub(crate) struct LineParser {
    mode: Mode,
    prefix: Option<String>,
    slash: bool,
}

impl LineParser {
    pub(crate) fn new(mode: Mode, prefix: Option<String>, slash: bool) -> Self {
        Self {
            mode,
            prefix,
            slash,
        }
    }

    pub(crate) fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }

    /// What `line` (without its line ending) means.
    pub(crate) fn parse(&self, line: &[u8]) -> Parsed {
        if self.slash
            && let Some(rest) = line.strip_prefix(b"/")
        {
            if rest.starts_with(b"/") {
                return self.message(rest);
            }
            return match slash(rest) {
                Ok(command) => Parsed::Command(command),
                Err(why) => Parsed::Unknown(why),
            };
        }
        self.message(line)
    }

    fn message(&self, line: &[u8]) -> Parsed {
        if let Some(prefix) = &self.prefix
            && let Some(encoded) = line.strip_prefix(prefix.as_bytes())
        {
            return match base64::engine::general_purpose::STANDARD.decode(encoded) {
                Ok(bytes) => Parsed::Send(Message::binary(bytes)),
                Err(e) => Parsed::Refused(format!(
                    "not sent: the text after {prefix:?} is not Base64 ({e})"
                )),
            };
        }
        match self.mode {
            Mode::Binary => Parsed::Send(Message::binary(line.to_vec())),
            Mode::Text => match std::str::from_utf8(line) {
                Ok(text) => Parsed::Send(Message::text(text)),
                Err(_) => Parsed::Refused(
                    "not sent: the line is not UTF-8, so it cannot be a text message \
                     (use --binary, /binary or the binary prefix)"
                        .into(),
                ),
            },
        }
    }
}

fn slash(rest: &[u8]) -> Result<Slash, String> {
    let text = String::from_utf8_lossy(rest);
    let text = text.trim();
    let (name, arguments) = text
        .split_once(char::is_whitespace)
        .map_or((text, ""), |(name, rest)| (name, rest.trim()));
    let command = match name {
        "ping" => Slash::Ping,
        "reconnect" => Slash::Reconnect,
        "text" => Slash::Text,
        "binary" => Slash::Binary,
        "close" => return close(arguments),
        "quit" | "exit" => Slash::Quit,
        "help" | "?" => Slash::Help,
        _ => return Err(format!("unknown command /{name}: {SLASH_HELP}")),
    };
    if !arguments.is_empty() {
        return Err(format!("/{name} takes no arguments"));
    }
    Ok(command)
}

/// `/close`'s arguments: nothing, or a code and an optional reason.
fn close(arguments: &str) -> Result<Slash, String> {
    if arguments.is_empty() {
        return Ok(Slash::Close(None));
    }
    let (code, reason) = arguments
        .split_once(char::is_whitespace)
        .map_or((arguments, ""), |(code, reason)| (code, reason.trim()));
    let code: u16 = code
        .parse()
        .map_err(|_| format!("/close {code}: expected a close code such as 1000 or 4000"))?;
    CloseFrame::new(code, reason)
        .map(|frame| Slash::Close(Some(frame)))
        .map_err(|e| format!("/close: {e}"))
}

#[cfg(test)]
mod tests {
    use ws_machine::Kind;

    use super::*;

    fn sent(parsed: Parsed) -> (Kind, Vec<u8>) {
        match parsed {
            Parsed::Send(m) => (m.kind(), m.payload().to_vec()),
            other => panic!("not a message: {other:?}"),
        }
    }

    #[test]
    fn lines_follow_the_mode_and_the_prefix() {
        let mut p = LineParser::new(Mode::Text, Some("base64:".into()), false);
        assert_eq!(sent(p.parse(b"hello")), (Kind::Text, b"hello".to_vec()));
        assert_eq!(
            sent(p.parse(b"base64:3q2+7w==")),
            (Kind::Binary, vec![0xde, 0xad, 0xbe, 0xef])
        );
        assert!(
            matches!(p.parse(b"base64:***"), Parsed::Refused(why) if why.contains("not Base64"))
        );
        assert!(
            matches!(p.parse(&[0xff, 0xfe]), Parsed::Refused(why) if why.contains("not UTF-8"))
        );
        p.set_mode(Mode::Binary);
        assert_eq!(
            sent(p.parse(&[0xff, 0xfe])),
            (Kind::Binary, vec![0xff, 0xfe])
        );
        // Without slash commands, a slash is text like any other.
        assert_eq!(sent(p.parse(b"/ping")), (Kind::Binary, b"/ping".to_vec()));
        let no_prefix = LineParser::new(Mode::Text, None, false);
        assert_eq!(
            sent(no_prefix.parse(b"base64:AA==")),
            (Kind::Text, b"base64:AA==".to_vec())
        );
    }

    #[test]
    fn slash_commands() {
        let p = LineParser::new(Mode::Text, None, true);
        assert_eq!(p.parse(b"/ping"), Parsed::Command(Slash::Ping));
        assert_eq!(p.parse(b"/reconnect "), Parsed::Command(Slash::Reconnect));
        assert_eq!(p.parse(b"/binary"), Parsed::Command(Slash::Binary));
        assert_eq!(p.parse(b"/quit"), Parsed::Command(Slash::Quit));
        assert_eq!(sent(p.parse(b"//ping")), (Kind::Text, b"/ping".to_vec()));
        assert!(
            matches!(p.parse(b"/nope"), Parsed::Unknown(why) if why.contains("unknown command /nope"))
        );
        assert!(
            matches!(p.parse(b"/ping now"), Parsed::Unknown(why) if why.contains("takes no arguments"))
        );
        assert_eq!(p.parse(b"/close"), Parsed::Command(Slash::Close(None)));
        let frame =
            |code, reason| Slash::Close(Some(CloseFrame::new(code, reason).expect("valid")));
        assert_eq!(
            p.parse(b"/close 4000  see you later "),
            Parsed::Command(frame(4000, "see you later"))
        );
        assert_eq!(p.parse(b"/close 1001"), Parsed::Command(frame(1001, "")));
        for (line, why) in [
            (&b"/close soon"[..], "expected a close code"),
            (b"/close 1006", "not a close code a client may send"),
            (b"/close 99999", "expected a close code"),
        ] {
            assert!(
                matches!(p.parse(line), Parsed::Unknown(ref said) if said.contains(why)),
                "{:?}",
                p.parse(line)
            );
        }
    }
}
