//! A batch file, as the validator scans it before the 202 and the applier reads it in windows; and the same bytes
//! as the Stream API's update and merge files, whose partial updates and merges are applied to some metadata.
#![no_main]

use intake_model::batch::{BatchEntry, BatchReader, ITEM_BATCH, STREAM_MERGE, STREAM_UPDATE, validate_layout};
use intake_model::item::{MetaValue, Scalar};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|file: &[u8]| {
    for layout in [ITEM_BATCH, STREAM_UPDATE, STREAM_MERGE] {
        let _ = validate_layout(file, layout);
        let mut metadata = vec![
            ("price".to_string(), MetaValue::One(Scalar::Integer(3))),
            ("tags".to_string(), MetaValue::Many(vec![Scalar::Text("a".into())])),
            ("stock".to_string(), MetaValue::Dict([("s1".to_string(), MetaValue::One(Scalar::Bool(true)))].into())),
        ];
        let mut reader = BatchReader::with_layout(file, layout);
        while let Ok(window) = reader.next_window(3, 4096) {
            if window.is_empty() {
                break;
            }
            for entry in window {
                match entry.parse() {
                    Ok(BatchEntry::PartialUpdate { update, .. }) => {
                        let _ = update.apply(&mut metadata);
                    }
                    Ok(BatchEntry::Merge { patch: Ok(patch), .. }) => patch.merge_into(&mut metadata),
                    _ => {}
                }
            }
        }
    }
});
