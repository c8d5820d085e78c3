//! `--supervisor-public-key`: the pinned supervisor image must be signed.
//!
//! After `--pin-supervisor-digest` resolved the tag, the image at that
//! digest is checked with the key before any pod is rendered: every
//! manifest signed over its own digest for the image's repository, and a
//! SLSA provenance naming them all (openshell-signing's `oci_check`, the
//! same check as `build-image verify --key`). A key without pinning checks
//! nothing (a tag is resolved again by each node) and is warned about in
//! the configuration's warnings.

use std::path::PathBuf;

use openshell_contract::signing::FLAG_SUPERVISOR_PUBLIC_KEY;
use openshell_registry::RegistryOptions;
use openshell_signing::oci_check::{self, SignatureReport};
use openshell_transport::{ImageReference, ReadLimits, TransportOptions, open_source};

use crate::config::DriverConfig;

/// Why the supervisor image's signature did not check.
#[derive(Debug, thiserror::Error)]
pub enum SignedError {
    /// The key could not be read.
    #[error("--{FLAG_SUPERVISOR_PUBLIC_KEY}: {0}")]
    Key(#[from] oci_check::PublicKeyFileError),
    /// The image could not be read.
    #[error("could not read the signatures of the supervisor image {image}: {error}")]
    Read {
        /// The pinned image.
        image: String,
        /// Why.
        error: String,
    },
    /// The signatures did not verify.
    #[error("the supervisor image {image} is not signed by the key {key_id}:\n  {}", .failures.join("\n  "))]
    NotSigned {
        /// The pinned image.
        image: String,
        /// The key's id.
        key_id: String,
        /// Each failure, naming what failed.
        failures: Vec<String>,
    },
}

/// Checks the pinned supervisor image's signatures when a key is set;
/// `Ok(None)` when none is.
pub fn check(
    config: &DriverConfig,
    options: &RegistryOptions,
) -> Result<Option<SignatureReport>, SignedError> {
    let Some(key_file) = &config.supervisor_public_key else {
        return Ok(None);
    };
    if !config.pin_supervisor_digest.value {
        return Ok(None);
    }
    let key = oci_check::read_public_key(&PathBuf::from(&key_file.value))?;
    let image = config.supervisor_image.value.to_string();
    let read = |error: String| SignedError::Read {
        image: image.clone(),
        error,
    };
    let reference: ImageReference = format!("docker://{image}")
        .parse()
        .map_err(|err: openshell_transport::TransportError| read(err.to_string()))?;
    let identity = match &reference {
        ImageReference::Registry { reference, .. } => Some(format!(
            "{}/{}",
            reference.registry(),
            reference.repository()
        )),
        _ => None,
    };
    let transport = TransportOptions {
        registry: options.clone(),
        limits: ReadLimits::default(),
    };
    let mut source = open_source(&reference, &transport).map_err(|err| read(err.to_string()))?;
    let report = oci_check::check(
        source.as_mut(),
        &key,
        identity.as_deref(),
        &transport.limits,
    )
    .map_err(|err| read(err.to_string()))?;
    if !report.ok {
        return Err(SignedError::NotSigned {
            image,
            key_id: report.key_id.clone(),
            failures: report.failures.clone(),
        });
    }
    Ok(Some(report))
}

/// One line naming the signer and the provenance, for the start-up log and
/// `explain`.
pub fn summary(report: &SignatureReport) -> String {
    format!(
        "the supervisor image is signed by the key {}; {}",
        report.key_id,
        report
            .provenance
            .as_ref()
            .and_then(|found| found.proved.as_deref())
            .unwrap_or("no provenance")
    )
}
