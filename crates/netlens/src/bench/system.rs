//! What the machine says about itself, from Linux's `/proc` (`None` elsewhere): this
//! process's memory, and how busy the CPUs are with other work.

/// A field of `/proc/self/status` (`VmHWM`, `VmRSS`) in MB (one decimal).
pub fn proc_status_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kb / 1024.0 * 10.0).round() / 10.0)
}

/// Busy and total jiffies of all CPUs so far (`/proc/stat`).
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total.checked_sub(idle)?, total))
}

/// Share (%) of all CPUs that were busy during one second, sampled while the caller runs
/// nothing: other work on the machine, which skews every timing (the 1-minute load average
/// lags, and counts the benchmark's own previous processes).
pub fn other_cpu_busy() -> Option<f64> {
    let (b0, t0) = cpu_jiffies()?;
    std::thread::sleep(std::time::Duration::from_secs(1));
    let (b1, t1) = cpu_jiffies()?;
    (t1 > t0 && b1 >= b0).then(|| ((b1 - b0) as f64 / (t1 - t0) as f64 * 1000.0).round() / 10.0)
}

/// The 1-minute load average.
pub fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
