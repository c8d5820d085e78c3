//! Pinning the supervisor image to the digest its tag points at now.
//!
//! A tag can be re-pointed at any time (a broken `supervisor:latest` once
//! broke every new sandbox within the hour); a digest cannot. Resolving it
//! once, at start, makes every pod the driver renders run the same
//! supervisor, and an unreachable registry or unknown tag stops the driver
//! before the first sandbox instead of failing them one by one. The same
//! manifest tells which platforms the image has, to check against the
//! cluster's nodes.
//!
//! The pinned image is then verified as `build-image verify` verifies it
//! (the openshell-verify crate): every platform must leave one static
//! supervisor at the image-volume mount, with the contract's entrypoint.
//! An image that would not start a sandbox (a stray tag, a Dockerfile
//! build with the binary elsewhere, a dynamic binary) stops the driver at
//! start rather than every sandbox after it.

use openshell_registry::{RegistryError, RegistryOptions};
use openshell_transport::{ImageReference, ReadLimits, TransportError, TransportOptions};
use openshell_verify::verify::{NothingKnown, VerifyOptions, VerifyReport};

use crate::config::DriverConfig;
use crate::image::{ImageError, SupervisorImage};
use crate::image_platforms::{ImagePlatformsError, read_platforms};
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
    /// The image's manifest or config could not be read (malformed, over a
    /// limit, not the bytes its digest names).
    #[error("could not pin the supervisor image {image} to a digest: {error}")]
    Read {
        /// The image being pinned.
        image: String,
        /// What is wrong, naming the document.
        error: TransportError,
    },
    /// The digest could not be added to the reference.
    #[error("could not pin the supervisor image {image} to a digest: {error}")]
    Image {
        /// The image being pinned.
        image: String,
        /// What is wrong.
        error: ImageError,
    },
    /// The image was read but would not work as the supervisor: the
    /// verification's failed checks.
    #[error(
        "the supervisor image {image} would not start sandboxes (as `build-image verify docker://{image}` reports):\n  {}",
        failures.join("\n  ")
    )]
    Unusable {
        /// The image, pinned.
        image: String,
        /// Each failed check, `name: what was found and what was expected`.
        failures: Vec<String>,
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

/// A pinned image, the platforms its manifest lists, and its verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedImage {
    /// The image, `REPO@sha256:...` (a reference the operator already
    /// pinned is kept as written).
    pub image: SupervisorImage,
    /// Its platforms.
    pub platforms: Vec<Platform>,
    /// What `build-image verify` finds in it, every check passed or
    /// skipped.
    pub verification: VerifyReport,
}

/// `image` pinned to the manifest digest its tag resolves to now (for a
/// multi-platform image, the index digest), with the platforms it lists,
/// verified. An image already pinned is checked against the registry: a
/// digest the registry does not have is an error too, and so is an image
/// that fails verification ([`PinError::Unusable`]).
///
/// The image is read as `build-image verify docker://...` reads it: through
/// the transport crate's registry source, so every request has the
/// registry client's operation deadline, read timeout, bounded retries and
/// bounded reads (`--registry-*` flags, `OPENSHELL_REGISTRY_*`). The reads
/// block, so they run on a blocking thread, off the caller's runtime.
pub async fn pin_image(
    image: &SupervisorImage,
    options: &RegistryOptions,
) -> Result<PinnedImage, PinError> {
    let owned = image.clone();
    let options = options.clone();
    let joined = tokio::task::spawn_blocking(move || pin_blocking(&owned, &options)).await;
    match joined {
        Ok(pinned) => pinned.map_err(|error| *error),
        Err(error) => match error.try_into_panic() {
            // The blocking task panicked: carry the panic on, as a direct
            // call would have.
            Ok(panic) => std::panic::resume_unwind(panic),
            // Cancelled: only when the runtime shuts down under it.
            Err(error) => Err(PinError::Read {
                image: image.to_string(),
                error: TransportError::Missing(format!("the registry lookup did not run: {error}")),
            }),
        },
    }
}

/// [`pin_image`], blocking; the error boxed, as it is large.
fn pin_blocking(
    image: &SupervisorImage,
    options: &RegistryOptions,
) -> Result<PinnedImage, Box<PinError>> {
    let read_error = |error: TransportError| {
        Box::new(match error {
            TransportError::Registry(error) => PinError::Registry {
                image: image.to_string(),
                error: *error,
            },
            error => PinError::Read {
                image: image.to_string(),
                error,
            },
        })
    };
    let reference = image.reference();
    let source = ImageReference::Registry {
        text: image.to_string(),
        reference: reference.clone(),
        explicit_tag: reference.tag().is_some(),
    };
    let transport = TransportOptions {
        registry: options.clone(),
        limits: ReadLimits::default(),
    };
    let mut source = openshell_transport::open_source(&source, &transport).map_err(read_error)?;
    let read = read_platforms(source.as_mut(), &transport.limits).map_err(|error| match error {
        ImagePlatformsError::Read(error) => read_error(error),
        other => Box::new(PinError::Platform {
            image: image.to_string(),
            reason: other.to_string(),
        }),
    })?;
    let image = image.pinned(&read.digest).map_err(|error| {
        Box::new(PinError::Image {
            image: image.to_string(),
            error,
        })
    })?;
    let verification = verify_pinned(&image, &transport).map_err(read_error)?;
    if !verification.ok {
        let mut failures = verification.failures();
        failures.extend(verification.notes.iter().cloned());
        return Err(Box::new(PinError::Unusable {
            image: image.to_string(),
            failures,
        }));
    }
    Ok(PinnedImage {
        image,
        platforms: read.platforms,
        verification,
    })
}

/// Verifies `image`, read again from the registry by its digest (what was
/// pinned is what is verified, wherever the tag has moved since), with the
/// same bounds as the lookup. The layers are read and applied as the
/// runtimes extract them; nothing is run.
fn verify_pinned(
    image: &SupervisorImage,
    transport: &TransportOptions,
) -> Result<VerifyReport, TransportError> {
    let source = ImageReference::Registry {
        text: image.to_string(),
        reference: image.reference().clone(),
        explicit_tag: false,
    };
    let mut source = openshell_transport::open_source(&source, transport)?;
    let options = VerifyOptions {
        limits: transport.limits,
        ..VerifyOptions::default()
    };
    openshell_verify::verify::verify(source.as_mut(), &NothingKnown, &options)
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
