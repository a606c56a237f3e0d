//! File container bytes on S3-compatible object storage (`--blobs s3://bucket/prefix?endpoint=…&region=…`),
//! shared by the nodes of a cluster.
//!
//! A blob is one object, `<prefix>/containers/<id>` (index snapshots: `<prefix>/snapshots/<id>`). An upload is spooled to a temporary file in the node's
//! data directory and becomes the object only when finished (one PUT, or a multipart upload for large ones):
//! S3 makes an object appear whole or not at all, so a second upload replaces the first whole and an upload
//! never finished leaves nothing. A read downloads the object to a temporary file, so a slow reader never holds a
//! connection to the store: ranged GETs in parallel, all of the same version, while the reader reads what has
//! arrived (a batch is validated as it downloads). The containers' spooled files are kept a while as local copies
//! ([`LocalCopies`]), so the second read of a batch (validated when accepted, then applied) costs a HEAD, not a
//! download. With `presigned=true`, `POST /files` hands out presigned PUT URLs instead
//! of Intake's own upload endpoint, so uploads go straight to the bucket ([`BlobStore::upload_url`]).
//! Credentials come from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and the other variables the AWS SDKs
//! read).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tempfile::NamedTempFile;

use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::signer::{Method, Signer};
use object_store::{
    ClientOptions, GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload, PutResult, RetryConfig,
};

use crate::bridge::Bridge;
use crate::{BlobInfo, BlobStore, BlobWriter, StoreError};

/// Objects up to this size are one PUT; larger ones a multipart upload of parts this size.
const PART_BYTES: usize = 8 * 1024 * 1024;
/// Objects larger than one part are downloaded as this many ranged GETs at a time.
const PARALLEL_PARTS: usize = 4;
/// A download is written to its file, and made readable, this much at a time.
const WRITE_BYTES: usize = 256 * 1024;
/// The containers' local copies take at most this much of the node's disk.
const LOCAL_COPY_BYTES: u64 = 1024 * 1024 * 1024;
/// No local copy is kept while the node's disk has less than this free.
const LOCAL_COPY_MIN_FREE_BYTES: u64 = 2 * LOCAL_COPY_BYTES;

/// Where the blobs live: parsed from `s3://bucket[/prefix][?endpoint=URL&region=NAME&virtual_hosted=true]`.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Object names start with it (no leading or trailing `/`); may be empty.
    pub prefix: String,
    /// An S3-compatible server; `None` is AWS.
    pub endpoint: Option<String>,
    pub region: String,
    /// `bucket.host/key` addressing rather than `host/bucket/key`.
    pub virtual_hosted: bool,
    /// `POST /files` hands out presigned S3 PUT URLs, so uploads go straight to the bucket (`presigned=true`).
    pub presigned_uploads: bool,
    /// An access key id and its secret; `None` (what [`S3Location::parse`] gives): from the environment, as the
    /// AWS SDKs read it. Never part of the URL, so never in a log.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Location")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("virtual_hosted", &self.virtual_hosted)
            .field("presigned_uploads", &self.presigned_uploads)
            .field("credentials", &self.credentials.as_ref().map(|(id, _)| (id, "***")))
            .finish()
    }
}

impl S3Location {
    pub fn parse(url: &str) -> Result<S3Location, StoreError> {
        let invalid = |why: &str| StoreError::Schema(format!("the blob store URL '{url}' is not valid: {why}"));
        let rest = url.strip_prefix("s3://").ok_or_else(|| invalid("it must start with s3://"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        if bucket.is_empty() {
            return Err(invalid("it names no bucket (s3://bucket/prefix)"));
        }
        let mut location = S3Location {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            endpoint: None,
            region: "us-east-1".to_string(),
            virtual_hosted: false,
            presigned_uploads: false,
            credentials: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "endpoint" => location.endpoint = Some(value.trim_end_matches('/').to_string()),
                "region" => location.region = value.to_string(),
                "virtual_hosted" => location.virtual_hosted = value == "true",
                "presigned" => location.presigned_uploads = value == "true",
                other => {
                    return Err(invalid(&format!(
                        "unknown parameter '{other}' (endpoint, region, virtual_hosted, presigned)"
                    )));
                }
            }
        }
        Ok(location)
    }

    /// The client for this location (`virtual_hosted` addressing or not), credentials from the environment.
    fn client(&self, virtual_hosted: bool) -> Result<AmazonS3, StoreError> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&self.bucket)
            .with_region(&self.region)
            .with_virtual_hosted_style_request(virtual_hosted)
            .with_retry(RetryConfig { max_retries: 2, retry_timeout: Duration::from_secs(5), ..Default::default() })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(300)),
            );
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some((id, secret)) = &self.credentials {
            builder = builder.with_access_key_id(id).with_secret_access_key(secret);
        }
        builder.build().map_err(|e| StoreError::Schema(format!("the S3 client could not be made: {e}")))
    }

    fn object(&self, name: &str) -> Path {
        if self.prefix.is_empty() { Path::from(name) } else { Path::from(format!("{}/{name}", self.prefix)) }
    }
}

/// File container bytes in an S3 bucket.
pub struct S3Blobs {
    shared: Arc<Shared>,
    /// The folder under the prefix: `containers`, or another store's ([`S3Blobs::area`]).
    area: &'static str,
    /// The containers' recent local copies; `None` for the other areas, whose objects are read once.
    copies: Option<Arc<LocalCopies>>,
}

/// Local copies of the objects this node wrote or read lately, so that reading one again — a batch is read to
/// validate it, then to apply it — costs a HEAD instead of a download. A copy is used only while the object's
/// ETag is the one it was made from: an object replaced meanwhile (from another node, or through a presigned URL)
/// is downloaded again. At most `max_bytes` are kept; the oldest go first.
struct LocalCopies {
    max_bytes: u64,
    /// The spool's file system keeps at least this much free: below it, every copy goes and none is kept (the
    /// journal and the indexes need the space more than a cache does).
    min_free_bytes: u64,
    spool: PathBuf,
    copies: Mutex<VecDeque<LocalCopy>>,
}

struct LocalCopy {
    id: String,
    e_tag: String,
    size: u64,
    /// Deleted from the disk when dropped; a reader that opened it keeps reading.
    file: NamedTempFile,
}

impl LocalCopies {
    /// Keeps `file` as the copy of `id` at `e_tag` (none without an ETag, or larger than the whole budget).
    fn keep(&self, id: &str, e_tag: Option<String>, size: u64, file: NamedTempFile) {
        let mut copies = self.copies.lock().expect("local copies lock");
        copies.retain(|copy| copy.id != id);
        if crate::disk::free_bytes(&self.spool).is_some_and(|free| free < self.min_free_bytes) {
            copies.clear();
            return;
        }
        let Some(e_tag) = e_tag.filter(|_| size <= self.max_bytes) else { return };
        copies.push_back(LocalCopy { id: id.to_string(), e_tag, size, file });
        let mut total: u64 = copies.iter().map(|copy| copy.size).sum();
        while total > self.max_bytes {
            let Some(oldest) = copies.pop_front() else { break };
            total -= oldest.size;
        }
    }

    /// A reader of the copy of `id`, if there is one made from the object at `e_tag`; a copy of another version
    /// is dropped.
    fn open(&self, id: &str, e_tag: Option<&str>) -> Option<File> {
        let mut copies = self.copies.lock().expect("local copies lock");
        let at = copies.iter().position(|copy| copy.id == id)?;
        if e_tag.is_some_and(|e_tag| e_tag == copies[at].e_tag) {
            copies[at].file.reopen().ok()
        } else {
            copies.remove(at);
            None
        }
    }

    fn forget(&self, id: &str) {
        self.copies.lock().expect("local copies lock").retain(|copy| copy.id != id);
    }
}

struct Shared {
    bridge: Bridge,
    store: AmazonS3,
    /// The same bucket addressed the other way (path-style or virtual-hosted), to sign upload URLs either way.
    other_style: AmazonS3,
    location: S3Location,
    /// Where uploads and downloads are spooled (the node's data directory).
    spool: PathBuf,
    /// Objects downloaded so far.
    downloads: AtomicU64,
}

impl S3Blobs {
    /// The blobs at `location`, spooling through `spool` (created if missing).
    pub fn open(location: S3Location, spool: &FsPath) -> Result<S3Blobs, StoreError> {
        std::fs::create_dir_all(spool)?;
        remove_spooled(spool)?;
        let store = location.client(location.virtual_hosted)?;
        let other_style = location.client(!location.virtual_hosted)?;
        let bridge = Bridge::new("intake-s3")?;
        let shared =
            Shared { bridge, store, other_style, location, spool: spool.to_path_buf(), downloads: AtomicU64::new(0) };
        let copies = LocalCopies {
            max_bytes: LOCAL_COPY_BYTES,
            min_free_bytes: LOCAL_COPY_MIN_FREE_BYTES,
            spool: spool.to_path_buf(),
            copies: Mutex::default(),
        };
        Ok(S3Blobs { shared: Arc::new(shared), area: "containers", copies: Some(Arc::new(copies)) })
    }

    /// Blobs of another kind in the same bucket, under `<prefix>/<area>/` (index snapshots), sharing the client.
    pub fn area(&self, area: &'static str) -> S3Blobs {
        S3Blobs { shared: self.shared.clone(), area, copies: None }
    }

    /// How many objects this node downloaded (of every area), for the tests that a local copy saved one.
    pub fn downloads(&self) -> u64 {
        self.shared.downloads.load(Ordering::Relaxed)
    }

    /// Starts downloading the object `id`, of the version `meta` describes, to the spool; what has arrived can be
    /// read at once, in order (a batch is validated while it downloads). Once whole, the file is kept as the
    /// local copy of that version.
    fn download(&self, id: &str, meta: ObjectMeta) -> Result<Arriving, StoreError> {
        self.shared.downloads.fetch_add(1, Ordering::Relaxed);
        let file = spool_file(&self.shared.spool)?;
        let arrival = Arc::new(Arrival::new(meta.size));
        let reader = Arriving { file: file.reopen()?, at: 0, arrival: arrival.clone() };
        let (shared, object, copies, id) = (self.shared.clone(), self.object(id), self.copies.clone(), id.to_string());
        self.shared.bridge.spawn(async move {
            let arrival = Ending(arrival);
            match download_parts(&shared.store, &object, &meta, file.as_file(), &arrival.0).await {
                Ok(()) => {
                    if let Some(copies) = copies {
                        copies.keep(&id, meta.e_tag, meta.size, file);
                    }
                    arrival.0.finish(Ok(()));
                }
                Err(error) => arrival.0.finish(Err(error.to_string())),
            }
        });
        Ok(reader)
    }

    fn object(&self, id: &str) -> Path {
        self.shared.location.object(&format!("{}/{id}", self.area))
    }
}

/// Spooled files are named so, to be told apart from anything else in the folder.
const SPOOL_PREFIX: &str = "spooled-";

/// A new file in the spool, deleted when dropped.
fn spool_file(spool: &FsPath) -> io::Result<NamedTempFile> {
    tempfile::Builder::new().prefix(SPOOL_PREFIX).tempfile_in(spool)
}

/// Deletes what a node stopped abruptly left in its spool (its files are deleted when dropped otherwise).
fn remove_spooled(spool: &FsPath) -> io::Result<()> {
    for entry in std::fs::read_dir(spool)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(SPOOL_PREFIX) {
            match std::fs::remove_file(entry.path()) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
                _ => {}
            }
        }
    }
    Ok(())
}

/// An object store failure: "not found" as the I/O kind callers test for, anything else as unavailable (the
/// store is down, slow or refusing; nothing was changed, a retry may succeed).
fn failed(error: object_store::Error) -> StoreError {
    match error {
        object_store::Error::NotFound { .. } => {
            StoreError::Io(io::Error::new(io::ErrorKind::NotFound, "no such object in the blob store"))
        }
        other => StoreError::Unavailable(format!("the object store failed: {other}")),
    }
}

impl BlobStore for S3Blobs {
    fn create(&self, id: &str) -> Result<Box<dyn BlobWriter>, StoreError> {
        let file = spool_file(&self.shared.spool)?;
        Ok(Box::new(S3BlobWriter {
            shared: self.shared.clone(),
            id: id.to_string(),
            object: self.object(id),
            file,
            size: 0,
            copies: self.copies.clone(),
        }))
    }

    /// One HEAD (the object's size and version), then the local copy of that version, or a download.
    fn open(&self, id: &str) -> Result<Box<dyn Read + Send>, StoreError> {
        let object = self.object(id);
        let meta = self.shared.bridge.run(self.shared.store.head(&object)).map_err(failed)?;
        if let Some(copy) = self.copies.as_ref().and_then(|copies| copies.open(id, meta.e_tag.as_deref())) {
            return Ok(Box::new(io::BufReader::new(copy)));
        }
        Ok(Box::new(io::BufReader::with_capacity(WRITE_BYTES, self.download(id, meta)?)))
    }

    fn delete(&self, id: &str) -> Result<(), StoreError> {
        if let Some(copies) = &self.copies {
            copies.forget(id);
        }
        match self.shared.bridge.run(self.shared.store.delete(&self.object(id))) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(failed(error)),
        }
    }

    fn upload_url(&self, id: &str, expires_in: Duration, virtual_hosted: bool) -> Result<Option<String>, StoreError> {
        if !self.shared.location.presigned_uploads {
            return Ok(None);
        }
        let signer = if virtual_hosted == self.shared.location.virtual_hosted {
            &self.shared.store
        } else {
            &self.shared.other_style
        };
        let url = self.shared.bridge.run(signer.signed_url(Method::PUT, &self.object(id), expires_in));
        Ok(Some(url.map_err(failed)?.to_string()))
    }

    fn size(&self, id: &str) -> Result<Option<u64>, StoreError> {
        match self.shared.bridge.run(self.shared.store.head(&self.object(id))) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(failed(error)),
        }
    }

    /// Lists the area's objects (short-lived: there are few at a time).
    fn list(&self) -> Result<Vec<BlobInfo>, StoreError> {
        let area = self.shared.location.object(self.area);
        self.shared.bridge.run(async {
            let mut objects = self.shared.store.list(Some(&area));
            let mut blobs = Vec::new();
            while let Some(object) = objects.next().await {
                let object = object.map_err(failed)?;
                let Some(id) = object.location.prefix_match(&area).map(|parts| parts.map(|p| p.as_ref().to_string()))
                else {
                    continue;
                };
                let id = id.collect::<Vec<_>>().join("/");
                blobs.push(BlobInfo { id, size: object.size, written_at_ms: object.last_modified.timestamp_millis() });
            }
            Ok(blobs)
        })
    }
}

/// An upload being spooled; it reaches the store at [`BlobWriter::finish`], and the spooled file stays as the
/// local copy.
struct S3BlobWriter {
    shared: Arc<Shared>,
    id: String,
    object: Path,
    file: NamedTempFile,
    size: u64,
    copies: Option<Arc<LocalCopies>>,
}

impl Write for S3BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.file.write(buf)?;
        self.size += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl BlobWriter for S3BlobWriter {
    fn finish(mut self: Box<Self>) -> Result<u64, StoreError> {
        self.file.rewind()?;
        let Shared { bridge, store, .. } = self.shared.as_ref();
        let put = if self.size as usize <= PART_BYTES {
            let mut body = Vec::with_capacity(self.size as usize);
            self.file.read_to_end(&mut body)?;
            bridge.run(store.put(&self.object, PutPayload::from(body))).map_err(failed)?
        } else {
            bridge.run(upload_parts(store, &self.object, self.file.as_file_mut()))?
        };
        let S3BlobWriter { id, file, size, copies, .. } = *self;
        if let Some(copies) = copies {
            copies.keep(&id, put.e_tag, size, file);
        }
        Ok(size)
    }
}

/// Downloads an object into `file` as ranged GETs of one part each, [`PARALLEL_PARTS`] at a time, each written at
/// its offset as it arrives and reported to `arrival`: one connection carries a fraction of what S3 serves (AWS
/// advises ranged GETs in parallel). Every part must be of the version `meta` describes (`If-Match` its ETag), so
/// a file is never stitched from two versions of an object replaced meanwhile. Stops early once the reader is
/// gone.
async fn download_parts(
    store: &AmazonS3,
    object: &Path,
    meta: &ObjectMeta,
    file: &File,
    arrival: &Arrival,
) -> Result<(), StoreError> {
    let part = PART_BYTES as u64;
    let whole = meta.size <= part;
    let ranges = (0..meta.size.div_ceil(part)).map(|i| i * part..((i + 1) * part).min(meta.size));
    let mut parts = futures_util::stream::iter(ranges.enumerate())
        .map(|(index, range)| async move {
            let got = get_version(store, object, meta, (!whole).then(|| range.clone())).await?;
            let mut chunks = got.into_stream();
            let mut part = ArrivingPart { file, arrival, index, range: range.clone(), written: 0, pending: Vec::new() };
            while let Some(chunk) = chunks.next().await {
                if !part.take(&chunk.map_err(failed)?)? {
                    break;
                }
            }
            part.write_pending()?;
            if part.written != range.end - range.start {
                return Err(StoreError::Unavailable(format!(
                    "the object store sent bytes {}..{} of {object} where {}..{} were asked for",
                    range.start,
                    range.start + part.written,
                    range.start,
                    range.end
                )));
            }
            Ok(())
        })
        .buffer_unordered(PARALLEL_PARTS);
    while let Some(part) = parts.next().await {
        part?;
    }
    Ok(())
}

/// A part of a download being written at its place in the file. What the store sends comes in pieces of a few
/// kilobytes; they are written (and reported to the reader) a [`WRITE_BYTES`] at a time, not a system call and a
/// wake-up each.
struct ArrivingPart<'a> {
    file: &'a File,
    arrival: &'a Arrival,
    index: usize,
    range: std::ops::Range<u64>,
    /// Bytes of the part written to the file so far.
    written: u64,
    /// Bytes received after those, not written yet.
    pending: Vec<u8>,
}

impl ArrivingPart<'_> {
    /// Takes the next piece of the part; false when it goes beyond the part (the answer is not what was asked).
    fn take(&mut self, chunk: &[u8]) -> Result<bool, StoreError> {
        let received = self.written + (self.pending.len() + chunk.len()) as u64;
        if received > self.range.end - self.range.start {
            return Ok(false);
        }
        if self.pending.is_empty() && chunk.len() >= WRITE_BYTES {
            self.write(chunk)?;
        } else {
            self.pending.extend_from_slice(chunk);
            if self.pending.len() >= WRITE_BYTES {
                self.write_pending()?;
            }
        }
        Ok(true)
    }

    fn write_pending(&mut self) -> Result<(), StoreError> {
        let pending = std::mem::take(&mut self.pending);
        self.write(&pending)?;
        self.pending = pending;
        self.pending.clear();
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        if bytes.is_empty() {
            return Ok(());
        }
        std::os::unix::fs::FileExt::write_all_at(self.file, bytes, self.range.start + self.written)?;
        self.written += bytes.len() as u64;
        if !self.arrival.arrived(self.index, self.written) {
            return Err(StoreError::Unavailable("nobody reads the download any more".into()));
        }
        Ok(())
    }
}

/// How far a download has come, shared by the task downloading and the reader reading it.
struct Arrival {
    size: u64,
    state: Mutex<Arrived>,
    changed: Condvar,
}

#[derive(Default)]
struct Arrived {
    /// Bytes written of each part so far.
    parts: Vec<u64>,
    /// The first `ready` bytes are all written.
    ready: u64,
    /// `Some` once the download is over: whole (and kept), or why it failed.
    outcome: Option<Result<(), String>>,
    /// The reader was dropped: the download stops.
    abandoned: bool,
}

impl Arrival {
    fn new(size: u64) -> Arrival {
        let parts = vec![0; size.div_ceil(PART_BYTES as u64) as usize];
        Arrival { size, state: Mutex::new(Arrived { parts, ..Arrived::default() }), changed: Condvar::new() }
    }

    /// Notes that part `index` has `written` bytes now; false when nobody reads any more.
    fn arrived(&self, index: usize, written: u64) -> bool {
        let mut state = self.state.lock().expect("arrival lock");
        state.parts[index] = written;
        let part = PART_BYTES as u64;
        let mut ready = 0;
        for (index, &written) in state.parts.iter().enumerate() {
            ready = index as u64 * part + written;
            if written < part.min(self.size - index as u64 * part) {
                break;
            }
        }
        if ready > state.ready {
            state.ready = ready;
            self.changed.notify_all();
        }
        !state.abandoned
    }

    fn finish(&self, outcome: Result<(), String>) {
        self.state.lock().expect("arrival lock").outcome = Some(outcome);
        self.changed.notify_all();
    }

    /// Waits until bytes beyond `at` are ready (how far they go), or the download is over.
    fn wait_beyond(&self, at: u64) -> io::Result<u64> {
        let mut state = self.state.lock().expect("arrival lock");
        loop {
            match &state.outcome {
                // Unavailable, as a failure of the store: reading again (a HEAD, then a new download) may succeed.
                Some(Err(why)) => return Err(io::Error::other(StoreError::Unavailable(why.clone()))),
                Some(Ok(())) => return Ok(self.size),
                None if state.ready > at => return Ok(state.ready),
                None => state = self.changed.wait(state).expect("arrival lock"),
            }
        }
    }
}

/// The download task's hold on its [`Arrival`]: a task that ends without saying how (it panicked, or its runtime
/// stopped) fails its reader instead of leaving it waiting for ever.
struct Ending(Arc<Arrival>);

impl Drop for Ending {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().expect("arrival lock");
        if state.outcome.is_none() {
            state.outcome = Some(Err("the download stopped before it ended".to_string()));
            self.0.changed.notify_all();
        }
    }
}

/// Reads a download as it arrives: waits for bytes not written yet, fails with the download. The end of the
/// file is reported only once the download is whole and kept as the local copy, so that a read right after
/// this one finds it.
struct Arriving {
    file: File,
    at: u64,
    arrival: Arc<Arrival>,
}

impl Read for Arriving {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let ready = self.arrival.wait_beyond(self.at)?;
        let len = (ready - self.at).min(buf.len() as u64) as usize;
        if len == 0 {
            return Ok(0);
        }
        let n = std::os::unix::fs::FileExt::read_at(&self.file, &mut buf[..len], self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

impl Drop for Arriving {
    fn drop(&mut self) {
        self.arrival.state.lock().expect("arrival lock").abandoned = true;
    }
}

/// `object` (or the `range` of it) only of the version `meta` describes: a local copy is kept under that version's
/// ETag, and a large object is stitched from parts of it. `If-Match` asks the store; the answer is checked too, as
/// not every S3-compatible server honours it. Replaced meanwhile: unavailable, a read again gets the new version.
async fn get_version(
    store: &AmazonS3,
    object: &Path,
    meta: &ObjectMeta,
    range: Option<std::ops::Range<u64>>,
) -> Result<object_store::GetResult, StoreError> {
    let options =
        GetOptions { range: range.map(GetRange::Bounded), if_match: meta.e_tag.clone(), ..GetOptions::default() };
    let got = store.get_opts(object, options).await.map_err(failed)?;
    if got.meta.e_tag != meta.e_tag {
        return Err(StoreError::Unavailable(format!(
            "{object} was replaced while it was downloaded (ETag {:?}, then {:?}); read it again",
            meta.e_tag, got.meta.e_tag
        )));
    }
    Ok(got)
}

/// A multipart upload of `file`, part by part; aborted (nothing left behind) when a part fails.
async fn upload_parts(store: &AmazonS3, object: &Path, file: &mut File) -> Result<PutResult, StoreError> {
    let mut upload = store.put_multipart(object).await.map_err(failed)?;
    let uploaded = async {
        loop {
            let mut part = Vec::with_capacity(PART_BYTES);
            (&mut *file).take(PART_BYTES as u64).read_to_end(&mut part)?;
            if part.is_empty() {
                return Ok::<_, StoreError>(());
            }
            upload.put_part(PutPayload::from(part)).await.map_err(failed)?;
        }
    }
    .await;
    match uploaded {
        Ok(()) => upload.complete().await.map_err(failed),
        Err(error) => {
            let _ = upload.abort().await;
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A download is of the version the HEAD saw, a large one in parallel parts: an object replaced since (a part
    /// of another version, or a small object's new content) fails the download rather than being stitched in or
    /// kept under the old version's ETag.
    #[test]
    fn downloads_are_of_one_version_large_ones_in_parts() {
        let spool = tempfile::tempdir().unwrap();
        let blobs = S3Blobs::open(crate::testing::scratch_blobs(), spool.path()).unwrap().area("parts");
        let write = |content: &[u8]| {
            let mut writer = blobs.create("big").unwrap();
            writer.write_all(content).unwrap();
            writer.finish().unwrap();
        };
        let first: Vec<u8> = (0..3 * PART_BYTES as u32 + 5).map(|i| (i % 253) as u8).collect();
        write(&first);
        let mut read = Vec::new();
        blobs.open("big").unwrap().read_to_end(&mut read).unwrap();
        assert!(read == first, "four parts read back in place");

        let object = blobs.object("big");
        let stale = blobs.shared.bridge.run(blobs.shared.store.head(&object)).unwrap();
        write(&first.iter().map(|b| b.wrapping_add(1)).collect::<Vec<u8>>());
        let error = read_download(&blobs, "big", stale).expect_err("parts of another version are refused");
        assert!(error.to_string().contains("was replaced while it was downloaded"), "{error}");

        let write_small = |content: &[u8]| {
            let mut writer = blobs.create("small").unwrap();
            writer.write_all(content).unwrap();
            writer.finish().unwrap();
        };
        write_small(b"first version");
        let small = blobs.object("small");
        let stale = blobs.shared.bridge.run(blobs.shared.store.head(&small)).unwrap();
        write_small(b"second version");
        let error = read_download(&blobs, "small", stale).expect_err("a small object's other version is refused too");
        assert!(error.to_string().contains("was replaced while it was downloaded"), "{error}");
    }

    /// A reader gets what has arrived in file order, whatever order the parts come in, and the end of the file
    /// only once the download is over; a reader gone stops the download.
    #[test]
    fn downloads_are_read_in_order_as_they_arrive() {
        let part = PART_BYTES as u64;
        let arrival = Arc::new(Arrival::new(2 * part + 10));
        let ready = || arrival.state.lock().unwrap().ready;
        assert!(arrival.arrived(1, part), "the second part first");
        assert_eq!(ready(), 0, "nothing before it has arrived");
        arrival.arrived(0, 100);
        assert_eq!(arrival.wait_beyond(0).unwrap(), 100, "the first bytes of the first part");
        arrival.arrived(0, part);
        assert_eq!(arrival.wait_beyond(100).unwrap(), 2 * part, "then both parts");
        arrival.arrived(2, 10);
        assert_eq!(arrival.wait_beyond(0).unwrap(), 2 * part + 10);
        let waiting = std::thread::spawn({
            let arrival = arrival.clone();
            move || arrival.wait_beyond(2 * part + 10)
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiting.is_finished(), "the end is not reported before the download is over");
        arrival.finish(Ok(()));
        assert_eq!(waiting.join().unwrap().unwrap(), 2 * part + 10, "then it is");

        let failing = Arrival::new(10);
        failing.arrived(0, 4);
        failing.finish(Err("the object store failed: connection reset".into()));
        let error = failing.wait_beyond(0).unwrap_err();
        assert!(error.to_string().contains("connection reset"), "a failed download fails its reader: {error}");

        let ended = Arc::new(Arrival::new(10));
        drop(Ending(ended.clone()));
        let error = ended.wait_beyond(0).unwrap_err();
        assert!(error.to_string().contains("stopped before it ended"), "a task gone fails its reader: {error}");

        let spool = tempfile::tempdir().unwrap();
        let arrival = Arc::new(Arrival::new(10));
        drop(Arriving { file: spool_file(spool.path()).unwrap().reopen().unwrap(), at: 0, arrival: arrival.clone() });
        assert!(!arrival.arrived(0, 4), "a download nobody reads stops");
    }

    /// What the store sends of a part is written at the part's place and reported a [`WRITE_BYTES`] at a time (a
    /// large piece as it is, the rest at the end); a piece beyond the part is refused.
    #[test]
    fn parts_are_written_in_place_a_few_hundred_kilobytes_at_a_time() {
        let spool = tempfile::tempdir().unwrap();
        let file = spool_file(spool.path()).unwrap();
        let (part, write) = (PART_BYTES as u64, WRITE_BYTES as u64);
        let arrival = Arrival::new(part + 3 * write + 10);
        let reported = || arrival.state.lock().unwrap().parts[1];
        let range = part..part + 3 * write + 10;
        let mut second =
            ArrivingPart { file: file.as_file(), arrival: &arrival, index: 1, range, written: 0, pending: Vec::new() };
        for _ in 0..WRITE_BYTES / 4096 - 1 {
            assert!(second.take(&[7; 4096]).unwrap());
        }
        assert_eq!(reported(), 0, "nothing is written before a write's worth has come");
        assert!(second.take(&[7; 4096]).unwrap());
        assert_eq!(reported(), write);
        assert!(second.take(&vec![8; 2 * WRITE_BYTES]).unwrap());
        assert_eq!(reported(), 3 * write, "a large piece is written as it comes");
        assert!(second.take(&[9; 10]).unwrap());
        assert!(!second.take(&[9]).unwrap(), "a byte beyond the part is refused");
        second.write_pending().unwrap();
        assert_eq!(reported(), 3 * write + 10, "the rest at the end");

        let mut written = vec![0; 3 * WRITE_BYTES + 10];
        std::os::unix::fs::FileExt::read_exact_at(file.as_file(), &mut written, part).unwrap();
        assert!(written[..WRITE_BYTES].iter().all(|&b| b == 7), "the pieces in order, at the part's offset");
        assert!(written[WRITE_BYTES..3 * WRITE_BYTES].iter().all(|&b| b == 8));
        assert!(written[3 * WRITE_BYTES..].iter().all(|&b| b == 9));
    }

    fn read_download(blobs: &S3Blobs, id: &str, meta: ObjectMeta) -> io::Result<Vec<u8>> {
        let mut read = Vec::new();
        blobs.download(id, meta).unwrap().read_to_end(&mut read)?;
        Ok(read)
    }

    /// Local copies give way to a disk running short: below the free space they must leave, every copy goes and
    /// none is kept.
    #[test]
    fn local_copies_are_dropped_when_the_disk_runs_short() {
        let spool = tempfile::tempdir().unwrap();
        let copies = |min_free_bytes| LocalCopies {
            max_bytes: 1 << 20,
            min_free_bytes,
            spool: spool.path().to_path_buf(),
            copies: Mutex::default(),
        };
        let keep = |copies: &LocalCopies, id: &str| {
            let mut file = spool_file(spool.path()).unwrap();
            file.write_all(b"content").unwrap();
            copies.keep(id, Some(format!("etag-{id}")), 7, file);
        };
        let roomy = copies(0);
        keep(&roomy, "a");
        keep(&roomy, "replaced");
        assert!(roomy.open("a", Some("etag-a")).is_some(), "kept while the disk has room");
        assert!(roomy.open("replaced", Some("another version")).is_none(), "never served for another version");

        let short = copies(u64::MAX);
        *short.copies.lock().unwrap() = std::mem::take(&mut *roomy.copies.lock().unwrap());
        assert_eq!(short.copies.lock().unwrap().len(), 1, "the copy of a");
        keep(&short, "b");
        assert!(short.copies.lock().unwrap().is_empty(), "a disk short of space keeps no copy");
        assert_eq!(std::fs::read_dir(spool.path()).unwrap().count(), 0, "and their files are gone");
    }

    #[test]
    fn locations_are_read_from_the_url() {
        let location = S3Location::parse("s3://bucket/a/b/?endpoint=http://127.0.0.1:8014/&region=eu-west-3").unwrap();
        assert_eq!(
            location,
            S3Location {
                bucket: "bucket".into(),
                prefix: "a/b".into(),
                endpoint: Some("http://127.0.0.1:8014".into()),
                region: "eu-west-3".into(),
                virtual_hosted: false,
                presigned_uploads: false,
                credentials: None,
            }
        );
        assert_eq!(location.object("containers/x").as_ref(), "a/b/containers/x");
        let with_secret = S3Location { credentials: Some(("AK".into(), "s3cret".into())), ..location };
        assert!(!format!("{with_secret:?}").contains("s3cret"), "a secret never reaches a log");
        assert!(S3Location::parse("s3://bucket?presigned=true").unwrap().presigned_uploads);
        let bare = S3Location::parse("s3://bucket").unwrap();
        assert_eq!((bare.prefix.as_str(), bare.region.as_str(), &bare.endpoint), ("", "us-east-1", &None));
        assert_eq!(bare.object("containers/x").as_ref(), "containers/x");
        for (url, why) in [
            ("http://bucket", "must start with s3://"),
            ("s3:///prefix", "names no bucket"),
            ("s3://b?secret=1", "unknown parameter 'secret'"),
        ] {
            let error = S3Location::parse(url).unwrap_err().to_string();
            assert!(error.contains(why), "{url}: {error}");
        }
    }
}
