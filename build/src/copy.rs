//! `build-image copy SOURCE DEST`: an image with every referrer it has
//! (SBOMs, signatures, attestations), between layouts, registries and
//! archives, every digest kept.
//!
//! `skopeo copy` leaves referrers behind, so a mirrored supervisor image
//! loses its evidence. Here the top manifest, its platform manifests, their
//! blobs and the referrers of each manifest (with their blobs) are read
//! through one [`ImageSource`], checked against their digests, and written
//! through the same destinations a build writes. For registries, cosign
//! v2's `.sig` and `.att` tags are made again from the signature and
//! provenance referrers (the same payloads and signatures, so they verify
//! the same), since only the tags carry them where cosign v2, Kyverno and
//! containers/image look.

use std::collections::HashMap;
use std::io::Read as _;
use std::sync::Arc;

use oci_spec::image::{Descriptor, ImageManifest};
use openshell_contract::signing::{
    BUNDLE_PREDICATE_TYPE_ANNOTATION, COSIGN_ATT_TAG_SUFFIX, COSIGN_PREDICATE_TYPE_ANNOTATION,
    COSIGN_SIG_ARTIFACT_TYPE, COSIGN_SIG_TAG_SUFFIX, COSIGN_SIGNATURE_ANNOTATION,
    COSIGN_SIMPLE_SIGNING_MEDIA_TYPE, DSSE_ENVELOPE_MEDIA_TYPE, SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
    cosign_tag,
};
use openshell_signing::intoto::SLSA_PROVENANCE_V1;
use openshell_transport::digest::check_bytes;
use openshell_transport::source::{ImageSource, load_manifest, plan};
use openshell_transport::{Attachment, Blob, ImageToWrite, ReadLimits, TransportError};

use crate::signatures::Bundle;

/// Largest blob copied, declared size checked before reading (the
/// supervisor's layer is some 15 MiB).
pub const MAX_BLOB_SIZE: u64 = 1024 * 1024 * 1024;

/// Why an image could not be copied.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// Reading or writing failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The image has a shape this copy does not carry.
    #[error("{0}")]
    Unsupported(String),
}

/// What was read for copying, and how much.
#[derive(Debug)]
pub struct ReadImage {
    /// The image, as destinations take it.
    pub image: ImageToWrite,
    /// How many referrers came along.
    pub referrers: usize,
}

fn read_blob(
    source: &mut dyn ImageSource,
    descriptor: &Descriptor,
    what: &str,
) -> Result<Blob, CopyError> {
    if descriptor.size() > MAX_BLOB_SIZE {
        return Err(CopyError::Unsupported(format!(
            "{what} {} declares {} bytes, over the {MAX_BLOB_SIZE}-byte limit of a copied blob",
            descriptor.digest(),
            descriptor.size()
        )));
    }
    let mut bytes = Vec::new();
    source
        .open_blob(descriptor)?
        .take(descriptor.size() + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| {
            TransportError::Missing(format!(
                "could not read {what} {}: {err}",
                descriptor.digest()
            ))
        })?;
    check_bytes(what, descriptor, &bytes)?;
    Ok(Blob::in_memory(descriptor.clone(), Arc::new(bytes)))
}

fn manifest_blobs(
    source: &mut dyn ImageSource,
    manifest: &ImageManifest,
    what: &str,
    into: &mut Vec<Blob>,
) -> Result<(), CopyError> {
    for descriptor in std::iter::once(manifest.config()).chain(manifest.layers()) {
        if into
            .iter()
            .any(|blob| blob.descriptor.digest() == descriptor.digest())
        {
            continue;
        }
        into.push(read_blob(source, descriptor, what)?);
    }
    Ok(())
}

/// cosign v2's tag forms of a signature or provenance referrer, made from
/// its layer (the same payload and signature).
fn cosign_tags_of(
    referrer: &ImageManifest,
    subject: &str,
    blobs: &[Blob],
) -> Vec<crate::signatures::Attachment> {
    let artifact = referrer.artifact_type().as_ref().map(ToString::to_string);
    let layer_bytes = |media_type: &str| {
        let layer = referrer
            .layers()
            .iter()
            .find(|l| l.media_type().to_string() == media_type)?;
        let blob = blobs
            .iter()
            .find(|b| b.descriptor.digest() == layer.digest())?;
        let bytes = blob.read_verified().ok()?;
        Some((layer.clone(), bytes))
    };
    let mut out = Vec::new();
    match artifact.as_deref() {
        Some(COSIGN_SIG_ARTIFACT_TYPE) => {
            if let Some((layer, payload)) = layer_bytes(COSIGN_SIMPLE_SIGNING_MEDIA_TYPE) {
                if let Some(signature) = layer
                    .annotations()
                    .as_ref()
                    .and_then(|a| a.get(COSIGN_SIGNATURE_ANNOTATION))
                {
                    out.extend(crate::signatures::attachment(
                        "cosign signature manifest",
                        cosign_tag(subject, COSIGN_SIG_TAG_SUFFIX),
                        COSIGN_SIMPLE_SIGNING_MEDIA_TYPE,
                        payload.to_vec(),
                        HashMap::from([(
                            COSIGN_SIGNATURE_ANNOTATION.to_string(),
                            signature.clone(),
                        )]),
                    ));
                }
            }
        }
        Some(SIGSTORE_BUNDLE_V03_MEDIA_TYPE) => {
            let is_provenance = referrer
                .annotations()
                .as_ref()
                .and_then(|a| a.get(BUNDLE_PREDICATE_TYPE_ANNOTATION))
                .is_some_and(|t| t == SLSA_PROVENANCE_V1);
            if is_provenance {
                if let Some((_, bytes)) = layer_bytes(SIGSTORE_BUNDLE_V03_MEDIA_TYPE) {
                    if let Ok(bundle) = serde_json::from_slice::<Bundle>(&bytes) {
                        out.extend(crate::signatures::attachment(
                            "cosign attestation manifest",
                            cosign_tag(subject, COSIGN_ATT_TAG_SUFFIX),
                            DSSE_ENVELOPE_MEDIA_TYPE,
                            bundle.dsse_envelope.to_bytes(),
                            HashMap::from([(
                                COSIGN_PREDICATE_TYPE_ANNOTATION.to_string(),
                                SLSA_PROVENANCE_V1.to_string(),
                            )]),
                        ));
                    }
                }
            }
        }
        _ => {}
    }
    out
}

/// Reads the image in `source` with all its referrers, within `limits`.
pub fn read_image(
    source: &mut dyn ImageSource,
    limits: &ReadLimits,
) -> Result<ReadImage, CopyError> {
    let shape = plan(source, limits)?;
    if shape.indexes.len() > 1 {
        return Err(CopyError::Unsupported(format!(
            "{} nests indexes ({} of them); copy carries one index over platform manifests",
            shape.source,
            shape.indexes.len()
        )));
    }
    let (top_descriptor, top_bytes) = source.top(limits)?;
    if let Some(descriptor) = &top_descriptor {
        check_bytes("top manifest", descriptor, &top_bytes)?;
    }
    let top_digest = openshell_contract::digest::sha256_digest(&top_bytes);
    let top_media = top_descriptor
        .as_ref()
        .map(|d| d.media_type().clone())
        .or_else(|| {
            serde_json::from_slice::<serde_json::Value>(&top_bytes)
                .ok()
                .and_then(|v| {
                    v["mediaType"]
                        .as_str()
                        .map(oci_spec::image::MediaType::from)
                })
        })
        .unwrap_or(oci_spec::image::MediaType::ImageManifest);
    let top = Blob::in_memory(
        Descriptor::new(
            top_media,
            top_bytes.len() as u64,
            top_digest
                .parse::<oci_spec::image::Digest>()
                .map_err(|err| CopyError::Unsupported(format!("top digest: {err}")))?,
        ),
        Arc::new(top_bytes.clone()),
    );
    let mut blobs = Vec::new();
    let mut manifests = Vec::new();
    let mut subjects: Vec<Descriptor> = vec![top.descriptor.clone()];
    for entry in &shape.manifests {
        let loaded = load_manifest(source, entry, limits)?;
        let parsed = loaded
            .parsed
            .clone()
            .map_err(|err| CopyError::Unsupported(format!("manifest {}: {err}", loaded.digest)))?;
        manifest_blobs(source, &parsed, "blob", &mut blobs)?;
        if shape.indexes.is_empty() {
            continue;
        }
        let descriptor = entry.expected.clone().ok_or_else(|| {
            CopyError::Unsupported(format!("manifest {} has no descriptor", loaded.digest))
        })?;
        check_bytes("manifest", &descriptor, &loaded.raw)?;
        subjects.push(descriptor.clone());
        manifests.push(Blob::in_memory(descriptor, Arc::new(loaded.raw)));
    }
    let mut referrers = Vec::new();
    let mut referrer_blobs = Vec::new();
    let mut attachments = Vec::new();
    for subject in &subjects {
        // cosign v2's own tags in the source (a registry) come first: they
        // are copied as they are, and win over the ones made again below.
        for suffix in [COSIGN_SIG_TAG_SUFFIX, COSIGN_ATT_TAG_SUFFIX] {
            let tag = cosign_tag(subject.digest().as_ref(), suffix);
            let Some(bytes) = source.tagged_manifest(&tag, limits)? else {
                continue;
            };
            let parsed: ImageManifest = serde_json::from_slice(&bytes).map_err(|err| {
                CopyError::Unsupported(format!(
                    "the manifest tagged {tag} is not an image manifest: {err}"
                ))
            })?;
            let digest = openshell_contract::digest::sha256_digest(&bytes);
            let descriptor = Descriptor::new(
                oci_spec::image::MediaType::ImageManifest,
                bytes.len() as u64,
                digest
                    .parse::<oci_spec::image::Digest>()
                    .map_err(|err| CopyError::Unsupported(format!("{tag}: {err}")))?,
            );
            let mut own = Vec::new();
            manifest_blobs(source, &parsed, "cosign tag blob", &mut own)?;
            attachments.push(crate::signatures::Attachment {
                tag,
                manifest: Blob::in_memory(descriptor, Arc::new(bytes)),
                blobs: own,
            });
        }
        // The listing is refused past `--max-referrers` (the read limit
        // verify uses too), before any referrer is read.
        let Some(listed) = source.referrers(subject, limits)? else {
            continue;
        };
        for descriptor in listed {
            if referrers
                .iter()
                .any(|b: &Blob| b.descriptor.digest() == descriptor.digest())
            {
                continue;
            }
            let bytes = source.manifest(&descriptor, limits)?;
            check_bytes("referrer", &descriptor, &bytes)?;
            let parsed: ImageManifest = serde_json::from_slice(&bytes).map_err(|err| {
                CopyError::Unsupported(format!(
                    "referrer {} is not an image manifest: {err}",
                    descriptor.digest()
                ))
            })?;
            let mut own = Vec::new();
            manifest_blobs(source, &parsed, "referrer blob", &mut own)?;
            for attachment in cosign_tags_of(&parsed, subject.digest().as_ref(), &own) {
                if !attachments
                    .iter()
                    .any(|a: &crate::signatures::Attachment| a.tag == attachment.tag)
                {
                    attachments.push(attachment);
                }
            }
            for blob in own {
                if !referrer_blobs
                    .iter()
                    .any(|b: &Blob| b.descriptor.digest() == blob.descriptor.digest())
                {
                    referrer_blobs.push(blob);
                }
            }
            referrers.push(Blob::in_memory(descriptor, Arc::new(bytes)));
        }
    }
    for attachment in &attachments {
        for blob in &attachment.blobs {
            if !referrer_blobs
                .iter()
                .any(|b: &Blob| b.descriptor.digest() == blob.descriptor.digest())
            {
                referrer_blobs.push(blob.clone());
            }
        }
    }
    let count = referrers.len();
    Ok(ReadImage {
        image: ImageToWrite {
            blobs,
            manifests,
            top,
            referrers,
            referrer_blobs,
            attachments: attachments
                .into_iter()
                .map(|a| Attachment {
                    tag: a.tag,
                    manifest: a.manifest,
                })
                .collect(),
        },
        referrers: count,
    })
}
