//! The embedded journal ([`FileJournal`]): a folder of segment files named by their first sequence number.
//! Each record is framed as `[len u32][crc32 u32][seq u64][payload]`, the CRC covering seq and payload. On
//! open, the tail of the last segment is scanned and a torn or corrupt record (a crash mid-write) is cut off:
//! it was never acknowledged. Segments whose records every index has committed are released.
//!
//! A new segment is written over a spare file when there is one ([`Spares`]): a released segment or a file of
//! zeros. What a spare held is never read as records: a record is read only under its expected sequence number,
//! and the spare's old records have lower ones. On open, whatever follows the last valid record is cut off.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, IoSlice, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::spares::{SPARE_SUFFIX, Spares};
use crate::journal::{
    AppendFuture, AppendRequest, DurableEnd, Journal, JournalError, JournalReader, Seq, gather, refuse,
};

const HEADER: usize = 16;
/// Segments are released whole once every index holds their records: smaller ones give space back sooner.
const SEGMENT_TARGET_BYTES: u64 = 16 * 1024 * 1024;
/// A record is at most a 6 MiB request plus its framing; anything larger in a length field is corruption.
const MAX_RECORD_BYTES: u32 = 512 * 1024 * 1024;
/// At most this many bytes go into one write+sync, so one giant group does not delay the next forever.
const MAX_GROUP_BYTES: usize = 64 * 1024 * 1024;
/// A segment appended to is left for a spare once it holds this much (see `Writer::appending_while_a_spare_waits`).
const EARLY_ROTATION_BYTES: u64 = 1024 * 1024;
/// Writes over a spare end on a block boundary (the filesystem's block, 4 KiB on ext4 and XFS by default).
const BLOCK_BYTES: u64 = 4096;
/// The padding that fills a write over a spare to the end of its block.
static BLOCK_OF_ZEROS: [u8; BLOCK_BYTES as usize] = [0; BLOCK_BYTES as usize];

/// The embedded journal: segment files in one folder.
pub struct FileJournal {
    sender: mpsc::Sender<AppendRequest>,
    durable_end: Arc<DurableEnd>,
    segments: Arc<Mutex<Vec<Segment>>>,
    spares: Arc<Spares>,
    dir: PathBuf,
}

#[derive(Debug, Clone)]
struct Segment {
    first_seq: Seq,
    path: PathBuf,
}

impl FileJournal {
    /// Opens (or creates) the journal in `dir`, repairing a torn tail, and starts its writer thread.
    pub fn open(dir: &Path) -> io::Result<FileJournal> {
        fs::create_dir_all(dir)?;
        let (mut segments, spares) = list_files(dir)?;
        let (active, end_seq) = match segments.last() {
            Some(last) => {
                let tail = scan_tail(&last.path, last.first_seq)?;
                let file = OpenOptions::new().write(true).open(&last.path)?;
                if file.metadata()?.len() != tail.end_offset {
                    if tail.torn {
                        tracing::warn!(segment = %last.path.display(), end_offset = tail.end_offset, "cutting a torn record off the journal tail");
                    }
                    // Also what a spare held beyond the last record: the end of the file is the end of the log.
                    file.set_len(tail.end_offset)?;
                    file.sync_all()?;
                }
                (ActiveSegment::resume(file, tail.end_offset)?, tail.last_seq)
            }
            None => {
                let segment = Segment { first_seq: 1, path: segment_path(dir, 1) };
                let active = ActiveSegment::create(&segment.path, dir, false)?;
                segments.push(segment);
                (active, 0)
            }
        };
        let segments = Arc::new(Mutex::new(segments));
        let spares = Arc::new(Spares::open(dir, spares, SEGMENT_TARGET_BYTES)?);
        let durable_end = DurableEnd::new(end_seq);
        let (sender, receiver) = mpsc::channel(4096);
        let writer = Writer {
            dir: dir.to_path_buf(),
            active,
            next_seq: end_seq + 1,
            segments: segments.clone(),
            spares: spares.clone(),
            durable_end: durable_end.clone(),
        };
        thread::Builder::new().name("intake-journal".into()).spawn(move || writer.run(receiver))?;
        Ok(FileJournal { sender, durable_end, segments, spares, dir: dir.to_path_buf() })
    }

    /// The folder the journal lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for FileJournal {
    /// Nothing writes in the folder once the journal is gone but the appends still pending.
    fn drop(&mut self) {
        self.spares.close();
    }
}

impl Journal for FileJournal {
    fn append(&self, records: Vec<Vec<u8>>) -> AppendFuture {
        AppendRequest::send(self.sender.clone(), records)
    }

    fn reader(&self, after: Seq) -> Result<Box<dyn JournalReader>, JournalError> {
        Ok(Box::new(FileReader::new(self.segments.clone(), self.durable_end.watch(), after)?))
    }

    fn durable(&self) -> watch::Receiver<Seq> {
        self.durable_end.watch()
    }

    fn wait_beyond(&self, seq: Seq, timeout: Duration) -> Seq {
        self.durable_end.wait_beyond(seq, timeout)
    }

    fn sync_count(&self) -> u64 {
        self.durable_end.sync_count()
    }

    fn release_through(&self, seq: Seq) -> Result<(), JournalError> {
        let mut segments = self.segments.lock().expect("segment list lock");
        // A segment can go when the next one starts at or before seq + 1: all its records are ≤ seq.
        // The last (active) segment always stays.
        while segments.len() > 1 && segments[1].first_seq <= seq + 1 {
            let old = segments.remove(0);
            self.spares
                .offer(&old.path)
                .map_err(|e| JournalError::Write(format!("releasing {}: {e}", old.path.display())))?;
            tracing::debug!(segment = %old.path.display(), "released journal segment");
        }
        Ok(())
    }
}

fn segment_path(dir: &Path, first_seq: Seq) -> PathBuf {
    dir.join(format!("{first_seq:020}.log"))
}

/// The segments in order, and the spares.
fn list_files(dir: &Path) -> io::Result<(Vec<Segment>, Vec<PathBuf>)> {
    let (mut segments, mut spares) = (Vec::new(), Vec::new());
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        if name.ends_with(SPARE_SUFFIX) {
            spares.push(path);
        } else if let Some(first_seq) = name.strip_suffix(".log").and_then(|n| n.parse::<Seq>().ok()) {
            segments.push(Segment { first_seq, path });
        }
    }
    segments.sort_by_key(|s| s.first_seq);
    Ok((segments, spares))
}

/// Reads one framed record; `Ok(None)` at the end of the segment's records — the end of the file, or a header
/// that is not the expected record's (a spare's old record, or the zeros of a hole) — and `Err` on a torn or
/// corrupt record.
fn read_record(reader: &mut impl Read, expected_seq: Seq) -> io::Result<Option<Vec<u8>>> {
    let mut header = [0u8; HEADER];
    match read_full(reader, &mut header)? {
        0 => return Ok(None),
        HEADER => {}
        _ => {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "torn record header"));
        }
    }
    let len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    let seq = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
    if seq != expected_seq {
        return Ok(None);
    }
    if len > MAX_RECORD_BYTES {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("bad length {len} in record {seq}")));
    }
    let mut payload = vec![0u8; len as usize];
    if read_full(reader, &mut payload)? != payload.len() {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "torn record payload"));
    }
    if checksum(seq, &payload) != crc {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("checksum mismatch in record {seq}")));
    }
    Ok(Some(payload))
}

fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn checksum(seq: Seq, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// Where a segment's valid records end.
struct Tail {
    end_offset: u64,
    last_seq: Seq,
    /// Whether they end in a torn or corrupt record (rather than the end of the file or a spare's old record).
    torn: bool,
}

fn scan_tail(path: &Path, first_seq: Seq) -> io::Result<Tail> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut tail = Tail { end_offset: 0, last_seq: first_seq - 1, torn: false };
    loop {
        match read_record(&mut reader, tail.last_seq + 1) {
            Ok(Some(payload)) => {
                tail.end_offset += (HEADER + payload.len()) as u64;
                tail.last_seq += 1;
            }
            Ok(None) => return Ok(tail),
            Err(_) => return Ok(Tail { torn: true, ..tail }),
        }
    }
}

/// Writes every slice, however many `writev` calls it takes.
fn write_all_vectored(file: &mut File, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => {
                return Err(io::Error::new(io::ErrorKind::WriteZero, "the journal file accepted no bytes"));
            }
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The segment being appended to.
struct ActiveSegment {
    file: File,
    len: u64,
    /// Written over a spare: its syncs write data only.
    over_spare: bool,
}

impl ActiveSegment {
    /// Opens the segment at `path`: a new file, or a spare just renamed there, written from its start.
    fn create(path: &Path, dir: &Path, spare: bool) -> io::Result<ActiveSegment> {
        let file = OpenOptions::new().create_new(!spare).write(true).open(path)?;
        // The new file's name must survive a crash too.
        File::open(dir)?.sync_all()?;
        Ok(ActiveSegment { file, len: 0, over_spare: spare })
    }

    /// The last segment found on open: cut to its records, so appended to.
    fn resume(mut file: File, len: u64) -> io::Result<ActiveSegment> {
        file.seek(SeekFrom::Start(len))?;
        Ok(ActiveSegment { file, len, over_spare: false })
    }
}

/// The single thread that writes and syncs: it owns the active segment.
struct Writer {
    dir: PathBuf,
    active: ActiveSegment,
    next_seq: Seq,
    segments: Arc<Mutex<Vec<Segment>>>,
    spares: Arc<Spares>,
    durable_end: Arc<DurableEnd>,
}

impl Writer {
    fn run(mut self, mut receiver: mpsc::Receiver<AppendRequest>) {
        let mut failed: Option<JournalError> = None;
        while let Some(first) = receiver.blocking_recv() {
            let group = gather(first, &mut receiver, MAX_GROUP_BYTES);
            if let Some(error) = &failed {
                refuse(group, error);
                continue;
            }
            match self.write_group(&group) {
                Ok(last_seqs) => {
                    self.durable_end.synced(self.next_seq - 1);
                    for (request, last) in group.into_iter().zip(last_seqs) {
                        let _ = request.done.send(Ok(last));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "journal write failed");
                    let error = JournalError::Write(e.to_string());
                    if self.rollback().is_err() {
                        // The file may hold a partial group we cannot cut off: refuse everything from now on
                        // rather than risk acknowledging records behind garbage.
                        failed = Some(error.clone());
                    }
                    refuse(group, &error);
                }
            }
        }
    }

    /// Writes every record of the group, syncs once, and returns each request's last seq.
    fn write_group(&mut self, group: &[AppendRequest]) -> io::Result<Vec<Seq>> {
        if self.active.len >= SEGMENT_TARGET_BYTES || self.appending_while_a_spare_waits() {
            self.rotate()?;
        }
        // Headers are built apart and written with the records in one vectored write: no copy of the payloads.
        let mut headers = Vec::with_capacity(group.iter().map(|r| r.records.len()).sum());
        let mut seq = self.next_seq;
        let mut last_seqs = Vec::with_capacity(group.len());
        for request in group {
            for record in &request.records {
                let mut header = [0u8; HEADER];
                header[0..4].copy_from_slice(&(record.len() as u32).to_le_bytes());
                header[4..8].copy_from_slice(&checksum(seq, record).to_le_bytes());
                header[8..16].copy_from_slice(&seq.to_le_bytes());
                headers.push(header);
                seq += 1;
            }
            last_seqs.push(seq - 1);
        }
        let records = group.iter().flat_map(|r| &r.records);
        let mut slices: Vec<IoSlice<'_>> = headers
            .iter()
            .zip(records)
            .flat_map(|(header, record)| [IoSlice::new(header), IoSlice::new(record)])
            .collect();
        let written = slices.iter().map(|s| s.len() as u64).sum::<u64>();
        let padding = self.padding_after(written);
        if padding > 0 {
            slices.push(IoSlice::new(&BLOCK_OF_ZEROS[..padding]));
        }
        write_all_vectored(&mut self.active.file, &mut slices)?;
        self.active.file.sync_data()?;
        self.active.len += written;
        if padding > 0 {
            // The next group starts where the records end, over the zeros.
            self.active.file.seek(SeekFrom::Start(self.active.len))?;
        }
        self.next_seq = seq;
        Ok(last_seqs)
    }

    /// The zeros that make a write over a spare end on a block boundary. A write that covers part of a block
    /// the page cache does not hold makes the filesystem read that block from the disk first, in the write
    /// call (`perf`: 5 % of the server's CPU under single-item PUTs, and a disk read's wait for every group);
    /// a block written whole is not read, and the next group writes into it while it is cached. The zeros
    /// end the segment's records for readers, as a spare's old bytes do.
    fn padding_after(&self, written: u64) -> usize {
        if !self.active.over_spare {
            return 0; // appended: the blocks past the end of the file are new, none is read
        }
        let end = self.active.len + written;
        (end.next_multiple_of(BLOCK_BYTES) - end) as usize
    }

    /// Cuts the active segment back to its last durable length after a failed write.
    fn rollback(&mut self) -> io::Result<()> {
        self.active.file.set_len(self.active.len)?;
        self.active.file.seek(SeekFrom::Start(self.active.len))?;
        self.active.file.sync_all()
    }

    /// A segment that is appended to (the first of a new journal, the last one found on open) is left for a
    /// spare once it holds [`EARLY_ROTATION_BYTES`] and a spare is ready: ingestion does not pay for appending
    /// until a whole segment is full.
    fn appending_while_a_spare_waits(&self) -> bool {
        !self.active.over_spare && self.active.len >= EARLY_ROTATION_BYTES && self.spares.ready()
    }

    fn rotate(&mut self) -> io::Result<()> {
        let segment = Segment { first_seq: self.next_seq, path: segment_path(&self.dir, self.next_seq) };
        let spare = self.spares.take(&segment.path);
        self.active = ActiveSegment::create(&segment.path, &self.dir, spare)?;
        self.segments.lock().expect("segment list lock").push(segment);
        Ok(())
    }
}

/// Reads segments in order, following rotations, up to the durable end.
struct FileReader {
    segments: Arc<Mutex<Vec<Segment>>>,
    durable: watch::Receiver<Seq>,
    /// The segment being read, and the seq of the next record in it.
    current: Option<OpenSegment>,
    next_seq: Seq,
}

/// A segment being read.
struct OpenSegment {
    first_seq: Seq,
    reader: BufReader<File>,
    /// Where the next record starts.
    offset: u64,
}

impl FileReader {
    fn new(
        segments: Arc<Mutex<Vec<Segment>>>,
        durable: watch::Receiver<Seq>,
        after: Seq,
    ) -> Result<FileReader, JournalError> {
        let mut reader = FileReader { segments, durable, current: None, next_seq: after + 1 };
        reader.position()?;
        Ok(reader)
    }

    /// Opens the segment holding `next_seq` and skips to it. Records before the oldest segment were released
    /// (every consumer had them), so a position before it starts at the oldest record still kept.
    fn position(&mut self) -> Result<(), JournalError> {
        let segment = {
            let segments = self.segments.lock().expect("segment list lock");
            match segments.iter().rev().find(|s| s.first_seq <= self.next_seq) {
                Some(segment) => segment.clone(),
                None => {
                    let oldest = segments
                        .first()
                        .cloned()
                        .ok_or_else(|| JournalError::Read("the journal has no segment".into()))?;
                    // Released records were committed by every index they concern.
                    tracing::debug!(
                        wanted = self.next_seq,
                        oldest = oldest.first_seq,
                        "records before the oldest journal segment were released; reading from it"
                    );
                    self.next_seq = oldest.first_seq;
                    oldest
                }
            }
        };
        let reader = BufReader::with_capacity(1 << 20, File::open(&segment.path).map_err(read_error)?);
        let mut open = OpenSegment { first_seq: segment.first_seq, reader, offset: 0 };
        for seq in segment.first_seq..self.next_seq {
            match read_record(&mut open.reader, seq).map_err(read_error)? {
                Some(payload) => open.offset += (HEADER + payload.len()) as u64,
                None => break,
            }
        }
        self.current = Some(open);
        Ok(())
    }

    fn next_segment_start(&self, current_first: Seq) -> Option<Seq> {
        let segments = self.segments.lock().expect("segment list lock");
        segments.iter().find(|s| s.first_seq > current_first).map(|s| s.first_seq)
    }
}

impl OpenSegment {
    /// Reads the durable record `seq` if this segment holds it. The buffer may hold what a spare had at that
    /// place before the record was written over it (read ahead with an earlier record): what is not the record
    /// is read again from the file once before it counts.
    fn read_durable(&mut self, seq: Seq) -> Result<Option<Vec<u8>>, JournalError> {
        let record = match read_record(&mut self.reader, seq) {
            Ok(Some(payload)) => Some(payload),
            Ok(None) | Err(_) => {
                self.reader.seek(SeekFrom::Start(self.offset)).map_err(read_error)?;
                read_record(&mut self.reader, seq).map_err(read_error)?
            }
        };
        if let Some(payload) = &record {
            self.offset += (HEADER + payload.len()) as u64;
        }
        Ok(record)
    }
}

impl JournalReader for FileReader {
    fn next_batch(&mut self, max_bytes: usize) -> Result<Vec<(Seq, Vec<u8>)>, JournalError> {
        let durable = *self.durable.borrow();
        let mut batch = Vec::new();
        let mut bytes = 0;
        while self.next_seq <= durable && (batch.is_empty() || bytes < max_bytes) {
            let current = self.current.as_mut().expect("reader is positioned");
            let first = current.first_seq;
            match current.read_durable(self.next_seq)? {
                Some(payload) => {
                    bytes += payload.len();
                    batch.push((self.next_seq, payload));
                    self.next_seq += 1;
                }
                // The end of this segment: the record must be at the start of the next one.
                None => match self.next_segment_start(first) {
                    Some(start) if start == self.next_seq => self.position()?,
                    other => {
                        return Err(JournalError::Read(format!(
                            "record {} is durable but missing (next segment starts at {other:?})",
                            self.next_seq
                        )));
                    }
                },
            }
        }
        Ok(batch)
    }
}

fn read_error(e: io::Error) -> JournalError {
    JournalError::Read(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(range: std::ops::Range<u32>) -> Vec<Vec<u8>> {
        range.map(|i| format!("record {i}").into_bytes()).collect()
    }

    #[tokio::test]
    async fn a_torn_tail_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        {
            let journal = FileJournal::open(dir.path()).unwrap();
            journal.append(records(0..2)).await.unwrap();
        }
        let path = segment_path(dir.path(), 1);
        let full = fs::metadata(&path).unwrap().len();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[10, 0, 0, 0, 1, 2, 3]).unwrap(); // half a header
        drop(file);
        let journal = FileJournal::open(dir.path()).unwrap();
        assert_eq!(*journal.durable().borrow(), 2);
        assert_eq!(fs::metadata(&path).unwrap().len(), full);
        assert_eq!(journal.append(records(2..3)).await.unwrap(), 3);
        let batch = journal.reader(0).unwrap().next_batch(1 << 20).unwrap();
        assert_eq!(batch.len(), 3);
    }

    #[tokio::test]
    async fn a_corrupt_record_ends_the_log() {
        let dir = tempfile::tempdir().unwrap();
        {
            let journal = FileJournal::open(dir.path()).unwrap();
            journal.append(records(0..3)).await.unwrap();
        }
        let path = segment_path(dir.path(), 1);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, bytes).unwrap();
        let journal = FileJournal::open(dir.path()).unwrap();
        assert_eq!(*journal.durable().borrow(), 2);
    }

    #[tokio::test]
    async fn rotated_segments_are_read_across_and_released() {
        let dir = tempfile::tempdir().unwrap();
        let journal = FileJournal::open(dir.path()).unwrap();
        let big = vec![vec![7u8; (SEGMENT_TARGET_BYTES * 5 / 8) as usize]];
        journal.append(big.clone()).await.unwrap();
        journal.append(big.clone()).await.unwrap();
        journal.append(big).await.unwrap(); // written to a second segment
        journal.append(records(0..1)).await.unwrap();
        let first_seqs = || list_files(dir.path()).unwrap().0.iter().map(|s| s.first_seq).collect::<Vec<_>>();
        // Record 4 starts a third segment if a spare was written meanwhile.
        assert_eq!(first_seqs()[..2], [1, 3]);
        let read = read_all(journal.reader(0).unwrap().as_mut());
        assert_eq!(read.into_iter().map(|(seq, _)| seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
        journal.release_through(1).unwrap();
        assert_eq!(first_seqs()[0], 1, "segment 1 still holds record 2");
        journal.release_through(2).unwrap();
        assert_eq!(first_seqs()[0], 3);
        assert_eq!(journal.reader(2).unwrap().next_batch(1 << 30).unwrap().len(), 2);
    }

    /// The first segment of a journal is appended to; once it holds a megabyte a spare of zeros is written, and
    /// the next append starts a segment over it.
    #[tokio::test]
    async fn a_segment_appended_to_is_left_for_a_spare_after_a_megabyte() {
        let dir = tempfile::tempdir().unwrap();
        let journal = FileJournal::open(dir.path()).unwrap();
        let piece = || vec![vec![1u8; (EARLY_ROTATION_BYTES / 2) as usize]];
        for _ in 0..3 {
            journal.append(piece()).await.unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while list_files(dir.path()).unwrap().1.is_empty() {
            assert!(std::time::Instant::now() < deadline, "no spare was written");
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(journal.append(piece()).await.unwrap(), 4);
        let segments = list_files(dir.path()).unwrap().0;
        assert_eq!(segments.iter().map(|s| s.first_seq).collect::<Vec<_>>(), [1, 4]);
        assert_eq!(fs::metadata(&segments[1].path).unwrap().len(), SEGMENT_TARGET_BYTES, "written over the spare");
        let read = read_all(journal.reader(0).unwrap().as_mut());
        assert_eq!(read.into_iter().map(|(seq, _)| seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    }

    /// A write over a spare ends on a block boundary: the rest of its last block is zeros (so the filesystem
    /// need not read that block first), the spare's bytes after it are left, and the next record follows the
    /// last one, not the zeros.
    #[tokio::test]
    async fn writes_over_a_spare_fill_their_last_block_with_zeros() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("old.spare"), vec![0xabu8; SEGMENT_TARGET_BYTES as usize]).unwrap();
        let journal = FileJournal::open(dir.path()).unwrap();
        journal.append(vec![vec![1u8; EARLY_ROTATION_BYTES as usize]]).await.unwrap();
        assert_eq!(journal.append(records(0..1)).await.unwrap(), 2);
        let segment = list_files(dir.path()).unwrap().0.pop().unwrap();
        assert_eq!(segment.first_seq, 2, "record 2 starts a segment over the spare");
        let bytes = fs::read(&segment.path).unwrap();
        let end = HEADER + records(0..1)[0].len();
        assert!(bytes[end..BLOCK_BYTES as usize].iter().all(|&b| b == 0), "the block is filled with zeros");
        assert_eq!(bytes[BLOCK_BYTES as usize], 0xab, "the spare's next block is not written");

        assert_eq!(journal.append(records(1..3)).await.unwrap(), 4);
        let read = read_all(journal.reader(1).unwrap().as_mut());
        assert_eq!(read.into_iter().map(|(_, payload)| payload).collect::<Vec<_>>(), records(0..3));
        drop(journal);
        let journal = FileJournal::open(dir.path()).unwrap();
        assert_eq!(*journal.durable().borrow(), 4);
        let end = 3 * HEADER + records(0..3).iter().map(Vec::len).sum::<usize>();
        assert_eq!(fs::metadata(&segment.path).unwrap().len(), end as u64, "opening cuts the zeros off");
    }

    fn read_all(reader: &mut dyn JournalReader) -> Vec<(Seq, Vec<u8>)> {
        let mut all = Vec::new();
        loop {
            let batch = reader.next_batch(1).unwrap();
            if batch.is_empty() {
                return all;
            }
            all.extend(batch);
        }
    }

    /// A released segment is written over as a later one: its old records are never read as the new segment's,
    /// not by a reader whose buffer still holds them, and not when the journal opens again.
    #[tokio::test]
    async fn a_released_segment_is_written_over_and_its_old_records_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let journal = FileJournal::open(dir.path()).unwrap();
        let big = |fill: u8| vec![vec![fill; (SEGMENT_TARGET_BYTES * 5 / 8) as usize]];
        journal.append(big(1)).await.unwrap();
        journal.append(big(2)).await.unwrap();
        journal.append(big(3)).await.unwrap(); // seq 3 starts segment 2
        journal.release_through(2).unwrap();
        let (segments, spares) = list_files(dir.path()).unwrap();
        assert_eq!(segments.len(), 1);
        assert!(spares.contains(&dir.path().join("00000000000000000001.spare")), "segment 1 is kept as a spare");

        journal.append(big(4)).await.unwrap();
        assert_eq!(journal.append(records(0..1)).await.unwrap(), 5);
        // Record 5 starts a third segment, over a spare (or record 4 did, if a spare of zeros came before it).
        let last = list_files(dir.path()).unwrap().0.pop().unwrap();
        assert!(last.first_seq >= 4);
        let written_over = fs::metadata(&last.path).unwrap().len();
        assert!(written_over >= SEGMENT_TARGET_BYTES, "written over a spare, not appended to: {written_over} bytes");

        let mut reader = journal.reader(0).unwrap();
        let read = read_all(reader.as_mut());
        assert_eq!(read.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(read[2].1, records(0..1)[0]);
        // The reader's buffer now holds the spare's old bytes after record 5: record 6 is read from the file.
        journal.append(records(1..3)).await.unwrap();
        let read = read_all(reader.as_mut());
        assert_eq!(read.into_iter().map(|(_, payload)| payload).collect::<Vec<_>>(), records(1..3));
        drop(reader);
        drop(journal);

        let journal = FileJournal::open(dir.path()).unwrap();
        assert_eq!(*journal.durable().borrow(), 7, "the old records after the last one are not taken for new ones");
        assert_eq!(journal.append(records(3..4)).await.unwrap(), 8);
        let read = read_all(journal.reader(4).unwrap().as_mut());
        assert_eq!(read.into_iter().map(|(_, payload)| payload).collect::<Vec<_>>(), records(0..4));
    }
}
