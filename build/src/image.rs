//! Assembling the image: config, manifest and (for several platforms) index,
//! all through oci-spec's types.

use std::collections::HashMap;
use std::sync::Arc;

use oci_spec::image::{
    ConfigBuilder, Descriptor, HistoryBuilder, ImageConfigurationBuilder, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, RootFsBuilder, SCHEMA_VERSION,
};
use openshell_contract::annotations::oci;
use openshell_contract::{BINARY_NAME, IMAGE_BINARY_MODE, IMAGE_BINARY_PATH, IMAGE_ENTRYPOINT};
use serde::Serialize;

use crate::binary::BinaryFacts;
use openshell_contract::digest::sha256_digest;
use openshell_contract::platform::Platform;
use openshell_supply_chain::metadata::{ImageMetadata, PlatformProvenance};
use openshell_supply_chain::sbom::Sbom;
pub use openshell_transport::{Blob, BlobData};

/// The layer a platform image is built on, as assembled.
#[derive(Debug, Clone)]
pub struct LayerBlob {
    /// The gzip blob.
    pub blob: Blob,
    /// `sha256:...` of the uncompressed tar.
    pub diff_id: String,
    /// The uncompressed tar, when it was built in this run (so verifying it
    /// needs no decompression); `None` when reused from an earlier run.
    pub tar: Option<Arc<Vec<u8>>>,
    /// The tree that tar makes, when it was read while compressing.
    pub applied: Option<Arc<openshell_verify::filesystem::Filesystem>>,
}

/// One platform's image.
#[derive(Debug, Clone)]
pub struct PlatformBuild {
    /// Its platform.
    pub platform: Platform,
    /// The binary in it.
    pub binary: BinaryFacts,
    /// Its layer.
    pub layer: LayerBlob,
    /// Its config blob.
    pub config: Blob,
    /// Its manifest blob (the descriptor carries the platform).
    pub manifest: Blob,
    /// What the binary says about its build.
    pub provenance: PlatformProvenance,
}

/// A complete image: one manifest, or an index over several.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// The per-platform images, in the order given.
    pub platforms: Vec<PlatformBuild>,
    /// The index blob, for a multi-platform image.
    pub index: Option<Blob>,
    /// The top-level manifest: the index, or the single manifest.
    pub top: Blob,
    /// Artifacts that refer to the platform manifests (the SBOMs), each an
    /// OCI 1.1 referrer.
    pub referrers: Vec<Referrer>,
    /// Manifests a registry keeps under their own tag (cosign's `.sig` and
    /// `.att`), from [`crate::signatures`].
    pub attachments: Vec<crate::signatures::Attachment>,
}

/// An artifact manifest whose `subject` is one of the image's manifests.
#[derive(Debug, Clone)]
pub struct Referrer {
    /// Digest of the manifest it refers to.
    pub subject: String,
    /// The artifact manifest; its descriptor carries the `artifactType`.
    pub manifest: Blob,
    /// Its config (the empty descriptor's `{}`) and layers.
    pub blobs: Vec<Blob>,
}

impl BuiltImage {
    /// Every blob, dependencies first: layers, configs, manifests, index,
    /// then the referrers' blobs and manifests.
    pub fn blobs(&self) -> Vec<&Blob> {
        let mut blobs: Vec<&Blob> = Vec::new();
        for platform in &self.platforms {
            blobs.push(&platform.layer.blob);
            blobs.push(&platform.config);
            blobs.push(&platform.manifest);
        }
        blobs.extend(self.index.iter());
        for referrer in &self.referrers {
            blobs.extend(referrer.blobs.iter());
            blobs.push(&referrer.manifest);
        }
        blobs
    }
}

/// Why an image could not be assembled (oci-spec refused a value).
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// oci-spec refused to build or serialise a document.
    #[error("could not assemble the image {what}: {source}")]
    Spec {
        /// Which document.
        what: &'static str,
        /// oci-spec's error.
        source: oci_spec::OciSpecError,
    },
    /// A digest that oci-spec does not accept.
    #[error("invalid digest {digest}: {detail}")]
    Digest {
        /// The digest.
        digest: String,
        /// Why.
        detail: String,
    },
    /// No platform given.
    #[error("no binary to package (expected at least one --binary)")]
    Empty,
}

fn spec(what: &'static str) -> impl Fn(oci_spec::OciSpecError) -> ImageError {
    move |source| ImageError::Spec { what, source }
}

pub use openshell_transport::document::canonical_json;

pub(crate) fn json_blob<T: Serialize>(
    what: &'static str,
    media_type: MediaType,
    document: &T,
) -> Result<Blob, ImageError> {
    let bytes = canonical_json(document).map_err(|err| ImageError::Spec {
        what,
        source: oci_spec::OciSpecError::SerDe(err),
    })?;
    let descriptor = descriptor(media_type, &sha256_digest(&bytes), bytes.len() as u64)?;
    Ok(Blob {
        descriptor,
        data: BlobData::Memory(Arc::new(bytes)),
    })
}

/// A descriptor from a `sha256:...` digest string.
pub fn descriptor(
    media_type: MediaType,
    digest: &str,
    size: u64,
) -> Result<Descriptor, ImageError> {
    let parsed: oci_spec::image::Digest =
        digest
            .parse()
            .map_err(|err: oci_spec::OciSpecError| ImageError::Digest {
                digest: digest.to_string(),
                detail: err.to_string(),
            })?;
    Ok(Descriptor::new(media_type, size, parsed))
}

/// What `created_by` says in the history, like a Dockerfile's COPY line.
pub fn history_created_by() -> String {
    format!(
        "build-image {}: COPY --chmod={:o} {BINARY_NAME} {IMAGE_BINARY_PATH}",
        env!("CARGO_PKG_VERSION"),
        IMAGE_BINARY_MODE
    )
}

/// Assembles one platform's config and manifest around its layer.
pub fn assemble_platform(
    platform: Platform,
    binary: BinaryFacts,
    layer: LayerBlob,
    metadata: &ImageMetadata,
) -> Result<PlatformBuild, ImageError> {
    assemble_platform_with(
        platform,
        binary,
        layer,
        metadata,
        PlatformProvenance::default(),
    )
}

/// Assembles one platform's config and manifest around its layer, with
/// what its binary says about its build.
pub fn assemble_platform_with(
    platform: Platform,
    binary: BinaryFacts,
    layer: LayerBlob,
    metadata: &ImageMetadata,
    provenance: PlatformProvenance,
) -> Result<PlatformBuild, ImageError> {
    let created = metadata.epoch.rfc3339();
    let annotations = metadata.manifest_annotations(&binary.sha256, &provenance);
    let runtime_config = ConfigBuilder::default()
        .entrypoint(IMAGE_ENTRYPOINT.map(String::from).to_vec())
        .labels(metadata.config_labels(&binary.sha256, &provenance))
        .build()
        .map_err(spec("config"))?;
    let history = HistoryBuilder::default()
        .created(created.clone())
        .created_by(history_created_by())
        .comment(format!("{BINARY_NAME} sha256:{}", binary.sha256))
        .build()
        .map_err(spec("history"))?;
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(vec![layer.diff_id.clone()])
        .build()
        .map_err(spec("rootfs"))?;
    let oci_platform = crate::platform::to_oci(&platform);
    let mut config_builder = ImageConfigurationBuilder::default()
        .created(created)
        .os(oci_platform.os().clone())
        .architecture(oci_platform.architecture().clone())
        .config(runtime_config)
        .rootfs(rootfs)
        .history(vec![history]);
    if let Some(variant) = &platform.variant {
        config_builder = config_builder.variant(variant.clone());
    }
    let config = config_builder.build().map_err(spec("config"))?;
    let config = json_blob("config", MediaType::ImageConfig, &config)?;

    let manifest = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .config(config.descriptor.clone())
        .layers(vec![layer.blob.descriptor.clone()])
        .annotations(annotations)
        .build()
        .map_err(spec("manifest"))?;
    let mut manifest = json_blob("manifest", MediaType::ImageManifest, &manifest)?;
    manifest.descriptor.set_platform(Some(oci_platform));
    Ok(PlatformBuild {
        platform,
        binary,
        layer,
        config,
        manifest,
        provenance,
    })
}

/// Puts platform images together: one manifest alone, or an index over all.
pub fn assemble(
    platforms: Vec<PlatformBuild>,
    metadata: &ImageMetadata,
) -> Result<BuiltImage, ImageError> {
    if platforms.is_empty() {
        return Err(ImageError::Empty);
    }
    if let [single] = platforms.as_slice() {
        let top = single.manifest.clone();
        return Ok(BuiltImage {
            attachments: Vec::new(),
            platforms,
            index: None,
            top,
            referrers: Vec::new(),
        });
    }
    let manifests: Vec<Descriptor> = platforms
        .iter()
        .map(|platform| platform.manifest.descriptor.clone())
        .collect();
    let index_annotations =
        metadata.index_annotations(platforms.iter().map(|platform| &platform.provenance));
    let index = ImageIndexBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .annotations(index_annotations)
        .build()
        .map_err(spec("index"))?;
    let index = json_blob("index", MediaType::ImageIndex, &index)?;
    Ok(BuiltImage {
        attachments: Vec::new(),
        platforms,
        top: index.clone(),
        index: Some(index),
        referrers: Vec::new(),
    })
}

/// A descriptor for a layer blob (gzip tar).
pub fn layer_descriptor(digest: &str, size: u64) -> Result<Descriptor, ImageError> {
    descriptor(MediaType::ImageLayerGzip, digest, size)
}

/// The bytes of the empty JSON object that an artifact manifest's config
/// names (OCI 1.1's empty descriptor).
pub const EMPTY_JSON: &[u8] = b"{}";

/// The OCI 1.1 referrer that attaches `sbom` to the manifest `subject`: an
/// artifact manifest with the SBOM's `artifactType`, the empty config, the
/// SBOM as its one layer, and `subject` naming the platform manifest.
pub fn sbom_referrer(
    subject: &Blob,
    sbom: &Sbom,
    metadata: &ImageMetadata,
) -> Result<Referrer, ImageError> {
    let spec = |what: &'static str| move |source| ImageError::Spec { what, source };
    let empty_digest = sha256_digest(EMPTY_JSON);
    let mut config = descriptor(MediaType::EmptyJSON, &empty_digest, EMPTY_JSON.len() as u64)?;
    // The spec's recommended inline copy of `{}`, so clients need not fetch it.
    config.set_data(Some("e30=".to_string()));
    let config_blob = Blob::in_memory(
        descriptor(MediaType::EmptyJSON, &empty_digest, EMPTY_JSON.len() as u64)?,
        Arc::new(EMPTY_JSON.to_vec()),
    );
    let artifact_type = MediaType::Other(sbom.artifact_type.clone());
    let mut layer = descriptor(
        artifact_type.clone(),
        &sha256_digest(&sbom.bytes),
        sbom.bytes.len() as u64,
    )?;
    layer.set_annotations(Some(HashMap::from([(
        oci::TITLE.to_string(),
        sbom.file_name.clone(),
    )])));
    let layer_blob = Blob::in_memory(layer.clone(), Arc::clone(&sbom.bytes));
    // The subject names the manifest only: no platform, no annotations.
    let subject_descriptor = Descriptor::new(
        subject.descriptor.media_type().clone(),
        subject.descriptor.size(),
        subject.descriptor.digest().clone(),
    );
    let created = HashMap::from([(oci::CREATED.to_string(), metadata.epoch.rfc3339())]);
    let manifest = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .artifact_type(artifact_type.clone())
        .config(config)
        .layers(vec![layer])
        .subject(subject_descriptor)
        .annotations(created.clone())
        .build()
        .map_err(spec("SBOM artifact manifest"))?;
    let mut manifest = json_blob(
        "SBOM artifact manifest",
        MediaType::ImageManifest,
        &manifest,
    )?;
    // The descriptor lists carry the artifact type and annotations (the
    // referrers API and the tag-schema index both do), so a reader can pick
    // the SBOM without fetching every manifest.
    manifest.descriptor.set_artifact_type(Some(artifact_type));
    manifest.descriptor.set_annotations(Some(created));
    Ok(Referrer {
        subject: subject.digest(),
        manifest,
        blobs: vec![config_blob, layer_blob],
    })
}

#[cfg(test)]
mod tests {
    use openshell_contract::annotations;
    use openshell_supply_chain::epoch::Epoch;

    use super::*;

    fn sample_platform(epoch: Epoch) -> PlatformBuild {
        let tar = b"fake tar".to_vec();
        let gz = b"fake gz".to_vec();
        let layer = LayerBlob {
            blob: Blob {
                descriptor: layer_descriptor(&sha256_digest(&gz), gz.len() as u64).unwrap(),
                data: BlobData::Memory(Arc::new(gz)),
            },
            diff_id: sha256_digest(&tar),
            tar: Some(Arc::new(tar)),
            applied: None,
        };
        let binary = BinaryFacts {
            sha256: "ab".repeat(32),
            architecture: "amd64".into(),
            size: 8,
        };
        assemble_platform(
            Platform::linux("amd64"),
            binary,
            layer,
            &ImageMetadata::new(epoch),
        )
        .unwrap()
    }

    fn bytes(blob: &Blob) -> Vec<u8> {
        blob.read_verified().unwrap().to_vec()
    }

    #[test]
    fn same_inputs_give_the_same_digests() {
        let epoch = Epoch::parse("1700000000").unwrap();
        let one = sample_platform(epoch);
        let two = sample_platform(epoch);
        assert_eq!(bytes(&one.config), bytes(&two.config));
        assert_eq!(
            one.manifest.descriptor.digest(),
            two.manifest.descriptor.digest()
        );
        let later = sample_platform(Epoch::parse("1700000001").unwrap());
        assert_ne!(
            one.manifest.descriptor.digest(),
            later.manifest.descriptor.digest()
        );
    }

    #[test]
    fn config_and_manifest_say_what_the_contract_says() {
        let built = sample_platform(Epoch::parse("1700000000").unwrap());
        let config: serde_json::Value = serde_json::from_slice(&bytes(&built.config)).unwrap();
        assert_eq!(config["os"], "linux");
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(config["created"], "2023-11-14T22:13:20Z");
        assert_eq!(
            config["config"]["Entrypoint"],
            serde_json::json!(["/openshell-sandbox"])
        );
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            built.layer.diff_id.as_str()
        );
        assert_eq!(config["history"].as_array().unwrap().len(), 1);
        let manifest: serde_json::Value = serde_json::from_slice(&bytes(&built.manifest)).unwrap();
        assert_eq!(manifest["schemaVersion"], 2);
        assert_eq!(
            manifest["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(
            manifest["layers"][0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(
            manifest["config"]["digest"],
            built.config.descriptor.digest().to_string()
        );
        assert_eq!(
            manifest["annotations"][annotations::BINARY_SHA256],
            "ab".repeat(32)
        );
        assert_eq!(
            manifest["annotations"][oci::CREATED],
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            built.manifest.descriptor.digest().to_string(),
            sha256_digest(&bytes(&built.manifest))
        );
    }

    #[test]
    fn canonical_json_sorts_map_keys() {
        let map: HashMap<String, u8> = (0..50).map(|n| (format!("k{n}"), n)).collect();
        let text = String::from_utf8(canonical_json(&map).unwrap()).unwrap();
        let keys: Vec<&str> = text.split('"').skip(1).step_by(2).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted);
    }
}
