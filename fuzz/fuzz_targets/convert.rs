//! A document as its converters read it: as every Office and OpenDocument format, an e-mail, XML, RTF and
//! Markdown, with a small budget so the bounds are met often, and as text in an unknown charset. No input may panic, hang or exceed memory.
#![no_main]

use intake_index::convert::{Budget, Format, convert, convert_by_extension, decode_text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let budget = Budget { expanded_bytes: 1 << 20, archive_entries: 64, max_ratio: 50, ..Budget::default() };
    for extension in ["docx", "xlsx", "pptx", "odt", "ods", "odp"] {
        let format = Format::from_extension(extension).expect("a converted format");
        let _ = convert(bytes, format, budget);
    }
    for extension in ["eml", "xml", "rtf", "md"] {
        let _ = convert_by_extension(bytes, extension, budget);
    }
    let _ = decode_text(bytes);
});
