//! Which platforms an image has, read one way for every place the driver
//! takes an image from: an OCI layout (`--supervisor-image-from DIR`) and a
//! registry reference (`--pin-supervisor-digest`), both through the
//! transport crate's [`ImageSource`], with its bounded reads (and, for a
//! registry, the registry client's deadlines and retries). A build
//! result JSON records its platforms as text and is read in
//! [`crate::build_output`].

use openshell_transport::source::{load_manifest, plan};
use openshell_transport::{ImageSource, ReadLimits, TransportError};

use crate::platform::Platform;

/// An image's top-level digest and platforms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePlatforms {
    /// The digest of its top-level manifest or index (`sha256:...`).
    pub digest: String,
    /// Each platform manifest's platform, in the order the index lists
    /// them (one for a single-platform image).
    pub platforms: Vec<Platform>,
}

/// Why an image's platforms could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImagePlatformsError {
    /// The image could not be read; the error names the source, the
    /// document and what was expected.
    #[error(transparent)]
    Read(#[from] TransportError),
    /// An index entry or config names no usable platform.
    #[error("{location}: platform {platform:?} is not OS/ARCHITECTURE[/VARIANT]")]
    BadPlatform {
        /// The index entry or config, and the source it is in.
        location: String,
        /// The text found.
        platform: String,
    },
    /// A manifest cannot say which platform it is for (not an image
    /// manifest, its config unreadable or not an image config).
    #[error("{0}")]
    Unusable(String),
    /// The image lists no platform manifest at all.
    #[error(
        "{source_name}: its manifest names no platform (expected an image manifest, or an index listing some)"
    )]
    NoPlatform {
        /// The source.
        source_name: String,
    },
}

/// Reads the digest and the platforms of the image in `source`: each
/// platform manifest's entry in its index, or, for an entry without one
/// and for a single image, its config's.
pub fn read_platforms(
    source: &mut dyn ImageSource,
    limits: &ReadLimits,
) -> Result<ImagePlatforms, ImagePlatformsError> {
    let source_name = source.describe();
    let shape = plan(source, limits)?;
    // The descriptor the transport holds for the top (a layout's
    // index.json entry, the digest a registry reference pins or the
    // registry computed from the bytes), else the digest of its bytes.
    let digest = match (shape.indexes.first(), shape.manifests.first()) {
        (Some(index), _) => index
            .expected
            .as_ref()
            .map_or_else(|| index.digest.clone(), |top| top.digest().to_string()),
        (None, Some(manifest)) => match (&manifest.expected, &manifest.raw) {
            (Some(top), _) => top.digest().to_string(),
            (None, Some(raw)) => openshell_contract::digest::sha256_digest(raw),
            (None, None) => String::new(),
        },
        (None, None) => String::new(),
    };
    let mut platforms = Vec::with_capacity(shape.manifests.len());
    for entry in &shape.manifests {
        let listed = entry
            .expected
            .as_ref()
            .and_then(|descriptor| descriptor.platform().clone());
        let (location, os, architecture, variant) = match listed {
            Some(listed) => (
                format!(
                    "{source_name} index entry {}",
                    entry
                        .expected
                        .as_ref()
                        .map(|descriptor| descriptor.digest().to_string())
                        .unwrap_or_default()
                ),
                listed.os().to_string(),
                listed.architecture().to_string(),
                listed.variant().clone(),
            ),
            None => {
                let manifest = load_manifest(source, entry, limits)?;
                let unusable = |reason: String| {
                    ImagePlatformsError::Unusable(format!(
                        "{source_name}: manifest {}: {reason}",
                        manifest.digest
                    ))
                };
                let config = manifest.config.as_ref().ok_or_else(|| {
                    unusable(match &manifest.parsed {
                        Err(reason) => format!("is not an image manifest: {reason}"),
                        Ok(_) => "is not an image manifest".to_string(),
                    })
                })?;
                // A config that could not be read, or not the one its
                // descriptor names, says nothing trustworthy.
                config.read.clone().map_err(&unusable)?;
                config.matches_descriptor.clone().map_err(&unusable)?;
                let parsed = config.parsed.as_ref().map_err(|reason| {
                    unusable(format!("its config is not an OCI image config: {reason}"))
                })?;
                (
                    format!("{source_name} config {}", config.expected.digest()),
                    parsed.os().to_string(),
                    parsed.architecture().to_string(),
                    parsed.variant().clone(),
                )
            }
        };
        if os.is_empty() || architecture.is_empty() {
            return Err(ImagePlatformsError::BadPlatform {
                location,
                platform: format!("{os}/{architecture}"),
            });
        }
        platforms.push(Platform {
            os,
            architecture,
            variant,
        });
    }
    if platforms.is_empty() {
        return Err(ImagePlatformsError::NoPlatform { source_name });
    }
    Ok(ImagePlatforms { digest, platforms })
}
