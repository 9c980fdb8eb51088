//! A progress bar on stderr while a report replays a capture, shown only when
//! stderr is a terminal (memray's `ProgressIndicator`).
//!
//! The format crate exposes no byte position (captures are memory-mapped or
//! streamed through LZ4), so progress is allocation records replayed out of
//! the header's record count, as memray measures it. Captures without that
//! count (aggregated or killed ones) get a counter instead of a bar.

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use memray_analysis::{AnalysisError, Capture, CaptureFile, Event};

/// `capture`, replayed with a progress bar.
pub struct WithProgress<'c> {
    capture: &'c CaptureFile,
    visible: bool,
}

impl<'c> WithProgress<'c> {
    /// The bar shows only if stderr is a terminal (otherwise replays cost
    /// nothing extra).
    pub fn new(capture: &'c CaptureFile) -> WithProgress<'c> {
        WithProgress {
            capture,
            visible: std::io::stderr().is_terminal(),
        }
    }

    fn bar(&self) -> ProgressBar {
        let total = self.capture.header().stats.n_allocations;
        let bar = ProgressBar::with_draw_target(
            (total > 0).then_some(total),
            ProgressDrawTarget::stderr(),
        );
        let template = if total > 0 {
            "{msg} {wide_bar} {percent:>3}% {human_pos}/{human_len} records [{elapsed_precise}]"
        } else {
            "{spinner} {msg} {human_pos} records [{elapsed_precise}]"
        };
        bar.set_style(ProgressStyle::with_template(template).expect("a valid template"));
        bar.set_message("Reading allocation records");
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }
}

impl Capture for WithProgress<'_> {
    fn is_aggregated(&self) -> bool {
        self.capture.is_aggregated()
    }

    fn replay(
        &self,
        visit: &mut dyn FnMut(&[Event]) -> ControlFlow<()>,
    ) -> Result<(), AnalysisError> {
        if !self.visible {
            return self.capture.replay(visit);
        }
        let bar = self.bar();
        let mut records = 0u64;
        let result = self.capture.replay(&mut |batch| {
            let counted = batch
                .iter()
                .filter(|event| {
                    matches!(event, Event::Allocation(_) | Event::AggregatedAllocation(_))
                })
                .count();
            records += counted as u64;
            bar.set_position(records);
            visit(batch)
        });
        bar.finish_and_clear();
        result
    }
}
