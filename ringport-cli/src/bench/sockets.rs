//! What many connections need of the OS: enough local ports (spread over several 127.0.0.x
//! source addresses) and enough open files (the `ulimit -n` of this process and of a spawned
//! server).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

use super::procfs;

/// Descriptors a process needs besides its connections: ports, pipes, perf, std streams.
#[cfg(unix)]
const SPARE_FDS: u64 = 128;

/// Local ports one source address can use towards one server address: the ephemeral range,
/// less a margin for ports still in use by earlier runs or other programs.
pub fn ports_per_source() -> usize {
    let (lo, hi) = procfs::ephemeral_ports().unwrap_or((32768, 60999));
    let range = usize::from(hi.saturating_sub(lo)) + 1;
    range.saturating_sub(1024).max(1024)
}

/// The source addresses to bind connections to, in turn (none: let the kernel choose).
///
/// One address can reach one server address with at most [`ports_per_source`] connections.
/// Past that, a loopback server is reached from 127.0.0.1, 127.0.0.2, … (all of 127/8 is the
/// local host on Linux). `forced` asks for that many addresses whatever the count.
pub fn plan_sources(
    target: SocketAddr,
    conns: usize,
    forced: Option<usize>,
) -> Result<Vec<IpAddr>, String> {
    let per_source = ports_per_source();
    let needed = forced.unwrap_or_else(|| conns.div_ceil(per_source));
    if needed <= 1 && forced.is_none() {
        return Ok(Vec::new());
    }
    if !matches!(target.ip(), IpAddr::V4(ip) if ip.is_loopback()) {
        if forced.is_some() {
            return Err(
                "--source-addrs spreads over 127.0.0.x: the server must be on 127.0.0.0/8".into(),
            );
        }
        return Err(format!(
            "{conns} connections to one address need more local ports than the ephemeral \
             range gives ({per_source} a source address); source addresses are spread only for a \
             server on 127.0.0.0/8: use fewer connections or several server addresses"
        ));
    }
    if needed == 0 || needed > 250 {
        return Err(format!("{needed} source addresses: need 1..=250"));
    }
    Ok((0..needed as u8)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + i)))
        .collect())
}

/// A socket for connection `n` to `target`, bound to its source address if there are several.
pub fn socket_for(target: SocketAddr, sources: &[IpAddr], n: u64) -> io::Result<Socket> {
    let sock = Socket::new(
        Domain::for_address(target),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    sock.set_nonblocking(true)?;
    sock.set_tcp_nodelay(true)?;
    if !sources.is_empty() {
        let source = sources[(n % sources.len() as u64) as usize];
        // Ports left in TIME_WAIT by an earlier run may be bound again.
        sock.set_reuse_address(true)?;
        sock.bind(&SocketAddr::new(source, 0).into())
            .map_err(|e| io::Error::new(e.kind(), format!("cannot bind to {source}: {e}")))?;
    }
    Ok(sock)
}

/// Makes sure this process (and a server it spawns, which inherits the limit) may open enough
/// files for `conns` connections: raises the soft limit up to the hard one if needed, and says
/// clearly when even the hard limit is too low.
#[cfg(unix)]
pub fn ensure_open_files(conns: usize, spawning: bool) -> Result<(), String> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let need = conns as u64 + SPARE_FDS;
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(u64::MAX);
    if soft >= need {
        return Ok(());
    }
    let hard = limit.maximum.unwrap_or(u64::MAX);
    if hard >= need {
        let raised = rustix::process::Rlimit {
            current: Some(need),
            maximum: limit.maximum,
        };
        return setrlimit(Resource::Nofile, raised)
            .map_err(|e| format!("cannot raise the open-file limit to {need}: {e}"));
    }
    let who = if spawning {
        "this process and the server it spawns each need"
    } else {
        "this process needs"
    };
    Err(format!(
        "{conns} connections are more than the open-file limit allows: {who} one descriptor per \
         connection plus about {SPARE_FDS} others ({need} in all), but the limit is {soft} \
         (hard limit {hard}; see `ulimit -n`). Raise it (`ulimit -n {need}` as root, \
         LimitNOFILE= for a service, /etc/security/limits.conf) or use at most {} connections",
        hard.saturating_sub(SPARE_FDS)
    ))
}

/// Windows has no per-process descriptor limit to check.
#[cfg(not(unix))]
pub fn ensure_open_files(_conns: usize, _spawning: bool) -> Result<(), String> {
    Ok(())
}

/// A connect error, with what to do about it when the cause is a limit.
pub fn explain_connect_error(target: SocketAddr, e: &io::Error) -> String {
    #[cfg(unix)]
    let hint = {
        use rustix::io::Errno;
        match e.raw_os_error() {
            Some(n) if n == Errno::MFILE.raw_os_error() || n == Errno::NFILE.raw_os_error() => {
                " (out of file descriptors: the open-file limit, `ulimit -n`, is too low)"
            }
            Some(n) if n == Errno::ADDRNOTAVAIL.raw_os_error() => {
                " (out of local ports: spread source addresses with --source-addrs)"
            }
            _ => "",
        }
    };
    #[cfg(not(unix))]
    let hint = "";
    format!("cannot connect to {target}: {e}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_spread_only_past_the_port_range() {
        let local: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        assert!(plan_sources(local, 1000, None).unwrap().is_empty());
        let many = plan_sources(local, 3 * ports_per_source(), None).unwrap();
        assert_eq!(many.len(), 3);
        assert_eq!(many[2], IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)));
        assert_eq!(plan_sources(local, 10, Some(2)).unwrap().len(), 2);
        let remote: SocketAddr = "192.0.2.1:7000".parse().unwrap();
        assert!(plan_sources(remote, 10, Some(2)).is_err());
        assert!(plan_sources(remote, 10 * ports_per_source(), None).is_err());
    }
}
