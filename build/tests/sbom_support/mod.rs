//! Reading what build-image attaches to an image: referrers in an OCI
//! layout, their SBOM documents, and the SPDX project's validator.

// Test helpers: a failure to read or run is a test failure.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use openshell_testsupport::podman::{output_text, run};
use openshell_testsupport::python_tools::python_tool;

/// The media type build-image gives the SBOM.
pub const SPDX: &str = "application/spdx+json";

/// A layout's `index.json`.
pub fn index(layout: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap()
}

/// The `index.json` entries that carry an `artifactType` (the referrers).
pub fn referrer_entries(layout: &Path) -> Vec<serde_json::Value> {
    index(layout)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry.get("artifactType").is_some())
        .cloned()
        .collect()
}

/// The tags (`org.opencontainers.image.ref.name`) in a layout.
pub fn tags(layout: &Path) -> Vec<String> {
    index(layout)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_string)
        .collect()
}

/// The path of a blob in a layout.
pub fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// A blob's bytes.
pub fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(blob_path(layout, digest)).unwrap()
}

/// A JSON blob.
pub fn json_blob(layout: &Path, digest: &str) -> serde_json::Value {
    serde_json::from_slice(&blob(layout, digest)).unwrap()
}

/// One SBOM found through a layout: the referrer entry, its manifest, and
/// the document.
#[derive(Debug, Clone)]
pub struct FoundSbom {
    /// Digest of the referrer manifest.
    pub referrer: String,
    /// The referrer manifest.
    pub manifest: serde_json::Value,
    /// Digest of the SBOM document.
    pub digest: String,
    /// The document's bytes.
    pub bytes: Vec<u8>,
}

impl FoundSbom {
    /// The document, parsed.
    pub fn document(&self) -> serde_json::Value {
        serde_json::from_slice(&self.bytes).unwrap()
    }

    /// Digest of the manifest it refers to.
    pub fn subject(&self) -> &str {
        self.manifest["subject"]["digest"].as_str().unwrap()
    }
}

/// Every SBOM referrer in a layout.
pub fn sboms(layout: &Path) -> Vec<FoundSbom> {
    referrer_entries(layout)
        .iter()
        .filter(|entry| entry["artifactType"] == SPDX)
        .map(|entry| {
            let referrer = entry["digest"].as_str().unwrap().to_string();
            let manifest = json_blob(layout, &referrer);
            let digest = manifest["layers"][0]["digest"]
                .as_str()
                .unwrap()
                .to_string();
            FoundSbom {
                bytes: blob(layout, &digest),
                referrer,
                manifest,
                digest,
            }
        })
        .collect()
}

/// The one SBOM referrer of a layout.
pub fn only_sbom(layout: &Path) -> FoundSbom {
    let mut found = sboms(layout);
    assert_eq!(
        found.len(),
        1,
        "expected one SBOM referrer in {layout:?}: {found:#?}"
    );
    found.remove(0)
}

/// Validates an SPDX JSON document with `pyspdxtools -i` (spdx-tools, the
/// SPDX project's validator). Returns `None` (skipped, outside CI) when the
/// tool is missing; otherwise asserts it accepted the document.
pub fn assert_valid_spdx(test: &str, bytes: &[u8]) -> Option<()> {
    let tool = python_tool(test, "pyspdxtools")?;
    let dir = tempfile::tempdir().unwrap();
    // pyspdxtools picks its parser by the file name's extension.
    let file = dir.path().join("sbom.spdx.json");
    std::fs::write(&file, bytes).unwrap();
    let mut command = Command::new(tool);
    command.arg("-i").arg(&file);
    let output = run(command);
    assert!(
        output.status.success(),
        "pyspdxtools refused the SBOM:\n{}\n{}",
        output_text(&output),
        String::from_utf8_lossy(bytes)
    );
    Some(())
}

/// The workspace's Cargo.lock.
pub fn workspace_cargo_lock() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock")).unwrap()
}

/// sha256 (hex) of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    openshell_contract::digest::sha256_hex(bytes)
}
