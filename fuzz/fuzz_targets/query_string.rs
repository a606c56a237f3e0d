//! A query string and every typed read of it.
#![no_main]

use intake_model::QueryParams;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &str| {
    let query = QueryParams::parse(Some(raw));
    let _ = query.document_id();
    let _ = query.ordering_id("orderingId");
    let _ = query.boolean("deleteChildren", false);
    let _ = query.non_negative("queueDelay", 10_080);
    let _ = query.required("fileId");
});
