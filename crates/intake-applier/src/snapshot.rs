//! Snapshots of organization indexes in the blob store, so that another node can take an index over.
//!
//! A snapshot is the files of one commit's segments, each a blob `index-<org>-<file>` uploaded once (segment
//! files never change; a merge makes new ones), and a manifest blob `index-<org>-snapshot-<seq>.json` holding the
//! commit's `meta.json` and the file list. The owner publishes a snapshot after a commit, at most every
//! `snapshot_interval`, records it in the ownership store under its lease's epoch (a node whose lease was taken
//! over records nothing), and only then deletes the blobs the previous snapshot alone used. The next owner
//! downloads the latest manifest's files and replays the journal after its position.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use intake_index::OrgIndex;
use intake_store::{BlobStore, Ownership, Seq, Snapshot};
use serde::{Deserialize, Serialize};

/// What a manifest blob holds.
#[derive(Serialize, Deserialize)]
struct Manifest {
    seq: Seq,
    /// tantivy's `meta.json` of the commit, as it wrote it.
    meta: serde_json::Value,
    files: BTreeSet<String>,
}

/// What this node last published of each organization it owns.
#[derive(Default)]
pub(crate) struct Snapshots {
    published: HashMap<String, Published>,
}

struct Published {
    seq: Seq,
    at: Instant,
    manifest: String,
    files: BTreeSet<String>,
}

impl Snapshots {
    /// The position and time of the organization's last snapshot known here.
    pub fn last(&self, organization_id: &str) -> Option<(Seq, Instant)> {
        self.published.get(organization_id).map(|published| (published.seq, published.at))
    }

    /// Forgets what was published of an organization whose lease went elsewhere.
    pub fn forget(&mut self, organization_id: &str) {
        self.published.remove(organization_id);
    }

    /// Uploads the files of the index's last commit that are not in the blob store yet, and its manifest, then
    /// records the snapshot under `epoch`; whether it was recorded (not when the lease was lost meanwhile).
    pub fn publish(
        &mut self,
        blobs: &dyn BlobStore,
        ownership: &dyn Ownership,
        organization_id: &str,
        epoch: u64,
        index: &OrgIndex,
        dir: &Path,
    ) -> anyhow::Result<bool> {
        // Holding the commit's metas keeps its files from tantivy's garbage collection while they upload.
        let metas = index.index().load_metas()?;
        let files: BTreeSet<String> = metas
            .segments
            .iter()
            .flat_map(|segment| segment.list_files())
            .map(|path| path.to_string_lossy().into_owned())
            // tantivy lists every component a segment may have (a delete file, a temporary store) for its garbage
            // collection: only those written are part of the commit.
            .filter(|file| dir.join(file).exists())
            .collect();
        let seq = index.committed_seq();
        let previous = self.published.remove(organization_id);
        let known = previous.as_ref().map(|p| &p.files);
        for file in files.iter().filter(|file| known.is_none_or(|known| !known.contains(*file))) {
            upload(blobs, &file_blob(organization_id, file), &dir.join(file))?;
        }
        let manifest = format!("index-{organization_id}-snapshot-{seq}.json");
        let body = serde_json::to_vec(&Manifest { seq, meta: serde_json::to_value(&metas)?, files: files.clone() })?;
        let mut writer = blobs.create(&manifest)?;
        writer.write_all(&body)?;
        writer.finish()?;
        if !ownership.publish(organization_id, epoch, &Snapshot { seq, manifest: manifest.clone() })? {
            return Ok(false);
        }
        if let Some(previous) = previous {
            for file in previous.files.difference(&files) {
                delete(blobs, &file_blob(organization_id, file));
            }
            if previous.manifest != manifest {
                delete(blobs, &previous.manifest);
            }
        }
        self.published.insert(organization_id.to_string(), Published { seq, at: Instant::now(), manifest, files });
        Ok(true)
    }

    /// Replaces `dir` with the snapshot's index: every file downloaded into a folder beside it, then renamed.
    pub fn restore(
        &mut self,
        blobs: &dyn BlobStore,
        organization_id: &str,
        snapshot: &Snapshot,
        dir: &Path,
    ) -> anyhow::Result<()> {
        let manifest: Manifest = serde_json::from_reader(blobs.open(&snapshot.manifest)?)
            .with_context(|| format!("the snapshot manifest {} does not read", snapshot.manifest))?;
        let staging = sibling(dir, "restoring");
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging)?;
        for file in &manifest.files {
            let mut source = blobs.open(&file_blob(organization_id, file))?;
            let mut target = std::fs::File::create(staging.join(file))?;
            std::io::copy(&mut source, &mut target)?;
            target.sync_all()?;
        }
        std::fs::write(staging.join("meta.json"), serde_json::to_vec_pretty(&manifest.meta)?)?;
        // tantivy deletes only the files it manages: these, once a merge or a new commit leaves them unused.
        let managed: Vec<&str> = manifest.files.iter().map(String::as_str).chain(["meta.json"]).collect();
        std::fs::write(staging.join(".managed.json"), serde_json::to_vec(&managed)?)?;
        let _ = std::fs::remove_dir_all(dir);
        std::fs::rename(&staging, dir)?;
        self.published.insert(
            organization_id.to_string(),
            Published {
                seq: manifest.seq,
                at: Instant::now(),
                manifest: snapshot.manifest.clone(),
                files: manifest.files,
            },
        );
        Ok(())
    }
}

fn file_blob(organization_id: &str, file: &str) -> String {
    format!("index-{organization_id}-{file}")
}

fn upload(blobs: &dyn BlobStore, id: &str, path: &Path) -> anyhow::Result<()> {
    let mut writer = blobs.create(id)?;
    std::io::copy(&mut std::fs::File::open(path)?, &mut writer)?;
    writer.finish()?;
    Ok(())
}

fn delete(blobs: &dyn BlobStore, id: &str) {
    if let Err(error) = blobs.delete(id) {
        tracing::warn!(blob = id, %error, "a blob of an older index snapshot could not be deleted");
    }
}

/// `<dir>.<suffix>`, beside `dir`.
pub(crate) fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    dir.with_file_name(name)
}
