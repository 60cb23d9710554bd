//! Parsers for command-line values: byte sizes and durations.

use std::time::Duration;

/// Parses a byte size: `4096`, `64k`/`64KiB`, `16m`/`16MiB`, `1g`/`1GiB` (powers of 1024).
pub fn bytes(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a byte size (e.g. 4096, 64KiB, 16MiB)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        other => return Err(format!("unknown size unit {other:?} in {s:?}")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// A duration, or none (`off`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MaybeDuration(pub Option<Duration>);

/// Parses a duration (`500ms`, `30s`, `2m`), or `off`/`none` for no limit.
pub fn optional_duration(s: &str) -> Result<MaybeDuration, String> {
    match s.trim() {
        "off" | "none" | "0" => Ok(MaybeDuration(None)),
        other => duration(other).map(|d| MaybeDuration(Some(d))),
    }
}

/// Parses a duration (`500ms`, `30s`, `2m`).
pub fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("{s:?} is not a duration: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!(bytes("4096"), Ok(4096));
        assert_eq!(bytes("64KiB"), Ok(64 << 10));
        assert_eq!(bytes("16m"), Ok(16 << 20));
        assert!(bytes("12 parsecs").is_err());
        assert!(bytes("").is_err());
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(optional_duration("off"), Ok(MaybeDuration(None)));
        assert!(duration("soon").is_err());
    }
}
