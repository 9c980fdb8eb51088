//! `memray run` on the tracker workloads (bench/workloads/tracker_*.py): the
//! program alone, under our tracker and under memray 1.20, all with the same
//! interpreter. The numpy workload runs in a virtualenv of its own (numpy and
//! memray 1.20 from PyPI), created once in the cache.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Result;
use memray_tests::reference::{create_memray_venv, ReferenceMemray, REFERENCE_VERSION};

use super::measure::BenchCommand;
use super::{Context, Profiled, Variant};

/// Label, workload file, its arguments, and whether it needs numpy.
const WORKLOADS: [(&str, &str, &[&str], bool); 5] = [
    ("empty start-up", "tracker_empty.py", &[], false),
    ("dict/list/str churn", "tracker_churn.py", &["100"], false),
    ("4 threads", "tracker_threads.py", &["50"], false),
    ("500 MB buffers", "tracker_large_buffers.py", &["3"], false),
    ("numpy", "tracker_numpy.py", &["30"], true),
];

pub fn prepare(context: &Context) -> Result<Vec<Variant>> {
    Ok(workloads(context)?
        .iter()
        .map(|workload| {
            variant(
                context,
                &workload.environment,
                workload.label,
                &[],
                &workload.file,
                workload.args,
            )
        })
        .collect())
}

/// One tracker workload, with the environment it runs in.
pub struct Workload {
    pub label: &'static str,
    pub environment: ReferenceMemray,
    pub file: PathBuf,
    pub args: &'static [&'static str],
}

/// The tracker workloads (the eBPF benchmark runs them too).
pub fn workloads(context: &Context) -> Result<Vec<Workload>> {
    let numpy = numpy_environment(context)?;
    Ok(WORKLOADS
        .iter()
        .map(|&(label, file, args, needs_numpy)| Workload {
            label,
            environment: if needs_numpy {
                numpy.clone()
            } else {
                context.reference.clone()
            },
            file: context.workloads.join(file),
            args,
        })
        .collect())
}

/// `memray run OPTIONS… WORKLOAD ARGS…`, ours and memray's, and the workload alone.
pub fn variant(
    context: &Context,
    environment: &ReferenceMemray,
    label: &str,
    options: &[&str],
    workload: &Path,
    args: &[&str],
) -> Variant {
    let stem = workload
        .file_stem()
        .map_or_else(|| "workload".into(), |s| s.to_string_lossy());
    let captures = [
        context.cache.join(format!("{stem}-ours.bin")),
        context.cache.join(format!("{stem}-memray.bin")),
    ];
    let program: Vec<OsString> = std::iter::once(workload.as_os_str().to_os_string())
        .chain(args.iter().map(OsString::from))
        .collect();
    // `memray run [--python PATH] OPTIONS… --quiet --force --no-compress -o OUT program…`
    let run = |python: Option<&Path>, output: &Path| -> Vec<OsString> {
        let python = python.map(|p| [OsString::from("--python"), p.as_os_str().to_os_string()]);
        std::iter::once(OsString::from("run"))
            .chain(python.into_iter().flatten())
            .chain(options.iter().map(OsString::from))
            .chain(["--quiet", "--force", "--no-compress", "-o"].map(OsString::from))
            .chain([output.as_os_str().to_os_string()])
            .chain(program.iter().cloned())
            .collect()
    };
    Variant {
        label: label.to_string(),
        ours: BenchCommand::new(&context.ours, run(Some(&environment.python), &captures[0])),
        theirs: Some(BenchCommand::new(
            &environment.memray,
            run(None, &captures[1]),
        )),
        profiled: Some(Profiled {
            plain: BenchCommand::new(&environment.python, program.clone()),
            captures,
        }),
        extra: None,
    }
}

/// The tracker workloads (not numpy's virtualenv) inside a `memray.Tracker`
/// block: ours (the source tree's package, the release tracker library beside
/// our `memray`) and memray 1.20's, through bench/workloads/in_tracker.py.
pub fn prepare_api(context: &Context) -> Result<Vec<Variant>> {
    let wrapper = context.workloads.join("in_tracker.py");
    let package = context.root.join("userspace/python");
    let release = context.ours.parent().unwrap_or(Path::new("."));
    let path = std::env::join_paths(std::iter::once(release.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))?;
    let python = &context.reference.python;
    Ok(workloads(context)?
        .into_iter()
        .filter(|workload| workload.environment.python == *python)
        .map(|workload| {
            let stem = workload
                .file
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy();
            let captures = [
                context.cache.join(format!("{stem}-api-ours.bin")),
                context.cache.join(format!("{stem}-api-memray.bin")),
            ];
            let program: Vec<OsString> = std::iter::once(workload.file.clone().into_os_string())
                .chain(workload.args.iter().map(OsString::from))
                .collect();
            let in_tracker = |capture: &Path| -> Vec<OsString> {
                [
                    wrapper.clone().into_os_string(),
                    capture.as_os_str().to_os_string(),
                ]
                .into_iter()
                .chain(program.iter().cloned())
                .collect()
            };
            // `env` sets our package and library for our side only.
            let mut path_setting = OsString::from("PATH=");
            path_setting.push(&path);
            let ours: Vec<OsString> = [
                OsString::from(format!("PYTHONPATH={}", package.display())),
                path_setting,
                python.clone().into_os_string(),
            ]
            .into_iter()
            .chain(in_tracker(&captures[0]))
            .collect();
            Variant {
                label: workload.label.to_string(),
                ours: BenchCommand::new("env", ours),
                theirs: Some(BenchCommand::new(python, in_tracker(&captures[1]))),
                profiled: Some(Profiled {
                    plain: BenchCommand::new(python, program.clone()),
                    captures,
                }),
                extra: None,
            }
        })
        .collect())
}

/// A virtualenv of the reference interpreter with numpy and memray 1.20,
/// created once (a `ready` file marks a complete installation).
fn numpy_environment(context: &Context) -> Result<ReferenceMemray> {
    let venv = context.cache.join("numpy-venv");
    let ready = venv.join("ready");
    if ready.exists() {
        return Ok(ReferenceMemray::in_venv(&venv));
    }
    let python = memray_tests::interpreters::reference_python();
    let environment = create_memray_venv(&python.path, &venv, REFERENCE_VERSION, &["numpy"])
        .map_err(anyhow::Error::msg)?;
    std::fs::write(&ready, "")?;
    Ok(environment)
}
