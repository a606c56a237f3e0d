//! Progress of a push: a bar on a terminal (items/s, MB/s, ETA), a plain line every few seconds otherwise (CI
//! logs), both on standard error so standard output stays the summary.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Plain lines come at most this often.
const PLAIN_EVERY: Duration = Duration::from_secs(2);

pub struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
    total_bytes: u64,
    started: Instant,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    items: u64,
    bytes: u64,
    last_line: Option<Instant>,
}

impl Progress {
    /// Progress over `total_bytes` of input; `quiet` shows nothing.
    pub fn new(total_bytes: u64, quiet: bool) -> Progress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total_bytes);
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} {msg} ETA {eta}")
                    .expect("a valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress { bar, quiet, total_bytes, started: Instant::now(), counts: Mutex::default() }
    }

    /// `items` items made of `bytes` input bytes were accepted.
    pub fn advance(&self, items: u64, bytes: u64) {
        let mut counts = self.counts.lock().expect("progress lock");
        counts.items += items;
        counts.bytes += bytes;
        let rate = counts.items as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        if let Some(bar) = &self.bar {
            bar.set_position(counts.bytes);
            bar.set_message(format!("{} items ({rate:.0}/s)", counts.items));
            return;
        }
        let recent = counts.last_line.is_some_and(|at| at.elapsed() < PLAIN_EVERY);
        if !self.quiet && !recent {
            counts.last_line = Some(Instant::now());
            eprintln!(
                "pushed {} items, {:.1} of {:.1} MB ({rate:.0} items/s)",
                counts.items,
                counts.bytes as f64 / 1e6,
                self.total_bytes as f64 / 1e6
            );
        }
    }

    /// A line on standard error that does not break the bar.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
