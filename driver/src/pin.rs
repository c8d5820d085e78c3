//! Pinning the supervisor image to the digest its tag points at now.
//!
//! A tag can be re-pointed at any time (a broken `supervisor:latest` once
//! broke every new sandbox within the hour); a digest cannot. Resolving it
//! once, at start, makes every pod the driver renders run the same
//! supervisor, and an unreachable registry or unknown tag stops the driver
//! before the first sandbox instead of failing them one by one. The same
//! manifest tells which platforms the image has, to check against the
//! cluster's nodes.

use oci_client::manifest::OciManifest;
use openshell_registry::{RegistryError, RegistryOptions, classify, client, resolve_auth};

use crate::config::DriverConfig;
use crate::image::{ImageError, SupervisorImage};
use crate::platform::Platform;

/// Why the image could not be pinned.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The registry lookup failed.
    #[error("could not pin the supervisor image {image} to a digest: {error}")]
    Registry {
        /// The image being pinned.
        image: String,
        /// What the registry said.
        error: RegistryError,
    },
    /// The digest could not be added to the reference.
    #[error("could not pin the supervisor image {image} to a digest: {error}")]
    Image {
        /// The image being pinned.
        image: String,
        /// What is wrong.
        error: ImageError,
    },
    /// The manifest or its config does not say which platform it is for.
    #[error("the supervisor image {image}: {reason}")]
    Platform {
        /// The image.
        image: String,
        /// What is missing.
        reason: String,
    },
}

/// A pinned image and the platforms its manifest lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedImage {
    /// The image, `REPO@sha256:...` (a reference the operator already
    /// pinned is kept as written).
    pub image: SupervisorImage,
    /// Its platforms.
    pub platforms: Vec<Platform>,
}

/// `image` pinned to the manifest digest its tag resolves to now (for a
/// multi-platform image, the index digest), with the platforms it lists. An
/// image already pinned is checked against the registry: a digest the
/// registry does not have is an error too.
pub async fn pin_image(
    image: &SupervisorImage,
    options: &RegistryOptions,
) -> Result<PinnedImage, PinError> {
    let registry_error = |error| PinError::Registry {
        image: image.to_string(),
        error,
    };
    let reference = image.reference();
    let auth = resolve_auth(reference, options).map_err(registry_error)?;
    let client = client(options);
    let (manifest, digest) = client
        .pull_manifest(reference, &auth.auth)
        .await
        .map_err(|error| registry_error(classify(error, reference, &auth)))?;
    let platform_error = |reason: String| PinError::Platform {
        image: image.to_string(),
        reason,
    };
    let platforms = match manifest {
        OciManifest::ImageIndex(index) => index
            .manifests
            .iter()
            .filter_map(|entry| entry.platform.as_ref())
            .map(|platform| {
                // Arch and Os serialise as the OCI spellings.
                let text = |value: serde_json::Result<serde_json::Value>| {
                    value
                        .ok()
                        .and_then(|value| value.as_str().map(str::to_string))
                        .unwrap_or_default()
                };
                Platform {
                    os: text(serde_json::to_value(&platform.os)),
                    architecture: text(serde_json::to_value(&platform.architecture)),
                    variant: platform.variant.clone(),
                }
            })
            .collect(),
        OciManifest::Image(manifest) => {
            let mut config = Vec::new();
            client
                .pull_blob(reference, &manifest.config, &mut config)
                .await
                .map_err(|error| registry_error(classify(error, reference, &auth)))?;
            let config: oci_spec::image::ImageConfiguration = serde_json::from_slice(&config)
                .map_err(|err| {
                    platform_error(format!("its config is not an OCI image config: {err}"))
                })?;
            vec![Platform {
                os: config.os().to_string(),
                architecture: config.architecture().to_string(),
                variant: config.variant().clone(),
            }]
        }
    };
    if platforms.is_empty() {
        return Err(platform_error("its manifest names no platform".to_string()));
    }
    let image = image.pinned(&digest).map_err(|error| PinError::Image {
        image: image.to_string(),
        error,
    })?;
    Ok(PinnedImage { image, platforms })
}

impl DriverConfig {
    /// Pins the supervisor image when `--pin-supervisor-digest` asks for it;
    /// returns the pinned image, or `None` when pinning is off.
    pub async fn pin(
        &mut self,
        options: &RegistryOptions,
    ) -> Result<Option<PinnedImage>, PinError> {
        if !self.pin_supervisor_digest.value {
            return Ok(None);
        }
        let pinned = pin_image(&self.supervisor_image.value, options).await?;
        self.use_pinned_image(pinned.image.clone(), pinned.platforms.clone());
        Ok(Some(pinned))
    }
}
