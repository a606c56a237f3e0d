//! The console's files, compiled in.

use std::io::Write;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// One file: its name under `/console/`, type and bytes, with its gzip and ETag made on first use.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
    gzipped: OnceLock<Vec<u8>>,
    etag: OnceLock<String>,
}

impl Asset {
    const fn new(name: &'static str, content_type: &'static str, bytes: &'static [u8]) -> Asset {
        Asset { name, content_type, bytes, gzipped: OnceLock::new(), etag: OnceLock::new() }
    }

    pub fn gzipped(&self) -> Vec<u8> {
        self.gzipped
            .get_or_init(|| {
                let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                encoder.write_all(self.bytes).expect("writing to memory");
                encoder.finish().expect("writing to memory")
            })
            .clone()
    }

    pub fn etag(&self) -> &str {
        self.etag.get_or_init(|| format!("\"{}\"", &hex::encode(Sha256::digest(self.bytes))[..20]))
    }
}

macro_rules! assets {
    ($($name:literal => $content_type:literal),* $(,)?) => {
        /// Every file of the console; the first is the page.
        pub static ASSETS: [Asset; [$($name),*].len()] = [
            $(Asset::new($name, $content_type, include_bytes!(concat!("../../console/", $name))),)*
        ];
    };
}

assets! {
    "index.html" => "text/html; charset=utf-8",
    "app.css" => "text/css; charset=utf-8",
    "app.js" => "text/javascript; charset=utf-8",
    "api.js" => "text/javascript; charset=utf-8",
    "dom.js" => "text/javascript; charset=utf-8",
    "overview.js" => "text/javascript; charset=utf-8",
    "content.js" => "text/javascript; charset=utf-8",
    "logs.js" => "text/javascript; charset=utf-8",
    "errors.js" => "text/javascript; charset=utf-8",
    "admin.js" => "text/javascript; charset=utf-8",
    "icon.svg" => "image/svg+xml",
}

pub fn page() -> &'static Asset {
    &ASSETS[0]
}

pub fn named(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.name == name)
}
