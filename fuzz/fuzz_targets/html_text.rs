//! HTML as the indexer reads it: any bytes, as an HTML page's text and title (the walk of `html_text`). No input
//! may panic, hang or exceed memory.
#![no_main]

use intake_index::extract::extract_html;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = extract_html(bytes);
});
