//! Progress of long operations: live spinners on a terminal, one line per finished step
//! elsewhere, always on standard error so standard output stays clean for `--json`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The display for one command.
#[derive(Clone)]
pub struct Progress {
    bars: Option<MultiProgress>,
}

/// One step being shown.
pub struct Step {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Progress {
    /// Spinners when standard error is a terminal; plain lines otherwise.
    pub fn new() -> Progress {
        let bars = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress { bars }
    }

    /// Shows `message` as under way.
    pub fn start(&self, message: String) -> Step {
        let bar = self.bars.as_ref().map(|bars| {
            let bar = bars.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed:.dim}")
                    .expect("the template is valid"),
            );
            bar.set_message(message);
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Step { bar, started: Instant::now() }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Step {
    /// Marks the step done, with what came of it.
    pub fn done(self, message: String) {
        self.finish("✓", message);
    }

    /// Marks the step failed.
    pub fn failed(self, message: String) {
        self.finish("✗", message);
    }

    fn finish(self, mark: &str, message: String) {
        let line = format!("{mark} {message} ({:.1}s)", self.started.elapsed().as_secs_f64());
        match self.bar {
            Some(bar) => {
                bar.set_style(
                    ProgressStyle::with_template("{msg}").expect("the template is valid"),
                );
                bar.finish_with_message(line);
            }
            None => crate::note!("{line}"),
        }
    }
}
