//! Referrers written by hand into OCI layouts: a one-layer referrer
//! listed in index.json, and a SLSA provenance statement about given
//! digests (for an independent signer to sign).

use std::path::Path;

use openshell_signing::intoto::{
    BuildDefinition, BuildMetadata, Builder, Provenance, ResourceDescriptor, RunDetails,
    SLSA_PROVENANCE_V1, STATEMENT_TYPE, Statement,
};
use openshell_testsupport::oci_blobs::put_blob;

/// Writes a referrer of `subject` (one layer) into the layout and lists it
/// in index.json; returns its digest.
pub fn attach(
    layout: &Path,
    subject: &serde_json::Value,
    artifact_type: &str,
    layer_type: &str,
    layer: &[u8],
    layer_annotations: serde_json::Value,
) -> String {
    let empty = put_blob(layout, b"{}");
    let layer_digest = put_blob(layout, layer);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": layer.len(), "annotations": layer_annotations}],
        "subject": subject,
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = put_blob(layout, &bytes);
    list(
        layout,
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": bytes.len(), "artifactType": artifact_type,
        }),
    );
    digest
}

/// Lists `entry` in the layout's index.json.
pub fn list(layout: &Path, entry: serde_json::Value) {
    let path = layout.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    index["manifests"].as_array_mut().unwrap().push(entry);
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A minimal SLSA provenance v1 statement whose subjects are `digests`.
pub fn provenance_about(digests: &[&str]) -> Statement<Provenance> {
    Statement {
        kind: STATEMENT_TYPE.into(),
        subject: digests
            .iter()
            .map(|d| ResourceDescriptor::from_digest("x", d))
            .collect(),
        predicate_type: SLSA_PROVENANCE_V1.into(),
        predicate: Provenance {
            build_definition: BuildDefinition {
                build_type: "https://example.com/t".into(),
                external_parameters: serde_json::json!({}),
                internal_parameters: serde_json::Value::Null,
                resolved_dependencies: Vec::new(),
            },
            run_details: RunDetails {
                builder: Builder {
                    id: "https://example.com/b".into(),
                    version: Default::default(),
                },
                metadata: BuildMetadata::default(),
            },
        },
    }
}
