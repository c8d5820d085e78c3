//! Signing: the names cosign and the tools that read its signatures fix,
//! and build-image's own flags around them.

/// cosign's environment variable for a key's passphrase (read by
/// `build-image keygen` and `build-image --sign-key` as by cosign).
pub const ENV_COSIGN_PASSWORD: &str = "COSIGN_PASSWORD";

/// Flag naming the private key a build signs with.
pub const FLAG_SIGN_KEY: &str = "--sign-key";

/// Flag naming a file whose first line is the key's passphrase.
pub const FLAG_SIGN_KEY_PASSPHRASE_FILE: &str = "--sign-key-passphrase-file";

/// Suffix of the private key `keygen PREFIX` writes (as cosign's
/// `generate-key-pair`: `cosign.key`).
pub const PRIVATE_KEY_SUFFIX: &str = ".key";

/// Suffix of the public key `keygen PREFIX` writes (`cosign.pub`).
pub const PUBLIC_KEY_SUFFIX: &str = ".pub";

/// `artifactType` (and config media type) of cosign's simple-signing
/// signature stored as an OCI 1.1 referrer (cosign's
/// `ArtifactType("sig")`, written by `--registry-referrers-mode=oci-1-1`).
pub const COSIGN_SIG_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

/// Media type of the layer holding cosign's simple-signing payload.
pub const COSIGN_SIMPLE_SIGNING_MEDIA_TYPE: &str =
    "application/vnd.dev.cosign.simplesigning.v1+json";

/// Layer annotation carrying the base64 signature over that payload.
pub const COSIGN_SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// Media type of a Sigstore bundle v0.3: the `artifactType` and layer of
/// the referrers cosign v3 writes and reads.
pub const SIGSTORE_BUNDLE_V03_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// Annotation of a bundle referrer: what the bundle carries.
pub const BUNDLE_CONTENT_ANNOTATION: &str = "dev.sigstore.bundle.content";

/// Annotation of a bundle referrer: the in-toto predicate type inside.
pub const BUNDLE_PREDICATE_TYPE_ANNOTATION: &str = "dev.sigstore.bundle.predicateType";

/// Predicate type of cosign v3's image signature statement.
pub const COSIGN_SIGN_PREDICATE_TYPE: &str = "https://sigstore.dev/cosign/sign/v1";

/// SLSA `buildType` of build-image's provenance.
pub const SLSA_BUILD_TYPE: &str = "https://github.com/NVIDIA/OpenShell/build-image/v1";

/// SLSA `builder.id` of build-image's provenance.
pub const SLSA_BUILDER_ID: &str = "https://github.com/NVIDIA/OpenShell/build-image";

/// Suffix of the tag cosign v2 keeps a manifest's signatures under:
/// `sha256-<hex>.sig` (also where Kyverno and containers/image look).
pub const COSIGN_SIG_TAG_SUFFIX: &str = ".sig";

/// Suffix of the tag cosign v2 keeps a manifest's attestations under.
pub const COSIGN_ATT_TAG_SUFFIX: &str = ".att";

/// Media type of a layer holding a DSSE envelope in a `.att` manifest.
pub const DSSE_ENVELOPE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";

/// Layer annotation of a `.att` manifest naming the predicate type.
pub const COSIGN_PREDICATE_TYPE_ANNOTATION: &str = "predicateType";

/// The tag cosign v2 stores `digest`'s signatures (`suffix` = `.sig`) or
/// attestations (`.att`) under: `sha256:HEX` becomes `sha256-HEX.sig`.
pub fn cosign_tag(digest: &str, suffix: &str) -> String {
    format!("{}{suffix}", digest.replacen(':', "-", 1))
}

/// The driver's flag naming the public key the supervisor image's
/// signature must verify with (with `--pin-supervisor-digest`).
pub const FLAG_SUPERVISOR_PUBLIC_KEY: &str = "supervisor-public-key";

/// Environment variable for [`FLAG_SUPERVISOR_PUBLIC_KEY`].
pub const ENV_SUPERVISOR_PUBLIC_KEY: &str = "OPENSHELL_SUPERVISOR_PUBLIC_KEY";
