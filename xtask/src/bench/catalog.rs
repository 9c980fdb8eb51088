//! The benchmarks. Adding one means adding an entry to [`all`]: a name, and a
//! `prepare` function that creates (or reuses, from the cache) its inputs and
//! returns the command pairs to compare.

use std::ffi::OsStr;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result};

use super::measure::BenchCommand;
use super::{Benchmark, Context, Extra, Runner, Variant};
use crate::process::{cargo_program, execute};

pub fn all() -> Vec<Benchmark> {
    vec![
        Benchmark {
            name: "read",
            about: "`memray parse FILE > /dev/null` on a capture of a few million records",
            runner: Runner::Pairs(prepare_read),
        },
        Benchmark {
            name: "reports",
            about: "every reporter on captures of 51 and 105 million records (`--report` selects)",
            runner: Runner::Pairs(super::reports::prepare),
        },
        Benchmark {
            name: "run",
            about: "`memray run` of the tracker workloads, against plain Python",
            runner: Runner::Pairs(super::tracker::prepare),
        },
        Benchmark {
            name: "native",
            about: "`memray run --native` of the tracker workloads against plain Python, and \
                    `flamegraph` of a capture with a million distinct native frames",
            runner: Runner::Pairs(super::native::prepare),
        },
        Benchmark {
            name: "tracker-api",
            about: "the tracker workloads inside a `memray.Tracker` block, ours and memray 1.20's",
            runner: Runner::Pairs(super::tracker::prepare_api),
        },
        Benchmark {
            name: "reader-api",
            about: "`memray.FileReader` high-water-mark records of the 51 M-record capture, \
                    ours and memray 1.20's",
            runner: Runner::Pairs(super::reports::prepare_reader_api),
        },
        Benchmark {
            name: "aggregate",
            about: "`memray run --aggregate` of 100,000 mmaps and munmaps, 30,000 mappings live",
            runner: Runner::Pairs(|context| {
                Ok(vec![super::tracker::variant(
                    context,
                    &context.reference,
                    "100k mmaps",
                    &["--aggregate"],
                    &context.workloads.join("mmap_churn.py"),
                    &["100000"],
                )])
            }),
        },
        // eBPF is a feature of the Linux kernel.
        #[cfg(target_os = "linux")]
        Benchmark {
            name: "ebpf",
            about: "`memray run --ebpf` of the tracker workloads, against plain Python, \
                    in-process `memray run`, memray 1.20 and a bpftrace script",
            runner: Runner::Own(super::ebpf::run),
        },
        #[cfg(target_os = "linux")]
        Benchmark {
            name: "system",
            about: "`memray attach --ebpf --all`: attach time over 20 idle Python processes, \
                    the consumer's CPU and RSS per tracked process, and the cost to a process \
                    outside the pid set beside bpftrace's",
            runner: Runner::Own(super::system::run),
        },
        Benchmark {
            name: "live",
            about:
                "`memray run --live-remote` with `memray live`: keeping up at 1 M allocations/s \
                    (`--live-seconds`), and the added time beside `run` to a file; \
                    ours and memray 1.20's",
            runner: Runner::Own(super::live::run),
        },
    ]
}

/// Rounds of bench/workloads/alloc_churn.py: ~3.3 M records.
const CHURN_ROUNDS: &str = "30";

fn prepare_read(context: &Context) -> Result<Vec<Variant>> {
    let plain = context.cache.join("alloc_churn-plain.bin");
    if !plain.exists() {
        record(context, "alloc_churn.py", CHURN_ROUNDS, &plain)?;
    }
    let compressed = context.cache.join("alloc_churn-lz4.bin");
    if !compressed.exists() {
        lz4_compress(&plain, &compressed)?;
    }
    let variants = [("plain", plain), ("lz4", compressed)]
        .into_iter()
        .map(|(label, file)| Variant {
            label: label.to_string(),
            ours: BenchCommand::new(&context.ours, [OsStr::new("parse"), file.as_os_str()]),
            theirs: Some(BenchCommand::new(
                &context.reference.memray,
                [OsStr::new("parse"), file.as_os_str()],
            )),
            profiled: None,
            extra: read_throughput(context, &file),
        })
        .collect();
    Ok(variants)
}

/// Records a workload of bench/workloads with the reference memray,
/// uncompressed, with a fixed hash seed so that every run allocates alike.
pub fn record(context: &Context, workload: &str, rounds: &str, output: &Path) -> Result<()> {
    let partial = output.with_extension("partial");
    execute(
        Command::new(&context.reference.memray)
            .env("PYTHONHASHSEED", "0")
            .args([
                "run",
                "--quiet",
                "--force",
                "--trace-python-allocators",
                "--no-compress",
                "-o",
            ])
            .arg(&partial)
            .arg(context.workloads.join(workload))
            .arg(rounds),
    )?;
    std::fs::rename(&partial, output).with_context(|| format!("rename to {}", output.display()))
}

/// The same bytes as one LZ4 frame: what memray writes when it compresses a
/// finished capture.
fn lz4_compress(plain: &Path, compressed: &Path) -> Result<()> {
    let partial = compressed.with_extension("partial");
    let mut input = File::open(plain).with_context(|| plain.display().to_string())?;
    let output = File::create(&partial).with_context(|| partial.display().to_string())?;
    let mut encoder = lz4_flex::frame::FrameEncoder::new(BufWriter::new(output));
    std::io::copy(&mut input, &mut encoder)?;
    encoder.finish()?;
    std::fs::rename(&partial, compressed)?;
    Ok(())
}

/// The format crate's own reader benchmark (records/second), once it exists.
fn read_throughput(context: &Context, file: &Path) -> Option<Extra> {
    let example = context
        .root
        .join("userspace/format/examples/read_throughput.rs");
    if !example.exists() {
        return None;
    }
    let manifest = context.root.join("Cargo.toml");
    let cargo_args = ["run", "--quiet", "--release", "--manifest-path"];
    let example_args = ["-p", "memray-format", "--example", "read_throughput", "--"];
    let args = cargo_args
        .iter()
        .map(OsStr::new)
        .chain([manifest.as_os_str()])
        .chain(example_args.iter().map(OsStr::new))
        .chain([file.as_os_str()]);
    Some(Extra {
        label: "memray-format read_throughput",
        command: BenchCommand::new(cargo_program(), args),
    })
}
