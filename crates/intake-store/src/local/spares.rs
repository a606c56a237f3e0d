//! Journal segment files made ready before they are needed ([`Spares`]).
//!
//! Appending to a new file changes its size, so every sync writes the file's inode as well as its data; writing
//! over a file whose blocks are already written makes a sync write the data alone. Under small pushes the syncs
//! were a fifth of the server's CPU, a third of it writing inodes (bench/RESULTS.md §31); databases prepare their
//! log segments ahead for the same reason (PostgreSQL zero-fills and recycles WAL segments). A spare is either a released segment (its
//! old records stay in it: the journal reads a record only under its expected sequence number, so they are never
//! taken for new ones) or a file of zeros written by a background thread once the journal has shown it fills
//! segments (it started one, or appended a megabyte) — an idle or small journal never pays for one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};

/// A spare's file name ends so.
pub(super) const SPARE_SUFFIX: &str = ".spare";
/// Released segments kept to be written over: enough for the releases of one index commit while ingestion goes
/// on, little enough to give the space back soon.
const MAX_SPARES: usize = 2;
/// Zeros are written in pieces of this size, so closing the journal does not wait for a whole segment.
const FILL_CHUNK: usize = 1 << 20;
const PAGE: usize = 4096;
/// After a spare could not be written (a full disk), the next try waits this long.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

/// The spare segment files of one journal folder, and the thread that writes new ones.
pub(super) struct Spares {
    shared: Arc<Shared>,
    filler: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    dir: PathBuf,
    segment_bytes: u64,
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    files: Vec<PathBuf>,
    /// A segment was started, or one appended to grew past a megabyte, since the last spare was written.
    wanted: bool,
    closed: bool,
}

impl State {
    fn spare_wanted(&self) -> bool {
        self.wanted && self.files.is_empty()
    }
}

impl Spares {
    /// The spares found in `dir`, and a thread that writes a spare of `segment_bytes` zeros whenever a segment is
    /// started and none is left.
    pub(super) fn open(dir: &Path, files: Vec<PathBuf>, segment_bytes: u64) -> io::Result<Spares> {
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            segment_bytes,
            state: Mutex::new(State { files, wanted: false, closed: false }),
            changed: Condvar::new(),
        });
        let filler = {
            let shared = shared.clone();
            thread::Builder::new().name("intake-journal-spares".into()).spawn(move || shared.fill_when_wanted())?
        };
        Ok(Spares { shared, filler: Mutex::new(Some(filler)) })
    }

    /// Whether a spare is ready; if not, asks for one.
    pub(super) fn ready(&self) -> bool {
        let mut state = self.shared.lock();
        if state.files.is_empty() {
            self.shared.want(&mut state);
        }
        !state.files.is_empty()
    }

    /// Renames a spare to `path`, if there is one, and asks for another; says whether it did.
    pub(super) fn take(&self, path: &Path) -> bool {
        let mut state = self.shared.lock();
        self.shared.want(&mut state);
        while let Some(spare) = state.files.pop() {
            match fs::rename(&spare, path) {
                Ok(()) => return true,
                Err(e) => tracing::warn!(spare = %spare.display(), error = %e, "a journal spare could not be used"),
            }
        }
        false
    }

    /// Keeps a released segment as a spare if there is room and it is a whole segment (one left early is not
    /// worth writing over: appending past its end would write the inode again), else deletes it.
    pub(super) fn offer(&self, released: &Path) -> io::Result<()> {
        let mut state = self.shared.lock();
        if state.files.len() >= MAX_SPARES || fs::metadata(released)?.len() < self.shared.segment_bytes {
            return fs::remove_file(released);
        }
        let spare = released.with_extension(&SPARE_SUFFIX[1..]);
        fs::rename(released, &spare)?;
        state.files.push(spare);
        Ok(())
    }

    /// Stops writing spares (a spare being written is deleted) and waits for the thread to end.
    pub(super) fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.changed.notify_all();
        if let Some(filler) = self.filler.lock().expect("journal spares filler lock").take() {
            let _ = filler.join();
        }
    }
}

impl Drop for Spares {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("journal spares lock")
    }

    fn want(&self, state: &mut State) {
        if !state.wanted {
            state.wanted = true;
            self.changed.notify_all();
        }
    }

    fn fill_when_wanted(&self) {
        loop {
            let state = self.changed.wait_while(self.lock(), |state| !state.closed && !state.spare_wanted());
            if state.expect("journal spares lock").closed {
                return;
            }
            let written = self.write_zeros();
            let mut state = self.lock();
            state.wanted = false;
            match written {
                Ok(Some(spare)) => state.files.push(spare),
                Ok(None) => return,
                // Not an error of any append: the next segment is a new file, as without spares. A full disk is
                // not tried again at once.
                Err(e) => {
                    tracing::warn!(dir = %self.dir.display(), error = %e, "no journal spare could be written");
                    let pause = self.changed.wait_timeout_while(state, RETRY_AFTER, |state| !state.closed);
                    drop(pause.expect("journal spares lock"));
                }
            }
        }
    }

    /// Writes a spare of zeros; `None` if the journal closed meanwhile. A partial one is deleted (the disk may
    /// be full).
    fn write_zeros(&self) -> io::Result<Option<PathBuf>> {
        let partial = self.dir.join("spare.partial");
        let written = self.write_zeros_to(&partial);
        if !matches!(written, Ok(true)) {
            let _ = fs::remove_file(&partial);
            return written.map(|_| None);
        }
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let spare = self.dir.join(format!("zeros-{nanos}{SPARE_SUFFIX}"));
        fs::rename(&partial, &spare)?;
        Ok(Some(spare))
    }

    /// Fills `path` with a segment's size of zeros; `false` if the journal closed first.
    fn write_zeros_to(&self, path: &Path) -> io::Result<bool> {
        let mut file = create_direct(path)?;
        // Direct writes need an aligned buffer; a page's alignment satisfies every block size in use.
        let buffer = vec![0u8; FILL_CHUNK + PAGE];
        let start = buffer.as_ptr().align_offset(PAGE);
        let zeros = &buffer[start..start + FILL_CHUNK];
        let mut written = 0;
        while written < self.segment_bytes {
            if self.lock().closed {
                return Ok(false);
            }
            file.write_all(zeros)?;
            written += FILL_CHUNK as u64;
        }
        file.sync_data()?;
        Ok(true)
    }
}

/// Creates `path` for writes that bypass the page cache where the file system allows it (`O_DIRECT`): copying
/// megabytes of zeros into the cache cost more CPU than the inode writes a spare saves.
fn create_direct(path: &Path) -> io::Result<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let direct =
            fs::OpenOptions::new().write(true).create(true).truncate(true).custom_flags(libc::O_DIRECT).open(path);
        if let Ok(file) = direct {
            return Ok(file);
        }
    }
    File::create(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eventually(what: &str, condition: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !condition() {
            assert!(std::time::Instant::now() < deadline, "timed out waiting until {what}");
            thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    fn spares_in(dir: &Path) -> Vec<PathBuf> {
        let files = fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().path());
        files.filter(|path| path.to_string_lossy().ends_with(SPARE_SUFFIX)).collect()
    }

    #[test]
    fn a_spare_of_zeros_is_written_once_a_segment_is_started() {
        let dir = tempfile::tempdir().unwrap();
        let spares = Spares::open(dir.path(), Vec::new(), 3 * FILL_CHUNK as u64).unwrap();
        let first = dir.path().join("1.log");
        assert!(!spares.take(&first), "none yet: the first segment is a new file");
        eventually("a spare is written", || spares_in(dir.path()).len() == 1);
        let second = dir.path().join("2.log");
        eventually("the spare is handed out", || spares.take(&second));
        let bytes = fs::read(&second).unwrap();
        assert_eq!(bytes.len(), 3 * FILL_CHUNK);
        assert!(bytes.iter().all(|&b| b == 0));
        eventually("another spare is written for the next segment", || spares_in(dir.path()).len() == 1);
        spares.close();
        assert!(!dir.path().join("spare.partial").exists());
    }

    #[test]
    fn released_segments_are_kept_as_spares_up_to_a_limit_and_the_rest_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let spares = Spares::open(dir.path(), Vec::new(), FILL_CHUNK as u64).unwrap();
        let old_records = vec![7u8; FILL_CHUNK];
        for seq in 1..=4 {
            let released = dir.path().join(format!("{seq}.log"));
            fs::write(&released, if seq == 2 { &old_records[1..] } else { &old_records[..] }).unwrap();
            spares.offer(&released).unwrap();
            assert!(!released.exists());
        }
        let mut kept = spares_in(dir.path());
        kept.sort();
        assert_eq!(kept, [dir.path().join("1.spare"), dir.path().join("3.spare")], "2 was short, 4 one too many");
        assert!(spares.take(&dir.path().join("5.log")));
        assert_eq!(fs::read(dir.path().join("5.log")).unwrap(), old_records);
    }
}
