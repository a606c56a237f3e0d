//! PDF conversion against `pdftotext` (Debian's poppler-utils) on the same files, alternating within one run:
//! the throughput of each (input megabytes per second of conversion, one file at a time, one thread each), and how
//! many of the distinct words `pdftotext` finds in the files Intake's converter finds too — what a search could
//! find. Intake's side is the converter the applier runs, called in process; `pdftotext` is one process per
//! file, as it is used.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use intake_index::convert::Budget;
use intake_index::pdf::convert_pdf;
use serde_json::{Value, json};

/// The distinct words of a text: runs of letters and digits, lowercased.
fn words(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Converts every file with `pdftotext`; the time and the texts.
fn poppler(files: &[(PathBuf, Vec<u8>)], scratch: &std::path::Path) -> anyhow::Result<(Duration, Vec<String>)> {
    let started = Instant::now();
    let mut outputs = Vec::new();
    for (n, (path, _)) in files.iter().enumerate() {
        let out = scratch.join(format!("{n}.txt"));
        let status = Command::new("pdftotext").arg("-q").arg(path).arg(&out).status().context("running pdftotext")?;
        if !status.success() {
            bail!("pdftotext failed on {}", path.display());
        }
        outputs.push(out);
    }
    let elapsed = started.elapsed();
    let texts = outputs.iter().map(std::fs::read_to_string).collect::<Result<_, _>>()?;
    Ok((elapsed, texts))
}

/// Converts every file with Intake's converter; the time and the texts.
fn intake(files: &[(PathBuf, Vec<u8>)]) -> anyhow::Result<(Duration, Vec<String>)> {
    let started = Instant::now();
    let mut texts = Vec::new();
    for (path, bytes) in files {
        let converted = convert_pdf(bytes, Budget::default()).map_err(anyhow::Error::msg)?;
        if let Some(warning) = converted.warning {
            bail!("{}: {warning}", path.display());
        }
        texts.push(converted.text);
    }
    Ok((started.elapsed(), texts))
}

pub fn pdf_text(files: Vec<PathBuf>, rounds: usize) -> anyhow::Result<Value> {
    let files: Vec<(PathBuf, Vec<u8>)> = files
        .into_iter()
        .map(|path| std::fs::read(&path).with_context(|| format!("reading {}", path.display())).map(|b| (path, b)))
        .collect::<anyhow::Result<_>>()?;
    let megabytes = files.iter().map(|(_, bytes)| bytes.len()).sum::<usize>() as f64 / 1e6;
    let scratch = tempfile::tempdir()?;
    let (mut theirs, mut ours) = (Vec::new(), Vec::new());
    let (mut their_texts, mut our_texts) = (Vec::new(), Vec::new());
    for round in 0..rounds.max(1) {
        // Alternate which goes first, so neither always finds the machine warmer.
        let ours_first = round % 2 == 1;
        if ours_first {
            let (time, texts) = intake(&files)?;
            ours.push(time);
            our_texts = texts;
        }
        let (time, texts) = poppler(&files, scratch.path())?;
        theirs.push(time);
        their_texts = texts;
        if !ours_first {
            let (time, texts) = intake(&files)?;
            ours.push(time);
            our_texts = texts;
        }
    }
    let (theirs, ours) = (median(theirs), median(ours));
    let (mut found, mut total, mut worst) = (0usize, 0usize, (1.0f64, String::new()));
    for ((path, _), (their_text, our_text)) in files.iter().zip(their_texts.iter().zip(&our_texts)) {
        let (their_words, our_words) = (words(their_text), words(our_text));
        let here = their_words.iter().filter(|w| our_words.contains(*w)).count();
        let share = if their_words.is_empty() { 1.0 } else { here as f64 / their_words.len() as f64 };
        if share < worst.0 {
            worst = (share, path.file_name().unwrap_or_default().to_string_lossy().into_owned());
        }
        (found, total) = (found + here, total + their_words.len());
    }
    Ok(json!({
        "bench": "pdf_text",
        "files": files.len(),
        "input_mb": (megabytes * 10.0).round() / 10.0,
        "rounds": rounds,
        "pdftotext_s": theirs.as_secs_f64(),
        "intake_s": ours.as_secs_f64(),
        "pdftotext_mb_per_s": megabytes / theirs.as_secs_f64(),
        "intake_mb_per_s": megabytes / ours.as_secs_f64(),
        "throughput_ratio": theirs.as_secs_f64() / ours.as_secs_f64(),
        "pdftotext_distinct_words": total,
        "found_by_intake": found,
        "word_coverage": found as f64 / total.max(1) as f64,
        "lowest_file_coverage": worst.0,
        "lowest_file": worst.1,
    }))
}
