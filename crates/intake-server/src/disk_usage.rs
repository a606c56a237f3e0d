//! What the data directory takes, part by part, and how much room its disk has left: measured when
//! `/metrics` or `/ready` asks (at most once a second), reported on `/metrics` (`intake_data_bytes{part}`,
//! `intake_disk_free_bytes`) and `/ready` (with a warning once the free space falls under a share of the disk).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use intake_store::disk::{self, FileSystem};
use serde_json::{Value, json};

use crate::metrics::Metrics;

/// The parts of the data directory: a name, and the files or folders that make it.
const PARTS: [(&str, &[&str]); 5] = [
    ("journal", &["journal"]),
    ("index", &["index"]),
    ("logs", &["logs.sqlite", "logs.sqlite-wal", "logs.sqlite-shm"]),
    ("catalog", &["catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"]),
    ("containers", &["containers"]),
];

/// A measure this recent is reused: a burst of scrapes walks the data directory once.
const FRESH_FOR: Duration = Duration::from_secs(1);

/// The last measure of the data directory.
pub struct DiskUsage {
    data_dir: PathBuf,
    /// Below this share of the disk free, `/ready` carries a warning.
    warning_percent: u8,
    last: Mutex<Option<Measure>>,
}

#[derive(Debug, Clone)]
struct Measure {
    at: Instant,
    parts: Vec<(&'static str, u64)>,
    file_system: Option<FileSystem>,
}

impl DiskUsage {
    pub fn new(data_dir: &Path, warning_percent: u8) -> DiskUsage {
        DiskUsage { data_dir: data_dir.to_path_buf(), warning_percent, last: Mutex::new(None) }
    }

    /// A recent measure of every part (taken now if the last is over a second old), also set on `metrics`.
    fn measure(&self, metrics: &Metrics) -> Measure {
        let mut last = self.last.lock().expect("disk usage lock");
        if let Some(measure) = last.as_ref().filter(|m| m.at.elapsed() < FRESH_FOR) {
            return measure.clone();
        }
        let parts: Vec<(&'static str, u64)> = PARTS
            .iter()
            .map(|(name, paths)| (*name, paths.iter().map(|p| disk::used_bytes(&self.data_dir.join(p))).sum()))
            .collect();
        let file_system = disk::file_system(&self.data_dir);
        for (name, bytes) in &parts {
            metrics.data_bytes(name, *bytes);
        }
        if let Some(fs) = file_system {
            metrics.disk(fs.free, fs.total);
        }
        let measure = Measure { at: Instant::now(), parts, file_system };
        *last = Some(measure.clone());
        measure
    }

    /// Measures, for `/metrics`.
    pub fn refresh(&self, metrics: &Metrics) {
        self.measure(metrics);
    }

    /// The warning `/ready` shows, if the disk is running out.
    fn warning(&self, measure: &Measure) -> Option<String> {
        let fs = measure.file_system?;
        let floor = fs.total / 100 * u64::from(self.warning_percent);
        (fs.free < floor).then(|| {
            format!(
                "The disk of the data directory has {} free of {} (under {}%): pushes are refused once it is full. \
                 Free space, lower the log retention (--log-max-mb), or move the data directory.",
                disk::readable(fs.free),
                disk::readable(fs.total),
                self.warning_percent
            )
        })
    }

    /// The report `/ready` carries: bytes per part, the disk's free and total bytes, and the warning if any.
    pub fn report(&self, metrics: &Metrics) -> Value {
        let last = self.measure(metrics);
        let parts: serde_json::Map<String, Value> =
            last.parts.iter().map(|(name, bytes)| (name.to_string(), (*bytes).into())).collect();
        let mut report = json!({ "bytes": parts });
        if let Some(fs) = last.file_system {
            report["freeBytes"] = fs.free.into();
            report["totalBytes"] = fs.total.into();
        }
        if let Some(warning) = self.warning(&last) {
            report["warning"] = warning.into();
        }
        report
    }
}

/// [`DiskUsage::report`] off the async threads (it may walk the data directory).
pub async fn report(usage: Arc<DiskUsage>, metrics: Arc<Metrics>) -> Value {
    tokio::task::spawn_blocking(move || usage.report(&metrics)).await.unwrap_or(Value::Null)
}

/// [`DiskUsage::refresh`] off the async threads.
pub async fn refresh(usage: Arc<DiskUsage>, metrics: Arc<Metrics>) {
    let _ = tokio::task::spawn_blocking(move || usage.refresh(&metrics)).await;
}
