//! Blobs as files in one folder, one per blob. A blob is written to a temporary file, synced, then renamed
//! over its name (and the folder synced), so readers see the old content or the new, whole.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::{BlobInfo, BlobStore, BlobWriter, StoreError};

/// The folder holding blobs.
#[derive(Debug, Clone)]
pub struct LocalBlobs {
    dir: PathBuf,
}

impl LocalBlobs {
    pub fn open(dir: &Path) -> io::Result<LocalBlobs> {
        fs::create_dir_all(dir)?;
        // Leftovers of uploads a crash interrupted.
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "part") {
                let _ = fs::remove_file(path);
            }
        }
        Ok(LocalBlobs { dir: dir.to_path_buf() })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }
}

impl BlobStore for LocalBlobs {
    fn create(&self, id: &str) -> Result<Box<dyn BlobWriter>, StoreError> {
        let temporary = self.dir.join(format!("{id}.{}.part", crate::catalog::random_id(12)));
        let file = File::create(&temporary)?;
        Ok(Box::new(LocalBlobWriter {
            file: Some(BufWriter::with_capacity(1 << 20, file)),
            temporary,
            target: self.path(id),
            dir: self.dir.clone(),
            written: 0,
        }))
    }

    fn open(&self, id: &str) -> Result<Box<dyn Read + Send>, StoreError> {
        Ok(Box::new(File::open(self.path(id))?))
    }

    fn delete(&self, id: &str) -> Result<(), StoreError> {
        match fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    fn list(&self) -> Result<Vec<BlobInfo>, StoreError> {
        let mut blobs = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let id = entry.file_name().to_string_lossy().into_owned();
            if id.ends_with(".part") {
                continue; // being written
            }
            let metadata = entry.metadata()?;
            let written_at = metadata.modified()?.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            blobs.push(BlobInfo { id, size: metadata.len(), written_at_ms: written_at.as_millis() as i64 });
        }
        Ok(blobs)
    }

    fn size(&self, id: &str) -> Result<Option<u64>, StoreError> {
        match fs::metadata(self.path(id)) {
            Ok(metadata) => Ok(Some(metadata.len())),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error.into()),
        }
    }
}

struct LocalBlobWriter {
    /// `None` once finished.
    file: Option<BufWriter<File>>,
    temporary: PathBuf,
    target: PathBuf,
    dir: PathBuf,
    written: u64,
}

impl Write for LocalBlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self.file.as_mut().ok_or_else(|| io::Error::other("the blob is already finished"))?;
        let written = file.write(buf)?;
        self.written += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), BufWriter::flush)
    }
}

impl BlobWriter for LocalBlobWriter {
    fn finish(mut self: Box<Self>) -> Result<u64, StoreError> {
        let file = self.file.take().expect("finished once").into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&self.temporary, &self.target)?;
        File::open(&self.dir)?.sync_all()?;
        Ok(self.written)
    }
}

impl Drop for LocalBlobWriter {
    /// Unfinished (or failed while finishing), the temporary file goes; finished, it was renamed already.
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.temporary);
    }
}
