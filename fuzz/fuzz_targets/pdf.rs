//! A PDF as its converter reads it, with a small budget so the bounds are met often. Malformed documents are
//! warnings (a parser's panic is caught on the extraction thread); what the fuzzer looks for is a crash of the
//! process, a stack overflow, a hang or memory past the limit.
#![no_main]

use std::time::Duration;

use intake_index::convert::Budget;
use intake_index::pdf::convert_pdf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let budget = Budget { expanded_bytes: 4 << 20, time: Duration::from_secs(2), ..Budget::default() };
    let _ = convert_pdf(bytes, budget);
});
