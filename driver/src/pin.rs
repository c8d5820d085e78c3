//! Pinning the supervisor image to the digest its tag points at now.
//!
//! A tag can be re-pointed at any time (a broken `supervisor:latest` once
//! broke every new sandbox within the hour); a digest cannot. Resolving it
//! once, at start, makes every pod the driver renders run the same
//! supervisor, and an unreachable registry or unknown tag stops the driver
//! before the first sandbox instead of failing them one by one.

use openshell_registry::{RegistryError, RegistryOptions, resolve_digest};

use crate::config::DriverConfig;
use crate::image::{ImageError, SupervisorImage};

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
}

/// `image` pinned to the manifest digest its tag resolves to now (for a
/// multi-platform image, the index digest). An image already pinned is
/// checked against the registry: a digest the registry does not have is an
/// error too.
pub async fn pin_image(
    image: &SupervisorImage,
    options: &RegistryOptions,
) -> Result<SupervisorImage, PinError> {
    let digest = resolve_digest(image.reference(), options)
        .await
        .map_err(|error| PinError::Registry {
            image: image.to_string(),
            error,
        })?;
    image.pinned(&digest).map_err(|error| PinError::Image {
        image: image.to_string(),
        error,
    })
}

impl DriverConfig {
    /// Pins the supervisor image when `--pin-supervisor-digest` asks for it;
    /// returns the pinned reference, or `None` when pinning is off.
    pub async fn pin(
        &mut self,
        options: &RegistryOptions,
    ) -> Result<Option<SupervisorImage>, PinError> {
        if !self.pin_supervisor_digest.value {
            return Ok(None);
        }
        let pinned = pin_image(&self.supervisor_image.value, options).await?;
        self.use_pinned_image(pinned.clone());
        Ok(Some(pinned))
    }
}
