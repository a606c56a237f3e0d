//! A batch file, as the validator scans it before the 202 and the applier reads it in windows.
#![no_main]

use intake_model::batch::{BatchReader, validate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|file: &[u8]| {
    let _ = validate(file);
    let mut reader = BatchReader::new(file);
    while let Ok(window) = reader.next_window(3, 4096) {
        if window.is_empty() {
            break;
        }
        for entry in window {
            let _ = entry.parse();
        }
    }
});
