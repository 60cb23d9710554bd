//! Parsers for command-line values: byte sizes, durations and addresses; and [`Usage`], the
//! error of flags that parse but do not make sense together.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// Flags that parse one by one but cannot be used together (`ringport` exits 2 for it, as clap
/// does for the flags it refuses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage(pub String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// Parses `HOST:PORT` as every network tool does: an IP address (`127.0.0.1:7000`,
/// `[::1]:7000`) or a host name (`localhost:7000`), taking the first IPv4 address it resolves
/// to, else the first (so `localhost` means 127.0.0.1, the default address of the tools).
pub fn socket_addr(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    let has_port = s
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !has_port {
        return Err(format!(
            "{s:?} is an invalid socket address: expected HOST:PORT, e.g. 127.0.0.1:7000 or \
             localhost:7000"
        ));
    }
    let addrs: Vec<SocketAddr> = s
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {s:?}: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{s:?} resolves to no address"))
}

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

/// Parses a duration longer than zero (`500ms`, `30s`, `2m`).
pub fn positive_duration(s: &str) -> Result<Duration, String> {
    match duration(s)? {
        d if d.is_zero() => Err(format!("{s:?}: must be longer than zero")),
        d => Ok(d),
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
        assert!(positive_duration("0s").is_err());
        assert_eq!(positive_duration("100ms"), Ok(Duration::from_millis(100)));
    }

    #[test]
    fn addresses_resolve_host_names() {
        assert_eq!(
            socket_addr("127.0.0.1:7000"),
            Ok(([127, 0, 0, 1], 7000).into())
        );
        assert!(socket_addr("[::1]:7000").is_ok_and(|a| a.ip().is_loopback()));
        assert!(
            socket_addr("localhost:7000").is_ok_and(|a| a.ip().is_loopback() && a.port() == 7000)
        );
        let no_port = socket_addr("not-an-address").unwrap_err();
        assert!(no_port.contains("invalid socket address"), "{no_port}");
        assert!(socket_addr("localhost:99999").is_err());
        assert!(socket_addr("no-such-host.invalid:7000").is_err());
    }
}
