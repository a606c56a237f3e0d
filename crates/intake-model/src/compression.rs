//! `compressionType` and capped decoding of item data.
//!
//! Each type is checked against the stream's own header before decoding, so a GZIP stream sent as ZLIB is
//! reported as a mismatch ("the data is a GZIP stream") rather than as garbage. Decoding never produces more
//! than the cap: a zip bomb costs the cap and no more.

use std::fmt;
use std::io::{self, Read};

use serde::{Deserialize, Serialize};

/// The five compression types of the Push API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CompressionType {
    Uncompressed,
    Deflate,
    Gzip,
    Lzma,
    Zlib,
}

impl CompressionType {
    /// The spellings listed in messages.
    pub const ALLOWED: &'static str = "UNCOMPRESSED, DEFLATE, GZIP, LZMA, ZLIB";

    /// Coveo's documented default when `compressedBinaryData` comes without a `compressionType`.
    pub const DEFAULT: CompressionType = CompressionType::Zlib;

    /// Parses a wire value. Coveo documents upper case; its own prose says `ZLib`, `GZip`, so any case is taken.
    pub fn parse(value: &str) -> Option<CompressionType> {
        Some(match value.trim().to_ascii_uppercase().as_str() {
            "UNCOMPRESSED" => CompressionType::Uncompressed,
            "DEFLATE" => CompressionType::Deflate,
            "GZIP" => CompressionType::Gzip,
            "LZMA" => CompressionType::Lzma,
            "ZLIB" => CompressionType::Zlib,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CompressionType::Uncompressed => "UNCOMPRESSED",
            CompressionType::Deflate => "DEFLATE",
            CompressionType::Gzip => "GZIP",
            CompressionType::Lzma => "LZMA",
            CompressionType::Zlib => "ZLIB",
        }
    }
}

impl fmt::Display for CompressionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why item data could not be decoded; each is an item ERROR in the logs with this text as the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The stream's header shows another compression than the declared one.
    Mismatch { declared: CompressionType, found: &'static str },
    /// The stream has the right header but is corrupt or truncated.
    Corrupt { declared: CompressionType, detail: String },
    /// Decoding would produce more than the cap.
    TooLarge { declared: CompressionType, cap: u64 },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Mismatch { declared, found } => write!(
                f,
                "compressionType mismatch: the item declares {declared} but its data is {found}; \
                 set compressionType to match the data"
            ),
            DecodeError::Corrupt { declared, detail } => {
                write!(f, "data failed to decompress as {declared}: {detail}")
            }
            DecodeError::TooLarge { declared, cap } => write!(
                f,
                "data expands past the limit of {cap} bytes ({}) once decompressed ({declared}); \
                 items are limited to that size uncompressed",
                crate::error::human_size(*cap)
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// What the first bytes of a stream say it is.
fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Some("a GZIP stream")
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Some("an LZMA (.xz) stream")
    } else if is_zlib_header(head) {
        Some("a ZLIB stream")
    } else {
        None
    }
}

/// RFC 1950: compression method 8 and a header checksum divisible by 31.
fn is_zlib_header(head: &[u8]) -> bool {
    head.len() >= 2
        && head[0] & 0x0f == 8
        && head[0] >> 4 <= 7
        && (u16::from(head[0]) << 8 | u16::from(head[1])) % 31 == 0
}

/// LZMA-alone (`.lzma`) header: a properties byte below 225 and a dictionary size that is a power of two
/// or two powers summed, as xz-utils writes.
fn is_lzma_alone_header(head: &[u8]) -> bool {
    head.len() >= 13 && head[0] < 225 && {
        let dict = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
        dict.count_ones() <= 2 && dict >= 4096
    }
}

/// Checks the header against the declared type and returns a decoding reader over `input`.
///
/// The reader yields the decompressed bytes; it does not cap them (see [`read_capped`]).
pub fn decoder<'a, R: Read + 'a>(
    declared: CompressionType,
    head: &[u8],
    input: R,
) -> Result<Box<dyn Read + 'a>, DecodeError> {
    let found = sniff(head);
    let mismatch = |found| Err(DecodeError::Mismatch { declared, found });
    Ok(match declared {
        CompressionType::Uncompressed => Box::new(input),
        CompressionType::Gzip => match found {
            Some("a GZIP stream") => Box::new(flate2::read::MultiGzDecoder::new(input)),
            Some(other) => return mismatch(other),
            None => {
                return Err(corrupt(declared, "it does not start with the GZIP header (1f 8b)"));
            }
        },
        CompressionType::Zlib => match found {
            Some("a ZLIB stream") => Box::new(flate2::read::ZlibDecoder::new(input)),
            Some(other) => return mismatch(other),
            None => {
                return Err(corrupt(declared, "it does not start with a ZLIB header (such as 78 9c)"));
            }
        },
        // Coveo's DEFLATE is raw deflate; zlib-wrapped deflate is common too, so both are taken.
        CompressionType::Deflate => match found {
            Some("a ZLIB stream") => Box::new(flate2::read::ZlibDecoder::new(input)),
            Some(other) => return mismatch(other),
            None => Box::new(flate2::read::DeflateDecoder::new(input)),
        },
        CompressionType::Lzma => match found {
            Some("an LZMA (.xz) stream") => Box::new(liblzma::read::XzDecoder::new(input)),
            Some(other) => return mismatch(other),
            None if is_lzma_alone_header(head) => {
                let stream = liblzma::stream::Stream::new_lzma_decoder(u64::MAX)
                    .map_err(|e| corrupt(declared, &e.to_string()))?;
                Box::new(liblzma::read::XzDecoder::new_stream(input, stream))
            }
            None => {
                return Err(corrupt(declared, "it starts with neither an .xz nor an LZMA-alone header"));
            }
        },
    })
}

fn corrupt(declared: CompressionType, detail: &str) -> DecodeError {
    DecodeError::Corrupt { declared, detail: detail.to_string() }
}

/// Reads a decoder to its end, refusing to produce more than `cap` bytes.
pub fn read_capped(mut reader: impl Read, declared: CompressionType, cap: u64) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    let read = (&mut reader).take(cap + 1).read_to_end(&mut out);
    match read {
        Ok(_) if out.len() as u64 > cap => Err(DecodeError::TooLarge { declared, cap }),
        Ok(_) => Ok(out),
        Err(e) => Err(corrupt(declared, &io_detail(&e))),
    }
}

fn io_detail(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::UnexpectedEof => "the stream is truncated".to_string(),
        _ => error.to_string(),
    }
}

/// Decodes a whole in-memory payload with a cap.
pub fn decompress(bytes: &[u8], declared: CompressionType, cap: u64) -> Result<Vec<u8>, DecodeError> {
    if declared == CompressionType::Uncompressed {
        if bytes.len() as u64 > cap {
            return Err(DecodeError::TooLarge { declared, cap });
        }
        return Ok(bytes.to_vec());
    }
    let reader = decoder(declared, bytes, bytes)?;
    read_capped(reader, declared, cap)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const TEXT: &[u8] = b"<html><body>hello compressed world</body></html>";

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn lzma_alone(data: &[u8]) -> Vec<u8> {
        let options = liblzma::stream::LzmaOptions::new_preset(6).unwrap();
        let stream = liblzma::stream::Stream::new_lzma_encoder(&options).unwrap();
        let mut e = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn decodes_all_five_types() {
        use CompressionType::*;
        for (ctype, bytes) in [
            (Uncompressed, TEXT.to_vec()),
            (Zlib, zlib(TEXT)),
            (Gzip, gzip(TEXT)),
            (Deflate, deflate(TEXT)),
            (Deflate, zlib(TEXT)),
            (Lzma, xz(TEXT)),
            (Lzma, lzma_alone(TEXT)),
        ] {
            assert_eq!(decompress(&bytes, ctype, 1 << 20).unwrap(), TEXT, "{ctype}");
        }
    }

    #[test]
    fn reports_a_mismatch_by_name() {
        let err = decompress(&gzip(TEXT), CompressionType::Zlib, 1 << 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            "compressionType mismatch: the item declares ZLIB but its data is a GZIP stream; set compressionType to match the data"
        );
    }

    #[test]
    fn reports_corrupt_and_truncated_data() {
        let err = decompress(b"not compressed at all", CompressionType::Gzip, 1 << 20).unwrap_err();
        assert!(err.to_string().starts_with("data failed to decompress as GZIP"), "{err}");
        let mut cut = zlib(TEXT);
        cut.truncate(cut.len() / 2);
        let err = decompress(&cut, CompressionType::Zlib, 1 << 20).unwrap_err();
        assert!(matches!(err, DecodeError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn stops_at_the_cap() {
        let bomb = zlib(&vec![0u8; 10 << 20]);
        let err = decompress(&bomb, CompressionType::Zlib, 1 << 20).unwrap_err();
        assert_eq!(err, DecodeError::TooLarge { declared: CompressionType::Zlib, cap: 1 << 20 });
        assert_eq!(decompress(&zlib(&[7u8; 1024]), CompressionType::Zlib, 1024).unwrap().len(), 1024);
    }

    #[test]
    fn parses_any_case() {
        assert_eq!(CompressionType::parse("GZip"), Some(CompressionType::Gzip));
        assert_eq!(CompressionType::parse("bzip2"), None);
    }
}
