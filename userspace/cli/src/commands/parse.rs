//! `memray parse FILE`: every record of a capture, one line each, exactly as
//! the memray release that wrote it prints them (1.18 for format 11, 1.19
//! for 12, 1.20 for 13; the dump itself lives in `memray_format::dump`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use memray_format::dump::{dump, DumpEnd};
use memray_format::CaptureReader;

use super::capture::{cut_off_warning, damage_warning, lost_records_warning};
use crate::error::{CliError, CliResult};

#[derive(clap::Args)]
pub struct Args {
    /// Results of the tracker run
    results: PathBuf,
}

pub fn run(args: Args) -> CliResult {
    if std::io::stdout().is_terminal() {
        return Err(CliError::new(
            "You must redirect stdout to a file or shell pipeline.",
        ));
    }
    let failed = |reason: &dyn std::fmt::Display| {
        CliError::new(format!(
            "Failed to parse allocation records in {}\nReason: {reason}",
            args.results.display()
        ))
    };
    let mut reader = CaptureReader::open(&args.results).map_err(|e| failed(&e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let end = dump(&mut reader, &mut out).and_then(|end| out.flush().map(|()| end));
    match end {
        Ok(DumpEnd::Complete) => {
            if let Some(count) = reader.lost_records() {
                eprintln!("{}", lost_records_warning(&args.results, count));
            }
            Ok(())
        }
        // stdout ends as memray's (with the cut or damaged record's name, if
        // any); the note goes to stderr, which memray leaves empty.
        Ok(DumpEnd::Truncated) => {
            eprintln!("{}", cut_off_warning(&args.results));
            Ok(())
        }
        Ok(DumpEnd::Damaged(damage)) => {
            eprintln!("{}", damage_warning(&args.results, damage.offset));
            Ok(())
        }
        // A closed pipe (`memray parse f | head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(failed(&e)),
    }
}
