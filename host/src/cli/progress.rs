//! The terminal progress bar (standard error; hidden when it is not a
//! terminal, so pipes and CI logs stay clean).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::evaluator::Progress;

pub struct TerminalProgress {
    bar: ProgressBar,
}

impl TerminalProgress {
    pub fn new(quiet: bool) -> Self {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        TerminalProgress { bar }
    }

    /// A counter of `total` items for work outside an evaluation (ground truth).
    pub fn counter(&self, name: &str, total: u64) -> impl Fn(usize) + Sync + '_ {
        self.phase(name, total);
        move |done| self.bar.set_position(done as u64)
    }

    /// A byte counter for a download (the total may be unknown).
    pub fn bytes(&self, name: &str) -> impl Fn(u64, Option<u64>) + '_ {
        self.bar.set_prefix(name.to_string());
        self.bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ({eta})",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        move |done, total| {
            if let Some(total) = total {
                self.bar.set_length(total);
            }
            self.bar.set_position(done);
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for TerminalProgress {
    fn phase(&self, name: &str, steps: u64) {
        self.bar.set_prefix(name.to_string());
        self.bar.set_length(steps);
        self.bar.set_position(0);
        self.bar.set_message("");
    }

    fn extend(&self, steps: u64) {
        self.bar.inc_length(steps);
    }

    fn step(&self, detail: &str) {
        self.bar.set_message(detail.to_string());
        self.bar.inc(1);
    }
}
