//! Hand-made OCI layout pieces for tests that need shapes no tool writes:
//! a blob put by its digest, and a cosign v2 "signatures image".

use std::path::Path;

/// Writes `bytes` into `layout`'s `blobs/sha256` (which must exist) and
/// returns its digest, `sha256:<hex>`.
pub fn put_blob(layout: &Path, bytes: &[u8]) -> String {
    let digest = openshell_contract::digest::sha256_digest(bytes);
    std::fs::write(layout.join("blobs/sha256").join(&digest[7..]), bytes)
        .unwrap_or_else(|err| panic!("writing blob {digest} into {}: {err}", layout.display()));
    digest
}

/// Makes `dir` an OCI layout holding one cosign v2 "signatures image"
/// tagged `x`: one layer of `layer_type` with `annotations`, as `cosign
/// sign` v2 pushes it.
pub fn cosign_signatures_layout(
    dir: &Path,
    layer_type: &str,
    layer: &[u8],
    annotations: serde_json::Value,
) {
    let write = |path: &Path, bytes: &[u8]| {
        std::fs::write(path, bytes)
            .unwrap_or_else(|err| panic!("writing {}: {err}", path.display()))
    };
    std::fs::create_dir_all(dir.join("blobs/sha256"))
        .unwrap_or_else(|err| panic!("creating {}: {err}", dir.display()));
    write(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    );
    let layer_digest = put_blob(dir, layer);
    let config = serde_json::json!({
        "architecture": "", "os": "", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    })
    .to_string()
    .into_bytes();
    let config_digest = put_blob(dir, &config);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": layer.len(), "annotations": annotations}],
    })
    .to_string()
    .into_bytes();
    let digest = put_blob(dir, &manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": manifest.len(),
                       "annotations": {"org.opencontainers.image.ref.name": "x"}}],
    });
    write(&dir.join("index.json"), index.to_string().as_bytes());
}
