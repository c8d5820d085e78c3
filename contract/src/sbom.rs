//! The SBOM attached to each platform manifest of the supervisor image, as
//! an OCI 1.1 referrer: an artifact manifest whose `subject` is the
//! platform manifest, whose config is the empty descriptor, and whose one
//! layer is the SBOM document.

/// `artifactType` (and layer media type) of an SPDX 2.x JSON SBOM.
pub const SPDX_JSON_ARTIFACT_TYPE: &str = "application/spdx+json";

/// `artifactType` (and layer media type) of a CycloneDX JSON SBOM.
pub const CYCLONEDX_JSON_ARTIFACT_TYPE: &str = "application/vnd.cyclonedx+json";

/// The artifact types `build-image verify` recognises as an SBOM.
pub const SBOM_ARTIFACT_TYPES: [&str; 2] = [SPDX_JSON_ARTIFACT_TYPE, CYCLONEDX_JSON_ARTIFACT_TYPE];

/// File name of the SBOM build-image writes (the layer's
/// `org.opencontainers.image.title`, the name `oras pull` saves it under).
pub const SPDX_FILE_NAME: &str = "openshell-sandbox.spdx.json";

/// The Cargo package whose dependencies the SBOM lists.
pub const SUPERVISOR_PACKAGE: &str = "openshell-sandbox";
