//! Reading images for verification, whatever transport they live in.
//!
//! After containers/image: each transport (`oci:DIR[:TAG]`,
//! `docker-archive:FILE`, `docker://REF`, and the image just built) is one
//! small [`ImageSource`] that hands out the top-level manifest and blobs by
//! descriptor; [`load`] walks index, manifests, configs and layers the same
//! way for all of them, and `verify` runs one set of checks over the result.

use std::path::PathBuf;
use std::sync::Arc;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType, Platform};

use crate::progress::Progress;

pub mod built;
pub mod docker_archive;
pub mod oci_layout;
pub mod registry;

/// What the verifier may already know about a layer, sparing work.
#[derive(Debug, Clone)]
pub enum KnownLayer {
    /// Nothing: fetch, check and decompress it.
    Unknown,
    /// Its uncompressed tar is at hand (built in this run), with the
    /// digest computed from those very bytes while it was compressed.
    Tar {
        /// The tar.
        tar: Arc<Vec<u8>>,
        /// `sha256:...` of the tar.
        diff_id: String,
        /// The tree this tar makes on its own, when already read.
        applied: Option<Arc<crate::filesystem::Filesystem>>,
    },
    /// It was verified when it was written by an earlier run; its contents
    /// are not read again.
    VerifiedEarlier(String),
}

/// A transport an image can be read from.
pub trait ImageSource {
    /// The source as a transport reference, e.g. `oci:DIR:TAG`.
    fn describe(&self) -> String;

    /// The top-level manifest or index: the descriptor the transport holds
    /// for it (when it holds one) and its bytes.
    fn top(&mut self) -> Result<(Option<Descriptor>, Vec<u8>), SourceError>;

    /// A manifest named by an index entry.
    fn manifest(&mut self, descriptor: &Descriptor) -> Result<Vec<u8>, SourceError> {
        self.blob(descriptor).map(|bytes| bytes.to_vec())
    }

    /// A blob's bytes, by descriptor.
    fn blob(&mut self, descriptor: &Descriptor) -> Result<Arc<Vec<u8>>, SourceError>;

    /// What is known about a layer already.
    fn known_layer(&self, _descriptor: &Descriptor) -> KnownLayer {
        KnownLayer::Unknown
    }

    /// Whether media types come from the image (false when the transport
    /// has none and they were inferred, as for docker-archive).
    fn has_media_types(&self) -> bool {
        true
    }
}

/// Why a source could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The SOURCE argument is not a known transport reference.
    #[error(
        "invalid image source {text:?}: {reason} (expected oci:DIR[:TAG], docker-archive:FILE or docker://REF)"
    )]
    InvalidSource {
        /// The text given.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be read.
    #[error("could not read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The image is not where or what the source says.
    #[error("{0}")]
    Missing(String),
    /// The registry refused or failed.
    #[error(transparent)]
    Registry(#[from] openshell_registry::RegistryError),
}

/// A blob as read: what was expected and what came.
#[derive(Debug, Clone)]
pub struct LoadedBlob {
    /// The descriptor that names it.
    pub expected: Descriptor,
    /// Its bytes, or why they could not be read.
    pub bytes: Result<Arc<Vec<u8>>, String>,
}

/// A layer as read.
#[derive(Debug, Clone)]
pub struct LoadedLayer {
    /// The blob (bytes not read when verified earlier).
    pub blob: LoadedBlob,
    /// What was known beforehand.
    pub known: KnownLayer,
}

/// One platform's manifest and what it references.
#[derive(Debug, Clone)]
pub struct LoadedManifest {
    /// The descriptor naming it (index entry, layout entry, or pin).
    pub expected: Option<Descriptor>,
    /// Its bytes.
    pub raw: Arc<Vec<u8>>,
    /// Parsed, or why it would not parse.
    pub parsed: Result<ImageManifest, String>,
    /// Its config blob.
    pub config: Option<LoadedBlob>,
    /// Its layers, bottom first.
    pub layers: Vec<LoadedLayer>,
}

impl LoadedManifest {
    /// The platform the index (or layout entry) gives it.
    pub fn platform(&self) -> Option<&Platform> {
        self.expected
            .as_ref()
            .and_then(|descriptor| descriptor.platform().as_ref())
    }
}

/// An index as read.
#[derive(Debug, Clone)]
pub struct LoadedIndex {
    /// The descriptor naming it, when the transport holds one.
    pub expected: Option<Descriptor>,
    /// Its bytes.
    pub raw: Arc<Vec<u8>>,
    /// Parsed.
    pub parsed: ImageIndex,
}

/// An image read from a source.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    /// The source, as a transport reference.
    pub source: String,
    /// The index, for a multi-platform image.
    pub index: Option<LoadedIndex>,
    /// Manifests, one per platform.
    pub manifests: Vec<LoadedManifest>,
    /// Whether media types came from the image itself.
    pub has_media_types: bool,
    /// Index entries left out (attestations and the like).
    pub notes: Vec<String>,
}

/// Media types of image indexes (OCI and Docker's manifest list).
pub fn is_index_media_type(media_type: &str) -> bool {
    media_type == MediaType::ImageIndex.to_string()
        || media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
}

fn looks_like_index(descriptor: Option<&Descriptor>, bytes: &[u8]) -> bool {
    if let Some(descriptor) = descriptor {
        let media_type = descriptor.media_type().to_string();
        if is_index_media_type(&media_type) {
            return true;
        }
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    serde_json::from_slice::<Probe>(bytes).is_ok_and(|probe| {
        probe.media_type.as_deref().is_some_and(is_index_media_type)
            || (probe.media_type.is_none() && probe.manifests.is_some())
    })
}

/// Reads the whole image from `source`: index, manifests, configs, layers.
pub fn load(source: &mut dyn ImageSource, progress: &Progress) -> Result<LoadedImage, SourceError> {
    let name = source.describe();
    let (top_descriptor, top_bytes) = source.top()?;
    let mut image = LoadedImage {
        source: name,
        index: None,
        manifests: Vec::new(),
        has_media_types: source.has_media_types(),
        notes: Vec::new(),
    };
    if looks_like_index(top_descriptor.as_ref(), &top_bytes) {
        let parsed = ImageIndex::from_reader(&top_bytes[..]).map_err(|err| {
            SourceError::Missing(format!(
                "the image index of {} does not parse: {err}",
                image.source
            ))
        })?;
        for entry in parsed.manifests() {
            // Build attestations ride in indexes as "unknown/unknown".
            if entry
                .platform()
                .as_ref()
                .is_some_and(|platform| platform.os().to_string() == "unknown")
            {
                image.notes.push(format!(
                    "skipped {} (platform unknown/unknown: an attestation)",
                    entry.digest()
                ));
                continue;
            }
            let raw = source.manifest(entry)?;
            image
                .manifests
                .push(load_manifest(source, Some(entry.clone()), raw, progress));
        }
        image.index = Some(LoadedIndex {
            expected: top_descriptor,
            raw: Arc::new(top_bytes),
            parsed,
        });
    } else {
        image
            .manifests
            .push(load_manifest(source, top_descriptor, top_bytes, progress));
    }
    Ok(image)
}

fn load_manifest(
    source: &mut dyn ImageSource,
    expected: Option<Descriptor>,
    raw: Vec<u8>,
    progress: &Progress,
) -> LoadedManifest {
    let parsed = ImageManifest::from_reader(&raw[..]).map_err(|err| err.to_string());
    let mut manifest = LoadedManifest {
        expected,
        raw: Arc::new(raw),
        parsed,
        config: None,
        layers: Vec::new(),
    };
    let Ok(parsed) = &manifest.parsed else {
        return manifest;
    };
    let fetch = |source: &mut dyn ImageSource, descriptor: &Descriptor| LoadedBlob {
        expected: descriptor.clone(),
        bytes: source.blob(descriptor).map_err(|err| err.to_string()),
    };
    manifest.config = Some(fetch(source, parsed.config()));
    for layer in parsed.layers() {
        let known = source.known_layer(layer);
        let blob = match &known {
            KnownLayer::VerifiedEarlier(reason) => LoadedBlob {
                expected: layer.clone(),
                bytes: Err(reason.clone()),
            },
            _ => {
                if layer.size() > 4 * 1024 * 1024 {
                    progress.note(format!(
                        "reading layer {} ({})",
                        layer.digest(),
                        crate::progress::human_size(layer.size())
                    ));
                }
                fetch(source, layer)
            }
        };
        manifest.layers.push(LoadedLayer { blob, known });
    }
    manifest
}

/// Parses a SOURCE argument into its transport, as skopeo does.
pub fn open(
    text: &str,
    registry: &openshell_registry::RegistryOptions,
) -> Result<Box<dyn ImageSource>, SourceError> {
    let invalid = |reason: &str| SourceError::InvalidSource {
        text: text.to_string(),
        reason: reason.to_string(),
    };
    let Some((transport, rest)) = text.split_once(':') else {
        return Err(invalid("no transport prefix"));
    };
    match transport {
        "oci" => {
            // containers/image splits oci:PATH[:REFERENCE] at the first ':'.
            let (dir, tag) = match rest.split_once(':') {
                Some((dir, tag)) => (dir, Some(tag.to_string())),
                None => (rest, None),
            };
            if dir.is_empty() {
                return Err(invalid("the oci: transport needs a folder, oci:DIR[:TAG]"));
            }
            Ok(Box::new(oci_layout::OciLayoutSource::new(
                PathBuf::from(dir),
                tag,
            )))
        }
        "docker-archive" => {
            let (file, tag) = match rest.split_once(':') {
                Some((file, tag)) => (file, Some(tag.to_string())),
                None => (rest, None),
            };
            if file.is_empty() {
                return Err(invalid(
                    "the docker-archive: transport needs a file, docker-archive:FILE",
                ));
            }
            Ok(Box::new(docker_archive::DockerArchiveSource::open(
                PathBuf::from(file).as_path(),
                tag,
            )?))
        }
        "docker" => {
            let Some(reference) = rest.strip_prefix("//") else {
                return Err(invalid("the docker transport is written docker://REF"));
            };
            Ok(Box::new(registry::RegistrySource::new(
                reference,
                registry.clone(),
            )?))
        }
        other => Err(invalid(&format!("unknown transport {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_parsed_like_skopeo() {
        let options = openshell_registry::RegistryOptions::default();
        assert_eq!(
            open("oci:some/dir:v1", &options).unwrap().describe(),
            "oci:some/dir:v1"
        );
        assert_eq!(
            open("oci:some/dir", &options).unwrap().describe(),
            "oci:some/dir"
        );
        for (bad, why) in [
            ("some/dir", "no transport prefix"),
            ("oci:", "needs a folder"),
            ("docker:127.0.0.1/x", "docker://REF"),
            ("tarball:x", "unknown transport"),
            ("docker://UPPER/Case", "lowercase"),
        ] {
            let err = open(bad, &options).err().unwrap().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
