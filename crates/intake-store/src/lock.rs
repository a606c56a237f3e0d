//! The data directory's lock: one Intake process per data directory.
//!
//! Two processes appending to one journal and writing one index would corrupt both, so `intake serve` takes an
//! exclusive lock on `<data-dir>/intake.lock` before it opens anything, as PostgreSQL's `postmaster.pid` and
//! Meilisearch's data lock do. The file names the holder (its process id and address), so a second process
//! can say who has it. The lock is the operating system's (`flock`): it goes with the process, even a killed
//! one, so a stale file never blocks a restart.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Held while the process uses the data directory; released when dropped or when the process ends.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the data directory {dir} is in use by another Intake process ({holder}); stop that process or give this \
         one another --data-dir"
    )]
    Held { dir: PathBuf, holder: String },
    #[error("the data directory {dir} could not be locked: {source}")]
    Io { dir: PathBuf, source: std::io::Error },
}

impl DataDirLock {
    /// Locks `dir` for this process, recording `holder` (what this process is) in the lock file.
    pub fn acquire(dir: &Path, holder: &str) -> Result<DataDirLock, LockError> {
        let io = |source| LockError::Io { dir: dir.to_path_buf(), source };
        let path = dir.join("intake.lock");
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut recorded = String::new();
                let _ = file.read_to_string(&mut recorded);
                let holder = match recorded.trim() {
                    "" => "its process id is not recorded yet".to_string(),
                    text => text.to_string(),
                };
                return Err(LockError::Held { dir: dir.to_path_buf(), holder });
            }
            Err(TryLockError::Error(error)) => return Err(io(error)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "process {}, {holder}", std::process::id()).map_err(io)?;
        Ok(DataDirLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path(), "listening on 127.0.0.1:1").unwrap();
        let error = DataDirLock::acquire(dir.path(), "listening on 127.0.0.1:2").unwrap_err().to_string();
        assert!(error.contains(&dir.path().display().to_string()), "{error}");
        assert!(error.contains(&format!("process {}, listening on 127.0.0.1:1", std::process::id())), "{error}");
        drop(first);
        DataDirLock::acquire(dir.path(), "listening on 127.0.0.1:2").unwrap();
    }
}
