//! CPU time used by the processes in a figure (from `/proc`), to say where a burst's time went on a
//! machine whose two cores the ingress, the workers, NATS, the database server and the benchmark share.

use std::collections::BTreeMap;

/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`, 100 on Linux).
const TICKS: f64 = 100.0;

/// User plus system CPU seconds used so far by `pid` (0 when it is gone).
pub fn seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    let Some((_, rest)) = stat.rsplit_once(')') else { return 0.0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / TICKS
}

/// Every process whose command name is `comm` (`mariadbd`, `postgres`, `nats-server`).
pub fn named(comm: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm))
        .collect()
}

/// CPU seconds per group of processes, read at the start and the end of a stretch of work.
pub struct Meter {
    groups: Vec<(String, Vec<u32>)>,
    start: Vec<f64>,
}

impl Meter {
    pub fn start(groups: Vec<(String, Vec<u32>)>) -> Self {
        let start = groups.iter().map(|(_, pids)| pids.iter().map(|p| seconds(*p)).sum()).collect();
        Self { groups, start }
    }

    /// Milliseconds of CPU per unit of work (`per` units done), by group.
    pub fn per(&self, per: usize) -> BTreeMap<String, f64> {
        self.groups
            .iter()
            .zip(&self.start)
            .map(|((name, pids), start)| {
                let used: f64 = pids.iter().map(|p| seconds(*p)).sum::<f64>() - start;
                (name.clone(), used * 1000.0 / per as f64)
            })
            .collect()
    }
}

/// `name 1.2 ms, …` for a report line.
pub fn line(per: &BTreeMap<String, f64>) -> String {
    per.iter().map(|(name, ms)| format!("{name} {ms:.1} ms")).collect::<Vec<_>>().join(", ")
}
