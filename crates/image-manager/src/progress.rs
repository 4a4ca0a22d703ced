//! Progress of long work (builds) for people.
//!
//! On a terminal: one live line per running node (name, platform, the builder's current
//! step, elapsed time) under an overall bar, redrawn by indicatif. Elsewhere (CI logs, pipes,
//! `--quiet`): the printer's plain `Building x` / `Built x (12.3s)` lines, one per event.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::printer::Printer;

pub struct Progress<'a> {
    printer: &'a Printer,
    live: Option<Live>,
}

struct Live {
    multi: MultiProgress,
    overall: ProgressBar,
    running: HashMap<usize, ProgressBar>,
}

impl<'a> Progress<'a> {
    /// `total` is how many nodes will run.
    pub fn new(printer: &'a Printer, total: usize) -> Self {
        let live =
            (printer.is_interactive() && std::io::stderr().is_terminal() && total > 0).then(|| {
                let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
                let overall = multi.add(ProgressBar::new(total as u64));
                overall.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>12.bold.cyan} [{bar:30}] {pos}/{len} {elapsed}",
                    )
                    .expect("the template is valid")
                    .progress_chars("=> "),
                );
                overall.set_prefix("Building");
                overall.enable_steady_tick(Duration::from_millis(200));
                Live {
                    multi,
                    overall,
                    running: HashMap::new(),
                }
            });
        Self { printer, live }
    }

    pub fn started(&mut self, id: usize, label: &str) {
        match &mut self.live {
            Some(live) => {
                let bar = live
                    .multi
                    .insert_before(&live.overall, ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner:.green} {prefix} {wide_msg} {elapsed:>4}",
                    )
                    .expect("the template is valid"),
                );
                bar.set_prefix(label.to_owned());
                bar.enable_steady_tick(Duration::from_millis(120));
                live.running.insert(id, bar);
            }
            None => self.printer.status("Building", label),
        }
    }

    /// The builder reached a new step (`3/7 RUN apt-get ...`).
    pub fn step(&mut self, id: usize, line: &str) {
        if let Some(bar) = self.live.as_ref().and_then(|live| live.running.get(&id)) {
            bar.set_message(line.to_owned());
        }
    }

    /// A node ended; `verb` is `Built`, `Failed`, `Skipped` or `Cancelled`.
    pub fn finished(&mut self, id: usize, verb: &str, message: &str) {
        match &mut self.live {
            Some(live) => {
                if let Some(bar) = live.running.remove(&id) {
                    bar.finish_and_clear();
                    live.multi.remove(&bar);
                }
                live.overall.inc(1);
                let line = self.printer.status_line(verb, message);
                let _ = live.multi.println(line);
            }
            None => self.printer.status(verb, message),
        }
    }

    /// A line that must stay visible (an error), printed above the live lines.
    pub fn error(&mut self, message: &str) {
        match &self.live {
            Some(live) => {
                live.multi.suspend(|| self.printer.error(message));
            }
            None => self.printer.error(message),
        }
    }

    pub fn finish(self) {
        if let Some(live) = self.live {
            for (_, bar) in live.running {
                bar.finish_and_clear();
            }
            live.overall.finish_and_clear();
            let _ = live.multi.clear();
        }
    }
}
