//! Signing the built image, as cosign does, into OCI 1.1 referrers that
//! every destination already carries (layouts list them in `index.json`,
//! registries through the referrers API or the tag-schema index):
//!
//! - for the index and each platform manifest, cosign's simple-signing
//!   signature (`application/vnd.dev.cosign.artifact.sig.v1+json`, the
//!   payload layer with its `dev.cosignproject.cosign/signature`
//!   annotation: what `cosign sign --registry-referrers-mode=oci-1-1`
//!   writes);
//! - for the same manifests, a Sigstore bundle v0.3 holding a DSSE
//!   envelope of cosign v3's sign statement (`https://sigstore.dev/cosign/sign/v1`),
//!   as `cosign sign` with the new bundle format writes it;
//! - on the top manifest, a Sigstore bundle v0.3 with the SLSA provenance
//!   v1 statement, whose subjects are the index and every platform manifest.
//!
//! Everything is made from the key and the image alone, with RFC 6979
//! signatures and SOURCE_DATE_EPOCH's time: the same key and inputs give
//! the same bytes.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use oci_spec::image::{Descriptor, ImageManifestBuilder, MediaType, SCHEMA_VERSION};
use openshell_contract::annotations::oci;
use openshell_contract::signing::{
    BUNDLE_CONTENT_ANNOTATION, BUNDLE_PREDICATE_TYPE_ANNOTATION, COSIGN_SIG_ARTIFACT_TYPE,
    COSIGN_SIGN_PREDICATE_TYPE, COSIGN_SIGNATURE_ANNOTATION, COSIGN_SIMPLE_SIGNING_MEDIA_TYPE,
    SIGSTORE_BUNDLE_V03_MEDIA_TYPE, SLSA_BUILD_TYPE, SLSA_BUILDER_ID,
};
use openshell_contract::signing::{
    COSIGN_ATT_TAG_SUFFIX, COSIGN_PREDICATE_TYPE_ANNOTATION, COSIGN_SIG_TAG_SUFFIX,
    DSSE_ENVELOPE_MEDIA_TYPE, cosign_tag,
};
use openshell_signing::dsse::{self, Envelope, IN_TOTO_PAYLOAD_TYPE};
use openshell_signing::intoto::{
    BuildDefinition, BuildMetadata, Builder, Provenance, ResourceDescriptor, RunDetails,
    SLSA_PROVENANCE_V1, STATEMENT_TYPE, Statement,
};
use openshell_signing::{PrivateKey, simple_signing};

use crate::image::EMPTY_JSON;
use crate::image::{self, Blob, BlobData, BuiltImage, ImageError, Referrer};
use openshell_contract::digest::sha256_digest;
use openshell_supply_chain::metadata::ImageMetadata;

/// What the provenance records beyond the image itself.
#[derive(Debug, Clone, Default)]
pub struct ProvenanceInputs {
    /// The build's arguments (never a secret: passphrases are not flags).
    pub invocation: Vec<String>,
    /// The workspace, whose Cargo.lock's crates are listed as materials.
    pub workspace: Option<std::path::PathBuf>,
}

pub use openshell_signing::bundle::{Bundle, PublicKeyHint, VerificationMaterial};

fn bundle_bytes(key: &PrivateKey, envelope: Envelope) -> Vec<u8> {
    let bundle = Bundle {
        media_type: SIGSTORE_BUNDLE_V03_MEDIA_TYPE.to_string(),
        verification_material: VerificationMaterial {
            public_key: PublicKeyHint {
                hint: key.public_key().key_id(),
            },
            tlog_entries: Vec::new(),
        },
        dsse_envelope: envelope,
    };
    // Strings, lists and maps of strings always serialise.
    serde_json::to_vec(&bundle).unwrap_or_default()
}

fn spec(what: &'static str) -> impl FnOnce(oci_spec::OciSpecError) -> ImageError {
    move |source| ImageError::Spec { what, source }
}

/// One referrer's content: a single layer, and a config holding `{}`.
struct ReferrerSpec<'a> {
    what: &'static str,
    artifact_type: &'a str,
    config_type: MediaType,
    layer_type: &'a str,
    layer_bytes: Vec<u8>,
    layer_annotations: HashMap<String, String>,
    annotations: HashMap<String, String>,
}

/// The referrer of `subject` that `spec` describes.
fn referrer(subject: &Blob, spec_: ReferrerSpec<'_>) -> Result<Referrer, ImageError> {
    let ReferrerSpec {
        what,
        artifact_type,
        config_type,
        layer_type,
        layer_bytes,
        layer_annotations,
        annotations,
    } = spec_;
    let empty_digest = sha256_digest(EMPTY_JSON);
    let config = image::descriptor(config_type.clone(), &empty_digest, EMPTY_JSON.len() as u64)?;
    let config_blob = Blob::in_memory(config.clone(), Arc::new(EMPTY_JSON.to_vec()));
    let mut layer = image::descriptor(
        MediaType::Other(layer_type.to_string()),
        &sha256_digest(&layer_bytes),
        layer_bytes.len() as u64,
    )?;
    if !layer_annotations.is_empty() {
        layer.set_annotations(Some(layer_annotations));
    }
    let layer_blob = Blob::in_memory(layer.clone(), Arc::new(layer_bytes));
    let subject_descriptor = Descriptor::new(
        subject.descriptor.media_type().clone(),
        subject.descriptor.size(),
        subject.descriptor.digest().clone(),
    );
    let artifact = MediaType::Other(artifact_type.to_string());
    let manifest = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .artifact_type(artifact.clone())
        .config(config)
        .layers(vec![layer])
        .subject(subject_descriptor)
        .annotations(annotations.clone())
        .build()
        .map_err(spec(what))?;
    let bytes = image::canonical_json(&manifest).map_err(|err| ImageError::Spec {
        what,
        source: oci_spec::OciSpecError::SerDe(err),
    })?;
    let mut descriptor = image::descriptor(
        MediaType::ImageManifest,
        &sha256_digest(&bytes),
        bytes.len() as u64,
    )?;
    // Listed with its type and annotations, as the referrers API lists it.
    descriptor.set_artifact_type(Some(artifact));
    descriptor.set_annotations(Some(annotations));
    Ok(Referrer {
        subject: subject.digest(),
        manifest: Blob {
            descriptor,
            data: BlobData::Memory(Arc::new(bytes)),
        },
        blobs: vec![config_blob, layer_blob],
    })
}

/// A manifest a registry keeps under a tag of its own (cosign v2's `.sig`
/// and `.att`), with the blobs it needs.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// `sha256-<hex>.sig` or `.att`.
    pub tag: String,
    /// The manifest.
    pub manifest: Blob,
    /// Its config and layers.
    pub blobs: Vec<Blob>,
}

/// A cosign v2 "signatures image": an OCI image manifest whose one layer
/// is `layer_bytes` of `layer_type` with `layer_annotations`, and whose
/// config lists that layer, as cosign's `static` layers build it.
pub(crate) fn attachment(
    what: &'static str,
    tag: String,
    layer_type: &str,
    layer_bytes: Vec<u8>,
    layer_annotations: HashMap<String, String>,
) -> Result<Attachment, ImageError> {
    let layer_digest = sha256_digest(&layer_bytes);
    let config_json = serde_json::json!({
        "architecture": "",
        "os": "",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    let config_bytes = image::canonical_json(&config_json).map_err(|err| ImageError::Spec {
        what,
        source: oci_spec::OciSpecError::SerDe(err),
    })?;
    let config = image::descriptor(
        MediaType::ImageConfig,
        &sha256_digest(&config_bytes),
        config_bytes.len() as u64,
    )?;
    let mut layer = image::descriptor(
        MediaType::Other(layer_type.to_string()),
        &layer_digest,
        layer_bytes.len() as u64,
    )?;
    layer.set_annotations(Some(layer_annotations));
    let manifest = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .config(config.clone())
        .layers(vec![layer.clone()])
        .build()
        .map_err(spec(what))?;
    let bytes = image::canonical_json(&manifest).map_err(|err| ImageError::Spec {
        what,
        source: oci_spec::OciSpecError::SerDe(err),
    })?;
    let descriptor = image::descriptor(
        MediaType::ImageManifest,
        &sha256_digest(&bytes),
        bytes.len() as u64,
    )?;
    Ok(Attachment {
        tag,
        manifest: Blob {
            descriptor,
            data: BlobData::Memory(Arc::new(bytes)),
        },
        blobs: vec![
            Blob::in_memory(config, Arc::new(config_bytes)),
            Blob::in_memory(layer, Arc::new(layer_bytes)),
        ],
    })
}

/// The two signatures of one manifest: cosign's simple signing, and the
/// Sigstore bundle of cosign v3's sign statement.
fn sign_manifest(
    key: &PrivateKey,
    identity: &str,
    subject: &Blob,
    created: &str,
) -> Result<(Vec<Referrer>, Attachment), ImageError> {
    let digest = subject.digest();
    let signed = simple_signing::sign(key, identity, &digest);
    let sig_tag = attachment(
        "cosign signature manifest",
        cosign_tag(&digest, COSIGN_SIG_TAG_SUFFIX),
        COSIGN_SIMPLE_SIGNING_MEDIA_TYPE,
        signed.payload.clone(),
        HashMap::from([(
            COSIGN_SIGNATURE_ANNOTATION.to_string(),
            base64_encode(&signed.signature),
        )]),
    )?;
    let created_only = HashMap::from([(oci::CREATED.to_string(), created.to_string())]);
    let sig = referrer(
        subject,
        ReferrerSpec {
            what: "cosign signature referrer",
            artifact_type: COSIGN_SIG_ARTIFACT_TYPE,
            config_type: MediaType::Other(COSIGN_SIG_ARTIFACT_TYPE.to_string()),
            layer_type: COSIGN_SIMPLE_SIGNING_MEDIA_TYPE,
            layer_bytes: signed.payload,
            layer_annotations: HashMap::from([(
                COSIGN_SIGNATURE_ANNOTATION.to_string(),
                base64_encode(&signed.signature),
            )]),
            annotations: created_only,
        },
    )?;
    let statement = Statement {
        kind: STATEMENT_TYPE.to_string(),
        subject: vec![ResourceDescriptor::from_digest("", &digest)],
        predicate_type: COSIGN_SIGN_PREDICATE_TYPE.to_string(),
        predicate: serde_json::json!({}),
    };
    let payload = statement.to_bytes().map_err(|err| ImageError::Spec {
        what: "cosign sign statement",
        source: oci_spec::OciSpecError::SerDe(err),
    })?;
    let envelope = dsse::sign(key, IN_TOTO_PAYLOAD_TYPE, &payload);
    let bundle = referrer(
        subject,
        ReferrerSpec {
            what: "Sigstore bundle referrer",
            artifact_type: SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
            config_type: MediaType::EmptyJSON,
            layer_type: SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
            layer_bytes: bundle_bytes(key, envelope),
            layer_annotations: HashMap::new(),
            annotations: bundle_annotations(created, COSIGN_SIGN_PREDICATE_TYPE),
        },
    )?;
    Ok((vec![sig, bundle], sig_tag))
}

fn bundle_annotations(created: &str, predicate_type: &str) -> HashMap<String, String> {
    HashMap::from([
        (oci::CREATED.to_string(), created.to_string()),
        (
            BUNDLE_CONTENT_ANNOTATION.to_string(),
            "dsse-envelope".to_string(),
        ),
        (
            BUNDLE_PREDICATE_TYPE_ANNOTATION.to_string(),
            predicate_type.to_string(),
        ),
    ])
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The SLSA provenance v1 statement of `built`: subjects the index and
/// every platform manifest; materials the git revision, the Cargo.lock
/// digest and its crates, each platform's rustc and binary; the invocation.
pub fn provenance_statement(
    built: &BuiltImage,
    metadata: &ImageMetadata,
    inputs: &ProvenanceInputs,
) -> Statement<Provenance> {
    let mut subject = Vec::new();
    if let Some(index) = &built.index {
        subject.push(ResourceDescriptor::from_digest(
            &metadata.title,
            &index.digest(),
        ));
    }
    for platform in &built.platforms {
        subject.push(ResourceDescriptor::from_digest(
            &platform.platform.to_string(),
            &platform.manifest.digest(),
        ));
    }
    let mut materials = Vec::new();
    if let Some(revision) = &metadata.revision {
        materials.push(ResourceDescriptor {
            name: "source".into(),
            uri: format!("git+{}@{revision}", metadata.source),
            digest: BTreeMap::from([("gitCommit".to_string(), revision.clone())]),
        });
    }
    if let Some(lock) = &metadata.cargo_lock_sha256 {
        materials.push(ResourceDescriptor {
            name: "Cargo.lock".into(),
            uri: String::new(),
            digest: BTreeMap::from([("sha256".to_string(), lock.clone())]),
        });
    }
    let mut versions = BTreeMap::new();
    for platform in &built.platforms {
        if let Some(rustc) = &platform.provenance.rustc_version {
            versions.insert(format!("rustc ({})", platform.platform), rustc.clone());
        }
        materials.push(ResourceDescriptor {
            name: format!("openshell-sandbox ({})", platform.platform),
            uri: String::new(),
            digest: BTreeMap::from([("sha256".to_string(), platform.binary.sha256.clone())]),
        });
    }
    if let Some(workspace) = &inputs.workspace {
        materials.extend(crates_of(workspace));
    }
    let time = metadata.epoch.rfc3339();
    Statement {
        kind: STATEMENT_TYPE.to_string(),
        subject,
        predicate_type: SLSA_PROVENANCE_V1.to_string(),
        predicate: Provenance {
            build_definition: BuildDefinition {
                build_type: SLSA_BUILD_TYPE.to_string(),
                external_parameters: serde_json::json!({ "arguments": inputs.invocation }),
                internal_parameters: serde_json::json!({ "SOURCE_DATE_EPOCH": metadata.epoch.seconds() }),
                resolved_dependencies: materials,
            },
            run_details: RunDetails {
                builder: Builder {
                    id: SLSA_BUILDER_ID.to_string(),
                    version: {
                        let mut version = versions;
                        version.insert("build-image".into(), env!("CARGO_PKG_VERSION").into());
                        version
                    },
                },
                metadata: BuildMetadata {
                    invocation_id: String::new(),
                    started_on: time.clone(),
                    finished_on: time,
                },
            },
        },
    }
}

/// Every registry crate of the workspace's Cargo.lock, sorted, as
/// `pkg:cargo/NAME@VERSION` with its checksum.
fn crates_of(workspace: &Path) -> Vec<ResourceDescriptor> {
    let Ok(text) = std::fs::read_to_string(workspace.join("Cargo.lock")) else {
        return Vec::new();
    };
    let mut crates: Vec<ResourceDescriptor> = openshell_supply_chain::crates::lock_checksums(&text)
        .into_iter()
        .filter_map(|((name, version), sums)| {
            let (_, sha256) = sums.into_iter().next()?;
            Some(ResourceDescriptor {
                name: String::new(),
                uri: format!("pkg:cargo/{name}@{version}"),
                digest: BTreeMap::from([("sha256".to_string(), sha256)]),
            })
        })
        .collect();
    crates.sort_by(|a, b| a.uri.cmp(&b.uri));
    crates
}

/// What [`sign_image`] attaches.
#[derive(Debug, Clone, Default)]
pub struct Signatures {
    /// OCI 1.1 referrers: cosign's signatures, Sigstore bundles, the
    /// provenance.
    pub referrers: Vec<Referrer>,
    /// cosign v2's `.sig` and `.att` tagged manifests (registries only).
    pub attachments: Vec<Attachment>,
}

/// Signs `built` with `key`, claiming `identity` (the repository, as
/// cosign's `docker-reference`), and returns the signatures and provenance
/// to attach.
pub fn sign_image(
    built: &BuiltImage,
    key: &PrivateKey,
    identity: &str,
    metadata: &ImageMetadata,
    inputs: &ProvenanceInputs,
) -> Result<Signatures, ImageError> {
    let created = metadata.epoch.rfc3339();
    let mut referrers = Vec::new();
    let mut attachments = Vec::new();
    let mut subjects: Vec<&Blob> = Vec::new();
    if let Some(index) = &built.index {
        subjects.push(index);
    }
    subjects.extend(built.platforms.iter().map(|platform| &platform.manifest));
    for subject in &subjects {
        let (signed, sig_tag) = sign_manifest(key, identity, subject, &created)?;
        referrers.extend(signed);
        attachments.push(sig_tag);
    }
    let statement = provenance_statement(built, metadata, inputs);
    let envelope = openshell_signing::intoto::sign_provenance(key, &statement).map_err(|err| {
        ImageError::Spec {
            what: "SLSA provenance statement",
            source: oci_spec::OciSpecError::SerDe(err),
        }
    })?;
    // cosign v2's `.att` on every signed manifest: verify-attestation looks
    // on the digest it is given, the index or a platform's.
    let envelope_bytes = envelope.to_bytes();
    for subject in &subjects {
        attachments.push(attachment(
            "cosign attestation manifest",
            cosign_tag(&subject.digest(), COSIGN_ATT_TAG_SUFFIX),
            DSSE_ENVELOPE_MEDIA_TYPE,
            envelope_bytes.clone(),
            HashMap::from([(
                COSIGN_PREDICATE_TYPE_ANNOTATION.to_string(),
                SLSA_PROVENANCE_V1.to_string(),
            )]),
        )?);
    }
    referrers.push(referrer(
        &built.top,
        ReferrerSpec {
            what: "SLSA provenance referrer",
            artifact_type: SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
            config_type: MediaType::EmptyJSON,
            layer_type: SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
            layer_bytes: bundle_bytes(key, envelope),
            layer_annotations: HashMap::new(),
            annotations: bundle_annotations(&created, SLSA_PROVENANCE_V1),
        },
    )?);
    Ok(Signatures {
        referrers,
        attachments,
    })
}

/// What a signed build needs: the key, the identity it claims, and the
/// provenance's inputs.
#[derive(Debug, Clone)]
pub struct SignSettings {
    /// The private key.
    pub key: PrivateKey,
    /// The repository the signatures claim (cosign's `docker-reference`).
    pub identity: String,
    /// The provenance's inputs.
    pub provenance: ProvenanceInputs,
}

/// The signing key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SignKeyError {
    /// The key file could not be read.
    #[error("could not read the signing key {}: {source}", .file.display())]
    Read {
        /// The file.
        file: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key file is larger than any key.
    #[error("the signing key {} is {size} bytes: not a key (a cosign key is under 1 KiB)", .file.display())]
    TooLarge {
        /// The file.
        file: std::path::PathBuf,
        /// Its size.
        size: u64,
    },
    /// The passphrase could not be read.
    #[error(transparent)]
    Passphrase(#[from] crate::passphrase::PassphraseError),
    /// The key is not a usable P-256 private key.
    #[error(transparent)]
    Key(#[from] openshell_signing::KeyError),
}

/// Largest key file read.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// Reads the private key in `file`, asking for a passphrase (from
/// `sources`) only when the key is encrypted.
pub fn load_key(
    file: &Path,
    sources: &crate::passphrase::PassphraseSources,
) -> Result<PrivateKey, SignKeyError> {
    use std::io::Read as _;
    let wrap = |source| SignKeyError::Read {
        file: file.to_path_buf(),
        source,
    };
    let opened = std::fs::File::open(file).map_err(wrap)?;
    let size = opened.metadata().map_err(wrap)?.len();
    if size > MAX_KEY_FILE {
        return Err(SignKeyError::TooLarge {
            file: file.to_path_buf(),
            size,
        });
    }
    let mut text = zeroize::Zeroizing::new(Vec::new());
    opened
        .take(MAX_KEY_FILE)
        .read_to_end(&mut text)
        .map_err(wrap)?;
    let passphrase = if PrivateKey::needs_passphrase(&text) {
        crate::passphrase::read(sources, &format!("passphrase for {}: ", file.display()))?
    } else {
        zeroize::Zeroizing::new(Vec::new())
    };
    let (key, _) = PrivateKey::from_pem(&text, &passphrase, &file.display().to_string())?;
    Ok(key)
}
