//! `docker-archive:FILE[:NAME:TAG]`: a `docker save` / `podman save` tarball.
//!
//! A docker-archive has no OCI manifest: this source writes one (through
//! oci-spec) from `manifest.json`, naming the config by the digest in its
//! file name when it has one (so a changed config is caught) and the layers
//! by the digests of their files. The layers themselves are checked through
//! the config's diff IDs, like every other source.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oci_spec::image::{Descriptor, ImageManifestBuilder, MediaType, SCHEMA_VERSION};

use super::{ImageSource, SourceError};
use crate::image::{canonical_json, descriptor};
use crate::layer::sha256_digest;
use crate::publish::docker_archive::ArchiveManifestEntry;

/// An image in a docker-archive tarball.
#[derive(Debug)]
pub struct DockerArchiveSource {
    path: PathBuf,
    manifest: Vec<u8>,
    blobs: HashMap<String, Arc<Vec<u8>>>,
}

fn read_error(path: &Path) -> impl Fn(std::io::Error) -> SourceError + '_ {
    move |source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The digest a file name states: `<hex>.json`, `<hex>.tar`, `blobs/sha256/<hex>`.
fn digest_in_name(name: &str) -> Option<String> {
    let base = name.rsplit('/').next()?;
    let hex = base.split('.').next()?;
    (hex.len() == 64 && hex.bytes().all(|byte| byte.is_ascii_hexdigit()))
        .then(|| format!("sha256:{}", hex.to_ascii_lowercase()))
}

fn layer_media_type(bytes: &[u8]) -> MediaType {
    match bytes {
        [0x1f, 0x8b, ..] => MediaType::ImageLayerGzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => MediaType::ImageLayerZstd,
        _ => MediaType::ImageLayer,
    }
}

impl DockerArchiveSource {
    /// Reads the archive at `path`; `name` picks an image by its RepoTags
    /// entry when the archive holds several.
    pub fn open(path: &Path, name: Option<String>) -> Result<Self, SourceError> {
        let file = std::fs::File::open(path).map_err(read_error(path))?;
        let mut files: HashMap<String, Vec<u8>> = HashMap::new();
        let mut archive = tar::Archive::new(std::io::BufReader::new(file));
        for entry in archive.entries().map_err(read_error(path))? {
            let mut entry = entry.map_err(read_error(path))?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let name = String::from_utf8_lossy(&entry.path_bytes())
                .trim_start_matches("./")
                .to_string();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(read_error(path))?;
            files.insert(name, bytes);
        }
        let missing = |what: String| SourceError::Missing(format!("{}: {what}", path.display()));
        let manifest_json = files
            .get("manifest.json")
            .ok_or_else(|| missing("no manifest.json (expected a docker-archive written by docker save, podman save or build-image)".into()))?;
        let entries: Vec<ArchiveManifestEntry> = serde_json::from_slice(manifest_json)
            .map_err(|err| missing(format!("manifest.json does not parse: {err}")))?;
        let entry = match &name {
            Some(name) => entries.iter().find(|entry| {
                entry
                    .repo_tags
                    .as_ref()
                    .is_some_and(|tags| tags.iter().any(|tag| tag == name))
            }),
            None if entries.len() == 1 => entries.first(),
            None => None,
        }
        .ok_or_else(|| {
            missing(match &name {
                Some(name) => format!("no image named {name} in manifest.json"),
                None => format!(
                    "manifest.json lists {} images: name one with docker-archive:FILE:NAME:TAG",
                    entries.len()
                ),
            })
        })?;

        let mut blobs = HashMap::new();
        let config = files.get(&entry.config).ok_or_else(|| {
            missing(format!(
                "the config {} listed in manifest.json is not in the archive",
                entry.config
            ))
        })?;
        let config_digest = digest_in_name(&entry.config).unwrap_or_else(|| sha256_digest(config));
        let spec_error = |err: crate::image::ImageError| missing(err.to_string());
        let config_descriptor =
            descriptor(MediaType::ImageConfig, &config_digest, config.len() as u64)
                .map_err(spec_error)?;
        blobs.insert(config_digest, Arc::new(config.clone()));
        let mut layers = Vec::new();
        for layer_name in &entry.layers {
            let bytes = files.get(layer_name).ok_or_else(|| {
                missing(format!(
                    "the layer {layer_name} listed in manifest.json is not in the archive"
                ))
            })?;
            let digest = sha256_digest(bytes);
            layers.push(
                descriptor(layer_media_type(bytes), &digest, bytes.len() as u64)
                    .map_err(spec_error)?,
            );
            blobs.insert(digest, Arc::new(bytes.clone()));
        }
        let manifest = ImageManifestBuilder::default()
            .schema_version(SCHEMA_VERSION)
            .media_type(MediaType::ImageManifest)
            .config(config_descriptor)
            .layers(layers)
            .build()
            .map_err(|err| missing(err.to_string()))?;
        let manifest = canonical_json(&manifest).map_err(|err| missing(err.to_string()))?;
        Ok(Self {
            path: path.to_path_buf(),
            manifest,
            blobs,
        })
    }
}

impl ImageSource for DockerArchiveSource {
    fn describe(&self) -> String {
        format!("docker-archive:{}", self.path.display())
    }

    fn top(&mut self) -> Result<(Option<Descriptor>, Vec<u8>), SourceError> {
        Ok((None, self.manifest.clone()))
    }

    fn blob(&mut self, descriptor: &Descriptor) -> Result<Arc<Vec<u8>>, SourceError> {
        let digest = descriptor.digest().to_string();
        self.blobs.get(&digest).cloned().ok_or_else(|| {
            SourceError::Missing(format!("{}: no blob {digest}", self.path.display()))
        })
    }

    fn has_media_types(&self) -> bool {
        false
    }
}
