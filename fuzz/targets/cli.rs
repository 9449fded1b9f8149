//! The `cli` target: what `wsm connect` reads from its user, with the CLI's
//! own functions (`wsm` is a binary crate: its modules `lines` and `values`,
//! which depend on nothing else of it, are compiled in here as they are).
//!
//! The first byte picks the parser, the rest is its text:
//! - 0: a typed line (`LineParser`: text or binary mode, the `base64:`
//!   prefix, slash commands such as `/close CODE REASON`), the mode and
//!   options from the second byte;
//! - 1: a `-H 'Name: value'` header;
//! - 2: a `--send-rate N/DURATION`;
//! - 3: a duration (`--ping-interval 30s` and the others);
//! - 4: a size (`--max-message-size 16MiB`).
//!
//! The properties: nothing panics, and what each parser accepts is what it
//! says it is: a Base64 line decodes to bytes that encode back to it, a
//! `/close` frame has the code and reason typed, a header has a non-empty
//! name without surrounding blanks, a rate and a duration are positive
//! where they must be, a size is its digits times its unit.

use base64::Engine as _;
use ws_machine::Kind;

#[allow(dead_code)] // the CLI uses more of it than this target does
#[path = "../../crates/wsm/src/connect/lines.rs"]
mod lines;
#[allow(dead_code)]
#[path = "../../crates/wsm/src/connect/values.rs"]
mod values;

use lines::{LineParser, Mode, Parsed, Slash};

/// The binary prefix `wsm` uses by default.
const PREFIX: &str = "base64:";

/// The target.
pub fn check(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match which % 5 {
        0 => line(rest),
        1 => header(&text),
        2 => rate(&text),
        3 => duration(&text),
        _ => size(&text),
    }
}

/// A typed line: its first byte sets the mode, the prefix and slash
/// commands.
fn line(data: &[u8]) {
    let Some((&flags, line)) = data.split_first() else {
        return;
    };
    let mode = if flags & 1 == 0 {
        Mode::Text
    } else {
        Mode::Binary
    };
    let prefix = (flags & 2 == 0).then(|| PREFIX.to_owned());
    let slash = flags & 4 == 0;
    let parser = LineParser::new(mode, prefix.clone(), slash);
    match parser.parse(line) {
        Parsed::Send(message) => {
            let encoded = prefix
                .as_deref()
                .and_then(|p| line.strip_prefix(p.as_bytes()))
                .filter(|_| !(slash && line.starts_with(b"/")));
            match encoded {
                Some(encoded) => {
                    assert_eq!(message.kind(), Kind::Binary);
                    let again = base64::engine::general_purpose::STANDARD.encode(message.payload());
                    assert_eq!(again.as_bytes(), encoded, "Base64 that is not canonical");
                }
                None => {
                    let sent = if slash && line.starts_with(b"//") {
                        &line[1..]
                    } else {
                        line
                    };
                    assert_eq!(message.payload().as_ref(), sent);
                    let kind = match mode {
                        Mode::Text => Kind::Text,
                        Mode::Binary => Kind::Binary,
                    };
                    assert_eq!(message.kind(), kind);
                }
            }
        }
        Parsed::Command(Slash::Close(Some(frame))) => {
            let typed = String::from_utf8_lossy(&line[1..]);
            let arguments = typed
                .trim()
                .strip_prefix("close")
                .unwrap_or_default()
                .trim();
            let (code, reason) = arguments
                .split_once(char::is_whitespace)
                .map_or((arguments, ""), |(c, r)| (c, r.trim()));
            assert_eq!(code.parse::<u16>().ok(), Some(frame.code()), "{typed:?}");
            assert_eq!(frame.reason(), reason, "{typed:?}");
        }
        Parsed::Command(_) | Parsed::Unknown(_) => {
            assert!(slash && line.starts_with(b"/"), "a command without a slash");
        }
        Parsed::Refused(_) => {}
    }
}

/// `-H 'Name: value'`.
fn header(text: &str) {
    if let Ok(header) = values::header(text) {
        assert!(!header.name.is_empty() && header.name.trim() == header.name);
        assert_eq!(header.value.0.trim(), header.value.0);
        // `Debug` does not show the value: it is the same for any other.
        let other = values::HeaderArg {
            name: header.name.clone(),
            value: values::Secret(String::new()),
        };
        assert_eq!(format!("{header:?}"), format!("{other:?}"));
    }
}

/// `--send-rate N/DURATION`.
fn rate(text: &str) {
    if let Ok((count, per)) = values::rate(text) {
        assert!(count > 0 && !per.is_zero(), "{text:?}: {count}/{per:?}");
    }
}

/// A duration, and one that must be positive.
fn duration(text: &str) {
    let any = values::duration(text);
    let positive = values::positive_duration(text);
    match &any {
        Ok(d) if d.is_zero() => assert!(positive.is_err(), "{text:?}"),
        Ok(d) => assert_eq!(positive.as_ref().ok(), Some(d), "{text:?}"),
        Err(_) => assert!(positive.is_err(), "{text:?}"),
    }
    if let Ok(d) = any {
        // What humantime writes, it reads back.
        let written = humantime::format_duration(d).to_string();
        assert_eq!(
            values::duration(&written).ok(),
            Some(d),
            "{text:?} written as {written:?}"
        );
    }
}

/// `--max-message-size 16MiB`.
fn size(text: &str) {
    let Ok(n) = values::size(text) else {
        return;
    };
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" | "K" | "k" => 10,
        "MiB" | "M" => 20,
        _ => 30,
    };
    let number: u128 = digits.parse().expect("accepted digits");
    assert!(n >= 1, "{text:?}");
    assert_eq!(u128::try_from(n).ok(), Some(number << shift), "{text:?}");
}
