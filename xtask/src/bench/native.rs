//! `native`: `memray run --native` of the tracker workloads (ours and memray 1.20's, against
//! the program alone), and the flame graph of a capture with a million distinct native
//! frames, ours and memray 1.20's, where the time goes to symbolizing them.
//!
//! The million frames are a million call sites: a shared library generated in assembly (no
//! compiler takes a million calls in reasonable time), whose functions each call `malloc`
//! from a thousand places, keeping every block. Each allocation's innermost return address
//! is therefore its own, in a real object with DWARF line information (from `as -g`) and call
//! frame information, so that both unwinders walk through it and both symbolizers read it.
//! The capture is recorded once by memray 1.20 and cached.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result};

use super::measure::BenchCommand;
use super::{tracker, Context, Variant};
use crate::process::execute;

/// Functions of the generated library, and the `malloc` calls in each.
const FUNCTIONS: usize = 1000;
const CALLS: usize = 1000;

pub fn prepare(context: &Context) -> Result<Vec<Variant>> {
    let mut variants: Vec<Variant> = tracker::workloads(context)?
        .iter()
        .map(|workload| {
            tracker::variant(
                context,
                &workload.environment,
                workload.label,
                &["--native"],
                &workload.file,
                workload.args,
            )
        })
        .collect();
    let capture = million_frames_capture(context)?;
    let flamegraph = |memray: &Path, output: PathBuf| {
        BenchCommand::new(
            memray,
            [
                "flamegraph".into(),
                "-f".into(),
                "-o".into(),
                output.into_os_string(),
                capture.clone().into_os_string(),
            ],
        )
    };
    variants.push(Variant {
        label: format!("flamegraph, {} distinct native frames", FUNCTIONS * CALLS),
        ours: flamegraph(&context.ours, context.cache.join("native-frames-ours.html")),
        theirs: Some(flamegraph(
            &context.reference.memray,
            context.cache.join("native-frames-memray.html"),
        )),
        profiled: None,
        extra: None,
    });
    Ok(variants)
}

/// memray 1.20's `run --native` of the generated library, made once.
fn million_frames_capture(context: &Context) -> Result<PathBuf> {
    let directory = context.cache.join("native-frames");
    let capture = directory.join("capture.bin");
    if capture.exists() {
        return Ok(capture);
    }
    std::fs::create_dir_all(&directory)?;
    let source = directory.join("frames.s");
    std::fs::write(&source, assembly())?;
    let library = directory.join("libframes.so");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    execute(
        Command::new(&compiler)
            .args(["-shared", "-g", "-o"])
            .arg(&library)
            .arg(&source),
    )?;
    let program = format!(
        "import ctypes; ctypes.CDLL({:?}).frames_run()",
        library.display().to_string()
    );
    let partial = capture.with_extension("partial");
    execute(
        Command::new(&context.reference.memray)
            .args(["run", "--native", "--quiet", "--force", "-o"])
            .arg(&partial)
            .args(["-c", &program]),
    )?;
    std::fs::rename(&partial, &capture)
        .with_context(|| format!("rename to {}", capture.display()))?;
    Ok(capture)
}

/// `frames_0` … `frames_999`, each calling `malloc(16)` from a thousand call sites, and
/// `frames_run` calling them all. x86-64, System V; call frame information for each.
fn assembly() -> String {
    let mut text = String::from("\t.text\n");
    let function = |text: &mut String, name: &str, body: &dyn Fn(&mut String)| {
        let _ = writeln!(text, "\t.globl {name}\n\t.type {name}, @function\n{name}:");
        // One push keeps the stack 16-byte aligned at each call.
        text.push_str("\t.cfi_startproc\n\tsub $8, %rsp\n\t.cfi_def_cfa_offset 16\n");
        body(text);
        text.push_str("\tadd $8, %rsp\n\t.cfi_def_cfa_offset 8\n\tret\n\t.cfi_endproc\n");
        let _ = writeln!(text, "\t.size {name}, .-{name}");
    };
    for index in 0..FUNCTIONS {
        function(&mut text, &format!("frames_{index}"), &|text| {
            for _ in 0..CALLS {
                text.push_str("\tmov $16, %edi\n\tcall malloc@PLT\n");
            }
        });
    }
    function(&mut text, "frames_run", &|text| {
        for index in 0..FUNCTIONS {
            let _ = writeln!(text, "\tcall frames_{index}");
        }
    });
    text.push_str("\t.section .note.GNU-stack,\"\",@progbits\n");
    text
}
