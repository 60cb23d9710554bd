//! CPU lists (`--cpus 0,2-3`, as `taskset -c` spells them) and pinning threads to CPUs.

use std::fmt;

/// A non-empty list of CPU ids, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuList(Vec<usize>);

impl CpuList {
    /// The list of exactly these CPUs (`None` if empty).
    pub fn new(cpus: Vec<usize>) -> Option<CpuList> {
        (!cpus.is_empty()).then_some(CpuList(cpus))
    }

    /// The CPU for thread `i`: the list in turn.
    pub fn nth(&self, i: usize) -> usize {
        self.0[i % self.0.len()]
    }

    /// How many CPUs are listed.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The CPU ids.
    pub fn ids(&self) -> &[usize] {
        &self.0
    }

    /// Fails unless this process may run on every listed CPU.
    pub fn check_available(&self) -> Result<(), String> {
        let available = available();
        if available.is_empty() {
            return Ok(()); // the OS does not say: let pinning report it
        }
        match self.0.iter().find(|c| !available.contains(c)) {
            Some(cpu) => Err(format!(
                "CPU {cpu} is not available: this process may run on CPUs {}",
                CpuList(available)
            )),
            None => Ok(()),
        }
    }
}

impl fmt::Display for CpuList {
    /// Comma-separated ids: the form `--cpus` parses back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<String> = self.0.iter().map(usize::to_string).collect();
        f.write_str(&ids.join(","))
    }
}

/// Parses `1`, `0,2`, `2-3`, `0,4-7` (no duplicates).
pub fn parse(s: &str) -> Result<CpuList, String> {
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let id = |x: &str| {
            x.trim()
                .parse::<usize>()
                .map_err(|_| format!("{s:?} is not a CPU list (e.g. 1, 0,2 or 0-3)"))
        };
        let (lo, hi) = (id(lo)?, id(hi)?);
        if lo > hi || hi - lo >= 4096 {
            return Err(format!("{part:?} is not a CPU range"));
        }
        for cpu in lo..=hi {
            if cpus.contains(&cpu) {
                return Err(format!("CPU {cpu} is listed twice in {s:?}"));
            }
            cpus.push(cpu);
        }
    }
    CpuList::new(cpus).ok_or_else(|| format!("{s:?} lists no CPU"))
}

/// The CPUs this process may run on (empty if the OS does not say).
pub fn available() -> Vec<usize> {
    let mut ids: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.sort_unstable();
    ids
}

/// Pins the calling thread to `cpu`.
pub fn pin_current(cpu: usize) -> Result<(), String> {
    if core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        Ok(())
    } else {
        Err(format!("cannot pin a thread to CPU {cpu}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_like_taskset() {
        assert_eq!(parse("1").unwrap().ids(), &[1]);
        assert_eq!(parse("0, 2-4").unwrap().ids(), &[0, 2, 3, 4]);
        assert_eq!(parse("3,1").unwrap().nth(3), 1);
        assert_eq!(parse("0-1").unwrap().to_string(), "0,1");
        for bad in ["", "a", "2-1", "1,1", "0-", "-3"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
