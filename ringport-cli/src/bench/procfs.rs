//! What the OS says about a process: CPU time, resident memory, open descriptors (Linux
//! `/proc`; elsewhere nothing, and the report leaves those columns empty).

/// CPU time `pid` has used, in ns: the sum of field 1 of `/proc/PID/task/*/schedstat` (time on
/// a CPU, ns-precise) over its threads.
#[cfg(target_os = "linux")]
pub fn cpu_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0u64;
    for task in tasks.flatten() {
        // A thread that exits between the listing and the read is simply not counted.
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        if let Some(ns) = stat
            .split_whitespace()
            .next()
            .and_then(|f| f.parse::<u64>().ok())
        {
            total += ns;
        }
    }
    Some(total)
}

/// CPU time the whole machine has been busy, in ns: every CPU's non-idle time from the first
/// line of `/proc/stat` (in USER_HZ ticks, which Linux fixes at 100 per second for user space).
#[cfg(target_os = "linux")]
pub fn machine_busy_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(|t| t.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let busy: u64 = ticks.iter().take(8).sum::<u64>() - ticks.get(3)? - ticks.get(4)?;
    Some(busy * 10_000_000)
}

/// Resident memory of `pid` in bytes (`VmRSS` of `/proc/PID/status`).
#[cfg(target_os = "linux")]
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Descriptors `pid` has open (entries of `/proc/PID/fd`).
#[cfg(target_os = "linux")]
pub fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// The kernel release (`/proc/sys/kernel/osrelease`).
#[cfg(target_os = "linux")]
pub fn kernel() -> Option<String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    Some(release.trim().to_string())
}

/// The ephemeral port range connections draw their local port from.
#[cfg(target_os = "linux")]
pub fn ephemeral_ports() -> Option<(u16, u16)> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = range.split_whitespace().map(|p| p.parse::<u16>().ok());
    Some((it.next()??, it.next()??))
}

/// CPU time (elsewhere: not known).
#[cfg(not(target_os = "linux"))]
pub fn cpu_ns(_pid: u32) -> Option<u64> {
    None
}

/// Machine busy time (elsewhere: not known).
#[cfg(not(target_os = "linux"))]
pub fn machine_busy_ns() -> Option<u64> {
    None
}

/// Resident memory (elsewhere: not known).
#[cfg(not(target_os = "linux"))]
pub fn rss_bytes(_pid: u32) -> Option<u64> {
    None
}

/// Open descriptors (elsewhere: not known).
#[cfg(not(target_os = "linux"))]
pub fn open_fds(_pid: u32) -> Option<usize> {
    None
}

/// The kernel release (elsewhere: not known).
#[cfg(not(target_os = "linux"))]
pub fn kernel() -> Option<String> {
    None
}

/// The ephemeral port range: Windows' default dynamic range elsewhere.
#[cfg(not(target_os = "linux"))]
pub fn ephemeral_ports() -> Option<(u16, u16)> {
    Some((49152, 65535))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_visible() {
        let me = std::process::id();
        assert!(cpu_ns(me).unwrap() > 0);
        assert!(rss_bytes(me).unwrap() > 0);
        assert!(machine_busy_ns().unwrap() > 0);
        assert!(open_fds(me).unwrap() >= 3);
        let (lo, hi) = ephemeral_ports().unwrap();
        assert!(lo < hi);
    }
}
