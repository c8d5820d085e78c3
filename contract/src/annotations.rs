//! Annotation keys written into the supervisor image.

/// Project annotation holding the sha256 (hex, no prefix) of the binary in
/// the image, so an installed copy can be traced back to its image.
pub const BINARY_SHA256: &str = "dev.openshell.supervisor.binary.sha256";

/// Project annotation holding the rustc that compiled the binary, as the
/// binary records it in its `.comment` section
/// (`rustc 1.95.0 (59807616e 2026-04-14)`).
pub const RUSTC_VERSION: &str = "dev.openshell.supervisor.rustc.version";

/// Project annotation holding the sha256 (hex, no prefix) of the
/// workspace's `Cargo.lock` that the binary's dependencies (and its SBOM)
/// were resolved from.
pub const CARGO_LOCK_SHA256: &str = "dev.openshell.supervisor.cargo-lock.sha256";

/// Standard OCI annotations (`org.opencontainers.image.*`).
pub mod oci {
    /// Version of the packaged software.
    pub const VERSION: &str = "org.opencontainers.image.version";
    /// Source control revision of the packaged software.
    pub const REVISION: &str = "org.opencontainers.image.revision";
    /// URL of the source code.
    pub const SOURCE: &str = "org.opencontainers.image.source";
    /// Human-readable title of the image.
    pub const TITLE: &str = "org.opencontainers.image.title";
    /// Creation time (RFC 3339).
    pub const CREATED: &str = "org.opencontainers.image.created";
    /// Tag name in an OCI layout's index.json.
    pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
}
