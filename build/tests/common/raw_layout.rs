//! OCI layouts from raw layer tars: any bytes a test wants (hostile headers,
//! generated layer stacks), several tagged images per layout.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use build_image::image::canonical_json;
use oci_spec::image::{
    ConfigBuilder, Descriptor, Digest, ImageConfigurationBuilder, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, RootFsBuilder, SCHEMA_VERSION,
};
use openshell_contract::annotations::oci::REF_NAME;
use openshell_contract::digest::sha256_digest;
use sha2::Digest as _;

/// A layer blob: its compressed bytes and its diff ID.
#[derive(Debug, Clone)]
pub struct RawLayer {
    /// The blob (gzip).
    pub blob: Vec<u8>,
    /// `sha256:` of the uncompressed tar.
    pub diff_id: String,
    /// The media type its descriptor declares (gzip unless a test says).
    pub media_type: MediaType,
}

impl RawLayer {
    /// A layer from an uncompressed tar, gzip-compressed.
    pub fn from_tar(tar: &[u8]) -> Self {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(tar).expect("gzip");
        Self {
            blob: encoder.finish().expect("gzip"),
            diff_id: sha256_digest(tar),
            media_type: MediaType::ImageLayerGzip,
        }
    }

    /// The same layer declared with another media type.
    #[allow(dead_code)] // Not every test binary declares other types.
    pub fn declared(self, media_type: MediaType) -> Self {
        Self { media_type, ..self }
    }

    /// A layer whose blob and diff ID are given as they are (for streams
    /// too large to build in memory).
    pub fn prebuilt(blob: Vec<u8>, diff_id: String) -> Self {
        Self {
            blob,
            diff_id,
            media_type: MediaType::ImageLayerGzip,
        }
    }
}

/// One image of a layout: its tag and layers, bottom first.
#[derive(Debug, Clone)]
pub struct RawImage {
    /// The `org.opencontainers.image.ref.name` of its index entry.
    pub tag: String,
    /// Layers, bottom first.
    pub layers: Vec<RawLayer>,
}

fn put(blobs: &Path, bytes: &[u8]) -> Digest {
    let digest = sha256_digest(bytes);
    let path = blobs.join(digest.trim_start_matches("sha256:"));
    if !path.exists() {
        std::fs::write(&path, bytes).expect("write blob");
    }
    digest.parse().expect("digest")
}

/// Writes `images` into a new OCI layout at `dir`, one index entry each:
/// linux/amd64, entrypoint `/openshell-sandbox`.
pub fn write_layout(dir: &Path, images: &[RawImage]) {
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir blobs");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("oci-layout");
    let mut entries = Vec::new();
    for image in images {
        let mut layers = Vec::new();
        for layer in &image.layers {
            let digest = put(&blobs, &layer.blob);
            layers.push(Descriptor::new(
                layer.media_type.clone(),
                layer.blob.len() as u64,
                digest,
            ));
        }
        let config = ImageConfigurationBuilder::default()
            .os(oci_spec::image::Os::Linux)
            .architecture(oci_spec::image::Arch::Amd64)
            .config(
                ConfigBuilder::default()
                    .entrypoint(vec!["/openshell-sandbox".to_string()])
                    .build()
                    .expect("runtime config"),
            )
            .rootfs(
                RootFsBuilder::default()
                    .typ("layers")
                    .diff_ids(
                        image
                            .layers
                            .iter()
                            .map(|layer| layer.diff_id.clone())
                            .collect::<Vec<_>>(),
                    )
                    .build()
                    .expect("rootfs"),
            )
            .build()
            .expect("config");
        let config = canonical_json(&config).expect("config json");
        let config_digest = put(&blobs, &config);
        let manifest = ImageManifestBuilder::default()
            .schema_version(SCHEMA_VERSION)
            .media_type(MediaType::ImageManifest)
            .config(Descriptor::new(
                MediaType::ImageConfig,
                config.len() as u64,
                config_digest,
            ))
            .layers(layers)
            .build()
            .expect("manifest");
        let manifest = canonical_json(&manifest).expect("manifest json");
        let manifest_digest = put(&blobs, &manifest);
        let mut entry = Descriptor::new(
            MediaType::ImageManifest,
            manifest.len() as u64,
            manifest_digest,
        );
        entry.set_annotations(Some(HashMap::from([(
            REF_NAME.to_string(),
            image.tag.clone(),
        )])));
        entries.push(entry);
    }
    let index = ImageIndexBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .manifests(entries)
        .build()
        .expect("index");
    std::fs::write(
        dir.join("index.json"),
        canonical_json(&index).expect("index json"),
    )
    .expect("index.json");
}

/// sha256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}
