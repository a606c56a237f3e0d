//! Every decompressor, capped: any stream decodes within the cap or fails with a reason.
#![no_main]

use intake_model::CompressionType;
use intake_model::compression::decompress;
use libfuzzer_sys::fuzz_target;

const CAP: u64 = 1 << 20;

fuzz_target!(|stream: &[u8]| {
    for declared in [
        CompressionType::Uncompressed,
        CompressionType::Deflate,
        CompressionType::Gzip,
        CompressionType::Lzma,
        CompressionType::Zlib,
    ] {
        if let Ok(bytes) = decompress(stream, declared, CAP) {
            assert!(bytes.len() as u64 <= CAP, "{declared:?} decoded past the cap");
        }
    }
});
