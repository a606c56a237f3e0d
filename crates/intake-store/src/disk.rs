//! What the data directory takes on disk, part by part, and what its file system has left.

use std::path::Path;

/// Bytes the file system holding `path` has free for this process, if it can be asked.
pub fn free_bytes(path: &Path) -> Option<u64> {
    file_system(path).map(|fs| fs.free)
}

/// The size of a file system and what it has free for this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSystem {
    pub free: u64,
    pub total: u64,
}

/// The file system holding `path`, if it can be asked.
pub fn file_system(path: &Path) -> Option<FileSystem> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
        let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: `path` is a NUL-terminated string and `stats` is written by statvfs before it is read.
        let stats = unsafe {
            if libc::statvfs(path.as_ptr(), stats.as_mut_ptr()) != 0 {
                return None;
            }
            stats.assume_init()
        };
        let block = stats.f_frsize as u64;
        Some(FileSystem { free: stats.f_bavail as u64 * block, total: stats.f_blocks as u64 * block })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Bytes the file at `path`, or the files under it, take (0 when it does not exist). Walks the tree without
/// following links.
pub fn used_bytes(path: &Path) -> u64 {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_file() => return metadata.len(),
        Ok(metadata) if metadata.is_dir() => {}
        _ => return 0,
    }
    let mut total = 0;
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(metadata) if metadata.is_dir() => pending.push(entry.path()),
                Ok(metadata) => total += metadata.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// "2.5 GiB", "310 MiB", "12 KiB": a size for people.
pub fn readable(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} bytes"),
        _ if value < 10.0 => format!("{value:.1} {}", UNITS[unit]),
        _ => format!("{value:.0} {}", UNITS[unit]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_tree_and_its_file_system() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a"), [0u8; 1000]).unwrap();
        std::fs::write(dir.path().join("sub/b"), [0u8; 24]).unwrap();
        assert_eq!(used_bytes(dir.path()), 1024);
        assert_eq!(used_bytes(&dir.path().join("a")), 1000);
        assert_eq!(used_bytes(&dir.path().join("missing")), 0);
        assert!(free_bytes(dir.path()).unwrap() > 0);
        assert_eq!(readable(1536), "1.5 KiB");
        assert_eq!(readable(300 * 1024 * 1024), "300 MiB");
        assert_eq!(readable(12), "12 bytes");
    }
}
