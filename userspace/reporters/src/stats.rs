//! `memray stats`: the terminal text and the JSON document, laid out exactly
//! as memray's `reporters/stats.py` does.

use std::fmt::Write;

use memray_analysis::histogram::{histogram, Bin};
use memray_analysis::{Frame, ModuleTotals, Statistics};
use serde_json::{json, Value};

use crate::metadata::{local_datetime, Metadata};
use crate::processes::{processes_table, Together};
use crate::pyjson::{self, Style};
use crate::size::size_fmt;

const BINS: usize = 10;
const BAR_WIDTH: usize = 25;

fn format_location(location: &Option<Frame>) -> String {
    match location {
        Some(f) if &*f.function != "<unknown>" => {
            format!("{}:{}:{}", f.function, f.filename, f.lineno)
        }
        _ => "<stack trace unavailable>".to_owned(),
    }
}

fn allocator_type(name: &str) -> String {
    name.to_ascii_uppercase()
}

/// memray's `draw_histogram`, tab-indented continuation lines included.
fn draw_histogram(stats: &Statistics) -> String {
    let bins: Vec<Bin> = histogram(&stats.count_by_size, BINS);
    let (Some(first), Some(last)) = (stats.count_by_size.first(), stats.count_by_size.last())
    else {
        return "<no data for histogram>".to_owned();
    };
    let largest_bin = bins.iter().map(|b| b.count).max().unwrap_or(1).max(1);
    let count_width = bins
        .iter()
        .map(|b| b.count.to_string().len())
        .max()
        .unwrap_or(1);
    let width = 2 + 9 + 2 + count_width + 1 + BAR_WIDTH;
    let rule = "-".repeat(width);
    let mut out = format!("min: {}\n\t{rule}\n\t", size_fmt(first.0));
    for (i, bin) in bins.iter().enumerate() {
        let op = if i == bins.len() - 1 { "<=" } else { "< " };
        let bar = ((bin.count as f64 / largest_bin as f64) * BAR_WIDTH as f64).ceil() as usize;
        let _ = write!(
            out,
            "{op}{:<9}: {:>count_width$} {}\n\t",
            size_fmt(bin.upper),
            bin.count,
            "▇".repeat(bar)
        );
    }
    let _ = write!(out, "{rule}\n\tmax: {}", size_fmt(last.0));
    out
}

/// The terminal report.
pub fn render_text(stats: &Statistics, metadata: &Metadata, num_largest: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "📏 Total allocations:\n\t{}\n",
        stats.total_allocations
    );
    let _ = writeln!(
        out,
        "📦 Total memory allocated:\n\t{}\n",
        size_fmt(stats.total_bytes)
    );
    let _ = writeln!(
        out,
        "📈 Peak memory usage:\n\t{}\n",
        size_fmt(metadata.peak_memory)
    );
    let _ = writeln!(
        out,
        "📊 Histogram of allocation size:\n\t{}\n",
        draw_histogram(stats)
    );
    out.push_str("📂 Allocator type distribution:\n");
    for (allocator, count) in &stats.count_by_allocator {
        let _ = writeln!(out, "\t {}: {count}", allocator_type(allocator.name()));
    }
    let _ = writeln!(
        out,
        "\n🥇 Top {num_largest} largest allocating locations (by size):"
    );
    for (location, size) in &stats.top_locations_by_size {
        let _ = writeln!(
            out,
            "\t- {} -> {}",
            format_location(location),
            size_fmt(*size)
        );
    }
    let _ = writeln!(
        out,
        "\n🥇 Top {num_largest} largest allocating locations (by number of allocations):"
    );
    for (location, count) in &stats.top_locations_by_count {
        let _ = writeln!(out, "\t- {} -> {count}", format_location(location));
    }
    for (modules, label) in [
        (&stats.top_modules_by_size, "by size"),
        (&stats.top_modules_by_count, "by number of allocations"),
    ] {
        if modules.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n🥇 Top {num_largest} allocating modules ({label}):");
        for m in modules {
            let _ = writeln!(
                out,
                "\t- {}: {} total | {} allocations",
                m.module,
                size_fmt(m.total_bytes),
                m.num_allocations
            );
        }
    }
    out
}

fn modules_json(modules: &[ModuleTotals]) -> Value {
    modules
        .iter()
        .map(|m| {
            json!({
                "module": m.module,
                "num_allocations": m.num_allocations,
                "total_bytes": m.total_bytes,
            })
        })
        .collect()
}

/// The JSON document of `memray stats --json` (memray writes it with `indent=2`).
pub fn to_json(stats: &Statistics, metadata: &Metadata) -> Value {
    let histogram: Vec<Value> = histogram(&stats.count_by_size, BINS)
        .iter()
        .map(|b| json!({"min_bytes": b.min_bytes, "max_bytes": b.max_bytes, "count": b.count}))
        .collect();
    let mut allocators = serde_json::Map::new();
    for (allocator, count) in &stats.count_by_allocator {
        allocators.insert(allocator_type(allocator.name()), json!(count));
    }
    json!({
        "total_num_allocations": stats.total_allocations,
        "total_bytes_allocated": stats.total_bytes,
        "allocation_size_histogram": histogram,
        "allocator_type_distribution": allocators,
        "top_allocations_by_size": stats.top_locations_by_size.iter()
            .map(|(l, size)| json!({"location": format_location(l), "size": size}))
            .collect::<Vec<_>>(),
        "top_allocations_by_count": stats.top_locations_by_count.iter()
            .map(|(l, count)| json!({"location": format_location(l), "count": count}))
            .collect::<Vec<_>>(),
        "top_modules_by_allocation_size": modules_json(&stats.top_modules_by_size),
        "top_modules_by_allocation_count": modules_json(&stats.top_modules_by_count),
        "metadata": metadata.to_json(),
    })
}

/// The JSON file's exact text.
pub fn render_json(stats: &Statistics, metadata: &Metadata) -> String {
    pyjson::to_string(&to_json(stats, metadata), Style::Indented)
}

/// One process of a report over several captures: its own statistics.
pub struct ProcessStats {
    pub label: String,
    /// The capture's path, as given.
    pub capture: String,
    pub stats: Statistics,
    pub metadata: Metadata,
}

/// The terminal report over several processes: one row per process (the
/// figures its own `memray stats` prints) and their total, whose peak is
/// the peak of the summed heap over time.
pub fn render_processes_text(processes: &[ProcessStats], together: &Together) -> String {
    let sum =
        |value: fn(&Statistics) -> u64| processes.iter().map(|p| value(&p.stats)).sum::<u64>();
    let table = processes_table(
        processes,
        |p| &p.label,
        &[
            "Total allocations",
            "Total memory allocated",
            "Peak memory usage",
        ],
        |p| {
            vec![
                p.stats.total_allocations.to_string(),
                size_fmt(p.stats.total_bytes),
                size_fmt(p.metadata.peak_memory),
            ]
        },
        vec![
            sum(|s| s.total_allocations).to_string(),
            size_fmt(sum(|s| s.total_bytes)),
            size_fmt(together.peak),
        ],
        None,
    );
    format!(
        "🧮 Processes:\n{table}\n📈 Peak memory usage of all processes together:\n\t{}\n\t{}\n",
        size_fmt(together.peak),
        together.peak_note()
    )
}

/// The JSON document over several processes: each process's own `memray
/// stats --json` document under `processes`, and the total.
pub fn render_processes_json(processes: &[ProcessStats], together: &Together) -> String {
    let processes_json: Vec<Value> = processes
        .iter()
        .map(|p| {
            json!({
                "capture": p.capture,
                "process": p.label,
                "stats": to_json(&p.stats, &p.metadata),
            })
        })
        .collect();
    let total = json!({
        "total_num_allocations": processes.iter().map(|p| p.stats.total_allocations).sum::<u64>(),
        "total_bytes_allocated": processes.iter().map(|p| p.stats.total_bytes).sum::<u64>(),
        "peak_memory": together.peak,
        "peak_memory_is": "the peak of the summed heap over time",
        "peak_time": together.peak_time_ms.map(|ms| local_datetime(ms as i64)),
        "sum_of_peak_memory": together.sum_of_peaks,
    });
    let document = json!({ "processes": processes_json, "total": total });
    pyjson::to_string(&document, Style::Indented)
}
