//! The versioned schema of the PostgreSQL database, as the SQLite files have theirs: a list of steps applied
//! in order, each in the transaction that records it in `intake_schema`, never edited once released. Nodes
//! starting together take an advisory lock, so one applies the steps and the others find them applied. A
//! database written by a newer release is refused, not guessed at.

use super::Postgres;
use crate::StoreError;

/// The steps, in the order they came in.
const STEPS: &[(&str, &str)] = &[
    ("catalog", CATALOG_V1),
    ("security identities", IDENTITIES_V2),
    ("journal", JOURNAL_V3),
    ("item log", ITEM_LOG_V4),
    ("journal bodies compressed with lz4", JOURNAL_LZ4_V5),
    ("index leases and snapshots", LEASES_V6),
    ("quota counters shared by the nodes", COUNTERS_V7),
    ("large journal records in the blob store", JOURNAL_OBJECTS_V8),
    ("journal bodies compressed by the nodes", JOURNAL_RAW_BYTES_V9),
];

/// Organizations, sources, keys, fields, settings, file containers, limits, usage, fault rules, security
/// providers and streams: what `catalog.sqlite` holds on the embedded backend. Times are epoch milliseconds.
const CATALOG_V1: &str = "
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    paused BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE sources (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    name TEXT NOT NULL,
    source_type TEXT NOT NULL,
    visibility TEXT NOT NULL,
    status TEXT,
    status_updated_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (organization_id, name)
);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    display_name TEXT NOT NULL,
    description TEXT NOT NULL,
    value_hash TEXT NOT NULL UNIQUE,
    privileges TEXT NOT NULL,
    allowed_ips TEXT NOT NULL,
    denied_ips TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expiration_ms BIGINT
);
CREATE TABLE fields (
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    name TEXT NOT NULL,
    field_type TEXT NOT NULL,
    description TEXT NOT NULL,
    PRIMARY KEY (organization_id, name)
);
CREATE TABLE file_containers (
    file_id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    size BIGINT,
    pinned BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX file_containers_expiring ON file_containers (expires_at_ms) WHERE NOT pinned;
CREATE TABLE org_limits (
    organization_id TEXT NOT NULL,
    limit_key TEXT NOT NULL,
    value BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (organization_id, limit_key)
);
CREATE TABLE daily_usage (
    organization_id TEXT NOT NULL,
    day BIGINT NOT NULL,
    calls BIGINT NOT NULL,
    documents BIGINT NOT NULL,
    identities BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (organization_id, day)
);
CREATE TABLE fault_rules (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id TEXT NOT NULL,
    spec TEXT NOT NULL,
    remaining BIGINT,
    created_at_ms BIGINT NOT NULL
);
-- Provider ids are matched ignoring case, as Coveo's are: `id_key` is the lower-cased id.
CREATE TABLE security_providers (
    organization_id TEXT NOT NULL,
    id_key TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (organization_id, id_key)
);
CREATE TABLE streams (
    stream_id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    source_id TEXT NOT NULL,
    opened_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    closed_at_ms BIGINT
);
CREATE INDEX streams_by_source ON streams (organization_id, source_id);
CREATE TABLE stream_chunks (
    stream_id TEXT NOT NULL REFERENCES streams(stream_id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    file_id TEXT NOT NULL,
    PRIMARY KEY (stream_id, position)
);
";

/// Security identities, one row each, keyed by (organization, provider, name, type) with the provider and the
/// name compared ignoring case (`*_key` are lower-cased); the identity itself as JSON.
const IDENTITIES_V2: &str = "
CREATE TABLE identities (
    organization_id TEXT NOT NULL,
    provider_key TEXT NOT NULL,
    name_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (organization_id, provider_key, name_key, kind)
);
";

/// The journal: records by sequence number, the last number given out (its row lock orders appends across
/// nodes, so records become visible in sequence order), and each node's applied position (records every
/// node has applied may be deleted).
const JOURNAL_V3: &str = "
CREATE TABLE journal (seq BIGINT PRIMARY KEY, body BYTEA NOT NULL);
CREATE TABLE journal_head (only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row), last_seq BIGINT NOT NULL);
INSERT INTO journal_head (last_seq) VALUES (0);
CREATE TABLE journal_positions (node TEXT PRIMARY KEY, seq BIGINT NOT NULL, updated_at TIMESTAMPTZ NOT NULL);
";

/// The item log: one row per outcome, keyed by (journal seq, index within the operation), with indexes by
/// time and by document (as `logs.sqlite`).
const ITEM_LOG_V4: &str = "
CREATE TABLE item_log (
    row_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id TEXT NOT NULL,
    source_id TEXT NOT NULL,
    document_id TEXT NOT NULL,
    operation TEXT NOT NULL,
    result TEXT NOT NULL,
    task TEXT NOT NULL,
    reason TEXT,
    request_id TEXT NOT NULL,
    ordering_id BIGINT NOT NULL,
    journal_seq BIGINT NOT NULL,
    item_index BIGINT NOT NULL,
    datetime_ms BIGINT NOT NULL,
    UNIQUE (journal_seq, item_index)
);
CREATE INDEX item_log_by_time ON item_log (organization_id, datetime_ms);
CREATE INDEX item_log_by_document ON item_log (organization_id, document_id);
";

/// Journal bodies compressed with lz4 rather than PostgreSQL's default pglz: whole linux-doc pages (42.7 KB) are
/// accepted 2.2 times as fast (bench/RESULTS.md §20), as pglz took most of a core. A server built without lz4 (or
/// older than PostgreSQL 14) keeps pglz.
const JOURNAL_LZ4_V5: &str = "
DO $$ BEGIN
    EXECUTE 'ALTER TABLE journal ALTER COLUMN body SET COMPRESSION lz4';
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'journal bodies keep the default compression: %', SQLERRM;
END $$;
";

/// Brings the database's schema to the last step.
pub(super) async fn migrate(postgres: &Postgres) -> Result<(), StoreError> {
    let mut client = postgres.client().await?;
    let transaction = client.transaction().await?;
    transaction.execute("SELECT pg_advisory_xact_lock(7236961)", &[]).await?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS intake_schema (
                version INTEGER PRIMARY KEY,
                comment TEXT NOT NULL,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )",
        )
        .await?;
    let current: i32 = transaction.query_one("SELECT COALESCE(MAX(version), 0) FROM intake_schema", &[]).await?.get(0);
    let latest = STEPS.len() as i32;
    if current > latest {
        return Err(StoreError::Schema(format!(
            "the PostgreSQL database has schema version {current}, but this build knows versions up to {latest}: it \
             was written by a newer release of Intake. Run that release, or point this one at another database"
        )));
    }
    for (version, (comment, step)) in STEPS.iter().enumerate().skip(current as usize) {
        let version = version as i32 + 1;
        tracing::info!(version, comment, "migrating the PostgreSQL schema");
        transaction.batch_execute(step).await?;
        transaction
            .execute("INSERT INTO intake_schema (version, comment) VALUES ($1, $2)", &[&version, comment])
            .await?;
    }
    transaction.commit().await?;
    Ok(())
}

/// The database's schema version.
pub async fn schema_version(postgres: &Postgres) -> Result<i32, StoreError> {
    let client = postgres.client().await?;
    Ok(client.query_one("SELECT COALESCE(MAX(version), 0) FROM intake_schema", &[]).await?.get(0))
}

/// The nodes of the cluster (seen alive at `seen_at`), and per organization the lease on its index: which node
/// owns it, until when, under which epoch (bumped at each change of owner), and the latest snapshot published.
const LEASES_V6: &str = "
CREATE TABLE cluster_nodes (node TEXT PRIMARY KEY, url TEXT NOT NULL, seen_at TIMESTAMPTZ NOT NULL);
CREATE TABLE index_owners (
    organization_id TEXT PRIMARY KEY,
    node TEXT NOT NULL,
    url TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    snapshot_seq BIGINT NOT NULL DEFAULT 0,
    snapshot TEXT
);
";

/// The counters that make limits exact across nodes: each organization's rate bucket (tokens at `at_ms`), its
/// item account as the index's owner last committed it, and the items reserved against its item limit (by the
/// node that reserved them; `seq` once journaled, until the index commits that record). The day's calls and
/// items are `daily_usage`'s.
const COUNTERS_V7: &str = "
CREATE TABLE rate_buckets (organization_id TEXT PRIMARY KEY, tokens DOUBLE PRECISION NOT NULL, at_ms BIGINT NOT NULL);
CREATE TABLE item_accounts (
    organization_id TEXT PRIMARY KEY,
    indexed BIGINT NOT NULL,
    committed_seq BIGINT NOT NULL,
    indexed_at_ms BIGINT NOT NULL
);
CREATE TABLE item_reservations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id TEXT NOT NULL,
    node TEXT NOT NULL,
    adds BIGINT NOT NULL,
    seq BIGINT,
    made_at_ms BIGINT NOT NULL
);
CREATE INDEX item_reservations_by_organization ON item_reservations (organization_id, seq);
";

/// A journal record too large for a row is an object in the blob store, written first; its row names it and
/// holds an empty body.
const JOURNAL_OBJECTS_V8: &str = "ALTER TABLE journal ADD COLUMN object TEXT;";

/// A journal body the node compressed (LZ4) before sending it holds its size before compression here; `NULL`:
/// the body is the record as it is (PostgreSQL may still compress it, as before).
const JOURNAL_RAW_BYTES_V9: &str = "ALTER TABLE journal ADD COLUMN raw_bytes INTEGER;";
