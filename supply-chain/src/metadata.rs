//! What the image says about its own making: version, source, revision,
//! build time, the `Cargo.lock` it was resolved from, and the rustc of each
//! binary, as the annotations and labels of its manifests, index and
//! configs carry them.

use std::collections::{BTreeMap, HashMap};

use openshell_contract::BINARY_NAME;
use openshell_contract::annotations::{self, oci};

use crate::epoch::Epoch;

/// Who and what the image says it is, besides the binary.
#[derive(Debug, Clone)]
pub struct ImageMetadata {
    /// Build time.
    pub epoch: Epoch,
    /// `org.opencontainers.image.version`.
    pub version: String,
    /// `org.opencontainers.image.revision`, when known.
    pub revision: Option<String>,
    /// `org.opencontainers.image.source`.
    pub source: String,
    /// `org.opencontainers.image.title`.
    pub title: String,
    /// sha256 (hex) of the workspace's `Cargo.lock`, when the build knows
    /// the workspace ([`annotations::CARGO_LOCK_SHA256`]).
    pub cargo_lock_sha256: Option<String>,
    /// `--annotation KEY=VALUE`: on every manifest and the index; a key
    /// build-image also sets (source, version...) takes this value, in the
    /// config labels too.
    pub annotations: BTreeMap<String, String>,
    /// `--label KEY=VALUE`: in every config's labels only.
    pub labels: BTreeMap<String, String>,
}

/// What one platform's binary says about its own build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformProvenance {
    /// The rustc that compiled it, from its `.comment` section
    /// ([`annotations::RUSTC_VERSION`]).
    pub rustc_version: Option<String>,
}

impl ImageMetadata {
    /// Metadata for this workspace's supervisor at `epoch`.
    pub fn new(epoch: Epoch) -> Self {
        Self {
            epoch,
            version: env!("CARGO_PKG_VERSION").to_string(),
            revision: None,
            source: env!("CARGO_PKG_REPOSITORY").to_string(),
            title: BINARY_NAME.to_string(),
            cargo_lock_sha256: None,
            annotations: BTreeMap::new(),
            labels: BTreeMap::new(),
        }
    }

    /// The provenance every manifest, the index and every config carry:
    /// version, source, title, created, revision and the Cargo.lock
    /// digest, with `--annotation` values for those keys winning.
    fn provenance(&self) -> HashMap<String, String> {
        let mut map = HashMap::from([
            (oci::VERSION.to_string(), self.version.clone()),
            (oci::SOURCE.to_string(), self.source.clone()),
            (oci::TITLE.to_string(), self.title.clone()),
            (oci::CREATED.to_string(), self.epoch.rfc3339()),
        ]);
        if let Some(revision) = &self.revision {
            map.insert(oci::REVISION.to_string(), revision.clone());
        }
        if let Some(lock) = &self.cargo_lock_sha256 {
            map.insert(annotations::CARGO_LOCK_SHA256.to_string(), lock.clone());
        }
        for (key, value) in &self.annotations {
            if let Some(slot) = map.get_mut(key) {
                slot.clone_from(value);
            }
        }
        map
    }

    /// The annotations of a manifest (and labels of a config) for a binary,
    /// before `--annotation` and `--label` are added.
    pub fn annotations(&self, binary_sha256: &str) -> HashMap<String, String> {
        let mut map = self.provenance();
        map.insert(
            annotations::BINARY_SHA256.to_string(),
            binary_sha256.to_string(),
        );
        map
    }

    /// The annotations of one platform's manifest: provenance, the binary's
    /// digest and rustc, and every `--annotation`.
    pub fn manifest_annotations(
        &self,
        binary_sha256: &str,
        provenance: &PlatformProvenance,
    ) -> HashMap<String, String> {
        self.platform_map(binary_sha256, provenance, &self.annotations)
    }

    /// The labels of one platform's config: provenance, the binary's digest
    /// and rustc, and every `--label`.
    pub fn config_labels(
        &self,
        binary_sha256: &str,
        provenance: &PlatformProvenance,
    ) -> HashMap<String, String> {
        self.platform_map(binary_sha256, provenance, &self.labels)
    }

    /// Provenance, the binary's digest and rustc, then `given` (which wins).
    fn platform_map(
        &self,
        binary_sha256: &str,
        provenance: &PlatformProvenance,
        given: &BTreeMap<String, String>,
    ) -> HashMap<String, String> {
        let mut map = self.annotations(binary_sha256);
        if let Some(rustc) = &provenance.rustc_version {
            map.insert(annotations::RUSTC_VERSION.to_string(), rustc.clone());
        }
        map.extend(given.clone());
        map
    }

    /// The annotations of the index over several platforms: provenance,
    /// the rustc when every platform's binary names the same one, and every
    /// `--annotation` (ko#1235: annotations belong on the index too).
    pub fn index_annotations<'a>(
        &self,
        platforms: impl IntoIterator<Item = &'a PlatformProvenance>,
    ) -> HashMap<String, String> {
        let mut map = self.provenance();
        let mut rustc = platforms
            .into_iter()
            .map(|platform| platform.rustc_version.as_ref());
        if let Some(Some(first)) = rustc.next() {
            if rustc.all(|other| other == Some(first)) {
                map.insert(annotations::RUSTC_VERSION.to_string(), first.clone());
            }
        }
        map.extend(self.annotations.clone());
        map
    }
}
