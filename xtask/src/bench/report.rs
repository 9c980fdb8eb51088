//! Printing and saving benchmark results (JSON and markdown).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use serde_json::{json, Value};

use super::measure::Sample;
use super::{Outcome, Side};

/// Medians of one side.
struct Summary {
    wall: Duration,
    peak_rss_kib: u64,
}

fn summarize(samples: &[Sample]) -> Option<Summary> {
    let mut walls: Vec<Duration> = samples.iter().map(|s| s.wall).collect();
    let mut rss: Vec<u64> = samples.iter().map(|s| s.peak_rss_kib).collect();
    Some(Summary {
        wall: median(&mut walls)?,
        peak_rss_kib: median(&mut rss)?,
    })
}

fn median<T: Ord + Copy>(values: &mut [T]) -> Option<T> {
    values.sort_unstable();
    values.get(values.len() / 2).copied()
}

fn side_summary(side: &Side) -> Result<Summary, String> {
    match &side.samples {
        Ok(samples) => summarize(samples).ok_or_else(|| "no samples".to_string()),
        Err(why) => Err(why.clone()),
    }
}

pub fn ratio(ours: f64, theirs: f64) -> Option<f64> {
    (theirs > 0.0).then(|| ours / theirs)
}

fn describe(summary: &Result<Summary, String>) -> String {
    match summary {
        Ok(s) => format!(
            "{:>9.3} s  {:>8.1} MiB",
            s.wall.as_secs_f64(),
            s.peak_rss_kib as f64 / 1024.0
        ),
        Err(why) => format!("FAILED: {why}"),
    }
}

/// What memray lacks is said in place of its figures.
const NOT_IN_MEMRAY: &str = "not in memray 1.20";

/// memray's side, or why there is none.
fn theirs_summary(outcome: &Outcome) -> Result<Summary, String> {
    outcome
        .theirs
        .as_ref()
        .map_or_else(|| Err(NOT_IN_MEMRAY.to_string()), side_summary)
}

pub fn print_outcome(outcome: &Outcome) {
    let ours = side_summary(&outcome.ours);
    let theirs = theirs_summary(outcome);
    println!("-- {} [{}]", outcome.benchmark, outcome.variant);
    println!(
        "   ours    {}   ({})",
        describe(&ours),
        outcome.ours.command
    );
    match &outcome.theirs {
        Some(side) => println!("   memray  {}   ({})", describe(&theirs), side.command),
        None => println!("   memray  {NOT_IN_MEMRAY}"),
    }
    if let (Ok(o), Ok(t)) = (&ours, &theirs) {
        let time = ratio(o.wall.as_secs_f64(), t.wall.as_secs_f64());
        let rss = ratio(o.peak_rss_kib as f64, t.peak_rss_kib as f64);
        println!(
            "   ours/memray: time {}  peak RSS {}",
            format_ratio(time),
            format_ratio(rss)
        );
    }
    if let Some(plain) = &outcome.plain {
        print_profiled(plain, &ours, &theirs, outcome.capture_bytes);
    }
    if let Some((label, line)) = &outcome.extra {
        println!("   {label}: {line}");
    }
}

/// The program alone, the time each profiler adds to it, and the captures' sizes.
fn print_profiled(
    plain: &Side,
    ours: &Result<Summary, String>,
    theirs: &Result<Summary, String>,
    capture_bytes: Option<[Option<u64>; 2]>,
) {
    println!(
        "   plain   {}   ({})",
        describe(&side_summary(plain)),
        plain.command
    );
    let plain = side_summary(plain);
    if let (Ok(p), Ok(o), Ok(t)) = (&plain, ours, theirs) {
        let [ours_added, theirs_added] = added_seconds(p, o, t);
        println!(
            "   added time: ours {ours_added:.3} s, memray {theirs_added:.3} s, ours/memray {}",
            format_ratio(ratio(ours_added, theirs_added))
        );
    }
    if let Some([ours, theirs]) = capture_bytes {
        println!(
            "   capture: ours {}, memray {}, ours/memray {}",
            format_bytes(ours),
            format_bytes(theirs),
            format_ratio(
                ours.zip(theirs)
                    .and_then(|(o, t)| ratio(o as f64, t as f64))
            )
        );
    }
}

/// Median seconds each profiler adds to the plain run (ours, memray's).
fn added_seconds(plain: &Summary, ours: &Summary, theirs: &Summary) -> [f64; 2] {
    let base = plain.wall.as_secs_f64();
    [ours, theirs].map(|side| side.wall.as_secs_f64() - base)
}

fn format_bytes(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "missing".to_string(),
        |b| format!("{:.1} KiB", b as f64 / 1024.0),
    )
}

pub fn format_ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.2}x"))
}

/// Writes `<dir>/<unix time>.json` and `.md`; returns the JSON path.
pub fn write(dir: &Path, outcomes: &[Outcome]) -> Result<PathBuf> {
    let stem = results_stem(dir)?;
    let json_path = stem.with_extension("json");
    let records: Vec<Value> = outcomes.iter().map(outcome_json).collect();
    std::fs::write(&json_path, serde_json::to_string_pretty(&records)?)?;
    std::fs::write(stem.with_extension("md"), markdown(outcomes))?;
    Ok(json_path)
}

/// Saves a benchmark's own markdown report as `<dir>/<unix time>.<extension>`
/// and says where.
pub fn write_markdown(dir: &Path, extension: &str, markdown: &str) -> Result<()> {
    let written = results_stem(dir)?.with_extension(extension);
    std::fs::write(&written, markdown).with_context(|| written.display().to_string())?;
    println!("results written to {}", written.display());
    Ok(())
}

/// `<dir>/<unix time>`, the results directory created: results files are
/// this with their extension.
fn results_stem(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    Ok(dir.join(stamp.to_string()))
}

fn side_json(side: &Side) -> Value {
    let samples = match &side.samples {
        Ok(samples) => samples,
        Err(why) => return json!({ "command": side.command, "error": why }),
    };
    let Some(summary) = summarize(samples) else {
        return json!({ "command": side.command, "error": "no samples" });
    };
    json!({
        "command": side.command,
        "median_wall_seconds": summary.wall.as_secs_f64(),
        "median_peak_rss_kib": summary.peak_rss_kib,
        "wall_seconds": samples.iter().map(|s| s.wall.as_secs_f64()).collect::<Vec<_>>(),
        "peak_rss_kib": samples.iter().map(|s| s.peak_rss_kib).collect::<Vec<_>>(),
    })
}

fn outcome_json(outcome: &Outcome) -> Value {
    json!({
        "benchmark": outcome.benchmark,
        "variant": outcome.variant,
        "ours": side_json(&outcome.ours),
        "memray": outcome.theirs.as_ref().map(side_json),
        "plain": outcome.plain.as_ref().map(side_json),
        "capture_bytes": outcome.capture_bytes.map(|[ours, memray]| json!({ "ours": ours, "memray": memray })),
        "extra": outcome.extra.as_ref().map(|(label, line)| json!({ "label": label, "output": line })),
    })
}

fn markdown(outcomes: &[Outcome]) -> String {
    let mut text = String::from(
        "| benchmark | variant | ours (s) | memray (s) | time ratio | ours RSS (MiB) | memray RSS (MiB) | RSS ratio |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for outcome in outcomes {
        let (ours, theirs) = (side_summary(&outcome.ours), theirs_summary(outcome));
        // Each side's figures, or why it has none, in place of its time.
        let seconds = |s: &Result<Summary, String>| match s {
            Ok(s) => format!("{:.3}", s.wall.as_secs_f64()),
            Err(why) => why.clone(),
        };
        let mib = |s: &Result<Summary, String>| {
            s.as_ref().map_or_else(
                |_| String::new(),
                |s| format!("{:.1}", s.peak_rss_kib as f64 / 1024.0),
            )
        };
        let (time_ratio, rss_ratio) = match (&ours, &theirs) {
            (Ok(o), Ok(t)) => (
                format_ratio(ratio(o.wall.as_secs_f64(), t.wall.as_secs_f64())),
                format_ratio(ratio(o.peak_rss_kib as f64, t.peak_rss_kib as f64)),
            ),
            _ => (String::new(), String::new()),
        };
        let cells = format!(
            "{} | {} | {time_ratio} | {} | {} | {rss_ratio}",
            seconds(&ours),
            seconds(&theirs),
            mib(&ours),
            mib(&theirs),
        );
        text.push_str(&format!(
            "| {} | {} | {cells} |\n",
            outcome.benchmark, outcome.variant
        ));
    }
    text.push_str(&profiled_markdown(outcomes));
    text
}

/// The profiling variants: plain / ours / memray medians and what each adds.
fn profiled_markdown(outcomes: &[Outcome]) -> String {
    let mut text = String::from(
        "\n| benchmark | variant | plain (s) | ours (s) | memray (s) | added ours/memray | \
         plain RSS (MiB) | ours RSS (MiB) | memray RSS (MiB) | ours capture (KiB) | memray capture (KiB) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut any = false;
    for outcome in outcomes {
        let Some(plain) = &outcome.plain else {
            continue;
        };
        any = true;
        let summaries = (
            side_summary(plain),
            side_summary(&outcome.ours),
            theirs_summary(outcome),
        );
        let cells = match summaries {
            (Ok(p), Ok(o), Ok(t)) => {
                let [ours_added, theirs_added] = added_seconds(&p, &o, &t);
                let mib = |s: &Summary| s.peak_rss_kib as f64 / 1024.0;
                let [ours_capture, theirs_capture] = outcome
                    .capture_bytes
                    .unwrap_or_default()
                    .map(|b| b.map_or_else(String::new, |b| format!("{:.1}", b as f64 / 1024.0)));
                format!(
                    "{:.3} | {:.3} | {:.3} | {} | {:.1} | {:.1} | {:.1} | {ours_capture} | {theirs_capture}",
                    p.wall.as_secs_f64(),
                    o.wall.as_secs_f64(),
                    t.wall.as_secs_f64(),
                    format_ratio(ratio(ours_added, theirs_added)),
                    mib(&p),
                    mib(&o),
                    mib(&t),
                )
            }
            (p, o, t) => format!(
                "{} | {} | {} | | | | | | ",
                p.err().unwrap_or_default(),
                o.err().unwrap_or_default(),
                t.err().unwrap_or_default()
            ),
        };
        text.push_str(&format!(
            "| {} | {} | {cells} |\n",
            outcome.benchmark, outcome.variant
        ));
    }
    if any {
        text
    } else {
        String::new()
    }
}
