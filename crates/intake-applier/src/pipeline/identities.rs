//! Security identity operations: applied to the organization's identity graph at once (searches resolve users
//! in it), and written to the identity store at the next commit, before the index commit that records the
//! journal position past them. Applying one again after a crash gives the same identities (the highest
//! `orderingId` wins, an equal one applies again), so each is applied exactly once in effect.

use intake_index::prepare::{ContainerError, ContainerReader};
use intake_index::security::Applied;
use intake_index::{OpInfo, Outcome};
use intake_model::batch::{BatchReader, IDENTITY_BATCH, WINDOW_BYTES, WINDOW_ENTRIES};
use intake_model::identity::IdentityChange;
use intake_model::logs::{LogOperation, LogResult};
use intake_store::SecurityProvider;

use super::{Applier, failed};

impl Applier {
    /// Applies one identity operation of `info.source_id` (the provider).
    pub(super) fn apply_identity(
        &mut self,
        organization_id: &str,
        change: &IdentityChange,
        info: &OpInfo,
    ) -> Vec<Outcome> {
        let Some(provider) = self.provider(organization_id, info) else {
            return vec![self.missing_provider(info, &change.identity().name)];
        };
        vec![self.apply_change(organization_id, &provider, change, info)]
    }

    /// Applies an identity batch file whole (it was validated when accepted). Should it be gone now (its
    /// container vanished), the failure is logged against the file and what was read stays applied; one that
    /// cannot be read now stops applying, to apply it again later.
    pub(super) fn apply_identity_batch(&mut self, organization_id: &str, file_id: &str, info: &OpInfo) -> Vec<Outcome> {
        let Some(provider) = self.provider(organization_id, info) else {
            return vec![self.missing_provider(info, file_id)];
        };
        let reader = match self.inputs.open(organization_id, file_id) {
            Ok(reader) => reader,
            Err(ContainerError::Missing(reason)) => {
                return vec![failed(info, file_id, LogOperation::BatchFile, reason)];
            }
            Err(ContainerError::Unavailable(reason)) => {
                self.fail(reason); // the caller sees the rewind: the batch is applied again later
                return Vec::new();
            }
        };
        let mut entries = BatchReader::with_layout(reader, IDENTITY_BATCH);
        let mut outcomes = Vec::new();
        loop {
            let window = match entries.next_window(WINDOW_ENTRIES, WINDOW_BYTES) {
                Ok(window) if window.is_empty() => break,
                Ok(window) => window,
                Err(error) if error.unreadable => {
                    self.fail(format!("the identity batch file '{file_id}' cannot be read now: {error}"));
                    return Vec::new();
                }
                Err(error) => {
                    outcomes.push(failed(info, file_id, LogOperation::BatchFile, error.to_string()));
                    break;
                }
            };
            for entry in window {
                match entry.parse_identity() {
                    Ok(change) => outcomes.push(self.apply_change(organization_id, &provider, &change, info)),
                    Err(error) => outcomes.push(failed(info, file_id, LogOperation::BatchFile, error.to_string())),
                }
            }
        }
        outcomes
    }

    /// Disables the provider's identities older than a disable-older-than whose delay has passed.
    pub(super) fn disable_old_identities(&mut self, organization_id: &str, info: &OpInfo) -> Vec<Outcome> {
        let now_ms = self.inputs.clock.now_ms();
        let graph = self.inputs.identities.of(organization_id);
        let disabled =
            graph.write().expect("identity graph lock").disable_older_than(&info.source_id, info.ordering_id, now_ms);
        let outcomes = disabled
            .iter()
            .map(|identity| {
                identity_outcome(info, &identity.name, LogOperation::DeleteOlderThan, LogResult::Completed, None)
            })
            .collect();
        self.identity_writes.extend(disabled);
        outcomes
    }

    fn apply_change(
        &mut self,
        organization_id: &str,
        provider: &SecurityProvider,
        change: &IdentityChange,
        info: &OpInfo,
    ) -> Outcome {
        let now_ms = self.inputs.clock.now_ms();
        let identity = change.identity();
        let graph = self.inputs.identities.of(organization_id);
        let mut graph = graph.write().expect("identity graph lock");
        let existed = graph.get(&provider.id, &identity.name, identity.kind).is_some();
        let operation = match change {
            IdentityChange::Disable { .. } => LogOperation::Delete,
            _ if existed => LogOperation::Update,
            _ => LogOperation::Add,
        };
        match graph.apply(provider, change, info.ordering_id, now_ms) {
            Ok(Applied::Changed(identities)) => {
                self.identity_writes.extend(identities);
                identity_outcome(info, &identity.name, operation, LogResult::Completed, None)
            }
            Ok(Applied::Skipped(reason)) => {
                identity_outcome(info, &identity.name, operation, LogResult::Skipped, Some(reason))
            }
            Err(reason) => identity_outcome(info, &identity.name, operation, LogResult::Rejected, Some(reason)),
        }
    }

    fn provider(&self, organization_id: &str, info: &OpInfo) -> Option<SecurityProvider> {
        self.inputs.catalog.provider(organization_id, &info.source_id).ok().flatten()
    }

    fn missing_provider(&self, info: &OpInfo, name: &str) -> Outcome {
        let reason = format!(
            "security provider '{}' was deleted after the operation was accepted; create it again and push again",
            info.source_id
        );
        identity_outcome(info, name, LogOperation::Update, LogResult::Error, Some(reason))
    }
}

/// An identity's outcome: logged under its provider (as an item's is under its source), named by the identity.
fn identity_outcome(
    info: &OpInfo,
    name: &str,
    operation: LogOperation,
    result: LogResult,
    reason: Option<String>,
) -> Outcome {
    Outcome {
        source_id: info.source_id.clone(),
        document_id: name.to_string(),
        operation,
        result,
        reason,
        ordering_id: info.ordering_id,
        request_id: info.request_id.clone(),
        journal_seq: info.journal_seq,
        task: None,
    }
}
