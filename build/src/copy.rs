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
use openshell_signing::dsse::IN_TOTO_PAYLOAD_TYPE;
use openshell_signing::intoto::{SLSA_PROVENANCE_V1, Statement};
use openshell_transport::digest::check_bytes;
use openshell_transport::source::{ImageSource, load_manifest, plan};
use openshell_transport::{Attachment, Blob, ImageToWrite, ReadLimits, TransportError};

use crate::signatures::Bundle;
use openshell_contract::platform::Platform;

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
    /// `--platform` names a platform the index does not list.
    #[error("{image} has no {wanted} manifest; its index lists {has}")]
    NoSuchPlatform {
        /// The source.
        image: String,
        /// The platform asked for.
        wanted: String,
        /// The platforms it has.
        has: String,
    },
    /// `--platform` names several manifests of the index (no variant given).
    #[error(
        "{image} has several {wanted} manifests ({matching}); name one of them, variant included, with --platform"
    )]
    AmbiguousPlatform {
        /// The source.
        image: String,
        /// The platform asked for.
        wanted: String,
        /// The manifests it names.
        matching: String,
    },
    /// `--platform` names another platform than a lone manifest's.
    #[error(
        "{image} is a single manifest (no index) for {has}, not {wanted}: there is no {wanted} image to copy"
    )]
    SingleManifest {
        /// The source.
        image: String,
        /// The platform asked for.
        wanted: String,
        /// The platform its config declares.
        has: String,
    },
    /// A docker-archive holds one platform's image, not an index.
    #[error(
        "a docker-archive holds one platform's image (and no referrers), but {image} is an index over {platforms} platforms: copy one with --platform OS/ARCH, or write to oci:DIR or docker://REF to keep the index and its evidence"
    )]
    IndexIntoArchive {
        /// The source.
        image: String,
        /// How many platforms its index lists.
        platforms: usize,
    },
}

/// What was read for copying, and how much.
#[derive(Debug)]
pub struct ReadImage {
    /// The image, as destinations take it.
    pub image: ImageToWrite,
    /// How many referrers came along.
    pub referrers: usize,
    /// The platform copied, for a single-platform copy (or a lone
    /// manifest whose config names one).
    pub platform: Option<Platform>,
    /// The index a single-platform copy left behind, with what names it.
    pub index_left: Option<IndexLeftBehind>,
}

/// The index a single-platform copy leaves behind.
#[derive(Debug, Clone)]
pub struct IndexLeftBehind {
    /// Its digest.
    pub digest: String,
    /// How many referrers name it (its signatures, its provenance): they
    /// stay behind, their subject being the index. An attestation whose
    /// signed statement names the platform manifest is attached to that
    /// manifest again (counted in [`ReadImage::referrers`]).
    pub referrers: usize,
    /// How many attestations of the index (its SLSA provenance) name the
    /// platform manifest in their signed statement, and were attached to
    /// it again.
    pub attestations_attached: usize,
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

/// Which part of the source image a copy carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Selection {
    /// The whole image: the index, every platform manifest, and every
    /// referrer of each (skopeo's `copy --all`).
    #[default]
    AllPlatforms,
    /// One platform's manifest, unchanged, with its own referrers, and not
    /// the index: a new index would have a digest no signature covers.
    Platform(Platform),
}

/// Whether `have` is what `wanted` names: the same OS and architecture,
/// and the same variant when `wanted` gives one (`linux/arm64` names
/// `linux/arm64/v8`; an arm64 without a variant is v8, as containers/image
/// reads it).
fn platform_matches(wanted: &Platform, have: &Platform) -> bool {
    let variant = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
        ("arm64", None) => Some("v8".to_string()),
        (_, variant) => variant.map(str::to_string),
    };
    wanted.os == have.os
        && wanted.architecture == have.architecture
        && (wanted.variant.is_none() || variant(wanted) == variant(have))
}

/// The platform a lone manifest's config declares; a config that could not
/// be read, does not match its digest or does not parse is that error (a
/// stalled registry is a stall, not a missing platform).
fn config_platform(
    loaded: &openshell_transport::source::LoadedManifest,
) -> Result<Platform, CopyError> {
    let Some(config) = &loaded.config else {
        let err = loaded.parsed.as_ref().err().cloned().unwrap_or_default();
        return Err(CopyError::Unsupported(format!(
            "manifest {}: {err}",
            loaded.digest
        )));
    };
    let what = |err: &String| {
        CopyError::Unsupported(format!(
            "the config {} of manifest {}: {err}",
            config.expected.digest(),
            loaded.digest
        ))
    };
    config.read.as_ref().map_err(what)?;
    config.matches_descriptor.as_ref().map_err(what)?;
    let parsed = config.parsed.as_ref().map_err(what)?;
    Ok(Platform {
        os: parsed.os().to_string(),
        architecture: parsed.architecture().to_string(),
        variant: parsed.variant().clone(),
    })
}

fn sha256_digest_of(bytes: &[u8], what: &str) -> Result<oci_spec::image::Digest, CopyError> {
    openshell_contract::digest::sha256_digest(bytes)
        .parse::<oci_spec::image::Digest>()
        .map_err(|err| CopyError::Unsupported(format!("{what} digest: {err}")))
}

/// A referrer made again for another subject.
struct Remade {
    manifest: Blob,
    parsed: ImageManifest,
    blobs: Vec<Blob>,
}

/// The attestations of the index (Sigstore bundles of an in-toto
/// statement: the SLSA provenance) whose signed statement names `platform`
/// among its subjects, made again as referrers of `platform`: the same
/// config, layer and annotations (so the same DSSE envelope and
/// signature), only the manifest's `subject` changes. Evidence travels
/// when what is signed names the manifest, whatever the referrer's own
/// subject; the index's signatures name only the index and stay behind.
/// The statement is only read here; verify checks its signature.
fn attestations_for_platform(
    source: &mut dyn ImageSource,
    index: &Descriptor,
    platform: &Descriptor,
    limits: &ReadLimits,
) -> Result<(Vec<Remade>, usize), CopyError> {
    let Some(listed) = source.referrers(index, limits)? else {
        return Ok((Vec::new(), 0));
    };
    let left = listed.len();
    let mut out = Vec::new();
    for descriptor in listed {
        if descriptor
            .artifact_type()
            .as_ref()
            .is_some_and(|t| t.to_string() != SIGSTORE_BUNDLE_V03_MEDIA_TYPE)
        {
            continue;
        }
        let bytes = source.manifest(&descriptor, limits)?;
        check_bytes("referrer", &descriptor, &bytes)?;
        let Ok(mut parsed) = serde_json::from_slice::<ImageManifest>(&bytes) else {
            continue;
        };
        if parsed
            .artifact_type()
            .as_ref()
            .is_none_or(|t| t.to_string() != SIGSTORE_BUNDLE_V03_MEDIA_TYPE)
        {
            continue;
        }
        let mut own = Vec::new();
        manifest_blobs(source, &parsed, "referrer blob", &mut own)?;
        let names_platform = parsed
            .layers()
            .iter()
            .filter(|l| l.media_type().to_string() == SIGSTORE_BUNDLE_V03_MEDIA_TYPE)
            .filter_map(|l| own.iter().find(|b| b.descriptor.digest() == l.digest()))
            .filter_map(|blob| blob.read_verified().ok())
            .filter_map(|bytes| serde_json::from_slice::<Bundle>(&bytes).ok())
            .filter(|bundle| bundle.dsse_envelope.payload_type == IN_TOTO_PAYLOAD_TYPE)
            .filter_map(|bundle| bundle.dsse_envelope.payload_bytes("attestation").ok())
            .filter_map(|payload| {
                serde_json::from_slice::<Statement<serde_json::Value>>(&payload).ok()
            })
            .any(|statement| {
                statement.subject.iter().any(|s| {
                    s.digest
                        .get("sha256")
                        .is_some_and(|hex| platform.digest().as_ref() == format!("sha256:{hex}"))
                })
            });
        if !names_platform {
            continue;
        }
        parsed.set_subject(Some(Descriptor::new(
            platform.media_type().clone(),
            platform.size(),
            platform.digest().clone(),
        )));
        let remade = serde_json::to_vec(&parsed).map_err(|err| {
            CopyError::Unsupported(format!(
                "attestation referrer {} could not be written again: {err}",
                descriptor.digest()
            ))
        })?;
        let mut listing = Descriptor::new(
            oci_spec::image::MediaType::ImageManifest,
            remade.len() as u64,
            sha256_digest_of(&remade, "attestation referrer")?,
        );
        listing.set_artifact_type(parsed.artifact_type().clone());
        listing.set_annotations(parsed.annotations().clone());
        out.push(Remade {
            manifest: Blob::in_memory(listing, Arc::new(remade)),
            parsed,
            blobs: own,
        });
    }
    Ok((out, left))
}

/// Reads the whole image in `source` with all its referrers, within
/// `limits`.
pub fn read_image(
    source: &mut dyn ImageSource,
    limits: &ReadLimits,
) -> Result<ReadImage, CopyError> {
    read_selected(source, &Selection::AllPlatforms, limits)
}

/// Reads what `selection` names in `source`, with its referrers, within
/// `limits`.
pub fn read_selected(
    source: &mut dyn ImageSource,
    selection: &Selection,
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
    let mut top = Blob::in_memory(
        Descriptor::new(
            top_media,
            top_bytes.len() as u64,
            sha256_digest_of(&top_bytes, "top")?,
        ),
        Arc::new(top_bytes.clone()),
    );
    let mut blobs = Vec::new();
    let mut manifests = Vec::new();
    let mut subjects: Vec<Descriptor> = vec![top.descriptor.clone()];
    let mut referrers = Vec::new();
    let mut referrer_blobs = Vec::new();
    let mut platform = None;
    let mut index_left = None;
    let mut remade_tags = Vec::new();
    match selection {
        Selection::AllPlatforms => {
            for entry in &shape.manifests {
                let loaded = load_manifest(source, entry, limits)?;
                let parsed = loaded.parsed.clone().map_err(|err| {
                    CopyError::Unsupported(format!("manifest {}: {err}", loaded.digest))
                })?;
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
        }
        Selection::Platform(wanted) if shape.indexes.is_empty() => {
            // A lone manifest: its config says which platform it is.
            let entry = shape.manifests.first().ok_or_else(|| {
                CopyError::Unsupported(format!("{} holds no manifest", shape.source))
            })?;
            let loaded = load_manifest(source, entry, limits)?;
            let has = config_platform(&loaded)?;
            if !platform_matches(wanted, &has) {
                return Err(CopyError::SingleManifest {
                    image: shape.source.clone(),
                    wanted: wanted.to_string(),
                    has: has.to_string(),
                });
            }
            let parsed = loaded.parsed.clone().map_err(|err| {
                CopyError::Unsupported(format!("manifest {}: {err}", loaded.digest))
            })?;
            manifest_blobs(source, &parsed, "blob", &mut blobs)?;
            platform = Some(has);
        }
        Selection::Platform(wanted) => {
            let listed: Vec<(Platform, &openshell_transport::source::ManifestEntry)> = shape
                .manifests
                .iter()
                .filter_map(|entry| {
                    let spec =
                        crate::platform::from_oci(entry.expected.as_ref()?.platform().as_ref()?);
                    Some((spec, entry))
                })
                .collect();
            let found: Vec<_> = listed
                .iter()
                .filter(|(have, _)| platform_matches(wanted, have))
                .collect();
            let (have, entry) = match found.as_slice() {
                [one] => *one,
                [] => {
                    return Err(CopyError::NoSuchPlatform {
                        image: shape.source.clone(),
                        wanted: wanted.to_string(),
                        has: platform_list(listed.iter().map(|(have, _)| have)),
                    });
                }
                many => {
                    return Err(CopyError::AmbiguousPlatform {
                        image: shape.source.clone(),
                        wanted: wanted.to_string(),
                        matching: platform_list(many.iter().map(|(have, _)| have)),
                    });
                }
            };
            let loaded = load_manifest(source, entry, limits)?;
            let parsed = loaded.parsed.clone().map_err(|err| {
                CopyError::Unsupported(format!("manifest {}: {err}", loaded.digest))
            })?;
            let descriptor = entry.expected.clone().ok_or_else(|| {
                CopyError::Unsupported(format!("manifest {} has no descriptor", loaded.digest))
            })?;
            check_bytes("manifest", &descriptor, &loaded.raw)?;
            manifest_blobs(source, &parsed, "blob", &mut blobs)?;
            let index = top.descriptor.clone();
            // The platform manifest becomes the top, by its own digest;
            // the index, and what names it, stay behind.
            top = Blob::in_memory(descriptor.clone(), Arc::new(loaded.raw));
            subjects = vec![descriptor.clone()];
            let (attested, left) = attestations_for_platform(source, &index, &descriptor, limits)?;
            let attestations_attached = attested.len();
            for remade in attested {
                remade_tags.extend(cosign_tags_of(
                    &remade.parsed,
                    descriptor.digest().as_ref(),
                    &remade.blobs,
                ));
                for blob in remade.blobs {
                    push_new(&mut referrer_blobs, blob);
                }
                referrers.push(remade.manifest);
            }
            index_left = Some(IndexLeftBehind {
                digest: index.digest().to_string(),
                referrers: left,
                attestations_attached,
            });
            platform = Some(have.clone());
        }
    }
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
                push_new(&mut referrer_blobs, blob);
            }
            referrers.push(Blob::in_memory(descriptor, Arc::new(bytes)));
        }
    }
    // The tags of a remade provenance, unless the source had them.
    for attachment in remade_tags {
        if !attachments
            .iter()
            .any(|a: &crate::signatures::Attachment| a.tag == attachment.tag)
        {
            attachments.push(attachment);
        }
    }
    for attachment in &attachments {
        for blob in &attachment.blobs {
            push_new(&mut referrer_blobs, blob.clone());
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
        platform,
        index_left,
    })
}

/// Adds `blob` to `into` unless a blob of its digest is there.
fn push_new(into: &mut Vec<Blob>, blob: Blob) {
    if !into
        .iter()
        .any(|b| b.descriptor.digest() == blob.descriptor.digest())
    {
        into.push(blob);
    }
}

fn platform_list<'a>(platforms: impl Iterator<Item = &'a Platform>) -> String {
    let names: Vec<String> = platforms.map(ToString::to_string).collect();
    if names.is_empty() {
        "no platform in its index entries".to_string()
    } else {
        names.join(", ")
    }
}

/// Refuses, before any blob is read, to write an index into a
/// docker-archive, which holds one platform's image: the transport would
/// refuse it only after every blob was read, and this names the flag that
/// makes it fit. Reads the top of `source` (and its index) only.
pub fn check_docker_archive(
    source: &mut dyn ImageSource,
    selection: &Selection,
    limits: &ReadLimits,
) -> Result<(), CopyError> {
    if matches!(selection, Selection::Platform(_)) {
        return Ok(());
    }
    let shape = plan(source, limits)?;
    if shape.indexes.is_empty() {
        return Ok(());
    }
    Err(CopyError::IndexIntoArchive {
        image: shape.source,
        platforms: shape.manifests.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Platform {
        text.parse().unwrap_or_else(|err| panic!("{err}"))
    }

    #[test]
    fn platforms_match_by_os_architecture_and_a_given_variant() {
        assert!(platform_matches(&spec("linux/amd64"), &spec("linux/amd64")));
        assert!(!platform_matches(
            &spec("linux/amd64"),
            &spec("linux/arm64")
        ));
        assert!(!platform_matches(
            &spec("windows/amd64"),
            &spec("linux/amd64")
        ));
        assert!(platform_matches(
            &spec("linux/arm64"),
            &spec("linux/arm64/v8")
        ));
        assert!(platform_matches(
            &spec("linux/arm64/v8"),
            &spec("linux/arm64")
        ));
        assert!(!platform_matches(
            &spec("linux/arm64/v7"),
            &spec("linux/arm64")
        ));
        assert!(platform_matches(
            &spec("linux/arm/v7"),
            &spec("linux/arm/v7")
        ));
        assert!(!platform_matches(
            &spec("linux/arm/v7"),
            &spec("linux/arm/v6")
        ));
        assert!(!platform_matches(&spec("linux/arm/v7"), &spec("linux/arm")));
    }
}
