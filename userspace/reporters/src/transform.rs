//! `memray transform`: the peak (or leaks, or temporary allocations) in
//! other tools' formats: gprof2dot, csv and speedscope as memray writes them,
//! plus pprof, which memray lacks.

use std::collections::HashMap;
use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use memray_analysis::{AllocationGroup, Frame, StackResolver};
use serde_json::{json, Value};

use crate::pprof;
use crate::pyjson::{self, Style};

/// An output format and the suffix memray gives its default file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Gprof2dot,
    Csv,
    Speedscope,
    Pprof,
}

impl Format {
    /// From the command-line name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "gprof2dot" => Some(Format::Gprof2dot),
            "csv" => Some(Format::Csv),
            "speedscope" => Some(Format::Speedscope),
            "pprof" => Some(Format::Pprof),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Gprof2dot => "gprof2dot",
            Format::Csv => "csv",
            Format::Speedscope => "speedscope",
            Format::Pprof => "pprof",
        }
    }

    pub fn suffix(self) -> &'static str {
        match self {
            Format::Gprof2dot => ".json",
            Format::Csv => ".csv",
            Format::Speedscope => ".speedscope.json",
            Format::Pprof => ".pb.gz",
        }
    }
}

/// What a transform needs: the groups (threads merged) and their stacks.
pub struct TransformInput<'a> {
    pub groups: &'a [AllocationGroup],
    pub stacks: &'a dyn StackResolver,
    pub command_line: &'a str,
}

impl TransformInput<'_> {
    fn stack(&self, group: &AllocationGroup) -> Vec<Frame> {
        self.stacks.stack((&group.allocation).into())
    }
}

/// The file's bytes.
pub fn render(format: Format, input: &TransformInput<'_>) -> Vec<u8> {
    match format {
        Format::Gprof2dot => gprof2dot(input).into_bytes(),
        Format::Csv => csv(input).into_bytes(),
        Format::Speedscope => speedscope(input).into_bytes(),
        Format::Pprof => {
            let mut gz = GzEncoder::new(Vec::new(), Compression::default());
            gz.write_all(&pprof::encode(input.groups, input.stacks))
                .and_then(|()| gz.finish())
                .expect("writing to memory cannot fail")
        }
    }
}

/// Assigns ids to distinct keys in first-seen order.
struct Interner<K> {
    ids: HashMap<K, usize>,
}

impl<K: std::hash::Hash + Eq> Interner<K> {
    fn new() -> Self {
        Interner {
            ids: HashMap::new(),
        }
    }
    /// The key's id, and whether it is new.
    fn id(&mut self, key: K) -> (usize, bool) {
        let next = self.ids.len();
        let mut fresh = false;
        let id = *self.ids.entry(key).or_insert_with(|| {
            fresh = true;
            next
        });
        (id, fresh)
    }
}

fn gprof2dot(input: &TransformInput<'_>) -> String {
    let mut functions = Vec::new();
    let mut interner = Interner::new();
    let mut events = Vec::new();
    for group in input.groups {
        let chain: Vec<usize> = input
            .stack(group)
            .iter()
            .map(|f| {
                let (id, fresh) = interner.id((f.function.clone(), f.filename.clone()));
                if fresh {
                    functions.push(json!({"name": &*f.function, "module": &*f.filename}));
                }
                id
            })
            .collect();
        if !chain.is_empty() {
            events.push(json!({"callchain": chain, "cost": [group.size]}));
        }
    }
    let doc = json!({
        "version": 0,
        "costs": [{"description": "Memory", "unit": "bytes"}],
        "events": events,
        "functions": functions,
    });
    pyjson::to_string(&doc, Style::Compact)
}

/// One csv field, quoted like Python's `csv.writer` (QUOTE_MINIMAL).
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

fn thread_label(stacks: &dyn StackResolver, tid: u64) -> String {
    match stacks.thread_name(tid) {
        Some(name) if !name.is_empty() => format!("{tid:#x} ({name})"),
        _ => format!("{tid:#x}"),
    }
}

fn csv(input: &TransformInput<'_>) -> String {
    let mut out = String::from("allocator,num_allocations,size,tid,thread_name,stack_trace\r\n");
    for group in input.groups {
        let stack: Vec<String> = input
            .stack(group)
            .iter()
            .map(|f| format!("{};{};{}", f.function, f.filename, f.lineno))
            .collect();
        let fields = [
            group.allocation.allocator.name().to_ascii_uppercase(),
            group.n_allocations.to_string(),
            group.size.to_string(),
            group.tid().to_string(),
            thread_label(input.stacks, group.tid()),
            stack.join("|"),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

fn speedscope_profile(name: &str, unit: &str, samples: &[(Vec<usize>, u64)]) -> Value {
    let kept: Vec<&(Vec<usize>, u64)> = samples.iter().filter(|(_, w)| *w > 0).collect();
    json!({
        "type": "sampled",
        "name": name,
        "unit": unit,
        "startValue": 0,
        "endValue": kept.iter().map(|(_, w)| w).sum::<u64>(),
        "samples": kept.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>(),
        "weights": kept.iter().map(|(_, w)| *w).collect::<Vec<_>>(),
    })
}

fn speedscope(input: &TransformInput<'_>) -> String {
    let mut frames = Vec::new();
    let mut frame_ids = Interner::new();
    let mut sample_ids = Interner::new();
    let mut weights: Vec<(Vec<usize>, u64, u64)> = Vec::new();
    for group in input.groups {
        // Speedscope stacks are root first; memray's are leaf first.
        let sample: Vec<usize> = input
            .stack(group)
            .iter()
            .rev()
            .map(|f| {
                let (id, fresh) = frame_ids.id(f.clone());
                if fresh {
                    let mut frame = serde_json::Map::new();
                    frame.insert("name".into(), json!(&*f.function));
                    if !f.filename.is_empty() {
                        frame.insert("file".into(), json!(&*f.filename));
                    }
                    if f.lineno > 0 {
                        frame.insert("line".into(), json!(f.lineno));
                    }
                    frames.push(Value::Object(frame));
                }
                id
            })
            .collect();
        if sample.is_empty() {
            continue;
        }
        let (id, fresh) = sample_ids.id(sample.clone());
        if fresh {
            weights.push((sample, 0, 0));
        }
        weights[id].1 += group.size;
        weights[id].2 += group.n_allocations;
    }
    let by = |pick: fn(&(Vec<usize>, u64, u64)) -> u64| {
        weights
            .iter()
            .map(|w| (w.0.clone(), pick(w)))
            .collect::<Vec<_>>()
    };
    let doc = json!({
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "shared": {"frames": frames},
        "profiles": [
            speedscope_profile("Memory", "bytes", &by(|w| w.1)),
            speedscope_profile("Allocations", "none", &by(|w| w.2)),
        ],
        "name": input.command_line,
        "activeProfileIndex": 0,
        "exporter": format!("memray@{}", env!("CARGO_PKG_VERSION")),
    });
    pyjson::to_string(&doc, Style::Compact)
}
