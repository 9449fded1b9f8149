//! The values of `wsm connect`'s flags that clap takes as text: headers,
//! credentials, durations, rates and sizes, each parsed by one function
//! that clap calls (`value_parser`).
//!
//! They live apart from the flags (`args`) so that they depend on nothing
//! but `std` and `humantime`: the fuzz targets (`fuzz/targets/cli.rs`)
//! include this file as it is.

use std::{fmt, time::Duration};

/// A text that must never be shown: header values and credentials. Its
/// `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub(crate) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<hidden>")
    }
}

/// One `-H 'Name: value'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeaderArg {
    pub(crate) name: String,
    pub(crate) value: Secret,
}

/// `Name: value` (one optional space after the colon, as curl and websocat
/// take it). The value is never repeated in an error.
pub(crate) fn header(text: &str) -> Result<HeaderArg, String> {
    let (name, value) = text
        .split_once(':')
        .ok_or("expected 'Name: value', with a colon after the name")?;
    let name = name.trim();
    if name.is_empty() {
        return Err("expected 'Name: value': the name is empty".into());
    }
    Ok(HeaderArg {
        name: name.to_owned(),
        value: Secret(value.trim().to_owned()),
    })
}

pub(crate) fn secret(text: &str) -> Result<Secret, String> {
    Ok(Secret(text.to_owned()))
}

pub(crate) fn auth(text: &str) -> Result<Secret, String> {
    if !text.contains(':') {
        return Err("expected USER:PASS, with a colon between them".into());
    }
    Ok(Secret(text.to_owned()))
}

/// `N/DURATION`: at most N messages in any DURATION.
pub(crate) fn rate(text: &str) -> Result<(u32, Duration), String> {
    let usage = "expected N/DURATION, such as 10/1s";
    let (count, per) = text.split_once('/').ok_or(usage)?;
    let count: u32 = count
        .trim()
        .parse()
        .map_err(|_| format!("'{count}' is not a count: {usage}"))?;
    if count == 0 {
        return Err(format!("the count must be at least 1: {usage}"));
    }
    Ok((count, positive_duration(per.trim())?))
}

pub(crate) fn not_empty(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(text.to_owned())
}

pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("{e}: expected a duration such as 500ms, 5s or 2m"))
}

pub(crate) fn positive_duration(text: &str) -> Result<Duration, String> {
    match duration(text)? {
        d if d.is_zero() => Err("must be longer than zero".into()),
        d => Ok(d),
    }
}

/// Bytes, with an optional binary suffix: `4096`, `64KiB`, `16MiB`.
pub(crate) fn size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" | "K" | "k" => 10,
        "MiB" | "M" => 20,
        "GiB" | "G" => 30,
        other => {
            return Err(format!(
                "unknown unit {other:?}: use bytes or KiB, MiB, GiB"
            ));
        }
    };
    let number: usize = digits
        .parse()
        .map_err(|_| format!("expected a size such as 65536 or 16MiB, not {text:?}"))?;
    match number.checked_shl(shift).filter(|n| n >> shift == number) {
        Some(0) => Err("must be at least 1 byte".into()),
        Some(n) => Ok(n),
        None => Err(format!("{text} is too large")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_take_one_optional_space() {
        let h = header("X-Token:  abc ").expect("valid");
        assert_eq!((h.name.as_str(), h.value.0.as_str()), ("X-Token", "abc"));
        let h = header("Accept:text/plain").expect("valid");
        assert_eq!(h.value.0, "text/plain");
        assert!(header("no colon").is_err());
        assert!(header(": value").is_err());
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(size("4096"), Ok(4096));
        assert_eq!(size("64KiB"), Ok(64 * 1024));
        assert_eq!(size("16MiB"), Ok(16 * 1024 * 1024));
        assert!(size("0").is_err());
        assert!(size("12 parsecs").is_err());
        assert!(size("99999999999999999999GiB").is_err());
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert!(positive_duration("0s").is_err());
        assert!(duration("soon").is_err());
        assert_eq!(rate("10/1s"), Ok((10, Duration::from_secs(1))));
        assert_eq!(rate(" 3 / 500ms "), Ok((3, Duration::from_millis(500))));
        for bad in ["10", "0/1s", "ten/1s", "10/0s", "10/soon"] {
            assert!(rate(bad).is_err(), "{bad}");
        }
    }
}
