//! The probes' aya-log lines: off unless `MEMRAY_EBPF_LOG` names a level
//! (`error`, `warn`, `info`, `debug`, `trace`), then written to stderr.
//! Off, the probes skip them at their first instruction (the level is a
//! global patched in before load), so they cost nothing.

use aya::{Ebpf, EbpfLoader};
use aya_log::EbpfLogger;
use memray_ebpf_common::code_snapshot::CODE_SNAPSHOT_SCRATCH_MAP;
use memray_ebpf_common::native_stack::{
    NATIVE_COPIES_MAP, NATIVE_STACKS_DEFAULT_BYTES, NATIVE_STACKS_MAP,
};
use memray_ebpf_common::EVENTS_MAP;

use crate::Options;

const VARIABLE: &str = "MEMRAY_EBPF_LOG";
/// aya-log-ebpf's level global (its levels number like the `log` crate's).
const LEVEL_GLOBAL: &str = "AYA_LOG_LEVEL";

/// The level asked for (`Off` without the variable or with an unknown value).
fn level() -> log::LevelFilter {
    std::env::var(VARIABLE)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(log::LevelFilter::Off)
}

/// Loads `object` with the log level patched in, the ring buffers
/// `options` ask for (the native stacks' is one page unless asked for) and
/// a scratch entry a CPU in the arrays the probes index by CPU.
pub(crate) fn load(object: &[u8], options: &Options) -> Result<Ebpf, crate::Error> {
    let level = level() as u8;
    let cpus = aya::util::nr_cpus().map_err(|(_, error)| crate::Error::Io(error))? as u32;
    // Without native stacks: a page of ring and one scratch entry, unused.
    let (native_bytes, native_copies) = match options.native_stacks {
        true => (NATIVE_STACKS_DEFAULT_BYTES, cpus),
        false => (4096, 1),
    };
    Ok(EbpfLoader::new()
        .override_global(LEVEL_GLOBAL, &level, true)
        .map_max_entries(EVENTS_MAP, options.ring_buffer_bytes)
        .map_max_entries(NATIVE_STACKS_MAP, native_bytes)
        .map_max_entries(NATIVE_COPIES_MAP, native_copies)
        .map_max_entries(CODE_SNAPSHOT_SCRATCH_MAP, cpus)
        .load(object)?)
}

/// The probes' log lines, when asked for.
pub(crate) struct ProbeLog {
    logger: Option<EbpfLogger<Stderr>>,
}

impl ProbeLog {
    pub(crate) fn new(ebpf: &mut Ebpf) -> ProbeLog {
        let enabled = level() != log::LevelFilter::Off;
        ProbeLog {
            // Without the log map the lines are lost, not the probes.
            logger: enabled
                .then(|| EbpfLogger::init_with_logger(ebpf, Stderr).ok())
                .flatten(),
        }
    }

    /// Writes the lines logged so far.
    pub(crate) fn flush(&mut self) {
        if let Some(logger) = &mut self.logger {
            logger.flush();
        }
    }
}

struct Stderr;

impl log::Log for Stderr {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        eprintln!("memray ebpf {}: {}", record.level(), record.args());
    }

    fn flush(&self) {}
}
