//! The report bench/workloads/self_cost.py writes at the profiled process's
//! exit: its CPU time, and the workload's time measured inside it.

use std::path::Path;

pub struct SelfCost {
    pub cpu_seconds: f64,
    /// The workload's own duration, the profiler's start and end left out.
    pub elapsed_seconds: f64,
}

/// Reads the report of the run that just ended.
pub fn read(path: &Path) -> Result<SelfCost, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("no self-cost report ({}): {e}", path.display()))?;
    let fields: Vec<f64> = text
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| format!("bad self-cost report: {text:?}"))?;
    let [cpu_seconds, elapsed_seconds] = fields[..] else {
        return Err(format!("bad self-cost report: {text:?}"));
    };
    Ok(SelfCost {
        cpu_seconds,
        elapsed_seconds,
    })
}
