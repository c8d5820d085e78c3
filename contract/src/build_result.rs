//! What `build-image` reports about the image it built, as JSON.
//!
//! `build-image --json` prints it and `--metadata-file FILE` writes it; the
//! driver reads the same file to use a freshly built image pinned by digest,
//! so nobody copies digests by hand.

use serde::{Deserialize, Serialize};

/// The outcome of one `build-image` run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildResult {
    /// Digest (`sha256:...`) of the top-level manifest: the image manifest,
    /// or the image index for a multi-platform build.
    pub digest: String,
    /// Media type of that top-level manifest.
    pub media_type: String,
    /// Size in bytes of that top-level manifest.
    pub size: u64,
    /// Per-platform images, in the order they were built.
    pub platforms: Vec<PlatformImage>,
    /// The OCI image layout written, if any.
    pub layout: Option<LayoutOutput>,
    /// The docker-archive tarball written, if any.
    pub docker_archive: Option<String>,
    /// Digest-pinned references (`REPO@sha256:...`, digest only: CRI-O
    /// 1.31.0 refuses `REPO:TAG@sha256:...`) of the registries the image
    /// was pushed to.
    pub pushed: Vec<String>,
    /// Tags the image was given where its destination named none.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Every reference written, in transport form (`oci:DIR:TAG`,
    /// `docker-archive:FILE:NAME:TAG`, `docker://HOST/REPO:TAG`).
    #[serde(default)]
    pub references: Vec<String>,
}

/// One platform's image inside a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformImage {
    /// `os/architecture[/variant]`, e.g. `linux/amd64`.
    pub platform: String,
    /// Digest of this platform's image manifest.
    pub manifest_digest: String,
    /// Digest of the single layer (compressed).
    pub layer_digest: String,
    /// Size in bytes of the compressed layer.
    pub layer_size: u64,
    /// sha256 (hex, no prefix) of the supervisor binary in the layer.
    pub binary_sha256: String,
    /// Size in bytes of the supervisor binary.
    pub binary_size: u64,
    /// Rust target the binary was built for, when build-image built it
    /// (none for a `--binary` given to it).
    #[serde(default)]
    pub target: Option<String>,
    /// C library the binary was built against, when build-image built it:
    /// `musl`, or `gnu` after the loud fallback to glibc with `+crt-static`.
    #[serde(default)]
    pub libc: Option<crate::version::Libc>,
    /// Digest of the SBOM attached to this platform's manifest: the OCI 1.1
    /// referrer manifest whose `subject` is `manifest_digest`, as
    /// `oras discover` or the registry's referrers API list it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom_manifest_digest: Option<String>,
}

/// An OCI image layout on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutOutput {
    /// Folder of the layout.
    pub path: String,
    /// Tag (`org.opencontainers.image.ref.name`) the image carries there.
    pub tag: String,
}
