//! What the applier does besides applying: file containers are deleted once what they held is committed (or
//! once they expire unused, or were left behind by a crash), the item log is kept within its age and size
//! limits, and the applier's threads yield to the request path.

use std::time::{Duration, Instant};

use intake_store::{Seq, StoreError};

use crate::{ApplierConfig, Inputs};

/// How often the item log is pruned by age, and checked against its size limit.
const PRUNE_BY_AGE_INTERVAL: Duration = Duration::from_secs(3600);
const PRUNE_BY_SIZE_INTERVAL: Duration = Duration::from_secs(1);
/// How often expired file containers are looked for.
const CONTAINER_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

pub(crate) struct Housekeeping {
    inputs: Inputs,
    log_retention: Duration,
    log_max_bytes: u64,
    last_prune: Instant,
    last_prune_by_size: Instant,
    last_sweep: Instant,
    /// File containers whose content was applied at a journal position: deleted once it is committed.
    consumed: Vec<Consumed>,
    /// Containers pinned when the applier started; those the replay does not consume are deleted once it ends.
    pinned_at_start: Vec<String>,
    /// Nodes share the journal: a consumed container goes once its organization's index snapshot holds it (the
    /// next owner replays from the snapshot and reads it again), not at the commit.
    after_snapshots: bool,
}

/// A file container whose content was applied by the operation at `seq`.
struct Consumed {
    seq: Seq,
    organization_id: String,
    file_id: String,
}

impl Housekeeping {
    pub fn new(inputs: &Inputs, config: &ApplierConfig) -> Result<Housekeeping, StoreError> {
        // Due at once (an Instant cannot go before the clock's start, which may be the machine's boot).
        let due_since = |interval| Instant::now().checked_sub(interval).unwrap_or_else(Instant::now);
        Ok(Housekeeping {
            pinned_at_start: inputs.catalog.pinned_containers()?,
            inputs: inputs.clone(),
            log_retention: config.log_retention,
            log_max_bytes: config.log_max_bytes,
            last_prune: due_since(PRUNE_BY_AGE_INTERVAL),
            last_prune_by_size: due_since(PRUNE_BY_SIZE_INTERVAL),
            last_sweep: Instant::now(),
            consumed: Vec::new(),
            after_snapshots: inputs.ownership.shared(),
        })
    }

    /// The container's content was applied by the operation at `seq`: it goes once that is committed.
    pub fn consume(&mut self, seq: Seq, organization_id: &str, file_id: String) {
        self.consumed.push(Consumed { seq, organization_id: organization_id.to_string(), file_id });
    }

    /// What was applied after `seq` is dropped, to be applied again: so are the containers it consumed.
    pub fn rewind_to(&mut self, seq: Seq) {
        self.consumed.retain(|consumed| consumed.seq <= seq);
    }

    /// Everything through `seq` is committed: the containers consumed by it are deleted.
    pub fn committed_through(&mut self, seq: Seq) {
        if !self.after_snapshots {
            self.delete_consumed(|consumed| consumed.seq <= seq);
        }
    }

    /// The organization's index snapshot holds everything through `seq`: the containers it consumed by then go.
    pub fn snapshotted(&mut self, organization_id: &str, seq: Seq) {
        self.delete_consumed(|consumed| consumed.organization_id == organization_id && consumed.seq <= seq);
    }

    /// Another node owns the organization's index now: its containers are its new owner's to delete.
    pub fn forget(&mut self, organization_id: &str) {
        self.consumed.retain(|consumed| consumed.organization_id != organization_id);
    }

    fn delete_consumed(&mut self, done: impl Fn(&Consumed) -> bool) {
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.consumed).into_iter().partition(done);
        self.consumed = waiting;
        for consumed in done {
            self.delete_container(Some(&consumed.organization_id), &consumed.file_id);
        }
    }

    /// After the startup replay: a container pinned before the start that the replay did not consume belongs
    /// to an operation committed before a crash could delete it, or to one a crash kept from being journaled.
    ///
    /// Not when nodes share the journal: another node may have pinned a container whose operation this replay
    /// did not reach, or that belongs to an organization owned elsewhere.
    pub fn delete_unclaimed_containers(&mut self) {
        if self.after_snapshots {
            return;
        }
        for file_id in std::mem::take(&mut self.pinned_at_start) {
            let claimed = self.consumed.iter().any(|consumed| consumed.file_id == file_id);
            let still_there = self.inputs.catalog.container(&file_id).ok().flatten().is_some();
            if still_there && !claimed {
                tracing::info!(file_id, "deleting a file container left behind by a crash");
                self.delete_container(None, &file_id);
            }
        }
    }

    /// The periodic work: the item log's limits and expired containers.
    pub fn tick(&mut self) {
        self.prune_logs();
        self.sweep_containers();
    }

    /// Deletes a container whose content is committed (or that expired unused). A container consumed by an
    /// operation is deleted only if it belongs to that operation's organization: an item or batch entry that
    /// names another organization's container fails to read it and must never destroy it.
    fn delete_container(&self, owner: Option<&str>, file_id: &str) {
        let catalog = &self.inputs.catalog;
        if let Some(owner) = owner {
            match catalog.container(file_id) {
                Ok(Some(container)) if container.organization_id == owner => {}
                Ok(_) => return,
                Err(error) => {
                    tracing::warn!(file_id, %error, "a file container could not be looked up; it is kept");
                    return;
                }
            }
        }
        if let Err(error) = self.inputs.blobs.delete(file_id) {
            tracing::warn!(file_id, %error, "a file container could not be deleted");
        }
        if let Err(error) = catalog.forget_container(file_id) {
            tracing::warn!(file_id, %error, "a file container could not be forgotten");
        }
    }

    /// Deletes containers that expired without being handed to a batch or an item, and streams that expired open.
    fn sweep_containers(&mut self) {
        if self.last_sweep.elapsed() < CONTAINER_SWEEP_INTERVAL {
            return;
        }
        self.last_sweep = Instant::now();
        match self.inputs.catalog.expired_containers(self.inputs.clock.now_ms()) {
            Ok(expired) => {
                for file_id in expired {
                    tracing::debug!(file_id, "file container expired");
                    self.delete_container(None, &file_id);
                }
            }
            Err(error) => tracing::warn!(%error, "expired file containers could not be listed"),
        }
        self.sweep_streams();
    }

    /// Forgets the open streams that expired, and deletes their chunks: a full load never closed is dropped.
    fn sweep_streams(&mut self) {
        let expired = match self.inputs.catalog.expired_streams(self.inputs.clock.now_ms()) {
            Ok(expired) => expired,
            Err(error) => {
                tracing::warn!(%error, "expired streams could not be listed");
                return;
            }
        };
        for stream in expired {
            tracing::info!(
                organization = stream.organization_id,
                source = stream.source_id,
                stream_id = stream.stream_id,
                chunks = stream.chunks.len(),
                "an open stream expired: its chunks are deleted and its load is dropped"
            );
            for file_id in &stream.chunks {
                self.delete_container(Some(&stream.organization_id), file_id);
            }
            if let Err(error) = self.inputs.catalog.forget_stream(&stream.stream_id) {
                tracing::warn!(stream_id = stream.stream_id, %error, "an expired stream could not be forgotten");
            }
        }
    }

    /// Keeps the item log within its retention (hourly) and its size limit (every second).
    fn prune_logs(&mut self) {
        let log = &self.inputs.item_log;
        if self.last_prune_by_size.elapsed() >= PRUNE_BY_SIZE_INTERVAL {
            self.last_prune_by_size = Instant::now();
            match log.prune_to_size(self.log_max_bytes) {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(
                    pruned,
                    limit = intake_store::disk::readable(self.log_max_bytes),
                    "pruned the oldest item log entries to keep the log within its size limit"
                ),
                Err(error) => tracing::warn!(%error, "the item log could not be pruned"),
            }
        }
        if self.last_prune.elapsed() < PRUNE_BY_AGE_INTERVAL {
            return;
        }
        self.last_prune = Instant::now();
        let retention = self.log_retention;
        match log.prune_before(self.inputs.clock.now_ms() - retention.as_millis() as i64) {
            Ok(0) => {}
            Ok(pruned) => {
                tracing::info!(pruned, retention_hours = retention.as_secs() / 3600, "pruned old item log entries")
            }
            Err(error) => tracing::warn!(%error, "the item log could not be pruned"),
        }
    }
}

/// Background work yields to the request path: nice 10 on Linux (threads carry their own nice value there).
pub(crate) fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority has no memory effects; on Linux, `who = 0` names the calling thread.
    unsafe {
        if libc::setpriority(libc::PRIO_PROCESS, 0, 10) != 0 {
            tracing::debug!("could not lower the applier's priority");
        }
    }
}
