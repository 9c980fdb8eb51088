//! Writes sample reports built from synthetic models, plus the figures the
//! browser tests expect to find in them (computed here from the generated
//! stacks, not from the pages):
//!
//!     cargo run -p memray-html --example sample_pages -- OUT_DIR [--big N_STACKS] [--min-node-fraction F]
//!
//! OUT_DIR receives flamegraph.html, temporal.html, temporal_leaks.html, table.html,
//! expectations.json and, with `--big`, big.html: N distinct stacks (the
//! browser test uses a million).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use memray_html::{
    render_flamegraph, render_table, FlameGraph, FlameGraphBuilder, Interval, MemorySample,
    Metadata, PageOptions, ReportKind, StackFrame, Table, TableRow,
};
use serde_json::json;

const START_MS: u64 = 1_757_000_000_000;
const THREADS: [&str; 3] = ["0x1 (MainThread)", "0x2 (worker-1)", "0x3 (worker-2)"];

fn main() -> ExitCode {
    match parse_args(std::env::args().skip(1)) {
        Ok((out, big, options)) => match write_pages(&out, big, &options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sample_pages: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("sample_pages: {e}\nusage: sample_pages OUT_DIR [--big N_STACKS] [--min-node-fraction F]");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(
    mut args: impl Iterator<Item = String>,
) -> Result<(PathBuf, Option<u32>, PageOptions), String> {
    let out = args
        .next()
        .map(PathBuf::from)
        .ok_or("no output directory")?;
    let mut big = None;
    let mut options = PageOptions::default();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let bad = || format!("bad value for {flag}: {value}");
        match flag.as_str() {
            "--big" => big = Some(value.parse().map_err(|_| bad())?),
            "--min-node-fraction" => {
                options.min_node_fraction = value.parse().map_err(|_| bad())?
            }
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok((out, big, options))
}

fn write_pages(
    out: &Path,
    big: Option<u32>,
    options: &PageOptions,
) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let (flame, flame_expect) = small_flamegraph();
    std::fs::write(
        out.join("flamegraph.html"),
        render_flamegraph(&flame, options)?,
    )?;
    let (temporal, temporal_expect) = temporal_flamegraph();
    std::fs::write(
        out.join("temporal.html"),
        render_flamegraph(&temporal, options)?,
    )?;
    std::fs::write(
        out.join("temporal_leaks.html"),
        render_flamegraph(&temporal_leaks(&temporal), options)?,
    )?;
    let (table, table_expect) = table();
    std::fs::write(out.join("table.html"), render_table(&table))?;
    let mut expectations = json!({
        "flamegraph": flame_expect,
        "temporal": temporal_expect,
        "table": table_expect,
    });
    if let Some(stacks) = big {
        let graph = big_flamegraph(stacks);
        std::fs::write(out.join("big.html"), render_flamegraph(&graph, options)?)?;
        expectations["big"] = json!({
            "stacks": stacks,
            "model_nodes": graph.nodes.len(),
            "total_bytes": graph.total_bytes(),
        });
    }
    std::fs::write(
        out.join("expectations.json"),
        serde_json::to_string_pretty(&expectations)?,
    )?;
    Ok(())
}

fn metadata(name: &str, kind: ReportKind) -> Metadata {
    Metadata {
        capture_name: name.to_owned(),
        command_line: format!("memray run -o {name} app.py --workers 2"),
        pid: Some(4242),
        start_time_ms: START_MS,
        end_time_ms: START_MS + 8_250,
        peak_memory: 0,
        total_allocations: 0,
        kind,
        python_allocator: "pymalloc".to_owned(),
        has_native_traces: true,
        trace_python_allocators: false,
        merge_threads: false,
        inverted: false,
        pymalloc_leaks_warning: false,
        cut_off: false,
    }
}

/// Deterministic pseudo-random numbers (xorshift), so pages are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A frame: (function, file, line, interesting, import system).
type Frame = (&'static str, &'static str, i32, bool, bool);

const BOOTSTRAP: [Frame; 3] = [
    ("_run_module_as_main", "<frozen runpy>", 198, false, false),
    ("_run_code", "<frozen runpy>", 88, false, false),
    ("<module>", "app.py", 40, true, false),
];

/// The stack shapes of the small sample, per thread.
fn stack_shapes(thread: usize) -> Vec<Vec<Frame>> {
    let native = |f: &'static str, file: &'static str| (f, file, 0, true, false);
    if thread == 0 {
        let main = ("main", "app.py", 35, true, false);
        vec![
            vec![
                main,
                ("load_config", "app.py", 12, true, false),
                (
                    "loads",
                    "/usr/lib/python3.11/json/__init__.py",
                    346,
                    true,
                    false,
                ),
                (
                    "decode",
                    "/usr/lib/python3.11/json/decoder.py",
                    337,
                    true,
                    false,
                ),
                (
                    "raw_decode",
                    "/usr/lib/python3.11/json/decoder.py",
                    353,
                    true,
                    false,
                ),
                native("PyUnicode_New", "Objects/unicodeobject.c"),
            ],
            vec![
                main,
                ("import_plugins", "app.py", 18, true, false),
                (
                    "_find_and_load",
                    "<frozen importlib._bootstrap>",
                    1176,
                    true,
                    true,
                ),
                (
                    "_load_unlocked",
                    "<frozen importlib._bootstrap>",
                    690,
                    true,
                    true,
                ),
                (
                    "exec_module",
                    "<frozen importlib._bootstrap_external>",
                    940,
                    true,
                    true,
                ),
                ("<module>", "plugins/heavy.py", 3, true, false),
                ("build_table", "plugins/heavy.py", 9, true, false),
                native("PyList_New", "Objects/listobject.c"),
            ],
            vec![
                main,
                ("process_batch", "app.py", 25, true, false),
                ("transform", "app.py", 30, true, false),
                (
                    "zeros",
                    "site-packages/numpy/core/numeric.py",
                    140,
                    true,
                    false,
                ),
                native("PyDataMem_NEW", "numpy/core/src/multiarray/alloc.c"),
            ],
        ]
    } else {
        let run = ("run", "/usr/lib/python3.11/threading.py", 975, true, false);
        let worker = ("worker_loop", "app.py", 50, true, false);
        vec![
            vec![
                run,
                worker,
                ("handle_request", "app.py", 58, true, false),
                ("get", "site-packages/requests/api.py", 73, true, false),
                (
                    "read",
                    "site-packages/urllib3/response.py",
                    567,
                    true,
                    false,
                ),
                native("malloc", "libc.so.6"),
            ],
            vec![
                run,
                worker,
                ("handle_request", "app.py", 60, true, false),
                (
                    "dumps",
                    "/usr/lib/python3.11/json/__init__.py",
                    231,
                    true,
                    false,
                ),
                native("PyBytes_FromSize", "Objects/bytesobject.c"),
            ],
        ]
    }
}

fn frames_of(shape: &[Frame]) -> Vec<StackFrame<'static>> {
    BOOTSTRAP
        .iter()
        .filter(|_| shape[0].0 == "main")
        .chain(shape)
        .map(
            |&(function, filename, lineno, interesting, import_system)| StackFrame {
                function,
                filename,
                lineno,
                interesting,
                import_system,
            },
        )
        .collect()
}

fn app_source() -> Vec<String> {
    (1..=70)
        .map(|line| match line {
            12 => "    config = json.loads(CONFIG_TEXT)".to_owned(),
            25 => "    for item in batch: results.append(transform(item))".to_owned(),
            30 => "    return numpy.zeros((rows, cols))".to_owned(),
            _ => format!("# line {line}"),
        })
        .collect()
}

fn memory_curve(samples: u64, peak: u64) -> Vec<MemorySample> {
    (0..samples)
        .map(|i| {
            // Rises to the peak two thirds of the way through, then falls.
            let x = i as f64 / (samples - 1) as f64;
            let shape = if x < 0.66 {
                x / 0.66
            } else {
                1.0 - (x - 0.66) * 1.2
            };
            let heap = (peak as f64 * shape.max(0.05)) as u64;
            MemorySample {
                time_ms: START_MS + i * 8_250 / (samples - 1),
                rss: heap + 12 * 1024 * 1024,
                heap,
            }
        })
        .collect()
}

fn small_flamegraph() -> (FlameGraph, serde_json::Value) {
    let mut builder = FlameGraphBuilder::new(metadata("memray-app.bin", ReportKind::Peak));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut total = 0u64;
    let mut allocations = 0u64;
    let mut thread_bytes = [0u64; 3];
    let mut json_bytes = 0u64;
    let mut process_batch_bytes = 0u64;
    for (t, name) in THREADS.iter().enumerate() {
        let thread = builder.thread(name);
        for shape in stack_shapes(t) {
            let frames = frames_of(&shape);
            for variant in 0..4i32 {
                let mut frames = frames.clone();
                let leaf = frames.len() - 1;
                frames[leaf].lineno = variant + 1;
                let bytes = (1 + rng.below(64)) * 64 * 1024;
                let count = 1 + rng.below(40);
                builder.add_stack(thread, &frames, bytes, count);
                total += bytes;
                allocations += count;
                thread_bytes[t] += bytes;
                if frames.iter().any(|f| f.filename.contains("json")) {
                    json_bytes += bytes;
                }
                if frames.iter().any(|f| f.function == "process_batch") {
                    process_batch_bytes += bytes;
                }
            }
        }
    }
    builder.add_source("app.py", app_source());
    for sample in memory_curve(120, total) {
        builder.add_memory_sample(sample);
    }
    let mut graph = builder.finish();
    graph.metadata.peak_memory = total;
    graph.metadata.total_allocations = allocations;
    let expect = json!({
        "total_bytes": total,
        "thread_bytes": THREADS.iter().zip(thread_bytes).map(|(n, b)| json!({"name": n, "bytes": b})).collect::<Vec<_>>(),
        "search": {"term": "json", "bytes": json_bytes},
        "zoom": {"function": "process_batch", "bytes": process_batch_bytes},
        // Every process_batch stack, and only those, passes through numpy.
        "module": {"term": "numpy", "bytes": process_batch_bytes},
        "import_system_function": "_find_and_load",
        "uninteresting_function": "_run_code",
        "inverted_roots": ["PyUnicode_New", "PyList_New", "PyDataMem_NEW", "malloc", "PyBytes_FromSize"],
        "source_line": "    for item in batch: results.append(transform(item))",
        "duration_text": "8.25 s",
    });
    (graph, expect)
}

/// A temporal high-water-mark model whose per-snapshot marks are exactly the
/// live bytes the page will add up from the intervals.
fn temporal_flamegraph() -> (FlameGraph, serde_json::Value) {
    const SAMPLES: u32 = 40;
    let snapshots = SAMPLES as usize + 1;
    let mut builder = FlameGraphBuilder::new(metadata("memray-temporal.bin", ReportKind::Peak));
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut leaves = Vec::new();
    for (t, name) in THREADS.iter().enumerate() {
        let thread = builder.thread(name);
        for shape in stack_shapes(t) {
            leaves.push(builder.add_stack(thread, &frames_of(&shape), 0, 0));
        }
    }
    let mut live = vec![0u64; snapshots];
    for _ in 0..600 {
        let node = leaves[rng.below(leaves.len() as u64) as usize];
        let allocated_before = rng.below(snapshots as u64) as u32;
        let lifetime = 1 + rng.below(12) as u32;
        let deallocated_before = Some(allocated_before + lifetime)
            .filter(|&d| (d as usize) < snapshots && rng.below(5) > 0);
        let bytes = (1 + rng.below(32)) * 16 * 1024;
        let end = deallocated_before.map_or(snapshots, |d| d as usize);
        for mark in &mut live[allocated_before as usize..end] {
            *mark += bytes;
        }
        builder.add_interval(Interval {
            allocated_before,
            deallocated_before,
            node,
            n_allocations: 1 + rng.below(3),
            bytes,
        });
    }
    builder.set_high_water_mark_by_snapshot(live.clone());
    for (i, sample) in memory_curve(SAMPLES as u64, 1).into_iter().enumerate() {
        builder.add_memory_sample(MemorySample {
            heap: live[i],
            rss: live[i] + 8 * 1024 * 1024,
            ..sample
        });
    }
    let mut graph = builder.finish();
    let peak = live.iter().copied().max().unwrap_or(0);
    graph.metadata.peak_memory = peak;
    graph.metadata.total_allocations = 600;
    let peak_snapshot = live.iter().position(|&v| v == peak).unwrap_or(0);
    let window = (5usize, 15usize);
    let window_peak = live[window.0..=window.1].iter().copied().max().unwrap_or(0);
    let window_peak_snapshot = window.0
        + live[window.0..=window.1]
            .iter()
            .position(|&v| v == window_peak)
            .unwrap_or(0);
    let leaked_in_window: u64 = graph
        .temporal
        .iter()
        .flat_map(|t| &t.intervals)
        .filter(|i| (window.0..=window.1).contains(&(i.allocated_before as usize)))
        .filter(|i| i.deallocated_before.is_none_or(|d| d as usize > window.1))
        .map(|i| i.bytes)
        .sum();
    let expect = json!({
        "snapshots": snapshots,
        "leaks_window_bytes": leaked_in_window,
        "full_peak_bytes": peak,
        "full_peak_snapshot": peak_snapshot,
        "window": [window.0, window.1],
        "window_peak_bytes": window_peak,
        "window_peak_snapshot": window_peak_snapshot,
    });
    (graph, expect)
}

/// The same intervals as a temporal leaks view over pymalloc (which warns).
fn temporal_leaks(temporal: &FlameGraph) -> FlameGraph {
    let mut leaks = temporal.clone();
    leaks.metadata.kind = ReportKind::Leaks;
    leaks.metadata.pymalloc_leaks_warning = true;
    if let Some(t) = leaks.temporal.as_mut() {
        t.high_water_mark_by_snapshot = None;
    }
    leaks
}

fn table() -> (Table, serde_json::Value) {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let allocators = ["malloc", "pymalloc_malloc", "calloc", "realloc", "mmap"];
    let functions = [
        "load_config",
        "build_table",
        "transform",
        "handle_request",
        "read_chunk",
        "parse_row",
    ];
    let mut rows = Vec::new();
    for i in 0..260u32 {
        let thread = THREADS[rng.below(3) as usize].to_owned();
        let function = functions[rng.below(functions.len() as u64) as usize];
        let file = if function == "handle_request" {
            "worker.py"
        } else {
            "app.py"
        };
        let location = format!("{function} at {file}:{}", 10 + i);
        rows.push(TableRow {
            process: String::new(),
            thread,
            size: (1 + rng.below(10_000)) * 97,
            allocator: allocators[rng.below(allocators.len() as u64) as usize].to_owned(),
            n_allocations: 1 + rng.below(500),
            stack: vec![
                location.clone(),
                format!("main at app.py:{}", 35 + i % 3),
                "<module> at app.py:40".to_owned(),
            ],
            location,
        });
    }
    let term = "worker.py";
    let matching: Vec<&TableRow> = rows.iter().filter(|r| r.location.contains(term)).collect();
    let expect = json!({
        "rows": rows.len(),
        "filter": {"term": term, "rows": matching.len(), "bytes": matching.iter().map(|r| r.size).sum::<u64>()},
        "max_size": rows.iter().map(|r| r.size).max(),
        "min_size": rows.iter().map(|r| r.size).min(),
        "max_count": rows.iter().map(|r| r.n_allocations).max(),
    });
    let mut metadata = metadata("memray-app.bin", ReportKind::Peak);
    metadata.total_allocations = rows.iter().map(|r| r.n_allocations).sum();
    metadata.peak_memory = rows.iter().map(|r| r.size).sum();
    (Table { metadata, rows }, expect)
}

/// `stacks` distinct stacks: six levels of ten-way branching under a shared
/// prefix, two frames per level, drawn from a pool of a few thousand
/// functions; sizes are heavy-tailed, as in real programs.
fn big_flamegraph(stacks: u32) -> FlameGraph {
    const FUNCTIONS: u64 = 3_000;
    const FILES: u64 = 400;
    let names: Vec<String> = (0..FUNCTIONS).map(|f| format!("function_{f}")).collect();
    let files: Vec<String> = (0..FILES)
        .map(|f| format!("/srv/app/package_{}/module_{f}.py", f % 40))
        .collect();
    let mut builder = FlameGraphBuilder::new(metadata("memray-big.bin", ReportKind::Peak));
    let threads: Vec<u32> = THREADS.iter().map(|name| builder.thread(name)).collect();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut total = 0;
    for stack in 0..stacks {
        let mut frames = frames_of(&[("main", "app.py", 35, true, false)]);
        let mut prefix = 0u64;
        for level in 0..6u32 {
            let digit = u64::from(stack / 10u32.pow(5 - level) % 10);
            prefix = prefix * 10 + digit;
            for half in 0..2u64 {
                let function = (prefix.wrapping_mul(2_654_435_761) >> 3)
                    .wrapping_add(half * 7 + u64::from(level))
                    % FUNCTIONS;
                frames.push(StackFrame {
                    function: &names[function as usize],
                    filename: &files[(function % FILES) as usize],
                    lineno: (function % 400) as i32 * 10 + digit as i32 + 1,
                    interesting: true,
                    import_system: false,
                });
            }
        }
        // Pareto-like: most stacks small, a few large.
        let bytes = 64 + (1u64 << 22) / (1 + rng.below(1 << 16));
        builder.add_stack(
            threads[(stack / 100_000 % 3) as usize],
            &frames,
            bytes,
            1 + rng.below(8),
        );
        total += bytes;
    }
    let mut graph = builder.finish();
    graph.metadata.peak_memory = total;
    graph.metadata.total_allocations = u64::from(stacks) * 4;
    graph.memory = memory_curve(10_000, total);
    graph
}
