//! `cargo xtask quickstart`: setup, a release build, then the main job — profile
//! the bundled example program with `memray run`, write its flame graph and
//! print the summary table.

use std::process::Command;

use anyhow::Result;

use crate::process::{execute, target_dir, workspace_root};

pub fn run() -> Result<()> {
    crate::setup::run()?;
    let memray = crate::workspace::build_release_memray()?.join("memray");
    let out_dir = target_dir().join("quickstart");
    std::fs::create_dir_all(&out_dir)?;
    let capture = out_dir.join("example.bin");
    let flamegraph = out_dir.join("example-flamegraph.html");
    let example = workspace_root().join("tests/fixtures/example/example.py");

    execute(
        Command::new(&memray)
            .args(["run", "--force", "-o"])
            .arg(&capture)
            .arg(&example),
    )?;
    execute(
        Command::new(&memray)
            .args(["flamegraph", "--force", "-o"])
            .arg(&flamegraph)
            .arg(&capture),
    )?;
    execute(Command::new(&memray).arg("summary").arg(&capture))?;
    println!(
        "\nOpen {} in a browser to explore the peak.",
        flamegraph.display()
    );
    Ok(())
}
