//! First start: an organization `default` with one Push source and a master key, written to
//! `<data-dir>/bootstrap.json` (mode 0600) so `intake search`, `intake push` and the docs' commands find them.

use std::io::Write;
use std::path::{Path, PathBuf};

use intake_store::catalog::random_id;
use intake_store::{Catalog, StoreError};
use serde::{Deserialize, Serialize};

use crate::auth::secret_hash;

pub const DEFAULT_ORGANIZATION: &str = "default";
const DEFAULT_SOURCE_NAME: &str = "default";
const MASTER_KEY_HASH: &str = "master_key_sha256";
const DEFAULT_SOURCE_ID: &str = "default_source_id";

/// What a client needs to reach this server; the contents of `bootstrap.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bootstrap {
    pub base_url: String,
    pub organization_id: String,
    pub source_id: String,
    /// The master key, when this start knows it (it is stored hashed; see [`prepare`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

/// The outcome of [`prepare`].
pub struct Prepared {
    pub bootstrap: Bootstrap,
    pub master_key_hash: String,
    /// A key was generated now: print it once.
    pub new_key: Option<String>,
}

pub fn bootstrap_path(data_dir: &Path) -> PathBuf {
    data_dir.join("bootstrap.json")
}

/// Creates the default organization, source and master key on first start, and works out the master key
/// of this start: the one given, else the one generated before (found in `bootstrap.json`).
pub fn prepare(
    catalog: &dyn Catalog,
    data_dir: &Path,
    given_key: Option<&str>,
    now_ms: i64,
) -> anyhow::Result<Prepared> {
    let mut made_elsewhere = false;
    if catalog.organizations().is_empty() {
        match catalog.create_organization(DEFAULT_ORGANIZATION, "Default organization", now_ms) {
            Ok(_) => {
                let source =
                    catalog.create_source(DEFAULT_ORGANIZATION, DEFAULT_SOURCE_NAME, "PUSH", "SHARED", now_ms)?;
                catalog.set_setting(DEFAULT_SOURCE_ID, &source.id)?;
            }
            // Another node of the cluster, starting at the same time, made it.
            Err(StoreError::Conflict(_)) => made_elsewhere = true,
            Err(error) => return Err(error.into()),
        }
    }
    let source_id = default_source_id(catalog, made_elsewhere)?;
    let previous = read_bootstrap(data_dir);
    let stored_hash = catalog.setting(MASTER_KEY_HASH)?;
    let (key, new_key) = match (given_key, &stored_hash) {
        (Some(given), _) => (Some(given.to_string()), None),
        (None, Some(hash)) => (previous.and_then(|b| b.api_key).filter(|k| &secret_hash(k) == hash), None),
        (None, None) => {
            let generated = format!("intake_{}", random_id(40));
            (Some(generated.clone()), Some(generated))
        }
    };
    let master_key_hash = match &key {
        Some(key) => secret_hash(key),
        None => stored_hash.clone().expect("a stored hash when no key is known"),
    };
    if stored_hash.as_deref() != Some(master_key_hash.as_str()) {
        catalog.set_setting(MASTER_KEY_HASH, &master_key_hash)?;
    }
    let bootstrap = Bootstrap {
        base_url: String::new(),
        organization_id: DEFAULT_ORGANIZATION.to_string(),
        source_id,
        api_key: key,
    };
    Ok(Prepared { bootstrap, master_key_hash, new_key })
}

/// The default source's id; made by another node starting at the same time (`made_elsewhere`), it may take a
/// moment to appear.
fn default_source_id(catalog: &dyn Catalog, made_elsewhere: bool) -> anyhow::Result<String> {
    let attempts = if made_elsewhere { 100 } else { 1 };
    for attempt in 1..=attempts {
        if let Some(id) = catalog.setting(DEFAULT_SOURCE_ID)? {
            return Ok(id);
        }
        if attempt < attempts {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    Ok(String::new())
}

/// The secret that signs access tokens: made on first start, kept in the catalog.
pub fn token_secret(catalog: &dyn Catalog) -> anyhow::Result<Vec<u8>> {
    const TOKEN_SECRET: &str = "token_secret";
    if let Some(stored) = catalog.setting(TOKEN_SECRET)? {
        return hex::decode(stored.trim()).map_err(|e| anyhow::anyhow!("the stored token secret is not hex: {e}"));
    }
    let secret: [u8; 32] = rand::random();
    catalog.set_setting(TOKEN_SECRET, &hex::encode(secret))?;
    Ok(secret.to_vec())
}

pub fn read_bootstrap(data_dir: &Path) -> Option<Bootstrap> {
    let text = std::fs::read_to_string(bootstrap_path(data_dir)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes `bootstrap.json` atomically, readable by the owner only.
pub fn write_bootstrap(data_dir: &Path, bootstrap: &Bootstrap) -> std::io::Result<()> {
    let path = bootstrap_path(data_dir);
    let temporary = data_dir.join("bootstrap.json.tmp");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary)?;
        file.write_all(serde_json::to_string_pretty(bootstrap).expect("bootstrap serializes").as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, &path)
}
