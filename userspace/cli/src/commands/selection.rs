//! The flags that choose which allocations a report shows (`--leaks`,
//! `--temporary-allocation-threshold N`, `--temporary-allocations`), and the
//! one check that refuses two of them together, in argparse's words.

use std::ffi::OsString;

use memray_reporters::input::Selection;

use crate::error::{CliError, CliResult};

/// memray's `--temporary-allocation-threshold N | --temporary-allocations`.
#[derive(clap::Args)]
pub struct TemporaryArgs {
    /// Report temporary allocations, as opposed to leaked allocations or high
    /// watermark allocations. An allocation is considered temporary if at most N
    /// other allocations occur before it is deallocated. With N=0, an allocation
    /// is temporary only if it is immediately deallocated before any other
    /// allocation occurs.
    #[arg(long, value_name = "N")]
    pub temporary_allocation_threshold: Option<usize>,
    /// Equivalent to --temporary-allocation-threshold=1
    #[arg(long)]
    pub temporary_allocations: bool,
}

impl TemporaryArgs {
    pub fn threshold(&self) -> Option<usize> {
        self.temporary_allocation_threshold
            .or(self.temporary_allocations.then_some(1))
    }

    /// The allocations to report: temporary ones if asked, else leaks if
    /// `leaks`, else the peak. Two of those flags together are refused first,
    /// as argparse refuses members of a mutually exclusive group.
    pub fn selection(&self, command: &str, leaks: bool) -> Result<Selection, CliError> {
        refuse_together(
            command,
            &[
                ("--leaks", leaks),
                (
                    "--temporary-allocation-threshold",
                    self.temporary_allocation_threshold.is_some(),
                ),
                ("--temporary-allocations", self.temporary_allocations),
            ],
            std::env::args_os().skip(1),
        )?;
        Ok(Selection::from_flags(leaks, self.threshold()))
    }
}

/// argparse's refusal when more than one of `flags` (name, given) was given:
/// it names the second one on the command line, then the first.
fn refuse_together(
    command: &str,
    flags: &[(&str, bool)],
    args: impl Iterator<Item = OsString>,
) -> CliResult {
    let given: Vec<&str> = flags
        .iter()
        .filter(|(_, given)| *given)
        .map(|(name, _)| *name)
        .collect();
    if given.len() < 2 {
        return Ok(());
    }
    let mut in_order = Vec::new();
    for arg in args {
        let arg = arg.to_string_lossy();
        let flag = given.iter().find(|&&flag| {
            arg.strip_prefix(flag)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
        });
        if let Some(&flag) = flag.filter(|flag| !in_order.contains(*flag)) {
            in_order.push(flag);
        }
    }
    match in_order[..] {
        [first, second, ..] => Err(CliError::usage(
            command,
            format!("argument {second}: not allowed with argument {first}"),
        )),
        // Only possible if clap saw flags we could not find: still refuse.
        _ => Err(CliError::usage(
            command,
            format!("arguments {} are not allowed together", given.join(", ")),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(flags: &[(&str, bool)], args: &[&str]) -> Option<(String, i32)> {
        let args = args.iter().map(OsString::from);
        refuse_together("table", flags, args)
            .err()
            .map(|e| (e.message, e.exit_code))
    }

    #[test]
    fn the_later_flag_is_refused_with_the_earlier_one() {
        let flags = [("--leaks", true), ("--temporary-allocations", true)];
        assert_eq!(
            refusal(&flags, &["--temporary-allocations", "x.bin", "--leaks"]),
            Some((
                "memray table: error: argument --leaks: not allowed with argument \
                 --temporary-allocations"
                    .to_owned(),
                2
            ))
        );
        let flags = [
            ("--temporary-allocation-threshold", true),
            ("--temporary-allocations", true),
        ];
        assert_eq!(
            refusal(
                &flags,
                &[
                    "--temporary-allocations",
                    "--temporary-allocation-threshold=3"
                ]
            )
            .unwrap()
            .0,
            "memray table: error: argument --temporary-allocation-threshold: not allowed \
             with argument --temporary-allocations"
        );
        assert_eq!(refusal(&[("--leaks", true)], &["--leaks"]), None);
    }
}
