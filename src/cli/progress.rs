//! Progress bars on stderr for downloads and the pipeline's stages: drawn only when stderr is
//! a terminal and --quiet is not given, and cleared when each stage ends, so that nothing of
//! them is left in a terminal's scrollback or reaches a pipe.

use super::printer::note;
use crate::checkpoint::hub::DownloadObserver;
use crate::pipeline::{Observer, Stage};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

pub struct Bars {
    quiet: bool,
    multi: MultiProgress,
    stages: Vec<(Stage, ProgressBar)>,
    download: Option<ProgressBar>,
}

impl Bars {
    pub fn new(quiet: bool) -> Self {
        let target = if quiet || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        Self {
            quiet,
            multi: MultiProgress::with_draw_target(target),
            stages: Vec::new(),
            download: None,
        }
    }

    fn add(&self, bar: ProgressBar, template: &str) -> ProgressBar {
        let style =
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = self.multi.add(bar.with_style(style));
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }
}

fn label(stage: Stage) -> &'static str {
    match stage {
        Stage::Load => "loading model",
        Stage::Decode => "decoding",
        Stage::Encode => "encoding",
        Stage::Prefill => "reading prompt",
    }
}

impl Observer for Bars {
    fn begin(&mut self, stage: Stage, steps: u64) {
        let bar = if steps == 0 {
            self.add(ProgressBar::new_spinner(), "{spinner} {msg} {elapsed}")
        } else {
            self.add(
                ProgressBar::new(steps),
                "{spinner} {msg:14} [{bar:30}] {pos}/{len} clips {elapsed}",
            )
        };
        bar.set_message(label(stage));
        self.stages.push((stage, bar));
    }

    fn advance(&mut self, stage: Stage) {
        if let Some((_, bar)) = self.stages.iter().find(|(s, _)| *s == stage) {
            bar.inc(1);
        }
    }

    fn end(&mut self, stage: Stage) {
        self.stages.retain(|(s, bar)| {
            if *s == stage {
                bar.finish_and_clear();
            }
            *s != stage
        });
    }
}

impl DownloadObserver for Bars {
    fn start(&mut self, file: &str, bytes: u64) {
        let bar = self.add(
            ProgressBar::new(bytes),
            "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        );
        bar.set_message(file.to_string());
        self.download = Some(bar);
    }

    fn advance(&mut self, bytes: u64) {
        if let Some(bar) = &self.download {
            bar.inc(bytes);
        }
    }

    fn done(&mut self) {
        if let Some(bar) = self.download.take() {
            bar.finish_and_clear();
        }
    }

    /// A line on stderr above the bars (a retry, a fallback to the cache); none with -q.
    fn note(&mut self, line: &str) {
        if !self.quiet {
            self.multi.suspend(|| note(format!("apollo: {line}")));
        }
    }
}
