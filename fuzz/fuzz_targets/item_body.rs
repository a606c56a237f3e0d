//! A single item's body, as `PUT …/documents` reads it: any bytes give an item or an error, never a panic.
#![no_main]

use intake_model::CompressionType;
use intake_model::item::{ItemContext, parse_item};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let _ = parse_item(body, ItemContext::default());
    let _ =
        parse_item(body, ItemContext { document_id: Some("file://fuzz"), compression: Some(CompressionType::Gzip) });
});
