//! When nodes share the journal: following which indexes this node owns. A lease gained is taken over (the local
//! copy if this node held it last under the same epoch, else the latest snapshot, else an empty index) and the
//! journal is read again from its position; a lease lost closes the index here. Owned indexes are snapshotted
//! after commits.

use std::time::{Duration, Instant};

use intake_index::security::IdentityGraph;
use intake_store::Seq;

use super::Applier;
use crate::snapshot::sibling;

/// How often a node checks whether it holds more leases than its fair share.
const SURPLUS_CHECK: Duration = Duration::from_secs(1);

impl Applier {
    pub(super) fn shared(&self) -> bool {
        self.inputs.ownership.shared()
    }

    /// Whether the leases changed since last followed (followed between operations, never inside a batch).
    pub(super) fn ownership_changed(&self) -> bool {
        self.shared() && self.applying_batch.is_none() && self.inputs.ownership.generation() != self.ownership_seen
    }

    /// Closes the indexes whose lease went elsewhere and takes over those gained. Returns a reader positioned
    /// at the lowest committed position when that is behind what was applied (a gained index replays from its
    /// snapshot); every other index skips what it already committed.
    pub(super) fn follow_ownership(&mut self) -> Option<Box<dyn intake_store::JournalReader>> {
        // Everything applied is committed first, so reading again re-applies nothing.
        self.commit_touching(true);
        if self.rewinding() {
            return None;
        }
        let generation = self.inputs.ownership.generation();
        let owned = self.inputs.ownership.owned();
        let lost: Vec<String> = self.owned.keys().filter(|org| !owned.contains_key(*org)).cloned().collect();
        for organization_id in lost {
            self.close_index(&organization_id);
        }
        let mut gained = Vec::new();
        for (organization_id, epoch) in &owned {
            if self.owned.get(organization_id) == Some(epoch) {
                continue;
            }
            gained.push(organization_id.clone());
            if let Err(error) = self.take_over(organization_id, *epoch) {
                tracing::warn!(organization = organization_id, %error, "an index could not be taken over yet; retrying");
                // None of this round's indexes may apply anything before the journal is read again from their
                // positions (a later record applied first would make the replay skip the earlier ones).
                for organization_id in gained {
                    self.close_index(&organization_id);
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
                return None;
            }
            self.owned.insert(organization_id.clone(), *epoch);
        }
        self.ownership_seen = generation;
        let from = self.resume_seq();
        if from >= self.applied_seq {
            // Every index holds what was applied: those taken over have caught up that far.
            self.inputs.registry.caught_up_through(self.applied_seq);
            return None;
        }
        match self.inputs.journal.reader(from) {
            Ok(reader) => {
                tracing::info!(
                    from,
                    applied = self.applied_seq,
                    "reading the journal again for the indexes taken over"
                );
                // Nothing uncommitted is dropped (all was committed above): the containers waiting for a snapshot
                // stay listed, and those the replay consumes again are listed twice, deleted once.
                self.applied_seq = from;
                self.logged = (0, 0);
                Some(reader)
            }
            Err(error) => {
                self.fail(format!("the journal cannot be read again for the indexes taken over: {error}"));
                None
            }
        }
    }

    /// Opens the organization's index under the lease of `epoch`: the local folder when this node committed to it
    /// under that epoch, else the latest snapshot, else a new index (nobody published one yet: the journal still
    /// holds every record of the organization). Its identity graph is read again from the identity store.
    pub(super) fn take_over(&mut self, organization_id: &str, epoch: u64) -> anyhow::Result<()> {
        drop(self.indexes.remove(organization_id));
        let dir = self.config.index_dir.join(organization_id);
        let epoch_file = sibling(&dir, "epoch");
        let local_epoch = std::fs::read_to_string(&epoch_file).ok().and_then(|text| text.trim().parse::<u64>().ok());
        if local_epoch != Some(epoch) || !dir.exists() {
            // Another node owned it since: restored, it holds less than that node committed, and answers searches
            // only once it holds what the cluster acknowledged (a new organization's empty index holds all of it).
            let acknowledged = *self.inputs.journal.durable().borrow();
            self.inputs.registry.catch_up(organization_id, acknowledged);
            std::fs::create_dir_all(&self.config.index_dir)?;
            let _ = std::fs::remove_file(&epoch_file);
            let mut empty_through = None;
            match self.inputs.ownership.snapshot(organization_id)? {
                Some(snapshot) if snapshot.manifest.is_empty() => {
                    // A new organization's: an empty index that no earlier record concerns.
                    remove_dir(&dir)?;
                    empty_through = Some(snapshot.seq);
                    self.inputs.registry.caught_up(organization_id);
                }
                Some(snapshot) => {
                    self.snapshots.restore(self.inputs.snapshots.as_ref(), organization_id, &snapshot, &dir)?;
                    tracing::info!(
                        organization = organization_id,
                        epoch,
                        seq = snapshot.seq,
                        "index restored from its snapshot"
                    );
                }
                None => {
                    remove_dir(&dir)?;
                    tracing::info!(organization = organization_id, epoch, "index taken over with no snapshot yet");
                }
            }
            if let Some(seq) = empty_through {
                let mut index = intake_index::OrgIndex::open(&dir, 1, self.config.memory_bytes)?;
                index.advance_to(seq);
                index.commit()?;
            }
            std::fs::write(&epoch_file, format!("{epoch}\n"))?;
        }
        self.open_index(organization_id)?;
        let identities = self.inputs.identity_store.load(organization_id)?;
        self.inputs.identities.install(IdentityGraph::load(organization_id, identities), organization_id);
        Ok(())
    }

    /// Another node owns the organization's index now: it is closed here (its folder stays, for a lease that comes
    /// back under the same epoch).
    fn close_index(&mut self, organization_id: &str) {
        drop(self.indexes.remove(organization_id));
        self.owned.remove(organization_id);
        self.inputs.registry.forget(organization_id);
        self.inputs.commit_marks.remove(organization_id);
        self.inputs.identities.remove(organization_id);
        self.snapshots.forget(organization_id);
        self.housekeeping.forget(organization_id);
        tracing::info!(organization = organization_id, "index lease lost; another node applies its operations");
    }

    /// Gives up the leases this node holds beyond its fair share (a node joined the cluster), at most every
    /// [`SURPLUS_CHECK`], between operations: each index committed and snapshotted first, so the node that takes
    /// it over replays little, then closed here.
    pub(super) fn hand_over_surplus(&mut self) {
        if !self.shared() || self.applying_batch.is_some() || self.surplus_checked.elapsed() < SURPLUS_CHECK {
            return;
        }
        self.surplus_checked = Instant::now();
        let surplus = self.inputs.ownership.surplus();
        if surplus == 0 {
            return;
        }
        self.commit_touching(true);
        if self.rewinding() {
            return;
        }
        let leaving: Vec<(String, u64)> =
            self.owned.iter().rev().take(surplus).map(|(org, epoch)| (org.clone(), *epoch)).collect();
        for (organization_id, epoch) in leaving {
            self.publish_snapshot(&organization_id, epoch, true);
            self.close_index(&organization_id);
            if let Err(error) = self.inputs.ownership.release(&organization_id, epoch) {
                tracing::warn!(organization = organization_id, %error, "an index lease could not be given up; it lapses");
            }
        }
    }

    /// Publishes a snapshot of each owned index that committed past its last one, at most every snapshot interval
    /// (`all`: whatever the interval, as a node stops). A failure is retried after the next commit.
    pub(super) fn publish_snapshots(&mut self, all: bool) {
        if !self.shared() {
            return;
        }
        let owned: Vec<(String, u64)> = self.owned.iter().map(|(org, epoch)| (org.clone(), *epoch)).collect();
        for (organization_id, epoch) in owned {
            self.publish_snapshot(&organization_id, epoch, all);
        }
    }

    /// Publishes a snapshot of the organization's index if it committed past its last one and the snapshot
    /// interval has passed (`now`: whatever the interval).
    fn publish_snapshot(&mut self, organization_id: &str, epoch: u64, now: bool) {
        let Some(index) = self.indexes.get(organization_id) else { return };
        let seq: Seq = index.committed_seq();
        let (last_seq, last_at) = self.snapshots.last(organization_id).unzip();
        let waited = now || last_at.is_none_or(|at| at.elapsed() >= self.config.snapshot_interval);
        if seq <= last_seq.unwrap_or(0) || !waited {
            return;
        }
        let dir = self.config.index_dir.join(organization_id);
        let inputs = &self.inputs;
        let snapshots = inputs.snapshots.as_ref();
        match self.snapshots.publish(snapshots, inputs.ownership.as_ref(), organization_id, epoch, index, &dir) {
            Ok(true) => {
                tracing::debug!(organization = organization_id, seq, "index snapshot published");
                self.housekeeping.snapshotted(organization_id, seq);
            }
            Ok(false) => {
                tracing::warn!(organization = organization_id, "index snapshot not recorded: the lease was lost")
            }
            Err(error) => {
                tracing::warn!(organization = organization_id, %error, "index snapshot failed; retrying after the next commit")
            }
        }
    }
}

fn remove_dir(dir: &std::path::Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}
