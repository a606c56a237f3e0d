//! The strict JSON tree that Platform API bodies go through (repeated keys refused at any depth).
#![no_main]

use intake_model::json;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(value) = json::parse(body) {
        // What parses prints back (in error messages) as JSON that parses again. (Floats may drift in their
        // last digit: serde_json's float parsing is not correctly rounded.)
        let printed = value.to_string();
        assert!(json::parse(printed.as_bytes()).is_ok(), "{printed}");
    }
});
