//! What an earlier run already did, so an unchanged binary is neither read
//! nor compressed again.
//!
//! Two records, kept in a small JSON file inside the output layout (tools
//! that read layouts look only at `oci-layout`, `index.json` and `blobs/`):
//! - binaries: a file's stat key (dev, inode, size, mtime, ctime, as git's
//!   index keeps them) and the facts found when it was read and checked, so an
//!   unchanged file is not read or hashed again;
//! - layers: for a binary sha256, build epoch and compression settings, the
//!   layer blob built from them, reused while the layout still holds it.
//!
//! The file is only a hint: a missing or unreadable one means a full build,
//! and it is written atomically after the layout.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::binary::{BinaryFacts, StatKey};
use openshell_transport::atomic;

/// Name of the cache file inside the layout.
pub const CACHE_FILE: &str = ".build-image-cache.json";

/// Bumped when the meaning of a record changes.
const FORMAT: u32 = 1;

/// Records kept of each kind (several platforms, a few recent binaries).
const KEEP: usize = 16;

/// A binary seen before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinaryRecord {
    /// Absolute path it was read from.
    pub path: PathBuf,
    /// Its stat key then.
    pub stat: StatKey,
    /// What was found.
    pub facts: BinaryFacts,
}

/// What a layer was built from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerKey {
    /// sha256 of the binary.
    pub binary_sha256: String,
    /// SOURCE_DATE_EPOCH used.
    pub epoch: u64,
    /// Everything else that shapes the bytes (`LayerSettings::cache_key`).
    pub settings: String,
}

/// A layer built before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Its inputs.
    pub key: LayerKey,
    /// `sha256:...` of the gzip blob.
    pub digest: String,
    /// Size of the blob.
    pub size: u64,
    /// `sha256:...` of the tar.
    pub diff_id: String,
}

/// The cache file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildCache {
    format: u32,
    binaries: Vec<BinaryRecord>,
    layers: Vec<LayerRecord>,
}

impl BuildCache {
    /// Loads the cache of the layout at `layout`; empty when there is none
    /// or it cannot be used.
    pub fn load(layout: &Path) -> Self {
        std::fs::read(layout.join(CACHE_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Self>(&bytes).ok())
            .filter(|cache| cache.format == FORMAT)
            .unwrap_or_default()
    }

    /// Writes the cache into the layout at `layout`, atomically.
    pub fn save(&self, layout: &Path) -> std::io::Result<()> {
        let mut cache = self.clone();
        cache.format = FORMAT;
        let bytes = serde_json::to_vec_pretty(&cache).map_err(std::io::Error::other)?;
        atomic::write_file(&layout.join(CACHE_FILE), &bytes)
    }

    /// Facts of the binary at `path` when its stat key is unchanged.
    pub fn binary(&self, path: &Path, stat: &StatKey) -> Option<&BinaryFacts> {
        self.binaries
            .iter()
            .find(|record| record.path == path && record.stat == *stat)
            .map(|record| &record.facts)
    }

    /// Remembers a binary (replacing an older record for the same path).
    pub fn remember_binary(&mut self, record: BinaryRecord) {
        self.binaries.retain(|old| old.path != record.path);
        self.binaries.insert(0, record);
        self.binaries.truncate(KEEP);
    }

    /// The layer built from `key`, if recorded.
    pub fn layer(&self, key: &LayerKey) -> Option<&LayerRecord> {
        self.layers.iter().find(|record| record.key == *key)
    }

    /// Remembers a layer.
    pub fn remember_layer(&mut self, record: LayerRecord) {
        self.layers.retain(|old| old.key != record.key);
        self.layers.insert(0, record);
        self.layers.truncate(KEEP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_ignores_garbage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(BuildCache::load(dir.path()), BuildCache::default());
        let mut cache = BuildCache::default();
        let key = LayerKey {
            binary_sha256: "ab".into(),
            epoch: 7,
            settings: "s".into(),
        };
        cache.remember_layer(LayerRecord {
            key: key.clone(),
            digest: "sha256:00".into(),
            size: 3,
            diff_id: "sha256:11".into(),
        });
        cache.save(dir.path()).unwrap();
        let loaded = BuildCache::load(dir.path());
        assert_eq!(loaded.layer(&key).map(|record| record.size), Some(3));
        std::fs::write(dir.path().join(CACHE_FILE), "not json").unwrap();
        assert!(BuildCache::load(dir.path()).layer(&key).is_none());
    }
}
