//! What the kernel tells about a process: resident memory, threads and CPU
//! time, read from `/proc/<pid>/status`, `/proc/<pid>/task` and
//! `/proc/<pid>/stat` (proc(5)).

use anyhow::Context;
use std::time::Duration;

/// Threads of `pid` now (entries of `/proc/<pid>/task`).
///
/// Errors: the process is gone.
pub fn threads(pid: u32) -> anyhow::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/task"))
        .with_context(|| format!("reading /proc/{pid}/task"))?
        .count())
}

/// Resident set size of `pid`, in bytes (`VmRSS` of `/proc/<pid>/status`).
///
/// Errors: the process is gone or the field is missing.
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS in /proc/PID/status")?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .context("VmRSS without a value")?
        .parse()
        .context("VmRSS is not a number")?;
    Ok(kib * 1024)
}

/// CPU time `pid` itself has used, user plus system (fields 14 and 15 of
/// `/proc/<pid>/stat`, in clock ticks of 1/100 s on Linux).
///
/// Errors: the process is gone or the file is malformed.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; fields after it are plain.
    let rest = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state), so field N is rest[N - 3].
    let ticks = |n: usize| -> anyhow::Result<u64> {
        fields
            .get(n - 3)
            .context("short stat")?
            .parse()
            .context("stat field is not a number")
    };
    let total = ticks(14)? + ticks(15)?;
    Ok(Duration::from_millis(total * 1000 / CLOCK_TICKS_PER_SEC))
}

/// `sysconf(_SC_CLK_TCK)`: 100 on every Linux architecture's ABI.
const CLOCK_TICKS_PER_SEC: u64 = 100;

/// One line about the machine: CPU model, cores, memory, kernel.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let kib: f64 = m
                .lines()
                .find(|l| l.starts_with("MemTotal:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some(kib / (1024.0 * 1024.0))
        })
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{model}, {cores} cores, {mem_gib:.0} GiB, Linux {}",
        kernel.trim()
    )
}
